import { ClassicLevel } from 'classic-level';
import { QnexusError } from '@qnexus/types';
import { mkdirSync, realpathSync } from 'node:fs';

type Bytes = Uint8Array;

/**
 * Data dirs open in this process. LevelDB's LOCK is a POSIX lock, and on Linux
 * closing *any* handle on the file (as a failed second open does) drops the
 * process's lock, so a second open in-process must be refused before it
 * touches LevelDB.
 */
const openDirs = new Set<string>();

/** An open LevelDB with binary keys and values, registered against a second open in this process. */
export interface LevelHandle {
  db: ClassicLevel<Bytes, Bytes>;
  /** The data dir's real path (for messages). */
  dir: string;
  close(): Promise<void>;
}

/**
 * The database is held by another process (LevelDB's LOCK) or already open in
 * this one. Code `UNAVAILABLE`, like every failed open; the class lets callers
 * (the CLI's offline backup) tell "in use" apart from a damaged database.
 */
export class LevelLockedError extends QnexusError {
  constructor(
    message: string,
    readonly dir: string,
  ) {
    super('UNAVAILABLE', message);
    this.name = 'LevelLockedError';
  }
}

/**
 * Open (creating) the LevelDB at `dir` for one owner (`who`, e.g. "node",
 * "beacon", named in the error when another process holds it). Used by every
 * store so the in-process double-open guard is one mechanism.
 */
export async function openLevel(dir: string, who: string): Promise<LevelHandle> {
  mkdirSync(dir, { recursive: true });
  const real = realpathSync(dir);
  if (openDirs.has(real)) throw new LevelLockedError(`cannot open database at ${dir}: already open in this process`, real);
  openDirs.add(real);
  const db = new ClassicLevel<Bytes, Bytes>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  try {
    await db.open();
  } catch (e) {
    openDirs.delete(real);
    const cause = (e as { cause?: Error & { code?: string } }).cause;
    const msg = `cannot open database at ${dir}: ${cause?.message ?? (e as Error).message} (is another ${who} using this data dir?)`;
    if (cause?.code === 'LEVEL_LOCKED') throw new LevelLockedError(msg, real);
    throw new QnexusError('UNAVAILABLE', msg);
  }
  return {
    db,
    dir: real,
    close: async () => {
      await db.close();
      openDirs.delete(real);
    },
  };
}
