import { hashConcat, ZERO_HASH } from '@qnexus/crypto';

/**
 * Binary Merkle tree with domain-separated leaves (0x00) and inner nodes (0x01)
 * so a leaf can never be passed off as a node. An odd node is promoted
 * unchanged to the next level. The empty tree's root is 32 zero bytes.
 */
const LEAF = new Uint8Array([0]);
const NODE = new Uint8Array([1]);

export function merkleLeaf(data: Uint8Array): Uint8Array {
  return hashConcat(LEAF, data);
}

export function merkleRootOfLeafHashes(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return ZERO_HASH;
  let level = leaves.slice();
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) {
      next.push(i + 1 < level.length ? hashConcat(NODE, level[i]!, level[i + 1]!) : level[i]!);
    }
    level = next;
  }
  return level[0]!;
}

export function merkleRoot(items: readonly Uint8Array[]): Uint8Array {
  return merkleRootOfLeafHashes(items.map(merkleLeaf));
}

export interface MerkleProofStep {
  left: boolean;
  hash: Uint8Array;
}

/** Sibling path for leaf `index` (used later for cross-shard inclusion proofs). */
export function merkleProof(leaves: readonly Uint8Array[], index: number): MerkleProofStep[] {
  if (index < 0 || index >= leaves.length) throw new RangeError('leaf index out of range');
  const proof: MerkleProofStep[] = [];
  let level = leaves.slice();
  let i = index;
  while (level.length > 1) {
    const sib = i ^ 1;
    if (sib < level.length) proof.push({ left: sib < i, hash: level[sib]! });
    const next: Uint8Array[] = [];
    for (let j = 0; j < level.length; j += 2) {
      next.push(j + 1 < level.length ? hashConcat(NODE, level[j]!, level[j + 1]!) : level[j]!);
    }
    level = next;
    i = i >> 1;
  }
  return proof;
}

export function verifyMerkleProof(leafHash: Uint8Array, proof: readonly MerkleProofStep[], root: Uint8Array): boolean {
  let h = leafHash;
  for (const s of proof) h = s.left ? hashConcat(NODE, s.hash, h) : hashConcat(NODE, h, s.hash);
  return Buffer.compare(h, root) === 0;
}

/**
 * Sibling paths for several leaves, building the tree once: O(n + k·log n)
 * instead of O(k·n) for k separate `merkleProof` calls.
 */
export function merkleProofs(leaves: readonly Uint8Array[], indices: readonly number[]): MerkleProofStep[][] {
  for (const i of indices) if (i < 0 || i >= leaves.length) throw new RangeError('leaf index out of range');
  const levels: Uint8Array[][] = [leaves.slice()];
  while (levels[levels.length - 1]!.length > 1) {
    const level = levels[levels.length - 1]!;
    const next: Uint8Array[] = [];
    for (let j = 0; j < level.length; j += 2) next.push(j + 1 < level.length ? hashConcat(NODE, level[j]!, level[j + 1]!) : level[j]!);
    levels.push(next);
  }
  return indices.map((index) => {
    const proof: MerkleProofStep[] = [];
    let i = index;
    for (let d = 0; d < levels.length - 1; d++) {
      const level = levels[d]!;
      const sib = i ^ 1;
      if (sib < level.length) proof.push({ left: sib < i, hash: level[sib]! });
      i >>= 1;
    }
    return proof;
  });
}
