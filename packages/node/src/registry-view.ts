import { formatAddress, getBackend, type SignatureBackend } from '@qnexus/crypto';
import { decodeRegistrySnapshot, registrySnapshotSigningBytes, type Genesis, type RegistrySnapshot, type ValidatorInfo } from '@qnexus/types';
import type { ValidationResult } from '@qnexus/p2p';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';

/** Why a snapshot was taken or not (the `result` label of qnexus_beacon_registry_snapshots_total). */
export type SnapshotResult = 'accepted' | 'stale' | 'malformed' | 'wrong-chain' | 'bad-signature';

/**
 * The latest beacon registry snapshot this node verified. The beacon
 * publishes a signed snapshot of its validator registry (stakes, statuses,
 * rewards, participation, staking totals) on the registry topic every few
 * slots; shard nodes keep the newest one (by slot) so `GET /v1/validators`
 * shows the registry on every node without asking the beacon.
 *
 * Gossip validation: a snapshot that does not decode, is for another chain or
 * is not signed by the genesis beacon key is rejected (the relay penalised);
 * one not newer than what we hold is ignored (not relayed again, no penalty:
 * re-publications and late copies are normal).
 */
export class RegistryView {
  private snapshot: RegistrySnapshot | null = null;
  private readonly byAddress = new Map<string, ValidatorInfo>();
  private readonly backend: SignatureBackend;

  constructor(
    private readonly genesis: Genesis,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    /** Verifies the beacon's snapshot signatures: the node's backend (default noble). */
    backend: SignatureBackend = getBackend(genesis.scheme),
  ) {
    this.backend = backend;
  }

  /** The newest verified snapshot, or null before the first arrives. */
  get latest(): RegistrySnapshot | null {
    return this.snapshot;
  }

  /** A validator of the latest snapshot by its `qn…` address. */
  validator(address: string): ValidatorInfo | undefined {
    return this.byAddress.get(address);
  }

  /** Check a gossiped snapshot and keep it when it is newer. */
  validate(data: Uint8Array): ValidationResult {
    const [r, why] = this.check(data);
    this.metrics.registrySnapshots.inc({ result: why });
    if (r === 'reject') this.log.warn('rejected beacon registry snapshot', { reason: why });
    return r;
  }

  private check(data: Uint8Array): [ValidationResult, SnapshotResult] {
    const g = this.genesis;
    let s;
    try {
      s = decodeRegistrySnapshot(data);
    } catch {
      return ['reject', 'malformed'];
    }
    const b = s.body;
    if (b.chainId !== g.chainId) return ['reject', 'wrong-chain'];
    // Cheap before expensive: an old copy (the beacon re-publishes) costs no signature check.
    if (this.snapshot && b.slot <= this.snapshot.slot) return ['ignore', 'stale'];
    if (!this.backend.verify(g.beacon.publicKey, registrySnapshotSigningBytes(b), s.signature)) return ['reject', 'bad-signature'];
    // Re-checked: another copy may have been accepted while we verified (verification is synchronous today).
    if (this.snapshot && b.slot <= this.snapshot.slot) return ['ignore', 'stale'];
    this.snapshot = b;
    this.byAddress.clear();
    for (const v of b.validators) this.byAddress.set(formatAddress(v.address), v);
    return ['accept', 'accepted'];
  }
}
