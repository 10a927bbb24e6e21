import { ADDRESS_BYTES, concatBytes, formatAddress, fromHex, homeShard, isAddressString, parseAddress, sha256, toHex, utf8 } from '@qnexus/crypto';
import { QnexusError, Writer, decodeWith, type Reader, type TxMsg } from '@qnexus/types';
import { MAX_DENOM_BYTES, MODULE_IDS, NATIVE_DENOM, moduleAccount, msg, payouts, type ExecCtx, type HostKeepers, type Module, type ModuleStore, type QueryDef } from '@qnexus/state';

/**
 * token: fungible tokens (modules.md "Fungible tokens"). A token is created on its creator's shard
 * (its home shard, carried in its id), minted there by its mint authority up to its maximum supply,
 * and burned by any holder on any shard. Balances are the bank's (keyed by address and denom), so
 * sends are the bank's `transfer` / `xtransfer` with `--denom token/<id>`, and a holder's balance
 * lives on the holder's home shard like the native coin's.
 *
 * Denom: `token/<id>`, id = 16 lowercase hex = the home shard (1 byte) ‖ the first 7 bytes of
 * SHA-256("qnexus/token" ‖ creator ‖ u64 creator nonce). The first byte lets any shard refuse a
 * mint sent to the wrong one (TOKEN_WRONG_SHARD) without the metadata, which only the home shard holds.
 *
 * Keys under module id 4 (prefixes 0x00..0xef; 0xf0/0xf1 are the payouts helper's):
 *   'm' ‖ id(8)   → the token's metadata: string symbol ‖ u8 decimals ‖ u64 maxSupply ‖ authority(20)
 *                   ‖ creator(20) ‖ u64 created slot ‖ u64 minted (ever, on the home shard)
 *   'b' ‖ id(8)   → u64 burned through token-burn on this shard (any shard)
 *   't' ‖ id(8)   → empty: the token was minted this block (the invariant's bounded work list;
 *                   cleared at the next block's start)
 *   0xf0, 0xf1    → the payouts helper (mints to accounts of other shards)
 */
export const TOKEN_ID = MODULE_IDS.token;
export const TOKEN_MSG = { create: 1, mint: 2, burn: 3 } as const;
export const TOKEN_KIND = {
  create: (TOKEN_ID << 8) | TOKEN_MSG.create,
  mint: (TOKEN_ID << 8) | TOKEN_MSG.mint,
  burn: (TOKEN_ID << 8) | TOKEN_MSG.burn,
} as const;
/** Cross-shard ops: the payouts helper's transfer of a mint to an account of another shard. */
export const TOKEN_OP = { payout: 1 } as const;
/** The module account a mint to another shard passes through (and where creation fees are kept). */
export const TOKEN_ACCOUNT = 'token';
export const MAX_SYMBOL_BYTES = 16;
export const MAX_DECIMALS = 18;
/** Tokens one `list` answer carries at most. */
export const LIST_LIMIT = 100;
/** Aborted mint payouts re-sent per block. */
const RETRIES_PER_BLOCK = 16;
const U64_MAX = 0xffffffffffffffffn;
const ID_BYTES = 8;

export const TOKEN_ERRORS = {
  TOKEN_UNKNOWN: 404,
  TOKEN_BAD_PARAMS: 400,
  TOKEN_BAD_DENOM: 400,
  TOKEN_NOT_AUTHORITY: 403,
  TOKEN_WRONG_SHARD: 400,
  TOKEN_AUTHORITY_WRONG_SHARD: 400,
  TOKEN_MAX_SUPPLY: 409,
  TOKEN_EXISTS: 409,
} as const;

export interface TokenCreateMsg {
  symbol: string;
  decimals: number;
  maxSupply: bigint;
  mintAuthority: Uint8Array;
}
export interface TokenMintMsg {
  denom: string;
  to: Uint8Array;
  amount: bigint;
}
export interface TokenBurnMsg {
  denom: string;
  amount: bigint;
}

export interface TokenMeta {
  id: string;
  symbol: string;
  decimals: number;
  maxSupply: bigint;
  mintAuthority: Uint8Array;
  creator: Uint8Array;
  createdSlot: bigint;
  minted: bigint;
}

/** The module's genesis section: `{ "createFee": "0" }` (native base units, kept in the module account). */
export interface TokenGenesis {
  createFee: bigint;
}

// ------------------------------------------------------------------ ids and denoms

