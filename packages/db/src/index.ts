import type { ClassicLevel } from 'classic-level';
import { bytesEqual, fromHex, toHex } from '@qnexus/crypto';
import { QnexusError, Reader, Writer, decodeBlock } from '@qnexus/types';
import { BackupError, createBackup, restoreLevelBackup, type BackupIdentity, type BackupManifest, type BackupOptions, type BackupResult, type RestoreResult } from './backup.js';
import { openLevel, type LevelHandle } from './level.js';

export { LevelLockedError, openLevel, type LevelHandle } from './level.js';
export {
  BACKUP_DB_DIR,
  BACKUP_EXCLUDES,
  BACKUP_FORMAT,
  BACKUP_MANIFEST_FILE,
  BackupError,
  DEFAULT_BACKUP_BATCH_BYTES,
  checkBackupTarget,
  createBackup,
  digestLevel,
  readBackupManifest,
  restoreLevelBackup,
  snapshotLevel,
  type BackupErrorCode,
  type BackupIdentity,
  type BackupKind,
  type BackupManifest,
  type BackupOptions,
  type BackupResult,
  type CreateBackupOptions,
  type LevelDigest,
  type RestoreLevelOptions,
  type RestoreResult,
} from './backup.js';

/**
 * Per-node storage on classic-level (LevelDB), behind small repositories.
 * Every multi-key write is one atomic batch: a crash at any point leaves
 * either the whole block commit on disk or none of it.
 *
 * Layout (one LevelDB, sublevels):
 *   blocks    u64be height ‖ hash   -> encoded block (finalized, or stored by a lock: see lockBlocks)
 *   blockHeights (i) block hash     -> u64be height of a finalized block
 *   heights   u64be height          -> block hash
 *   certs     u64be height          -> encoded finality certificate
 *   txs       tx hash               -> u64be height | u32be index
 *   state     state key (u8 module id ‖ module key) -> value: the latest value of each key (flat table, read by execution)
 *   nodes     trie node key (path ‖ version)      -> stored trie node (@qnexus/state trie.ts): the Merkle trie, every kept version
 *   stale     u64be version                      -> the node keys that version replaced (u32 count, then u16 length ‖ key each):
 *                                                   deleted with those nodes once the version leaves the retention window
 *   meta      'head' | 'genesis' | 'format' -> value
 *             'base'                -> u64be first height whose state and block this data dir holds (a snapshot's height; absent: 0)
 *             'snapshot'            -> u64be height ‖ root: a state snapshot being written (the state sublevels are partial)
 *   signer    'last' | 'lock'       -> double-sign protection records
 *             'floor'               -> u64be lowest round this data dir may sign in (set after a restore)
 *             'restored'            -> u64be ms: restored from a backup, floor not armed yet (armSignerFloor)
 *   epochs    u64be epoch           -> the first verified signed epoch announcement
 */

type Bytes = Uint8Array;
const SUB_OPTS = { keyEncoding: 'view', valueEncoding: 'view' } as const;
function sub(db: ClassicLevel<Bytes, Bytes>, name: string) {
  return db.sublevel<Bytes, Bytes>(name, SUB_OPTS);
}
type Sub = ReturnType<typeof sub>;

function u64be(n: number): Bytes {
  return new Writer(8).u64(n).finish();
}

function prefixed(prefix: Bytes, k: Bytes): Bytes {
  const out = new Uint8Array(prefix.length + k.length);
  out.set(prefix);
  out.set(k, prefix.length);
  return out;
}

function encodeKeyList(keys: readonly Bytes[]): Bytes {
  const w = new Writer(4 + keys.reduce((n, k) => n + 2 + k.length, 0)).u32(keys.length);
  for (const k of keys) w.u16(k.length).fixed(k, k.length);
  return w.finish();
}

function decodeKeyList(b: Bytes): Bytes[] {
  const r = new Reader(b);
  const n = r.u32();
  const out: Bytes[] = [];
  for (let i = 0; i < n; i++) out.push(r.fixed(r.u16()));
  return out;
}

export interface BlockCommit {
  height: number;
  hash: Bytes;
  block: Bytes;
  certificate: Bytes | null;
  txHashes: Bytes[];
  /** Included transactions whose message was refused (fee charged), by index: kept in the tx index for `GET /v1/txs/{hash}`. */
  txFailures?: readonly { index: number; code: string; message: string }[];
  /** The block's state writes by key hex: a value, or null to delete the key. */
  writes: ReadonlyMap<string, Bytes | null>;
  /** The trie nodes of the block's state version (`TrieUpdate` of @qnexus/state). */
  trie: TrieNodes;
  /** Set only for height 0: binds the data dir to its chain in the same batch as the genesis state. */
  genesisHash?: Bytes;
}

