// The Tendermint state machine ("The latest gossip on BFT consensus", Buchman, Kwon,
// Milosevic 2018, Algorithm 1) with rounds identified by wall-clock slots.
//
// Pure: events in, actions out. No clock, I/O, randomness or cryptography. Line numbers
// in comments ("L22") refer to Algorithm 1 of the paper.
import { exceedsOneThird, isQuorum } from './committee.js';
import type {
  Action,
  BroadcastVoteAction,
  RejectedAction,
  ConsensusApp,
  ConsensusOptions,
  CoreStep,
  Event,
  LockState,
  Proposal,
  RejectReason,
  Schedule,
  SignedState,
  SignedStep,
  Step,
  TimeoutStep,
  Vote,
} from './types.js';
import { fillSignature, RoundState, VoteSet } from './voteset.js';
import type { StoredProposal } from './voteset.js';

const EMPTY_SIGNATURE = new Uint8Array(0);
const SIGN_ORDER: Record<SignedStep, number> = { proposal: 0, prevote: 1, precommit: 2 };
/** A proposer that equivocates gets its first proposal and one conflicting one stored, no more. */
const MAX_PROPOSALS_PER_ROUND = 2;
/** Next-height messages buffered per committee member (total ≤ 4 × committee size). */
const NEXT_HEIGHT_MSGS_PER_VALIDATOR = 4;
/** Hard cap on messages whose processing is postponed past a commit (belt and braces). */
const MAX_DEFERRED = 4096;
const COMMITTEE_CACHE_LIMIT = 1024;

type Message<B> = { type: 'proposal'; proposal: Proposal<B> } | { type: 'vote'; vote: Vote };

interface CommitteeView {
  total: bigint;
  stake: Map<string, bigint>;
  size: number;
}

interface KnownBlock<B> {
  block: B;
  valid: boolean;
}

