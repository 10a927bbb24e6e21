import { createHash } from 'node:crypto';
import { bytesEqual, toHex } from '@qnexus/crypto';
import { QnexusError } from '@qnexus/types';
import { MAX_RANGE, type KeyHex } from './store.js';
import {
  EMPTY_ROOT,
  END_SLOT,
  MAX_PATH_NIBBLES,
  NIBBLE_HEX,
  REF_BYTES,
  TAG_LEAF_STORED,
  decodeNode,
  hasSlot,
  internalHash,
  internalHeader,
  internalPreimage,
  leafKey,
  leafNodePreimage,
  leafValue,
  nameOfNodeKey,
  nibbleOf,
  nodeKey,
  nodeName,
  readU64,
  refOffset,
  sha256,
  storedLeaf,
  writeU32,
  writeU64,
  type InternalNode,
  type LeafNode,
  type StateProof,
  type TrieNode,
} from './trie-node.js';

export {
  MAX_KEY_BYTES,
  MAX_PROOF_NODES,
  MAX_PROOF_NODE_BYTES,
  MAX_PROOF_VALUE_BYTES,
  decodeStateProof,
  encodeStateProof,
  leafHash,
  verifyStateProof,
  type StateProof,
} from './trie-node.js';

/**
 * The authenticated store: a versioned Merkle radix-16 (Patricia) trie over the
 * raw state keys (spec: notes trie-spec.md, summed up here).
 *
 * - Paths are hex strings (one char per nibble), so key order is path order and
 *   `range(prefix)` is a walk. The root is an internal node at "" with an empty skip;
 *   any other one-entry subtree is a leaf; any other subtree is an internal node whose
 *   skip is the longest common prefix of its keys, so it branches (canonical form: the
 *   root is a function of the entries only, whatever the history).
 * - Nodes are stored under (start path, end flag, version) and never rewritten by a
 *   later version: a version writes its new nodes and lists the older ones it replaced
 *   (`stale`), so older versions stay readable until the pruner deletes those.
 * - An update is one recursive descent over the sorted writes that builds the new
 *   shape (phase 1, no hashing), then one bottom-up pass that encodes and hashes each
 *   new node once (phase 2).
 */

/** Synchronous node storage: LevelDB getSync in the node, a Map in tests. */
export interface TrieDB {
  get(nodeKey: Uint8Array): Uint8Array | undefined;
}

export interface TrieUpdate {
  /** The version these nodes belong to. */
  version: number;
  /** State root after the update. */
  root: Uint8Array;
  /** Entries after the update. */
  count: number;
  /** Node key → stored node bytes: all new nodes of this version. */
  puts: [Uint8Array, Uint8Array][];
  /** Node keys of older versions' nodes this version replaced (prune them once `version` leaves the retention window). */
  stale: Uint8Array[];
  /** Node keys of this same version's nodes this update replaced: garbage, to delete in the same batch as `puts`. */
  dels: Uint8Array[];
}

export interface TrieOptions {
  /** Bound of the LRU node cache: stored bytes plus an estimate of the JS overhead per node. Default 32 MiB. */
  cacheBytes?: number;
}

/** Map-backed TrieDB for tests and in-memory use. */
export class MemoryTrieDB implements TrieDB {
  readonly map = new Map<string, Uint8Array>();
  get(k: Uint8Array): Uint8Array | undefined {
    return this.map.get(toHex(k));
  }
  put(k: Uint8Array, v: Uint8Array): void {
    this.map.set(toHex(k), v);
  }
  del(k: Uint8Array): void {
    this.map.delete(toHex(k));
  }
  /** Write an update's batch: its puts, and the deletion of the same-version nodes it replaced. */
  apply(u: TrieUpdate): void {
    for (const k of u.dels) this.del(k);
    for (const [k, v] of u.puts) this.put(k, v);
  }
  get size(): number {
    return this.map.size;
  }
}

