import { ADDRESS_BYTES, toHex } from '@qnexus/crypto';
import { Writer, decodeWith } from '@qnexus/types';
import { MODULE_IDS, bank, moduleAccount, type ExecCtx, type ModuleStore } from '@qnexus/state';

/**
 * The staking fee roll's state. Keys under module id 3:
 *   'p' ‖ address → u64 tips the proposer earned and the shard has not yet sent to the beacon
 *   'e'           → u64 epoch in which the current pending tips accrued
 * The tips themselves sit in the module account FEE_ACCOUNT, so Σ balances covers them.
 */
const ID = MODULE_IDS.staking;
export const FEE_ACCOUNT = moduleAccount('staking/fees');
/** Proposers with pending tips at one time are bounded by the validator set; this bounds the roll's loop. */
export const MAX_PENDING_PROPOSERS = 65_536;

type Reads = { store(id: number): ModuleStore };

const pendKey = (addr: Uint8Array) => new Writer(24).u8(0x70).fixed(addr, ADDRESS_BYTES).finish();
/**
 * The same key as module-relative hex, from the address hex every caller already has (a
 * transaction's tip updates it, so it is on the per-transaction path: no Writer, no hex round trip).
 */
const pendKeyH = (addrHex: string): string => {
  if (addrHex.length !== 2 * ADDRESS_BYTES) throw new RangeError(`address hex of ${addrHex.length} digits`);
  return `70${addrHex}`;
};
const EPOCH_KEY = new Uint8Array([0x65]);
// Exactly 8 bytes is the one valid encoding; anything else goes through the Reader for its MALFORMED error.
const readU64 = (b: Uint8Array | undefined, what: string): bigint =>
  b === undefined ? 0n : b.length === 8 ? new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0) : decodeWith(b, what, (r) => r.u64(what));

export const fees = {
  /** `addrHex`: lowercase hex, as toHex writes it. */
  pending(ctx: Reads, addrHex: string): bigint {
    return readU64(ctx.store(ID).getH(pendKeyH(addrHex)), 'pending fees');
  },

  /** Every proposer with pending tips, by address hex. */
  allPending(ctx: Reads): [string, bigint][] {
    return ctx
      .store(ID)
      .range(new Uint8Array([0x70]), MAX_PENDING_PROPOSERS)
      .map(([k, v]) => [toHex(k.subarray(1)), readU64(v, 'pending fees')]);
  },

  setPending(ctx: ExecCtx, addrHex: string, amount: bigint): void {
    const k = pendKeyH(addrHex);
    if (amount === 0n) ctx.store(ID).deleteH(k);
    else ctx.store(ID).setH(k, new Writer(8).u64(amount).finish());
  },

  epoch(ctx: Reads): number {
    return Number(readU64(ctx.store(ID).get(EPOCH_KEY), 'fee epoch'));
  },

  setEpoch(ctx: ExecCtx, epoch: number): void {
    ctx.store(ID).set(EPOCH_KEY, new Writer(8).u64(epoch).finish());
  },

  /** The keys (module-relative) `pending` and `epoch` read for one proposer: what a proof of its pending tips covers. */
  proofKeys(addr: Uint8Array): Uint8Array[] {
    return [pendKey(addr), EPOCH_KEY];
  },

  /** Tips held for proposers (the balance of the fee account). */
  held(ctx: Reads): bigint {
    return bank.balance(ctx, FEE_ACCOUNT);
  },
};
