/**
 * Public, libp2p-free types of the networking layer. The node package builds
 * only on these: peers are base58 peer-id strings, addresses are multiaddr
 * strings and payloads are raw bytes.
 */

/** Outcome of validating a gossip message (maps 1:1 onto gossipsub's). */
export type ValidationResult = 'accept' | 'ignore' | 'reject';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFn = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

export interface PenaltyOptions {
  /** Offences within `windowMs` that trigger a disconnect + ban (default 5). */
  maxOffences?: number;
  /** Sliding window for counting offences (default 60 000 ms). */
  windowMs?: number;
  /** Cooling-off period during which the peer is refused (default 5 min). */
  banMs?: number;
}

export interface P2POptions {
  /** File holding the persistent libp2p private key (protobuf); created with mode 0600 if missing. */
  peerKeyPath: string;
  /** Listen multiaddrs, e.g. ['/ip4/127.0.0.1/tcp/0']. */
  listen: string[];
  /** Addresses to announce instead of the listen addresses (containers, NAT). */
  announce?: string[];
  /**
   * Multiaddrs with /p2p/<peerId>. Dialled at start and re-dialled with
   * exponential backoff while we are connected to none of them. Dial failures
   * are logged, never fatal. Our own peer id, if listed, is skipped.
   */
  bootstrap: string[];
  /** 'devnet' (default): no IP-colocation penalty, relaxed inbound rate limit; otherwise as 'public'. */
  scoringProfile?: 'devnet' | 'public';
  /** Hard cap on any gossip message; larger ones are rejected before validation. */
  maxMessageBytes: number;
  /** Structured logger; defaults to writing warn/error to stderr. */
  log?: LogFn;
  /** Tuning of `penalize()`; defaults suit a devnet. */
  penalty?: PenaltyOptions;
  /** Bootstrap re-dial backoff bounds (defaults 500 ms .. 10 000 ms). */
  bootstrapBackoffMs?: { min: number; max: number };
  /** Peer exchange: serve it, and use it to find the peers we lack (see discovery.ts). */
  discovery?: DiscoveryOptions;
  /**
   * Topics peers may subscribe to here (besides the ones we subscribe to ourselves): a peer's
   * subscription to any other topic is dropped before gossipsub keeps state for it, and counted
   * as spam. Messages are validated only on topics we subscribe to; the rest are dropped
   * unscored and uncached. Default: any topic (for tests); nodes pass their chain's topics.
   */
  allowedTopics?: string[];
  /** Peers trusted from the start (e.g. the genesis beacon); `setTrustedPeers` adds the current committees. */
  trustedPeers?: string[];
  /** Connection admission; defaults in DEFAULT_CONNECTION_LIMITS. */
  connectionLimits?: ConnectionLimits;
}

/**
 * Connection admission. Trusted peers (the beacon, members of the current and
 * next committees, known by their beacon-verified peer bindings) always get a
 * connection, up to `maxConnections`; everyone else shares `maxUntrusted`
 * slots, at most `maxUntrustedPerIp` of them from one IP address, so a flood of
 * fresh identities cannot lock out a restarting validator.
 */
export interface ConnectionLimits {
  /** Hard cap on connections of any kind (default 128). */
  maxConnections?: number;
  /** Connections to untrusted peers (default 48). */
  maxUntrusted?: number;
  /** Connections to untrusted peers from one IP address (default 16). */
  maxUntrustedPerIp?: number;
  /** New inbound connections per second from one IP address before the handshake (default 1000 on the devnet profile, 5 otherwise). */
  inboundPerIpPerSec?: number;
}

export interface DiscoveryOptions {
  /** Protocol id; bind it to the chain (e.g. `/qnexus/<chain>/peers/1.0.0`) so two networks never mix. */
  protocol: string;
  /** Peers to find and stay connected to whatever the topics say (e.g. the beacon). */
  wantPeers?: string[];
  /** Look for more peers while a subscribed topic has fewer publish targets than this (default 4). */
  minTopicPeers?: number;
  /** How often to check what is missing (default 3000 ms; a new connection triggers a check at once). */
  intervalMs?: number;
}

