import assert from 'node:assert/strict';
import {
  CachedNobleVerifier,
  NOBLE_VERIFY_CACHE_KEYS,
  SCHEMES,
  backendAvailable,
  getBackend,
  nobleReferenceVerify,
  type KeyPair,
  type SchemeName,
} from '@qnexus/crypto';

/**
 * Differential tests: CachedNobleVerifier (noble's verify with the per-key precomputation cached)
 * must give exactly noble's own verdict (`nobleReferenceVerify`: ml_dsaXX.verify, a throw being
 * false) on valid signatures and on every kind of corruption, with cache hits and misses mixed.
 */

/** FIPS 204 layout facts the corruptions need (c̃ length, z packing, ω, K). */
const LAYOUT: Record<SchemeName, { cTilde: number; L: number; zBits: number; omega: number; K: number; beta: number; gamma1: number }> = {
  'ml-dsa-44': { cTilde: 32, L: 4, zBits: 18, omega: 80, K: 4, beta: 78, gamma1: 2 ** 17 },
  'ml-dsa-65': { cTilde: 48, L: 5, zBits: 20, omega: 55, K: 6, beta: 196, gamma1: 2 ** 19 },
  'ml-dsa-87': { cTilde: 64, L: 7, zBits: 20, omega: 75, K: 8, beta: 120, gamma1: 2 ** 19 },
};

/** mulberry32: a small seeded PRNG so every run checks the same cases. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randBytes(rand: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

function flipBit(b: Uint8Array, bitIndex: number): Uint8Array {
  const c = b.slice();
  c[bitIndex >> 3] ^= 1 << (bitIndex & 7);
  return c;
}

/** Set z[0]'s first coefficient's packed value (γ1 − z) to `raw` (little-endian bit packing). */
function setZ0(sig: Uint8Array, s: SchemeName, raw: number): Uint8Array {
  const { cTilde, zBits } = LAYOUT[s];
  const c = sig.slice();
  for (let bit = 0; bit < zBits; bit++) {
    const at = cTilde * 8 + bit;
    const v = (raw >> bit) & 1;
    c[at >> 3] = (c[at >> 3] & ~(1 << (at & 7))) | (v << (at & 7));
  }
  return c;
}

interface Case {
  label: string;
  pk: Uint8Array;
  msg: Uint8Array;
  sig: Uint8Array;
}

/** Every corruption of one valid (pk, msg, sig), plus the valid case itself first. */
function cases(s: SchemeName, rand: () => number, kp: KeyPair, other: KeyPair, msg: Uint8Array, sig: Uint8Array): Case[] {
  const { cTilde, L, zBits, omega, K, beta, gamma1 } = LAYOUT[s];
  const pk = kp.publicKey;
  const zEnd = cTilde + (L * zBits * 256) / 8;
  const hintAt = (n: number) => sig.length - omega - K + n;
  const out: Case[] = [{ label: 'valid', pk, msg, sig }];
  const add = (label: string, c: Partial<Case>) => out.push({ label, pk, msg, sig, ...c });
  add('bit of c̃', { sig: flipBit(sig, Math.floor(rand() * cTilde * 8)) });
  add('bit of z', { sig: flipBit(sig, cTilde * 8 + Math.floor(rand() * (zEnd - cTilde) * 8)) });
  add('bit of h (indices)', { sig: flipBit(sig, hintAt(0) * 8 + Math.floor(rand() * omega * 8)) });
  add('bit of h (counts)', { sig: flipBit(sig, hintAt(omega) * 8 + Math.floor(rand() * K * 8)) });
  // Hint weight over ω: the last running count says ω + 1.
  const heavy = sig.slice();
  heavy[hintAt(omega + K - 1)] = omega + 1;
  add('hint weight > ω', { sig: heavy });
  // Non-increasing hint indices within the first polynomial (when it has two or more).
  const unordered = sig.slice();
  unordered[hintAt(0) + 1] = unordered[hintAt(0)];
  add('hint indices not increasing', { sig: unordered });
  // Trailing non-zero padding in the index area.
  const padded = sig.slice();
  padded[hintAt(omega - 1)] ^= 0x01;
  add('hint padding', { sig: padded });
  add('‖z‖∞ = γ1 − β', { sig: setZ0(sig, s, beta) });
  add('‖z‖∞ = γ1 − β − 1', { sig: setZ0(sig, s, beta + 1) });
  add('z = γ1', { sig: setZ0(sig, s, 0) });
  add('z = −γ1 + 1', { sig: setZ0(sig, s, 2 * gamma1 - 1) });
  add('wrong key', { pk: other.publicKey });
  add('bit of key (ρ)', { pk: flipBit(pk, Math.floor(rand() * 256)) });
  add('bit of key (t1)', { pk: flipBit(pk, 256 + Math.floor(rand() * (pk.length - 32) * 8)) });
  add('wrong message', { msg: msg.length > 0 ? flipBit(msg, Math.floor(rand() * msg.length * 8)) : Uint8Array.of(0) });
  add('message extended', { msg: Uint8Array.of(...msg, 0) });
  add('signature short', { sig: sig.subarray(0, sig.length - 1) });
  add('signature long', { sig: Uint8Array.of(...sig, 0) });
  add('signature empty', { sig: new Uint8Array(0) });
  add('key short', { pk: pk.subarray(0, pk.length - 1) });
  add('key long', { pk: Uint8Array.of(...pk, 0) });
  add('random signature', { sig: randBytes(rand, sig.length) });
  return out;
}

