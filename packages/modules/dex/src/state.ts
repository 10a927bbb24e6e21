import { ADDRESS_BYTES, HASH_BYTES, concatBytes, sha256, utf8 } from '@qnexus/crypto';
import type { ExecCtx, ModuleStore } from '@qnexus/state';
import { QnexusError, Writer, decodeWith } from '@qnexus/types';
import { MARKET_ID_BYTES, ORDER_ID_BYTES, SIDES, TYPES, type OrderType, type Side } from './codec.js';
import { MODULE_IDS } from '@qnexus/state';

/**
 * The dex's state and its pure arithmetic. Keys under module id 7 (module-relative):
 *   0x00                                   → params (genesis)
 *   0x01 ‖ market(18)                      → market record
 *   0x10 ‖ order(32)                       → order record
 *   0x11 ‖ market ‖ side ‖ u64 pk ‖ h(32)  → order id: the book in priority order (pk = price for
 *                                            sells, 2^64−1−price for buys; h = sha256(order id))
 *   0x12 ‖ market ‖ order                  → empty: the order is new in this block (a taker)
 *   0x13 ‖ market                          → empty: the market has a batch to run at end of block
 *   0x14 ‖ market                          → empty: touched in this block (invariants), cleared next block
 *   0x15 ‖ market ‖ owner(20) ‖ side       → u32 open orders + reservations ‖ u64 locked
 *   0x16 ‖ market ‖ owner ‖ order          → empty: the owner's orders
 *   0x17 ‖ u64 goodTilSlot ‖ order         → empty: the expiry index
 *   0x18 ‖ market ‖ xfer id(32)            → owner ‖ side: an incoming order reserved at prepare
 *   0x19 ‖ market ‖ u16 i                  → the trade ring (the last `tradesKept` clearing events)
 *   0x1a ‖ market ‖ owner ‖ side            → empty: the account's books changed in this block
 *                                            (the invariants re-check its orders), cleared next block
 *   0x20 ‖ string denom                    → u64 Σ locks ‖ u64 fees accrued (the books per denom)
 * 0xf0/0xf1 are the payouts helper's.
 */
export const DEX_ID = MODULE_IDS.dex;
export const BPS = 10_000n;
const U64_MAX = 0xffffffffffffffffn;

export const K = {
  params: new Uint8Array([0x00]),
  market: (id: Uint8Array) => concatBytes(new Uint8Array([0x01]), id),
  marketPrefix: new Uint8Array([0x01]),
  order: (id: Uint8Array) => concatBytes(new Uint8Array([0x10]), id),
  book: (market: Uint8Array, side: Side, price: bigint, id: Uint8Array) =>
    new Writer(64)
      .u8(0x11)
      .fixed(market, MARKET_ID_BYTES)
      .u8(SIDES.indexOf(side))
      .u64(side === 'buy' ? U64_MAX - price : price)
      .fixed(sha256(id), HASH_BYTES)
      .finish(),
  bookSide: (market: Uint8Array, side: Side) => new Writer(24).u8(0x11).fixed(market, MARKET_ID_BYTES).u8(SIDES.indexOf(side)).finish(),
  bookMarket: (market: Uint8Array) => concatBytes(new Uint8Array([0x11]), market),
  fresh: (market: Uint8Array, id: Uint8Array) => concatBytes(new Uint8Array([0x12]), market, id),
  freshMarket: (market: Uint8Array) => concatBytes(new Uint8Array([0x12]), market),
  pending: (market: Uint8Array) => concatBytes(new Uint8Array([0x13]), market),
  pendingPrefix: new Uint8Array([0x13]),
  touched: (market: Uint8Array) => concatBytes(new Uint8Array([0x14]), market),
  touchedPrefix: new Uint8Array([0x14]),
  touchedAcct: (market: Uint8Array, owner: Uint8Array, side: Side) => concatBytes(new Uint8Array([0x1a]), market, owner, new Uint8Array([SIDES.indexOf(side)])),
  touchedAcctMarket: (market: Uint8Array) => concatBytes(new Uint8Array([0x1a]), market),
  touchedAcctPrefix: new Uint8Array([0x1a]),
  acct: (market: Uint8Array, owner: Uint8Array, side: Side) => concatBytes(new Uint8Array([0x15]), market, owner, new Uint8Array([SIDES.indexOf(side)])),
  acctMarket: (market: Uint8Array) => concatBytes(new Uint8Array([0x15]), market),
  owner: (market: Uint8Array, owner: Uint8Array, id: Uint8Array) => concatBytes(new Uint8Array([0x16]), market, owner, id),
  ownerPrefix: (market: Uint8Array, owner: Uint8Array) => concatBytes(new Uint8Array([0x16]), market, owner),
  expiry: (slot: bigint, id: Uint8Array) => new Writer(48).u8(0x17).u64(slot).fixed(id, ORDER_ID_BYTES).finish(),
  expiryPrefix: new Uint8Array([0x17]),
  resv: (market: Uint8Array, xid: Uint8Array) => concatBytes(new Uint8Array([0x18]), market, xid),
  resvMarket: (market: Uint8Array) => concatBytes(new Uint8Array([0x18]), market),
  trade: (market: Uint8Array, i: number) => new Writer(24).u8(0x19).fixed(market, MARKET_ID_BYTES).u16(i).finish(),
  tradeMarket: (market: Uint8Array) => concatBytes(new Uint8Array([0x19]), market),
  denom: (denom: string) => new Writer(72).u8(0x20).string(denom).finish(),
  denomPrefix: new Uint8Array([0x20]),
};