export interface TopicHandler {
  /** Per-topic cap (≤ maxMessageBytes); oversize → 'reject' without calling validate. */
  maxBytes?: number;
  /**
   * Runs BEFORE the message is forwarded. May be async. Throwing counts as
   * 'reject' (and is logged). `from` is the propagation source (the peer that
   * handed us the message), not necessarily its author.
   */
  validate(data: Uint8Array, from: string): ValidationResult | Promise<ValidationResult>;
  /** Called only for accepted messages, after forwarding was triggered. */
  deliver?(data: Uint8Array, from: string): void;
  /**
   * Validations of this topic's messages from one peer that run at once (default 4); the rest
   * wait in that peer's queue (at most 256: beyond it they are dropped and the peer penalised),
   * and each starts only if the peer's score is still above the graylist threshold, so a peer
   * whose first messages were invalid gets no more of its messages checked.
   */
  concurrencyPerPeer?: number;
  /** Publishes on this topic skip the outbound flow-control wait (consensus messages). */
  urgent?: boolean;
}

/** Limits of a direct-message protocol (see P2PNode.handleDirect). */
export interface DirectHandlerOptions {
  /** Largest frame; a larger one ends the stream and penalises the sender. */
  maxFrameBytes: number;
  /** Frames a peer may send per second, sustained, and at once; beyond it frames are dropped (and the peer penalised once per burst). */
  framesPerSec: number;
  frameBurst: number;
}

/** Handles one direct frame from `from`; 'reject' penalises the sender (as an invalid gossip message does). */
/** What a full direct queue does with a new frame: drop its oldest one, or refuse the new one. */
export type DirectWhenFull = 'drop-oldest' | 'refuse';

/** How P2PNode.sendDirect treats a full queue (see there). */
export interface DirectSendOptions {
  whenFull?: DirectWhenFull;
}

export type DirectHandler = (data: Uint8Array, from: string) => ValidationResult | Promise<ValidationResult>;

export interface RequestHandlerOptions {
  maxInboundStreams: number;
  maxOutboundStreams: number;
  /** Largest accepted request frame; a larger one resets the stream. */
  maxRequestBytes: number;
  /** Bound on the whole exchange (read request, produce and write all responses). */
  timeoutMs: number;
  /** What one peer (and all peers together) may ask of this protocol; see ServeBudget for the defaults. */
  budget?: ServeBudget;
}

/**
 * The serving budget of a request/response protocol: token buckets per peer
 * (and, for bytes, for all peers together). A request beyond the peer's
 * request budget is refused (the stream is reset before the request is read,
 * no handler work); a peer that keeps asking beyond it is penalised once per
 * burst of refusals. A response stops early (after at least one frame) once the
 * peer's or the global byte budget is spent: clients handle short responses.
 */
export interface ServeBudget {
  /** Requests per second per peer (default 50) and the bucket size (default 2 × the rate). */
  requestsPerSec?: number;
  requestBurst?: number;
  /** Response bytes per second per peer (default: unbounded) and the bucket size (default 2 × the rate). */
  bytesPerSec?: number;
  byteBurst?: number;
  /** Response bytes per second for all peers together (default: unbounded) and its bucket size (default 2 × the rate). */
  globalBytesPerSec?: number;
  globalByteBurst?: number;
}

export interface RequestOptions {
  /** Bound on the whole exchange, dial included. */
  timeoutMs: number;
  maxResponseFrameBytes: number;
  maxFrames: number;
  /** Bound on all response frames together (default maxFrames × maxResponseFrameBytes): beyond it, `TOO_MANY_BYTES`. */
  maxResponseBytes?: number;
  /**
   * Longest wait for the first response frame after the stream opens, and between
   * two frames (default: none, only `timeoutMs`): a server that accepts and then
   * stalls fails with `STALLED` this soon.
   */
  idleTimeoutMs?: number;
}

/**
 * Responder for one request. `signal` aborts when the exchange times out or the
 * stream dies, so long-running handlers can stop early (optional to use).
 */
export type RequestHandler = (request: Uint8Array, peerId: string, signal: AbortSignal) => AsyncIterable<Uint8Array>;

export interface TopicStats {
  /** Peers we can publish to on this topic (see `topicPeers`). */
  peers: number;
  accept: number;
  ignore: number;
  reject: number;
}

