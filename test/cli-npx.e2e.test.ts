// `npx qnexus` runs this repository's CLI after a plain `npm ci`, without asking any registry
// (issue 14 item 2): a fresh clone, `npm ci` from the local npm cache with the registry off
// (npm_config_offline), then `npx qnexus …` from a subdirectory. npm links the cli workspace's
// bin (packages/cli/bin/qnexus.js, a tracked file) into node_modules/.bin; on first use it builds
// the workspace. `--ignore-scripts` skips the native addons' install scripts (classic-level,
// pqclean: minutes of compiling on a busy machine), which play no part in linking bins or in
// --version; everything else is the real `npm ci`.
// The clone is of the last commit: uncommitted changes are not part of what this tests.
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('..', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a command with a bounded time; stdin closed, output collected. */
function run(cmd: string, args: string[], opts: { cwd: string; env?: Record<string, string>; timeoutMs: number }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('e2e: npx qnexus from a fresh clone, registry unreachable', function () {
  this.timeout(600_000);
  let tmp: string;
  let clone: string;
  // No registry: npm must answer from its cache and the clone alone. No QNEXUS_* from the caller.
  const offline: Record<string, string> = {
    npm_config_offline: 'true',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    ...Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('QNEXUS_')).map((k) => [k, ''])),
  };

  before(async function () {
    if (!existsSync(join(REPO, '.git')) || spawnSync('git', ['--version']).status !== 0) {
      if (process.env.QNEXUS_REQUIRE_TOOLS === '1') throw new Error('this test needs git and a git checkout');
      console.log('    (skipped: not a git checkout, or no git)');
      this.skip();
    }
    tmp = mkdtempSync(join(tmpdir(), 'qnexus-npx-'));
    clone = join(tmp, 'repo');
    const c = await run('git', ['clone', '--quiet', REPO, clone], { cwd: tmp, timeoutMs: 60_000 });
    assert.equal(c.code, 0, c.stderr);
    const ci = await run('npm', ['ci', '--ignore-scripts'], { cwd: clone, env: { ...offline, QNEXUS_HOME: join(tmp, 'home') }, timeoutMs: 300_000 });
    if (ci.code !== 0 && /ENOTCACHED/.test(ci.stderr) && process.env.QNEXUS_REQUIRE_TOOLS !== '1') {
      // The lockfile names a package this machine's npm cache lacks: nothing to learn offline.
      console.log(`    (skipped: the npm cache lacks a locked package: ${/request to (\S+)/.exec(ci.stderr)?.[1] ?? 'ENOTCACHED'})`);
      this.skip();
    }
    assert.equal(ci.code, 0, `npm ci failed:\n${ci.stderr}`);
  });

  after(() => {
    if (tmp && !process.env.QNEXUS_KEEP_TEST_DIRS) rmSync(tmp, { recursive: true, force: true });
  });

  it("npm ci links the cli workspace's bin into node_modules/.bin", () => {
    const link = join(clone, 'node_modules', '.bin', 'qnexus');
    assert.ok(existsSync(link), 'node_modules/.bin/qnexus exists');
    assert.equal(readlinkSync(link), '../@qnexus/cli/bin/qnexus.js');
    assert.equal(realpathSync(link), join(realpathSync(clone), 'packages', 'cli', 'bin', 'qnexus.js'), "it is the clone's own CLI");
    assert.ok(!existsSync(join(clone, 'packages', 'cli', 'dist')), 'nothing built yet');
  });

  it("npx qnexus --version (from a subdirectory) builds on first use and prints the repo's version, and nothing else, on stdout", async () => {
    const version = (JSON.parse(readFileSync(join(clone, 'package.json'), 'utf8')) as { version: string }).version;
    const r = await run('npx', ['qnexus', '--version'], { cwd: join(clone, 'packages', 'sdk'), env: offline, timeoutMs: 300_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${version}\n`);
    assert.match(r.stderr, /building the workspace first/);
    assert.ok(existsSync(join(clone, 'packages', 'cli', 'dist', 'bin.js')), 'the first run built the CLI');
  });

  it('npx qnexus … --json is pipe-clean: stdout parses as JSON', async () => {
    const keys = join(tmp, 'keys');
    const r = await run('npx', ['qnexus', 'keys', 'new', '--out', join(keys, 'k.json'), '--passphrase-env', 'P', '--json', '--scrypt-n', '1024'], {
      cwd: clone,
      env: { ...offline, P: 'x' },
      timeoutMs: 120_000,
    });
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { address: string; homeShard: number };
    assert.match(j.address, /^qn[0-9a-f]{40}$/);
    const s = await run('npx', ['qnexus', 'keys', 'show', join(keys, 'k.json'), '--json'], { cwd: clone, env: offline, timeoutMs: 120_000 });
    assert.equal(s.code, 0, s.stderr);
    assert.equal((JSON.parse(s.stdout) as { address: string }).address, j.address);
    assert.equal(s.stderr, '', 'nothing from npm or the shim once built');
  });
});
