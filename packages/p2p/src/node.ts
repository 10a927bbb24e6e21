import './polyfills.js';
import type { GossipSubComponents, GossipsubMessage, GossipsubOpts } from '@chainsafe/libp2p-gossipsub';
import { validateTopicScoreParams } from '@chainsafe/libp2p-gossipsub/score';
import { noise } from '@chainsafe/libp2p-noise';
import { coalescingWrites } from './coalesce.js';
import { yamux } from '@chainsafe/libp2p-yamux';
import { lazyYamuxWindowUpdates } from './yamux-window.js';
import { identify, type Identify } from '@libp2p/identify';
import { TopicValidatorResult, type Libp2p, type Message, type PeerId, type Stream } from '@libp2p/interface';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import { tcp } from '@libp2p/tcp';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { QnexusGossipSub } from './gossip.js';
import { RateLimiter } from './ratelimit.js';
import { createLibp2p } from 'libp2p';
import { sha256 } from '@qnexus/crypto';
import {
  APP_PENALTY_PER_OFFENCE,
  DECODE_RPC_LIMITS,
  GOSSIP_MESH,
  TRUSTED_APP_SCORE,
  RPC_FRAME_OVERHEAD,
  SCORE_THRESHOLDS,
  peerScoreParams,
  topicScoreParams,
} from './gossip-config.js';
import { loadOrCreatePeerKey } from './keys.js';
import { asError, plainBytes, requestStream, serveStream } from './reqresp.js';
import { DIRECT_MAX_INBOUND_STREAMS, DirectReceiver, DirectSender } from './direct.js';
import { StreamPool, reuseProtocol, serveReusable } from './reuse.js';
import { DISCOVERY_LIMITS, decodeDiscoveryRequest, decodeDiscoveryResponse, encodeDiscoveryRequest, encodeDiscoveryResponse, isLocalOnlyAddr, type DiscoveredPeer } from './discovery.js';
import { deadlineSignal, withoutListenerCap } from './deadline.js';
import type {
  ConnectionLimits,
  DirectHandler,
  DirectSendOptions,
  DirectHandlerOptions,
  DiscoveryOptions,
  LogFn,
  P2PNode,
  P2POptions,
  P2PStats,
  PeerConnection,
  RequestHandler,
  RequestHandlerOptions,
  RequestOptions,
  ServeBudget,
  TopicHandler,
  ValidationResult,
} from './types.js';

type Services = { identify: Identify; pubsub: QnexusGossipSub };

/**
 * Publish flow control. Gossipsub has no back-pressure: each peer's outbound
 * stream is an unbounded queue in front of yamux. We hold a publish while any
 * peer has more than this many bytes queued (a single message larger than the
 * window still goes out once the queue is empty).
 */
const PUBLISH_WINDOW_BYTES = 2 * 1024 * 1024;
/** A peer whose queue has not shrunk for this long is considered stalled and no longer holds publishes. */
const STALLED_PEER_MS = 1000;
/** Upper bound on how long one publish waits for room. */
const PUBLISH_MAX_WAIT_MS = 10_000;
/** Hard ceiling on a peer's gossip queue; beyond it gossipsub drops messages for that peer. */
const MIN_OUTBOUND_BUFFER_BYTES = 16 * 1024 * 1024;
/** While connected to a bootstrap peer, how often to re-check the connection. */
const BOOTSTRAP_CHECK_MS = 2000;
/** Peers asked per discovery round, and peers dialled per round at most. */
const DISCOVERY_ASK = 3;
const DISCOVERY_DIALS = 8;
const DISCOVERY_TIMEOUT_MS = 5000;

export const DEFAULT_CONNECTION_LIMITS: Required<Omit<ConnectionLimits, 'inboundPerIpPerSec'>> = {
  maxConnections: 128,
  maxUntrusted: 48,
  maxUntrustedPerIp: 16,
};
/**
 * New inbound connections per second per IP before the handshake: a devnet starts every node
 * on one host at once; elsewhere a peer has no reason to reconnect more often than this.
 */
const INBOUND_PER_IP_PER_SEC = { devnet: 100, public: 5 } as const;

/** Validations of one topic's messages from one peer running at once, unless the topic says otherwise. */
const DEFAULT_VALIDATION_CONCURRENCY = 4;
/** Messages of one topic from one peer waiting for validation; beyond this they are dropped and counted as spam. */
const MAX_VALIDATION_QUEUE = 256;
/**
 * Messages a peer may send us that we drop or ignore (junk subscriptions, topics we do not
 * serve, duplicates and stale copies that pass gossipsub's seen-cache with new bytes, queue
 * overflow) before it is penalised: honest peers send a few a second (stale re-announcements,
 * votes for heights a syncing node cannot use yet, a restarted node's mempool re-gossip).
 */
const SPAM_BUDGET = { ratePerSec: 50, burst: 1000 };
/** A peer is penalised for spam or invalid messages at most this often. */
const OFFENCE_EVERY_MS = 1000;
/** Default request budget of a request/response protocol (see ServeBudget): protocols of the node and the beacon set their own. */
const DEFAULT_REQUESTS_PER_SEC = 50;

/** The peer-exchange protocol id of a chain. */
export function discoveryProtocol(chainId: string): string {
  return `/qnexus/${chainId}/peers/1.0.0`;
}

const defaultLog: LogFn = (level, msg, fields) => {
  if (level === 'warn' || level === 'error') {
    console.error(`[p2p] ${level}: ${msg}${fields !== undefined ? ' ' + JSON.stringify(fields) : ''}`);
  }
};

interface TopicCounters { accept: number; ignore: number; reject: number }
/** Validation of one topic's messages from one peer: how many run now, and the ones waiting. */
interface ValidationQueue { running: number; waiting: GossipsubMessage[] }
interface PenaltyRecord { points: number; updatedAt: number; offences: number[] }
interface Bootstrap { addr: Multiaddr; peerId: string }

