import { ADDRESS_BYTES, HASH_BYTES, addressFromPublicKey, compareBytes, formatAddress, signingBytes } from '@qnexus/crypto';
import { QnexusError } from './errors.js';
import { Writer, decodeWith, type Reader } from './codec.js';
import {
  CODEC_VERSION,
  MAX_CHAIN_ID_BYTES,
  MAX_COMMITTEE,
  MAX_PUBLIC_KEY_BYTES,
  MAX_SIGNATURE_BYTES,
  decodeCertificate,
  decodeEvidence,
  decodeHeader,
  encodeCertificate,
  encodeEvidence,
  encodeHeader,
  encodeXferInfo,
  readXferInfo,
  type BlockHeader,
  type Certificate,
  type VoteEvidence,
  type XferInfo,
} from './objects.js';

/**
 * Cross-shard objects: the per-transfer record each shard keeps in its state,
 * the messages validators send the beacon (a signed peer binding, reports
 * with a finality certificate and inclusion proofs) and the beacon's signed
 * epoch announcement. The beacon's prepare requests and decisions are system
 * transactions (see `XPreparePayload`, `XDecisionPayload`).
 */

function version(r: Reader, what: string): void {
  const v = r.u8(`${what} version`);
  if (v !== CODEC_VERSION) throw new QnexusError('MALFORMED', `unsupported ${what} version ${v}`);
}

// ---------------------------------------------------------------- records

export type XferRole = 'source' | 'destination';
/** Source: 'accepted' = escrowed. Destination: accepted or refused the credit. */
export type XferPrepare = 'none' | 'accepted' | 'refused';
export type XferDecision = 'none' | 'commit' | 'abort';

/**
 * A shard's record of one cross-shard transfer, kept in the state tree for
 * good (so a replayed prepare or decision is recognised as such), keyed by id.
 */
export interface XferRecord {
  role: XferRole;
  info: XferInfo;
  prepare: XferPrepare;
  /** Why the destination refused (an error code), '' otherwise. */
  reason: string;
  decision: XferDecision;
  /** Height of the block that recorded the prepare (escrow on the source), 0 if none. */
  preparedHeight: number;
  /** Height of the block that applied the decision, 0 if none. */
  decidedHeight: number;
}

const ROLE = ['source', 'destination'] as const;
const PREPARE = ['none', 'accepted', 'refused'] as const;
const DECISION = ['none', 'commit', 'abort'] as const;

function pick<T>(list: readonly T[], i: number, what: string): T {
  const v = list[i];
  if (v === undefined) throw new QnexusError('MALFORMED', `bad ${what} ${i}`);
  return v;
}

export function encodeXferRecord(x: XferRecord): Uint8Array {
  const w = new Writer(160).u8(CODEC_VERSION).u8(ROLE.indexOf(x.role));
  encodeXferInfo(w, x.info);
  return w
    .u8(PREPARE.indexOf(x.prepare))
    .string(x.reason)
    .u8(DECISION.indexOf(x.decision))
    .u64(x.preparedHeight)
    .u64(x.decidedHeight)
    .finish();
}

export function decodeXferRecord(b: Uint8Array): XferRecord {
  return decodeWith(b, 'transfer record', (r) => {
    version(r, 'transfer record');
    return {
      role: pick(ROLE, r.u8('role'), 'role'),
      info: readXferInfo(r),
      prepare: pick(PREPARE, r.u8('prepare'), 'prepare'),
      reason: r.string(64, 'reason'),
      decision: pick(DECISION, r.u8('decision'), 'decision'),
      preparedHeight: r.u64n('prepared height'),
      decidedHeight: r.u64n('decided height'),
    };
  });
}

/** Phase a record shows, for APIs and logs. */
export function xferRecordPhase(x: XferRecord): string {
  if (x.decision !== 'none') return x.decision === 'commit' ? 'committed' : 'aborted';
  if (x.prepare === 'refused') return 'refused';
  return x.role === 'source' ? 'escrowed' : 'prepared';
}

// ---------------------------------------------------------------- proofs

/**
 * Most nodes in a report item's proof: a transfer record's key is 34 bytes (68 nibbles) and every
 * trie node on its path consumes at least one, so its proof has at most 70 nodes.
 */
