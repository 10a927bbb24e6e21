import assert from 'node:assert/strict';
import { ZERO_HASH, hashConcat, sha256, utf8 } from '@qnexus/crypto';
import {
  merkleLeaf,
  merkleProof,
  merkleProofs,
  merkleRoot,
  merkleRootOfLeafHashes,
  verifyMerkleProof,
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