/** What a state version adds to and removes from the trie's nodes. */
export interface TrieNodes {
  version: number;
  puts: [Bytes, Bytes][];
  /** Nodes that are garbage at once (replaced within their own version). */
  dels: Bytes[];
  /** Nodes this version replaced: older versions still read them until they leave the retention window. */
  stale: Bytes[];
}

/** Synchronous reads of the committed state (LevelDB getSync): what `@qnexus/state`'s TrieState reads. */
export interface StateReads {
  readonly nodes: { get(nodeKey: Bytes): Bytes | undefined };
  value(keyHex: string): Bytes | undefined;
}

export interface TxLocation {
  height: number;
  index: number;
  /** Set when the transaction's message was refused in its block (its fee was charged, nothing else written). */
  error?: { code: string; message: string };
}

/** Longest refusal message kept in the tx index (a module's message is short; this bounds a bug's). */
const MAX_FAILURE_MESSAGE = 512;

/**
 * A tx index value: u64 height ‖ u32 index, then for a refused message u8 1 ‖ string code ‖
 * string message (older values end after the index).
 */
function txIndexValue(height: number, index: number, failure?: { code: string; message: string }): Bytes {
  const w = new Writer(failure ? 16 + failure.code.length + MAX_FAILURE_MESSAGE * 4 : 12).u64(height).u32(index);
  if (failure) w.u8(1).string(failure.code).string(truncate(failure.message));
  return w.finish();
}

function truncate(m: string): string {
  return m.length > MAX_FAILURE_MESSAGE ? `${m.slice(0, MAX_FAILURE_MESSAGE - 1)}…` : m;
}

/** The stored state: every entry, by key hex. */
export type StoredState = [string, Bytes][];

/**
 * Layout version of a data dir, written with the genesis block.
 * 4: blocks keyed by height ‖ hash, with a hash → height index (this layout).
 * 3: one key-value state under a versioned Merkle trie, blocks keyed by hash.
 * 2: the same keys under a flat sorted-leaf root; older: typed sublevels. A
 * data dir of another format must be reset.
 */
export const STATE_FORMAT = 4;

/**
 * A block's key: u64 height ‖ hash. New blocks sort after every stored one, so LevelDB's
 * compactions leave the files of older blocks where they are (trivial moves) instead of
 * merging megabytes of block bodies again with every flush, as random hash keys made them do
 * (CometBFT's block store keys blocks by height for the same reason).
 */
function blockKey(height: number, hash: Bytes): Bytes {
  return prefixed(u64be(height), hash);
}

/** Double-sign protection record: the last (height, round, step) this validator signed. */
export interface SignerRecord {
  height: number;
  round: number;
  /** 0 proposal, 1 prevote, 2 precommit. */
  step: number;
  blockHash: Bytes | null;
}

export interface LockRecord {
  height: number;
  round: number;
  blockHash: Bytes;
  block: Bytes | null;
  /** The encoded signed prevotes that justified the lock (its proof of lock); empty in records written before they were kept. */
  pol: Bytes[];
}

/** Progress of a data dir upgrade: heights covered so far (up to the last one indexed) of `total`, blocks moved to their height key. */
export interface UpgradeProgress {
  done: number;
  total: number;
  moved: number;
}

/** Heights per batch of the format 3 → 4 upgrade (blocks are at most a few MiB: a batch stays well under 100 MiB). */
const UPGRADE_HEIGHTS = 16;

/** At most this many proof-of-lock votes are kept with a lock (a committee's prevotes of one round). */
export const MAX_LOCK_POL_VOTES = 4096;

export class ChainStore {
  private readonly blocks: Sub;
  /** Finalized block hash → u64 height (blocks are keyed by height first: blockKey). */
  private readonly blockHeights: Sub;
  private readonly heights: Sub;
  private readonly certs: Sub;
  private readonly txs: Sub;
  private readonly state: Sub;
  private readonly nodes: Sub;
  private readonly stale: Sub;
  private readonly meta: Sub;
  private readonly signer: Sub;
  private readonly epochs: Sub;

  private readonly db: ClassicLevel<Bytes, Bytes>;

  private constructor(private readonly handle: LevelHandle) {
    const db = (this.db = handle.db);
    this.blocks = sub(db, 'b');
    // Sorts after 'b': its random keys do not widen a flush's key range over the older blocks.
    this.blockHeights = sub(db, 'i');
    this.heights = sub(db, 'h');
    this.certs = sub(db, 'c');
    this.txs = sub(db, 't');
    this.state = sub(db, 'k');
    this.nodes = sub(db, 'n');
    this.stale = sub(db, 'z');
    this.meta = sub(db, 'm');
    this.signer = sub(db, 's');
    this.epochs = sub(db, 'e');
  }

