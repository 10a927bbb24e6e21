import type { Server } from 'node:http';
import { bytesEqual, formatAddress, fromHex, homeShard, isAddressString, isHex, parseAddress, toHex } from '@qnexus/crypto';
import { MODULE_IDS, NATIVE_DENOM, ProvenReader, StateView, bankAccountKeys, moduleKey, queryProofKeys, runProven, verifyVoteEvidence, type EpochCommittees, type StateProof } from '@qnexus/state';
import { app } from '@qnexus/app';
import {
  QnexusError,
  blockHash,
  decodeBlock,
  decodeCertificate,
  encodeHeader,
  genesisSupply,
  epochOf,
  isErrorCode,
  openTx,
  slotAt,
  stakingTotalsToJson,
  validatorInfoToJson,
  MAX_TX_BYTES,
  xferRecordPhase,
  type Block,
  type ValidatorInfo,
  type ValidatorInfoJson,
  type VoteEvidence,
  type XferRecord,
  type TxEnvelope,
} from '@qnexus/types';
import type { P2PNode } from '@qnexus/p2p';
import type { Chain } from './chain.js';
import type { Engine } from './engine.js';
import type { Mempool } from './mempool.js';
import type { Metrics } from './metrics.js';
import type { Syncer } from './sync.js';
import type { TxGossip } from './txgossip.js';
import type { LoadMonitor } from './load.js';
import type { TxVerifier } from './verifier.js';
import type { XShard } from './xshard.js';
import type { AdmissionJournal } from './mempool-journal.js';
import { FaucetRequests } from './faucet.js';
import { HttpHeaderError, clientAddress, implement, moduleRoutes, parseListLimit, readBody, readEvidenceBody, startJsonApi, type ApiGuard, type JsonRoute, type Logger } from '@qnexus/runtime';
import { moduleQueryRoute, nodeRoutes as R, type node as N, type Static } from '@qnexus/api';
import type { StateMachine } from '@qnexus/state';

type XTransferJson = Static<typeof N.XTransfer>;
import { explorerPage } from './explorer.js';
import { explorerIndexOf, explorerRoutes } from './explorer-routes.js';
import type { RecentXfers } from './explorer-index.js';

export const API_VERSION = '0.1.0';

/** What the HTTP API reads from (and acts through). */
export interface ApiContext {
  chain: Chain;
  engine: Engine;
  mempool: Mempool;
  p2p: P2PNode;
  syncer: Syncer;
  txGossip: TxGossip;
  load: LoadMonitor;
  metrics: Metrics;
  log: Logger;
  role: 'validator' | 'full';
  validator: string | null;
  xshard: XShard;
  /** Signature checks off the event loop (evidence submitted over the API). */
  verifier: TxVerifier;
  /** Per-client rate limit and the admin token; without one (embedded tests) nothing is limited and /v1/admin/ does not exist. */
  guard?: ApiGuard;
  /** The newest transfer records (`GET /v1/xtransfers`): seeded from the state at start, then fed by every commit. */
  recentXfers: RecentXfers;
  /**
   * Where `POST /v1/txs` makes each admission durable before its 202 (mempool-journal.ts).
   * Absent (`--admission-journal false`, embedded tests): a 202 promises nothing past a crash.
   */
  journal?: AdmissionJournal | null;
}
type Ctx = ApiContext;

/** One faucet front per API context (its per-IP limiter and the requests it made). */
const faucets = new WeakMap<Ctx, FaucetRequests>();
function faucetOf(c: Ctx): FaucetRequests {
  let f = faucets.get(c);
  if (!f) faucets.set(c, (f = new FaucetRequests(c.chain, c.chain.app, (h) => c.mempool.has(h))));
  return f;
}

/** `limit` of the list endpoints (`GET /v1/blocks`, `GET /v1/xtransfers`): default and bound. */
export const DEFAULT_LIST_LIMIT = 20;
export const MAX_LIST_LIMIT = 100;

/** One line of `GET /v1/blocks`. Every stored block is final (it is stored with its finality certificate; block 0 is genesis). */
async function blockSummary(c: Ctx, height: number) {
  const [raw, certRaw] = await Promise.all([c.chain.store.blockAtHeight(height), height > 0 ? c.chain.store.certificate(height) : undefined]);
  if (!raw) return null;
  const h = decodeBlock(raw).header;
  const cert = certRaw ? decodeCertificate(certRaw) : null;
  return {
    height: h.height,
    hash: toHex(blockHash(h)),
    slot: h.slot,
    proposer: h.height === 0 ? null : formatAddress(h.proposer),
    txCount: h.txCount,
    finalized: true,
    round: cert?.round ?? null,
    signers: cert?.votes.length ?? 0,
  };
}


function notFound(what: string): never {
  throw new QnexusError('NOT_FOUND', `${what} not found`);
}


function blockJson(b: Block, certRaw: Uint8Array | undefined) {
  const h = b.header;
  const cert = certRaw ? decodeCertificate(certRaw) : null;
  return {
    hash: toHex(blockHash(h)),
    height: h.height,
    slot: h.slot,
    shard: h.shard,
    chainId: h.chainId,
    parentHash: toHex(h.parentHash),
    stateRoot: toHex(h.stateRoot),
    txRoot: toHex(h.txRoot),
    proposer: h.height === 0 ? null : formatAddress(h.proposer),
    txCount: h.txCount,
    txs: b.txs.map((t) => openTx(t).hashHex),
    certificate: cert && {
      round: cert.round,
      blockHash: toHex(cert.blockHash),
      votes: cert.votes.map((v) => ({ validator: formatAddress(v.validator), signature: toHex(v.signature) })),
    },
  };
}

