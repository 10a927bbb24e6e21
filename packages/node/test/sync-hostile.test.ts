// Sync against lying, flooding and stalling servers: a real libp2p peer that serves the status and blocks protocols itself
// (handlers registered with `p2p.handle`) next to an honest server. The client must refuse what the liar sends before any
// signature work, penalise it, keep its buffers bounded, take networkHeight only from verified blocks, and finish the sync
// from the honest peer.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressFromPublicKey, generateKeyPair } from '@qnexus/crypto';
import {
  QnexusError,
  Writer,
  decodeBlock,
  decodeCertificate,
  encodeBlock,
  encodeCertificate,
  slotAt,
  Reader,
  type Certificate,
  type Genesis,
} from '@qnexus/types';
import { createP2PNode, topics, type P2PNode } from '@qnexus/p2p';
import { candidateFromBlock } from '../src/chain.js';
import type { Metrics } from '../src/metrics.js';
import { syncFrameLimit } from '../src/sync.js';
import type { VerifyPool } from '../src/verify-pool.js';
import { announce, capturingLogger, unitGenesis } from './helpers.js';
import { SyncPeers, addrOf, beaconKey, certifiedHistory, fakePool, user, validators as vals, type SyncPeer } from './sync-peers.js';

const BLOCKS = 6;
const TXS = 2;
/** The block the liar tampers with (the ones before it are good). */
const BAD = 3;
/** Wall clock: slot 20 (1 s slots). */
const AGO_MS = 20_000;

/** A node of these tests: its pool, when it has one, is the counting stand-in. */
type Peer = SyncPeer & { pool: (VerifyPool & { asked: number }) | null };

/** What the liar does with a request; `served` counts the block requests the client made of it. */
interface Liar {
  p2p: P2PNode;
  served: number;
}

type Row = { height: number; block: Uint8Array; certificate: Uint8Array };
type Serve = (from: number, count: number, signal: AbortSignal) => AsyncIterable<Uint8Array>;

const frameOf = (block: Uint8Array, certificate: Uint8Array) => new Writer(block.length + certificate.length + 8).bytes(block).bytes(certificate).finish();

async function sigCount(m: Metrics, kind: string): Promise<number> {
  return (await m.sigVerify.get()).values.find((v) => v.labels.kind === kind)?.value ?? 0;
}

async function gauge(g: Metrics['syncTarget']): Promise<number> {
  return (await g.get()).values[0]?.value ?? 0;
}

