/** Gossip topics and stream protocols, per chain and shard (design brief §6). */
export function topics(chainId: string, shard: number) {
  const base = `/qnexus/${chainId}/shard/${shard}`;
  return {
    tx: `${base}/tx`,
    block: `${base}/block`,
    vote: `${base}/vote`,
    statusProtocol: `${base}/status/1.0.0`,
    blocksProtocol: `${base}/blocks/1.0.0`,
    txsProtocol: `${base}/txs/1.0.0`,
  };
}
export type Topics = ReturnType<typeof topics>;
