import { bytesEqual, schemeLengths } from '@qnexus/crypto';
import { assignCommittees, epochSeed, makeCommittee, type Committee } from '@qnexus/consensus';
import {
  QnexusError,
  epochAnnouncementSigningBytes,
  genesisHash,
  memberAddress,
  type CommitteeMemberRef,
  type EpochAnnouncement,
  type Genesis,
  type SignedEpochAnnouncement,
} from '@qnexus/types';

/**
 * Shard committees per epoch (docs/staking.md, "Committees on shard nodes").
 * Epoch 0 is the genesis assignment, computed by every process alone; each
 * later epoch is what the beacon announced (signed with the genesis beacon
 * key), checked here for shape and authenticity. All pure.
 */

/** A committee member with what checking its votes needs. */
export interface EpochMember {
  publicKey: Uint8Array;
  stake: bigint;
}

/** One shard's committee in an epoch: addresses and stakes (consensus), and the keys by `qn…` address. */
export interface EpochShard {
  committee: Committee;
  members: Map<string, EpochMember>;
}

/** Every shard's committee (index = shard) and the seed of one epoch. */
export interface EpochCommittees {
  epoch: number;
  seed: Uint8Array;
  shards: EpochShard[];
}

/**
 * The genesis assignment: the genesis validators, assigned to shards from
 * epoch 0's seed. Epoch 0's committees (and, before staking changed the
 * registry, every epoch's: the result does not depend on `_epoch`). For
 * epochs ≥ 1 use the beacon's announcement (checkEpochAnnouncement).
 */
export function epochCommittees(g: Genesis, _epoch: number, gHash: Uint8Array = genesisHash(g)): Committee[] {
  return assignCommittees(
    g.validators.map((v) => ({ address: v.address, stake: v.stake })),
    g.shardCount,
    epochSeed(g.chainId, gHash, 0),
  );
}

/** Epoch 0: the genesis assignment with the genesis validators' public keys. */
export function genesisEpoch(g: Genesis, gHash: Uint8Array = genesisHash(g)): EpochCommittees {
  const keys = new Map(g.validators.map((v) => [v.address, v.publicKey] as const));
  const shards = epochCommittees(g, 0, gHash).map((committee) => ({
    committee,
    members: new Map(committee.validators.map((v) => [v.address, { publicKey: keys.get(v.address)!, stake: v.stake }] as const)),
  }));
  return { epoch: 0, seed: epochSeed(g.chainId, gHash, 0), shards };
}

/**
 * The committees an announcement lists, without any check (use
 * checkEpochAnnouncement on anything received). Throws RangeError on a
 * duplicate member or a zero stake within one committee (makeCommittee).
 */
export function epochCommitteesFromAnnouncement(a: EpochAnnouncement): EpochCommittees {
  const shards = a.committees.map((c) => {
    const members = new Map(c.members.map((m) => [memberAddress(m), { publicKey: m.publicKey, stake: m.stake }] as const));
    return { committee: makeCommittee(c.members.map((m) => ({ address: memberAddress(m), stake: m.stake }))), members };
  });
  return { epoch: a.epoch, seed: a.seed, shards };
}

/**
 * The announcement body of `ec` (what the beacon signs): members listed in
 * committee (address) order. `startSlot = epoch × epochLength`.
 */
export function epochAnnouncementOf(chainId: string, epochLength: number, ec: EpochCommittees, issuedSlot: number): EpochAnnouncement {
  return {
    chainId,
    epoch: ec.epoch,
    startSlot: ec.epoch * epochLength,
    seed: ec.seed,
    committees: ec.shards.map((s, shard) => ({
      shard,
      members: s.committee.validators.map((v): CommitteeMemberRef => ({ publicKey: s.members.get(v.address)!.publicKey, stake: v.stake })),
    })),
    issuedSlot,
  };
}

function sameEpoch(a: EpochCommittees, b: EpochCommittees): boolean {
  if (a.shards.length !== b.shards.length) return false;
  return a.shards.every((s, k) => {
    const o = b.shards[k]!;
    if (s.members.size !== o.members.size) return false;
    for (const [addr, m] of s.members) {
      const n = o.members.get(addr);
      if (!n || n.stake !== m.stake || !bytesEqual(n.publicKey, m.publicKey)) return false;
    }
    return true;
  });
}

/**
 * Check a signed epoch announcement received from the beacon or a peer and
 * return its committees. XS_UNAUTHORIZED unless signed by the genesis beacon
 * key; MALFORMED if it is for another chain, its start slot or seed is not
 * the epoch's, its committees are not exactly shards 0..shardCount−1 in
 * order, a committee is empty, a member key has the wrong length for the
 * chain's scheme, a member appears twice (in any shards) or has stake 0, or
 * (epoch 0) it differs from the genesis assignment. `gHash` = genesisHash(g).
 */
export function checkEpochAnnouncement(
  signed: SignedEpochAnnouncement,
  g: Genesis,
  gHash: Uint8Array,
  verify: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean,
): EpochCommittees {
  const a = signed.body;
  if (!verify(g.beacon.publicKey, epochAnnouncementSigningBytes(a), signed.signature)) {
    throw new QnexusError('XS_UNAUTHORIZED', `epoch ${a.epoch} announcement is not signed by the genesis beacon key`);
  }
  const fail = (m: string): never => {
    throw new QnexusError('MALFORMED', `epoch ${a.epoch} announcement: ${m}`);
  };
  if (a.chainId !== g.chainId) fail(`it is for chain ${JSON.stringify(a.chainId)}`);
  if (a.startSlot !== a.epoch * g.epochLength) fail(`start slot ${a.startSlot} is not ${a.epoch} × ${g.epochLength}`);
  if (!bytesEqual(a.seed, epochSeed(g.chainId, gHash, a.epoch))) fail('the seed is not the epoch seed');
  if (a.committees.length !== g.shardCount) fail(`${a.committees.length} committees for ${g.shardCount} shards`);
  const pkLen = schemeLengths(g.scheme).publicKey;
  const seen = new Set<string>();
  a.committees.forEach((c, k) => {
    if (c.shard !== k) fail(`committee ${k} is for shard ${c.shard}`);
    if (c.members.length === 0) fail(`shard ${k} has an empty committee`);
    for (const m of c.members) {
      if (m.publicKey.length !== pkLen) fail(`a member key of shard ${k} is not a ${g.scheme} key`);
      const addr = memberAddress(m);
      if (seen.has(addr)) fail(`member ${addr} is listed twice`);
      seen.add(addr);
      if (m.stake === 0n) fail(`member ${addr} has no stake`);
    }
  });
  const ec = epochCommitteesFromAnnouncement(a);
  if (a.epoch === 0 && !sameEpoch(ec, genesisEpoch(g, gHash))) fail('epoch 0 must be the genesis assignment');
  return ec;
}
