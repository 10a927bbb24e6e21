import { formatAddress, toHex } from '@qnexus/crypto';
import type { P2PNode, ServeBudget } from '@qnexus/p2p';
import {
  MAX_ANNOUNCEMENT_BYTES,
  MAX_REPORT_ITEMS,
  QnexusError,
  VALIDATOR_STATUSES,
  beaconTopics,
  encodeEpochAnnouncement,
  encodeRegistrySnapshot,
  encodeXAck,
  epochAnnouncementSigningBytes,
  epochOf,
  registrySnapshotSigningBytes,
  slotAt,
  type Genesis,
  type VoteEvidence,
  type XAck,
  type XferRecord,
} from '@qnexus/types';
import type { Admitter } from './admission.js';
import { DEADLINE_REASON, type Coordinator, type CoordinatorAction, type XferEntry } from './coordinator.js';
import type { Logger } from '@qnexus/runtime';
import type { Metrics } from './metrics.js';
import type { EvidenceResult, Registry } from './registry.js';
import type { ShardSender } from './sender.js';
import type { BeaconStore, RegistryWrite } from './store.js';

/** Re-publish the current epoch's announcement (and the registry snapshot) this often (slots). */
const ANNOUNCE_EVERY_SLOTS = 4;
export const MAX_REQUEST_BYTES = 2 * 1024 * 1024;
/** Most event-loop time one slice of a report's records may take before the beacon yields. */
const SLICE_MS = 10;
/** Gossip cap of announcements and snapshots: the p2p message cap (1 MiB; ≈ 390 ML-DSA-44 members, ample for a devnet). */
export const MAX_BEACON_GOSSIP_BYTES = 1024 * 1024;
const MAX_SIGNED_ANNOUNCEMENT_BYTES = Math.min(MAX_BEACON_GOSSIP_BYTES, MAX_ANNOUNCEMENT_BYTES + 8 * 1024);
const MAX_SNAPSHOT_BYTES = MAX_BEACON_GOSSIP_BYTES;
const OK: XAck = { ok: true, code: '', message: '' };

/**
 * What one peer may ask of the beacon's stream protocols per second (p2p `ServeBudget`), with
 * room to spare over an honest validator. Per slot a validator sends at most: the proposer's
 * report, the reports of a block that touched records (MAX_REPORT_ITEMS per report, up to
 * maxBlockTxs transactions plus 512 beacon entries), as many re-sends of open records every
 * RESEND slots, a hello every 8 slots, and the evidence its node relays (rate-limited there
 * to a few per slot). Four times that, scaled by the slot length, in requests per second;
 * bursts of 4 s. Acks are < 1 KiB. Epoch fetches: a node asks for an epoch once per slot
 * while it lacks it (sync asks its serving peer first), announcements are ≤ 1 MiB.
 */
export function beaconServeBudgets(g: Genesis): { requests: ServeBudget; epochFetch: ServeBudget } {
  const perSec = (perSlot: number) => Math.ceil((perSlot * 1000) / g.slotMs);
  const reportChunks = Math.ceil((g.maxBlockTxs + 512) / MAX_REPORT_ITEMS);
  const requestsPerSec = Math.max(20, perSec(4 * (2 + 2 * reportChunks + 2)));
  const fetchesPerSec = Math.max(10, perSec(4));
  return {
    requests: { requestsPerSec, requestBurst: 4 * requestsPerSec, bytesPerSec: requestsPerSec * 1024 },
    epochFetch: { requestsPerSec: fetchesPerSec, requestBurst: 4 * fetchesPerSec, bytesPerSec: 4 * MAX_BEACON_GOSSIP_BYTES, globalBytesPerSec: 32 * MAX_BEACON_GOSSIP_BYTES },
  };
}

/**
 * Performs coordinator actions, possibly of many events at once (a group
 * commit): every `persist` is written in ONE fsynced LevelDB batch, together
 * with whatever the registry changed meanwhile (`registryWrite`), and only
 * then is any `send` handed to the network. This is the "log before send"
 * rule (a send never goes out before the log entries of its own event and of
 * every earlier one are durable); a registry change that accompanies a
 * decision lands in the same batch as its log entry. Anomalies and phases are
 * observed (metrics, logs) at once. Returns the number of entries written.
 */
export class ActionRunner {
  constructor(
    private readonly store: { putEntries(entries: Iterable<XferEntry>, reg?: RegistryWrite): Promise<void> },
    private readonly send: (shard: number, raw: Uint8Array) => void,
    private readonly observe: (a: CoordinatorAction) => void = () => undefined,
    private readonly registryWrite: () => RegistryWrite | undefined = () => undefined,
  ) {}