/** A transaction's API view: kind, fee, nonce, raw, sender, then its message's fields (each module defines its own). */
function txJson(env: TxEnvelope) {
  // `raw` is the exact wire encoding, so anyone can re-verify or relay it (a beacon entry can be relayed by anyone; replays are refused by state).
  return app.txJson(env) as { hash: string; kind: string; fee: string; nonce: string; raw: string; from: string; to: string; amount: string };
}

/**
 * The transfer's outcome once finalized facts on this shard fix it (the deadline rule,
 * docs/ARCHITECTURE.md): an applied decision, or on the destination its recorded answer to
 * the prepare request (accepted → commit, refused → abort; the beacon decides from exactly
 * that answer). Null while it is still open here; a passed deadline alone is not an outcome.
 */
export function xferOutcome(rec: XferRecord): 'commit' | 'abort' | null {
  if (rec.decision !== 'none') return rec.decision;
  if (rec.role === 'destination' && rec.prepare !== 'none') return rec.prepare === 'accepted' ? 'commit' : 'abort';
  return null;
}

/** A shard's view of one cross-shard transfer, from its state record (or its mempool). */
export function xferJson(rec: XferRecord, shard: number): XTransferJson {
  const x = rec.info;
  const phases: XTransferJson['phases'] = [];
  if (rec.role === 'source') {
    phases.push({ phase: 'source-prepared', shard, height: rec.preparedHeight });
    if (rec.decision !== 'none') phases.push({ phase: 'source-applied', shard, height: rec.decidedHeight, decision: rec.decision });
  } else {
    if (rec.prepare !== 'none') {
      phases.push({ phase: rec.prepare === 'accepted' ? 'destination-prepared' : 'destination-refused', shard, height: rec.preparedHeight, ...(rec.reason ? { reason: rec.reason } : {}) });
    }
    if (rec.decision !== 'none') phases.push({ phase: 'destination-applied', shard, height: rec.decidedHeight, decision: rec.decision });
  }
  return {
    id: toHex(x.id),
    // The op's name: transfer (shard → shard), stake/unstake/fees (→ the beacon, shard number BEACON_SHARD), release (beacon → here).
    kind: app.xferKindName(x),
    from: formatAddress(x.from),
    to: formatAddress(x.to),
    amount: x.amount.toString(),
    sourceShard: x.srcShard,
    destinationShard: x.dstShard,
    deadlineSlot: x.deadlineSlot,
    role: rec.role,
    status: xferRecordPhase(rec) as XTransferJson['status'],
    decision: rec.decision === 'none' ? null : rec.decision,
    outcome: xferOutcome(rec),
    phases,
  };
}

/** Unknown registry fields are null in the committee fallback (before the first beacon snapshot). */
type OrNull<T, K extends keyof T> = Omit<T, K> & { [P in K]: T[P] | null };

/**
 * A validator as `GET /v1/validators` shows it: the beacon registry's entry,
 * plus its public key when the epoch book knows it. Built from the committee
 * alone (source 'committee'), the registry-only fields are null.
 */
export type NodeValidatorJson = OrNull<ValidatorInfoJson, 'home' | 'rewards' | 'slashed' | 'participation' | 'lifetime' | 'activationEpoch'> & {
  publicKey: string | null;
};

function currentEpoch(c: Ctx): number {
  return c.chain.currentEpoch();
}

/** A validator's place this epoch: in this shard's committee, another shard's (restart with that --shard), or none. */
function validatorCommittee(c: Ctx): { inCommittee: boolean; assignedShard: number | null } | null {
  if (!c.validator) return null;
  const shard = c.chain.shardOfMember(currentEpoch(c), c.validator);
  return { inCommittee: shard === c.chain.shard, assignedShard: shard ?? null };
}

/** The committees of the current epoch, or of the newest earlier one the epoch book holds (its announcement may be late). */
function currentCommittees(c: Ctx): EpochCommittees | undefined {
  const now = currentEpoch(c);
  return c.chain.epochs.get(now) ?? c.chain.epochs.get(Math.min(now, c.chain.epochs.latestEpoch()));
}

/** Public keys of every member of the given epochs' committees (address → hex key). */
function knownKeys(c: Ctx, epochs: number[]): Map<string, string> {
  const keys = new Map<string, string>();
  for (const e of epochs) {
    const ec = c.chain.epochs.get(e);
    if (!ec) continue;
    for (const sh of ec.shards) for (const [addr, m] of sh.members) if (!keys.has(addr)) keys.set(addr, toHex(m.publicKey));
  }
  return keys;
}

function fromRegistry(v: ValidatorInfo, keys: Map<string, string>): NodeValidatorJson {
  const j = validatorInfoToJson(v);
  return { ...j, publicKey: keys.get(j.address) ?? null };
}

