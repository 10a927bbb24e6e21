import { formatAddress, getBackend, type SignatureBackend } from '@qnexus/crypto';
import { decodeRegistrySnapshot, registrySnapshotSigningBytes, slotAt, type Genesis, type RegistrySnapshot, type ValidatorInfo } from '@qnexus/types';
import type { ValidationResult } from '@qnexus/p2p';
import type { Logger } from '@qnexus/runtime';
import type { Metrics } from './metrics.js';

/** Why a snapshot was taken or not (the `result` label of qnexus_beacon_registry_snapshots_total). */
export type SnapshotResult = 'accepted' | 'stale' | 'implausible' | 'malformed' | 'wrong-chain' | 'bad-signature';

export interface RegistryViewOptions {
  /** Verifies the beacon's snapshot signatures: the node's backend (default noble). */
  backend?: SignatureBackend;
  /** Wall clock (ms) for the "snapshot from the future" bound. Default Date.now. */
  now?: () => number;
  /**
   * Told the peers to trust on every newer snapshot: the genesis beacon's and those the
   * beacon verified for the members of the current and next committees (XShard hands them
   * to `P2PNode.setTrustedPeers`).
   */
  trust?: (peerIds: string[]) => void;
}

/**
 * The latest beacon registry snapshot this node verified. The beacon
 * publishes a signed snapshot of its validator registry (stakes, statuses,
 * rewards, participation, staking totals, the committees' bound peers) on the
 * registry topic every few slots; shard nodes keep the newest one (by slot) so
 * `GET /v1/validators` shows the registry on every node without asking the
 * beacon, and trust the committees' peers it names.
 *
 * Gossip validation: a snapshot that does not decode, is for another chain or
 * is not signed by the genesis beacon key is rejected (the relay penalised);
 * one not newer than what we hold, or dated more than a slot ahead of our clock
 * (the beacon signs each at its slot: only a relay's clock ahead of ours explains
 * one), is ignored before any signature check (not relayed, no penalty; the spam
 * budget scores a flood of them).
 */
export class RegistryView {
  private snapshot: RegistrySnapshot | null = null;
  private readonly byAddress = new Map<string, ValidatorInfo>();
  private readonly backend: SignatureBackend;
  private readonly now: () => number;
  private readonly trust: ((peerIds: string[]) => void) | undefined;

  constructor(
    private readonly genesis: Genesis,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    opts: RegistryViewOptions = {},
  ) {
    this.backend = opts.backend ?? getBackend(genesis.scheme);
    this.now = opts.now ?? Date.now;
    this.trust = opts.trust;
  }

  /** The newest verified snapshot, or null before the first arrives. */
  get latest(): RegistrySnapshot | null {
    return this.snapshot;
  }

  /** A validator of the latest snapshot by its `qn…` address. */
  validator(address: string): ValidatorInfo | undefined {
    return this.byAddress.get(address);
  }

  /** Peers to trust: the genesis beacon's, and the committees' of the latest snapshot. */
  trustedPeers(): string[] {
    return [...new Set([this.genesis.beacon.peerId, ...(this.snapshot?.peers ?? []).map((p) => p.peerId)])];
  }

  /** Check a gossiped snapshot and keep it when it is newer. */
  validate(data: Uint8Array): ValidationResult {
    const [r, why] = this.check(data);
    this.metrics.registrySnapshots.inc({ result: why });
    if (r === 'reject') this.log.warn('rejected beacon registry snapshot', { reason: why });
    if (why === 'accepted' && this.trust) {
      try {
        this.trust(this.trustedPeers());
      } catch (e) {
        this.log.error('could not update the trusted peers', { error: (e as Error).message });
      }
    }
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
    // Cheap before expensive: an old copy (the beacon re-publishes) costs no signature check,
    // and neither does one dated ahead of our clock (the beacon signs each in its own slot).
    if (this.snapshot && b.slot <= this.snapshot.slot) return ['ignore', 'stale'];
    // Ignored, not rejected: a relay whose clock runs a little ahead of ours is not at fault (the spam budget scores floods).
    if (b.slot > slotAt(g, this.now()) + 1) return ['ignore', 'implausible'];
    if (!this.backend.verify(g.beacon.publicKey, registrySnapshotSigningBytes(b), s.signature)) return ['reject', 'bad-signature'];
    // Re-checked: another copy may have been accepted while we verified (verification is synchronous today).
    if (this.snapshot && b.slot <= this.snapshot.slot) return ['ignore', 'stale'];
    this.snapshot = b;
    this.byAddress.clear();
    for (const v of b.validators) this.byAddress.set(formatAddress(v.address), v);
    return ['accept', 'accepted'];
  }
}
