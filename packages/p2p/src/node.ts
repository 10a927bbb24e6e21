import './polyfills.js';
import { GossipSub, type GossipSubComponents, type GossipsubMessage, type GossipsubOpts } from '@chainsafe/libp2p-gossipsub';
import { validateTopicScoreParams } from '@chainsafe/libp2p-gossipsub/score';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify, type Identify } from '@libp2p/identify';
import { TopicValidatorResult, type Libp2p, type Message, type PeerId } from '@libp2p/interface';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import { tcp } from '@libp2p/tcp';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import { sha256 } from '@qnexus/crypto';
import {
  APP_PENALTY_PER_OFFENCE,
  GOSSIP_MESH,
  RPC_FRAME_OVERHEAD,
  SCORE_THRESHOLDS,
  peerScoreParams,
  topicScoreParams,
} from './gossip-config.js';
import { loadOrCreatePeerKey } from './keys.js';
import { asError, plainBytes, requestStream, serveStream } from './reqresp.js';
import { DISCOVERY_LIMITS, decodeDiscoveryRequest, decodeDiscoveryResponse, encodeDiscoveryRequest, encodeDiscoveryResponse, isLocalOnlyAddr, type DiscoveredPeer } from './discovery.js';
import type {
  DiscoveryOptions,
  LogFn,
  P2PNode,
  P2POptions,
  P2PStats,
  PeerConnection,
  RequestHandler,
  RequestHandlerOptions,
  RequestOptions,
  TopicHandler,
  ValidationResult,
} from './types.js';