  /**
   * Open the node database at `dir`. With `upgrade`, a data dir of the previous layout
   * (format 3) is brought to this one first (see upgradeFrom3), reporting its progress to
   * `upgrade.onProgress`; without it (offline tools) the data dir is left as it is.
   */
  static async open(dir: string, opts: { upgrade?: { onProgress?: (p: UpgradeProgress) => void } } = {}): Promise<ChainStore> {
    const store = new ChainStore(await openLevel(dir, 'node'));
    try {
      if (opts.upgrade) await store.upgradeFrom3(opts.upgrade.onProgress);
      await store.loadLockBlocks();
    } catch (e) {
      await store.close();
      throw e;
    }
    return store;
  }

  close(): Promise<void> {
    return this.handle.close();
  }

  // ------------------------------------------------------------ backup

  /**
   * Write a consistent snapshot of this store into the new directory `dir`
   * (absolute, absent or empty) while the node keeps running: see createBackup.
   */
  backup(dir: string, opts: BackupOptions = {}): Promise<BackupResult> {
    return createBackup(this.handle, dir, { ...opts, describe: (copy) => ChainStore.describeBackup(copy) });
  }

  /** A node database's identity as a backup manifest records it (read from `h`, e.g. the backup's own copy). */
  static async describeBackup(h: LevelHandle): Promise<BackupIdentity> {
    const s = new ChainStore(h);
    const height = await s.headHeight();
    if (height < 0) throw new QnexusError('BAD_REQUEST', 'the database holds no chain yet (no genesis block): nothing to back up');
    const genesis = await s.genesisHash();
    const block = await s.blockAtHeight(height);
    const header = block ? decodeBlock(new Uint8Array(block)).header : null;
    return { kind: 'node', chainId: header?.chainId ?? null, genesisHash: genesis ? toHex(genesis) : null, shard: header?.shard ?? null, height, epoch: null };
  }

  /**
   * Restore a node backup into `dbDir` (which must not hold a database): the
   * copy is verified against the manifest and marked restored, so that its
   * first start arms the signer floor (armSignerFloor) before anything is signed.
   */
  static restoreBackup(backupDir: string, dbDir: string, now: () => number = Date.now): Promise<RestoreResult> {
    return restoreLevelBackup(backupDir, dbDir, {
      prepare: async (copy, m) => {
        if (m.kind !== 'node') throw new BackupError('BACKUP_CORRUPT', `${backupDir} is a ${m.kind} backup, not a node backup`);
        const id = await ChainStore.describeBackup(copy);
        for (const f of ['chainId', 'genesisHash', 'shard', 'height'] as const) {
          if (id[f] !== m[f]) throw new BackupError('BACKUP_CORRUPT', `the database in ${backupDir} has ${f} ${JSON.stringify(id[f])}, its manifest says ${JSON.stringify(m[f])}`);
        }
        await new ChainStore(copy).markRestored(now());
      },
    });
  }

  private key(s: string): Bytes {
    return new TextEncoder().encode(s);
  }

  // ------------------------------------------------------------ chain

  /** Height of the highest committed (finalized) block, or -1 for an empty store. */
  async headHeight(): Promise<number> {
    const v = await this.meta.get(this.key('head'));
    return v ? new Reader(v).u64n() : -1;
  }

  async genesisHash(): Promise<Bytes | undefined> {
    return this.meta.get(this.key('genesis'));
  }

  /** A finalized block by hash (a block stored only with a lock, not finalized, is not one). */
  async blockByHash(hash: Bytes): Promise<Bytes | undefined> {
    if (this.lockBlocks.has(toHex(hash))) return undefined;
    const h = await this.blockHeights.get(hash);
    return h ? this.blocks.get(blockKey(new Reader(h).u64n(), hash)) : undefined;
  }

  async hashAtHeight(height: number): Promise<Bytes | undefined> {
    return this.heights.get(u64be(height));
  }

  async blockAtHeight(height: number): Promise<Bytes | undefined> {
    const h = await this.hashAtHeight(height);
    return h ? this.blocks.get(blockKey(height, h)) : undefined;
  }

  async certificate(height: number): Promise<Bytes | undefined> {
    return this.certs.get(u64be(height));
  }

  /**
   * The stored blocks and certificates of heights `from..to` (inclusive), in
   * height order, read with one iterator per index and one multi-get for the
   * blocks instead of three lookups per height. It stops before the first
   * height that lacks its block or certificate (not written yet, or height 0),
   * so what it returns is always consecutive from `from`.
   */
  async certifiedRange(from: number, to: number): Promise<{ height: number; block: Bytes; certificate: Bytes }[]> {
    if (to < from) return [];
    const range = { gte: u64be(from), lte: u64be(to) };
    // Heights first: a block whose height entry is seen was written (with its certificate) in an earlier batch.
    const hashes = await this.heights.iterator(range).all();
    const [blocks, certs] = await Promise.all([this.blocks.getMany(hashes.map(([k, h]) => blockKey(new Reader(k).u64n(), h))), this.certs.iterator(range).all()]);
    const out: { height: number; block: Bytes; certificate: Bytes }[] = [];
    for (let i = 0; i < hashes.length; i++) {
      const height = new Reader(hashes[i]![0]).u64n();
      const cert = certs[i];
      const block = blocks[i];
      if (height !== from + i || !block || !cert || new Reader(cert[0]).u64n() !== height) break;
      out.push({ height, block, certificate: cert[1] });
    }
    return out;
  }

