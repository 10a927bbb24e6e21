import { toHex } from '@qnexus/crypto';
import { app, stakingOpName } from '@qnexus/app';
import { BEACON_SHARD, XFER_RETENTION_SLOTS, xferInfoEqual, type XferInfo, type XferRecord } from '@qnexus/types';

/**
 * The two-phase-commit coordinator of cross-shard transfers, as a pure state
 * machine: verified shard records and slot ticks in, actions out. It has no
 * clock, I/O or randomness of its own; signing the beacon's system entries is
 * delegated to an injected `SystemTxSigner`, called at most once per
 * (transfer, phase) so every re-send carries the same bytes.
 *
 * Driver contract: perform the actions in order. A `persist` must be durable
 * before any later `send` goes out: the actions of one event put every
 * `persist` ahead of every `send`, which is what makes "log before send" hold
 * for decisions (and for prepare requests, so they too are re-sent unchanged).
 *
 * The deadline rule (docs/ARCHITECTURE.md "The deadline rule"): the outcome
 * depends only on finalized shard facts, never on when the beacon processes
 * them. A destination prepares only in a block whose slot is at most the
 * transfer's `deadlineSlot` and refuses (`XS_DEADLINE_PASSED`) in any later
 * block, so its finalized answer alone decides: accepted → COMMIT, refused →
 * ABORT. The beacon never presumes an abort from its own clock: an unanswered
 * prepare request is re-sent, after the deadline too, until the destination
 * records an answer (which by then can only be a refusal). A beacon that
 * lags, crashes or restarts therefore reaches the same decision as one that
 * never did.
 *
 * The beacon itself is a participant too (shard number BEACON_SHARD, see
 * docs/staking.md): for records whose destination is the beacon (stake,
 * unstake, fees) it decides as soon as the source's record is proven, asking
 * the injected `BeaconParticipant` for its verdict, and its own side counts as
 * applied with the decision; for releases it is the source (prepared and, with
 * the decision, applied). The participant applies the effect of every logged
 * decision synchronously, so the driver persists the registry change in the
 * same batch as the log entry. Nothing is ever sent to BEACON_SHARD.
 *
 * Compaction (the log stays bounded): an entry decided and applied on both
 * sides is compacted `retentionSlots` after the beacon learned that (and past
 * its deadline): its signed entries are dropped and it stays as a tombstone
 * (the transfer and its outcome, a few hundred bytes) until its deadline is
 * `retentionSlots` behind, then it is forgotten. Meanwhile a report of that id
 * is refused (XS_PRUNED); after that, a report of any id the log does not hold
 * whose deadline is that far behind is refused (XS_EXPIRED), so a replayed
 * old report can never open a transfer again. The shards prune their records
 * by the same window (the xfer module), so neither side acts on the id again.
 */

export type Outcome = 'commit' | 'abort';

/** `compacted`: the entry became a tombstone; `forgotten`: the tombstone was dropped. */
export type Phase = 'source-prepared' | 'destination-prepared' | 'destination-refused' | 'decided' | 'source-applied' | 'destination-applied' | 'compacted' | 'forgotten';

export interface XferEntry {
  /** Transfer id (the source xtransfer's tx id), hex. */
  id: string;
  /** Order in which the beacon learned of the transfer (for "most recent" listings). */
  seq: number;
  info: XferInfo;
  /** The source shard escrowed the amount in the block at this height. */
  sourcePrepared: { height: number } | null;
  /** The destination recorded its answer to the prepare request at this height. */
  destination: { height: number; accepted: boolean; reason: string } | null;
  /** The logged outcome. Never changes once set. */
  decision: { outcome: Outcome; slot: number; reason: string } | null;
  sourceApplied: { height: number; outcome: Outcome } | null;
  destinationApplied: { height: number; outcome: Outcome } | null;
  /** Signed xprepare system entry (wire bytes), created once. */
  prepareTx: Uint8Array | null;
  /** Signed xdecision system entry (wire bytes), created once, when the decision is logged. */
  decisionTx: Uint8Array | null;
  /**
   * Slot of the last send, per message; in memory only. After a restart they
   * start at -Infinity, so the first tick re-sends everything still pending.
   */
  sent: { prepare: number; source: number; destination: number };
  /**
   * Set once compacted: the entry is a tombstone (no signed entries, no applied heights) that
   * refuses reports of its id until slot `until`; `dropped` once forgotten (the store deletes it).
   */
  compacted?: { until: number; dropped: boolean };
}

