// A shard node's transaction path on a real libp2p node (store, chain, mempool, TxGossip and,
// as asked, the txs protocol, inventories and direct batches), for the tx propagation tests.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Genesis, TxEnvelope } from '@qnexus/types';
import { ChainStore } from '@qnexus/db';
import { createP2PNode, topics, type P2PNode } from '@qnexus/p2p';
import type { Logger } from '@qnexus/runtime';
import { Chain } from '../src/chain.js';
import { Mempool } from '../src/mempool.js';
import { createMetrics, type Metrics } from '../src/metrics.js';
import { TxGossip, TxInventory, serveTxsByIds, txsProtocolOptions, type TxDirectOptions, type TxReannounceOptions } from '../src/txgossip.js';
import { TxVerifier } from '../src/verifier.js';

export interface TxPeer {
  name: string;
  p2p: P2PNode;
  mempool: Mempool;
  metrics: Metrics;
  gossip: TxGossip;
  inventory: TxInventory | null;
  /** Every penalty it handed out: [peer id, reason]. */
  penalties: [string, string][];
  store: ChainStore;
}

export interface TxPeerOptions {
  /** Send batches directly over the shard's direct protocol (and serve it); absent: gossip only, as an older node. */
  direct?: Omit<TxDirectOptions, 'protocol'>;
  /** Serve the txs protocol, and run inventories with these options unless null; absent: neither. */
  reannounce?: TxReannounceOptions | null;
}

/** Start a peer of shard 0 of `g`, its data under `dir/name`. */
export async function startTxPeer(dir: string, g: Genesis, name: string, log: Logger, o: TxPeerOptions = {}): Promise<TxPeer> {
  const metrics = createMetrics();
  const verifier = new TxVerifier('ml-dsa-44', metrics, null);
  const store = await ChainStore.open(join(dir, name));
  const chain = await Chain.open(store, g, 0, verifier, log);
  const mempool = new Mempool(chain, verifier);
  const p2p = await createP2PNode({ peerKeyPath: join(dir, `${name}.key`), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], maxMessageBytes: 4 * 1024 * 1024, log: () => undefined });
  const t = topics(g.chainId, 0);
  const gossip = new TxGossip(p2p, t.tx, mempool, metrics, () => undefined, 64, 10, o.direct ? { protocol: t.txDirectProtocol, ...o.direct } : {});
  await gossip.subscribe();
  let inventory: TxInventory | null = null;
  if (o.reannounce !== undefined) {
    await p2p.handle(t.txsProtocol, txsProtocolOptions(g.maxBlockTxs), serveTxsByIds(mempool));
    if (o.reannounce !== null) {
      inventory = new TxInventory(p2p, t, mempool, metrics, log, g, o.reannounce);
      await inventory.start();
    }
  }
  const penalties: [string, string][] = [];
  const penalize = p2p.penalize.bind(p2p);
  p2p.penalize = (id: string, reason: string) => {
    penalties.push([id, reason]);
    penalize(id, reason);
  };
  return { name, p2p, mempool, metrics, gossip, inventory, penalties, store };
}

export async function stopTxPeer(p: TxPeer): Promise<void> {
  p.inventory?.stop();
  p.gossip.stop();
  await p.p2p.stop();
  await p.store.close();
}

/** Admit through the API's path: mempool admission, then a batch sent to the shard. */
export async function submitTxs(p: TxPeer, envs: TxEnvelope[]): Promise<void> {
  for (const e of envs) {
    assert.equal(await p.mempool.admit(e), 'added');
    p.gossip.publish(e.raw);
  }
  p.gossip.flush();
}

/** Connect two peers and wait until each sees the other on the shard's tx topic. */
export async function connectTxPeers(g: Genesis, a: TxPeer, b: TxPeer): Promise<void> {
  await a.p2p.dial(b.p2p.multiaddrs()[0]!);
  const t = topics(g.chainId, 0);
  await waitUntil('both see each other on the tx topic', () => a.p2p.topicPeers(t.tx).includes(b.p2p.peerId) && b.p2p.topicPeers(t.tx).includes(a.p2p.peerId));
}

export const holdsAll = (p: TxPeer, envs: TxEnvelope[]): boolean => envs.every((e) => p.mempool.get(e.hashHex) !== undefined);

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Poll `cond` until it holds (bounded: fails after `timeoutMs`). */
export async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}
