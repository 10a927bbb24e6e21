import { Counter, Gauge, collectDefaultMetrics, type Registry } from 'prom-client';
import type { P2PStats } from '@qnexus/p2p';

/**
 * prom-client's default process and Node.js metrics under the `qnexus_` prefix
 * (`qnexus_process_cpu_seconds_total`, `qnexus_process_resident_memory_bytes`,
 * `qnexus_nodejs_eventloop_lag_seconds`, `qnexus_nodejs_heap_size_used_bytes`, …).
 * The `nodejs_active_{handles,requests,resources}_total` gauges are dropped: a gauge
 * must not end in `_total` (promtool rejects it) and each is the sum over `type` of
 * the gauge of the same name without the suffix, which stays.
 *
 * The event-loop lag is sampled every EVENT_LOOP_SAMPLE_MS, not prom-client's 10 ms: each
 * sample is a timer wake-up of an otherwise idle process (on a VM a kernel round trip), and
 * 100 a second of them were a visible part of an idle node's CPU (the load monitor times its own
 * 250 ms timer instead of keeping a second histogram).
 * A lag is still measured whole by the next sample; only short stalls are seen less often.
 */
export const EVENT_LOOP_SAMPLE_MS = 50;

export function registerProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry, prefix: 'qnexus_', eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  for (const n of ['handles', 'requests', 'resources']) registry.removeSingleMetric(`qnexus_nodejs_active_${n}_total`);
}

export type GossipResult = 'accept' | 'ignore' | 'reject';

/**
 * `qnexus_p2p_peers` and `qnexus_p2p_gossip_messages_total{topic,result}`, read from the
 * p2p layer's own counters at scrape time once `bind` has been called.
 * `prefix` is `qnexus_p2p` for shard nodes and `qnexus_beacon_p2p` for the beacon.
 */
export class P2PMetrics {
  private source: (() => P2PStats) | null = null;
  readonly peers: Gauge;
  readonly messages: Counter;

  constructor(registry: Registry, prefix: string) {
    const self = this;
    this.peers = new Gauge({
      name: `${prefix}_peers`,
      help: 'Connected libp2p peers',
      registers: [registry],
      collect() {
        if (self.source) this.set(self.source().peers);
      },
    });
    this.messages = new Counter({
      name: `${prefix}_gossip_messages_total`,
      help: 'Gossip messages validated, by topic and validation result (accept, ignore, reject)',
      labelNames: ['topic', 'result'],
      registers: [registry],
      collect() {
        this.reset();
        if (!self.source) return;
        for (const [topic, s] of Object.entries(self.source().topics)) {
          const name = topicName(topic);
          for (const r of ['accept', 'ignore', 'reject'] as const) this.inc({ topic: name, result: r }, s[r]);
        }
      },
    });
  }

  /** Read peers and gossip results from the p2p node on every scrape. */
  bind(stats: () => P2PStats): void {
    this.source = stats;
  }
}

/** The last path segment of a gossip topic (`/qnexus/<chain>/shard/0/tx` → `tx`). */
export function topicName(topic: string): string {
  return topic.split('/').filter((s) => s.length > 0).pop() ?? topic;
}

/**
 * `qnexus_crypto_backend_info{backend,scheme} 1`: which ML-DSA implementation the process
 * verifies and signs with (shard nodes and the beacon).
 */
export function registerCryptoBackendInfo(registry: Registry, backend: string, scheme: string): Gauge {
  const g = new Gauge({
    name: 'qnexus_crypto_backend_info',
    help: 'The ML-DSA signature backend (noble or pqclean) and scheme of this process; always 1',
    labelNames: ['backend', 'scheme'],
    registers: [registry],
  });
  g.set({ backend, scheme }, 1);
  return g;
}
