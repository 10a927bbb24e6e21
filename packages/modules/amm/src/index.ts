import { ADDRESS_BYTES, HASH_BYTES, bytesEqual, concatBytes, formatAddress, fromHex, sha256, toHex, utf8 } from '@qnexus/crypto';
import { QnexusError, Writer, decodeWith, type ErrorDetails, type Reader, type TxMsg, type XferInfo } from '@qnexus/types';
import {
  FEE_COLLECTOR,
  MAX_DENOM_BYTES,
  MODULE_IDS,
  NATIVE_DENOM,
  bank,
  moduleAccount,
  msg,
  payouts,
  type ExecCtx,
  type HostKeepers,
  type Module,
  type ModuleStore,
  type MsgDef,
  type QueryDef,
  type StateParams,
} from '@qnexus/state';
import { CUM_MOD, MINIMUM_LIQUIDITY, U64_MAX, amountOut, checkU64, depositFor, feePart, initialShares, spotPrice, withdrawalFor } from './math.js';

export * from './math.js';

/**
 * amm: two-asset constant-product pools (Uniswap v2 math) whose swaps execute together at the end
 * of each block in a canonical order (by swap-id hash), with fee tiers, the admin's commit/apply
 * fee change, LP shares as the denom `amm/<pool>`, and swaps from other shards through the 2PC
 * path (an xcall into the pool's shard, proceeds back as payouts). README.md has the full spec.
 *
 * Keys under module id 6 (prefixes 0xf0/0xf1 belong to the payouts helper):
 *   0x00                         → params: u64 creationFee ‖ u32 feeDelaySlots
 *   0x01 ‖ pool id(8)            → the pool record (encodePool)
 *   0x02                         → u64 height ‖ u16 n ‖ n × pool id: pools touched in that block
 *   0x03 ‖ string denom          → u64 Σ reserves ‖ u64 Σ queued swap inputs, over this shard's pools
 *   0x04 ‖ order key(32)         → a swap queued for this block's batch (encodeQueued)
 *   0x05 ‖ xfer id(32)           → a cross-shard swap prepared here, not decided yet (empty)
 *   0x06 ‖ pool id ‖ u8 bucket   → hourly statistics: u64 hour ‖ u128 volA ‖ u128 volB ‖ u128 feeA ‖ u128 feeB
 *   0x07 ‖ pool id ‖ u8 index    → recorded price ring: u64 slot ‖ u128 price (1e18)
 */

export const AMM_ID = MODULE_IDS.amm;
export const AMM_ACCOUNT_NAME = 'amm';
/** The module account holding every pool's reserves and the queued swap inputs (on every shard). */
export const AMM_ACCOUNT = moduleAccount(AMM_ACCOUNT_NAME);
export const AMM_MSG = { create: 1, add: 2, remove: 3, swap: 4, commitFee: 5, applyFee: 6 } as const;
export const AMM_KIND = Object.fromEntries(Object.entries(AMM_MSG).map(([n, t]) => [n, (AMM_ID << 8) | t])) as { [K in keyof typeof AMM_MSG]: number };
export const AMM_OP = { swap: 1, payout: 2 } as const;
/** Fee tiers in basis points; the cap (Curve's MAX_FEE analogue) is the largest. */
export const FEE_TIERS: readonly number[] = [0, 1, 5, 10, 30, 50, 100];
export const MAX_FEE_BPS = 100;
export const POOL_ID_BYTES = 8;
/** Statistics: 24 hourly buckets make the 24 h window (86,400 slots at 1 s) exact to the hour. */
export const SLOTS_PER_HOUR = 3600;
export const HOURS_PER_WINDOW = 24;
/** Recorded (slot, price) points kept per pool for the explorer's chart. */
export const PRICE_RING = 64;
/** Pools a list query answers at most. */
export const LIST_MAX = 100;
/** Aborted payouts re-sent per block. */
export const RETRIES_PER_BLOCK = 16;

export interface AmmParams {
  /** Native coins a pool's creator pays (to the fee collector). */
  creationFee: bigint;
  /** Slots between a fee commit and its earliest apply (Curve's admin delay, scaled to a devnet). */
  feeDelaySlots: number;
}
export const DEFAULT_AMM_PARAMS: AmmParams = { creationFee: 1_000_000n, feeDelaySlots: 32 };

export const AMM_ERRORS = {
  AMM_UNKNOWN_POOL: 404,
  AMM_WRONG_SHARD: 400,
  AMM_BAD_DENOM: 400,
  AMM_SAME_DENOM: 400,
  AMM_BAD_FEE_TIER: 400,
  AMM_FEE_CAP: 400,
  AMM_NOT_ADMIN: 403,
  AMM_FEE_PENDING: 409,
  AMM_NO_PENDING_FEE: 409,
  AMM_FEE_NOT_READY: 409,
  AMM_DEADLINE: 409,
  AMM_SLIPPAGE: 409,
  AMM_INSUFFICIENT_LIQUIDITY: 409,
  AMM_ZERO_SHARES: 409,
  AMM_ZERO_AMOUNT: 400,
  AMM_OVERFLOW: 400,
  AMM_POOL_EXISTS: 409,
} as const;
export type AmmErrorCode = keyof typeof AMM_ERRORS;

const fail = (code: AmmErrorCode, message: string, details?: ErrorDetails): QnexusError => new QnexusError(code, message, details);

// ------------------------------------------------------------------ messages

export interface CreateMsg {
  denomA: string;
  denomB: string;
  amountA: bigint;
  amountB: bigint;
  feeBps: number;
  minShares: bigint;
  deadline: bigint;
}
export interface AddMsg {
  pool: Uint8Array;
  maxA: bigint;
  maxB: bigint;
  minShares: bigint;
  deadline: bigint;
}
export interface RemoveMsg {
  pool: Uint8Array;
  shares: bigint;
  minA: bigint;
  minB: bigint;
  deadline: bigint;
}
export interface SwapMsg {
  pool: Uint8Array;
  denomIn: string;
  amountIn: bigint;
  minOut: bigint;
  deadline: bigint;
}
export interface CommitFeeMsg {
  pool: Uint8Array;
  feeBps: number;
  deadline: bigint;
}
export interface ApplyFeeMsg {
  pool: Uint8Array;
  deadline: bigint;
}

const DENOM_RE = /^[a-z][a-z0-9/._-]{1,63}$/;
function checkDenom(d: string, what: string): void {
  if (!DENOM_RE.test(d)) throw fail('AMM_BAD_DENOM', `${what} ${JSON.stringify(d)} is not a valid denom`);
}
function checkFee(f: number): void {
  if (!Number.isInteger(f) || f < 0 || f > MAX_FEE_BPS) throw fail('AMM_FEE_CAP', `fee ${f} bps is above the cap of ${MAX_FEE_BPS} bps`);
  if (!FEE_TIERS.includes(f)) throw fail('AMM_BAD_FEE_TIER', `fee ${f} bps is not a tier; tiers: ${FEE_TIERS.join(', ')} bps`);
}
function positive(v: bigint, what: string): void {
  if (v === 0n) throw fail('AMM_ZERO_AMOUNT', `${what} must be positive`);
}
/** The shard a pool id names (its first two bytes). */
export function poolShard(id: Uint8Array): number {
  return (id[0]! << 8) | id[1]!;
}
function checkPoolShard(id: Uint8Array, params: StateParams): void {
  const s = poolShard(id);
  if (s >= params.shardCount) throw fail('AMM_UNKNOWN_POOL', `pool ${toHex(id)} names shard ${s}; this chain has ${params.shardCount}`);
}

