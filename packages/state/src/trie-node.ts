import { createHash } from 'node:crypto';
import { bytesEqual, sha256, toHex } from '@qnexus/crypto';
import { QnexusError, type Reader, type Writer } from '@qnexus/types';

/**
 * Byte formats of the Merkle radix-16 trie (see trie.ts): node keys, stored
 * nodes, hash preimages, and the state proofs built from preimages. Paths are
 * hex strings, one character per nibble, so a key's hex is its nibble path.
 */

/** Longest state key (bytes): writes with a longer key throw. */
export const MAX_KEY_BYTES = 1024;
/** Longest path in nibbles (a key's full path). */
export const MAX_PATH_NIBBLES = 2 * MAX_KEY_BYTES;
/** A proof holds at most one node per nibble of the key, plus the root and the final leaf. */
export const MAX_PROOF_NODES = MAX_PATH_NIBBLES + 2;
/** Largest node preimage: an internal node with the longest skip and 17 children (a leaf preimage is smaller). */
export const MAX_PROOF_NODE_BYTES = 1 + 2 + MAX_KEY_BYTES + 4 + 8 + 17 * 32;
/** Largest value a decoded proof may carry. */
export const MAX_PROOF_VALUE_BYTES = 1 << 20;

export const END_SLOT = 16;
/** Stored per child of an internal node: hash(32) ‖ u64 version ‖ u8 isLeaf ‖ u64 childCount. */
export const REF_BYTES = 49;
export const TAG_LEAF_HASH = 0x00;
export const TAG_INTERNAL = 0x01;
export const TAG_LEAF_STORED = 0x02;

const HEX_NIBBLE: Record<string, number> = {};
for (let i = 0; i < 16; i++) HEX_NIBBLE[i.toString(16)] = i;
export const NIBBLE_HEX = Array.from({ length: 16 }, (_, i) => i.toString(16));

/** Value of hex char `c` (lowercase), or -1. */
export function nibbleOf(c: string): number {
  return HEX_NIBBLE[c] ?? -1;
}

export function readU32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

/** u64 that must be a safe integer (versions, counts); larger ones are malformed. */
export function readU64(b: Uint8Array, o: number): number {
  const hi = readU32(b, o);
  if (hi > 0x1fffff) throw new QnexusError('MALFORMED', 'u64 beyond the safe integer range');
  return hi * 0x100000000 + readU32(b, o + 4);
}

export function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

export function writeU64(b: Uint8Array, o: number, v: number): void {
  writeU32(b, o, Math.floor(v / 0x100000000));
  writeU32(b, o + 4, v >>> 0);
}

/** Packed nibbles: high nibble first, an odd length padded with a 0 low nibble. */
export function packNibbles(path: string): Buffer {
  return Buffer.from(path.length & 1 ? path + '0' : path, 'hex');
}

function unpackNibbles(b: Uint8Array, o: number, n: number): string {
  const hex = Buffer.from(b.buffer, b.byteOffset + o, (n + 1) >> 1).toString('hex');
  return n & 1 ? hex.slice(0, n) : hex;
}

/** Pack hex nibbles (lowercase) into `out` at `o`, high nibble first, an odd length padded with 0. */
export function packNibblesInto(path: string, out: Uint8Array, o: number): void {
  const n = path.length;
  for (let i = 0; i < n; i += 2) {
    const c = path.charCodeAt(i);
    const hi = c <= 57 ? c - 48 : c - 87;
    let lo = 0;
    if (i + 1 < n) {
      const d = path.charCodeAt(i + 1);
      lo = d <= 57 ? d - 48 : d - 87;
    }
    out[o + (i >> 1)] = (hi << 4) | lo;
  }
}

/** Bytes of the storage key of a node at `path`. */
export function nodeKeyBytes(path: string): number {
  return 2 + ((path.length + 1) >> 1) + 1 + 8;
}