/** The id of the token `creator` makes with its transaction of nonce `nonce`, on `shard`. */
export function tokenIdFor(shard: number, creator: Uint8Array, nonce: bigint): string {
  const h = sha256(concatBytes(utf8('qnexus/token'), creator, new Writer(8).u64(nonce).finish()));
  return toHex(new Uint8Array([shard & 0xff])) + toHex(h.subarray(0, ID_BYTES - 1));
}

export const tokenDenom = (id: string): string => `token/${id}`;

/** The id of a `token/<id>` denom (16 lowercase hex), or null when the denom is not one. */
export function tokenIdOf(denom: string): string | null {
  const m = /^token\/([0-9a-f]{16})$/.exec(denom);
  return m ? m[1]! : null;
}

/** The home shard a token id names (its first byte). */
export const tokenHomeShard = (id: string): number => parseInt(id.slice(0, 2), 16);

function idOrThrow(denom: string): string {
  const id = tokenIdOf(denom);
  if (!id) throw new QnexusError('TOKEN_BAD_DENOM', `${JSON.stringify(denom)} is not a token denom (token/ followed by 16 lowercase hex)`);
  return id;
}

// ------------------------------------------------------------------ state

const metaKey = (id: string) => concatBytes(new Uint8Array([0x6d]), fromHex(id));
const burnedKey = (id: string) => concatBytes(new Uint8Array([0x62]), fromHex(id));
const touchedKey = (id: string) => concatBytes(new Uint8Array([0x74]), fromHex(id));
const META_PREFIX = new Uint8Array([0x6d]);
const TOUCHED_PREFIX = new Uint8Array([0x74]);
const GENESIS_KEY = new Uint8Array([0x67]);

function encodeMeta(m: TokenMeta): Uint8Array {
  return new Writer(96)
    .string(m.symbol)
    .u8(m.decimals)
    .u64(m.maxSupply)
    .fixed(m.mintAuthority, ADDRESS_BYTES)
    .fixed(m.creator, ADDRESS_BYTES)
    .u64(m.createdSlot)
    .u64(m.minted)
    .finish();
}

function decodeMeta(id: string, b: Uint8Array): TokenMeta {
  return decodeWith(b, 'token metadata', (r) => ({
    id,
    symbol: r.string(MAX_SYMBOL_BYTES, 'symbol'),
    decimals: r.u8('decimals'),
    maxSupply: r.u64('max supply'),
    mintAuthority: r.fixed(ADDRESS_BYTES, 'mint authority'),
    creator: r.fixed(ADDRESS_BYTES, 'creator'),
    createdSlot: r.u64('created slot'),
    minted: r.u64('minted'),
  }));
}

const readU64 = (b: Uint8Array | undefined, what: string): bigint => (b ? decodeWith(b, what, (r) => r.u64(what)) : 0n);

/** Reads of the token module's state (tests, queries). */
export const tokens = {
  meta(s: ModuleStore, id: string): TokenMeta | undefined {
    const b = s.get(metaKey(id));
    return b ? decodeMeta(id, b) : undefined;
  },
  burned(s: ModuleStore, id: string): bigint {
    return readU64(s.get(burnedKey(id)), 'burned');
  },
  /** Tokens in id order after `after` (exclusive), at most `limit`. */
  list(s: ModuleStore, limit: number, after?: string): TokenMeta[] {
    const out: TokenMeta[] = [];
    const take = (prefix: Uint8Array) => {
      for (const [k, v] of s.range(prefix, limit - out.length)) out.push(decodeMeta(toHex(k.subarray(1)), v));
    };
    if (after === undefined) {
      take(META_PREFIX);
      return out;
    }
    // The store ranges by prefix only: the ids after `after` are, in order, those that share its
    // first i bytes and have a larger byte at i, for i from the last byte up to the first
    // (at most 8 × 255 bounded ranges, each asking only for what is still missing).
    const a = fromHex(after);
    for (let i = ID_BYTES - 1; i >= 0 && out.length < limit; i--) {
      for (let b = a[i]! + 1; b <= 0xff && out.length < limit; b++) take(concatBytes(META_PREFIX, a.subarray(0, i), new Uint8Array([b])));
    }
    return out;
  },
  createFee(s: ModuleStore): bigint {
    return readU64(s.get(GENESIS_KEY), 'create fee');
  },
};

// ------------------------------------------------------------------ codecs, checks and client builders