/** What the committees say of their members when no registry snapshot has arrived yet. */
function fromCommittees(c: Ctx, ec: EpochCommittees): NodeValidatorJson[] {
  // Genesis validators are bonded from epoch 0 and are their own home; later ones are known only to the registry.
  const genesisValidators = new Set(c.chain.genesis.validators.map((v) => v.address));
  const out: NodeValidatorJson[] = [];
  ec.shards.forEach((sh, shard) => {
    for (const v of sh.committee.validators) {
      const g = genesisValidators.has(v.address);
      out.push({
        address: v.address,
        home: g ? v.address : null,
        stake: v.stake.toString(),
        status: 'active',
        shard,
        activationEpoch: g ? 0 : null,
        exitEpoch: null,
        withdrawableEpoch: null,
        rewards: null,
        slashed: null,
        participation: null,
        lifetime: null,
        publicKey: sh.members.get(v.address) ? toHex(sh.members.get(v.address)!.publicKey) : null,
      });
    }
  });
  return out.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
}

function thisShardCommittee(c: Ctx, ec: EpochCommittees | undefined): { address: string; stake: string }[] {
  const sh = ec?.shards[c.chain.shard];
  return sh ? sh.committee.validators.map((v) => ({ address: v.address, stake: v.stake.toString() })) : [];
}

function committeesJson(c: Ctx, ec: EpochCommittees) {
  const shards = ec.shards.map((sh, shard) => ({
    shard,
    members: sh.committee.validators.map((v) => ({ address: v.address, publicKey: sh.members.get(v.address) ? toHex(sh.members.get(v.address)!.publicKey) : null, stake: v.stake.toString() })),
    totalStake: sh.committee.totalStake.toString(),
  }));
  const mine = shards[c.chain.shard];
  const signed = ec.epoch === 0 ? undefined : c.chain.epochs.announcement(ec.epoch);
  return {
    epoch: ec.epoch,
    startSlot: ec.epoch * c.chain.genesis.epochLength,
    seed: toHex(ec.seed),
    shard: c.chain.shard,
    members: mine?.members ?? [],
    totalStake: mine?.totalStake ?? '0',
    shards,
    // Epoch 0 is the genesis assignment; later epochs come from the beacon's signed announcement (verified on arrival).
    source: ec.epoch === 0 ? ('genesis' as const) : ('beacon' as const),
    announcement: signed
      ? { epoch: signed.body.epoch, startSlot: signed.body.startSlot, issuedSlot: signed.body.issuedSlot, signature: toHex(signed.signature), verified: true as const, raw: toHex(c.chain.epochs.signed(ec.epoch)!) }
      : null,
  };
}

/**
 * The beacon's verdict as `POST /v1/evidence` on the beacon shows it. Its ack carries the result in
 * the message: "slashed" or "duplicate", optionally followed by the amount slashed.
 */
function evidenceResult(message: string, validator: string): { result: string; validator: string; slashed: string | null } {
  const m = /^(slashed|duplicate)(?:\s+([0-9]+))?$/.exec(message.trim());
  if (!m) return { result: message || 'accepted', validator, slashed: null };
  return { result: m[1]!, validator, slashed: m[2] ?? (m[1] === 'duplicate' ? '0' : null) };
}


/**
 * Rounds are slots: a vote of a round beyond the current slot plus this lead (clock skew
 * between nodes) cannot have been signed by an honest clock yet.
 */
export const EVIDENCE_ROUND_LEAD_SLOTS = 2;

/**
 * Everything the beacon's registry checks (`Registry.submitEvidence`), so that what we relay
 * it cannot refuse as invalid, cheapest first: a plausible round, an epoch our epoch book
 * knows (EPOCH_UNKNOWN otherwise: we cannot check it, so it is not relayed; the announcement
 * is fetched meanwhile), the validator a member of that shard's committee in it (the beacon
 * announced those committees: the same members and keys as its registry), then the rules of
 * `verifyVoteEvidence`, whose two signature checks run on the verify pool: a dry run (every
 * signature taken as valid) applies the structural rules and collects the checks it needs;
 * they run off the event loop; the real run then reads their verdicts.
 * Throws QnexusError EVIDENCE_INVALID or EPOCH_UNKNOWN.
 */
async function checkEvidence(c: Ctx, e: VoteEvidence): Promise<void> {
  const g = c.chain.genesis;
  const vb = e.first.body;
  const validator = formatAddress(vb.validator);
  const slot = slotAt(g, Date.now());
  if (vb.round > slot + EVIDENCE_ROUND_LEAD_SLOTS) throw new QnexusError('EVIDENCE_INVALID', `votes of round ${vb.round} cannot exist yet (current slot ${slot})`);
  const epoch = epochOf(g, vb.round);
  const ec = c.chain.epochs.get(epoch);
  if (!ec) {
    void c.chain.epochs.ensure(epoch);
    throw new QnexusError('EPOCH_UNKNOWN', `the committees of epoch ${epoch} are not known here yet, so evidence of round ${vb.round} cannot be checked; retry later`);
  }
  const m = ec.shards[vb.shard]?.members.get(validator);
  if (!m) throw new QnexusError('EVIDENCE_INVALID', `${validator} is not a member of shard ${vb.shard}'s committee in epoch ${epoch}`);
  const wanted: { publicKey: Uint8Array; message: Uint8Array; signature: Uint8Array }[] = [];
  verifyVoteEvidence(e, g.chainId, m.publicKey, (pk, message, signature) => {
    wanted.push({ publicKey: pk, message, signature });
    return true;
  });
  const verdicts = await Promise.all(wanted.map((w) => c.verifier.verifyRawAsync('evidence', w.publicKey, w.message, w.signature)));
  verifyVoteEvidence(e, g.chainId, m.publicKey, (pk, message, signature) => {
    const i = wanted.findIndex((w) => bytesEqual(w.signature, signature) && bytesEqual(w.message, message) && bytesEqual(w.publicKey, pk));
    // Anything the dry run did not ask for is checked here, on this thread.
    return i >= 0 ? verdicts[i]! : c.verifier.verifyRaw('evidence', pk, message, signature);
  });
}

