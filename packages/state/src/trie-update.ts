import { hash } from 'node:crypto';
import { bytesEqual, fromHex } from '@qnexus/crypto';
import { QnexusError } from '@qnexus/types';
import type { KeyHex } from './store.js';
import {
  END_SLOT,
  NIBBLE_HEX,
  REF_BYTES,
  TAG_INTERNAL,
  TAG_LEAF_STORED,
  hasSlot,
  leafHash,
  leafValue,
  nibbleOf,
  nodeKey,
  nodeKeyBytes,
  nodeName,
  packNibblesInto,
  readU64,
  refOffset,
  writeNodeKey,
  writeU32,
  writeU64,
  type InternalNode,
  type TrieNode,
} from './trie-node.js';

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

/** Internal bookkeeping of an update, for `apply` (names of its puts and deletions, and what it was computed on). */
export interface UpdateMeta {
  baseVersion: number;
  baseRoot: Uint8Array;
  putNames: string[];
  delNames: string[];
  /** Names of the `stale` nodes: no longer part of the newest version, so `apply` drops them from the node cache. */
  staleNames: string[];
}
export const META = new WeakMap<TrieUpdate, UpdateMeta>();

/** What the updater needs of the trie: the committed state and stored nodes. */
export interface NodeSource {
  readonly version: number;
  root(): Uint8Array;
  /** A node a stored parent names (throws if it is gone). */
  node(path: string, end: boolean, version: number): TrieNode;
}

/** A child phase 1 leaves untouched, as its parent references it (49 bytes at `off` in `src`), with where it is stored. */
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
  /** Slots 0..15 by nibble, 16 = end; KEPT = the reference of `from`'s same slot (same position, no allocation per child). */
  slots: (Desc | Kept | null)[];
  from: InternalNode | null;
  count: number;
}
interface Kept {
  t: 3;
}
type Desc = Keep | NewLeaf | NewInternal;
const KEPT: Kept = { t: 3 };

/** The committed value of a key as the caller knows it (undefined: unknown or absent); see Updater.leaf. */
export type PriorValue = (keyHex: string) => Uint8Array | undefined;

const refVersion = (k: Keep): number => readU64(k.src, k.off + 32);
const refIsLeaf = (k: Keep): boolean => k.src[k.off + 40] === 1;