const SYMBOL_RE = /^[A-Z0-9]{1,16}$/;

function checkCreate(p: TokenCreateMsg): void {
  if (!SYMBOL_RE.test(p.symbol)) throw new QnexusError('TOKEN_BAD_PARAMS', `symbol ${JSON.stringify(p.symbol)}: 1 to ${MAX_SYMBOL_BYTES} characters A-Z 0-9`);
  if (!Number.isInteger(p.decimals) || p.decimals < 0 || p.decimals > MAX_DECIMALS) throw new QnexusError('TOKEN_BAD_PARAMS', `decimals ${p.decimals}: at most ${MAX_DECIMALS}`);
  if (p.maxSupply <= 0n || p.maxSupply > U64_MAX) throw new QnexusError('TX_BAD_AMOUNT', `max supply ${p.maxSupply}: a positive u64`);
}

const createCodec = {
  encode: (w: Writer, p: TokenCreateMsg) => void w.string(p.symbol).u8(p.decimals).u64(p.maxSupply).fixed(p.mintAuthority, ADDRESS_BYTES),
  decode: (r: Reader): TokenCreateMsg => ({
    // The codec bounds UTF-8 bytes; validate then insists on ASCII A-Z 0-9.
    symbol: r.string(MAX_SYMBOL_BYTES, 'symbol'),
    decimals: r.u8('decimals'),
    maxSupply: r.u64('max supply'),
    mintAuthority: r.fixed(ADDRESS_BYTES, 'mint authority'),
  }),
};
const mintCodec = {
  encode: (w: Writer, p: TokenMintMsg) => void w.string(p.denom).fixed(p.to, ADDRESS_BYTES).u64(p.amount),
  decode: (r: Reader): TokenMintMsg => ({ denom: r.string(MAX_DENOM_BYTES, 'denom'), to: r.fixed(ADDRESS_BYTES, 'recipient'), amount: r.u64('amount') }),
};
const burnCodec = {
  encode: (w: Writer, p: TokenBurnMsg) => void w.string(p.denom).u64(p.amount),
  decode: (r: Reader): TokenBurnMsg => ({ denom: r.string(MAX_DENOM_BYTES, 'denom'), amount: r.u64('amount') }),
};

const built = (kind: number, enc: (w: Writer) => void): TxMsg => {
  const w = new Writer(128);
  enc(w);
  return { kind, msg: w.finish() };
};

/** Client side: a token-create message. */
export const tokenCreateMsg = (p: TokenCreateMsg): TxMsg => built(TOKEN_KIND.create, (w) => createCodec.encode(w, p));
/** Client side: a token-mint message. */
export const tokenMintMsg = (p: TokenMintMsg): TxMsg => built(TOKEN_KIND.mint, (w) => mintCodec.encode(w, p));
/** Client side: a token-burn message. */
export const tokenBurnMsg = (p: TokenBurnMsg): TxMsg => built(TOKEN_KIND.burn, (w) => burnCodec.encode(w, p));

function argAddress(v: string | undefined, what: string): Uint8Array {
  if (!isAddressString(v ?? '')) throw new QnexusError('TX_MALFORMED', `invalid ${what} ${JSON.stringify(v)}: expected qn followed by 40 lowercase hex characters`);
  return parseAddress(v!);
}
function argAmount(v: string | undefined, what: string): bigint {
  if (!/^[0-9]{1,20}$/.test(v ?? '') || BigInt(v!) === 0n || BigInt(v!) > U64_MAX) throw new QnexusError('TX_BAD_AMOUNT', `invalid ${what} ${JSON.stringify(v)}: a positive integer of base units`);
  return BigInt(v!);
}
function argDenom(v: string | undefined): string {
  // Accept the bare id too: `--denom 3fa2…` and `--denom token/3fa2…` name the same token.
  const d = v !== undefined && /^[0-9a-f]{16}$/.test(v) ? tokenDenom(v) : (v ?? '');
  idOrThrow(d);
  return d;
}

function parseGenesis(json: unknown): TokenGenesis {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('expected an object { createFee }');
  const o = json as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'createFee') throw new Error(`unknown field ${k}`);
  const v = o.createFee ?? '0';
  const s = typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : v;
  if (typeof s !== 'string' || !/^[0-9]{1,20}$/.test(s) || BigInt(s) > U64_MAX) throw new Error('createFee must be a u64 (a decimal string)');
  return { createFee: BigInt(s) };
}

