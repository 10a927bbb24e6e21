/**
 * ML-DSA verification (FIPS 204 Algorithm 8, ML-DSA.Verify_internal, empty context) in pure
 * JavaScript with the per-public-key work cached: the noble backend's verify (issue 18).
 *
 * noble's own verify recomputes per call everything that depends only on the public key:
 * pkDecode (ρ, t1), tr = H(pk), the matrix Â = ExpandA(ρ) (K·L RejNTTPoly over SHAKE128, the
 * expensive part: ≈ 35–45 % of a verify) and NTT(t1·2^d). In a devnet the same few dozen keys
 * (validators, busy accounts) verify thousands of signatures, so this module keeps that
 * per-key context in a bounded LRU cache keyed by the public key's full bytes, and runs the
 * per-signature part of Algorithm 8 exactly as noble 0.7.1 does (same checks, same order of
 * arithmetic results), so its verdict is noble's on every input.
 *
 * The private helpers below (RejNTTPoly, decompose/UseHint, the hint and
 * polynomial decoders, w1Encode) mirror @noble/post-quantum 0.7.1 `ml-dsa.js`
 * (MIT License (c) 2024 Paul Miller, paulmillr.com); modular arithmetic, bit packing and the
 * SHAKE128 matrix reader are noble's own exports (`_crystals.js`); the NTT is mldsa-ntt.ts (noble's
 * reduces every product with fmod and was most of a cached verify).
 */
import { genCrystals, XOF128 } from '@noble/post-quantum/_crystals.js';
import { PARAMS as NOBLE_PARAMS, ml_dsa44, ml_dsa65, ml_dsa87 } from '@noble/post-quantum/ml-dsa.js';
import { createHash } from 'node:crypto';
import { shake256 } from '@noble/hashes/sha3.js';
import type { SchemeName } from './mldsa.js';
import { invNtt, ntt, Q, reduceProduct, sampleInBall, toCanonical } from './mldsa-ntt.js';

// ---------------------------------------------------------------- FIPS 204 constants (as noble)

const N = 256;
const ROOT_OF_UNITY = 1753;
/** 256⁻¹ mod q: the inverse NTT's normalisation. */
const F = 8347681;
const D = 13;
const GAMMA2_1 = Math.floor((Q - 1) / 88) | 0;
const TR_BYTES = 64;
const CRH_BYTES = 64;

interface Params {
  K: number;
  L: number;
  GAMMA1: number;
  GAMMA2: number;
  TAU: number;
  ETA: number;
  OMEGA: number;
  C_TILDE_BYTES: number;
}

/** FIPS 204 Table 1 as noble exports it (keyed by security category), plus the c̃ length of Table 2 (λ/4 bytes). */
const PARAMS: Record<SchemeName, Params> = {
  'ml-dsa-44': { ...NOBLE_PARAMS[2]!, C_TILDE_BYTES: 32 },
  'ml-dsa-65': { ...NOBLE_PARAMS[3]!, C_TILDE_BYTES: 48 },
  'ml-dsa-87': { ...NOBLE_PARAMS[5]!, C_TILDE_BYTES: 64 },
};

const newPoly = (n: number): Int32Array => new Int32Array(n);
// noble's ML-DSA instance of the shared CRYSTALS helpers (same options as ml-dsa.js).
const crystals = genCrystals({ N, Q, F, ROOT_OF_UNITY, newPoly, isKyber: false, brvBits: 8 });
const { mod, smod } = crystals;
const id = (n: number): number => n;
/** noble's polyCoder(d, compress) without a verify hook: encode and decode both map through compress. */
const polyCoder = (d: number, compress: (n: number) => number = id) => crystals.bitsCoder(d, { encode: compress, decode: compress });

/** M′ = 0x00 ‖ |ctx| ‖ ctx ‖ M for the pure variant with the empty context (noble's getMessage). */
const PURE_EMPTY_CONTEXT_PREFIX = Uint8Array.of(0, 0);

// Mirrors noble 0.7.1 ml-dsa.js RejNTTPoly (FIPS 204 Algorithm 14 / 30): a polynomial of T_q.
function RejNTTPoly(xof: () => Uint8Array, r: Int32Array): Int32Array {
  for (let j = 0; j < N; ) {
    const b = xof();
    if (b.length % 3) throw new Error('RejNTTPoly: unaligned block');
    for (let i = 0; j < N && i <= b.length - 3; i += 3) {
      const t = (b[i + 0] | (b[i + 1] << 8) | (b[i + 2] << 16)) & 0x7fffff;
      if (t < Q) r[j++] = t;
    }
  }
  return r;
}

