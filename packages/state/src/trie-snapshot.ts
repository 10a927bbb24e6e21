import { bytesEqual, sha256, toHex } from '@qnexus/crypto';
import { QnexusError } from '@qnexus/types';
import type { KeyHex } from './store.js';
import {
  END_SLOT,
  MAX_KEY_BYTES,
  MAX_PATH_NIBBLES,
  NIBBLE_HEX,
  REF_BYTES,
  TAG_INTERNAL,
  TAG_LEAF_STORED,
  hasSlot,
  leafHash,
  nodeKey,
  parseInternalPreimage,
  readU32,
  slotIndex,
  writeU64,
  type ParsedInternal,
} from './trie-node.js';

/**
 * Rebuilding a trie from snapshot items (what `MerkleTrie.exportSubtree` serves):
 * internal node preimages (tag 0x01, as hashed) and full leaves (tag 0x02, as stored),
 * in DFS pre-order, an internal node's end leaf always right after it. Every item is
 * checked against the hash its parent names, from the certified root down, so
 * nothing unverified is ever stored.
 */

/** A subtree still wanted: the hash its parent names, and which parent slot it fills. */
interface Want {
  hash: Uint8Array;
  parent: string | null;
  slot: number;
}

/** An accepted internal node whose children have not all arrived: its stored form is complete once they have. */
interface Partial {
  path: string;
  stored: Uint8Array;
  base: number;
  bitmap: number;
  missing: number;
}

/** An item verified in the first pass of `add`, applied in the second. */
interface Accepted {
  path: string;
  end: boolean;
  hash: Uint8Array;
  want: Want;
  item: Uint8Array;
  leaf: { key: KeyHex; value: Uint8Array } | null;
  node: ParsedInternal | null;
}

function bad(msg: string): never {
  throw new QnexusError('BAD_SNAPSHOT', msg);
}

/** Strict parse of a leaf item: `0x02 ‖ u32 keyLen ‖ key ‖ u32 valueLen ‖ value`, nothing after. */
function parseLeafItem(b: Uint8Array): { key: Uint8Array; value: Uint8Array } | undefined {
  if (b.length < 9 || b[0] !== TAG_LEAF_STORED) return undefined;
  const kl = readU32(b, 1);
  if (kl > MAX_KEY_BYTES || 9 + kl > b.length) return undefined;
  if (readU32(b, 5 + kl) !== b.length - 9 - kl) return undefined;
  return { key: b.subarray(5, 5 + kl), value: b.subarray(9 + kl) };
}

/** Rebuilds a trie from snapshot items, verifying every item against the hash its parent names, top-down. */
export class TrieImporter {
  private readonly wants = new Map<string, Want>();
  private readonly partials = new Map<string, Partial>();
  private got = 0;
  private all = 0;

  /** `root`: the expected (certified) root; nodes are stored at `version`. */
  constructor(
    root: Uint8Array,
    private readonly version: number,
  ) {
    if (!Number.isSafeInteger(version) || version < 0) throw new RangeError(`bad snapshot version ${version}`);
    this.wants.set('', { hash: new Uint8Array(root), parent: null, slot: 0 });
  }

  /** Start paths of subtrees not received yet, in key order; initially [""]. */
  pending(): string[] {
    return [...this.wants.keys()].sort();
  }

  get done(): boolean {
    return this.wants.size === 0;
  }

  /** Entries received so far. */
  get received(): number {
    return this.got;
  }

  /** Entries of the whole state (the root's count; 0 until the root arrived). */
  get total(): number {
    return this.all;
  }

