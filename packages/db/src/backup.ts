/**
 * Consistent backups of a LevelDB that a process keeps writing, and their restore.
 *
 * A backup is a directory:
 *   <dir>/backup.json   the manifest (BackupManifest)
 *   <dir>/db/           a LevelDB holding every key of the source, as of one instant
 *
 * Consistency: classic-level iterators read from a snapshot taken synchronously when
 * the iterator is created, so copying the whole database with one iterator gives a
 * point-in-time copy while the owner keeps writing. Every multi-key write of our stores
 * is one atomic batch, so the snapshot always falls between two batches: a backup
 * holds whole blocks (block, certificate, state, head) or none of a block.
 *
 * Crash safety: the copy is written into `<dir>.partial-<random>` next to `<dir>` and
 * renamed into place only once the database, the manifest and the directory are
 * fsynced, so a directory named `<dir>` with a `backup.json` is always complete.
 */
import { ClassicLevel } from 'classic-level';
import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants, readFileSync } from 'node:fs';
import { copyFile, mkdir, open, readFile, readdir, realpath, rename, rm, rmdir, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { QnexusError } from '@qnexus/types';
import { openLevel, type LevelHandle } from './level.js';

type Bytes = Uint8Array;

/** Version of the backup layout and manifest; restore refuses other versions. */
export const BACKUP_FORMAT = 1;
/** The manifest's file name inside a backup directory. */
export const BACKUP_MANIFEST_FILE = 'backup.json';
/** The database copy's directory name inside a backup directory. */
export const BACKUP_DB_DIR = 'db';
/** Bytes (keys + values) per write batch into the copy: bounded memory whatever the database size. */
export const DEFAULT_BACKUP_BATCH_BYTES = 2 * 1024 * 1024;
/**
 * What a backup never contains (secrets and per-machine files live outside the
 * database); the manifest repeats it so nobody has to guess.
 */
export const BACKUP_EXCLUDES: readonly string[] = [
  'peer.key (libp2p identity: a restored node gets a new one unless you copy it yourself)',
  'admin.token (a new one is created at first start)',
  'validator / beacon keystores and passphrases',
  'node-info.json, logs',
  'the genesis file',
];

/** Which process's database a backup holds. */
export type BackupKind = 'node' | 'beacon';

/** What the snapshot itself says about the data (read from the copy, so it is the snapshot's own view). */
export interface BackupIdentity {
  kind: BackupKind;
  /** From the snapshot's head block (node) or newest epoch announcement (beacon); null if it holds none. */
  chainId: string | null;
  /** Hex; the genesis hash that binds the data to its chain. */
  genesisHash: string | null;
  /** The node's shard; null for the beacon. */
  shard: number | null;
  /** The node's finalized head height in the snapshot; null for the beacon. */
  height: number | null;
  /** The beacon's newest stored epoch announcement; null for a node. */
  epoch: number | null;
}

/** Totals of a database's logical contents; `sha256` digests every (key, value) in key order. */
export interface LevelDigest {
  keys: number;
  /** Key and value bytes. */
  bytes: number;
  /** Hex SHA-256 over u32be(len) ‖ key ‖ u32be(len) ‖ value for every entry, in key order. */
  sha256: string;
}

/** `<backup>/backup.json`. */
export interface BackupManifest extends BackupIdentity, LevelDigest {
  format: number;
  /** When the snapshot was taken (ISO 8601). */
  createdAt: string;
  /** Version of the software that wrote the backup. */
  qnexusVersion: string;
  /** What the backup does not contain (BACKUP_EXCLUDES). */
  excludes: string[];
}

export interface BackupResult {
  /** The backup directory (absolute). */
  dir: string;
  manifest: BackupManifest;
  /** Wall time of the whole backup. */
  ms: number;
}

export interface BackupOptions {
  /** Bytes per write batch into the copy (default DEFAULT_BACKUP_BATCH_BYTES). */
  batchBytes?: number;
}

export interface RestoreResult {
  /** The restored database directory (absolute). */
  dbDir: string;
  manifest: BackupManifest;
  ms: number;
}

/** Why a backup cannot be restored (local CLI errors: these never travel over the API). */
export type BackupErrorCode = 'NOT_A_BACKUP' | 'BACKUP_UNSUPPORTED' | 'BACKUP_CORRUPT' | 'DB_EXISTS';

export class BackupError extends Error {
  constructor(
    readonly code: BackupErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'BackupError';
  }
}

function softwareVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

const VERSION = softwareVersion();

function u32be(n: number): Bytes {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

/**
 * Read every entry of `db` in key order from one implicit snapshot (the iterator is created
 * synchronously, before the first await), counting and digesting them; `onChunk` sees each
 * chunk of entries as it is read.
 */
async function walkLevel(db: ClassicLevel<Bytes, Bytes>, onChunk?: (entries: [Bytes, Bytes][]) => Promise<void>): Promise<LevelDigest> {
  const it = db.iterator({ keyEncoding: 'view', valueEncoding: 'view' });
  const hash = createHash('sha256');
  let keys = 0;
  let bytes = 0;
  try {
    for (;;) {
      const entries = await it.nextv(1000);
      if (entries.length === 0) break;
      for (const [k, v] of entries) {
        hash.update(u32be(k.length)).update(k).update(u32be(v.length)).update(v);
        keys++;
        bytes += k.length + v.length;
      }
      await onChunk?.(entries);
    }
  } finally {
    await it.close();
  }
  return { keys, bytes, sha256: hash.digest('hex') };
}

/**
 * Copy every key of `source` into the open, empty `dest`, reading from one
 * implicit snapshot (taken when this is called, before its first await), in
 * write batches of about `batchBytes`. The last batch is synced. The owner of
 * `source` may keep writing meanwhile: the copy is the database as of the call.
 */
export async function snapshotLevel(source: ClassicLevel<Bytes, Bytes>, dest: ClassicLevel<Bytes, Bytes>, opts: BackupOptions = {}): Promise<LevelDigest> {
  const limit = Math.max(1, opts.batchBytes ?? DEFAULT_BACKUP_BATCH_BYTES);
  let batch = dest.batch();
  let pending = 0;
  const digest = await walkLevel(source, async (entries) => {
    for (const [k, v] of entries) {
      batch.put(k, v);
      pending += k.length + v.length;
    }
    if (pending >= limit) {
      await batch.write();
      batch = dest.batch();
      pending = 0;
    }
  });
  // A synced write makes every earlier write of the copy durable too.
  await batch.write({ sync: true });
  return digest;
}

/** Count and digest a database's contents (the same digest as snapshotLevel's). */
export function digestLevel(db: ClassicLevel<Bytes, Bytes>): Promise<LevelDigest> {
  return walkLevel(db);
}

const errno = (e: unknown): string | undefined => (e as NodeJS.ErrnoException).code;

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } catch (e) {
    // Some platforms cannot fsync a directory; the files themselves were synced.
    if (!['EINVAL', 'EISDIR', 'EPERM', 'EBADF'].includes(errno(e) ?? '')) throw e;
  } finally {
    await fh.close();
  }
}

