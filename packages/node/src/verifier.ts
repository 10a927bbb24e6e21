import { DEFAULT_BACKEND, bytesEqual, getBackend, sha256, toHex, type BackendName, type SchemeName, type SignatureBackend } from '@qnexus/crypto';
import { app } from '@qnexus/app';
import { QnexusError, type AnyErrorCode, type TxEnvelope } from '@qnexus/types';
import type { Metrics } from './metrics.js';
import type { VerifyPool } from './verify-pool.js';

/**
 * Outcome of a transaction's signature checks: 'ok', the signer's signature
 * failing (TX_BAD_SIGNATURE), a keyless transaction whose sender has no
 * registered key to check it with (TX_KEY_UNKNOWN), or an extra signature its
 * message carries failing with the code its module gives (a stake's validator
 * consent: STAKE_BAD_CONSENT).
 */
export type TxVerdict = 'ok' | 'TX_BAD_SIGNATURE' | 'TX_KEY_UNKNOWN' | AnyErrorCode;

/**
 * The public key registered for an address in the state checks run against (a node's head
 * state: the parent of the next block), or null when none is. Keys are written once and never
 * change, so a key found here is the key of that address in every later state.
 */
export type KeyLookup = (address: Uint8Array) => Uint8Array | null;

const sigDigests = new WeakMap<TxEnvelope, Uint8Array>();
const sigIds = new WeakMap<TxEnvelope, string>();

/**
 * SHA-256 of a transaction's signature bytes, computed once per envelope (a 2.4–4.6 KB hash
 * that every cache lookup, admission and block check of the same envelope would otherwise
 * repeat). A fresh 32-byte array: it holds no view into the wire buffer.
 */
export function signatureDigest(env: TxEnvelope): Uint8Array {
  let d = sigDigests.get(env);
  if (!d) {
    d = sha256(env.tx.signature);
    sigDigests.set(env, d);
  }
  return d;
}

/**
 * `<tx id>/<signature digest>` (hex), once per envelope: names one exact signed copy of a
 * transaction (the id does not cover the signature, so a forged copy has another name).
 */
export function signedTxId(env: TxEnvelope): string {
  let k = sigIds.get(env);
  if (k === undefined) {
    k = `${env.hashHex}/${toHex(signatureDigest(env))}`;
    sigIds.set(env, k);
  }
  return k;
}

/** Default capacity of the verify-once cache (`--verify-cache-size`). */
export const DEFAULT_VERIFY_CACHE_SIZE = 200_000;

export interface TxVerifierOptions {
  /** Entries of the verify-once cache (default DEFAULT_VERIFY_CACHE_SIZE); 0 caches nothing. */
  capacity?: number;
  /**
   * The signature backend of this thread (default noble). The pool's workers load their own,
   * by name (VerifyPool's `backend`): give both the same. Throws CryptoBackendError when it
   * cannot load.
   */
  backend?: BackendName;
}

/** One signature check, as the worker pool takes it. */
interface SigCheck {
  kind: string;
  publicKey: Uint8Array;
  message: Uint8Array;
  signature: Uint8Array;
  code: AnyErrorCode;
}

/**
 * Verify-once cache for transaction signatures. A transaction's signatures are
 * checked when it is admitted (API or gossip); block validation then finds the
 * verdict here instead of verifying again. Entries remember the SHA-256 of the
 * exact signature bytes: the tx id excludes the signature, so a copy with a
 * different (forged) signature must not inherit the verdict (finding another
 * signature with the same digest is a SHA-256 collision).
 *
 * A stake transaction carries a second signature, the validator key's consent
 * (over `stakeConsentSigningBytes(chainId, funder, validatorPublicKey)`). It is
 * inside the signed body, so the tx id already binds it: one cache entry per
 * (tx id, signature) covers both checks. Only positive verdicts are cached.
 * With capacity 0 nothing is cached and every check verifies.
 */
export class TxVerifier {
  private readonly ok = new Map<string, Uint8Array>();
  /**
   * Where a keyless transaction's key comes from: the chain sets its head state here. Without
   * one (a verifier on its own), keyless transactions verify as TX_KEY_UNKNOWN.
   */
  keys: KeyLookup | null = null;
  /** The process's signature backend (consensus signatures are verified and made with it too). */
  readonly backend: SignatureBackend;
  readonly capacity: number;

  constructor(
    scheme: SchemeName,
    private readonly metrics: Metrics,
    private readonly pool: VerifyPool | null = null,
    opts: TxVerifierOptions = {},
  ) {
    this.backend = getBackend(scheme, opts.backend ?? DEFAULT_BACKEND);
    this.capacity = opts.capacity ?? DEFAULT_VERIFY_CACHE_SIZE;
    if (!Number.isSafeInteger(this.capacity) || this.capacity < 0) throw new RangeError(`verify cache capacity must be a non-negative integer, not ${this.capacity}`);
  }

  /** Entries in the verify-once cache. */
  get cacheSize(): number {
    return this.ok.size;
  }

  private cached(env: TxEnvelope): boolean {
    const c = this.ok.get(env.hashHex);
    if (c && bytesEqual(c, signatureDigest(env))) {
      this.metrics.sigCacheHits.inc();
      return true;
    }
    return false;
  }

