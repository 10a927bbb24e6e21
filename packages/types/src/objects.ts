import {
  ADDRESS_BYTES,
  HASH_BYTES,
  addressFromPublicKey,
  formatAddress,
  SCHEMES,
  isValidChainId,
  schemeLengths,
  sha256,
  signingBytes,
  toHex,
} from '@qnexus/crypto';
import { QnexusError } from './errors.js';
import { Writer, decodeWith, type Reader } from './codec.js';
import { merkleLeaf, merkleRootOfLeafHashes } from './merkle.js';

export const CODEC_VERSION = 1;
/** Largest ML-DSA-87 key (2592) and signature (4627) plus headroom. */
export const MAX_PUBLIC_KEY_BYTES = 2592;
export const MAX_SIGNATURE_BYTES = 4627;
/** A stake transaction carries two keys and two signatures: 14.5 KB with ML-DSA-87. */
export const MAX_TX_BYTES = 16384;
export const MAX_CHAIN_ID_BYTES = 64;
export const MAX_BLOCK_TXS = 10_000;
export const MAX_BLOCK_BYTES = 8 * 1024 * 1024;
export const MAX_COMMITTEE = 1024;

function readChainId(r: Reader): string {
  const id = r.string(MAX_CHAIN_ID_BYTES, 'chain id');
  if (!isValidChainId(id)) throw new QnexusError('MALFORMED', `invalid chain id ${JSON.stringify(id)}`);
  return id;
}

function readVersion(r: Reader, what: string): void {
  const v = r.u8(`${what} version`);
  if (v !== CODEC_VERSION) throw new QnexusError('MALFORMED', `unsupported ${what} version ${v}`);
}

// ---------------------------------------------------------------- transactions

/**
 * A transaction's message: `kind` is the u16 `(module id << 8) | message
 * type`, `msg` the module's canonical encoding of it. The envelope codec does
 * not interpret `msg`: the application (the modules wired into it) decodes and
 * validates it, so adding a module never touches this file.
 */
export interface TxMsg {
  kind: number;
  msg: Uint8Array;
}

/** Module id of the built-in 2PC engine (`xfer`): its prepare (type 1) and decision (type 2) entries are the beacon's. */
export const XFER_MODULE_ID = 2;
export const XPREPARE_KIND = (XFER_MODULE_ID << 8) | 1;
export const XDECISION_KIND = (XFER_MODULE_ID << 8) | 2;

/** The beacon's "shard number" as a 2PC participant. */
export const BEACON_SHARD = 0xffff;
/** Bounds of an XferInfo's module-defined parts. */
export const MAX_XFER_PAYLOAD_BYTES = 3072;
export const MAX_DENOM_BYTES = 64;

/**
 * What both participants and the beacon agree a cross-shard operation is.
 * `module` and `op` name the operation (its effects are the module's
 * callbacks); `amount` of `denom` is what the generic escrow moves from
 * `from` on the source to `to` on the destination; `payload` is the op's
 * own bounded data (e.g. a validator key). `id` is the source transaction's
 * id (or a hash naming a system-made record); `deadlineSlot` is fixed by the
 * source block's slot plus genesis `xferTimeoutSlots`.
 */
export interface XferInfo {
  module: number;
  op: number;
  denom: string;
  id: Uint8Array;
  srcShard: number;
  dstShard: number;
  from: Uint8Array;
  to: Uint8Array;
  amount: bigint;
  deadlineSlot: number;
  payload: Uint8Array;
}

/**
 * System entries are authored by the beacon, not by an account: nonce and fee
 * are 0, the public key is the genesis beacon key and the signature is over the
 * `qnexus/<chainId>/beacon` domain, so no user transaction can pass for one.
 */
export function isSystemKind(kind: number): boolean {
  return kind === XPREPARE_KIND || kind === XDECISION_KIND;
}

export function encodeXferInfo(w: Writer, x: XferInfo): Writer {
  return w
    .u8(x.module)
    .u8(x.op)
    .string(x.denom)
    .fixed(x.id, HASH_BYTES)
    .u32(x.srcShard)
    .u32(x.dstShard)
    .fixed(x.from, ADDRESS_BYTES)
    .fixed(x.to, ADDRESS_BYTES)
    .u64(x.amount)
    .u64(x.deadlineSlot)
    .bytes(x.payload);
}

