import { bytesEqual, toHex } from '@qnexus/crypto';
import { QnexusError } from '@qnexus/types';
import { MAX_RANGE, type KeyHex } from './store.js';
import { ByteCache } from './lru.js';
import { META, Updater, type PriorValue, type TrieUpdate } from './trie-update.js';
import {
  EMPTY_ROOT,
  END_SLOT,
  MAX_PATH_NIBBLES,
  NIBBLE_HEX,
  decodeNode,
  hasSlot,
  internalHash,
  internalHeader,
  internalPreimage,
  leafNodePreimage,
  leafValue,
  nameOfNodeKey,
  nibbleOf,
  nodeKey,
  nodeName,
  readU64,
  refOffset,
  type InternalNode,
  type StateProof,
  type TrieNode,
} from './trie-node.js';

export type { PriorValue, TrieUpdate } from './trie-update.js';
export { TrieImporter } from './trie-snapshot.js';
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

// JS cost of a cached node beyond its stored bytes: the Map entry, its name, the parsed object and
// its strings, the Uint8Array and its ArrayBuffer. Measured: ~560 B of heap + external memory per
// cached 38-byte leaf (a bank balance), so ~520 B beyond the bytes.
const NODE_OVERHEAD = 512;
const DEFAULT_CACHE_BYTES = 32 << 20;
const HEX_KEY = /^(?:[0-9a-f]{2})*$/;
const HEX_PATH = /^[0-9a-f]*$/;

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
  /** Parsed nodes by name, bounded by an estimate of what they cost in memory. */
  private readonly cache: ByteCache<string, TrieNode>;

  /** Open at a committed version (-1: empty trie, nothing stored yet). */
  constructor(
    private readonly db: TrieDB,
    version: number,
    opts: TrieOptions = {},
  ) {
    if (!Number.isSafeInteger(version) || version < -1) throw new RangeError(`bad trie version ${version}`);
    this.cache = new ByteCache(opts.cacheBytes ?? DEFAULT_CACHE_BYTES);
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

  /** What the node cache holds now, by its estimate (bounded by `cacheBytes`). */
  get cachedBytes(): number {
    return this.cache.bytes;
  }

  // ------------------------------------------------------------ node access

  private load(path: string, end: boolean, version: number): TrieNode | undefined {
    const name = nodeName(path, end, version);
    const hit = this.cache.get(name);
    if (hit) return hit;
    // Nodes of applied, unflushed updates are parsed on each read and never cached: their
    // bytes are views into the update's arena, which must not outlive its flush.
    const pending = this.overlay.get(name);
    if (pending) return decodeNode(pending);
    const bytes = this.db.get(nodeKey(path, end, version));
    if (!bytes) return undefined;
    const node = decodeNode(bytes);
    this.cache.set(name, node, nodeCost(name, node));
    return node;
  }

  private loadUncached(path: string, end: boolean, version: number): TrieNode | undefined {
    const bytes = this.overlay.get(nodeName(path, end, version)) ?? this.db.get(nodeKey(path, end, version));
    return bytes ? decodeNode(bytes) : undefined;
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

  // ------------------------------------------------------------ snapshots

  /**
   * Snapshot serving: the subtree starting at `path` ("" = root) of `version`, in DFS
   * pre-order, as items (internal preimage, or the stored leaf), an internal node's end
   * leaf always right after it; stops before `maxItems` items or `maxBytes` bytes, but
   * sends at least one node. STATE_PRUNED for a version no longer kept, NOT_FOUND for a
   * path where no subtree starts.
   */
  exportSubtree(version: number, path: string, maxItems: number, maxBytes: number): Uint8Array[] {
    if (!Number.isSafeInteger(maxItems) || maxItems < 1 || !Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new RangeError('bad snapshot limits');
    if (path.length > MAX_PATH_NIBBLES || !HEX_PATH.test(path)) throw new QnexusError('NOT_FOUND', 'bad snapshot path');
    let n: TrieNode = this.rootNode(version);
    let S = '';
    while (S !== path) {
      const none = () => new QnexusError('NOT_FOUND', `no subtree starts at ${path} in version ${version}`);
      if (n.leaf) throw none();
      const P = S + n.skip;
      if (path.length <= P.length || !path.startsWith(P)) throw none();
      const s = nibbleOf(path[P.length]!);
      if (!hasSlot(n.bitmap, s)) throw none();
      n = this.childOf(n, P, s);
      S = P + NIBBLE_HEX[s];
    }
    const out: Uint8Array[] = [];
    let bytes = 0;
    // Children are loaded when their turn comes, not when their parent is sent.
    const stack: [InternalNode | null, TrieNode | null, string, number][] = [[null, n, path, 0]];
    while (stack.length) {
      const [parent, loaded, start, slot] = stack.pop()!;
      const node = loaded ?? this.childOf(parent!, start.slice(0, -1), slot);
      if (node.leaf) {
        if (out.length && (out.length + 1 > maxItems || bytes + node.bytes.length > maxBytes)) break;
        out.push(new Uint8Array(node.bytes));
        bytes += node.bytes.length;
        continue;
      }
      const P = start + node.skip;
      const pre = internalPreimage(node);
      const end = hasSlot(node.bitmap, END_SLOT) ? this.childOf(node, P, END_SLOT) : undefined;
      const unit = 1 + (end ? 1 : 0);
      const size = pre.length + (end ? end.bytes.length : 0);
      if (out.length && (out.length + unit > maxItems || bytes + size > maxBytes)) break;
      out.push(pre);
      if (end) out.push(new Uint8Array(end.bytes));
      bytes += size;
      for (let s = 15; s >= 0; s--) if (hasSlot(node.bitmap, s)) stack.push([node, null, P + NIBBLE_HEX[s], s]);
    }
    return out;
  }

  // ------------------------------------------------------------ updates

  /**
   * The update `writes` (value, or null = delete) makes at `version` on top of the
   * committed version. `version` may equal the committed one (a large genesis built
   * in chunks): the nodes it replaces are then garbage (`dels`), not stale. Pure:
   * nothing is installed.
   */
  update(writes: ReadonlyMap<KeyHex, Uint8Array | null>, version: number, prior?: PriorValue): TrieUpdate {
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
    return new Updater(this, keys, vals, version, prior).run(this.ver >= 0 ? this.rootNode(this.ver) : undefined);
  }

  /** Install an update computed on the committed version: its nodes are readable at once (kept in memory until `flushed(u)`). */
  apply(u: TrieUpdate): void {
    const meta = META.get(u) ?? {
      baseVersion: this.ver,
      baseRoot: this.rootHash,
      putNames: u.puts.map(([k]) => nameOfNodeKey(k)),
      delNames: u.dels.map(nameOfNodeKey),
      staleNames: u.stale.map(nameOfNodeKey),
    };
    if (meta.baseVersion !== this.ver || !bytesEqual(meta.baseRoot, this.rootHash)) {
      throw new QnexusError('INTERNAL', `trie update computed on version ${meta.baseVersion}, committed is ${this.ver}`);
    }
    for (const name of meta.delNames) {
      this.overlay.delete(name);
      this.cache.delete(name);
    }
    // The nodes this version replaced serve only reads of older versions (proofs, snapshots at a
    // kept version), which may go to disk: left in the cache, every block's superseded paths
    // would fill it under load, held in the heap until the LRU evicted them.
    for (const name of meta.staleNames) this.cache.delete(name);
    // Only an update at the committed version can rewrite names the cache holds.
    const same = u.version === this.ver;
    for (let i = 0; i < u.puts.length; i++) {
      const name = meta.putNames[i]!;
      if (same) this.cache.delete(name);
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
