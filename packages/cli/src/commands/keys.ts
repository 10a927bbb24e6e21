import { Command, InvalidArgumentError, Option } from 'commander';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { DEFAULT_SCHEME, homeShard, parseAddress, type SchemeName } from '@qnexus/crypto';
import { CliError, usageError } from '../errors.js';
import { loadGenesisFile } from '../genesis.js';
import { createKeystoreFile, defaultKeysDir, readKeystoreFile, unlockKeystoreFile } from '../keystore.js';
import { addPassphraseOptions, getPassphrase, hasPassphraseSource, type PassphraseOptions } from '../passphrase.js';
import { displayPath, findDevnet, intParser, note, out, parseScheme, repoRoot } from '../util.js';

/** Default of `keys show`'s keystore (and of the tx commands' --keystore). */
export const KEYSTORE_ENV_VAR = 'QNEXUS_KEYSTORE';

/** The shard count a home shard is computed with when neither --genesis, --shards nor a devnet says: `npm run devnet`'s. */
const ASSUMED_SHARDS = 2;

interface ShardOpts {
  genesis?: string;
  shards?: number;
}

interface NewOpts extends PassphraseOptions, ShardOpts {
  out?: string;
  scheme: SchemeName;
  force?: boolean;
  scryptN?: number;
  json?: boolean;
}

interface ShowOpts extends PassphraseOptions, ShardOpts {
  decrypt?: boolean;
  json?: boolean;
}

function parseScryptN(value: string): number {
  const n = intParser(2, 1 << 22)(value);
  if ((n & (n - 1)) !== 0) throw new InvalidArgumentError('expected a power of two.');
  return n;
}

/** An address's home shard and what the shard count came from. */
export interface HomeShardInfo {
  homeShard: number;
  shardCount: number;
  /** `genesis` (--genesis), `flag` (--shards), `devnet` (the local devnet's genesis) or `assumed` (the devnet default). */
  shardCountFrom: 'genesis' | 'flag' | 'devnet' | 'assumed';
}

/** The home shard of `address` under the first shard count known: --genesis, --shards, the local devnet, else the devnet default. */
export async function homeShardInfo(address: string, o: ShardOpts): Promise<HomeShardInfo> {
  if (o.genesis !== undefined && o.shards !== undefined) throw usageError('pass only one of --genesis and --shards');
  let shardCount: number;
  let shardCountFrom: HomeShardInfo['shardCountFrom'];
  if (o.genesis !== undefined) [shardCount, shardCountFrom] = [(await loadGenesisFile(o.genesis)).shardCount, 'genesis'];
  else if (o.shards !== undefined) [shardCount, shardCountFrom] = [o.shards, 'flag'];
  else {
    const d = await findDevnet().catch(() => null);
    [shardCount, shardCountFrom] = d !== null ? [d.shardCount, 'devnet'] : [ASSUMED_SHARDS, 'assumed'];
  }
  return { homeShard: homeShard(parseAddress(address), shardCount), shardCount, shardCountFrom };
}

function homeShardLine(h: HomeShardInfo): string {
  const why =
    h.shardCountFrom === 'genesis'
      ? 'from --genesis'
      : h.shardCountFrom === 'flag'
        ? 'from --shards'
        : h.shardCountFrom === 'devnet'
          ? "from the local devnet's genesis"
          : 'assumed: the devnet default; pass --genesis <file> or --shards <n> for another chain';
  return `shard ${h.homeShard} of ${h.shardCount} (${why}): send its transactions to a node of shard ${h.homeShard}`;
}

function withShardOptions(cmd: Command): Command {
  return cmd
    .option('--genesis <file>', "compute the home shard with this genesis's shard count (default: the local devnet's)")
    .option('--shards <n>', 'compute the home shard for this many shards', intParser(1, 64));
}

/**
 * Warn when a keystore is written inside this repository's work tree and git would not ignore
 * it: `git add .` would then publish the key.
 */
function warnIfInRepo(path: string): void {
  const root = repoRoot();
  if (root === null) return;
  const rel = relative(root, resolve(path));
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return;
  const r = spawnSync('git', ['check-ignore', '-q', rel], { cwd: root, stdio: 'ignore', timeout: 5000 });
  if (r.status === 0) return; // git-ignored
  note(
    `warning: ${displayPath(path)} is inside the repository ${root} and not git-ignored: a commit could publish this key. ` +
      `Keep keys outside the checkout (without --out, keys new writes to ${defaultKeysDir()}).`,
  );
}

