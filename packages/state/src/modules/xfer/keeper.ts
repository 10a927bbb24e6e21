import { HASH_BYTES, fromHex, toHex } from '@qnexus/crypto';
import { QnexusError, Writer, XFER_RETENTION_SLOTS, decodeWith, decodeXferRecord, encodeXferRecord, type XferRecord } from '@qnexus/types';
import { MODULE_IDS, type ExecCtx } from '../../ctx.js';
import { moduleKey, type ModuleStore } from '../../store.js';
import { NATIVE_DENOM } from '../bank/keeper.js';

/**
 * xfer: the 2PC engine's state. Keys under module id 2:
 *   'r' ‖ id(32)   → the transfer record (encodeXferRecord)
 *   'c' ‖ denom    → u64 escrow ‖ u64 exported ‖ u64 imported
 *   'q' ‖ u64be slot ‖ id(32) → empty: the expiry index, written at decision time; from `slot`
 *                    on, the record of `id` is pruned (or its tombstone dropped)
 *   'd' ‖ id(32)   → u8 outcome (1 commit, 2 abort): the tombstone of a pruned record, kept
 *                    until the transfer's deadline + the retention window
 *   's'            → u64 records pruned (ever) ‖ u64 tombstones held (for metrics)
 * escrow: debited from senders, held for undecided outgoing transfers;
 * exported: escrow released by a commit (the value now belongs to the other
 * side); imported: credited to recipients of incoming commits.
 */
const ID = MODULE_IDS.xfer;
const EMPTY = new Uint8Array(0);

/** The default window is the chain's XFER_RETENTION_SLOTS (@qnexus/types): the beacon compacts its log by the same one. */
export { XFER_RETENTION_SLOTS };
/**
 * Prune steps per block when StateParams `xferPrunesPerBlock` is absent: at least this many, and
 * twice the block weight, so pruning keeps up with full blocks of decisions (a decision costs at
 * most two steps: its record, later its tombstone); leftovers wait for the next block.
 */
export const XFER_PRUNES_PER_BLOCK = 256;

/** A pruned record's outcome, as its tombstone keeps it. */
export type XferOutcome = 'commit' | 'abort';

export interface XferPruneStats {
  /** Records pruned since genesis. */
  pruned: bigint;
  /** Tombstones in the state now. */
  tombstones: bigint;
}

export interface XferCounters {
  escrow: bigint;
  exported: bigint;
  imported: bigint;
}

type Reads = { store(id: number): ModuleStore };

const recKey = (id: Uint8Array) => new Writer(40).u8(0x72).fixed(id, HASH_BYTES).finish();
const ctrKey = (denom: string) => new Writer(72).u8(0x63).string(denom).finish();
const tombKey = (id: Uint8Array) => new Writer(40).u8(0x64).fixed(id, HASH_BYTES).finish();
const dueKey = (slot: number, id: Uint8Array) => new Writer(48).u8(0x71).u64(slot).fixed(id, HASH_BYTES).finish();
const DUE_PREFIX = new Uint8Array([0x71]);
const STATS_KEY = new Uint8Array([0x73]);
const OUTCOME_BYTE: Record<XferOutcome, number> = { commit: 1, abort: 2 };

const retention = (ctx: ExecCtx) => ctx.params.xferRetentionSlots ?? XFER_RETENTION_SLOTS;

/** Full state key of a transfer record: what its inclusion proof is for. */
export function xferRecordKey(id: Uint8Array): Uint8Array {
  return moduleKey(ID, recKey(id));
}

/** Full-key hex prefix of every record: the node reads the writes of a block under it. */
export const XFER_RECORD_PREFIX = toHex(moduleKey(ID, new Uint8Array([0x72])));

