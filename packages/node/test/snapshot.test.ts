// Snapshot sync over real libp2p peers and real chains: honest servers with a certified history, a
// fresh client that joins at a certified height by downloading and verifying the state trie, and
// liars (in-test libp2p peers) that pass on an honest server's answers with one byte flipped.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesEqual } from '@qnexus/crypto';
import { QnexusError, Reader, Writer, type Genesis } from '@qnexus/types';
import { TrieImporter } from '@qnexus/state';
import { createP2PNode, topics, type P2PNode } from '@qnexus/p2p';
import {
  MAX_SNAPSHOT_PATH_NIBBLES,
  SnapshotService,
  decodePath,
  encodeChunkRequest,
  encodeOfferRequest,
  encodePath,
  type SnapshotOutcome,
} from '../src/snapshot.js';
import { capturingLogger, unitGenesis } from './helpers.js';
import { SyncPeers, addrOf, beaconKey, certifiedHistory, user, validators as vals, type SyncPeer } from './sync-peers.js';

const BLOCKS = 6;
const TXS = 2;
/** Wall clock: slot 30 (1 s slots), so a chain of BLOCKS blocks is plausible and the threshold (2) is below the slot clock. */
const AGO_MS = 30_000;
const LIMITS = { maxInboundStreams: 8, maxOutboundStreams: 8, maxRequestBytes: 4096, timeoutMs: 20_000 };
const FETCH = { timeoutMs: 10_000, maxResponseFrameBytes: 8 << 20, maxFrames: 10_000 };

async function counter(m: SyncPeer['metrics'], name: string): Promise<number> {
  const metric = m.registry.getSingleMetric(name);
  return metric ? ((await metric.get()).values[0]?.value ?? 0) : 0;
}

