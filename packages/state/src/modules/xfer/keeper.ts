import { HASH_BYTES, fromHex, toHex } from '@qnexus/crypto';
import { Writer, decodeWith, decodeXferRecord, encodeXferRecord, type XferRecord } from '@qnexus/types';
import { MODULE_IDS, type ExecCtx } from '../../ctx.js';
import { moduleKey, type ModuleStore } from '../../store.js';
import { NATIVE_DENOM } from '../bank/keeper.js';

/**
 * xfer: the 2PC engine's state. Keys under module id 2:
 *   'r' ‖ id(32)   → the transfer record (encodeXferRecord)
 *   'c' ‖ denom    → u64 escrow ‖ u64 exported ‖ u64 imported
 * escrow: debited from senders, held for undecided outgoing transfers;
 * exported: escrow released by a commit (the value now belongs to the other
 * side); imported: credited to recipients of incoming commits.
 */
const ID = MODULE_IDS.xfer;

export interface XferCounters {
  escrow: bigint;
  exported: bigint;
  imported: bigint;
}

type Reads = { store(id: number): ModuleStore };

const recKey = (id: Uint8Array) => new Writer(40).u8(0x72).fixed(id, HASH_BYTES).finish();
const ctrKey = (denom: string) => new Writer(72).u8(0x63).string(denom).finish();

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