export interface P2PStats {
  /** Connected peers. */
  peers: number;
  topics: Record<string, TopicStats>;
  /** Inbound direct-message protocols (handleDirect): streams accepted, frames handled, dropped over budget, rejected by the handler. */
  direct?: Record<string, DirectStats>;
  /** Request/response streams this node opened as a client (a reused stream counts once). */
  requestStreamsOpened?: number;
}

export interface DirectStats {
  streams: number;
  frames: number;
  dropped: number;
  rejected: number;
}

/** One open connection to a peer. */
export interface PeerConnection {
  peerId: string;
  /** The remote multiaddr of the connection (without /p2p/). */
  addr: string;
  direction: 'inbound' | 'outbound';
}

export interface P2PNode {
  readonly peerId: string;
  /** Full dialable addresses including /p2p/<id>. */
  multiaddrs(): string[];
  subscribe(topic: string, handler: TopicHandler): void;
  unsubscribe(topic: string): void;
  /**
   * Publishes to the topic; resolves to the number of peers it was sent to.
   * Never throws for "no peers" or duplicates (returns 0). Publishes are queued
   * and wait while a peer's outgoing gossip buffer is over the in-flight window,
   * so bursts cannot overflow the stream. Throws only for a payload above the
   * message cap (a caller bug: every peer would reject it and penalise us).
   */
  publish(topic: string, data: Uint8Array): Promise<number>;
  /** Peers subscribed to the topic that we have a gossip stream to (i.e. publish targets). */
  topicPeers(topic: string): string[];
  /** Resolves true once topicPeers(topic).length ≥ min, false on timeout. */
  waitForTopicPeers(topic: string, min: number, timeoutMs: number): Promise<boolean>;
  /** Our gossipsub mesh for the topic (the peers we forward to). */
  meshPeers(topic: string): string[];
  connectedPeers(): string[];
  /** Open connections with their remote addresses (for operators: `GET /v1/admin/peers`). */
  connections(): PeerConnection[];
  dial(multiaddr: string): Promise<void>;
  /** Close every connection to the peer (a bootstrap peer is re-dialled only once we are isolated from all of them). */
  hangUp(peerId: string): Promise<void>;
  /** Current gossipsub score of a peer (0 if unknown). For metrics and debugging. */
  peerScore(peerId: string): number;
  /**
   * App-level penalty: lowers the peer's gossipsub app-specific score; after
   * `maxOffences` within `windowMs` the peer is disconnected and refused for `banMs`.
   */
  penalize(peerId: string, reason: string): void;
  /** True while a peer is in its cooling-off period. */
  isBanned(peerId: string): boolean;
  /**
   * Replace the dynamic set of trusted peers (those of `P2POptions.trustedPeers` stay
   * trusted): reserved connection slots, a positive app score (preferred in the mesh), our own
   * messages are published to all of them, and only their queues hold publishes back.
   */
  setTrustedPeers(peerIds: Iterable<string>): void;
  isTrusted(peerId: string): boolean;
  handle(protocol: string, opts: RequestHandlerOptions, fn: RequestHandler): Promise<void>;
  unhandle(protocol: string): Promise<void>;
  /**
   * Serve a direct-message protocol: one-way frames from a peer over a long-lived stream, handled
   * one at a time per stream, bounded and rate-limited per peer (see direct.ts).
   */
  handleDirect(protocol: string, opts: DirectHandlerOptions, fn: DirectHandler): Promise<void>;
  /**
   * Send one frame to a connected peer on a direct-message protocol, over the stream kept open
   * for that peer and protocol (opened, or reopened, on demand). Never blocks; delivery is not
   * acknowledged. False, sending nothing, when the peer is not connected or its stream could not
   * be opened lately (it does not serve the protocol): reach it another way, e.g. gossip.
   * When the peer's queue is full (DIRECT_MAX_QUEUED frames), the oldest frame is dropped, which
   * suits messages a newer one supersedes (votes); `whenFull: 'refuse'` returns false instead,
   * sending nothing, for messages that must not be lost silently (transaction batches).
   */
  sendDirect(peerId: string, protocol: string, data: Uint8Array, opts?: DirectSendOptions): boolean;
  /** Opens a new stream, writes the framed request and yields response frames as they arrive. */
  request(peerId: string, protocol: string, request: Uint8Array, opts: RequestOptions): AsyncIterable<Uint8Array>;
  stats(): P2PStats;
  stop(): Promise<void>;
}
