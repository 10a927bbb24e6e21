// Per-(height, round) bookkeeping: the votes of one step and the proposals of a round.
import { isQuorum } from './committee.js';
import type { Proposal, Vote } from './types.js';

/** Outcome of offering a vote to a VoteSet. */
export type AddVoteResult =
  | { kind: 'added' }
  /** Same validator, same value: nothing counted twice. The signature may have been filled in. */
  | { kind: 'duplicate' }
  /** Same validator, different value: double signing. `report` is true the first time only. */
  | { kind: 'conflict'; first: Vote; report: boolean };

/**
 * The votes of one (height, round, step).
 *
 * A validator counts at most once per value, and at most two values per validator are
 * kept (its first vote and one conflicting vote, which is also the evidence), so memory
 * is bounded by 2 × committee size. Counting the conflicting vote for its own value is
 * what the paper's "2f+1 ⟨PREVOTE, h, r, id(v)⟩ from distinct processes" does: safety
 * never relies on a Byzantine validator voting once (quorum intersection always
 * contains an honest validator), whereas counting only first votes lets a single
 * equivocator show different polkas to different halves of the network and stall it.
 */
export class VoteSet {
  /** First vote of each validator. */
  readonly votes = new Map<string, Vote>();
  /** Second, conflicting vote of an equivocating validator. */
  readonly conflicting = new Map<string, Vote>();
  /** Stake per value; `null` is nil. */
  readonly tally = new Map<string | null, bigint>();
  /** Stake of distinct validators that voted, whatever the value ("2f+1 ⟨…, ∗⟩" rules). */
  total = 0n;
  /**
   * First value that reached a quorum (string hash or null for nil); undefined while none
   * has. With less than 1/3 Byzantine stake no second value can reach one.
   */
  quorum: string | null | undefined = undefined;

  constructor(readonly committeeStake: bigint) {}

  add(vote: Vote, stake: bigint): AddVoteResult {
    const existing = this.votes.get(vote.validator);
    if (existing === undefined) {
      this.votes.set(vote.validator, vote);
      this.total += stake;
      this.count(vote.blockHash, stake);
      return { kind: 'added' };
    }
    const same = this.find(vote.validator, vote.blockHash);
    if (same !== undefined) {
      fillSignature(same, vote.signature);
      return { kind: 'duplicate' };
    }
    if (this.conflicting.has(vote.validator)) return { kind: 'conflict', first: existing, report: false };
    this.conflicting.set(vote.validator, vote);
    this.count(vote.blockHash, stake);
    return { kind: 'conflict', first: existing, report: true };
  }

  /** The stored vote of `validator` for exactly `blockHash`, if any. */
  find(validator: string, blockHash: string | null): Vote | undefined {
    const first = this.votes.get(validator);
    if (first !== undefined && first.blockHash === blockHash) return first;
    const second = this.conflicting.get(validator);
    if (second !== undefined && second.blockHash === blockHash) return second;
    return undefined;
  }

  /** The counted votes for `blockHash`, sorted by validator for a canonical certificate. */
  votesFor(blockHash: string | null): Vote[] {
    const out: Vote[] = [];
    for (const v of this.votes.values()) if (v.blockHash === blockHash) out.push(v);
    for (const v of this.conflicting.values()) if (v.blockHash === blockHash) out.push(v);
    return out.sort((a, b) => (a.validator < b.validator ? -1 : a.validator > b.validator ? 1 : 0));
  }

  private count(blockHash: string | null, stake: bigint): void {
    const s = (this.tally.get(blockHash) ?? 0n) + stake;
    this.tally.set(blockHash, s);
    if (this.quorum === undefined && isQuorum(s, this.committeeStake)) this.quorum = blockHash;
  }
}

/**
 * Our own messages are recorded with an empty signature when emitted; the driver later
 * feeds back the signed copy, whose signature replaces the empty one in place (so a
 * commit certificate that already references the Vote object sees the real signature).
 */
export function fillSignature(target: { signature: Uint8Array }, signature: Uint8Array): void {
  if (target.signature.length === 0 && signature.length > 0) target.signature = signature;
}

export interface StoredProposal<B> {
  proposal: Proposal<B>;
  /** app.validateBlock(block, height), evaluated once. */
  valid: boolean;
}

/** Everything the core knows about one round of the current height. */
export class RoundState<B> {
  /** Proposals from the round's proposer: the first, plus at most one conflicting one. */
  readonly proposals: StoredProposal<B>[] = [];
  proposalEvidenceSent = false;
  readonly prevotes: VoteSet;
  readonly precommits: VoteSet;
  /** Distinct senders of any message in this round and their stake (round-skip rule). */
  readonly senders = new Set<string>();
  senderStake = 0n;
  // "for the first time" guards of the paper's upon-rules.
  prevoteTimeoutScheduled = false;
  precommitTimeoutScheduled = false;
  polkaHandled = false;

  constructor(
    readonly round: number,
    readonly committeeStake: bigint,
  ) {
    this.prevotes = new VoteSet(committeeStake);
    this.precommits = new VoteSet(committeeStake);
  }

  addSender(address: string, stake: bigint): void {
    if (this.senders.has(address)) return;
    this.senders.add(address);
    this.senderStake += stake;
  }
}