export const MAX_REPORT_PROOF_NODES = 72;
/** Largest node in a report item's proof: a full internal node (17 child hashes) with a skip of at most 68 nibbles. */
export const MAX_REPORT_PROOF_NODE_BYTES = 1024;

/** A state proof's nodes on the wire (root first): u32 count, then each node length-prefixed; bounded before any allocation. */
export function writeProofNodes(w: Writer, nodes: readonly Uint8Array[]): Writer {
  w.u32(nodes.length);
  for (const n of nodes) w.bytes(n);
  return w;
}

export function readProofNodes(r: Reader): Uint8Array[] {
  const n = r.count(MAX_REPORT_PROOF_NODES, 'proof nodes');
  const nodes: Uint8Array[] = [];
  for (let i = 0; i < n; i++) nodes.push(r.bytes(MAX_REPORT_PROOF_NODE_BYTES, 'proof node'));
  return nodes;
}

// ---------------------------------------------------------------- peer binding

/**
 * "Validator key K speaks for shard S as libp2p peer P", signed with K. The
 * beacon accepts 2PC messages on a stream only from the peer a current
 * committee member bound this way, so a Noise-authenticated peer id is tied
 * to a post-quantum validator identity.
 */
export interface PeerBinding {
  chainId: string;
  shard: number;
  publicKey: Uint8Array;
  peerId: string;
}

export interface SignedPeerBinding {
  binding: PeerBinding;
  signature: Uint8Array;
}

export function encodePeerBinding(b: PeerBinding): Uint8Array {
  return new Writer(b.publicKey.length + 128).u8(CODEC_VERSION).string(b.chainId).u32(b.shard).bytes(b.publicKey).string(b.peerId).finish();
}

function readPeerBinding(r: Reader): PeerBinding {
  version(r, 'peer binding');
  return {
    chainId: r.string(MAX_CHAIN_ID_BYTES, 'chain id'),
    shard: r.u32('shard'),
    publicKey: r.bytes(MAX_PUBLIC_KEY_BYTES, 'public key'),
    peerId: r.string(128, 'peer id'),
  };
}

export function peerBindingSigningBytes(b: PeerBinding): Uint8Array {
  return signingBytes(b.chainId, 'binding', encodePeerBinding(b));
}

export function peerBindingValidator(b: PeerBinding): string {
  return formatAddress(addressFromPublicKey(b.publicKey));
}

function writeSignedBinding(w: Writer, b: SignedPeerBinding): void {
  w.bytes(encodePeerBinding(b.binding)).bytes(b.signature);
}

function readSignedBinding(r: Reader): SignedPeerBinding {
  const binding = decodeWith(r.bytes(MAX_PUBLIC_KEY_BYTES + 256, 'binding'), 'peer binding', readPeerBinding);
  return { binding, signature: r.bytes(MAX_SIGNATURE_BYTES, 'binding signature') };
}

// ---------------------------------------------------------------- validator → beacon

/** One transfer record and its proof (state trie nodes, root first) against the certified block's state root. */
export interface ReportItem {
  record: Uint8Array;
  proof: Uint8Array[];
}

/**
 * Validator → beacon, over the beacon's 2PC stream: "at this finalized block
 * of my shard (header + finality certificate) these transfer records are in
 * the state tree". It proves a source escrow (prepare), a destination
 * prepare or refusal, or that a decision was applied, depending on the records.
 */
export interface XReport {
  binding: SignedPeerBinding;
  header: BlockHeader;
  certificate: Certificate;
  items: ReportItem[];
}

export const MAX_REPORT_ITEMS = 1024;

/**
 * A request to the beacon: a hello (binding only), a report, or equivocation
 * evidence (self-authenticating: two signed votes, so anyone may send it).
 */
export type BeaconRequest =
  | { type: 'hello'; binding: SignedPeerBinding }
  | { type: 'report'; report: XReport }
  | { type: 'evidence'; evidence: VoteEvidence };

/** Largest encoded record in a report item (a stake record carries a public key). */
export const MAX_RECORD_BYTES = 4096;

