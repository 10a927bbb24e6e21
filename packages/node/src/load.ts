import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/** Consecutive windows of high lag before the node counts as overloaded (2 s at the default 250 ms window). */
export const DEFAULT_SUSTAINED_WINDOWS = 8;

/**
 * When the API sheds new transactions (503 NODE_BUSY with Retry-After). The rule is capacity,
 * not a blip: a queue that is actually full (the signature-verification backlog, the admission
 * journal's pending group: the `signals`), or an event loop that stays overloaded, its median
 * lag above the budget in `sustainedWindows` consecutive windows. One slow window (a GC pause,
 * a burst of proposals) refuses nothing: the fault run shed a quarter of submissions at a tenth
 * of capacity because one 250 ms window's p99 was over the budget.
 */
export class LoadMonitor {
  private readonly h: IntervalHistogram;
  /** Named pressure signals, each true while its queue is full. */
  private readonly signals: { name: string; full: () => boolean }[] = [];
  private readonly timer: NodeJS.Timeout;
  /** Windows in a row whose median lag was over the budget. */
  private highWindows = 0;
  /** p99 of the last window (reported by /v1/status). */
  lagMs = 0;
  /** Median of the last window (what the sustained rule looks at). */
  medianLagMs = 0;

  constructor(
    readonly budgetMs: number,
    windowMs = 250,
    readonly sustainedWindows = DEFAULT_SUSTAINED_WINDOWS,
  ) {
    this.h = monitorEventLoopDelay({ resolution: 10 });
    this.h.enable();
    this.timer = setInterval(() => {
      this.observe(this.h.percentile(50) / 1e6, this.h.percentile(99) / 1e6);
      this.h.reset();
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

  /** Why the node sheds now, or null when it accepts. */
  get reason(): string | null {
    for (const s of this.signals) if (s.full()) return s.name;
    if (this.highWindows >= this.sustainedWindows) return `event-loop lag above ${Math.round(this.budgetMs)} ms for ${this.highWindows} windows in a row (median ${Math.round(this.medianLagMs)} ms)`;
    return null;
  }

  get overloaded(): boolean {
    return this.reason !== null;
  }

  stop(): void {
    clearInterval(this.timer);
    this.h.disable();
  }
}
