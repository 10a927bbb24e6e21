import { decodeXAck, encodeTxBatch, shardXProtocol, MAX_TX_BATCH } from '@qnexus/types';
import type { P2PNode } from '@qnexus/p2p';
import type { Logger } from '@qnexus/runtime';
import type { Metrics } from './metrics.js';

const REQUEST = { timeoutMs: 5000, maxResponseFrameBytes: 4096, maxFrames: 1 } as const;

/**
 * Delivers signed system entries to a shard: every bound peer of its
 * committee gets them (shard nodes gossip them on among themselves too), in
 * batches of up to 64 per request. Each peer has its own queue, so a slow or
 * dead validator (a request can take the whole 5 s timeout) never holds up
 * delivery to the others. Best effort: failures are logged and the
 * coordinator's tick re-sends whatever is still pending.
 */
export class ShardSender {
  /** Per (shard, peer), entries waiting for the next round (identity-deduplicated: re-sends reuse the same bytes). */
  private readonly pending = new Map<string, { shard: number; peer: string; raws: Set<Uint8Array> }>();
  private readonly running = new Map<string, Promise<void>>();
  private stopped = false;

  constructor(
    private readonly p2p: P2PNode,
    private readonly chainId: string,
    private readonly peersOf: (shard: number) => string[],
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  enqueue(shard: number, raw: Uint8Array): void {
    if (this.stopped) return;
    const peers = this.peersOf(shard);
    if (peers.length === 0) {
      this.log.debug('no bound peer of the shard to send to; the tick will retry', { shard });
      return;
    }
    for (const peer of peers) {
      const key = `${shard}/${peer}`;
      let q = this.pending.get(key);
      if (!q) this.pending.set(key, (q = { shard, peer, raws: new Set() }));
      q.raws.add(raw);
      if (!this.running.has(key)) {
        const run = this.drain(key).finally(() => this.running.delete(key));
        this.running.set(key, run);
      }
    }
  }

  /** Rounds until nothing is pending for this peer; one round at a time per peer. */
  private async drain(key: string): Promise<void> {
    await Promise.resolve(); // let the caller finish enqueueing the rest of its batch
    for (;;) {
      const q = this.pending.get(key);
      if (!q || q.raws.size === 0 || this.stopped) return;
      this.pending.delete(key);
      const raws = [...q.raws];
      const batches: Uint8Array[] = [];
      for (let i = 0; i < raws.length; i += MAX_TX_BATCH) batches.push(encodeTxBatch(raws.slice(i, i + MAX_TX_BATCH)));
      await this.sendAll(q.shard, q.peer, batches);
    }
  }

  private async sendAll(shard: number, peer: string, batches: Uint8Array[]): Promise<void> {
    const protocol = shardXProtocol(this.chainId, shard);
    for (const batch of batches) {
      if (this.stopped) return;
      try {
        let ack = null;
        for await (const frame of this.p2p.request(peer, protocol, batch, REQUEST)) ack = decodeXAck(frame);
        if (!ack) throw new Error('no answer');
        this.metrics.sends.inc({ result: ack.ok ? 'ok' : 'refused' });
        // A refusal is usually "already recorded" (a re-send): informative only.
        if (!ack.ok) this.log.debug('shard peer refused system entries', { shard, peer, code: ack.code, message: ack.message });
      } catch (e) {
        this.metrics.sends.inc({ result: 'failed' });
        this.log.debug('sending system entries failed; the tick will retry', { shard, peer, error: (e as Error).message });
        return;
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.pending.clear();
    await Promise.allSettled([...this.running.values()]);
  }
}
