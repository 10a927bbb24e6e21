import { bytesEqual, getBackend, type SchemeName, type SignatureBackend } from '@qnexus/crypto';
import type { TxEnvelope } from '@qnexus/types';
import type { Metrics } from './metrics.js';
import type { VerifyPool } from './verify-pool.js';

/**
 * Verify-once cache for transaction signatures. A transaction's signature is
 * checked when it is admitted (API or gossip); block validation then finds it
 * here instead of verifying again. Entries remember the exact signature bytes:
 * the tx id excludes the signature, so a copy with a different (forged)
 * signature must not inherit the verdict.
 */
export class TxVerifier {
  private readonly ok = new Map<string, Uint8Array>();
  readonly backend: SignatureBackend;

  constructor(
    scheme: SchemeName,
    private readonly metrics: Metrics,
    private readonly pool: VerifyPool | null = null,
    private readonly capacity = 200_000,
  ) {
    this.backend = getBackend(scheme);
  }

  private cached(env: TxEnvelope): boolean {
    const c = this.ok.get(env.hashHex);
    if (c && bytesEqual(c, env.tx.signature)) {
      this.metrics.sigCacheHits.inc();
      return true;
    }
    return false;
  }

  private remember(env: TxEnvelope): void {
    if (this.ok.size >= this.capacity) {
      // Maps iterate in insertion order: drop the oldest entry.
      const first = this.ok.keys().next();
      if (!first.done) this.ok.delete(first.value);
    }
    this.ok.set(env.hashHex, env.tx.signature);
  }

  /** Synchronous check on this thread (block validation of a tx we never saw on gossip). */
  verify(env: TxEnvelope): boolean {
    if (this.cached(env)) return true;
    this.metrics.sigVerify.inc({ kind: 'tx' });
    if (!this.backend.verify(env.tx.body.publicKey, env.signBytes, env.tx.signature)) return false;
    this.remember(env);
    return true;
  }

  /** Admission path: verified on the worker pool when there is one. */
  async verifyAsync(env: TxEnvelope): Promise<boolean> {
    if (!this.pool) return this.verify(env);
    if (this.cached(env)) return true;
    this.metrics.sigVerify.inc({ kind: 'tx' });
    if (!(await this.pool.verify(env.tx.body.publicKey, env.signBytes, env.tx.signature))) return false;
    this.remember(env);
    return true;
  }

  /** Verify a consensus signature (votes, proposals, headers); these are not cached. */
  verifyRaw(kind: string, publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    this.metrics.sigVerify.inc({ kind });
    return this.backend.verify(publicKey, message, signature);
  }

  forget(hashHex: string): void {
    this.ok.delete(hashHex);
  }
}
