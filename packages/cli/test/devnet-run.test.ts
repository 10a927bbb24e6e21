// The launcher's pieces that need no running process: the public host and the join command,
// reading a manifest left by a dead launcher, how exits are described, and --public-host of
// `qnexus node|beacon`.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliError, NODE_PROCESS_ENV, prepareDevnet, type DevnetEvent, type DevnetManifest, type DevnetOptions } from '../src/index.js';
import { describeExit, devnetJoinArgs, parsePublicHost, publicMultiaddr, readDevnetManifest } from '../src/devnet.js';
import { processConfig, type ProcessOpts } from '../src/process-options.js';

const randomBasePort = () => 20_000 + Math.floor(Math.random() * 63) * 200;
/** A devnet of one validator and no accounts, fast keystores: for launcher tests whose "node" is a stand-in command. */
const ONE_VALIDATOR = { shards: 1, validators: 1, fullNodes: 0, accounts: 0, scryptN: 1 << 10 } as const;

/** A pid that surely belongs to no process: one that has exited and been reaped. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  assert.ok(r.pid > 0);
  return r.pid;
}

describe('cli: devnet public host, join command, manifest truth (no node started)', function () {
  this.timeout(60_000);
  let root: string;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'qnexus-devnet-run-'));
  });

  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('accepts an IPv4 address or a DNS name as public host, and refuses what other machines cannot dial', () => {
    assert.equal(parsePublicHost('10.213.9.1'), '10.213.9.1');
    assert.equal(parsePublicHost(' devnet.example.org '), 'devnet.example.org');
    for (const bad of ['127.0.0.1', '127.1.2.3', '0.0.0.0', 'localhost', '300.1.1.1', '1.2.3', 'a b', '', 'x/tcp/1', '-lead.example']) {
      assert.throws(() => parsePublicHost(bad), (e: unknown) => e instanceof CliError && e.code === 'USAGE', bad);
    }
    assert.equal(publicMultiaddr('10.213.9.1', 7000), '/ip4/10.213.9.1/tcp/7000');
    assert.equal(publicMultiaddr('devnet.example.org', 7099), '/dns4/devnet.example.org/tcp/7099');
  });

  it('a public host devnet records the public addresses and prints a join command naming only them, for the right shard', async () => {
    const dir = join(root, 'public');
    const basePort = randomBasePort();
    const d = await prepareDevnet({ dir, basePort, shards: 2, validators: 2, fullNodes: 1, accounts: 0, scryptN: 1 << 10, publicHost: '10.213.9.1' });
    const m = d.manifest;
    assert.equal(m.publicHost, '10.213.9.1');
    for (const p of m.processes) {
      assert.deepEqual(p.multiaddrs, [`/ip4/127.0.0.1/tcp/${p.p2pPort}/p2p/${p.peerId}`, `/ip4/10.213.9.1/tcp/${p.p2pPort}/p2p/${p.peerId}`], p.name);
    }
    const args = devnetJoinArgs(m, 1);
    assert.equal(args[args.indexOf('--shard') + 1], '1');
    assert.equal(args[args.indexOf('--genesis') + 1], 'genesis.json');
    const boot = args.flatMap((a, i) => (args[i - 1] === '--bootstrap' ? [a] : []));
    const want = m.processes.filter((p) => p.role === 'beacon' || p.shard === 1).map((p) => `/ip4/10.213.9.1/tcp/${p.p2pPort}/p2p/${p.peerId}`);
    assert.deepEqual(boot, want);
    assert.equal(want.length, 4, 'the beacon, 2 validators and the full node of shard 1');
    assert.ok(!args.join(' ').includes('127.0.0.1'));

    // Without a public host there is nothing another machine could dial.
    const local = await prepareDevnet({ dir: join(root, 'local'), basePort: basePort + 1000 > 32_000 ? basePort - 1000 : basePort + 1000, shards: 1, validators: 1, fullNodes: 0, accounts: 0, scryptN: 1 << 10 });
    assert.equal(local.manifest.publicHost, null);
    assert.equal(local.manifest.processes[0]!.multiaddrs.length, 1);
    assert.throws(() => devnetJoinArgs(local.manifest, 0), (e: unknown) => e instanceof CliError && /--public-host/.test(e.message));
  });

  it('reads a manifest whose launcher is dead as stopped, and a dead process of a live launcher as exited', async () => {
    const dir = join(root, 'manifest');
    const d = await prepareDevnet({ dir, basePort: randomBasePort(), shards: 1, validators: 1, fullNodes: 0, accounts: 0, scryptN: 1 << 10 });
    const path = d.manifestPath;
    const raw = JSON.parse(await readFile(path, 'utf8')) as DevnetManifest;
    const dead = deadPid();
    // What a SIGKILLed launcher leaves: itself and every process "running".
    for (const p of raw.processes) {
      p.state = 'running';
      p.pid = dead;
    }
    raw.launcherPid = dead;
    await writeFile(path, JSON.stringify(raw));
    const r = await readDevnetManifest(dir);
    assert.equal(r.launcherAlive, false);
    assert.equal(r.manifest.launcherPid, null);
    assert.deepEqual(r.manifest.processes.map((p) => [p.state, p.pid]), raw.processes.map(() => ['stopped', null]));

    // A live launcher (this process) whose child died: exited, not running.
    raw.launcherPid = process.pid;
    await writeFile(path, JSON.stringify(raw));
    const live = await readDevnetManifest(dir);
    assert.equal(live.launcherAlive, true);
    assert.deepEqual(live.manifest.processes.map((p) => [p.state, p.pid]), raw.processes.map(() => ['exited', null]));

    // markGoneSync: what the launcher's exit hook writes.
    d.markGoneSync();
    const gone = JSON.parse(await readFile(path, 'utf8')) as DevnetManifest;
    assert.equal(gone.launcherPid, null);
    assert.ok(gone.processes.every((p) => p.pid === null && p.state === 'stopped'));

    await assert.rejects(readDevnetManifest(join(root, 'nothing-here')), (e: unknown) => e instanceof CliError && e.code === 'DEVNET_NOT_FOUND');
  });

  /**
   * Start a one-validator devnet whose "node" is a shell that writes `record` (a shell word, e.g.
   * "$*" for its arguments) to a file and fails (it never serves an API); returns what it wrote.
   */
  async function recordedStart(name: string, record: string, opts: Partial<DevnetOptions> = {}): Promise<string> {
    const out = join(root, `${name}.out`);
    const d = await prepareDevnet({
      dir: join(root, name),
      ...ONE_VALIDATOR,
      basePort: randomBasePort(),
      ...opts,
      nodeCommand: { command: '/bin/sh', args: ['-c', `printf %s ${record} > ${out}; exit 3`, 'sh'] },
      supervise: { initialDelayMs: 60_000, maxDelayMs: 60_000, quickFailureMs: 60_000, maxQuickFailures: 1 },
    });
    try {
      await assert.rejects(d.restart('validator-0'), (e: unknown) => e instanceof CliError && e.code === 'DEVNET_START_FAILED');
      return await readFile(out, 'utf8');
    } finally {
      await d.stop();
    }
  }

  it('starts every process with NODE_PROCESS_ENV (glibc reads it only at start-up); the devnet env option overrides it', async () => {
    assert.equal(NODE_PROCESS_ENV.MALLOC_MMAP_THRESHOLD_, '131072');
    assert.equal(await recordedStart('env-default', '"$MALLOC_MMAP_THRESHOLD_"'), '131072');
    assert.equal(await recordedStart('env-override', '"$MALLOC_MMAP_THRESHOLD_"', { env: { MALLOC_MMAP_THRESHOLD_: '65536' } }), '65536');
  });

  it('passes emptyBlockInterval to every node as --empty-block-interval (none when unset: the nodes\' default), and refuses a bad one', async () => {
    assert.match(await recordedStart('interval-3', '"$*"', { emptyBlockInterval: 3 }), /^node .* --empty-block-interval 3 /);
    assert.doesNotMatch(await recordedStart('interval-unset', '"$*"'), /--empty-block-interval/);
    await assert.rejects(prepareDevnet({ dir: join(root, 'interval-0'), ...ONE_VALIDATOR, basePort: randomBasePort(), emptyBlockInterval: 0 }), (e: unknown) => e instanceof CliError && e.code === 'USAGE');
  });

  it('the supervisor restarts a process that keeps failing with a doubling delay, then gives up and says so', async () => {
    const events: DevnetEvent[] = [];
    let gaveUp: () => void = () => undefined;
    const done = new Promise<void>((r) => (gaveUp = r));
    // A "node" that fails at once, every time (a real process: the supervisor sees a real exit code).
    const d = await prepareDevnet({
      dir: join(root, 'crashing'),
      ...ONE_VALIDATOR,
      basePort: randomBasePort(),
      nodeCommand: { command: '/bin/sh', args: ['-c', 'exit 3'] },
      supervise: { initialDelayMs: 20, maxDelayMs: 1000, quickFailureMs: 60_000, maxQuickFailures: 3 },
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'gave-up') gaveUp();
      },
    });
    try {
      await assert.rejects(d.restart('validator-0'), (e: unknown) => e instanceof CliError && e.code === 'DEVNET_START_FAILED' && /exited with code 3/.test(e.message));
      await Promise.race([done, new Promise((_, rej) => setTimeout(() => rej(new Error(`no gave-up event; events: ${JSON.stringify(events)}`)), 20_000))]);
      const mine = events.filter((e) => 'name' in e && e.name === 'validator-0');
      assert.deepEqual(
        mine.filter((e) => e.type === 'restart-scheduled').map((e) => (e.type === 'restart-scheduled' ? [e.delayMs, e.restart] : [])),
        [[20, 1], [40, 2], [80, 3]],
      );
      const exits = mine.filter((e) => e.type === 'exit');
      assert.equal(exits.length, 4, 'the first start and three restarts');
      assert.ok(exits.every((e) => e.type === 'exit' && e.code === 3 && !e.expected));
      const g = mine.findIndex((e) => e.type === 'gave-up');
      const gave = mine[g]!;
      assert.deepEqual(gave.type === 'gave-up' ? gave.failures : gave, 3);
      assert.ok(!mine.slice(g).some((e) => e.type === 'restart-scheduled' || e.type === 'spawn'), 'nothing restarted after giving up');
      assert.equal(d.process('validator-0').restarts, 3);
      assert.equal(d.process('validator-0').state, 'exited');
      assert.deepEqual(d.pendingRestarts(), []);
    } finally {
      await d.stop();
    }
  });

  it('describes a signal as a signal, and a clean stop nobody asked for as what it most likely was', () => {
    assert.equal(describeExit({ code: null, signal: 'SIGKILL' }), 'was killed by SIGKILL');
    assert.equal(describeExit({ code: 1, signal: null }), 'exited with code 1');
    assert.equal(describeExit({ code: 143, signal: null }), 'was stopped by SIGTERM (exit code 143)');
    assert.match(describeExit({ code: 0, signal: null }), /code 0 .*SIGTERM or SIGINT/);
  });

  it('node/beacon --public-host: listen on every interface at the p2p port, announce the public address', async () => {
    const base: ProcessOpts = { dataDir: join(root, 'pc'), genesis: 'unused', apiHost: '127.0.0.1', apiPort: 0, logLevel: 'info', cryptoBackend: 'noble' };
    const none = () => [];
    const withPort = await processConfig({ ...base, p2pPort: 7005, publicHost: '10.0.0.7' }, '/ip4/0.0.0.0/tcp/7000', none);
    assert.deepEqual(withPort.listen, ['/ip4/0.0.0.0/tcp/7005']);
    assert.deepEqual(withPort.announce, ['/ip4/10.0.0.7/tcp/7005']);
    const byName = await processConfig({ ...base, publicHost: 'node.example.org' }, '/ip4/0.0.0.0/tcp/7000', none);
    assert.deepEqual(byName.listen, ['/ip4/0.0.0.0/tcp/7000'], 'the default port');
    assert.deepEqual(byName.announce, ['/dns4/node.example.org/tcp/7000']);
    await assert.rejects(processConfig({ ...base, p2pPort: 0, publicHost: '10.0.0.7' }, '/ip4/0.0.0.0/tcp/7000', none), (e: unknown) => e instanceof CliError && e.code === 'BAD_CONFIG');
    // Without it nothing changes: --p2p-port is a loopback listen, nothing announced.
    const plain = await processConfig({ ...base, p2pPort: 7005 }, '/ip4/0.0.0.0/tcp/7000', none);
    assert.deepEqual(plain.listen, ['/ip4/127.0.0.1/tcp/7005']);
    assert.equal(plain.announce, undefined);
  });
});