type StateProofJson = Static<typeof N.StateProof>;

/**
 * The height a read with `?proof=true[&height=h]` is proven at (default: the finalized head), or
 * null for a plain read of the head. Block 0 has no certificate, so it cannot be proven.
 */
function proofHeight(c: Ctx, query: { proof?: string | undefined; height?: string | undefined }): number | null {
  const { proof, height } = query;
  if (proof !== undefined && proof !== 'true' && proof !== 'false') throw new QnexusError('BAD_REQUEST', 'proof must be true or false');
  if (proof !== 'true') {
    if (height !== undefined) throw new QnexusError('BAD_REQUEST', 'height is read with proof=true only (a plain read answers the head)');
    return null;
  }
  const head = c.chain.headHeight;
  let h = head;
  if (height !== undefined) {
    if (!/^[0-9]{1,15}$/.test(height)) throw new QnexusError('BAD_REQUEST', 'height must be a non-negative integer');
    h = Number(height);
    if (h > head) throw new QnexusError('BAD_REQUEST', `height ${h} is beyond the finalized head ${head}`);
  }
  if (h === 0) throw new QnexusError('BAD_REQUEST', 'block 0 (genesis) has no finality certificate to prove against: ask for a height of 1 or more');
  return h;
}

/**
 * Prove `keys` at height `h` and derive the answer from the proven values, both before any await
 * (the head moves meanwhile; the version proven is fixed here), then add the block's header and
 * certificate, which the state root of version `h` is certified by.
 */
async function provenRead<T>(c: Ctx, keys: Uint8Array[], h: number, derive: (proofs: StateProof[]) => T): Promise<{ answer: T; proof: StateProofJson }> {
  const proofs = c.chain.state.prove(keys, h);
  const answer = derive(proofs);
  const read = () => Promise.all([c.chain.store.blockAtHeight(h), c.chain.store.certificate(h)]);
  let [raw, cert] = await read();
  if (!raw || !cert) {
    // The head is committed in memory before its batch reaches the disk: wait for that write.
    await c.chain.flush();
    [raw, cert] = await read();
  }
  if (!raw || !cert) {
    throw new QnexusError(h < c.chain.headHeight ? 'NOT_FOUND' : 'UNAVAILABLE', `block ${h} and its certificate are not stored here${h < c.chain.headHeight ? '' : ' yet; retry'}`);
  }
  return {
    answer,
    proof: {
      height: h,
      header: toHex(encodeHeader(decodeBlock(raw).header)),
      certificate: toHex(cert),
      entries: proofs.map((p) => ({ key: toHex(p.key), value: p.value ? toHex(p.value) : null, nodes: p.nodes.map(toHex) })),
    },
  };
}

/** The account fields the state holds (the rest is the node's own view: shards, the mempool's nonce). */
function accountFields(a: { balance: bigint; nonce: bigint; publicKey: Uint8Array | null } | undefined) {
  return { balance: (a?.balance ?? 0n).toString(), nonce: (a?.nonce ?? 0n).toString(), publicKey: a?.publicKey ? toHex(a.publicKey) : null };
}

/**
 * Slots without a verified beacon snapshot after which the beacon counts as unreachable: it signs
 * one every 4 slots (beacon service.ts ANNOUNCE_EVERY_SLOTS), so three missed in a row.
 */
export const BEACON_SILENT_SLOTS = 12;

/**
 * The node's link to the beacon, for `GET /v1/status` (and `qnexus status`, which names an
 * unreachable beacon as the cause of an unknown committee). "Heard" is the newest beacon-signed
 * registry snapshot verified here, directly or relayed by peers: a connection alone proves
 * nothing (a hung beacon keeps its sockets), and a relayed snapshot proves the beacon is alive.
 * The committees are known through `committeesKnownThrough`: the shards finalize until that
 * epoch ends, then stop until the beacon announces the next.
 */
/** When each API started: before a first snapshot, silence counts from here (and from genesis), not from never. */
const apiStartedAt = new WeakMap<Ctx, number>();

function beaconLink(c: Ctx) {
  const g = c.chain.genesis;
  const now = Date.now();
  const snap = c.xshard.registry.latest;
  const lastHeardAt = snap ? g.genesisTime + snap.slot * g.slotMs : null;
  const silentMs = lastHeardAt === null ? null : Math.max(0, now - lastHeardAt);
  // A node just started (or a chain just born) has not had time to hear a snapshot: the beacon
  // is not called unreachable until it has been silent for the whole window since then.
  const waitingSince = Math.max(apiStartedAt.get(c) ?? now, g.genesisTime);
  const through = c.chain.epochs.latestEpoch();
  const epoch = currentEpoch(c);
  return {
    peerId: g.beacon.peerId,
    connected: c.p2p.connectedPeers().includes(g.beacon.peerId),
    reachable: silentMs !== null ? silentMs <= BEACON_SILENT_SLOTS * g.slotMs : now - waitingSince <= BEACON_SILENT_SLOTS * g.slotMs,
    lastSnapshotSlot: snap?.slot ?? null,
    lastHeardAt: lastHeardAt === null ? null : new Date(lastHeardAt).toISOString(),
    silentMs,
    committeeKnown: c.chain.epochs.get(epoch) !== undefined,
    committeesKnownThrough: through,
    // The last slot the known committees cover: past it, blocks wait for the beacon's next announcement.
    finalizesThroughSlot: (through + 1) * g.epochLength - 1,
  };
}