/**
 * The per-public-key part of Algorithm 8, computed once per key and cached.
 * Memory per key: Â is K·L polynomials of 256 int32 (ML-DSA-44: 4·4·1 KiB = 16 KiB; -65: 30 KiB;
 * -87: 56 KiB), NTT(t1·2^d) K more (4 / 6 / 8 KiB), tr 64 B, and the cache key (the public key
 * as a one-byte string: 1312 / 1952 / 2592 B). See `bytesPerKey`.
 */
interface KeyContext {
  /** tr = H(pk, 64). */
  tr: Uint8Array;
  /** Â[i][j] at index i·L + j, NTT domain, coefficients in [0, q). */
  aHat: Int32Array[];
  /** NTT(t1[i]·2^d), coefficients in [0, q). */
  t1Hat: Int32Array[];
}

/** One parameter set's verify, built once (the coders and constants are per scheme). */
class SchemeVerify {
  readonly publicKeyBytes: number;
  readonly signatureBytes: number;
  /** Approximate memory of one cached key context, in bytes (see KeyContext). */
  readonly bytesPerKey: number;
  private readonly p: Params;
  private readonly BETA: number;
  private readonly HINT_M: number;
  private readonly t1Coder;
  private readonly zCoder;
  private readonly w1Coder;

  constructor(scheme: SchemeName) {
    const p = (this.p = PARAMS[scheme]);
    this.BETA = p.TAU * p.ETA;
    this.HINT_M = Math.floor((Q - 1) / (2 * p.GAMMA2));
    this.t1Coder = polyCoder(10);
    // Requires smod, as in noble: z is stored as γ1 − z.
    this.zCoder = polyCoder(p.GAMMA1 === 1 << 17 ? 18 : 20, (i) => smod(p.GAMMA1 - i));
    this.w1Coder = polyCoder(p.GAMMA2 === GAMMA2_1 ? 6 : 4);
    this.publicKeyBytes = 32 + p.K * this.t1Coder.bytesLen;
    this.signatureBytes = p.C_TILDE_BYTES + p.L * this.zCoder.bytesLen + p.OMEGA + p.K;
    this.bytesPerKey = (p.K * p.L + p.K) * N * 4 + TR_BYTES + this.publicKeyBytes + 200;
  }

  /** pkDecode, tr = H(pk), Â = ExpandA(ρ), NTT(t1·2^d). `pk` has the right length. */
  expandKey(pk: Uint8Array): KeyContext {
    const { K, L } = this.p;
    const rho = pk.subarray(0, 32);
    const t1Len = this.t1Coder.bytesLen;
    const t1Hat: Int32Array[] = [];
    for (let i = 0; i < K; i++) {
      const t = this.t1Coder.decode(pk.subarray(32 + i * t1Len, 32 + (i + 1) * t1Len));
      for (let n = 0; n < N; n++) t[n] <<= D; // t1 < 2^10, so t1·2^d < 2^23 < q
      t1Hat.push(ntt(t));
    }
    // One buffer for the whole matrix: K·L·N int32.
    const buf = new Int32Array(K * L * N);
    const aHat: Int32Array[] = [];
    const xof = XOF128(rho);
    for (let i = 0; i < K; i++) {
      for (let j = 0; j < L; j++) aHat.push(RejNTTPoly(xof.get(j, i), buf.subarray((i * L + j) * N, (i * L + j + 1) * N)));
    }
    xof.clean();
    const tr = shake256(pk, { dkLen: TR_BYTES });
    return { tr, aHat, t1Hat };
  }

  /**
   * The signature's own checks, before any per-key work: sigDecode, hint decode (⊥ → false), hint
   * weight ≤ ω, ‖z‖∞ < γ1 − β. Returns the decoded parts, or false. `sig` has the right length.
   */
  decodeSignature(sig: Uint8Array): { cTilde: Uint8Array; z: Int32Array[]; h: Int32Array[] } | false {
    const { L, C_TILDE_BYTES } = this.p;
    const cTilde = sig.subarray(0, C_TILDE_BYTES);
    const zLen = this.zCoder.bytesLen;
    const z: Int32Array[] = [];
    for (let i = 0; i < L; i++) z.push(this.zCoder.decode(sig.subarray(C_TILDE_BYTES + i * zLen, C_TILDE_BYTES + (i + 1) * zLen)));
    const h = this.hintDecode(sig.subarray(C_TILDE_BYTES + L * zLen));
    if (h === false) return false;
    for (const t of h) {
      let sum = 0;
      for (let n = 0; n < N; n++) sum += t[n];
      if (!(sum <= this.p.OMEGA)) return false;
    }
    for (let i = 0; i < L; i++) if (this.polyChknorm(z[i], this.p.GAMMA1 - this.BETA)) return false;
    return { cTilde, z, h };
  }

