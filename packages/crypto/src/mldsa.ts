import { ml_dsa44, ml_dsa65, ml_dsa87 } from '@noble/post-quantum/ml-dsa.js';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { CachedNobleVerifier } from './noble-verify.js';

export type SchemeName = 'ml-dsa-44' | 'ml-dsa-65' | 'ml-dsa-87';
export const SCHEMES: readonly SchemeName[] = ['ml-dsa-44', 'ml-dsa-65', 'ml-dsa-87'];
export const DEFAULT_SCHEME: SchemeName = 'ml-dsa-44';

export interface SchemeLengths {
  publicKey: number;
  secretKey: number;
  signature: number;
  seed: number;
}

export interface KeyPair {
  scheme: SchemeName;
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/**
 * A signature backend. Messages are passed whole (already domain-separated);
 * the ML-DSA context is always empty so any FIPS 204 implementation agrees.
 */
export interface SignatureBackend {
  readonly name: BackendName;
  readonly scheme: SchemeName;
  readonly lengths: SchemeLengths;
  keygen(seed: Uint8Array): KeyPair;
  sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array;
  /** Never throws: malformed keys or signatures verify as false. */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
}

const NOBLE = { 'ml-dsa-44': ml_dsa44, 'ml-dsa-65': ml_dsa65, 'ml-dsa-87': ml_dsa87 } as const;

export function isSchemeName(s: string): s is SchemeName {
  return (SCHEMES as readonly string[]).includes(s);
}

export function schemeLengths(scheme: SchemeName): SchemeLengths {
  const l = NOBLE[scheme].lengths;
  return { publicKey: l.publicKey!, secretKey: l.secretKey!, signature: l.signature!, seed: l.seed! };
}

class NobleBackend implements SignatureBackend {
  readonly name = 'noble';
  readonly lengths: SchemeLengths;
  private readonly impl: (typeof NOBLE)[SchemeName];
  constructor(readonly scheme: SchemeName) {
    this.impl = NOBLE[scheme];
    this.lengths = schemeLengths(scheme);
  }
  keygen(seed: Uint8Array): KeyPair {
    if (seed.length !== this.lengths.seed) throw new TypeError(`seed must be ${this.lengths.seed} bytes`);
    const { publicKey, secretKey } = this.impl.keygen(seed);
    return { scheme: this.scheme, publicKey, secretKey };
  }
  sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
    // Hedged signing (noble's default fresh randomness), matching PQClean.
    return this.impl.sign(message, secretKey);
  }
  /**
   * noble's FIPS 204 verify with the per-public-key work (tr, the matrix Â, NTT(t1·2^d)) kept in
   * a bounded LRU cache (noble-verify.ts): the same verdict as `ml_dsaXX.verify`, which stays
   * reachable as `nobleReferenceVerify`. Created on first use (pqclean's backend holds a noble one
   * only for keygen).
   */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    this.verifier ??= new CachedNobleVerifier(this.scheme);
    return this.verifier.verify(publicKey, message, signature);
  }
  private verifier: CachedNobleVerifier | undefined;
}

// ---------------------------------------------------------------- pqclean (optional native backend)

/** The part of pqclean's classic API used here: `new Sign(alg)`, synchronous without a callback. */
interface PqcleanSign {
  sign(privateKey: Uint8Array, message: Uint8Array): Uint8Array;
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  readonly publicKeySize: number;
  readonly privateKeySize: number;
  readonly signatureSize: number;
}
interface PqcleanModule {
  Sign: (new (algorithm: string) => PqcleanSign) & { supportedAlgorithms: readonly string[] };
}

type PqcleanLoad = { ok: true; mod: PqcleanModule; impl: 'native' | 'wasm' } | { ok: false; reason: string };
let pqcleanLoad: PqcleanLoad | undefined;

/**
 * Load pqclean once (an optionalDependency: it may be missing, or its install may have
 * failed). CommonJS, so through require; never throws.
 */