export function readXferInfo(r: Reader): XferInfo {
  return {
    module: r.u8('transfer module'),
    op: r.u8('transfer op'),
    denom: r.string(MAX_DENOM_BYTES, 'denom'),
    id: r.fixed(HASH_BYTES, 'transfer id'),
    srcShard: r.u32('source shard'),
    dstShard: r.u32('destination shard'),
    from: r.fixed(ADDRESS_BYTES, 'sender'),
    to: r.fixed(ADDRESS_BYTES, 'recipient'),
    amount: r.u64('amount'),
    deadlineSlot: r.u64n('deadline slot'),
    payload: r.bytes(MAX_XFER_PAYLOAD_BYTES, 'transfer payload'),
  };
}

export function xferInfoEqual(a: XferInfo, b: XferInfo): boolean {
  return (
    a.module === b.module &&
    a.op === b.op &&
    a.denom === b.denom &&
    toHex(a.payload) === toHex(b.payload) &&
    toHex(a.id) === toHex(b.id) &&
    a.srcShard === b.srcShard &&
    a.dstShard === b.dstShard &&
    toHex(a.from) === toHex(b.from) &&
    toHex(a.to) === toHex(b.to) &&
    a.amount === b.amount &&
    a.deadlineSlot === b.deadlineSlot
  );
}

/** The beacon's prepare entry: destination, record whether you accept this (system entry). */
export function encodeXPrepare(x: XferInfo): TxMsg {
  return { kind: XPREPARE_KIND, msg: encodeXferInfo(new Writer(256 + x.payload.length), x).finish() };
}

/** The beacon's decision entry: the logged outcome, to both sides (system entry). */
export function encodeXDecision(x: XferInfo, commit: boolean): TxMsg {
  return { kind: XDECISION_KIND, msg: encodeXferInfo(new Writer(256 + x.payload.length), x).u8(commit ? 1 : 0).finish() };
}

/** Decode a system entry's message; throws TX_MALFORMED. */
export function decodeSystemMsg(m: TxMsg): { prepare: true; xfer: XferInfo } | { prepare: false; xfer: XferInfo; commit: boolean } {
  try {
    if (m.kind === XPREPARE_KIND) return { prepare: true, xfer: decodeWith(m.msg, 'prepare entry', readXferInfo) };
    if (m.kind === XDECISION_KIND) {
      return decodeWith(m.msg, 'decision entry', (r) => {
        const xfer = readXferInfo(r);
        const c = r.u8('decision');
        if (c > 1) throw new QnexusError('MALFORMED', `bad decision flag ${c}`);
        return { prepare: false as const, xfer, commit: c === 1 };
      });
    }
  } catch (e) {
    if (e instanceof QnexusError && e.code === 'MALFORMED') throw new QnexusError('TX_MALFORMED', e.message);
    throw e;
  }
  throw new QnexusError('TX_MALFORMED', `kind ${m.kind} is not a beacon entry`);
}

interface TxBodyCommon {
  chainId: string;
  nonce: bigint;
  fee: bigint;
  payload: TxMsg;
}

/** A body that carries its signer's ML-DSA public key: any node verifies it statelessly, and its first application registers the key. */
export interface KeyedTxBody extends TxBodyCommon {
  /** The signer's ML-DSA public key; the sender is its address. */
  publicKey: Uint8Array;
}

/**
 * A body that names its signer by address only (ADDRESS_BYTES on the wire instead of a
 * 1,312–2,592-byte key). Valid only once the address's key is registered in the state
 * before the block (the head state at admission): the signature is checked against it.
 * Beacon entries always carry their key.
 */
export interface KeylessTxBody extends TxBodyCommon {
  /** The sender's address; its key is the one the state registered. */
  address: Uint8Array;
  /** Absent: `publicKey === undefined` is what tells the two forms apart. */
  publicKey?: undefined;
}

/**
 * A transaction body. On the wire both forms share one length-prefixed field: a public key
 * (one of the ML-DSA key lengths) or exactly ADDRESS_BYTES (an address: no ML-DSA key is that
 * short), so the form is unambiguous, the encoding canonical, and bodies that carry a key
 * encode (and hash) exactly as before the keyless form existed.
 */