// ------------------------------------------------------------------ params

export interface DexParams {
  /** Native fee to list a market (kept by the module as an accrued fee). */
  listingFee: bigint;
  makerFeeBps: number;
  takerFeeBps: number;
  /** Open orders (and reservations) per account, side and market. */
  maxOrdersPerSide: number;
  /** goodTilSlot ≤ slot + this. */
  maxGoodTilSlots: number;
  /** Orders per side one batch reads (the auction's bound); a deeper crossing waits for the next block. */
  matchLimit: number;
  /** Expired orders removed per block (oldest first). */
  expiriesPerBlock: number;
  /** Open orders (and reservations) per market: bounds the invariants' walk of a touched market. */
  maxOrdersPerMarket: number;
  /** Clearing events the trade ring keeps per market. */
  tradesKept: number;
  /** Aborted payouts re-sent per block. */
  retryPerBlock: number;
}

export const DEFAULT_PARAMS: DexParams = {
  listingFee: 1_000n,
  makerFeeBps: 10,
  takerFeeBps: 20,
  maxOrdersPerSide: 100,
  maxGoodTilSlots: 2_592_000,
  matchLimit: 256,
  expiriesPerBlock: 64,
  maxOrdersPerMarket: 10_000,
  tradesKept: 32,
  retryPerBlock: 16,
};

export const encodeParams = (p: DexParams): Uint8Array =>
  new Writer(64)
    .u64(p.listingFee)
    .u16(p.makerFeeBps)
    .u16(p.takerFeeBps)
    .u16(p.maxOrdersPerSide)
    .u32(p.maxGoodTilSlots)
    .u32(p.matchLimit)
    .u32(p.expiriesPerBlock)
    .u32(p.maxOrdersPerMarket)
    .u16(p.tradesKept)
    .u16(p.retryPerBlock)
    .finish();

export const decodeParams = (b: Uint8Array): DexParams =>
  decodeWith(b, 'dex params', (r) => ({
    listingFee: r.u64(),
    makerFeeBps: r.u16(),
    takerFeeBps: r.u16(),
    maxOrdersPerSide: r.u16(),
    maxGoodTilSlots: r.u32(),
    matchLimit: r.u32(),
    expiriesPerBlock: r.u32(),
    maxOrdersPerMarket: r.u32(),
    tradesKept: r.u16(),
    retryPerBlock: r.u16(),
  }));

/** Strict parse of the genesis section (unknown keys refused; every number in range). */
export function parseParams(json: unknown): DexParams {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('the dex section must be an object');
  const o = json as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!(k in DEFAULT_PARAMS)) throw new Error(`unknown dex parameter ${k}`);
  const int = (k: keyof DexParams, min: number, max: number): number => {
    const v = o[k] ?? DEFAULT_PARAMS[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new Error(`dex.${k} must be an integer in ${min}..${max}`);
    return v;
  };
  const fee = o.listingFee ?? DEFAULT_PARAMS.listingFee.toString();
  if (typeof fee !== 'string' || !/^[0-9]{1,20}$/.test(fee) || BigInt(fee) > U64_MAX) throw new Error('dex.listingFee must be a decimal string of a u64');
  const p: DexParams = {
    listingFee: BigInt(fee),
    makerFeeBps: int('makerFeeBps', 0, 1000),
    takerFeeBps: int('takerFeeBps', 0, 1000),
    maxOrdersPerSide: int('maxOrdersPerSide', 1, 1000),
    maxGoodTilSlots: int('maxGoodTilSlots', 1, 100_000_000),
    matchLimit: int('matchLimit', 1, 10_000),
    expiriesPerBlock: int('expiriesPerBlock', 1, 10_000),
    maxOrdersPerMarket: int('maxOrdersPerMarket', 1, 100_000),
    tradesKept: int('tradesKept', 1, 1000),
    retryPerBlock: int('retryPerBlock', 1, 1000),
  };
  // A buy locks the taker fee; a maker fee above it could not be paid from the lock.
  if (p.makerFeeBps > p.takerFeeBps) throw new Error('dex.makerFeeBps must not exceed dex.takerFeeBps (a buy locks the taker fee)');
  return p;
}

