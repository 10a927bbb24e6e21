// An operator joins a running devnet as docs/operators.md describes: a genesis file and one
// bootstrap multiaddr, nothing else. Then the node is stopped with SIGTERM and restarted.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BEACON_NAME } from '@qnexus/cli';
import { QNEXUS_BIN } from '../packages/cli/test/helpers.js';
import { QnexusClient } from '@qnexus/sdk';
import { createP2PNode, topics, type P2PNode } from '@qnexus/p2p';
import { chainView, jsonLogLines, randomBasePort, shardNodes, startTestNet, transfer, waitFor, freshAddressOn, type TestNet } from './helpers.js';

interface Joiner {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  logFile: string;
}

describe('joining a running devnet from another machine (real processes)', function () {
  let net: TestNet;
  let home: string;
  let joiner: Joiner | undefined;
  let snapshotJoiner: Joiner | undefined;
  let liar: P2PNode | undefined;
  const base = randomBasePort();
  const p2pPort = base + 50;
  const apiPort = base + 51;
  const api = new QnexusClient(`http://127.0.0.1:${apiPort}`);

  /** `qnexus node` exactly as an operator types it: --genesis, one --bootstrap, ports, a data dir. */
  function startJoiner(bootstrap: string, logName: string, node: { data: string; p2p: number; api: number; flags: string[] } = { data: 'data', p2p: p2pPort, api: apiPort, flags: [] }): Joiner {
    const logFile = join(home, logName);
    const child = spawn(process.execPath, [
      ...QNEXUS_BIN, 'node',
      '--shard', '1',
      '--data-dir', join(home, node.data),
      '--genesis', join(home, 'genesis.json'),
      '--bootstrap', bootstrap,
      '--listen', `/ip4/127.0.0.1/tcp/${node.p2p}`,
      '--api-port', String(node.api),
      '--log-format', 'json',
      ...node.flags,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = createWriteStream(logFile);
    child.stdout!.pipe(out);
    child.stderr!.pipe(out);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
    return { child, exited, logFile };
  }

  const logLines = (j: Joiner) => jsonLogLines(j.logFile);

  before(async function () {
    this.timeout(120_000);
    net = await startTestNet({ shards: 2, validators: 4, fullNodes: 0 });
    // The operator's machine holds only a copy of the genesis file.
    home = mkdtempSync(join(tmpdir(), 'qnexus-operator-'));
    mkdirSync(join(home, 'data'));
    copyFileSync(join(net.devnet.dir, 'genesis.json'), join(home, 'genesis.json'));
  });

  after(async function () {
    this.timeout(60_000);
    for (const j of [joiner, snapshotJoiner]) {
      if (j && j.child.exitCode === null) {
        j.child.kill('SIGKILL');
        await j.exited;
      }
    }
    await liar?.stop();
    await net?.cleanup();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('knowing only the beacon’s multiaddr and the genesis, it finds shard 1’s peers, syncs, then follows gossip', async function () {
    this.timeout(120_000);
    const s1 = shardNodes(net, 1);
    const v1 = net.devnet.client(s1[0]!);
    // Give the chain some history and state to sync (blocks are made only when there is something to include).
    const from = net.accountsByShard[1]![0]!;
    const to = freshAddressOn(net, 1, 201);
    for (let i = 0; i < 5; i++) {
      const tx = transfer(net, from, to, 10n, BigInt(i));
      await v1.submitTx(tx.raw);
      await v1.waitForTx(tx.hash, { timeoutMs: 30_000 });
    }
    const headAtJoin = (await v1.status()).finalizedHeight;
    assert.ok(headAtJoin >= 3, 'the devnet has history to sync');

    // The beacon is the bootstrap address: it is on no shard topic, so everything else is discovered.
    joiner = startJoiner(net.devnet.process(BEACON_NAME).multiaddr, 'join.log');
    const synced = await waitFor('the joiner synced to the head at join time', () => api.status().catch(() => null), (s) => s !== null && s.finalizedHeight >= headAtJoin, 60_000, 500);
    assert.equal(synced!.shard, 1);
    assert.equal(synced!.role, 'full');

    // It found shard 1's validators (never named to it) and stays connected to the beacon.
    const token = readFileSync(join(home, 'data', 'admin.token'), 'utf8').trim();
    const admin = new QnexusClient(api.baseUrl, { adminToken: token });
    const shardPeerIds = new Set(s1.map((n) => net.devnet.process(n).peerId));
    const peers = await waitFor('connections to shard-1 peers', () => admin.adminPeers(), (p) => p.peers.filter((x) => shardPeerIds.has(x.peerId)).length >= 3, 30_000, 500);
    assert.ok(peers.peers.some((x) => x.peerId === net.devnet.process(BEACON_NAME).peerId), 'connected to the beacon');
    assert.ok(logLines(joiner).some((l) => l.msg === 'p2p: connected to discovered peers'), 'it logged the discovery');

    // Same chain: identical block hashes over the synced range.
    assert.deepEqual(await chainView(api, 1, headAtJoin), await chainView(v1, 1, headAtJoin));
    assert.equal((await api.account(to)).balance, '50', 'the state it synced holds the transfers');

    // Following gossip: a transaction submitted to it reaches the validators and is finalized,
    // and its head keeps up with theirs block by block.
    const tx = transfer(net, from, to, 7n, 5n);
    assert.equal((await api.submitTx(tx.raw)).status, 'pending');
    const included = await v1.waitForTx(tx.hash, { timeoutMs: 30_000 });
    const h = included.block!.height;
    await waitFor('the joiner has the block with its transaction', () => api.status(), (s) => s.finalizedHeight >= h, 15_000, 250);
    assert.equal((await api.tx(tx.hash)).status, 'final');
    const [mine, theirs] = await Promise.all([api.status(), v1.status()]);
    assert.ok(Math.abs(theirs.finalizedHeight - mine.finalizedHeight) <= 2, `keeps up: joiner ${mine.finalizedHeight}, validator ${theirs.finalizedHeight}`);
    assert.equal(mine.syncing, false);
  });

  it('SIGTERM: exits 0 promptly and loses nothing — its height and a transaction it holds survive the restart', async function () {
    this.timeout(120_000);
    assert.ok(joiner, 'the previous test started the joiner');
    const s1 = shardNodes(net, 1);
    const v1 = net.devnet.client(s1[0]!);
    const from = net.accountsByShard[1]![1]!;
    const to = freshAddressOn(net, 1, 202);
    // A transaction that cannot be included yet (nonce 1 before nonce 0): it waits in mempools.
    const later = transfer(net, from, to, 3n, 1n);
    assert.equal((await api.submitTx(later.raw)).status, 'pending');
    const before = await api.status();
    assert.ok(before.mempoolSize >= 1);

    const t0 = Date.now();
    joiner.child.kill('SIGTERM');
    const exit = await joiner.exited;
    const took = Date.now() - t0;
    assert.deepEqual(exit, { code: 0, signal: null }, 'a clean exit on SIGTERM');
    assert.ok(took < 15_000, `stopped in ${took} ms`);
    const stopped = logLines(joiner);
    assert.ok(stopped.some((l) => l.msg === 'mempool saved for the next start' && Number(l['txs']) >= 1), 'the mempool was saved');

    // Restarted with a different bootstrap peer (any one will do): it resumes where it stopped.
    joiner = startJoiner(net.devnet.process(s1[1]!).multiaddr, 'join-2.log');
    const resumed = await waitFor('the restarted joiner', () => api.status().catch(() => null), (s) => s !== null, 30_000, 250);
    const started = logLines(joiner).find((l) => l.msg === 'node started');
    assert.ok(started && Number(started['height']) >= before.finalizedHeight, `resumed from its stored height (${String(started?.['height'])} ≥ ${before.finalizedHeight}), not from genesis`);
    assert.ok(logLines(joiner).some((l) => l.msg === 'mempool restored from the last stop' && Number(l['readmitted']) >= 1));
    assert.equal((await api.tx(later.hash)).status, 'pending', 'the held transaction is still there');
    assert.ok(resumed!.mempoolSize >= 1);

    // Fill the nonce gap through a validator: both commit, and the joiner follows.
    const first = transfer(net, from, to, 2n, 0n);
    await v1.submitTx(first.raw);
    const done = await v1.waitForTx(later.hash, { timeoutMs: 40_000 });
    assert.equal(done.status, 'final');
    await waitFor('the joiner caught up', () => api.status(), (s) => s.finalizedHeight >= done.block!.height, 20_000, 250);
    assert.equal((await api.account(to)).balance, '5');
  });

  it('a fresh node joins by snapshot at a certified height, has the validators’ state, then follows blocks; a peer serving corrupted chunks is penalised and the sync completes from honest peers', async function () {
    this.timeout(90_000);
    const s1 = shardNodes(net, 1);
    const v1 = net.devnet.client(s1[0]!);
    const honest = net.devnet.process(s1[0]!);
    // A liar on the snapshot protocol: it passes on what an honest validator serves, with one byte
    // of the first item of every chunk flipped. Its offers carry the honest block and certificate but
    // claim a head a little higher, so that whichever height the joiner picks, the liar counts among
    // the servers of it (a peer's head must reach the height) and is asked for chunks.
    const protocol = topics(net.chainId, 1).snapshotProtocol;
    liar = await createP2PNode({ peerKeyPath: join(home, 'liar.key'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], maxMessageBytes: 1 << 20, log: () => undefined });
    const l = liar;
    let corrupted = 0;
    await l.dial(honest.multiaddr);
    await l.handle(protocol, { maxInboundStreams: 8, maxOutboundStreams: 8, maxRequestBytes: 4096, timeoutMs: 30_000 }, async function* (req) {
      let first = req[0] === 2;
      const offer = req[0] === 1;
      for await (const frame of l.request(honest.peerId, protocol, req, { timeoutMs: 20_000, maxResponseFrameBytes: 8 << 20, maxFrames: 5000 })) {
        if (offer) {
          const lifted = frame.slice();
          const view = new DataView(lifted.buffer, lifted.byteOffset, 8);
          view.setBigUint64(0, view.getBigUint64(0) + 2n);
          yield lifted;
        } else if (first) {
          const bad = frame.slice();
          bad[bad.length - 1]! ^= 1;
          corrupted++;
          first = false;
          yield bad;
        } else yield frame;
      }
    });
    // History past the threshold (2), whatever ran before: blocks are made only with something to include.
    const from = net.accountsByShard[1]![2]!;
    const to = freshAddressOn(net, 1, 203);
    for (let i = 0; i < 3; i++) {
      const t = transfer(net, from, to, 10n, BigInt(i));
      await v1.submitTx(t.raw);
      await v1.waitForTx(t.hash, { timeoutMs: 30_000 });
    }
    const headBefore = (await v1.status()).finalizedHeight;
    assert.ok(headBefore > 2, 'the chain is longer than the snapshot threshold');

    // Small chunks spread the (small) state over many requests, so every server, the liar included, is asked.
    const api2 = new QnexusClient(`http://127.0.0.1:${apiPort + 2}`);
    snapshotJoiner = startJoiner(`${l.multiaddrs()[0]!},${honest.multiaddr}`, 'snapshot.log', {
      data: 'data-snapshot',
      p2p: p2pPort + 2,
      api: apiPort + 2,
      flags: ['--sync', 'snapshot', '--snapshot-threshold', '2', '--snapshot-chunk-items', '4'],
    });
    await waitFor('the snapshot joiner is up', () => api2.status().catch(() => null), (s) => s !== null, 60_000, 500);
    const lines = logLines(snapshotJoiner);
    const adopted = lines.find((x) => x.msg === 'snapshot adopted');
    assert.ok(adopted, 'it joined by snapshot');
    const H = Number(adopted['height']);
    assert.ok(H >= headBefore - 1 && Number(adopted['entries']) > 0, `a recent height with state (${H}, head was ${headBefore})`);
    assert.ok(corrupted >= 1, 'the liar was asked for a chunk');
    assert.ok(
      lines.some((x) => x.msg === 'p2p: peer penalised' && x['peerId'] === l.peerId && /snapshot: BAD_SNAPSHOT/.test(String(x['reason']))),
      'the liar was penalised for its corrupted chunk',
    );
    assert.ok(!lines.some((x) => x.msg === 'p2p: peer penalised' && x['peerId'] !== l.peerId && /snapshot/.test(String(x['reason']))), 'no honest peer was penalised');
    const metrics = await (await fetch(`${api2.baseUrl}/metrics`)).text();
    assert.match(metrics, new RegExp(`^qnexus_snapshot_height ${H}$`, 'm'));
    assert.match(metrics, /^qnexus_snapshot_bad_items_total [1-9]/m);

    // The same chain and state from H on, the transfers of the earlier tests included; then it follows new blocks.
    const tx = transfer(net, from, to, 4n, 3n);
    await v1.submitTx(tx.raw);
    const included = await v1.waitForTx(tx.hash, { timeoutMs: 30_000 });
    const h = included.block!.height;
    await waitFor('the snapshot joiner has the new block', () => api2.status(), (s) => s.finalizedHeight >= h, 20_000, 250);
    assert.equal((await api2.tx(tx.hash)).status, 'final');
    assert.deepEqual(await chainView(api2, H, h), await chainView(v1, H, h), 'same blocks and state roots');
    assert.equal((await api2.account(to)).balance, (await v1.account(to)).balance);
  });
});