/** Create and start a node. See the P2PNode interface for the behaviour of each method. */
export async function createP2PNode(opts: P2POptions): Promise<P2PNode> {
  const node = new Libp2pNode(opts);
  await node.start();
  return node;
}

class Libp2pNode implements P2PNode {
  peerId = '';
  private libp2p!: Libp2p<Services>;
  private gossip!: QnexusGossipSub;
  private direct!: DirectSender;
  private readonly directReceivers = new Map<string, DirectReceiver>();
  /** Inbound `P/reuse` streams being served, by protocol P (closed when P is unhandled). */
  private readonly reuseStreams = new Map<string, Set<Stream>>();
  /** Request/response streams kept open for the next request to the same peer (reuse.ts). */
  private readonly streams = new StreamPool();
  private readonly log: LogFn;
  private readonly profile: 'devnet' | 'public';
  private readonly handlers = new Map<string, TopicHandler>();
  private readonly counters = new Map<string, TopicCounters>();
  private readonly penalties = new Map<string, PenaltyRecord>();
  private readonly bannedUntil = new Map<string, number>();
  private readonly penaltyCfg: { maxOffences: number; windowMs: number; banMs: number };
  private readonly backoff: { min: number; max: number };
  private bootstrap: Bootstrap[] = [];
  private stopped = false;
  /** Every dial's deadline listens to it: one listener per dial in flight, so no listener cap. */
  private readonly stopController = withoutListenerCap(new AbortController());
  private publishChain: Promise<unknown> = Promise.resolve();
  private readonly queueProgress = new Map<string, { bytes: number; at: number }>();
  private readonly bootstrapWaker = new Waker();
  private bootstrapLoopDone: Promise<void> = Promise.resolve();
  private readonly discoveryWaker = new Waker();
  private discoveryLoopDone: Promise<void> = Promise.resolve();
  private readonly validation = new Map<string, ValidationQueue>();
  private readonly spamBudget = new RateLimiter(SPAM_BUDGET);
  private readonly offenceAt = new Map<string, number>();
  private readonly limits: Required<Omit<ConnectionLimits, 'inboundPerIpPerSec'>>;
  private readonly allowedTopics: Set<string> | null;
  private readonly staticTrusted = new Set<string>();
  private dynamicTrusted = new Set<string>();

  constructor(private readonly opts: P2POptions) {
    this.log = opts.log ?? defaultLog;
    this.profile = opts.scoringProfile ?? 'devnet';
    this.penaltyCfg = {
      maxOffences: opts.penalty?.maxOffences ?? 5,
      windowMs: opts.penalty?.windowMs ?? 60_000,
      banMs: opts.penalty?.banMs ?? 5 * 60_000,
    };
    this.backoff = opts.bootstrapBackoffMs ?? { min: 500, max: 10_000 };
    if (!(opts.maxMessageBytes > 0)) throw new RangeError('maxMessageBytes must be positive');
    this.limits = { ...DEFAULT_CONNECTION_LIMITS, ...stripUndefined(opts.connectionLimits ?? {}) };
    this.allowedTopics = opts.allowedTopics ? new Set(opts.allowedTopics) : null;
    for (const id of opts.trustedPeers ?? []) this.staticTrusted.add(id);
  }

