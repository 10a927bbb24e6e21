import { ADDRESS_BYTES, concatBytes, formatAddress, homeShard, isAddressString, parseAddress, toHex } from '@qnexus/crypto';
import { QnexusError, Writer, decodeWith, type Reader, type TxMsg } from '@qnexus/types';
import { MODULE_IDS, NATIVE_DENOM, moduleAccount, msg, payouts, type ExecCtx, type HostKeepers, type Module, type ModuleStore, type QueryDef } from '@qnexus/state';

/**
 * faucet: the devnet's on-ramp (modules.md "Faucet"). One faucet, on the home shard F of its module
 * account (`moduleAccount('faucet')`, funded in the genesis accounts). A `faucet-drip {to}` request
 * is feeless (a fresh key holding nothing may send it), so every shard bounds how often one can
 * apply: ≤ `perBlock` requests per block and one per recipient per `cooldown` slots.
 *
 * On F the request is checked against the limits and paid at once (an account of F: a credit from
 * the module account; of another shard: the payouts helper's beacon-coordinated transfer). On
 * another shard S it is a zero-value xcall `drip` to F (toModule 'faucet', payload = the
 * recipient): F's `prepare` checks and RESERVES the limits (two racing requests cannot both pass),
 * the commit pays through the payouts helper, an abort releases the reservation.
 *
 * Limits (all state, so they survive restarts and are proven by the root), on F:
 *   per address: one drip per `cooldown` slots, at most `cap` in total;
 *   per block: at most `perBlock` drips (direct ones and prepares together);
 *   per epoch (`epochLength` slots): at most `epochBps` of the faucet's available balance, fixed
 *   at the epoch's first drip.
 *
 * Keys under module id 5 (0xf0/0xf1 are the payouts helper's):
 *   'p'            → params: u64 drip ‖ u64 cooldown ‖ u64 cap ‖ u32 perBlock ‖ u32 epochBps (every shard)
 *   'k'            → u64 height ‖ u32 count: drips (F) or requests (other shards) in block `height`
 *   'a' ‖ addr     → u64 last drip slot ‖ u64 total granted (F; reservations included)
 *   'r' ‖ xid(32)  → a reservation made at prepare (F): to(20) ‖ u64 amount ‖ u64 slot ‖ u64 epoch ‖ u8 hadPrev ‖ u64 prevSlot
 *   'R'            → u64 Σ reserved (F)
 *   'e'            → u64 epoch ‖ u64 budget ‖ u64 spent (F)
 *   'q' ‖ addr     → u64 slot of the last request for `addr` sent from this shard (other shards)
 *   'x' ‖ addr     → empty: `addr`'s record changed this block (F; the invariant's bounded work list)
 */
export const FAUCET_ID = MODULE_IDS.faucet;
export const FAUCET_MSG = { drip: 1 } as const;
export const FAUCET_KIND = { drip: (FAUCET_ID << 8) | FAUCET_MSG.drip } as const;
export const FAUCET_OP = { drip: 1, payout: 2 } as const;
export const FAUCET_ACCOUNT = 'faucet';
const U64_MAX = 0xffffffffffffffffn;
/** Amounts in answers: decimal strings (null where the answering shard does not know). */
const U = { type: 'string', pattern: '^[0-9]+$' } as const;
const NU = { type: ['string', 'null'], pattern: '^[0-9]+$' } as const;
const ZERO_HEX = '00'.repeat(ADDRESS_BYTES);

export const FAUCET_ERRORS = {
  FAUCET_COOLDOWN: 429,
  FAUCET_CAP: 403,
  FAUCET_BLOCK_LIMIT: 429,
  FAUCET_EPOCH_BUDGET: 429,
  FAUCET_EMPTY: 503,
} as const;

export interface FaucetParams {
  /** Paid per drip (native base units). */
  drip: bigint;
  /** Slots between two drips to one address. */
  cooldown: bigint;
  /** Most one address receives in total. */
  cap: bigint;
  /** Most drips (F) or requests (other shards) per block. */
  perBlock: number;
  /** Most paid per epoch, in basis points of the faucet's available balance at the epoch's first drip. */
  epochBps: number;
}

export const DEFAULT_FAUCET_PARAMS: Readonly<FaucetParams> = { drip: 10_000_000n, cooldown: 3_600n, cap: 100_000_000n, perBlock: 8, epochBps: 100 };

export interface FaucetDripMsg {
  to: Uint8Array;
}

