import { beaconTopics } from '@qnexus/types';

/** Gossip topics and stream protocols, per chain and shard (design brief §6). */
export function topics(chainId: string, shard: number) {
  const base = `/qnexus/${chainId}/shard/${shard}`;
  return {
    tx: `${base}/tx`,
    block: `${base}/block`,
    vote: `${base}/vote`,
    /** A validator's own votes, sent once to each connected peer of the shard (direct.ts), instead of gossip. */
    voteDirectProtocol: `${base}/vote/direct/1.0.0`,
    /** Batches of transactions admitted through a node's API, sent once to each connected peer of the shard (node's TxGossip), instead of gossip. */
    txDirectProtocol: `${base}/tx/direct/1.0.0`,
    statusProtocol: `${base}/status/1.0.0`,
    blocksProtocol: `${base}/blocks/1.0.0`,
    txsProtocol: `${base}/txs/1.0.0`,
    /** State snapshots of this shard (offers of a certified height, then trie chunks at it): packages/node/src/snapshot.ts. */
    snapshotProtocol: `${base}/snapshot/1`,
  };
}
export type Topics = ReturnType<typeof topics>;

/**
 * Every gossip topic of a chain: each shard's and the beacon's. What peers may subscribe to at
 * any of its processes (`P2POptions.allowedTopics`): a node or the beacon answers peer exchange
 * for every shard's topics, so it keeps those subscriptions, and nothing else.
 */
export function chainTopics(chainId: string, shardCount: number): string[] {
  const out: string[] = [];
  for (let k = 0; k < shardCount; k++) {
    const t = topics(chainId, k);
    out.push(t.tx, t.block, t.vote);
  }
  const b = beaconTopics(chainId);
  out.push(b.epochs, b.registry);
  return out;
}