  async start(): Promise<void> {
    const privateKey = await loadOrCreatePeerKey(this.opts.peerKeyPath);
    this.peerId = peerIdFromPrivateKey(privateKey).toString();
    this.bootstrap = this.parseBootstrap(this.opts.bootstrap);
    // The operator chose the bootstrap peers: they get a connection whatever the untrusted slots hold.
    for (const b of this.bootstrap) this.staticTrusted.add(b.peerId);
    const devnet = this.profile === 'devnet';

    const gossipOpts: Partial<GossipsubOpts> = {
      ...GOSSIP_MESH,
      // Our ML-DSA signatures inside payloads authenticate; libp2p signing would only cost CPU.
      globalSignaturePolicy: 'StrictNoSign',
      // Content addressing: the same payload from two peers is one message.
      msgIdFn: (msg: Message) => sha256(msg.data),
      msgIdToStrFn: (id: Uint8Array) => Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('base64'),
      // Validation happens in our event handler (possibly async) and is reported back;
      // gossipsub forwards only after reportMessageValidationResult(Accept).
      asyncValidation: true,
      allowPublishToZeroTopicPeers: true,
      ignoreDuplicatePublishError: true,
      emitSelf: false,
      fallbackToFloodsub: false,
      doPX: false,
      // Whole-RPC frame cap on inbound streams; the per-message cap is enforced before validation.
      // An RPC frame may carry several messages (an IWANT answer bundles them): allow two full-size ones.
      maxInboundDataLength: 2 * this.opts.maxMessageBytes + RPC_FRAME_OVERHEAD,
      // Bounded decoding: an RPC listing more items than this is dropped whole, before any of them is looked at.
      decodeRpcLimits: DECODE_RPC_LIMITS,
      maxOutboundBufferSize: Math.max(MIN_OUTBOUND_BUFFER_BYTES, 4 * this.opts.maxMessageBytes),
      scoreParams: peerScoreParams(this.profile, (id) => this.appScore(id)),
      scoreThresholds: SCORE_THRESHOLDS,
    };

    // Window updates only once half a stream's window is consumed (yamux-window.ts).
    lazyYamuxWindowUpdates();
    this.libp2p = await createLibp2p<Services>({
      privateKey,
      start: false,
      addresses: {
        listen: this.opts.listen,
        ...(this.opts.announce !== undefined && this.opts.announce.length > 0 ? { announce: this.opts.announce } : {}),
      },
      transports: [tcp()],
      // Frames coalesced before Noise: one encryption and one socket write per batch (coalesce.ts).
      connectionEncrypters: [coalescingWrites(noise())],
      streamMuxers: [yamux()],
      connectionManager: {
        maxConnections: this.limits.maxConnections,
        dialTimeout: 10_000,
        // libp2p refuses more than 5 inbound connections per second per host by default;
        // a devnet has every node on one host, so a simultaneous start would be refused.
        inboundConnectionThreshold: this.opts.connectionLimits?.inboundPerIpPerSec ?? INBOUND_PER_IP_PER_SEC[this.profile],
        maxIncomingPendingConnections: devnet ? 64 : 10,
      },
      connectionGater: {
        denyDialPeer: (peer) => this.isBanned(peer.toString()),
        // Once the handshake has told us who it is: banned peers, and untrusted ones beyond their slots.
        denyInboundEncryptedConnection: (peer, conn) => this.denyConnection(peer.toString(), conn.remoteAddr),
        denyOutboundEncryptedConnection: (peer, conn) => this.denyConnection(peer.toString(), conn.remoteAddr),
      },
      services: {
        // Required: gossipsub learns which peers speak meshsub via identify.
        identify: identify(),
        // Built directly (not via gossipsub()) to keep the concrete GossipSub type: we need
        // reportMessageValidationResult, getScore, mesh and score params, which PubSub lacks.
        pubsub: (components: GossipSubComponents) =>
          new QnexusGossipSub(components, gossipOpts, {
            allowSubscription: (topic) => this.allowedTopics === null || this.allowedTopics.has(topic) || this.handlers.has(topic),
            serves: (topic) => this.handlers.has(topic),
            onJunk: (peerId, n, what) => this.spam(peerId, n, what),
            onOversizedRpc: (peerId, what) => this.offence(peerId, what),
            isTrusted: (peerId) => this.isTrusted(peerId),
          }),
      },
    });
    this.gossip = this.libp2p.services.pubsub;
    this.gossip.addEventListener('gossipsub:message', (evt) => this.onGossipMessage(evt.detail));
    this.direct = new DirectSender(this.libp2p, this.log);
    this.libp2p.addEventListener('peer:disconnect', (evt) => {
      this.direct.dropPeer(evt.detail.toString());
      this.streams.dropPeer(evt.detail.toString());
      if (this.bootstrap.some((b) => b.peerId === evt.detail.toString())) this.bootstrapWaker.wake();
    });

    try {
      await this.libp2p.start();
    } catch (err) {
      // e.g. listen address in use: release whatever did start before reporting.
      this.stopped = true;
      await Promise.resolve(this.libp2p.stop()).catch(() => undefined);
      throw err;
    }
    this.log('info', 'p2p node started', { peerId: this.peerId, addrs: this.multiaddrs() });
    if (this.bootstrap.length > 0) {
      this.bootstrapLoopDone = this.bootstrapLoop().catch((err: unknown) => {
        this.log('error', 'bootstrap loop crashed; no further re-dials', { error: asError(err).message });
      });
    }
    const d = this.opts.discovery;
    if (d !== undefined) {
      await this.serveDiscovery(d);
      this.discoveryLoopDone = this.discoveryLoop(d).catch((err: unknown) => {
        this.log('error', 'discovery loop crashed; no further peer exchange', { error: asError(err).message });
      });
    }
  }

  // ------------------------------------------------------------------ addresses / peers

  multiaddrs(): string[] {
    // libp2p 2 already appends /p2p/<id>; guard anyway so callers always get dialable addrs.
    return this.libp2p.getMultiaddrs().map((ma) => {
      const s = ma.toString();
      return ma.getPeerId() === null ? `${s}/p2p/${this.peerId}` : s;
    });
  }

  connectedPeers(): string[] {
    return this.libp2p.getPeers().map((p) => p.toString());
  }

  async dial(addr: string): Promise<void> {
    await this.libp2p.dial(multiaddr(addr));
  }

  connections(): PeerConnection[] {
    return this.libp2p.getConnections().map((c) => ({ peerId: c.remotePeer.toString(), addr: c.remoteAddr.toString(), direction: c.direction }));
  }

  async hangUp(peerId: string): Promise<void> {
    // peerIdFromString throws on a malformed id: the caller's input error.
    await this.libp2p.hangUp(peerIdFromString(peerId));
  }

  // ------------------------------------------------------------------ gossip

  subscribe(topic: string, handler: TopicHandler): void {
    if (handler.maxBytes !== undefined && handler.maxBytes > this.opts.maxMessageBytes) {
      throw new RangeError(`topic ${topic}: maxBytes ${handler.maxBytes} exceeds maxMessageBytes ${this.opts.maxMessageBytes}`);
    }
    // Topic score params must exist before traffic arrives: gossipsub keeps no
    // per-topic score stats (e.g. invalid deliveries) for topics without params.
    const params = topicScoreParams();
    validateTopicScoreParams(params);
    this.gossip.score.params.topics[topic] = params;
    this.handlers.set(topic, handler);
    if (!this.counters.has(topic)) this.counters.set(topic, { accept: 0, ignore: 0, reject: 0 });
    this.gossip.subscribe(topic);
  }

  unsubscribe(topic: string): void {
    this.gossip.unsubscribe(topic);
    this.handlers.delete(topic);
    // Score params stay: peers' scores for this topic keep decaying normally.
  }