  private remember(env: TxEnvelope): void {
    if (this.capacity === 0) return;
    if (this.ok.size >= this.capacity) {
      // Maps iterate in insertion order: drop the oldest entry.
      const first = this.ok.keys().next();
      if (!first.done) this.ok.delete(first.value);
    }
    // The signature's digest, not the signature: 32 bytes instead of 2.4–4.6 KB, and no view
    // into the wire buffer it came in (a whole gossip batch), which would stay alive with it.
    // A keyless transaction's entry stands for its sender's registered key, which never changes.
    this.ok.set(env.hashHex, signatureDigest(env));
  }

  /**
   * The signatures a transaction needs: its own, plus those its message carries
   * (the app's modules say which; a message that does not decode has none here
   * and is refused by the stateless checks).
   */
  private checks(env: TxEnvelope): { tx: SigCheck; extra: SigCheck[] } | null {
    const publicKey = this.signerKey(env);
    if (!publicKey) return null;
    const tx: SigCheck = { kind: 'tx', publicKey, message: env.signBytes, signature: env.tx.signature, code: 'TX_BAD_SIGNATURE' };
    let extra: SigCheck[] = [];
    try {
      extra = app.signatures(env).map((s) => ({ kind: s.label, publicKey: s.publicKey, message: s.message, signature: s.signature, code: s.code }));
    } catch (e) {
      if (!(e instanceof QnexusError)) throw e;
    }
    return { tx, extra };
  }

  private verifyHere(c: SigCheck): boolean {
    this.metrics.sigVerify.inc({ kind: c.kind });
    return this.backend.verify(c.publicKey, c.message, c.signature);
  }

  private verifyOnPool(pool: VerifyPool, c: SigCheck): Promise<boolean> {
    this.metrics.sigVerify.inc({ kind: c.kind });
    return pool.verify(c.publicKey, c.message, c.signature);
  }

  /** The key a transaction's signature is checked with: the one it carries, else the one registered for its sender (null: none). */
  signerKey(env: TxEnvelope): Uint8Array | null {
    return env.publicKey ?? this.keys?.(env.from) ?? null;
  }

  /** Synchronous check on this thread (block validation of a tx we never saw on gossip). */
  check(env: TxEnvelope): TxVerdict {
    if (this.cached(env)) return 'ok';
    const c = this.checks(env);
    if (!c) return 'TX_KEY_UNKNOWN';
    const { tx, extra } = c;
    if (!this.verifyHere(tx)) return 'TX_BAD_SIGNATURE';
    for (const c of extra) if (!this.verifyHere(c)) return c.code;
    this.remember(env);
    return 'ok';
  }

  /** Admission path: verified on the worker pool when there is one (both signatures of a stake in parallel). */
  async checkAsync(env: TxEnvelope): Promise<TxVerdict> {
    const pool = this.pool;
    if (!pool) return this.check(env);
    if (this.cached(env)) return 'ok';
    const c = this.checks(env);
    if (!c) return 'TX_KEY_UNKNOWN';
    // Nearly every transaction carries one signature: no arrays or Promise.all for it.
    if (c.extra.length === 0) {
      if (!(await this.verifyOnPool(pool, c.tx))) return c.tx.code;
      this.remember(env);
      return 'ok';
    }
    const all = [c.tx, ...c.extra];
    const ok = await Promise.all(all.map((c) => this.verifyOnPool(pool, c)));
    const bad = ok.indexOf(false);
    if (bad >= 0) return all[bad]!.code;
    this.remember(env);
    return 'ok';
  }

  /** True when every signature the transaction carries verifies (see `check` for which one failed). */
  verify(env: TxEnvelope): boolean {
    return this.check(env) === 'ok';
  }

  async verifyAsync(env: TxEnvelope): Promise<boolean> {
    return (await this.checkAsync(env)) === 'ok';
  }

  /** Verify a consensus signature (votes, proposals, headers); these are not cached. */
  verifyRaw(kind: string, publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    this.metrics.sigVerify.inc({ kind });
    return this.backend.verify(publicKey, message, signature);
  }

  /**
   * `verifyRaw` off the event loop when there is a pool (gossiped votes and proposals, evidence
   * submitted over the API, sync certificates); `urgent` puts it ahead of waiting transaction checks.
   */
  async verifyRawAsync(kind: string, publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array, urgent = false): Promise<boolean> {
    if (!this.pool) return this.verifyRaw(kind, publicKey, message, signature);
    this.metrics.sigVerify.inc({ kind });
    return this.pool.verify(publicKey, message, signature, urgent);
  }

  /**
   * Drop a transaction's verdict. The mempool does so once its block is final: the nonce is
   * spent, so any later copy is refused before a signature check. Without it the cache kept the
   * last 200,000 transactions whatever their state: ≈ 64 MB (57.5 of heap, 6.4 of digests,
   * measured on a map of that size) once full, about 7 minutes into a load of 500 tx/s a shard.
   */
  forget(hashHex: string): void {
    this.ok.delete(hashHex);
  }
}