/** Canonical pair order: the smaller denom (bytewise) is the base (A), the other the quote (B). */
export function sortDenoms(a: string, b: string): [string, string] {
  return a < b ? [a, b] : [b, a];
}

/** A pool's id: its shard ‖ 6 bytes of the hash of (shard, sorted denoms, fee tier at creation). */
export function poolIdOf(shard: number, denomA: string, denomB: string, feeBps: number): Uint8Array {
  const [a, b] = sortDenoms(denomA, denomB);
  const h = sha256(new Writer(160).string('qnexus/amm/pool').u16(shard).string(a).string(b).u16(feeBps).finish());
  return concatBytes(new Uint8Array([shard >> 8, shard & 0xff]), h.subarray(0, POOL_ID_BYTES - 2));
}
export const lpDenom = (id: Uint8Array): string => `amm/${toHex(id)}`;

const readPool = (r: Reader) => r.fixed(POOL_ID_BYTES, 'pool id');
const readDenom = (r: Reader, what: string) => r.string(MAX_DENOM_BYTES, what);

// Client-side parsing of the CLI's string arguments.
function argU64(a: Readonly<Record<string, string>>, name: string, dflt?: bigint): bigint {
  const v = a[name];
  if (v === undefined || v === '') {
    if (dflt !== undefined) return dflt;
    throw new QnexusError('TX_MALFORMED', `missing --${name}`);
  }
  if (!/^[0-9]{1,20}$/.test(v) || BigInt(v) > U64_MAX) throw new QnexusError('TX_BAD_AMOUNT', `--${name} ${JSON.stringify(v)} is not an integer in 0..2^64-1`);
  return BigInt(v);
}
function argPool(a: Readonly<Record<string, string>>): Uint8Array {
  const v = a.pool ?? '';
  if (!/^[0-9a-f]{16}$/.test(v)) throw new QnexusError('TX_MALFORMED', `--pool ${JSON.stringify(v)} is not a pool id (16 lowercase hex characters)`);
  return fromHex(v);
}
function argFee(a: Readonly<Record<string, string>>): number {
  // Not --fee: that is the CLI's own (the transaction's fee).
  const v = a.feeBps ?? '';
  if (!/^[0-9]{1,5}$/.test(v)) throw new QnexusError('TX_MALFORMED', `--feeBps ${JSON.stringify(v)} is not a fee in basis points`);
  return Number(v);
}
function argDenom(a: Readonly<Record<string, string>>, name: string): string {
  const v = a[name] ?? '';
  checkDenom(v, `--${name}`);
  return v;
}
const DEADLINE_ARG = { name: 'deadline', help: 'last slot at which the message may execute' } as const;
const POOL_ARG = { name: 'pool', help: 'pool id (16 hex characters, from amm-create or GET /v1/amm/list)' } as const;

const createCodec = {
  encode: (w: Writer, p: CreateMsg) => void w.string(p.denomA).string(p.denomB).u64(p.amountA).u64(p.amountB).u16(p.feeBps).u64(p.minShares).u64(p.deadline),
  decode: (r: Reader): CreateMsg => ({
    denomA: readDenom(r, 'denomA'),
    denomB: readDenom(r, 'denomB'),
    amountA: r.u64('amountA'),
    amountB: r.u64('amountB'),
    feeBps: r.u16('feeBps'),
    minShares: r.u64('minShares'),
    deadline: r.u64('deadline'),
  }),
};
const addCodec = {
  encode: (w: Writer, p: AddMsg) => void w.fixed(p.pool, POOL_ID_BYTES).u64(p.maxA).u64(p.maxB).u64(p.minShares).u64(p.deadline),
  decode: (r: Reader): AddMsg => ({ pool: readPool(r), maxA: r.u64('maxA'), maxB: r.u64('maxB'), minShares: r.u64('minShares'), deadline: r.u64('deadline') }),
};
const removeCodec = {
  encode: (w: Writer, p: RemoveMsg) => void w.fixed(p.pool, POOL_ID_BYTES).u64(p.shares).u64(p.minA).u64(p.minB).u64(p.deadline),
  decode: (r: Reader): RemoveMsg => ({ pool: readPool(r), shares: r.u64('shares'), minA: r.u64('minA'), minB: r.u64('minB'), deadline: r.u64('deadline') }),
};
const swapCodec = {
  encode: (w: Writer, p: SwapMsg) => void w.fixed(p.pool, POOL_ID_BYTES).string(p.denomIn).u64(p.amountIn).u64(p.minOut).u64(p.deadline),
  decode: (r: Reader): SwapMsg => ({ pool: readPool(r), denomIn: readDenom(r, 'denomIn'), amountIn: r.u64('amountIn'), minOut: r.u64('minOut'), deadline: r.u64('deadline') }),
};
const commitFeeCodec = {
  encode: (w: Writer, p: CommitFeeMsg) => void w.fixed(p.pool, POOL_ID_BYTES).u16(p.feeBps).u64(p.deadline),
  decode: (r: Reader): CommitFeeMsg => ({ pool: readPool(r), feeBps: r.u16('feeBps'), deadline: r.u64('deadline') }),
};
const applyFeeCodec = {
  encode: (w: Writer, p: ApplyFeeMsg) => void w.fixed(p.pool, POOL_ID_BYTES).u64(p.deadline),
  decode: (r: Reader): ApplyFeeMsg => ({ pool: readPool(r), deadline: r.u64('deadline') }),
};

function build<P>(kind: number, codec: { encode(w: Writer, p: P): void }, p: P): TxMsg {
  const w = new Writer(192);
  codec.encode(w, p);
  return { kind, msg: w.finish() };
}
/** Typed builders (SDK, tests): the message of each AMM transaction. */
export const ammCreateMsg = (p: CreateMsg): TxMsg => build(AMM_KIND.create, createCodec, p);
export const ammAddMsg = (p: AddMsg): TxMsg => build(AMM_KIND.add, addCodec, p);
export const ammRemoveMsg = (p: RemoveMsg): TxMsg => build(AMM_KIND.remove, removeCodec, p);
export const ammSwapMsg = (p: SwapMsg): TxMsg => build(AMM_KIND.swap, swapCodec, p);
export const ammCommitFeeMsg = (p: CommitFeeMsg): TxMsg => build(AMM_KIND.commitFee, commitFeeCodec, p);
export const ammApplyFeeMsg = (p: ApplyFeeMsg): TxMsg => build(AMM_KIND.applyFee, applyFeeCodec, p);

// ------------------------------------------------------------------ state