function commonPrefix(a: string, b: string, from: number): number {
  const n = Math.min(a.length, b.length);
  let i = from;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

const emptySlots = (): (Desc | Kept | null)[] => [null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null];

/** Largest internal preimage: header with the longest skip, then 17 hashes. */
const SCRATCH_BYTES = 1 + 2 + 1024 + 4 + 8 + 17 * 32 + 64;
const ARENA_BYTES = 256 << 10;

/**
 * One update: phase 1 (`upd`, `build`, `finalize`) computes the new shape over the
 * sorted writes, reusing untouched subtrees by reference; phase 2 (`place`)
 * encodes and hashes each new node once, bottom-up.
 */
export class Updater {
  /** Stored nodes (path, end, version) the new version no longer uses. */
  private readonly removed: [string, boolean, number][] = [];
  private readonly puts: [Uint8Array, Uint8Array][] = [];
  private readonly putNames: string[] = [];
  private readonly scratch = new Uint8Array(SCRATCH_BYTES);
  /** Stored nodes and keys are carved from large blocks: one ArrayBuffer per node cost more than hashing it. */
  // Blocks grow from 4 KiB, so a small update does not hold a large one until its flush.
  private arena = new Uint8Array(0);
  private arenaAt = 0;
  private arenaNext = 4096;

  private alloc(n: number): Uint8Array {
    if (this.arenaAt + n > this.arena.length) {
      this.arena = new Uint8Array(Math.max(this.arenaNext, n));
      this.arenaNext = Math.min(2 * this.arenaNext, ARENA_BYTES);
      this.arenaAt = 0;
    }
    // A view by constructor: `subarray` looks up the species constructor on every call.
    const out = new Uint8Array(this.arena.buffer, this.arenaAt, n);
    this.arenaAt += n;
    return out;
  }

  private key(path: string, end: boolean, version: number): Uint8Array {
    return writeNodeKey(this.alloc(nodeKeyBytes(path)), path, end, version);
  }

  constructor(
    private readonly trie: NodeSource,
    private readonly keys: string[],
    private readonly vals: (Uint8Array | null)[],
    private readonly version: number,
    private readonly prior?: PriorValue,
  ) {}

  /** The update on top of `old` (the committed root node; undefined for the never-stored empty trie). */
  run(old: InternalNode | undefined): TrieUpdate {
    let root: NewInternal;
    if (!old) {
      root = { t: 2, skip: '', slots: emptySlots(), from: null, count: 0 };
      const live = this.inserts(0, this.keys.length);
      this.fill(root, '', live.keys, live.vals, 0, live.keys.length);
    } else {
      // Every version rewrites the root, even for an empty block.
      this.removed.push(['', false, this.trie.version]);
      const d = this.internal('', old, '', true, 0, this.keys.length) as Desc | null;
      if (d === null || d.t !== 2) throw new QnexusError('INTERNAL', 'trie root collapsed');
      root = d;
    }
    return this.finish(root, old ? this.trie.version : -1);
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

  /** New content of the subtree at (S, end) whose old content is `old`, for writes [lo, hi) (all under S); `old` itself if unchanged. */
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
    if (hi - lo === 1 && this.prior) {
      // One write to a key whose committed value the caller knows (execution just read it): if that
      // (key, value) hashes to the leaf here, the leaf is that key and its stored node need not be read.
      // A wrong or missing prior only falls through to the read below.
      const k = this.keys[lo]!;
      const pv = this.prior(k);
      if (pv !== undefined && bytesEqual(leafHash(fromHex(k), pv), old.src.subarray(old.off, old.off + 32))) {
        const val = this.vals[lo];
        if (val && bytesEqual(val, pv)) return old;
        this.removed.push([S, end, v]);
        return val ? { t: 1, key: k, value: val } : null;
      }
    }
    const ln = this.trie.node(S, end, v);
    if (!ln.leaf) throw new QnexusError('INTERNAL', 'trie node kind disagrees with its parent');
    const lk = ln.keyHex;
    if (hi - lo === 1 && this.keys[lo] === lk) {
      // The common case: one write to this very key.
      const val = this.vals[lo];
      if (val && bytesEqual(val, leafValue(ln))) return old;
      this.removed.push([S, end, v]);
      return val ? { t: 1, key: lk, value: val } : null;
    }
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

  private keep(n: InternalNode, P: string, s: number): Keep {
    const off = refOffset(n, s);
    return s === END_SLOT ? { t: 0, src: n.bytes, off, path: P, end: true } : { t: 0, src: n.bytes, off, path: P + NIBBLE_HEX[s], end: false };
  }

  /**
   * An internal node `n` whose subtree starts at S with skip K (K is shorter than
   * n.skip when a split moved the node down). Returns `n` itself when nothing
   * changes and the node stays where it is.
   */
  private internal(S: string, n: InternalNode, K: string, moved: boolean, lo: number, hi: number): Desc | InternalNode | null {
    const P = S + K;
    // Writes under P form one run [a, b) of the sorted writes; the others diverge inside K.
    let a = lo;
    while (a < hi && this.keys[a]! < P) a++;
    let b = a;
    while (b < hi && this.keys[b]!.startsWith(P)) b++;
    for (let i = lo; i < hi; i++) {
      if (i === a) i = b;
      if (i < hi && this.vals[i]) return this.split(S, n, K, lo, hi);
    }

    const slots = emptySlots();
    for (let s = 0; s <= 16; s++) if (hasSlot(n.bitmap, s)) slots[s] = KEPT;
    let changed = moved;
    let i = a;
    if (i < b && this.keys[i]!.length === P.length) {
      const old = slots[END_SLOT] ? this.keep(n, P, END_SLOT) : null;
      const d = this.upd(P, true, old, i, i + 1);
      if (d !== old) {
        changed = true;
        slots[END_SLOT] = d;
      }
      i++;
    }
    const at = P.length;
    while (i < b) {
      const c = this.keys[i]!.charCodeAt(at);
      let j = i + 1;
      while (j < b && this.keys[j]!.charCodeAt(at) === c) j++;
      const s = c <= 57 ? c - 48 : c - 87;
      const old = slots[s] ? this.keep(n, P, s) : null;
      const d = this.upd(P + NIBBLE_HEX[s], false, old, i, j);
      if (d !== old) {
        changed = true;
        slots[s] = d;
      }
      i = j;
    }
    if (!changed) return n;
    return this.finalize(S, K, slots, n, S === '' && K === '');
  }

  /** Writes insert keys that leave node `n` inside its skip: a new node at S branches where they diverge, `n` moves below it. */
  private split(S: string, n: InternalNode, K: string, lo: number, hi: number): Desc | null {
    const P = S + K;
    let m = P.length;
    for (let i = lo; i < hi; i++) if (this.vals[i]) m = Math.min(m, commonPrefix(P, this.keys[i]!, S.length));
    const Q = P.slice(0, m); // the new node's full path; n moves to Q ‖ P[m]
    const slots = emptySlots();
    const moveNibble = nibbleOf(P[m]!);
    let movedWritten = false;
    let i = lo;
    while (i < hi) {
      const k = this.keys[i]!;
      if (!k.startsWith(Q)) {
        i++; // deleting an absent key that diverges even earlier
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
      const s = nibbleOf(k[Q.length]!);
      if (s === moveNibble) {
        slots[s] = this.internal(Q + NIBBLE_HEX[s], n, P.slice(m + 1), true, i, j) as Desc | null;
        movedWritten = true;
      } else {
        const live = this.inserts(i, j);
        slots[s] = this.build(Q + NIBBLE_HEX[s], live.keys, live.vals, 0, live.keys.length);
      }
      i = j;
    }
    // No write under n's new place: n only moves. (Writes that deleted all of n leave its slot empty: not this case.)
    if (!movedWritten) slots[moveNibble] = this.internal(Q + NIBBLE_HEX[moveNibble], n, P.slice(m + 1), true, hi, hi) as Desc | null;
    return this.finalize(S, Q.slice(S.length), slots, null, false);
  }

  /** Subtree of sorted entries [lo, hi) (all under S), canonical: none, a leaf, or a branching node. */
  private build(S: string, keys: string[], vals: Uint8Array[], lo: number, hi: number): Desc | null {
    if (hi === lo) return null;
    if (hi - lo === 1) return { t: 1, key: keys[lo]!, value: vals[lo]! };
    const P = keys[lo]!.slice(0, commonPrefix(keys[lo]!, keys[hi - 1]!, S.length));
    const d: NewInternal = { t: 2, skip: P.slice(S.length), slots: emptySlots(), from: null, count: 0 };
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
    const at = P.length;
    while (i < hi) {
      const c = keys[i]!.charCodeAt(at);
      let j = i + 1;
      while (j < hi && keys[j]!.charCodeAt(at) === c) j++;
      const s = c <= 57 ? c - 48 : c - 87;
      d.slots[s] = this.build(P + NIBBLE_HEX[s], keys, vals, i, j);
      i = j;
    }
    d.count = hi - lo;
  }

  /** A node at S with skip K and these slots (KEPT ones from `from`), collapsed to canonical form (except the root, which always stays). */
  private finalize(S: string, K: string, slots: (Desc | Kept | null)[], from: InternalNode | null, isRoot: boolean): Desc | null {
    let used = 0;
    let count = 0;
    let only = -1;
    for (let s = 0; s <= 16; s++) {
      const d = slots[s];
      if (!d) continue;
      used++;
      only = s;
      if (d.t === 3) count += readU64(from!.bytes, refOffset(from!, s) + 41);
      else if (d.t === 0) count += readU64(d.src, d.off + 41);
      else count += d.t === 1 ? 1 : d.count;
    }
    if (isRoot || used > 1) return { t: 2, skip: K, slots, from, count };
    if (used === 0) return null;
    const P = S + K;
    let d = slots[only]!;
    if (d.t === 3) d = this.keep(from!, P, only);
    if (d.t === 1) return d;
    if (d.t === 2) return { t: 2, skip: K + NIBBLE_HEX[only] + d.skip, slots: d.slots, from: d.from, count: d.count };
    // One untouched child: it moves up to S (a leaf as is; an internal node with its skip extended).
    const v = refVersion(d);
    const c = this.trie.node(d.path, d.end, v);
    this.removed.push([d.path, d.end, v]);
    if (c.leaf) return { t: 1, key: c.keyHex, value: leafValue(c) };
    const cs = emptySlots();
    for (let s = 0; s <= 16; s++) if (hasSlot(c.bitmap, s)) cs[s] = KEPT;
    return { t: 2, skip: K + NIBBLE_HEX[only] + c.skip, slots: cs, from: c, count: c.count };
  }

  // ------------------------------------------------------------ phase 2

  /** Store `d` at (path, end); write its 49-byte reference into `out` at `o`. */
  private place(d: Desc, path: string, end: boolean, out: Uint8Array, o: number): void {
    if (d.t === 0) {
      copy(d.src, d.off, out, o, REF_BYTES);
      return;
    }
    const sc = this.scratch;
    let bytes: Uint8Array;
    let h: Uint8Array;
    let count: number;
    if (d.t === 1) {
      // Stored leaf `0x02 ‖ u32 keyLen ‖ key ‖ u32 valueLen ‖ value`; hash H(0x00 ‖ u32 keyLen ‖ key ‖ H(value)).
      const kl = d.key.length >> 1;
      const vl = d.value.length;
      const nb = this.alloc(9 + kl + vl);
      nb[0] = TAG_LEAF_STORED;
      writeU32(nb, 1, kl);
      packNibblesInto(d.key, nb, 5);
      writeU32(nb, 5 + kl, vl);
      nb.set(d.value, 9 + kl);
      sc[0] = 0;
      copy(nb, 1, sc, 1, 4 + kl);
      sc.set(hash('sha256', d.value, 'buffer') as unknown as Buffer, 5 + kl);
      bytes = nb;
      h = hash('sha256', new Uint8Array(sc.buffer, 0, 5 + kl + 32), 'buffer') as unknown as Buffer;
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
      // Stored: header ‖ per slot (hash ‖ u64 version ‖ u8 isLeaf ‖ u64 count); hashed: header ‖ the hashes.
      const skipBytes = (d.skip.length + 1) >> 1;
      const base = 3 + skipBytes + 12;
      const nb = this.alloc(base + k * REF_BYTES);
      nb[0] = TAG_INTERNAL;
      nb[1] = d.skip.length >>> 8;
      nb[2] = d.skip.length & 0xff;
      packNibblesInto(d.skip, nb, 3);
      writeU32(nb, base - 12, bitmap);
      writeU64(nb, base - 8, d.count);
      let at = base;
      for (let s = END_SLOT, x = 0; x <= 16; x++, s = x - 1) {
        const c = d.slots[s];
        if (!c) continue;
        if (c.t === 3) copy(d.from!.bytes, refOffset(d.from!, s), nb, at, REF_BYTES);
        else if (s === END_SLOT) this.place(c, P, true, nb, at);
        else this.place(c, P + NIBBLE_HEX[s], false, nb, at);
        at += REF_BYTES;
      }
      copy(nb, 0, sc, 0, base);
      for (let x = 0; x < k; x++) copy(nb, base + x * REF_BYTES, sc, base + 32 * x, 32);
      h = hash('sha256', new Uint8Array(sc.buffer, 0, base + 32 * k), 'buffer') as unknown as Buffer;
      bytes = nb;
      count = d.count;
    }
    this.puts.push([this.key(path, end, this.version), bytes]);
    this.putNames.push(nodeName(path, end, this.version));
    copy(h, 0, out, o, 32);
    writeU64(out, o + 32, this.version);
    out[o + 40] = d.t === 1 ? 1 : 0;
    writeU64(out, o + 41, count);
  }

  private finish(root: NewInternal, baseVersion: number): TrieUpdate {
    const ref = new Uint8Array(REF_BYTES);
    this.place(root, '', false, ref, 0);
    const stale: Uint8Array[] = [];
    const dels: Uint8Array[] = [];
    const delNames: string[] = [];
    const staleNames: string[] = [];
    let put: Set<string> | undefined;
    for (const [p, e, v] of this.removed) {
      if (v < this.version) {
        stale.push(nodeKey(p, e, v));
        staleNames.push(nodeName(p, e, v));
        continue;
      }
      // A node of this same version: garbage, unless this update wrote its key again.
      put ??= new Set(this.putNames);
      const name = nodeName(p, e, v);
      if (put.has(name)) continue;
      dels.push(nodeKey(p, e, v));
      delNames.push(name);
    }
    const u: TrieUpdate = { version: this.version, root: ref.slice(0, 32), count: readU64(ref, 41), puts: this.puts, stale, dels };
    META.set(u, { baseVersion, baseRoot: this.trie.root(), putNames: this.putNames, delNames, staleNames });
    return u;
  }
}

function copy(src: Uint8Array, so: number, dst: Uint8Array, d: number, n: number): void {
  for (let i = 0; i < n; i++) dst[d + i] = src[so + i]!;
}
