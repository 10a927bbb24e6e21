import { bytesEqual, formatAddress, toHex, type UnlockedKey } from '@qnexus/crypto';
import {
  MAX_REPORT_ITEMS,
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
  type ReportItem,
  type SignedPeerBinding,
  type TxEnvelope,
  type VoteEvidence,
  type XAck,
} from '@qnexus/types';
import type { StateChanges } from '@qnexus/state';
import type { P2PNode } from '@qnexus/p2p';
import type { Candidate, Chain } from './chain.js';
import type { Engine } from './engine.js';
import type { Logger } from './log.js';
import type { Mempool } from './mempool.js';
import type { Metrics } from './metrics.js';
import { RegistryView } from './registry-view.js';
import type { TxGossip } from './txgossip.js';

/** Beacon entries that prove the sender (the beacon or a relay) is broken or hostile. */
const PEER_FAULT: ReadonlySet<string> = new Set(['TX_MALFORMED', 'TX_TOO_LARGE', 'TX_WRONG_CHAIN', 'TX_WRONG_SCHEME', 'TX_UNKNOWN_KIND', 'XS_UNAUTHORIZED', 'XS_WRONG_SHARD', 'NOT_SYSTEM']);

/** Re-send open records to the beacon every this many slots (they are idempotent there). */
const RESEND_SLOTS = 4;
/** Re-introduce ourselves (binding) to the beacon every this many slots. */
const HELLO_SLOTS = 8;
/** Automatic evidence forwarding: attempts while the beacon cannot be reached, and the first back-off. */
const EVIDENCE_ATTEMPTS = 4;
const EVIDENCE_BACKOFF_MS = 1_000;
/** Evidence keys remembered for de-duplication (oldest forgotten first). */
const EVIDENCE_SEEN_MAX = 4096;
/** Bound on one request to the beacon (dial included). */
const BEACON_TIMEOUT_MS = 5_000;

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
  /** Evidence already forwarded (evidenceKey), insertion-ordered for eviction. */
  private readonly evidenceSeen = new Set<string>();
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
    this.registry = new RegistryView(g, metrics, log, chain.backend);
  }

  get beaconPeerId(): string {
    return this.chain.genesis.beacon.peerId;
  }

  async start(): Promise<void> {
    const g = this.chain.genesis;
    await this.p2p.handle(this.protocol, { maxInboundStreams: 16, maxOutboundStreams: 16, maxRequestBytes: MAX_TX_BATCH_BYTES, timeoutMs: 10_000 }, (req, peer) =>
      this.serveEntries(req, peer),
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
          kind = env.tx.body.payload.kind;
          if (!isSystemKind(env.tx.body.payload.kind)) throw new QnexusError('XS_UNAUTHORIZED', 'only beacon entries (xprepare, xdecision) are accepted on the 2PC protocol');
          const r = await this.mempool.admit(env);
          if (r === 'added') this.txGossip.publish(env.raw);
          this.metrics.xshardReceived.inc({ kind, result: r });
        } catch (e) {
          const code = e instanceof QnexusError ? e.code : 'TX_MALFORMED';
          // A replay of a phase already applied here is normal (the beacon re-sends until it hears back).
          if (code === 'XS_ALREADY_DECIDED' || code === 'XS_DUPLICATE') {
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
    const p = env.tx.body.payload;
    if (p.kind === 'xprepare' || p.kind === 'xdecision') this.stale.add(toHex(p.xfer.id));
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
      // Every open record, whatever its kind or counterpart (another shard or the beacon).
      for (const rec of this.chain.state.xferRecords()) {
        if (rec.decision === 'none' && rec.preparedHeight + RESEND_SLOTS <= head) ids.add(toHex(rec.info.id));
      }
    }
    if (!ids.size) return;
    const [raw, certRaw] = await Promise.all([this.chain.store.blockAtHeight(head), this.chain.store.certificate(head)]);
    if (!raw || !certRaw) return;
    const header = decodeBlock(raw).header;
    if (!bytesEqual(header.stateRoot, this.chain.headStateRoot)) return;
    this.report(header, decodeCertificate(certRaw), [...ids]);
  }

  /** Send the records (proved against the head state) in reports of at most MAX_REPORT_ITEMS; one report with no items if there are none. */
  private report(header: BlockHeader, certificate: Certificate, ids: string[]): void {
    const items: ReportItem[] = ids.length ? this.chain.state.proveXfers(ids) : [];
    const binding = this.binding!;
    if (!items.length) {
      void this.send({ type: 'report', report: { binding, header, certificate, items: [] } }, 'block');
      return;
    }
    for (let i = 0; i < items.length; i += MAX_REPORT_ITEMS) {
      void this.send({ type: 'report', report: { binding, header, certificate, items: items.slice(i, i + MAX_REPORT_ITEMS) } }, 'report');
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

  private async send(req: BeaconRequest, kind: string): Promise<void> {
    try {
      const ack = await this.requestBeacon(req);
      this.metrics.xshardSent.inc({ kind, result: ack.ok ? 'ok' : ack.code });
      if (!ack.ok) this.log.warn('beacon refused our 2PC message', { kind, code: ack.code, message: ack.message });
    } catch (e) {
      this.metrics.xshardSent.inc({ kind, result: 'unreachable' });
      this.log.debug('could not reach the beacon', { kind, error: (e as Error).message });
    }
  }

  // ------------------------------------------------------------------ out: evidence

  /**
   * Send one piece of evidence to the beacon and return its answer (`POST /v1/evidence`).
   * Throws when the beacon cannot be reached; counted either way.
   */
  async submitEvidence(e: VoteEvidence): Promise<XAck> {
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
      const ack = await this.submitEvidence(e);
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
