import { ClassicLevel } from 'classic-level';
import { fromHex, toHex } from '@qnexus/crypto';
import { QnexusError, Reader, Writer } from '@qnexus/types';
import { mkdirSync, realpathSync } from 'node:fs';

/**
 * Per-node storage on classic-level (LevelDB), behind small repositories.
 * Every multi-key write is one atomic batch: a crash at any point leaves
 * either the whole block commit on disk or none of it.
 *
 * Layout (one LevelDB, sublevels):
 *   blocks    block hash            -> encoded block
 *   heights   u64be height          -> block hash
 *   certs     u64be height          -> encoded finality certificate
 *   txs       tx hash               -> u64be height | u32be index
 *   accounts  20-byte address       -> encoded account
 *   xfers     32-byte transfer id   -> encoded cross-shard transfer record
 *   fees      20-byte address       -> u64be pending proposer fees (absent = 0)
 *   meta      'head' | 'counters' | 'genesis' -> value
 *   signer    'last' | 'lock'       -> double-sign protection records
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

export interface BlockCommit {
  height: number;
  hash: Bytes;
  block: Bytes;
  certificate: Bytes | null;
  txHashes: Bytes[];
  /** Encoded accounts that changed, keyed by address hex. */
  accounts: Map<string, Bytes>;
  /** Encoded transfer records that changed, keyed by transfer id hex. */
  xfers: Map<string, Bytes>;
  /** Pending proposer fees that changed, keyed by address hex; 0 deletes the entry. */
  pendingFees: Map<string, bigint>;
  /** Encoded state counters (state's encodeCounters). */
  counters: Bytes;
  /** Set only for height 0: binds the data dir to its chain in the same batch as the genesis state. */
  genesisHash?: Bytes;
}

export interface TxLocation {
  height: number;
  index: number;
}

export interface StoredState {
  accounts: [string, Bytes][];
  xfers: Bytes[];
  /** Pending proposer fees by address hex, in address order (only non-zero entries are stored). */
  pendingFees: [string, bigint][];
  counters: Bytes | undefined;
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
}

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
 * Open (creating) the LevelDB at `dir` for one owner (`who`, e.g. "node",
 * "beacon", named in the error when another process holds it). Used by every
 * store so the in-process double-open guard is one mechanism.
 */