export const xfer = {
  id: ID,
  record(ctx: Reads, idHex: string): XferRecord | undefined {
    const b = ctx.store(ID).get(recKey(fromHex(idHex)));
    return b ? decodeXferRecord(b) : undefined;
  },

  setRecord(ctx: ExecCtx, r: XferRecord): void {
    ctx.store(ID).set(recKey(r.info.id), encodeXferRecord(r));
  },

  /** Records in id order, at most `limit` (the node's resend sweep, the explorer index). */
  records(ctx: Reads, limit: number): XferRecord[] {
    return ctx
      .store(ID)
      .range(new Uint8Array([0x72]), limit)
      .map(([, v]) => decodeXferRecord(v));
  },

  /** The outcome a pruned record left in its tombstone, while it is kept. */
  tombstone(ctx: Reads, idHex: string): XferOutcome | undefined {
    const b = ctx.store(ID).get(tombKey(fromHex(idHex)));
    if (!b) return undefined;
    return b[0] === OUTCOME_BYTE.commit ? 'commit' : 'abort';
  },

  /**
   * Refuse an entry for a transfer this shard holds no record of, when it has forgotten it: its
   * record was pruned (XS_PRUNED, from the tombstone) or its deadline is more than the retention
   * window behind this block (XS_EXPIRED: a tombstone is dropped then, and an honest beacon
   * stopped sending long before). Only for ids with no record: a record is always acted upon.
   */
  refuseForgotten(ctx: ExecCtx, x: { id: Uint8Array; deadlineSlot: number }): void {
    const id = toHex(x.id);
    const t = xfer.tombstone(ctx, id);
    if (t) throw new QnexusError('XS_PRUNED', `transfer ${id.slice(0, 16)} was settled here (${t}) and its record pruned; a replay`);
    if (ctx.block.slot > x.deadlineSlot + retention(ctx)) {
      throw new QnexusError('XS_EXPIRED', `transfer ${id.slice(0, 16)}: its deadline (slot ${x.deadlineSlot}) is more than ${retention(ctx)} slots past and nothing is recorded of it here`);
    }
  },

  /**
   * A decision was recorded for this transfer in this block (the source's escrow settled with it):
   * its record is pruned once it is a retention window old and past the deadline, when nothing
   * can need it again (no re-send, no report).
   */
  schedulePrune(ctx: ExecCtx, info: { id: Uint8Array; deadlineSlot: number }): void {
    const at = Math.max(ctx.block.slot + retention(ctx), info.deadlineSlot + 1);
    ctx.store(ID).set(dueKey(Math.min(at, Number.MAX_SAFE_INTEGER), info.id), EMPTY);
  },

  /**
   * End of block: take the due entries of the expiry index, oldest first, at most
   * `xferPrunesPerBlock`. A due record is deleted; if replays of it could still be in their
   * window (this slot ≤ deadline + window) a tombstone takes its place, itself due one slot past
   * that window. A due tombstone is deleted. Moves no value: only decided records are indexed,
   * and deciding already settled their escrow. Returns the steps taken.
   */
  prune(ctx: ExecCtx): number {
    const st = ctx.store(ID);
    const limit = ctx.params.xferPrunesPerBlock ?? Math.max(XFER_PRUNES_PER_BLOCK, 2 * ctx.params.maxBlockWeight);
    const now = ctx.block.slot;
    const dueSlot = (k: Uint8Array) => Number(new DataView(k.buffer, k.byteOffset, k.byteLength).getBigUint64(1));
    // Most blocks have nothing due: one entry read tells.
    const first = st.range(DUE_PREFIX, 1)[0];
    if (!first || dueSlot(first[0]) > now) return 0;
    const stats = xfer.pruneStats(ctx);
    let steps = 0;
    for (const [k] of st.range(DUE_PREFIX, limit)) {
      if (dueSlot(k) > now) break;
      const id = k.subarray(9, 9 + HASH_BYTES);
      st.delete(k);
      steps++;
      const rk = recKey(id);
      const raw = st.get(rk);
      if (raw) {
        const rec = decodeXferRecord(raw);
        if (rec.decision === 'none') continue; // never indexed undecided; kept whatever the index says
        st.delete(rk);
        stats.pruned++;
        const until = rec.info.deadlineSlot + retention(ctx);
        if (now <= until) {
          st.set(tombKey(id), new Uint8Array([OUTCOME_BYTE[rec.decision]]));
          st.set(dueKey(Math.min(until + 1, Number.MAX_SAFE_INTEGER), id), EMPTY);
          stats.tombstones++;
        }
      } else if (st.has(tombKey(id))) {
        st.delete(tombKey(id));
        stats.tombstones--;
      }
    }
    if (steps) st.set(STATS_KEY, new Writer(16).u64(stats.pruned).u64(stats.tombstones).finish());
    return steps;
  },

  pruneStats(ctx: Reads): XferPruneStats {
    const b = ctx.store(ID).get(STATS_KEY);
    if (!b) return { pruned: 0n, tombstones: 0n };
    return decodeWith(b, 'xfer prune stats', (r) => ({ pruned: r.u64('pruned'), tombstones: r.u64('tombstones') }));
  },

  counters(ctx: Reads, denom: string = NATIVE_DENOM): XferCounters {
    const b = ctx.store(ID).get(ctrKey(denom));
    if (!b) return { escrow: 0n, exported: 0n, imported: 0n };
    return decodeWith(b, 'xfer counters', (r) => ({ escrow: r.u64('escrow'), exported: r.u64('exported'), imported: r.u64('imported') }));
  },

  setCounters(ctx: ExecCtx, c: XferCounters, denom: string = NATIVE_DENOM): void {
    ctx.store(ID).set(ctrKey(denom), new Writer(24).u64(c.escrow).u64(c.exported).u64(c.imported).finish());
  },

  add(ctx: ExecCtx, field: keyof XferCounters, amount: bigint, denom: string = NATIVE_DENOM): void {
    if (amount === 0n) return;
    const c = xfer.counters(ctx, denom);
    xfer.setCounters(ctx, { ...c, [field]: c[field] + amount }, denom);
  },
};