export type TxBody = KeyedTxBody | KeylessTxBody;

/** Lengths the signer field may have: an address, or the public key of one of the ML-DSA schemes. */
const SIGNER_FIELD_LENGTHS: ReadonlySet<number> = new Set([ADDRESS_BYTES, ...SCHEMES.map((s) => schemeLengths(s).publicKey)]);

export interface SignedTx {
  body: TxBody;
  signature: Uint8Array;
}

/** The signer field's bytes: the key, or the address of a keyless body. */
function signerField(b: TxBody): Uint8Array {
  if (b.publicKey !== undefined) return b.publicKey;
  if (b.address.length !== ADDRESS_BYTES) throw new QnexusError('TX_MALFORMED', `a keyless body names its signer by a ${ADDRESS_BYTES}-byte address, not ${b.address.length} bytes`);
  return b.address;
}

export function encodeTxBody(b: TxBody): Uint8Array {
  const signer = signerField(b);
  return new Writer(signer.length + b.payload.msg.length + 64)
    .u8(CODEC_VERSION)
    .string(b.chainId)
    .u16(b.payload.kind)
    .u64(b.nonce)
    .u64(b.fee)
    .bytes(signer)
    .bytes(b.payload.msg)
    .finish();
}

function readTxBody(r: Reader): TxBody {
  readVersion(r, 'tx');
  const chainId = readChainId(r);
  const kind = r.u16('tx kind');
  const nonce = r.u64('nonce');
  const fee = r.u64('fee');
  const signer = r.bytes(MAX_PUBLIC_KEY_BYTES, 'public key');
  // Strict: an address, or a key of some ML-DSA scheme (the chain's own is checked statelessly: TX_WRONG_SCHEME).
  if (!SIGNER_FIELD_LENGTHS.has(signer.length)) {
    throw new QnexusError('MALFORMED', `signer field of ${signer.length} bytes is neither an address (${ADDRESS_BYTES}) nor an ML-DSA public key`);
  }
  const msg = r.bytes(MAX_TX_BYTES, 'message');
  const payload = { kind, msg };
  return signer.length === ADDRESS_BYTES ? { chainId, nonce, fee, address: signer, payload } : { chainId, nonce, fee, publicKey: signer, payload };
}

export function encodeTx(tx: SignedTx): Uint8Array {
  const body = encodeTxBody(tx.body);
  return new Writer(body.length + tx.signature.length + 8).bytes(body).bytes(tx.signature).finish();
}

/**
 * A decoded transaction with its derived identifiers, computed once.
 * `raw` is the exact wire encoding (what blocks carry and what is hashed).
 */
export interface TxEnvelope {
  tx: SignedTx;
  raw: Uint8Array;
  /** Bytes the signature covers: domain tag `qnexus/<chainId>/tx` + body. */
  signBytes: Uint8Array;
  /** Transaction id = SHA-256(signBytes): independent of the (hedged) signature bytes. */
  hash: Uint8Array;
  hashHex: string;
  /** The public key the body carries; null for a keyless body (resolve it from the state by `from`). */
  publicKey: Uint8Array | null;
  from: Uint8Array;
  fromStr: string;
}

/** Decode a wire transaction envelope (the message stays opaque: the app decodes it). Throws QnexusError TX_TOO_LARGE / TX_MALFORMED. Does not verify the signature. */
export function openTx(raw: Uint8Array): TxEnvelope {
  if (raw.length > MAX_TX_BYTES) throw new QnexusError('TX_TOO_LARGE', `transaction is ${raw.length} bytes; the limit is ${MAX_TX_BYTES}`);
  let bodyBytes!: Uint8Array;
  let tx: SignedTx;
  try {
    // The envelope keeps `raw`: its fields (signature, key, message) are views into it, not copies.
    tx = decodeWith(
      raw,
      'transaction',
      (r) => {
        bodyBytes = r.bytes(MAX_TX_BYTES, 'tx body');
        const body = decodeWith(bodyBytes, 'transaction body', readTxBody, true);
        const signature = r.bytes(MAX_SIGNATURE_BYTES, 'signature');
        return { body, signature };
      },
      true,
    );
  } catch (e) {
    if (e instanceof QnexusError && e.code === 'MALFORMED') throw new QnexusError('TX_MALFORMED', e.message);
    throw e;
  }
  const signBytes = signingBytes(tx.body.chainId, isSystemKind(tx.body.payload.kind) ? 'beacon' : 'tx', bodyBytes);
  const hash = sha256(signBytes);
  const b = tx.body;
  const publicKey = b.publicKey ?? null;
  const from = b.publicKey !== undefined ? addressFromPublicKey(b.publicKey) : b.address;
  return { tx, raw, signBytes, hash, hashHex: toHex(hash), publicKey, from, fromStr: formatAddress(from) };
}

