import { getBackend, parseAddress, type SignatureBackend } from '@qnexus/crypto';
import { epochSeed, type Committee } from '@qnexus/consensus';
import { epochCommittees } from '@qnexus/state';
import { genesisHash, type EpochAnnouncement, type Genesis, type GenesisValidator, type SignedPeerBinding } from '@qnexus/types';

export interface Membership {
  shard: number;
  stake: bigint;
}

interface EpochView {
  committees: Committee[];
  members: Map<string, Membership>;
  seed: Uint8Array;
}

/** Epoch views kept in memory (the current one, the previous one, a few lookups around them). */
const EPOCH_CACHE = 8;

/**
 * The validator registry (today: the genesis validator set) and its per-epoch
 * shard assignment, plus the libp2p peer each validator bound itself to.
 */
export class Registry {
  readonly genesisHash: Uint8Array;
  readonly backend: SignatureBackend;
  private readonly validators = new Map<string, GenesisValidator>();
  private readonly views = new Map<number, EpochView>();
  /** validator address -> its latest binding (peer id, shard). */
  private readonly bound = new Map<string, { peerId: string; shard: number; binding: SignedPeerBinding }>();

  constructor(readonly genesis: Genesis) {
    this.genesisHash = genesisHash(genesis);
    this.backend = getBackend(genesis.scheme);
    for (const v of genesis.validators) this.validators.set(v.address, v);
  }

  validator(address: string): GenesisValidator | undefined {
    return this.validators.get(address);
  }

  private view(epoch: number): EpochView {
    let v = this.views.get(epoch);
    if (!v) {
      const committees = epochCommittees(this.genesis, epoch);
      const members = new Map<string, Membership>();
      committees.forEach((c, shard) => {
        for (const m of c.validators) members.set(m.address, { shard, stake: m.stake });
      });
      v = { committees, members, seed: epochSeed(this.genesis.chainId, this.genesisHash, epoch) };
      if (this.views.size >= EPOCH_CACHE) this.views.delete(this.views.keys().next().value!);
      this.views.set(epoch, v);
    }
    return v;
  }

  committees(epoch: number): Committee[] {
    return this.view(epoch).committees;
  }

  seed(epoch: number): Uint8Array {
    return this.view(epoch).seed;
  }

  membership(epoch: number, address: string): Membership | undefined {
    return this.view(epoch).members.get(address);
  }

  /** Remember the peer a committee member speaks through (the latest binding wins). */
  bind(address: string, shard: number, peerId: string, binding: SignedPeerBinding): void {
    this.bound.set(address, { peerId, shard, binding });
  }

  peerOf(address: string): string | null {
    return this.bound.get(address)?.peerId ?? null;
  }

  /** Peers bound by members of `shard`'s committee in `epoch`, deduplicated. */
  shardPeers(epoch: number, shard: number): string[] {
    const c = this.view(epoch).committees[shard];
    if (!c) return [];
    const out = new Set<string>();
    for (const m of c.validators) {
      const b = this.bound.get(m.address);
      if (b && b.shard === shard) out.add(b.peerId);
    }
    return [...out];
  }

  announcement(epoch: number, issuedSlot: number): EpochAnnouncement {
    const v = this.view(epoch);
    return {
      chainId: this.genesis.chainId,
      epoch,
      startSlot: epoch * this.genesis.epochLength,
      seed: v.seed,
      committees: v.committees.map((c, shard) => ({ shard, members: c.validators.map((m) => ({ address: parseAddress(m.address), stake: m.stake })) })),
      issuedSlot,
    };
  }
}