type Services = { identify: Identify; pubsub: GossipSub };

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
  private gossip!: GossipSub;
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
  private readonly stopController = new AbortController();
  private publishChain: Promise<unknown> = Promise.resolve();
  private readonly queueProgress = new Map<string, { bytes: number; at: number }>();
  private readonly bootstrapWaker = new Waker();
  private bootstrapLoopDone: Promise<void> = Promise.resolve();
  private readonly discoveryWaker = new Waker();
  private discoveryLoopDone: Promise<void> = Promise.resolve();

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
  }

  async start(): Promise<void> {
    const privateKey = await loadOrCreatePeerKey(this.opts.peerKeyPath);
    this.peerId = peerIdFromPrivateKey(privateKey).toString();
    this.bootstrap = this.parseBootstrap(this.opts.bootstrap);
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
      floodPublish: true,
      fallbackToFloodsub: false,
      doPX: false,
      // Whole-RPC frame cap on inbound streams; the per-message cap is enforced before validation.
      // An RPC frame may carry several messages (an IWANT answer bundles them): allow two full-size ones.
      maxInboundDataLength: 2 * this.opts.maxMessageBytes + RPC_FRAME_OVERHEAD,
      maxOutboundBufferSize: Math.max(MIN_OUTBOUND_BUFFER_BYTES, 4 * this.opts.maxMessageBytes),
      scoreParams: peerScoreParams(this.profile, (id) => this.appScore(id)),
      scoreThresholds: SCORE_THRESHOLDS,
    };

    this.libp2p = await createLibp2p<Services>({
      privateKey,
      start: false,
      addresses: {
        listen: this.opts.listen,
        ...(this.opts.announce !== undefined && this.opts.announce.length > 0 ? { announce: this.opts.announce } : {}),
      },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionManager: {
        maxConnections: 64,
        dialTimeout: 10_000,
        // libp2p refuses more than 5 inbound connections per second per host by default;
        // a devnet has every node on one host, so a simultaneous start would be refused.
        inboundConnectionThreshold: devnet ? 1000 : 5,
        maxIncomingPendingConnections: devnet ? 64 : 10,
      },
      connectionGater: {
        denyDialPeer: (peer) => this.isBanned(peer.toString()),
        denyInboundEncryptedConnection: (peer) => this.isBanned(peer.toString()),
        denyOutboundEncryptedConnection: (peer) => this.isBanned(peer.toString()),
      },
      services: {
        // Required: gossipsub learns which peers speak meshsub via identify.
        identify: identify(),
        // Built directly (not via gossipsub()) to keep the concrete GossipSub type: we need
        // reportMessageValidationResult, getScore, mesh and score params, which PubSub lacks.
        pubsub: (components: GossipSubComponents) => new GossipSub(components, gossipOpts),
      },
    });
    this.gossip = this.libp2p.services.pubsub;
    this.gossip.addEventListener('gossipsub:message', (evt) => {
      this.onGossipMessage(evt.detail).catch((err: unknown) => {
        this.log('error', 'gossip message handling failed', { error: asError(err).message });
      });
    });
    this.libp2p.addEventListener('peer:disconnect', (evt) => {
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
    // Serialise publishes so the flow-control wait applies in order (a FIFO queue).
    const run = this.publishChain.then(() => this.publishNow(topic, data));
    this.publishChain = run.catch(() => undefined);
    return run;
  }

  private async publishNow(topic: string, data: Uint8Array): Promise<number> {
    if (this.stopped) return 0;
    await this.waitForOutboundRoom(data.length);
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

  private outboundBlocked(size: number): boolean {
    const now = Date.now();
    let blocked = false;
    for (const [id, stream] of this.gossip.streamsOutbound) {
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

  private async onGossipMessage({ msg, msgId, propagationSource }: GossipsubMessage): Promise<void> {
    const topic = msg.topic;
    const data = plainBytes(msg.data);
    const from = propagationSource.toString();
    const handler = this.handlers.get(topic);
    const counters = this.counters.get(topic);
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
    // Forwarding (accept) or the P4 penalty (reject) happen inside gossipsub here.
    this.gossip.reportMessageValidationResult(msgId, from, toGossipResult(result));
    if (counters !== undefined) counters[result]++;
    if (result === 'accept' && handler?.deliver !== undefined) {
      try {
        handler.deliver(data, from);
      } catch (err) {
        this.log('error', 'deliver callback threw', { topic, from, error: asError(err).message });
      }
    }
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

  private readonly staticTrusted = new Set<string>();
  private dynamicTrusted = new Set<string>();

  setTrustedPeers(peerIds: Iterable<string>): void {
    this.dynamicTrusted = new Set(peerIds);
  }

  isTrusted(peerId: string): boolean {
    return this.staticTrusted.has(peerId) || this.dynamicTrusted.has(peerId);
  }

  isBanned(peerId: string): boolean {
    const until = this.bannedUntil.get(peerId);
    if (until === undefined) return false;
    if (Date.now() < until) return true;
    this.bannedUntil.delete(peerId);
    return false;
  }

  /** Gossipsub P5: negative, decaying with a one-minute half-life. */
  private appScore(peerId: string): number {
    const rec = this.penalties.get(peerId);
    if (rec === undefined) return 0;
    const points = decayedPoints(rec, Date.now());
    if (points < 0.01) {
      if (rec.offences.length === 0) this.penalties.delete(peerId);
      return 0;
    }
    return -APP_PENALTY_PER_OFFENCE * points;
  }

  // ------------------------------------------------------------------ request / response

  async handle(protocol: string, opts: RequestHandlerOptions, fn: RequestHandler): Promise<void> {
    await this.libp2p.handle(protocol, ({ stream, connection }) => {
      void serveStream(protocol, stream, connection, opts, fn, this.log);
    }, {
      maxInboundStreams: opts.maxInboundStreams,
      maxOutboundStreams: opts.maxOutboundStreams,
    });
  }

  async unhandle(protocol: string): Promise<void> {
    await this.libp2p.unhandle(protocol);
  }

  request(peerId: string, protocol: string, request: Uint8Array, opts: RequestOptions): AsyncIterable<Uint8Array> {
    return requestStream(this.libp2p, peerIdFromString(peerId), protocol, request, opts);
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
        try {
          await this.libp2p.dial(b.addr, { signal: AbortSignal.any([AbortSignal.timeout(5000), this.stopController.signal]) });
          this.log('info', 'connected to bootstrap peer', { addr: b.addr.toString() });
        } catch (err) {
          // Repeated failures while a peer is down are expected: warn once per outage.
          this.log(failures === 0 ? 'warn' : 'debug', 'bootstrap dial failed', {
            addr: b.addr.toString(), attempt: failures + 1, error: asError(err).message,
          });
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
        try {
          const pid = peerIdFromString(id);
          await this.libp2p.peerStore.merge(pid, { multiaddrs: found.get(id)!.map((a) => multiaddr(a)) });
          await this.libp2p.dial(pid, { signal: AbortSignal.any([AbortSignal.timeout(DISCOVERY_TIMEOUT_MS), this.stopController.signal]) });
          return true;
        } catch (err) {
          this.log('debug', 'dial of a discovered peer failed', { peer: id, error: asError(err).message });
          return false;
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
    return { peers: this.libp2p.getPeers().length, topics };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopController.abort();
    this.bootstrapWaker.wake();
    this.discoveryWaker.wake();
    await this.bootstrapLoopDone;
    await this.discoveryLoopDone;
    await this.libp2p.stop();
    this.log('info', 'p2p node stopped', { peerId: this.peerId });
  }
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
