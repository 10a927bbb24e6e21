import { fromHex, toHex } from '@qnexus/crypto';
import { QnexusError } from '@qnexus/types';
import { ByteCache } from './lru.js';
import { MemoryTrieDB, MerkleTrie, type StateProof, type TrieDB, type TrieUpdate } from './trie.js';

/**
 * The shard state is one key-value space: `u8 module id ‖ module key` →
 * canonical value bytes. Keys are handled as lowercase hex strings, whose
 * order is the byte order, so sorting hex sorts keys.
 *
 * Three layers:
 * - `TrieState`: the committed state, in storage behind bounded caches, with
 *   its commitment (a versioned Merkle trie: root, proofs, old versions);
 * - `Branch`: pending writes over a reader. A block executes on a branch of the
 *   committed state, each transaction on a branch of the block branch; a failed
 *   transaction drops its branch, so nothing it wrote survives, whatever order
 *   it checked and wrote in;
 * - `ModuleStore`: a module's view, confined to its own prefix.
 */
export type KeyHex = string;

/** A write set: a value, or null for a deletion. */
export type Writes = ReadonlyMap<KeyHex, Uint8Array | null>;

export interface KVReader {
  get(key: KeyHex): Uint8Array | undefined;
  /** Entries whose key starts with `prefix`, in key order; at most `limit`. */
  range(prefix: KeyHex, limit: number): [KeyHex, Uint8Array][];
}

/** Largest number of entries one `range` call may return: every loop over the store is bounded. */
export const MAX_RANGE = 1_000_000;

function checkLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 0 || limit > MAX_RANGE) throw new RangeError(`range limit ${limit} is out of bounds`);
}

/**
 * How the committed state is authenticated: a root over every entry and
 * proofs for any key, present or absent (the versioned Merkle trie of trie.ts).
 */
export interface StateCommitment {
  /** The root after `writes` on top of the committed entries, without applying them. */
  rootWith(writes?: Writes): Uint8Array;
  /** Proofs for keys (present or absent) against the committed root. */
  prove(keys: readonly Uint8Array[]): StateProof[];
}

/** Where committed state lives: the trie's nodes and the flat table of each key's latest value, both read synchronously. */
export interface StateStorage {
  readonly nodes: TrieDB;
  /** The latest committed value of a key (flat table), undefined when absent. */
  value(key: KeyHex): Uint8Array | undefined;
}

/** What one committed version adds to storage: the flat values and the trie's nodes; the node writes it in its block batch. */
export interface StateUpdate {
  version: number;
  writes: Writes;
  trie: TrieUpdate;
}

/** State kept in memory (tests, genesis, tools): writes land at once. */
export class MemoryStorage implements StateStorage {
  readonly nodes = new MemoryTrieDB();
  private readonly values = new Map<KeyHex, Uint8Array>();

  value(key: KeyHex): Uint8Array | undefined {
    return this.values.get(key);
  }

  write(u: StateUpdate): void {
    this.nodes.apply(u.trie);
    for (const [k, v] of u.writes) {
      if (v) this.values.set(k, v);
      else this.values.delete(k);
    }
  }
}

export interface StateOptions {
  /** Bound of the trie's node cache. */
  nodeCacheBytes?: number;
  /** Bound of the cache of values read from the flat table. */
  valueCacheBytes?: number;
}

export const DEFAULT_VALUE_CACHE_BYTES = 16 * 1024 * 1024;
/** Rough heap cost of a cached value beyond its bytes (Map entry, key string, typed array header). */
const VALUE_OVERHEAD = 160;

/**
 * The committed state of one shard over a `StateStorage`: reads through a
 * bounded cache, the Merkle trie's root and proofs, and versions (block
 * heights). Memory does not grow with the number of keys: only the caches and
 * the writes of blocks committed but not yet written (`apply` → `flushed`).
 */
export class TrieState implements KVReader, StateCommitment {
  private trie: MerkleTrie;
  /** Values of applied versions whose batch has not reached storage yet, with the version that wrote them. */
  private readonly pending = new Map<KeyHex, { v: Uint8Array | null; version: number }>();
  private readonly cache: ByteCache<KeyHex, Uint8Array | null>;
  /** The update `rootWith` computed for a write set, reused when that same write set is applied (a block's commit). */
  private hashed: { writes: Writes; update: TrieUpdate } | null = null;

