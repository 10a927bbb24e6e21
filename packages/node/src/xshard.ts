import { bytesEqual, formatAddress, toHex, type UnlockedKey } from '@qnexus/crypto';
import {
  decodeSystemMsg,
  MAX_REPORT_ITEMS,
  MAX_TX_BATCH,
  MAX_TX_BATCH_BYTES,
  QnexusError,
  beaconTopics,
  decodeBlock,
  decodeCertificate,
  decodeTxBatch,
  decodeXAck,
  encodeBeaconRequest,
  encodeXAck,
  epochOf,
  evidenceKey,
  isSystemKind,
  openTx,
  peerBindingSigningBytes,
  shardXProtocol,
  slotAt,
  xferRecordPhase,
  type BeaconRequest,
  type BlockHeader,
  type Certificate,
  type Genesis,
  type ReportItem,
  type SignedPeerBinding,
  type TxEnvelope,
  type VoteEvidence,
  type XAck,
  decodeXferRecord,
  type XferRecord,
} from '@qnexus/types';
import type { StateChanges } from '@qnexus/state';
import { app } from '@qnexus/app';
import { RateLimiter, type P2PNode, type ServeBudget } from '@qnexus/p2p';
import type { Candidate, Chain } from './chain.js';
import type { Engine } from './engine.js';
import type { Logger } from '@qnexus/runtime';
import type { Mempool } from './mempool.js';
import type { Metrics } from './metrics.js';
import { RegistryView } from './registry-view.js';
import type { TxGossip } from './txgossip.js';

/** Beacon entries that prove the sender (the beacon or a relay) is broken or hostile. */
const PEER_FAULT: ReadonlySet<string> = new Set(['TX_MALFORMED', 'TX_TOO_LARGE', 'TX_WRONG_CHAIN', 'TX_WRONG_SCHEME', 'TX_UNKNOWN_KIND', 'XS_UNAUTHORIZED', 'XS_WRONG_SHARD', 'NOT_SYSTEM']);

/** Re-send open records to the beacon every this many slots (they are idempotent there). */
const RESEND_SLOTS = 4;
/** Acknowledged open records are re-reported this rarely (a safety net for a beacon that lost its log). */
const ACKED_RESEND_SLOTS = 16 * RESEND_SLOTS;

/** What of a record the beacon logs: a changed phase is reported again. */
function phaseKey(rec: XferRecord): string {
  return `${rec.role}/${rec.prepare}/${rec.decision}`;
}
/** Re-introduce ourselves (binding) to the beacon every this many slots. */
const HELLO_SLOTS = 8;
/** Automatic evidence forwarding: attempts while the beacon cannot be reached, and the first back-off. */
const EVIDENCE_ATTEMPTS = 4;
const EVIDENCE_BACKOFF_MS = 1_000;
/** Evidence keys remembered for de-duplication (oldest forgotten first). */
const EVIDENCE_SEEN_MAX = 4096;
/** The beacon's final answers remembered, per evidence key and per validator it slashed (oldest forgotten first). */
const EVIDENCE_ANSWERS_MAX = 4096;
/**
 * Evidence relayed to the beacon, per slot, sustained and at once: equivocation is rare, and
 * every request to the beacon counts against this node's serving budget there (the beacon's
 * `beaconServeBudgets` allows for two per slot), which API clients must never exhaust.
 */
const EVIDENCE_RELAYS_PER_SLOT = 1;
const EVIDENCE_RELAY_BURST = 4;
/** The beacon's answer to evidence it already holds, or against a validator it already slashed. */
const DUPLICATE: XAck = { ok: true, code: '', message: 'duplicate 0' };
/** Bound on one request to the beacon (dial included). */
const BEACON_TIMEOUT_MS = 5_000;
/**
 * Bound on the items of one report, in encoded bytes (the beacon reads requests of up to
 * 2 MiB; the header, certificate and binding come on top). Stake records carry a public key,
 * so MAX_REPORT_ITEMS of them would not fit.
 */
const REPORT_ITEMS_BYTES = 1024 * 1024;

