import { ml_dsa44, ml_dsa65, ml_dsa87 } from '@noble/post-quantum/ml-dsa.js';
import { randomBytes } from 'node:crypto';

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
  readonly name: string;
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
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    if (publicKey.length !== this.lengths.publicKey || signature.length !== this.lengths.signature) return false;
    try {
      return this.impl.verify(signature, message, publicKey);
    } catch {
      return false;
    }
  }
}

const backends = new Map<string, SignatureBackend>();

/** The pure-JS backend: always available and the default. */
export function getBackend(scheme: SchemeName): SignatureBackend {
  const key = `noble:${scheme}`;
  let b = backends.get(key);
  if (!b) {
    b = new NobleBackend(scheme);
    backends.set(key, b);
  }
  return b;
}

export function randomSeed(): Uint8Array {
  return new Uint8Array(randomBytes(32));
}

export function generateKeyPair(scheme: SchemeName = DEFAULT_SCHEME, seed: Uint8Array = randomSeed()): KeyPair {
  return getBackend(scheme).keygen(seed);
}
