/**
 * The beacon logs in exactly the format of @qnexus/node's `Logger` (one JSON
 * object per line, or a readable line), so devnet tooling reads both alike.
 * It is a copy rather than an import because depending on @qnexus/node would
 * make the beacon build (and start) pull in the whole shard node; if the
 * logger moves to a shared low-level package, import it from there instead.
 */
export type LogFormat = 'json' | 'pretty';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const bigintSafe = (_k: string, v: unknown): unknown => (typeof v === 'bigint' ? v.toString() : v);

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

  enabled(l: LogLevel): boolean {
    return LEVELS[l] >= LEVELS[this.level];
  }

  log(level: LogLevel, msg: string, fields: LogFields = {}): void {
    if (!this.enabled(level)) return;
    const rec = { t: new Date().toISOString(), level, msg, ...this.base, ...fields };
    if (this.format === 'json') {
      this.out.write(JSON.stringify(rec, bigintSafe) + '\n');
    } else {
      const extra = Object.entries({ ...this.base, ...fields })
        .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v, bigintSafe) : String(v)}`)
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