  async txLocation(hash: Bytes): Promise<TxLocation | undefined> {
    const v = await this.txs.get(hash);
    if (!v) return undefined;
    const r = new Reader(v);
    const loc: TxLocation = { height: r.u64n(), index: r.u32() };
    if (r.remaining > 0 && r.u8() === 1) loc.error = { code: r.string(64), message: r.string(MAX_FAILURE_MESSAGE * 4) };
    return loc;
  }

  /**
   * Commit a finalized block with its certificate, state changes and indices
   * in one atomic, synced batch. The caller (the node's Chain) commits heights
   * in order; the store does not re-check it.
   */
  async commitBlock(c: BlockCommit): Promise<void> {
    await this.commitBlocks([c]);
  }

  /**
   * Commit consecutive blocks (in height order) in one synced batch: all of
   * them or none survive a crash, so the store still holds a prefix of the
   * chain with every block whole. Later blocks' state entries overwrite
   * earlier ones within the batch; the head is the last block.
   */
  async commitBlocks(cs: readonly BlockCommit[]): Promise<void> {
    if (!cs.length) return;
    await this.serially(() => this.writeCommits(cs));
  }

  private async writeCommits(cs: readonly BlockCommit[]): Promise<void> {
    const batch = this.db.batch();
    const committed = new Set<string>();
    for (const c of cs) {
      const hex = toHex(c.hash);
      committed.add(hex);
      // The block a lock stored (synced) is already in place: the very same bytes are not written twice.
      if (this.lockBlocks.get(hex)?.raw !== c.block) batch.put(blockKey(c.height, c.hash), c.block, { sublevel: this.blocks });
      batch.put(c.hash, u64be(c.height), { sublevel: this.blockHeights });
      batch.put(u64be(c.height), c.hash, { sublevel: this.heights });
      if (c.certificate) batch.put(u64be(c.height), c.certificate, { sublevel: this.certs });
      const failures = new Map((c.txFailures ?? []).map((f) => [f.index, f]));
      c.txHashes.forEach((h, i) => batch.put(h, txIndexValue(c.height, i, failures.get(i)), { sublevel: this.txs }));
      this.putState(batch, c.writes, c.trie);
      if (c.genesisHash) {
        batch.put(this.key('genesis'), c.genesisHash, { sublevel: this.meta });
        batch.put(this.key('format'), u64be(STATE_FORMAT), { sublevel: this.meta });
      }
    }
    const last = cs[cs.length - 1]!;
    batch.put(this.key('head'), u64be(last.height), { sublevel: this.meta });
    this.dropLockBlocks(batch, last.height, committed);
    await batch.write({ sync: true });
    this.settleLockBlocks(last.height);
  }

  // ------------------------------------------------------------ lock blocks
  //
  // A validator persists the block it locks on before its precommit leaves (saveSigner), and
  // that block is nearly always the one finalized a moment later. It is stored once, where
  // finalized blocks live ('b', by height ‖ hash), and the commit does not write it again: a full block
  // is megabytes, and writing it twice per height (once inside the lock record, once at
  // commit) cost a loaded validator about 5 % of its event loop and put every block in LevelDB's log twice.
  // Until its height is finalized such a block is not a finalized block (blockByHash hides it);
  // when another block is finalized at its height it is deleted in the commit's batch.

  /**
   * Blocks stored by a lock and not yet finalized, by hash hex: their height, and the bytes this
   * process wrote (compared by identity at commit; unknown for those found at open, whose commit
   * then writes the block once more).
   */
  private readonly lockBlocks = new Map<string, { height: number; raw: Bytes | undefined }>();
  /** Height of the last commit this process wrote or found at open (lock blocks at or below it are settled). */
  private committedHeight = -1;
  /** saveSigner and the commits run one at a time, so the lock blocks above always match the disk. */
  private writeQueue: Promise<unknown> = Promise.resolve();

  private serially<T>(f: () => Promise<T>): Promise<T> {
    const run = this.writeQueue.then(f, f);
    this.writeQueue = run.catch(() => undefined);
    return run;
  }