  /** Algorithm 8 lines 7–13 with the key's context: µ, c, w′1 = UseHint(h, Âz − c·t1·2^d), c̃′ = c̃. */
  verifyWith(ctx: KeyContext, message: Uint8Array, cTilde: Uint8Array, z: Int32Array[], h: Int32Array[]): boolean {
    const { K, L, C_TILDE_BYTES } = this.p;
    // µ ← H(tr ‖ M′, 64), M′ = 0x00 ‖ 0x00 ‖ M.
    // SHAKE256 through node:crypto (OpenSSL): the same XOF as noble's, several times faster than JS.
    const mu = createHash('shake256', { outputLength: CRH_BYTES }).update(ctx.tr).update(PURE_EMPTY_CONTEXT_PREFIX).update(message).digest();
    // The transforms of mldsa-ntt.ts (noble's own, with fmod in every product, were most of a verify).
    const c = ntt(toCanonical(sampleInBall(cTilde, this.p.TAU)));
    const zNtt = z.map((p) => ntt(toCanonical(p.slice())));
    const w1Len = this.w1Coder.bytesLen;
    const w1 = new Uint8Array(K * w1Len);
    // Σ_j Â[i][j]·ẑ[j] summed exactly in doubles, reduced once: every product is < q² < 2^46 and
    // there are at most 7 terms (< 2^49 < 2^53), so the residue is noble's polyAdd/mod chain's.
    const acc = new Float64Array(N);
    for (let i = 0; i < K; i++) {
      acc.fill(0);
      for (let j = 0; j < L; j++) {
        const a = ctx.aHat[i * L + j];
        const zj = zNtt[j];
        for (let n = 0; n < N; n++) acc[n] += a[n] * zj[n];
      }
      const t = ctx.t1Hat[i];
      const w = newPoly(N);
      for (let n = 0; n < N; n++) {
        // wApprox = Âz − ĉ·t̂1 (both in [0, q)), then NTT⁻¹.
        const r = reduceProduct(acc[n]) - reduceProduct(t[n] * c[n]);
        w[n] = r < 0 ? r + Q : r;
      }
      invNtt(w);
      const hi = h[i];
      for (let n = 0; n < N; n++) w[n] = this.UseHint(hi[n], w[n]);
      w1.set(this.w1Coder.encode(w), i * w1Len);
    }
    const c2 = createHash('shake256', { outputLength: C_TILDE_BYTES }).update(mu).update(w1).digest();
    let diff = 0;
    for (let i = 0; i < C_TILDE_BYTES; i++) diff |= cTilde[i] ^ c2[i];
    return diff === 0;
  }

  // Mirrors noble 0.7.1 polyChknorm: true when some centred coefficient is ≥ B in absolute value.
  private polyChknorm(p: Int32Array, B: number): boolean {
    for (let i = 0; i < N; i++) if (Math.abs(smod(p[i])) >= B) return true;
    return false;
  }

  // Mirrors noble 0.7.1 hintCoder.decode (FIPS 204 Algorithm 21 HintBitUnpack): false is ⊥.
  private hintDecode(buf: Uint8Array): Int32Array[] | false {
    const { K, OMEGA } = this.p;
    const h: Int32Array[] = [];
    let k = 0;
    for (let i = 0; i < K; i++) {
      const hi = newPoly(N);
      if (buf[OMEGA + i] < k || buf[OMEGA + i] > OMEGA) return false;
      for (let j = k; j < buf[OMEGA + i]; j++) {
        if (j > k && buf[j] <= buf[j - 1]) return false;
        hi[buf[j]] = 1;
      }
      k = buf[OMEGA + i];
      h.push(hi);
    }
    for (let j = k; j < OMEGA; j++) if (buf[j] !== 0) return false;
    return h;
  }

  // Mirrors noble 0.7.1 decompose (FIPS 204 Algorithm 36) and UseHint (Algorithm 40).
  private UseHint(h: number, r: number): number {
    const GAMMA2 = this.p.GAMMA2;
    const rPlus = mod(r);
    let r0 = smod(rPlus, 2 * GAMMA2) | 0;
    let r1: number;
    if (rPlus - r0 === Q - 1) {
      r1 = 0;
      r0 = (r0 - 1) | 0;
    } else r1 = Math.floor((rPlus - r0) / (2 * GAMMA2)) | 0;
    if (h === 1) return r0 > 0 ? mod(r1 + 1, this.HINT_M) | 0 : mod(r1 - 1, this.HINT_M) | 0;
    return r1 | 0;
  }
}

// ---------------------------------------------------------------- the cached verifier

/** Default number of public keys whose context a CachedNobleVerifier keeps (per scheme, per thread). */
export const NOBLE_VERIFY_CACHE_KEYS = 256;

export interface CachedNobleVerifierOptions {
  /** At most this many keys are cached (least recently used evicted first); 0 disables the cache. */
  maxKeys?: number;
}