export function txSigningBytes(body: TxBody): Uint8Array {
  return signingBytes(body.chainId, isSystemKind(body.payload.kind) ? 'beacon' : 'tx', encodeTxBody(body));
}

export function txRoot(txHashes: readonly Uint8Array[]): Uint8Array {
  return merkleRootOfLeafHashes(txHashes.map(merkleLeaf));
}

// ---------------------------------------------------------------- blocks

export interface BlockHeader {
  chainId: string;
  shard: number;
  height: number;
  /** Slot in which this block was first proposed (rounds are slots). */
  slot: number;
  parentHash: Uint8Array;
  /** Root of the full state after applying this block. */
  stateRoot: Uint8Array;
  txRoot: Uint8Array;
  proposer: Uint8Array;
  txCount: number;
}

export interface Block {
  header: BlockHeader;
  /** The proposer's ML-DSA signature over `qnexus/<chainId>/block` + header. */
  signature: Uint8Array;
  /** Wire-encoded transactions, in execution order. */
  txs: Uint8Array[];
}

export function encodeHeader(h: BlockHeader): Uint8Array {
  return new Writer(200)
    .u8(CODEC_VERSION)
    .string(h.chainId)
    .u32(h.shard)
    .u64(h.height)
    .u64(h.slot)
    .fixed(h.parentHash, HASH_BYTES)
    .fixed(h.stateRoot, HASH_BYTES)
    .fixed(h.txRoot, HASH_BYTES)
    .fixed(h.proposer, ADDRESS_BYTES)
    .u32(h.txCount)
    .finish();
}

function readHeader(r: Reader): BlockHeader {
  readVersion(r, 'header');
  return {
    chainId: readChainId(r),
    shard: r.u32('shard'),
    height: r.u64n('height'),
    slot: r.u64n('slot'),
    parentHash: r.fixed(HASH_BYTES, 'parent hash'),
    stateRoot: r.fixed(HASH_BYTES, 'state root'),
    txRoot: r.fixed(HASH_BYTES, 'tx root'),
    proposer: r.fixed(ADDRESS_BYTES, 'proposer'),
    txCount: r.u32('tx count'),
  };
}

export function decodeHeader(b: Uint8Array): BlockHeader {
  return decodeWith(b, 'block header', readHeader);
}

export function headerSigningBytes(h: BlockHeader): Uint8Array {
  return signingBytes(h.chainId, 'block', encodeHeader(h));
}

/** Block id = SHA-256 of the signed header bytes (excludes the hedged signature, so it is stable). */
export function blockHash(h: BlockHeader): Uint8Array {
  return sha256(headerSigningBytes(h));
}

export function encodeBlock(b: Block): Uint8Array {
  const header = encodeHeader(b.header);
  let size = 4 + header.length + 4 + b.signature.length + 4;
  for (const t of b.txs) size += 4 + t.length;
  const w = new Writer(size).bytes(header).bytes(b.signature).u32(b.txs.length);
  for (const t of b.txs) w.bytes(t);
  return w.finish();
}

export function decodeBlock(bytes: Uint8Array): Block {
  if (bytes.length > MAX_BLOCK_BYTES) throw new QnexusError('MALFORMED', `block of ${bytes.length} bytes exceeds ${MAX_BLOCK_BYTES}`);
  return decodeWith(bytes, 'block', (r) => {
    const header = decodeWith(r.bytes(1024, 'header'), 'block header', readHeader);
    const signature = r.bytes(MAX_SIGNATURE_BYTES, 'block signature');
    const n = r.count(MAX_BLOCK_TXS, 'block txs');
    if (n !== header.txCount) throw new QnexusError('MALFORMED', `header says ${header.txCount} txs, body has ${n}`);
    const txs: Uint8Array[] = [];
    for (let i = 0; i < n; i++) txs.push(r.bytes(MAX_TX_BYTES, 'tx'));
    return { header, signature, txs };
  });
}

