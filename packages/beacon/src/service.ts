import { toHex } from '@qnexus/crypto';
import type { P2PNode } from '@qnexus/p2p';
import {
  beaconTopics,
  decodeEpochAnnouncement,
  encodeEpochAnnouncement,
  encodeXAck,
  epochAnnouncementSigningBytes,
  epochOf,
  slotAt,
  type XAck,
  type XferRecord,
} from '@qnexus/types';
import type { Admitter } from './admission.js';
import type { Coordinator, CoordinatorAction, XferEntry } from './coordinator.js';
import type { Logger } from '@qnexus/node';
import type { Metrics } from './metrics.js';
import type { Registry } from './registry.js';
import type { ShardSender } from './sender.js';
import type { BeaconStore } from './store.js';

/** Re-publish the current epoch's announcement this often (slots), besides at each epoch change. */
const ANNOUNCE_EVERY_SLOTS = 4;
export const MAX_REQUEST_BYTES = 2 * 1024 * 1024;
const MAX_ANNOUNCEMENT_BYTES = 256 * 1024;
const OK: XAck = { ok: true, code: '', message: '' };

/**
 * Performs coordinator actions: every `persist` of the batch before the first
 * `send` that follows it is written in one fsynced LevelDB batch, and only
 * then is anything handed to the network. This is the "log before send" rule.
 */
export class ActionRunner {
  constructor(
    private readonly store: Pick<BeaconStore, 'putEntries'>,
    private readonly send: (shard: number, raw: Uint8Array) => void,
    private readonly observe: (a: CoordinatorAction) => void = () => undefined,
  ) {}

  async run(actions: readonly CoordinatorAction[]): Promise<void> {
    const pending = new Map<string, XferEntry>();
    const flush = async () => {
      if (pending.size === 0) return;
      await this.store.putEntries(pending.values());
      pending.clear();
    };
    for (const a of actions) {
      if (a.type === 'persist') pending.set(a.entry.id, a.entry);
      else if (a.type === 'send') {
        await flush();
        this.send(a.shard, a.raw);
      } else this.observe(a);
    }
    await flush();
  }
}

export interface ServiceDeps {
  registry: Registry;
  store: BeaconStore;
  coordinator: Coordinator;
  admitter: Admitter;
  sender: ShardSender;
  p2p: P2PNode;
  metrics: Metrics;
  log: Logger;
  signAnnouncement: (bytes: Uint8Array) => Uint8Array;
  now?: () => number;
}

/**
 * The beacon's event loop: 2PC requests and slot ticks go through one serial
 * queue (the coordinator and its log are never touched concurrently); sends
 * happen off the queue.
 */
export class BeaconService {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly runner: ActionRunner;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastAnnounced = { epoch: -1, slot: -Infinity };
  /** Latest epoch whose assignment is known to be in the store. */
  private storedEpoch = -1;
  private readonly now: () => number;

  constructor(private readonly d: ServiceDeps) {
    this.now = d.now ?? Date.now;
    this.runner = new ActionRunner(d.store, (shard, raw) => d.sender.enqueue(shard, raw), (a) => this.observe(a));
  }

  get slot(): number {
    return slotAt(this.d.registry.genesis, this.now());
  }

  get epoch(): number {
    return epochOf(this.d.registry.genesis, Math.max(0, this.slot));
  }

  async start(): Promise<void> {
    const { p2p, registry } = this.d;
    const g = registry.genesis;
    const t = beaconTopics(g.chainId);
    // Subscribing gives gossipsub the topic (mesh, peers); the only valid
    // messages on it are the beacon's own, so anything else is rejected.
    p2p.subscribe(t.epochs, {
      maxBytes: MAX_ANNOUNCEMENT_BYTES,
      validate: (data) => {
        try {
          const a = decodeEpochAnnouncement(data);
          if (a.body.chainId !== g.chainId) return 'reject';
          return registry.backend.verify(g.beacon.publicKey, epochAnnouncementSigningBytes(a.body), a.signature) ? 'accept' : 'reject';
        } catch {
          return 'reject';
        }
      },
    });
    await p2p.handle(t.protocol, { maxInboundStreams: 64, maxOutboundStreams: 64, maxRequestBytes: MAX_REQUEST_BYTES, timeoutMs: 10_000 }, (req, peerId) =>
      this.answer(req, peerId),
    );
    this.d.metrics.undecided.set(this.d.coordinator.undecided);
    this.scheduleNextSlot();
  }