function idParam(v: string | undefined): string {
  const id = v !== undefined && v.startsWith('token-') ? v.slice(6) : v;
  if (!/^[0-9a-f]{16}$/.test(id ?? '')) throw new QnexusError('BAD_REQUEST', 'a token id is 16 lowercase hex characters (the part after token/)');
  return id!;
}

const metaJson = (m: TokenMeta, s: ModuleStore) => ({
  id: m.id,
  denom: tokenDenom(m.id),
  symbol: m.symbol,
  decimals: m.decimals,
  maxSupply: m.maxSupply.toString(),
  mintAuthority: formatAddress(m.mintAuthority),
  creator: formatAddress(m.creator),
  homeShard: tokenHomeShard(m.id),
  createdSlot: Number(m.createdSlot),
  minted: m.minted.toString(),
  burnedHere: tokens.burned(s, m.id).toString(),
});

const U = { type: 'string', pattern: '^[0-9]+$' } as const;
const META_SCHEMA = {
  type: 'object',
  title: 'TokenInfo',
  additionalProperties: false,
  required: ['id', 'denom', 'symbol', 'decimals', 'maxSupply', 'mintAuthority', 'creator', 'homeShard', 'createdSlot', 'minted', 'burnedHere'],
  properties: {
    id: { type: 'string', pattern: '^[0-9a-f]{16}$' },
    denom: { type: 'string' },
    symbol: { type: 'string' },
    decimals: { type: 'integer', minimum: 0, maximum: MAX_DECIMALS },
    maxSupply: U,
    mintAuthority: { type: 'string' },
    creator: { type: 'string' },
    homeShard: { type: 'integer', minimum: 0 },
    createdSlot: { type: 'integer', minimum: 0 },
    minted: { ...U, description: 'minted ever (on the home shard), never above maxSupply' },
    burnedHere: { ...U, description: 'burned by token-burn on the shard that answers' },
  },
} as const;

const queries: QueryDef[] = [
  {
    name: 'info',
    summary: "A token's metadata and supply, from its home shard (the first byte of the id): GET /v1/token/info/{id}",
    params: ['id'],
    response: META_SCHEMA,
    proofKeys: ({ id }) => [metaKey(idParam(id)), burnedKey(idParam(id))],
    run({ store, params }, { id }) {
      const tid = idParam(id);
      const m = tokens.meta(store, tid);
      if (!m) {
        const home = tokenHomeShard(tid);
        throw new QnexusError('TOKEN_UNKNOWN', home !== params.shard ? `token ${tid} has home shard ${home}; this node serves shard ${params.shard}` : `no token ${tid}`);
      }
      return metaJson(m, store);
    },
  },
  {
    name: 'list',
    summary: `The tokens created on this shard, in id order (at most ${LIST_LIMIT}; \`next\` is the cursor for list-after)`,
    params: [],
    response: { type: 'object', title: 'TokenList', required: ['tokens', 'next'], properties: { tokens: { type: 'array', items: META_SCHEMA }, next: { type: ['string', 'null'] } } },
    run({ store }) {
      const l = tokens.list(store, LIST_LIMIT);
      return { tokens: l.map((m) => metaJson(m, store)), next: l.length === LIST_LIMIT ? l[l.length - 1]!.id : null };
    },
  },
  {
    name: 'list-after',
    summary: `The tokens after id {after} in id order (at most ${LIST_LIMIT})`,
    params: ['after'],
    response: { type: 'object', title: 'TokenList', required: ['tokens', 'next'], properties: { tokens: { type: 'array', items: META_SCHEMA }, next: { type: ['string', 'null'] } } },
    run({ store }, { after }) {
      const l = tokens.list(store, LIST_LIMIT, idParam(after));
      return { tokens: l.map((m) => metaJson(m, store)), next: l.length === LIST_LIMIT ? l[l.length - 1]!.id : null };
    },
  },
];

// ------------------------------------------------------------------ the module

export type TokenKeepers = Pick<HostKeepers, 'bank' | 'xfer' | 'denoms'>;