const routes: JsonRoute<Ctx>[] = [
  // The live explorer page (explorer.ts): it polls the JSON endpoints below. Serving it starts the explorer's index.
  implement(R.explorer, (c: Ctx) => {
    explorerIndexOf(c);
    return explorerPage();
  }),
  // Search, an account's recent transactions, chart data (explorer-routes.ts).
  ...explorerRoutes,
  // Every shard's head: this one from the chain, the others as the beacon's latest signed snapshot reports them.
  implement(R.shards, async (c: Ctx) => {
    const g = c.chain.genesis;
    const { headHeight, headHash, headSlot } = c.chain;
    const certRaw = headHeight > 0 ? await c.chain.store.certificate(headHeight) : undefined;
    const snap = c.xshard.registry.latest;
    const reported = new Map((snap?.heads ?? []).map((h) => [h.shard, h]));
    const shards = Array.from({ length: g.shardCount }, (_, shard) => {
      if (shard === c.chain.shard) {
        const round = certRaw ? decodeCertificate(certRaw).round : null;
        return { shard, height: headHeight, finalizedHeight: headHeight, blockHash: toHex(headHash), slot: headSlot, round, source: 'local' as const };
      }
      const h = reported.get(shard);
      if (!h) return { shard, height: null, finalizedHeight: null, blockHash: null, slot: null, round: null, source: 'unknown' as const };
      // The beacon took it from a report carrying its finality certificate, which it verified: final.
      return { shard, height: h.height, finalizedHeight: h.height, blockHash: toHex(h.blockHash), slot: h.slot, round: h.round, source: 'beacon-snapshot' as const };
    });
    return { shard: c.chain.shard, shardCount: g.shardCount, slot: Math.max(0, slotAt(g, Date.now())), epoch: currentEpoch(c), snapshotSlot: snap?.slot ?? null, shards };
  }),
  // The newest blocks of this shard, newest first.
  implement(R.blocks, async (c: Ctx, { query }) => {
    const limit = parseListLimit(query.limit, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT);
    const head = c.chain.headHeight;
    const heights: number[] = [];
    for (let h = head; h >= 0 && heights.length < limit; h--) heights.push(h);
    const blocks = await Promise.all(heights.map((h) => blockSummary(c, h)));
    return { shard: c.chain.shard, headHeight: head, blocks: blocks.filter((b) => b !== null) };
  }),
  // This shard's newest transfer records (every kind), newest first by the height that recorded them, with their phases.
  implement(R.xtransfers, async (c: Ctx, { query }) => {
    const limit = parseListLimit(query.limit, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT);
    const xtransfers = [];
    for (const id of c.recentXfers.ids(limit)) {
      const rec = c.chain.state.xfer(id);
      if (rec) xtransfers.push(xferJson(rec, c.chain.shard));
    }
    return { shard: c.chain.shard, xtransfers };
  }),
  implement(R.status, async (c: Ctx) => ({
    chainId: c.chain.genesis.chainId,
    shard: c.chain.shard,
    genesisHash: toHex(c.chain.genesisHash),
    version: API_VERSION,
    role: c.role,
    validator: c.validator,
    peerId: c.p2p.peerId,
    peers: c.p2p.connectedPeers().length,
    height: Math.max(c.chain.headHeight, c.engine.included.size ? c.chain.headHeight + 1 : 0),
    finalizedHeight: c.chain.headHeight,
    networkHeight: Math.max(c.engine.newestKnownHeight, c.chain.headHeight),
    round: c.engine.core.round,
    step: c.engine.core.step,
    epoch: currentEpoch(c),
    committee: validatorCommittee(c),
    mempoolSize: c.mempool.size,
    syncing: c.syncer.progress.syncing,
    eventLoopLagMs: Math.round(c.load.lagMs),
    overloaded: c.load.overloaded,
    stateRoot: toHex(c.chain.headStateRoot),
    cryptoBackend: c.verifier.backend.name,
    beacon: beaconLink(c),
    modules: c.chain.app.modules.map((m) => ({ name: m.name, id: m.id })),
  })),
  implement(R.block, async (c: Ctx, { params: { id } }) => {
    let raw: Uint8Array | undefined;
    let height: number;
    if (id === 'latest') {
      height = c.chain.headHeight;
      raw = await c.chain.store.blockAtHeight(height);
    } else if (/^[0-9]{1,15}$/.test(id)) {
      height = Number(id);
      raw = await c.chain.store.blockAtHeight(height);
    } else if (isHex(id, 32)) {
      raw = await c.chain.store.blockByHash(fromHex(id));
      height = raw ? decodeBlock(raw).header.height : -1;
    } else {
      throw new QnexusError('BAD_REQUEST', 'block id must be a height, a 32-byte hex hash or "latest"');
    }
    if (!raw) notFound(`block ${id}`);
    const block = decodeBlock(raw);
    return blockJson(block, height > 0 ? await c.chain.store.certificate(height) : undefined);
  }),
  implement(R.tx, async (c: Ctx, { params: { hash: id } }) => {
    if (!isHex(id, 32)) throw new QnexusError('BAD_REQUEST', 'transaction hash must be 32 bytes of hex');
    const hashHex = id.toLowerCase();
    const loc = await c.chain.store.txLocation(fromHex(hashHex));
    if (loc) {
      const raw = await c.chain.store.blockAtHeight(loc.height);
      const block = decodeBlock(raw!);
      const env = openTx(block.txs[loc.index]!);
      // A refused message is final too: its fee was paid, nothing else happened (`error` says why).
      return { ...txJson(env), status: 'final' as const, block: { height: loc.height, hash: toHex(blockHash(block.header)), index: loc.index }, error: loc.error ?? null };
    }
    const pending = c.mempool.get(hashHex);
    if (pending) {
      const h = c.engine.included.get(hashHex);
      return { ...txJson(pending), status: h !== undefined ? ('included' as const) : ('pending' as const), block: null, error: null };
    }
    const rej = c.mempool.rejection(hashHex);
    if (rej) return { ...txJson(rej.env), status: 'rejected' as const, block: null, error: { code: rej.code, message: rej.message } };
    // Not "not admitted": the node that acknowledged it may not have gossiped it here yet.
    throw new QnexusError('TX_UNKNOWN', `transaction ${hashHex} is not known to this node: not admitted, or not yet gossiped here; ask another node of shard ${c.chain.shard}`);
  }),
  implement(R.account, async (c: Ctx, { params: { address: addr }, query }) => {
    if (!isAddressString(addr)) throw new QnexusError('BAD_REQUEST', 'address must be qn followed by 40 lowercase hex characters');
    const bytes = parseAddress(addr);
    // Only the home shard holds an account: any other shard would answer balance 0, which reads as money gone.
    const home = homeShard(bytes, c.chain.genesis.shardCount);
    if (home !== c.chain.shard) {
      throw new QnexusError(
        'ACCOUNT_WRONG_SHARD',
        `${addr} lives on shard ${home}; this node serves shard ${c.chain.shard}: ask a node of shard ${home} (\`qnexus status --node URL\` shows a node's shard)`,
        { homeShard: home, shard: c.chain.shard },
      );
    }
    const key = toHex(bytes);
    const h = proofHeight(c, query);
    const base = { address: addr, shard: c.chain.shard, homeShard: home };
    if (h === null) {
      // Every denom it holds (not proven: a range of keys; `GET /v1/bank/balance/{address}/{denom}?proof=true` proves one).
      const balances = (app.query(c.chain.state, c.chain.params, app.module('bank')!, app.module('bank')!.queries!.find((q) => q.name === 'balances')!, { address: addr }) as { balances: { denom: string; amount: string }[] }).balances;
      return { ...base, ...accountFields(c.chain.state.account(key)), pendingNonce: c.mempool.pendingNonce(key).toString(), balances };
    }
    // The fields come from the proven values themselves, read the way the head's are (StateView.account).
    const keys = bankAccountKeys(bytes).map((k) => moduleKey(MODULE_IDS.bank, k));
    const { answer, proof } = await provenRead(c, keys, h, (proofs) => accountFields(new StateView(new ProvenReader(proofs)).account(key)));
    return { ...base, ...answer, pendingNonce: c.mempool.pendingNonce(key).toString(), proof };
  }),
  implement(R.submit, async (c: Ctx, { req }) => {
    // Shed by capacity only (load.ts): a full queue, or an overload that lasts; never one slow window.
    if (c.load.overloaded) throw new QnexusError('NODE_BUSY', `node is busy (${c.load.reason ?? 'overloaded'}); retry shortly`);
    if (c.journal?.saturated) throw new QnexusError('NODE_BUSY', `node is busy (${c.journal.backlog} admissions waiting for the disk); retry shortly`);
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const body = await readBody(req);
    let raw: Uint8Array;
    if (type === 'application/octet-stream') {
      raw = new Uint8Array(body);
    } else if (type === 'application/json') {
      let j: unknown;
      try {
        j = JSON.parse(body.toString('utf8'));
      } catch {
        throw new QnexusError('BAD_REQUEST', 'body is not valid JSON');
      }
      if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new QnexusError('BAD_REQUEST', 'body must be a JSON object { "tx": "<hex>" }');
      for (const k of Object.keys(j)) if (k !== 'tx') throw new QnexusError('UNKNOWN_FIELD', `unknown field ${JSON.stringify(k)}; expected only "tx"`);
      const tx = (j as { tx?: unknown }).tx;
      if (typeof tx !== 'string') throw new QnexusError('BAD_REQUEST', 'field "tx" must be a hex string');
      if (tx.length > MAX_TX_BYTES * 2 + 2) throw new QnexusError('TX_TOO_LARGE', `transaction exceeds ${MAX_TX_BYTES} bytes`);
      if (!isHex(tx.startsWith('0x') ? tx.slice(2) : tx)) throw new QnexusError('TX_MALFORMED', 'field "tx" is not valid hex');
      raw = fromHex(tx);
    } else {
      throw new QnexusError('UNSUPPORTED_MEDIA_TYPE', 'use Content-Type application/json ({"tx":"<hex>"}) or application/octet-stream');
    }
    const env = openTx(raw);
    const result = await c.mempool.admit(env);
    if (result === 'added') {
      c.txGossip.publish(env.raw);
      c.metrics.mempoolSize.set(c.mempool.size);
    }
    // The 202 is a promise: the admission is on disk first (a 'known' one too: gossip may
    // have brought it, unjournaled). Concurrent submissions share one fsync.
    await c.journal?.append(env);
    c.metrics.txAdmission.inc({ source: 'api', result: 'accepted' });
    return { hash: env.hashHex, status: 'pending' as const };
  }),
  // The devnet's on-ramp: a feeless drip request signed here with a throwaway key of this shard.
  implement(R.faucet, async (c: Ctx, { params: { address }, req }) => {
    if (c.load.overloaded) throw new QnexusError('NODE_BUSY', `node is busy (${c.load.reason ?? 'overloaded'}); retry shortly`);
    const f = faucetOf(c);
    const env = f.build(address, clientAddress(req));
    const result = await c.mempool.admit(env);
    if (result === 'added') {
      c.txGossip.publish(env.raw);
      c.metrics.mempoolSize.set(c.mempool.size);
      f.admitted(env);
    }
    await c.journal?.append(env);
    return { hash: env.hashHex, status: 'pending' as const, to: address, shard: c.chain.shard };
  }),
  // The beacon's registry as of its latest verified snapshot; before one arrives, what the current committees say.
  implement(R.validators, async (c: Ctx) => {
    const ec = currentCommittees(c);
    const committee = thisShardCommittee(c, ec);
    const snap = c.xshard.registry.latest;
    if (snap) {
      const keys = knownKeys(c, [snap.epoch, currentEpoch(c), c.chain.epochs.latestEpoch(), 0]);
      return { epoch: snap.epoch, slot: snap.slot, source: 'beacon-snapshot' as const, validators: snap.validators.map((v) => fromRegistry(v, keys)), totals: stakingTotalsToJson(snap.totals), committee };
    }
    return {
      epoch: ec?.epoch ?? currentEpoch(c),
      slot: Math.max(0, slotAt(c.chain.genesis, Date.now())),
      source: 'committee' as const,
      validators: ec ? fromCommittees(c, ec) : [],
      totals: null,
      committee,
    };
  }),
  implement(R.validator, async (c: Ctx, { params: { address: addr } }) => {
    if (!isAddressString(addr)) throw new QnexusError('BAD_REQUEST', 'address must be qn followed by 40 lowercase hex characters');
    const snap = c.xshard.registry.latest;
    if (snap) {
      const v = c.xshard.registry.validator(addr);
      if (v) return fromRegistry(v, knownKeys(c, [snap.epoch, currentEpoch(c), c.chain.epochs.latestEpoch(), 0]));
    } else {
      const ec = currentCommittees(c);
      const v = ec && fromCommittees(c, ec).find((x) => x.address === addr);
      if (v) return v;
    }
    throw new QnexusError('VALIDATOR_UNKNOWN', `no validator ${addr} in the ${snap ? 'beacon registry snapshot' : 'current committees'}`);
  }),
  // The committees of one epoch (default: the current one) as this node's epoch book holds them
  // (`/v1/committee`, the older name, is still served).
  implement(R.committees, async (c: Ctx, { query }) => {
    const q = query.epoch;
    let epoch = currentEpoch(c);
    if (q !== undefined) {
      if (!/^[0-9]{1,15}$/.test(q)) throw new QnexusError('BAD_REQUEST', 'epoch must be a non-negative integer');
      epoch = Number(q);
    }
    const ec = c.chain.epochs.get(epoch);
    if (!ec) throw new QnexusError('EPOCH_UNKNOWN', `the committees of epoch ${epoch} are not known here yet (no beacon announcement)`);
    return committeesJson(c, ec);
  }),
  implement(R.xtransfer, async (c: Ctx, { params: { id } }) => {
    if (!isHex(id, 32)) throw new QnexusError('BAD_REQUEST', 'transfer id must be 32 bytes of hex (the xtransfer transaction hash)');
    const idHex = id.toLowerCase();
    const rec = c.chain.state.xfer(idHex);
    if (rec) return xferJson(rec, c.chain.shard);
    const pending = c.mempool.get(idHex);
    // Not in a block yet: the record it will open (its module says which).
    const pv = pending ? app.xferPreview(pending, c.chain.params) : null;
    if (pending && pv) {
      return {
        id: idHex,
        kind: pv.kind,
        from: pv.from,
        to: pv.to,
        amount: pv.amount.toString(),
        sourceShard: c.chain.shard,
        destinationShard: pv.dstShard,
        deadlineSlot: null,
        role: 'source' as const,
        status: 'pending' as const,
        decision: null,
        outcome: null,
        phases: [],
      };
    }
    throw new QnexusError('XS_UNKNOWN_TRANSFER', `no cross-shard transfer ${idHex} on shard ${c.chain.shard}`);
  }),
  // The shard's supply identity, checkable by anyone: balances + burned + fees + escrow + exported − imported = genesis supply.
  implement(R.supply, async (c: Ctx) => {
    const st = c.chain.state;
    const native = st.denomTotals().find((d) => d.denom === NATIVE_DENOM);
    const k = native ?? { burned: 0n, escrow: 0n, exported: 0n, imported: 0n };
    // Module accounts (proposer tips waiting for the epoch's roll, …) are reported as `fees`, as before modules.
    const { users: balances, modules, fees } = app.nativeSplit(st);
    return {
      shard: c.chain.shard,
      height: c.chain.headHeight,
      genesisSupply: genesisSupply(c.chain.genesis, c.chain.shard).toString(),
      balances: balances.toString(),
      burned: k.burned.toString(),
      // Proposer tips not yet sent to the beacon (they leave in a fees record at the next epoch).
      fees: fees.toString(),
      // Native coins held by module accounts (the faucet, pools, markets).
      modules: (modules - fees).toString(),
      escrow: k.escrow.toString(),
      exported: k.exported.toString(),
      imported: k.imported.toString(),
      total: (balances + k.burned + modules + k.escrow + k.exported - k.imported).toString(),
      accounts: st.size,
      // Every denom's identity: balances (module accounts included) + burned + escrow + exported − imported = genesis + minted.
      denoms: st.denomTotals().map((d) => ({
        denom: d.denom,
        supply: (d.genesis + d.minted).toString(),
        genesis: d.genesis.toString(),
        minted: d.minted.toString(),
        balances: d.balances.toString(),
        burned: d.burned.toString(),
        escrow: d.escrow.toString(),
        exported: d.exported.toString(),
        imported: d.imported.toString(),
      })),
    };
  }),
  implement(R.evidence, async (c: Ctx) => ({ evidence: c.engine.evidence })),
  // Equivocation evidence for the beacon: verified here in full, then relayed (or answered from
  // what the beacon already said about it). Nothing a client sends reaches the beacon unchecked.
  implement(R.submitEvidence, async (c: Ctx, { req }) => {
    const e = await readEvidenceBody(req);
    const validator = formatAddress(e.first.body.validator);
    await checkEvidence(c, e);
    let ack;
    try {
      ack = await c.xshard.relayEvidence(e);
    } catch (err) {
      if (err instanceof QnexusError) throw err;
      throw new QnexusError('UNAVAILABLE', `could not reach the beacon: ${(err as Error).message}`);
    }
    if (!ack.ok) throw new QnexusError(isErrorCode(ack.code) ? ack.code : 'BAD_REQUEST', ack.message || `the beacon refused the evidence (${ack.code})`);
    return evidenceResult(ack.message, validator);
  }),
];

