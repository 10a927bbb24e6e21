import type { LogFormat, LogLevel } from './config.js';

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

/** Structured logger: one JSON object per line (`--log-format json`) or a readable line (`pretty`). */
export class Logger {
  constructor(
    private readonly format: LogFormat,
    private level: LogLevel,
    private readonly base: LogFields = {},
    private readonly out: NodeJS.WritableStream = process.stdout,
  ) {}

  child(fields: LogFields): Logger {
    return new Logger(this.format, this.level, { ...this.base, ...fields }, this.out);
  }

  setLevel(l: LogLevel): void {
    this.level = l;
  }

  enabled(l: LogLevel): boolean {
    return LEVELS[l] >= LEVELS[this.level];
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
