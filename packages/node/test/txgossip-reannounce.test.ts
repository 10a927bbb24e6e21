// Pending transactions reach every peer of the shard whatever gossip lost: a peer that joins the
// shard topic is sent an inventory of our pending ids, pending ids are announced again while they
// stay pending, and the receiver pulls what it lacks. A proposal's missing transactions are
// fetched from its proposer when the relaying peer lacks them. Real libp2p nodes on loopback.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeTx, encodeTxIdList, openTx, type Genesis } from '@qnexus/types';
import { createP2PNode, topics } from '@qnexus/p2p';
import type { Metrics } from '../src/metrics.js';
import { fetchProposalTxs, txInventoryProtocol, txPropagationMetrics, txsProtocolOptions, type TxReannounceOptions } from '../src/txgossip.js';
import { capturingLogger, unitGenesis } from './helpers.js';
import { addrOf, beaconKey, sink, transfers, user, validators } from './sync-peers.js';
import { connectTxPeers, holdsAll as holds, sleep, startTxPeer, stopTxPeer, submitTxs as submit, waitUntil, type TxPeer as Peer } from './tx-peers.js';

async function counter(m: Metrics, name: 'reannounced' | 'pulled' | 'proposalFetched', label: string): Promise<number> {
  const c = txPropagationMetrics(m.registry)[name];
  return (await c.get()).values.filter((v) => Object.values(v.labels).includes(label)).reduce((a, v) => a + v.value, 0);
}

