#!/usr/bin/env node
// The layering rules of the application layer (docs/ARCHITECTURE.md, "Layers"), checked on every
// workspace's package.json dependencies and on every import in its src/:
//   - a module (packages/modules/*) uses only @qnexus/crypto, @qnexus/types, @qnexus/state and its own files:
//     it never imports another module (what it needs from one arrives as a keeper at wiring);
//   - @qnexus/app is the only package that imports modules, apart from the SDK and CLI (their client sides);
//   - node and beacon see modules only through @qnexus/app; the beacon never depends on the node;
//   - no package imports another's internals (`@qnexus/x/dist/...`, `../../x/src/...`).
// Usage: node scripts/check-deps.mjs [repo root]; exits 1 and lists each violation.
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';

const root = resolve(process.argv[2] ?? join(import.meta.dirname, '..'));
const MODULE_ALLOWED = new Set(['@qnexus/crypto', '@qnexus/types', '@qnexus/state']);
const MAY_IMPORT_MODULES = new Set(['@qnexus/app', '@qnexus/sdk', '@qnexus/cli']);

function workspaces() {
  const out = [];
  for (const base of ['packages', join('packages', 'modules')]) {
    const dir = join(root, base);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      const pj = join(dir, name, 'package.json');
      if (!existsSync(pj)) continue;
      const pkg = JSON.parse(readFileSync(pj, 'utf8'));
      out.push({ dir: join(dir, name), name: pkg.name, deps: Object.keys({ ...pkg.dependencies, ...pkg.peerDependencies }), isModule: base.endsWith('modules') });
    }
  }
  return out;
}

function* tsFiles(dir) {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) yield* tsFiles(p);
    else if (/\.(ts|mts|js|mjs)$/.test(e) && !e.endsWith('.d.ts')) yield p;
  }
}

const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

const all = workspaces();
const moduleNames = new Set(all.filter((w) => w.isModule).map((w) => w.name));
const problems = [];
for (const w of all) {
  const where = relative(root, w.dir);
  const check = (spec, file) => {
    const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
    if (spec.startsWith('.')) {
      // A relative import must stay inside its own package.
      const target = resolve(file, '..', spec);
      if (!target.startsWith(w.dir + sep)) problems.push(`${relative(root, file)}: relative import ${spec} leaves ${where}`);
      return;
    }
    if (pkg.startsWith('@qnexus/') && spec !== pkg) problems.push(`${relative(root, file)}: deep import ${spec} (import ${pkg} from its index)`);
    if (w.isModule && pkg.startsWith('@qnexus/') && !MODULE_ALLOWED.has(pkg)) {
      problems.push(`${relative(root, file)}: module ${w.name} imports ${pkg} (modules import only crypto, types, state)`);
    }
    if (!w.isModule && moduleNames.has(pkg) && !MAY_IMPORT_MODULES.has(w.name)) {
      problems.push(`${relative(root, file)}: ${w.name} imports the module ${pkg} (only @qnexus/app wires modules; use what it exports)`);
    }
    if (w.name === '@qnexus/beacon' && pkg === '@qnexus/node') problems.push(`${relative(root, file)}: the beacon imports @qnexus/node`);
  };
  for (const d of w.deps) {
    if (w.isModule && d.startsWith('@qnexus/') && !MODULE_ALLOWED.has(d)) problems.push(`${where}/package.json: module ${w.name} depends on ${d}`);
    if (!w.isModule && moduleNames.has(d) && !MAY_IMPORT_MODULES.has(w.name)) problems.push(`${where}/package.json: ${w.name} depends on the module ${d}`);
    if (w.name === '@qnexus/beacon' && d === '@qnexus/node') problems.push(`${where}/package.json: the beacon depends on @qnexus/node`);
  }
  for (const file of tsFiles(join(w.dir, 'src'))) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT_RE)) check(m[1] ?? m[2], file);
  }
}

if (problems.length) {
  console.error(`dependency rules: ${problems.length} violation(s)`);
  for (const p of problems) console.error(`  ${p}`);
  process.exit(1);
}
console.log(`dependency rules: ${all.length} workspaces (${moduleNames.size} modules) follow the layering`);
