/**
 * Gossipsub tuning for Quantum Nexus.
 *
 * Scoring philosophy: positive contributions are small and capped (so good
 * behaviour cannot bank credit), while an invalid message (our validator said
 * 'reject') costs a lot — one rejected message pushes a peer below the gossip
 * threshold and out of our mesh (negative-score peers are pruned at the next
 * heartbeat); a second one graylists it (all its RPCs are ignored). The
 * penalty decays over a few minutes so a peer can recover from a transient bug.
 * Mesh-delivery penalties (P3/P3b) are off: devnet traffic is bursty and often
 * idle, and P3 would punish honest peers on quiet topics.
 */
import {
  createPeerScoreParams,
  createTopicScoreParams,
  type PeerScoreParams,
  type PeerScoreThresholds,
  type TopicScoreParams,
} from '@chainsafe/libp2p-gossipsub/score';

export type ScoringProfile = 'devnet' | 'public';

/** Bytes of RPC framing/protobuf overhead allowed on top of the message cap. */
export const RPC_FRAME_OVERHEAD = 64 * 1024;

export const GOSSIP_MESH = {
  D: 4,
  Dlo: 3,
  Dhi: 8,
  Dout: 1,      // must be < Dlo and ≤ D/2
  Dscore: 2,
  Dlazy: 4,
  heartbeatInterval: 700,
  mcacheLength: 6,   // heartbeats a message stays in the cache: async (ML-DSA) validation must finish within ~4 s
  mcacheGossip: 3,
} as const;

export const SCORE_THRESHOLDS: PeerScoreThresholds = {
  gossipThreshold: -10,
  publishThreshold: -50,
  graylistThreshold: -80,
  acceptPXThreshold: 10,          // PX is disabled anyway
  opportunisticGraftThreshold: 1,
};

/** Weight of one unit of app-level penalty (see P2PNode.penalize). */
export const APP_PENALTY_PER_OFFENCE = 10;

/**
 * App score of a trusted peer (a committee member or the beacon): enough to keep it in our
 * meshes and graft it first (P1 + P2 of an honest peer stay under +8), not enough to outweigh
 * an invalid message (P4: −30) or two of our penalties.
 */
export const TRUSTED_APP_SCORE = 15;

/**
 * Bounds on what one gossipsub RPC may list; an RPC over any of them is dropped whole while it
 * is decoded (messages and subscriptions are screened before that, with a penalty: gossip.ts).
 * Our meshes send one message per RPC except when answering IWANTs, which ask for at most a few
 * heartbeats' worth; subscriptions are a handful per peer (3 per shard + 2); PX is off.
 */
export const DECODE_RPC_LIMITS = {
  maxSubscriptions: 256,
  maxMessages: 256,
  maxIhaveMessageIDs: 5000,
  maxIwantMessageIDs: 5000,
  maxIdontwantMessageIDs: 5000,
  maxControlMessages: 256,
  maxPeerInfos: 16,
};

export function peerScoreParams(profile: ScoringProfile, appSpecificScore: (peerId: string) => number): PeerScoreParams {
  return createPeerScoreParams({
    topics: {},                    // filled in per subscribed topic (topicScoreParams)
    topicScoreCap: 10,
    appSpecificScore,
    appSpecificWeight: 1,
    // Many peers behind one IP is normal on loopback / in compose; on a public net it smells of a Sybil.
    IPColocationFactorWeight: profile === 'devnet' ? 0 : -5,
    IPColocationFactorThreshold: 3,
    behaviourPenaltyWeight: -10,
    behaviourPenaltyThreshold: 4,
    behaviourPenaltyDecay: 0.9,
    decayInterval: 1000,
    decayToZero: 0.01,
    retainScore: 10 * 60 * 1000,   // a misbehaving peer cannot reset its score by reconnecting
  });
}

export function topicScoreParams(): TopicScoreParams {
  return createTopicScoreParams({
    topicWeight: 1,
    // P1: up to +3 for 5 minutes in the mesh
    timeInMeshWeight: 0.01,
    timeInMeshQuantum: 1000,
    timeInMeshCap: 300,
    // P2: up to +5 for being first to deliver valid messages
    firstMessageDeliveriesWeight: 0.5,
    firstMessageDeliveriesDecay: 0.9,
    firstMessageDeliveriesCap: 10,
    // P3 / P3b off (see header)
    meshMessageDeliveriesWeight: 0,
    meshFailurePenaltyWeight: 0,
    // P4: counter² × weight → one reject −30, two −120 (graylisted); half-life ≈ 70 s
    invalidMessageDeliveriesWeight: -30,
    invalidMessageDeliveriesDecay: 0.99,
  });
}
