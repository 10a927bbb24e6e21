// The beacon process over real libp2p and HTTP: admission, a full 2PC round, restart recovery.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { addressFromPublicKey, getBackend, toHex } from '@qnexus/crypto';
import { createP2PNode, peerIdFromKeyFile, type P2PNode } from '@qnexus/p2p';
import { epochCommittees } from '@qnexus/state';
import {
  QnexusError,
  beaconTopics,
  decodeEpochAnnouncement,
  decodeRegistrySnapshot,
  encodeBeaconRequest,
  encodeEvidence,
  memberAddress,
  registrySnapshotSigningBytes,
  voteSigningBytes,
  type SignedRegistrySnapshot,
  type VoteBody,
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
  type XferInfo, decodeSystemMsg, isSystemKind } from '@qnexus/types';
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
  const snapshots: SignedRegistrySnapshot[] = [];
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
  /** /metrics is rendered at most once per interval: scrape (bounded) until the text matches every pattern. */
  const scrape = async (...res: RegExp[]) => {
    let text = '';
    for (let i = 0; i < 40 && !res.every((re) => re.test(text)); i++) {
      if (i) await new Promise((r) => setTimeout(r, 250));
      text = await (await fetch(`${beacon.info.apiUrl}/metrics`)).text();
    }
    for (const re of res) assert.match(text, re);
  };
  const connect = async (p: P2PNode) => {
    await p.dial(beacon.info.multiaddrs[0]!);
    await waitFor('connection to the beacon', () => p.connectedPeers().includes(beacon.info.peerId));
  };
  const newInfo = (over: Partial<XferInfo> = {}): XferInfo => ({
    module: 1,
    op: 1,
    denom: 'qfc',
    payload: new Uint8Array(0),
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
          if (!isSystemKind(env.tx.body.payload.kind)) continue;
          const p = decodeSystemMsg(env.tx.body.payload);
          received.push({
            shard,
            kind: p.prepare ? 'xprepare' : 'xdecision',
            ...(!p.prepare ? { commit: p.commit } : {}),
            id: toHex(p.xfer.id),
            signedByBeacon: backend.verify(g.beacon.publicKey, env.signBytes, env.tx.signature),
          });
        }
        yield encodeXAck({ ok: true, code: '', message: '' });
      });
    }
    peer.subscribe(beaconTopics(g.chainId).registry, {
      validate: () => 'accept',
      deliver: (data) => snapshots.push(decodeRegistrySnapshot(data)),
    });
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
    assert.deepEqual((await api('/v1/committee')).body, cm.body, 'the name shard nodes used is served too');
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

  it('re-announces an epoch every 4 slots, not every slot, also while it is the frozen next one', async () => {
    // Epoch 1 is frozen from slot 16 and starts at 32; epoch 2 is frozen at 48. Until then, epoch
    // 1's copies (distinct issued slots) came at its freeze and then every 4 slots (once it was
    // re-sent every slot while frozen).
    await waitFor('announcements of epoch 1 over 12 slots', () => {
      const slots = announcements.filter((a) => a.body.epoch === 1).map((a) => a.body.issuedSlot);
      return slots.length > 0 && Math.max(...slots) - Math.min(...slots) >= 12;
    });
    const issued = [...new Set(announcements.filter((a) => a.body.epoch === 1).map((a) => a.body.issuedSlot))].sort((a, b) => a - b);
    // Two copies may be closer: the freeze's own and the one at the epoch's start (slot 32).
    const start = g.epochLength;
    const gaps = issued.slice(2).map((x, i) => ({ at: x, gap: x - issued[i + 1]! })).filter((x) => x.at !== start);
    assert.ok(gaps.length >= 1, `issued slots ${issued.join(', ')}`);
    assert.ok(gaps.every((x) => x.gap >= 4), `copies other than the freeze's and the start's must be ≥ 4 slots apart: issued ${issued.join(', ')}`);
  });

  it('publishes signed announcements of the current and the frozen next epoch, and serves the stored bytes', async () => {
    await waitFor('announcements of epochs 0 and 1', () => [0, 1].every((e) => announcements.some((a) => a.body.epoch === e)));
    for (const epoch of [0, 1]) {
      const a = announcements.find((x) => x.body.epoch === epoch)!;
      assert.ok(backend.verify(g.beacon.publicKey, epochAnnouncementSigningBytes(a.body), a.signature));
      assert.equal(a.body.chainId, g.chainId);
      assert.equal(a.body.startSlot, epoch * g.epochLength);
      const cm = await api(`/v1/committees?epoch=${epoch}`);
      assert.equal(cm.status, 200);
      assert.equal(toHex(a.body.seed), cm.body.seed);
      assert.deepEqual(
        a.body.committees.map((c) => c.members.map((m) => `${memberAddress(m)}:${toHex(m.publicKey)}:${m.stake}`)),
        cm.body.committees.map((c: { members: { address: string; publicKey: string; stake: string }[] }) => c.members.map((m) => `${m.address}:${m.publicKey}:${m.stake}`)),
      );
    }
    assert.equal((await api('/v1/committees?epoch=99')).body.error.code, 'EPOCH_UNKNOWN');
    // epochFetch: the same stored bytes every time, nothing for an unknown epoch.
    const fetchEpoch = async (epoch: number) => {
      const req = new Uint8Array(8);
      new DataView(req.buffer).setBigUint64(0, BigInt(epoch));
      const frames: Uint8Array[] = [];
      for await (const f of peer.request(beacon.info.peerId, beaconTopics(g.chainId).epochFetch, req, { timeoutMs: 5000, maxResponseFrameBytes: 1 << 20, maxFrames: 1 })) frames.push(f);
      return frames;
    };
    const [one] = await fetchEpoch(1);
    assert.ok(one);
    const a1 = decodeEpochAnnouncement(one);
    assert.equal(a1.body.epoch, 1);
    assert.ok(backend.verify(g.beacon.publicKey, epochAnnouncementSigningBytes(a1.body), a1.signature));
    assert.deepEqual(await fetchEpoch(1), [one]);
    assert.deepEqual(await fetchEpoch(7), []);
    await waitFor('a registry snapshot', () => snapshots.length > 0);
    const snap = snapshots[0]!;
    assert.ok(backend.verify(g.beacon.publicKey, registrySnapshotSigningBytes(snap.body), snap.signature));
    assert.equal(snap.body.validators.length, 4);
    assert.equal(snap.body.totals.held, 400n);
  });

  it('serves the registry: validators, one validator, supply', async () => {
    const vs = await api('/v1/validators');
    assert.equal(vs.body.totals.held, '400');
    assert.ok(vs.body.validators.every((v: { status: string; stake: string }) => v.status === 'active' && v.stake === '100'));
    const one = await api(`/v1/validators/${addrOf(s0[0]!)}`);
    assert.equal(one.status, 200);
    assert.equal(one.body.publicKey, toHex(s0[0]!.publicKey));
    assert.equal(one.body.home, addrOf(s0[0]!));
    assert.equal(one.body.shard, 0);
    const none = await api(`/v1/validators/${addrOf(outsider)}`);
    assert.equal(none.status, 404);
    assert.equal(none.body.error.code, 'VALIDATOR_UNKNOWN');
    const sup = await api('/v1/supply');
    assert.deepEqual(sup.body, { genesisStake: '400', stakedIn: '0', feesIn: '0', minted: '0', slashed: '0', released: '0', held: '400' });
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
    await scrape(/qnexus_beacon_2pc_rejected_total\{reason="XS_UNAUTHORIZED"\} 2\n/, /qnexus_process_/);
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

  it('counts an empty report for participation and takes evidence over the stream and the API', async () => {
    const block = certifiedBlock(g, 0, 30, 12, [], s0);
    assert.ok((await ask(peer, report(g, s0[0]!, peer.peerId, block, []))).ok, 'a report with no items');
    const vote = (k: (typeof vals)[number], hash: string, height: number): { body: VoteBody; signature: Uint8Array } => {
      const body: VoteBody = { chainId: g.chainId, shard: 1, height, round: 3, step: 'prevote', blockHash: new Uint8Array(32).fill(hash.charCodeAt(0)), validator: addressFromPublicKey(k.publicKey) };
      return { body, signature: backend.sign(k.secretKey, voteSigningBytes(body)) };
    };
    const culprit = s1[0]!;
    // Invalid evidence over the stream: refused with its code.
    let ack = await ask(rogue, encodeBeaconRequest({ type: 'evidence', evidence: { first: vote(culprit, 'a', 5), second: vote(culprit, 'a', 5) } }));
    assert.equal(ack.code, 'EVIDENCE_INVALID');
    ack = await ask(rogue, encodeBeaconRequest({ type: 'evidence', evidence: { first: vote(culprit, 'a', 5), second: vote(culprit, 'b', 5) } }));
    assert.deepEqual(ack, { ok: true, code: '', message: 'slashed 10' });
    const ev = { first: vote(culprit, 'a', 6), second: vote(culprit, 'c', 6) };
    const post = (body: unknown) => api('/v1/evidence', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const dup = await post({ evidence: toHex(encodeEvidence(ev)) });
    assert.equal(dup.status, 200);
    assert.deepEqual(dup.body, { result: 'duplicate', validator: addrOf(culprit), slashed: '0' });
    assert.equal((await post({ evidence: toHex(encodeEvidence(ev)), extra: 1 })).body.error.code, 'UNKNOWN_FIELD');
    const bad = await post({ evidence: toHex(encodeEvidence({ first: vote(culprit, 'a', 7), second: vote(culprit, 'a', 7) })) });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'EVIDENCE_INVALID');
    const v = await api(`/v1/validators/${addrOf(culprit)}`);
    assert.equal(v.body.status, 'slashed');
    assert.equal(v.body.stake, '90');
    assert.equal((await api('/v1/supply')).body.slashed, '10');
    await scrape(/qnexus_beacon_slashings_total 1\n/, /qnexus_beacon_validators\{status="slashed"\} 1\n/, /qnexus_beacon_evidence_total\{result="EVIDENCE_INVALID"\} 2\n/);
  });

  it('never penalises whoever sends it evidence it refuses (evidence is only relayed), and names the bound peers in its snapshot', async () => {
    // The attack of issue 12: "votes" of an unregistered validator in a round of an epoch nobody knows.
    const bogus = (height: number, hash: string): { body: VoteBody; signature: Uint8Array } => {
      const body: VoteBody = { chainId: g.chainId, shard: 0, height, round: 2_000_000_000, step: 'prevote', blockHash: new Uint8Array(32).fill(hash.charCodeAt(0)), validator: addressFromPublicKey(outsider.publicKey) };
      return { body, signature: backend.sign(outsider.secretKey, voteSigningBytes(body)) };
    };
    for (let i = 0; i < 12; i++) {
      const ack = await ask(rogue, encodeBeaconRequest({ type: 'evidence', evidence: { first: bogus(100 + i, 'a'), second: bogus(100 + i, 'b') } }));
      assert.equal(ack.code, 'EVIDENCE_INVALID');
    }
    // Twelve refusals, more than the five offences that get a peer banned: still connected and served.
    assert.ok(rogue.connectedPeers().includes(beacon.info.peerId), 'still connected');
    assert.equal((await ask(rogue, hello(g, outsider, 0, rogue.peerId))).code, 'XS_UNAUTHORIZED');
    await scrape(/qnexus_beacon_2pc_rejected_total\{reason="EVIDENCE_INVALID"\} 1[0-9]/);

    // Every validator said hello through `peer` (earlier tests): the snapshot names it for each, for trust.
    await waitFor('a snapshot naming the bound peers', () => snapshots.some((x) => x.body.peers.length === vals.length));
    const snap = snapshots.find((x) => x.body.peers.length === vals.length)!;
    assert.ok(snap.body.peers.every((p) => p.peerId === peer.peerId));
    assert.deepEqual(snap.body.peers.map((p) => toHex(p.validator)).sort(), vals.map((k) => toHex(addressFromPublicKey(k.publicKey))).sort());
    await scrape(/qnexus_beacon_trusted_peers 1\n/);
  });

  it('admits, without penalty, validators restarted at an epoch boundary the stalled beacon had not reached', async () => {
    // Stall the beacon's process (ours too: same process) across an epoch boundary and the
    // freeze of the epoch after it, as a busy or swapped-out beacon would be. Its first
    // tick afterwards freezes what it missed before any request is read.
    const L = g.epochLength;
    const stallMs = (L + 2) * SLOT_MS;
    const end = Date.now() + stallMs;
    while (Date.now() < end) {
      /* busy: no timer or socket callback runs */
    }
    // A restarted validator: a fresh peer, each member of the current committees saying hello at once.
    const fresh = await createP2PNode({ peerKeyPath: join(dir, 'restarted.key'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], maxMessageBytes: 1024 * 1024, log: () => undefined });
    try {
      await connect(fresh);
      const epoch = Math.floor(slotAt(g, Date.now()) / L);
      const cm = (await api(`/v1/committees?epoch=${epoch}`)).body as { committees: { shard: number; members: { address: string }[] }[] };
      const members = cm.committees.flatMap((c) => c.members.map((m) => ({ shard: c.shard, k: vals.find((v) => addrOf(v) === m.address)! })));
      assert.ok(members.length >= 2);
      // Eight rounds: more than the five offences that would get a penalised peer banned.
      for (let i = 0; i < 8; i++) {
        for (const m of members) {
          const ack = await ask(fresh, hello(g, m.k, m.shard, fresh.peerId));
          assert.equal(ack.ok, true, `${ack.code}: ${ack.message}`);
        }
      }
      assert.ok(fresh.connectedPeers().includes(beacon.info.peerId), 'still connected');
    } finally {
      await fresh.stop();
    }
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
    assert.equal((await api(`/v1/validators/${addrOf(s1[0]!)}`)).body.status, 'slashed', 'the registry survives a restart');
    assert.equal((await api('/v1/supply')).body.slashed, '10');

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
