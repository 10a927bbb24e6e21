import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/**
 * Event-loop lag as a load signal. When signature checks of incoming
 * transactions keep the loop busy, slot ticks, proposals and votes queue
 * behind them, rounds miss their timeouts and finality stalls for everyone.
 * The API sheds new transactions (503 NODE_BUSY, retry later) while the lag
 * of the last window exceeds the budget, or another signal (the signature
 * verification backlog) says the node is saturated, so consensus keeps its
 * share of CPU.
 */
export class LoadMonitor {
  private readonly h: IntervalHistogram;
  /** Extra pressure signals (e.g. the signature backlog), each true when saturated. */
  private readonly signals: (() => boolean)[] = [];
  private timer: NodeJS.Timeout;
  private busy = false;
  lagMs = 0;

  constructor(
    private readonly budgetMs: number,
    windowMs = 250,
  ) {
    this.h = monitorEventLoopDelay({ resolution: 10 });
    this.h.enable();
    this.timer = setInterval(() => {
      // p99 of the window rather than the max: one long GC pause should not shed load.
      this.lagMs = this.h.percentile(99) / 1e6;
      this.busy = this.lagMs > this.budgetMs;
      this.h.reset();
    }, windowMs);
    this.timer.unref();
  }

  addSignal(saturated: () => boolean): void {
    this.signals.push(saturated);
  }

  get overloaded(): boolean {
    return this.busy || this.signals.some((s) => s());
  }

  stop(): void {
    clearInterval(this.timer);
    this.h.disable();
  }
}