export function encodeBeaconRequest(m: BeaconRequest): Uint8Array {
  const w = new Writer(16 * 1024).u8(CODEC_VERSION);
  if (m.type === 'evidence') {
    w.u8(3).bytes(encodeEvidence(m.evidence));
  } else if (m.type === 'hello') {
    w.u8(1);
    writeSignedBinding(w, m.binding);
  } else {
    const rep = m.report;
    w.u8(2);
    writeSignedBinding(w, rep.binding);
    w.bytes(encodeHeader(rep.header)).bytes(encodeCertificate(rep.certificate)).u32(rep.items.length);
    for (const it of rep.items) {
      w.bytes(it.record);
      writeProofNodes(w, it.proof);
    }
  }
  return w.finish();
}

export function decodeBeaconRequest(b: Uint8Array): BeaconRequest {
  return decodeWith(b, 'beacon request', (r) => {
    version(r, 'beacon request');
    const t = r.u8('request type');
    if (t === 3) return { type: 'evidence', evidence: decodeEvidence(r.bytes(20_000, 'evidence')) };
    const binding = readSignedBinding(r);
    if (t === 1) return { type: 'hello', binding };
    if (t !== 2) throw new QnexusError('MALFORMED', `unknown beacon request type ${t}`);
    const header = decodeHeader(r.bytes(1024, 'header'));
    const certificate = decodeCertificate(r.bytes(MAX_COMMITTEE * (MAX_SIGNATURE_BYTES + 64) + 64, 'certificate'));
    const n = r.count(MAX_REPORT_ITEMS, 'report items');
    const items: ReportItem[] = [];
    for (let i = 0; i < n; i++) items.push({ record: r.bytes(MAX_RECORD_BYTES, 'record'), proof: readProofNodes(r) });
    return { type: 'report', report: { binding, header, certificate, items } };
  });
}

/** Answer to any 2PC request: ok, or a stable error code and message. */
export interface XAck {
  ok: boolean;
  code: string;
  message: string;
}

export function encodeXAck(a: XAck): Uint8Array {
  return new Writer(128).u8(a.ok ? 1 : 0).string(a.code).string(a.message).finish();
}

export function decodeXAck(b: Uint8Array): XAck {
  return decodeWith(b, 'ack', (r) => ({ ok: r.u8('ok') === 1, code: r.string(64, 'code'), message: r.string(1024, 'message') }));
}

// ---------------------------------------------------------------- epoch announcements

/** A committee member as announced: its key (address = hash of it) and its stake for the epoch. */
export interface CommitteeMemberRef {
  publicKey: Uint8Array;
  stake: bigint;
}

/**
 * Signed by the beacon, published on `/qnexus/<chainId>/beacon/epochs` before
 * the epoch starts: the epoch's seed and each shard's committee with keys and
 * stakes. It is what shard nodes verify that epoch's votes and certificates
 * against; nodes store it and serve it to syncing peers
 * (`/qnexus/<chainId>/beacon/epoch/1.0.0`). Re-published (`issuedSlot`
 * makes each copy a distinct gossip message); the committees never change
 * once announced.
 */
export interface EpochAnnouncement {
  chainId: string;
  epoch: number;
  startSlot: number;
  seed: Uint8Array;
  committees: { shard: number; members: CommitteeMemberRef[] }[];
  issuedSlot: number;
}

export interface SignedEpochAnnouncement {
  body: EpochAnnouncement;
  signature: Uint8Array;
}

/** Bound on an announcement body: up to MAX_COMMITTEE members in all, each an ML-DSA-87 key and a stake. */
export const MAX_ANNOUNCEMENT_BYTES = MAX_COMMITTEE * (MAX_PUBLIC_KEY_BYTES + 12) + 64 * 8 + 256;

/** Address of an announced member. */
export function memberAddress(m: CommitteeMemberRef): string {
  return formatAddress(addressFromPublicKey(m.publicKey));
}

export function encodeEpochAnnouncementBody(a: EpochAnnouncement): Uint8Array {
  const w = new Writer(1024).u8(CODEC_VERSION).string(a.chainId).u64(a.epoch).u64(a.startSlot).fixed(a.seed, HASH_BYTES).u32(a.committees.length);
  for (const c of a.committees) {
    w.u32(c.shard).u32(c.members.length);
    for (const m of c.members) w.bytes(m.publicKey).u64(m.stake);
  }
  return w.u64(a.issuedSlot).finish();
}