  publish(topic: string, data: Uint8Array): Promise<number> {
    const cap = Math.min(this.opts.maxMessageBytes, this.handlers.get(topic)?.maxBytes ?? Infinity);
    if (data.length > cap) {
      return Promise.reject(new RangeError(`publish on ${topic}: ${data.length} bytes exceeds the ${cap}-byte cap`));
    }
    // Consensus messages never wait behind a burst of transaction batches.
    if (this.handlers.get(topic)?.urgent === true) return this.publishNow(topic, data, false);
    // Serialise publishes so the flow-control wait applies in order (a FIFO queue).
    const run = this.publishChain.then(() => this.publishNow(topic, data, true));
    this.publishChain = run.catch(() => undefined);
    return run;
  }

  private async publishNow(topic: string, data: Uint8Array, flowControl: boolean): Promise<number> {
    if (this.stopped) return 0;
    if (flowControl) await this.waitForOutboundRoom(data.length);
    if (this.stopped) return 0;
    try {
      const res = await this.gossip.publish(topic, data);
      return res.recipients.length;
    } catch (err) {
      // With allowPublishToZeroTopicPeers/ignoreDuplicatePublishError nothing should throw; stay safe anyway.
      this.log('warn', 'gossip publish failed', { topic, error: asError(err).message });
      return 0;
    }
  }

  /** Wait until no (non-stalled) peer has more than the window queued. */
  private async waitForOutboundRoom(size: number): Promise<void> {
    const deadline = Date.now() + PUBLISH_MAX_WAIT_MS;
    for (;;) {
      if (!this.outboundBlocked(size) || this.stopped) return;
      if (Date.now() > deadline) {
        this.log('debug', 'publish flow-control wait timed out; publishing anyway');
        return;
      }
      await sleep(5);
    }
  }

  /**
   * Only trusted peers' queues hold publishes back: an untrusted peer that drains slowly on
   * purpose would otherwise hold every publish for up to PUBLISH_MAX_WAIT_MS; gossipsub's
   * per-peer buffer cap sheds what such a peer cannot take.
   */
  private outboundBlocked(size: number): boolean {
    const now = Date.now();
    let blocked = false;
    for (const [id, stream] of this.gossip.streamsOutbound) {
      if (!this.isTrusted(id)) continue;
      const queued = queuedBytes(stream);
      const prev = this.queueProgress.get(id);
      if (queued === 0) { this.queueProgress.delete(id); continue; }
      if (prev === undefined || queued < prev.bytes) this.queueProgress.set(id, { bytes: queued, at: now });
      if (queued + size <= PUBLISH_WINDOW_BYTES) continue;
      const since = prev !== undefined && queued >= prev.bytes ? prev.at : now;
      if (now - since > STALLED_PEER_MS) continue; // stalled: gossipsub's buffer cap will shed its load
      blocked = true;
    }
    for (const id of this.queueProgress.keys()) {
      if (!this.gossip.streamsOutbound.has(id)) this.queueProgress.delete(id);
    }
    return blocked;
  }

  topicPeers(topic: string): string[] {
    const out: string[] = [];
    for (const p of this.gossip.getSubscribers(topic)) {
      const id = p.toString();
      if (this.gossip.streamsOutbound.has(id)) out.push(id);
    }
    return out;
  }

  meshPeers(topic: string): string[] {
    return this.gossip.getMeshPeers(topic);
  }

