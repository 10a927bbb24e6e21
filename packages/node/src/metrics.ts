import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { P2PMetrics, registerProcessMetrics } from '@qnexus/runtime';

/** Prometheus metrics, named qnexus_<area>_<what>_<unit>. One registry per node process. */
export function createMetrics() {
  const registry = new Registry();
  registerProcessMetrics(registry);
  const r = [registry];
  const p2p = new P2PMetrics(registry, 'qnexus_p2p');
  const m = {
    registry,
    p2p,
    height: new Gauge({ name: 'qnexus_consensus_height', help: 'Height the node is currently deciding (finalized height + 1)', registers: r }),
    finalizedHeight: new Gauge({ name: 'qnexus_chain_finalized_height', help: 'Highest finalized block height', registers: r }),
    finalizedTxs: new Counter({ name: 'qnexus_chain_finalized_txs_total', help: 'Transactions in finalized blocks (tx/s: rate())', registers: r }),
    blockTxs: new Histogram({ name: 'qnexus_chain_block_txs', help: 'Transactions per finalized block', buckets: [0, 1, 10, 50, 100, 250, 500, 1000, 2000], registers: r }),
    slotsMissed: new Counter({ name: 'qnexus_chain_slots_missed_total', help: "Slots that ended without a block on this shard's chain (counted when the next block is finalized; an idle shard's quiet slots included)", registers: r }),
    finalityLag: new Histogram({
      name: 'qnexus_consensus_finality_lag_seconds',
      help: "Seconds from the start of a block's slot to its finalization by this node (consensus commits, not sync imports)",
      buckets: [0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 60],
      registers: r,
    }),
    lastFinalityLag: new Gauge({ name: 'qnexus_consensus_last_finality_lag_seconds', help: 'Finality lag of the last block this node finalized through consensus', registers: r }),
    rounds: new Gauge({ name: 'qnexus_consensus_round', help: 'Current consensus round (slot)', registers: r }),
    roundsPerHeight: new Histogram({ name: 'qnexus_consensus_rounds_per_height', help: 'Rounds (slots) spent deciding a height, from its first round with a proposal', buckets: [1, 2, 3, 5, 10, 20], registers: r }),
    slotHolds: new Counter({ name: 'qnexus_consensus_slot_holds_total', help: "Slot rounds held back at the slot boundary while this node's vote for the previous round's block awaited its decision, by how the hold ended (decided: the height was decided and the new height starts in this slot; expired: no decision within half a slot, the slot's round started that late or a later slot superseded the hold)", labelNames: ['outcome'], registers: r }),
    evidence: new Counter({ name: 'qnexus_consensus_evidence_total', help: 'Equivocation evidence observed', registers: r }),
    consensusRejected: new Counter({ name: 'qnexus_consensus_rejected_total', help: 'Consensus messages rejected by the core', labelNames: ['reason'], registers: r }),
    mempoolSize: new Gauge({ name: 'qnexus_mempool_txs', help: 'Transactions waiting in the mempool', registers: r }),
    txAdmission: new Counter({ name: 'qnexus_mempool_admission_total', help: 'Transaction admission outcomes by code', labelNames: ['source', 'result'], registers: r }),
    txBatchesSent: new Counter({ name: 'qnexus_tx_batches_sent_total', help: "Batches of transactions this node admitted itself (API, restored journal, beacon entries) sent to its shard, by path (direct: once to each shard peer over direct streams; gossip: published, as the fallback when direct sending may not reach every peer, or with direct sending off); a batch sent both ways counts under both", labelNames: ['path'], registers: r }),
    sigVerify: new Counter({ name: 'qnexus_crypto_verify_total', help: 'ML-DSA verifications performed', labelNames: ['kind'], registers: r }),
    sigCacheHits: new Counter({ name: 'qnexus_crypto_verify_cache_hits_total', help: 'Transaction signatures reused from the verify-once cache', registers: r }),
    /** Pushed by the API at scrape time; `p2p.bind` makes it self-updating. */
    peers: p2p.peers,
    /** Same object as `p2p` (its `set` keeps the API's scrape-time push compiling). */
    gossip: p2p,
    syncedBlocks: new Counter({ name: 'qnexus_sync_blocks_total', help: 'Blocks imported through block-range sync', registers: r }),
    syncFailures: new Counter({ name: 'qnexus_sync_failures_total', help: 'Sync exchanges (status or range) that failed, by reason; all but STREAM_ERROR and INTERNAL are penalised', labelNames: ['reason'], registers: r }),
    syncActive: new Gauge({ name: 'qnexus_sync_active', help: '1 while the node is catching up from a peer through block-range sync, else 0', registers: r }),
    syncTarget: new Gauge({ name: 'qnexus_sync_target_height', help: 'Head height of the peer being synced from (last sync)', registers: r }),
    syncSpeed: new Gauge({ name: 'qnexus_sync_blocks_per_second', help: 'Blocks imported per second during the current (or last) sync', registers: r }),
    xshardSent: new Counter({ name: 'qnexus_xshard_reports_total', help: '2PC reports and hellos sent to the beacon, by kind and result', labelNames: ['kind', 'result'], registers: r }),
    xshardReceived: new Counter({ name: 'qnexus_xshard_beacon_entries_total', help: 'Beacon entries (prepare requests, decisions) received over 2PC streams, by kind and result', labelNames: ['kind', 'result'], registers: r }),
    xshardPhases: new Counter({ name: 'qnexus_xshard_phases_total', help: 'Cross-shard transfer records applied in finalized blocks of this shard, by role-phase (source-escrowed, destination-prepared, source-committed, …)', labelNames: ['phase'], registers: r }),
    xshardAborts: new Counter({ name: 'qnexus_xshard_aborts_total', help: 'Cross-shard transfers aborted in finalized blocks of this shard, by role', labelNames: ['role'], registers: r }),
    epochAnnouncements: new Counter({ name: 'qnexus_beacon_announcements_total', help: 'Beacon epoch announcements received, by result (accepted, known, malformed, bad-signature, conflict, implausible, fetch-failed)', labelNames: ['result'], registers: r }),
    registrySnapshots: new Counter({ name: 'qnexus_beacon_registry_snapshots_total', help: 'Beacon registry snapshots received on gossip, by result (accepted, stale, implausible, bad-signature, wrong-chain, malformed)', labelNames: ['result'], registers: r }),
    // Staking
    epoch: new Gauge({ name: 'qnexus_consensus_epoch', help: 'Epoch of the current slot', registers: r }),
    validatorActive: new Gauge({ name: 'qnexus_validator_active', help: "1 while this node's validator key is a member of this shard's committee in the current epoch, else 0", registers: r }),
    evidenceForwarded: new Counter({ name: 'qnexus_staking_evidence_forwarded_total', help: "Equivocation evidence sent to the beacon, by the beacon's answer (ok, an error code, unreachable)", labelNames: ['result'], registers: r }),
    apiRequests: new Counter({ name: 'qnexus_api_requests_total', help: 'HTTP API requests', labelNames: ['route', 'status'], registers: r }),
    // State (read from the chain at scrape time: see bindState)
    stateEntries: new Gauge({ name: 'qnexus_state_entries', help: 'Key-value entries in the committed state (the trie root counts them)', registers: r }),
    stateBaseHeight: new Gauge({ name: 'qnexus_state_base_height', help: 'First height whose block and state this node holds (0, or the snapshot it started from)', registers: r }),
    stateOldestVersion: new Gauge({ name: 'qnexus_state_oldest_version', help: 'Oldest state version (height) kept for proofs and snapshots: head minus --state-retention, at least the base', registers: r }),
    statePrunedNodes: new Gauge({ name: 'qnexus_state_pruned_nodes', help: 'Trie nodes deleted by pruning since the process started', registers: r }),
    xferRecordsPruned: new Gauge({ name: 'qnexus_xshard_records_pruned', help: 'Settled cross-shard records pruned from this shard\'s state so far (a running total kept in the state)', registers: r }),
    xferTombstones: new Gauge({ name: 'qnexus_xshard_tombstones', help: 'Tombstones of pruned cross-shard records held in state (refusing replays until their deadline window ends)', registers: r }),
  };
  return m;
}

/** What the state metrics read from the chain at scrape time. */
export interface StateStats {
  entries: number;
  baseHeight: number;
  oldestVersion: number;
  prunedNodes: number;
  xferRecordsPruned: number;
  xferTombstones: number;
}

/** Read the state gauges from `stats` at every scrape (no work between scrapes). */
export function bindState(m: Metrics, stats: () => StateStats): void {
  const read = <K extends keyof StateStats>(g: Gauge, k: K) => {
    (g as Gauge & { collect?: () => void }).collect = () => g.set(stats()[k]);
  };
  read(m.stateEntries, 'entries');
  read(m.stateBaseHeight, 'baseHeight');
  read(m.stateOldestVersion, 'oldestVersion');
  read(m.statePrunedNodes, 'prunedNodes');
  read(m.xferRecordsPruned, 'xferRecordsPruned');
  read(m.xferTombstones, 'xferTombstones');
}

export type Metrics = ReturnType<typeof createMetrics>;