describe('node: pending transactions reach everyone (tx inventories, pulls, proposal fetch)', function () {
  this.timeout(60_000);
  let dir: string;
  let G: Genesis;
  const log = capturingLogger('error').log;
  const started: Peer[] = [];
  const fast: TxReannounceOptions = { tickMs: 100, firstAfterMs: 400, maxIntervalMs: 800 };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'qnexus-txgossip-'));
    G = unitGenesis(validators, beaconKey, { chainId: 'unit-txgossip', genesisTime: Date.now(), accounts: [{ address: addrOf(user), balance: 1_000_000n }] });
  });
  afterEach(async () => {
    for (const p of started.splice(0)) await stopTxPeer(p);
    rmSync(dir, { recursive: true, force: true });
  });

  /** A shard node's transaction path: store, chain, mempool, tx gossip, the txs protocol and (unless `reannounce` is null) inventories. */
  async function peer(name: string, reannounce: TxReannounceOptions | null = fast): Promise<Peer> {
    const p = await startTxPeer(dir, G, name, log, { reannounce });
    started.push(p);
    return p;
  }

  const connect = (a: Peer, b: Peer) => connectTxPeers(G, a, b);

  it('a transaction admitted while disconnected reaches the peer once they connect, without re-submission', async function () {
    const a = await peer('a');
    const b = await peer('b');
    const txs = transfers(G, user, sink, 0n, 5);
    // Admitted and published with nobody to publish to: gossip alone never delivers these.
    await submit(a, txs);
    assert.equal(b.mempool.size, 0);
    await connect(a, b);
    await waitUntil('b holds every transaction a admitted', () => holds(b, txs));
    assert.ok((await counter(a.metrics, 'reannounced', 'connect')) >= txs.length, 'a announced them to the peer that joined');
    assert.equal(await counter(b.metrics, 'pulled', 'added'), txs.length, 'b pulled and admitted each once');
    assert.deepEqual(a.penalties, []);
    assert.deepEqual(b.penalties, []);
  });

  it('a transaction whose gossip was lost while connected is announced again while it is pending', async function () {
    const a = await peer('a');
    const b = await peer('b');
    await connect(a, b);
    // Past the tick that saw b join: what follows is the periodic re-announcement, not the connect one.
    await sleep(300);
    const txs = transfers(G, user, sink, 0n, 3);
    // In a's mempool, never gossiped (as if the message was dropped on the way).
    for (const e of txs) assert.equal(await a.mempool.admit(e), 'added');
    await waitUntil('b holds the transactions a never gossiped', () => holds(b, txs));
    assert.ok((await counter(a.metrics, 'reannounced', 'periodic')) >= txs.length);
    assert.deepEqual(b.penalties, []);
  });

  it('re-announcing transactions a peer already holds costs it no pull and is no offence, however often', async function () {
    const a = await peer('a');
    const b = await peer('b');
    await connect(a, b);
    const txs = transfers(G, user, sink, 0n, 20);
    await submit(a, txs);
    await waitUntil('b got them by gossip', () => holds(b, txs));
    // Both now re-announce the same 20 ids to each other every 400–800 ms.
    let sent = 0;
    await waitUntil('both re-announced them at least three times', () => {
      void Promise.all([counter(a.metrics, 'reannounced', 'periodic'), counter(b.metrics, 'reannounced', 'periodic')]).then(([x, y]) => (sent = Math.min(x, y)));
      return sent >= 3 * txs.length;
    });
    assert.equal(await counter(a.metrics, 'pulled', 'added') + (await counter(b.metrics, 'pulled', 'added')), 0, 'nothing was pulled');
    assert.equal(await counter(a.metrics, 'pulled', 'unavailable') + (await counter(b.metrics, 'pulled', 'unavailable')), 0);
    assert.deepEqual(a.penalties, []);
    assert.deepEqual(b.penalties, []);
    assert.ok(a.p2p.peerScore(b.p2p.peerId) >= 0 && b.p2p.peerScore(a.p2p.peerId) >= 0);
  });

  it('a peer is penalised for what it sent: a malformed inventory, or a forged transaction served for an id it announced', async function () {
    const b = await peer('b');
    // The attacker speaks the protocols by hand: it announces a real transaction's id and serves a forged copy (same id: the id excludes the signature).
    const evil = await createP2PNode({ peerKeyPath: join(dir, 'evil.key'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], maxMessageBytes: 4 * 1024 * 1024, log: () => undefined });
    try {
      const t = topics(G.chainId, 0);
      const real = transfers(G, user, sink, 0n, 1)[0]!;
      const sig = real.tx.signature.slice();
      sig[100]! ^= 1;
      const forged = openTx(encodeTx({ body: real.tx.body, signature: sig }));
      assert.equal(forged.hashHex, real.hashHex);
      await evil.handle(t.txsProtocol, txsProtocolOptions(G.maxBlockTxs), async function* () {
        yield forged.raw;
      });
      await evil.dial(b.p2p.multiaddrs()[0]!);
      const inv = txInventoryProtocol(t);
      const ask = async (req: Uint8Array): Promise<void> => {
        for await (const _ of evil.request(b.p2p.peerId, inv, req, { timeoutMs: 5_000, maxResponseFrameBytes: 8, maxFrames: 1 })) void _;
      };
      await ask(encodeTxIdList([real.hash]));
      await waitUntil('b pulled the forged copy and penalised its sender', () => b.penalties.some(([id, why]) => id === evil.peerId && /TX_BAD_SIGNATURE/.test(why)));
      assert.equal(b.mempool.get(real.hashHex), undefined, 'the forged copy was not admitted');
      await assert.rejects(ask(new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3])));
      await waitUntil('b penalised the malformed inventory', () => b.penalties.some(([id, why]) => id === evil.peerId && /malformed tx inventory/.test(why)));
      // The genuine transaction, announced by an honest peer later, is still pulled (a forged copy does not poison its id for long).
      const a = await peer('a');
      await submit(a, [real]);
      await connect(a, b);
      await waitUntil('b got the genuine transaction from the honest peer', () => b.mempool.get(real.hashHex) !== undefined);
      assert.ok(!b.penalties.some(([id]) => id === a.p2p.peerId), 'the honest announcer was not penalised');
    } finally {
      await evil.stop();
    }
  });

  it('a proposal’s missing transactions are fetched from the proposer when the relayer and other peers lack them', async function () {
    const x = await peer('x', null);
    const relayer = await peer('relayer', null);
    const proposer = await peer('proposer', null);
    const other = await peer('other', null);
    const txs = transfers(G, user, sink, 0n, 4);
    for (const e of txs) assert.equal(await proposer.mempool.admit(e), 'added');
    for (const p of [relayer, proposer, other]) await x.p2p.dial(p.p2p.multiaddrs()[0]!);
    const protocol = topics(G.chainId, 0).txsProtocol;
    const ids = txs.map((e) => e.hash);

    // Without the proposer's peer (the old behaviour when it is not among the peers asked), nobody has them.
    const without = await fetchProposalTxs(x.p2p, protocol, ids, { relayer: relayer.p2p.peerId, proposers: [], others: [other.p2p.peerId], deadline: Date.now() + 2_000 });
    assert.equal(without.got.size, 0);

    const r = await fetchProposalTxs(x.p2p, protocol, ids, { relayer: relayer.p2p.peerId, proposers: [proposer.p2p.peerId], others: [other.p2p.peerId], deadline: Date.now() + 2_000 });
    assert.deepEqual([...r.got.keys()].sort(), txs.map((e) => e.hashHex).sort());
    assert.equal(r.sources.get('proposer'), txs.length);
    assert.equal(r.sources.get('relayer'), undefined);
  });

  it('a relayer that stalls does not hold up the fetch from the proposer', async function () {
    const x = await peer('x', null);
    const proposer = await peer('proposer', null);
    const stall = await createP2PNode({ peerKeyPath: join(dir, 'stall.key'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], maxMessageBytes: 4 * 1024 * 1024, log: () => undefined });
    try {
      const protocol = topics(G.chainId, 0).txsProtocol;
      let stallEnded = false;
      await stall.handle(protocol, txsProtocolOptions(G.maxBlockTxs), async function* (_req, _peer, signal) {
        await new Promise((r) => signal.addEventListener('abort', r, { once: true }));
        stallEnded = true;
      });
      const txs = transfers(G, user, sink, 0n, 2);
      for (const e of txs) assert.equal(await proposer.mempool.admit(e), 'added');
      await x.p2p.dial(stall.multiaddrs()[0]!);
      await x.p2p.dial(proposer.p2p.multiaddrs()[0]!);
      const r = await fetchProposalTxs(x.p2p, protocol, txs.map((e) => e.hash), { relayer: stall.peerId, proposers: [proposer.p2p.peerId], others: [], deadline: Date.now() + 60_000 });
      assert.equal(r.got.size, txs.length);
      assert.equal(r.sources.get('proposer'), txs.length);
      assert.ok(!stallEnded, 'the fetch ended while the relayer was still stalling');
    } finally {
      await stall.stop();
    }
  });
});