export function readParams(s: ModuleStore): DexParams {
  const b = s.get(K.params);
  return b ? decodeParams(b) : DEFAULT_PARAMS;
}

// ------------------------------------------------------------------ market

export interface Market {
  id: Uint8Array;
  base: string;
  quote: string;
  tickSize: bigint;
  lotSize: bigint;
  minNotional: bigint;
  admin: Uint8Array;
  paused: boolean;
  lastPrice: bigint;
  tradeSeq: bigint;
  /** Open orders + reservations (bounded by maxOrdersPerMarket). */
  open: number;
  /** The last batch read `matchLimit` orders of a side and more were there: it continues next block. */
  backlog: boolean;
}

export const encodeMarket = (m: Market): Uint8Array =>
  new Writer(256)
    .fixed(m.id, MARKET_ID_BYTES)
    .string(m.base)
    .string(m.quote)
    .u64(m.tickSize)
    .u64(m.lotSize)
    .u64(m.minNotional)
    .fixed(m.admin, ADDRESS_BYTES)
    .u8(m.paused ? 1 : 0)
    .u64(m.lastPrice)
    .u64(m.tradeSeq)
    .u32(m.open)
    .u8(m.backlog ? 1 : 0)
    .finish();

export const decodeMarket = (b: Uint8Array): Market =>
  decodeWith(b, 'dex market', (r) => ({
    id: r.fixed(MARKET_ID_BYTES),
    base: r.string(64),
    quote: r.string(64),
    tickSize: r.u64(),
    lotSize: r.u64(),
    minNotional: r.u64(),
    admin: r.fixed(ADDRESS_BYTES),
    paused: r.u8() === 1,
    lastPrice: r.u64(),
    tradeSeq: r.u64(),
    open: r.u32(),
    backlog: r.u8() === 1,
  }));

export function marketIdOf(shard: number, txHash: Uint8Array): Uint8Array {
  return concatBytes(new Uint8Array([shard >> 8, shard & 0xff]), sha256(concatBytes(utf8('qnexus/dex/market'), txHash)).subarray(0, 16));
}

/** Order id: the hash of the placing transaction's hash (for an xcall, the transfer id, which is that hash). */
export function orderIdOf(txHash: Uint8Array): Uint8Array {
  return sha256(concatBytes(utf8('qnexus/dex/order'), txHash, new Uint8Array([0])));
}

// ------------------------------------------------------------------ order

export interface Order {
  id: Uint8Array;
  market: Uint8Array;
  owner: Uint8Array;
  side: Side;
  type: OrderType;
  price: bigint;
  original: bigint;
  remaining: bigint;
  filled: bigint;
  cancelled: bigint;
  /** What the module holds for this order now: need(order) at every block end. */
  locked: bigint;
  /** Σ notional × fee bps of its fills so far (the fee charged is ⌈feeNum / 10⁴⌉ in all). */
  feeNum: bigint;
  /**
   * The fee rate a buy's lock covers: the taker fee while the order is new, the maker fee once it
   * rests after its first batch (the difference is refunded then, as Injective does).
   */
  lockBps: number;
  goodTilSlot: bigint;
  /** Height of the block it joined: a taker in that block's batch, a maker after. */
  height: bigint;
}

export const encodeOrder = (o: Order): Uint8Array =>
  new Writer(200)
    .fixed(o.id, ORDER_ID_BYTES)
    .fixed(o.market, MARKET_ID_BYTES)
    .fixed(o.owner, ADDRESS_BYTES)
    .u8(SIDES.indexOf(o.side))
    .u8(TYPES.indexOf(o.type))
    .u64(o.price)
    .u64(o.original)
    .u64(o.remaining)
    .u64(o.filled)
    .u64(o.cancelled)
    .u64(o.locked)
    .u64(o.feeNum >> 64n)
    .u64(o.feeNum & U64_MAX)
    .u16(o.lockBps)
    .u64(o.goodTilSlot)
    .u64(o.height)
    .finish();