describe('node: sync against hostile servers', function () {
  this.timeout(60_000);
  let dir: string;
  let G: Genesis;
  const liars: P2PNode[] = [];
  const log = capturingLogger('error').log;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'qnexus-sync-hostile-'));
    G = unitGenesis(vals, beaconKey, { chainId: 'unit-sync-hostile', genesisTime: Date.now() - AGO_MS, accounts: [{ address: addrOf(user), balance: 1_000_000n }] });
  });
  afterEach(async () => {
    // Clients first: a liar's response write is then blocked on a connection that is gone, and its
    // exchange must still end (at its timeout) so nothing outlives the test.
    await peers.stopAll();
    for (const l of liars.splice(0)) await l.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const peers = new SyncPeers(() => ({ dir, genesis: G }), log);
  /** A node; `serve` starts its syncer (handlers and the tick loop): the client's ticks are the test's own. */
  const peer = async (name: string, opts: { pool?: boolean; serve?: boolean } = {}): Promise<Peer> =>
    (await peers.peer(name, { pool: opts.pool ? fakePool() : null, serve: opts.serve ?? false })) as Peer;

  /** BLOCKS blocks of TXS transfers each, certified by 3 of the 4 validators. */
  const history = (p: Peer): Promise<void> => certifiedHistory(p, G, BLOCKS, TXS);

  /** A libp2p peer claiming `head` and serving ranges with `serve`, dialled by `client`. */
  async function liar(client: Peer, head: number | 'stall', serve: Serve): Promise<Liar> {
    const p2p = await createP2PNode({ peerKeyPath: join(dir, `liar-${liars.length}.key`), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], maxMessageBytes: 4 * 1024 * 1024, log: () => undefined });
    liars.push(p2p);
    const t = topics(G.chainId, 0);
    const l: Liar = { p2p, served: 0 };
    const limits = { maxInboundStreams: 16, maxOutboundStreams: 16, maxRequestBytes: 64, timeoutMs: 30_000 };
    await p2p.handle(t.statusProtocol, limits, async function* (_req, _peer, signal) {
      if (head === 'stall') await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      else yield new Writer(40).u64(head).fixed(new Uint8Array(32), 32).finish();
    });
    await p2p.handle(t.blocksProtocol, limits, (req, from, signal) => {
      if (from === client.p2p.peerId) l.served++;
      const r = new Reader(req);
      return serve(r.u64n(), r.u32(), signal);
    });
    await client.p2p.dial(p2p.multiaddrs()[0]!);
    return l;
  }

  /** The honest server's rows, as its store serves them. */
  const rowsOf = (p: Peer, from: number, count: number): Promise<Row[]> => p.store.certifiedRange(Math.max(1, from), Math.min(p.chain.headHeight, from + count - 1));

  /** Serves the honest rows, passing each through `tamper` (which may replace or drop the frame), with no byte bound. */
  const relay =
    (server: Peer, tamper: (row: Row) => Uint8Array | null = (row) => frameOf(row.block, row.certificate)): Serve =>
    async function* (from, count) {
      for (const row of await rowsOf(server, from, count)) {
        const frame = tamper(row);
        if (frame) yield frame;
      }
    };

  /** Client and honest server (BLOCKS blocks), connected. */
  async function pair(): Promise<{ server: Peer; client: Peer }> {
    const server = await peer('server', { serve: true });
    await history(server);
    const client = await peer('client', { pool: true });
    return { server, client };
  }

  /** The client reached the honest head, with each block's signatures verified exactly once (nothing for anything the liar sent). */
  async function syncedOnce(client: Peer, server: Peer): Promise<void> {
    assert.equal(client.chain.headHeight, BLOCKS);
    assert.deepEqual(client.chain.headHash, server.chain.headHash);
    assert.equal(await client.store.headHeight(), BLOCKS);
    assert.equal(client.pool!.asked, BLOCKS * (3 + TXS), 'every signature verified once, none of the refused frames');
    assert.equal(await sigCount(client.metrics, 'certificate'), BLOCKS * 3);
    assert.equal(client.engine.newestKnownHeight, BLOCKS);
  }

  const penalised = (client: Peer, liarId: string) => client.penalties.filter(([id]) => id === liarId).map(([, r]) => r);

  it('a head claimed beyond the slot clock is penalised and never chased; networkHeight comes from verified blocks only', async () => {
    const { server, client } = await pair();
    const far = await liar(client, 1_000_000, relay(server));
    await client.syncer.tick();
    const reasons = penalised(client, far.p2p.peerId);
    assert.equal(reasons.length, 1);
    assert.match(reasons[0]!, /^sync: IMPLAUSIBLE_HEAD 1000000 > 2\d$/);
    assert.equal(far.served, 0);
    assert.equal(client.chain.headHeight, 0);
    assert.equal(client.engine.newestKnownHeight, 0, 'a claim is not networkHeight');
    assert.equal(client.syncer.progress.target, 0);
    assert.ok(client.syncer.avoiding(far.p2p.peerId));
    // Avoided: the next tick does not even ask it; the honest peer is synced from, to its own head.
    await client.p2p.dial(server.p2p.multiaddrs()[0]!);
    await client.syncer.tick();
    assert.equal(far.served, 0);
    assert.equal(penalised(client, far.p2p.peerId).length, 1);
    await syncedOnce(client, server);
    assert.equal(client.syncer.progress.target, BLOCKS);
    assert.equal(await gauge(client.metrics.syncTarget), BLOCKS);
  });

  it('a lone plausible claim far above every other peer is synced to last, and running out of blocks there is not a lie', async () => {
    const { server, client } = await pair();
    const now = slotAt(G, Date.now());
    // Plausible by the clock, backed by no one: the honest head comes first.
    const lone = await liar(client, now - 1, relay(server));
    await client.p2p.dial(server.p2p.multiaddrs()[0]!);
    await client.syncer.tick();
    assert.equal(lone.served, 0, 'the backed head is synced first, from the honest peer');
    await syncedOnce(client, server);
    assert.equal(await gauge(client.metrics.syncTarget), BLOCKS);
    // Now only the lone claim is ahead: it is asked, has nothing more, and is left alone for a while.
    await client.syncer.tick();
    assert.equal(lone.served, 1);
    assert.equal(await gauge(client.metrics.syncTarget), now - 1);
    assert.equal(client.chain.headHeight, BLOCKS);
    assert.equal(client.engine.newestKnownHeight, BLOCKS, 'the claim never became networkHeight');
    assert.deepEqual(client.penalties, []);
    assert.ok(client.syncer.avoiding(lone.p2p.peerId));
  });

  it('a response beyond the byte bound is cut off there and penalised; the buffer stays within its budget', async () => {
    const { server, client } = await pair();
    const rows = await rowsOf(server, 1, BLOCKS);
    const frame = Math.max(...rows.map((r) => r.block.length + r.certificate.length + 8));
    // As if the protocol's bound were 2.5 frames: the honest server stops at 2, the liar streams all it has.
    server.syncer.serveLimits = { ...server.syncer.serveLimits, bytes: 2 * (frame + 8) };
    client.syncer.fetchLimits = { ...client.syncer.fetchLimits, responseBytes: Math.floor(2.5 * frame), bufferBytes: 10 * frame };
    const flood = await liar(client, BLOCKS + 1, relay(server));
    await client.p2p.dial(server.p2p.multiaddrs()[0]!);
    await client.syncer.tick();
    assert.equal(flood.served, 1);
    assert.deepEqual(penalised(client, flood.p2p.peerId), ['sync: TOO_MANY_BYTES']);
    await syncedOnce(client, server);
    const { bytes, peakBytes } = client.syncer.bufferStats;
    assert.equal(bytes, 0, 'nothing is held after the sync');
    assert.ok(peakBytes > 0 && peakBytes <= 10 * frame, `peak ${peakBytes} of ${10 * frame}`);
    assert.deepEqual(server.penalties, []);
  });

  for (const kind of ['oversized', 'endless junk'] as const) {
    it(`a server streaming ${kind} frames is cut off at the first one and penalised; the honest peer finishes the sync`, async () => {
      const { server, client } = await pair();
      const limit = syncFrameLimit(2420);
      let written = 0;
      const flood = await liar(client, BLOCKS + 1, async function* (_from, _count, signal) {
        // Just above the largest frame an honest server sends (a block at the cap and a whole committee's certificate).
        const size = kind === 'oversized' ? limit + 64 * 1024 : 1024 * 1024;
        for (let i = 0; i < 64 && !signal.aborted; i++) {
          written++;
          yield new Uint8Array(size).fill(0xee);
        }
      });
      await client.p2p.dial(server.p2p.multiaddrs()[0]!);
      await client.syncer.tick();
      assert.deepEqual(penalised(client, flood.p2p.peerId), [kind === 'oversized' ? 'sync: FRAME_TOO_LARGE' : 'sync: MALFORMED']);
      assert.ok(written < 64, `the liar wrote ${written} frames before the stream was reset`);
      // At most one junk frame was taken in, and it was never buffered: the budget only ever held reservations.
      assert.ok(client.syncer.bufferStats.peakBytes <= client.syncer.fetchLimits.bufferBytes);
      await syncedOnce(client, server);
    });
  }

  const tampers: [string, RegExp, (row: Row) => Uint8Array | null][] = [
    ['a block that does not link to the one before it', /^sync: BAD_BLOCK$/, (row) => {
      const block = decodeBlock(row.block);
      block.header.parentHash[0]! ^= 1;
      return frameOf(encodeBlock(block), row.certificate);
    }],
    ['a gap in the heights', /^sync: BAD_BLOCK$/, () => null],
    ['a certificate with 1,024 copies of one vote', /^sync: BAD_CERTIFICATE$/, (row) => {
      const cert = decodeCertificate(row.certificate);
      return frameOf(row.block, encodeCertificate({ ...cert, votes: Array.from({ length: 1024 }, () => cert.votes[0]!) }));
    }],
    ['a certificate with a duplicate signer', /^sync: BAD_CERTIFICATE$/, (row) => {
      const cert = decodeCertificate(row.certificate);
      return frameOf(row.block, encodeCertificate({ ...cert, votes: [cert.votes[0]!, cert.votes[0]!, cert.votes[1]!] }));
    }],
    ['a certificate round beyond the current slot', /^sync: BAD_CERTIFICATE$/, (row) => {
      const cert = decodeCertificate(row.certificate);
      return frameOf(row.block, encodeCertificate({ ...cert, round: slotAt(G, Date.now()) + 1000 }));
    }],
  ];
  for (const [what, reason, tamper] of tampers) {
    it(`refuses ${what} on arrival, with no signature verified for it, keeps the good blocks before it and finishes from the honest peer`, async () => {
      const { server, client } = await pair();
      const bad = await liar(client, BLOCKS + 1, relay(server, (row) => (row.height === BAD ? tamper(row) : frameOf(row.block, row.certificate))));
      await client.p2p.dial(server.p2p.multiaddrs()[0]!);
      await client.syncer.tick();
      const reasons = penalised(client, bad.p2p.peerId);
      assert.equal(reasons.length, 1, reasons.join());
      assert.match(reasons[0]!, reason);
      assert.equal(bad.served, 1);
      // The liar's blocks before the bad one were imported from it; the honest peer served the rest. Every
      // signature was verified once: the refused frame cost none.
      await syncedOnce(client, server);
      assert.deepEqual(server.penalties, []);
    });
  }

  for (const what of ['status', 'blocks'] as const) {
    it(`a server that accepts a ${what} request and stalls is STALLED quickly and penalised, and the node syncs from the honest peer`, async () => {
      const { server, client } = await pair();
      client.syncer.fetchLimits = { ...client.syncer.fetchLimits, idleMs: 500 };
      const stall = await liar(client, what === 'status' ? 'stall' : BLOCKS + 1, async function* (_from, _count, signal) {
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      });
      await client.p2p.dial(server.p2p.multiaddrs()[0]!);
      await client.syncer.tick();
      assert.deepEqual(penalised(client, stall.p2p.peerId), ['sync: STALLED']);
      assert.equal(stall.served, what === 'blocks' ? 1 : 0);
      await syncedOnce(client, server);
      assert.ok(client.syncer.avoiding(stall.p2p.peerId));
      const failures = (await client.metrics.syncFailures.get()).values;
      assert.deepEqual(failures.map((v) => [v.labels.reason, v.value]), [['STALLED', 1]]);
    });
  }

  it('a server that cannot provide the epoch announcement of a block it served is penalised (EPOCH_UNKNOWN)', async () => {
    // Epochs of 4 slots: blocks 4..6 are certified in epoch 1, whose announcement the client lacks and the liar cannot serve.
    G = unitGenesis(vals, beaconKey, { chainId: 'unit-sync-hostile', genesisTime: Date.now() - AGO_MS, epochLength: 4, accounts: [{ address: addrOf(user), balance: 1_000_000n }] });
    const server = await peer('server', { serve: true });
    await server.chain.epochs.add(announce(G, beaconKey, 1, [vals]), 'test');
    await history(server);
    const client = await peer('client', { pool: true });
    const relay1 = await liar(client, BLOCKS + 1, relay(server));
    await client.syncer.tick();
    assert.deepEqual(penalised(client, relay1.p2p.peerId), ['sync: EPOCH_UNKNOWN']);
    assert.equal(client.chain.headHeight, 3, 'the epoch-0 blocks it served are kept');
    assert.equal(client.chain.committeeFor(1), undefined);
    // The honest server has the announcement: the client gets it there and finishes.
    await client.p2p.dial(server.p2p.multiaddrs()[0]!);
    await client.syncer.tick();
    await syncedOnce(client, server);
    assert.ok(client.chain.committeeFor(1));
  });

  it('pre-verification refuses a structurally bad certificate before verifying any signature', async () => {
    const server = await peer('server');
    await history(server);
    const client = await peer('client', { pool: true });
    const [row] = await rowsOf(server, 1, 1);
    const block = decodeBlock(row!.block);
    const c = candidateFromBlock(block, row!.block);
    const cert = decodeCertificate(row!.certificate);
    const refused = async (bad: Certificate, re: RegExp) =>
      assert.rejects(client.chain.preverifyCertified(c, bad), (e: unknown) => e instanceof QnexusError && e.code === 'BAD_CERTIFICATE' && re.test(e.message));
    await refused({ ...cert, votes: Array.from({ length: 1024 }, () => cert.votes[0]!) }, /1024 votes; the committee has 4 members/);
    await refused({ ...cert, votes: [cert.votes[0]!, cert.votes[1]!, cert.votes[0]!] }, /duplicate/);
    await refused({ ...cert, votes: cert.votes.slice(0, 2) }, /more than 2\/3/);
    await refused({ ...cert, round: slotAt(G, Date.now()) + 1000 }, /beyond the current slot/);
    const outsider = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(99));
    await refused({ ...cert, votes: [...cert.votes.slice(0, 2), { validator: addressFromPublicKey(outsider.publicKey), signature: cert.votes[2]!.signature }] }, /non-member/);
    assert.equal(client.pool!.asked, 0);
    assert.equal(await sigCount(client.metrics, 'certificate'), 0);
    // The genuine one verifies, and carries a quorum.
    const v = await client.chain.preverifyCertified(c, cert);
    assert.equal(v.quorum, true);
    assert.equal(client.pool!.asked, 3 + TXS);
  });
});
