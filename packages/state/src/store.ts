import { fromHex, hashConcat, toHex } from '@qnexus/crypto';
import { QnexusError, countedProofs, countedRoot, verifyCountedProof, type KeyProof } from '@qnexus/types';

/**
 * The shard state is one key-value space: `u8 module id ‖ module key` →
 * canonical value bytes. Keys are handled as lowercase hex strings, whose
 * order is the byte order, so sorting hex sorts keys.
 *
 * Three layers:
 * - `CommittedState`: the state at the head, with its commitment (root and proofs);
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

/** First index in sorted `keys` whose key is >= `k`. */
function lowerBound(keys: readonly string[], k: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (keys[mid]! < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function u32be(n: number): Uint8Array {
  return new Uint8Array([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}
const LEAF_TAG = new Uint8Array([0]);

/**
 * Leaf of one entry: the key and the value, each length-prefixed, so a leaf proves both:
 * `merkleLeaf(u32 len key ‖ key ‖ u32 len value ‖ value)`, hashed from its parts.
 */
export function entryLeaf(key: Uint8Array, value: Uint8Array): Uint8Array {
  return hashConcat(LEAF_TAG, u32be(key.length), key, u32be(value.length), value);
}

/** One entry and its position in the committed tree. */
export interface ProvenEntry {
  key: Uint8Array;
  value: Uint8Array;
  proof: KeyProof;
}

/**
 * A proof about one key against a state root. Present: `value` and one proven
 * entry with that key. Absent: `value` null and the proven neighbours around
 * where the key would sit (the one before and/or the one after, adjacent in the
 * tree); none at all only for the empty state.
 */
export interface StateProof {
  key: Uint8Array;
  value: Uint8Array | null;
  entries: ProvenEntry[];
}

const cmp = (a: Uint8Array, b: Uint8Array): number => Buffer.compare(a, b);

/** Check a state proof against a (certified) state root. Pure; any inconsistency is `false`. */
export function verifyStateProof(root: Uint8Array, p: StateProof): boolean {
  const ok = (e: ProvenEntry) => verifyCountedProof(entryLeaf(e.key, e.value), e.proof, root);
  if (p.value) {
    const e = p.entries[0];
    return p.entries.length === 1 && !!e && cmp(e.key, p.key) === 0 && Buffer.compare(e.value, p.value) === 0 && ok(e);
  }
  if (p.entries.length === 0) return Buffer.compare(countedRoot([]), root) === 0;
  if (!p.entries.every(ok)) return false;
  const [a, b] = p.entries;
  if (p.entries.length === 2) {
    return b !== undefined && b.proof.index === a!.proof.index + 1 && cmp(a!.key, p.key) < 0 && cmp(p.key, b.key) < 0;
  }
  if (p.entries.length !== 1) return false;
  // One neighbour: the key is before the first entry or after the last.
  if (a!.proof.index === 0 && cmp(p.key, a!.key) < 0) return true;
  return a!.proof.index === a!.proof.count - 1 && cmp(a!.key, p.key) < 0;
}

/**
 * How the committed state is authenticated: a root over every entry and
 * proofs for any key. The O(N) sorted-leaf tree below is the first
 * implementation; an incremental, disk-backed one replaces it behind the same
 * shape (issue "State at scale").
 */
export interface StateCommitment {
  /** The root after `writes` on top of the committed entries, without applying them. */
  rootWith(writes?: Writes): Uint8Array;
  /** Proofs for keys (present or absent) against `rootWith()`. */
  prove(keys: readonly Uint8Array[]): StateProof[];
}

/**
 * The committed state of one shard, in memory: the entries, a sorted key
 * index (rebuilt only when the set of keys changes) and each entry's leaf
 * hash, so a block rehashes only what it touched.
 */
export class CommittedState implements KVReader, StateCommitment {
  private readonly entries = new Map<KeyHex, Uint8Array>();
  private readonly leaves = new Map<KeyHex, Uint8Array>();
  private sorted: KeyHex[] | null = [];

  static fromEntries(entries: Iterable<[KeyHex, Uint8Array]>): CommittedState {
    const s = new CommittedState();
    for (const [k, v] of entries) s.put(k, v);
    return s;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: KeyHex): Uint8Array | undefined {
    return this.entries.get(key);
  }

  range(prefix: KeyHex, limit: number): [KeyHex, Uint8Array][] {
    checkLimit(limit);
    const keys = this.keys();
    const out: [KeyHex, Uint8Array][] = [];
    for (let i = lowerBound(keys, prefix); i < keys.length && out.length < limit; i++) {
      const k = keys[i]!;
      if (!k.startsWith(prefix)) break;
      out.push([k, this.entries.get(k)!]);
    }
    return out;
  }

  /** Every entry (the store's snapshot for persistence and tests), in no particular order. */
  all(): IterableIterator<[KeyHex, Uint8Array]> {
    return this.entries.entries();
  }

  private put(k: KeyHex, v: Uint8Array, leaf?: Uint8Array): void {
    if (!this.entries.has(k)) this.sorted = null;
    this.entries.set(k, v);
    this.leaves.set(k, leaf ?? entryLeaf(fromHex(k), v));
  }

  /** Leaves `rootWith` hashed for a write set, reused when that same write set is applied (a block's commit). */
  private hashed: { writes: Writes; leaves: Map<KeyHex, Uint8Array> } | null = null;

  apply(writes: Writes): void {
    const known = this.hashed?.writes === writes ? this.hashed.leaves : undefined;
    this.hashed = null;
    for (const [k, v] of writes) {
      if (v) this.put(k, v, known?.get(k));
      else if (this.entries.delete(k)) {
        this.leaves.delete(k);
        this.sorted = null;
      }
    }
  }

  private keys(): KeyHex[] {
    if (!this.sorted) this.sorted = [...this.entries.keys()].sort();
    return this.sorted;
  }

  rootWith(writes?: Writes): Uint8Array {
    let keys = this.keys();
    const changed = new Map<KeyHex, Uint8Array>();
    if (writes && writes.size) {
      const removed = new Set<KeyHex>();
      const added: KeyHex[] = [];
      for (const [k, v] of writes) {
        if (v) {
          changed.set(k, entryLeaf(fromHex(k), v));
          if (!this.entries.has(k)) added.push(k);
        } else if (this.entries.has(k)) removed.add(k);
      }
      if (added.length) keys = [...keys, ...added].sort();
      if (removed.size) keys = keys.filter((k) => !removed.has(k));
      this.hashed = { writes, leaves: changed };
    }
    const leaves: Uint8Array[] = new Array(keys.length);
    for (let i = 0; i < keys.length; i++) leaves[i] = changed.get(keys[i]!) ?? this.leaves.get(keys[i]!)!;
    return countedRoot(leaves);
  }

  root(): Uint8Array {
    return this.rootWith();
  }

  prove(keys: readonly Uint8Array[]): StateProof[] {
    const sorted = this.keys();
    const leaves = sorted.map((k) => this.leaves.get(k)!);
    // Which leaf indices each key needs: itself if present, else its neighbours.
    const wanted = keys.map((key) => {
      const hex = toHex(key);
      const i = lowerBound(sorted, hex);
      if (sorted[i] === hex) return [i];
      return [i - 1, i].filter((j) => j >= 0 && j < sorted.length);
    });
    const flat = [...new Set(wanted.flat())];
    const proofs = new Map<number, KeyProof>();
    countedProofs(leaves, flat).forEach((p, n) => proofs.set(flat[n]!, p));
    return keys.map((key, n) => {
      const entries = wanted[n]!.map((j) => ({ key: fromHex(sorted[j]!), value: this.entries.get(sorted[j]!)!, proof: proofs.get(j)! }));
      const value = this.entries.get(toHex(key)) ?? null;
      return { key, value, entries };
    });
  }
}

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