// JS cost of a cached node beyond its stored bytes: the Map entry, its name, the parsed object.
const NODE_OVERHEAD = 160;
const DEFAULT_CACHE_BYTES = 32 << 20;
const HEX_KEY = /^(?:[0-9a-f]{2})*$/;
const HEX_PATH = /^[0-9a-f]*$/;

/** A child as phase 1 leaves it untouched: its reference (49 bytes at `off` in `src`) and where it is stored. */
interface Keep {
  t: 0;
  src: Uint8Array;
  off: number;
  path: string;
  end: boolean;
}
interface NewLeaf {
  t: 1;
  key: KeyHex;
  value: Uint8Array;
}
interface NewInternal {
  t: 2;
  skip: string;
  /** Slots 0..15 by nibble, 16 = end. */
  slots: (Desc | null)[];
  count: number;
}
type Desc = Keep | NewLeaf | NewInternal;

const refVersion = (k: Keep): number => readU64(k.src, k.off + 32);
const refIsLeaf = (k: Keep): boolean => k.src[k.off + 40] === 1;
const refCount = (k: Keep): number => readU64(k.src, k.off + 41);
const descCount = (d: Desc): number => (d.t === 0 ? refCount(d) : d.t === 1 ? 1 : d.count);

function commonPrefix(a: string, b: string, from: number): number {
  const n = Math.min(a.length, b.length);
  let i = from;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

/** Internal bookkeeping of an update, for `apply` (names of its puts and deletions). */
interface UpdateMeta {
  baseVersion: number;
  baseRoot: Uint8Array;
  putNames: string[];
  delNames: string[];
}
const META = new WeakMap<TrieUpdate, UpdateMeta>();

/**
 * A Merkle trie opened at a committed version. Reads go to the committed version
 * or an older one still stored; `update` computes a version on top of the
 * committed one without installing it; `apply` installs it.
 */
export class MerkleTrie {
  private ver: number;
  private rootHash: Uint8Array;
  private entries: number;
  /** Nodes of applied updates whose batch has not reached the DB yet, by name. */
  private readonly overlay = new Map<string, Uint8Array>();
  /** LRU of parsed nodes by name (Map order = recency). */
  private readonly cache = new Map<string, TrieNode>();
  private cacheUsed = 0;
  private readonly cacheMax: number;

  /** Open at a committed version (-1: empty trie, nothing stored yet). */
  constructor(
    private readonly db: TrieDB,
    version: number,
    opts: TrieOptions = {},
  ) {
    if (!Number.isSafeInteger(version) || version < -1) throw new RangeError(`bad trie version ${version}`);
    this.cacheMax = opts.cacheBytes ?? DEFAULT_CACHE_BYTES;
    this.ver = version;
    this.rootHash = EMPTY_ROOT;
    this.entries = 0;
    if (version >= 0) {
      const root = this.rootNode(version);
      this.rootHash = new Uint8Array(internalHash(root));
      this.entries = root.count;
    }
  }

  get version(): number {
    return this.ver;
  }

  root(): Uint8Array {
    return this.rootHash;
  }

  get count(): number {
    return this.entries;
  }

  // ------------------------------------------------------------ node access

  private load(path: string, end: boolean, version: number): TrieNode | undefined {
    const name = nodeName(path, end, version);
    const hit = this.cache.get(name);
    if (hit) {
      this.cache.delete(name);
      this.cache.set(name, hit);
      return hit;
    }
    const bytes = this.overlay.get(name) ?? this.db.get(nodeKey(path, end, version));
    if (!bytes) return undefined;
    const node = decodeNode(bytes);
    this.remember(name, node);
    return node;
  }

  private loadUncached(path: string, end: boolean, version: number): TrieNode | undefined {
    const bytes = this.overlay.get(nodeName(path, end, version)) ?? this.db.get(nodeKey(path, end, version));
    return bytes ? decodeNode(bytes) : undefined;
  }

  private remember(name: string, node: TrieNode): void {
    if (this.cacheMax <= 0) return;
    this.cache.set(name, node);
    this.cacheUsed += nodeCost(name, node);
    if (this.cacheUsed <= this.cacheMax) return;
    for (const [k, n] of this.cache) {
      if (this.cacheUsed <= this.cacheMax * 0.9) break;
      this.cache.delete(k);
      this.cacheUsed -= nodeCost(k, n);
    }
  }

  private forget(name: string): void {
    const n = this.cache.get(name);
    if (!n) return;
    this.cache.delete(name);
    this.cacheUsed -= nodeCost(name, n);
  }

  /** A node some stored parent names: missing means its version was pruned under the reader. */
  private child(path: string, end: boolean, version: number): TrieNode {
    const n = this.load(path, end, version);
    if (!n) throw new QnexusError('STATE_PRUNED', `trie node ${path || '(root)'} of version ${version} is no longer stored`);
    return n;
  }

  private childOf(n: InternalNode, p: string, slot: number): TrieNode {
    const off = refOffset(n, slot);
    const v = readU64(n.bytes, off + 32);
    return slot === END_SLOT ? this.child(p, true, v) : this.child(p + NIBBLE_HEX[slot], false, v);
  }

  private rootNode(version: number): InternalNode {
    if (!Number.isSafeInteger(version) || version < 0 || version > this.ver) {
      throw new QnexusError('NOT_FOUND', `no trie version ${version} (committed: ${this.ver})`);
    }
    // An older root is read from storage, never from the cache: the pruner deletes behind the
    // trie's back, and every node must answer the same for a pruned version, cached or not.
    const n = version === this.ver ? this.load('', false, version) : this.loadUncached('', false, version);
    if (!n) throw new QnexusError('STATE_PRUNED', `state of version ${version} is no longer kept`);
    if (n.leaf) throw new QnexusError('INTERNAL', 'trie root is a leaf');
    return n;
  }

  /** Root node of a read: undefined for the empty trie that was never stored. */
  private readRoot(version: number | undefined): InternalNode | undefined {
    if (version === undefined || version === this.ver) {
      if (this.ver < 0) return undefined;
      return this.rootNode(this.ver);
    }
    return this.rootNode(version);
  }

  rootAt(version: number): Uint8Array {
    if (version === this.ver) return this.rootHash;
    return new Uint8Array(internalHash(this.rootNode(version)));
  }

  // ------------------------------------------------------------ reads

  get(key: KeyHex, version?: number): Uint8Array | undefined {
    let n: TrieNode | undefined = this.readRoot(version);
    let pos = 0;
    let path = '';
    while (n) {
      if (n.leaf) return n.keyHex === key ? new Uint8Array(leafValue(n)) : undefined;
      if (!key.startsWith(n.skip, pos)) return undefined;
      pos += n.skip.length;
      path = key.slice(0, pos);
      const slot = pos === key.length ? END_SLOT : nibbleOf(key[pos]!);
      if (slot < 0 || !hasSlot(n.bitmap, slot)) return undefined;
      n = this.childOf(n, path, slot);
      if (slot !== END_SLOT) pos++;
    }
    return undefined;
  }

  /** Entries whose key starts with `prefix` (any hex, even odd-length), in key order; at most `limit`. */
  range(prefix: KeyHex, limit: number, version?: number): [KeyHex, Uint8Array][] {
    if (!Number.isSafeInteger(limit) || limit < 0 || limit > MAX_RANGE) throw new RangeError(`range limit ${limit} is out of bounds`);
    if (!HEX_PATH.test(prefix)) throw new RangeError('range prefix is not lowercase hex');
    const out: [KeyHex, Uint8Array][] = [];
    const root = this.readRoot(version);
    if (root && limit > 0) this.collect(root, '', prefix, limit, out);
    return out;
  }

  private collect(n: TrieNode, start: string, prefix: string, limit: number, out: [KeyHex, Uint8Array][]): void {
    if (n.leaf) {
      if (out.length < limit && n.keyHex.startsWith(prefix)) out.push([n.keyHex, new Uint8Array(leafValue(n))]);
      return;
    }
    const p = start + n.skip;
    if (prefix.length > p.length) {
      // Only the child on the prefix's next nibble can hold matches.
      if (!prefix.startsWith(p)) return;
      const s = nibbleOf(prefix[p.length]!);
      if (hasSlot(n.bitmap, s)) this.collect(this.childOf(n, p, s), p + NIBBLE_HEX[s], prefix, limit, out);
      return;
    }
    if (!p.startsWith(prefix)) return;
    if (hasSlot(n.bitmap, END_SLOT)) this.collect(this.childOf(n, p, END_SLOT), p, prefix, limit, out);
    for (let s = 0; s < 16 && out.length < limit; s++) {
      if (hasSlot(n.bitmap, s)) this.collect(this.childOf(n, p, s), p + NIBBLE_HEX[s], prefix, limit, out);
    }
  }

  /** A proof of `key`'s value (or absence) at the committed version or an older one still stored. */
  prove(key: Uint8Array, version?: number): StateProof {
    const hex = toHex(key);
    const nodes: Uint8Array[] = [];
    let n: TrieNode | undefined = this.readRoot(version);
    if (!n) return { key, value: null, nodes: [internalHeader('', 0, 0, 0, 0)] };
    let pos = 0;
    for (;;) {
      if (n.leaf) {
        if (n.keyHex === hex) return { key, value: new Uint8Array(leafValue(n)), nodes };
        nodes.push(leafNodePreimage(n));
        return { key, value: null, nodes };
      }
      nodes.push(internalPreimage(n));
      if (!hex.startsWith(n.skip, pos)) return { key, value: null, nodes };
      pos += n.skip.length;
      const slot = pos === hex.length ? END_SLOT : nibbleOf(hex[pos]!);
      if (!hasSlot(n.bitmap, slot)) return { key, value: null, nodes };
      n = this.childOf(n, hex.slice(0, pos), slot);
      if (slot !== END_SLOT) pos++;
    }
  }

  // ------------------------------------------------------------ updates

  /**
   * The update `writes` (value, or null = delete) makes at `version` on top of the
   * committed version. `version` may equal the committed one (a large genesis built
   * in chunks): the nodes it replaces are then garbage (`dels`), not stale. Pure:
   * nothing is installed.
   */
  update(writes: ReadonlyMap<KeyHex, Uint8Array | null>, version: number): TrieUpdate {
    if (!Number.isSafeInteger(version) || version < 0 || version < this.ver) {
      throw new RangeError(`trie update at version ${version} on committed version ${this.ver}`);
    }
    const keys: string[] = [];
    for (const k of writes.keys()) {
      if (k.length > MAX_PATH_NIBBLES || !HEX_KEY.test(k)) throw new RangeError(`bad state key ${k.slice(0, 64)}`);
      keys.push(k);
    }
    keys.sort();
    const vals = keys.map((k) => writes.get(k)!);
    const u = new Updater(this, keys, vals, version);
    const oldRoot = this.ver >= 0 ? this.rootNode(this.ver) : undefined;
    const rootDesc = u.root(oldRoot);
    return u.finish(rootDesc, oldRoot ? this.ver : -1);
  }

  /** Install an update computed on the committed version: its nodes are readable at once (kept in memory until `flushed(u)`). */
  apply(u: TrieUpdate): void {
    const meta = META.get(u) ?? { baseVersion: this.ver, baseRoot: this.rootHash, putNames: u.puts.map(([k]) => nameOfNodeKey(k)), delNames: u.dels.map(nameOfNodeKey) };
    if (meta.baseVersion !== this.ver || !bytesEqual(meta.baseRoot, this.rootHash)) {
      throw new QnexusError('INTERNAL', `trie update computed on version ${meta.baseVersion}, committed is ${this.ver}`);
    }
    for (const name of meta.delNames) {
      this.overlay.delete(name);
      this.forget(name);
    }
    for (let i = 0; i < u.puts.length; i++) {
      const name = meta.putNames[i]!;
      this.forget(name);
      this.overlay.set(name, u.puts[i]![1]);
    }
    this.ver = u.version;
    this.rootHash = u.root;
    this.entries = u.count;
  }

  /** The caller's batch with `u` reached the DB: drop its nodes from memory (unless a later update at the same version replaced them). */
  flushed(u: TrieUpdate): void {
    const names = META.get(u)?.putNames ?? u.puts.map(([k]) => nameOfNodeKey(k));
    for (let i = 0; i < u.puts.length; i++) {
      const name = names[i]!;
      if (this.overlay.get(name) === u.puts[i]![1]) this.overlay.delete(name);
    }
  }

  /** For the updater: a node a stored parent names. */
  node(path: string, end: boolean, version: number): TrieNode {
    return this.child(path, end, version);
  }
}

function nodeCost(name: string, n: TrieNode): number {
  return NODE_OVERHEAD + name.length + n.bytes.length + (n.leaf ? n.keyHex.length : n.skip.length);
}

/**
 * One update: phase 1 (`upd`, `build`, `finalize`) computes the new shape over the
 * sorted writes, reusing untouched subtrees as references; phase 2 (`place`)
 * encodes and hashes each new node once, bottom-up.
 */
class Updater {
  /** Names (path, end, version) of the stored nodes the new version no longer uses. */
  private readonly removed: [string, boolean, number][] = [];
  private readonly puts: [Uint8Array, Uint8Array][] = [];
  private readonly putNames: string[] = [];

  constructor(
    private readonly trie: MerkleTrie,
    private readonly keys: string[],
    private readonly vals: (Uint8Array | null)[],
    private readonly version: number,
  ) {}

  root(old: InternalNode | undefined): NewInternal {
    const n = this.keys.length;
    if (!old) {
      const slots: (Desc | null)[] = new Array(17).fill(null);
      const d: NewInternal = { t: 2, skip: '', slots, count: 0 };
      const live = this.inserts(0, n);
      this.fill(d, '', live.keys, live.vals, 0, live.keys.length);
      return d;
    }
    this.removed.push(['', false, this.trie.version]);
    const d = this.internal('', old, '', true, 0, n) as Desc | null;
    if (d === null || d.t !== 2) throw new QnexusError('INTERNAL', 'trie root collapsed');
    return d;
  }

  /** The writes of [lo, hi) that insert or overwrite (deleting an absent key is a no-op). */
  private inserts(lo: number, hi: number): { keys: string[]; vals: Uint8Array[] } {
    const keys: string[] = [];
    const vals: Uint8Array[] = [];
    for (let i = lo; i < hi; i++) {
      const v = this.vals[i];
      if (v) {
        keys.push(this.keys[i]!);
        vals.push(v);
      }
    }
    return { keys, vals };
  }

  /** New content of the subtree at (S, end) whose old content is `old`, for writes [lo, hi) (all under S). */
  private upd(S: string, end: boolean, old: Keep | null, lo: number, hi: number): Desc | null {
    if (lo === hi) return old;
    if (!old) {
      const live = this.inserts(lo, hi);
      return this.build(S, live.keys, live.vals, 0, live.keys.length);
    }
    const v = refVersion(old);
    if (refIsLeaf(old)) return this.leaf(S, end, v, old, lo, hi);
    const n = this.trie.node(S, false, v);
    if (n.leaf) throw new QnexusError('INTERNAL', 'trie node kind disagrees with its parent');
    const d = this.internal(S, n, n.skip, false, lo, hi);
    if (d === n) return old;
    this.removed.push([S, false, v]);
    return d as Desc | null;
  }

  /** A leaf's subtree after writes: unchanged if they change nothing, else rebuilt from its entry and the writes. */
  private leaf(S: string, end: boolean, v: number, old: Keep, lo: number, hi: number): Desc | null {
    const ln = this.trie.node(S, end, v);
    if (!ln.leaf) throw new QnexusError('INTERNAL', 'trie node kind disagrees with its parent');
    const lk = ln.keyHex;
    const keys: string[] = [];
    const vals: Uint8Array[] = [];
    let changed = false;
    let placed = false;
    for (let i = lo; i < hi; i++) {
      const k = this.keys[i]!;
      const val = this.vals[i];
      if (!placed && k >= lk) {
        placed = true;
        if (k === lk) {
          if (!val) changed = true;
          else {
            if (!bytesEqual(val, leafValue(ln))) changed = true;
            keys.push(k);
            vals.push(val);
          }
          continue;
        }
        keys.push(lk);
        vals.push(leafValue(ln));
      }
      if (val) {
        changed = true;
        keys.push(k);
        vals.push(val);
      }
    }
    if (!placed) {
      keys.push(lk);
      vals.push(leafValue(ln));
    }
    if (!changed) return old;
    this.removed.push([S, end, v]);
    return this.build(S, keys, vals, 0, keys.length);
  }

  /**
   * An internal node `n` whose subtree starts at S with skip K (K may be shorter than
   * n.skip when the node was moved down by a split). Returns `n` itself when nothing
   * changes and the node stays where it is.
   */
  private internal(S: string, n: InternalNode, K: string, moved: boolean, lo: number, hi: number): Desc | InternalNode | null {
    const P = S + K;
    // Writes under P form one run [a, b) of the sorted writes; the others diverge inside K.
    let a = lo;
    while (a < hi && this.keys[a]! < P) a++;
    let b = a;
    while (b < hi && this.keys[b]!.startsWith(P)) b++;
    let outside = false;
    for (let i = lo; i < hi && !outside; i++) if ((i < a || i >= b) && this.vals[i]) outside = true;
    if (outside) return this.split(S, n, K, lo, hi);

    const slots: (Desc | null)[] = new Array(17);
    for (let s = 0; s <= 16; s++) slots[s] = hasSlot(n.bitmap, s) ? this.keep(n, P, s) : null;
    let changed = moved;
    let i = a;
    if (i < b && this.keys[i]!.length === P.length) {
      const d = this.upd(P, true, slots[END_SLOT] as Keep | null, i, i + 1);
      if (d !== slots[END_SLOT]) changed = true;
      slots[END_SLOT] = d;
      i++;
    }
    while (i < b) {
      const c = this.keys[i]!.charCodeAt(P.length);
      let j = i + 1;
      while (j < b && this.keys[j]!.charCodeAt(P.length) === c) j++;
      const s = nibbleOf(String.fromCharCode(c));
      const d = this.upd(P + NIBBLE_HEX[s], false, slots[s] as Keep | null, i, j);
      if (d !== slots[s]) changed = true;
      slots[s] = d;
      i = j;
    }
    if (!changed && S !== '') return n;
    return this.finalize(S, K, slots, S === '' && K === '');
  }

  /** Writes insert keys that leave node `n` inside its skip: a new node at S branches where they diverge, `n` moves below it. */
  private split(S: string, n: InternalNode, K: string, lo: number, hi: number): Desc | null {
    const P = S + K;
    let m = P.length;
    for (let i = lo; i < hi; i++) if (this.vals[i]) m = Math.min(m, commonPrefix(P, this.keys[i]!, S.length));
    const Q = P.slice(0, m); // the new node's full path; n moves to Q ‖ P[m]
    const slots: (Desc | null)[] = new Array(17).fill(null);
    const moveNibble = nibbleOf(P[m]!);
    let moved = false;
    let i = lo;
    while (i < hi && !this.keys[i]!.startsWith(Q)) i++; // deletions of absent keys that diverge earlier
    while (i < hi) {
      const k = this.keys[i]!;
      if (!k.startsWith(Q)) {
        i++;
        continue;
      }
      if (k.length === Q.length) {
        const v = this.vals[i];
        slots[END_SLOT] = v ? { t: 1, key: k, value: v } : null;
        i++;
        continue;
      }
      const c = k.charCodeAt(Q.length);
      let j = i + 1;
      while (j < hi && this.keys[j]!.startsWith(Q) && this.keys[j]!.charCodeAt(Q.length) === c) j++;
      const s = nibbleOf(String.fromCharCode(c));
      if (s === moveNibble) {
        const d = this.internal(Q + NIBBLE_HEX[s], n, P.slice(m + 1), true, i, j);
        slots[s] = d === n ? null : (d as Desc | null);
        moved = true;
      } else {
        const live = this.inserts(i, j);
        slots[s] = this.build(Q + NIBBLE_HEX[s], live.keys, live.vals, 0, live.keys.length);
      }
      i = j;
    }
    if (!moved) {
      // No write under n's new place: n only moves. (Writes that deleted all of n leave its slot empty.)
      const d = this.internal(Q + NIBBLE_HEX[moveNibble], n, P.slice(m + 1), true, hi, hi);
      slots[moveNibble] = d === n ? null : (d as Desc | null);
    }
    return this.finalize(S, Q.slice(S.length), slots, false);
  }

  private keep(n: InternalNode, P: string, s: number): Keep {
    const off = refOffset(n, s);
    return s === END_SLOT ? { t: 0, src: n.bytes, off, path: P, end: true } : { t: 0, src: n.bytes, off, path: P + NIBBLE_HEX[s], end: false };
  }

  /** Subtree of sorted entries [lo, hi) (all under S), canonical: none, a leaf, or a branching node. */
  private build(S: string, keys: string[], vals: Uint8Array[], lo: number, hi: number): Desc | null {
    if (hi === lo) return null;
    if (hi - lo === 1) return { t: 1, key: keys[lo]!, value: vals[lo]! };
    const P = keys[lo]!.slice(0, commonPrefix(keys[lo]!, keys[hi - 1]!, S.length));
    const d: NewInternal = { t: 2, skip: P.slice(S.length), slots: new Array(17).fill(null), count: hi - lo };
    this.fill(d, P, keys, vals, lo, hi);
    return d;
  }

  /** Fill an empty node's slots (full path P) from sorted entries [lo, hi). */
  private fill(d: NewInternal, P: string, keys: string[], vals: Uint8Array[], lo: number, hi: number): void {
    let i = lo;
    if (i < hi && keys[i]!.length === P.length) {
      d.slots[END_SLOT] = { t: 1, key: keys[i]!, value: vals[i]! };
      i++;
    }
    while (i < hi) {
      const c = keys[i]!.charCodeAt(P.length);
      let j = i + 1;
      while (j < hi && keys[j]!.charCodeAt(P.length) === c) j++;
      const s = nibbleOf(String.fromCharCode(c));
      d.slots[s] = this.build(P + NIBBLE_HEX[s], keys, vals, i, j);
      i = j;
    }
    d.count = hi - lo;
  }

  /** A node at S with skip K and these slots, collapsed to canonical form (except the root, which always stays). */
  private finalize(S: string, K: string, slots: (Desc | null)[], isRoot: boolean): Desc | null {
    let used = 0;
    let count = 0;
    let only = -1;
    for (let s = 0; s <= 16; s++) {
      const d = slots[s];
      if (!d) continue;
      used++;
      only = s;
      count += descCount(d);
    }
    if (isRoot) return { t: 2, skip: K, slots, count };
    if (used === 0) return null;
    if (used > 1) return { t: 2, skip: K, slots, count };
    const d = slots[only]!;
    if (d.t === 1) return d;
    if (d.t === 2) return { t: 2, skip: K + NIBBLE_HEX[only] + d.skip, slots: d.slots, count: d.count };
    // One untouched child: it moves up to S (a leaf as is; an internal node with its skip extended).
    const v = refVersion(d);
    const c = this.trie.node(d.path, d.end, v);
    this.removed.push([d.path, d.end, v]);
    if (c.leaf) return { t: 1, key: c.keyHex, value: leafValue(c) };
    const P = S + K + NIBBLE_HEX[only] + c.skip;
    const cs: (Desc | null)[] = new Array(17);
    for (let s = 0; s <= 16; s++) cs[s] = hasSlot(c.bitmap, s) ? this.keep(c, P, s) : null;
    return { t: 2, skip: K + NIBBLE_HEX[only] + c.skip, slots: cs, count: c.count };
  }

  // ------------------------------------------------------------ phase 2

  /** Store `d` at (path, end); write its 49-byte reference into `out` at `o`. */
  private place(d: Desc, path: string, end: boolean, out: Uint8Array, o: number): void {
    if (d.t === 0) {
      out.set(d.src.subarray(d.off, d.off + REF_BYTES), o);
      return;
    }
    let bytes: Uint8Array;
    let hash: Uint8Array;
    let count: number;
    if (d.t === 1) {
      const key = Buffer.from(d.key, 'hex');
      bytes = storedLeaf(key, d.value);
      hash = sha256(leafHeader(key), sha256(d.value));
      count = 1;
    } else {
      const P = path + d.skip;
      let k = 0;
      let bitmap = 0;
      for (let s = 0; s <= 16; s++) {
        if (d.slots[s]) {
          k++;
          bitmap |= 1 << s;
        }
      }
      const nb = internalHeader(d.skip, bitmap, d.count, k, REF_BYTES);
      const base = nb.length - k * REF_BYTES;
      let at = base;
      const e = d.slots[END_SLOT];
      if (e) {
        this.place(e, P, true, nb, at);
        at += REF_BYTES;
      }
      for (let s = 0; s < 16; s++) {
        const c = d.slots[s];
        if (!c) continue;
        this.place(c, P + NIBBLE_HEX[s], false, nb, at);
        at += REF_BYTES;
      }
      const h = createHash('sha256').update(nb.subarray(0, base));
      for (let x = base; x < at; x += REF_BYTES) h.update(nb.subarray(x, x + 32));
      bytes = nb;
      hash = h.digest();
      count = d.count;
    }
    this.puts.push([nodeKey(path, end, this.version), bytes]);
    this.putNames.push(nodeName(path, end, this.version));
    out.set(hash, o);
    writeU64(out, o + 32, this.version);
    out[o + 40] = d.t === 1 ? 1 : 0;
    writeU64(out, o + 41, count);
  }

  finish(root: NewInternal, baseVersion: number): TrieUpdate {
    const ref = new Uint8Array(REF_BYTES);
    this.place(root, '', false, ref, 0);
    const put = new Set(this.putNames);
    const stale: Uint8Array[] = [];
    const dels: Uint8Array[] = [];
    const delNames: string[] = [];
    for (const [p, e, v] of this.removed) {
      if (v < this.version) stale.push(nodeKey(p, e, v));
      else {
        const name = nodeName(p, e, v);
        if (put.has(name)) continue;
        dels.push(nodeKey(p, e, v));
        delNames.push(name);
      }
    }
    const u: TrieUpdate = { version: this.version, root: ref.slice(0, 32), count: readU64(ref, 41), puts: this.puts, stale, dels };
    META.set(u, { baseVersion, baseRoot: this.trie.root(), putNames: this.putNames, delNames });
    return u;
  }
}

/** `0x00 ‖ u32 keyLen ‖ key`: the leaf preimage before H(value). */
function leafHeader(key: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(5 + key.length);
  out[0] = 0;
  writeU32(out, 1, key.length);
  out.set(key, 5);
  return out;
}