export interface CachedNobleVerifierStats {
  /** Verifies that found their key's context in the cache. */
  hits: number;
  /** Verifies that expanded their key (the signature passed its own checks but the key was not cached). */
  misses: number;
  /** Keys cached now. */
  keys: number;
  maxKeys: number;
  /** Approximate memory of one cached key, bytes: the cache holds at most maxKeys × bytesPerKey. */
  bytesPerKey: number;
}

const schemeVerifies = new Map<SchemeName, SchemeVerify>();
function schemeVerify(scheme: SchemeName): SchemeVerify {
  let v = schemeVerifies.get(scheme);
  if (!v) schemeVerifies.set(scheme, (v = new SchemeVerify(scheme)));
  return v;
}

/**
 * ML-DSA verify (empty context, pure variant) with a bounded LRU cache of per-public-key
 * contexts. Its verdict is noble's `ml_dsaXX.verify(sig, msg, pk)` on every input, with a throw
 * (wrong key length, say) being false; it never throws.
 *
 * Bounds: at most `maxKeys` contexts (default 256; for ML-DSA-44 ≈ 21.5 KiB each, -65 ≈ 38 KiB,
 * -87 ≈ 67 KiB, so ≤ 17 MiB for the default even for ML-DSA-87). A context enters the cache only
 * once a signature under it verified: every byte string of the right length decodes as a public
 * key, so keys with junk signatures (a hostile peer's) never evict the keys that sign for real.
 * A signature that fails its own checks (length, hint encoding, hint weight, ‖z‖∞) is refused
 * before any per-key work. The cache is keyed by the key's full bytes, never a digest of them.
 */
export class CachedNobleVerifier {
  readonly maxKeys: number;
  private readonly v: SchemeVerify;
  /** Map order is recency order: the first entry is the least recently used. */
  private readonly cache = new Map<string, KeyContext>();
  private hits = 0;
  private misses = 0;

  constructor(
    readonly scheme: SchemeName,
    opts: CachedNobleVerifierOptions = {},
  ) {
    this.v = schemeVerify(scheme);
    const max = opts.maxKeys ?? NOBLE_VERIFY_CACHE_KEYS;
    if (!Number.isSafeInteger(max) || max < 0) throw new RangeError(`maxKeys must be a non-negative integer, not ${max}`);
    this.maxKeys = max;
  }

  /** Never throws: a malformed key or signature verifies as false. */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    try {
      if (!(publicKey instanceof Uint8Array) || !(message instanceof Uint8Array) || !(signature instanceof Uint8Array)) return false;
      if (publicKey.length !== this.v.publicKeyBytes || signature.length !== this.v.signatureBytes) return false;
      const sig = this.v.decodeSignature(signature);
      if (sig === false) return false;
      const key = cacheKey(publicKey);
      let ctx = this.cache.get(key);
      if (ctx) {
        this.hits++;
        // Refresh recency.
        this.cache.delete(key);
        this.cache.set(key, ctx);
        return this.v.verifyWith(ctx, message, sig.cTilde, sig.z, sig.h);
      }
      this.misses++;
      ctx = this.v.expandKey(publicKey);
      const ok = this.v.verifyWith(ctx, message, sig.cTilde, sig.z, sig.h);
      if (ok && this.maxKeys > 0) {
        while (this.cache.size >= this.maxKeys) this.cache.delete(this.cache.keys().next().value!);
        this.cache.set(key, ctx);
      }
      return ok;
    } catch {
      return false;
    }
  }

  /** Whether `publicKey`'s context is cached (does not change recency). */
  has(publicKey: Uint8Array): boolean {
    return publicKey instanceof Uint8Array && publicKey.length === this.v.publicKeyBytes && this.cache.has(cacheKey(publicKey));
  }

  stats(): CachedNobleVerifierStats {
    return { hits: this.hits, misses: this.misses, keys: this.cache.size, maxKeys: this.maxKeys, bytesPerKey: this.v.bytesPerKey };
  }

  clear(): void {
    this.cache.clear();
  }
}

/** The full key bytes as a one-byte-per-char string: exact, and hashed by the Map natively. */
function cacheKey(publicKey: Uint8Array): string {
  return Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString('latin1');
}

const NOBLE = { 'ml-dsa-44': ml_dsa44, 'ml-dsa-65': ml_dsa65, 'ml-dsa-87': ml_dsa87 } as const;

/**
 * noble's own verify, uncached, with the noble backend's contract (wrong lengths and throws are
 * false, empty context): the reference CachedNobleVerifier is tested and benchmarked against.
 */
export function nobleReferenceVerify(scheme: SchemeName, publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  const impl = NOBLE[scheme];
  const l = impl.lengths;
  if (publicKey.length !== l.publicKey || signature.length !== l.signature) return false;
  try {
    return impl.verify(signature, message, publicKey);
  } catch {
    return false;
  }
}
