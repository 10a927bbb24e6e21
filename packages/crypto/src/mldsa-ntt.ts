/**
 * The ML-DSA number-theoretic transform (FIPS 204 Algorithms 41 and 42) and SampleInBall
 * (Algorithm 29) for the noble backend's verify (noble-verify.ts). noble's NTT
 * (`genCrystals(...).NTT`) runs a generic FFT over a field object whose multiply reduces with `%`
 * on a 46-bit double product, which V8 compiles to a call of C's fmod: that NTT was ≈ 64 % of a
 * cached verify's time (nine transforms per ML-DSA-44 verify). Here a product a·b < 2^46 is exact
 * in a double and is reduced with one multiply by 1/q, a floor and one conditional correction;
 * the butterflies keep every coefficient in [0, q). Both transforms are linear maps mod q with
 * canonical outputs, so results equal noble's coefficient for coefficient (the unit test compares
 * them on random and extreme inputs).
 */

import { createHash } from 'node:crypto';

const N = 256;
/** SHAKE256's rate (one block of its output), bytes. */
const SHAKE256_BLOCK = 136;
export const Q = 8380417;
const INV_Q = 1 / Q;
/** 256⁻¹ mod q: the inverse transform's normalisation (FIPS 204 Algorithm 42 line 21). */
const F = 8347681;

/**
 * a mod q for an exact integer-valued double 0 ≤ a < 2^49 (a product of two residues, or a sum
 * of up to 8 such products). a·(1/q) errs by less than 2^-26 in absolute value, while the
 * fractional part of a/q is 0 or ≥ 1/q ≈ 2^-23 and ≤ 1 − 1/q: the floor is ⌊a/q⌋ or, when q
 * divides a, possibly one less, so one correction makes the remainder canonical.
 */
export function reduceProduct(a: number): number {
  let r = a - Math.floor(a * INV_Q) * Q;
  if (r >= Q) r -= Q;
  else if (r < 0) r += Q;
  return r;
}

/** zetas[k] = ζ^brv8(k) mod q, ζ = 1753 (FIPS 204 Appendix B): the 256 powers of ζ, bit-reversed. */
const ZETAS: Int32Array = (() => {
  const pow = new Int32Array(N);
  pow[0] = 1;
  for (let i = 1; i < N; i++) pow[i] = reduceProduct(pow[i - 1] * 1753);
  const z = new Int32Array(N);
  for (let k = 0; k < N; k++) {
    let b = 0;
    for (let i = 0, x = k; i < 8; i++, x >>= 1) b = (b << 1) | (x & 1);
    z[k] = pow[b];
  }
  return z;
})();

/** Reduce coefficients in (−q, q) (centred decodings, c's ±1) into [0, q), in place. */
export function toCanonical(w: Int32Array): Int32Array {
  for (let j = 0; j < N; j++) if (w[j] < 0) w[j] += Q;
  return w;
}

/** NTT(w) in place (Algorithm 41). Coefficients must be in [0, q); results are in [0, q). */
export function ntt(w: Int32Array): Int32Array {
  let m = 0;
  for (let len = 128; len >= 1; len >>= 1) {
    for (let start = 0; start < N; start += 2 * len) {
      const z = ZETAS[++m];
      for (let j = start; j < start + len; j++) {
        const t = reduceProduct(z * w[j + len]);
        const a = w[j];
        const lo = a - t;
        const hi = a + t;
        w[j + len] = lo < 0 ? lo + Q : lo;
        w[j] = hi >= Q ? hi - Q : hi;
      }
    }
  }
  return w;
}

/** NTT⁻¹(w) in place (Algorithm 42). Coefficients must be in [0, q); results are in [0, q). */
export function invNtt(w: Int32Array): Int32Array {
  let m = N;
  for (let len = 1; len < N; len <<= 1) {
    for (let start = 0; start < N; start += 2 * len) {
      const z = Q - ZETAS[--m]; // −zetas[m] mod q
      for (let j = start; j < start + len; j++) {
        const a = w[j];
        const b = w[j + len];
        const s = a + b;
        w[j] = s >= Q ? s - Q : s;
        const d = a - b;
        w[j + len] = reduceProduct(z * (d < 0 ? d + Q : d));
      }
    }
  }
  for (let j = 0; j < N; j++) w[j] = reduceProduct(F * w[j]);
  return w;
}

/**
 * SampleInBall(ρ) (Algorithm 29): c with τ coefficients ±1, the rest 0; mirrors noble 0.7.1's,
 * with SHAKE256 from node:crypto (OpenSSL), several times faster than JavaScript Keccak. node:crypto
 * cannot squeeze incrementally, so the stream is read ahead: `firstRead` bytes (one block covers
 * τ ≤ 60 draws unless ≈ 70 bytes are rejected), then twice as much as needed so far, which
 * repeats the same prefix (an XOF's output is a prefix of every longer output).
 */
export function sampleInBall(seed: Uint8Array, tau: number, firstRead = SHAKE256_BLOCK): Int32Array {
  const c = new Int32Array(N);
  let buf = createHash('shake256', { outputLength: firstRead }).update(seed).digest();
  const masks = buf.subarray(0, 8);
  let pos = 8;
  let maskPos = 0;
  let maskBit = 0;
  for (let i = N - tau; i < N; i++) {
    let b = i + 1;
    while (b > i) {
      if (pos >= buf.length) buf = createHash('shake256', { outputLength: 2 * buf.length }).update(seed).digest();
      b = buf[pos++];
    }
    c[i] = c[b];
    c[b] = 1 - (((masks[maskPos] >> maskBit++) & 1) << 1);
    if (maskBit >= 8) {
      maskPos++;
      maskBit = 0;
    }
  }
  return c;
}
