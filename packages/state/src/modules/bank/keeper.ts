import { ADDRESS_BYTES, sha256, utf8 } from '@qnexus/crypto';
import { MAX_PUBLIC_KEY_BYTES, QnexusError, Writer, decodeWith } from '@qnexus/types';
import { MODULE_IDS, type ExecCtx } from '../../ctx.js';
import type { ModuleStore } from '../../store.js';

/**
 * bank: balances keyed by (address, denom), account records (nonce and the
 * key registered by the first transaction), per-denom supply, module
 * accounts. Keys under module id 1:
 *   'a' ‖ address            → u64 nonce ‖ bytes public key (empty until registered)
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

const authKey = (addr: Uint8Array) => new Writer(24).u8(0x61).fixed(addr, ADDRESS_BYTES).finish();
const balKey = (addr: Uint8Array, denom: string) => {
  const d = utf8(denom);
  return new Writer(24 + d.length).u8(0x62).fixed(addr, ADDRESS_BYTES).fixed(d, d.length).finish();
};
const totalKey = (denom: string) => new Writer(72).u8(0x74).string(denom).finish();
const supplyKey = (denom: string) => new Writer(72).u8(0x73).string(denom).finish();
const COUNT_KEY = new Uint8Array([0x6e]);

const u64 = (v: bigint) => new Writer(8).u64(v).finish();
const readU64 = (b: Uint8Array | undefined, what: string): bigint => (b ? decodeWith(b, what, (r) => r.u64(what)) : 0n);

export function encodeAuth(a: AuthRecord): Uint8Array {
  return new Writer(16 + (a.publicKey?.length ?? 0)).u64(a.nonce).bytes(a.publicKey ?? new Uint8Array(0)).finish();
}

export function decodeAuth(b: Uint8Array): AuthRecord {
  return decodeWith(b, 'account', (r) => {
    const nonce = r.u64('nonce');
    const pk = r.bytes(MAX_PUBLIC_KEY_BYTES, 'public key');
    return { nonce, publicKey: pk.length ? pk : null };
  });
}

function validDenom(denom: string): void {
  if (!/^[a-z][a-z0-9/._-]{1,63}$/.test(denom)) throw new QnexusError('BANK_BAD_DENOM', `invalid denom ${JSON.stringify(denom)}`);
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

  auth(ctx: { store(id: number): ModuleStore }, addr: Uint8Array): AuthRecord | undefined {
    const b = bank.s(ctx).get(authKey(addr));
    return b ? decodeAuth(b) : undefined;
  },

  setAuth(ctx: ExecCtx, addr: Uint8Array, a: AuthRecord): void {
    const s = bank.s(ctx);
    const k = authKey(addr);
    if (!s.has(k)) s.set(COUNT_KEY, u64(readU64(s.get(COUNT_KEY), 'account count') + 1n));
    s.set(k, encodeAuth(a));
  },

  accountCount(ctx: { store(id: number): ModuleStore }): bigint {
    return readU64(bank.s(ctx).get(COUNT_KEY), 'account count');
  },

  balance(ctx: { store(id: number): ModuleStore }, addr: Uint8Array, denom: string = NATIVE_DENOM): bigint {
    return readU64(bank.s(ctx).get(balKey(addr, denom)), 'balance');
  },

  totalBalances(ctx: { store(id: number): ModuleStore }, denom: string = NATIVE_DENOM): bigint {
    return readU64(bank.s(ctx).get(totalKey(denom)), 'total balances');
  },

  supply(ctx: { store(id: number): ModuleStore }, denom: string = NATIVE_DENOM): DenomSupply {
    const b = bank.s(ctx).get(supplyKey(denom));
    if (!b) return { genesis: 0n, minted: 0n, burned: 0n };
    return decodeWith(b, 'denom supply', (r) => ({ genesis: r.u64('genesis'), minted: r.u64('minted'), burned: r.u64('burned') }));
  },

  /** Every denom with a supply record, in key order (bounded by `limit`). */
  denoms(ctx: { store(id: number): ModuleStore }, limit: number): string[] {
    return bank
      .s(ctx)
      .range(new Uint8Array([0x73]), limit)
      .map(([k]) => decodeWith(k.subarray(1), 'denom', (r) => r.string(MAX_DENOM_BYTES, 'denom')));
  },

  setSupply(ctx: ExecCtx, denom: string, s: DenomSupply): void {
    bank.s(ctx).set(supplyKey(denom), new Writer(24).u64(s.genesis).u64(s.minted).u64(s.burned).finish());
  },

  /** Set a balance, keeping the denom's running total; an account record is created on first sight, as a credit does. */
  setBalance(ctx: ExecCtx, addr: Uint8Array, denom: string, amount: bigint): void {
    if (amount < 0n || amount > U64_MAX) throw new QnexusError('TX_BAD_AMOUNT', 'balance out of range');
    const s = bank.s(ctx);
    const old = bank.balance(ctx, addr, denom);
    const total = bank.totalBalances(ctx, denom) - old + amount;
    if (total > U64_MAX) throw new QnexusError('TX_BAD_AMOUNT', `total ${denom} balances would overflow`);
    s.set(totalKey(denom), u64(total));
    if (amount === 0n) s.delete(balKey(addr, denom));
    else s.set(balKey(addr, denom), u64(amount));
    if (!bank.auth(ctx, addr)) bank.setAuth(ctx, addr, { nonce: 0n, publicKey: null });
  },

  canCredit(ctx: { store(id: number): ModuleStore }, addr: Uint8Array, amount: bigint, denom: string = NATIVE_DENOM): boolean {
    return bank.balance(ctx, addr, denom) + amount <= U64_MAX && bank.totalBalances(ctx, denom) + amount <= U64_MAX;
  },

  credit(ctx: ExecCtx, addr: Uint8Array, amount: bigint, denom: string = NATIVE_DENOM): void {
    if (!bank.canCredit(ctx, addr, amount, denom)) throw new QnexusError('TX_BAD_AMOUNT', 'recipient balance would overflow');
    bank.setBalance(ctx, addr, denom, bank.balance(ctx, addr, denom) + amount);
  },

  debit(ctx: ExecCtx, addr: Uint8Array, amount: bigint, denom: string = NATIVE_DENOM): void {
    const bal = bank.balance(ctx, addr, denom);
    if (bal < amount) throw new QnexusError('TX_INSUFFICIENT_FUNDS', `balance ${bal} is less than ${amount}`);
    bank.setBalance(ctx, addr, denom, bal - amount);
  },

  send(ctx: ExecCtx, from: Uint8Array, to: Uint8Array, amount: bigint, denom: string = NATIVE_DENOM): void {
    bank.debit(ctx, from, amount, denom);
    bank.credit(ctx, to, amount, denom);
  },

  /** Burn the native denom from the fee collector: the part of fees that is destroyed (the fee rule's). */
  burnFees(ctx: ExecCtx, amount: bigint): void {
    burnFrom(ctx, FEE_COLLECTOR, amount, NATIVE_DENOM);
  },

  /** Genesis: an initial balance, counted in the denom's genesis supply. */
  genesisCredit(ctx: ExecCtx, to: Uint8Array, amount: bigint, denom: string = NATIVE_DENOM): void {
    validDenom(denom);
    bank.credit(ctx, to, amount, denom);
    const s = bank.supply(ctx, denom);
    bank.setSupply(ctx, denom, { ...s, genesis: s.genesis + amount });
  },
};
