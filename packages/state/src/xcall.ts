import { ADDRESS_BYTES, HASH_BYTES, concatBytes, homeShard, sha256, utf8 } from '@qnexus/crypto';
import { QnexusError, Writer, decodeWith, type XferInfo } from '@qnexus/types';
import type { ExecCtx } from './ctx.js';
import type { XferOpDef } from './module.js';
import { MAX_DENOM_BYTES, bank, moduleAccount } from './modules/bank/keeper.js';
import type { XferKeeper } from './modules/xfer/index.js';
import type { ModuleStore } from './store.js';

/**
 * Payouts: value a module owes to an account, paid out of the module account. An account of this
 * shard is credited at once; an account of another shard gets a beacon-coordinated transfer (this
 * module's `payout` op, shard to shard) whose id is derived from (xcall id, leg), so the same leg is
 * never paid twice (the engine refuses a known id). If the destination refuses (a balance that would
 * overflow, the deadline passed while the beacon was away), the abort returns the amount to the
 * module account and it is owed again: re-sent, under a new id, by `retry` at the end of a later
 * block, never lost. Until then the module's books must count it (`owed`): module account balance
 * = what the module's ledger holds + owed.
 *
 * State, under the module's own store (prefixes it must leave to this helper):
 *   0xf0 ‖ id(32)     → to(20) ‖ u64 amount ‖ string denom: a payout to send again
 *   0xf1 ‖ string denom → u64 Σ amounts owed in that denom
 */
export interface Payouts {
  /** The op definition to list in the module's `xfers` (its number is the one given to `payouts`). */
  op: XferOpDef;
  /**
   * Pay `amount` of `denom` from the module account to `to`, for leg `leg` (0..255) of the xcall
   * (or message) `xcallId`: a credit on this shard, a transfer to another one.
   */
  pay(ctx: ExecCtx, xcallId: Uint8Array, leg: number, to: Uint8Array, amount: bigint, denom: string): void;
  /** Re-send at most `limit` payouts whose transfer was aborted (call it in `endBlock`). */
  retry(ctx: ExecCtx, limit: number): void;
  /** Σ owed in `denom` (aborted payouts not yet re-sent). */
  owed(ctx: { store(id: number): ModuleStore }, denom: string): bigint;
}

const RETRY = 0xf0;
const OWED = 0xf1;

/** The id of a payout leg: bound to the module, the xcall and the leg, so replays are the same id. */
export function payoutId(moduleId: number, xcallId: Uint8Array, leg: number): Uint8Array {
  return sha256(concatBytes(utf8('qnexus/payout'), new Uint8Array([moduleId, leg & 0xff]), xcallId));
}

export function payouts(x: XferKeeper, moduleId: number, op: number, account: string): Payouts {
  const from = moduleAccount(account);
  const owedKey = (denom: string) => new Writer(72).u8(OWED).string(denom).finish();
  const retryKey = (id: Uint8Array) => new Writer(40).u8(RETRY).fixed(id, HASH_BYTES).finish();
  const owed = (s: ModuleStore, denom: string) => {
    const v = s.get(owedKey(denom));
    return v ? decodeWith(v, 'owed', (r) => r.u64('owed')) : 0n;
  };
  const setOwed = (s: ModuleStore, denom: string, v: bigint) => {
    if (v < 0n) throw new QnexusError('INVARIANT_BROKEN', `owed ${denom} would be negative`);
    if (v === 0n) s.delete(owedKey(denom));
    else s.set(owedKey(denom), new Writer(8).u64(v).finish());
  };
  const send = (ctx: ExecCtx, id: Uint8Array, to: Uint8Array, amount: bigint, denom: string) => {
    const dst = homeShard(to, ctx.params.shardCount);
    if (dst === ctx.params.shard) {
      bank.send(ctx, from, to, amount, denom);
      return;
    }
    const info: XferInfo = {
      module: moduleId,
      op,
      denom,
      id,
      srcShard: ctx.params.shard,
      dstShard: dst,
      from,
      to,
      amount,
      deadlineSlot: ctx.block.slot + ctx.params.xferTimeoutSlots,
      payload: new Uint8Array(0),
    };
    x.open(ctx, info, from);
  };
  return {
    op: {
      op,
      name: `${account}-payout`,
      route: 'shard-shard',
      // An abort gave the amount back to the module account: owe it again, under a fresh id.
      settleSource(ctx, info, commit) {
        if (commit) return;
        const s = ctx.store(moduleId);
        const next = sha256(concatBytes(utf8('qnexus/payout-retry'), info.id));
        s.set(retryKey(next), new Writer(96).fixed(info.to, ADDRESS_BYTES).u64(info.amount).string(info.denom).finish());
        setOwed(s, info.denom, owed(s, info.denom) + info.amount);
      },
    },
    pay(ctx, xcallId, leg, to, amount, denom) {
      if (amount === 0n) return;
      send(ctx, payoutId(moduleId, xcallId, leg), to, amount, denom);
    },
    retry(ctx, limit) {
      const s = ctx.store(moduleId);
      for (const [k, v] of s.range(new Uint8Array([RETRY]), limit)) {
        const p = decodeWith(v, 'payout retry', (r) => ({ to: r.fixed(ADDRESS_BYTES, 'to'), amount: r.u64('amount'), denom: r.string(MAX_DENOM_BYTES, 'denom') }));
        s.delete(k);
        setOwed(s, p.denom, owed(s, p.denom) - p.amount);
        send(ctx, k.subarray(1), p.to, p.amount, p.denom);
      }
    },
    owed: (ctx, denom) => owed(ctx.store(moduleId), denom),
  };
}