  /** Delete (in `batch`) the lock blocks at heights up to `height` that were not finalized. */
  private dropLockBlocks(batch: ReturnType<ClassicLevel<Bytes, Bytes>['batch']>, height: number, committed: ReadonlySet<string>): void {
    for (const [hex, e] of this.lockBlocks) if (e.height <= height && !committed.has(hex)) batch.del(blockKey(e.height, fromHex(hex)), { sublevel: this.blocks });
  }

  /** After a commit up to `height` is on disk: lock blocks at or below it are finalized or deleted. */
  private settleLockBlocks(height: number): void {
    for (const [hex, e] of this.lockBlocks) if (e.height <= height) this.lockBlocks.delete(hex);
    this.committedHeight = Math.max(this.committedHeight, height);
  }

  /**
   * At open: the lock record names the blocks stored by locks of its height. Above the head
   * they are pending (hidden from blockByHash, reused by the commit); at or below it (a crash
   * between the commit and the next signature) any that was not finalized is deleted.
   */
  private async loadLockBlocks(): Promise<void> {
    this.committedHeight = await this.headHeight();
    const rec = await this.signer.get(this.key('lock'));
    if (!rec) return;
    const { height, stored } = readLockRecord(rec);
    if (height > this.committedHeight) {
      for (const h of stored) this.lockBlocks.set(toHex(h), { height, raw: undefined });
      return;
    }
    const final = await this.hashAtHeight(height);
    const orphans = stored.filter((h) => !final || !bytesEqual(final, h));
    if (orphans.length) await this.db.batch(orphans.map((h) => ({ type: 'del' as const, sublevel: this.blocks, key: blockKey(height, h) })));
  }

  private nodePrefix: Bytes | undefined;

  private putState(batch: ReturnType<ClassicLevel<Bytes, Bytes>['batch']>, writes: ReadonlyMap<string, Bytes | null>, trie: TrieNodes): void {
    for (const [k, v] of writes) {
      if (v) batch.put(fromHex(k), v, { sublevel: this.state });
      else batch.del(fromHex(k), { sublevel: this.state });
    }
    // Thousands of nodes a block: prefixed here once each instead of through the sublevel option's per-key
    // encoding (a third of the batch's building time).
    const nodePrefix = (this.nodePrefix ??= new TextEncoder().encode(this.nodes.prefix));
    for (const k of trie.dels) batch.del(prefixed(nodePrefix, k));
    for (const [k, v] of trie.puts) batch.put(prefixed(nodePrefix, k), v);
    // One record per version, not one per node: a block replaces thousands of nodes.
    if (trie.stale.length) batch.put(u64be(trie.version), encodeKeyList(trie.stale), { sublevel: this.stale });
  }

  /** State writes outside a block (a genesis built in chunks): values and trie nodes in one batch. */
  async writeState(writes: ReadonlyMap<string, Bytes | null>, trie: TrieNodes): Promise<void> {
    const batch = this.db.batch();
    this.putState(batch, writes, trie);
    await batch.write();
  }

  /** Synchronous reads of the committed state, for the node's TrieState (see StateReads). */
  stateReads(): StateReads {
    const nodes = this.nodes;
    const state = this.state;
    return {
      nodes: { get: (k) => nodes.getSync(k) },
      value: (keyHex) => state.getSync(fromHex(keyHex)),
    };
  }

  /**
   * Delete the trie nodes that versions up to `version` replaced: no version
   * after it reads them, so every version from `version` on stays whole. In
   * batches of `batchSize`; returns how many nodes went.
   */
  async pruneStale(version: number, versionsPerBatch = 16): Promise<number> {
    let pruned = 0;
    for (;;) {
      const records = await this.stale.iterator({ lt: u64be(version + 1), limit: versionsPerBatch }).all();
      if (!records.length) return pruned;
      const batch = this.db.batch();
      for (const [v, list] of records) {
        for (const k of decodeKeyList(list)) batch.del(k, { sublevel: this.nodes });
        batch.del(v, { sublevel: this.stale });
        pruned += new Reader(list).u32();
      }
      await batch.write();
      if (records.length < versionsPerBatch) return pruned;
    }
  }

  /** Every entry of the flat state table (tests and tools; a node never loads its whole state). */
  async loadState(): Promise<StoredState> {
    const out: StoredState = [];
    for await (const [k, v] of this.state.iterator()) out.push([toHex(k), v]);
    return out;
  }

  /** Number of stored trie nodes and stale records (tests and tools: a full scan). */
  async countTrie(): Promise<{ nodes: number; stale: number }> {
    let nodes = 0;
    let stale = 0;
    for await (const _ of this.nodes.keys()) nodes++;
    for await (const [, list] of this.stale.iterator()) stale += new Reader(list).u32();
    return { nodes, stale };
  }

  // ------------------------------------------------------------ state snapshots