/** The faucet's shard: the home shard of its module account. */
export function faucetShard(shardCount: number): number {
  return homeShard(moduleAccount(FAUCET_ACCOUNT), shardCount);
}

// ------------------------------------------------------------------ state

const PARAMS_KEY = new Uint8Array([0x70]);
const BLOCK_KEY = new Uint8Array([0x6b]);
const RESERVED_KEY = new Uint8Array([0x52]);
const EPOCH_KEY = new Uint8Array([0x65]);
const TOUCHED_PREFIX = new Uint8Array([0x78]);
const addrKey = (a: Uint8Array) => concatBytes(new Uint8Array([0x61]), a);
const resKey = (id: Uint8Array) => concatBytes(new Uint8Array([0x72]), id);
const reqKey = (a: Uint8Array) => concatBytes(new Uint8Array([0x71]), a);
const touchedKey = (a: Uint8Array) => concatBytes(TOUCHED_PREFIX, a);
const u64 = (v: bigint) => new Writer(8).u64(v).finish();
const readU64 = (b: Uint8Array | undefined, what: string) => (b ? decodeWith(b, what, (r) => r.u64(what)) : 0n);

export interface AddressRecord {
  lastSlot: bigint;
  total: bigint;
}
export interface EpochRecord {
  epoch: bigint;
  budget: bigint;
  spent: bigint;
}
interface Reservation {
  to: Uint8Array;
  amount: bigint;
  slot: bigint;
  epoch: bigint;
  prevSlot: bigint | null;
}

function encodeParams(p: FaucetParams): Uint8Array {
  return new Writer(32).u64(p.drip).u64(p.cooldown).u64(p.cap).u32(p.perBlock).u32(p.epochBps).finish();
}

/** Reads of the faucet's state (queries, tests, the invariants). */
export const faucetState = {
  params(s: ModuleStore): FaucetParams {
    const b = s.get(PARAMS_KEY);
    if (!b) return { ...DEFAULT_FAUCET_PARAMS };
    return decodeWith(b, 'faucet params', (r) => ({ drip: r.u64('drip'), cooldown: r.u64('cooldown'), cap: r.u64('cap'), perBlock: r.u32('perBlock'), epochBps: r.u32('epochBps') }));
  },
  address(s: ModuleStore, a: Uint8Array): AddressRecord | undefined {
    const b = s.get(addrKey(a));
    return b ? decodeWith(b, 'faucet address', (r) => ({ lastSlot: r.u64('last slot'), total: r.u64('total') })) : undefined;
  },
  /** Drips (F) or requests (other shards) counted in block `height` (0 for any other block). */
  blockCount(s: ModuleStore, height: number): number {
    const b = s.get(BLOCK_KEY);
    if (!b) return 0;
    const v = decodeWith(b, 'faucet block count', (r) => ({ h: r.u64('height'), n: r.u32('count') }));
    return v.h === BigInt(height) ? v.n : 0;
  },
  reserved(s: ModuleStore): bigint {
    return readU64(s.get(RESERVED_KEY), 'reserved');
  },
  epoch(s: ModuleStore): EpochRecord | undefined {
    const b = s.get(EPOCH_KEY);
    return b ? decodeWith(b, 'faucet epoch', (r) => ({ epoch: r.u64('epoch'), budget: r.u64('budget'), spent: r.u64('spent') })) : undefined;
  },
  lastRequest(s: ModuleStore, a: Uint8Array): bigint | undefined {
    const b = s.get(reqKey(a));
    return b ? readU64(b, 'last request') : undefined;
  },
  reservation(s: ModuleStore, id: Uint8Array): Reservation | undefined {
    const b = s.get(resKey(id));
    if (!b) return undefined;
    return decodeWith(b, 'faucet reservation', (r) => {
      const to = r.fixed(ADDRESS_BYTES, 'to');
      const amount = r.u64('amount');
      const slot = r.u64('slot');
      const epoch = r.u64('epoch');
      const had = r.u8('had prev');
      const prev = r.u64('prev slot');
      return { to, amount, slot, epoch, prevSlot: had ? prev : null };
    });
  },
};

// ------------------------------------------------------------------ codec and client

const dripCodec = {
  encode: (w: Writer, p: FaucetDripMsg) => void w.fixed(p.to, ADDRESS_BYTES),
  decode: (r: Reader): FaucetDripMsg => ({ to: r.fixed(ADDRESS_BYTES, 'recipient') }),
};

