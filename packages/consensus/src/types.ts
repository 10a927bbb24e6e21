// Public types of the consensus core.
//
// The core is a pure state machine: the driver (the node) turns the outside world
// (clock, network, timers, database) into `Event`s and executes the `Action`s the
// core returns. Nothing in here performs I/O, reads a clock or signs anything.

/** Vote steps. The proposal is not a vote; it has its own message type. */
export type Step = 'prevote' | 'precommit';

/** What a validator can sign, in the order it signs them within one round. */
export type SignedStep = 'proposal' | 'prevote' | 'precommit';

/** Timeout kinds (Tendermint's timeoutPropose / timeoutPrevote / timeoutPrecommit). */
export type TimeoutStep = 'propose' | 'prevote' | 'precommit';

/**
 * Where the core is inside the current height.
 * `newHeight`: the height has started but no round has (waiting for the next slot).
 */
export type CoreStep = 'newHeight' | 'propose' | 'prevote' | 'precommit';

export interface Validator {
  /** Any stable string id, e.g. a `qn…` address. Ordering is plain string order. */
  address: string;
  stake: bigint;
}

export interface Committee {
  /** Sorted by address, ascending (use `makeCommittee`). */
  validators: Validator[];
  totalStake: bigint;
}

export interface Vote {
  height: number;
  round: number;
  step: Step;
  /** `null` is a vote for nil ("no block this round"). */
  blockHash: string | null;
  validator: string;
  /** Opaque to the core; verified by the driver before the vote reaches the core. */
  signature: Uint8Array;
}

export interface Proposal<B> {
  height: number;
  round: number;
  /** Round of the polka that justifies re-proposing `block`, or -1 for a fresh block. */
  validRound: number;
  blockHash: string;
  block: B;
  proposer: string;
  signature: Uint8Array;
}

/** Application callbacks. All must be deterministic and side-effect free. */
export interface ConsensusApp<B> {
  /** Canonical id of a block (e.g. hex SHA-256 of its header). */
  hashBlock(b: B): string;
  /**
   * Whether `b` is a valid block at `height` on top of the last committed block.
   * Called only after the driver has handled the commit of `height - 1` (the core
   * never validates a block of a height in the same `handle` call that committed the
   * previous height), so implementations may consult the post-commit state.
   */
  validateBlock(b: B, height: number): boolean;
  /**
   * Build a fresh block for (height, round); only called when this node proposes. `null`: nothing
   * worth proposing (no transactions, and an empty block is not due yet): the proposer stays
   * silent this round. A re-proposal of a valid value never asks.
   */
  buildBlock(height: number, round: number): B | null;
}

/** Committee and proposer per round. A round is an absolute slot number. */
export interface Schedule {
  committee(round: number): Committee;
  proposer(round: number): string;
}

/** Highest (height, round, step) this validator has ever signed; persisted by the driver. */
export interface SignedState {
  height: number;
  round: number;
  step: SignedStep;
}

/** A lock (Tendermint lockedValue/lockedRound) as persisted by the driver. */
export interface LockState<B> {
  height: number;
  round: number;
  blockHash: string;
  /** The locked block when known (it may be absent after a restart). */
  block?: B;
  /**
   * The prevotes of `round` for `blockHash` that justified the lock, as signed (persist them
   * with the lock): after a restart they let this node prove the polka again, to itself when the
   * value is re-proposed and to peers that lost it too (relayed while stalled). Without them a
   * lock whose polka nobody else still holds can never be released or honoured: a deadlock.
   */
  pol?: Vote[];
}

export type Event<B> =
  | { type: 'slot'; slot: number }
  | { type: 'proposal'; proposal: Proposal<B> }
  | { type: 'vote'; vote: Vote }
  | { type: 'timeout'; height: number; round: number; step: TimeoutStep }
  /** `height` was finalized through block sync (certificate already verified). */
  | { type: 'externalCommit'; height: number; blockHash: string };

