// The beacon process over real libp2p and HTTP: admission, a full 2PC round, restart recovery.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { getBackend, toHex } from '@qnexus/crypto';
import { createP2PNode, peerIdFromKeyFile, type P2PNode } from '@qnexus/p2p';
import { epochCommittees } from '@qnexus/state';
import {
  QnexusError,
  beaconTopics,
  decodeEpochAnnouncement,
  decodeTxBatch,
  epochAnnouncementSigningBytes,
  decodeXAck,
  encodeXAck,
  openTx,
  shardXProtocol,
  slotAt,
  type Genesis,
  type SignedEpochAnnouncement,
  type XAck,
  type XferInfo,
} from '@qnexus/types';
import { startBeacon, type BeaconConfig, type RunningBeacon } from '../src/index.js';
import { certifiedBlock, hello, report } from './fixtures.js';
import { addrOf, destRecord, key, sourceRecord, testGenesis, unlocked } from './helpers.js';

const SLOT_MS = 200;
const backend = getBackend('ml-dsa-44');
const randomBytes = (n: number) => new Uint8Array(nodeRandomBytes(n));

async function waitFor(what: string, cond: () => boolean, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Received {
  shard: number;
  kind: string;
  commit?: boolean;
  id: string;
  signedByBeacon: boolean;
}

describe('beacon: process', function () {
  this.timeout(60_000);
  const vals = [1, 2, 3, 4].map(key);
  const outsider = key(5);
  const beaconKey = key(9);
  let dir: string;
  let g: Genesis;
  let cfg: BeaconConfig;
  let beacon: RunningBeacon;
  let peer: P2PNode; // stands in for the shard validators (one peer, bound by members of both shards)
  let rogue: P2PNode;
  const received: Received[] = [];
  const announcements: SignedEpochAnnouncement[] = [];
  let s0: (typeof vals)[number][];
  let s1: (typeof vals)[number][];

  const api = async (path: string, init?: RequestInit) => {
    const res = await fetch(`${beacon.info.apiUrl}${path}`, init);
    return { status: res.status, body: (await res.json()) as any };
  };
  const ask = async (from: P2PNode, req: Uint8Array): Promise<XAck> => {
    let ack: XAck | undefined;
    for await (const f of from.request(beacon.info.peerId, beaconTopics(g.chainId).protocol, req, { timeoutMs: 5000, maxResponseFrameBytes: 4096, maxFrames: 1 })) ack = decodeXAck(f);
    assert.ok(ack, 'an answer');
    return ack;
  };
  const connect = async (p: P2PNode) => {
    await p.dial(beacon.info.multiaddrs[0]!);
    await waitFor('connection to the beacon', () => p.connectedPeers().includes(beacon.info.peerId));
  };
  const newInfo = (over: Partial<XferInfo> = {}): XferInfo => ({
    id: randomBytes(32),
    srcShard: 0,
    dstShard: 1,
    from: randomBytes(20),
    to: randomBytes(20),
    amount: 777n,
    deadlineSlot: slotAt(g, Date.now()) + 1000,
    ...over,
  });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qnexus-beacon-'));
    const dataDir = join(dir, 'beacon');
    const beaconPeerId = await peerIdFromKeyFile(join(dataDir, 'peer.key'));
    g = testGenesis({ validators: vals, beacon: beaconKey, beaconPeerId, genesisTime: Date.now() - 20 * SLOT_MS, slotMs: SLOT_MS });
    const committees = epochCommittees(g, 0);
    const inShard = (s: number) => vals.filter((k) => committees[s]!.validators.some((m) => m.address === addrOf(k)));
    s0 = inShard(0);
    s1 = inShard(1);
    cfg = {
      dataDir,
      genesis: g,
      beaconKey: unlocked(beaconKey),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: [],
      apiHost: '127.0.0.1',
      apiPort: 0,
      logFormat: 'json',
      logLevel: 'error',
      resendSlots: 2,
    };
    beacon = await startBeacon(cfg);
    const mk = (name: string) =>
      createP2PNode({ peerKeyPath: join(dir, `${name}.key`), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], maxMessageBytes: 1024 * 1024, log: () => undefined });
    peer = await mk('validators');
    rogue = await mk('rogue');
    for (const shard of [0, 1]) {
      await peer.handle(shardXProtocol(g.chainId, shard), { maxInboundStreams: 8, maxOutboundStreams: 8, maxRequestBytes: 1 << 20, timeoutMs: 5000 }, async function* (req) {
        for (const raw of decodeTxBatch(req)) {
          const env = openTx(raw);
          const p = env.tx.body.payload;
          if (p.kind !== 'xprepare' && p.kind !== 'xdecision') continue;
          received.push({
            shard,
            kind: p.kind,
            ...(p.kind === 'xdecision' ? { commit: p.commit } : {}),
            id: toHex(p.xfer.id),
            signedByBeacon: backend.verify(g.beacon.publicKey, env.signBytes, env.tx.signature),
          });
        }
        yield encodeXAck({ ok: true, code: '', message: '' });
      });
    }
    peer.subscribe(beaconTopics(g.chainId).epochs, {
      validate: () => 'accept',
      deliver: (data) => announcements.push(decodeEpochAnnouncement(data)),
    });
    await connect(peer);
    await connect(rogue);
  });

  after(async () => {
    await Promise.allSettled([peer?.stop(), rogue?.stop(), beacon?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes node-info.json and serves status, committees and validators', async () => {
    const info = JSON.parse(readFileSync(join(cfg.dataDir, 'node-info.json'), 'utf8'));
    assert.deepEqual(info, beacon.info);
    assert.equal(info.role, 'beacon');
    const st = await api('/v1/status');
    assert.equal(st.status, 200);
    assert.equal(st.body.role, 'beacon');
    assert.equal(st.body.chainId, g.chainId);
    assert.equal(st.body.peerId, g.beacon.peerId);
    assert.ok(st.body.slot >= 20);
    assert.equal(st.body.epoch, 0);
    assert.ok(st.body.peers >= 2);
    assert.deepEqual(st.body.xtransfers, { total: 0, undecided: 0, committed: 0, aborted: 0, applied: 0 });
    const cm = await api('/v1/committees');
    assert.equal(cm.body.committees.length, 2);
    assert.equal(cm.body.committees[0].totalStake, '200');
    assert.equal(cm.body.seed.length, 64);
    const vs = await api('/v1/validators');
    assert.equal(vs.body.validators.length, 4);
    assert.ok(vs.body.validators.every((v: { peerId: unknown; shard: number }) => v.peerId === null && (v.shard === 0 || v.shard === 1)));
    assert.equal((await api('/v1/nope')).body.error.code, 'NOT_FOUND');
    assert.equal((await api('/v1/status', { method: 'POST' })).status, 405);
    assert.equal((await api('/v1/xtransfers?limit=0')).status, 400);
    const unknown = await api(`/v1/xtransfers/${'ab'.repeat(32)}`);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'XS_UNKNOWN_TRANSFER');
  });

  it('publishes signed epoch announcements that match the computed committees', async () => {
    await waitFor('an epoch announcement', () => announcements.length > 0);
    const a = announcements[0]!;
    assert.ok(backend.verify(g.beacon.publicKey, epochAnnouncementSigningBytes(a.body), a.signature));
    assert.equal(a.body.chainId, g.chainId);
    assert.equal(a.body.epoch, 0);
    assert.equal(a.body.startSlot, 0);
    const cm = await api('/v1/committees');
    assert.equal(toHex(a.body.seed), cm.body.seed);
    assert.deepEqual(
      a.body.committees.map((c) => c.members.map((m) => `qn${toHex(m.address)}:${m.stake}`)),
      cm.body.committees.map((c: { members: { address: string; stake: string }[] }) => c.members.map((m) => `${m.address}:${m.stake}`)),
    );
  });

  it('refuses 2PC requests from peers that are not committee members', async () => {
    let ack = await ask(rogue, hello(g, outsider, 0, rogue.peerId));
    assert.equal(ack.ok, false);
    assert.equal(ack.code, 'XS_UNAUTHORIZED');
    // A member's binding replayed by another peer.
    ack = await ask(rogue, hello(g, s0[0]!, 0, peer.peerId));
    assert.equal(ack.code, 'XS_UNAUTHORIZED');
    ack = await ask(rogue, new Uint8Array([9, 9, 9]));
    assert.equal(ack.code, 'MALFORMED');
    const metrics = await (await fetch(`${beacon.info.apiUrl}/metrics`)).text();
    assert.match(metrics, /qnexus_beacon_2pc_rejected_total\{reason="XS_UNAUTHORIZED"\} 2/);
    assert.match(metrics, /qnexus_process_/);
  });

  it('runs a transfer through prepare, commit and apply', async () => {
    for (const k of s0) assert.ok((await ask(peer, hello(g, k, 0, peer.peerId))).ok);
    for (const k of s1) assert.ok((await ask(peer, hello(g, k, 1, peer.peerId))).ok);
    const x = newInfo();
    const id = toHex(x.id);
    const of = (kind: string, shard: number) => received.filter((r) => r.id === id && r.kind === kind && r.shard === shard);

    const src = certifiedBlock(g, 0, 7, 5, [sourceRecord(x, { preparedHeight: 7 })], s0);
    assert.deepEqual(await ask(peer, report(g, s0[0]!, peer.peerId, src, [id])), { ok: true, code: '', message: '' });
    await waitFor('the prepare request on the destination', () => of('xprepare', 1).length > 0);
    assert.ok(of('xprepare', 1)[0]!.signedByBeacon);
    assert.equal(of('xprepare', 0).length, 0);
    let t = await api(`/v1/xtransfers/${id}`);
    assert.equal(t.body.status, 'preparing');
    assert.deepEqual(t.body.phases, [{ phase: 'source-prepared', shard: 0, height: 7 }]);

    const dst = certifiedBlock(g, 1, 9, 6, [destRecord(x, { preparedHeight: 9 })], s1);
    assert.ok((await ask(peer, report(g, s1[1]!, peer.peerId, dst, [id]))).ok);
    await waitFor('the commit on both shards', () => of('xdecision', 0).length > 0 && of('xdecision', 1).length > 0);
    assert.ok([...of('xdecision', 0), ...of('xdecision', 1)].every((r) => r.commit === true && r.signedByBeacon));
    t = await api(`/v1/xtransfers/${id}`);
    assert.equal(t.body.status, 'committed');
    assert.equal(t.body.decision, 'commit');
    assert.equal(t.body.done, false);
    assert.equal(t.body.amount, '777');
    assert.match(t.body.from, /^qn[0-9a-f]{40}$/);

    const srcApplied = certifiedBlock(g, 0, 8, 7, [sourceRecord(x, { preparedHeight: 7, decision: 'commit', decidedHeight: 8 })], s0);
    const dstApplied = certifiedBlock(g, 1, 10, 7, [destRecord(x, { preparedHeight: 9, decision: 'commit', decidedHeight: 10 })], s1);
    const reqs = [report(g, s0[1]!, peer.peerId, srcApplied, [id]), report(g, s1[0]!, peer.peerId, dstApplied, [id])];
    for (const r of [...reqs, ...reqs]) assert.ok((await ask(peer, r)).ok, 'reports, and their replays, are acknowledged');
    t = await api(`/v1/xtransfers/${id}`);
    assert.equal(t.body.done, true);
    assert.deepEqual(
      t.body.phases.map((p: { phase: string }) => p.phase),
      ['source-prepared', 'destination-prepared', 'decided', 'source-applied', 'destination-applied'],
    );
    const list = await api('/v1/xtransfers?limit=1');
    assert.equal(list.body.xtransfers[0].id, id);
    const st = await api('/v1/status');
    assert.deepEqual(st.body.xtransfers, { total: 1, undecided: 0, committed: 1, aborted: 0, applied: 1 });
    const vs = await api('/v1/validators');
    assert.ok(vs.body.validators.every((v: { peerId: unknown }) => v.peerId === peer.peerId));
  });

  it('refuses a report whose proof does not verify', async () => {
    const x = newInfo();
    const block = certifiedBlock(g, 0, 11, 8, [sourceRecord(x)], s0);
    block.header = { ...block.header, stateRoot: new Uint8Array(32) }; // the certificate no longer matches
    const ack = await ask(peer, report(g, s0[0]!, peer.peerId, block, [toHex(x.id)]));
    assert.equal(ack.code, 'XS_BAD_PROOF');
    assert.equal((await api(`/v1/xtransfers/${toHex(x.id)}`)).status, 404);
  });

  it('after a restart, keeps its log and re-sends a decision not yet applied', async () => {
    const x = newInfo();
    const id = toHex(x.id);
    assert.ok((await ask(peer, report(g, s0[0]!, peer.peerId, certifiedBlock(g, 0, 20, 10, [sourceRecord(x)], s0), [id]))).ok);
    assert.ok((await ask(peer, report(g, s1[0]!, peer.peerId, certifiedBlock(g, 1, 20, 10, [destRecord(x, { prepare: 'refused', reason: 'TX_BAD_RECIPIENT' })], s1), [id]))).ok);
    await waitFor('the abort', () => received.some((r) => r.id === id && r.kind === 'xdecision' && r.commit === false));

    await beacon.stop();
    const badConfig = (e: unknown) => e instanceof QnexusError && e.code === 'BAD_CONFIG';
    await assert.rejects(startBeacon({ ...cfg, beaconKey: unlocked(outsider) }), badConfig, 'not the genesis beacon key');
    await assert.rejects(startBeacon({ ...cfg, dataDir: join(dir, 'elsewhere') }), badConfig, 'not the genesis beacon peer id');
    beacon = await startBeacon(cfg);
    const t = await api(`/v1/xtransfers/${id}`);
    assert.equal(t.body.status, 'aborted');
    assert.equal(t.body.phases[1].reason, 'TX_BAD_RECIPIENT');
    assert.equal((await api('/v1/status')).body.xtransfers.total, 2);

    // The shard peers come back and say hello: the logged abort is sent again, the very same entry.
    const before = received.filter((r) => r.id === id && r.kind === 'xdecision').length;
    await connect(peer);
    for (const k of s0) assert.ok((await ask(peer, hello(g, k, 0, peer.peerId))).ok);
    for (const k of s1) assert.ok((await ask(peer, hello(g, k, 1, peer.peerId))).ok);
    await waitFor('the re-sent abort on both shards', () => {
      const again = received.filter((r) => r.id === id && r.kind === 'xdecision').slice(before);
      return again.some((r) => r.shard === 0) && again.some((r) => r.shard === 1) && again.every((r) => r.commit === false);
    });
  });
});
