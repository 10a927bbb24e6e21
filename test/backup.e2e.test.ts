// Backups of a running node (qnexus db backup / restore, docs/backup.md) against real processes:
// a live snapshot of a full node while transactions flow, restored into a fresh data dir, from
// which a new node process starts at the snapshot's height and catches up with the network.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError, QnexusClient, type AdminBackupResult, type BackupManifestInfo } from '@qnexus/sdk';
import { BEACON_NAME, portFree, type DevnetProcess } from '@qnexus/cli';
import { QNEXUS_BIN, qnexus } from '../packages/cli/test/helpers.js';
import { chainView, finalized, freshAddressOn, jsonLogLines, sleep, startTestNet, transfer, waitFor, type TestNet } from './helpers.js';

/** Transfers from every shard-0 account to one address, ~10/s, until stopped; returns the hashes sent. */
function startLoad(net: TestNet, node: string): { hashes: string[]; stop(): Promise<void> } {
  const c = net.devnet.client(node);
  const to = freshAddressOn(net, 0);
  const hashes: string[] = [];
  let running = true;
  const loop = (async () => {
    const accs = net.accountsByShard[0]!;
    const nonces = new Map<string, bigint>();
    for (let i = 0; running; i++) {
      const a = accs[i % accs.length]!;
      try {
        if (!nonces.has(a.address)) nonces.set(a.address, BigInt((await c.account(a.address)).pendingNonce));
        const tx = transfer(net, a, to, 1n, nonces.get(a.address)!);
        await c.submitTx(tx.raw);
        nonces.set(a.address, nonces.get(a.address)! + 1n);
        hashes.push(tx.hash);
      } catch {
        nonces.delete(a.address); // busy or a nonce race: re-read it next time
      }
      await sleep(100);
    }
  })();
  return {
    hashes,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

describe('backup and restore: a live snapshot of a running node, restored into a fresh data dir', function () {
  let net: TestNet;
  let load: ReturnType<typeof startLoad> | undefined;
  let full: DevnetProcess;
  let genesisFile: string;
  let backupDir: string;
  let manifest: BackupManifestInfo;
  /** Transactions final on the full node before the backup. */
  let finalBefore: string[] = [];
  const restoredDir = () => join(net.devnet.dir, 'restored-full');
  let restored: { child: ChildProcess; exit: Promise<void>; apiUrl: string; logFile: string } | undefined;

  async function stopRestored(): Promise<void> {
    if (!restored) return;
    const r = restored;
    restored = undefined;
    r.child.kill('SIGTERM');
    const killer = setTimeout(() => r.child.kill('SIGKILL'), 15_000);
    await r.exit;
    clearTimeout(killer);
  }

  before(async function () {
    this.timeout(120_000);
    net = await startTestNet({ shards: 1, validators: 4, fullNodes: 1 });
    full = net.devnet.manifest.processes.find((p) => p.role === 'full')!;
    genesisFile = net.devnet.manifest.genesis;
    backupDir = join(net.devnet.dir, 'backups', full.name);
  });

  after(async function () {
    this.timeout(60_000);
    await load?.stop();
    await stopRestored();
    await net?.cleanup();
  });

  it('backs up the running full node through the CLI while transactions flow; the manifest describes the snapshot', async function () {
    this.timeout(120_000);
    const c = net.devnet.client(full.name);
    load = startLoad(net, 'validator-0');
    // Transactions are being committed: wait until some are final on the full node.
    finalBefore = await waitFor(
      'transfers final on the full node',
      async () => {
        const done: string[] = [];
        for (const h of load!.hashes.slice(0, 8)) if ((await c.tx(h).catch(() => null))?.status === 'final') done.push(h);
        return done;
      },
      (d) => d.length >= 3,
      60_000,
      500,
    );
    const before = await finalized(c);
    const sentBefore = load.hashes.length;

    const r = await qnexus(['db', 'backup', backupDir, '--node', full.apiUrl, '--data-dir', full.dataDir, '--json'], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as AdminBackupResult & { mode: string };
    manifest = JSON.parse(readFileSync(join(backupDir, 'backup.json'), 'utf8')) as BackupManifestInfo;
    assert.equal(out.mode, 'online');
    assert.equal(out.dir, backupDir);
    assert.deepEqual(out.manifest, manifest);
    assert.equal(manifest.format, 1);
    assert.equal(manifest.kind, 'node');
    assert.equal(manifest.chainId, net.chainId);
    assert.equal(manifest.genesisHash, net.devnet.genesisHash);
    assert.equal(manifest.shard, 0);
    assert.ok(manifest.height! >= before, `snapshot height ${manifest.height} >= ${before}`);
    assert.ok(manifest.keys > 0 && manifest.bytes > 0, JSON.stringify(manifest));
    assert.match(manifest.sha256, /^[0-9a-f]{64}$/);
    assert.ok(Math.abs(Date.parse(manifest.createdAt) - Date.now()) < 60_000);
    assert.ok(manifest.excludes.some((x) => x.startsWith('peer.key')), 'says what it does not contain');
    // Complete, and nothing but the database and the manifest: no secrets, no leftovers.
    assert.deepEqual(readdirSync(backupDir).sort(), ['backup.json', 'db']);
    assert.deepEqual(readdirSync(join(backupDir, '..')), [full.name], 'no partial directory left');
    for (const secret of ['peer.key', 'admin.token']) assert.ok(!existsSync(join(backupDir, 'db', secret)) && !existsSync(join(backupDir, secret)));

    // The node logged it, and kept committing (with transactions still flowing).
    const logged = jsonLogLines(full.logFile).find((l) => l.msg === 'admin: backup written');
    assert.ok(logged, 'backup logged');
    assert.equal(logged['dir'], backupDir);
    assert.equal(logged['keys'], manifest.keys);
    assert.equal(typeof logged['ms'], 'number');
    await waitFor('the full node to finalize past the snapshot', () => finalized(c), (h) => h > manifest.height! + 2, 30_000);
    assert.ok(load.hashes.length > sentBefore, 'transactions kept flowing during the backup');
  });

  it('refuses a non-empty target, a relative path, and an offline backup of a data dir in use; backs up the beacon', async function () {
    this.timeout(60_000);
    const again = await qnexus(['db', 'backup', backupDir, '--node', full.apiUrl, '--data-dir', full.dataDir]);
    assert.equal(again.code, 1, again.stdout);
    assert.match(again.stderr, /^error \[BACKUP_EXISTS\]: backup directory .* already exists and is not empty/);

    const token = readFileSync(join(full.dataDir, 'admin.token'), 'utf8').trim();
    await assert.rejects(
      new QnexusClient(full.apiUrl, { adminToken: token }).adminBackup('relative/dir'),
      (e: unknown) => e instanceof ApiError && e.code === 'BAD_REQUEST' && e.status === 400 && /absolute path/.test(e.message),
    );
    await assert.rejects(new QnexusClient(full.apiUrl).adminBackup(join(net.devnet.dir, 'backups', 'anon')), (e: unknown) => e instanceof ApiError && e.code === 'UNAUTHORIZED');

    const offline = join(net.devnet.dir, 'backups', 'offline-running');
    const inUse = await qnexus(['db', 'backup', offline, '--data-dir', full.dataDir]);
    assert.equal(inUse.code, 1);
    assert.match(inUse.stderr, /^error \[DB_IN_USE\]: .*in use by a running process.*--node/);
    assert.ok(!existsSync(offline), 'nothing written');

    // The beacon serves the same endpoint over its own store.
    const beacon = net.devnet.process(BEACON_NAME);
    const bdir = join(net.devnet.dir, 'backups', 'beacon');
    const b = await qnexus(['db', 'backup', bdir, '--node', beacon.apiUrl, '--data-dir', beacon.dataDir, '--json']);
    assert.equal(b.code, 0, b.stderr);
    const bm = (JSON.parse(b.stdout) as AdminBackupResult).manifest;
    assert.equal(bm.kind, 'beacon');
    assert.equal(bm.chainId, net.chainId);
    assert.equal(bm.genesisHash, net.devnet.genesisHash);
    assert.equal(bm.height, null);
    assert.ok(bm.epoch !== null && bm.epoch >= 0 && bm.keys > 0, JSON.stringify(bm));
  });

  it('restored into a fresh data dir, a new node starts at the backed-up height and catches up with identical blocks', async function () {
    this.timeout(180_000);
    const dataDir = restoredDir();
    const wrongGenesis = join(net.devnet.dir, 'other-genesis.json');
    writeFileSync(wrongGenesis, JSON.stringify({ ...(JSON.parse(readFileSync(genesisFile, 'utf8')) as object), chainId: 'qnexus-other' }));
    const mismatch = await qnexus(['db', 'restore', backupDir, '--data-dir', dataDir, '--genesis', wrongGenesis]);
    assert.equal(mismatch.code, 1);
    assert.match(mismatch.stderr, /^error \[BACKUP_MISMATCH\]/);
    assert.ok(!existsSync(join(dataDir, 'db')));

    const r = await qnexus(['db', 'restore', backupDir, '--data-dir', dataDir, '--genesis', genesisFile, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as { dataDir: string; dbDir: string; movedAside: string | null; manifest: BackupManifestInfo };
    assert.equal(res.dbDir, join(dataDir, 'db'));
    assert.equal(res.movedAside, null);
    assert.deepEqual(res.manifest, manifest);
    assert.match(r.stderr, /never run at the same time as the original/);
    assert.deepEqual(readdirSync(dataDir), ['db'], 'only the database: no peer key, no token');

    // Restoring over an existing database is refused without --force.
    const again = await qnexus(['db', 'restore', backupDir, '--data-dir', dataDir]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^error \[DB_EXISTS\]: .*--force/);

    // A new full node on the restored data dir: fresh peer key, its own ports.
    const base = net.devnet.manifest.basePort;
    const p2pPort = base + 50;
    const apiPort = base + 150;
    assert.ok((await portFree(p2pPort)) && (await portFree(apiPort)), 'ports for the restored node');
    const logFile = join(net.devnet.dir, 'logs', 'restored-full.log');
    const bootstrap = net.devnet.manifest.processes.filter((p) => p.name !== full.name).flatMap((p) => ['--bootstrap', p.multiaddr]);
    const fd = openSync(logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(
        process.execPath,
        [...QNEXUS_BIN, 'node', '--data-dir', dataDir, '--genesis', genesisFile, '--shard', '0', '--p2p-port', String(p2pPort), '--api-host', '127.0.0.1', '--api-port', String(apiPort), '--log-format', 'json', '--stop-on-stdin-close', ...bootstrap],
        { stdio: ['pipe', fd, fd] },
      );
    } finally {
      closeSync(fd);
    }
    const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    restored = { child, exit, apiUrl: `http://127.0.0.1:${apiPort}`, logFile };
    const rc = new QnexusClient(restored.apiUrl);
    const st = await waitFor('the restored node API', () => rc.status(), () => true, 30_000);
    assert.equal(st.role, 'full');
    assert.notEqual(st.peerId, full.peerId, 'a new peer identity (peer.key is not in the backup)');

    // It started from the snapshot's height: it did not resync from scratch.
    const started = jsonLogLines(logFile).find((l) => l.msg === 'node started');
    assert.ok(started, 'started line logged');
    assert.equal(started['height'], manifest.height);
    assert.ok(manifest.height! > 0);
    // What was final before the backup is there.
    for (const h of finalBefore) assert.equal((await rc.tx(h)).status, 'final', h);

    // It catches up with the network head, and agrees block by block (hash and state root).
    const v0 = net.devnet.client('validator-0');
    const head = await finalized(v0);
    assert.ok(head > manifest.height!, `the network moved on (${head} > ${manifest.height})`);
    await waitFor('the restored node to catch up', () => finalized(rc), (h) => h >= head, 90_000);
    assert.deepEqual(await chainView(rc, 0, head), await chainView(v0, 0, head));
    // And it keeps following.
    await waitFor('the restored node to follow', () => finalized(rc), (h) => h >= head + 2, 30_000);
    await load?.stop();
    load = undefined;
  });

  it('backs up a stopped node offline (no --node); restore --force moves the old database aside', async function () {
    this.timeout(60_000);
    const dataDir = restoredDir();
    const rc = new QnexusClient(restored!.apiUrl);
    const reached = await finalized(rc);
    await stopRestored();

    const dir = join(net.devnet.dir, 'backups', 'restored-offline');
    const r = await qnexus(['db', 'backup', dir, '--data-dir', dataDir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as AdminBackupResult & { mode: string };
    assert.equal(out.mode, 'offline');
    assert.equal(out.manifest.kind, 'node');
    assert.ok(out.manifest.height! >= reached, `${out.manifest.height} >= ${reached}`);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'backup.json'), 'utf8')), out.manifest);

    // Back to the first backup, keeping the newer database aside.
    const f = await qnexus(['db', 'restore', backupDir, '--data-dir', dataDir, '--force', '--json']);
    assert.equal(f.code, 0, f.stderr);
    const res = JSON.parse(f.stdout) as { movedAside: string | null; manifest: BackupManifestInfo };
    assert.ok(res.movedAside !== null && res.movedAside.startsWith(join(dataDir, 'db.replaced-')), String(res.movedAside));
    assert.ok(existsSync(join(res.movedAside, 'CURRENT')), 'the old database is kept');
    assert.equal(res.manifest.height, manifest.height);
  });
});