  /** Stop ticking and accepting requests, then let the queue drain. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.d.p2p.unhandle(beaconTopics(this.d.registry.genesis.chainId).protocol).catch(() => undefined);
    await this.queue.catch(() => undefined);
  }

  private run<T>(task: () => Promise<T>): Promise<T> {
    const p = this.queue.then(task);
    this.queue = p.catch((e: unknown) => {
      this.d.log.error('beacon task failed', { error: (e as Error).stack ?? String(e) });
    });
    return p;
  }

  // ---------------------------------------------------------------- 2PC requests

  private async *answer(req: Uint8Array, peerId: string): AsyncIterable<Uint8Array> {
    let ack: XAck;
    try {
      ack = await this.handleRequest(req, peerId);
    } catch (e) {
      this.d.log.error('2PC request handling failed', { peer: peerId, error: (e as Error).stack ?? String(e) });
      ack = { ok: false, code: 'INTERNAL', message: 'internal error' };
    }
    yield encodeXAck(ack);
  }

  async handleRequest(req: Uint8Array, peerId: string): Promise<XAck> {
    const { admitter, metrics, p2p, log } = this.d;
    const r = admitter.admit(req, peerId, this.epoch);
    if (!r.ok) {
      metrics.rejected.inc({ reason: r.code });
      p2p.penalize(peerId, `2pc ${r.code}`);
      log.debug('2PC request refused', { peer: peerId, code: r.code, message: r.message });
      return { ok: false, code: r.code, message: r.message };
    }
    metrics.requests.inc({ type: r.type });
    if (r.type === 'hello') {
      log.debug('validator bound', { validator: r.validator, shard: r.shard, peer: peerId });
      return OK;
    }
    if (r.records.length === 0) return OK;
    try {
      await this.submit(r.records, r.shard, r.height);
    } catch (e) {
      // Not the peer's fault (shutting down, a disk error): it reports again later.
      return { ok: false, code: 'UNAVAILABLE', message: `report not logged: ${(e as Error).message}` };
    }
    return OK;
  }

  /**
   * Feed verified records to the coordinator, at the slot in which they are
   * processed; resolves once their effects are durably logged.
   */
  submit(records: readonly XferRecord[], shard: number, height: number): Promise<void> {
    if (this.stopped) return Promise.reject(new Error('the beacon is stopping'));
    return this.run(async () => {
      const slot = this.slot;
      const actions: CoordinatorAction[] = [];
      for (const rec of records) actions.push(...this.d.coordinator.onRecord(rec, shard, height, slot));
      await this.runner.run(actions);
      this.d.metrics.undecided.set(this.d.coordinator.undecided);
    });
  }

  private observe(a: CoordinatorAction): void {
    const { metrics, log } = this.d;
    if (a.type === 'anomaly') {
      metrics.anomalies.inc();
      log.warn('2PC anomaly', { id: a.id, message: a.message });
    } else if (a.type === 'phase') {
      metrics.phases.inc({ phase: a.phase });
      const e = a.entry;
      if (a.phase === 'decided' && e.decision) {
        metrics.decisions.inc({ outcome: e.decision.outcome });
        log.info('transfer decided', { id: e.id.slice(0, 16), decision: e.decision.outcome, slot: e.decision.slot, ...(e.decision.reason ? { reason: e.decision.reason } : {}) });
      } else {
        log.debug('transfer phase', { id: e.id.slice(0, 16), phase: a.phase });
      }
    }
  }

  // ---------------------------------------------------------------- slots

  private scheduleNextSlot(): void {
    if (this.stopped) return;
    const g = this.d.registry.genesis;
    const now = this.now();
    const slot = slotAt(g, now);
    if (slot >= 0) void this.onSlot(slot).catch(() => undefined);
    const nextStart = g.genesisTime + (slot + 1) * g.slotMs;
    this.timer = setTimeout(() => this.scheduleNextSlot(), Math.max(0, nextStart - now));
  }

  private onSlot(slot: number): Promise<void> {
    this.d.metrics.slot.set(slot);
    return this.run(async () => {
      await this.runner.run(this.d.coordinator.tick(slot));
      this.d.metrics.undecided.set(this.d.coordinator.undecided);
      await this.announce(slot);
    });
  }

  private async announce(slot: number): Promise<void> {
    const { registry, store, p2p, metrics, log } = this.d;
    const epoch = epochOf(registry.genesis, slot);
    metrics.epoch.set(epoch);
    if (epoch === this.lastAnnounced.epoch && slot - this.lastAnnounced.slot < ANNOUNCE_EVERY_SLOTS) return;
    const body = registry.announcement(epoch, slot);
    const bytes = encodeEpochAnnouncement({ body, signature: this.d.signAnnouncement(epochAnnouncementSigningBytes(body)) });
    if (epoch !== this.storedEpoch) {
      if (await store.putEpochIfAbsent(epoch, bytes)) log.info('epoch started', { epoch, startSlot: body.startSlot, seed: toHex(body.seed).slice(0, 16) });
      this.storedEpoch = epoch;
    }
    this.lastAnnounced = { epoch, slot };
    // Publishing can wait on gossip flow control: keep it off the queue.
    void p2p.publish(beaconTopics(registry.genesis.chainId).epochs, bytes).then(
      () => metrics.announcements.inc(),
      (e: unknown) => log.warn('epoch announcement not published', { error: (e as Error).message }),
    );
  }
}