  constructor(
    readonly storage: StateStorage,
    version: number,
    private readonly opts: StateOptions = {},
  ) {
    this.trie = new MerkleTrie(storage.nodes, version, { cacheBytes: opts.nodeCacheBytes });
    this.cache = new ByteCache(opts.valueCacheBytes ?? DEFAULT_VALUE_CACHE_BYTES);
  }

  /** An empty state in memory. */
  static memory(): TrieState {
    return new TrieState(new MemoryStorage(), -1);
  }

  /** The committed version (block height; -1 before genesis). */
  get version(): number {
    return this.trie.version;
  }

  /** Number of entries. */
  get count(): number {
    return this.trie.count;
  }

  get size(): number {
    return this.trie.count;
  }

  /** Every entry in key order, through the trie (tests and tools: at most MAX_RANGE). */
  all(): [KeyHex, Uint8Array][] {
    return this.trie.range('', MAX_RANGE);
  }

  get(key: KeyHex): Uint8Array | undefined {
    const p = this.pending.get(key);
    if (p) return p.v ?? undefined;
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit ?? undefined;
    const v = this.storage.value(key);
    this.cache.set(key, v ?? null, VALUE_OVERHEAD + key.length + (v?.length ?? 0));
    return v;
  }

  /** The committed value of a key if it is in memory (pending or cached), without reading storage. */
  private peek(key: KeyHex): Uint8Array | undefined {
    const p = this.pending.get(key);
    if (p) return p.v ?? undefined;
    return this.cache.get(key) ?? undefined;
  }

  range(prefix: KeyHex, limit: number): [KeyHex, Uint8Array][] {
    checkLimit(limit);
    return this.trie.range(prefix, limit);
  }

  /** The root after `writes` at the next version, without applying them. */
  rootWith(writes: Writes = EMPTY): Uint8Array {
    return this.updateFor(writes, this.version + 1).root;
  }

  private updateFor(writes: Writes, version: number): TrieUpdate {
    if (this.hashed?.writes === writes && this.hashed.update.version === version) return this.hashed.update;
    // The values execution just read (still in memory) let the trie skip reading the leaves it replaces;
    // a value not in memory is not read from disk for this (the trie then reads the leaf instead).
    const update = this.trie.update(writes, version, (k) => this.peek(k));
    this.hashed = { writes, update };
    return update;
  }

  root(): Uint8Array {
    return this.trie.root();
  }

  /** The root of an older version still kept (STATE_PRUNED otherwise). */
  rootAt(version: number): Uint8Array {
    return this.trie.rootAt(version);
  }

  /**
   * Commit `writes` as `version` (default: the next one): readable at once,
   * returned for the caller to write to storage in its batch, then `flushed`.
   * A `MemoryStorage` takes it at once.
   */
  apply(writes: Writes, version = this.version + 1): StateUpdate {
    const trie = this.updateFor(writes, version);
    this.hashed = null;
    this.trie.apply(trie);
    const u: StateUpdate = { version, writes, trie };
    if (this.storage instanceof MemoryStorage) {
      this.storage.write(u);
      this.trie.flushed(trie);
      for (const [k, v] of writes) this.cacheValue(k, v);
      return u;
    }
    for (const [k, v] of writes) this.pending.set(k, { v, version });
    return u;
  }

  /** `u` reached storage: its values and nodes leave memory (except what the caches keep). */
  flushed(u: StateUpdate): void {
    this.trie.flushed(u.trie);
    for (const [k, v] of u.writes) {
      if (this.pending.get(k)?.version !== u.version) continue;
      this.pending.delete(k);
      this.cacheValue(k, v);
    }
  }

  private cacheValue(k: KeyHex, v: Uint8Array | null): void {
    this.cache.set(k, v, VALUE_OVERHEAD + k.length + (v?.length ?? 0));
  }

  /** Proofs for keys (present or absent) against the root of `version` (default: the committed one). */
  prove(keys: readonly Uint8Array[], version?: number): StateProof[] {
    return keys.map((k) => this.trie.prove(k, version));
  }

  /** A value at an older version still kept (read through the trie; STATE_PRUNED otherwise). */
  getAt(key: KeyHex, version: number): Uint8Array | undefined {
    return this.trie.get(key, version);
  }

  /** Snapshot items of a subtree of a kept version (see MerkleTrie.exportSubtree). */
  exportSubtree(version: number, path: string, maxItems: number, maxBytes: number): Uint8Array[] {
    return this.trie.exportSubtree(version, path, maxItems, maxBytes);
  }