  async waitForTopicPeers(topic: string, min: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.topicPeers(topic).length >= min) return true;
      if (this.stopped || Date.now() >= deadline) return false;
      await sleep(Math.min(50, Math.max(1, deadline - Date.now())));
    }
  }

  /**
   * Validation is scheduled per (peer, topic): at most `concurrencyPerPeer` of a peer's
   * messages of a topic are validated at once, the rest wait (bounded) in arrival order, and
   * each one starts only if the peer is still above the graylist threshold. So the verdict on a
   * peer's first messages (an invalid one costs it its score at once) decides whether its next
   * ones cost us anything, however many it packed into one RPC.
   */
  private onGossipMessage(m: GossipsubMessage): void {
    const from = m.propagationSource.toString();
    const topic = m.msg.topic;
    const key = `${from}\n${topic}`;
    let q = this.validation.get(key);
    if (q === undefined) this.validation.set(key, (q = { running: 0, waiting: [] }));
    const limit = this.handlers.get(topic)?.concurrencyPerPeer ?? DEFAULT_VALIDATION_CONCURRENCY;
    if (q.running < limit) {
      q.running++;
      void this.drainValidation(key, q, m);
    } else if (q.waiting.length < MAX_VALIDATION_QUEUE) {
      q.waiting.push(m);
    } else {
      this.finish(m, 'ignore', this.handlers.get(topic));
      this.spam(from, 1, 'more messages than its validation queue holds');
    }
  }

  private async drainValidation(key: string, q: ValidationQueue, first: GossipsubMessage): Promise<void> {
    try {
      for (let m: GossipsubMessage | undefined = first; m !== undefined && !this.stopped; m = q.waiting.shift()) {
        const from = m.propagationSource.toString();
        if (this.gossip.getScore(from) < SCORE_THRESHOLDS.graylistThreshold) {
          // Graylisted meanwhile (e.g. by its own previous message): not worth a look.
          this.finish(m, 'ignore', undefined);
          continue;
        }
        try {
          await this.validateMessage(m);
        } catch (err) {
          this.log('error', 'gossip message handling failed', { error: asError(err).message });
        }
      }
    } finally {
      q.running--;
      if (q.running === 0) {
        this.validation.delete(key);
        q.waiting.length = 0;
      }
    }
  }

  private async validateMessage(m: GossipsubMessage): Promise<void> {
    const topic = m.msg.topic;
    const data = plainBytes(m.msg.data);
    const from = m.propagationSource.toString();
    const handler = this.handlers.get(topic);
    let result: ValidationResult;
    if (handler === undefined) {
      result = 'ignore'; // raced with unsubscribe
    } else {
      const cap = Math.min(this.opts.maxMessageBytes, handler.maxBytes ?? Infinity);
      if (data.length > cap) {
        this.log('debug', 'oversized gossip message rejected', { topic, from, bytes: data.length, cap });
        result = 'reject';
      } else {
        try {
          result = await handler.validate(data, from);
          if (result !== 'accept' && result !== 'ignore' && result !== 'reject') {
            this.log('error', 'validator returned an invalid result; treating as reject', { topic, result: String(result) });
            result = 'reject';
          }
        } catch (err) {
          this.log('warn', 'validator threw; treating as reject', { topic, from, error: asError(err).message });
          result = 'reject';
        }
      }
    }
    if (this.stopped) return;
    // Spam that costs nothing to send but is only ignored (replays with new bytes, stale copies) adds up.
    if (result === 'ignore') this.spam(from, 1, `ignored messages on ${topic}`);
    this.finish(m, result, handler);
  }

  /** Report the verdict to gossipsub (forwarding on accept, the P4 penalty on reject) and deliver. */
  private finish(m: GossipsubMessage, result: ValidationResult, handler: TopicHandler | undefined): void {
    if (this.stopped) return;
    const from = m.propagationSource.toString();
    this.gossip.reportMessageValidationResult(m.msgId, from, toGossipResult(result));
    // gossipsub caches scores for a while: the penalty must count for this peer's very next message.
    if (result === 'reject') {
      this.gossip.score.scoreCache.delete(from);
      // Honest peers validate before they relay, so an invalid message is its sender's fault: besides
      // gossipsub's P4, it counts towards a ban (at most once a second, like spam).
      this.offence(from, `invalid message on ${m.msg.topic}`);
    }
    const counters = this.counters.get(m.msg.topic);
    if (counters !== undefined) counters[result]++;
    if (result === 'accept' && handler?.deliver !== undefined) {
      try {
        handler.deliver(plainBytes(m.msg.data), from);
      } catch (err) {
        this.log('error', 'deliver callback threw', { topic: m.msg.topic, from, error: asError(err).message });
      }
    }
  }

  /**
   * Count what a peer sent that we dropped or ignored without use; beyond its budget it is
   * penalised (at most once a second, so a sustained flood is banned within seconds).
   */
  private spam(peerId: string, n: number, what: string): void {
    if (!this.spamBudget.take(peerId, n).ok) this.offence(peerId, `spam: ${what}`);
  }

  /** Penalise, at most once a second per peer: a burst of offences is one, a sustained stream is banned within seconds. */
  private offence(peerId: string, reason: string): void {
    const now = Date.now();
    if (now - (this.offenceAt.get(peerId) ?? 0) < OFFENCE_EVERY_MS) return;
    if (this.offenceAt.size > 10_000) this.offenceAt.clear();
    this.offenceAt.set(peerId, now);
    this.penalize(peerId, reason);
  }

  // ------------------------------------------------------------------ scoring / penalties

  peerScore(peerId: string): number {
    return this.gossip.getScore(peerId);
  }

  penalize(peerId: string, reason: string): void {
    if (peerId === this.peerId || this.stopped) return;
    let peer: PeerId;
    try {
      peer = peerIdFromString(peerId);
    } catch {
      this.log('warn', 'penalize: invalid peer id', { peerId, reason });
      return;
    }
    const now = Date.now();
    const rec = this.penalties.get(peerId) ?? { points: 0, updatedAt: now, offences: [] };
    rec.points = decayedPoints(rec, now) + 1;
    rec.updatedAt = now;
    rec.offences = rec.offences.filter((t) => now - t < this.penaltyCfg.windowMs);
    rec.offences.push(now);
    this.penalties.set(peerId, rec);
    this.gossip.score.scoreCache.delete(peerId); // make the new app score effective immediately
    this.log('warn', 'peer penalised', { peerId, reason, offences: rec.offences.length, score: this.gossip.getScore(peerId) });

    if (rec.offences.length >= this.penaltyCfg.maxOffences) {
      rec.offences = [];
      this.bannedUntil.set(peerId, now + this.penaltyCfg.banMs);
      this.log('warn', 'peer banned after repeated offences', { peerId, reason, banMs: this.penaltyCfg.banMs });
      this.libp2p.hangUp(peer).catch((err: unknown) => {
        this.log('debug', 'hangUp failed', { peerId, error: asError(err).message });
      });
    }
  }

  setTrustedPeers(peerIds: Iterable<string>): void {
    this.dynamicTrusted = new Set(peerIds);
  }

  isTrusted(peerId: string): boolean {
    return this.staticTrusted.has(peerId) || this.dynamicTrusted.has(peerId);
  }

  /**
   * Connection admission, once the handshake names the peer: banned peers never; trusted ones
   * always (up to libp2p's maxConnections); the rest only while untrusted connections are under
   * `maxUntrusted` overall and `maxUntrustedPerIp` from the peer's IP address.
   */
  private denyConnection(peerId: string, addr: Multiaddr): boolean {
    if (this.isBanned(peerId)) return true;
    if (this.isTrusted(peerId) || this.stopped) return false;
    const ip = ipOf(addr);
    let untrusted = 0;
    let sameIp = 0;
    for (const c of this.libp2p.getConnections()) {
      const id = c.remotePeer.toString();
      if (id === peerId) return false; // a second connection to a peer we already admitted
      if (this.isTrusted(id)) continue;
      untrusted++;
      if (ip !== null && ipOf(c.remoteAddr) === ip) sameIp++;
    }
    if (untrusted < this.limits.maxUntrusted && sameIp < this.limits.maxUntrustedPerIp) return false;
    this.log('debug', 'connection refused: no untrusted slot left', { peerId, addr: addr.toString(), untrusted, sameIp });
    return true;
  }

  isBanned(peerId: string): boolean {
    const until = this.bannedUntil.get(peerId);
    if (until === undefined) return false;
    if (Date.now() < until) return true;
    this.bannedUntil.delete(peerId);
    return false;
  }

  /**
   * Gossipsub P5: a bonus for trusted peers (kept in the mesh, grafted first), minus our
   * penalties, which decay with a one-minute half-life.
   */
  private appScore(peerId: string): number {
    const bonus = this.isTrusted(peerId) ? TRUSTED_APP_SCORE : 0;
    const rec = this.penalties.get(peerId);
    if (rec === undefined) return bonus;
    const points = decayedPoints(rec, Date.now());
    if (points < 0.01) {
      if (rec.offences.length === 0) this.penalties.delete(peerId);
      return bonus;
    }
    return bonus - APP_PENALTY_PER_OFFENCE * points;
  }

  // ------------------------------------------------------------------ request / response

  async handle(protocol: string, opts: RequestHandlerOptions, fn: RequestHandler): Promise<void> {
    const budget = new ServingBudget(opts.budget ?? {});
    const served = budget.wrap(fn);
    await this.libp2p.handle(protocol, ({ stream, connection }) => {
      const peer = connection.remotePeer.toString();
      // Trusted peers (committees, the beacon) are not counted: what they ask is bounded by the
      // protocols and their misbehaviour is attributable; their responses still spend the byte budget.
      if (!this.isTrusted(peer)) {
        const refusals = budget.admit(peer);
        if (refusals > 0) {
          stream.abort(new Error(`${protocol}: over the request budget`));
          if (refusals % budget.requestBurst === 0) this.penalize(peer, `${protocol}: ${refusals} requests over its budget`);
          return;
        }
      }
      void serveStream(protocol, stream, connection, opts, served, this.log);
    }, {
      maxInboundStreams: opts.maxInboundStreams,
      maxOutboundStreams: opts.maxOutboundStreams,
    });
    // The same protocol on long-lived streams (reuse.ts): each request, not each stream, is
    // admitted by the budget.
    const admit = (peer: string): boolean => {
      if (this.isTrusted(peer)) return true;
      const refusals = budget.admit(peer);
      if (refusals > 0 && refusals % budget.requestBurst === 0) this.penalize(peer, `${protocol}: ${refusals} requests over its budget`);
      return refusals === 0;
    };
    const open = new Set<Stream>();
    this.reuseStreams.set(protocol, open);
    await this.libp2p.handle(reuseProtocol(protocol), ({ stream, connection }) => {
      open.add(stream);
      void serveReusable(protocol, stream, connection, opts, served, admit, this.log).finally(() => open.delete(stream));
    }, {
      maxInboundStreams: opts.maxInboundStreams,
      maxOutboundStreams: opts.maxOutboundStreams,
    });
  }

  async handleDirect(protocol: string, opts: DirectHandlerOptions, fn: DirectHandler): Promise<void> {
    const receiver = new DirectReceiver(protocol, opts, fn, (peer, reason) => this.penalize(peer, reason), this.log);
    this.directReceivers.set(protocol, receiver);
    await this.libp2p.handle(
      protocol,
      ({ stream, connection }) => {
        void receiver.serve(stream, connection.remotePeer.toString());
      },
      // Outbound streams are opened by DirectSender, one per peer (plus one being replaced).
      { maxInboundStreams: DIRECT_MAX_INBOUND_STREAMS, maxOutboundStreams: DIRECT_MAX_INBOUND_STREAMS },
    );
  }

  sendDirect(peerId: string, protocol: string, data: Uint8Array, opts: DirectSendOptions = {}): boolean {
    if (this.stopped) return false;
    return this.direct.send(peerId, protocol, data, opts.whenFull ?? 'drop-oldest');
  }

  async unhandle(protocol: string): Promise<void> {
    await this.libp2p.unhandle(protocol);
    await this.libp2p.unhandle(reuseProtocol(protocol));
    // A protocol no longer served is not served on the long-lived streams already open either:
    // their clients see the reset and open a new stream, which now fails to negotiate.
    for (const st of this.reuseStreams.get(protocol) ?? []) st.abort(new Error(`${protocol} is no longer served`));
    this.reuseStreams.delete(protocol);
  }

  request(peerId: string, protocol: string, request: Uint8Array, opts: RequestOptions): AsyncIterable<Uint8Array> {
    return requestStream(this.libp2p, peerIdFromString(peerId), protocol, request, opts, this.streams);
  }

  // ------------------------------------------------------------------ bootstrap

  private parseBootstrap(addrs: string[]): Bootstrap[] {
    const out: Bootstrap[] = [];
    for (const s of addrs) {
      const addr = multiaddr(s); // throws on a malformed address: a config error, fail fast
      const peerId = addr.getPeerId();
      if (peerId === null) throw new Error(`bootstrap address ${s} lacks /p2p/<peerId>`);
      if (peerId === this.peerId) continue; // shared devnet manifests list every node, us included
      out.push({ addr, peerId });
    }
    return out;
  }

  private connectedToBootstrap(): boolean {
    return this.bootstrap.some((b) => this.libp2p.getConnections(peerIdFromString(b.peerId)).length > 0);
  }

  /**
   * Keep at least one bootstrap connection. While connected we only poll; once
   * disconnected from all of them we dial every bootstrap peer, backing off
   * exponentially (with jitter) between rounds until one succeeds.
   */
  private async bootstrapLoop(): Promise<void> {
    let delay = this.backoff.min;
    let failures = 0;
    while (!this.stopped) {
      if (this.connectedToBootstrap()) {
        delay = this.backoff.min;
        failures = 0;
        await this.bootstrapWaker.sleep(BOOTSTRAP_CHECK_MS);
        continue;
      }
      await Promise.all(this.bootstrap.map(async (b) => {
        if (this.isBanned(b.peerId)) return;
        const deadline = deadlineSignal(5000, this.stopController.signal);
        try {
          await this.libp2p.dial(b.addr, { signal: deadline.signal });
          this.log('info', 'connected to bootstrap peer', { addr: b.addr.toString() });
        } catch (err) {
          // Repeated failures while a peer is down are expected: warn once per outage.
          this.log(failures === 0 ? 'warn' : 'debug', 'bootstrap dial failed', {
            addr: b.addr.toString(), attempt: failures + 1, error: asError(err).message,
          });
        } finally {
          deadline.clear();
        }
      }));
      if (this.stopped || this.connectedToBootstrap()) continue;
      failures++;
      await this.bootstrapWaker.sleep(delay * (0.8 + 0.4 * Math.random()));
      delay = Math.min(delay * 2, this.backoff.max);
    }
  }

  // ------------------------------------------------------------------ discovery (peer exchange)

  private async serveDiscovery(d: DiscoveryOptions): Promise<void> {
    await this.handle(d.protocol, {
      maxInboundStreams: 8,
      maxOutboundStreams: 8,
      maxRequestBytes: DISCOVERY_LIMITS.requestBytes,
      timeoutMs: DISCOVERY_TIMEOUT_MS,
      // A peer asks at most 3 peers every few seconds while it lacks some; each answer costs peer-store reads.
      budget: { requestsPerSec: 1, requestBurst: 10 },
    }, (request, from) => this.answerDiscovery(request, from));
  }

  private async *answerDiscovery(request: Uint8Array, from: string): AsyncGenerator<Uint8Array> {
    let req;
    try {
      req = decodeDiscoveryRequest(request);
    } catch (err) {
      this.penalize(from, `malformed discovery request: ${asError(err).message}`);
      throw err;
    }
    // A peer on another machine cannot use our loopback view of the network.
    const fromRemote = this.libp2p.getConnections(peerIdFromString(from)).some((c) => !isLocalOnlyAddr(c.remoteAddr.toString()));
    const ids = new Set<string>();
    for (const t of req.topics) for (const p of this.gossip.getSubscribers(t)) ids.add(p.toString());
    for (const p of req.peers) ids.add(p);
    ids.delete(from);
    ids.delete(this.peerId);
    const peers: DiscoveredPeer[] = [];
    for (const id of ids) {
      if (peers.length >= DISCOVERY_LIMITS.peers) break;
      let pid: PeerId;
      try {
        pid = peerIdFromString(id);
      } catch {
        continue; // a malformed wanted id: nothing to say about it
      }
      const known = await this.libp2p.peerStore.get(pid).catch(() => undefined);
      if (known === undefined) continue;
      const addrs = known.addresses
        .map((a) => a.multiaddr.toString())
        .filter((a) => !(fromRemote && isLocalOnlyAddr(a)) && a.length <= DISCOVERY_LIMITS.addrChars)
        .slice(0, DISCOVERY_LIMITS.addrsPerPeer);
      if (addrs.length > 0) peers.push({ id, addrs });
    }
    yield encodeDiscoveryResponse({ peers });
  }

  /** Topics with too few publish targets, and wanted peers we are not connected to. */
  private discoveryNeeds(d: DiscoveryOptions): { topics: string[]; peers: string[] } {
    const min = d.minTopicPeers ?? 4;
    return {
      topics: [...this.handlers.keys()].filter((t) => this.topicPeers(t).length < min),
      peers: (d.wantPeers ?? []).filter((id) => id !== this.peerId && this.libp2p.getConnections(peerIdFromString(id)).length === 0),
    };
  }

  /**
   * While something is missing, ask up to DISCOVERY_ASK connected peers and dial
   * up to DISCOVERY_DIALS of the peers they name. Wanted peers go first.
   */
  private async discoveryLoop(d: DiscoveryOptions): Promise<void> {
    const interval = d.intervalMs ?? 3000;
    // A small network may never reach minTopicPeers: after rounds that find nobody new, ask
    // less often (up to every 64 intervals); a new connection resets that.
    let fruitless = 0;
    // A new connection is news: look again at once.
    this.libp2p.addEventListener('peer:connect', () => {
      fruitless = 0;
      this.discoveryWaker.wake();
    });
    while (!this.stopped) {
      await this.discoveryWaker.sleep(interval * 2 ** Math.min(fruitless, 6));
      if (this.stopped) return;
      const need = this.discoveryNeeds(d);
      if (need.topics.length === 0 && need.peers.length === 0) continue;
      fruitless++;
      const connected = this.libp2p.getPeers().filter((p) => !this.isBanned(p.toString()));
      if (connected.length === 0) continue;
      const ask = shuffle(connected).slice(0, DISCOVERY_ASK);
      const found = new Map<string, string[]>();
      for (const p of ask) {
        if (this.stopped) return;
        try {
          for await (const frame of this.request(p.toString(), d.protocol, encodeDiscoveryRequest(need), {
            timeoutMs: DISCOVERY_TIMEOUT_MS, maxResponseFrameBytes: DISCOVERY_LIMITS.responseBytes, maxFrames: 1,
          })) {
            for (const x of decodeDiscoveryResponse(frame).peers) if (!found.has(x.id)) found.set(x.id, x.addrs);
          }
        } catch (err) {
          // An old peer without the protocol, or one that went away: ask the next one.
          this.log('debug', 'discovery request failed', { peer: p.toString(), error: asError(err).message });
        }
      }
      const wanted = new Set(need.peers);
      const candidates = [...found.keys()]
        .filter((id) => id !== this.peerId && !this.isBanned(id) && this.libp2p.getConnections(peerIdFromString(id)).length === 0)
        .sort((a, b) => Number(wanted.has(b)) - Number(wanted.has(a)))
        .slice(0, DISCOVERY_DIALS);
      if (candidates.length === 0) continue;
      const dialed = await Promise.all(candidates.map(async (id) => {
        const deadline = deadlineSignal(DISCOVERY_TIMEOUT_MS, this.stopController.signal);
        try {
          const pid = peerIdFromString(id);
          await this.libp2p.peerStore.merge(pid, { multiaddrs: found.get(id)!.map((a) => multiaddr(a)) });
          await this.libp2p.dial(pid, { signal: deadline.signal });
          return true;
        } catch (err) {
          this.log('debug', 'dial of a discovered peer failed', { peer: id, error: asError(err).message });
          return false;
        } finally {
          deadline.clear();
        }
      }));
      const n = dialed.filter(Boolean).length;
      if (n > 0) this.log('info', 'connected to discovered peers', { dialed: n, of: candidates.length, lacking: need });
    }
  }

  // ------------------------------------------------------------------ stats / lifecycle

  stats(): P2PStats {
    const topics: P2PStats['topics'] = {};
    for (const [topic, c] of this.counters) {
      topics[topic] = { peers: this.topicPeers(topic).length, ...c };
    }
    const direct: NonNullable<P2PStats['direct']> = {};
    for (const [protocol, r] of this.directReceivers) direct[protocol] = { ...r.stats };
    return { peers: this.libp2p.getPeers().length, topics, direct, requestStreamsOpened: this.streams.opened };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopController.abort();
    this.bootstrapWaker.wake();
    this.discoveryWaker.wake();
    await this.bootstrapLoopDone;
    await this.discoveryLoopDone;
    this.direct?.stop();
    this.streams.closeAll();
    await this.libp2p.stop();
    this.log('info', 'p2p node stopped', { peerId: this.peerId });
  }
}