function loadPqclean(): PqcleanLoad {
  if (pqcleanLoad) return pqcleanLoad;
  try {
    const mod = createRequire(import.meta.url)('pqclean') as PqcleanModule;
    const algs = mod.Sign?.supportedAlgorithms ?? [];
    const missing = SCHEMES.filter((s) => !algs.includes(s));
    if (missing.length > 0) throw new Error(`this pqclean build lacks ${missing.join(', ')}`);
    // The native addon's classes are native functions; the WebAssembly fallback's are JS classes.
    const impl = /\[native code\]/.test(Function.prototype.toString.call(mod.Sign)) ? 'native' : 'wasm';
    pqcleanLoad = { ok: true, mod, impl };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const reason =
      err?.code === 'MODULE_NOT_FOUND' && /'pqclean'/.test(err.message)
        ? 'the optional package pqclean is not installed (npm install in the repository root builds it; it needs a C compiler or falls back to WebAssembly)'
        : `pqclean failed to load: ${err?.message ?? String(e)}`;
    pqcleanLoad = { ok: false, reason };
  }
  return pqcleanLoad;
}

/**
 * PQClean's ML-DSA (FIPS 204, native addon or its WebAssembly fallback) through the classic
 * synchronous API: the verify workers call verify synchronously, one call in flight per
 * thread, where the sync call beats pqclean's async (libuv pool) one.
 *
 * PQClean has no seeded key generation and no context parameter: keygen derives the key pair
 * with noble (FIPS 204 ML-DSA.KeyGen from the seed, so the same seed gives the same keys on
 * both backends); signing and verifying use the empty context, as noble does here. The
 * secret-key encoding is FIPS 204's skEncode (rho, K, tr, s1, s2, t0) in both, so noble's
 * secret keys sign directly. Signatures are hedged (fresh randomness) in both.
 */
class PqcleanBackend implements SignatureBackend {
  readonly name = 'pqclean';
  readonly lengths: SchemeLengths;
  private readonly noble: SignatureBackend;
  private readonly impl: PqcleanSign;
  constructor(
    readonly scheme: SchemeName,
    mod: PqcleanModule,
    /** 'native' or 'wasm'. */
    readonly implementation: string,
  ) {
    this.noble = getBackend(scheme, 'noble');
    this.lengths = this.noble.lengths;
    this.impl = new mod.Sign(scheme);
    const { publicKeySize, privateKeySize, signatureSize } = this.impl;
    const l = this.lengths;
    if (publicKeySize !== l.publicKey || privateKeySize !== l.secretKey || signatureSize !== l.signature) {
      throw new CryptoBackendError(
        'CRYPTO_BACKEND_UNAVAILABLE',
        'pqclean',
        `pqclean ${scheme} has key/signature sizes ${publicKeySize}/${privateKeySize}/${signatureSize}, not FIPS 204's ${l.publicKey}/${l.secretKey}/${l.signature}`,
      );
    }
  }
  keygen(seed: Uint8Array): KeyPair {
    return this.noble.keygen(seed);
  }
  sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
    if (secretKey.length !== this.lengths.secretKey) throw new TypeError(`secret key must be ${this.lengths.secretKey} bytes`);
    const sig = this.impl.sign(secretKey, message);
    // A Buffer of its own allocation: hand out a plain Uint8Array view of it.
    return new Uint8Array(sig.buffer, sig.byteOffset, sig.byteLength);
  }
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    // pqclean throws on a wrong key size or an over-long signature (and accepts short ones): check first.
    if (publicKey.length !== this.lengths.publicKey || signature.length !== this.lengths.signature) return false;
    try {
      return this.impl.verify(publicKey, message, signature) === true;
    } catch {
      return false;
    }
  }
}

// ---------------------------------------------------------------- backend selection

/** The signature backends: `noble` (pure JS, always available) and `pqclean` (optional native). */
export type BackendName = 'noble' | 'pqclean';
export const BACKENDS: readonly BackendName[] = ['noble', 'pqclean'];
/**
 * What a user may ask for: a backend by name, or `auto` (the default): pqclean where it loads,
 * else noble. pqclean verifies ≈ 3 × faster than noble on the machines we measure on, and noble
 * stays the fallback that always works.
 */
export type BackendChoice = BackendName | 'auto';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', ...BACKENDS];
export const DEFAULT_BACKEND: BackendChoice = 'auto';

export function isBackendName(s: string): s is BackendName {
  return (BACKENDS as readonly string[]).includes(s);
}

export function isBackendChoice(s: string): s is BackendChoice {
  return (BACKEND_CHOICES as readonly string[]).includes(s);
}

