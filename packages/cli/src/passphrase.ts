import type { Command } from 'commander';
import { CliError, EXIT, usageError } from './errors.js';
import { readText } from './util.js';

export interface PassphraseOptions {
  passphraseEnv?: string;
  passphraseFile?: string;
}

/** Add `--passphrase-env VAR` and `--passphrase-file FILE` to a command. */
export function addPassphraseOptions(cmd: Command): Command {
  return cmd
    .option('--passphrase-env <VAR>', 'read the keystore passphrase from environment variable VAR')
    .option('--passphrase-file <file>', 'read the keystore passphrase from a file (one trailing newline is ignored)');
}

export function hasPassphraseSource(o: PassphraseOptions): boolean {
  return o.passphraseEnv !== undefined || o.passphraseFile !== undefined;
}

/**
 * Get a passphrase from --passphrase-env, --passphrase-file, or a hidden
 * prompt when stdin is a terminal (twice with `confirm`). Without a source on
 * a non-terminal stdin this is a usage error.
 */
export async function getPassphrase(o: PassphraseOptions, opts: { confirm?: boolean; forNewKey?: boolean; what?: string } = {}): Promise<string> {
  if (o.passphraseEnv !== undefined && o.passphraseFile !== undefined) {
    throw usageError('pass only one of --passphrase-env and --passphrase-file');
  }
  let pass: string;
  if (o.passphraseEnv !== undefined) {
    const v = process.env[o.passphraseEnv];
    if (v === undefined) throw usageError(`environment variable ${o.passphraseEnv} (from --passphrase-env) is not set`);
    pass = v;
  } else if (o.passphraseFile !== undefined) {
    pass = (await readText(o.passphraseFile, 'passphrase file')).replace(/\r?\n$/, '');
  } else if (process.stdin.isTTY) {
    const what = opts.what ?? 'keystore passphrase';
    pass = await promptHidden(`${what}: `);
    if (opts.confirm) {
      const again = await promptHidden(`repeat ${what}: `);
      if (again !== pass) throw new CliError('PASSPHRASE_MISMATCH', 'the two passphrases differ');
    }
  } else {
    throw usageError('no passphrase given and stdin is not a terminal: pass --passphrase-env VAR or --passphrase-file FILE');
  }
  if (opts.forNewKey && pass.length === 0) throw usageError('refusing to encrypt a key with an empty passphrase');
  return pass;
}

/** Read a line from the terminal without echoing it. Ctrl-C aborts (exit 130). */
export function promptHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let buf = '';
    const done = (err: Error | null) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(buf);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return done(null);
        if (ch === '\u0003') return done(new CliError('INTERRUPTED', 'interrupted', EXIT.INTERRUPTED));
        if (ch === '\u0004') {
          if (buf.length === 0) return done(new CliError('INTERRUPTED', 'end of input at the passphrase prompt', EXIT.INTERRUPTED));
          continue;
        }
        if (ch === '\u007f' || ch === '\b') {
          buf = Array.from(buf).slice(0, -1).join('');
          continue;
        }
        if (ch === '\u0015') {
          buf = '';
          continue;
        }
        if (ch < ' ') continue;
        buf += ch;
      }
    };
    stdin.setEncoding('utf8');
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
  });
}
