import { ADDRESS_BYTES, sha256, toHex, utf8 } from '@qnexus/crypto';
import { MAX_PUBLIC_KEY_BYTES, QnexusError, Writer, decodeWith } from '@qnexus/types';
import { MODULE_IDS, type ExecCtx } from '../../ctx.js';
import type { ModuleStore } from '../../store.js';

/**
 * bank: balances keyed by (address, denom), account records (nonce and the
 * key registered by the first transaction), per-denom supply, module
 * accounts. Keys under module id 1:
 *   'a' ‖ address            → u64 nonce (the account record: exists once the address sent or received)
 *   'k' ‖ address            → the public key registered by its first transaction (written once)
 *   'b' ‖ address ‖ denom    → u64 balance (absent = 0)
 *   't' ‖ denom              → u64 Σ balances of the denom (kept as balances change)
 *   's' ‖ denom              → u64 genesis ‖ u64 minted ‖ u64 burned
 *   'n'                      → u64 number of account records
 * Per denom, at every height: Σ balances + burned + (xfer) escrow + exported
 * − imported = genesis + minted; module accounts are ordinary balances.
 */
export const NATIVE_DENOM = 'qfc';
export const MAX_DENOM_BYTES = 64;
const U64_MAX = 0xffffffffffffffffn;
const ID = MODULE_IDS.bank;

export interface AuthRecord {
  nonce: bigint;
  publicKey: Uint8Array | null;
}

export interface DenomSupply {
  genesis: bigint;
  minted: bigint;
  burned: bigint;
}

/** Address of a module's account: nobody holds its key, so only the module's code moves its funds. */
export function moduleAccount(name: string): Uint8Array {
  return sha256(utf8(`qnexus/module-account/${name}`)).slice(0, ADDRESS_BYTES);
}

/** The account every fee is paid into; modules with an `onFee` hook take their share (or burn it) from there. */
export const FEE_COLLECTOR = moduleAccount('fee_collector');

/**
 * Whether `owner` owns `denom`: a module owns the denoms named `<module>/…`
 * (`amm/7`, `token/0x…`); the native denom belongs to no module (it is
 * created at genesis only, and leaves only as burned fees).
 */
export function ownsDenom(owner: string, denom: string): boolean {
  return denom.startsWith(`${owner}/`);
}

// Keys are built as hex (what the store indexes by) from memoized parts: every transfer touches
// a dozen of them, and building each through a Writer and back to hex was most of a block's time.
//   'a' ‖ address, 'k' ‖ address, 'b' ‖ address ‖ utf8 denom, 't' ‖ string denom, 's' ‖ string denom, 'n'
const authKeyH = (addr: Uint8Array) => `61${hexOf(addr)}`;
const pubKeyH = (addr: Uint8Array) => `6b${hexOf(addr)}`;
const balKeyH = (addr: Uint8Array, denom: string) => `62${hexOf(addr)}${denomHex(denom).raw}`;
const totalKeyH = (denom: string) => denomHex(denom).total;
const supplyKeyH = (denom: string) => denomHex(denom).supply;
const COUNT_KEY_H = '6e';

/** Hex of an address, remembered per array object (a transaction passes the same arrays around). */
const hexCache = new WeakMap<Uint8Array, string>();
function hexOf(addr: Uint8Array): string {
  let h = hexCache.get(addr);
  if (h === undefined) {
    if (addr.length !== ADDRESS_BYTES) throw new RangeError(`address of ${addr.length} bytes`);
    hexCache.set(addr, (h = toHex(addr)));
  }
  return h;
}

/**
 * A denom's hex, raw (a key's tail) and as a codec string (u32 length ‖ utf8), and its total and
 * supply keys, for the few denoms a chain has: a transfer writes the running total several
 * times, and building the key string each time was garbage on the hot path.
 */
interface DenomHex {
  raw: string;
  str: string;
  total: string;
  supply: string;
}
const denomCache = new Map<string, DenomHex>();
function denomHex(denom: string): DenomHex {
  let d = denomCache.get(denom);
  if (!d) {
    const raw = toHex(utf8(denom));
    const str = (raw.length / 2).toString(16).padStart(8, '0') + raw;
    d = { raw, str, total: `74${str}`, supply: `73${str}` };
    if (denomCache.size < 4096) denomCache.set(denom, d);
  }
  return d;
}

/**
 * A u64 as 8 big-endian bytes (the codec's), without a Writer: balances are written on every
 * transfer. Through one scratch view and a copy: a DataView over a fresh 8-byte array would make
 * V8 move that array's bytes off the heap (`.buffer` of a small typed array), an allocation each.
 */
const U64_SCRATCH = new Uint8Array(8);
const U64_VIEW = new DataView(U64_SCRATCH.buffer);
function u64(v: bigint): Uint8Array {
  U64_VIEW.setBigUint64(0, v);
  return U64_SCRATCH.slice();
}

function readU64(b: Uint8Array | undefined, what: string): bigint {
  if (!b) return 0n;
  if (b.length !== 8) throw new QnexusError('MALFORMED', `${what}: expected 8 bytes, got ${b.length}`);
  const hi = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  const lo = ((b[4]! << 24) | (b[5]! << 16) | (b[6]! << 8) | b[7]!) >>> 0;
  return (BigInt(hi) << 32n) | BigInt(lo);
}