/**
 * A shard node's side of cross-shard two-phase commit and of staking.
 *
 * In: the beacon's signed entries (prepare requests, decisions) arrive on this
 * shard's 2PC stream protocol; each goes through mempool admission (beacon
 * signature, shard, applicability) and is gossiped to the rest of the shard
 * like a transaction, so one reachable validator is enough. The beacon's
 * signed registry snapshots arrive on gossip (`registry`, see RegistryView).
 *
 * Out (validators, while their key is a member of this shard's committee in
 * the current epoch): after each finalized block that touched transfer
 * records (any kind: transfers, stake/unstake/fees to the beacon, releases
 * from it), a report to the beacon with the block header, its finality
 * certificate and a Merkle proof of each record in the certified state root.
 * The block's proposer reports every block it proposed, with no items when it
 * touched none: the beacon counts the certificate's precommits for rewards.
 * Open records are re-reported every few slots until decided, so a beacon that
 * restarted (or a lost stream) cannot leave a transfer in limbo.
 *
 * Every node (validator or not) forwards the equivocation evidence its
 * consensus core finds to the beacon, once per (validator, height, round, step).
 */
export class XShard {
  /** The beacon's registry as of its latest verified snapshot. */
  readonly registry: RegistryView;
  private binding: SignedPeerBinding | null = null;
  private readonly self: string | null;
  /** Records the beacon evidently has not seen settle (it re-sent an entry we already applied). */
  private readonly stale = new Set<string>();
  /**
   * Open records the beacon acknowledged (its ack means "logged"), by transfer id: the phase
   * it logged. The periodic re-report skips them while that phase is unchanged; re-sending
   * every open record every few slots, proofs and all, was most of a beacon's work once a slow
   * destination kept hundreds of transfers open. A beacon that lost its log still hears of
   * them: from the safety sweep every ACKED_RESEND_SLOTS, and at once when it sends an entry
   * for a phase already applied here (`stale`).
   */
  private readonly acked = new Map<string, string>();
  /** Evidence already forwarded (evidenceKey), insertion-ordered for eviction. */
  private readonly evidenceSeen = new Set<string>();
  /** The beacon's final answer per evidence key (slashed, duplicate, expired), insertion-ordered for eviction. */
  private readonly evidenceAnswers = new Map<string, XAck>();
  /** Validators the beacon told us it slashed: any further evidence against them is a duplicate there. */
  private readonly slashedAtBeacon = new Set<string>();
  /** Relays in flight by evidence key: concurrent submissions of one piece share one request. */
  private readonly evidenceInFlight = new Map<string, Promise<XAck>>();
  private readonly evidenceRelays: RateLimiter;
  private timer: NodeJS.Timeout | null = null;
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private stopped = false;
  private ticks = 0;
  private readonly protocol: string;
  private readonly beaconProtocol: string;
  private readonly registryTopic: string;

  constructor(
    private readonly chain: Chain,
    private readonly engine: Engine,
    private readonly mempool: Mempool,
    private readonly p2p: P2PNode,
    private readonly txGossip: TxGossip,
    private readonly key: UnlockedKey | null,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    const g = chain.genesis;
    this.protocol = shardXProtocol(g.chainId, chain.shard);
    const bt = beaconTopics(g.chainId);
    this.beaconProtocol = bt.protocol;
    this.registryTopic = bt.registry;
    this.self = key ? formatAddress(key.address) : null;
    // Every newer snapshot names the committees' peers: they (and the beacon) are who we trust.
    this.registry = new RegistryView(g, metrics, log, { backend: chain.backend, trust: (ids) => p2p.setTrustedPeers(ids) });
    const perSec = (EVIDENCE_RELAYS_PER_SLOT * 1000) / g.slotMs;
    this.evidenceRelays = new RateLimiter({ ratePerSec: perSec, burst: EVIDENCE_RELAY_BURST, maxClients: 1 });
  }

  get beaconPeerId(): string {
    return this.chain.genesis.beacon.peerId;
  }