  /** First height whose block and state this data dir holds (0, or the height of the snapshot it was started from). */
  async baseHeight(): Promise<number> {
    const v = await this.meta.get(this.key('base'));
    return v ? new Reader(v).u64n() : 0;
  }

  /** The snapshot being written into the state sublevels, if a start was interrupted while writing one. */
  async snapshotInProgress(): Promise<{ height: number; root: Bytes } | null> {
    const v = await this.meta.get(this.key('snapshot'));
    if (!v) return null;
    const r = new Reader(v);
    return { height: r.u64n(), root: r.fixed(32) };
  }

  /** Empty the state sublevels (flat values, trie nodes, stale records). With `snapshot`, mark that one as being written. */
  async clearState(snapshot?: { height: number; root: Bytes }): Promise<void> {
    await Promise.all([this.state.clear(), this.nodes.clear(), this.stale.clear()]);
    const batch = this.db.batch();
    if (snapshot) batch.put(this.key('snapshot'), new Writer(40).u64(snapshot.height).fixed(snapshot.root, 32).finish(), { sublevel: this.meta });
    else batch.del(this.key('snapshot'), { sublevel: this.meta });
    await batch.write({ sync: true });
  }

  /** One part of a snapshot: verified trie nodes (stored at the snapshot's version) and their entries' flat values. */
  async writeSnapshotPart(puts: readonly [Bytes, Bytes][], entries: readonly [string, Bytes][]): Promise<void> {
    const batch = this.db.batch();
    for (const [k, v] of puts) batch.put(k, v, { sublevel: this.nodes });
    for (const [k, v] of entries) batch.put(fromHex(k), v, { sublevel: this.state });
    await batch.write();
  }

  /**
   * Finish a snapshot: its block and certificate become the head and the base
   * of this data dir, in one synced batch (before it, a restart finds the
   * snapshot marker and starts over).
   */
  async finishSnapshot(c: Omit<BlockCommit, 'writes' | 'trie' | 'genesisHash'> & { certificate: Bytes }): Promise<void> {
    await this.serially(() => this.writeSnapshotHead(c));
  }

  private async writeSnapshotHead(c: Omit<BlockCommit, 'writes' | 'trie' | 'genesisHash'> & { certificate: Bytes }): Promise<void> {
    const batch = this.db.batch();
    batch.put(blockKey(c.height, c.hash), c.block, { sublevel: this.blocks });
    batch.put(c.hash, u64be(c.height), { sublevel: this.blockHeights });
    batch.put(u64be(c.height), c.hash, { sublevel: this.heights });
    batch.put(u64be(c.height), c.certificate, { sublevel: this.certs });
    c.txHashes.forEach((h, i) => batch.put(h, txIndexValue(c.height, i), { sublevel: this.txs }));
    batch.put(this.key('head'), u64be(c.height), { sublevel: this.meta });
    batch.put(this.key('base'), u64be(c.height), { sublevel: this.meta });
    batch.del(this.key('snapshot'), { sublevel: this.meta });
    this.dropLockBlocks(batch, c.height, new Set([toHex(c.hash)]));
    await batch.write({ sync: true });
    this.settleLockBlocks(c.height);
  }

  /** The state layout version of this data dir (0: written before versions were recorded). */
  async stateFormat(): Promise<number> {
    const v = await this.meta.get(this.key('format'));
    return v ? new Reader(v).u64n() : 0;
  }

  // ------------------------------------------------------------ upgrade