export function keysCommand(parent: Command): Command {
  const keys = parent.command('keys').description('create and inspect encrypted ML-DSA keystores');

  const create = keys
    .command('new')
    .description('create a new random key and write it as an encrypted keystore (scrypt + AES-256-GCM)')
    .option('-o, --out <file>', `keystore file to write (mode 0600; default: ${join('$QNEXUS_HOME', 'keys', '<address>.json')}, QNEXUS_HOME defaulting to ~/.qnexus)`)
    .option('--scheme <scheme>', 'ML-DSA parameter set: ml-dsa-44, ml-dsa-65 or ml-dsa-87', parseScheme, DEFAULT_SCHEME)
    .option('-f, --force', 'overwrite an existing file')
    .option('--json', 'print the result as JSON')
    .addOption(new Option('--scrypt-n <N>', 'scrypt cost parameter (power of two; default 2^15)').argParser(parseScryptN).hideHelp());
  withShardOptions(addPassphraseOptions(create, { envDefaults: false }))
    .addHelpText(
      'after',
      '\nWithout --passphrase-env/--passphrase-file the passphrase is asked twice on the terminal (hidden).\n' +
        `Keys go outside the checkout by default (${defaultKeysDir()}); a file inside the repository that git\n` +
        'does not ignore gets a warning.\n' +
        'Example:\n  QN_PASS=secret npx qnexus keys new --passphrase-env QN_PASS',
    )
    .action(async (o: NewOpts) => {
      if (o.out !== undefined && !o.force && existsSync(o.out)) throw new CliError('FILE_EXISTS', `keystore ${o.out} already exists (pass --force to overwrite it)`);
      if (o.genesis !== undefined && o.shards !== undefined) throw usageError('pass only one of --genesis and --shards');
      const pass = await getPassphrase(o, { confirm: true, forNewKey: true, what: 'new keystore passphrase' });
      const opts: { force: boolean; scryptN?: number } = { force: o.force ?? false };
      if (o.scryptN !== undefined) opts.scryptN = o.scryptN;
      let to: string | ((address: string) => string);
      if (o.out !== undefined) to = o.out;
      else {
        const dir = defaultKeysDir();
        // Only the owner may list the keys.
        await mkdir(dir, { recursive: true, mode: 0o700 });
        to = (address) => join(dir, `${address}.json`);
      }
      const file = await createKeystoreFile(to, o.scheme, pass, opts);
      if (o.out !== undefined) warnIfInRepo(o.out);
      const h = await homeShardInfo(file.address, o);
      if (o.json) out(JSON.stringify({ address: file.address, scheme: file.scheme, file: file.path, ...h }));
      else {
        out(`address  ${file.address}`);
        out(`scheme   ${file.scheme}`);
        out(`home     ${homeShardLine(h)}`);
        out(`file     ${file.path}`);
      }
    });

  const show = keys
    .command('show')
    .description('print the address, home shard, scheme and public key of a keystore (optionally check its passphrase)')
    .argument('[file]', `keystore file (default: $${KEYSTORE_ENV_VAR})`)
    .option('--decrypt', 'decrypt the key to verify the passphrase')
    .option('--json', 'print the result as JSON');
  withShardOptions(addPassphraseOptions(show))
    .addHelpText(
      'after',
      '\nThe home shard is the shard that holds the account: its transactions go to nodes of that shard.\n' +
        "It depends on the chain's shard count: --genesis or --shards, else the local devnet's, else 2.\n" +
        'With --decrypt a wrong passphrase fails with KEYSTORE_BAD_PASSPHRASE (exit 1).',
    )
    .action(async (arg: string | undefined, o: ShowOpts) => {
      const path = arg ?? (process.env[KEYSTORE_ENV_VAR] || undefined);
      if (path === undefined) throw usageError(`no keystore: pass a file, or set ${KEYSTORE_ENV_VAR}`);
      if (!o.decrypt && hasPassphraseSource(o)) throw new CliError('USAGE', '--passphrase-env/--passphrase-file only apply with --decrypt', 2);
      const file = await readKeystoreFile(path);
      if (o.decrypt) await unlockKeystoreFile(path, await getPassphrase(o, { keystore: path }));
      const h = await homeShardInfo(file.address, o);
      const k = file.crypto.kdfparams;
      if (o.json) {
        const res: Record<string, unknown> = { address: file.address, ...h, scheme: file.scheme, publicKey: file.publicKey, kdf: { name: 'scrypt', N: k.N, r: k.r, p: k.p } };
        if (o.decrypt) res.decrypted = true;
        out(JSON.stringify(res));
        return;
      }
      out(`address     ${file.address}`);
      out(`home shard  ${homeShardLine(h)}`);
      out(`scheme      ${file.scheme}`);
      out(`kdf         scrypt N=${k.N} r=${k.r} p=${k.p}`);
      if (o.decrypt) out('passphrase  ok (key decrypted and matches its address)');
      out(`public key  ${file.publicKey}`);
    });

  return keys;
}

/**
 * `--keystore <file>` of the commands that sign, defaulting to $QNEXUS_KEYSTORE (an empty variable
 * counts as unset, as for every QNEXUS_* variable). Not mandatory for commander, whose check would
 * not name the variable: the command calls requireKeystore.
 */
export function keystoreOption(description: string): Option {
  return new Option('--keystore <file>', `${description} (default: $${KEYSTORE_ENV_VAR})`).default(process.env[KEYSTORE_ENV_VAR] || undefined);
}

/** The keystore of a signing command: --keystore or $QNEXUS_KEYSTORE, else a usage error naming both. */
export function requireKeystore(o: { keystore?: string }): string {
  if (o.keystore === undefined || o.keystore === '') throw usageError(`no keystore: pass --keystore <file> or set ${KEYSTORE_ENV_VAR}`);
  return o.keystore;
}