// ---------------------------------------------------------------- votes

export type VoteStep = 'prevote' | 'precommit';
const STEP_CODE: Record<VoteStep, number> = { prevote: 1, precommit: 2 };

export interface VoteBody {
  chainId: string;
  shard: number;
  height: number;
  round: number;
  step: VoteStep;
  /** null = a vote for nil. */
  blockHash: Uint8Array | null;
  validator: Uint8Array;
}

export interface SignedVote {
  body: VoteBody;
  signature: Uint8Array;
}

export function encodeVoteBody(v: VoteBody): Uint8Array {
  const w = new Writer(128)
    .u8(CODEC_VERSION)
    .string(v.chainId)
    .u32(v.shard)
    .u64(v.height)
    .u64(v.round)
    .u8(STEP_CODE[v.step]);
  if (v.blockHash) w.u8(1).fixed(v.blockHash, HASH_BYTES);
  else w.u8(0);
  return w.fixed(v.validator, ADDRESS_BYTES).finish();
}

function readVoteBody(r: Reader): VoteBody {
  readVersion(r, 'vote');
  const chainId = readChainId(r);
  const shard = r.u32('shard');
  const height = r.u64n('height');
  const round = r.u64n('round');
  const sc = r.u8('step');
  const step: VoteStep | undefined = sc === 1 ? 'prevote' : sc === 2 ? 'precommit' : undefined;
  if (!step) throw new QnexusError('MALFORMED', `unknown vote step ${sc}`);
  const has = r.u8('nil flag');
  if (has > 1) throw new QnexusError('MALFORMED', 'bad nil flag');
  const blockHash = has ? r.fixed(HASH_BYTES, 'block hash') : null;
  return { chainId, shard, height, round, step, blockHash, validator: r.fixed(ADDRESS_BYTES, 'validator') };
}

export function voteSigningBytes(v: VoteBody): Uint8Array {
  return signingBytes(v.chainId, 'vote', encodeVoteBody(v));
}

export function encodeVote(v: SignedVote): Uint8Array {
  return new Writer(v.signature.length + 160).bytes(encodeVoteBody(v.body)).bytes(v.signature).finish();
}

export function decodeVote(bytes: Uint8Array): SignedVote {
  return decodeWith(bytes, 'vote', readSignedVote);
}

function readSignedVote(r: Reader): SignedVote {
  return {
    body: decodeWith(r.bytes(256, 'vote body'), 'vote body', readVoteBody),
    signature: r.bytes(MAX_SIGNATURE_BYTES, 'vote signature'),
  };
}

/**
 * A vote as gossiped: the signed vote, then, on a re-send only, a u32 re-send counter (≥ 1)
 * outside the signature. gossipsub ids messages by content and drops a repeat for minutes, so a
 * re-sent vote needs different bytes; the counter gives them without signing again (an ML-DSA
 * signature costs as much as ~4 verifications). A first send is exactly `encodeVote`.
 */
export function encodeVoteGossip(v: SignedVote, resend = 0): Uint8Array {
  const vote = encodeVote(v);
  if (resend === 0) return vote;
  if (!Number.isInteger(resend) || resend < 0 || resend > 0xffff_ffff) throw new RangeError(`re-send counter ${resend} out of range`);
  const out = new Uint8Array(vote.length + 4);
  out.set(vote);
  new DataView(out.buffer).setUint32(vote.length, resend);
  return out;
}

/** Decode `encodeVoteGossip` output (the counter, which nothing signs, is dropped). */
export function decodeVoteGossip(bytes: Uint8Array): SignedVote {
  return decodeWith(bytes, 'vote', (r) => {
    const v = readSignedVote(r);
    if (r.remaining > 0 && r.u32('re-send counter') === 0) throw new QnexusError('MALFORMED', 'a re-send counter is at least 1');
    return v;
  });
}

// ---------------------------------------------------------------- proposals

export interface ProposalBody {
  chainId: string;
  shard: number;
  height: number;
  round: number;
  /** Round in which the proposed block got a polka, or -1 (fresh proposal). */
  validRound: number;
  blockHash: Uint8Array;
  proposer: Uint8Array;
}