describe('node: snapshot sync (state sync) over real peers', function () {
  this.timeout(60_000);
  let dir: string;
  let G: Genesis;
  const extra: P2PNode[] = [];
  const log = capturingLogger('error').log;
  const peers = new SyncPeers(() => ({ dir, genesis: G }), log);
  const t = () => topics(G.chainId, 0);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'qnexus-snapshot-'));
    G = unitGenesis(vals, beaconKey, { chainId: 'unit-snapshot', genesisTime: Date.now() - AGO_MS, accounts: [{ address: addrOf(user), balance: 1_000_000n }] });
  });
  afterEach(async () => {
    await peers.stopAll();
    for (const p of extra.splice(0)) await p.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const service = (p: SyncPeer, chunkItems = 2): SnapshotService =>
    new SnapshotService(p.chain, p.p2p, t(), p.metrics, log, {
      importer: (root, height) => new TrieImporter(root, height),
      chunkItems,
      reporter: { out: { isTTY: false, write: () => true }, logEveryMs: 1e9 },
      findPeersMs: 1_000,
    });

  /** A server with BLOCKS certified blocks, serving snapshots. */
  async function server(name: string): Promise<SyncPeer> {
    const p = await peers.peer(name, { serve: true });
    await certifiedHistory(p, G, BLOCKS, TXS);
    await service(p).serve();
    return p;
  }

  /** A libp2p peer answering the snapshot protocol with what `honest` serves, each chunk's first item passed through `corrupt`. */
  async function liar(honest: SyncPeer, corrupt: (item: Uint8Array) => Uint8Array = flip): Promise<P2PNode & { corrupted: number }> {
    const p2p = await createP2PNode({ peerKeyPath: join(dir, `liar-${extra.length}.key`), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], maxMessageBytes: 4 * 1024 * 1024, log: () => undefined });
    extra.push(p2p);
    const l = Object.assign(p2p, { corrupted: 0 });
    await p2p.dial(honest.p2p.multiaddrs()[0]!);
    await p2p.handle(t().snapshotProtocol, LIMITS, async function* (req) {
      let first = req[0] === 2;
      for await (const frame of p2p.request(honest.p2p.peerId, t().snapshotProtocol, req, FETCH)) {
        if (first) {
          first = false;
          l.corrupted++;
          yield corrupt(frame);
        } else yield frame;
      }
    });
    return l;
  }

  function flip(item: Uint8Array): Uint8Array {
    const bad = item.slice();
    bad[bad.length - 1]! ^= 1;
    return bad;
  }

  async function ask(from: P2PNode, to: SyncPeer, req: Uint8Array): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    for await (const f of from.request(to.p2p.peerId, t().snapshotProtocol, req, FETCH)) out.push(f);
    return out;
  }

  it('joins at the certified height two servers offer, verified item by item; a liar’s corrupted chunk is penalised and asked again of an honest server; then block sync goes on', async () => {
    const a = await server('a');
    // b syncs a's blocks once (its sync loop does not run) and serves snapshots.
    const b = await peers.peer('b', { serve: false });
    await b.p2p.dial(a.p2p.multiaddrs()[0]!);
    await b.syncer.tick();
    assert.equal(b.chain.headHeight, BLOCKS);
    await service(b).serve();
    // a goes two blocks further: the height taken is one that two offers reach (a single peer cannot choose it).
    await certifiedHistory(a, G, 2, TXS, undefined, BLOCKS + 1);
    // The liar passes on b's answers: it offers b's height, so it is one of the servers asked for chunks.
    const l = await liar(b);
    const c = await peers.peer('c', { serve: false });
    for (const p of [a.p2p, b.p2p, l]) await c.p2p.dial(p.multiaddrs()[0]!);
    const sc = service(c);
    const out: SnapshotOutcome = await sc.join('snapshot', 2);
    assert.deepEqual(out, { adopted: BLOCKS });
    assert.equal(c.chain.headHeight, BLOCKS);
    assert.equal(c.chain.baseHeight, BLOCKS);
    assert.ok(bytesEqual(c.chain.headHash, b.chain.headHash));
    assert.ok(bytesEqual(c.chain.headStateRoot, b.chain.headStateRoot));
    assert.ok(l.corrupted >= 1, 'the liar was asked');
    // Only the liar is penalised: for each bad chunk it sent (at most the 2 it had in flight: it is asked nothing after the first).
    const penalties = c.penalties.filter(([, why]) => why.startsWith('snapshot'));
    assert.ok(penalties.length >= 1 && penalties.length <= 2, `${penalties.length} penalties`);
    assert.ok(penalties.every(([peer, why]) => peer === l.peerId && why === 'snapshot: BAD_SNAPSHOT'), JSON.stringify(penalties));
    assert.ok((await counter(c.metrics, 'qnexus_snapshot_bad_items_total')) >= 1);
    assert.equal(await counter(c.metrics, 'qnexus_snapshot_height'), BLOCKS);
    // Block sync from the snapshot's height: a's two newer blocks, the same chain and state.
    await c.syncer.tick();
    assert.equal(c.chain.headHeight, BLOCKS + 2);
    assert.ok(bytesEqual(c.chain.headHash, a.chain.headHash));
    assert.ok(bytesEqual(c.chain.headStateRoot, a.chain.headStateRoot));

    // c holds no block below its base: a block-sync client at genesis does not ask it (so does not
    // avoid it for having nothing), and a range starting below the base gets nothing, one from it on gets blocks.
    await c.syncer.start();
    const d = await peers.peer('d', { serve: false });
    await d.p2p.dial(c.p2p.multiaddrs()[0]!);
    await d.syncer.tick();
    assert.equal(d.chain.headHeight, 0);
    assert.equal(d.syncer.avoiding(c.p2p.peerId), false);
    const range = async (from: number): Promise<number> => {
      let n = 0;
      for await (const _ of d.p2p.request(c.p2p.peerId, t().blocksProtocol, new Writer(12).u64(from).u32(10).finish(), FETCH)) n++;
      return n;
    };
    assert.equal(await range(1), 0);
    assert.equal(await range(BLOCKS), 3);
    assert.equal(await range(BLOCKS + 1), 2);
  });

  it('stays on block sync with --sync blocks, on a chain younger than the threshold, and when no peer is that far ahead', async () => {
    const a = await server('a');
    const c = await peers.peer('c', { serve: false });
    await c.p2p.dial(a.p2p.multiaddrs()[0]!);
    const sc = service(c);
    assert.deepEqual(await sc.join('blocks', 2), { skipped: '--sync blocks' });
    assert.deepEqual(await sc.join('snapshot', 10_000), { skipped: 'the chain is shorter than the snapshot threshold' });
    assert.deepEqual(await sc.join('snapshot', BLOCKS), { skipped: 'no peer offers a snapshot above the threshold' });
    assert.equal(c.chain.headHeight, 0);
    assert.equal(await c.chain.store.snapshotInProgress(), null, 'nothing was dropped');
  });

  it('a server answers only what it holds, within its bounds, and penalises requests no honest peer sends', async () => {
    const a = await server('a');
    const asker = await createP2PNode({ peerKeyPath: join(dir, 'asker.key'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], maxMessageBytes: 4 * 1024 * 1024, log: () => undefined });
    extra.push(asker);
    await asker.dial(a.p2p.multiaddrs()[0]!);
    // The latest offer: the head's block and certificate.
    const [offer] = await ask(asker, a, encodeOfferRequest(0));
    const r = new Reader(offer!);
    assert.deepEqual([r.u64n(), r.u64n()], [BLOCKS, 0]);
    // Heights it does not hold: nothing.
    assert.equal((await ask(asker, a, encodeOfferRequest(BLOCKS + 5))).length, 0);
    assert.equal((await ask(asker, a, encodeChunkRequest(BLOCKS + 5, '', 4, 1 << 20))).length, 0);
    // A chunk: at most the items asked, the root first (its preimage hashes to the certified root: the importer accepts it).
    const items = await ask(asker, a, encodeChunkRequest(BLOCKS, '', 3, 1 << 20));
    assert.equal(items.length, 3);
    const importer = new TrieImporter(a.chain.headStateRoot, BLOCKS);
    importer.add('', items);
    assert.ok(importer.pending().length > 0 && !importer.done);
    // A path that is no subtree of the state: nothing.
    assert.equal((await ask(asker, a, encodeChunkRequest(BLOCKS, 'ffffffff', 4, 1 << 20))).length, 0);
    assert.equal(a.penalties.length, 0, 'none of that is penalised');
    // Requests no honest peer sends: an unknown kind, a path with non-zero padding, trailing bytes.
    const bad = [
      new Writer(9).u8(7).u64(1).finish(),
      new Writer(32).u8(2).u64(BLOCKS).u16(1).u8(0x1f).u32(4).u32(1024).finish(),
      new Uint8Array([...encodeChunkRequest(BLOCKS, '', 4, 1024), 0]),
    ];
    for (const req of bad) assert.equal((await ask(asker, a, req)).length, 0);
    assert.equal(a.penalties.filter(([p]) => p === asker.peerId).length, 3);
  });

  it('a snapshot cut short stays marked on disk; the next start is back at genesis and takes a snapshot from scratch', async () => {
    const a = await server('a');
    // The only peer of the first run lies in every chunk: the first attempt fails, no other peer is left.
    const l = await liar(a);
    let c = await peers.peer('c', { serve: false });
    await c.p2p.dial(l.multiaddrs()[0]!);
    await assert.rejects(service(c).join('snapshot', 2), (e: unknown) => e instanceof QnexusError && e.code === 'SNAPSHOT_UNAVAILABLE');
    assert.equal((await c.chain.store.snapshotInProgress())?.height, BLOCKS, 'the state was dropped for a snapshot of that height');
    // Restart (same data dirs) with an honest peer.
    await peers.stopAll();
    c = await peers.peer('c', { serve: false });
    assert.equal(c.chain.headHeight, 0);
    assert.equal(await c.chain.store.snapshotInProgress(), null);
    const a2 = await peers.peer('a', { serve: true });
    await service(a2).serve();
    await c.p2p.dial(a2.p2p.multiaddrs()[0]!);
    assert.deepEqual(await service(c).join('snapshot', 2), { adopted: BLOCKS });
    assert.ok(bytesEqual(c.chain.headStateRoot, a2.chain.headStateRoot));
    assert.ok(bytesEqual(c.chain.state.root(), a2.chain.headStateRoot));
  });

  it('a peer that refuses some chunks (a reset stream, as over its serving budget) is asked again after a rest, not dropped or penalised', async () => {
    const a = await server('a');
    // The client's only peer: it passes on a's answers but resets its first 3 chunk streams.
    const p2p = await createP2PNode({ peerKeyPath: join(dir, 'refuser.key'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], maxMessageBytes: 4 * 1024 * 1024, log: () => undefined });
    extra.push(p2p);
    await p2p.dial(a.p2p.multiaddrs()[0]!);
    let refused = 0;
    await p2p.handle(t().snapshotProtocol, LIMITS, async function* (req) {
      if (req[0] === 2 && refused < 3) {
        refused++;
        throw new Error('over the budget');
      }
      yield* p2p.request(a.p2p.peerId, t().snapshotProtocol, req, FETCH);
    });
    const c = await peers.peer('c', { serve: false });
    await c.p2p.dial(p2p.multiaddrs()[0]!);
    assert.deepEqual(await service(c).join('snapshot', 2), { adopted: BLOCKS });
    assert.equal(refused, 3);
    assert.ok(bytesEqual(c.chain.state.root(), a.chain.headStateRoot));
    assert.equal(c.penalties.length, 0);
  });

  it('paths: packed like node keys, bounded, canonical', () => {
    for (const p of ['', '0', 'a', '0f', 'abc', 'f'.repeat(MAX_SNAPSHOT_PATH_NIBBLES)]) {
      const bytes = encodePath(new Writer(8), p).finish();
      assert.equal(bytes.length, 2 + Math.ceil(p.length / 2));
      assert.equal(decodePath(new Reader(bytes)), p);
    }
    assert.throws(() => encodePath(new Writer(8), 'f'.repeat(MAX_SNAPSHOT_PATH_NIBBLES + 1)), /MALFORMED|bad snapshot path/);
    assert.throws(() => encodePath(new Writer(8), 'xyz'));
    assert.throws(() => decodePath(new Reader(new Writer(8).u16(MAX_SNAPSHOT_PATH_NIBBLES + 1).finish())), (e: unknown) => e instanceof QnexusError && e.code === 'MALFORMED');
    assert.throws(() => decodePath(new Reader(new Uint8Array([0, 1, 0x1f]))), (e: unknown) => e instanceof QnexusError && e.code === 'MALFORMED');
  });
});
