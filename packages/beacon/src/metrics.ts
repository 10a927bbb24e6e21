import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { P2PMetrics, registerProcessMetrics } from '@qnexus/runtime';

/** What the log metrics read from the coordinator at scrape time. */
export interface LogSource {
  readonly tombstones: number;
  readonly stats: { readonly compacted: number; readonly forgotten: number; readonly refused: number };
  counts(): { total: number };
}

/** Prometheus metrics of the beacon process, named qnexus_beacon_<what>. */
export function createMetrics() {
  const registry = new Registry();
  registerProcessMetrics(registry);
  const r = [registry];
  const p2p = new P2PMetrics(registry, 'qnexus_beacon_p2p');
  let log: LogSource | null = null;
  /** A counter that follows one of the coordinator's running totals, read at scrape time. */
  const following = (name: string, help: string, read: (s: LogSource) => number) => {
    let seen = 0;
    return new Counter({
      name,
      help,
      registers: r,
      collect() {
        if (!log) return;
        const n = read(log);
        if (n > seen) this.inc(n - seen);
        seen = n;
      },
    });
  };
  return {
    registry,
    p2p,
    /** Read the log metrics from this coordinator (call once, at start). */
    bindLog(source: LogSource): void {
      log = source;
    },
    logEntries: new Gauge({ name: 'qnexus_beacon_2pc_log_entries', help: 'Transfer log entries held (not compacted)', registers: r, collect() { if (log) this.set(log.counts().total); } }),
    tombstones: new Gauge({ name: 'qnexus_beacon_2pc_tombstones', help: 'Compacted transfer log entries kept as tombstones (refusing replays until their deadline is a retention window behind)', registers: r, collect() { if (log) this.set(log.tombstones); } }),
    compacted: following('qnexus_beacon_2pc_compacted_total', 'Transfer log entries compacted (settled on both sides a retention window ago)', (s) => s.stats.compacted),
    forgotten: following('qnexus_beacon_2pc_forgotten_total', 'Tombstones dropped from the transfer log (deadline a retention window behind)', (s) => s.stats.forgotten),
    replaysRefused: following('qnexus_beacon_2pc_replays_refused_total', 'Reported records refused as replays of compacted (XS_PRUNED) or long-expired (XS_EXPIRED) transfers', (s) => s.stats.refused),
    phases: new Counter({ name: 'qnexus_beacon_2pc_phases_total', help: 'Cross-shard transfer phases the coordinator logged', labelNames: ['phase'], registers: r }),
    aborts: new Counter({ name: 'qnexus_beacon_2pc_aborts_total', help: 'Logged 2PC abort decisions, by reason (deadline: the destination refused XS_DEADLINE_PASSED; refused: any other refusal; adopted from a shard)', labelNames: ['reason'], registers: r }),
    decisions: new Counter({ name: 'qnexus_beacon_2pc_decisions_total', help: 'Logged 2PC decisions by outcome', labelNames: ['outcome'], registers: r }),
    rejected: new Counter({ name: 'qnexus_beacon_2pc_rejected_total', help: '2PC requests refused at admission, by reason', labelNames: ['reason'], registers: r }),
    requests: new Counter({ name: 'qnexus_beacon_2pc_requests_total', help: '2PC requests admitted, by type', labelNames: ['type'], registers: r }),
    anomalies: new Counter({ name: 'qnexus_beacon_2pc_anomalies_total', help: 'Verified records that an honest shard never produces or that disagree with the log', registers: r }),
    undecided: new Gauge({ name: 'qnexus_beacon_2pc_undecided', help: 'Transfers prepared on the source but not decided yet', registers: r }),
    sends: new Counter({ name: 'qnexus_beacon_2pc_sends_total', help: 'System-entry batches sent to shard peers, by result', labelNames: ['result'], registers: r }),
    announcements: new Counter({ name: 'qnexus_beacon_epoch_announcements_total', help: 'Signed epoch announcements published', registers: r }),
    epoch: new Gauge({ name: 'qnexus_beacon_epoch', help: 'Current epoch', registers: r }),
    slot: new Gauge({ name: 'qnexus_beacon_slot', help: 'Current slot (wall clock)', registers: r }),
    processedSlot: new Gauge({ name: 'qnexus_beacon_processed_slot', help: 'Newest slot whose tick (decisions, freezes, releases) is durable', registers: r }),
    slotLag: new Gauge({ name: 'qnexus_beacon_slot_lag_seconds', help: 'How late the newest tick became durable, after its slot started (wall clock)', registers: r }),
    groupWrites: new Counter({ name: 'qnexus_beacon_log_writes_total', help: 'Fsynced group writes of the 2PC log and registry', registers: r }),
    groupEvents: new Histogram({ name: 'qnexus_beacon_log_group_events', help: 'Events (reports, ticks, evidence) acknowledged per group write', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], registers: r }),
    groupEntries: new Histogram({ name: 'qnexus_beacon_log_group_entries', help: 'Transfer log entries written per group write', buckets: [0, 1, 4, 16, 64, 256, 1024], registers: r }),
    writeSeconds: new Histogram({ name: 'qnexus_beacon_log_write_seconds', help: 'Duration of one group write (fsynced LevelDB batch)', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], registers: r }),
    /** Set by the API at scrape time; `p2p.bind` makes it self-updating. */
    peers: p2p.peers,
    validators: new Gauge({ name: 'qnexus_beacon_validators', help: 'Registered validators by status', labelNames: ['status'], registers: r }),
    trustedPeers: new Gauge({ name: 'qnexus_beacon_trusted_peers', help: 'Peers bound by members of the current and next committees (trusted: reserved connection slots)', registers: r }),
    slashings: new Counter({ name: 'qnexus_beacon_slashings_total', help: 'Validators slashed for proven equivocation', registers: r }),
    evidence: new Counter({ name: 'qnexus_beacon_evidence_total', help: 'Equivocation evidence processed, by result (slashed, duplicate or error code)', labelNames: ['result'], registers: r }),
    minted: new Counter({ name: 'qnexus_beacon_rewards_minted_total', help: 'QFC minted as validator rewards', registers: r }),
    bonded: new Gauge({ name: 'qnexus_beacon_stake_bonded', help: 'Stake bonded in the registry (all validators not withdrawn)', registers: r }),
    apiRequests: new Counter({ name: 'qnexus_beacon_api_requests_total', help: 'HTTP API requests', labelNames: ['route', 'status'], registers: r }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