export type CoordinatorAction =
  | { type: 'persist'; entry: XferEntry }
  | { type: 'send'; shard: number; raw: Uint8Array; id: string; what: 'prepare' | 'decision' }
  | { type: 'phase'; entry: XferEntry; phase: Phase }
  /** Input that an honest shard never produces, or that disagrees with the log; nothing changed. */
  | { type: 'anomaly'; id: string; message: string }
  /** A record of a transfer the log has compacted (XS_PRUNED) or whose deadline is a window behind (XS_EXPIRED): a replay; nothing changed. */
  | { type: 'refused'; id: string; code: 'XS_PRUNED' | 'XS_EXPIRED'; message: string };

/** Signs the beacon's system entries (xprepare, xdecision); returns the wire encoding. */
export interface SystemTxSigner {
  prepare(info: XferInfo): Uint8Array;
  decision(info: XferInfo, commit: boolean): Uint8Array;
}

/**
 * The beacon's own side of a module's cross-shard ops (chain-wide state kept
 * at the beacon: the staking registry for the staking module's stake,
 * unstake, fees and release). One per module whose ops have the beacon as a side.
 */
export interface BeaconParticipant {
  /** As destination: null to accept a proven source record, or the abort reason. Must not change state. */
  verdict(info: XferInfo): string | null;
  /** A decision was logged for a transfer with the beacon on one side: apply its effect there. */
  applied(info: XferInfo, outcome: Outcome): void;
}

export interface CoordinatorOptions {
  signer: SystemTxSigner;
  /** By module id: the beacon's side of that module's ops to or from BEACON_SHARD; an op of a module without one is an anomaly. */
  participants?: ReadonlyMap<number, BeaconParticipant>;
  /** Slots between re-sends of an unanswered prepare request or an unapplied decision (default 3). */
  resendSlots?: number;
  /** The retention window (default XFER_RETENTION_SLOTS, the shards' own): see "Compaction" above. */
  retentionSlots?: number;
  /** Most compaction steps (compact an entry, forget a tombstone) per tick (default 256); leftovers wait for the next tick. */
  compactPerTick?: number;
}

export interface XferCounts {
  total: number;
  undecided: number;
  committed: number;
  aborted: number;
  /** Decided and applied on both shards. */
  applied: number;
}

/** The destination's refusal of a prepare recorded in a block past the deadline (state `refusal`). */
export const DEADLINE_REASON = 'XS_DEADLINE_PASSED';

/** Collects what one event changed, then orders it: phases, persists, sends. */
class Step {
  readonly phases: CoordinatorAction[] = [];
  readonly dirty = new Map<string, XferEntry>();
  readonly sends: CoordinatorAction[] = [];
  readonly anomalies: CoordinatorAction[] = [];

  actions(): CoordinatorAction[] {
    const persists: CoordinatorAction[] = [...this.dirty.values()].map((entry) => ({ type: 'persist', entry }));
    return [...this.anomalies, ...this.phases, ...persists, ...this.sends];
  }
}

/** A min-heap of (slot, id): when each done entry is compacted and each tombstone forgotten. */
class DueHeap {
  private readonly h: [number, string][] = [];
  peek(): [number, string] | undefined {
    return this.h[0];
  }
  push(slot: number, id: string): void {
    const h = this.h;
    h.push([slot, id]);
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (h[p]![0] <= h[i]![0]) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }
  pop(): [number, string] | undefined {
    const h = this.h;
    const top = h[0];
    const last = h.pop();
    if (h.length && last) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l]![0] < h[m]![0]) m = l;
        if (r < h.length && h[r]![0] < h[m]![0]) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }
}

