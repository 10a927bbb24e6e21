import assert from 'node:assert/strict';
import { ZERO_HASH, hashConcat, sha256, utf8 } from '@qnexus/crypto';
import {
  countedProofs,
  countedRoot,
  merkleLeaf,
  merkleProof,
  merkleProofs,
  merkleRoot,
  merkleRootOfLeafHashes,
  verifyCountedProof,
  verifyMerkleProof,
  type KeyProof,
} from '@qnexus/types';

const items = (n: number, tag = 'item') => Array.from({ length: n }, (_, i) => utf8(`${tag}-${i}`));
const NODE = new Uint8Array([1]);

describe('types: merkle', () => {
  it('empty root is 32 zero bytes; single leaf root is the leaf hash', () => {
    assert.deepEqual(merkleRoot([]), ZERO_HASH);
    const [a] = items(1);
    assert.deepEqual(merkleRoot([a!]), merkleLeaf(a!));
    assert.deepEqual(merkleLeaf(a!), sha256(new Uint8Array([0, ...a!])));
  });

  it('matches a hand-computed tree with odd promotion (3 and 5 leaves)', () => {
    const l = items(5).map(merkleLeaf);
    const n01 = hashConcat(NODE, l[0]!, l[1]!);
    const n23 = hashConcat(NODE, l[2]!, l[3]!);
    assert.deepEqual(merkleRootOfLeafHashes(l.slice(0, 3)), hashConcat(NODE, n01, l[2]!));
    assert.deepEqual(merkleRootOfLeafHashes(l), hashConcat(NODE, hashConcat(NODE, n01, n23), l[4]!));
  });

  it('proofs verify for every index for sizes 1..9 and fail for a wrong leaf, index or root', () => {
    for (let n = 1; n <= 9; n++) {
      const leaves = items(n).map(merkleLeaf);
      const root = merkleRootOfLeafHashes(leaves);
      const wrongRoot = merkleRootOfLeafHashes(items(n, 'other').map(merkleLeaf));
      for (let i = 0; i < n; i++) {
        const proof = merkleProof(leaves, i);
        assert.ok(proof.length <= Math.ceil(Math.log2(n)), `proof length for n=${n}`);
        assert.ok(verifyMerkleProof(leaves[i]!, proof, root), `n=${n} i=${i}`);
        assert.equal(verifyMerkleProof(merkleLeaf(utf8('not-a-member')), proof, root), false, `wrong leaf n=${n} i=${i}`);
        assert.equal(verifyMerkleProof(leaves[i]!, proof, wrongRoot), false, `wrong root n=${n} i=${i}`);
        const flippedRoot = root.slice();
        flippedRoot[31] ^= 1;
        assert.equal(verifyMerkleProof(leaves[i]!, proof, flippedRoot), false);
        if (n > 1) {
          const j = (i + 1) % n;
          assert.equal(verifyMerkleProof(leaves[j]!, proof, root), false, `leaf ${j} with proof of ${i}, n=${n}`);
          // Flipping one side bit breaks the proof.
          const bent = proof.map((s, k) => (k === 0 ? { ...s, left: !s.left } : s));
          assert.equal(verifyMerkleProof(leaves[i]!, bent, root), false);
        }
      }
    }
  });

  it('an inner node cannot be passed off as a leaf (domain separation)', () => {
    const leaves = items(4).map(merkleLeaf);
    const root = merkleRootOfLeafHashes(leaves);
    const inner = hashConcat(NODE, leaves[0]!, leaves[1]!);
    const proof = merkleProof(leaves, 0).slice(1);
    // Using the raw inner node as a "leaf hash" reproduces the root...
    assert.ok(verifyMerkleProof(inner, proof, root));
    // ...but no data item hashes to it as a leaf, since leaves are prefixed with 0x00.
    assert.notDeepEqual(merkleLeaf(new Uint8Array([...leaves[0]!, ...leaves[1]!])), inner);
  });

  it('root depends on order and on every item', () => {
    const xs = items(6);
    const r = merkleRoot(xs);
    assert.notDeepEqual(merkleRoot([xs[1]!, xs[0]!, ...xs.slice(2)]), r);
    for (let i = 0; i < xs.length; i++) {
      const ys = xs.slice();
      ys[i] = utf8('changed');
      assert.notDeepEqual(merkleRoot(ys), r);
    }
    // Odd promotion does not make [a,b,c] collide with [a,b,c,c].
    const abc = items(3);
    assert.notDeepEqual(merkleRoot(abc), merkleRoot([...abc, abc[2]!]));
  });

  it('merkleProof rejects out-of-range indices', () => {
    const l = items(3).map(merkleLeaf);
    assert.throws(() => merkleProof(l, -1), RangeError);
    assert.throws(() => merkleProof(l, 3), RangeError);
    assert.throws(() => merkleProof([], 0), RangeError);
  });

  it('merkleProofs equals merkleProof for every index, for sizes 1..17, in any order and with repeats', () => {
    for (let n = 1; n <= 17; n++) {
      const leaves = items(n, `multi-${n}`).map(merkleLeaf);
      const root = merkleRootOfLeafHashes(leaves);
      const all = Array.from({ length: n }, (_, i) => i);
      const multi = merkleProofs(leaves, all);
      assert.equal(multi.length, n);
      for (let i = 0; i < n; i++) {
        assert.deepEqual(multi[i], merkleProof(leaves, i), `n=${n} i=${i}`);
        assert.ok(verifyMerkleProof(leaves[i]!, multi[i]!, root), `verifies n=${n} i=${i}`);
      }
      // a subset in reverse order with a repeat returns the proofs in the order asked
      const subset = [n - 1, 0, n - 1, Math.floor(n / 2)];
      assert.deepEqual(merkleProofs(leaves, subset), subset.map((i) => merkleProof(leaves, i)), `subset n=${n}`);
    }
  });

  it('merkleProofs: no indices gives no proofs; out-of-range indices throw RangeError', () => {
    const l = items(5).map(merkleLeaf);
    assert.deepEqual(merkleProofs(l, []), []);
    assert.deepEqual(merkleProofs([], []), []);
    assert.throws(() => merkleProofs(l, [0, 5]), RangeError);
    assert.throws(() => merkleProofs(l, [-1]), RangeError);
    assert.throws(() => merkleProofs([], [0]), RangeError);
    // the input array is not modified
    const copy = l.map((x) => x.slice());
    merkleProofs(l, [0, 1, 2, 3, 4]);
    assert.deepEqual(l, copy);
  });
});