  /** Start over from what storage holds at `version` (after a snapshot was written underneath). */
  reopen(version: number): void {
    this.trie = new MerkleTrie(this.storage.nodes, version, { cacheBytes: this.opts.nodeCacheBytes });
    this.pending.clear();
    this.cache.clear();
    this.hashed = null;
  }
}

const EMPTY: Writes = new Map();

/**
 * Pending writes over a reader. Reads see this branch's writes first. A child
 * branch (`branch()`) is folded into its parent by `commit()`; a branch that is
 * simply dropped leaves its parent untouched.
 */
export class Branch implements KVReader {
  private readonly w = new Map<KeyHex, Uint8Array | null>();
  constructor(private readonly base: KVReader) {}

  get(key: KeyHex): Uint8Array | undefined {
    const v = this.w.get(key);
    if (v !== undefined) return v ?? undefined;
    return this.base.get(key);
  }

  set(key: KeyHex, value: Uint8Array): void {
    this.w.set(key, value);
  }

  delete(key: KeyHex): void {
    this.w.set(key, null);
  }

  range(prefix: KeyHex, limit: number): [KeyHex, Uint8Array][] {
    checkLimit(limit);
    const mine = [...this.w.keys()].filter((k) => k.startsWith(prefix)).sort();
    if (!mine.length) return this.base.range(prefix, limit);
    // Enough base entries that `limit` survive our deletions.
    const base = this.base.range(prefix, Math.min(MAX_RANGE, limit + mine.length));
    const out: [KeyHex, Uint8Array][] = [];
    let i = 0;
    let j = 0;
    while (out.length < limit && (i < base.length || j < mine.length)) {
      const bk = base[i]?.[0];
      const mk = mine[j];
      if (mk === undefined || (bk !== undefined && bk < mk)) {
        out.push(base[i++]!);
        continue;
      }
      if (bk === mk) i++;
      j++;
      const v = this.w.get(mk)!;
      if (v) out.push([mk, v]);
    }
    return out;
  }

  branch(): Branch {
    return new Branch(this);
  }

  /** Fold this branch's writes into its parent branch. */
  commit(): void {
    if (!(this.base instanceof Branch)) throw new QnexusError('INTERNAL', 'only a child branch can be committed into its parent');
    for (const [k, v] of this.w) this.base.w.set(k, v);
    this.w.clear();
  }

  get writes(): Writes {
    return this.w;
  }
}

/**
 * A module's store: the keys under its one-byte prefix, on the branch the
 * current transaction runs on. Modules receive one at wiring (through their
 * `StoreKey`) and cannot name another module's keys.
 */
export class ModuleStore {
  readonly prefix: KeyHex;
  constructor(
    private readonly kv: Branch,
    moduleId: number,
  ) {
    this.prefix = PREFIX_HEX[moduleId] ?? moduleId.toString(16).padStart(2, '0');
  }

  private k(key: Uint8Array): KeyHex {
    return this.prefix + toHex(key);
  }

  get(key: Uint8Array): Uint8Array | undefined {
    return this.kv.get(this.k(key));
  }

  // The same by module-relative key hex: the hot paths (bank, fees) build keys as hex directly.
  getH(keyHex: KeyHex): Uint8Array | undefined {
    return this.kv.get(this.prefix + keyHex);
  }

  hasH(keyHex: KeyHex): boolean {
    return this.kv.get(this.prefix + keyHex) !== undefined;
  }

  setH(keyHex: KeyHex, value: Uint8Array): void {
    this.kv.set(this.prefix + keyHex, value);
  }

  deleteH(keyHex: KeyHex): void {
    this.kv.delete(this.prefix + keyHex);
  }

  has(key: Uint8Array): boolean {
    return this.kv.get(this.k(key)) !== undefined;
  }

  set(key: Uint8Array, value: Uint8Array): void {
    this.kv.set(this.k(key), value);
  }

  delete(key: Uint8Array): void {
    this.kv.delete(this.k(key));
  }

  /** Entries under `prefix` (module-relative), keys without the module byte, in key order; at most `limit`. */
  range(prefix: Uint8Array, limit: number): [Uint8Array, Uint8Array][] {
    return this.kv.range(this.k(prefix), limit).map(([k, v]) => [fromHex(k.slice(this.prefix.length)), v]);
  }
}

const PREFIX_HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** The full key of a module key (what proofs and the database see). */
export function moduleKey(moduleId: number, key: Uint8Array): Uint8Array {
  const out = new Uint8Array(key.length + 1);
  out[0] = moduleId;
  out.set(key, 1);
  return out;
}