export class Coordinator {
  private readonly entries = new Map<string, XferEntry>();
  /** Compacted entries (tombstones), until forgotten. */
  private readonly tombs = new Map<string, XferEntry>();
  /** Done entries to compact and tombstones to forget, by slot. */
  private readonly due = new DueHeap();
  /** Ids in arrival order (seq ascending); compacted ones are skipped and swept out now and then. */
  private order: string[] = [];
  private orderGone = 0;
  /** Ids not yet applied on both sides: what a tick has to look at. */
  private readonly active = new Set<string>();
  private nextSeq = 0;
  private readonly signer: SystemTxSigner;
  private readonly participants: ReadonlyMap<number, BeaconParticipant>;
  readonly resendSlots: number;
  readonly retentionSlots: number;
  readonly compactPerTick: number;
  /** Entries compacted, tombstones forgotten and replayed records refused, since start (metrics). */
  readonly stats = { compacted: 0, forgotten: 0, refused: 0 };

  /** `restored`: the durable log (entries and tombstones), as loaded at start. */
  constructor(opts: CoordinatorOptions, restored: Iterable<XferEntry> = []) {
    this.signer = opts.signer;
    this.participants = opts.participants ?? new Map();
    this.resendSlots = opts.resendSlots ?? 3;
    this.retentionSlots = opts.retentionSlots ?? XFER_RETENTION_SLOTS;
    this.compactPerTick = opts.compactPerTick ?? 256;
    if (!Number.isSafeInteger(this.resendSlots) || this.resendSlots < 1) throw new RangeError('resendSlots must be a positive integer');
    if (!Number.isSafeInteger(this.retentionSlots) || this.retentionSlots < 1) throw new RangeError('retentionSlots must be a positive integer');
    if (!Number.isSafeInteger(this.compactPerTick) || this.compactPerTick < 1) throw new RangeError('compactPerTick must be a positive integer');
    const list = [...restored].sort((a, b) => a.seq - b.seq);
    for (const e of list) {
      e.sent = { prepare: -Infinity, source: -Infinity, destination: -Infinity };
      this.nextSeq = Math.max(this.nextSeq, e.seq + 1);
      if (e.compacted) {
        if (e.compacted.dropped) continue;
        this.tombs.set(e.id, e);
        this.due.push(e.compacted.until, e.id);
        continue;
      }
      this.entries.set(e.id, e);
      this.order.push(e.id);
      if (!isDone(e)) this.active.add(e.id);
      // When it became done is not logged: its decision's slot is the earliest it can have been.
      else this.due.push(this.compactAt(e, e.decision!.slot), e.id);
    }
  }

  // ---------------------------------------------------------------- queries

  /** The log entry of an id, or its tombstone (no signed entries) while it is compacted. */
  get(idHex: string): XferEntry | undefined {
    return this.entries.get(idHex) ?? this.tombs.get(idHex);
  }

  /** The compacted entry (tombstone: the transfer and its decision) of an id, until it is forgotten. */
  tombstone(idHex: string): XferEntry | undefined {
    return this.tombs.get(idHex);
  }

  /** Tombstones held now. */
  get tombstones(): number {
    return this.tombs.size;
  }

  /** Most recent first (entries still in the log; compacted ones are not listed). */
  recent(limit: number): XferEntry[] {
    const out: XferEntry[] = [];
    for (let i = this.order.length - 1; i >= 0 && out.length < limit; i--) {
      const e = this.entries.get(this.order[i]!);
      if (e) out.push(e);
    }
    return out;
  }

  counts(): XferCounts {
    const c: XferCounts = { total: this.entries.size, undecided: 0, committed: 0, aborted: 0, applied: 0 };
    for (const e of this.entries.values()) {
      if (!e.decision) c.undecided++;
      else if (e.decision.outcome === 'commit') c.committed++;
      else c.aborted++;
      if (isDone(e)) c.applied++;
    }
    return c;
  }

  get undecided(): number {
    let n = 0;
    for (const id of this.active) if (!this.entries.get(id)!.decision) n++;
    return n;
  }

  // ---------------------------------------------------------------- events