  async start(): Promise<void> {
    const g = this.chain.genesis;
    await this.p2p.handle(
      this.protocol,
      { maxInboundStreams: 16, maxOutboundStreams: 16, maxRequestBytes: MAX_TX_BATCH_BYTES, timeoutMs: 10_000, budget: entriesBudget(g) },
      (req, peer) => this.serveEntries(req, peer),
    );
    this.p2p.subscribe(this.registryTopic, { maxBytes: 4 * 1024 * 1024, validate: (d) => this.registry.validate(d) });
    // Any validator key may become a member of this shard's committee in a later epoch (staking):
    // the binding is made once, and each report/hello checks membership at the time it is sent.
    if (this.key) {
      const binding = { chainId: g.chainId, shard: this.chain.shard, publicKey: this.key.publicKey, peerId: this.p2p.peerId };
      this.binding = { binding, signature: this.chain.backend.sign(this.key.secretKey, peerBindingSigningBytes(binding)) };
      this.engine.commitListeners.push((c, cert, changes) => this.onCommit(c, cert, changes));
      this.mempool.onStaleSystem = (env) => this.onStale(env);
    }
    this.engine.commitListeners.push((_c, _cert, changes) => this.countPhases(changes));
    this.engine.evidenceListeners.push((e) => this.onEvidence(e));
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const t of this.retryTimers) clearTimeout(t);
    this.retryTimers.clear();
  }

  private schedule(): void {
    if (this.stopped) return;
    const g = this.chain.genesis;
    const now = Date.now();
    const slot = slotAt(g, now);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.tick();
      this.schedule();
    }, Math.max(10, g.genesisTime + (slot + 1) * g.slotMs - now + Math.floor(g.slotMs / 2)));
  }

  /** Epoch of the current slot (0 before genesis time). */
  currentEpoch(): number {
    return this.chain.currentEpoch();
  }

  /** Is our validator key a member of this shard's committee in `epoch`? False for full nodes and unknown epochs. */
  isMember(epoch: number): boolean {
    return this.self !== null && this.chain.memberAt(epoch, this.self) !== undefined;
  }

  private tick(): void {
    this.ticks++;
    // Only current committee members speak for the shard (the beacon refuses the others).
    if (!this.binding || !this.isMember(this.currentEpoch())) return;
    if (this.ticks % HELLO_SLOTS === 1) void this.send({ type: 'hello', binding: this.binding }, 'hello');
    if (this.stale.size || this.ticks % RESEND_SLOTS === 0) void this.engine.run(() => this.resendOpen()).catch(() => undefined);
  }

  // ------------------------------------------------------------------ in: beacon entries

  private async *serveEntries(req: Uint8Array, peer: string): AsyncIterable<Uint8Array> {
    yield encodeXAck(await this.admitEntries(req, peer));
  }

  private async admitEntries(req: Uint8Array, peer: string): Promise<XAck> {
    let raws: Uint8Array[];
    try {
      raws = decodeTxBatch(req);
    } catch (e) {
      this.reject(peer, 'batch', 'TX_MALFORMED');
      return { ok: false, code: 'MALFORMED', message: (e as Error).message };
    }
    let firstError: XAck | null = null;
    // Admitted together: each waits for its signature check on the verify pool, and one by one
    // a batch of 64 would queue behind a busy pool 64 times.
    await Promise.all(
      raws.map(async (raw) => {
        let kind = 'unknown';
        try {
          const env = openTx(raw);
          kind = app.kindName(env);
          if (!isSystemKind(env.tx.body.payload.kind)) throw new QnexusError('XS_UNAUTHORIZED', 'only beacon entries (xprepare, xdecision) are accepted on the 2PC protocol');
          const r = await this.mempool.admit(env);
          if (r === 'added') this.txGossip.publish(env.raw);
          this.metrics.xshardReceived.inc({ kind, result: r });
        } catch (e) {
          const code = e instanceof QnexusError ? e.code : 'TX_MALFORMED';
          // A replay of a phase already applied here is normal (the beacon re-sends until it hears back),
          // and so is one for a transfer settled and pruned here since (after an outage longer than the window).
          if (code === 'XS_ALREADY_DECIDED' || code === 'XS_DUPLICATE' || code === 'XS_PRUNED' || code === 'XS_EXPIRED') {
            this.metrics.xshardReceived.inc({ kind, result: 'replay' });
            return;
          }
          this.reject(peer, kind, code);
          firstError ??= { ok: false, code, message: (e as Error).message };
        }
      }),
    );
    return firstError ?? { ok: true, code: '', message: '' };
  }

  private reject(peer: string, kind: string, code: string): void {
    this.metrics.xshardReceived.inc({ kind, result: code });
    this.log.warn('rejected 2PC entry', { peer, kind, code });
    if (PEER_FAULT.has(code)) this.p2p.penalize(peer, `2pc:${code}`);
  }

  // ------------------------------------------------------------------ out: reports

  private onStale(env: TxEnvelope): void {
    if (!isSystemKind(env.tx.body.payload.kind)) return;
    const id = toHex(decodeSystemMsg(env.tx.body.payload).xfer.id);
    this.stale.add(id);
    this.acked.delete(id);
  }

  private countPhases(changes: StateChanges): void {
    for (const rec of changes.xfers.values()) {
      const phase = xferRecordPhase(rec);
      this.metrics.xshardPhases.inc({ phase: `${rec.role}-${phase}` });
      if (phase === 'aborted') this.metrics.xshardAborts.inc({ role: rec.role });
    }
  }

  /**
   * Report the records this block touched, with the block's own certificate (we are inside the
   * commit). The proposer also reports a block that touched none: its certificate is the
   * participation record the beacon computes rewards from.
   */
  private onCommit(c: Candidate, cert: Certificate, changes: StateChanges): void {
    const ids = [...changes.xfers.keys()];
    for (const id of ids) this.stale.delete(id);
    const proposed = this.key !== null && bytesEqual(c.block.header.proposer, this.key.address);
    if (!ids.length && !proposed) return;
    // Members of the block's epoch report it even if the epoch has just ended for them.
    if (!this.isMember(this.currentEpoch()) && !this.isMember(epochOf(this.chain.genesis, cert.round))) return;
    this.report(c.block.header, cert, ids);
  }

  /** Runs on the engine queue, so the state stays at the head while we read its block and certificate. */
  private async resendOpen(): Promise<void> {
    const head = this.chain.headHeight;
    if (head === 0) return;
    const ids = new Set(this.stale);
    this.stale.clear();
    if (this.ticks % RESEND_SLOTS === 0) {
      // Every open record the beacon has not acknowledged in its current phase, whatever its kind
      // or counterpart (another shard or the beacon); all of them in the safety sweep.
      const sweep = this.ticks % ACKED_RESEND_SLOTS === 0;
      const open = new Set<string>();
      for (const rec of this.chain.state.xferRecords()) {
        if (rec.decision !== 'none') continue;
        const id = toHex(rec.info.id);
        open.add(id);
        if (rec.preparedHeight + RESEND_SLOTS <= head && (sweep || this.acked.get(id) !== phaseKey(rec))) ids.add(id);
      }
      for (const id of this.acked.keys()) if (!open.has(id)) this.acked.delete(id);
    }
    if (!ids.size) return;
    const [raw, certRaw] = await Promise.all([this.chain.store.blockAtHeight(head), this.chain.store.certificate(head)]);
    if (!raw || !certRaw) return;
    const header = decodeBlock(raw).header;
    if (!bytesEqual(header.stateRoot, this.chain.headStateRoot)) return;
    this.report(header, decodeCertificate(certRaw), [...ids]);
  }

  /**
   * Send the records (proved against the head state) in reports of at most MAX_REPORT_ITEMS
   * items and REPORT_ITEMS_BYTES of them; one report with no items if there are none.
   */
  private report(header: BlockHeader, certificate: Certificate, ids: string[]): void {
    const items: ReportItem[] = ids.length ? this.chain.state.proveXfers(ids) : [];
    const binding = this.binding!;
    if (!items.length) {
      void this.send({ type: 'report', report: { binding, header, certificate, items: [] } }, 'block');
      return;
    }
    for (const chunk of reportChunks(items)) {
      void this.send({ type: 'report', report: { binding, header, certificate, items: chunk } }, 'report').then((ok) => {
        if (!ok) return;
        for (const it of chunk) {
          const rec = decodeXferRecord(it.record);
          if (rec.decision === 'none') this.acked.set(toHex(rec.info.id), phaseKey(rec));
        }
      });
    }
  }

  /** One request to the beacon over its 2PC stream; throws when it cannot be reached or does not answer. */
  async requestBeacon(req: BeaconRequest): Promise<XAck> {
    let ack: XAck | null = null;
    for await (const frame of this.p2p.request(this.beaconPeerId, this.beaconProtocol, encodeBeaconRequest(req), { timeoutMs: BEACON_TIMEOUT_MS, maxResponseFrameBytes: 4096, maxFrames: 1 })) {
      ack = decodeXAck(frame);
    }
    if (!ack) throw new Error('the beacon sent no answer');
    return ack;
  }

  /** Send; true when the beacon acknowledged it. */
  private async send(req: BeaconRequest, kind: string): Promise<boolean> {
    try {
      const ack = await this.requestBeacon(req);
      this.metrics.xshardSent.inc({ kind, result: ack.ok ? 'ok' : ack.code });
      if (!ack.ok) this.log.warn('beacon refused our 2PC message', { kind, code: ack.code, message: ack.message });
      return ack.ok;
    } catch (e) {
      this.metrics.xshardSent.inc({ kind, result: 'unreachable' });
      this.log.debug('could not reach the beacon', { kind, error: (e as Error).message });
      return false;
    }
  }

  // ------------------------------------------------------------------ out: evidence

  /**
   * The beacon's answer to verified evidence (`POST /v1/evidence`, and our own core's). When it
   * already answered for this evidence key (a duplicate once slashed or known, or expired) or
   * slashed its validator, what it would answer again, without asking; otherwise one request,
   * shared by concurrent callers, within the relay budget. The caller verifies the evidence
   * first (signatures, committee of its epoch, plausible round): the beacon refuses nothing we
   * relay as invalid, and whatever a client sends costs us at most this budget's requests.
   * Throws QnexusError NODE_BUSY beyond the budget, and an Error when the beacon cannot be reached.
   */
  relayEvidence(e: VoteEvidence): Promise<XAck> {
    const k = evidenceKey(e);
    const known = this.rememberedEvidence(e);
    if (known) return Promise.resolve(known);
    const running = this.evidenceInFlight.get(k);
    if (running) return running;
    if (!this.evidenceRelays.take('beacon').ok) {
      this.log.debug('evidence relay budget spent; not asking the beacon now', { evidence: k });
      return Promise.reject(new QnexusError('NODE_BUSY', 'evidence is relayed to the beacon at a bounded rate; retry in a few slots'));
    }
    const p = this.submitEvidence(e)
      .then((ack) => {
        this.rememberAnswer(k, formatAddress(e.first.body.validator), ack);
        return ack;
      })
      .finally(() => this.evidenceInFlight.delete(k));
    this.evidenceInFlight.set(k, p);
    return p;
  }

  /** What the beacon already answered for this evidence (its key, or its validator once slashed), if anything. */
  rememberedEvidence(e: VoteEvidence): XAck | undefined {
    const a = this.evidenceAnswers.get(evidenceKey(e));
    if (a) return a;
    if (this.slashedAtBeacon.has(formatAddress(e.first.body.validator))) return DUPLICATE;
    return undefined;
  }

  /**
   * Final answers only: slashed, duplicate, expired; anything else (unavailable, internal) may
   * change. Remembered as the beacon would answer the same evidence again: once it slashed or
   * knew it, a duplicate.
   */
  private rememberAnswer(k: string, validator: string, ack: XAck): void {
    if (!ack.ok && ack.code !== 'EVIDENCE_EXPIRED') return;
    const evict = <T>(c: Map<string, T> | Set<string>) => {
      if (c.size < EVIDENCE_ANSWERS_MAX) return;
      const first = c.keys().next();
      if (!first.done) c.delete(first.value);
    };
    evict(this.evidenceAnswers);
    this.evidenceAnswers.set(k, ack.ok ? DUPLICATE : ack);
    // Slashed or a duplicate: the validator is slashed at the beacon, which says "duplicate" to any more evidence.
    if (ack.ok) {
      evict(this.slashedAtBeacon);
      this.slashedAtBeacon.add(validator);
    }
  }

  /**
   * Send one piece of evidence to the beacon and return its answer. Throws when the beacon
   * cannot be reached; counted either way. Unchecked and unbudgeted: callers go through `relayEvidence`.
   */
  private async submitEvidence(e: VoteEvidence): Promise<XAck> {
    try {
      const ack = await this.requestBeacon({ type: 'evidence', evidence: e });
      this.metrics.evidenceForwarded.inc({ result: ack.ok ? 'ok' : ack.code || 'refused' });
      return ack;
    } catch (err) {
      this.metrics.evidenceForwarded.inc({ result: 'unreachable' });
      throw err;
    }
  }

  /** Evidence found by our consensus core: forward each piece once, retrying while the beacon is unreachable. */
  private onEvidence(e: VoteEvidence): void {
    const k = evidenceKey(e);
    if (this.evidenceSeen.has(k)) return;
    if (this.evidenceSeen.size >= EVIDENCE_SEEN_MAX) {
      const first = this.evidenceSeen.values().next();
      if (!first.done) this.evidenceSeen.delete(first.value);
    }
    this.evidenceSeen.add(k);
    void this.forwardEvidence(e, k, 1);
  }

  private async forwardEvidence(e: VoteEvidence, k: string, attempt: number): Promise<void> {
    if (this.stopped) return;
    try {
      const ack = await this.relayEvidence(e);
      // Any answer is final: the beacon decided (slashed, already known, or refused with a code).
      if (ack.ok) this.log.info('beacon accepted equivocation evidence', { evidence: k, code: ack.code, message: ack.message });
      else this.log.warn('beacon refused equivocation evidence', { evidence: k, code: ack.code, message: ack.message });
    } catch (err) {
      if (attempt >= EVIDENCE_ATTEMPTS) {
        this.log.warn('could not forward equivocation evidence to the beacon', { evidence: k, attempts: attempt, error: (err as Error).message });
        return;
      }
      const t = setTimeout(() => {
        this.retryTimers.delete(t);
        void this.forwardEvidence(e, k, attempt + 1);
      }, EVIDENCE_BACKOFF_MS * 2 ** (attempt - 1));
      t.unref();
      this.retryTimers.add(t);
    }
  }
}

