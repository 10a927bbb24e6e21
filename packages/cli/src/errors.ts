import { CommanderError } from 'commander';

/**
 * Process exit codes of the `qnexus` binary.
 * Every error is printed to stderr as `error [CODE]: message`.
 */
export const EXIT = {
  OK: 0,
  /** Any runtime failure (API error, bad passphrase, I/O, invalid genesis, …). */
  ERROR: 1,
  /** Bad invocation: unknown/missing/invalid options or arguments (code USAGE). */
  USAGE: 2,
  /** A wait timed out (code TIMEOUT); the awaited event may still happen. */
  TIMEOUT: 3,
  /** Interrupted (Ctrl-C) at a prompt or during devnet startup (code INTERRUPTED). */
  INTERRUPTED: 130,
} as const;

/** An expected, user-facing error: printed without a stack trace. */
export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode: number = EXIT.ERROR,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export function usageError(message: string): CliError {
  return new CliError('USAGE', message, EXIT.USAGE);
}

const ERRNO_CODES: Record<string, string> = {
  ENOENT: 'FILE_NOT_FOUND',
  EEXIST: 'FILE_EXISTS',
  EACCES: 'PERMISSION_DENIED',
  EPERM: 'PERMISSION_DENIED',
  EISDIR: 'IS_A_DIRECTORY',
  ENOTDIR: 'NOT_A_DIRECTORY',
  EADDRINUSE: 'ADDRESS_IN_USE',
};

export interface FormattedError {
  code: string;
  message: string;
  exitCode: number;
  /** Only for unexpected errors. */
  stack?: string;
}

/** Map anything thrown to a code, message and exit code. */
export function formatError(e: unknown): FormattedError {
  if (e instanceof CliError) return { code: e.code, message: e.message, exitCode: e.exitCode };
  if (e instanceof CommanderError) return { code: 'USAGE', message: e.message.replace(/^error: /, ''), exitCode: e.exitCode === 0 ? EXIT.OK : EXIT.USAGE };
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z][A-Z0-9_]*$/.test(code)) {
      // ApiError, QnexusError, KeystoreError and Node system errors all carry a code.
      const mapped = ERRNO_CODES[code] ?? code;
      return { code: mapped, message: e.message, exitCode: code === 'TIMEOUT' ? EXIT.TIMEOUT : EXIT.ERROR };
    }
    return { code: 'INTERNAL', message: e.message || String(e), exitCode: EXIT.ERROR, ...(e.stack ? { stack: e.stack } : {}) };
  }
  return { code: 'INTERNAL', message: String(e), exitCode: EXIT.ERROR };
}

/** Print `error [CODE]: message` (stack only for unexpected errors with QNEXUS_DEBUG=1) and return the exit code. */
export function reportError(e: unknown): number {
  const f = formatError(e);
  process.stderr.write(`error [${f.code}]: ${f.message}\n`);
  if (f.stack) {
    if (process.env.QNEXUS_DEBUG) process.stderr.write(`${f.stack}\n`);
    else process.stderr.write('(this looks like a bug; set QNEXUS_DEBUG=1 for a stack trace)\n');
  }
  return f.exitCode;
}