export const decodeOrder = (b: Uint8Array): Order =>
  decodeWith(b, 'dex order', (r) => ({
    id: r.fixed(ORDER_ID_BYTES),
    market: r.fixed(MARKET_ID_BYTES),
    owner: r.fixed(ADDRESS_BYTES),
    side: SIDES[r.u8()]!,
    type: TYPES[r.u8()]!,
    price: r.u64(),
    original: r.u64(),
    remaining: r.u64(),
    filled: r.u64(),
    cancelled: r.u64(),
    locked: r.u64(),
    feeNum: (r.u64() << 64n) | r.u64(),
    lockBps: r.u16(),
    goodTilSlot: r.u64(),
    height: r.u64(),
  }));

export const ceilDiv = (a: bigint, b: bigint): bigint => (a + b - 1n) / b;

/**
 * What an order must have locked for its remaining quantity: a sell its base; a buy the quote at
 * its limit plus the fee (at `lockBps`) on it, counted on the order's cumulative fee so that fills
 * never round the fee twice: ⌈(F + rem·price·bps) / 10⁴⌉ − ⌈F / 10⁴⌉.
 */
export function need(o: Pick<Order, 'side' | 'remaining' | 'price' | 'feeNum' | 'lockBps'>): bigint {
  if (o.side === 'sell') return o.remaining;
  const n = o.remaining * o.price;
  return n + ceilDiv(o.feeNum + n * BigInt(o.lockBps), BPS) - ceilDiv(o.feeNum, BPS);
}

/** The lock of a new order (F = 0, the taker fee). */
export const lockOf = (side: Side, price: bigint, qty: bigint, takerBps: number): bigint => need({ side, remaining: qty, price, feeNum: 0n, lockBps: takerBps });

/** Fee of a fill of `notional` at `bps` for an order whose fills so far sum to feeNum: its new feeNum and the fee to charge. */
export function fillFee(feeNum: bigint, notional: bigint, bps: number): { feeNum: bigint; fee: bigint } {
  const next = feeNum + notional * BigInt(bps);
  return { feeNum: next, fee: ceilDiv(next, BPS) - ceilDiv(feeNum, BPS) };
}

// ------------------------------------------------------------------ small records

export interface Acct {
  count: number;
  locked: bigint;
}
export const readAcct = (s: ModuleStore, key: Uint8Array): Acct => {
  const b = s.get(key);
  return b ? decodeWith(b, 'dex account', (r) => ({ count: r.u32(), locked: r.u64() })) : { count: 0, locked: 0n };
};
export const writeAcct = (s: ModuleStore, key: Uint8Array, a: Acct): void => {
  if (a.count < 0 || a.locked < 0n) throw new QnexusError('INVARIANT_BROKEN', 'dex account books went negative');
  if (a.count === 0 && a.locked === 0n) s.delete(key);
  else s.set(key, new Writer(12).u32(a.count).u64(a.locked).finish());
};

export interface DenomBooks {
  locks: bigint;
  fees: bigint;
}
export const readDenom = (s: ModuleStore, denom: string): DenomBooks => {
  const b = s.get(K.denom(denom));
  return b ? decodeWith(b, 'dex denom', (r) => ({ locks: r.u64(), fees: r.u64() })) : { locks: 0n, fees: 0n };
};
/** Adjust a denom's books; the record is kept (even at zero) so the invariant walks every denom the module ever held. */
export const addDenom = (ctx: ExecCtx, denom: string, locks: bigint, fees: bigint): void => {
  const s = ctx.store(DEX_ID);
  const d = readDenom(s, denom);
  const next = { locks: d.locks + locks, fees: d.fees + fees };
  if (next.locks < 0n || next.fees < 0n) throw new QnexusError('INVARIANT_BROKEN', `dex books of ${denom} went negative`);
  s.set(K.denom(denom), new Writer(16).u64(next.locks).u64(next.fees).finish());
};

export interface Trade {
  seq: bigint;
  price: bigint;
  quantity: bigint;
  height: bigint;
}
export const encodeTrade = (t: Trade): Uint8Array => new Writer(32).u64(t.seq).u64(t.price).u64(t.quantity).u64(t.height).finish();
export const decodeTrade = (b: Uint8Array): Trade => decodeWith(b, 'dex trade', (r) => ({ seq: r.u64(), price: r.u64(), quantity: r.u64(), height: r.u64() }));