/** The node's routes, in routing order (the OpenAPI document and the route-coverage test read them). */
export const nodeApiRoutes: readonly JsonRoute<Ctx>[] = routes;

/** Seconds a client should wait before retrying a 503, by why it was refused. */
export const RETRY_AFTER_S: Partial<Record<string, number>> = { MEMPOOL_FULL: 2, NODE_BUSY: 1, UNAVAILABLE: 1, EPOCH_UNKNOWN: 2 };

/** Every 503 carries Retry-After (a 429 gets its own from the rate limiter), so clients back off by what the node says. */
function withRetryAfter(route: JsonRoute<Ctx>): JsonRoute<Ctx> {
  return {
    ...route,
    h: async (c, p, req, url) => {
      try {
        return await route.h(c, p, req, url);
      } catch (e) {
        if (e instanceof QnexusError && e.httpStatus === 503 && !(e instanceof HttpHeaderError)) {
          throw new HttpHeaderError(e.code, e.message, { 'retry-after': String(RETRY_AFTER_S[e.code] ?? 1) });
        }
        throw e;
      }
    },
  };
}

/**
 * The routes of an app's module queries: `GET /v1/<module>/<name>/{param}…` answers the query's
 * `run` on the committed state (the chain's head; a reader, so a query never writes), held to its
 * module's prefix and tag by `moduleRoutes`. With `?proof=true[&height=h]` a query that names its
 * keys (`proofKeys`) answers from those keys proven at one finalized height, with the proof.
 */