  /**
   * A transfer record proven to be in the state of `shard` at `height` (the
   * certified block the report was about), received during `slot`.
   * Idempotent: a record that tells nothing new yields no action.
   */
  onRecord(rec: XferRecord, shard: number, height: number, slot: number): CoordinatorAction[] {
    const step = new Step();
    const id = toHex(rec.info.id);
    const anomaly = (message: string): CoordinatorAction[] => [{ type: 'anomaly', id, message }];
    const own = rec.role === 'source' ? rec.info.srcShard : rec.info.dstShard;
    if (own !== shard) return anomaly(`${rec.role} record reported by shard ${shard}, but the transfer's ${rec.role} shard is ${own}`);
    let e = this.entries.get(id);
    if (e && !xferInfoEqual(e.info, rec.info)) return anomaly(`record of shard ${shard} disagrees with the logged transfer`);
    if (!e) {
      // A transfer compacted here, or one so old it would have been: nothing may reopen it.
      const t = this.tombs.get(id);
      if (t) return this.refuse(id, 'XS_PRUNED', `transfer was settled (${t.decision?.outcome}) and compacted; a replayed record`);
      if (slot > rec.info.deadlineSlot + this.retentionSlots) {
        return this.refuse(id, 'XS_EXPIRED', `no log entry and the deadline (slot ${rec.info.deadlineSlot}) is more than ${this.retentionSlots} slots past`);
      }
    }

    const toBeacon = rec.info.dstShard === BEACON_SHARD;
    const participant = this.participants.get(rec.info.module);
    if ((toBeacon || rec.info.srcShard === BEACON_SHARD) && !participant) return anomaly(`a transfer with the beacon as participant, but module ${rec.info.module} has no participant here`);
    // The op's route (its module's definition) must match the participants the record names.
    const op = app.xferOp(rec.info.module, rec.info.op);
    if (!op || toBeacon !== (op.route === 'shard-beacon') || (rec.info.srcShard === BEACON_SHARD) !== (op.route === 'beacon-shard')) {
      return anomaly(`a ${app.xferKindName(rec.info)} transfer from shard ${rec.info.srcShard} to shard ${rec.info.dstShard}`);
    }

    if (!e) {
      // Transfers enter the log only through their source escrow: the beacon
      // asks a destination to prepare only after that, so any other first
      // record is not from an honest shard (or the log was lost). Releases
      // enter through `startRelease`.
      if (rec.role !== 'source' || rec.prepare !== 'accepted') return anomaly(`${rec.role} record for a transfer with no known source prepare; ignored`);
      e = this.create(rec.info, rec.preparedHeight || height);
      this.phase(step, e, 'source-prepared');
      if (toBeacon && rec.decision === 'none') {
        // The beacon is the destination: it answers at once (no deadline wait, nobody else has to answer).
        const reason = participant!.verdict(e.info);
        e.destination = { height: 0, accepted: reason === null, reason: reason ?? '' };
        this.phase(step, e, reason === null ? 'destination-prepared' : 'destination-refused');
        this.decide(step, e, reason === null ? 'commit' : 'abort', slot, reason ?? '');
      } else if (rec.decision === 'none') {
        // Past the deadline too: the destination's refusal, not our clock, closes the transfer.
        this.sendPrepare(step, e, slot);
      }
    }

    if (rec.role === 'destination' && rec.prepare !== 'none' && !e.destination) {
      const accepted = rec.prepare === 'accepted';
      e.destination = { height: rec.preparedHeight || height, accepted, reason: rec.reason };
      this.phase(step, e, accepted ? 'destination-prepared' : 'destination-refused');
      if (!e.decision) {
        if (accepted) this.decide(step, e, 'commit', slot, '');
        else this.decide(step, e, 'abort', slot, rec.reason || 'refused');
      }
    }

    if (rec.decision !== 'none') {
      const key = rec.role === 'source' ? 'sourceApplied' : 'destinationApplied';
      if (!e[key]) {
        e[key] = { height: rec.decidedHeight || height, outcome: rec.decision };
        this.phase(step, e, rec.role === 'source' ? 'source-applied' : 'destination-applied');
        if (!e.decision) {
          // Shards apply only beacon-signed decisions, so this one was taken
          // before and its log entry is gone: adopt it rather than contradict it.
          step.anomalies.push({ type: 'anomaly', id, message: `shard ${shard} applied ${rec.decision} before any logged decision; adopting it` });
          this.decide(step, e, rec.decision, slot, `adopted from shard ${shard}`, true);
        } else if (e.decision.outcome !== rec.decision) {
          step.anomalies.push({ type: 'anomaly', id, message: `shard ${shard} applied ${rec.decision} but the logged decision is ${e.decision.outcome}` });
        }
        if (isDone(e)) this.done(e, slot);
      }
    }
    return step.actions();
  }