export interface Pool {
  id: Uint8Array;
  denomA: string;
  denomB: string;
  reserveA: bigint;
  reserveB: bigint;
  /** Shares in existence, the locked MINIMUM_LIQUIDITY included. */
  totalShares: bigint;
  feeBps: number;
  admin: Uint8Array;
  /** A committed fee change (null: none) and the slot it was committed at. */
  pendingFee: number | null;
  pendingSlot: bigint;
  /** Σ spot price × slots elapsed, mod 2^256 (updated at the first touch in a block, like Uniswap's _update). */
  cumPrice: bigint;
  lastSlot: bigint;
  createdSlot: bigint;
  /** State at the start of the block of `snapHeight` (its first touch), for the block-end invariants. */
  snapHeight: bigint;
  snapA: bigint;
  snapB: bigint;
  snapShares: bigint;
  /** A withdrawal happened in the block of `snapHeight` (k may fall only then). */
  removed: boolean;
  /** Price ring: next index to write and how many points are held. */
  ringNext: number;
  ringCount: number;
}

const NO_FEE = 0xffff;
const u128 = (w: Writer, v: bigint) => {
  w.u64(v >> 64n);
  w.u64(v & U64_MAX);
};
const readU128 = (r: Reader, what: string) => (r.u64(what) << 64n) | r.u64(what);
const u256 = (w: Writer, v: bigint) => {
  for (let i = 3; i >= 0; i--) w.u64((v >> BigInt(64 * i)) & U64_MAX);
};
const readU256 = (r: Reader, what: string) => {
  let v = 0n;
  for (let i = 0; i < 4; i++) v = (v << 64n) | r.u64(what);
  return v;
};

function encodePool(p: Pool): Uint8Array {
  const w = new Writer(320).string(p.denomA).string(p.denomB).u64(p.reserveA).u64(p.reserveB).u64(p.totalShares).u16(p.feeBps);
  w.fixed(p.admin, ADDRESS_BYTES).u16(p.pendingFee ?? NO_FEE).u64(p.pendingSlot);
  u256(w, p.cumPrice);
  w.u64(p.lastSlot).u64(p.createdSlot).u64(p.snapHeight).u64(p.snapA).u64(p.snapB).u64(p.snapShares).u8(p.removed ? 1 : 0).u8(p.ringNext).u8(p.ringCount);
  return w.finish();
}
function decodePool(id: Uint8Array, b: Uint8Array): Pool {
  return decodeWith(b, 'amm pool', (r) => {
    const denomA = readDenom(r, 'denomA');
    const denomB = readDenom(r, 'denomB');
    const reserveA = r.u64('reserveA');
    const reserveB = r.u64('reserveB');
    const totalShares = r.u64('totalShares');
    const feeBps = r.u16('fee');
    const admin = r.fixed(ADDRESS_BYTES, 'admin');
    const pf = r.u16('pending fee');
    const pendingSlot = r.u64('pending slot');
    const cumPrice = readU256(r, 'cumulative price');
    return {
      id,
      denomA,
      denomB,
      reserveA,
      reserveB,
      totalShares,
      feeBps,
      admin,
      pendingFee: pf === NO_FEE ? null : pf,
      pendingSlot,
      cumPrice,
      lastSlot: r.u64('last slot'),
      createdSlot: r.u64('created slot'),
      snapHeight: r.u64('snap height'),
      snapA: r.u64('snapA'),
      snapB: r.u64('snapB'),
      snapShares: r.u64('snap shares'),
      removed: r.u8('removed') === 1,
      ringNext: r.u8('ring next'),
      ringCount: r.u8('ring count'),
    };
  });
}

const PARAMS_KEY = new Uint8Array([0x00]);
const poolKey = (id: Uint8Array) => concatBytes(new Uint8Array([0x01]), id);
const POOL_PREFIX = new Uint8Array([0x01]);
const TOUCHED_KEY = new Uint8Array([0x02]);
const denomKey = (d: string) => new Writer(72).u8(0x03).string(d).finish();
const QUEUE_PREFIX = new Uint8Array([0x04]);
const queueKey = (order: Uint8Array) => concatBytes(QUEUE_PREFIX, order);
const preparedKey = (xferId: Uint8Array) => concatBytes(new Uint8Array([0x05]), xferId);
const statKey = (id: Uint8Array, bucket: number) => concatBytes(new Uint8Array([0x06]), id, new Uint8Array([bucket]));
const statPrefix = (id: Uint8Array) => concatBytes(new Uint8Array([0x06]), id);
const ringKey = (id: Uint8Array, i: number) => concatBytes(new Uint8Array([0x07]), id, new Uint8Array([i]));
const ringPrefix = (id: Uint8Array) => concatBytes(new Uint8Array([0x07]), id);

type Reads = Pick<ModuleStore, 'get' | 'range'>;

function readParams(s: Reads): AmmParams {
  const b = s.get(PARAMS_KEY);
  if (!b) return DEFAULT_AMM_PARAMS;
  return decodeWith(b, 'amm params', (r) => ({ creationFee: r.u64('creation fee'), feeDelaySlots: r.u32('fee delay') }));
}
export function getPool(s: Reads, id: Uint8Array): Pool | undefined {
  const b = s.get(poolKey(id));
  return b ? decodePool(id, b) : undefined;
}
const setPool = (s: ModuleStore, p: Pool) => s.set(poolKey(p.id), encodePool(p));

/** Σ reserves and Σ queued swap inputs of a denom over this shard's pools. */
export function denomBook(s: Reads, d: string): { reserves: bigint; queued: bigint } {
  const b = s.get(denomKey(d));
  if (!b) return { reserves: 0n, queued: 0n };
  return decodeWith(b, 'amm denom book', (r) => ({ reserves: r.u64('reserves'), queued: r.u64('queued') }));
}
function addBook(s: ModuleStore, d: string, dReserves: bigint, dQueued: bigint): void {
  const b = denomBook(s, d);
  const reserves = b.reserves + dReserves;
  const queued = b.queued + dQueued;
  if (reserves < 0n || queued < 0n) throw new QnexusError('INVARIANT_BROKEN', `amm book of ${d} would be negative`);
  checkU64(reserves, `Σ ${d} reserves`);
  checkU64(queued, `Σ queued ${d}`);
  if (reserves === 0n && queued === 0n) s.delete(denomKey(d));
  else s.set(denomKey(d), new Writer(16).u64(reserves).u64(queued).finish());
}

/** Pools touched in the block of `height` (empty if the record is of another block). */
function touchedIn(s: Reads, height: number): Uint8Array[] {
  const b = s.get(TOUCHED_KEY);
  if (!b) return [];
  return decodeWith(b, 'amm touched', (r) => {
    const h = r.u64('height');
    const n = r.u16('count');
    const ids: Uint8Array[] = [];
    for (let i = 0; i < n; i++) ids.push(r.fixed(POOL_ID_BYTES, 'pool id'));
    return h === BigInt(height) ? ids : [];
  });
}

/**
 * The first touch of a pool in a block (Uniswap's _update): add price × elapsed slots to the
 * cumulative price, remember the pool as it was before this block (for the invariants) and list
 * it among the block's touched pools. Later touches in the same block change nothing here.
 */