/** Stable reason codes of `rejected` actions. */
export type RejectReason =
  /** Sender is not in the committee of the message's round. Misbehaviour or misconfiguration. */
  | 'NOT_IN_COMMITTEE'
  /** Proposal signed by someone other than schedule.proposer(round). Misbehaviour. */
  | 'WRONG_PROPOSER'
  /** Message for an already decided height (or an evicted round). Benign: late delivery. */
  | 'STALE'
  /** Height > current + 1, or round beyond the future window. Benign: we may be behind (sync hint). */
  | 'TOO_FAR_AHEAD'
  /** Proposal whose block fails app.validateBlock. Misbehaviour by the proposer. */
  | 'INVALID_BLOCK'
  /** Proposal whose blockHash is not app.hashBlock(block). Misbehaviour. */
  | 'BAD_BLOCK_HASH'
  /** Structurally invalid message (bad integers, step, validRound ≥ round, …). Misbehaviour. */
  | 'MALFORMED';

/** Sign (kind 'proposal'), persist lastSigned, gossip, optionally feed the signed copy back. */
export interface BroadcastProposalAction<B> {
  type: 'broadcastProposal';
  proposal: Omit<Proposal<B>, 'signature'>;
}

/**
 * Sign, persist lastSigned (and, for precommits, `lock`) durably, gossip, then feed the
 * signed vote back as a 'vote' event before acting on any later action of the batch.
 */
export interface BroadcastVoteAction<B> {
  type: 'broadcastVote';
  vote: Omit<Vote, 'signature'>;
  /**
   * Precommits only: our lock as of this precommit (null = none at this height). Persist it
   * atomically with lastSigned, so a restart keeps respecting what we precommitted.
   */
  lock?: LockState<B> | null;
}

/** Deliver `{type:'timeout', height, round, step}` after the step's timeout. */
export interface ScheduleTimeoutAction {
  type: 'scheduleTimeout';
  height: number;
  round: number;
  step: TimeoutStep;
}

/**
 * `block` is decided at `height`. `precommits` are exactly the quorum of precommits for
 * (height, round, blockHash) the core holds, sorted by validator. The Vote objects are
 * live: our own precommit's signed copy, fed back later, fills in its signature.
 */
export interface CommitAction<B> {
  type: 'commit';
  height: number;
  round: number;
  blockHash: string;
  block: B;
  precommits: Vote[];
}

/** Two conflicting signed messages from the same validator (double signing). */
export type EvidenceAction<B> =
  | { type: 'evidence'; kind: 'vote'; first: Vote; second: Vote }
  | { type: 'evidence'; kind: 'proposal'; first: Proposal<B>; second: Proposal<B> };

/**
 * A message was not accepted. `from` is the signer, `height`/`round` the message's
 * (useful as a sync hint for TOO_FAR_AHEAD).
 */
export interface RejectedAction {
  type: 'rejected';
  reason: RejectReason;
  from?: string;
  height?: number;
  round?: number;
}

export type Action<B> =
  | BroadcastProposalAction<B>
  | BroadcastVoteAction<B>
  | ScheduleTimeoutAction
  | CommitAction<B>
  | EvidenceAction<B>
  | RejectedAction;

export interface ConsensusOptions<B> {
  app: ConsensusApp<B>;
  schedule: Schedule;
  /** Our validator address, or null for an observer (full node) that never signs. */
  self: string | null;
  /** First undecided height (last committed height + 1). */
  height: number;
  /** Last thing we signed before a restart: nothing at or below it is ever signed again. */
  lastSigned?: SignedState | null;
  /**
   * Never sign in a round below this one, whatever `lastSigned` says (default 0).
   * Set when the data dir was restored from a backup: its `lastSigned` is older than
   * what this key may have signed since, and rounds are slots, so a floor at the first
   * slot after the restored process started keeps it clear of every round the original
   * process could have signed in (provided the original was stopped first).
   */
  minSignRound?: number;
  /** Persisted lock; restored when `locked.height === height`. */
  locked?: LockState<B> | null;
  /** Accept current-height messages up to this many rounds past the current round (default 16). */
  maxFutureRounds?: number;
  /** Keep at most this many past rounds of the current height in memory (default 64). */
  maxPastRounds?: number;
  /**
   * Quiet rounds (default false): when timeoutPropose fires and no proposal of the round arrived
   * at all, do not prevote nil (Tendermint L57). Rounds are slots, so the next slot starts the
   * next round whatever was voted; a round without a proposal can decide nothing, and its nil
   * votes only cost every member a signature and every peer a verification. With proposers that
   * skip slots with nothing to propose (`buildBlock` returning null) an idle shard then sends no
   * message at all. A proposal that did arrive (even one we reject, or a re-proposal whose polka
   * we lack) still gets its prevote, nil included, as before. Not voting is always safe.
   */
  quietRounds?: boolean;
}
