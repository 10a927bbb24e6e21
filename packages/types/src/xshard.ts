import { ADDRESS_BYTES, HASH_BYTES, addressFromPublicKey, formatAddress, signingBytes } from '@qnexus/crypto';
import { QnexusError } from './errors.js';
import { Writer, decodeWith, type Reader } from './codec.js';
import type { MerkleProofStep } from './merkle.js';
import {
  CODEC_VERSION,
  MAX_CHAIN_ID_BYTES,
  MAX_COMMITTEE,
  MAX_PUBLIC_KEY_BYTES,
  MAX_SIGNATURE_BYTES,
  decodeCertificate,
  decodeHeader,
  encodeCertificate,
  encodeHeader,
  encodeXferInfo,
  readXferInfo,
  type BlockHeader,
  type Certificate,
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

export const MAX_PROOF_STEPS = 64;

function writeProof(w: Writer, proof: readonly MerkleProofStep[]): void {
  w.u32(proof.length);
  for (const s of proof) w.u8(s.left ? 1 : 0).fixed(s.hash, HASH_BYTES);
}

function readProof(r: Reader): MerkleProofStep[] {
  const n = r.count(MAX_PROOF_STEPS, 'proof steps');
  const out: MerkleProofStep[] = [];
  for (let i = 0; i < n; i++) {
    const l = r.u8('proof side');
    if (l > 1) throw new QnexusError('MALFORMED', 'bad proof side');
    out.push({ left: l === 1, hash: r.fixed(HASH_BYTES, 'proof hash') });
  }
  return out;
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

/** One transfer record and its Merkle path to the certified block's state root. */
export interface ReportItem {
  record: Uint8Array;
  proof: MerkleProofStep[];
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

/** A 2PC request to the beacon: a hello (binding only) or a report. */
export type BeaconRequest = { type: 'hello'; binding: SignedPeerBinding } | { type: 'report'; report: XReport };

export function encodeBeaconRequest(m: BeaconRequest): Uint8Array {
  const w = new Writer(16 * 1024).u8(CODEC_VERSION);
  if (m.type === 'hello') {
    w.u8(1);
    writeSignedBinding(w, m.binding);
  } else {
    const rep = m.report;
    w.u8(2);
    writeSignedBinding(w, rep.binding);
    w.bytes(encodeHeader(rep.header)).bytes(encodeCertificate(rep.certificate)).u32(rep.items.length);
    for (const it of rep.items) {
      w.bytes(it.record);
      writeProof(w, it.proof);
    }
  }
  return w.finish();
}

export function decodeBeaconRequest(b: Uint8Array): BeaconRequest {
  return decodeWith(b, 'beacon request', (r) => {
    version(r, 'beacon request');
    const t = r.u8('request type');
    const binding = readSignedBinding(r);
    if (t === 1) return { type: 'hello', binding };
    if (t !== 2) throw new QnexusError('MALFORMED', `unknown beacon request type ${t}`);
    const header = decodeHeader(r.bytes(1024, 'header'));
    const certificate = decodeCertificate(r.bytes(MAX_COMMITTEE * (MAX_SIGNATURE_BYTES + 64) + 64, 'certificate'));
    const n = r.count(MAX_REPORT_ITEMS, 'report items');
    const items: ReportItem[] = [];
    for (let i = 0; i < n; i++) items.push({ record: r.bytes(512, 'record'), proof: readProof(r) });
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

export interface CommitteeMemberRef {
  address: Uint8Array;
  stake: bigint;
}

/**
 * Signed by the beacon, published on `/qnexus/<chainId>/beacon/epochs`: the
 * epoch's seed and each shard's committee. Re-published during the epoch
 * (`issuedSlot` makes each copy a distinct gossip message).
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

export function encodeEpochAnnouncementBody(a: EpochAnnouncement): Uint8Array {
  const w = new Writer(1024).u8(CODEC_VERSION).string(a.chainId).u64(a.epoch).u64(a.startSlot).fixed(a.seed, HASH_BYTES).u32(a.committees.length);
  for (const c of a.committees) {
    w.u32(c.shard).u32(c.members.length);
    for (const m of c.members) w.fixed(m.address, ADDRESS_BYTES).u64(m.stake);
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
    for (let j = 0; j < nm; j++) members.push({ address: r.fixed(ADDRESS_BYTES, 'member'), stake: r.u64('stake') });
    committees.push({ shard, members });
  }
  return { chainId, epoch, startSlot, seed, committees, issuedSlot: r.u64n('issued slot') };
}

export function epochAnnouncementSigningBytes(a: EpochAnnouncement): Uint8Array {
  return signingBytes(a.chainId, 'beacon', encodeEpochAnnouncementBody(a));
}

export function encodeEpochAnnouncement(a: SignedEpochAnnouncement): Uint8Array {
  return new Writer(2048 + a.signature.length).bytes(encodeEpochAnnouncementBody(a.body)).bytes(a.signature).finish();
}

export function decodeEpochAnnouncement(b: Uint8Array): SignedEpochAnnouncement {
  return decodeWith(b, 'epoch announcement', (r) => ({
    body: decodeWith(r.bytes(64 * (8 + MAX_COMMITTEE * 28) + 256, 'announcement body'), 'announcement body', readEpochAnnouncementBody),
    signature: r.bytes(MAX_SIGNATURE_BYTES, 'announcement signature'),
  }));
}

/** Gossip topic of the beacon's epoch announcements, and the 2PC stream protocols. */
export function beaconTopics(chainId: string): { epochs: string; protocol: string } {
  return { epochs: `/qnexus/${chainId}/beacon/epochs`, protocol: `/qnexus/${chainId}/beacon/2pc/1.0.0` };
}

/** Protocol on which a shard node takes the beacon's signed system entries (prepare requests, decisions). */
export function shardXProtocol(chainId: string, shard: number): string {
  return `/qnexus/${chainId}/shard/${shard}/2pc/1.0.0`;
}
