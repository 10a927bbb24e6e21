import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics, named qnexus_<area>_<what>_<unit>. One registry per node process. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'qnexus_process_' });
  const m = {
    registry,
    height: new Gauge({ name: 'qnexus_chain_height', help: 'Height the node is currently deciding', registers: [registry] }),
    finalizedHeight: new Gauge({ name: 'qnexus_chain_finalized_height', help: 'Highest finalized block height', registers: [registry] }),
    finalizedTxs: new Counter({ name: 'qnexus_chain_finalized_txs_total', help: 'Transactions in finalized blocks', registers: [registry] }),
    blockTxs: new Histogram({ name: 'qnexus_chain_block_txs', help: 'Transactions per finalized block', buckets: [0, 1, 10, 50, 100, 250, 500, 1000, 2000], registers: [registry] }),
    rounds: new Gauge({ name: 'qnexus_consensus_round', help: 'Current consensus round (slot)', registers: [registry] }),
    roundsPerHeight: new Histogram({ name: 'qnexus_consensus_rounds_per_height', help: 'Rounds (slots) spent deciding a height', buckets: [1, 2, 3, 5, 10, 20], registers: [registry] }),
    evidence: new Counter({ name: 'qnexus_consensus_evidence_total', help: 'Equivocation evidence observed', registers: [registry] }),
    consensusRejected: new Counter({ name: 'qnexus_consensus_rejected_total', help: 'Consensus messages rejected by the core', labelNames: ['reason'], registers: [registry] }),
    mempoolSize: new Gauge({ name: 'qnexus_mempool_txs', help: 'Transactions waiting in the mempool', registers: [registry] }),
    txAdmission: new Counter({ name: 'qnexus_mempool_admission_total', help: 'Transaction admission outcomes by code', labelNames: ['source', 'result'], registers: [registry] }),
    sigVerify: new Counter({ name: 'qnexus_crypto_verify_total', help: 'ML-DSA verifications performed', labelNames: ['kind'], registers: [registry] }),
    sigCacheHits: new Counter({ name: 'qnexus_crypto_verify_cache_hits_total', help: 'Transaction signatures reused from the verify-once cache', registers: [registry] }),
    peers: new Gauge({ name: 'qnexus_p2p_peers', help: 'Connected libp2p peers', registers: [registry] }),
    gossip: new Gauge({ name: 'qnexus_p2p_gossip_messages', help: 'Gossip validation results per topic (cumulative)', labelNames: ['topic', 'result'], registers: [registry] }),
    syncedBlocks: new Counter({ name: 'qnexus_sync_blocks_total', help: 'Blocks imported through block-range sync', registers: [registry] }),
    syncFailures: new Counter({ name: 'qnexus_sync_failures_total', help: 'Sync responses that failed verification or timed out', labelNames: ['reason'], registers: [registry] }),
    xshardSent: new Counter({ name: 'qnexus_xshard_reports_total', help: '2PC reports and hellos sent to the beacon, by kind and result', labelNames: ['kind', 'result'], registers: [registry] }),
    xshardReceived: new Counter({ name: 'qnexus_xshard_beacon_entries_total', help: 'Beacon entries (prepare requests, decisions) received over 2PC streams, by kind and result', labelNames: ['kind', 'result'], registers: [registry] }),
    xshardPhases: new Counter({ name: 'qnexus_xshard_phases_total', help: 'Cross-shard transfer phases recorded in finalized blocks of this shard', labelNames: ['phase'], registers: [registry] }),
    epochAnnouncements: new Counter({ name: 'qnexus_beacon_announcements_total', help: 'Beacon epoch announcements received, by result', labelNames: ['result'], registers: [registry] }),
    registrySnapshots: new Counter({ name: 'qnexus_beacon_registry_snapshots_total', help: 'Beacon registry snapshots received on gossip, by result (accepted, stale, bad-signature, wrong-chain, malformed)', labelNames: ['result'], registers: [registry] }),
    // Staking
    epoch: new Gauge({ name: 'qnexus_consensus_epoch', help: 'Epoch of the current slot', registers: [registry] }),
    validatorActive: new Gauge({ name: 'qnexus_validator_active', help: "1 while this node's validator key is a member of this shard's committee in the current epoch, else 0", registers: [registry] }),
    evidenceForwarded: new Counter({ name: 'qnexus_staking_evidence_forwarded_total', help: "Equivocation evidence sent to the beacon, by the beacon's answer (ok, an error code, unreachable)", labelNames: ['result'], registers: [registry] }),
    apiRequests: new Counter({ name: 'qnexus_api_requests_total', help: 'HTTP API requests', labelNames: ['route', 'status'], registers: [registry] }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
