/**
 * @qnexus/p2p — bytes-level networking for Quantum Nexus nodes.
 *
 * libp2p 2 (TCP + Noise + Yamux, identify) with gossipsub 14 for broadcast and
 * length-prefixed request/response streams. Nothing libp2p-specific leaks into
 * the node-facing API except `loadOrCreatePeerKey`, which returns the libp2p
 * private key for tools that need it.
 */
export { createP2PNode } from './node.js';
export { loadOrCreatePeerKey, peerIdFromKeyFile } from './keys.js';
export { P2PRequestError, type P2PRequestErrorCode } from './errors.js';
export { discoveryProtocol } from './node.js';
export { deadlineSignal, withoutListenerCap, type Deadline } from './deadline.js';
export { RateLimiter, type RateDecision, type RateLimitOptions } from './ratelimit.js';
// The chain's topic and protocol names: what the shard nodes and the beacon subscribe to and serve.
export { chainTopics, topics, type Topics } from './topics.js';
export type {
  ConnectionLimits,
  DirectHandler,
  DirectSendOptions,
  DirectWhenFull,
  DirectHandlerOptions,
  DirectStats,
  DiscoveryOptions,
  LogFn,
  LogLevel,
  P2PNode,
  P2POptions,
  P2PStats,
  PenaltyOptions,
  PeerConnection,
  RequestHandler,
  RequestHandlerOptions,
  RequestOptions,
  ServeBudget,
  TopicHandler,
  TopicStats,
  ValidationResult,
} from './types.js';
