import { bytesEqual, getBackend, type SchemeName, type SignatureBackend } from '@qnexus/crypto';
import type { TxEnvelope } from '@qnexus/types';
import type { Metrics } from './metrics.js';

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
    private readonly capacity = 200_000,
  ) {
    this.backend = getBackend(scheme);
  }

  verify(env: TxEnvelope): boolean {
    const sig = env.tx.signature;
    const cached = this.ok.get(env.hashHex);
    if (cached && bytesEqual(cached, sig)) {
      this.metrics.sigCacheHits.inc();
      return true;
    }
    this.metrics.sigVerify.inc({ kind: 'tx' });
    if (!this.backend.verify(env.tx.body.publicKey, env.signBytes, sig)) return false;
    if (this.ok.size >= this.capacity) {
      // Maps iterate in insertion order: drop the oldest entry.
      const first = this.ok.keys().next();
      if (!first.done) this.ok.delete(first.value);
    }
    this.ok.set(env.hashHex, sig);
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