export async function openLevel(dir: string, who: string): Promise<LevelHandle> {
  mkdirSync(dir, { recursive: true });
  const real = realpathSync(dir);
  if (openDirs.has(real)) throw new QnexusError('UNAVAILABLE', `cannot open database at ${dir}: already open in this process`);
  openDirs.add(real);
  const db = new ClassicLevel<Bytes, Bytes>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  try {
    await db.open();
  } catch (e) {
    openDirs.delete(real);
    const cause = (e as { cause?: Error }).cause?.message ?? (e as Error).message;
    throw new QnexusError('UNAVAILABLE', `cannot open database at ${dir}: ${cause} (is another ${who} using this data dir?)`);
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

export class ChainStore {
  private readonly blocks: Sub;
  private readonly heights: Sub;
  private readonly certs: Sub;
  private readonly txs: Sub;
  private readonly accounts: Sub;
  private readonly xfers: Sub;
  private readonly fees: Sub;
  private readonly meta: Sub;
  private readonly signer: Sub;
  private readonly epochs: Sub;

  private readonly db: ClassicLevel<Bytes, Bytes>;

  private constructor(private readonly handle: LevelHandle) {
    const db = (this.db = handle.db);
    this.blocks = sub(db, 'b');
    this.heights = sub(db, 'h');
    this.certs = sub(db, 'c');
    this.txs = sub(db, 't');
    this.accounts = sub(db, 'a');
    this.xfers = sub(db, 'x');
    this.fees = sub(db, 'p');
    this.meta = sub(db, 'm');
    this.signer = sub(db, 's');
    this.epochs = sub(db, 'e');
  }

  static async open(dir: string): Promise<ChainStore> {
    return new ChainStore(await openLevel(dir, 'node'));
  }

  close(): Promise<void> {
    return this.handle.close();
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

  async blockByHash(hash: Bytes): Promise<Bytes | undefined> {
    return this.blocks.get(hash);
  }

  async hashAtHeight(height: number): Promise<Bytes | undefined> {
    return this.heights.get(u64be(height));
  }

  async blockAtHeight(height: number): Promise<Bytes | undefined> {
    const h = await this.hashAtHeight(height);
    return h ? this.blocks.get(h) : undefined;
  }

  async certificate(height: number): Promise<Bytes | undefined> {
    return this.certs.get(u64be(height));
  }

  async txLocation(hash: Bytes): Promise<TxLocation | undefined> {
    const v = await this.txs.get(hash);
    if (!v) return undefined;
    const r = new Reader(v);
    return { height: r.u64n(), index: r.u32() };
  }

  /**
   * Commit a finalized block with its certificate, state changes and indices
   * in one atomic, synced batch. The caller (the node's Chain) commits heights
   * in order; the store does not re-check it.
   */
  async commitBlock(c: BlockCommit): Promise<void> {
    const batch = this.db.batch();
    batch.put(c.hash, c.block, { sublevel: this.blocks });
    batch.put(u64be(c.height), c.hash, { sublevel: this.heights });
    if (c.certificate) batch.put(u64be(c.height), c.certificate, { sublevel: this.certs });
    c.txHashes.forEach((h, i) => batch.put(h, new Writer(12).u64(c.height).u32(i).finish(), { sublevel: this.txs }));
    for (const [addr, acc] of c.accounts) batch.put(fromHex(addr), acc, { sublevel: this.accounts });
    for (const [id, rec] of c.xfers) batch.put(fromHex(id), rec, { sublevel: this.xfers });
    for (const [addr, amount] of c.pendingFees) {
      if (amount === 0n) batch.del(fromHex(addr), { sublevel: this.fees });
      else batch.put(fromHex(addr), new Writer(8).u64(amount).finish(), { sublevel: this.fees });
    }
    batch.put(this.key('counters'), c.counters, { sublevel: this.meta });
    batch.put(this.key('head'), u64be(c.height), { sublevel: this.meta });
    if (c.genesisHash) batch.put(this.key('genesis'), c.genesisHash, { sublevel: this.meta });
    await batch.write({ sync: true });
  }

  async loadState(): Promise<StoredState> {
    const accounts: [string, Bytes][] = [];
    for await (const [k, v] of this.accounts.iterator()) accounts.push([toHex(k), v]);
    const xfers: Bytes[] = [];
    for await (const v of this.xfers.values()) xfers.push(v);
    const pendingFees: [string, bigint][] = [];
    for await (const [k, v] of this.fees.iterator()) pendingFees.push([toHex(k), new Reader(v).u64()]);
    return { accounts, xfers, pendingFees, counters: await this.meta.get(this.key('counters')) };
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
      const r = new Reader(lock);
      const height = r.u64n();
      const round = r.u64n();
      const blockHash = r.fixed(32);
      const blk = r.bytes(64 * 1024 * 1024);
      lockRec = { height, round, blockHash, block: blk.length ? blk : null };
    }
    return { last: lastRec, lock: lockRec };
  }

  /**
   * Persist what this validator is about to sign, fsynced, before the
   * signature leaves the process. One batch so the lock and the last-signed
   * record can never disagree after a crash.
   */
  async saveSigner(last: SignerRecord, lock: LockRecord | null): Promise<void> {
    const batch = this.db.batch();
    const w = new Writer(64).u64(last.height).u64(last.round).u8(last.step);
    if (last.blockHash) w.u8(1).fixed(last.blockHash, 32);
    else w.u8(0);
    batch.put(this.key('last'), w.finish(), { sublevel: this.signer });
    if (!lock) {
      batch.del(this.key('lock'), { sublevel: this.signer });
    } else {
      batch.put(
        this.key('lock'),
        new Writer(64 + (lock.block?.length ?? 0)).u64(lock.height).u64(lock.round).fixed(lock.blockHash, 32).bytes(lock.block ?? new Uint8Array(0)).finish(),
        { sublevel: this.signer },
      );
    }
    await batch.write({ sync: true });
  }
}
