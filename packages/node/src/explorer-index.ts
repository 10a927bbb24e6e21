import { app } from '@qnexus/app';
import { toHex } from '@qnexus/crypto';
import type { TxEnvelope, XferRecord } from '@qnexus/types';

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
 * unstake, fees, releases), newest first by the height that recorded them. The state keeps a
 * record until its retention window after settlement (then prunes it) and has no order by height;
 * this index is seeded once from the state at start and fed
 * with each committed block's changed records (`Engine.commitListeners`), so listing costs
 * nothing per request. The records themselves are read from the state when listed, so a
 * transfer shows its current phases (a pruned one is skipped: a list may come back shorter than asked).
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

/** How many recent transactions the explorer keeps per account, and for how many accounts. */
export const ACCOUNT_TXS_PER_ACCOUNT = 25;
export const ACCOUNT_TXS_MAX_ACCOUNTS = 10_000;
/** How many of the newest blocks the explorer's charts and its start-up backfill cover. */
export const ACTIVITY_BLOCKS = 240;

/** One transaction as an account's history lists it. */
export interface AccountTxRef {
  hash: string;
  height: number;
  index: number;
  kind: string;
  /** The account's side of it: the signer/sender ('out'), the recipient ('in'), or both ('self'). */
  direction: 'out' | 'in' | 'self';
}

/** One finalized block as the charts need it. */
export interface BlockActivity {
  height: number;
  slot: number;
  txCount: number;
  /** Wall-clock ms at which this node finalized it; null for blocks seen only in the backfill (imported before this index existed). */
  finalizedAt: number | null;
}

/** Who a transaction touches: its sender and recipient (a beacon entry: the transfer's endpoints). */
export function txParties(env: TxEnvelope): { from: string; to: string | null } {
  return app.parties(env);
}

/**
 * What the explorer needs beyond the store's own indexes: the recent transactions of each
 * account (the store indexes transactions by hash only) and the newest blocks' sizes and
 * finality times for the charts. Both are bounded: at most ACCOUNT_TXS_PER_ACCOUNT entries for
 * each of at most ACCOUNT_TXS_MAX_ACCOUNTS accounts (the least recently active account is
 * forgotten first), and ACTIVITY_BLOCKS blocks. Fed by commits; `backfill` seeds it once from
 * the store's newest blocks. A history is therefore "recent", never complete: the page says so.
 */
export class ExplorerIndex {
  /** address → its newest transactions, oldest first; the Map's order is least-recently-active first. */
  private readonly accounts = new Map<string, AccountTxRef[]>();
  private readonly blocks: BlockActivity[] = [];
  /** Heights already noted (commits can race the backfill). */
  private newest = -1;
  private oldest = Infinity;

  constructor(
    readonly perAccount = ACCOUNT_TXS_PER_ACCOUNT,
    readonly maxAccounts = ACCOUNT_TXS_MAX_ACCOUNTS,
    readonly maxBlocks = ACTIVITY_BLOCKS,
  ) {
    for (const [k, v] of Object.entries({ perAccount, maxAccounts, maxBlocks })) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`${k} must be a positive integer, got ${v}`);
    }
  }

  get accountCount(): number {
    return this.accounts.size;
  }

  /** A block finalized now (a commit): newer than anything noted. */
  noteBlock(height: number, slot: number, envs: readonly TxEnvelope[], finalizedAt: number | null = Date.now()): void {
    if (height <= this.newest) return;
    this.newest = height;
    if (this.oldest === Infinity) this.oldest = height;
    this.blocks.push({ height, slot, txCount: envs.length, finalizedAt });
    if (this.blocks.length > this.maxBlocks) this.blocks.splice(0, this.blocks.length - this.maxBlocks);
    envs.forEach((env, index) => {
      const { from, to } = txParties(env);
      const kind = app.kindName(env);
      if (to === from) this.add(from, { hash: env.hashHex, height, index, kind, direction: 'self' });
      else {
        this.add(from, { hash: env.hashHex, height, index, kind, direction: 'out' });
        if (to !== null) this.add(to, { hash: env.hashHex, height, index, kind, direction: 'in' });
      }
    });
  }

  /**
   * Seeds from the store: blocks older than anything noted, newest first, at most `maxBlocks`
   * (bounded work, once at start). What it finds goes behind what commits already noted.
   */
  async backfill(headHeight: number, read: (height: number) => Promise<{ slot: number; envs: readonly TxEnvelope[] } | undefined>): Promise<void> {
    const top = Math.min(headHeight, this.oldest === Infinity ? headHeight : this.oldest - 1);
    const older: BlockActivity[] = [];
    const found = new Map<string, AccountTxRef[]>();
    const push = (a: string, r: AccountTxRef) => {
      let l = found.get(a);
      if (!l) found.set(a, (l = []));
      if (l.length < this.perAccount) l.push(r);
    };
    for (let h = top; h >= 1 && h > headHeight - this.maxBlocks; h--) {
      const b = await read(h);
      if (!b) break;
      // A commit noted while this ran (the listener is registered before the seed starts) is not counted twice.
      if (h >= this.oldest) continue;
      older.push({ height: h, slot: b.slot, txCount: b.envs.length, finalizedAt: null });
      // Newest first: last transaction of the block first.
      for (let index = b.envs.length - 1; index >= 0; index--) {
        const env = b.envs[index]!;
        const { from, to } = txParties(env);
        const kind = app.kindName(env);
        if (to === from) push(from, { hash: env.hashHex, height: h, index, kind, direction: 'self' });
        else {
          push(from, { hash: env.hashHex, height: h, index, kind, direction: 'out' });
          if (to !== null) push(to, { hash: env.hashHex, height: h, index, kind, direction: 'in' });
        }
      }
    }
    if (!older.length) return;
    this.blocks.unshift(...older.reverse());
    if (this.blocks.length > this.maxBlocks) this.blocks.splice(0, this.blocks.length - this.maxBlocks);
    this.oldest = older[0]!.height;
    if (this.newest < 0) this.newest = older[older.length - 1]!.height;
    // Accounts seen only in the backfill are the least recently active: first in eviction order.
    const merged = new Map<string, AccountTxRef[]>();
    for (const [a, l] of found) if (!this.accounts.has(a)) merged.set(a, l.reverse());
    for (const [a, l] of this.accounts) {
      const more = found.get(a);
      merged.set(a, more ? [...more.reverse(), ...l].slice(-this.perAccount) : l);
    }
    const drop = merged.size - this.maxAccounts;
    this.accounts.clear();
    let i = 0;
    for (const [a, l] of merged) if (i++ >= drop) this.accounts.set(a, l);
  }

  /** The account's newest transactions, newest first, at most `limit`. */
  accountTxs(address: string, limit: number = this.perAccount): AccountTxRef[] {
    if (limit < 1) return [];
    return (this.accounts.get(address) ?? []).slice(-limit).reverse();
  }

  /** The newest `limit` blocks, oldest first. */
  activity(limit: number = this.maxBlocks): BlockActivity[] {
    return this.blocks.slice(-Math.max(1, limit));
  }

  private add(address: string, ref: AccountTxRef): void {
    let l = this.accounts.get(address);
    if (l) this.accounts.delete(address);
    else {
      l = [];
      if (this.accounts.size >= this.maxAccounts) this.accounts.delete(this.accounts.keys().next().value!);
    }
    this.accounts.set(address, l);
    l.push(ref);
    if (l.length > this.perAccount) l.splice(0, l.length - this.perAccount);
  }
}
