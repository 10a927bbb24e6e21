import { bytesEqual, formatAddress, getBackend, toHex, type UnlockedKey } from '@qnexus/crypto';
import {
  MAX_REPORT_ITEMS,
  MAX_TX_BATCH_BYTES,
  QnexusError,
  beaconTopics,
  decodeBlock,
  decodeCertificate,
  decodeEpochAnnouncement,
  decodeTxBatch,
  decodeXAck,
  encodeBeaconRequest,
  encodeXAck,
  epochAnnouncementSigningBytes,
  epochOf,
  isSystemKind,
  openTx,
  peerBindingSigningBytes,
  shardXProtocol,
  slotAt,
  xferRecordPhase,
  type BeaconRequest,
  type BlockHeader,
  type Certificate,
  type EpochAnnouncement,
  type SignedPeerBinding,
  type TxEnvelope,
  type XAck,
} from '@qnexus/types';
import { epochCommittees, type StateChanges } from '@qnexus/state';
import { epochSeed } from '@qnexus/consensus';
import type { P2PNode, ValidationResult } from '@qnexus/p2p';
import type { Candidate, Chain } from './chain.js';
import type { Engine } from './engine.js';
import type { Logger } from './log.js';
import type { Mempool } from './mempool.js';
import type { Metrics } from './metrics.js';
import type { TxGossip } from './txgossip.js';

/** Beacon entries that prove the sender (the beacon or a relay) is broken or hostile. */
const PEER_FAULT: ReadonlySet<string> = new Set(['TX_MALFORMED', 'TX_TOO_LARGE', 'TX_WRONG_CHAIN', 'TX_WRONG_SCHEME', 'TX_UNKNOWN_KIND', 'XS_UNAUTHORIZED', 'XS_WRONG_SHARD', 'NOT_SYSTEM']);

/** Re-send open records to the beacon every this many slots (they are idempotent there). */
const RESEND_SLOTS = 4;
/** Re-introduce ourselves (binding) to the beacon every this many slots. */
const HELLO_SLOTS = 8;

/**
 * A shard node's side of cross-shard two-phase commit.
 *
 * In: the beacon's signed entries (prepare requests, decisions) arrive on this
 * shard's 2PC stream protocol; each goes through mempool admission (beacon
 * signature, shard, applicability) and is gossiped to the rest of the shard
 * like a transaction, so one reachable validator is enough.
 *
 * Out (validators only): after each finalized block that touched transfer
 * records, a report to the beacon with the block header, its finality
 * certificate and a Merkle proof of each record in the certified state root.
 * Open records are re-reported every few slots until decided, so a beacon that
 * restarted (or a lost stream) cannot leave a transfer in limbo.
 *
 * Also checks the beacon's signed epoch announcements against the committee
 * this node computes itself.
 */
