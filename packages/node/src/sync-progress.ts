import type { LogFields, Logger } from '@qnexus/runtime';

/** One sample of a running sync: where it started, where it is, where it goes. */
export interface SyncSample {
  /** Head height when the sync started. */
  start: number;
  /** Current head height. */
  height: number;
  /** Height being synced to (a peer's claimed head, never above what the slot clock allows). */
  target: number;
  /** Milliseconds since the sync started. */
  elapsedMs: number;
}

export interface SyncStats {
  height: number;
  target: number;
  /** Blocks imported per second since the sync started (0 before any time has passed). */
  blocksPerSec: number;
  /** Seconds left at the current rate; null while the rate is unknown (0 blocks so far). */
  etaSec: number | null;
  /** Fraction done in [0, 1]. */
  fraction: number;
}

/** Rate, ETA and fraction done of a sync sample (pure). */
export function syncStats(s: SyncSample): SyncStats {
  const done = Math.max(0, s.height - s.start);
  const total = Math.max(0, s.target - s.start);
  const left = Math.max(0, s.target - s.height);
  const blocksPerSec = s.elapsedMs > 0 ? (done * 1000) / s.elapsedMs : 0;
  const etaSec = left === 0 ? 0 : blocksPerSec > 0 ? left / blocksPerSec : null;
  const fraction = total === 0 ? 1 : Math.min(1, done / total);
  return { height: s.height, target: s.target, blocksPerSec, etaSec, fraction };
}

/** `42s`, `3m07s`, `2h05m`; `?` when unknown. */
export function formatDuration(sec: number | null): string {
  if (sec === null || !Number.isFinite(sec)) return '?';
  const t = Math.max(0, Math.round(sec));
  if (t < 60) return `${t}s`;
  if (t < 3600) return `${Math.floor(t / 60)}m${String(t % 60).padStart(2, '0')}s`;
  return `${Math.floor(t / 3600)}h${String(Math.floor((t % 3600) / 60)).padStart(2, '0')}m`;
}

/** `1.2`, `35`, `1200`: one decimal below 10 blocks/s. */
export function formatRate(r: number): string {
  return r < 10 ? r.toFixed(1) : String(Math.round(r));
}

/** The single progress line drawn on a TTY: `sync [#####-----]  50% 500/1000  120 blocks/s  ETA 4s`. */
export function formatProgressLine(st: SyncStats, barWidth = 30): string {
  const filled = Math.round(st.fraction * barWidth);
  const bar = '#'.repeat(filled) + '-'.repeat(barWidth - filled);
  const pct = `${Math.floor(st.fraction * 100)}%`.padStart(4);
  return `sync [${bar}] ${pct} ${st.height}/${st.target}  ${formatRate(st.blocksPerSec)} blocks/s  ETA ${formatDuration(st.etaSec)}`;
}

/** Fields of the structured `sync progress` log line. */
export function progressFields(st: SyncStats): { height: number; target: number; blocksPerSec: number; etaSec: number | null } {
  return { height: st.height, target: st.target, blocksPerSec: Math.round(st.blocksPerSec * 10) / 10, etaSec: st.etaSec === null ? null : Math.ceil(st.etaSec) };
}

export interface ReporterOptions {
  /** Where the bar is drawn; the bar is used only when this is a TTY. Default process.stderr. */
  out?: NodeJS.WriteStream | { isTTY?: boolean; columns?: number; write(s: string): boolean };
  /** Milliseconds between structured log lines when not on a TTY. Default 2000. */
  logEveryMs?: number;
  /** Milliseconds between redraws of the bar. Default 100. */
  drawEveryMs?: number;
  now?: () => number;
}

/**
 * What both progress reporters share: a single-line bar redrawn in place on a TTY (at most every
 * `drawEveryMs`), otherwise a structured log line every `logEveryMs`, and clearing the bar at the end.
 */
