// TEST-ONLY fault injector: makes a validator equivocate. It is not part of any
// package (nothing under packages/ imports it, and the published `qnexus`
// binary cannot reach it), so no production build can enable it by accident.
//
// It joins a shard's gossip as a separate libp2p peer holding a copy of the
// victim validator's key. Each time the victim's own (honest) node publishes a
// prevote, the harness signs a second prevote for the same height and round
// but another block and publishes it: two conflicting signed votes by one
// validator, which honest nodes detect, record and report to the beacon.
import { join } from 'node:path';
import { addressFromPublicKey, getBackend, toHex, type SchemeName } from '@qnexus/crypto';
import { createP2PNode, topics, type P2PNode } from '@qnexus/p2p';
import { decodeVoteGossip, encodeVote, voteSigningBytes, type VoteBody } from '@qnexus/types';

export interface EquivocatorOptions {
  chainId: string;
  shard: number;
  scheme: SchemeName;
  /** The victim validator's key pair. */
  publicKey: Uint8Array;
  secretKey: Uint8Array;
  /** Multiaddrs (with /p2p/<id>) of the shard's nodes. */
  bootstrap: string[];
  /** Where the harness keeps its libp2p key. */
  dataDir: string;
  /** Conflicting votes to deliver before stopping (default 3). */
  max?: number;
}

export interface Equivocator {
  /** Conflicting votes delivered to at least one peer so far. */
  readonly published: number;
  stop(): Promise<void>;
}

export async function startEquivocator(o: EquivocatorOptions): Promise<Equivocator> {
  const t = topics(o.chainId, o.shard);
  const backend = getBackend(o.scheme);
  const victim = toHex(addressFromPublicKey(o.publicKey));
  const max = o.max ?? 3;
  let published = 0;
  const done = new Set<string>();
  const p2p: P2PNode = await createP2PNode({
    peerKeyPath: join(o.dataDir, 'equivocator-peer.key'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: o.bootstrap,
    maxMessageBytes: 4 * 1024 * 1024,
    log: () => undefined,
  });
  const conflict = (b: VoteBody): VoteBody => {
    const other = new Uint8Array(32).fill(0xee);
    other[0] = b.height & 0xff;
    return { ...b, blockHash: b.blockHash === null ? other : null };
  };
  p2p.subscribe(t.vote, {
    maxBytes: 16 * 1024,
    validate: (data) => {
      try {
        const v = decodeVoteGossip(data);
        const key = `${v.body.height}/${v.body.round}`;
        if (published < max && v.body.step === 'prevote' && !done.has(key) && toHex(v.body.validator) === victim) {
          done.add(key);
          const body = conflict(v.body);
          const raw = encodeVote({ body, signature: backend.sign(o.secretKey, voteSigningBytes(body)) });
          // Count only copies that reached a peer: right after start the harness may not be in
          // the topic's mesh yet, and a vote nobody received proves nothing.
          void p2p.publish(t.vote, raw).then(
            (n) => {
              if (n > 0) published++;
            },
            () => undefined,
          );
        }
      } catch {
        // Not our business: the real nodes judge every message.
      }
      return 'ignore';
    },
  });
  return {
    get published() {
      return published;
    },
    stop: () => p2p.stop(),
  };
}