/** Write the storage key of a node into `out` (nodeKeyBytes(path) long): `u16 pathLen ‖ packed path ‖ u8 end ‖ u64 version`. */
export function writeNodeKey(out: Uint8Array, path: string, end: boolean, version: number): Uint8Array {
  const pl = (path.length + 1) >> 1;
  out[0] = path.length >>> 8;
  out[1] = path.length & 0xff;
  packNibblesInto(path, out, 2);
  out[2 + pl] = end ? 1 : 0;
  writeU64(out, 3 + pl, version);
  return out;
}

/** Storage key of a node, in a buffer of its own. */
export function nodeKey(path: string, end: boolean, version: number): Uint8Array {
  return writeNodeKey(Buffer.allocUnsafe(nodeKeyBytes(path)), path, end, version);
}

/** In-memory name of a node key (cache and overlay): path, '/' or '!' (end), version. */
export function nodeName(path: string, end: boolean, version: number): string {
  return path + (end ? '!' : '/') + version;
}

/** The name of a stored node key (inverse of `nodeKey`, for updates handed in from elsewhere). */
export function nameOfNodeKey(k: Uint8Array): string {
  const n = (k[0]! << 8) | k[1]!;
  const pl = (n + 1) >> 1;
  if (k.length !== 2 + pl + 9) throw new QnexusError('MALFORMED', 'bad trie node key');
  return nodeName(unpackNibbles(k, 2, n), k[2 + pl] === 1, readU64(k, 3 + pl));
}

/** Leaf hash: `H(0x00 ‖ u32 keyLen ‖ key ‖ H(value))`. */
export function leafHash(key: Uint8Array, value: Uint8Array): Uint8Array {
  return sha256(leafPreimage(key, sha256(value)));
}

export function leafPreimage(key: Uint8Array, valueHash: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + key.length + 32);
  out[0] = TAG_LEAF_HASH;
  writeU32(out, 1, key.length);
  out.set(key, 5);
  out.set(valueHash, 5 + key.length);
  return out;
}

/** Stored leaf (also the snapshot item of a leaf): `0x02 ‖ u32 keyLen ‖ key ‖ u32 valueLen ‖ value`. */
export function storedLeaf(key: Uint8Array, value: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(9 + key.length + value.length);
  out[0] = TAG_LEAF_STORED;
  writeU32(out, 1, key.length);
  out.set(key, 5);
  writeU32(out, 5 + key.length, value.length);
  out.set(value, 9 + key.length);
  return out;
}

/** A stored leaf, parsed without copies (views into `bytes`). */
export interface LeafNode {
  leaf: true;
  bytes: Uint8Array;
  keyHex: string;
  keyLen: number;
}

/** A stored internal node, parsed lazily: children are read from `bytes` at `base + index × REF_BYTES`. */
export interface InternalNode {
  leaf: false;
  bytes: Uint8Array;
  skip: string;
  bitmap: number;
  count: number;
  /** Offset of the first child reference (= length of the preimage header). */
  base: number;
}

export type TrieNode = LeafNode | InternalNode;

export function leafKey(n: LeafNode): Uint8Array {
  return n.bytes.subarray(5, 5 + n.keyLen);
}