  /**
   * Bring a data dir of format 3 (blocks keyed by hash) to this layout in place: every
   * finalized block, and every block the lock record names, moves to its height key. Batches
   * of UPGRADE_HEIGHTS heights; the new format is written last, synced, so an upgrade that is
   * interrupted resumes at the next open (a height already moved is only indexed again).
   * Other formats are left to the node's format check.
   */
  private async upgradeFrom3(onProgress?: (p: UpgradeProgress) => void): Promise<void> {
    if ((await this.stateFormat()) !== 3) return;
    const head = await this.headHeight();
    const total = head + 1;
    let moved = 0;
    let done = 0;
    const move = async (rows: readonly [number, Bytes][]): Promise<void> => {
      const blocks = await this.blocks.getMany(rows.map(([, h]) => h));
      const batch = this.db.batch();
      rows.forEach(([height, hash], i) => {
        const raw = blocks[i];
        if (raw) {
          batch.put(blockKey(height, hash), raw, { sublevel: this.blocks });
          batch.del(hash, { sublevel: this.blocks });
          moved++;
        }
        batch.put(hash, u64be(height), { sublevel: this.blockHeights });
      });
      await batch.write();
    };
    onProgress?.({ done: 0, total, moved: 0 });
    let rows: [number, Bytes][] = [];
    let last = Date.now();
    // A data dir started from a snapshot has no heights between 0 and its base: progress counts
    // heights covered (up to the last one indexed), so it ends at `total` either way.
    for await (const [k, hash] of this.heights.iterator()) {
      rows.push([new Reader(k).u64n(), hash]);
      if (rows.length < UPGRADE_HEIGHTS) continue;
      await move(rows);
      done = rows[rows.length - 1]![0] + 1;
      rows = [];
      if (onProgress && Date.now() - last >= 2000) {
        last = Date.now();
        onProgress({ done, total, moved });
      }
    }
    if (rows.length) {
      await move(rows);
      done = rows[rows.length - 1]![0] + 1;
    }
    // Blocks stored by the lock record's height: kept (under their height) above the head,
    // deleted at or below it unless finalized (those moved above).
    const rec = await this.signer.get(this.key('lock'));
    if (rec) {
      const { height, stored } = readLockRecord(rec);
      const final = height <= head ? await this.hashAtHeight(height) : undefined;
      const batch = this.db.batch();
      for (const hash of stored) {
        if (final && bytesEqual(final, hash)) continue;
        const raw = await this.blocks.get(hash);
        if (!raw) continue;
        if (height > head) {
          batch.put(blockKey(height, hash), raw, { sublevel: this.blocks });
          moved++;
        }
        batch.del(hash, { sublevel: this.blocks });
      }
      await batch.write();
    }
    await this.db.batch([{ type: 'put', sublevel: this.meta, key: this.key('format'), value: u64be(STATE_FORMAT) }], { sync: true });
    onProgress?.({ done, total, moved });
  }

  // ------------------------------------------------------------ epoch announcements

  /**
   * Store a verified signed epoch announcement (raw wire bytes), fsynced so a
   * committee the node has acted on survives a crash. Overwrites: keeping the
   * first one per epoch is the caller's choice (they are identical but for
   * `issuedSlot` and the hedged signature).
   */
  async putAnnouncement(epoch: number, raw: Bytes): Promise<void> {
    // put() on a sublevel takes no `sync` option; a one-entry batch on the root does.
    await this.db.batch([{ type: 'put', sublevel: this.epochs, key: u64be(epoch), value: raw }], { sync: true });
  }

  /** Every stored announcement by epoch (for re-verification and serving at start). */
  async loadAnnouncements(): Promise<Map<number, Bytes>> {
    const out = new Map<number, Bytes>();
    for await (const [k, v] of this.epochs.iterator()) out.set(new Reader(k).u64n(), v);
    return out;
  }

  // ------------------------------------------------------------ signer

  async loadSigner(): Promise<{ last: SignerRecord | null; lock: LockRecord | null }> {
    const last = await this.signer.get(this.key('last'));
    const lock = await this.signer.get(this.key('lock'));
    let lastRec: SignerRecord | null = null;
    if (last) {
      const r = new Reader(last);
      const height = r.u64n();
      const round = r.u64n();
      const step = r.u8();
      const has = r.u8();
      lastRec = { height, round, step, blockHash: has ? r.fixed(32) : null };
    }
    let lockRec: LockRecord | null = null;
    if (lock) {
      const { height, round, blockHash, inline, blockStored, pol } = readLockRecord(lock);
      let block = inline.length ? inline : null;
      if (blockStored) block = (await this.blocks.get(blockKey(height, blockHash))) ?? null;
      lockRec = { height, round, blockHash, block, pol };
    }
    return { last: lastRec, lock: lockRec };
  }

  /**
   * Mark this data dir as restored from a backup (synced): its signer records
   * are older than what the validator key may have signed since, so its next
   * start must arm a signer floor before anything is signed (armSignerFloor).
   */
  async markRestored(atMs: number): Promise<void> {
    await this.db.batch([{ type: 'put', sublevel: this.signer, key: this.key('restored'), value: u64be(Math.max(0, Math.floor(atMs))) }], { sync: true });
  }

  /** The lowest round this data dir may sign in (set after a restore), or null when there is none. */
  async signerFloor(): Promise<number | null> {
    const v = await this.signer.get(this.key('floor'));
    return v ? new Reader(v).u64n() : null;
  }

  /**
   * Called at start, before consensus runs, with the first round that begins
   * after now. If the data dir was restored from a backup and has not started
   * since, the floor becomes at least `round` and the restored mark is cleared,
   * in one synced batch. A floor only ever rises and stays for good: the
   * validator then never signs in a round before it, whatever its (restored,
   * older) last-signed record says, so it cannot sign a second message for a
   * round the original process signed in before it was stopped.
   */
  async armSignerFloor(round: number): Promise<{ floor: number | null; armed: boolean; restoredAt: number | null }> {
    const restored = await this.signer.get(this.key('restored'));
    const current = await this.signerFloor();
    if (!restored) return { floor: current, armed: false, restoredAt: null };
    const floor = Math.max(current ?? 0, Math.max(0, Math.floor(round)));
    const batch = this.db.batch();
    batch.put(this.key('floor'), u64be(floor), { sublevel: this.signer });
    batch.del(this.key('restored'), { sublevel: this.signer });
    await batch.write({ sync: true });
    return { floor, armed: true, restoredAt: new Reader(restored).u64n() };
  }

