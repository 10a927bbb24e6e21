// Transaction batches go straight to each connected shard peer over the direct tx protocol
// (Topics.txDirectProtocol), not by gossip; gossip stays the fallback whenever direct sending may
// not reach everyone (an older node without the protocol, a known committee peer not reached).
// A direct batch is checked exactly like a gossiped one: an invalid one penalises its sender.
// Real libp2p nodes on loopback; no timing assertions (bounded polls only).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeTx, encodeTxBatch, openTx, type Genesis } from '@qnexus/types';
import { createP2PNode, topics, type P2PNode } from '@qnexus/p2p';
import type { Metrics } from '../src/metrics.js';
import type { TxDirectOptions } from '../src/txgossip.js';
import { capturingLogger, unitGenesis } from './helpers.js';
import { addrOf, beaconKey, sink, transfers, user, validators } from './sync-peers.js';
import { connectTxPeers, holdsAll as holds, startTxPeer, stopTxPeer, submitTxs as submit, waitUntil, type TxPeer as Peer } from './tx-peers.js';

/** Sum of a counter's values whose labels include every given label value. */
async function count(c: Metrics['txAdmission'] | Metrics['txBatchesSent'], labels: Record<string, string>): Promise<number> {
  return (await c.get()).values.filter((v) => Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x)).reduce((a, v) => a + v.value, 0);
}