/** Client side: a drip request for `to` (sign it with fee 0 from any key of the submitting node's shard). */
export function faucetDripMsg(p: FaucetDripMsg): TxMsg {
  const w = new Writer(24);
  dripCodec.encode(w, p);
  return { kind: FAUCET_KIND.drip, msg: w.finish() };
}

function checkRecipient(to: Uint8Array): void {
  if (toHex(to) === ZERO_HEX) throw new QnexusError('TX_BAD_RECIPIENT', 'the zero address is reserved');
  if (toHex(to) === toHex(moduleAccount(FAUCET_ACCOUNT))) throw new QnexusError('TX_BAD_RECIPIENT', 'the faucet cannot drip to itself');
}

function parseGenesis(json: unknown): FaucetParams {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('expected an object { drip, cooldown, cap, perBlock, epochBps }');
  const o = json as Record<string, unknown>;
  const known = ['drip', 'cooldown', 'cap', 'perBlock', 'epochBps'];
  for (const k of Object.keys(o)) if (!known.includes(k)) throw new Error(`unknown field ${k}`);
  const big = (k: string, d: bigint): bigint => {
    const v = o[k];
    if (v === undefined) return d;
    const s = typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : v;
    if (typeof s !== 'string' || !/^[0-9]{1,20}$/.test(s) || BigInt(s) > U64_MAX) throw new Error(`${k} must be a u64 (a decimal string)`);
    return BigInt(s);
  };
  const int = (k: string, d: number, min: number, max: number): number => {
    const v = o[k] ?? d;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new Error(`${k} must be an integer in ${min}..${max}`);
    return v;
  };
  const D = DEFAULT_FAUCET_PARAMS;
  const p: FaucetParams = { drip: big('drip', D.drip), cooldown: big('cooldown', D.cooldown), cap: big('cap', D.cap), perBlock: int('perBlock', D.perBlock, 1, 1000), epochBps: int('epochBps', D.epochBps, 0, 10_000) };
  if (p.drip === 0n) throw new Error('drip must be positive');
  if (p.cap < p.drip) throw new Error('cap must be at least one drip');
  return p;
}

// ------------------------------------------------------------------ the module

export type FaucetKeepers = Pick<HostKeepers, 'bank' | 'xfer'>;