function readEpochAnnouncementBody(r: Reader): EpochAnnouncement {
  version(r, 'epoch announcement');
  const chainId = r.string(MAX_CHAIN_ID_BYTES, 'chain id');
  const epoch = r.u64n('epoch');
  const startSlot = r.u64n('start slot');
  const seed = r.fixed(HASH_BYTES, 'seed');
  const nc = r.count(64, 'committees');
  const committees: EpochAnnouncement['committees'] = [];
  for (let i = 0; i < nc; i++) {
    const shard = r.u32('shard');
    const nm = r.count(MAX_COMMITTEE, 'members');
    const members: CommitteeMemberRef[] = [];
    for (let j = 0; j < nm; j++) members.push({ publicKey: r.bytes(MAX_PUBLIC_KEY_BYTES, 'member key'), stake: r.u64('stake') });
    committees.push({ shard, members });
  }
  return { chainId, epoch, startSlot, seed, committees, issuedSlot: r.u64n('issued slot') };
}

export function epochAnnouncementSigningBytes(a: EpochAnnouncement): Uint8Array {
  return signingBytes(a.chainId, 'beacon', encodeEpochAnnouncementBody(a));
}

export function encodeEpochAnnouncement(a: SignedEpochAnnouncement): Uint8Array {
  const body = encodeEpochAnnouncementBody(a.body);
  return new Writer(body.length + a.signature.length + 16).bytes(body).bytes(a.signature).finish();
}

export function decodeEpochAnnouncement(b: Uint8Array): SignedEpochAnnouncement {
  return decodeWith(b, 'epoch announcement', (r) => ({
    body: decodeWith(r.bytes(MAX_ANNOUNCEMENT_BYTES, 'announcement body'), 'announcement body', readEpochAnnouncementBody),
    signature: r.bytes(MAX_SIGNATURE_BYTES, 'announcement signature'),
  }));
}

/**
 * The beacon's gossip topics (epoch announcements, registry snapshots), its
 * request stream (hello, report, evidence) and the epoch-announcement fetch
 * protocol (request: u64 epoch; response: the signed announcement, or empty
 * if unknown), which the beacon and every shard node serve.
 */
export function beaconTopics(chainId: string): { epochs: string; registry: string; protocol: string; epochFetch: string } {
  return {
    epochs: `/qnexus/${chainId}/beacon/epochs`,
    registry: `/qnexus/${chainId}/beacon/registry`,
    protocol: `/qnexus/${chainId}/beacon/2pc/1.0.0`,
    epochFetch: `/qnexus/${chainId}/beacon/epoch/1.0.0`,
  };
}

// ---------------------------------------------------------------- registry snapshots

/**
 * pending: bonded, waiting for activation (churn queue); active: in a
 * committee; exiting: unstake requested, still in committees until exitEpoch;
 * exited: out of the committees, unbonding (still slashable); slashed:
 * proven equivocation, ejected, unbonding what is left; withdrawn: paid out.
 */
export type ValidatorStatus = 'pending' | 'active' | 'exiting' | 'exited' | 'slashed' | 'withdrawn';
export const VALIDATOR_STATUSES: readonly ValidatorStatus[] = ['pending', 'active', 'exiting', 'exited', 'slashed', 'withdrawn'];

/** Votes of a validator included in the finality certificates the beacon verified. */
export interface Participation {
  /** Blocks of the validator's shard whose certificate carries its precommit. */
  signed: number;
  /** Certified blocks of its shard the beacon saw while it was a member. */
  blocks: number;
}

/** One validator as the beacon's registry holds it. Epoch fields are null when not (yet) set. */
export interface ValidatorInfo {
  address: Uint8Array;
  /** The funding account: stake and rewards return here. */
  home: Uint8Array;
  /** Bonded stake (after any slashing). */
  stake: bigint;
  status: ValidatorStatus;
  /** Shard of its committee in the current epoch (or the one it was assigned last), null if never assigned. */
  shard: number | null;
  activationEpoch: number | null;
  exitEpoch: number | null;
  withdrawableEpoch: number | null;
  /** Accrued, not yet paid: issuance by stake × participation, plus proposer fees. */
  rewards: bigint;
  /** Taken by slashing (burned). */
  slashed: bigint;
  /** Participation in the last epoch whose rewards were computed, and that epoch. */
  lastEpoch: number | null;
  last: Participation;
  lifetime: Participation;
}