export function encodeProposalBody(p: ProposalBody): Uint8Array {
  return new Writer(128)
    .u8(CODEC_VERSION)
    .string(p.chainId)
    .u32(p.shard)
    .u64(p.height)
    .u64(p.round)
    .u64(p.validRound + 1) // -1 encodes as 0
    .fixed(p.blockHash, HASH_BYTES)
    .fixed(p.proposer, ADDRESS_BYTES)
    .finish();
}

function readProposalBody(r: Reader): ProposalBody {
  readVersion(r, 'proposal');
  return {
    chainId: readChainId(r),
    shard: r.u32('shard'),
    height: r.u64n('height'),
    round: r.u64n('round'),
    validRound: r.u64n('valid round') - 1,
    blockHash: r.fixed(HASH_BYTES, 'block hash'),
    proposer: r.fixed(ADDRESS_BYTES, 'proposer'),
  };
}

export function proposalSigningBytes(p: ProposalBody): Uint8Array {
  return signingBytes(p.chainId, 'proposal', encodeProposalBody(p));
}

// ---------------------------------------------------------------- finality certificates

export interface CertificateVote {
  validator: Uint8Array;
  signature: Uint8Array;
}

/**
 * The precommits of > 2/3 of the committee's stake for one block in one round.
 * Each vote's signed body is reconstructed from these fields (chain id and
 * shard come from the block header), so the certificate stores only signers.
 */
export interface Certificate {
  height: number;
  round: number;
  blockHash: Uint8Array;
  votes: CertificateVote[];
}

export function encodeCertificate(c: Certificate): Uint8Array {
  const w = new Writer(64 + c.votes.length * 2500).u8(CODEC_VERSION).u64(c.height).u64(c.round).fixed(c.blockHash, HASH_BYTES).u32(c.votes.length);
  for (const v of c.votes) w.fixed(v.validator, ADDRESS_BYTES).bytes(v.signature);
  return w.finish();
}

export function decodeCertificate(bytes: Uint8Array): Certificate {
  return decodeWith(bytes, 'certificate', (r) => {
    readVersion(r, 'certificate');
    const height = r.u64n('height');
    const round = r.u64n('round');
    const blockHash = r.fixed(HASH_BYTES, 'block hash');
    const n = r.count(MAX_COMMITTEE, 'certificate votes');
    const votes: CertificateVote[] = [];
    for (let i = 0; i < n; i++) votes.push({ validator: r.fixed(ADDRESS_BYTES, 'validator'), signature: r.bytes(MAX_SIGNATURE_BYTES, 'signature') });
    return { height, round, blockHash, votes };
  });
}

/** The vote body a certificate entry signed. */
export function certificateVoteBody(c: Certificate, chainId: string, shard: number, validator: Uint8Array): VoteBody {
  return { chainId, shard, height: c.height, round: c.round, step: 'precommit', blockHash: c.blockHash, validator };
}

// ---------------------------------------------------------------- equivocation evidence

/** Two conflicting signed votes by one validator for the same (height, round, step). */
export interface VoteEvidence {
  first: SignedVote;
  second: SignedVote;
}

export function encodeEvidence(e: VoteEvidence): Uint8Array {
  return new Writer(6000).u8(CODEC_VERSION).bytes(encodeVote(e.first)).bytes(encodeVote(e.second)).finish();
}

export function decodeEvidence(bytes: Uint8Array): VoteEvidence {
  return decodeWith(bytes, 'evidence', (r) => {
    readVersion(r, 'evidence');
    return { first: decodeVote(r.bytes(8192, 'vote')), second: decodeVote(r.bytes(8192, 'vote')) };
  });
}

/** One piece of evidence per (validator, height, round, step), whichever two conflicting votes prove it. */
export function evidenceKey(e: VoteEvidence): string {
  const b = e.first.body;
  return `${formatAddress(b.validator)}/${b.height}/${b.round}/${b.step}`;
}

// ---------------------------------------------------------------- gossip tx batches

/**
 * Transactions travel on gossip in small batches: gossipsub's cost is per
 * message (≈0.2–0.5 ms of CPU per message per process), so carrying many
 * ~3.8 KB transactions per message cuts relay overhead by the batch size.
 */
