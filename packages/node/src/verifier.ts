import { DEFAULT_BACKEND, bytesEqual, getBackend, sha256, type BackendName, type SchemeName, type SignatureBackend } from '@qnexus/crypto';
import { app } from '@qnexus/app';
import { QnexusError, type AnyErrorCode, type TxEnvelope } from '@qnexus/types';
import type { Metrics } from './metrics.js';
import type { VerifyPool } from './verify-pool.js';

/**
 * Outcome of a transaction's signature checks: 'ok', the signer's signature
 * failing (TX_BAD_SIGNATURE), or an extra signature its message carries
 * failing with the code its module gives (a stake's validator consent:
 * STAKE_BAD_CONSENT).
 */
export type TxVerdict = 'ok' | 'TX_BAD_SIGNATURE' | AnyErrorCode;

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
    if (c && bytesEqual(c, sha256(env.tx.signature))) {
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
    this.ok.set(env.hashHex, sha256(env.tx.signature));
  }

  /**
   * The signatures a transaction needs: its own, plus those its message carries
   * (the app's modules say which; a message that does not decode has none here
   * and is refused by the stateless checks).
   */
  private checks(env: TxEnvelope): { tx: SigCheck; extra: SigCheck[] } {
    const b = env.tx.body;
    const tx: SigCheck = { kind: 'tx', publicKey: b.publicKey, message: env.signBytes, signature: env.tx.signature, code: 'TX_BAD_SIGNATURE' };
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

  /** Synchronous check on this thread (block validation of a tx we never saw on gossip). */
  check(env: TxEnvelope): TxVerdict {
    if (this.cached(env)) return 'ok';
    const { tx, extra } = this.checks(env);
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
    const { tx, extra } = this.checks(env);
    const all = [tx, ...extra];
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

  forget(hashHex: string): void {
    this.ok.delete(hashHex);
  }
}