  async run(actions: readonly CoordinatorAction[]): Promise<number> {
    const pending = new Map<string, XferEntry>();
    const sends: { shard: number; raw: Uint8Array }[] = [];
    for (const a of actions) {
      if (a.type === 'persist') pending.set(a.entry.id, a.entry);
      else if (a.type === 'send') sends.push(a);
      else this.observe(a);
    }
    // Taken synchronously with the group, so the batch holds every registry change made so far.
    const reg = this.registryWrite();
    if (pending.size > 0 || reg) await this.store.putEntries(pending.values(), reg);
    for (const a of sends) this.send(a.shard, a.raw);
    return pending.size;
  }
}

/** Events applied since the last write began, waiting for the next one. */
interface Group {
  actions: CoordinatorAction[];
  waiters: { resolve: () => void; reject: (e: unknown) => void }[];
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
 * The beacon's event loop. Every event (a verified report, evidence, a slot
 * tick) is applied to the coordinator and the registry at once, synchronously
 * (both are pure state machines: nothing else runs in between), and its
 * actions join the open group; one writer makes each group durable in a single
 * fsynced batch and only then performs its sends and acknowledges its events
 * (group commit). While a write is in flight the next group fills, so the
 * beacon pays one fsync per group, not per report, and a slot tick, a
 * committee freeze or an epoch announcement never waits behind 2PC traffic:
 * at most behind the one write in flight. The lag of each tick (wall clock at
 * its durable end minus its slot's start) is `qnexus_beacon_slot_lag_seconds`.
 */
export class BeaconService {
  private group: Group = { actions: [], waiters: [] };
  private writing: Promise<void> | null = null;
  /** Set when a log write failed: nothing more is applied, sent or acknowledged (fail-stop). */
  private failed: Error | null = null;
  /** The newest slot whose tick is durable, and its lag (ms). */
  private processed = { slot: -1, lagMs: 0 };
  private readonly runner: ActionRunner;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastAnnounced = { epoch: -1, slot: -Infinity };
  private lastSnapshotSlot = -Infinity;
  /** What the trusted peer set was computed from (see updateTrusted). */
  private trustedKey = '';
  private readonly now: () => number;

  constructor(private readonly d: ServiceDeps) {
    this.now = d.now ?? Date.now;
    // No tick is durable yet: -1, not the gauge's 0 (which would read as "slot 0", far behind).
    d.metrics.processedSlot.set(-1);
    this.runner = new ActionRunner(
      d.store,
      (shard, raw) => d.sender.enqueue(shard, raw),
      (a) => this.observe(a),
      () => this.registryWrite(),
    );
  }

  /** The registry's pending changes, with each newly frozen epoch's announcement signed (once: these bytes are stored and served). */
  private registryWrite(): RegistryWrite | undefined {
    const { registry } = this.d;
    if (!registry.changed) return undefined;
    const changes = registry.takeChanges();
    const announcements = new Map<number, Uint8Array>();
    const slot = Math.max(0, this.slot);
    for (const fe of changes.frozen) {
      const body = registry.announcement(fe.epoch, slot);
      announcements.set(fe.epoch, encodeEpochAnnouncement({ body, signature: this.d.signAnnouncement(epochAnnouncementSigningBytes(body)) }));
    }
    return { changes, announcements };
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
    // Subscribing gives gossipsub the topic (mesh, peers). The beacon is the only author of
    // these messages: it needs nobody's copy, so whatever arrives is ignored unread (checking
    // it would only let anyone spend our CPU; ignoring penalises nobody who relays ours).
    p2p.subscribe(t.epochs, { maxBytes: MAX_SIGNED_ANNOUNCEMENT_BYTES, validate: () => 'ignore' });
    p2p.subscribe(t.registry, { maxBytes: MAX_SNAPSHOT_BYTES, validate: () => 'ignore' });
    const budgets = beaconServeBudgets(g);
    await p2p.handle(t.protocol, { maxInboundStreams: 64, maxOutboundStreams: 64, maxRequestBytes: MAX_REQUEST_BYTES, timeoutMs: 10_000, budget: budgets.requests }, (req, peerId) =>
      this.answer(req, peerId),
    );
    await p2p.handle(t.epochFetch, { maxInboundStreams: 32, maxOutboundStreams: 32, maxRequestBytes: 8, timeoutMs: 5_000, budget: budgets.epochFetch }, (req) =>
      this.serveEpoch(req),
    );
    // A fresh registry (genesis validators, epoch 0) is written before anything depends on it.
    await this.commit([]);
    this.updateGauges();
    this.d.metrics.undecided.set(this.d.coordinator.undecided);
    this.scheduleNextSlot();
  }

  /** `epochFetch`: request u64 BE epoch; response one frame with the stored signed announcement, or no frame if unknown. */
  private async *serveEpoch(req: Uint8Array): AsyncIterable<Uint8Array> {
    if (req.length !== 8) return;
    const epoch = Number(new DataView(req.buffer, req.byteOffset, 8).getBigUint64(0));
    if (!Number.isSafeInteger(epoch) || epoch >= this.d.registry.frozenNext) return;
    const bytes = await this.d.store.epochAnnouncement(epoch);
    if (bytes) yield bytes;
  }

  /** Stop ticking and accepting requests, then let the writer finish what was applied. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const t = beaconTopics(this.d.registry.genesis.chainId);
    await this.d.p2p.unhandle(t.protocol).catch(() => undefined);
    await this.d.p2p.unhandle(t.epochFetch).catch(() => undefined);
    while (this.writing) await this.writing;
  }

  /** The newest slot whose tick is durable, and how late (ms after its start) it became so. */
  get processedSlot(): { slot: number; lagMs: number } {
    return { ...this.processed };
  }

  /**
   * Join already-applied actions to the open group; resolves once the group is
   * durable and its sends are handed to the network (rejects if the write failed).
   */
  private commit(actions: readonly CoordinatorAction[]): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    const g = this.group;
    for (const a of actions) g.actions.push(a);
    const done = new Promise<void>((resolve, reject) => g.waiters.push({ resolve, reject }));
    this.writing ??= this.writeGroups().finally(() => (this.writing = null));
    return done;
  }

  /** The single writer: one fsynced batch per group, until no event is waiting. */
  private async writeGroups(): Promise<void> {
    const { metrics, log } = this.d;
    // Let the events that arrived in the same turn of the event loop join the first group.
    await new Promise<void>((r) => setImmediate(r));
    while (this.group.waiters.length > 0) {
      const g = this.group;
      this.group = { actions: [], waiters: [] };
      const t0 = performance.now();
      try {
        const entries = await this.runner.run(g.actions);
        metrics.groupWrites.inc();
        metrics.groupEvents.observe(g.waiters.length);
        metrics.groupEntries.observe(entries);
        metrics.writeSeconds.observe((performance.now() - t0) / 1000);
        for (const w of g.waiters) w.resolve();
      } catch (e) {
        // Fail-stop: the events are applied in memory but not logged, so nothing may be sent
        // from that state (a later tick would re-send a decision that is not durable). Stop
        // ticking and refuse everything; a restart rebuilds from the durable log.
        this.failed = e instanceof Error ? e : new Error(String(e));
        this.stopped = true;
        clearTimeout(this.timer);
        log.error('beacon log write failed: the beacon stops coordinating until it is restarted', { events: g.waiters.length, error: this.failed.stack ?? String(e) });
        for (const w of g.waiters) w.reject(e);
        for (const w of this.group.waiters) w.reject(e);
        this.group = { actions: [], waiters: [] };
        return;
      }
    }
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
      // Only what proves the sender itself misbehaved (see Admission): an honest node's
      // momentarily different view of the epochs must not get it banned.
      if (r.fault) p2p.penalize(peerId, `2pc ${r.code}`);
      log.debug('2PC request refused', { peer: peerId, code: r.code, message: r.message });
      return { ok: false, code: r.code, message: r.message };
    }
    metrics.requests.inc({ type: r.type });
    if (r.type === 'hello' || r.type === 'report') this.updateTrusted();
    if (r.type === 'hello') {
      log.debug('validator bound', { validator: r.validator, shard: r.shard, peer: peerId });
      return OK;
    }
    if (r.type === 'evidence') {
      try {
        const res = await this.submitEvidence(r.evidence);
        return { ok: true, code: '', message: `${res.result} ${res.slashed}` };
      } catch (e) {
        if (!(e instanceof QnexusError)) return { ok: false, code: 'UNAVAILABLE', message: `evidence not processed: ${(e as Error).message}` };
        // Evidence is self-authenticating and anyone may pass it on: whoever sent it merely
        // relays it (a shard node forwards what API clients give it), so a refusal is an
        // answer, never a penalty. It costs the sender its serving budget, and us at most two
        // signature checks (the registry checks everything else first).
        if (e.code === 'EVIDENCE_INVALID') metrics.rejected.inc({ reason: e.code });
        log.debug('evidence refused', { peer: peerId, code: e.code, message: e.message });
        return { ok: false, code: e.code, message: e.message };
      }
    }
    try {
      await this.submit(r.records, r.shard, r.height, { round: r.round, signers: r.signers, blockHash: r.blockHash, slot: r.slot });
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
  submit(
    records: readonly XferRecord[],
    shard: number,
    height: number,
    certified?: { round: number; signers: readonly string[]; blockHash?: Uint8Array; slot?: number },
  ): Promise<void> {
    if (this.stopped) return Promise.reject(new Error('the beacon is stopping'));
    if (certified) this.d.registry.recordParticipation(shard, height, certified.round, certified.signers);
    // The shard's head as registry snapshots show it to every node (GET /v1/shards).
    if (certified?.blockHash && certified.slot !== undefined) this.d.registry.recordHead({ shard, height, blockHash: certified.blockHash, slot: certified.slot, round: certified.round });
    return this.applyRecords(records, shard, height);
  }

  /**
   * Apply records in slices of at most SLICE_MS of work (a record can cost an ML-DSA signature:
   * a new transfer's prepare request, a decision), each slice joining the open group as soon
   * as it is applied, and yield to the event loop between slices: after a restart every shard
   * re-reports its open records at once, and signing them in one stretch froze the beacon
   * (its slot ticks and API included) for seconds. Joining per slice keeps "log before send":
   * a later event that touches the same transfer lands in the same or a later group.
   */
  private async applyRecords(records: readonly XferRecord[], shard: number, height: number): Promise<void> {
    const written: Promise<void>[] = [];
    for (let i = 0; i < records.length || written.length === 0; ) {
      if (this.stopped) throw new Error('the beacon is stopping');
      const actions: CoordinatorAction[] = [];
      const t0 = performance.now();
      const slot = this.slot;
      while (i < records.length && performance.now() - t0 < SLICE_MS) actions.push(...this.d.coordinator.onRecord(records[i++]!, shard, height, slot));
      const w = this.commit(actions);
      w.catch(() => undefined); // handled by Promise.all below; meanwhile not an unhandled rejection
      written.push(w);
      if (i < records.length) await new Promise<void>((r) => setImmediate(r));
    }
    this.d.metrics.undecided.set(this.d.coordinator.undecided);
    if (records.length > 0) this.updateGauges();
    await Promise.all(written);
  }

  /**
   * Verify evidence and slash; durable before it resolves. Throws
   * EVIDENCE_INVALID / EVIDENCE_EXPIRED (QnexusError) for evidence that does not slash.
   */
  submitEvidence(ev: VoteEvidence): Promise<EvidenceResult> {
    if (this.stopped) return Promise.reject(new Error('the beacon is stopping'));
    const { registry, metrics, log } = this.d;
    let res: EvidenceResult;
    try {
      res = registry.submitEvidence(ev);
    } catch (e) {
      if (e instanceof QnexusError) metrics.evidence.inc({ result: e.code });
      return Promise.reject(e);
    }
    return this.commit([]).then(() => {
      metrics.evidence.inc({ result: res.result });
      if (res.result === 'slashed') {
        metrics.slashings.inc();
        log.warn('validator slashed for equivocation', { validator: res.validator, slashed: res.slashed.toString() });
      }
      this.updateGauges();
      return res;
    });
  }

  /**
   * Trust (reserved connection slots, mesh preference) the peers bound by members of the
   * current and next committees; recomputed only when the epoch, the frozen epochs or a
   * binding changed.
   */
  private updateTrusted(): void {
    const { registry, p2p, metrics } = this.d;
    const epoch = this.epoch;
    const key = `${epoch}/${registry.frozenNext}/${registry.bindingsVersion}`;
    if (key === this.trustedKey) return;
    this.trustedKey = key;
    const peers = new Set(registry.memberPeers(epoch).values());
    p2p.setTrustedPeers(peers);
    metrics.trustedPeers.set(peers.size);
  }

  private updateGauges(): void {
    const { registry, metrics } = this.d;
    const counts = new Map<string, number>(VALIDATOR_STATUSES.map((s) => [s, 0]));
    for (const v of registry.all()) counts.set(v.status, counts.get(v.status)! + 1);
    for (const [status, n] of counts) metrics.validators.set({ status }, n);
    metrics.bonded.set(Number(registry.bonded()));
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
        if (e.decision.outcome === 'abort') metrics.aborts.inc({ reason: abortReason(e.decision.reason) });
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

  private async onSlot(slot: number): Promise<void> {
    const { registry, coordinator, metrics, log } = this.d;
    metrics.slot.set(slot);
    const actions = coordinator.tick(slot);
    const fx = registry.onSlot(slot);
    for (const info of fx.releases) actions.push(...coordinator.startRelease(info, slot));
    // Durable before anything is announced: releases' log entries, frozen epochs (with their
    // signed announcements), status changes, rewards; in the group being filled, so behind at
    // most the one write in flight.
    await this.commit(actions);
    const g = registry.genesis;
    const lagMs = Math.max(0, this.now() - (g.genesisTime + slot * g.slotMs));
    this.processed = { slot: Math.max(this.processed.slot, slot), lagMs };
    metrics.processedSlot.set(this.processed.slot);
    metrics.slotLag.set(lagMs / 1000);
    for (const fe of fx.frozen) {
      log.info('epoch frozen', { epoch: fe.epoch, startSlot: fe.epoch * g.epochLength, members: fe.shards.map((s) => s.committee.validators.length) });
    }
    for (const e of fx.started) log.info('epoch started', { epoch: e, seed: toHex(registry.seed(e)).slice(0, 16) });
    for (const r of fx.rewarded) {
      metrics.minted.inc(Number(r.minted));
      log.info('epoch rewards', { epoch: r.epoch, minted: r.minted.toString() });
    }
    for (const info of fx.releases) log.info('release started', { validator: formatAddress(info.from), amount: info.amount.toString(), shard: info.dstShard });
    metrics.undecided.set(coordinator.undecided);
    this.updateGauges();
    this.updateTrusted();
    await this.announce(slot, fx.frozen.map((fe) => fe.epoch));
  }

  /**
   * Gossip: a newly frozen epoch at once (`frozenNow`), and with the current epoch every
   * ANNOUNCE_EVERY_SLOTS slots (an epoch is frozen half an epoch before it starts, so a node
   * sees it several times before it needs it, and fetches it if it missed them all) and at an
   * epoch's start; the registry snapshot every ANNOUNCE_EVERY_SLOTS slots. It used to re-send
   * the frozen next epoch every slot: on an idle devnet, one signature here and a gossiped
   * ≈ 12 KB message through every node per slot for nothing they lacked. Each gossip copy
   * carries the current issuedSlot (distinct gossip ids); the stored bytes (served by
   * epochFetch) stay the ones signed at freeze.
   */
  private async announce(slot: number, frozenNow: readonly number[]): Promise<void> {
    const { registry, p2p, metrics, log } = this.d;
    const t = beaconTopics(registry.genesis.chainId);
    const epoch = epochOf(registry.genesis, slot);
    metrics.epoch.set(epoch);
    const epochs: number[] = [];
    if (epoch !== this.lastAnnounced.epoch || slot - this.lastAnnounced.slot >= ANNOUNCE_EVERY_SLOTS) {
      epochs.push(epoch);
      this.lastAnnounced = { epoch, slot };
      for (let e = epoch + 1; e < registry.frozenNext; e++) epochs.push(e);
    } else for (const e of frozenNow) if (e > epoch) epochs.push(e);
    for (const e of epochs) {
      if (!registry.epoch(e)) continue;
      const body = registry.announcement(e, slot);
      const bytes = encodeEpochAnnouncement({ body, signature: this.d.signAnnouncement(epochAnnouncementSigningBytes(body)) });
      // Publishing can wait on gossip flow control: keep it off the queue.
      void p2p.publish(t.epochs, bytes).then(
        () => metrics.announcements.inc(),
        (e: unknown) => log.debug('epoch announcement not published', { error: (e as Error).message }),
      );
    }
    if (slot - this.lastSnapshotSlot >= ANNOUNCE_EVERY_SLOTS) {
      this.lastSnapshotSlot = slot;
      const body = registry.snapshot(slot);
      const bytes = encodeRegistrySnapshot({ body, signature: this.d.signAnnouncement(registrySnapshotSigningBytes(body)) });
      void p2p.publish(t.registry, bytes).catch((e: unknown) => log.debug('registry snapshot not published', { error: (e as Error).message }));
    }
  }
}

/** A bounded label for an abort's free-form reason: deadline, adopted (from a shard's decision) or refused. */
export function abortReason(reason: string): 'deadline' | 'adopted' | 'refused' {
  // 'deadline': what logs written before the deadline rule (presumed abort) hold.
  if (reason === DEADLINE_REASON || reason === 'deadline') return 'deadline';
  if (reason.startsWith('adopted')) return 'adopted';
  return 'refused';
}
