import { ADDRESS_BYTES, HASH_BYTES, fromHex, isAddressString, parseAddress, toHex } from '@qnexus/crypto';
import { MAX_DENOM_BYTES } from '@qnexus/state';
import { QnexusError, Writer, decodeWith, type Reader } from '@qnexus/types';

/** A market id: u16 home shard ‖ 16 bytes of hash (36 hex characters). */
export const MARKET_ID_BYTES = 18;
export const ORDER_ID_BYTES = HASH_BYTES;
/** Orders one batch cancel names at most. */
export const MAX_BATCH_CANCEL = 100;
const U64_MAX = 0xffffffffffffffffn;

export type Side = 'buy' | 'sell';
export type OrderType = 'gtc' | 'post-only' | 'ioc';
export const SIDES: readonly Side[] = ['buy', 'sell'];
export const TYPES: readonly OrderType[] = ['gtc', 'post-only', 'ioc'];

/** Denoms a market trades: the bank's rule (lowercase, 2..64 bytes). */
export const DENOM_RE = /^[a-z][a-z0-9/._-]{1,63}$/;

export interface CreateMarketMsg {
  base: string;
  quote: string;
  tickSize: bigint;
  lotSize: bigint;
  minNotional: bigint;
}
export interface PlaceMsg {
  market: Uint8Array;
  side: Side;
  type: OrderType;
  price: bigint;
  quantity: bigint;
  goodTilSlot: bigint;
  /**
   * The denom the order locks (quote for a buy, base for a sell). Needed only for a market of
   * another shard (this shard cannot read the market to learn it); '' for a local one. The
   * market's shard refuses a wrong one (DEX_WRONG_DENOM).
   */
  denom: string;
}
export interface CancelMsg {
  market: Uint8Array;
  orderIds: Uint8Array[];
}
export interface MarketAdminMsg {
  market: Uint8Array;
}

/** The order part of a place message: what travels as the xcall's payload. */
export type OrderSpec = Omit<PlaceMsg, 'denom'>;

export const marketShard = (id: Uint8Array): number => (id[0]! << 8) | id[1]!;

export const codecs = {
  create: {
    encode: (w: Writer, p: CreateMarketMsg) => void w.string(p.base).string(p.quote).u64(p.tickSize).u64(p.lotSize).u64(p.minNotional),
    decode: (r: Reader): CreateMarketMsg => ({
      base: r.string(MAX_DENOM_BYTES, 'base denom'),
      quote: r.string(MAX_DENOM_BYTES, 'quote denom'),
      tickSize: r.u64('tick size'),
      lotSize: r.u64('lot size'),
      minNotional: r.u64('min notional'),
    }),
  },
  order: {
    encode: (w: Writer, p: OrderSpec) =>
      void w.fixed(p.market, MARKET_ID_BYTES).u8(SIDES.indexOf(p.side)).u8(TYPES.indexOf(p.type)).u64(p.price).u64(p.quantity).u64(p.goodTilSlot),
    decode: (r: Reader): OrderSpec => {
      const market = r.fixed(MARKET_ID_BYTES, 'market');
      const s = r.u8('side');
      const t = r.u8('order type');
      if (s >= SIDES.length) throw new QnexusError('MALFORMED', `bad side ${s}`);
      if (t >= TYPES.length) throw new QnexusError('MALFORMED', `bad order type ${t}`);
      return { market, side: SIDES[s]!, type: TYPES[t]!, price: r.u64('price'), quantity: r.u64('quantity'), goodTilSlot: r.u64('good-til slot') };
    },
  },
  place: {
    encode: (w: Writer, p: PlaceMsg) => {
      codecs.order.encode(w, p);
      w.string(p.denom);
    },
    decode: (r: Reader): PlaceMsg => ({ ...codecs.order.decode(r), denom: r.string(MAX_DENOM_BYTES, 'lock denom') }),
  },
  cancel: {
    encode: (w: Writer, p: CancelMsg) => {
      w.fixed(p.market, MARKET_ID_BYTES).u16(p.orderIds.length);
      for (const id of p.orderIds) w.fixed(id, ORDER_ID_BYTES);
    },
    decode: (r: Reader): CancelMsg => {
      const market = r.fixed(MARKET_ID_BYTES, 'market');
      const n = r.u16('order count');
      if (n < 1 || n > MAX_BATCH_CANCEL) throw new QnexusError('MALFORMED', `a cancel names 1..${MAX_BATCH_CANCEL} orders, not ${n}`);
      const orderIds: Uint8Array[] = [];
      for (let i = 0; i < n; i++) orderIds.push(r.fixed(ORDER_ID_BYTES, 'order id'));
      return { market, orderIds };
    },
  },
  admin: {
    encode: (w: Writer, p: MarketAdminMsg) => void w.fixed(p.market, MARKET_ID_BYTES),
    decode: (r: Reader): MarketAdminMsg => ({ market: r.fixed(MARKET_ID_BYTES, 'market') }),
  },
};

export const encodeOrderSpec = (p: OrderSpec): Uint8Array => {
  const w = new Writer(64);
  codecs.order.encode(w, p);
  return w.finish();
};
export const decodeOrderSpec = (b: Uint8Array): OrderSpec => decodeWith(b, 'dex order', codecs.order.decode);
export const encodeCancel = (p: CancelMsg): Uint8Array => {
  const w = new Writer(24 + 32 * p.orderIds.length);
  codecs.cancel.encode(w, p);
  return w.finish();
};
export const decodeCancel = (b: Uint8Array): CancelMsg => decodeWith(b, 'dex cancel', codecs.cancel.decode);

// ------------------------------------------------------------------ client argument parsing

const bad = (code: 'TX_MALFORMED' | 'TX_BAD_AMOUNT', msg: string) => new QnexusError(code, msg);

/** A u64 argument (decimal); `positive` refuses 0. */
export function u64Arg(name: string, v: string | undefined, positive = true): bigint {
  if (!/^[0-9]{1,20}$/.test(v ?? '')) throw bad('TX_BAD_AMOUNT', `invalid ${name} ${JSON.stringify(v)}: a non-negative integer`);
  const n = BigInt(v!);
  if (n > U64_MAX || (positive && n === 0n)) throw bad('TX_BAD_AMOUNT', `invalid ${name} ${v}: ${positive ? 'positive, ' : ''}at most 2^64 − 1`);
  return n;
}

export function hexArg(name: string, v: string | undefined, bytes: number): Uint8Array {
  if (!new RegExp(`^[0-9a-f]{${bytes * 2}}$`).test(v ?? '')) throw bad('TX_MALFORMED', `invalid ${name} ${JSON.stringify(v)}: ${bytes * 2} lowercase hex characters`);
  return fromHex(v!);
}

export function choiceArg<T extends string>(name: string, v: string | undefined, options: readonly T[]): T {
  if (!options.includes(v as T)) throw bad('TX_MALFORMED', `invalid ${name} ${JSON.stringify(v)}: one of ${options.join(', ')}`);
  return v as T;
}

/** A market id query parameter; BAD_REQUEST when malformed. */
export function marketParam(v: string | undefined): Uint8Array {
  if (!/^[0-9a-f]{36}$/.test(v ?? '')) throw new QnexusError('BAD_REQUEST', 'market id must be 36 lowercase hex characters');
  return fromHex(v!);
}

export function addressParam(v: string | undefined): Uint8Array {
  if (!isAddressString(v ?? '')) throw new QnexusError('BAD_REQUEST', 'address must be qn followed by 40 lowercase hex characters');
  return parseAddress(v!);
}

export const hex = toHex;
export { ADDRESS_BYTES };