function touch(ctx: ExecCtx, s: ModuleStore, p: Pool): void {
  const h = BigInt(ctx.block.height);
  if (p.snapHeight === h) return;
  const slot = BigInt(ctx.block.slot);
  if (slot > p.lastSlot) p.cumPrice = (p.cumPrice + spotPrice(p.reserveA, p.reserveB) * (slot - p.lastSlot)) % CUM_MOD;
  p.lastSlot = slot;
  p.snapHeight = h;
  p.snapA = p.reserveA;
  p.snapB = p.reserveB;
  p.snapShares = p.totalShares;
  p.removed = false;
  const ids = touchedIn(s, ctx.block.height);
  if (ids.length >= 0xffff) throw new QnexusError('INVARIANT_BROKEN', 'too many pools touched in one block');
  ids.push(p.id);
  const w = new Writer(12 + ids.length * POOL_ID_BYTES).u64(h).u16(ids.length);
  for (const id of ids) w.fixed(id, POOL_ID_BYTES);
  s.set(TOUCHED_KEY, w.finish());
}

interface Queued {
  pool: Uint8Array;
  /** true: A in, B out. */
  aIn: boolean;
  amountIn: bigint;
  minOut: bigint;
  deadline: bigint;
  /** Who gets the output (or the refund): on its home shard. */
  trader: Uint8Array;
  /** The transaction hash (same shard) or the xcall id: payouts are legs of it. */
  xcall: Uint8Array;
}
function encodeQueued(q: Queued): Uint8Array {
  return new Writer(96).fixed(q.pool, POOL_ID_BYTES).u8(q.aIn ? 1 : 0).u64(q.amountIn).u64(q.minOut).u64(q.deadline).fixed(q.trader, ADDRESS_BYTES).fixed(q.xcall, HASH_BYTES).finish();
}
function decodeQueued(b: Uint8Array): Queued {
  return decodeWith(b, 'amm queued swap', (r) => ({
    pool: r.fixed(POOL_ID_BYTES, 'pool'),
    aIn: r.u8('direction') === 1,
    amountIn: r.u64('amountIn'),
    minOut: r.u64('minOut'),
    deadline: r.u64('deadline'),
    trader: r.fixed(ADDRESS_BYTES, 'trader'),
    xcall: r.fixed(HASH_BYTES, 'xcall'),
  }));
}
/** The batch order of a swap: the hash of its id, which no proposer chooses. */
export const swapOrderKey = (xcall: Uint8Array): Uint8Array => sha256(concatBytes(utf8('qnexus/amm/swap-order'), xcall));

/** The cross-shard swap's payload: pool id ‖ u64 minOut ‖ u64 deadline. */
const encodeSwapPayload = (pool: Uint8Array, minOut: bigint, deadline: bigint) => new Writer(24).fixed(pool, POOL_ID_BYTES).u64(minOut).u64(deadline).finish();
const decodeSwapPayload = (b: Uint8Array) => decodeWith(b, 'amm swap payload', (r) => ({ pool: r.fixed(POOL_ID_BYTES, 'pool'), minOut: r.u64('minOut'), deadline: r.u64('deadline') }));

function requirePool(ctx: ExecCtx, s: ModuleStore, id: Uint8Array): Pool {
  const home = poolShard(id);
  if (home !== ctx.params.shard) throw fail('AMM_WRONG_SHARD', `pool ${toHex(id)} lives on shard ${home}; this is shard ${ctx.params.shard} (only swaps travel to a pool's shard)`, { homeShard: home, shard: ctx.params.shard });
  const p = getPool(s, id);
  if (!p) throw fail('AMM_UNKNOWN_POOL', `no pool ${toHex(id)} on shard ${ctx.params.shard}`);
  return p;
}
function checkDeadline(ctx: ExecCtx, deadline: bigint): void {
  if (BigInt(ctx.block.slot) > deadline) throw fail('AMM_DEADLINE', `deadline slot ${deadline} has passed (this is slot ${ctx.block.slot})`);
}

/** The swap as the pool would execute it now: output, or the reason it cannot. */
function quoteSwap(p: Pool, denomIn: string, amountIn: bigint): { aIn: boolean; out: bigint; denomOut: string } {
  if (denomIn !== p.denomA && denomIn !== p.denomB) throw fail('AMM_BAD_DENOM', `pool ${toHex(p.id)} trades ${p.denomA} and ${p.denomB}, not ${denomIn}`);
  const aIn = denomIn === p.denomA;
  const [rin, rout] = aIn ? [p.reserveA, p.reserveB] : [p.reserveB, p.reserveA];
  checkU64(rin + amountIn, 'the input reserve after the swap');
  return { aIn, out: amountOut(amountIn, rin, rout, p.feeBps), denomOut: aIn ? p.denomB : p.denomA };
}
function checkQuote(q: { out: bigint }, minOut: bigint): void {
  if (q.out === 0n) throw fail('AMM_INSUFFICIENT_LIQUIDITY', 'the swap would give nothing at the current reserves');
  if (q.out < minOut) throw fail('AMM_SLIPPAGE', `the swap gives ${q.out} at the current reserves, less than minOut ${minOut}`, { quote: q.out.toString() });
}

/** Book a swap's input into this block's batch (the input is already in the module account). */
function enqueue(s: ModuleStore, p: Pool, q: Queued): void {
  addBook(s, q.aIn ? p.denomA : p.denomB, 0n, q.amountIn);
  s.set(queueKey(swapOrderKey(q.xcall)), encodeQueued(q));
}

function addStats(s: ModuleStore, p: Pool, slot: number, aIn: boolean, amountIn: bigint): void {
  const hour = BigInt(Math.floor(slot / SLOTS_PER_HOUR));
  const k = statKey(p.id, Number(hour % BigInt(HOURS_PER_WINDOW)));
  const cur = readStat(s.get(k));
  const st = cur && cur.hour === hour ? cur : { hour, volA: 0n, volB: 0n, feeA: 0n, feeB: 0n };
  const fee = feePart(amountIn, p.feeBps);
  if (aIn) {
    st.volA += amountIn;
    st.feeA += fee;
  } else {
    st.volB += amountIn;
    st.feeB += fee;
  }
  const w = new Writer(72).u64(st.hour);
  for (const v of [st.volA, st.volB, st.feeA, st.feeB]) u128(w, v);
  s.set(k, w.finish());
}
function readStat(b: Uint8Array | undefined): { hour: bigint; volA: bigint; volB: bigint; feeA: bigint; feeB: bigint } | undefined {
  if (!b) return undefined;
  return decodeWith(b, 'amm stats', (r) => ({ hour: r.u64('hour'), volA: readU128(r, 'volA'), volB: readU128(r, 'volB'), feeA: readU128(r, 'feeA'), feeB: readU128(r, 'feeB') }));
}

// ------------------------------------------------------------------ genesis