describe('node: transaction batches sent directly to shard peers (gossip as the fallback)', function () {
  this.timeout(60_000);
  let dir: string;
  let G: Genesis;
  const log = capturingLogger('error').log;
  const started: Peer[] = [];
  const others: P2PNode[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'qnexus-txdirect-'));
    G = unitGenesis(validators, beaconKey, { chainId: 'unit-txdirect', genesisTime: Date.now(), accounts: [{ address: addrOf(user), balance: 1_000_000n }] });
  });
  afterEach(async () => {
    for (const p of started.splice(0)) await stopTxPeer(p);
    for (const n of others.splice(0)) await n.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A shard node's transaction path; `direct` null is an older node (gossip only, no direct protocol served or used). */
  async function peer(name: string, direct: Omit<TxDirectOptions, 'protocol'> | null): Promise<Peer> {
    const p = await startTxPeer(dir, G, name, log, direct === null ? {} : { direct });
    started.push(p);
    return p;
  }

  const connect = (a: Peer, b: Peer) => connectTxPeers(G, a, b);
  const protocol = () => topics(G.chainId, 0).txDirectProtocol;

  it('a batch admitted on A reaches B through the direct protocol, once, with no gossip copy', async function () {
    // No probation: A trusts its first direct send to B, so nothing goes by gossip.
    const a = await peer('a', { probationMs: 0 });
    const b = await peer('b', { probationMs: 0 });
    await connect(a, b);
    const txs = transfers(G, user, sink, 0n, 5);
    await submit(a, txs);
    await waitUntil('b holds the batch', () => holds(b, txs));
    assert.equal(await count(b.metrics.txAdmission, { source: 'direct', result: 'accepted' }), txs.length, 'each transaction admitted once, from the direct batch');
    assert.equal(await count(b.metrics.txAdmission, { source: 'gossip' }), 0, 'no gossip copy reached b');
    assert.equal(await count(a.metrics.txBatchesSent, { path: 'direct' }), 1);
    assert.equal(await count(a.metrics.txBatchesSent, { path: 'gossip' }), 0);
    const stats = b.p2p.stats().direct?.[protocol()];
    assert.equal(stats?.frames, 1, "b's direct receiver handled the one batch");
    assert.equal(stats?.rejected, 0);
    // Direct batches are not relayed: b sends nothing on.
    assert.equal(await count(b.metrics.txBatchesSent, {}), 0);
    assert.deepEqual(a.penalties, []);
    assert.deepEqual(b.penalties, []);
  });

  it('a new peer is on probation: its first batches go by gossip too (a frame queued before a failed open is lost)', async function () {
    const a = await peer('a', {});
    const b = await peer('b', {});
    await connect(a, b);
    const txs = transfers(G, user, sink, 0n, 3);
    await submit(a, txs);
    await waitUntil('b holds the batch', () => holds(b, txs));
    assert.equal(await count(a.metrics.txBatchesSent, { path: 'direct' }), 1);
    assert.equal(await count(a.metrics.txBatchesSent, { path: 'gossip' }), 1, 'sent by gossip too while b is on probation');
    await waitUntil('both copies were checked', async () => (await count(b.metrics.txAdmission, {})) === 2 * txs.length);
    assert.equal(await count(b.metrics.txAdmission, { result: 'accepted' }), txs.length, 'each transaction admitted once');
    assert.equal(await count(b.metrics.txAdmission, { result: 'known' }), txs.length, 'the second copy was known');
    assert.deepEqual(b.penalties, []);
  });

  it('B without the direct protocol (an older node) still gets every batch: A falls back to gossip', async function () {
    const a = await peer('a', {});
    const b = await peer('b', null);
    await connect(a, b);
    const first = transfers(G, user, sink, 0n, 4);
    await submit(a, first);
    await waitUntil('b holds the first batch', () => holds(b, first));
    // Once A's stream to B failed to open, A no longer even tries B directly: gossip alone.
    await waitUntil("a's direct stream to b failed", () => !a.p2p.sendDirect(b.p2p.peerId, protocol(), new Uint8Array(0)));
    const second = transfers(G, user, sink, 4n, 4);
    await submit(a, second);
    await waitUntil('b holds the second batch', () => holds(b, second));
    assert.equal(await count(b.metrics.txAdmission, { source: 'gossip', result: 'accepted' }), first.length + second.length, 'all by gossip');
    assert.equal(await count(b.metrics.txAdmission, { source: 'direct' }), 0);
    assert.equal(await count(a.metrics.txBatchesSent, { path: 'gossip' }), 2, 'both batches were published');
    assert.equal(await count(a.metrics.txBatchesSent, { path: 'direct' }), 1, 'only the first was (vainly) tried directly');
    assert.equal(b.p2p.stats().direct?.[protocol()], undefined);
    assert.deepEqual(a.penalties, []);
  });

  it('a known committee peer not reached directly makes a batch go by gossip too', async function () {
    const a = await peer('a', { probationMs: 0 });
    const b = await peer('b', { probationMs: 0 });
    const c = await peer('c', { probationMs: 0 });
    await connect(a, b);
    // c is in the committee (a knows its peer id) but not connected to a: gossip may still reach it through b.
    a.gossip.expectedPeers = () => [a.p2p.peerId, b.p2p.peerId, c.p2p.peerId];
    const first = transfers(G, user, sink, 0n, 2);
    await submit(a, first);
    await waitUntil('b holds the first batch', () => holds(b, first));
    assert.equal(await count(a.metrics.txBatchesSent, { path: 'direct' }), 1);
    assert.equal(await count(a.metrics.txBatchesSent, { path: 'gossip' }), 1, 'published because c was not reached');
    // Every committee peer reached directly (ourselves aside): direct only.
    a.gossip.expectedPeers = () => [a.p2p.peerId, b.p2p.peerId];
    const second = transfers(G, user, sink, 2n, 2);
    await submit(a, second);
    await waitUntil('b holds the second batch', () => holds(b, second));
    assert.equal(await count(a.metrics.txBatchesSent, { path: 'direct' }), 2);
    assert.equal(await count(a.metrics.txBatchesSent, { path: 'gossip' }), 1);
  });

  it('an invalid batch sent directly is rejected and its sender penalised, as on the gossip path', async function () {
    const b = await peer('b', { probationMs: 0 });
    const evil = await createP2PNode({ peerKeyPath: join(dir, 'evil.key'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], maxMessageBytes: 4 * 1024 * 1024, log: () => undefined });
    others.push(evil);
    await evil.dial(b.p2p.multiaddrs()[0]!);
    const [real, honest] = transfers(G, user, sink, 0n, 2);
    const sig = real!.tx.signature.slice();
    sig[100]! ^= 1;
    const forged = openTx(encodeTx({ body: real!.tx.body, signature: sig }));
    // A valid transaction beside the forged one does not save the batch.
    assert.equal(evil.sendDirect(b.p2p.peerId, protocol(), encodeTxBatch([honest!.raw, forged.raw])), true);
    await waitUntil('b penalised the sender of the forged batch', () => b.penalties.some(([id, why]) => id === evil.peerId && why.includes(protocol())));
    assert.equal(b.mempool.get(forged.hashHex), undefined, 'the forged transaction was not admitted');
    assert.equal(await count(b.metrics.txAdmission, { source: 'direct', result: 'TX_BAD_SIGNATURE' }), 1);
    assert.equal(b.p2p.stats().direct?.[protocol()]?.rejected, 1);
    // Undecodable bytes are rejected before any signature check.
    assert.equal(evil.sendDirect(b.p2p.peerId, protocol(), new Uint8Array([0xff, 1, 2, 3])), true);
    await waitUntil('b rejected the malformed batch', () => b.p2p.stats().direct?.[protocol()]?.rejected === 2);
    assert.equal(await count(b.metrics.txAdmission, { source: 'direct', result: 'TX_MALFORMED' }), 1);
    assert.equal(b.penalties.filter(([id]) => id === evil.peerId).length, 2);
  });
});
