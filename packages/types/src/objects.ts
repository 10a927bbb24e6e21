import {
  ADDRESS_BYTES,
  HASH_BYTES,
  addressFromPublicKey,
  formatAddress,
  isValidChainId,
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

export const TX_KIND = { transfer: 1, xtransfer: 2, xprepare: 3, xdecision: 4, stake: 5, unstake: 6 } as const;
export type TxKindName = keyof typeof TX_KIND;

export interface TransferPayload {
  kind: 'transfer';
  to: Uint8Array;
  amount: bigint;
}

/** A transfer to an account of another shard, settled by two-phase commit through the beacon. */
export interface XTransferPayload {
  kind: 'xtransfer';
  to: Uint8Array;
  amount: bigint;
}

/**
 * Bond `amount` from the signer (the funding, "home" account) to the validator
 * key `validatorPublicKey`. The validator key consents by signing
 * `stakeConsentSigningBytes(chainId, funder, validatorPublicKey)`, so nobody can
 * be made a validator (or have stake attributed to them) without their key.
 */
export interface StakePayload {
  kind: 'stake';
  validatorPublicKey: Uint8Array;
  amount: bigint;
  validatorSignature: Uint8Array;
}

/** Ask the beacon to take `validator` out of the committees; signed by its home account or by the validator key. */
export interface UnstakePayload {
  kind: 'unstake';
  validator: Uint8Array;
}

/** The bytes a validator key signs to consent to being staked by `funder`. */
export function stakeConsentSigningBytes(chainId: string, funder: Uint8Array, validatorPublicKey: Uint8Array): Uint8Array {
  return signingBytes(chainId, 'stake', new Writer(validatorPublicKey.length + 64).u8(CODEC_VERSION).fixed(funder, ADDRESS_BYTES).bytes(validatorPublicKey).finish());
}

/**
 * What moves through the two-phase-commit path. `transfer`: shard → shard
 * (xtransfer). The beacon is a participant too (shard number BEACON_SHARD):
 * `stake` (funder's shard → beacon: bonded stake; `data` is the validator's
 * public key), `unstake` (amount 0: a proven exit request), `fees` (a shard's
 * proposer fees of one epoch → the proposer's rewards at the beacon) and
 * `release` (beacon → home shard: stake + rewards paid out after unbonding).
 */
export type XferKind = 'transfer' | 'stake' | 'unstake' | 'fees' | 'release';
export const XFER_KINDS: readonly XferKind[] = ['transfer', 'stake', 'unstake', 'fees', 'release'];
/** The beacon's "shard number" as a 2PC participant. */
export const BEACON_SHARD = 0xffff;

/**
 * What both participants and the beacon agree a transfer is. `id` is the
 * source transaction's id (for `fees` and `release`, a hash naming the
 * epoch/validator); `deadlineSlot` is fixed by the source block's slot plus
 * genesis `xferTimeoutSlots`.
 */
export interface XferInfo {
  kind: XferKind;
  id: Uint8Array;
  srcShard: number;
  dstShard: number;
  from: Uint8Array;
  to: Uint8Array;
  amount: bigint;
  deadlineSlot: number;
  /** `stake`: the validator's public key (address = `to`); empty otherwise. */
  data: Uint8Array;
}

/** Beacon → destination shard: record whether you accept this credit (system entry, signed by the beacon). */
export interface XPreparePayload {
  kind: 'xprepare';
  xfer: XferInfo;
}

/** Beacon → both shards: the logged outcome (system entry, signed by the beacon). */
export interface XDecisionPayload {
  kind: 'xdecision';
  xfer: XferInfo;
  commit: boolean;
}

export type TxPayload = TransferPayload | XTransferPayload | XPreparePayload | XDecisionPayload | StakePayload | UnstakePayload;
export type SystemPayload = XPreparePayload | XDecisionPayload;

/**
 * System entries are authored by the beacon, not by an account: nonce and fee
 * are 0, the public key is the genesis beacon key and the signature is over the
 * `qnexus/<chainId>/beacon` domain, so no user transaction can pass for one.
 */
export function isSystemKind(kind: TxKindName): kind is SystemPayload['kind'] {
  return kind === 'xprepare' || kind === 'xdecision';
}

export function encodeXferInfo(w: Writer, x: XferInfo): Writer {
  return w
    .u8(XFER_KINDS.indexOf(x.kind))
    .fixed(x.id, HASH_BYTES)
    .u32(x.srcShard)
    .u32(x.dstShard)
    .fixed(x.from, ADDRESS_BYTES)
    .fixed(x.to, ADDRESS_BYTES)
    .u64(x.amount)
    .u64(x.deadlineSlot)
    .bytes(x.data);
}

export function readXferInfo(r: Reader): XferInfo {
  const k = r.u8('transfer kind');
  const kind = XFER_KINDS[k];
  if (kind === undefined) throw new QnexusError('MALFORMED', `unknown transfer kind ${k}`);
  return {
    kind,
    id: r.fixed(HASH_BYTES, 'transfer id'),
    srcShard: r.u32('source shard'),
    dstShard: r.u32('destination shard'),
    from: r.fixed(ADDRESS_BYTES, 'sender'),
    to: r.fixed(ADDRESS_BYTES, 'recipient'),
    amount: r.u64('amount'),
    deadlineSlot: r.u64n('deadline slot'),
    data: r.bytes(MAX_PUBLIC_KEY_BYTES, 'transfer data'),
  };
}

export function xferInfoEqual(a: XferInfo, b: XferInfo): boolean {
  return (
    a.kind === b.kind &&
    toHex(a.data) === toHex(b.data) &&
    toHex(a.id) === toHex(b.id) &&
    a.srcShard === b.srcShard &&
    a.dstShard === b.dstShard &&
    toHex(a.from) === toHex(b.from) &&
    toHex(a.to) === toHex(b.to) &&
    a.amount === b.amount &&
    a.deadlineSlot === b.deadlineSlot
  );
}

/** What the sender gives up: amount + fee for value transfers, nothing for system entries. */
export function txCost(b: TxBody): bigint {
  switch (b.payload.kind) {
    case 'transfer':
    case 'xtransfer':
    case 'stake':
      return b.payload.amount + b.fee;
    case 'unstake':
      return b.fee;
    default:
      return 0n;
  }
}

export interface TxBody {
  chainId: string;
  nonce: bigint;
  fee: bigint;
  /** The signer's ML-DSA public key: carried in every tx so any node verifies it statelessly. */
  publicKey: Uint8Array;
  payload: TxPayload;
}

export interface SignedTx {
  body: TxBody;
  signature: Uint8Array;
}

export function encodeTxBody(b: TxBody): Uint8Array {
  const w = new Writer(b.publicKey.length + 192)
    .u8(CODEC_VERSION)
    .string(b.chainId)
    .u8(TX_KIND[b.payload.kind])
    .u64(b.nonce)
    .u64(b.fee)
    .bytes(b.publicKey);
  switch (b.payload.kind) {
    case 'transfer':
    case 'xtransfer':
      w.fixed(b.payload.to, ADDRESS_BYTES).u64(b.payload.amount);
      break;
    case 'xprepare':
      encodeXferInfo(w, b.payload.xfer);
      break;
    case 'xdecision':
      encodeXferInfo(w, b.payload.xfer).u8(b.payload.commit ? 1 : 0);
      break;
    case 'stake':
      w.bytes(b.payload.validatorPublicKey).u64(b.payload.amount).bytes(b.payload.validatorSignature);
      break;
    case 'unstake':
      w.fixed(b.payload.validator, ADDRESS_BYTES);
      break;
  }
  return w.finish();
}

function readTxBody(r: Reader): TxBody {
  readVersion(r, 'tx');
  const chainId = readChainId(r);
  const kind = r.u8('tx kind');
  const nonce = r.u64('nonce');
  const fee = r.u64('fee');
  const publicKey = r.bytes(MAX_PUBLIC_KEY_BYTES, 'public key');
  let payload: TxPayload;
  switch (kind) {
    case TX_KIND.transfer:
      payload = { kind: 'transfer', to: r.fixed(ADDRESS_BYTES, 'recipient'), amount: r.u64('amount') };
      break;
    case TX_KIND.xtransfer:
      payload = { kind: 'xtransfer', to: r.fixed(ADDRESS_BYTES, 'recipient'), amount: r.u64('amount') };
      break;
    case TX_KIND.xprepare:
      payload = { kind: 'xprepare', xfer: readXferInfo(r) };
      break;
    case TX_KIND.xdecision: {
      const xfer = readXferInfo(r);
      const c = r.u8('decision');
      if (c > 1) throw new QnexusError('MALFORMED', `bad decision flag ${c}`);
      payload = { kind: 'xdecision', xfer, commit: c === 1 };
      break;
    }
    case TX_KIND.stake:
      payload = {
        kind: 'stake',
        validatorPublicKey: r.bytes(MAX_PUBLIC_KEY_BYTES, 'validator public key'),
        amount: r.u64('amount'),
        validatorSignature: r.bytes(MAX_SIGNATURE_BYTES, 'validator signature'),
      };
      break;
    case TX_KIND.unstake:
      payload = { kind: 'unstake', validator: r.fixed(ADDRESS_BYTES, 'validator') };
      break;
    default:
      throw new QnexusError('TX_UNKNOWN_KIND', `unknown transaction kind ${kind}`);
  }
  return { chainId, nonce, fee, publicKey, payload };
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
  from: Uint8Array;
  fromStr: string;
}

/** Decode a wire transaction. Throws QnexusError TX_TOO_LARGE / TX_MALFORMED / TX_UNKNOWN_KIND. Does not verify the signature. */
export function openTx(raw: Uint8Array): TxEnvelope {
  if (raw.length > MAX_TX_BYTES) throw new QnexusError('TX_TOO_LARGE', `transaction is ${raw.length} bytes; the limit is ${MAX_TX_BYTES}`);
  let bodyBytes!: Uint8Array;
  let tx: SignedTx;
  try {
    tx = decodeWith(raw, 'transaction', (r) => {
      bodyBytes = r.bytes(MAX_TX_BYTES, 'tx body');
      const body = decodeWith(bodyBytes, 'transaction body', readTxBody);
      const signature = r.bytes(MAX_SIGNATURE_BYTES, 'signature');
      return { body, signature };
    });
  } catch (e) {
    if (e instanceof QnexusError && e.code === 'MALFORMED') throw new QnexusError('TX_MALFORMED', e.message);
    throw e;
  }
  const signBytes = signingBytes(tx.body.chainId, isSystemKind(tx.body.payload.kind) ? 'beacon' : 'tx', bodyBytes);
  const hash = sha256(signBytes);
  const from = addressFromPublicKey(tx.body.publicKey);
  return { tx, raw, signBytes, hash, hashHex: toHex(hash), from, fromStr: formatAddress(from) };
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
  let size = header.length + b.signature.length + 16;
  for (const t of b.txs) size += t.length + 4;
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
  let size = 8;
  for (const r of raws) size += r.length + 4;
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
  const w = new Writer(8 + ids.length * HASH_BYTES).u32(ids.length);
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