function parseGenesis(json: unknown): AmmParams {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('amm genesis must be an object');
  const o = json as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'creationFee' && k !== 'feeDelaySlots') throw new Error(`unknown amm genesis field ${k}`);
  const out = { ...DEFAULT_AMM_PARAMS };
  if (o.creationFee !== undefined) {
    const v = o.creationFee;
    if (!(typeof v === 'string' && /^[0-9]{1,20}$/.test(v)) && !(typeof v === 'number' && Number.isSafeInteger(v) && v >= 0)) throw new Error('creationFee must be a non-negative integer (string or number)');
    out.creationFee = checkU64(BigInt(v as string | number), 'creationFee');
  }
  if (o.feeDelaySlots !== undefined) {
    const v = o.feeDelaySlots;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error('feeDelaySlots must be an integer in 0..2^32-1');
    out.feeDelaySlots = v;
  }
  return out;
}

// ------------------------------------------------------------------ the module

function poolJson(s: Reads, p: Pool, withPrices = true) {
  const price = spotPrice(p.reserveA, p.reserveB);
  // The 24 h window ends at the pool's last update (a query has no clock): the 24 hours up to it.
  const hourNow = p.lastSlot / BigInt(SLOTS_PER_HOUR);
  const vol = { a: 0n, b: 0n, feeA: 0n, feeB: 0n };
  for (const [, v] of s.range(statPrefix(p.id), HOURS_PER_WINDOW)) {
    const st = readStat(v)!;
    if (st.hour + BigInt(HOURS_PER_WINDOW) <= hourNow || st.hour > hourNow) continue;
    vol.a += st.volA;
    vol.b += st.volB;
    vol.feeA += st.feeA;
    vol.feeB += st.feeB;
  }
  const ring = (withPrices ? s.range(ringPrefix(p.id), PRICE_RING) : []).map(([k, v]) => ({ i: k[k.length - 1]!, ...decodeWith(v, 'amm price point', (r) => ({ slot: r.u64('slot'), price: readU128(r, 'price') })) }));
  // Oldest first: the ring's next write index is its oldest point once it is full.
  ring.sort((x, y) => (x.slot < y.slot ? -1 : x.slot > y.slot ? 1 : 0));
  return {
    id: toHex(p.id),
    shard: poolShard(p.id),
    base: p.denomA,
    quote: p.denomB,
    lpDenom: lpDenom(p.id),
    reserveBase: p.reserveA.toString(),
    reserveQuote: p.reserveB.toString(),
    totalShares: p.totalShares.toString(),
    lockedShares: MINIMUM_LIQUIDITY.toString(),
    feeBps: p.feeBps,
    admin: formatAddress(p.admin),
    pendingFee: p.pendingFee === null ? null : { feeBps: p.pendingFee, committedSlot: p.pendingSlot.toString() },
    spotPrice: price.toString(),
    cumulativePrice: p.cumPrice.toString(),
    lastUpdateSlot: p.lastSlot.toString(),
    createdSlot: p.createdSlot.toString(),
    window: { hours: HOURS_PER_WINDOW, toHour: hourNow.toString() },
    volume24h: { base: vol.a.toString(), quote: vol.b.toString() },
    fees24h: { base: vol.feeA.toString(), quote: vol.feeB.toString() },
    prices: ring.map((x) => ({ slot: x.slot.toString(), price: x.price.toString() })),
  };
}

function parsePoolParam(v: string | undefined): Uint8Array {
  if (!/^[0-9a-f]{16}$/.test(v ?? '')) throw new QnexusError('BAD_REQUEST', 'pool must be 16 lowercase hex characters');
  return fromHex(v!);
}
function queryPool(store: Reads, params: StateParams, idHex: string | undefined): Pool {
  const id = parsePoolParam(idHex);
  const home = poolShard(id);
  if (home !== params.shard) throw fail('AMM_WRONG_SHARD', `pool ${idHex} lives on shard ${home}; this node serves shard ${params.shard}`, { homeShard: home, shard: params.shard });
  const p = getPool(store, id);
  if (!p) throw fail('AMM_UNKNOWN_POOL', `no pool ${idHex}`);
  return p;
}