describe('types: counted merkle tree (state root and key proofs)', () => {
  const u64 = (n: number) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(n));
    return b;
  };
  const counted = (n: number, inner: Uint8Array) => hashConcat(new Uint8Array([2]), u64(n), inner);

  it('the root is H(0x02 ‖ u64be count ‖ binary root): the empty tree, one leaf, and three leaves by hand', () => {
    assert.deepEqual(countedRoot([]), counted(0, ZERO_HASH));
    const l = items(3).map(merkleLeaf);
    assert.deepEqual(countedRoot(l.slice(0, 1)), counted(1, l[0]!));
    assert.deepEqual(countedRoot(l), counted(3, hashConcat(NODE, hashConcat(NODE, l[0]!, l[1]!), l[2]!)));
    // the count is bound: [a, b] and the one-leaf tree whose leaf is node(a, b) differ
    assert.notDeepEqual(countedRoot([hashConcat(NODE, l[0]!, l[1]!)]), countedRoot(l.slice(0, 2)));
  });

  it('proofs verify for every index of trees of 1..33 leaves, with index and count as built; the path length follows the shape', () => {
    for (let n = 1; n <= 33; n++) {
      const leaves = items(n, `c${n}`).map(merkleLeaf);
      const root = countedRoot(leaves);
      const all = Array.from({ length: n }, (_, i) => i);
      const proofs = countedProofs(leaves, all);
      proofs.forEach((p, i) => {
        assert.deepEqual([p.index, p.count], [i, n]);
        assert.deepEqual(p.siblings, merkleProof(leaves, i).map((s) => s.hash), `n=${n} i=${i}: the same siblings as the binary tree`);
        assert.ok(verifyCountedProof(leaves[i]!, p, root), `n=${n} i=${i}`);
      });
      // asked in any order, with repeats
      assert.deepEqual(countedProofs(leaves, [n - 1, 0, n - 1]), [proofs[n - 1], proofs[0], proofs[n - 1]]);
    }
    assert.deepEqual(countedProofs([], []), []);
    assert.throws(() => countedProofs(items(2).map(merkleLeaf), [2]), RangeError);
  });

  it('a proof fails for another leaf, another root, a moved index, another count, a flipped, missing or extra sibling, or a bad number', () => {
    for (const n of [1, 2, 3, 5, 8, 13]) {
      const leaves = items(n, `t${n}`).map(merkleLeaf);
      const root = countedRoot(leaves);
      const other = countedRoot([...leaves, merkleLeaf(utf8('extra'))]);
      countedProofs(leaves, Array.from({ length: n }, (_, i) => i)).forEach((p, i) => {
        const bad = (q: KeyProof, leaf: Uint8Array, what: string, r = root) => assert.equal(verifyCountedProof(leaf, q, r), false, `n=${n} i=${i}: ${what}`);
        const leaf = leaves[i]!;
        bad(p, merkleLeaf(utf8('not-a-member')), 'another leaf');
        if (n > 1) bad(p, leaves[(i + 1) % n]!, 'a neighbour leaf');
        bad(p, leaf, 'another root', other);
        for (const index of [i - 1, i + 1, i ^ 1, n]) if (index !== i) bad({ ...p, index }, leaf, `index ${index}`);
        for (const count of [n - 1, n + 1, 2 * n, 0]) bad({ ...p, count }, leaf, `count ${count}`);
        p.siblings.forEach((_, j) => bad({ ...p, siblings: p.siblings.map((s, k) => (k === j ? s.map((b, x) => (x === 5 ? b ^ 1 : b)) : s)) }, leaf, `flipped sibling ${j}`));
        if (p.siblings.length) bad({ ...p, siblings: p.siblings.slice(0, -1) }, leaf, 'a sibling missing');
        bad({ ...p, siblings: [...p.siblings, root] }, leaf, 'an extra sibling');
        for (const index of [-1, 0.5, Number.NaN, Number.MAX_SAFE_INTEGER + 2]) bad({ ...p, index }, leaf, `index ${index}`);
        bad({ ...p, count: Number.POSITIVE_INFINITY }, leaf, 'infinite count');
      });
    }
  });

  it('proofs at i and i + 1 of one root show adjacency: with the same siblings, no other pair of positions verifies', () => {
    const leaves = items(11, 'adj').map(merkleLeaf);
    const root = countedRoot(leaves);
    const ps = countedProofs(leaves, Array.from({ length: 11 }, (_, i) => i));
    for (let i = 0; i < 10; i++) {
      assert.ok(verifyCountedProof(leaves[i]!, ps[i]!, root) && verifyCountedProof(leaves[i + 1]!, ps[i + 1]!, root));
      // leaf i with its own siblings but claimed at another position does not verify
      for (let j = 0; j < 11; j++) if (j !== i) assert.equal(verifyCountedProof(leaves[i]!, { ...ps[i]!, index: j }, root), false, `leaf ${i} at ${j}`);
    }
  });
});
