import { ADDRESS_BYTES, bytesEqual, concatBytes, formatAddress, homeShard, sha256, toHex } from '@qnexus/crypto';
import { NATIVE_DENOM, moduleAccount, msg, payouts as makePayouts, type ExecCtx, type HostKeepers, type Module, type ModuleStore, type XferOpDef } from '@qnexus/state';
import { QnexusError, Writer, decodeWith, type TxEnvelope, type TxMsg, type XferInfo } from '@qnexus/types';
import { clearBatch, type BatchOrder } from './auction.js';
import {
  DENOM_RE,
  MARKET_ID_BYTES,
  MAX_BATCH_CANCEL,
  ORDER_ID_BYTES,
  SIDES,
  TYPES,
  addressParam,
  choiceArg,
  codecs,
  decodeCancel,
  decodeOrderSpec,
  encodeCancel,
  encodeOrderSpec,
  hexArg,
  marketParam,
  marketShard,
  u64Arg,
  type CancelMsg,
  type CreateMarketMsg,
  type MarketAdminMsg,
  type OrderSpec,
  type PlaceMsg,
  type Side,
} from './codec.js';
import {
  DEFAULT_PARAMS,
  DEX_ID,
  K,
  addDenom,
  decodeMarket,
  decodeOrder,
  decodeTrade,
  encodeMarket,
  encodeOrder,
  encodeParams,
  encodeTrade,
  fillFee,
  lockOf,
  marketIdOf,
  need,
  orderIdOf,
  parseParams,
  readAcct,
  readDenom,
  readParams,
  writeAcct,
  type DexParams,
  type Market,
  type Order,
} from './state.js';

export { clearBatch, type BatchOrder, type Clearing } from './auction.js';
export { MARKET_ID_BYTES, MAX_BATCH_CANCEL, type CancelMsg, type CreateMarketMsg, type MarketAdminMsg, type OrderSpec, type OrderType, type PlaceMsg, type Side } from './codec.js';
export { DEFAULT_PARAMS, DEX_ID, fillFee, lockOf, marketIdOf, need, orderIdOf, parseParams, type DexParams, type Market, type Order } from './state.js';

/** Message types within the module (wire kind = 7 << 8 | type). */
export const DEX_MSG = { createMarket: 1, place: 2, cancel: 3, batchCancel: 4, pause: 5, resume: 6 } as const;
export const DEX_KIND = Object.fromEntries(Object.entries(DEX_MSG).map(([n, t]) => [n, (DEX_ID << 8) | t])) as { [N in keyof typeof DEX_MSG]: number };
/** Cross-shard ops: an order into a market of another shard, a cancel of one, and the module's payouts. */
export const DEX_OP = { place: 1, cancel: 2, payout: 3 } as const;
/** The module account holding every lock and accrued fee (it exists on every shard). */
export const DEX_ACCOUNT_NAME = 'dex';
export const DEX_ACCOUNT = moduleAccount(DEX_ACCOUNT_NAME);

/** Payout legs of an order within one block (with the xcall id sha256(order ‖ height)), so each is paid once. */
const LEG = { proceeds: 1, refund: 2, release: 3, rest: 4 } as const;

export const DEX_ERRORS = {
  DEX_UNKNOWN_MARKET: 404,
  DEX_BAD_MARKET: 400,
  DEX_OFF_TICK: 400,
  DEX_OFF_LOT: 400,
  DEX_MIN_NOTIONAL: 400,
  DEX_TOO_MANY_ORDERS: 409,
  DEX_BAD_EXPIRY: 400,
  DEX_NOT_OWNER: 403,
  DEX_UNKNOWN_ORDER: 404,
  DEX_MARKET_PAUSED: 409,
  DEX_NOT_ADMIN: 403,
  DEX_OVERFLOW: 400,
  DEX_WRONG_DENOM: 400,
} as const;
export type DexErrorCode = keyof typeof DEX_ERRORS;

const U64_MAX = 0xffffffffffffffffn;
const err = (code: DexErrorCode, message: string) => new QnexusError(code, message);

// ------------------------------------------------------------------ typed builders (client side)

function build<P>(kind: number, encode: (w: Writer, p: P) => void, p: P): TxMsg {
  const w = new Writer(256);
  encode(w, p);
  return { kind, msg: w.finish() };
}
export const dexCreateMarketMsg = (p: CreateMarketMsg): TxMsg => build(DEX_KIND.createMarket, codecs.create.encode, p);
export const dexPlaceMsg = (p: Omit<PlaceMsg, 'denom'> & { denom?: string }): TxMsg => build(DEX_KIND.place, codecs.place.encode, { ...p, denom: p.denom ?? '' });
export const dexCancelMsg = (p: { market: Uint8Array; orderId: Uint8Array }): TxMsg => build(DEX_KIND.cancel, codecs.cancel.encode, { market: p.market, orderIds: [p.orderId] });
export const dexBatchCancelMsg = (p: CancelMsg): TxMsg => build(DEX_KIND.batchCancel, codecs.cancel.encode, p);
export const dexPauseMsg = (p: MarketAdminMsg): TxMsg => build(DEX_KIND.pause, codecs.admin.encode, p);
export const dexResumeMsg = (p: MarketAdminMsg): TxMsg => build(DEX_KIND.resume, codecs.admin.encode, p);
/** The order id a place transaction (by its hash) creates. */
export const dexOrderId = (txHash: Uint8Array): Uint8Array => orderIdOf(txHash);
/** The market id a create-market transaction (by its hash) on `shard` creates. */
export const dexMarketId = (shard: number, txHash: Uint8Array): Uint8Array => marketIdOf(shard, txHash);

// ------------------------------------------------------------------ stateless checks