/** The amm module, given the host's keepers. */
export function ammModule(k: HostKeepers): Module {
  const lp = k.denoms(AMM_ACCOUNT_NAME);
  const pay = payouts(k.xfer, AMM_ID, AMM_OP.payout, AMM_ACCOUNT_NAME);

  const create: MsgDef<CreateMsg> = {
    type: AMM_MSG.create,
    name: 'amm-create',
    ...createCodec,
    validate(p) {
      checkDenom(p.denomA, 'denomA');
      checkDenom(p.denomB, 'denomB');
      if (p.denomA === p.denomB) throw fail('AMM_SAME_DENOM', `a pool trades two different denoms, not ${p.denomA} twice`);
      positive(p.amountA, 'amountA');
      positive(p.amountB, 'amountB');
      checkFee(p.feeBps);
    },
    spend: (p) => (p.denomA === NATIVE_DENOM ? p.amountA : 0n) + (p.denomB === NATIVE_DENOM ? p.amountB : 0n),
    weight: () => 2,
    client: {
      args: [
        { name: 'denomA', help: 'one denom of the pair (qfc, t/…)' },
        { name: 'denomB', help: 'the other denom' },
        { name: 'amountA', help: 'first deposit of denomA, base units' },
        { name: 'amountB', help: 'first deposit of denomB, base units' },
        { name: 'feeBps', help: `fee tier in bps: ${FEE_TIERS.join(', ')}` },
        { name: 'minShares', help: 'refuse if fewer LP shares would be minted (default 0)', optional: true },
        DEADLINE_ARG,
      ],
      build: (a) => ({
        denomA: argDenom(a, 'denomA'),
        denomB: argDenom(a, 'denomB'),
        amountA: argU64(a, 'amountA'),
        amountB: argU64(a, 'amountB'),
        feeBps: argFee(a),
        minShares: argU64(a, 'minShares', 0n),
        deadline: argU64(a, 'deadline'),
      }),
    },
    handle({ ctx, env, store: s }, m) {
      checkDeadline(ctx, m.deadline);
      const [denomA, denomB] = sortDenoms(m.denomA, m.denomB);
      const [amountA, amountB] = denomA === m.denomA ? [m.amountA, m.amountB] : [m.amountB, m.amountA];
      for (const d of [denomA, denomB]) {
        const sup = bank.supply(ctx, d);
        if (d !== NATIVE_DENOM && sup.genesis === 0n && sup.minted === 0n && bank.totalBalances(ctx, d) === 0n) throw fail('AMM_BAD_DENOM', `denom ${d} is unknown on shard ${ctx.params.shard}`);
      }
      const id = poolIdOf(ctx.params.shard, denomA, denomB, m.feeBps);
      if (s.has(poolKey(id))) throw fail('AMM_POOL_EXISTS', `pool ${toHex(id)} (${denomA}/${denomB} at ${m.feeBps} bps) exists on this shard`, { pool: toHex(id) });
      const shares = initialShares(amountA, amountB);
      if (shares.toCreator < m.minShares) throw fail('AMM_SLIPPAGE', `the deposit mints ${shares.toCreator} shares, fewer than minShares ${m.minShares}`);
      const params = readParams(s);
      if (params.creationFee > 0n) bank.send(ctx, env.from, FEE_COLLECTOR, params.creationFee, NATIVE_DENOM);
      bank.send(ctx, env.from, AMM_ACCOUNT, amountA, denomA);
      bank.send(ctx, env.from, AMM_ACCOUNT, amountB, denomB);
      const slot = BigInt(ctx.block.slot);
      const p: Pool = {
        id,
        denomA,
        denomB,
        reserveA: 0n,
        reserveB: 0n,
        totalShares: 0n,
        feeBps: m.feeBps,
        admin: env.from,
        pendingFee: null,
        pendingSlot: 0n,
        cumPrice: 0n,
        lastSlot: slot,
        createdSlot: slot,
        snapHeight: 0n,
        snapA: 0n,
        snapB: 0n,
        snapShares: 0n,
        removed: false,
        ringNext: 0,
        ringCount: 0,
      };
      touch(ctx, s, p); // the snapshot of an empty pool: everything after it is growth
      p.reserveA = amountA;
      p.reserveB = amountB;
      p.totalShares = shares.total;
      addBook(s, denomA, amountA, 0n);
      addBook(s, denomB, amountB, 0n);
      lp.mint(ctx, env.from, shares.toCreator, lpDenom(id));
      setPool(s, p);
    },
    json: (p) => ({ denomA: p.denomA, denomB: p.denomB, amountA: p.amountA.toString(), amountB: p.amountB.toString(), feeBps: p.feeBps, minShares: p.minShares.toString(), deadline: p.deadline.toString() }),
  };

  const add: MsgDef<AddMsg> = {
    type: AMM_MSG.add,
    name: 'amm-add',
    ...addCodec,
    validate(p, _env, params) {
      checkPoolShard(p.pool, params);
      positive(p.maxA, 'maxA');
      positive(p.maxB, 'maxB');
    },
    client: {
      args: [POOL_ARG, { name: 'maxA', help: 'most of the base denom to deposit' }, { name: 'maxB', help: 'most of the quote denom to deposit' }, { name: 'minShares', help: 'refuse if fewer shares would be minted', optional: true }, DEADLINE_ARG],
      build: (a) => ({ pool: argPool(a), maxA: argU64(a, 'maxA'), maxB: argU64(a, 'maxB'), minShares: argU64(a, 'minShares', 0n), deadline: argU64(a, 'deadline') }),
    },
    handle({ ctx, env, store: s }, m) {
      checkDeadline(ctx, m.deadline);
      const p = requirePool(ctx, s, m.pool);
      const d = depositFor(m.maxA, m.maxB, p.reserveA, p.reserveB, p.totalShares);
      if (d.shares === 0n) throw fail('AMM_ZERO_SHARES', `a deposit of at most ${m.maxA}/${m.maxB} mints no share at reserves ${p.reserveA}/${p.reserveB}`);
      if (d.shares < m.minShares) throw fail('AMM_SLIPPAGE', `the deposit mints ${d.shares} shares, fewer than minShares ${m.minShares}`);
      checkU64(p.reserveA + d.a, 'reserveA');
      checkU64(p.reserveB + d.b, 'reserveB');
      checkU64(p.totalShares + d.shares, 'total shares');
      touch(ctx, s, p);
      bank.send(ctx, env.from, AMM_ACCOUNT, d.a, p.denomA);
      bank.send(ctx, env.from, AMM_ACCOUNT, d.b, p.denomB);
      p.reserveA += d.a;
      p.reserveB += d.b;
      p.totalShares += d.shares;
      addBook(s, p.denomA, d.a, 0n);
      addBook(s, p.denomB, d.b, 0n);
      lp.mint(ctx, env.from, d.shares, lpDenom(p.id));
      setPool(s, p);
    },
    json: (p) => ({ pool: toHex(p.pool), maxA: p.maxA.toString(), maxB: p.maxB.toString(), minShares: p.minShares.toString(), deadline: p.deadline.toString() }),
  };

  const remove: MsgDef<RemoveMsg> = {
    type: AMM_MSG.remove,
    name: 'amm-remove',
    ...removeCodec,
    validate(p, _env, params) {
      checkPoolShard(p.pool, params);
      positive(p.shares, 'shares');
    },
    client: {
      args: [POOL_ARG, { name: 'shares', help: 'LP shares to burn' }, { name: 'minA', help: 'least base denom to receive', optional: true }, { name: 'minB', help: 'least quote denom to receive', optional: true }, DEADLINE_ARG],
      build: (a) => ({ pool: argPool(a), shares: argU64(a, 'shares'), minA: argU64(a, 'minA', 0n), minB: argU64(a, 'minB', 0n), deadline: argU64(a, 'deadline') }),
    },
    handle({ ctx, env, store: s }, m) {
      checkDeadline(ctx, m.deadline);
      const p = requirePool(ctx, s, m.pool);
      // The locked shares are never anyone's, so s ≤ S − 1000 and both reserves stay positive.
      if (m.shares > p.totalShares - MINIMUM_LIQUIDITY) throw fail('AMM_INSUFFICIENT_LIQUIDITY', `only ${p.totalShares - MINIMUM_LIQUIDITY} shares can be withdrawn`);
      const w = withdrawalFor(m.shares, p.reserveA, p.reserveB, p.totalShares);
      if (w.a === 0n || w.b === 0n) throw fail('AMM_INSUFFICIENT_LIQUIDITY', `${m.shares} shares are worth ${w.a}/${w.b}: both sides must be positive`);
      if (w.a < m.minA || w.b < m.minB) throw fail('AMM_SLIPPAGE', `${m.shares} shares pay ${w.a}/${w.b}, below minA ${m.minA} / minB ${m.minB}`);
      touch(ctx, s, p);
      lp.burn(ctx, env.from, m.shares, lpDenom(p.id));
      p.reserveA -= w.a;
      p.reserveB -= w.b;
      p.totalShares -= m.shares;
      p.removed = true;
      addBook(s, p.denomA, -w.a, 0n);
      addBook(s, p.denomB, -w.b, 0n);
      bank.send(ctx, AMM_ACCOUNT, env.from, w.a, p.denomA);
      bank.send(ctx, AMM_ACCOUNT, env.from, w.b, p.denomB);
      setPool(s, p);
    },
    json: (p) => ({ pool: toHex(p.pool), shares: p.shares.toString(), minA: p.minA.toString(), minB: p.minB.toString(), deadline: p.deadline.toString() }),
  };

  const swap: MsgDef<SwapMsg> = {
    type: AMM_MSG.swap,
    name: 'amm-swap',
    ...swapCodec,
    validate(p, _env, params) {
      checkPoolShard(p.pool, params);
      checkDenom(p.denomIn, 'denomIn');
      positive(p.amountIn, 'amountIn');
    },
    spend: (p) => (p.denomIn === NATIVE_DENOM ? p.amountIn : 0n),
    weight: () => 2,
    xferPreview: (p, _env, params) => (poolShard(p.pool) === params.shard ? null : { kind: 'amm-swap', to: AMM_ACCOUNT, amount: p.amountIn, dstShard: poolShard(p.pool) }),
    client: {
      args: [POOL_ARG, { name: 'denomIn', help: 'the denom paid in (one of the pool’s)' }, { name: 'amountIn', help: 'amount paid in, base units' }, { name: 'minOut', help: 'least output accepted (else refunded)' }, DEADLINE_ARG],
      build: (a) => ({ pool: argPool(a), denomIn: argDenom(a, 'denomIn'), amountIn: argU64(a, 'amountIn'), minOut: argU64(a, 'minOut'), deadline: argU64(a, 'deadline') }),
    },
    handle({ ctx, env, store: s }, m) {
      checkDeadline(ctx, m.deadline);
      const home = poolShard(m.pool);
      if (home !== ctx.params.shard) {
        // An xcall: escrow the input here; the pool's shard validates and reserves at prepare.
        const info = k.xfer.infoFor(ctx, env, { module: AMM_ID, op: AMM_OP.swap, denom: m.denomIn, dstShard: home, to: AMM_ACCOUNT, amount: m.amountIn, payload: encodeSwapPayload(m.pool, m.minOut, m.deadline) });
        k.xfer.open(ctx, info, env.from);
        return;
      }
      const p = requirePool(ctx, s, m.pool);
      const q = quoteSwap(p, m.denomIn, m.amountIn);
      checkQuote(q, m.minOut);
      bank.send(ctx, env.from, AMM_ACCOUNT, m.amountIn, m.denomIn);
      enqueue(s, p, { pool: p.id, aIn: q.aIn, amountIn: m.amountIn, minOut: m.minOut, deadline: m.deadline, trader: env.from, xcall: env.hash });
    },
    json: (p) => ({ pool: toHex(p.pool), denomIn: p.denomIn, amountIn: p.amountIn.toString(), minOut: p.minOut.toString(), deadline: p.deadline.toString() }),
  };

  const commitFee: MsgDef<CommitFeeMsg> = {
    type: AMM_MSG.commitFee,
    name: 'amm-commit-fee',
    ...commitFeeCodec,
    validate(p, _env, params) {
      checkPoolShard(p.pool, params);
      checkFee(p.feeBps);
    },
    client: {
      args: [POOL_ARG, { name: 'feeBps', help: `new fee tier in bps: ${FEE_TIERS.join(', ')}` }, DEADLINE_ARG],
      build: (a) => ({ pool: argPool(a), feeBps: argFee(a), deadline: argU64(a, 'deadline') }),
    },
    handle({ ctx, env, store: s }, m) {
      checkDeadline(ctx, m.deadline);
      const p = requirePool(ctx, s, m.pool);
      if (!bytesEqual(env.from, p.admin)) throw fail('AMM_NOT_ADMIN', `only the pool's admin ${formatAddress(p.admin)} changes its fee`);
      if (p.pendingFee !== null) throw fail('AMM_FEE_PENDING', `a change to ${p.pendingFee} bps is already pending (committed at slot ${p.pendingSlot})`);
      p.pendingFee = m.feeBps;
      p.pendingSlot = BigInt(ctx.block.slot);
      setPool(s, p);
    },
    json: (p) => ({ pool: toHex(p.pool), feeBps: p.feeBps, deadline: p.deadline.toString() }),
  };

  const applyFee: MsgDef<ApplyFeeMsg> = {
    type: AMM_MSG.applyFee,
    name: 'amm-apply-fee',
    ...applyFeeCodec,
    validate: (p, _env, params) => checkPoolShard(p.pool, params),
    client: { args: [POOL_ARG, DEADLINE_ARG], build: (a) => ({ pool: argPool(a), deadline: argU64(a, 'deadline') }) },
    handle({ ctx, env, store: s }, m) {
      checkDeadline(ctx, m.deadline);
      const p = requirePool(ctx, s, m.pool);
      if (!bytesEqual(env.from, p.admin)) throw fail('AMM_NOT_ADMIN', `only the pool's admin ${formatAddress(p.admin)} changes its fee`);
      if (p.pendingFee === null) throw fail('AMM_NO_PENDING_FEE', 'no fee change is pending: commit one first');
      const ready = p.pendingSlot + BigInt(readParams(s).feeDelaySlots);
      if (BigInt(ctx.block.slot) < ready) throw fail('AMM_FEE_NOT_READY', `the committed fee applies from slot ${ready} (this is slot ${ctx.block.slot})`, { readySlot: ready.toString() });
      p.feeBps = p.pendingFee;
      p.pendingFee = null;
      p.pendingSlot = 0n;
      setPool(s, p);
    },
    json: (p) => ({ pool: toHex(p.pool), deadline: p.deadline.toString() }),
  };

  /** End of block: every queued swap, in order of its order key, against the reserves as they move. */
  function runBatch(ctx: ExecCtx): void {
    const s = ctx.store(AMM_ID);
    const slot = BigInt(ctx.block.slot);
    // Each queued swap cost its block at least one unit of weight, so this takes the whole batch.
    for (const [key, v] of s.range(QUEUE_PREFIX, Math.max(1, ctx.params.maxBlockWeight))) {
      s.delete(key);
      const q = decodeQueued(v);
      const p = getPool(s, q.pool);
      if (!p) throw new QnexusError('INVARIANT_BROKEN', `queued swap for a missing pool ${toHex(q.pool)}`);
      touch(ctx, s, p);
      const [denomIn, denomOut] = q.aIn ? [p.denomA, p.denomB] : [p.denomB, p.denomA];
      const [rin, rout] = q.aIn ? [p.reserveA, p.reserveB] : [p.reserveB, p.reserveA];
      const out = amountOut(q.amountIn, rin, rout, p.feeBps);
      addBook(s, denomIn, 0n, -q.amountIn);
      if (slot > q.deadline || out === 0n || out < q.minOut || rin + q.amountIn > U64_MAX) {
        // Refunded exactly: the input goes back (leg 1), the pool is untouched.
        pay.pay(ctx, q.xcall, 1, q.trader, q.amountIn, denomIn);
        setPool(s, p);
        continue;
      }
      if (q.aIn) {
        p.reserveA += q.amountIn;
        p.reserveB -= out;
      } else {
        p.reserveB += q.amountIn;
        p.reserveA -= out;
      }
      addBook(s, denomIn, q.amountIn, 0n);
      addBook(s, denomOut, -out, 0n);
      addStats(s, p, ctx.block.slot, q.aIn, q.amountIn);
      setPool(s, p);
      pay.pay(ctx, q.xcall, 0, q.trader, out, denomOut);
    }
  }

  /** End of block: one (slot, price) point per touched pool into its ring. */
  function recordPrices(ctx: ExecCtx): void {
    const s = ctx.store(AMM_ID);
    for (const id of touchedIn(s, ctx.block.height)) {
      const p = getPool(s, id);
      if (!p) continue;
      const w = new Writer(24).u64(BigInt(ctx.block.slot));
      u128(w, spotPrice(p.reserveA, p.reserveB) & ((1n << 128n) - 1n));
      s.set(ringKey(id, p.ringNext), w.finish());
      p.ringNext = (p.ringNext + 1) % PRICE_RING;
      p.ringCount = Math.min(PRICE_RING, p.ringCount + 1);
      setPool(s, p);
    }
  }

  const queries: QueryDef[] = [
    {
      name: 'pools',
      summary: 'A pool on this shard: reserves, total shares, fee (and a pending change), spot and cumulative price, 24 h volume and fees, recent prices',
      params: ['id'],
      run: ({ store, params }, a) => poolJson(store, queryPool(store, params, a.id)),
    },
    {
      name: 'list',
      summary: `The first ${LIST_MAX} pools of this shard in id order (their statistics without the price points); \`more\` says whether there are others`,
      params: [],
      run: ({ store }) => listPools(store),
    },
    {
      name: 'quote',
      summary: 'The output of a swap at the current reserves (denomIn: a denom of the pool, or base / quote)',
      params: ['pool', 'denomIn', 'amountIn'],
      run({ store, params }, a) {
        const p = queryPool(store, params, a.pool);
        // A denom holds '/', so the path may carry it percent-encoded; `base` and `quote` name the sides too.
        let side = a.denomIn ?? '';
        try {
          side = decodeURIComponent(side);
        } catch {
          throw new QnexusError('BAD_REQUEST', 'denomIn is not a valid percent-encoded denom');
        }
        side = side === 'base' ? p.denomA : side === 'quote' ? p.denomB : side;
        if (!/^[0-9]{1,20}$/.test(a.amountIn ?? '') || BigInt(a.amountIn!) > U64_MAX) throw new QnexusError('BAD_REQUEST', 'amountIn must be an integer in 0..2^64-1');
        const q = quoteSwap(p, side, BigInt(a.amountIn!));
        return { pool: toHex(p.id), denomIn: side, amountIn: a.amountIn, denomOut: q.denomOut, amountOut: q.out.toString(), feeBps: p.feeBps, spotPrice: spotPrice(p.reserveA, p.reserveB).toString() };
      },
    },
  ];

  function listPools(store: Reads) {
    // A bounded read in key order: LIST_MAX pools and one more to tell whether others exist.
    const entries = store.range(POOL_PREFIX, LIST_MAX + 1);
    const pools = entries.slice(0, LIST_MAX).map(([k, v]) => poolJson(store, decodePool(k.subarray(1), v), false));
    return { pools, more: entries.length > LIST_MAX };
  }

  return {
    name: 'amm',
    id: AMM_ID,
    accounts: [AMM_ACCOUNT_NAME],
    errors: AMM_ERRORS,
    msgs: [msg(create), msg(add), msg(remove), msg(swap), msg(commitFee), msg(applyFee)],
    xfers: [
      {
        op: AMM_OP.swap,
        name: 'amm-swap',
        route: 'shard-shard',
        toModule: AMM_ACCOUNT_NAME,
        checkPayload(x: XferInfo, params: StateParams) {
          if (x.payload.length !== 24 || x.amount === 0n || !DENOM_RE.test(x.denom)) return false;
          try {
            const d = decodeSwapPayload(x.payload);
            return poolShard(d.pool) === x.dstShard && x.dstShard < params.shardCount;
          } catch {
            return false;
          }
        },
        prepare(ctx, x) {
          const d = decodeSwapPayload(x.payload);
          const s = ctx.store(AMM_ID);
          const p = getPool(s, d.pool);
          if (!p) return 'AMM_UNKNOWN_POOL';
          if (BigInt(ctx.block.slot) > d.deadline) return 'AMM_DEADLINE';
          const q = quoteSwap(p, x.denom, x.amount); // AMM_BAD_DENOM / AMM_OVERFLOW refuse through the engine
          if (q.out === 0n) return 'AMM_INSUFFICIENT_LIQUIDITY';
          if (q.out < d.minOut) return 'AMM_SLIPPAGE';
          s.set(preparedKey(x.id), new Uint8Array(0));
          return null;
        },
        settleDestination(ctx, x, commit) {
          const s = ctx.store(AMM_ID);
          s.delete(preparedKey(x.id));
          if (!commit) return;
          // The engine credited amountIn to the module account (it commits only what this shard
          // accepted at prepare): it joins this block's batch, checked again at execution.
          const d = decodeSwapPayload(x.payload);
          const p = getPool(s, d.pool);
          if (!p) throw new QnexusError('INVARIANT_BROKEN', `prepared swap for a missing pool ${toHex(d.pool)}`);
          enqueue(s, p, { pool: p.id, aIn: x.denom === p.denomA, amountIn: x.amount, minOut: d.minOut, deadline: d.deadline, trader: x.from, xcall: x.id });
        },
      },
      pay.op,
    ],
    genesis: {
      parse: parseGenesis,
      default: () => DEFAULT_AMM_PARAMS,
      init(ctx, g) {
        const p = g as AmmParams;
        ctx.store(AMM_ID).set(PARAMS_KEY, new Writer(12).u64(p.creationFee).u32(p.feeDelaySlots).finish());
      },
    } as Module['genesis'],
    queries,
    endBlock(ctx) {
      runBatch(ctx);
      pay.retry(ctx, RETRIES_PER_BLOCK);
      recordPrices(ctx);
    },
    invariants(ctx) {
      const s = ctx.store(AMM_ID);
      const denoms = new Set<string>();
      for (const id of touchedIn(s, ctx.block.height)) {
        const p = getPool(s, id);
        if (!p) throw new Error(`touched pool ${toHex(id)} is missing`);
        const tag = `pool ${toHex(id)}`;
        if (p.reserveA === 0n || p.reserveB === 0n) throw new Error(`${tag}: a reserve is zero`);
        const k0 = p.snapA * p.snapB;
        const k1 = p.reserveA * p.reserveB;
        // k never falls except by a withdrawal; √k per share (k/S²) never falls at all.
        if (!p.removed && k1 < k0) throw new Error(`${tag}: k fell from ${k0} to ${k1} without a withdrawal`);
        if (k1 * p.snapShares * p.snapShares < k0 * p.totalShares * p.totalShares) throw new Error(`${tag}: value per share fell`);
        const sup = bank.supply(ctx, lpDenom(id));
        if (sup.minted - sup.burned + MINIMUM_LIQUIDITY !== p.totalShares) throw new Error(`${tag}: total shares ${p.totalShares} ≠ minted ${sup.minted} − burned ${sup.burned} + ${MINIMUM_LIQUIDITY} locked`);
        denoms.add(p.denomA);
        denoms.add(p.denomB);
      }
      for (const d of denoms) {
        const b = denomBook(s, d);
        const owed = pay.owed(ctx, d);
        const bal = bank.balance(ctx, AMM_ACCOUNT, d);
        // Exact: the bank refuses user sends to module accounts (TX_BAD_RECIPIENT), so nothing but the
        // module's own messages moves this balance, and reserves come from the ledger, never from it.
        if (bal !== b.reserves + b.queued + owed) throw new Error(`module account holds ${bal} ${d}, its books say reserves ${b.reserves} + queued ${b.queued} + owed ${owed}`);
      }
    },
  };
}