export function faucetModule(k: FaucetKeepers): Module {
  const account = moduleAccount(FAUCET_ACCOUNT);
  const pay = payouts(k.xfer, FAUCET_ID, FAUCET_OP.payout, FAUCET_ACCOUNT);
  const ownReads = (s: ModuleStore) => ({ store: () => s });

  const bumpBlock = (ctx: ExecCtx, s: ModuleStore, p: FaucetParams) => {
    const n = faucetState.blockCount(s, ctx.block.height);
    if (n >= p.perBlock) throw new QnexusError('FAUCET_BLOCK_LIMIT', `the faucet takes at most ${p.perBlock} drips per block; try the next one`);
    s.set(BLOCK_KEY, new Writer(12).u64(BigInt(ctx.block.height)).u32(n + 1).finish());
  };

  /** What the faucet can still promise: its balance less aborted payouts to re-send and pending reservations. */
  const available = (ctx: ExecCtx, s: ModuleStore) => {
    const bal = k.bank.balance(ctx, account, NATIVE_DENOM);
    const held = pay.owed(ctx, NATIVE_DENOM) + faucetState.reserved(s);
    return bal > held ? bal - held : 0n;
  };

  /**
   * On F: check every limit for a drip to `to` in this block and book it (block count, the
   * address's record, the epoch's spending). Throws the limit's code; the caller's branch is dropped then.
   */
  const grant = (ctx: ExecCtx, to: Uint8Array): { amount: bigint; epoch: bigint; prev: AddressRecord | undefined } => {
    const s = ctx.store(FAUCET_ID);
    const p = faucetState.params(s);
    const slot = BigInt(ctx.block.slot);
    bumpBlock(ctx, s, p);
    const rec = faucetState.address(s, to);
    if (rec && slot < rec.lastSlot + p.cooldown) {
      throw new QnexusError('FAUCET_COOLDOWN', `${formatAddress(to)} had a drip at slot ${rec.lastSlot}; the next one from slot ${rec.lastSlot + p.cooldown}`, { nextSlot: Number(rec.lastSlot + p.cooldown) });
    }
    const total = rec?.total ?? 0n;
    if (total + p.drip > p.cap) throw new QnexusError('FAUCET_CAP', `${formatAddress(to)} has received ${total}; the faucet gives at most ${p.cap} per address`);
    const avail = available(ctx, s);
    if (avail < p.drip) throw new QnexusError('FAUCET_EMPTY', `the faucet has ${avail} available, less than one drip (${p.drip})`);
    const epoch = BigInt(Math.floor(ctx.block.slot / ctx.params.epochLength));
    let ep = faucetState.epoch(s);
    if (!ep || ep.epoch !== epoch) ep = { epoch, budget: (avail * BigInt(p.epochBps)) / 10_000n, spent: 0n };
    if (ep.spent + p.drip > ep.budget) throw new QnexusError('FAUCET_EPOCH_BUDGET', `this epoch's budget (${ep.budget}) is spent; the next epoch starts at slot ${(epoch + 1n) * BigInt(ctx.params.epochLength)}`);
    s.set(EPOCH_KEY, new Writer(24).u64(ep.epoch).u64(ep.budget).u64(ep.spent + p.drip).finish());
    s.set(addrKey(to), new Writer(16).u64(slot).u64(total + p.drip).finish());
    s.set(touchedKey(to), new Uint8Array(0));
    return { amount: p.drip, epoch, prev: rec };
  };

  const queries: QueryDef[] = [
    {
      name: 'status',
      summary: "The faucet's parameters, shard, balance and this epoch's budget (balance fields from the faucet's shard only)",
      params: [],
      response: {
        type: 'object',
        title: 'FaucetStatus',
        required: ['shard', 'answeredBy', 'account', 'drip', 'cooldownSlots', 'capPerAddress', 'perBlock', 'epochBps', 'epochLength', 'balance', 'owed', 'reserved', 'available', 'epoch'],
        properties: {
          shard: { type: 'integer', minimum: 0, description: "the faucet's shard (home shard of its module account)" },
          answeredBy: { type: 'integer', minimum: 0 },
          account: { type: 'string', pattern: '^qn[0-9a-f]{40}$' },
          drip: U,
          cooldownSlots: { type: 'integer', minimum: 0 },
          capPerAddress: U,
          perBlock: { type: 'integer', minimum: 1 },
          epochBps: { type: 'integer', minimum: 0, maximum: 10_000 },
          epochLength: { type: 'integer', minimum: 1 },
          balance: { ...NU, description: "the module account's balance (null on another shard)" },
          owed: { ...NU, description: 'aborted payouts waiting to be re-sent' },
          reserved: { ...NU, description: 'drips prepared for requests from other shards, not yet decided' },
          available: NU,
          epoch: {
            type: ['object', 'null'],
            description: "the epoch of the last drip and its budget; a later epoch starts with epochBps of what is available then",
            properties: { epoch: { type: 'integer' }, budget: U, spent: U, left: U },
          },
          nextEpochBudget: U,
        },
      },
      run({ store, params, balance: balanceOf }) {
        const p = faucetState.params(store);
        const F = faucetShard(params.shardCount);
        const base = {
          shard: F,
          answeredBy: params.shard,
          account: formatAddress(account),
          drip: p.drip.toString(),
          cooldownSlots: Number(p.cooldown),
          capPerAddress: p.cap.toString(),
          perBlock: p.perBlock,
          epochBps: p.epochBps,
          epochLength: params.epochLength,
        };
        if (params.shard !== F) return { ...base, balance: null, owed: null, reserved: null, available: null, epoch: null };
        const balance = balanceOf(account, NATIVE_DENOM);
        const owed = pay.owed(ownReads(store), NATIVE_DENOM);
        const reserved = faucetState.reserved(store);
        const avail = balance > owed + reserved ? balance - owed - reserved : 0n;
        const ep = faucetState.epoch(store);
        return {
          ...base,
          balance: balance.toString(),
          owed: owed.toString(),
          reserved: reserved.toString(),
          available: avail.toString(),
          // The epoch of the last drip; a later epoch starts with a fresh budget of epochBps of what is available then.
          epoch: ep ? { epoch: Number(ep.epoch), budget: ep.budget.toString(), spent: ep.spent.toString(), left: (ep.budget - ep.spent).toString() } : null,
          nextEpochBudget: ((avail * BigInt(p.epochBps)) / 10_000n).toString(),
        };
      },
    },
    {
      name: 'address',
      summary: 'What the faucet gave an address (on the faucet shard), or when this shard last forwarded a request for it',
      params: ['address'],
      response: {
        type: 'object',
        title: 'FaucetAddress',
        required: ['address', 'shard'],
        properties: {
          address: { type: 'string', pattern: '^qn[0-9a-f]{40}$' },
          shard: { type: 'integer', minimum: 0, description: "the faucet's shard" },
          answeredBy: { type: 'integer', minimum: 0, description: 'present when another shard answers (request fields only)' },
          lastDripSlot: { type: ['integer', 'null'] },
          totalReceived: U,
          nextAllowedSlot: { type: 'integer', minimum: 0 },
          capLeft: U,
          lastRequestSlot: { type: ['integer', 'null'] },
          nextRequestSlot: { type: 'integer', minimum: 0 },
        },
      },
      run({ store, params }, { address }) {
        if (!isAddressString(address ?? '')) throw new QnexusError('BAD_REQUEST', 'address must be qn followed by 40 lowercase hex characters');
        const a = parseAddress(address!);
        const p = faucetState.params(store);
        const F = faucetShard(params.shardCount);
        if (params.shard === F) {
          const rec = faucetState.address(store, a);
          return {
            address,
            shard: F,
            lastDripSlot: rec ? Number(rec.lastSlot) : null,
            totalReceived: (rec?.total ?? 0n).toString(),
            nextAllowedSlot: rec ? Number(rec.lastSlot + p.cooldown) : 0,
            capLeft: (p.cap - (rec?.total ?? 0n)).toString(),
          };
        }
        const last = faucetState.lastRequest(store, a);
        return { address, shard: F, answeredBy: params.shard, lastRequestSlot: last === undefined ? null : Number(last), nextRequestSlot: last === undefined ? 0 : Number(last + p.cooldown) };
      },
    },
  ];

  return {
    name: 'faucet',
    id: FAUCET_ID,
    accounts: [FAUCET_ACCOUNT],
    errors: FAUCET_ERRORS,
    msgs: [
      msg<FaucetDripMsg>({
        type: FAUCET_MSG.drip,
        name: 'faucet-drip',
        ...dripCodec,
        feeless: true,
        validate: (p) => checkRecipient(p.to),
        client: {
          args: [{ name: 'to', help: 'the address to fund (qn…, any shard)' }],
          build(a) {
            if (!isAddressString(a.to ?? '')) throw new QnexusError('TX_MALFORMED', `invalid recipient ${JSON.stringify(a.to)}: expected qn followed by 40 lowercase hex characters`);
            const to = parseAddress(a.to!);
            checkRecipient(to);
            return { to };
          },
        },
        xferPreview: (_p, _env, params) => {
          const F = faucetShard(params.shardCount);
          return F === params.shard ? null : { kind: 'drip', to: account, amount: 0n, dstShard: F };
        },
        handle({ ctx, env, store }, p) {
          const F = faucetShard(ctx.params.shardCount);
          if (ctx.params.shard === F) {
            const g = grant(ctx, p.to);
            pay.pay(ctx, env.hash, 0, p.to, g.amount, NATIVE_DENOM);
            return;
          }
          // Not the faucet's shard: bound the feeless requests here too, then ask F by a zero-value xcall.
          const fp = faucetState.params(store);
          bumpBlock(ctx, store, fp);
          const last = faucetState.lastRequest(store, p.to);
          const slot = BigInt(ctx.block.slot);
          if (last !== undefined && slot < last + fp.cooldown) {
            throw new QnexusError('FAUCET_COOLDOWN', `a drip for ${formatAddress(p.to)} was requested at slot ${last}; the next request from slot ${last + fp.cooldown}`, { nextSlot: Number(last + fp.cooldown) });
          }
          store.set(reqKey(p.to), u64(slot));
          k.xfer.open(ctx, k.xfer.infoFor(ctx, env, { module: FAUCET_ID, op: FAUCET_OP.drip, denom: NATIVE_DENOM, dstShard: F, to: account, amount: 0n, payload: p.to }), env.from);
        },
        json: (p) => ({ to: formatAddress(p.to) }),
      }),
    ],
    xfers: [
      {
        op: FAUCET_OP.drip,
        name: 'drip',
        route: 'shard-shard',
        toModule: FAUCET_ACCOUNT,
        checkPayload: (x, params) => x.payload.length === ADDRESS_BYTES && x.amount === 0n && x.denom === NATIVE_DENOM && x.dstShard === faucetShard(params.shardCount),
        prepare(ctx, x) {
          const to = x.payload;
          try {
            checkRecipient(to);
            const g = grant(ctx, to);
            const s = ctx.store(FAUCET_ID);
            const w = new Writer(80).fixed(to, ADDRESS_BYTES).u64(g.amount).u64(BigInt(ctx.block.slot)).u64(g.epoch);
            w.u8(g.prev ? 1 : 0).u64(g.prev?.lastSlot ?? 0n);
            s.set(resKey(x.id), w.finish());
            s.set(RESERVED_KEY, u64(faucetState.reserved(s) + g.amount));
            return null;
          } catch (e) {
            if (e instanceof QnexusError) return e.code;
            throw e;
          }
        },
        settleDestination(ctx, x, commit) {
          const s = ctx.store(FAUCET_ID);
          const r = faucetState.reservation(s, x.id);
          if (!r) return;
          s.delete(resKey(x.id));
          s.set(RESERVED_KEY, u64(faucetState.reserved(s) - r.amount));
          if (commit) {
            pay.pay(ctx, x.id, 0, r.to, r.amount, NATIVE_DENOM);
            return;
          }
          // Abort: give back what the prepare booked (the block count stays: that block is past).
          const rec = faucetState.address(s, r.to);
          if (rec) {
            const total = rec.total - r.amount;
            const last = rec.lastSlot === r.slot ? r.prevSlot : rec.lastSlot;
            if (last === null && total === 0n) s.delete(addrKey(r.to));
            else s.set(addrKey(r.to), new Writer(16).u64(last ?? rec.lastSlot).u64(total).finish());
            s.set(touchedKey(r.to), new Uint8Array(0));
          }
          const ep = faucetState.epoch(s);
          if (ep && ep.epoch === r.epoch) s.set(EPOCH_KEY, new Writer(24).u64(ep.epoch).u64(ep.budget).u64(ep.spent - r.amount).finish());
        },
        // The source of a refused request forgets its cooldown, so the user may ask again (the per-block bound stays).
        settleSource(ctx, x, commit) {
          if (commit) return;
          const s = ctx.store(FAUCET_ID);
          const at = BigInt(x.deadlineSlot - ctx.params.xferTimeoutSlots);
          if (faucetState.lastRequest(s, x.payload) === at) s.delete(reqKey(x.payload));
        },
      },
      pay.op,
    ],
    genesis: {
      parse: parseGenesis,
      default: () => ({ ...DEFAULT_FAUCET_PARAMS }),
      init(ctx, g) {
        const s = ctx.store(FAUCET_ID);
        s.set(PARAMS_KEY, encodeParams(g as FaucetParams));
      },
    } as Module['genesis'],
    queries,
    beginBlock(ctx) {
      const s = ctx.store(FAUCET_ID);
      const p = faucetState.params(s);
      // Last block's work list: at most perBlock drips + as many aborts as a block holds.
      for (const [key] of s.range(TOUCHED_PREFIX, p.perBlock + ctx.params.maxBlockWeight)) s.delete(key);
    },
    endBlock(ctx) {
      const s = ctx.store(FAUCET_ID);
      pay.retry(ctx, faucetState.params(s).perBlock);
    },
    invariants(ctx) {
      const s = ctx.store(FAUCET_ID);
      const p = faucetState.params(s);
      const n = faucetState.blockCount(s, ctx.block.height);
      if (n > p.perBlock) throw new Error(`${n} drips in block ${ctx.block.height}, more than ${p.perBlock}`);
      if (ctx.params.shard !== faucetShard(ctx.params.shardCount)) return;
      const ep = faucetState.epoch(s);
      if (ep && ep.spent > ep.budget) throw new Error(`epoch ${ep.epoch}: spent ${ep.spent} > budget ${ep.budget}`);
      const bal = k.bank.balance(ctx, account, NATIVE_DENOM);
      const held = pay.owed(ctx, NATIVE_DENOM) + faucetState.reserved(s);
      if (bal < held) throw new Error(`the faucet holds ${bal}, less than it owes and reserved (${held})`);
      for (const [key] of s.range(TOUCHED_PREFIX, p.perBlock + ctx.params.maxBlockWeight)) {
        const rec = faucetState.address(s, key.subarray(1));
        if (rec && rec.total > p.cap) throw new Error(`${formatAddress(key.subarray(1))} received ${rec.total} > cap ${p.cap}`);
      }
    },
  };
}