/**
 * The backend a choice means here: `auto` is pqclean when it loads (its native addon, or its
 * WebAssembly build where the addon did not compile: both run PQClean's C), else noble. Never throws
 * for a BackendChoice; a named backend is returned as is (getBackend says if it cannot load).
 */
export function resolveBackend(choice: BackendChoice): BackendName {
  if (choice !== 'auto') return choice;
  return loadPqclean().ok ? 'pqclean' : 'noble';
}

/** How a process describes its backend at start and in /v1/status: `pqclean (native addon; auto)`. */
export function describeBackend(choice: BackendChoice): string {
  const name = resolveBackend(choice);
  return `${name} (${backendStatus(name).detail}${choice === 'auto' ? '; chosen by auto' : ''})`;
}

/** Stable codes of CryptoBackendError (the CLI prints them; see packages/cli/src/errors.ts). */
export type CryptoBackendErrorCode = 'CRYPTO_BACKEND_UNAVAILABLE' | 'CRYPTO_BACKEND_UNKNOWN';

/**
 * A signature backend that cannot be used: not one of BACKENDS (`CRYPTO_BACKEND_UNKNOWN`), or
 * an optional one that is not installed or failed to load (`CRYPTO_BACKEND_UNAVAILABLE`).
 * (@qnexus/types depends on this package, so this is not a QnexusError; it carries a `code` the
 * same way.)
 */
export class CryptoBackendError extends Error {
  constructor(
    readonly code: CryptoBackendErrorCode,
    readonly backend: string,
    message: string,
  ) {
    super(message);
    this.name = 'CryptoBackendError';
  }
}

export interface BackendStatus {
  name: BackendName;
  available: boolean;
  /** How it runs (`pure JavaScript`, `native addon`, `WebAssembly`), or why it is unavailable. */
  detail: string;
}

/** Whether a backend can be used here, and how it runs or why not. Never throws for a BackendName. */
export function backendStatus(name: BackendName): BackendStatus {
  if (name === 'noble') return { name, available: true, detail: 'pure JavaScript (@noble/post-quantum)' };
  if (name === 'pqclean') {
    const l = loadPqclean();
    return l.ok ? { name, available: true, detail: l.impl === 'native' ? 'native addon' : 'WebAssembly (the native addon did not build)' } : { name, available: false, detail: l.reason };
  }
  throw unknownBackend(name);
}

/** Whether `name` is a backend that can be used here (false for unknown names too). */
export function backendAvailable(name: string): boolean {
  return isBackendName(name) && backendStatus(name).available;
}

function unknownBackend(name: string): CryptoBackendError {
  return new CryptoBackendError('CRYPTO_BACKEND_UNKNOWN', name, `unknown signature backend ${JSON.stringify(name)} (expected ${BACKENDS.join(' or ')})`);
}

const backends = new Map<string, SignatureBackend>();

/**
 * The signature backend of `scheme` (cached). `auto` (default) is pqclean where it loads, else
 * noble; `noble` is always available; `pqclean` throws CryptoBackendError
 * `CRYPTO_BACKEND_UNAVAILABLE` when the package is missing or does not load, and any other name
 * throws `CRYPTO_BACKEND_UNKNOWN`. A named backend never falls back silently.
 */
export function getBackend(scheme: SchemeName, choice: BackendChoice = DEFAULT_BACKEND): SignatureBackend {
  const backend = isBackendChoice(choice) ? resolveBackend(choice) : choice;
  const key = `${backend}:${scheme}`;
  let b = backends.get(key);
  if (b) return b;
  if (backend === 'noble') b = new NobleBackend(scheme);
  else if (backend === 'pqclean') {
    const l = loadPqclean();
    if (!l.ok) throw new CryptoBackendError('CRYPTO_BACKEND_UNAVAILABLE', backend, `signature backend pqclean is unavailable: ${l.reason}`);
    b = new PqcleanBackend(scheme, l.mod, l.impl);
  } else throw unknownBackend(backend);
  backends.set(key, b);
  return b;
}

export function randomSeed(): Uint8Array {
  return new Uint8Array(randomBytes(32));
}

export function generateKeyPair(scheme: SchemeName = DEFAULT_SCHEME, seed: Uint8Array = randomSeed()): KeyPair {
  return getBackend(scheme).keygen(seed);
}
