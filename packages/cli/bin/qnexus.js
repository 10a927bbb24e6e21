#!/usr/bin/env node
// `npx qnexus` / node_modules/.bin/qnexus. A tracked file, not dist/bin.js itself: npm links a
// workspace's bin into node_modules/.bin during `npm ci` only if the target exists then, and
// dist/ is built later. So after `npm ci` this shim is linked, and on first use it builds the
// workspace (tsc -b, about 10 s) when dist/bin.js is missing. Progress goes to stderr only:
// `npx qnexus … --json | jq` sees nothing but the command's own output.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const cliDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(cliDir, 'dist', 'bin.js');

if (!existsSync(entry)) {
  const root = join(cliDir, '..', '..');
  let tsc;
  try {
    tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
  } catch {
    process.stderr.write(`error [NOT_BUILT]: ${entry} does not exist and TypeScript is not installed to build it: run \`npm ci && npm run build\` in ${root}\n`);
    process.exit(1);
  }
  process.stderr.write('qnexus: building the workspace first (npm run build)…\n');
  // stdout of the build goes to our stderr, so a piped --json answer stays clean.
  const r = spawnSync(process.execPath, [tsc, '-b'], { cwd: root, stdio: ['ignore', 2, 2] });
  if (r.status !== 0 || !existsSync(entry)) {
    process.stderr.write(`error [NOT_BUILT]: the build failed (${r.error?.message ?? `tsc exit ${r.status ?? r.signal}`}); run \`npm run build\` in ${root} to see why\n`);
    process.exit(1);
  }
}

await import(pathToFileURL(entry).href);
