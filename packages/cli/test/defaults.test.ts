// The CLI's defaults (issue 14 item 3): without --node it finds the local devnet from its manifest
// and picks a node of the keystore's home shard; QNEXUS_KEYSTORE / QNEXUS_PASSPHRASE_FILE; errors
// that say what to do; keys outside the checkout; keys show's home shard. The devnet here is
// prepared (directory, genesis, keys, manifest) but not started: nothing listens on its ports, which
// is exactly the "is the devnet running?" case.
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { QnexusClient } from '@qnexus/sdk';
import { prepareDevnet, type Devnet, type DevnetProcess } from '../src/index.js';
import { FALLBACK_NODE, explainUnreachable, forgetDevnet, resolveNode } from '../src/util.js';
import { qnexus } from './helpers.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const FAST = ['--scrypt-n', '1024'];
const randomBasePort = () => 20_000 + Math.floor(Math.random() * 63) * 200;

describe('cli: defaults from the local devnet (prepared, not started)', function () {
  this.timeout(120_000);
  let dir: string;
  let empty: string;
  let d: Devnet;
  /** The environment of a CLI run against the prepared devnet, with nothing inherited that would pick another node. */
  let env: Record<string, string>;
  const saved = { ...process.env };

  const nodesOf = (shard: number): DevnetProcess[] => d.manifest.processes.filter((p) => p.shard === shard);
  const accountOf = (shard: number) => d.manifest.accounts.find((a) => a.shard === shard)!;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qnexus-cli-defaults-'));
    empty = join(dir, 'no-devnet');
    d = await prepareDevnet({ dir: join(dir, 'devnet'), basePort: randomBasePort(), shards: 2, validators: 2, fullNodes: 1, accounts: 1, scryptN: 1024 });
    env = { QNEXUS_DEVNET_DIR: d.dir, QNEXUS_NODE: '', QNEXUS_KEYSTORE: '', QNEXUS_PASSPHRASE_FILE: '', QNEXUS_PASSPHRASE_ENV: '', QNEXUS_HOME: join(dir, 'home') };
  });
  afterEach(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    forgetDevnet();
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('resolveNode: a node of the address home shard, the beacon, every shard for "any"; flag and env win', async () => {
    Object.assign(process.env, env);
    for (const shard of [0, 1]) {
      const t = await resolveNode({}, { address: accountOf(shard).address });
      assert.equal(t.source, 'devnet');
      assert.equal(t.shard, shard);
      assert.equal(t.url, nodesOf(shard)[0]!.apiUrl);
      assert.equal(t.process?.name, nodesOf(shard)[0]!.name);
      assert.deepEqual(t.others, nodesOf(shard).slice(1).map((p) => p.apiUrl));
    }
    const beacon = await resolveNode({}, { role: 'beacon' });
    assert.equal(beacon.url, d.manifest.beacon.apiUrl);
    const any = await resolveNode({}, { role: 'any' });
    assert.deepEqual([any.url, ...any.others].sort(), d.manifest.processes.filter((p) => p.shard !== null).map((p) => p.apiUrl).sort());

    // --node naming one of the devnet's processes: that process (its data dir holds the admin token).
    const s1 = nodesOf(1)[1]!;
    const flag = await resolveNode({ node: `${s1.apiUrl}/` }, { address: accountOf(0).address });
    assert.deepEqual([flag.source, flag.url, flag.process?.name], ['flag', s1.apiUrl, s1.name]);
    process.env.QNEXUS_NODE = 'http://127.0.0.1:1';
    const fromEnv = await resolveNode({}, { address: accountOf(1).address });
    assert.deepEqual([fromEnv.source, fromEnv.url, fromEnv.process], ['env', 'http://127.0.0.1:1', null]);
  });

  it('resolveNode without a devnet: http://127.0.0.1:7100, and the error says to start one', async () => {
    Object.assign(process.env, env, { QNEXUS_DEVNET_DIR: empty });
    const t = await resolveNode({}, { address: accountOf(1).address });
    assert.deepEqual([t.source, t.url, t.devnet], ['default', FALLBACK_NODE, null]);
    assert.equal(FALLBACK_NODE, 'http://127.0.0.1:7100');
  });

  it('an unreachable devnet node becomes "no node reachable …: is the devnet running? its nodes are at …"', async () => {
    Object.assign(process.env, env);
    const t = await resolveNode({}, { address: accountOf(1).address });
    const err = await new QnexusClient(t.url, { timeoutMs: 3000 }).status().then(
      () => assert.fail(`nothing should listen at ${t.url}`),
      (e: unknown) => e,
    );
    const e = explainUnreachable(err) as Error & { code: string };
    assert.equal(e.code, 'UNAVAILABLE');
    assert.match(e.message, new RegExp(`^no node reachable at ${t.url} \\(${nodesOf(1)[0]!.name}\\) \\(.*ECONNREFUSED.*\\): is the devnet in .* running \\(\`npm run devnet\`\\)\\?`));
    // It lists the nodes of the shard it wanted (and the beacon), not the other shard's.
    for (const p of nodesOf(1)) assert.ok(e.message.includes(p.apiUrl), `${p.name} listed: ${e.message}`);
    for (const p of nodesOf(0)) assert.ok(!e.message.includes(`${p.apiUrl}`), `${p.name} not listed: ${e.message}`);
    // Errors about other URLs, and other errors, pass through untouched.
    const other = Object.assign(new Error('cannot reach node at http://10.9.9.9:1 (GET /v1/status): timeout'), { code: 'UNAVAILABLE' });
    assert.equal(explainUnreachable(other), other);
  });

  it('tx transfer with only --to and --amount: QNEXUS_KEYSTORE, the devnet passphrase, a node of the home shard', async () => {
    const from = accountOf(1);
    const to = d.manifest.accounts.find((a) => a.shard === 1 && a !== from)?.address ?? from.address;
    const r = await qnexus(['tx', 'transfer', '--to', to, '--amount', '5'], { env: { ...env, QNEXUS_KEYSTORE: from.keystore } });
    assert.equal(r.code, 1, r.stderr);
    // Unlocked with the devnet's passphrase (no prompt, no flag), then sent to shard 1's first node, which is down.
    assert.match(r.stderr, /is a key of the local devnet: using its passphrase file/);
    assert.match(r.stderr, new RegExp(`^error \\[UNAVAILABLE\\]: no node reachable at ${nodesOf(1)[0]!.apiUrl} \\(${nodesOf(1)[0]!.name}\\).*its nodes of shard 1 are at`, 'm'));
    assert.equal(r.stdout, '');
    // No keystore at all: a usage error naming both ways to give one.
    const none = await qnexus(['tx', 'transfer', '--to', to, '--amount', '5'], { env });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^error \[USAGE\]: no keystore: pass --keystore <file> or set QNEXUS_KEYSTORE$/m);
  });

  it('QNEXUS_PASSPHRASE_FILE unlocks a key that is not the devnet', async () => {
    const pass = join(dir, 'pass');
    await writeFile(pass, 'outside secret\n');
    const key = join(dir, 'outside.json');
    assert.equal((await qnexus(['keys', 'new', '--out', key, '--passphrase-file', pass, ...FAST], { env })).code, 0);
    const ok = await qnexus(['keys', 'show', '--decrypt'], { env: { ...env, QNEXUS_KEYSTORE: key, QNEXUS_PASSPHRASE_FILE: pass } });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^passphrase\s+ok/m);
    // A new key never takes an ambient passphrase.
    const fresh = await qnexus(['keys', 'new', '--out', join(dir, 'fresh.json'), ...FAST], { env: { ...env, QNEXUS_PASSPHRASE_FILE: pass } });
    assert.equal(fresh.code, 2);
    assert.match(fresh.stderr, /no passphrase given/);
  });

  it('admin commands find the token in the data dir of the devnet node they ask; validators ask the beacon', async () => {
    const admin = await qnexus(['admin', 'peers'], { env });
    assert.equal(admin.code, 1);
    // Not a usage error about --data-dir: the first node's own data dir was tried (no token yet: never started).
    const first = d.manifest.processes.find((p) => p.shard === 0)!;
    assert.match(admin.stderr, new RegExp(`^error \\[FILE_NOT_FOUND\\]: admin token file ${join(first.dataDir, 'admin.token')} does not exist`, 'm'));
    const v = await qnexus(['validators'], { env });
    assert.equal(v.code, 1);
    assert.match(v.stderr, new RegExp(`^error \\[UNAVAILABLE\\]: no node reachable at ${d.manifest.beacon.apiUrl} \\(beacon\\)`, 'm'));
  });

  it('keys show prints the home shard, with the shard count it used', async () => {
    const a = accountOf(1);
    const viaDevnet = await qnexus(['keys', 'show', a.keystore, '--json'], { env });
    assert.equal(viaDevnet.code, 0, viaDevnet.stderr);
    assert.deepEqual(
      (({ homeShard, shardCount, shardCountFrom }) => ({ homeShard, shardCount, shardCountFrom }))(JSON.parse(viaDevnet.stdout) as Record<string, unknown>),
      { homeShard: 1, shardCount: 2, shardCountFrom: 'devnet' },
    );
    const text = await qnexus(['keys', 'show', a.keystore], { env });
    assert.match(text.stdout, /^home shard\s+shard 1 of 2 \(from the local devnet's genesis\)/m);
    const one = JSON.parse((await qnexus(['keys', 'show', a.keystore, '--json', '--shards', '1'], { env })).stdout) as Record<string, unknown>;
    assert.deepEqual([one.homeShard, one.shardCount, one.shardCountFrom], [0, 1, 'flag']);
    const g = JSON.parse((await qnexus(['keys', 'show', a.keystore, '--json', '--genesis', d.manifest.genesis], { env: { ...env, QNEXUS_DEVNET_DIR: empty } })).stdout) as Record<string, unknown>;
    assert.deepEqual([g.homeShard, g.shardCountFrom], [1, 'genesis']);
    const assumed = await qnexus(['keys', 'show', a.keystore], { env: { ...env, QNEXUS_DEVNET_DIR: empty } });
    assert.match(assumed.stdout, /^home shard\s+shard \d of 2 \(assumed: the devnet default; pass --genesis <file> or --shards <n>/m);
  });

  it('keys new without --out writes to $QNEXUS_HOME/keys/<address>.json (0700 dir, 0600 file), outside the checkout', async () => {
    const r = await qnexus(['keys', 'new', '--passphrase-env', 'P', '--json', ...FAST], { env: { ...env, P: 'x' } });
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { address: string; file: string; homeShard: number };
    const keys = join(env.QNEXUS_HOME!, 'keys');
    assert.equal(j.file, join(keys, `${j.address}.json`));
    assert.deepEqual(await readdir(keys), [`${j.address}.json`]);
    assert.equal((await stat(keys)).mode & 0o777, 0o700);
    assert.equal((await stat(j.file)).mode & 0o777, 0o600);
    assert.equal(r.stderr, '');
  });

  it('keys new --out inside the checkout warns unless git ignores the file', async () => {
    // test/.tmp/ is git-ignored; the other name is not (removed right away).
    const ignored = join(REPO, 'test', '.tmp', `cli-defaults-${process.pid}.json`);
    const tracked = join(REPO, 'packages', 'cli', 'test', `.cli-defaults-${process.pid}.key.json`);
    try {
      const a = await qnexus(['keys', 'new', '--out', ignored, '--passphrase-env', 'P', ...FAST], { env: { ...env, P: 'x' } });
      assert.equal(a.code, 0, a.stderr);
      assert.doesNotMatch(a.stderr, /warning/);
      const b = await qnexus(['keys', 'new', '--out', tracked, '--passphrase-env', 'P', ...FAST], { env: { ...env, P: 'x' } });
      assert.equal(b.code, 0, b.stderr);
      assert.match(b.stderr, /^warning: .* is inside the repository .* and not git-ignored/m);
      assert.ok(existsSync(tracked), 'the key is still written where asked');
    } finally {
      await rm(ignored, { force: true });
      await rm(tracked, { force: true });
    }
  });

  it('--version prints the repository version', async () => {
    const r = await qnexus(['--version'], { env });
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `${(JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version}\n`);
  });
});
