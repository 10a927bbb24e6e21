/** Consecutive windows of high lag before the node counts as overloaded (2 s at the default 250 ms window). */
export const DEFAULT_SUSTAINED_WINDOWS = 8;

/**
 * A work queue measured by how long its backlog takes to drain, not by its length: a fixed count
 * (256 signatures) was a few milliseconds of work for the native backend and a burst of gossip
 * batches tripped it while the node had capacity to spare. The drain rate is what the queue's
 * workers actually finished per second while they had work (an exponential average over the
 * windows), so it follows the backend, the worker count and the CPU the host lets us have.
 */
export interface QueueCapacity {
  /** Items waiting or in progress. */
  backlog: () => number;
  /** Items finished since start (monotonic). */
  completed: () => number;
  /** Shed when the backlog would take longer than this to drain at the measured rate. */
  maxDrainMs: number;
  /** Never shed below this many items (before any rate is known, this is the whole rule). */
  minItems: number;
  /**
   * Weight of the newest window in the drain-rate average (default RATE_ALPHA). A queue that
   * drains in bursts (the mempool, a block a slot) needs a smaller one, or its rate swings with
   * each burst and the limit with it.
   */
  alpha?: number;
}

interface QueueState extends QueueCapacity {
  name: string;
  /** Items per second, or null until a busy window was measured. */
  rate: number | null;
  lastCompleted: number;
  lastAt: number;
  /** Whether the queue had work at the start of the window being measured. */
  busy: boolean;
}

/** Weight of the newest window in a queue's drain-rate average. */
const RATE_ALPHA = 0.3;

/** The backlog a queue may hold: its drain rate times the allowed drain time, at least `minItems`. */
function limitOf(q: QueueState): number {
  return Math.max(q.minItems, q.rate === null ? 0 : Math.floor((q.rate * q.maxDrainMs) / 1000));
}

/**
 * When the API sheds new transactions (503 NODE_BUSY with Retry-After). The rule is capacity,
 * not a blip: a queue that is actually full (the signature-verification backlog, the admission
 * journal's pending group: the `signals`), or an event loop that stays overloaded, its lag (how
 * late the monitor's timer fires) above the budget in `sustainedWindows` consecutive windows. One
 * slow window (a GC pause, a burst of proposals) refuses nothing: the fault run shed a quarter of
 * submissions at a tenth of capacity because one 250 ms window's p99 was over the budget.
 */
export class LoadMonitor {
  /** Named pressure signals, each true while its queue is full. */
  private readonly signals: { name: string; full: () => boolean }[] = [];
  private readonly queues: QueueState[] = [];
  private readonly timer: NodeJS.Timeout;
  /** Windows in a row whose lag was over the budget. */
  private highWindows = 0;
  /** The last window's event-loop lag, ms (reported by /v1/status). */
  lagMs = 0;
  /** The lag the sustained rule looks at (the last window's). */
  medianLagMs = 0;

  constructor(
    readonly budgetMs: number,
    windowMs = 250,
    readonly sustainedWindows = DEFAULT_SUSTAINED_WINDOWS,
  ) {
    // The lag is how late this window's own timer fires: one wake-up per window. It was a
    // monitorEventLoopDelay histogram sampling every half budget, 20 more wake-ups a second of
    // every idle process; a loop busy enough to matter delays every timer, this one included, and
    // the rule wants that in `sustainedWindows` windows in a row.
    let due = performance.now() + windowMs;
    this.timer = setInterval(() => {
      const now = performance.now();
      const lag = Math.max(0, now - due);
      due = now + windowMs;
      this.observe(lag, lag);
      this.sampleQueues(now);
    }, windowMs);
    this.timer.unref();
  }

  /** One window's lag figures (the timer's; tests feed their own). */
  observe(medianMs: number, p99Ms: number): void {
    this.medianLagMs = medianMs;
    this.lagMs = p99Ms;
    this.highWindows = medianMs > this.budgetMs ? this.highWindows + 1 : 0;
  }

  addSignal(name: string, full: () => boolean): void {
    this.signals.push({ name, full });
  }

  /** A queue that sheds by drain time (QueueCapacity); sampled every window from `now` (ms). */
  addQueue(name: string, q: QueueCapacity, now = performance.now()): void {
    if (q.alpha !== undefined && !(q.alpha > 0 && q.alpha <= 1)) throw new RangeError(`queue ${name}: alpha must be in (0, 1], not ${q.alpha}`);
    this.queues.push({ ...q, name, rate: null, lastCompleted: q.completed(), lastAt: now, busy: q.backlog() > 0 });
  }

  /** Update each queue's drain rate from what it finished since the last sample (the timer's; tests feed their clock). */
  sampleQueues(now: number): void {
    for (const q of this.queues) {
      const done = q.completed();
      const dt = now - q.lastAt;
      // Only a window that started with work says how fast the workers go; an idle one says nothing.
      if (q.busy && dt > 0) {
        const r = ((done - q.lastCompleted) * 1000) / dt;
        q.rate = q.rate === null ? r : q.rate + (q.alpha ?? RATE_ALPHA) * (r - q.rate);
      }
      q.lastCompleted = done;
      q.lastAt = now;
      q.busy = q.backlog() > 0;
    }
  }

  /** The backlog a queue may hold now: its drain rate times the allowed drain time, at least `minItems`. */
  queueLimit(name: string): number | null {
    const q = this.queues.find((x) => x.name === name);
    return q ? limitOf(q) : null;
  }

  /** Why the node sheds now, or null when it accepts. */
  get reason(): string | null {
    for (const s of this.signals) if (s.full()) return s.name;
    for (const q of this.queues) {
      const n = q.backlog();
      if (n > limitOf(q)) {
        const rate = q.rate === null ? 'not measured yet' : `${Math.round(q.rate)}/s`;
        return `${q.name}: ${n} waiting, more than ${Math.round(q.maxDrainMs)} ms of work at the measured ${rate}`;
      }
    }
    if (this.highWindows >= this.sustainedWindows) return `event-loop lag above ${Math.round(this.budgetMs)} ms for ${this.highWindows} windows in a row (median ${Math.round(this.medianLagMs)} ms)`;
    return null;
  }

  get overloaded(): boolean {
    return this.reason !== null;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