/** Network-wide staking totals at the beacon (see docs/ARCHITECTURE.md, "Supply"). */
export interface StakingTotals {
  /** Stake bonded at genesis. */
  genesisStake: bigint;
  /** Stake received from shards by committed stake transfers. */
  stakedIn: bigint;
  /** Proposer fees received from shards by committed fee transfers. */
  feesIn: bigint;
  /** Newly issued rewards. */
  minted: bigint;
  /** Stake destroyed by slashing. */
  slashed: bigint;
  /** Paid out by committed releases (credited, or about to be, on the home shards). */
  released: bigint;
  /** What the beacon holds: Σ stake + Σ unpaid rewards = genesisStake + stakedIn + feesIn + minted − slashed − released. */
  held: bigint;
}

/**
 * The newest block of a shard the beacon has seen with a verified finality
 * certificate (proposers report every block they propose): how a node learns
 * the other shards' heads without following them.
 */
export interface ShardHead {
  shard: number;
  height: number;
  blockHash: Uint8Array;
  /** Slot of the block's header. */
  slot: number;
  /** Round of its finality certificate. */
  round: number;
}

/** Most shards a genesis may have (`shardCount` is bounded to 1..64), so most heads a snapshot carries. */
export const MAX_SNAPSHOT_HEADS = 64;

/**
 * The libp2p peer a committee member speaks through, as the beacon verified it (its signed
 * peer binding, presented over that very peer's connection).
 */
export interface SnapshotPeer {
  validator: Uint8Array;
  peerId: string;
}

/** Members of two epochs (the current and the next frozen one), each bound to at most one peer. */
export const MAX_SNAPSHOT_PEERS = 2 * MAX_COMMITTEE;
/** Longest peer id string (base58 multihash; an Ed25519 id is 52 characters). */
export const MAX_PEER_ID_BYTES = 128;
/** Encoded size of one snapshot peer: address, u32 length, id. */
const MAX_SNAPSHOT_PEER_BYTES = ADDRESS_BYTES + 4 + MAX_PEER_ID_BYTES;

/** Signed by the beacon, published on the registry topic every few slots: what `GET /v1/validators` shows on every node. */
export interface RegistrySnapshot {
  chainId: string;
  slot: number;
  epoch: number;
  validators: ValidatorInfo[];
  totals: StakingTotals;
  /** Every shard's head as certified to the beacon, by shard (strictly increasing; shards not heard of yet are absent). */
  heads: ShardHead[];
  /**
   * The peers of the members of the current and the next frozen epoch's committees that bound
   * themselves (hello or report), by validator address (strictly increasing): the peers shard
   * nodes trust (reserved connection slots, mesh preference). Members not heard from are absent.
   */
  peers: SnapshotPeer[];
}

export interface SignedRegistrySnapshot {
  body: RegistrySnapshot;
  signature: Uint8Array;
}

const NONE = 0;
const optN = (w: Writer, n: number | null): Writer => w.u64(n === null ? NONE : n + 1);
const readOptN = (r: Reader, what: string): number | null => {
  const v = r.u64n(what);
  return v === NONE ? null : v - 1;
};

/** One registry entry, as the snapshot carries it and the beacon's store keeps it (with more after it). */
export function writeValidatorInfo(w: Writer, v: ValidatorInfo): Writer {
  w.fixed(v.address, ADDRESS_BYTES).fixed(v.home, ADDRESS_BYTES).u64(v.stake).u8(VALIDATOR_STATUSES.indexOf(v.status));
  optN(w, v.shard);
  optN(w, v.activationEpoch);
  optN(w, v.exitEpoch);
  optN(w, v.withdrawableEpoch);
  w.u64(v.rewards).u64(v.slashed);
  optN(w, v.lastEpoch);
  return w.u64(v.last.signed).u64(v.last.blocks).u64(v.lifetime.signed).u64(v.lifetime.blocks);
}