  /**
   * Persist what this validator is about to sign, fsynced, before the
   * signature leaves the process. One batch so the lock and the last-signed
   * record can never disagree after a crash.
   */
  async saveSigner(last: SignerRecord, lock: LockRecord | null): Promise<void> {
    await this.serially(() => this.writeSigner(last, lock));
  }

  private async writeSigner(last: SignerRecord, lock: LockRecord | null): Promise<void> {
    const batch = this.db.batch();
    const w = new Writer(64).u64(last.height).u64(last.round).u8(last.step);
    if (last.blockHash) w.u8(1).fixed(last.blockHash, 32);
    else w.u8(0);
    batch.put(this.key('last'), w.finish(), { sublevel: this.signer });
    let stored: { hex: string; height: number; raw: Bytes } | null = null;
    if (!lock) {
      batch.del(this.key('lock'), { sublevel: this.signer });
    } else {
      const hex = toHex(lock.blockHash);
      // The block goes where finalized blocks live (once per lock: later signatures of the
      // height name it); a lock at or below the head has nothing left to finalize.
      if (lock.block && lock.height > this.committedHeight) {
        if (this.lockBlocks.get(hex)?.raw !== lock.block) {
          batch.put(blockKey(lock.height, lock.blockHash), lock.block, { sublevel: this.blocks });
          stored = { hex, height: lock.height, raw: lock.block };
        }
      }
      const names = [...this.lockBlocks].filter(([h, e]) => e.height === lock.height && h !== hex).map(([h]) => fromHex(h));
      const blockStored = stored !== null || this.lockBlocks.has(hex);
      if (blockStored) names.push(lock.blockHash);
      batch.put(this.key('lock'), encodeLockRecord(lock, blockStored, names), { sublevel: this.signer });
    }
    await batch.write({ sync: true });
    if (stored) this.lockBlocks.set(stored.hex, { height: stored.height, raw: stored.raw });
  }
}

/**
 * The lock record: u64 height ‖ u64 round ‖ block hash ‖ bytes inline block (empty since lock
 * blocks are stored apart; older records hold it here) ‖ u32 n ‖ n proof-of-lock votes ‖
 * u8 2 ‖ u8 whether the lock's block is stored apart (under blockKey) ‖ u32 m ‖ m hashes of the blocks stored
 * by locks of this height. Older records end after the inline block or after the votes.
 */
function encodeLockRecord(lock: LockRecord, blockStored: boolean, stored: readonly Bytes[]): Bytes {
  const pol = lock.pol.slice(0, MAX_LOCK_POL_VOTES);
  const w = new Writer(64 + pol.reduce((n, v) => n + v.length + 4, 4) + 8 + 32 * stored.length)
    .u64(lock.height)
    .u64(lock.round)
    .fixed(lock.blockHash, 32)
    .bytes(new Uint8Array(0));
  w.u32(pol.length);
  for (const v of pol) w.bytes(v);
  w.u8(2).u8(blockStored ? 1 : 0).u32(stored.length);
  for (const h of stored) w.fixed(h, 32);
  return w.finish();
}

function readLockRecord(rec: Bytes): { height: number; round: number; blockHash: Bytes; inline: Bytes; blockStored: boolean; pol: Bytes[]; stored: Bytes[] } {
  const r = new Reader(rec);
  const height = r.u64n();
  const round = r.u64n();
  const blockHash = r.fixed(32);
  const inline = r.bytes(64 * 1024 * 1024);
  const pol: Bytes[] = [];
  const stored: Bytes[] = [];
  let blockStored = false;
  if (r.remaining > 0) {
    const n = r.u32('proof-of-lock votes');
    if (n > MAX_LOCK_POL_VOTES) throw new QnexusError('MALFORMED', `lock record holds ${n} proof-of-lock votes (at most ${MAX_LOCK_POL_VOTES})`);
    for (let i = 0; i < n; i++) pol.push(r.bytes(64 * 1024));
  }
  if (r.remaining > 0) {
    const tag = r.u8();
    if (tag !== 2) throw new QnexusError('MALFORMED', `lock record of unknown layout ${tag}`);
    blockStored = r.u8() === 1;
    const m = r.u32('lock blocks');
    if (m > 1024) throw new QnexusError('MALFORMED', `lock record names ${m} stored blocks`);
    for (let i = 0; i < m; i++) stored.push(r.fixed(32));
  }
  return { height, round, blockHash, inline, blockStored, pol, stored };
}