  /**
   * Slot tick: re-send of unanswered prepare requests (before and after the
   * deadline: see the deadline rule above) and of decisions a side has not
   * applied yet, every `resendSlots` slots. Decides nothing.
   */
  tick(slot: number): CoordinatorAction[] {
    const step = new Step();
    this.compact(step, slot);
    for (const id of this.active) {
      const e = this.entries.get(id)!;
      if (!e.decision) {
        if (slot - e.sent.prepare >= this.resendSlots) this.sendPrepare(step, e, slot);
        continue;
      }
      for (const side of ['source', 'destination'] as const) {
        if (!appliedOn(e, side) && slot - e.sent[side] >= this.resendSlots) this.sendDecision(step, e, side, slot);
      }
    }
    return step.actions();
  }

  /**
   * A release created by the registry (the beacon is the source: prepared,
   * and applied once decided): log it and ask the home shard to prepare.
   */
  startRelease(info: XferInfo, slot: number): CoordinatorAction[] {
    const step = new Step();
    const id = toHex(info.id);
    if (stakingOpName(info) !== 'release' || info.srcShard !== BEACON_SHARD || info.dstShard === BEACON_SHARD) return [{ type: 'anomaly', id, message: 'not a release' }];
    if (this.entries.has(id) || this.tombs.has(id)) return [{ type: 'anomaly', id, message: 'release already logged' }];
    const e = this.create(info, 0);
    this.phase(step, e, 'source-prepared');
    this.sendPrepare(step, e, slot);
    return step.actions();
  }

  // ---------------------------------------------------------------- internals

  private create(info: XferInfo, height: number): XferEntry {
    const e: XferEntry = {
      id: toHex(info.id),
      seq: this.nextSeq++,
      info,
      sourcePrepared: { height },
      destination: null,
      decision: null,
      sourceApplied: null,
      destinationApplied: null,
      prepareTx: null,
      decisionTx: null,
      sent: { prepare: -Infinity, source: -Infinity, destination: -Infinity },
    };
    this.entries.set(e.id, e);
    this.order.push(e.id);
    this.active.add(e.id);
    return e;
  }

  private phase(step: Step, e: XferEntry, phase: Phase): void {
    step.phases.push({ type: 'phase', entry: e, phase });
    step.dirty.set(e.id, e);
  }

  private sendPrepare(step: Step, e: XferEntry, slot: number): void {
    if (!e.prepareTx) {
      e.prepareTx = this.signer.prepare(e.info);
      step.dirty.set(e.id, e);
    }
    e.sent.prepare = slot;
    step.sends.push({ type: 'send', shard: e.info.dstShard, raw: e.prepareTx, id: e.id, what: 'prepare' });
  }

  /** Log the outcome (once) and send it to every side that has not applied one. */
  private decide(step: Step, e: XferEntry, outcome: Outcome, slot: number, reason: string, adopted = false): void {
    if (e.decision) return;
    if (outcome === 'commit' && !adopted && !(e.sourcePrepared && e.destination?.accepted)) {
      throw new Error(`coordinator bug: commit of ${e.id} without both prepares`);
    }
    e.decision = { outcome, slot, reason };
    e.decisionTx = this.signer.decision(e.info, outcome === 'commit');
    this.phase(step, e, 'decided');
    // The beacon's own side applies with the logged decision (same persist as the entry).
    for (const side of ['source', 'destination'] as const) {
      if ((side === 'source' ? e.info.srcShard : e.info.dstShard) !== BEACON_SHARD || appliedOn(e, side)) continue;
      e[side === 'source' ? 'sourceApplied' : 'destinationApplied'] = { height: 0, outcome };
      this.phase(step, e, side === 'source' ? 'source-applied' : 'destination-applied');
    }
    if (e.info.srcShard === BEACON_SHARD || e.info.dstShard === BEACON_SHARD) this.participants.get(e.info.module)?.applied(e.info, outcome);
    for (const side of ['source', 'destination'] as const) if (!appliedOn(e, side)) this.sendDecision(step, e, side, slot);
    if (isDone(e)) this.done(e, slot);
  }

