import { toHex } from '@qnexus/crypto';
import type { XferRecord } from '@qnexus/types';

/** How many transfer ids the node remembers for `GET /v1/xtransfers` (the endpoint's largest `limit`). */
export const RECENT_XFERS = 100;

/**
 * The height of the block in which this shard first recorded a transfer: its prepare (escrow on
 * the source, the credit's acceptance or refusal on the destination), or the decision for a
 * record that never prepared here.
 */
export function recordedHeight(rec: XferRecord): number {
  return rec.preparedHeight || rec.decidedHeight;
}

/**
 * The ids of the newest cross-shard transfer records of this shard (any kind: transfers, stake,
 * unstake, fees, releases), newest first by the height that recorded them. The state keeps every
 * record for good but has no order; this index is seeded once from the state at start and fed
 * with each committed block's changed records (`Engine.commitListeners`), so listing costs
 * nothing per request. The records themselves are read from the state when listed, so a
 * transfer shows its current phases.
 */
export class RecentXfers {
  /** id hex → [recorded height, arrival order]. */
  private readonly items = new Map<string, [number, number]>();
  private seq = 0;

  constructor(readonly max = RECENT_XFERS) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`max must be a positive integer, got ${max}`);
  }

  /** The newest `max` of `records` (e.g. `state.xferRecords()`): one sort at start. */
  static fromRecords(records: Iterable<XferRecord>, max = RECENT_XFERS): RecentXfers {
    const r = new RecentXfers(max);
    const all: [string, number][] = [];
    for (const rec of records) all.push([toHex(rec.info.id), recordedHeight(rec)]);
    all.sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (const [id, h] of all.slice(-max)) r.items.set(id, [h, r.seq++]);
    return r;
  }

  get size(): number {
    return this.items.size;
  }

  /** Records a block created or changed; ids already known keep their place. */
  note(records: Iterable<XferRecord>): void {
    for (const rec of records) {
      const id = toHex(rec.info.id);
      if (this.items.has(id)) continue;
      const h = recordedHeight(rec);
      if (this.items.size >= this.max) {
        const oldest = this.oldest();
        // A decision on a transfer older than everything kept does not push a newer one out.
        if (!oldest || h < oldest[1][0]) continue;
        this.items.delete(oldest[0]);
      }
      this.items.set(id, [h, this.seq++]);
    }
  }

  /** At most `limit` ids, newest first (by recorded height, then by arrival). */
  ids(limit: number = this.max): string[] {
    return [...this.items.entries()]
      .sort((a, b) => b[1][0] - a[1][0] || b[1][1] - a[1][1])
      .slice(0, Math.max(0, limit))
      .map(([id]) => id);
  }

  private oldest(): [string, [number, number]] | undefined {
    let o: [string, [number, number]] | undefined;
    for (const e of this.items) if (!o || e[1][0] < o[1][0] || (e[1][0] === o[1][0] && e[1][1] < o[1][1])) o = e;
    return o;
  }
}