export const MAX_TX_BATCH = 64;
export const MAX_TX_BATCH_BYTES = MAX_TX_BATCH * (MAX_TX_BYTES + 4) + 16;

export function encodeTxBatch(raws: readonly Uint8Array[]): Uint8Array {
  if (raws.length === 0 || raws.length > MAX_TX_BATCH) throw new RangeError(`a tx batch holds 1..${MAX_TX_BATCH} transactions`);
  let size = 1 + 4;
  for (const r of raws) size += 4 + r.length;
  const w = new Writer(size).u8(CODEC_VERSION).u32(raws.length);
  for (const r of raws) w.bytes(r);
  return w.finish();
}

/** Splits a batch into raw transactions (each still to be opened and checked). */
export function decodeTxBatch(bytes: Uint8Array): Uint8Array[] {
  if (bytes.length > MAX_TX_BATCH_BYTES) throw new QnexusError('MALFORMED', `tx batch of ${bytes.length} bytes exceeds ${MAX_TX_BATCH_BYTES}`);
  return decodeWith(bytes, 'tx batch', (r) => {
    readVersion(r, 'tx batch');
    const n = r.count(MAX_TX_BATCH, 'batch txs');
    if (n === 0) throw new QnexusError('MALFORMED', 'empty tx batch');
    const out: Uint8Array[] = [];
    for (let i = 0; i < n; i++) out.push(r.bytes(MAX_TX_BYTES, 'tx'));
    return out;
  });
}

// ---------------------------------------------------------------- compact proposals

/**
 * A proposal as gossiped: the signed proposal body, the signed block header
 * and the block's transaction ids. Receivers already hold (almost) all the
 * transactions from tx gossip, so the block is rebuilt from the mempool and
 * missing transactions are fetched by id; sending full blocks doubled the
 * bytes on the wire per transaction. The header commits to the ids (txRoot).
 */
export interface CompactProposal {
  body: ProposalBody;
  signature: Uint8Array;
  header: BlockHeader;
  headerSignature: Uint8Array;
  txHashes: Uint8Array[];
}

export function encodeCompactProposal(p: CompactProposal): Uint8Array {
  const w = new Writer(512 + p.signature.length * 2 + p.txHashes.length * HASH_BYTES)
    .u8(CODEC_VERSION)
    .bytes(encodeProposalBody(p.body))
    .bytes(p.signature)
    .bytes(encodeHeader(p.header))
    .bytes(p.headerSignature)
    .u32(p.txHashes.length);
  for (const h of p.txHashes) w.fixed(h, HASH_BYTES);
  return w.finish();
}

export function decodeCompactProposal(bytes: Uint8Array): CompactProposal {
  return decodeWith(bytes, 'compact proposal', (r) => {
    readVersion(r, 'compact proposal');
    const body = decodeWith(r.bytes(256, 'proposal body'), 'proposal body', readProposalBody);
    const signature = r.bytes(MAX_SIGNATURE_BYTES, 'proposal signature');
    const header = decodeWith(r.bytes(1024, 'header'), 'block header', readHeader);
    const headerSignature = r.bytes(MAX_SIGNATURE_BYTES, 'header signature');
    const n = r.count(MAX_BLOCK_TXS, 'tx ids');
    if (n !== header.txCount) throw new QnexusError('MALFORMED', `header says ${header.txCount} txs, proposal lists ${n}`);
    const txHashes: Uint8Array[] = [];
    for (let i = 0; i < n; i++) txHashes.push(r.fixed(HASH_BYTES, 'tx id'));
    return { body, signature, header, headerSignature, txHashes };
  });
}

/** Request for transactions by id (compact-proposal reconstruction). */
export function encodeTxIdList(ids: readonly Uint8Array[]): Uint8Array {
  const w = new Writer(4 + ids.length * HASH_BYTES).u32(ids.length);
  for (const h of ids) w.fixed(h, HASH_BYTES);
  return w.finish();
}

export function decodeTxIdList(bytes: Uint8Array): Uint8Array[] {
  return decodeWith(bytes, 'tx id list', (r) => {
    const n = r.count(MAX_BLOCK_TXS, 'tx ids');
    const out: Uint8Array[] = [];
    for (let i = 0; i < n; i++) out.push(r.fixed(HASH_BYTES, 'tx id'));
    return out;
  });
}