export function readValidatorInfo(r: Reader): ValidatorInfo {
  const address = r.fixed(ADDRESS_BYTES, 'validator');
  const home = r.fixed(ADDRESS_BYTES, 'home');
  const stake = r.u64('stake');
  const status = pick(VALIDATOR_STATUSES, r.u8('status'), 'status');
  const shard = readOptN(r, 'shard');
  const activationEpoch = readOptN(r, 'activation epoch');
  const exitEpoch = readOptN(r, 'exit epoch');
  const withdrawableEpoch = readOptN(r, 'withdrawable epoch');
  const rewards = r.u64('rewards');
  const slashed = r.u64('slashed');
  const lastEpoch = readOptN(r, 'last epoch');
  const last = { signed: r.u64n('signed'), blocks: r.u64n('blocks') };
  const lifetime = { signed: r.u64n('signed'), blocks: r.u64n('blocks') };
  return { address, home, stake, status, shard, activationEpoch, exitEpoch, withdrawableEpoch, rewards, slashed, lastEpoch, last, lifetime };
}

export function encodeRegistrySnapshotBody(s: RegistrySnapshot): Uint8Array {
  const w = new Writer(256 + s.validators.length * 160).u8(CODEC_VERSION).string(s.chainId).u64(s.slot).u64(s.epoch).u32(s.validators.length);
  for (const v of s.validators) writeValidatorInfo(w, v);
  const t = s.totals;
  w.u64(t.genesisStake).u64(t.stakedIn).u64(t.feesIn).u64(t.minted).u64(t.slashed).u64(t.released).u64(t.held);
  // Canonical: one head per shard, in shard order (the decoder refuses anything else).
  if (s.heads.length > MAX_SNAPSHOT_HEADS) throw new RangeError(`${s.heads.length} shard heads exceed ${MAX_SNAPSHOT_HEADS}`);
  w.u32(s.heads.length);
  let prev = -1;
  for (const h of s.heads) {
    if (!(h.shard > prev)) throw new RangeError(`shard heads must be in strictly increasing shard order (${h.shard} after ${prev})`);
    prev = h.shard;
    w.u32(h.shard).u64(h.height).fixed(h.blockHash, HASH_BYTES).u64(h.slot).u64(h.round);
  }
  // Canonical too: strictly increasing validator addresses.
  if (s.peers.length > MAX_SNAPSHOT_PEERS) throw new RangeError(`${s.peers.length} snapshot peers exceed ${MAX_SNAPSHOT_PEERS}`);
  w.u32(s.peers.length);
  let prevAddr: Uint8Array | null = null;
  for (const p of s.peers) {
    if (prevAddr && compareBytes(p.validator, prevAddr) <= 0) throw new RangeError('snapshot peers must be in strictly increasing validator order');
    const id = new TextEncoder().encode(p.peerId);
    if (id.length === 0 || id.length > MAX_PEER_ID_BYTES) throw new RangeError(`peer id of ${id.length} bytes (1..${MAX_PEER_ID_BYTES})`);
    prevAddr = p.validator;
    w.fixed(p.validator, ADDRESS_BYTES).bytes(id);
  }
  return w.finish();
}

function readRegistrySnapshotBody(r: Reader): RegistrySnapshot {
  version(r, 'registry snapshot');
  const chainId = r.string(MAX_CHAIN_ID_BYTES, 'chain id');
  const slot = r.u64n('slot');
  const epoch = r.u64n('epoch');
  const n = r.count(16 * MAX_COMMITTEE, 'validators');
  const validators: ValidatorInfo[] = [];
  for (let i = 0; i < n; i++) validators.push(readValidatorInfo(r));
  const totals: StakingTotals = {
    genesisStake: r.u64('genesis stake'),
    stakedIn: r.u64('staked in'),
    feesIn: r.u64('fees in'),
    minted: r.u64('minted'),
    slashed: r.u64('slashed'),
    released: r.u64('released'),
    held: r.u64('held'),
  };
  const nh = r.count(MAX_SNAPSHOT_HEADS, 'shard heads');
  const heads: ShardHead[] = [];
  for (let i = 0; i < nh; i++) {
    const shard = r.u32('head shard');
    if (i > 0 && shard <= heads[i - 1]!.shard) throw new QnexusError('MALFORMED', `shard heads out of order (${shard} after ${heads[i - 1]!.shard})`);
    heads.push({ shard, height: r.u64n('head height'), blockHash: r.fixed(HASH_BYTES, 'head block hash'), slot: r.u64n('head slot'), round: r.u64n('head round') });
  }
  const np = r.count(MAX_SNAPSHOT_PEERS, 'snapshot peers');
  const peers: SnapshotPeer[] = [];
  for (let i = 0; i < np; i++) {
    const validator = r.fixed(ADDRESS_BYTES, 'peer validator');
    if (i > 0 && compareBytes(validator, peers[i - 1]!.validator) <= 0) throw new QnexusError('MALFORMED', 'snapshot peers out of validator order');
    const peerId = r.string(MAX_PEER_ID_BYTES, 'peer id');
    if (peerId.length === 0) throw new QnexusError('MALFORMED', 'empty peer id');
    peers.push({ validator, peerId });
  }
  return { chainId, slot, epoch, validators, totals, heads, peers };
}

