/**
 * gossipsub 14 with the admission rules a hostile network needs. gossipsub
 * itself keeps state for any topic a peer names (a million junk SUBSCRIBEs
 * grew a validator by 450 MB), caches messages on topics nobody here serves
 * without validating or scoring them, and flood-publishes our own messages to
 * every peer that subscribes. This subclass, before gossipsub sees an RPC:
 * - keeps only subscriptions to the chain's topics (`allowSubscription`),
 * - drops messages on topics this node does not serve (unscored, uncached),
 * and reports both to `onJunk` so a peer that keeps sending them is scored;
 * and it publishes our own messages to the mesh plus every trusted peer of
 * the topic (the committees and the beacon) instead of to everyone.
 */
import { GossipSub, type GossipSubComponents, type GossipsubOpts } from '@chainsafe/libp2p-gossipsub';
import type { RPC } from '@chainsafe/libp2p-gossipsub/message';
import type { PeerId } from '@libp2p/interface';
import { reader } from 'protons-runtime';
import type { Uint8ArrayList } from 'uint8arraylist';

/**
 * Most messages, and subscriptions, one RPC may carry. Our peers send one message per RPC, except
 * in answer to an IWANT, which asks for at most a few heartbeats' worth; subscriptions are a few
 * per peer. An RPC over either is dropped before it is decoded and its sender penalised.
 */
export const MAX_RPC_MESSAGES = 256;
export const MAX_RPC_SUBSCRIPTIONS = 256;

export interface GossipHooks {
  /** May a peer subscribe to this topic here (a topic of our chain)? */
  allowSubscription(topic: string): boolean;
  /** Do we serve (validate and relay) messages of this topic? */
  serves(topic: string): boolean;
  /** A peer sent `n` items we dropped unprocessed (junk subscriptions or messages on topics we do not serve). */
  onJunk(peerId: string, n: number, what: string): void;
  /** A peer sent an RPC beyond MAX_RPC_MESSAGES or MAX_RPC_SUBSCRIPTIONS (dropped undecoded): an offence. */
  onOversizedRpc(peerId: string, what: string): void;
  isTrusted(peerId: string): boolean;
}

interface PublishSelection {
  tosend: Set<string>;
  tosendCount: { direct: number; floodsub: number; mesh: number; fanout: number };
}

export class QnexusGossipSub extends GossipSub {
  constructor(components: GossipSubComponents, opts: Partial<GossipsubOpts>, private readonly hooks: GossipHooks) {
    // Our own messages go to the mesh plus the trusted topic peers (below), never flooded to everyone.
    super(components, { ...opts, floodPublish: false });
    // `selectPeersToPublish` is private in gossipsub's typings but an ordinary method at run
    // time; wrapping it is the one way to add peers to a publish without forking gossipsub.
    const self = this as unknown as { selectPeersToPublish(topic: string): PublishSelection };
    const base = self.selectPeersToPublish.bind(this);
    self.selectPeersToPublish = (topic: string): PublishSelection => {
      const sel = base(topic);
      const threshold = this.opts.scoreThresholds.publishThreshold;
      for (const p of this.getSubscribers(topic)) {
        const id = p.toString();
        if (!sel.tosend.has(id) && this.hooks.isTrusted(id) && this.streamsOutbound.has(id) && this.score.score(id) >= threshold) {
          sel.tosend.add(id);
          sel.tosendCount.floodsub++;
        }
      }
      return sel;
    };
    // Likewise `pipePeerReadStream`, which decodes each inbound RPC frame: we screen the frames
    // first, so an RPC listing too many messages or subscriptions costs its sender a penalty
    // instead of being decoded (gossipsub's own decode limits drop it unattributed).
    const reading = this as unknown as { pipePeerReadStream(peerId: PeerId, source: AsyncIterable<Uint8ArrayList>): Promise<void> };
    const pipe = reading.pipePeerReadStream.bind(this);
    reading.pipePeerReadStream = (peerId, source) => pipe(peerId, this.screen(peerId.toString(), source));
  }

  private async *screen(id: string, source: AsyncIterable<Uint8ArrayList>): AsyncGenerator<Uint8ArrayList> {
    for await (const frame of source) {
      const n = countRpcEntries(frame.subarray());
      if (n !== null && (n.messages > MAX_RPC_MESSAGES || n.subscriptions > MAX_RPC_SUBSCRIPTIONS)) {
        this.hooks.onOversizedRpc(id, `an RPC of ${n.messages} messages and ${n.subscriptions} subscriptions`);
        continue;
      }
      yield frame;
    }
  }

  override async handleReceivedRpc(from: PeerId, rpc: RPC): Promise<void> {
    const id = from.toString();
    // A graylisted peer's RPC is ignored whole by gossipsub; do not count its junk either.
    if (!this.acceptFrom(id)) return super.handleReceivedRpc(from, rpc);
    if (rpc.subscriptions.length > 0) {
      const kept = rpc.subscriptions.filter((s) => s.topic != null && this.hooks.allowSubscription(s.topic));
      if (kept.length < rpc.subscriptions.length) this.hooks.onJunk(id, rpc.subscriptions.length - kept.length, 'subscriptions to topics of no use here');
      rpc.subscriptions = kept;
    }
    if (rpc.messages.length > 0) {
      const kept = rpc.messages.filter((m) => this.hooks.serves(m.topic));
      if (kept.length < rpc.messages.length) this.hooks.onJunk(id, rpc.messages.length - kept.length, 'messages on topics this node does not serve');
      rpc.messages = kept;
    }
    return super.handleReceivedRpc(from, rpc);
  }
}

/**
 * Messages (field 2) and subscriptions (field 1) of an encoded RPC, from a walk over its top-level
 * fields only (each skipped by its length): null when it does not parse (gossipsub's decoder then
 * refuses it).
 */
export function countRpcEntries(buf: Uint8Array): { messages: number; subscriptions: number } | null {
  const r = reader(buf);
  let messages = 0;
  let subscriptions = 0;
  try {
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag >>> 3 === 1) subscriptions++;
      else if (tag >>> 3 === 2) messages++;
      r.skipType(tag & 7);
    }
  } catch {
    return null;
  }
  return { messages, subscriptions };
}