function validDenom(denom: string): void {
  if (!/^[a-z][a-z0-9/._-]{1,63}$/.test(denom)) throw new QnexusError('BANK_BAD_DENOM', `invalid denom ${JSON.stringify(denom)}`);
}

/**
 * Write a balance (`old` → `amount`, read by the caller under key `k`), keeping the denom's running
 * total; an account record is created on first sight, as a credit always did.
 */
function moveBalance(ctx: ExecCtx, s: ModuleStore, addr: Uint8Array, k: string, denom: string, old: bigint, amount: bigint): void {
  if (amount < 0n || amount > U64_MAX) throw new QnexusError('TX_BAD_AMOUNT', 'balance out of range');
  const tk = totalKeyH(denom);
  const total = readU64(s.getH(tk), 'total balances') - old + amount;
  if (total > U64_MAX) throw new QnexusError('TX_BAD_AMOUNT', `total ${denom} balances would overflow`);
  s.setH(tk, u64(total));
  if (amount === 0n) s.deleteH(k);
  else s.setH(k, u64(amount));
  if (!s.hasH(authKeyH(addr))) bank.setAuth(ctx, addr, { nonce: 0n, publicKey: null });
}

function burnFrom(ctx: ExecCtx, from: Uint8Array, amount: bigint, denom: string): void {
  if (amount === 0n) return;
  bank.debit(ctx, from, amount, denom);
  const s = bank.supply(ctx, denom);
  bank.setSupply(ctx, denom, { ...s, burned: s.burned + amount });
}

/** Minting and burning, for the module that owns a denom: handed to each module at wiring, for its own name. */
export interface DenomKeeper {
  /** Create `amount` of `denom` (a denom this module owns) in `to`'s balance: `minted` grows. */
  mint(ctx: ExecCtx, to: Uint8Array, amount: bigint, denom: string): void;
  /** Destroy `amount` of `denom` (a denom this module owns) from `from`'s balance: `burned` grows. */
  burn(ctx: ExecCtx, from: Uint8Array, amount: bigint, denom: string): void;
}

/** The mint/burn keeper of module `owner`: BANK_NOT_DENOM_OWNER for any denom not named `<owner>/…`. */
export function denomKeeper(owner: string): DenomKeeper {
  const check = (denom: string) => {
    validDenom(denom);
    if (!ownsDenom(owner, denom)) throw new QnexusError('BANK_NOT_DENOM_OWNER', `module ${owner} may mint and burn only denoms named ${owner}/…, not ${JSON.stringify(denom)}`);
  };
  return {
    mint(ctx, to, amount, denom) {
      check(denom);
      if (amount === 0n) return;
      bank.credit(ctx, to, amount, denom);
      const s = bank.supply(ctx, denom);
      bank.setSupply(ctx, denom, { ...s, minted: s.minted + amount });
    },
    burn(ctx, from, amount, denom) {
      check(denom);
      burnFrom(ctx, from, amount, denom);
    },
  };
}