function checkOrderShape(p: OrderSpec): void {
  if (p.price === 0n) throw err('DEX_OFF_TICK', 'price must be positive');
  if (p.quantity === 0n) throw err('DEX_OFF_LOT', 'quantity must be positive');
  if (p.goodTilSlot === 0n) throw err('DEX_BAD_EXPIRY', 'goodTilSlot must be a slot');
  // A buy locks qty × price + the taker fee (≤ 10 %), a fill pays qty × price: all must fit a u64.
  const notional = p.price * p.quantity;
  if (notional + notional / 10n + 1n > U64_MAX) throw err('DEX_OVERFLOW', `price × quantity = ${notional} (plus fees) does not fit a u64`);
}

function checkMarketShape(p: CreateMarketMsg): void {
  for (const d of [p.base, p.quote]) if (d !== NATIVE_DENOM && !DENOM_RE.test(d)) throw err('DEX_BAD_MARKET', `invalid denom ${JSON.stringify(d)}`);
  if (p.base === p.quote) throw err('DEX_BAD_MARKET', 'base and quote must differ');
  if (p.tickSize === 0n || p.lotSize === 0n) throw err('DEX_BAD_MARKET', 'tickSize and lotSize must be positive');
}

const cmpBytes = (a: Uint8Array, b: Uint8Array): number => {
  for (let i = 0; i < a.length && i < b.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
};

/** The dex module, given the host's keepers. */
export function dexModule(k: HostKeepers): Module {
  const pay = makePayouts(k.xfer, DEX_ID, DEX_OP.payout, DEX_ACCOUNT_NAME);
  const S = (ctx: { store(id: number): ModuleStore }) => ctx.store(DEX_ID);

  // -------------------------------------------------------------- reads and writes
  const getMarket = (s: ModuleStore, id: Uint8Array): Market | undefined => {
    const b = s.get(K.market(id));
    return b ? decodeMarket(b) : undefined;
  };
  const mustMarket = (s: ModuleStore, id: Uint8Array): Market => {
    const m = getMarket(s, id);
    if (!m) throw err('DEX_UNKNOWN_MARKET', `no market ${toHex(id)} on this shard`);
    return m;
  };
  const putMarket = (s: ModuleStore, m: Market) => s.set(K.market(m.id), encodeMarket(m));
  const getOrder = (s: ModuleStore, id: Uint8Array): Order | undefined => {
    const b = s.get(K.order(id));
    return b ? decodeOrder(b) : undefined;
  };
  const touch = (s: ModuleStore, market: Uint8Array) => s.set(K.touched(market), new Uint8Array(0));
  const lockDenom = (m: Market, side: Side) => (side === 'buy' ? m.quote : m.base);
  const acctAdd = (s: ModuleStore, market: Uint8Array, owner: Uint8Array, side: Side, count: number, locked: bigint) => {
    const key = K.acct(market, owner, side);
    const a = readAcct(s, key);
    writeAcct(s, key, { count: a.count + count, locked: a.locked + locked });
    // Every change to an order or reservation passes here: the invariants re-check this account.
    s.set(K.touchedAcct(market, owner, side), new Uint8Array(0));
    touch(s, market);
  };
  const payTo = (ctx: ExecCtx, o: Order, leg: number, amount: bigint, denom: string) => {
    if (amount === 0n) return;
    const xcall = sha256(concatBytes(o.id, new Writer(8).u64(ctx.block.height).finish()));
    pay.pay(ctx, xcall, leg, o.owner, amount, denom);
  };

  /** Stateful order checks against its market (both the local path and an xcall's prepare). */
  function checkOrder(ctx: ExecCtx, P: DexParams, m: Market, p: OrderSpec, owner: Uint8Array): void {
    if (m.paused) throw err('DEX_MARKET_PAUSED', `market ${toHex(m.id)} is paused`);
    if (p.price % m.tickSize !== 0n) throw err('DEX_OFF_TICK', `price ${p.price} is not a multiple of the tick ${m.tickSize}`);
    if (p.quantity % m.lotSize !== 0n) throw err('DEX_OFF_LOT', `quantity ${p.quantity} is not a multiple of the lot ${m.lotSize}`);
    if (p.price * p.quantity < m.minNotional) throw err('DEX_MIN_NOTIONAL', `notional ${p.price * p.quantity} is below the market's minimum ${m.minNotional}`);
    const slot = BigInt(ctx.block.slot);
    if (p.goodTilSlot < slot || p.goodTilSlot > slot + BigInt(P.maxGoodTilSlots)) throw err('DEX_BAD_EXPIRY', `goodTilSlot ${p.goodTilSlot} must be in ${slot}..${slot + BigInt(P.maxGoodTilSlots)}`);
    if (readAcct(S(ctx), K.acct(m.id, owner, p.side)).count >= P.maxOrdersPerSide) throw err('DEX_TOO_MANY_ORDERS', `at most ${P.maxOrdersPerSide} open ${p.side} orders per account in a market`);
    if (m.open >= P.maxOrdersPerMarket) throw err('DEX_TOO_MANY_ORDERS', `the market holds its maximum of ${P.maxOrdersPerMarket} open orders`);
  }

  /** A new order joins this block's batch: its lock (`locked`) is already in the module account and counted in the account's count. */
  function addOrder(ctx: ExecCtx, P: DexParams, m: Market, id: Uint8Array, owner: Uint8Array, p: OrderSpec, locked: bigint): Order {
    const s = S(ctx);
    const o: Order = {
      id,
      market: m.id,
      owner,
      side: p.side,
      type: p.type,
      price: p.price,
      original: p.quantity,
      remaining: p.quantity,
      filled: 0n,
      cancelled: 0n,
      locked,
      feeNum: 0n,
      lockBps: P.takerFeeBps,
      goodTilSlot: p.goodTilSlot,
      height: BigInt(ctx.block.height),
    };
    if (s.has(K.order(id))) throw new QnexusError('INVARIANT_BROKEN', `order ${toHex(id)} exists`);
    s.set(K.order(id), encodeOrder(o));
    s.set(K.book(m.id, o.side, o.price, id), id);
    s.set(K.owner(m.id, owner, id), new Uint8Array(0));
    s.set(K.expiry(o.goodTilSlot, id), new Uint8Array(0));
    s.set(K.fresh(m.id, id), new Uint8Array(0));
    s.set(K.pending(m.id), new Uint8Array(0));
    touch(s, m.id);
    acctAdd(s, m.id, owner, o.side, 0, locked);
    addDenom(ctx, lockDenom(m, o.side), locked, 0n);
    return o;
  }

  /** Take an order off every index (its lock must be zero by then, released or spent). */
  function removeOrder(ctx: ExecCtx, m: Market, o: Order): void {
    const s = S(ctx);
    if (o.locked !== 0n || o.remaining !== 0n) throw new QnexusError('INVARIANT_BROKEN', `order ${toHex(o.id)} removed with ${o.remaining} remaining, ${o.locked} locked`);
    if (o.filled + o.cancelled !== o.original) throw new QnexusError('INVARIANT_BROKEN', `order ${toHex(o.id)}: filled ${o.filled} + cancelled ${o.cancelled} ≠ ${o.original}`);
    s.delete(K.order(o.id));
    s.delete(K.book(m.id, o.side, o.price, o.id));
    s.delete(K.owner(m.id, o.owner, o.id));
    s.delete(K.expiry(o.goodTilSlot, o.id));
    s.delete(K.fresh(m.id, o.id));
    acctAdd(s, m.id, o.owner, o.side, -1, 0n);
    m.open -= 1;
    touch(s, m.id);
  }

  /** Cancel what is left of an order: its whole lock goes back to the owner (leg `release`). */
  function closeOrder(ctx: ExecCtx, m: Market, o: Order): void {
    const s = S(ctx);
    const release = o.locked;
    acctAdd(s, m.id, o.owner, o.side, 0, -release);
    addDenom(ctx, lockDenom(m, o.side), -release, 0n);
    o.cancelled += o.remaining;
    o.remaining = 0n;
    o.locked = 0n;
    removeOrder(ctx, m, o);
    payTo(ctx, o, LEG.release, release, lockDenom(m, o.side));
  }

  /** Cancel orders of `owner` by id (all or nothing: an unknown or foreign one refuses the lot). */
  function cancelOrders(ctx: ExecCtx, m: Market, owner: Uint8Array, ids: readonly Uint8Array[], strict: boolean): void {
    const s = S(ctx);
    const orders: Order[] = [];
    for (const id of ids) {
      const o = getOrder(s, id);
      if (!o || !bytesEqual(o.market, m.id)) {
        if (strict) throw err('DEX_UNKNOWN_ORDER', `no open order ${toHex(id)} in market ${toHex(m.id)}`);
        continue;
      }
      if (!bytesEqual(o.owner, owner)) {
        if (strict) throw err('DEX_NOT_OWNER', `order ${toHex(id)} belongs to ${formatAddress(o.owner)}`);
        continue;
      }
      orders.push(o);
    }
    for (const o of orders) closeOrder(ctx, m, o);
    putMarket(s, m);
  }

  function checkCancelShape(p: CancelMsg): void {
    const seen = new Set(p.orderIds.map(toHex));
    if (seen.size !== p.orderIds.length) throw new QnexusError('TX_MALFORMED', 'a cancel names each order once');
  }

  // -------------------------------------------------------------- the batch

  /** One frequent batch auction of market `id` (end of block). */
  function runBatch(ctx: ExecCtx, P: DexParams, id: Uint8Array): void {
    const s = S(ctx);
    const m = getMarket(s, id);
    if (!m) {
      s.delete(K.pending(id));
      return;
    }
    const h = BigInt(ctx.block.height);
    const fresh = s.range(K.freshMarket(id), P.maxOrdersPerMarket).map(([key]) => getOrder(s, key.subarray(1 + MARKET_ID_BYTES))!);
    const opposite = (side: Side): Side => (side === 'buy' ? 'sell' : 'buy');
    const crosses = (buy: bigint, sell: bigint) => buy >= sell;
    const bestOf = (side: Side): Order | undefined => {
      const e = s.range(K.bookSide(id, side), 1)[0];
      return e ? getOrder(s, e[1]) : undefined;
    };
    const hashOf = (o: Order) => sha256(o.id);
    const cancel = new Map<string, Order>();
    // 1. A new post-only order that crosses the best opposite order (any, new or resting) is cancelled:
    //    it would take. Decided on the batch as it stands, so it does not depend on arrival order.
    for (const o of fresh) {
      if (o.type !== 'post-only') continue;
      const best = bestOf(opposite(o.side));
      if (best && (o.side === 'buy' ? crosses(o.price, best.price) : crosses(best.price, o.price))) cancel.set(toHex(o.id), o);
    }
    // 2. Self-trade: a new order that crosses an opposite order of the same owner cancels that
    //    resting maker; when both are new, the one with the larger id hash goes.
    for (const o of fresh) {
      if (o.type === 'post-only') continue;
      for (const [key] of s.range(K.ownerPrefix(id, o.owner), 2 * P.maxOrdersPerSide)) {
        const other = getOrder(s, key.subarray(1 + MARKET_ID_BYTES + ADDRESS_BYTES))!;
        // A new post-only order either was cancelled above or crosses nothing.
        if (other.side === o.side || (other.type === 'post-only' && other.height === h)) continue;
        const cross = o.side === 'buy' ? crosses(o.price, other.price) : crosses(other.price, o.price);
        if (!cross) continue;
        if (other.height < h) cancel.set(toHex(other.id), other);
        else {
          const loser = cmpBytes(hashOf(o), hashOf(other)) > 0 ? o : other;
          cancel.set(toHex(loser.id), loser);
        }
      }
    }
    for (const key of [...cancel.keys()].sort()) closeOrder(ctx, m, cancel.get(key)!);
    // 3. The auction over the top `matchLimit` orders of each side, in book order (price, then id hash).
    const sideOrders = (side: Side) => s.range(K.bookSide(id, side), P.matchLimit + 1).map(([, v]) => getOrder(s, v)!);
    const buys = sideOrders('buy');
    const sells = sideOrders('sell');
    const backlog = buys.length > P.matchLimit || sells.length > P.matchLimit;
    buys.length = Math.min(buys.length, P.matchLimit);
    sells.length = Math.min(sells.length, P.matchLimit);
    const byKey = new Map<string, Order>();
    const asBatch = (o: Order): BatchOrder => {
      const key = toHex(o.id);
      byKey.set(key, o);
      return { key, price: o.price, qty: o.remaining };
    };
    const clearing = clearBatch(buys.map(asBatch), sells.map(asBatch), m.tickSize);
    if (clearing) {
      for (const [key, q] of [...clearing.fills].sort((a, b) => (a[0] < b[0] ? -1 : 1))) settleFill(ctx, P, m, byKey.get(key)!, q, clearing.price, h);
      const i = Number(m.tradeSeq % BigInt(P.tradesKept));
      s.set(K.trade(id, i), encodeTrade({ seq: m.tradeSeq, price: clearing.price, quantity: clearing.volume, height: h }));
      m.tradeSeq += 1n;
      m.lastPrice = clearing.price;
    }
    // 4. What is left of a new IOC order is cancelled after the auction; what is left of any other
    //    new order comes to rest: a maker from now on, its lock drops to the maker fee (refunded).
    for (const o of fresh) {
      const now = getOrder(s, o.id);
      if (!now) continue;
      if (o.type === 'ioc') {
        closeOrder(ctx, m, now);
        continue;
      }
      if (now.lockBps === P.makerFeeBps) continue;
      const before = now.locked;
      now.lockBps = P.makerFeeBps;
      now.locked = need(now);
      const release = before - now.locked;
      acctAdd(s, m.id, now.owner, now.side, 0, -release);
      addDenom(ctx, lockDenom(m, now.side), -release, 0n);
      s.set(K.order(now.id), encodeOrder(now));
      payTo(ctx, now, LEG.rest, release, lockDenom(m, now.side));
    }
    for (const [key] of s.range(K.freshMarket(id), P.maxOrdersPerMarket)) s.delete(key);
    m.backlog = backlog;
    if (!backlog) s.delete(K.pending(id));
    putMarket(s, m);
    touch(s, id);
  }

  /**
   * Settle a fill of `q` at the batch price `p` straight into balances: a buyer gets the base and
   * back what it locked beyond the fill's cost (price improvement, fee difference); a seller gets
   * the quote less its fee. A maker (resting from an earlier block) pays the maker fee, a taker
   * (new in this block) the taker fee; fees stay in the module account, booked per denom.
   */
  function settleFill(ctx: ExecCtx, P: DexParams, m: Market, o: Order, q: bigint, p: bigint, h: bigint): void {
    const s = S(ctx);
    const notional = q * p;
    const bps = o.height < h ? P.makerFeeBps : P.takerFeeBps;
    const { feeNum, fee } = fillFee(o.feeNum, notional, bps);
    const before = o.locked;
    o.remaining -= q;
    o.filled += q;
    o.feeNum = feeNum;
    o.locked = need(o);
    const spent = before - o.locked;
    acctAdd(s, m.id, o.owner, o.side, 0, -spent);
    if (o.side === 'buy') {
      const refund = spent - notional - fee;
      if (refund < 0n) throw new QnexusError('INVARIANT_BROKEN', `buy ${toHex(o.id)}: its lock does not cover the fill`);
      addDenom(ctx, m.quote, -spent, fee);
      payTo(ctx, o, LEG.proceeds, q, m.base);
      payTo(ctx, o, LEG.refund, refund, m.quote);
    } else {
      addDenom(ctx, m.base, -spent, 0n);
      addDenom(ctx, m.quote, 0n, fee);
      payTo(ctx, o, LEG.proceeds, notional - fee, m.quote);
    }
    if (o.remaining === 0n) removeOrder(ctx, m, o);
    else s.set(K.order(o.id), encodeOrder(o));
  }

  // -------------------------------------------------------------- cross-shard ops

  const placeOp: XferOpDef = {
    op: DEX_OP.place,
    name: 'dex-place',
    route: 'shard-shard',
    toModule: DEX_ACCOUNT_NAME,
    checkPayload(x) {
      if (x.amount === 0n || x.payload.length > 64) return false;
      try {
        checkOrderShape(decodeOrderSpec(x.payload));
        return true;
      } catch {
        return false;
      }
    },
    // Validate and reserve (count the order against the account's and market's limits); a throw is the refusal code.
    prepare(ctx, x) {
      const P = readParams(S(ctx));
      const s = S(ctx);
      const spec = decodeOrderSpec(x.payload);
      const m = mustMarket(s, spec.market);
      checkOrder(ctx, P, m, spec, x.from);
      if (x.denom !== lockDenom(m, spec.side)) throw err('DEX_WRONG_DENOM', `a ${spec.side} order locks ${lockDenom(m, spec.side)}, not ${x.denom}`);
      if (x.amount !== lockOf(spec.side, spec.price, spec.quantity, P.takerFeeBps)) throw err('DEX_WRONG_DENOM', `the order's lock is ${lockOf(spec.side, spec.price, spec.quantity, P.takerFeeBps)}, not ${x.amount}`);
      acctAdd(s, m.id, x.from, spec.side, 1, 0n);
      m.open += 1;
      putMarket(s, m);
      s.set(K.resv(m.id, x.id), new Writer(24).fixed(x.from, ADDRESS_BYTES).u8(SIDES.indexOf(spec.side)).finish());
      touch(s, m.id);
      return null;
    },
    // Commit: the engine credited the lock to the module account; the order joins this block's batch.
    // Abort: the reservation is released (the source refunds the escrow).
    settleDestination(ctx, x, commit) {
      const s = S(ctx);
      const spec = decodeOrderSpec(x.payload);
      const key = K.resv(spec.market, x.id);
      if (!s.has(key)) return;
      s.delete(key);
      const m = mustMarket(s, spec.market);
      touch(s, m.id);
      const P = readParams(s);
      if (!commit) {
        acctAdd(s, m.id, x.from, spec.side, -1, 0n);
        m.open -= 1;
        putMarket(s, m);
        return;
      }
      const o = addOrder(ctx, P, m, orderIdOf(x.id), x.from, spec, x.amount);
      // Its good-til slot passed while the beacon decided: it never trades, its lock goes back.
      if (o.goodTilSlot < BigInt(ctx.block.slot)) closeOrder(ctx, m, o);
      putMarket(s, m);
    },
  };

  const cancelOp: XferOpDef = {
    op: DEX_OP.cancel,
    name: 'dex-cancel',
    route: 'shard-shard',
    toModule: DEX_ACCOUNT_NAME,
    checkPayload(x) {
      if (x.amount !== 0n || x.denom !== NATIVE_DENOM || x.payload.length > 24 + 32 * MAX_BATCH_CANCEL) return false;
      try {
        checkCancelShape(decodeCancel(x.payload));
        return true;
      } catch {
        return false;
      }
    },
    prepare(ctx, x) {
      const s = S(ctx);
      const c = decodeCancel(x.payload);
      const m = mustMarket(s, c.market);
      for (const id of c.orderIds) {
        const o = getOrder(s, id);
        if (!o || !bytesEqual(o.market, m.id)) throw err('DEX_UNKNOWN_ORDER', `no open order ${toHex(id)}`);
        if (!bytesEqual(o.owner, x.from)) throw err('DEX_NOT_OWNER', `order ${toHex(id)} is not ${formatAddress(x.from)}'s`);
      }
      return null;
    },
    // Orders that filled or expired since the prepare are simply gone: the rest are cancelled.
    settleDestination(ctx, x, commit) {
      if (!commit) return;
      const c = decodeCancel(x.payload);
      const m = getMarket(S(ctx), c.market);
      if (m) cancelOrders(ctx, m, x.from, c.orderIds, false);
    },
  };

  // -------------------------------------------------------------- messages

  const marketArg = { name: 'market', help: 'market id (36 hex characters: u16 home shard ‖ hash)' };

  function handleCancel(ctx: ExecCtx, env: TxEnvelope, p: CancelMsg): void {
    if (marketShard(p.market) !== ctx.params.shard) {
      const info = k.xfer.infoFor(ctx, env, { module: DEX_ID, op: DEX_OP.cancel, denom: NATIVE_DENOM, dstShard: marketShard(p.market), to: DEX_ACCOUNT, amount: 0n, payload: encodeCancel(p) });
      k.xfer.open(ctx, info, env.from);
      return;
    }
    cancelOrders(ctx, mustMarket(S(ctx), p.market), env.from, p.orderIds, true);
  }

  const validateMarketRef = (market: Uint8Array, shardCount: number) => {
    if (marketShard(market) >= shardCount) throw err('DEX_UNKNOWN_MARKET', `market ${toHex(market)} names shard ${marketShard(market)}; there are ${shardCount}`);
  };

  const adminMsg = (type: number, name: string, paused: boolean) =>
    msg<MarketAdminMsg>({
      type,
      name,
      ...codecs.admin,
      validate: (p, _env, params) => validateMarketRef(p.market, params.shardCount),
      client: {
        args: [marketArg],
        build: (a) => ({ market: hexArg('market', a.market, MARKET_ID_BYTES) }),
      },
      handle({ ctx, env, store }, p) {
        const m = mustMarket(store, p.market);
        if (!bytesEqual(m.admin, env.from)) throw err('DEX_NOT_ADMIN', `only the market's admin ${formatAddress(m.admin)} may ${paused ? 'pause' : 'resume'} it`);
        m.paused = paused;
        putMarket(store, m);
        touch(store, m.id);
        void ctx;
      },
      json: (p) => ({ market: toHex(p.market) }),
    });

  const cancelClient = (batch: boolean) => ({
    args: batch
      ? [marketArg, { name: 'orderIds', help: `order ids (64 hex characters each), comma-separated, at most ${MAX_BATCH_CANCEL}` }]
      : [marketArg, { name: 'orderId', help: 'order id (64 hex characters)' }],
    build(a: Readonly<Record<string, string>>): CancelMsg {
      const market = hexArg('market', a.market, MARKET_ID_BYTES);
      if (!batch) return { market, orderIds: [hexArg('orderId', a.orderId, ORDER_ID_BYTES)] };
      const list = (a.orderIds ?? '').split(',').filter((x) => x !== '');
      if (list.length < 1 || list.length > MAX_BATCH_CANCEL) throw new QnexusError('TX_MALFORMED', `orderIds names 1..${MAX_BATCH_CANCEL} orders`);
      return { market, orderIds: list.map((x) => hexArg('orderId', x, ORDER_ID_BYTES)) };
    },
  });

  const orderJson = (o: Order) => ({
    id: toHex(o.id),
    market: toHex(o.market),
    owner: formatAddress(o.owner),
    side: o.side,
    type: o.type,
    price: o.price.toString(),
    quantity: o.original.toString(),
    remaining: o.remaining.toString(),
    filled: o.filled.toString(),
    locked: o.locked.toString(),
    goodTilSlot: o.goodTilSlot.toString(),
    height: o.height.toString(),
  });
  const marketJson = (m: Market) => ({
    id: toHex(m.id),
    shard: marketShard(m.id),
    base: m.base,
    quote: m.quote,
    tickSize: m.tickSize.toString(),
    lotSize: m.lotSize.toString(),
    minNotional: m.minNotional.toString(),
    admin: formatAddress(m.admin),
    paused: m.paused,
    lastPrice: m.lastPrice.toString(),
    trades: m.tradeSeq.toString(),
    openOrders: m.open,
  });
  const localMarket = (store: ModuleStore, params: { shard: number }, id: Uint8Array): Market => {
    if (marketShard(id) !== params.shard) throw new QnexusError('ACCOUNT_WRONG_SHARD', `market ${toHex(id)} lives on shard ${marketShard(id)}; this node serves shard ${params.shard}`, { homeShard: marketShard(id), shard: params.shard });
    const m = getMarket(store, id);
    if (!m) throw err('DEX_UNKNOWN_MARKET', `no market ${toHex(id)}`);
    return m;
  };
  const BOOK_LEVELS = 50;
  const LIST_MAX = 100;

  return {
    name: 'dex',
    id: DEX_ID,
    accounts: [DEX_ACCOUNT_NAME],
    errors: DEX_ERRORS,
    genesis: {
      parse: (json) => parseParams(json),
      default: () => DEFAULT_PARAMS,
      init: (ctx, g) => S(ctx).set(K.params, encodeParams(g as DexParams)),
    },
    msgs: [
      msg<CreateMarketMsg>({
        type: DEX_MSG.createMarket,
        name: 'dex-create-market',
        ...codecs.create,
        validate: (p) => checkMarketShape(p),
        client: {
          args: [
            { name: 'base', help: 'base denom (what is bought and sold)' },
            { name: 'quote', help: 'quote denom (what prices are in)' },
            { name: 'tickSize', help: 'price step, in quote base units per base unit' },
            { name: 'lotSize', help: 'quantity step, in base units' },
            { name: 'minNotional', help: 'smallest price × quantity of an order, in quote units', optional: true },
          ],
          build: (a) => ({
            base: a.base ?? '',
            quote: a.quote ?? '',
            tickSize: u64Arg('tickSize', a.tickSize),
            lotSize: u64Arg('lotSize', a.lotSize),
            minNotional: a.minNotional === undefined ? 0n : u64Arg('minNotional', a.minNotional, false),
          }),
        },
        handle({ ctx, env, store }, p) {
          const P = readParams(store);
          const id = marketIdOf(ctx.params.shard, env.hash);
          if (store.has(K.market(id))) throw err('DEX_BAD_MARKET', 'market exists');
          if (P.listingFee > 0n) k.bank.send(ctx, env.from, DEX_ACCOUNT, P.listingFee, NATIVE_DENOM);
          addDenom(ctx, NATIVE_DENOM, 0n, P.listingFee);
          addDenom(ctx, p.base, 0n, 0n);
          addDenom(ctx, p.quote, 0n, 0n);
          putMarket(store, { id, base: p.base, quote: p.quote, tickSize: p.tickSize, lotSize: p.lotSize, minNotional: p.minNotional, admin: env.from, paused: false, lastPrice: 0n, tradeSeq: 0n, open: 0, backlog: false });
          touch(store, id);
        },
        json: (p) => ({ base: p.base, quote: p.quote, tickSize: p.tickSize.toString(), lotSize: p.lotSize.toString(), minNotional: p.minNotional.toString() }),
      }),
      msg<PlaceMsg>({
        type: DEX_MSG.place,
        name: 'dex-place',
        ...codecs.place,
        validate(p, _env, params) {
          validateMarketRef(p.market, params.shardCount);
          checkOrderShape(p);
          if (p.denom !== '' && p.denom !== NATIVE_DENOM && !DENOM_RE.test(p.denom)) throw err('DEX_WRONG_DENOM', `invalid denom ${JSON.stringify(p.denom)}`);
          if (marketShard(p.market) !== params.shard && p.denom === '') throw err('DEX_WRONG_DENOM', 'an order into a market of another shard names the denom it locks (quote for a buy, base for a sell)');
        },
        // The auction's work per order: its self-trade scan and its place in the batch.
        weight: () => 2,
        client: {
          args: [
            marketArg,
            { name: 'side', help: 'buy or sell' },
            { name: 'price', help: 'limit price, quote base units per base unit (a multiple of the tick)' },
            { name: 'quantity', help: 'base units (a multiple of the lot)' },
            { name: 'type', help: 'gtc (default), post-only or ioc', optional: true },
            { name: 'goodTilSlot', help: 'last slot the order may rest (≤ now + 2,592,000)' },
            { name: 'denom', help: 'the denom the order locks: needed for a market on another shard (quote for a buy, base for a sell)', optional: true },
          ],
          build: (a) => ({
            market: hexArg('market', a.market, MARKET_ID_BYTES),
            side: choiceArg('side', a.side, SIDES),
            type: a.type === undefined ? 'gtc' : choiceArg('type', a.type, TYPES),
            price: u64Arg('price', a.price),
            quantity: u64Arg('quantity', a.quantity),
            goodTilSlot: u64Arg('goodTilSlot', a.goodTilSlot),
            denom: a.denom ?? '',
          }),
        },
        xferPreview: (p, _env, params) => (marketShard(p.market) === params.shard ? null : { kind: 'dex-place', to: DEX_ACCOUNT, amount: 0n, dstShard: marketShard(p.market) }),
        handle({ ctx, env, store }, p) {
          const P = readParams(store);
          const lock = lockOf(p.side, p.price, p.quantity, P.takerFeeBps);
          if (marketShard(p.market) !== ctx.params.shard) {
            // An xcall to the market's shard: the lock is escrowed here, the order travels as the payload.
            const info: XferInfo = k.xfer.infoFor(ctx, env, { module: DEX_ID, op: DEX_OP.place, denom: p.denom, dstShard: marketShard(p.market), to: DEX_ACCOUNT, amount: lock, payload: encodeOrderSpec(p) });
            k.xfer.open(ctx, info, env.from);
            return;
          }
          const m = mustMarket(store, p.market);
          const denom = lockDenom(m, p.side);
          if (p.denom !== '' && p.denom !== denom) throw err('DEX_WRONG_DENOM', `a ${p.side} order locks ${denom}, not ${p.denom}`);
          checkOrder(ctx, P, m, p, env.from);
          k.bank.send(ctx, env.from, DEX_ACCOUNT, lock, denom);
          acctAdd(store, m.id, env.from, p.side, 1, 0n);
          m.open += 1;
          addOrder(ctx, P, m, orderIdOf(env.hash), env.from, p, lock);
          putMarket(store, m);
        },
        json: (p) => ({ market: toHex(p.market), side: p.side, type: p.type, price: p.price.toString(), quantity: p.quantity.toString(), goodTilSlot: p.goodTilSlot.toString(), ...(p.denom ? { denom: p.denom } : {}) }),
      }),
      msg<CancelMsg>({
        type: DEX_MSG.cancel,
        name: 'dex-cancel',
        ...codecs.cancel,
        validate(p, _env, params) {
          validateMarketRef(p.market, params.shardCount);
          if (p.orderIds.length !== 1) throw new QnexusError('TX_MALFORMED', 'dex-cancel names one order (dex-batch-cancel for more)');
        },
        client: cancelClient(false),
        handle: ({ ctx, env }, p) => handleCancel(ctx, env, p),
        json: (p) => ({ market: toHex(p.market), orderId: toHex(p.orderIds[0]!) }),
      }),
      msg<CancelMsg>({
        type: DEX_MSG.batchCancel,
        name: 'dex-batch-cancel',
        ...codecs.cancel,
        validate(p, _env, params) {
          validateMarketRef(p.market, params.shardCount);
          checkCancelShape(p);
        },
        weight: (p) => 1 + Math.ceil(p.orderIds.length / 10),
        client: cancelClient(true),
        handle: ({ ctx, env }, p) => handleCancel(ctx, env, p),
        json: (p) => ({ market: toHex(p.market), orderIds: p.orderIds.map(toHex) }),
      }),
      adminMsg(DEX_MSG.pause, 'dex-pause-market', true),
      adminMsg(DEX_MSG.resume, 'dex-resume-market', false),
    ],
    xfers: [placeOp, cancelOp, pay.op],
    beginBlock(ctx) {
      const s = S(ctx);
      const P = readParams(s);
      // The previous block's touched set was for its invariants; this block starts a new one.
      for (const [key] of s.range(K.touchedPrefix, 1_000_000)) s.delete(key);
      for (const [key] of s.range(K.touchedAcctPrefix, 1_000_000)) s.delete(key);
      // Expired orders (goodTilSlot passed), oldest first, a bounded number per block.
      const slot = BigInt(ctx.block.slot);
      for (const [key] of s.range(K.expiryPrefix, P.expiriesPerBlock)) {
        const til = decodeWith(key.subarray(1, 9), 'slot', (r) => r.u64());
        if (til >= slot) break;
        const id = key.subarray(9);
        const o = getOrder(s, id);
        s.delete(key);
        if (!o) continue;
        const m = getMarket(s, o.market)!;
        closeOrder(ctx, m, o);
        putMarket(s, m);
      }
    },
    endBlock(ctx) {
      const s = S(ctx);
      const P = readParams(s);
      for (const [key] of s.range(K.pendingPrefix, 1_000_000)) runBatch(ctx, P, key.subarray(1));
      pay.retry(ctx, P.retryPerBlock);
    },
    invariants(ctx) {
      const s = S(ctx);
      const P = readParams(s);
      for (const [tk] of s.range(K.touchedPrefix, 1_000_000)) {
        const id = tk.subarray(1);
        const m = getMarket(s, id);
        if (!m) throw new Error(`touched market ${toHex(id)} does not exist`);
        // The market's reservations (xcalls prepared, not decided: few), per account and side.
        const resv = new Map<string, number>();
        for (const [, v] of s.range(K.resvMarket(id), P.maxOrdersPerMarket + 1)) {
          const key = toHex(v.subarray(0, ADDRESS_BYTES)) + v[ADDRESS_BYTES]!;
          resv.set(key, (resv.get(key) ?? 0) + 1);
        }
        // Every account whose books changed in this block (any change to one of its orders or
        // reservations goes through its books): its orders are exactly what the books say, each
        // one whole and indexed. Accounts untouched since their last check are not walked again,
        // so the work follows the block's activity, not the book's depth.
        for (const [tk2] of s.range(K.touchedAcctMarket(id), 2 * P.maxOrdersPerMarket + 1)) {
          const owner = tk2.subarray(1 + MARKET_ID_BYTES, 1 + MARKET_ID_BYTES + ADDRESS_BYTES);
          const sideIdx = tk2[1 + MARKET_ID_BYTES + ADDRESS_BYTES]!;
          const side = SIDES[sideIdx]!;
          let count = resv.get(toHex(owner) + sideIdx) ?? 0;
          let locked = 0n;
          for (const [ok] of s.range(K.ownerPrefix(id, owner), 2 * (P.maxOrdersPerSide + 1))) {
            const oid = ok.subarray(1 + MARKET_ID_BYTES + ADDRESS_BYTES);
            const o = getOrder(s, oid);
            if (!o) throw new Error(`owner index entry without order ${toHex(oid)}`);
            if (o.side !== side) continue;
            const bk = s.get(K.book(id, o.side, o.price, o.id));
            if (!bk || !bytesEqual(bk, o.id)) throw new Error(`order ${toHex(o.id)} is not in the book under its key`);
            if (o.filled + o.remaining + o.cancelled !== o.original) throw new Error(`order ${toHex(o.id)}: filled + remaining + cancelled ≠ original`);
            if (o.remaining <= 0n) throw new Error(`order ${toHex(o.id)} rests with nothing remaining`);
            if (o.locked !== need(o)) throw new Error(`order ${toHex(o.id)} locks ${o.locked}, needs ${need(o)}`);
            if (o.lockBps !== (s.has(K.fresh(id, o.id)) ? P.takerFeeBps : P.makerFeeBps)) throw new Error(`order ${toHex(o.id)} locks the fee at ${o.lockBps} bps`);
            count += 1;
            locked += o.locked;
          }
          const rec = readAcct(s, K.acct(id, owner, side));
          if (rec.count !== count || rec.locked !== locked) throw new Error(`account ${formatAddress(owner)} side ${side}: books ${rec.count}/${rec.locked}, orders ${count}/${locked}`);
        }
        // The market's count of open orders and reservations is its accounts' (one read per account and side).
        let open = 0;
        for (const [, v] of s.range(K.acctMarket(id), 2 * P.maxOrdersPerMarket + 1)) {
          open += decodeWith(v, 'dex account', (r) => {
            const count = r.u32();
            r.u64();
            return count;
          });
        }
        if (open !== m.open) throw new Error(`market ${toHex(id)} counts ${m.open} open orders and reservations, its accounts ${open}`);
        if (!m.backlog && !s.has(K.pending(id))) {
          const bid = s.range(K.bookSide(id, 'buy'), 1)[0];
          const ask = s.range(K.bookSide(id, 'sell'), 1)[0];
          if (bid && ask && getOrder(s, bid[1])!.price >= getOrder(s, ask[1])!.price) throw new Error(`market ${toHex(id)}: the book is crossed after the batch`);
        }
      }
      for (const [dk, v] of s.range(K.denomPrefix, 100_000)) {
        const denom = decodeWith(dk.subarray(1), 'denom', (r) => r.string(64));
        const d = decodeWith(v, 'dex denom', (r) => ({ locks: r.u64(), fees: r.u64() }));
        const held = k.bank.balance(ctx, DEX_ACCOUNT, denom);
        const owed = pay.owed(ctx, denom);
        if (held !== d.locks + d.fees + owed) throw new Error(`${denom}: the module account holds ${held}, its books say locks ${d.locks} + fees ${d.fees} + owed ${owed}`);
      }
    },
    queries: [
      {
        name: 'markets',
        summary: 'A market of this shard: its parameters, last clearing price and whether it is paused',
        params: ['id'],
        run: ({ store, params }, a) => marketJson(localMarket(store, params, marketParam(a.id))),
        proofKeys: (a) => [K.market(marketParam(a.id))],
      },
      {
        name: 'list',
        summary: `The markets of this shard (at most ${LIST_MAX}, in id order)`,
        params: [],
        run: ({ store }) => ({ markets: store.range(K.marketPrefix, LIST_MAX).map(([, v]) => marketJson(decodeMarket(v))) }),
      },
      {
        name: 'book',
        summary: `Depth of a market: aggregated price levels per side, best first (at most ${BOOK_LEVELS} levels each)`,
        params: ['id'],
        run({ store, params }, a) {
          const m = localMarket(store, params, marketParam(a.id));
          const levels = (side: Side) => {
            const out: { price: string; quantity: string; orders: number }[] = [];
            // Read at most a level's worth of orders per level kept (the book is in price order).
            for (const [, v] of store.range(K.bookSide(m.id, side), BOOK_LEVELS * 20)) {
              const o = getOrder(store, v)!;
              const last = out[out.length - 1];
              if (last && last.price === o.price.toString()) {
                last.quantity = (BigInt(last.quantity) + o.remaining).toString();
                last.orders += 1;
              } else if (out.length < BOOK_LEVELS) out.push({ price: o.price.toString(), quantity: o.remaining.toString(), orders: 1 });
              else break;
            }
            return out;
          };
          return { market: toHex(m.id), bids: levels('buy'), asks: levels('sell'), lastPrice: m.lastPrice.toString() };
        },
      },
      {
        name: 'orders',
        summary: 'Open orders of an account in a market (any account: a remote owner’s orders live on the market’s shard)',
        params: ['market', 'address'],
        run({ store, params }, a) {
          const m = localMarket(store, params, marketParam(a.market));
          const owner = addressParam(a.address);
          const orders = store.range(K.ownerPrefix(m.id, owner), 2 * readParams(store).maxOrdersPerSide).map(([key]) => orderJson(getOrder(store, key.subarray(1 + MARKET_ID_BYTES + ADDRESS_BYTES))!));
          return { market: toHex(m.id), address: formatAddress(owner), orders };
        },
      },
      {
        name: 'trades',
        summary: 'Recent clearing events of a market (newest first): price, quantity, height',
        params: ['id'],
        run({ store, params }, a) {
          const m = localMarket(store, params, marketParam(a.id));
          const trades = store
            .range(K.tradeMarket(m.id), 1000)
            .map(([, v]) => decodeTrade(v))
            .sort((x, y) => (x.seq > y.seq ? -1 : 1))
            .map((t) => ({ seq: t.seq.toString(), price: t.price.toString(), quantity: t.quantity.toString(), height: t.height.toString() }));
          return { market: toHex(m.id), trades };
        },
      },
    ],
  };
}

/** Read helpers for tests and tools (over any reader of the module's store). */
export const dexState = {
  order(ctx: { store(id: number): ModuleStore }, id: Uint8Array): Order | undefined {
    const b = ctx.store(DEX_ID).get(K.order(id));
    return b ? decodeOrder(b) : undefined;
  },
  market(ctx: { store(id: number): ModuleStore }, id: Uint8Array): Market | undefined {
    const b = ctx.store(DEX_ID).get(K.market(id));
    return b ? decodeMarket(b) : undefined;
  },
  books(ctx: { store(id: number): ModuleStore }, denom: string): { locks: bigint; fees: bigint } {
    return readDenom(ctx.store(DEX_ID), denom);
  },
  /** Open orders of a market side in book (priority) order, at most `limit`. */
  side(ctx: { store(id: number): ModuleStore }, market: Uint8Array, side: Side, limit = 1000): Order[] {
    const s = ctx.store(DEX_ID);
    return s.range(K.bookSide(market, side), limit).map(([, v]) => decodeOrder(s.get(K.order(v))!));
  },
  homeShard: (addr: Uint8Array, shardCount: number) => homeShard(addr, shardCount),
};