export class XShard {
  /** Latest verified epoch announcement from the beacon. */
  announcement: EpochAnnouncement | null = null;
  private binding: SignedPeerBinding | null = null;
  /** Records the beacon evidently has not seen settle (it re-sent an entry we already applied). */
  private readonly stale = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private ticks = 0;
  private readonly protocol: string;
  private readonly beaconProtocol: string;
  private readonly epochsTopic: string;

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
    this.epochsTopic = bt.epochs;
  }

  get beaconPeerId(): string {
    return this.chain.genesis.beacon.peerId;
  }

  async start(): Promise<void> {
    const g = this.chain.genesis;
    await this.p2p.handle(this.protocol, { maxInboundStreams: 16, maxOutboundStreams: 16, maxRequestBytes: MAX_TX_BATCH_BYTES, timeoutMs: 10_000 }, (req, peer) =>
      this.serveEntries(req, peer),
    );
    this.p2p.subscribe(this.epochsTopic, { maxBytes: 256 * 1024, validate: (d) => this.validateAnnouncement(d) });
    // Only committee members speak for the shard; a validator key of another shard runs as a full node here.
    if (this.key && this.chain.members.has(formatAddress(this.key.address))) {
      const binding = { chainId: g.chainId, shard: this.chain.shard, publicKey: this.key.publicKey, peerId: this.p2p.peerId };
      this.binding = { binding, signature: getBackend(g.scheme).sign(this.key.secretKey, peerBindingSigningBytes(binding)) };
      this.engine.commitListeners.push((c, cert, changes) => this.onCommit(c, cert, changes));
      this.mempool.onStaleSystem = (env) => this.onStale(env);
    }
    this.engine.commitListeners.push((_c, _cert, changes) => this.countPhases(changes));
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
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

  private tick(): void {
    if (!this.binding) return;
    this.ticks++;
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
    for (const rec of changes.xfers.values()) this.metrics.xshardPhases.inc({ phase: `${rec.role}-${xferRecordPhase(rec)}` });
  }

  /** Report the records this block touched, with the block's own certificate (we are inside the commit). */
  private onCommit(c: Candidate, cert: Certificate, changes: StateChanges): void {
    const ids = [...changes.xfers.keys()];
    for (const id of ids) this.stale.delete(id);
    if (ids.length) this.report(c.block.header, cert, ids);
  }

  /** Runs on the engine queue, so the state stays at the head while we read its block and certificate. */
  private async resendOpen(): Promise<void> {
    const head = this.chain.headHeight;
    if (head === 0) return;
    const ids = new Set(this.stale);
    this.stale.clear();
    if (this.ticks % RESEND_SLOTS === 0) {
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

  private report(header: BlockHeader, certificate: Certificate, ids: string[]): void {
    const items = this.chain.state.proveXfers(ids);
    for (let i = 0; i < items.length; i += MAX_REPORT_ITEMS) {
      void this.send({ type: 'report', report: { binding: this.binding!, header, certificate, items: items.slice(i, i + MAX_REPORT_ITEMS) } }, 'report');
    }
  }

  private async send(req: BeaconRequest, kind: string): Promise<void> {
    try {
      let ack: XAck | null = null;
      for await (const frame of this.p2p.request(this.beaconPeerId, this.beaconProtocol, encodeBeaconRequest(req), { timeoutMs: 5_000, maxResponseFrameBytes: 4096, maxFrames: 1 })) {
        ack = decodeXAck(frame);
      }
      if (!ack) throw new Error('no answer');
      this.metrics.xshardSent.inc({ kind, result: ack.ok ? 'ok' : ack.code });
      if (!ack.ok) this.log.warn('beacon refused our 2PC message', { kind, code: ack.code, message: ack.message });
    } catch (e) {
      this.metrics.xshardSent.inc({ kind, result: 'unreachable' });
      this.log.debug('could not reach the beacon', { kind, error: (e as Error).message });
    }
  }

  // ------------------------------------------------------------------ epoch announcements

  private validateAnnouncement(data: Uint8Array): ValidationResult {
    const g = this.chain.genesis;
    const result = (r: ValidationResult, why: string): ValidationResult => {
      this.metrics.epochAnnouncements.inc({ result: why });
      if (r === 'reject') this.log.warn('rejected beacon epoch announcement', { reason: why });
      return r;
    };
    let a;
    try {
      a = decodeEpochAnnouncement(data);
    } catch {
      return result('reject', 'malformed');
    }
    const b = a.body;
    if (b.chainId !== g.chainId) return result('reject', 'wrong-chain');
    if (!getBackend(g.scheme).verify(g.beacon.publicKey, epochAnnouncementSigningBytes(b), a.signature)) return result('reject', 'bad-signature');
    const now = epochOf(g, Math.max(0, slotAt(g, Date.now())));
    if (b.epoch + 1 < now || b.epoch > now + 1) return result('ignore', 'stale');
    // The announcement must say what we compute from genesis ourselves; otherwise the beacon (or its key) is wrong.
    if (toHex(b.seed) !== toHex(epochSeed(g.chainId, this.chain.genesisHash, b.epoch)) || b.startSlot !== b.epoch * g.epochLength) return result('reject', 'wrong-seed');
    const mine = epochCommittees(g, b.epoch);
    const same =
      b.committees.length === mine.length &&
      b.committees.every((c) => {
        const m = mine[c.shard];
        return (
          m !== undefined &&
          m.validators.length === c.members.length &&
          c.members.every((x, i) => formatAddress(x.address) === m.validators[i]!.address && x.stake === m.validators[i]!.stake)
        );
      });
    if (!same) return result('reject', 'wrong-committees');
    if (!this.announcement || b.epoch > this.announcement.epoch || (b.epoch === this.announcement.epoch && b.issuedSlot > this.announcement.issuedSlot)) {
      if (!this.announcement || b.epoch !== this.announcement.epoch) this.log.info('beacon announced epoch', { epoch: b.epoch, committee: mine[this.chain.shard]!.validators.length });
      this.announcement = b;
    }
    return result('accept', 'accepted');
  }
}