/**
 * What one peer may send us on the 2PC protocol per second (p2p `ServeBudget`). Only the
 * beacon has anything to send: per slot at most a prepare request and a decision for every
 * transfer the shards' blocks carried (maxBlockTxs per block per shard), in batches of
 * MAX_TX_BATCH, plus its re-sends; four times that, scaled by the slot length. Acks are small.
 */
export function entriesBudget(g: Genesis): ServeBudget {
  const batchesPerSlot = Math.ceil((2 * g.maxBlockTxs * g.shardCount) / MAX_TX_BATCH) + 1;
  const requestsPerSec = Math.max(20, Math.ceil((4 * batchesPerSlot * 1000) / g.slotMs));
  return { requestsPerSec, requestBurst: 4 * requestsPerSec, bytesPerSec: requestsPerSec * 1024 };
}

/** Encoded size of a report item: record (u32 length + bytes), proof (u32 node count, each node u32 length + bytes). */
const itemBytes = (it: ReportItem): number => 4 + it.record.length + 4 + it.proof.reduce((n, node) => n + 4 + node.length, 0);

/** Items in consecutive chunks of at most MAX_REPORT_ITEMS and REPORT_ITEMS_BYTES (an item is never split; one alone always fits). */
export function reportChunks(items: readonly ReportItem[]): ReportItem[][] {
  const out: ReportItem[][] = [];
  let cur: ReportItem[] = [];
  let bytes = 0;
  for (const it of items) {
    const n = itemBytes(it);
    if (cur.length && (cur.length >= MAX_REPORT_ITEMS || bytes + n > REPORT_ITEMS_BYTES)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(it);
    bytes += n;
  }
  if (cur.length) out.push(cur);
  return out;
}