abstract class BarReporter<S> {
  protected readonly out: NonNullable<ReporterOptions['out']>;
  protected readonly tty: boolean;
  protected readonly now: () => number;
  protected readonly t0: number;
  private readonly logEveryMs: number;
  private readonly drawEveryMs: number;
  private lastEmit = -Infinity;
  private drawn = false;

  constructor(
    protected readonly log: Logger,
    /** The structured line's message (`sync progress`, `snapshot progress`). */
    private readonly message: string,
    opts: ReporterOptions,
  ) {
    this.out = opts.out ?? process.stderr;
    this.tty = this.out.isTTY === true;
    this.now = opts.now ?? Date.now;
    this.logEveryMs = opts.logEveryMs ?? 2_000;
    this.drawEveryMs = opts.drawEveryMs ?? 100;
    this.t0 = this.now();
  }

  /** The bar for `st`, `barWidth` characters wide. */
  protected abstract line(st: S, barWidth?: number): string;
  /** The structured line's fields for `st`. */
  protected abstract fields(st: S): LogFields;

  /** Draw or log `st` when due (`t`: now). */
  protected show(st: S, t: number): void {
    if (t - this.lastEmit < (this.tty ? this.drawEveryMs : this.logEveryMs)) return;
    this.lastEmit = t;
    if (!this.tty) {
      this.log.info(this.message, this.fields(st));
      return;
    }
    const cols = typeof this.out.columns === 'number' && this.out.columns > 0 ? this.out.columns : 100;
    let line = this.line(st);
    if (line.length > cols - 1) line = this.line(st, Math.max(5, 30 - (line.length - cols + 1))).slice(0, cols - 1);
    this.out.write(`\r\x1b[2K${line}`);
    this.drawn = true;
  }

  /** Clear the bar if one is drawn. */
  protected clear(): void {
    if (this.tty && this.drawn) this.out.write('\r\x1b[2K');
    this.drawn = false;
  }

  /** Seconds since start, to a tenth. */
  protected seconds(): number {
    return Math.round((this.now() - this.t0) / 100) / 10;
  }
}

/**
 * Shows a running sync: a single-line bar redrawn in place on a TTY, otherwise a
 * structured `sync progress` log line every couple of seconds; a `sync done` line
 * at the end either way. All I/O of sync progress lives here, not in the Syncer.
 */
export class SyncReporter extends BarReporter<SyncStats> {
  private last: SyncStats;

  constructor(
    log: Logger,
    private readonly start: number,
    private readonly target: number,
    opts: ReporterOptions = {},
  ) {
    super(log, 'sync progress', opts);
    this.last = syncStats({ start, height: start, target, elapsedMs: 0 });
  }

  protected line(st: SyncStats, barWidth?: number): string {
    return formatProgressLine(st, barWidth);
  }

  protected fields(st: SyncStats): LogFields {
    return progressFields(st);
  }

  /** Latest stats (also what the Syncer exposes as `progress`). */
  get stats(): SyncStats {
    return this.last;
  }

  /** Record the current head height; draws or logs when due. */
  update(height: number): SyncStats {
    const t = this.now();
    this.last = syncStats({ start: this.start, height, target: this.target, elapsedMs: t - this.t0 });
    this.show(this.last, t);
    return this.last;
  }

  /** Clear the bar (if drawn) and log the outcome. */
  finish(height: number, ok: boolean): void {
    const st = this.update(height);
    this.clear();
    const fields = { ...progressFields(st), blocks: Math.max(0, height - this.start), seconds: this.seconds() };
    if (ok && height >= this.target) this.log.info('sync done', fields);
    else this.log.info('sync stopped before the target', fields);
  }
}

/** One sample of a running snapshot sync: state entries verified so far, of the certified total, and bytes received. */
export interface SnapshotSample {
  height: number;
  entries: number;
  total: number;
  bytes: number;
  elapsedMs: number;
}