/** fsync every file of a flat directory, then the directory. */
async function fsyncFlatDir(dir: string): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) if (e.isFile()) await fsyncPath(join(dir, e.name));
  await fsyncPath(dir);
}

async function writeFileSynced(path: string, text: string): Promise<void> {
  const fh = await open(path, 'wx', 0o644);
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function statOrNull(path: string) {
  try {
    return await stat(path);
  } catch (e) {
    if (errno(e) === 'ENOENT') return null;
    throw e;
  }
}

/** The real path of `p`, resolving the longest existing prefix (p itself need not exist). */
async function realpathLoose(p: string): Promise<string> {
  const rest: string[] = [];
  let cur = p;
  for (;;) {
    try {
      return join(await realpath(cur), ...rest.reverse());
    } catch (e) {
      if (errno(e) !== 'ENOENT') throw e;
      const parent = dirname(cur);
      if (parent === cur) return p;
      rest.push(cur.slice(parent.length).replace(/^[/\\]+/, ''));
      cur = parent;
    }
  }
}

const within = (child: string, parent: string) => child === parent || child.startsWith(parent.endsWith(sep) ? parent : parent + sep);

/**
 * Check a backup target: an absolute path that does not exist yet or is an
 * empty directory, outside the database being copied. Errors are API errors
 * (`BAD_REQUEST`) because the admin endpoint passes the client's path here.
 */
export async function checkBackupTarget(dir: unknown, sourceDir: string): Promise<string> {
  if (typeof dir !== 'string' || dir.trim() === '' || dir.includes('\0')) throw new QnexusError('BAD_REQUEST', 'the backup directory must be a non-empty path');
  if (!isAbsolute(dir)) throw new QnexusError('BAD_REQUEST', `the backup directory must be an absolute path (on the machine the process runs on), not ${JSON.stringify(dir)}`);
  const target = resolve(dir);
  if (dirname(target) === target) throw new QnexusError('BAD_REQUEST', `cannot back up into ${target}`);
  if (within(await realpathLoose(target), sourceDir)) throw new QnexusError('BAD_REQUEST', `the backup directory ${target} is inside the database being backed up (${sourceDir})`);
  const st = await statOrNull(target);
  if (st && !st.isDirectory()) throw new QnexusError('BAD_REQUEST', `${target} exists and is not a directory: choose a new backup directory`);
  if (st && (await readdir(target)).length > 0) {
    throw new QnexusError('BACKUP_EXISTS', `backup directory ${target} already exists and is not empty: a backup never overwrites anything, choose a new directory`);
  }
  return target;
}

export interface CreateBackupOptions extends BackupOptions {
  /** Read the identity (kind, chain, height…) from the open copy; the copy is closed by createBackup. */
  describe(copy: LevelHandle): Promise<BackupIdentity>;
}

/**
 * Write a consistent backup of the open database `source` into the new
 * directory `dir` (absolute; must not exist or be empty): snapshot copy in
 * `<dir>.partial-<random>`, manifest, fsync, rename. Nothing is left behind on
 * failure. The source stays open and writable throughout.
 */
export async function createBackup(source: LevelHandle, dir: string, o: CreateBackupOptions): Promise<BackupResult> {
  const t0 = Date.now();
  const target = await checkBackupTarget(dir, source.dir);
  const parent = dirname(target);
  await mkdir(parent, { recursive: true });
  const partial = `${target}.partial-${randomBytes(4).toString('hex')}`;
  await mkdir(partial);
  try {
    const dbDir = join(partial, BACKUP_DB_DIR);
    const copy = await openLevel(dbDir, 'backup');
    let digest: LevelDigest;
    let identity: BackupIdentity;
    const createdAt = new Date().toISOString();
    try {
      digest = await snapshotLevel(source.db, copy.db, o);
      identity = await o.describe(copy);
    } finally {
      await copy.close();
    }
    await fsyncFlatDir(dbDir);
    const manifest: BackupManifest = { format: BACKUP_FORMAT, ...identity, ...digest, createdAt, qnexusVersion: VERSION, excludes: [...BACKUP_EXCLUDES] };
    await writeFileSynced(join(partial, BACKUP_MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    await fsyncPath(partial);
    try {
      // Replaces an empty directory (POSIX rename); fails if something appeared there meanwhile.
      await rename(partial, target);
    } catch (e) {
      if (['EEXIST', 'ENOTEMPTY', 'ENOTDIR', 'EISDIR'].includes(errno(e) ?? '')) {
        throw new QnexusError('BACKUP_EXISTS', `backup directory ${target} appeared while the backup was written: choose a new directory`);
      }
      throw e;
    }
    await fsyncPath(parent);
    return { dir: target, manifest, ms: Date.now() - t0 };
  } catch (e) {
    await rm(partial, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }
}

const HEX64 = /^[0-9a-f]{64}$/;
const isNat = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const natOrNull = (x: unknown) => x === null || isNat(x);

/** Read and check `<dir>/backup.json` and that `<dir>/db` holds a LevelDB. */
export async function readBackupManifest(dir: string): Promise<BackupManifest> {
  const path = join(dir, BACKUP_MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') {
      const partial = /\.partial-[0-9a-f]{8}$/.test(dir) ? ' (this is an interrupted backup: delete it)' : '';
      throw new BackupError('NOT_A_BACKUP', `${dir} is not a qnexus backup: it has no ${BACKUP_MANIFEST_FILE}${partial}`);
    }
    throw e;
  }
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    throw new BackupError('BACKUP_CORRUPT', `${path} is not valid JSON`);
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new BackupError('BACKUP_CORRUPT', `${path} is not a backup manifest`);
  const m = j as Record<string, unknown>;
  if (m['format'] !== BACKUP_FORMAT) {
    throw new BackupError('BACKUP_UNSUPPORTED', `${path} has backup format ${JSON.stringify(m['format'])}; this version reads format ${BACKUP_FORMAT}`);
  }
  const bad = (field: string) => new BackupError('BACKUP_CORRUPT', `${path}: bad or missing field "${field}"`);
  if (m['kind'] !== 'node' && m['kind'] !== 'beacon') throw bad('kind');
  if (m['chainId'] !== null && typeof m['chainId'] !== 'string') throw bad('chainId');
  if (m['genesisHash'] !== null && (typeof m['genesisHash'] !== 'string' || !HEX64.test(m['genesisHash']))) throw bad('genesisHash');
  for (const f of ['shard', 'height', 'epoch']) if (!natOrNull(m[f])) throw bad(f);
  for (const f of ['keys', 'bytes']) if (!isNat(m[f])) throw bad(f);
  if (typeof m['sha256'] !== 'string' || !HEX64.test(m['sha256'])) throw bad('sha256');
  if (typeof m['createdAt'] !== 'string') throw bad('createdAt');
  if (typeof m['qnexusVersion'] !== 'string') throw bad('qnexusVersion');
  if (!Array.isArray(m['excludes']) || !m['excludes'].every((x) => typeof x === 'string')) throw bad('excludes');
  if (m['kind'] === 'node' && (m['height'] === null || m['shard'] === null)) throw bad(m['height'] === null ? 'height' : 'shard');
  const current = await statOrNull(join(dir, BACKUP_DB_DIR, 'CURRENT'));
  if (!current?.isFile()) throw new BackupError('NOT_A_BACKUP', `${dir} has a manifest but no database (${BACKUP_DB_DIR}/CURRENT is missing)`);
  return m as unknown as BackupManifest;
}

export interface RestoreLevelOptions {
  /**
   * Kind-specific checks and marks on the verified copy before it is moved into
   * place (the node's: identity matches the manifest, and the signer floor mark).
   */
  prepare?(copy: LevelHandle, manifest: BackupManifest): Promise<void>;
}

/**
 * Restore the backup at `backupDir` as the database directory `dbDir`, which
 * must not exist or be an empty directory (moving an old database aside is the
 * caller's policy). The backup itself is never modified (its files are copied,
 * not opened); the copy is verified (key count, bytes and digest equal the
 * manifest's), prepared, fsynced, then renamed into place.
 */
export async function restoreLevelBackup(backupDir: string, dbDir: string, o: RestoreLevelOptions = {}): Promise<RestoreResult> {
  const t0 = Date.now();
  const src = resolve(backupDir);
  const dest = resolve(dbDir);
  const manifest = await readBackupManifest(src);
  const st = await statOrNull(dest);
  if (st && (!st.isDirectory() || (await readdir(dest)).length > 0)) throw new BackupError('DB_EXISTS', `${dest} already exists: restoring never overwrites a database`);
  const parent = dirname(dest);
  await mkdir(parent, { recursive: true });
  const tmp = `${dest}.restoring-${randomBytes(4).toString('hex')}`;
  await mkdir(tmp);
  try {
    const from = join(src, BACKUP_DB_DIR);
    for (const e of await readdir(from, { withFileTypes: true })) {
      if (e.name === 'LOCK') continue; // LevelDB recreates it
      if (!e.isFile()) throw new BackupError('BACKUP_CORRUPT', `unexpected ${e.isDirectory() ? 'directory' : 'entry'} ${join(from, e.name)} in the backup's database`);
      await copyFile(join(from, e.name), join(tmp, e.name), fsConstants.COPYFILE_EXCL);
    }
    const copy = await openLevel(tmp, 'restore');
    try {
      const d = await digestLevel(copy.db);
      if (d.keys !== manifest.keys || d.bytes !== manifest.bytes || d.sha256 !== manifest.sha256) {
        throw new BackupError(
          'BACKUP_CORRUPT',
          `the database in ${src} does not match its manifest (${d.keys} keys, ${d.bytes} bytes, sha256 ${d.sha256.slice(0, 16)}…; manifest: ${manifest.keys} keys, ${manifest.bytes} bytes, ${manifest.sha256.slice(0, 16)}…)`,
        );
      }
      await o.prepare?.(copy, manifest);
    } finally {
      await copy.close();
    }
    await fsyncFlatDir(tmp);
    if (st) await rmdir(dest); // the empty directory it replaces
    await rename(tmp, dest);
    await fsyncPath(parent);
    return { dbDir: dest, manifest, ms: Date.now() - t0 };
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }
}