export function registrySnapshotSigningBytes(s: RegistrySnapshot): Uint8Array {
  return signingBytes(s.chainId, 'beacon', encodeRegistrySnapshotBody(s));
}

export function encodeRegistrySnapshot(s: SignedRegistrySnapshot): Uint8Array {
  const body = encodeRegistrySnapshotBody(s.body);
  return new Writer(body.length + s.signature.length + 16).bytes(body).bytes(s.signature).finish();
}

/** Bound on a snapshot body: validators, totals, heads and peers at their limits. */
const MAX_SNAPSHOT_BODY_BYTES = 16 * MAX_COMMITTEE * 200 + MAX_SNAPSHOT_HEADS * 64 + MAX_SNAPSHOT_PEERS * MAX_SNAPSHOT_PEER_BYTES + 512;

export function decodeRegistrySnapshot(b: Uint8Array): SignedRegistrySnapshot {
  return decodeWith(b, 'registry snapshot', (r) => ({
    body: decodeWith(r.bytes(MAX_SNAPSHOT_BODY_BYTES, 'snapshot body'), 'registry snapshot body', readRegistrySnapshotBody),
    signature: r.bytes(MAX_SIGNATURE_BYTES, 'snapshot signature'),
  }));
}

/** Protocol on which a shard node takes the beacon's signed system entries (prepare requests, decisions). */
export function shardXProtocol(chainId: string, shard: number): string {
  return `/qnexus/${chainId}/shard/${shard}/2pc/1.0.0`;
}

/** JSON shape of a registry entry, shared by the beacon's and the nodes' `GET /v1/validators`. */
export interface ValidatorInfoJson {
  address: string;
  home: string;
  stake: string;
  status: ValidatorStatus;
  shard: number | null;
  activationEpoch: number | null;
  exitEpoch: number | null;
  withdrawableEpoch: number | null;
  rewards: string;
  slashed: string;
  /** Participation in the last epoch whose rewards were computed (rate = signed / blocks, null when no blocks). */
  participation: { epoch: number | null; signed: number; blocks: number; rate: number | null };
  lifetime: { signed: number; blocks: number; rate: number | null };
}

export interface StakingTotalsJson {
  genesisStake: string;
  stakedIn: string;
  feesIn: string;
  minted: string;
  slashed: string;
  released: string;
  held: string;
}

const rate = (p: Participation): number | null => (p.blocks === 0 ? null : p.signed / p.blocks);

export function validatorInfoToJson(v: ValidatorInfo): ValidatorInfoJson {
  return {
    address: formatAddress(v.address),
    home: formatAddress(v.home),
    stake: v.stake.toString(),
    status: v.status,
    shard: v.shard,
    activationEpoch: v.activationEpoch,
    exitEpoch: v.exitEpoch,
    withdrawableEpoch: v.withdrawableEpoch,
    rewards: v.rewards.toString(),
    slashed: v.slashed.toString(),
    participation: { epoch: v.lastEpoch, signed: v.last.signed, blocks: v.last.blocks, rate: rate(v.last) },
    lifetime: { signed: v.lifetime.signed, blocks: v.lifetime.blocks, rate: rate(v.lifetime) },
  };
}

export function stakingTotalsToJson(t: StakingTotals): StakingTotalsJson {
  return {
    genesisStake: t.genesisStake.toString(),
    stakedIn: t.stakedIn.toString(),
    feesIn: t.feesIn.toString(),
    minted: t.minted.toString(),
    slashed: t.slashed.toString(),
    released: t.released.toString(),
    held: t.held.toString(),
  };
}