export function moduleApiRoutes(sm: StateMachine): JsonRoute<Ctx>[] {
  const byModule = new Map<string, JsonRoute<Ctx>[]>();
  for (const { module: m, query: q } of sm.queries()) {
    const def = moduleQueryRoute(m.name, q);
    const route = implement(def, async (c: Ctx, { params, query }) => {
      const args = params as Record<string, string>;
      const h = proofHeight(c, query);
      if (h === null) return c.chain.app.query(c.chain.state, c.chain.params, m, q, args);
      // Proven (BAD_REQUEST for a range query): the query runs over the proven values only, so its answer is exactly what the proof shows.
      const keys = queryProofKeys(m, q, args);
      const { answer, proof } = await provenRead(c, keys, h, (proofs) => runProven(m, q, c.chain.params, args, proofs));
      return { ...(answer as Record<string, unknown>), proof };
    });
    byModule.set(m.name, [...(byModule.get(m.name) ?? []), route]);
  }
  return [...byModule].flatMap(([name, rs]) => moduleRoutes(name, rs));
}

/** `extra`: routes served after the host's (the app's module queries, `moduleApiRoutes(app)`), so none can shadow them. */
export function startApi(ctx: Ctx, host: string, port: number, extra: readonly JsonRoute<Ctx>[] = []): Promise<Server> {
  apiStartedAt.set(ctx, Date.now());
  return startJsonApi(ctx, [...routes, ...extra].map(withRetryAfter), host, port, {
    openapi: { title: 'Quantum Nexus shard node API', version: API_VERSION },
    onError: (route, e) => {
      if (route === 'submit') ctx.metrics.txAdmission.inc({ source: 'api', result: e.code });
    },
  });
}
