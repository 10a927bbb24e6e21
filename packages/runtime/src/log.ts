import type { LogFormat, LogLevel } from './config.js';

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

export function isLogLevel(s: unknown): s is LogLevel {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(LEVELS, s);
}

/**
 * Structured logger: one JSON object per line (`--log-format json`) or a readable line (`pretty`).
 * The level is shared with every `child()`, so `setLevel` (e.g. from `PUT /v1/admin/log-level`)
 * changes the whole process's logging at once.
 */
export class Logger {
  /** Shared by a logger and all its children. */
  private levelRef: { level: LogLevel };

  constructor(
    private readonly format: LogFormat,
    level: LogLevel,
    private readonly base: LogFields = {},
    private readonly out: NodeJS.WritableStream = process.stdout,
  ) {
    this.levelRef = { level };
  }

  child(fields: LogFields): Logger {
    const c = new Logger(this.format, this.levelRef.level, { ...this.base, ...fields }, this.out);
    c.levelRef = this.levelRef;
    return c;
  }

  /** The current level (shared with children). */
  get level(): LogLevel {
    return this.levelRef.level;
  }

  setLevel(l: LogLevel): void {
    this.levelRef.level = l;
  }

  enabled(l: LogLevel): boolean {
    return LEVELS[l] >= LEVELS[this.levelRef.level];
  }

  log(level: LogLevel, msg: string, fields: LogFields = {}): void {
    if (!this.enabled(level)) return;
    const rec = { t: new Date().toISOString(), level, msg, ...this.base, ...fields };
    if (this.format === 'json') {
      this.out.write(JSON.stringify(rec, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) + '\n');
    } else {
      const extra = Object.entries({ ...this.base, ...fields })
        .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)) : String(v)}`)
        .join(' ');
      this.out.write(`${rec.t} ${level.toUpperCase().padEnd(5)} ${msg}${extra ? ' ' + extra : ''}\n`);
    }
  }
  debug(msg: string, f?: LogFields): void {
    this.log('debug', msg, f);
  }
  info(msg: string, f?: LogFields): void {
    this.log('info', msg, f);
  }
  warn(msg: string, f?: LogFields): void {
    this.log('warn', msg, f);
  }
  error(msg: string, f?: LogFields): void {
    this.log('error', msg, f);
  }
}