export function tokenModule(k: TokenKeepers): Module {
  const denoms = k.denoms('token');
  const account = moduleAccount(TOKEN_ACCOUNT);
  const pay = payouts(k.xfer, TOKEN_ID, TOKEN_OP.payout, TOKEN_ACCOUNT);
  return {
    name: 'token',
    id: TOKEN_ID,
    accounts: [TOKEN_ACCOUNT],
    errors: TOKEN_ERRORS,
    msgs: [
      msg<TokenCreateMsg>({
        type: TOKEN_MSG.create,
        name: 'token-create',
        ...createCodec,
        validate(p, _env, params) {
          checkCreate(p);
          const home = homeShard(p.mintAuthority, params.shardCount);
          if (home !== params.shard) {
            throw new QnexusError('TOKEN_AUTHORITY_WRONG_SHARD', `mint authority ${formatAddress(p.mintAuthority)} lives on shard ${home}; a token of shard ${params.shard} is minted there only, so its authority must live there too`);
          }
        },
        client: {
          args: [
            { name: 'symbol', help: `ticker, 1-${MAX_SYMBOL_BYTES} characters A-Z 0-9` },
            { name: 'decimals', help: `display decimals, 0-${MAX_DECIMALS}` },
            { name: 'max-supply', help: 'most base units that can ever be minted' },
            { name: 'mint-authority', help: 'the address allowed to mint (qn…, on your shard; usually your own)' },
          ],
          build(a) {
            if (!/^[0-9]{1,2}$/.test(a.decimals ?? '')) throw new QnexusError('TOKEN_BAD_PARAMS', `invalid decimals ${JSON.stringify(a.decimals)}`);
            const p: TokenCreateMsg = { symbol: a.symbol ?? '', decimals: Number(a.decimals), maxSupply: argAmount(a['max-supply'], 'max supply'), mintAuthority: argAddress(a['mint-authority'], 'mint authority') };
            checkCreate(p);
            return p;
          },
        },
        handle({ ctx, env, store }, p) {
          const id = tokenIdFor(ctx.params.shard, env.from, env.tx.body.nonce);
          if (store.has(metaKey(id))) throw new QnexusError('TOKEN_EXISTS', `token ${id} exists already`);
          const fee = tokens.createFee(store);
          if (fee > 0n) k.bank.send(ctx, env.from, account, fee, NATIVE_DENOM);
          store.set(metaKey(id), encodeMeta({ id, symbol: p.symbol, decimals: p.decimals, maxSupply: p.maxSupply, mintAuthority: p.mintAuthority, creator: env.from, createdSlot: BigInt(ctx.block.slot), minted: 0n }));
        },
        json: (p) => ({ symbol: p.symbol, decimals: p.decimals, maxSupply: p.maxSupply.toString(), mintAuthority: formatAddress(p.mintAuthority) }),
      }),
      msg<TokenMintMsg>({
        type: TOKEN_MSG.mint,
        name: 'token-mint',
        ...mintCodec,
        validate(p, _env, params) {
          const id = idOrThrow(p.denom);
          if (p.amount === 0n) throw new QnexusError('TX_BAD_AMOUNT', 'mint amount must be positive');
          const home = tokenHomeShard(id);
          if (home !== params.shard) throw new QnexusError('TOKEN_WRONG_SHARD', `token ${id} is minted on its home shard ${home} only (this is shard ${params.shard})`);
          if (toHex(p.to) === '00'.repeat(ADDRESS_BYTES)) throw new QnexusError('TX_BAD_RECIPIENT', 'the zero address is reserved');
        },
        client: {
          args: [
            { name: 'denom', help: 'token/<id> (or the bare id)' },
            { name: 'to', help: 'recipient (qn…, any shard: another shard gets it by a cross-shard transfer)' },
            { name: 'amount', help: 'base units' },
          ],
          build: (a) => ({ denom: argDenom(a.denom), to: argAddress(a.to, 'recipient'), amount: argAmount(a.amount, 'amount') }),
        },
        xferPreview: (p, _env, params) => {
          const dst = homeShard(p.to, params.shardCount);
          return dst === params.shard ? null : { kind: `${TOKEN_ACCOUNT}-payout`, to: p.to, amount: p.amount, dstShard: dst };
        },
        handle({ ctx, env, store }, p) {
          const id = idOrThrow(p.denom);
          const m = tokens.meta(store, id);
          if (!m) throw new QnexusError('TOKEN_UNKNOWN', `no token ${id} on this shard`);
          if (toHex(m.mintAuthority) !== toHex(env.from)) throw new QnexusError('TOKEN_NOT_AUTHORITY', `only ${formatAddress(m.mintAuthority)} may mint ${p.denom}`);
          if (m.minted + p.amount > m.maxSupply) throw new QnexusError('TOKEN_MAX_SUPPLY', `minting ${p.amount} would take ${p.denom} to ${m.minted + p.amount}, above its max supply ${m.maxSupply}`);
          store.set(metaKey(id), encodeMeta({ ...m, minted: m.minted + p.amount }));
          store.set(touchedKey(id), new Uint8Array(0));
          if (homeShard(p.to, ctx.params.shardCount) === ctx.params.shard) {
            denoms.mint(ctx, p.to, p.amount, p.denom);
            return;
          }
          // Another shard: minted into the module account, which sends it on as a beacon-coordinated transfer
          // keyed by this transaction (an abort returns it there and it is re-sent; never lost, never twice).
          denoms.mint(ctx, account, p.amount, p.denom);
          pay.pay(ctx, env.hash, 0, p.to, p.amount, p.denom);
        },
        json: (p) => ({ denom: p.denom, to: formatAddress(p.to), amount: p.amount.toString() }),
      }),
      msg<TokenBurnMsg>({
        type: TOKEN_MSG.burn,
        name: 'token-burn',
        ...burnCodec,
        validate(p) {
          idOrThrow(p.denom);
          if (p.amount === 0n) throw new QnexusError('TX_BAD_AMOUNT', 'burn amount must be positive');
        },
        client: {
          args: [
            { name: 'denom', help: 'token/<id> (or the bare id)' },
            { name: 'amount', help: 'base units' },
          ],
          build: (a) => ({ denom: argDenom(a.denom), amount: argAmount(a.amount, 'amount') }),
        },
        handle({ ctx, env, store }, p) {
          const id = idOrThrow(p.denom);
          // The metadata is only on the home shard; elsewhere a denom nobody here holds is unknown here.
          const known = tokenHomeShard(id) === ctx.params.shard ? tokens.meta(store, id) !== undefined : k.bank.totalBalances(ctx, p.denom) > 0n;
          if (!known) throw new QnexusError('TOKEN_UNKNOWN', `no token ${p.denom} on this shard`);
          denoms.burn(ctx, env.from, p.amount, p.denom);
          store.set(burnedKey(id), new Writer(8).u64(tokens.burned(store, id) + p.amount).finish());
        },
        json: (p) => ({ denom: p.denom, amount: p.amount.toString() }),
      }),
    ],
    xfers: [pay.op],
    genesis: {
      parse: parseGenesis,
      default: () => ({ createFee: 0n }),
      init(ctx, g) {
        const { createFee } = g as TokenGenesis;
        ctx.store(TOKEN_ID).set(GENESIS_KEY, new Writer(8).u64(createFee).finish());
      },
    } as Module['genesis'],
    queries,
    beginBlock(ctx) {
      // Last block's work list (at most a block's weight of mints).
      const s = ctx.store(TOKEN_ID);
      for (const [key] of s.range(TOUCHED_PREFIX, ctx.params.maxBlockWeight)) s.delete(key);
    },
    endBlock(ctx) {
      pay.retry(ctx, RETRIES_PER_BLOCK);
    },
    /**
     * Every token minted this block: minted ≤ maxSupply, the bank's `minted` of the denom on this
     * (home) shard is the token's `minted` (only this module mints `token/…`, only here), and the
     * module account holds of it exactly what its payouts still owe.
     */
    invariants(ctx) {
      const s = ctx.store(TOKEN_ID);
      for (const [key] of s.range(TOUCHED_PREFIX, ctx.params.maxBlockWeight)) {
        const id = toHex(key.subarray(1));
        const m = tokens.meta(s, id);
        if (!m) throw new Error(`token ${id} minted without metadata`);
        if (m.minted > m.maxSupply) throw new Error(`token ${id}: minted ${m.minted} > max supply ${m.maxSupply}`);
        const banked = k.bank.supply(ctx, tokenDenom(id)).minted;
        if (banked !== m.minted) throw new Error(`token ${id}: bank minted ${banked} ≠ token minted ${m.minted}`);
        // What the module account holds of a token is exactly what it still owes (aborted payouts to re-send).
        const held = k.bank.balance(ctx, account, tokenDenom(id));
        const owed = pay.owed(ctx, tokenDenom(id));
        if (held !== owed) throw new Error(`token ${id}: module account holds ${held}, owes ${owed}`);
      }
    },
  };
}
