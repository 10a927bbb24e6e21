import type { Command } from 'commander';
import { resolve } from 'node:path';
import { CliError, EXIT, usageError } from './errors.js';
import { displayPath, findDevnet, note, readText } from './util.js';

/** Defaults of --passphrase-env / --passphrase-file for every command that unlocks a key. */
export const PASSPHRASE_ENV_VAR = 'QNEXUS_PASSPHRASE_ENV';
export const PASSPHRASE_FILE_VAR = 'QNEXUS_PASSPHRASE_FILE';

export interface PassphraseOptions {
  passphraseEnv?: string;
  passphraseFile?: string;
}

/**
 * Add `--passphrase-env VAR` and `--passphrase-file FILE` to a command. `envDefaults` (default
 * true) names the QNEXUS_* defaults getPassphrase reads in the help; false for `keys new` (which
 * never reads them) and for node/beacon (whose config support prints them as "env:").
 */
export function addPassphraseOptions(cmd: Command, opts: { envDefaults?: boolean } = {}): Command {
  const env = opts.envDefaults ?? true;
  return cmd
    .option('--passphrase-env <VAR>', `read the keystore passphrase from environment variable VAR${env ? ` (default: $${PASSPHRASE_ENV_VAR})` : ''}`)
    .option('--passphrase-file <file>', `read the keystore passphrase from a file (one trailing newline is ignored)${env ? ` (default: $${PASSPHRASE_FILE_VAR})` : ''}`);
}

export function hasPassphraseSource(o: PassphraseOptions): boolean {
  return o.passphraseEnv !== undefined || o.passphraseFile !== undefined;
}

/**
 * The devnet's passphrase file when `keystore` is one of the local devnet's own keys (its funded
 * accounts, validators, beacon): throwaway keys whose passphrase the devnet keeps beside them.
 */
async function devnetPassphraseFile(keystore: string): Promise<string | null> {
  const d = await findDevnet().catch(() => null);
  if (d === null) return null;
  const path = resolve(keystore);
  const ours = d.manifest.accounts.some((a) => resolve(a.keystore) === path) || d.manifest.processes.some((p) => p.keystore !== null && resolve(p.keystore) === path);
  return ours ? d.manifest.passphraseFile : null;
}

/**
 * Get a passphrase, first found: --passphrase-env, --passphrase-file, $QNEXUS_PASSPHRASE_ENV,
 * $QNEXUS_PASSPHRASE_FILE, the local devnet's passphrase file when `keystore` is one of its keys,
 * a hidden prompt when stdin is a terminal (twice with `confirm`). Else a usage error. A new key
 * (`forNewKey`) takes only the flags or the prompt: an ambient variable or the devnet's
 * passphrase must not silently become the passphrase of a key meant to be kept.
 */
export async function getPassphrase(
  o: PassphraseOptions,
  opts: { confirm?: boolean; forNewKey?: boolean; what?: string; keystore?: string } = {},
): Promise<string> {
  if (o.passphraseEnv !== undefined && o.passphraseFile !== undefined) {
    throw usageError('pass only one of --passphrase-env and --passphrase-file');
  }
  let passphraseEnv = o.passphraseEnv;
  let passphraseFile = o.passphraseFile;
  let from = '';
  if (passphraseEnv === undefined && passphraseFile === undefined && !opts.forNewKey) {
    if (process.env[PASSPHRASE_ENV_VAR]) {
      passphraseEnv = process.env[PASSPHRASE_ENV_VAR];
      from = ` (from $${PASSPHRASE_ENV_VAR})`;
    } else if (process.env[PASSPHRASE_FILE_VAR]) {
      passphraseFile = process.env[PASSPHRASE_FILE_VAR];
      from = ` (from $${PASSPHRASE_FILE_VAR})`;
    } else if (opts.keystore !== undefined) {
      const f = await devnetPassphraseFile(opts.keystore);
      if (f !== null) {
        passphraseFile = f;
        note(`(${opts.keystore} is a key of the local devnet: using its passphrase file ${displayPath(f)})`);
      }
    }
  }
  let pass: string;
  if (passphraseEnv !== undefined) {
    const v = process.env[passphraseEnv];
    if (v === undefined) throw usageError(`environment variable ${passphraseEnv} (from --passphrase-env${from}) is not set`);
    pass = v;
  } else if (passphraseFile !== undefined) {
    pass = (await readText(passphraseFile, `passphrase file${from}`)).replace(/\r?\n$/, '');
  } else if (process.stdin.isTTY) {
    const what = opts.what ?? 'keystore passphrase';
    pass = await promptHidden(`${what}: `);
    if (opts.confirm) {
      const again = await promptHidden(`repeat ${what}: `);
      if (again !== pass) throw new CliError('PASSPHRASE_MISMATCH', 'the two passphrases differ');
    }
  } else {
    throw usageError(
      `no passphrase given and stdin is not a terminal: pass --passphrase-env VAR or --passphrase-file FILE${opts.forNewKey ? '' : ` (or set ${PASSPHRASE_FILE_VAR})`}`,
    );
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