/**
 * Per-peer token buckets of one protocol: requests (refused beyond the budget) and response
 * bytes (a response stops early once the peer, or all peers together, spent theirs).
 */
class ServingBudget {
  readonly requestBurst: number;
  private readonly requests: RateLimiter;
  private readonly bytes: RateLimiter | null;
  private readonly globalBytes: RateLimiter | null;
  /** Refusals per peer since it last had a request admitted (bounded: cleared when it grows large). */
  private readonly refused = new Map<string, number>();

  constructor(b: ServeBudget) {
    const rate = b.requestsPerSec ?? DEFAULT_REQUESTS_PER_SEC;
    this.requestBurst = Math.max(1, Math.floor(b.requestBurst ?? 2 * rate));
    this.requests = new RateLimiter({ ratePerSec: rate, burst: this.requestBurst });
    this.bytes = b.bytesPerSec ? new RateLimiter({ ratePerSec: b.bytesPerSec, burst: b.byteBurst ?? 2 * b.bytesPerSec }) : null;
    this.globalBytes = b.globalBytesPerSec ? new RateLimiter({ ratePerSec: b.globalBytesPerSec, burst: b.globalByteBurst ?? 2 * b.globalBytesPerSec }) : null;
  }

  /** 0 when the request may be served, else how many of the peer's requests were refused in a row. */
  admit(peer: string): number {
    if (this.requests.take(peer).ok) {
      this.refused.delete(peer);
      return 0;
    }
    if (this.refused.size > 10_000) this.refused.clear();
    const n = (this.refused.get(peer) ?? 0) + 1;
    this.refused.set(peer, n);
    return n;
  }

