import type { Command } from 'commander';
import { readdir, rename, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { QnexusClient, type AdminBackupResult, type BackupManifestInfo } from '@qnexus/sdk';
import { CliError, usageError } from '../errors.js';
import { genesisHashHex, loadGenesisFile } from '../genesis.js';
import { intParser, note, out } from '../util.js';
import { ADMIN_TOKEN_FILE, adminToken } from './admin.js';

/*
 * `qnexus db backup` / `qnexus db restore` (docs/backup.md). @qnexus/db (classic-level) and
 * @qnexus/beacon are imported lazily: only the offline paths open a database.
 */

interface BackupOpts {
  node?: string;
  dataDir?: string;
  tokenFile?: string;
  timeout?: number;
  json?: boolean;
}

interface RestoreOpts {
  dataDir: string;
  force?: boolean;
  genesis?: string;
  json?: boolean;
}

/** What `db backup --json` prints: the admin API's answer, plus how it was taken. */
export interface DbBackupJson extends AdminBackupResult {
  mode: 'online' | 'offline';
}

/** What `db restore --json` prints. */
export interface DbRestoreJson {
  dataDir: string;
  dbDir: string;
  /** Where --force moved the previous database, or null. */
  movedAside: string | null;
  manifest: BackupManifestInfo;
  ms: number;
}

const VALIDATOR_WARNING =
  'a validator restored from a backup must never run at the same time as the original: stop the original first. ' +
  "The backup's double-sign record is older than what the key may have signed since, so at its first start the restored node " +
  'signs nothing in any round before the first slot after that start (the signer floor), and signs normally from then on.';

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 * 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return `${(bytes / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}

function what(m: BackupManifestInfo): string {
  return m.kind === 'node' ? `node of shard ${m.shard} at height ${m.height}` : `beacon${m.epoch !== null ? ` (epochs through ${m.epoch})` : ''}`;
}

async function nonEmptyDir(path: string): Promise<boolean> {
  try {
    const st = await stat(path);
    return !st.isDirectory() || (await readdir(path)).length > 0;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

function inUse(dataDir: string, suggestion: string): CliError {
  return new CliError('DB_IN_USE', `the database in ${dataDir} is in use by a running process (a node or beacon holds its lock); ${suggestion}`);
}

/** Back up a stopped node's or beacon's data dir by opening its database directly. */
async function offlineBackup(dataDir: string, target: string): Promise<AdminBackupResult> {
  const dbDir = join(dataDir, 'db');
  try {
    if (!(await stat(join(dbDir, 'CURRENT'))).isFile()) throw new Error('not a file');
  } catch {
    throw new CliError('NO_DATABASE', `${dbDir} holds no database: is ${dataDir} the data dir of a node or beacon that has started once?`);
  }
  const db = await import('@qnexus/db');
  const locked = (e: unknown) =>
    e instanceof db.LevelLockedError ? inUse(dataDir, `back it up through that process instead: qnexus db backup ${target} --node <its API URL> --data-dir ${dataDir}`) : e;
  const chain = await db.ChainStore.open(dbDir).catch((e: unknown) => {
    throw locked(e);
  });
  try {
    if ((await chain.headHeight()) >= 0) return await chain.backup(target);
  } finally {
    await chain.close();
  }
  // No chain head: the beacon's database (its store writes no 'head').
  const { BeaconStore } = await import('@qnexus/beacon');
  const beacon = await BeaconStore.open(dbDir).catch((e: unknown) => {
    throw locked(e);
  });
  try {
    return await beacon.backup(target);
  } finally {
    await beacon.close();
  }
}

export function dbCommand(parent: Command): Command {
  const dbc = parent
    .command('db')
    .description("back up and restore a node's or the beacon's database (consistent snapshots, taken while it runs)")
    .addHelpText(
      'after',
      `
A backup is a directory: backup.json (the manifest: chain, genesis hash, shard, height, key count,
bytes, digest) and db/ (a LevelDB copy of the database as of one instant). It never contains
secrets or per-machine files: peer.key, ${ADMIN_TOKEN_FILE}, keystores, node-info.json. See docs/backup.md.
Examples:
  qnexus db backup /backups/v0-$(date +%F) --node http://127.0.0.1:8545 --data-dir data/v0
  qnexus db backup /backups/full-0 --data-dir data/full-0        # the node is stopped
  qnexus db restore /backups/full-0 --data-dir data/full-1 --genesis genesis.json`,
    );

  dbc
    .command('backup')
    .description('write a consistent snapshot of a database into a new directory')
    .argument('<dir>', 'backup directory: must not exist or be empty; written atomically (via <dir>.partial-*, then renamed)')
    .option('--node <url>', "back up a running node or beacon through its admin API (the process writes <dir> on its own machine; a relative <dir> is made absolute here)")
    .option('--data-dir <dir>', `without --node: the stopped process's data dir, whose database is opened directly; with --node: where to read its admin token (${ADMIN_TOKEN_FILE})`)
    .option('--token-file <file>', `with --node: read the admin token from this file instead of <data-dir>/${ADMIN_TOKEN_FILE}`)
    .option('--timeout <seconds>', 'with --node: how long to wait for the backup to finish (default 600)', intParser(1, 86_400))
    .option('--json', 'print the result (directory, manifest, duration) as JSON')
    .addHelpText(
      'after',
      `
Online (--node): the running process copies its database through one LevelDB snapshot while it
keeps committing blocks; the backup holds whole blocks only. Offline (no --node): the process must
be stopped (a running one holds the database's lock: the command then says so; use --node).
Examples:
  qnexus db backup /backups/v0 --node http://127.0.0.1:8545 --data-dir data/v0
  qnexus db backup /backups/beacon --node http://127.0.0.1:8645 --token-file beacon-admin.token
  qnexus db backup /backups/full-0 --data-dir data/full-0 --json`,
    )
    .action(async (dir: string, o: BackupOpts) => {
      const target = resolve(dir);
      let r: AdminBackupResult;
      let mode: DbBackupJson['mode'];
      if (o.node !== undefined) {
        const c = new QnexusClient(o.node, { adminToken: await adminToken(o) });
        r = await c.adminBackup(target, o.timeout !== undefined ? { timeoutMs: o.timeout * 1000 } : {});
        mode = 'online';
      } else {
        if (o.dataDir === undefined) throw usageError('pass --node <url> (and --data-dir or --token-file for its admin token) to back up a running node or beacon, or --data-dir <dir> to back up a stopped one');
        if (o.tokenFile !== undefined || o.timeout !== undefined) throw usageError('--token-file and --timeout apply only with --node');
        r = await offlineBackup(resolve(o.dataDir), target);
        mode = 'offline';
      }
      if (o.json) return out(JSON.stringify({ ...r, mode } satisfies DbBackupJson, null, 2));
      const m = r.manifest;
      out(`backup of the ${what(m)} written to ${r.dir} (${m.keys} keys, ${size(m.bytes)}, ${r.ms} ms, ${mode})`);
      out(`  chain ${m.chainId ?? '?'}, genesis ${m.genesisHash?.slice(0, 16) ?? '?'}…, taken at ${m.createdAt}`);
      out(`  not included: peer.key, ${ADMIN_TOKEN_FILE}, keystores (see ${join(r.dir, 'backup.json')})`);
    });

  dbc
    .command('restore')
    .description('restore a backup into a data dir (its database must not exist, unless --force)')
    .argument('<backup-dir>', 'a directory written by qnexus db backup')
    .requiredOption('--data-dir <dir>', 'data dir to restore into: the database goes to <data-dir>/db')
    .option('--force', 'move an existing <data-dir>/db aside (to db.replaced-<time>; nothing is deleted) instead of refusing')
    .option('--genesis <file>', "check that the backup belongs to this genesis (chain id and genesis hash) before restoring")
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
The copy is checked against the manifest (key count, bytes, SHA-256 digest) and opened before it is
moved into place; the backup itself is never modified. The process then starts from the backup's
height and catches up from its peers. A restored node gets a new peer.key and ${ADMIN_TOKEN_FILE} at
first start unless you copy them (a restored beacon needs its original peer.key: the genesis names it).
Validators: ${VALIDATOR_WARNING}
Examples:
  qnexus db restore /backups/full-0 --data-dir data/full-1 --genesis genesis.json
  qnexus db restore /backups/v0 --data-dir data/v0 --force`,
    )
    .action(async (backupDir: string, o: RestoreOpts) => {
      const src = resolve(backupDir);
      const dataDir = resolve(o.dataDir);
      const dbDir = join(dataDir, 'db');
      const db = await import('@qnexus/db');
      const m = await db.readBackupManifest(src);
      if (o.genesis !== undefined) {
        const g = await loadGenesisFile(o.genesis);
        const h = genesisHashHex(g);
        if (m.genesisHash !== h || (m.chainId !== null && m.chainId !== g.chainId)) {
          throw new CliError(
            'BACKUP_MISMATCH',
            `${src} is a backup of chain ${m.chainId ?? '?'} (genesis ${m.genesisHash?.slice(0, 16) ?? '?'}…), not of ${o.genesis} (chain ${g.chainId}, genesis ${h.slice(0, 16)}…)`,
          );
        }
        if (m.kind === 'node' && m.shard !== null && m.shard >= g.shardCount) throw new CliError('BACKUP_MISMATCH', `${src} is a backup of shard ${m.shard}; ${o.genesis} has ${g.shardCount} shards`);
      }
      let movedAside: string | null = null;
      if (await nonEmptyDir(dbDir)) {
        if (!o.force) {
          throw new CliError('DB_EXISTS', `${dbDir} already holds a database; restore never overwrites one: restore into a fresh --data-dir, or pass --force to move it aside (to ${dbDir}.replaced-<time>)`);
        }
        // A database a running process holds cannot be moved away from under it.
        try {
          const h = await db.openLevel(dbDir, 'node or beacon');
          await h.close();
        } catch (e) {
          if (e instanceof db.LevelLockedError) throw inUse(dataDir, 'stop that process before restoring into its data dir');
          // A damaged database can still be moved aside.
        }
        movedAside = `${dbDir}.replaced-${new Date().toISOString().replace(/[:.]/g, '-')}`;
        await rename(dbDir, movedAside);
      }
      const r = m.kind === 'node' ? await db.ChainStore.restoreBackup(src, dbDir) : await db.restoreLevelBackup(src, dbDir);
      // The warnings go to stderr, with --json too.
      if (m.kind === 'beacon') note(`note: start the beacon with its original peer.key in ${dataDir}: the genesis names the beacon's peer id`);
      else note(`note: ${VALIDATOR_WARNING}`);
      if (o.json) return out(JSON.stringify({ dataDir, dbDir: r.dbDir, movedAside, manifest: r.manifest, ms: r.ms } satisfies DbRestoreJson, null, 2));
      out(`restored the ${what(m)} (chain ${m.chainId ?? '?'}, ${m.keys} keys, ${size(m.bytes)}, taken at ${m.createdAt}) into ${r.dbDir} in ${r.ms} ms`);
      if (movedAside) out(`  the previous database was moved to ${movedAside}`);
    });

  return dbc;
}
