import assert from 'node:assert/strict';
import { genCrystals } from '@noble/post-quantum/_crystals.js';
import { shake256 } from '@noble/hashes/sha3.js';
import { invNtt, ntt, Q, reduceProduct, sampleInBall, toCanonical } from '../src/mldsa-ntt.js';

// noble's ML-DSA NTT (the same genCrystals options as @noble/post-quantum's ml-dsa.js): the reference.
const noble = genCrystals({ N: 256, Q, F: 8347681, ROOT_OF_UNITY: 1753, newPoly: (n: number) => new Int32Array(n), isKyber: false, brvBits: 8 }).NTT;

/** A deterministic xorshift stream, so a failure reproduces. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe('crypto: the ML-DSA NTT of the noble verify (mldsa-ntt.ts)', () => {
  const rand = rng(0x5eed);
  const polys: [string, Int32Array][] = [
    ['zero', new Int32Array(256)],
    ['all q − 1', new Int32Array(256).fill(Q - 1)],
    ['one', Int32Array.from({ length: 256 }, (_, i) => (i === 0 ? 1 : 0))],
    ['x^255', Int32Array.from({ length: 256 }, (_, i) => (i === 255 ? 1 : 0))],
  ];
  for (let k = 0; k < 200; k++) polys.push([`random ${k}`, Int32Array.from({ length: 256 }, () => Math.floor(rand() * Q))]);

  it('NTT and NTT⁻¹ equal noble’s coefficient for coefficient, in [0, q)', () => {
    for (const [name, p] of polys) {
      const fwd = ntt(p.slice());
      assert.deepEqual(fwd, noble.encode(p.slice()), `NTT of ${name}`);
      const inv = invNtt(p.slice());
      assert.deepEqual(inv, noble.decode(p.slice()), `NTT⁻¹ of ${name}`);
      for (const x of [...fwd, ...inv]) assert.ok(x >= 0 && x < Q, `${name}: coefficient ${x} out of range`);
      assert.deepEqual(invNtt(fwd), p, `NTT⁻¹(NTT(${name})) is the identity`);
    }
  });

  it('reduces centred coefficients (a decoded z, c’s ±1) like noble’s mod', () => {
    const centred = Int32Array.from({ length: 256 }, (_, i) => (i % 3 === 0 ? -(i * 32771) % Q : i % 3 === 1 ? 1 - Q : -1));
    assert.deepEqual(ntt(toCanonical(centred.slice())), noble.encode(centred.slice()));
  });

  it('reduceProduct is exact on products and sums of products up to 2^49, multiples of q included', () => {
    const cases: number[] = [0, Q, 2 * Q, (Q - 1) * (Q - 1), 8 * (Q - 1) * (Q - 1), Q * 4194304, Q * 67108863, Q * 67108863 - 1];
    for (let k = 0; k < 20000; k++) {
      const a = Math.floor(rand() * Q);
      const b = Math.floor(rand() * Q);
      cases.push(a * b, a * b + Math.floor(rand() * 7) * (Q - 1) * (Q - 1), Q * a);
    }
    for (const x of cases) assert.equal(reduceProduct(x), Number(BigInt(x) % BigInt(Q)), `${x} mod q`);
  });
});

describe('crypto: SampleInBall of the noble verify (mldsa-ntt.ts)', () => {
  /** noble 0.7.1's SampleInBall, over noble's incremental SHAKE256: the reference. */
  function nobleSampleInBall(seed: Uint8Array, tau: number): Int32Array {
    const pre = new Int32Array(256);
    const s = shake256.create({}).update(seed);
    const buf = new Uint8Array(shake256.blockLen);
    s.xofInto(buf);
    const masks = buf.slice(0, 8);
    for (let i = 256 - tau, pos = 8, maskPos = 0, maskBit = 0; i < 256; i++) {
      let b = i + 1;
      for (; b > i; ) {
        b = buf[pos++]!;
        if (pos < shake256.blockLen) continue;
        s.xofInto(buf);
        pos = 0;
      }
      pre[i] = pre[b]!;
      pre[b] = 1 - (((masks[maskPos]! >> maskBit++) & 1) << 1);
      if (maskBit >= 8) {
        maskPos++;
        maskBit = 0;
      }
    }
    return pre;
  }

  it('equals noble’s for τ of every parameter set, also when the stream must be read further', () => {
    const rand = rng(0xba11);
    for (const tau of [39, 49, 60]) {
      for (let k = 0; k < 100; k++) {
        const seed = Uint8Array.from({ length: 32 + (k % 3) * 8 }, () => Math.floor(rand() * 256));
        const want = nobleSampleInBall(seed, tau);
        assert.deepEqual(sampleInBall(seed, tau), want, `τ ${tau} seed ${k}`);
        // A first read of 9 bytes forces the read-ahead to repeat several times (9, 18, 36, 72, 144).
        assert.deepEqual(sampleInBall(seed, tau, 9), want, `τ ${tau} seed ${k}, short first read`);
        let nonzero = 0;
        for (const x of want) if (x !== 0) nonzero++;
        assert.equal(nonzero, tau);
      }
    }
  });
});