  wrap(fn: RequestHandler): RequestHandler {
    if (this.bytes === null && this.globalBytes === null) return fn;
    const bytes = this.bytes;
    const global = this.globalBytes;
    return async function* (request, peer, signal) {
      let sent = 0;
      for await (const frame of fn(request, peer, signal)) {
        const n = frame.byteLength;
        // Always one frame (a response must make progress); then only within both budgets.
        if (sent > 0 && ((bytes !== null && bytes.available(peer) < n) || (global !== null && global.available('*') < n))) return;
        bytes?.charge(peer, n);
        global?.charge('*', n);
        sent++;
        yield frame;
      }
    };
  }
}

/** The IP address of a connection's remote multiaddr (null for non-IP transports). */
function ipOf(addr: Multiaddr): string | null {
  try {
    return addr.nodeAddress().address;
  } catch {
    return null;
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function toGossipResult(r: ValidationResult): TopicValidatorResult {
  switch (r) {
    case 'accept': return TopicValidatorResult.Accept;
    case 'ignore': return TopicValidatorResult.Ignore;
    case 'reject': return TopicValidatorResult.Reject;
  }
}

function decayedPoints(rec: PenaltyRecord, now: number): number {
  const HALF_LIFE_MS = 60_000;
  return rec.points * Math.pow(0.5, (now - rec.updatedAt) / HALF_LIFE_MS);
}

/**
 * Bytes waiting in gossipsub's per-peer outbound queue. The queue (an
 * it-pushable) is private in gossipsub 14's typings, so we read it defensively
 * and treat anything unexpected as "empty" (i.e. no flow control) rather than fail.
 */
function queuedBytes(stream: unknown): number {
  const pushable = (stream as { pushable?: { readableLength?: unknown } }).pushable;
  const n = pushable?.readableLength;
  return typeof n === 'number' ? n : 0;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A sleep another part of the node can cut short: `wake()` ends the current `sleep()` at once. */
class Waker {
  private wakeCurrent: (() => void) | undefined;

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.wakeCurrent === done) this.wakeCurrent = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeCurrent = done;
    });
  }

  wake(): void {
    this.wakeCurrent?.();
  }
}

function shuffle<T>(xs: T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}