  private refuse(id: string, code: 'XS_PRUNED' | 'XS_EXPIRED', message: string): CoordinatorAction[] {
    this.stats.refused++;
    return [{ type: 'refused', id, code, message }];
  }

  /** Compacted once a window has passed since both sides applied it, and never before its deadline (reports of it end by then). */
  private compactAt(e: XferEntry, slot: number): number {
    return Math.min(Number.MAX_SAFE_INTEGER, Math.max(slot + this.retentionSlots, e.info.deadlineSlot + 1));
  }

  /** Applied on both sides at `slot`: nothing left to send; compacted a window later. */
  private done(e: XferEntry, slot: number): void {
    this.active.delete(e.id);
    this.due.push(this.compactAt(e, slot), e.id);
  }

  /**
   * The due steps, at most `compactPerTick`: a done entry loses its signed entries and applied
   * heights and becomes a tombstone until its deadline is a window behind (or is forgotten at
   * once when it already is); a due tombstone is forgotten. Each is persisted with the tick.
   */
  private compact(step: Step, slot: number): void {
    for (let n = 0; n < this.compactPerTick; n++) {
      const top = this.due.peek();
      if (!top || top[0] > slot) return;
      this.due.pop();
      const id = top[1];
      const e = this.entries.get(id);
      if (e && isDone(e)) {
        this.entries.delete(id);
        if (++this.orderGone > 1024 && this.orderGone * 2 > this.order.length) {
          this.order = this.order.filter((x) => this.entries.has(x));
          this.orderGone = 0;
        }
        const until = Math.min(Number.MAX_SAFE_INTEGER, e.info.deadlineSlot + this.retentionSlots + 1);
        e.prepareTx = null;
        e.decisionTx = null;
        e.compacted = { until, dropped: slot >= until };
        this.stats.compacted++;
        this.phase(step, e, 'compacted');
        if (e.compacted.dropped) {
          this.stats.forgotten++;
          this.phase(step, e, 'forgotten');
        } else {
          this.tombs.set(id, e);
          this.due.push(until, id);
        }
        continue;
      }
      const t = this.tombs.get(id);
      if (t && t.compacted && t.compacted.until <= slot) {
        this.tombs.delete(id);
        t.compacted = { ...t.compacted, dropped: true };
        this.stats.forgotten++;
        this.phase(step, t, 'forgotten');
      }
    }
  }

  private sendDecision(step: Step, e: XferEntry, side: 'source' | 'destination', slot: number): void {
    const shard = side === 'source' ? e.info.srcShard : e.info.dstShard;
    if (shard === BEACON_SHARD) return;
    e.sent[side] = slot;
    step.sends.push({ type: 'send', shard: side === 'source' ? e.info.srcShard : e.info.dstShard, raw: e.decisionTx!, id: e.id, what: 'decision' });
  }
}

function appliedOn(e: XferEntry, side: 'source' | 'destination'): boolean {
  return (side === 'source' ? e.sourceApplied : e.destinationApplied) !== null;
}

/** Decided and applied by both shards: nothing left to do. */
export function isDone(e: XferEntry): boolean {
  return e.decision !== null && e.sourceApplied !== null && e.destinationApplied !== null;
}

/** Where a transfer stands, for the API. */
export function entryStatus(e: XferEntry): 'preparing' | 'committed' | 'aborted' {
  return !e.decision ? 'preparing' : e.decision.outcome === 'commit' ? 'committed' : 'aborted';
}