export function leafValue(n: LeafNode): Uint8Array {
  return n.bytes.subarray(9 + n.keyLen);
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** Index of slot `s` (END_SLOT or a nibble) among the used slots, in slot order end, 0..15. */
export function slotIndex(bitmap: number, s: number): number {
  if (s === END_SLOT) return 0;
  return (bitmap >>> 16) + popcount(bitmap & ((1 << s) - 1));
}

export function hasSlot(bitmap: number, s: number): boolean {
  return ((bitmap >>> s) & 1) === 1;
}

/** Offset of slot `s`'s child reference in a stored internal node (the slot must be used). */
export function refOffset(n: InternalNode, s: number): number {
  return n.base + slotIndex(n.bitmap, s) * REF_BYTES;
}

/** Header of an internal node (its preimage without child hashes): the bytes up to the children. */
function internalHeaderLength(skipLen: number): number {
  return 1 + 2 + ((skipLen + 1) >> 1) + 4 + 8;
}

/** Parse stored bytes of a node (trusted: our own database, still checked for shape). */
export function decodeNode(b: Uint8Array): TrieNode {
  if (b[0] === TAG_LEAF_STORED && b.length >= 9) {
    const keyLen = readU32(b, 1);
    if (9 + keyLen <= b.length && readU32(b, 5 + keyLen) === b.length - 9 - keyLen) {
      const keyHex = Buffer.from(b.buffer, b.byteOffset + 5, keyLen).toString('hex');
      return { leaf: true, bytes: b, keyHex, keyLen };
    }
  } else if (b[0] === TAG_INTERNAL && b.length >= 3) {
    const skipLen = (b[1]! << 8) | b[2]!;
    const base = internalHeaderLength(skipLen);
    if (b.length >= base) {
      const bitmap = readU32(b, base - 12);
      if (bitmap < 1 << 17 && b.length === base + popcount(bitmap) * REF_BYTES) {
        return { leaf: false, bytes: b, skip: unpackNibbles(b, 3, skipLen), bitmap, count: readU64(b, base - 8), base };
      }
    }
  }
  throw new QnexusError('INTERNAL', 'corrupt trie node in the database');
}

/** The hash preimage of a stored internal node: its header then each child's hash. */
export function internalPreimage(n: InternalNode): Uint8Array {
  const k = popcount(n.bitmap);
  const out = new Uint8Array(n.base + 32 * k);
  out.set(n.bytes.subarray(0, n.base), 0);
  for (let i = 0; i < k; i++) {
    const o = n.base + i * REF_BYTES;
    out.set(n.bytes.subarray(o, o + 32), n.base + 32 * i);
  }
  return out;
}

export function internalHash(n: InternalNode): Uint8Array {
  const h = createHash('sha256');
  h.update(n.bytes.subarray(0, n.base));
  const k = popcount(n.bitmap);
  for (let i = 0; i < k; i++) {
    const o = n.base + i * REF_BYTES;
    h.update(n.bytes.subarray(o, o + 32));
  }
  return h.digest();
}

/** The preimage of a stored leaf's hash. */
export function leafNodePreimage(n: LeafNode): Uint8Array {
  return leafPreimage(leafKey(n), sha256(leafValue(n)));
}

/** A node's header for `skip`, `bitmap`, `count`, with room for `k` children of `refBytes` each. */
export function internalHeader(skip: string, bitmap: number, count: number, k: number, refBytes: number): Buffer {
  const base = internalHeaderLength(skip.length);
  const out = Buffer.allocUnsafe(base + k * refBytes);
  out[0] = TAG_INTERNAL;
  out[1] = skip.length >>> 8;
  out[2] = skip.length & 0xff;
  packNibblesInto(skip, out, 3);
  writeU32(out, base - 12, bitmap);
  writeU64(out, base - 8, count);
  return out;
}

/** Hash of the empty state: the root with no children. */
export const EMPTY_ROOT: Uint8Array = sha256(internalHeader('', 0, 0, 0, 0));

/** A parsed internal preimage (proofs and snapshot items: untrusted bytes, checked strictly). */
export interface ParsedInternal {
  skip: string;
  bitmap: number;
  count: number;
  /** Child hashes in slot order end, 0..15 (views into the preimage). */
  hashes: Uint8Array[];
}

/** Strict parse of an internal preimage (exact length, padding nibble zero, 17-bit bitmap); undefined if malformed. */
export function parseInternalPreimage(b: Uint8Array): ParsedInternal | undefined {
  if (b.length < 3 || b[0] !== TAG_INTERNAL) return undefined;
  const skipLen = (b[1]! << 8) | b[2]!;
  if (skipLen > MAX_PATH_NIBBLES) return undefined;
  const base = internalHeaderLength(skipLen);
  if (b.length < base) return undefined;
  if (skipLen & 1 && (b[3 + (skipLen >> 1)]! & 0x0f) !== 0) return undefined;
  const bitmap = readU32(b, base - 12);
  if (bitmap >= 1 << 17) return undefined;
  const k = popcount(bitmap);
  if (b.length !== base + 32 * k) return undefined;
  const hi = readU32(b, base - 8);
  if (hi > 0x1fffff) return undefined;
  const count = hi * 0x100000000 + readU32(b, base - 4);
  const hashes: Uint8Array[] = [];
  for (let i = 0; i < k; i++) hashes.push(b.subarray(base + 32 * i, base + 32 * (i + 1)));
  return { skip: unpackNibbles(b, 3, skipLen), bitmap, count, hashes };
}

// ---------------------------------------------------------------- proofs

/** A proof about one key: present (`value`) or absent (null); `nodes` are preimages from the root down. */
export interface StateProof {
  key: Uint8Array;
  value: Uint8Array | null;
  nodes: Uint8Array[];
}

/**
 * Check a proof against a (certified) state root. Pure; any inconsistency is `false`.
 * Walks the key's nibble path from the root: each node must hash to what its parent names.
 * Present: the slot the path ends in names the leaf hash of (key, value). Absent: the path
 * leaves the trie at the last node (empty slot, or a skip the key diverges from or ends
 * inside), or the last node is a leaf with another key in the key's slot.
 */
export function verifyStateProof(root: Uint8Array, p: StateProof): boolean {
  try {
    if (!(p.key instanceof Uint8Array) || p.key.length > MAX_KEY_BYTES || !Array.isArray(p.nodes)) return false;
    const n = p.nodes.length;
    if (n === 0 || n > MAX_PROOF_NODES) return false;
    const key = toHex(p.key);
    let expected = root;
    let pos = 0;
    for (let i = 0; i < n; i++) {
      const nb = p.nodes[i]!;
      const last = i === n - 1;
      if (!(nb instanceof Uint8Array) || !bytesEqual(sha256(nb), expected)) return false;
      if (nb[0] === TAG_LEAF_HASH) {
        // Another key's leaf where ours would be: that slot holds one entry, not ours.
        if (!last || i === 0 || p.value !== null || nb.length < 5 + 32) return false;
        const kl = readU32(nb, 1);
        if (nb.length !== 5 + kl + 32) return false;
        return !bytesEqual(nb.subarray(5, 5 + kl), p.key);
      }
      const node = parseInternalPreimage(nb);
      if (!node || (i === 0 && node.skip.length !== 0)) return false;
      if (!key.startsWith(node.skip, pos)) return last && p.value === null;
      pos += node.skip.length;
      const slot = pos === key.length ? END_SLOT : nibbleOf(key[pos]!);
      if (!hasSlot(node.bitmap, slot)) return last && p.value === null;
      expected = node.hashes[slotIndex(node.bitmap, slot)]!;
      if (slot !== END_SLOT) pos++;
      if (last) return p.value !== null && bytesEqual(expected, leafHash(p.key, p.value));
    }
    return false;
  } catch {
    return false;
  }
}

export function encodeStateProof(w: Writer, p: StateProof): Writer {
  w.bytes(p.key);
  if (p.value) w.u8(1).bytes(p.value);
  else w.u8(0);
  w.u32(p.nodes.length);
  for (const nb of p.nodes) w.bytes(nb);
  return w;
}

/** Bounded decode: the key, value, node count and each node are capped before anything is allocated. */
export function decodeStateProof(r: Reader): StateProof {
  const key = r.bytes(MAX_KEY_BYTES, 'proof key');
  const flag = r.u8('proof value flag');
  if (flag > 1) throw new QnexusError('MALFORMED', 'bad proof value flag');
  const value = flag ? r.bytes(MAX_PROOF_VALUE_BYTES, 'proof value') : null;
  const k = r.count(MAX_PROOF_NODES, 'proof nodes');
  const nodes: Uint8Array[] = [];
  for (let i = 0; i < k; i++) nodes.push(r.bytes(MAX_PROOF_NODE_BYTES, 'proof node'));
  return { key, value, nodes };
}