function isNat(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function isSignature(s: unknown): s is Uint8Array {
  return s instanceof Uint8Array;
}

function copyVote(v: Vote): Vote {
  return { height: v.height, round: v.round, step: v.step, blockHash: v.blockHash, validator: v.validator, signature: v.signature };
}

function copyProposal<B>(p: Proposal<B>): Proposal<B> {
  return {
    height: p.height,
    round: p.round,
    validRound: p.validRound,
    blockHash: p.blockHash,
    block: p.block,
    proposer: p.proposer,
    signature: p.signature,
  };
}

function malformedVote(v: Vote): boolean {
  return (
    !isNat(v.height) ||
    !isNat(v.round) ||
    (v.step !== 'prevote' && v.step !== 'precommit') ||
    !(v.blockHash === null || (typeof v.blockHash === 'string' && v.blockHash.length > 0)) ||
    typeof v.validator !== 'string' ||
    !isSignature(v.signature)
  );
}

function malformedProposal<B>(p: Proposal<B>): boolean {
  return (
    !isNat(p.height) ||
    !isNat(p.round) ||
    !Number.isSafeInteger(p.validRound) ||
    p.validRound < -1 ||
    p.validRound >= p.round ||
    typeof p.blockHash !== 'string' ||
    p.blockHash.length === 0 ||
    typeof p.proposer !== 'string' ||
    !isSignature(p.signature)
  );
}

export class ConsensusCore<B> {
  private readonly app: ConsensusApp<B>;
  private readonly schedule: Schedule;
  private readonly self: string | null;
  private readonly maxFutureRounds: number;
  private readonly quietRounds: boolean;
  private readonly maxRounds: number;

  private _height: number;
  /** Current round (= slot). -1 until the first round starts. Kept across heights. */
  private _round = -1;
  private _step: CoreStep = 'newHeight';
  /** Highest slot the clock has reported; anchors the future-round window. */
  private lastSlot = -1;
  private signed: SignedState | null;
  /** No signature in any round below this (the signer floor of a restored data dir). */
  private readonly minSignRound: number;

  // Tendermint's lockedValue/lockedRound and validValue/validRound (ids + blocks).
  private lockedRound = -1;
  private lockedHash: string | null = null;
  private lockedBlock: B | undefined = undefined;
  private validRound = -1;
  private validHash: string | null = null;
  private validBlock: B | undefined = undefined;

  private rounds = new Map<number, RoundState<B>>();
  private readonly committees = new Map<number, CommitteeView>();

  // Messages for height + 1, replayed when that height starts.
  private nextBuffer: Message<B>[] = [];
  private nextKeys = new Set<string>();
  private nextPerSender = new Map<string, number>();

  /**
   * Work postponed past a commit. After the core commits (or jumps via externalCommit)
   * it processes nothing more in the same `handle` call: the driver must first apply the
   * committed block, because validating or building a block of the new height needs it.
   */
  private deferred: Message<B>[] = [];
  private deferredSlot = -1;
  private committedThisCall = false;

  /** Precommits of the last decision, kept so our own signed precommit can still fill in its signature. */
  private lastCommit: { height: number; round: number; precommits: VoteSet } | null = null;

  private out: Action<B>[] = [];
  private busy = false;

  constructor(opts: ConsensusOptions<B>) {
    if (!isNat(opts.height)) throw new RangeError('height must be a non-negative safe integer');
    this.app = opts.app;
    this.schedule = opts.schedule;
    this.self = opts.self;
    this._height = opts.height;
    this.maxFutureRounds = opts.maxFutureRounds ?? 16;
    this.quietRounds = opts.quietRounds ?? false;
    const maxPastRounds = opts.maxPastRounds ?? 64;
    if (!isNat(this.maxFutureRounds) || !isNat(maxPastRounds) || maxPastRounds < 1) throw new RangeError('invalid round window options');
    this.maxRounds = this.maxFutureRounds + maxPastRounds + 1;
    this.signed = opts.lastSigned ? { ...opts.lastSigned } : null;
    this.minSignRound = opts.minSignRound ?? 0;
    if (!Number.isSafeInteger(this.minSignRound)) throw new RangeError('minSignRound must be a safe integer');
    const lock = opts.locked;
    if (lock && lock.height === opts.height && isNat(lock.round)) {
      // Restore the lock so our prevotes after a restart respect what we precommitted.
      this.lockedRound = lock.round;
      this.lockedHash = lock.blockHash;
      this.lockedBlock = lock.block;
      if (lock.block !== undefined) {
        // A lock implies a polka at lock.round, so the block is also our validValue
        // (re-proposed if we become proposer: this is what keeps locked nodes live).
        this.validRound = lock.round;
        this.validHash = lock.blockHash;
        this.validBlock = lock.block;
      }
      // The polka behind the lock, as persisted with it: prevotes of that round for that block
      // by committee members, each once (anything else in the record is ignored).
      if (lock.pol !== undefined && lock.pol.length > 0) {
        const cv = this.committeeView(lock.round);
        const rs = this.roundState(lock.round, true)!;
        for (const v of lock.pol) {
          if (malformedVote(v) || v.height !== lock.height || v.round !== lock.round || v.step !== 'prevote' || v.blockHash !== lock.blockHash) continue;
          if (v.signature.length === 0) continue;
          const stake = cv.stake.get(v.validator);
          if (stake === undefined) continue;
          this.addVote(rs, copyVote(v), stake);
        }
        this.out = [];
      }
    }
  }

  /** First undecided height. */
  get height(): number {
    return this._height;
  }

  /** Current round (slot); -1 before the first round. */
  get round(): number {
    return this._round;
  }

  get step(): CoreStep {
    return this._step;
  }

  /**
   * Whether the current round is on its way to a decision here: we voted, at our current step,
   * for its valid proposal. A driver whose next slot starts now may hold that slot's round back
   * briefly for the decision (see the node's engine): starting it abandons the round's rules
   * (we would not precommit its polka), and a height decided just after the slot boundary would
   * wait for the slot after. Never true for a non-voting node.
   */
  get deciding(): boolean {
    if ((this._step !== 'prevote' && this._step !== 'precommit') || this.self === null) return false;
    const rs = this.rounds.get(this._round);
    if (rs === undefined) return false;
    const set = this._step === 'prevote' ? rs.prevotes : rs.precommits;
    for (const sp of rs.proposals) if (sp.valid && set.find(this.self, sp.proposal.blockHash) !== undefined) return true;
    return false;
  }

  /**
   * The prevotes we hold of the polka behind our valid (else locked) value, others' included:
   * what a validator needs before it prevotes that value's re-proposal (L28). A validator that
   * restarted after such a polka lost them, and without them the ones locked on that value and
   * the restarted ones can never agree again; the driver relays these when a height stalls.
   */
  polkaPrevotes(): Vote[] {
    const round = this.validRound >= 0 ? this.validRound : this.lockedRound;
    const hash = this.validRound >= 0 ? this.validHash : this.lockedHash;
    if (round < 0 || hash === null) return [];
    const rs = this.rounds.get(round);
    if (rs === undefined) return [];
    return [...rs.prevotes.votes.values()].filter((v) => v.blockHash === hash);
  }

  /** Current lock at the current height, or null. Persist it with every precommit you sign. */
  lockState(): LockState<B> | null {
    if (this.lockedRound < 0 || this.lockedHash === null) return null;
    const block = this.lockedBlock ?? this.findBlock(this.lockedHash)?.block;
    const lock: LockState<B> = { height: this._height, round: this.lockedRound, blockHash: this.lockedHash };
    if (block !== undefined) lock.block = block;
    const pol = this.rounds.get(this.lockedRound)?.prevotes.votes;
    if (pol !== undefined) {
      const hash = this.lockedHash;
      const votes = [...pol.values()].filter((v) => v.blockHash === hash && v.signature.length > 0).map(copyVote);
      if (votes.length > 0) lock.pol = votes;
    }
    return lock;
  }

  /** Highest (height, round, step) this core has signed or been told it signed. */
  lastSigned(): SignedState | null {
    return this.signed ? { ...this.signed } : null;
  }

  /**
   * Feed one event, get the actions to perform, in order. Not re-entrant. The driver
   * must have fully performed the actions of the previous call (in particular applied
   * any `commit`) before calling again, except for feeding back its own signed vote or
   * proposal, which is always safe.
   */
  handle(e: Event<B>): Action<B>[] {
    if (this.busy) throw new Error('ConsensusCore.handle is not re-entrant');
    this.busy = true;
    const out: Action<B>[] = [];
    this.out = out;
    this.committedThisCall = false;
    try {
      // Exact duplicates (notably our own signed messages fed back) only fill in a
      // signature; they never change state, so they need no other processing.
      if (e.type === 'vote' && this.absorbDuplicateVote(e.vote)) return out;
      if (e.type === 'proposal' && this.absorbDuplicateProposal(e.proposal)) return out;
      // A newer slot supersedes a slot postponed by the previous commit.
      if (e.type === 'slot' && isNat(e.slot) && e.slot >= this.deferredSlot) this.deferredSlot = -1;
      this.drainDeferred();
      if (this.committedThisCall) this.defer(e);
      else this.dispatch(e, false);
      return out;
    } finally {
      this.busy = false;
      this.out = [];
    }
  }

  // ---------------------------------------------------------------- dispatch

  private dispatch(e: Event<B>, replaying: boolean): void {
    switch (e.type) {
      case 'slot':
        this.onSlot(e.slot);
        break;
      case 'proposal':
        this.onProposal(e.proposal, replaying);
        break;
      case 'vote':
        this.onVote(e.vote, replaying);
        break;
      case 'timeout':
        this.onTimeout(e.height, e.round, e.step);
        break;
      case 'externalCommit':
        this.onExternalCommit(e.height);
        break;
    }
  }

  private defer(e: Event<B>): void {
    switch (e.type) {
      case 'slot':
        if (isNat(e.slot) && e.slot > this.deferredSlot) this.deferredSlot = e.slot;
        break;
      case 'proposal':
      case 'vote':
        this.pushDeferred([e]);
        break;
      case 'timeout':
        break; // can only concern the height that was just decided
      case 'externalCommit':
        this.onExternalCommit(e.height); // no app calls involved
        break;
    }
  }

  private pushDeferred(msgs: Message<B>[]): void {
    for (const m of msgs) this.deferred.push(m);
    if (this.deferred.length > MAX_DEFERRED) this.deferred.splice(0, this.deferred.length - MAX_DEFERRED);
  }

  private drainDeferred(): void {
    while (this.deferred.length > 0 && !this.committedThisCall) this.dispatch(this.deferred.shift()!, true);
    if (!this.committedThisCall && this.deferredSlot >= 0) {
      const s = this.deferredSlot;
      this.deferredSlot = -1;
      this.onSlot(s);
    }
  }

  private reject(reason: RejectReason, from: unknown, height?: unknown, round?: unknown): void {
    const a: RejectedAction = { type: 'rejected', reason };
    if (typeof from === 'string') a.from = from;
    if (typeof height === 'number') a.height = height;
    if (typeof round === 'number') a.round = round;
    this.out.push(a);
  }

  // ---------------------------------------------------------------- events

  private onSlot(slot: number): void {
    if (!isNat(slot)) return;
    if (slot > this.lastSlot) this.lastSlot = slot;
    // Each new slot is a new round of the undecided height; a slot equal to the current
    // round (e.g. the slot in which we committed the previous height) starts nothing.
    if (slot > this._round) {
      this.startRound(slot);
      this.progress();
    }
  }

  private onVote(v: Vote, replaying: boolean): void {
    if (malformedVote(v)) return this.reject('MALFORMED', v.validator);
    if (!this.admissible(v.height, v.round, v.validator, replaying)) return;
    const cv = this.committeeView(v.round);
    const stake = cv.stake.get(v.validator);
    if (stake === undefined) return this.reject('NOT_IN_COMMITTEE', v.validator, v.height, v.round);
    if (v.height === this._height + 1) {
      const key = `v|${v.round}|${v.step}|${v.validator}|${v.blockHash === null ? '-' : '+' + v.blockHash}`;
      return this.bufferNext({ type: 'vote', vote: copyVote(v) }, key, v.validator);
    }
    const rs = this.roundState(v.round, false);
    if (rs === undefined) return this.reject('STALE', v.validator, v.height, v.round);
    this.addVote(rs, copyVote(v), stake);
    this.progress();
  }

  private onProposal(p: Proposal<B>, replaying: boolean): void {
    if (malformedProposal(p)) return this.reject('MALFORMED', p.proposer);
    if (!this.admissible(p.height, p.round, p.proposer, replaying)) return;
    // Only the round's scheduled proposer may propose (L22/L28 "from proposer(h, r)").
    if (p.proposer !== this.schedule.proposer(p.round)) return this.reject('WRONG_PROPOSER', p.proposer, p.height, p.round);
    const stake = this.committeeView(p.round).stake.get(p.proposer);
    if (stake === undefined) return this.reject('NOT_IN_COMMITTEE', p.proposer, p.height, p.round);
    // The hash is what votes refer to: a block that does not hash to it is a forgery.
    let hash: string | undefined;
    try {
      hash = this.app.hashBlock(p.block);
    } catch {
      hash = undefined;
    }
    if (hash !== p.blockHash) return this.reject('BAD_BLOCK_HASH', p.proposer, p.height, p.round);
    if (p.height === this._height + 1) {
      return this.bufferNext({ type: 'proposal', proposal: copyProposal(p) }, `p|${p.round}|${p.blockHash}`, p.proposer);
    }
    const rs = this.roundState(p.round, false);
    if (rs === undefined) return this.reject('STALE', p.proposer, p.height, p.round);
    this.addProposal(rs, copyProposal(p), stake);
    this.progress();
  }

  /** Height/round window shared by votes and proposals. */
  private admissible(height: number, round: number, from: string, replaying: boolean): boolean {
    if (height < this._height) {
      // Late messages of decided heights are normal; replayed ones are not worth reporting.
      if (!replaying) this.reject('STALE', from, height, round);
      return false;
    }
    if (height > this._height + 1 || round > Math.max(this._round, this.lastSlot) + this.maxFutureRounds) {
      this.reject('TOO_FAR_AHEAD', from, height, round);
      return false;
    }
    return true;
  }

  private onTimeout(height: number, round: number, step: TimeoutStep): void {
    if (height !== this._height || round !== this._round) return;
    if (step === 'propose' && this._step === 'propose') {
      // Quiet rounds: nothing was proposed, so nothing can be decided; stay silent (see quietRounds).
      if (this.quietRounds && (this.rounds.get(round)?.proposals.length ?? 0) === 0) return;
      // L57: no acceptable proposal in time.
      this.prevote(null);
      this.progress();
    } else if (step === 'prevote' && this._step === 'prevote') {
      // L61: prevotes of > 2/3 arrived but no value got a quorum in time.
      this.precommit(null);
      this.progress();
    }
    // timeoutPrecommit (L65) would start round r+1; with slot-rounds the next slot does.
  }

  private onExternalCommit(height: number): void {
    if (!isNat(height) || height < this._height) return;
    // Buffered messages are for height+1 only if we jump exactly one height.
    this.lastCommit = null;
    this.enterHeight(height + 1, height === this._height);
  }

  // ---------------------------------------------------------------- storage

  private bufferNext(m: Message<B>, key: string, sender: string): void {
    if (this.nextKeys.has(key)) return;
    const n = this.nextPerSender.get(sender) ?? 0;
    // Per-sender quota: a faulty member cannot crowd out the others.
    if (n >= NEXT_HEIGHT_MSGS_PER_VALIDATOR) return;
    this.nextPerSender.set(sender, n + 1);
    this.nextKeys.add(key);
    this.nextBuffer.push(m);
  }

  private committeeView(round: number): CommitteeView {
    let cv = this.committees.get(round);
    if (cv !== undefined) return cv;
    const committee = this.schedule.committee(round);
    const stake = new Map<string, bigint>();
    let total = 0n;
    for (const v of committee.validators) {
      if (v.stake <= 0n || stake.has(v.address)) continue;
      stake.set(v.address, v.stake);
      total += v.stake; // recomputed rather than trusting committee.totalStake
    }
    cv = { total, stake, size: stake.size };
    if (this.committees.size >= COMMITTEE_CACHE_LIMIT) this.committees.clear();
    this.committees.set(round, cv);
    return cv;
  }

  /**
   * Round state of the current height, created on demand. Memory stays bounded: beyond
   * maxRounds the lowest round not needed by our own state is evicted, and a message for
   * a round below everything kept is refused (undefined) unless `force`.
   */
  private roundState(round: number, force: boolean): RoundState<B> | undefined {
    let rs = this.rounds.get(round);
    if (rs !== undefined) return rs;
    if (this.rounds.size >= this.maxRounds) {
      let victim: number | undefined;
      for (const r of this.rounds.keys()) {
        if (r === this._round || r === this.lockedRound || r === this.validRound) continue;
        if (victim === undefined || r < victim) victim = r;
      }
      if (!force && (victim === undefined || round < victim)) return undefined;
      if (victim !== undefined) this.rounds.delete(victim);
    }
    rs = new RoundState<B>(round, this.committeeView(round).total);
    this.rounds.set(round, rs);
    return rs;
  }

  private addVote(rs: RoundState<B>, vote: Vote, stake: bigint): void {
    const set = vote.step === 'prevote' ? rs.prevotes : rs.precommits;
    const res = set.add(vote, stake);
    if (res.kind === 'added') rs.addSender(vote.validator, stake);
    else if (res.kind === 'conflict' && res.report) {
      // Double signing: the pair is the proof for slashing (see VoteSet on how it counts).
      this.out.push({ type: 'evidence', kind: 'vote', first: res.first, second: vote });
    }
  }

  private addProposal(rs: RoundState<B>, p: Proposal<B>, stake: bigint): void {
    const same = rs.proposals.find((sp) => sp.proposal.blockHash === p.blockHash);
    if (same !== undefined) {
      fillSignature(same.proposal, p.signature);
      return;
    }
    if (rs.proposals.length > 0 && !rs.proposalEvidenceSent) {
      rs.proposalEvidenceSent = true;
      this.out.push({ type: 'evidence', kind: 'proposal', first: rs.proposals[0]!.proposal, second: p });
    }
    // Keep a conflicting proposal too (bounded): the quorum may form on it, and we can
    // only commit a block whose contents we hold.
    if (rs.proposals.length >= MAX_PROPOSALS_PER_ROUND) return;
    const known = this.findBlock(p.blockHash);
    let valid: boolean;
    if (known !== undefined) valid = known.valid;
    else {
      try {
        valid = this.app.validateBlock(p.block, this._height);
      } catch {
        valid = false;
      }
    }
    if (!valid) this.reject('INVALID_BLOCK', p.proposer, p.height, p.round);
    rs.proposals.push({ proposal: p, valid });
    rs.addSender(p.proposer, stake);
  }

  private absorbDuplicateVote(v: Vote): boolean {
    if (malformedVote(v)) return false;
    let set: VoteSet | undefined;
    if (v.height === this._height) {
      const rs = this.rounds.get(v.round);
      set = rs === undefined ? undefined : v.step === 'prevote' ? rs.prevotes : rs.precommits;
    } else if (this.lastCommit !== null && v.height === this.lastCommit.height && v.round === this.lastCommit.round && v.step === 'precommit') {
      set = this.lastCommit.precommits;
    }
    const existing = set?.find(v.validator, v.blockHash);
    if (existing === undefined) return false;
    fillSignature(existing, v.signature);
    return true;
  }

  private absorbDuplicateProposal(p: Proposal<B>): boolean {
    if (malformedProposal(p) || p.height !== this._height) return false;
    const rs = this.rounds.get(p.round);
    const same = rs?.proposals.find((sp) => sp.proposal.blockHash === p.blockHash && sp.proposal.proposer === p.proposer);
    if (same === undefined) return false;
    fillSignature(same.proposal, p.signature);
    return true;
  }

  /** A block of the current height with this hash, from any round's proposal or our lock/valid value. */
  private findBlock(hash: string): KnownBlock<B> | undefined {
    for (const rs of this.rounds.values()) {
      const sp: StoredProposal<B> | undefined = rs.proposals.find((x) => x.proposal.blockHash === hash);
      if (sp !== undefined) return { block: sp.proposal.block, valid: sp.valid };
    }
    // Lock/valid values were validated when adopted (or restored from our own disk).
    if (this.validHash === hash && this.validBlock !== undefined) return { block: this.validBlock, valid: true };
    if (this.lockedHash === hash && this.lockedBlock !== undefined) return { block: this.lockedBlock, valid: true };
    return undefined;
  }

  // ---------------------------------------------------------------- signing

  /**
   * Never sign at or below lastSigned: this is what prevents double signing after a restart.
   * Never sign below minSignRound either (a restored data dir's lastSigned is out of date).
   */
  private canSign(height: number, round: number, step: SignedStep): boolean {
    if (round < this.minSignRound) return false;
    const s = this.signed;
    if (s === null) return true;
    if (height !== s.height) return height > s.height;
    if (round !== s.round) return round > s.round;
    return SIGN_ORDER[step] > SIGN_ORDER[s.step];
  }

  private selfStake(round: number): bigint | undefined {
    return this.self === null ? undefined : this.committeeView(round).stake.get(this.self);
  }

  private prevote(hash: string | null): void {
    this._step = 'prevote';
    this.emitVote('prevote', hash);
  }

  private precommit(hash: string | null): void {
    this._step = 'precommit';
    this.emitVote('precommit', hash);
  }

  /**
   * Broadcast our vote (if we are a voting member and it is not a re-sign) and count it
   * ourselves immediately with an empty signature; the signed copy fills it in later.
   * Step transitions happen regardless, so observers and restarted nodes follow along.
   */
  private emitVote(step: Step, hash: string | null): void {
    const stake = this.selfStake(this._round);
    if (this.self === null || stake === undefined) return;
    if (!this.canSign(this._height, this._round, step)) return;
    this.signed = { height: this._height, round: this._round, step };
    const vote = { height: this._height, round: this._round, step, blockHash: hash, validator: this.self };
    const action: BroadcastVoteAction<B> = { type: 'broadcastVote', vote };
    if (step === 'precommit') action.lock = this.lockState();
    this.out.push(action);
    const rs = this.roundState(this._round, true)!;
    this.addVote(rs, { ...vote, signature: EMPTY_SIGNATURE }, stake);
  }

  // ---------------------------------------------------------------- the algorithm

  /** StartRound(r), L11. */
  private startRound(round: number): void {
    this._round = round;
    this._step = 'propose';
    const rs = this.roundState(round, true)!;
    const stake = this.selfStake(round);
    if (
      this.self !== null &&
      stake !== undefined &&
      this.schedule.proposer(round) === this.self &&
      this.canSign(this._height, round, 'proposal')
    ) {
      // L14-L18: re-propose the value we saw a polka for (so locked nodes can accept it),
      // otherwise a fresh block.
      let block: B;
      let blockHash: string;
      let validRound: number;
      if (this.validHash !== null && this.validBlock !== undefined && this.validRound < round) {
        block = this.validBlock;
        blockHash = this.validHash;
        validRound = this.validRound;
      } else {
        const built = this.app.buildBlock(this._height, round);
        if (built === null) {
          // Nothing to propose: a silent round (peers time out as for an absent proposer).
          this.out.push({ type: 'scheduleTimeout', height: this._height, round, step: 'propose' });
          return;
        }
        block = built;
        blockHash = this.app.hashBlock(block);
        validRound = -1;
      }
      this.signed = { height: this._height, round, step: 'proposal' };
      const proposal = { height: this._height, round, validRound, blockHash, block, proposer: this.self };
      this.out.push({ type: 'broadcastProposal', proposal });
      // Process our own proposal as if received (our prevote follows from the rules).
      this.addProposal(rs, { ...proposal, signature: EMPTY_SIGNATURE }, stake);
    } else {
      this.out.push({ type: 'scheduleTimeout', height: this._height, round, step: 'propose' });
    }
  }

  /** Apply upon-rules until nothing changes. Every rule advances the step or sets a once-flag, so this terminates. */
  private progress(): void {
    for (;;) {
      if (this.tryDecide()) return;
      if (this.tryRoundSkip()) continue;
      if (this._step === 'newHeight') return;
      if (!this.currentRoundRules()) return;
    }
  }

  /** L49: a proposal for v and > 2/3 precommits for id(v) in ANY round of this height decide v. */
  private tryDecide(): boolean {
    for (const rs of this.rounds.values()) {
      const q = rs.precommits.quorum;
      if (typeof q !== 'string') continue;
      const known = this.findBlock(q);
      if (known === undefined || !known.valid) continue;
      const precommits = rs.precommits.votesFor(q);
      this.out.push({ type: 'commit', height: this._height, round: rs.round, blockHash: q, block: known.block, precommits });
      this.lastCommit = { height: this._height, round: rs.round, precommits: rs.precommits };
      this.enterHeight(this._height + 1, true);
      return true;
    }
    return false;
  }

  /**
   * L55: > 1/3 of the stake already speaks in a higher round, so at least one honest node
   * is there: our clock lags; jump to that round instead of waiting for our slot.
   */
  private tryRoundSkip(): boolean {
    let target = -1;
    for (const rs of this.rounds.values()) {
      if (rs.round > this._round && rs.round > target && exceedsOneThird(rs.senderStake, rs.committeeStake)) target = rs.round;
    }
    if (target < 0) return false;
    this.startRound(target);
    return true;
  }

  /** Rules about the current round. Returns whether the state changed. */
  private currentRoundRules(): boolean {
    const rs = this.rounds.get(this._round);
    if (rs === undefined) return false;
    let changed = false;
    if (this._step === 'propose') changed = this.ruleProposal(rs) || changed;
    // L34: > 2/3 prevoted but maybe not for one value: give stragglers timeoutPrevote.
    if (this._step === 'prevote' && !rs.prevoteTimeoutScheduled && isQuorum(rs.prevotes.total, rs.committeeStake)) {
      rs.prevoteTimeoutScheduled = true;
      this.out.push({ type: 'scheduleTimeout', height: this._height, round: this._round, step: 'prevote' });
    }
    if ((this._step === 'prevote' || this._step === 'precommit') && !rs.polkaHandled) changed = this.rulePolka(rs) || changed;
    // L44: > 2/3 prevoted nil: nothing can be decided this round.
    if (this._step === 'prevote' && rs.prevotes.quorum === null) {
      this.precommit(null);
      changed = true;
    }
    // L47: > 2/3 precommitted something; the driver may use timeoutPrecommit.
    if (!rs.precommitTimeoutScheduled && isQuorum(rs.precommits.total, rs.committeeStake)) {
      rs.precommitTimeoutScheduled = true;
      this.out.push({ type: 'scheduleTimeout', height: this._height, round: this._round, step: 'precommit' });
    }
    return changed;
  }

  /** L22 and L28: prevote on the round's proposal. */
  private ruleProposal(rs: RoundState<B>): boolean {
    for (const sp of rs.proposals) {
      const p = sp.proposal;
      if (p.validRound === -1) {
        // L22: fresh proposal: accept unless locked on something else.
        const ok = sp.valid && (this.lockedRound === -1 || this.lockedHash === p.blockHash);
        this.prevote(ok ? p.blockHash : null);
        return true;
      }
      // L28: re-proposal justified by a polka in round validRound < r. A lock from an
      // earlier (or the same) round yields to it: the polka proves no value could have
      // been decided at our lock round other than possibly this one.
      const vrs = this.rounds.get(p.validRound);
      if (vrs !== undefined && vrs.prevotes.quorum === p.blockHash) {
        const ok = sp.valid && (this.lockedRound <= p.validRound || this.lockedHash === p.blockHash);
        this.prevote(ok ? p.blockHash : null);
        return true;
      }
      // Otherwise wait for that polka (or timeoutPropose).
    }
    return false;
  }

  /** L36: proposal + polka for v in the current round, first time, with step ≥ prevote. */
  private rulePolka(rs: RoundState<B>): boolean {
    const q = rs.prevotes.quorum;
    if (typeof q !== 'string') return false;
    const known = this.findBlock(q);
    if (known === undefined || !known.valid) return false;
    rs.polkaHandled = true;
    if (this._step === 'prevote') {
      // Lock before precommitting: from now on we prevote only v unless a later polka
      // (round ≥ lockedRound) justifies something else.
      this.lockedRound = rs.round;
      this.lockedHash = q;
      this.lockedBlock = known.block;
      this.precommit(q);
    }
    this.validRound = rs.round;
    this.validHash = q;
    this.validBlock = known.block;
    return true;
  }

  /** Move to a new height: fresh per-height state, wait for the next slot. */
  private enterHeight(height: number, keepNextBuffer: boolean): void {
    this._height = height;
    this._step = 'newHeight';
    this.rounds = new Map();
    this.lockedRound = -1;
    this.lockedHash = null;
    this.lockedBlock = undefined;
    this.validRound = -1;
    this.validHash = null;
    this.validBlock = undefined;
    if (keepNextBuffer) this.pushDeferred(this.nextBuffer);
    this.nextBuffer = [];
    this.nextKeys = new Set();
    this.nextPerSender = new Map();
    this.committedThisCall = true;
  }
}
