import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const script = join(repo, 'scripts', 'check-deps.mjs');
const run = (root: string) => spawnSync(process.execPath, [script, root], { encoding: 'utf8' });

/** A miniature repo: packages with a package.json and one src file each. */
function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'qnexus-deps-'));
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    writeFileSync(join(dir, p), text);
  }
  return dir;
}
const pkg = (name: string, deps: string[] = []) => JSON.stringify({ name, dependencies: Object.fromEntries(deps.map((d) => [d, '0.1.0'])) });

describe('dependency rules (scripts/check-deps.mjs)', () => {
  it('the repository follows them', () => {
    const r = run(repo);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /follow the layering/);
  });

  it('fails on a module importing another module, the node importing a module, the beacon depending on the node, and deep imports', () => {
    const dir = tree({
      'packages/modules/a/package.json': pkg('@qnexus/module-a', ['@qnexus/state']),
      'packages/modules/a/src/index.ts': "import { x } from '@qnexus/module-b';\nexport const a = x;\n",
      'packages/modules/b/package.json': pkg('@qnexus/module-b', ['@qnexus/node']),
      'packages/modules/b/src/index.ts': "export const x = 1;\n",
      'packages/node/package.json': pkg('@qnexus/node', ['@qnexus/app']),
      'packages/node/src/index.ts': "import { stakingModule } from '@qnexus/module-a';\nimport { y } from '@qnexus/state/dist/host.js';\nimport { z } from '../../beacon/src/index.js';\n",
      'packages/beacon/package.json': pkg('@qnexus/beacon', ['@qnexus/node']),
      'packages/beacon/src/index.ts': "export const z = 1;\n",
      'packages/app/package.json': pkg('@qnexus/app', ['@qnexus/module-a']),
      'packages/app/src/index.ts': "import { a } from '@qnexus/module-a';\nexport { a };\n",
    });
    try {
      const r = run(dir);
      assert.equal(r.status, 1);
      for (const re of [
        /module @qnexus\/module-a imports @qnexus\/module-b/,
        /module @qnexus\/module-b depends on @qnexus\/node/,
        /@qnexus\/node imports the module @qnexus\/module-a/,
        /deep import @qnexus\/state\/dist\/host\.js/,
        /relative import \.\.\/\.\.\/beacon\/src\/index\.js leaves packages\/node/,
        /the beacon depends on @qnexus\/node/,
      ]) assert.match(r.stderr, re);
      assert.doesNotMatch(r.stderr, /packages\/app/, 'the app may import modules');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