/** The bank's reads and writes, on whatever branch the context carries. */
export const bank = {
  id: ID,
  s(ctx: { store(id: number): ModuleStore }): ModuleStore {
    return ctx.store(ID);
  },

  /** The account record: its nonce and registered key; undefined for an address the shard has never seen. */
  auth(ctx: { store(id: number): ModuleStore }, addr: Uint8Array): AuthRecord | undefined {
    const s = bank.s(ctx);
    const n = s.getH(authKeyH(addr));
    if (!n) return undefined;
    const pk = s.getH(pubKeyH(addr));
    if (pk && pk.length > MAX_PUBLIC_KEY_BYTES) throw new QnexusError('MALFORMED', `public key of ${pk.length} bytes`);
    return { nonce: readU64(n, 'nonce'), publicKey: pk ?? null };
  },

  /**
   * The public key the address's first transaction registered, or null (never sent, or only
   * received). Written once and never changed, so a keyless transaction's key is fixed by it.
   */
  publicKey(ctx: { store(id: number): ModuleStore }, addr: Uint8Array): Uint8Array | null {
    const pk = bank.s(ctx).getH(pubKeyH(addr));
    if (pk && pk.length > MAX_PUBLIC_KEY_BYTES) throw new QnexusError('MALFORMED', `public key of ${pk.length} bytes`);
    return pk ?? null;
  },

  /** The next nonce of an address (0 for one never seen). */
  nonce(ctx: { store(id: number): ModuleStore }, addr: Uint8Array): bigint {
    return readU64(bank.s(ctx).getH(authKeyH(addr)), 'nonce');
  },

  /**
   * Write the account record. The key is written once, the first time one is given (every later
   * transaction carries the same key: its address is the key's hash), so a nonce bump rewrites 8 bytes.
   */
  setAuth(ctx: ExecCtx, addr: Uint8Array, a: AuthRecord): void {
    const s = bank.s(ctx);
    const k = authKeyH(addr);
    if (!s.hasH(k)) s.setH(COUNT_KEY_H, u64(readU64(s.getH(COUNT_KEY_H), 'account count') + 1n));
    s.setH(k, u64(a.nonce));
    if (a.publicKey && !s.hasH(pubKeyH(addr))) s.setH(pubKeyH(addr), a.publicKey);
  },

  accountCount(ctx: { store(id: number): ModuleStore }): bigint {
    return readU64(bank.s(ctx).getH(COUNT_KEY_H), 'account count');
  },

  balance(ctx: { store(id: number): ModuleStore }, addr: Uint8Array, denom: string = NATIVE_DENOM): bigint {
    return readU64(bank.s(ctx).getH(balKeyH(addr, denom)), 'balance');
  },

  totalBalances(ctx: { store(id: number): ModuleStore }, denom: string = NATIVE_DENOM): bigint {
    return readU64(bank.s(ctx).getH(totalKeyH(denom)), 'total balances');
  },

  supply(ctx: { store(id: number): ModuleStore }, denom: string = NATIVE_DENOM): DenomSupply {
    const b = bank.s(ctx).getH(supplyKeyH(denom));
    if (!b) return { genesis: 0n, minted: 0n, burned: 0n };
    return decodeWith(b, 'denom supply', (r) => ({ genesis: r.u64('genesis'), minted: r.u64('minted'), burned: r.u64('burned') }));
  },

  /** Whether the denom has a supply record on this shard (minted, held at genesis or imported here). */
  hasSupply(ctx: { store(id: number): ModuleStore }, denom: string): boolean {
    return bank.s(ctx).hasH(supplyKeyH(denom));
  },

  /** Every denom with a supply record, in key order (bounded by `limit`). */
  denoms(ctx: { store(id: number): ModuleStore }, limit: number): string[] {
    return bank
      .s(ctx)
      .range(new Uint8Array([0x73]), limit)
      .map(([k]) => decodeWith(k.subarray(1), 'denom', (r) => r.string(MAX_DENOM_BYTES, 'denom')));
  },

  setSupply(ctx: ExecCtx, denom: string, s: DenomSupply): void {
    bank.s(ctx).setH(supplyKeyH(denom), new Writer(24).u64(s.genesis).u64(s.minted).u64(s.burned).finish());
  },

  /** Set a balance, keeping the denom's running total; an account record is created on first sight, as a credit does. */
  setBalance(ctx: ExecCtx, addr: Uint8Array, denom: string, amount: bigint): void {
    const s = bank.s(ctx);
    const k = balKeyH(addr, denom);
    moveBalance(ctx, s, addr, k, denom, readU64(s.getH(k), 'balance'), amount);
  },

  canCredit(ctx: { store(id: number): ModuleStore }, addr: Uint8Array, amount: bigint, denom: string = NATIVE_DENOM): boolean {
    return bank.balance(ctx, addr, denom) + amount <= U64_MAX && bank.totalBalances(ctx, denom) + amount <= U64_MAX;
  },

  credit(ctx: ExecCtx, addr: Uint8Array, amount: bigint, denom: string = NATIVE_DENOM): void {
    const s = bank.s(ctx);
    const k = balKeyH(addr, denom);
    const bal = readU64(s.getH(k), 'balance');
    if (bal + amount > U64_MAX) throw new QnexusError('TX_BAD_AMOUNT', 'recipient balance would overflow');
    moveBalance(ctx, s, addr, k, denom, bal, bal + amount);
  },

  debit(ctx: ExecCtx, addr: Uint8Array, amount: bigint, denom: string = NATIVE_DENOM): void {
    const s = bank.s(ctx);
    const k = balKeyH(addr, denom);
    const bal = readU64(s.getH(k), 'balance');
    if (bal < amount) throw new QnexusError('TX_INSUFFICIENT_FUNDS', `balance ${bal} is less than ${amount}`);
    moveBalance(ctx, s, addr, k, denom, bal, bal - amount);
  },

  send(ctx: ExecCtx, from: Uint8Array, to: Uint8Array, amount: bigint, denom: string = NATIVE_DENOM): void {
    bank.debit(ctx, from, amount, denom);
    bank.credit(ctx, to, amount, denom);
  },

  /**
   * Burn part of the fee being paid (only inside an `onFee` hook, where the fee is already debited
   * from its sender and not yet anyone's): the native denom's `burned` grows by `amount`.
   */
  burnFees(ctx: ExecCtx, amount: bigint): void {
    if (amount === 0n) return;
    const s = bank.supply(ctx, NATIVE_DENOM);
    bank.setSupply(ctx, NATIVE_DENOM, { ...s, burned: s.burned + amount });
  },

  /** Genesis: an initial balance, counted in the denom's genesis supply. */
  genesisCredit(ctx: ExecCtx, to: Uint8Array, amount: bigint, denom: string = NATIVE_DENOM): void {
    validDenom(denom);
    bank.credit(ctx, to, amount, denom);
    const s = bank.supply(ctx, denom);
    bank.setSupply(ctx, denom, { ...s, genesis: s.genesis + amount });
  },
};