export interface SnapshotStats {
  height: number;
  entries: number;
  total: number;
  bytes: number;
  entriesPerSec: number;
  bytesPerSec: number;
  etaSec: number | null;
  fraction: number;
}

/** Rate, ETA and fraction done of a snapshot sample (pure). */
export function snapshotStats(s: SnapshotSample): SnapshotStats {
  const entries = Math.max(0, s.entries);
  const total = Math.max(0, s.total);
  const left = Math.max(0, total - entries);
  const entriesPerSec = s.elapsedMs > 0 ? (entries * 1000) / s.elapsedMs : 0;
  const bytesPerSec = s.elapsedMs > 0 ? (s.bytes * 1000) / s.elapsedMs : 0;
  const etaSec = left === 0 ? 0 : entriesPerSec > 0 ? left / entriesPerSec : null;
  const fraction = total === 0 ? 1 : Math.min(1, entries / total);
  return { height: s.height, entries, total, bytes: s.bytes, entriesPerSec, bytesPerSec, etaSec, fraction };
}

/** `512 B`, `3.4 KiB`, `12 MiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** The progress line of a snapshot sync: `snapshot @1200 [#####-----]  50% 5000/10000 entries  1.2 MiB  800 entries/s  ETA 6s`. */
export function formatSnapshotLine(st: SnapshotStats, barWidth = 30): string {
  const filled = Math.round(st.fraction * barWidth);
  const bar = '#'.repeat(filled) + '-'.repeat(barWidth - filled);
  const pct = `${Math.floor(st.fraction * 100)}%`.padStart(4);
  return `snapshot @${st.height} [${bar}] ${pct} ${st.entries}/${st.total} entries  ${formatBytes(st.bytes)}  ${formatRate(st.entriesPerSec)} entries/s  ETA ${formatDuration(st.etaSec)}`;
}

/** Fields of the structured `snapshot progress` log line. */
export function snapshotFields(st: SnapshotStats): { height: number; entries: number; total: number; bytes: number; entriesPerSec: number; etaSec: number | null } {
  return {
    height: st.height,
    entries: st.entries,
    total: st.total,
    bytes: st.bytes,
    entriesPerSec: Math.round(st.entriesPerSec * 10) / 10,
    etaSec: st.etaSec === null ? null : Math.ceil(st.etaSec),
  };
}

/**
 * Shows a running snapshot sync the way SyncReporter shows a block sync: a bar redrawn in place
 * on a TTY, else a structured `snapshot progress` line every couple of seconds; one outcome line.
 */
export class SnapshotReporter extends BarReporter<SnapshotStats> {
  private last: SnapshotStats;

  constructor(
    log: Logger,
    private readonly height: number,
    opts: ReporterOptions = {},
  ) {
    super(log, 'snapshot progress', opts);
    this.last = snapshotStats({ height, entries: 0, total: 0, bytes: 0, elapsedMs: 0 });
  }

  protected line(st: SnapshotStats, barWidth?: number): string {
    return formatSnapshotLine(st, barWidth);
  }

  protected fields(st: SnapshotStats): LogFields {
    return snapshotFields(st);
  }

  get stats(): SnapshotStats {
    return this.last;
  }

  get elapsedMs(): number {
    return this.now() - this.t0;
  }

  update(entries: number, total: number, bytes: number): SnapshotStats {
    const t = this.now();
    this.last = snapshotStats({ height: this.height, entries, total, bytes, elapsedMs: t - this.t0 });
    this.show(this.last, t);
    return this.last;
  }

  /** Clear the bar (if drawn) and log the outcome (`snapshot done`, or why it stopped). */
  finish(ok: boolean, why?: string): void {
    this.clear();
    const fields = { ...snapshotFields(this.last), seconds: this.seconds() };
    if (ok) this.log.info('snapshot done', fields);
    else this.log.warn('snapshot stopped', { ...fields, reason: why ?? 'unknown' });
  }
}