describe('crypto: noble verify with the per-key precomputation cached', function () {
  for (const s of SCHEMES) {
    it(`${s}: the same verdict as noble's verify on valid signatures (noble and pqclean) and every corruption`, () => {
      const rand = prng(0x5eed + SCHEMES.indexOf(s));
      const noble = getBackend(s, 'noble');
      const pqclean = backendAvailable('pqclean') ? getBackend(s, 'pqclean') : undefined;
      // A small cache, keys taken in random order: hits, misses and evictions mix.
      const v = new CachedNobleVerifier(s, { maxKeys: 2 });
      const keys = Array.from({ length: 4 }, () => noble.keygen(randBytes(rand, 32)));
      const signed: { kp: KeyPair; msg: Uint8Array; sig: Uint8Array }[] = [];
      for (const kp of keys) {
        for (let m = 0; m < 6; m++) {
          const msg = randBytes(rand, m === 0 ? 0 : Math.floor(rand() * 300));
          signed.push({ kp, msg, sig: noble.sign(kp.secretKey, msg) });
          if (pqclean && m < 3) signed.push({ kp, msg, sig: pqclean.sign(kp.secretKey, msg) });
        }
      }
      let n = 0;
      let valid = 0;
      for (let i = signed.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [signed[i], signed[j]] = [signed[j]!, signed[i]!];
      }
      for (const { kp, msg, sig } of signed) {
        const other = keys[(keys.indexOf(kp) + 1) % keys.length]!;
        for (const c of cases(s, rand, kp, other, msg, sig)) {
          const want = nobleReferenceVerify(s, c.pk, c.msg, c.sig);
          if (c.label === 'valid') {
            assert.equal(want, true, 'noble accepts the valid signature');
            valid++;
          }
          assert.equal(v.verify(c.pk, c.msg, c.sig), want, `${s} ${c.label}`);
          n++;
        }
      }
      const st = v.stats();
      assert.ok(st.hits > 0 && st.misses > 0, `hits and misses both exercised: ${JSON.stringify(st)}`);
      assert.ok(st.keys <= 2);
      assert.ok(n > 400 && valid === signed.length, `${n} cases`);
    });
  }

  it('the noble backend verifies through the cache and agrees with noble', () => {
    for (const s of SCHEMES) {
      const b = getBackend(s, 'noble');
      const kp = b.keygen(new Uint8Array(32).fill(9));
      const msg = Uint8Array.of(1, 2, 3);
      const sig = b.sign(kp.secretKey, msg);
      assert.equal(b.verify(kp.publicKey, msg, sig), true);
      const bad = flipBit(sig, 3);
      assert.equal(b.verify(kp.publicKey, msg, bad), false);
      assert.equal(nobleReferenceVerify(s, kp.publicKey, msg, bad), false);
      assert.equal(b.verify(kp.publicKey.subarray(1), msg, sig), false);
    }
  });

  describe('the cache', () => {
    const s: SchemeName = 'ml-dsa-44';
    const b = getBackend(s, 'noble');
    const msg = Uint8Array.of(7, 7, 7);
    const signer = (n: number) => {
      const kp = b.keygen(new Uint8Array(32).fill(n));
      return { pk: kp.publicKey, sig: b.sign(kp.secretKey, msg) };
    };
    const [A, B, C, D] = [signer(1), signer(2), signer(3), signer(4)];

    it('is bounded: the least recently used key is evicted', () => {
      const v = new CachedNobleVerifier(s, { maxKeys: 2 });
      assert.equal(v.verify(A!.pk, msg, A!.sig), true);
      assert.equal(v.verify(B!.pk, msg, B!.sig), true);
      assert.ok(v.has(A!.pk) && v.has(B!.pk));
      assert.equal(v.verify(A!.pk, msg, A!.sig), true); // A is now the most recent
      assert.equal(v.verify(C!.pk, msg, C!.sig), true); // evicts B
      assert.ok(v.has(A!.pk) && v.has(C!.pk) && !v.has(B!.pk));
      assert.equal(v.verify(D!.pk, msg, D!.sig), true); // evicts A
      assert.ok(v.has(C!.pk) && v.has(D!.pk) && !v.has(A!.pk));
      const st = v.stats();
      assert.deepEqual({ hits: st.hits, misses: st.misses, keys: st.keys, maxKeys: st.maxKeys }, { hits: 1, misses: 4, keys: 2, maxKeys: 2 });
      // An evicted key still verifies (re-expanded).
      assert.equal(v.verify(B!.pk, msg, B!.sig), true);
      assert.equal(v.stats().misses, 5);
    });

    it('defaults to NOBLE_VERIFY_CACHE_KEYS and states its memory; maxKeys 0 caches nothing', () => {
      const v = new CachedNobleVerifier(s);
      assert.equal(v.stats().maxKeys, NOBLE_VERIFY_CACHE_KEYS);
      // ML-DSA-44: Â 16 KiB + NTT(t1·2^d) 4 KiB + tr + the key.
      assert.ok(v.stats().bytesPerKey >= 20 * 1024 + 1312);
      const none = new CachedNobleVerifier(s, { maxKeys: 0 });
      assert.equal(none.verify(A!.pk, msg, A!.sig), true);
      assert.equal(none.verify(A!.pk, msg, A!.sig), true);
      assert.deepEqual([none.stats().keys, none.stats().hits, none.stats().misses], [0, 0, 2]);
      assert.throws(() => new CachedNobleVerifier(s, { maxKeys: -1 }), RangeError);
    });

    it('is filled only by a verified signature, and refuses a malformed one before any per-key work', () => {
      const v = new CachedNobleVerifier(s);
      assert.equal(v.verify(A!.pk, msg, B!.sig), false); // well-formed, wrong key: expanded, not kept
      assert.ok(!v.has(A!.pk));
      assert.equal(v.stats().misses, 1);
      const heavy = A!.sig.slice();
      heavy[heavy.length - 1] = 81; // ω + 1
      assert.equal(v.verify(A!.pk, msg, heavy), false);
      assert.equal(v.stats().misses, 1, 'a malformed hint is refused before the key is expanded');
      assert.equal(v.verify(A!.pk, msg, A!.sig), true);
      assert.ok(v.has(A!.pk));
    });

    it('a hit is keyed by the full key bytes: a key one bit away is a miss and is not accepted', () => {
      const v = new CachedNobleVerifier(s);
      assert.equal(v.verify(A!.pk, msg, A!.sig), true);
      // The same bytes at an offset inside a bigger buffer: a hit.
      const framed = new Uint8Array(A!.pk.length + 10);
      framed.set(A!.pk, 5);
      assert.ok(v.has(framed.subarray(5, 5 + A!.pk.length)));
      assert.equal(v.verify(framed.subarray(5, 5 + A!.pk.length), msg, A!.sig), true);
      assert.deepEqual([v.stats().hits, v.stats().misses], [1, 1]);
      for (const bit of [0, 7, 255, 256, A!.pk.length * 8 - 1]) {
        const near = flipBit(A!.pk, bit);
        assert.ok(!v.has(near), `bit ${bit}`);
        const before = v.stats();
        assert.equal(v.verify(near, msg, A!.sig), nobleReferenceVerify(s, near, msg, A!.sig));
        assert.equal(v.verify(near, msg, A!.sig), false, `bit ${bit}`);
        assert.equal(v.stats().hits, before.hits, `bit ${bit}: not a hit`);
        assert.equal(v.stats().misses, before.misses + 2);
        assert.ok(!v.has(near));
      }
      // The original entry is untouched and still verifies.
      assert.equal(v.verify(A!.pk, msg, A!.sig), true);
      assert.equal(v.stats().keys, 1);
    });

    it('never throws on inputs that are not byte arrays', () => {
      const v = new CachedNobleVerifier(s);
      const junk = [undefined, null, 'x', 42, {}, [1, 2]] as unknown as Uint8Array[];
      for (const j of junk) {
        assert.equal(v.verify(j, msg, A!.sig), false);
        assert.equal(v.verify(A!.pk, j, A!.sig), false);
        assert.equal(v.verify(A!.pk, msg, j), false);
      }
    });
  });
});