  /**
   * Items for the pending subtree at `path`, in DFS pre-order as `exportSubtree` sends
   * them (a prefix of it is fine; an internal node whose end leaf did not come along is
   * left pending). The first bad item (malformed, not what its parent names, one too
   * many) throws BAD_SNAPSHOT and nothing of this call is kept.
   */
  add(path: string, items: Uint8Array[]): { puts: [Uint8Array, Uint8Array][]; entries: [KeyHex, Uint8Array][] } {
    const first = this.wants.get(path);
    if (!first) throw new QnexusError('NOT_FOUND', `snapshot path ${path || '(root)'} is not pending`);
    // Pass 1, pure: verify every item against what its parent names.
    const accepted: Accepted[] = [];
    const stack: { path: string; end: boolean; want: Want }[] = [{ path, end: false, want: first }];
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const next = stack.pop();
      if (!next) bad(`snapshot item ${i} is beyond the subtree at ${path || '(root)'}`);
      if (!(item instanceof Uint8Array)) bad('snapshot item is not bytes');
      const { path: X, end, want } = next;
      if (item[0] === TAG_LEAF_STORED) {
        const leaf = parseLeafItem(item);
        if (!leaf) bad(`malformed snapshot leaf at ${X}`);
        const key = toHex(leaf.key);
        if (!bytesEqual(leafHash(leaf.key, leaf.value), want.hash)) bad(`snapshot leaf at ${X} does not match its parent`);
        if (end ? key !== X : !key.startsWith(X)) bad(`snapshot leaf ${key} is not under ${X}`);
        accepted.push({ path: X, end, hash: want.hash, want, item, leaf: { key, value: new Uint8Array(leaf.value) }, node: null });
        continue;
      }
      const node = item[0] === TAG_INTERNAL && item.length <= 1 + 2 + MAX_KEY_BYTES + 12 + 17 * 32 ? parseInternalPreimage(item) : undefined;
      if (!node) bad(`malformed snapshot item at ${X}`);
      if (!bytesEqual(sha256(item), want.hash)) bad(`snapshot node at ${X} does not match its parent`);
      // Hash-bound to the certified root, so these only fail for a root that is not a state root at all.
      const used = node.hashes.length;
      if (end || X.length + node.skip.length > MAX_PATH_NIBBLES || (X === '' ? node.skip !== '' : used < 2)) bad(`snapshot node at ${X} is not canonical`);
      const P = X + node.skip;
      if (hasSlot(node.bitmap, END_SLOT) && i === items.length - 1) {
        // Its end leaf is not in this call: leave the node pending, as if the items stopped before it.
        stack.push(next);
        break;
      }
      accepted.push({ path: X, end, hash: want.hash, want, item, leaf: null, node });
      for (let s = 15; s >= 0; s--) {
        if (hasSlot(node.bitmap, s)) stack.push({ path: P + NIBBLE_HEX[s], end: false, want: { hash: node.hashes[slotIndex(node.bitmap, s)]!, parent: X, slot: s } });
      }
      if (hasSlot(node.bitmap, END_SLOT)) stack.push({ path: P, end: true, want: { hash: node.hashes[0]!, parent: X, slot: END_SLOT } });
    }
    // An end leaf is never left for a later call.
    if (stack.length && stack[stack.length - 1]!.end) bad('snapshot items stop between a node and its end leaf');

    // Pass 2: store what was verified.
    const puts: [Uint8Array, Uint8Array][] = [];
    const entries: [KeyHex, Uint8Array][] = [];
    this.wants.delete(path);
    for (const a of accepted) {
      let count: number;
      if (a.leaf) {
        puts.push([nodeKey(a.path, a.end, this.version), new Uint8Array(a.item)]);
        entries.push([a.leaf.key, a.leaf.value]);
        this.got++;
        count = 1;
      } else {
        const n = a.node!;
        const k = n.hashes.length;
        const base = a.item.length - 32 * k;
        const stored = new Uint8Array(base + k * REF_BYTES);
        stored.set(a.item.subarray(0, base));
        const p: Partial = { path: a.path, stored, base, bitmap: n.bitmap, missing: k };
        if (a.want.parent === null) this.all = n.count;
        if (k === 0) puts.push([nodeKey(a.path, false, this.version), stored]);
        else this.partials.set(a.path, p);
        count = n.count;
      }
      this.fill(a.want, a.hash, !!a.leaf, count, puts);
    }
    for (const s of stack) this.wants.set(s.path, s.want);
    return { puts, entries };
  }

  /** Record a received child in its parent's stored form; the parent is stored once its last child arrived. */
  private fill(w: Want, hash: Uint8Array, leaf: boolean, count: number, puts: [Uint8Array, Uint8Array][]): void {
    if (w.parent === null) return;
    const p = this.partials.get(w.parent);
    if (!p) throw new QnexusError('INTERNAL', `snapshot parent ${w.parent} is not open`);
    const o = p.base + slotIndex(p.bitmap, w.slot) * REF_BYTES;
    p.stored.set(hash, o);
    writeU64(p.stored, o + 32, this.version);
    p.stored[o + 40] = leaf ? 1 : 0;
    writeU64(p.stored, o + 41, count);
    if (--p.missing === 0) {
      this.partials.delete(p.path);
      puts.push([nodeKey(p.path, false, this.version), p.stored]);
    }
  }
}
