import { formatAddress, fromHex, parseAddress, toHex, type UnlockedKey } from '@qnexus/crypto';
import {
  decodeCompactProposal,
  decodeVote,
  decodeVoteGossip,
  encodeCompactProposal,
  encodeVote,
  txRoot,
  encodeEvidence,
  encodeVoteGossip,
  epochOf,
  headerSigningBytes,
  proposalSigningBytes,
  slotAt,
  voteSigningBytes,
  type Certificate,
  type CompactProposal,
  type SignedVote,
  type TxEnvelope,
  type VoteBody,
  type VoteEvidence,
} from '@qnexus/types';
import {
  ConsensusCore,
  type Action,
  type Committee,
  type Event,
  type LockState,
  type Proposal,
  type SignedState,
  type Vote,
} from '@qnexus/consensus';
import type { P2PNode, Topics, ValidationResult } from '@qnexus/p2p';
import type { StateChanges } from '@qnexus/state';
import { blockHash, decodeBlock } from '@qnexus/types';
import { MAX_BLOCK_WIRE_BYTES, candidateFromBlock, candidateFromEnvs, type Candidate, type Chain } from './chain.js';
import type { Mempool } from './mempool.js';
import type { Metrics } from './metrics.js';
import type { Logger } from '@qnexus/runtime';
import type { TxVerifier } from './verifier.js';
import { CandidateGate } from './candidate-gate.js';
import { fetchProposalTxs, serveTxsByIds, txPropagationMetrics, txsProtocolOptions, type TxPropagationMetrics } from './txgossip.js';

const STEP_CODE = { proposal: 0, prevote: 1, precommit: 2 } as const;
const STEP_NAME = ['proposal', 'prevote', 'precommit'] as const;
/** What the core sees for a round whose epoch is unknown: nobody has stake, so nothing can be decided (never fed on purpose). */
const NO_COMMITTEE: Committee = { validators: [], totalStake: 0n };
/**
 * Rounds are slots: a vote or proposal for a round more than this many slots after the
 * current one cannot be honest (clocks agree to well within a slot), and is not worth a
 * signature check. Nor are rounds this far before the head's slot (the core has moved on).
 */
const ROUND_LEAD = 2;
const ROUND_LAG = 16;
/** Smallest byte budget a proposer backs off to after failed rounds (≈ 16 ML-DSA-44 transfers). */
const BACKOFF_MIN_BYTES = 64 * 1024;
/** However late in its round a proposal arrives, its missing transactions are looked for this long. */
const ASSEMBLY_MIN_MS = 1_500;
/** Longest hold of a slot's round for the previous round's decision, in slots (see startSlot). */
const SLOT_HOLD = 0.5;
/**
 * Direct votes (see sendVote): a vote is < 3 KB (ML-DSA-44) and < 6 KB (ML-DSA-87); an honest
 * validator sends two per round (prevote, precommit), a few rounds a second at the shortest slots.
 */
const VOTE_DIRECT_LIMITS = { maxFrameBytes: 16 * 1024, framesPerSec: 20, frameBurst: 64 } as const;

/** Why a received proposal could not be assembled (the `cause` label of qnexus_proposal_assembly_failures_total). */
class AssemblyError extends Error {
  constructor(
    readonly reason: 'unavailable',
    message: string,
  ) {
    super(message);
  }
}

function shuffled<T>(xs: readonly T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

export interface EvidenceRecord {
  validator: string;
  height: number;
  round: number;
  step: string;
  /** Hex of the canonical VoteEvidence encoding (two signed votes), verifiable by anyone. */
  evidence: string;
}

/**
 * Wires the pure consensus core to the outside world: the slot clock,
 * gossip, ML-DSA signing with double-sign protection, and the chain store.
 * Every event and every chain mutation runs through one serial queue, so the
 * core, the chain head and the mempool never observe each other half-updated.
 */
export class Engine {
  core!: ConsensusCore<Candidate>;
  readonly evidence: EvidenceRecord[] = [];
  /** Transactions in the candidate block currently being voted on, for tx status 'included'. */
  included = new Map<string, number>();
  newestKnownHeight = 0;
  private queue: Promise<void> = Promise.resolve();
  private timers = new Set<NodeJS.Timeout>();
  private stopped = false;
  private roundsAtHeightStart = 0;
  /** See noteBusyRound; -1 while the current height has seen no proposal. */
  private busyFrom = -1;
  /** Transactions of blocks we proposed, assembled or are locked on (see noteBlockTxs). */
  private readonly blockTxs = new Map<string, TxEnvelope>();
  /** Bodies of the votes we signed at the current height (re-sent when the height stalls). */
  /** This height's votes as signed, re-sent as they are (see resendVotes). */
  private myVotes: SignedVote[] = [];
  private resends = 0;
  private lastTickHeight = -1;
  private stalledSlots = 0;
  /** Signature checks of gossiped votes and proposals: a few candidates per slot, verdicts bound to the signature. */
  private readonly votesGate = new CandidateGate();
  private readonly proposalsGate = new CandidateGate();
  /** Epoch whose validator status we logged last (once per epoch). */
  private statusEpoch = -1;
  /** Whether our key was in a committee (any shard) in the epoch logged last. */
  private wasMember = false;
  /** Last epoch whose slots we held back for want of its committee (warned once per epoch). */
  private heldEpoch = -1;
  /** Slot of the last finalized block seen by afterCommit (for qnexus_chain_slots_missed_total). */
  private lastFinalizedSlot = -1;
  /** A slot whose round is held back for the previous round's decision (startSlot), or -1. */
  private heldSlot = -1;
  private readonly txMetrics: TxPropagationMetrics;

  constructor(
    private readonly chain: Chain,
    private readonly mempool: Mempool,
    private readonly p2p: P2PNode,
    private readonly verifier: TxVerifier,
    private readonly key: UnlockedKey | null,
    private readonly t: Topics,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    /**
     * Makes this validator's vote and proposal signatures off the event loop (node.ts: the verify
     * pool's workers, which hold the key). Null: signed synchronously here (--verify-workers 0).
     */
    private readonly signer: ((message: Uint8Array) => Promise<Uint8Array>) | null = null,
    /**
     * Slots a proposer with no transactions lets pass after the head's before it proposes an
     * empty block anyway (`--empty-block-interval`; 1: a block every slot). Above 1 the rounds
     * are quiet too (ConsensusOptions.quietRounds): an idle shard sends no consensus message.
     */
    readonly emptyBlockInterval = 1,
  ) {
    this.txMetrics = txPropagationMetrics(metrics.registry);
  }

  get self(): string | null {
    return this.key ? formatAddress(this.key.address) : null;
  }

  async start(): Promise<void> {
    const { last, lock } = await this.chain.store.loadSigner();
    // A data dir restored from a backup holds an older last-signed record than what this key
    // may have signed since: never sign in a round before the first slot after this start.
    const signerFloor = await this.chain.store.armSignerFloor(slotAt(this.chain.genesis, Date.now()) + 1);
    if (signerFloor.armed) {
      this.log.warn('data dir restored from a backup: double-sign protection will not sign in any round before the floor', {
        floorRound: signerFloor.floor,
        restoredAt: signerFloor.restoredAt === null ? null : new Date(signerFloor.restoredAt).toISOString(),
      });
    }
    const lastSigned: SignedState | null = last ? { height: last.height, round: last.round, step: STEP_NAME[last.step] ?? 'precommit' } : null;
    let locked: LockState<Candidate> | null = null;
    if (lock) {
      locked = { height: lock.height, round: lock.round, blockHash: toHex(lock.blockHash) };
      if (lock.block) {
        locked.block = candidateFromBlock(decodeBlock(lock.block), lock.block);
        this.noteBlockTxs(locked.block);
      }
      // The polka behind the lock, verified when it arrived and kept with the lock: the core
      // holds it again, so a re-proposal of the locked value is honoured here and the polka can
      // be relayed to peers that lost it (resendVotes). A record it cannot read adds nothing.
      const pol: Vote[] = [];
      for (const raw of lock.pol) {
        try {
          const v = decodeVote(raw);
          pol.push({ height: v.body.height, round: v.body.round, step: v.body.step, blockHash: v.body.blockHash ? toHex(v.body.blockHash) : null, validator: formatAddress(v.body.validator), signature: v.signature });
        } catch {
          // skipped: the core also ignores votes not of this lock
        }
      }
      if (pol.length > 0) locked.pol = pol;
    }
    this.core = new ConsensusCore<Candidate>({
      app: {
        hashBlock: (c) => c.hashHex,
        validateBlock: (c, height) => this.validateCandidate(c, height),
        buildBlock: (_height, round) => this.buildCandidate(round),
      },
      // Each round is run by the committee of its epoch. The engine feeds the core only
      // events of rounds whose epoch is known, so the fallbacks are never used on purpose
      // (and are safe: an empty committee can decide nothing, '' proposes nothing).
      schedule: {
        committee: (round) => this.chain.committeeAtRound(round)?.committee ?? NO_COMMITTEE,
        proposer: (round) => this.chain.proposerFor(round) ?? '',
      },
      // With a key we are `self` in every round: the core votes and proposes only in
      // rounds whose committee gives our address stake, and follows the chain otherwise.
      self: this.self,
      height: this.chain.headHeight + 1,
      lastSigned,
      locked,
      minSignRound: signerFloor.floor ?? 0,
      quietRounds: this.emptyBlockInterval > 1,
    });
    this.lastFinalizedSlot = this.chain.headSlot;
    if (lastSigned || signerFloor.floor !== null) {
      this.log.info('restored double-sign protection', { lastSigned, locked: locked ? { height: locked.height, round: locked.round } : null, floorRound: signerFloor.floor });
    }
    this.newestKnownHeight = this.chain.headHeight;
    // A slot held back for want of its epoch's committee starts as soon as the announcement arrives.
    this.chain.epochs.listeners.push((e) => {
      const slot = slotAt(this.chain.genesis, Date.now());
      if (!this.stopped && slot > this.chain.headSlot && epochOf(this.chain.genesis, slot) === e.epoch) this.tickSlot(slot);
    });
    // Consensus topics: published without waiting behind transaction batches; a few of a peer's
    // messages checked at once (a round brings each member's prevote and precommit).
    this.p2p.subscribe(this.t.vote, { maxBytes: 16 * 1024, urgent: true, concurrencyPerPeer: 4, validate: (d, from) => this.validateVote(d, from), deliver: (d) => this.deliverVote(d) });
    // Votes sent to us directly (a validator's own, once per peer: sendVote) are checked exactly like gossiped ones.
    await this.p2p.handleDirect(this.t.voteDirectProtocol, VOTE_DIRECT_LIMITS, (d, from) => this.receiveDirectVote(d, from));
    this.p2p.subscribe(this.t.block, { maxBytes: 512 * 1024, urgent: true, concurrencyPerPeer: 2, validate: (d, from) => this.validateProposal(d, from), deliver: (d, from) => this.deliverProposal(d, from) });
    // A proposal names at most maxBlockTxs ids; peers fetch the ones they miss once per proposal
    // (and pull what a peer's inventory names that they lack, see TxInventory).
    await this.p2p.handle(this.t.txsProtocol, txsProtocolOptions(this.chain.genesis.maxBlockTxs), serveTxsByIds(this.mempool, (h) => this.blockTxs.get(h)));
    this.scheduleNextSlot();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await this.queue;
  }

  /** Run a task on the serial queue (used by sync imports too). */
  run<T>(task: () => Promise<T> | T): Promise<T> {
    const p = this.queue.then(task);
    this.queue = p.then(
      () => undefined,
      (e: unknown) => {
        this.log.error('engine task failed', { error: (e as Error).stack ?? String(e) });
      },
    );
    return p;
  }

  private enqueue(ev: Event<Candidate>): void {
    if (this.stopped) return;
    void this.run(() => this.process(ev)).catch(() => undefined);
  }

  // ------------------------------------------------------------------ clock

  private setTimer(ms: number, fn: () => void): void {
    if (this.stopped) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, Math.max(0, ms));
    this.timers.add(t);
  }

  /**
   * Gossip can lose a vote (a peer restarting, a pruned mesh link) and a lost
   * prevote can leave some validators locked on a block the others never saw a
   * polka for. When a height has made no progress for a whole slot, re-send our
   * votes of this height, exactly as signed. gossipsub drops identical bytes for
   * two minutes, so a re-send carries an unsigned counter after the vote
   * (`encodeVoteGossip`): new gossip bytes, no new signature. (It used to sign
   * again: under load that was a third of a validator's signing.)
   */
  private resendVotes(): void {
    if (this.core.height !== this.lastTickHeight) {
      this.lastTickHeight = this.core.height;
      this.stalledSlots = 0;
      return;
    }
    // Only after two slots without progress, and only the latest rounds: a
    // re-send costs a signature here and a verification at every peer that missed it.
    if (!this.key || ++this.stalledSlots < 2) return;
    const rounds = [...new Set(this.myVotes.filter((v) => v.body.height === this.core.height).map((v) => v.body.round))].slice(-2);
    this.resends = (this.resends % 0xffff_fffe) + 1;
    for (const v of this.myVotes) {
      if (v.body.height !== this.core.height || !rounds.includes(v.body.round)) continue;
      this.publish(this.t.vote, encodeVoteGossip(v, this.resends));
    }
    // And the polka behind our valid or locked value, others' prevotes included (relayed as
    // signed): a validator that restarted after it lost those votes, and would otherwise never
    // prevote that value's re-proposal while we, locked on it, prevote nothing else.
    for (const v of this.core.polkaPrevotes()) {
      if (v.validator === this.self) {
        // Ours as we signed it (the core's copy of our own vote need not carry the signature).
        if (rounds.includes(v.round)) continue; // sent just above
        const mine = this.myVotes.find((m) => m.body.height === v.height && m.body.round === v.round && m.body.step === 'prevote');
        if (mine) this.publish(this.t.vote, encodeVoteGossip(mine, this.resends));
        continue;
      }
      if (v.signature.length === 0) continue;
      this.publish(this.t.vote, encodeVoteGossip({ body: this.voteBody(v), signature: v.signature }, this.resends));
    }
  }

  private scheduleNextSlot(): void {
    const g = this.chain.genesis;
    const now = Date.now();
    const slot = slotAt(g, now);
    if (this.core.round >= 0) void this.run(() => this.resendVotes());
    // Start the current slot's round right away (we may have joined mid-slot).
    if (slot > this.chain.headSlot) this.startSlot(slot);
    if (slot >= 0) this.prefetchNextEpoch(slot);
    const nextStart = g.genesisTime + (slot + 1) * g.slotMs;
    this.setTimer(nextStart - now, () => this.scheduleNextSlot());
  }

  /**
   * Start a slot's round, or hold it back for at most SLOT_HOLD × slot while the round before it
   * is deciding: we voted for its block and the quorum is on its way (core.deciding). Under load
   * a round's last votes often arrive just after the slot boundary. Starting the new round at the
   * boundary then lost a whole slot: the height was decided moments later, but its successor
   * could only start in the slot after (a new height starts in a slot later than the round that
   * decided its parent), and the new slot's proposer had built a block for the decided height.
   * Held, the decision comes first and the new height's round starts in this slot, late by the
   * spill. Only timing moves (like a slow clock): safety does not depend on it, and the hold is
   * bounded, so a round that cannot decide delays the next by SLOT_HOLD at most.
   */
  private startSlot(slot: number): void {
    if (this.heldSlot >= 0) {
      // An older slot still held (its timer late behind a busy event loop): this slot supersedes it.
      this.heldSlot = -1;
      this.metrics.slotHolds.inc({ outcome: 'expired' });
    }
    if (this.core.round >= 0 && this.core.round < slot && this.core.deciding) {
      this.heldSlot = slot;
      this.setTimer(Math.round(this.chain.genesis.slotMs * SLOT_HOLD), () => {
        if (this.heldSlot === slot) this.releaseSlot('expired');
      });
      return;
    }
    this.tickSlot(slot);
  }

  /** End a hold: start the wall clock's current slot (the held one, unless the timer fired late). */
  private releaseSlot(outcome: 'decided' | 'expired'): void {
    const held = this.heldSlot;
    this.heldSlot = -1;
    this.metrics.slotHolds.inc({ outcome });
    const slot = Math.max(held, slotAt(this.chain.genesis, Date.now()));
    if (slot > this.chain.headSlot) this.tickSlot(slot);
  }

  /**
   * Feed a slot tick to the core, unless the slot's epoch committee is unknown:
   * then the round is not run (we could not tell who proposes or votes in it);
   * the announcement is fetched and the slot started once it arrives, if still current.
   * This only delays us, it cannot fork: votes of an unknown epoch are ignored too.
   */
  private tickSlot(slot: number): void {
    const epoch = epochOf(this.chain.genesis, slot);
    if (this.chain.committeeFor(epoch)) {
      this.metrics.epoch.set(epoch);
      this.logStatus(epoch);
      this.enqueue({ type: 'slot', slot });
      return;
    }
    if (this.heldEpoch !== epoch) {
      this.heldEpoch = epoch;
      this.log.warn('committee of this epoch is unknown; not running its rounds until the beacon announcement is fetched', { epoch, slot });
    }
    void this.chain.epochs.ensure(epoch).then((ok) => {
      const now = slotAt(this.chain.genesis, Date.now());
      if (ok && !this.stopped && epochOf(this.chain.genesis, now) === epoch && now > this.chain.headSlot) this.tickSlot(now);
    });
  }

  /**
   * The beacon freezes and announces epoch E+1 F = max(1, floor(L/2)) slots before it
   * starts. If the gossip copy has not reached us a slot after that, fetch it
   * (at most once per slot) so the epoch change does not cost us rounds.
   */
  private prefetchNextEpoch(slot: number): void {
    const g = this.chain.genesis;
    const next = epochOf(g, slot) + 1;
    if (this.chain.epochs.has(next)) return;
    const f = Math.max(1, Math.floor(g.epochLength / 2));
    if (slot >= next * g.epochLength - f + 1) void this.chain.epochs.ensure(next);
  }

  /**
   * Once per epoch, say what a validator key does in it: runs this shard, waits
   * (pending activation, or left), or belongs to another shard's committee —
   * which this process cannot serve, since it holds this shard's chain.
   */
  private logStatus(epoch: number): void {
    if (!this.key || epoch === this.statusEpoch) return;
    this.statusEpoch = epoch;
    const self = this.self!;
    const shard = this.chain.shardOfMember(epoch, self);
    const fields = { epoch, validator: self };
    if (shard === this.chain.shard) {
      const m = this.chain.memberAt(epoch, self)!;
      this.log.info('validator is active on this shard this epoch', { ...fields, shard, stake: m.stake.toString() });
    } else if (shard !== undefined) {
      this.log.warn(`validator is assigned to shard ${shard} this epoch; this node runs shard ${this.chain.shard}: restart it with --shard ${shard}`, { ...fields, assigned: shard, shard: this.chain.shard });
    } else if (this.wasMember) {
      this.log.warn('validator is no longer in a committee this epoch; following the chain without voting', fields);
    } else {
      this.log.info('validator is not in any committee this epoch (pending activation or not staked); following the chain', fields);
    }
    this.wasMember = shard !== undefined;
    this.metrics.validatorActive.set(shard === this.chain.shard ? 1 : 0);
  }

  private timeoutMs(step: 'propose' | 'prevote' | 'precommit'): number {
    const s = this.chain.genesis.slotMs;
    return step === 'propose' ? Math.round(s * 0.6) : Math.round(s * 0.2);
  }

  // ------------------------------------------------------------------ core I/O

  /** Milliseconds since the start of the current slot (for timing diagnostics). */
  private slotOffset(): number {
    const g = this.chain.genesis;
    return (Date.now() - g.genesisTime) % g.slotMs;
  }

  private async process(ev: Event<Candidate>): Promise<void> {
    if (ev.type === 'timeout' && this.log.enabled('debug')) this.log.debug('timeout', { height: ev.height, round: ev.round, step: ev.step, at: this.slotOffset() });
    const actions = this.core.handle(ev);
    for (let i = 0; i < actions.length; i++) {
      const more = await this.act(actions[i]!);
      if (more.length) actions.splice(i + 1, 0, ...more);
    }
    this.metrics.rounds.set(this.core.round);
    this.metrics.height.set(this.core.height);
  }

  private async act(a: Action<Candidate>): Promise<Action<Candidate>[]> {
    switch (a.type) {
      case 'broadcastProposal':
        await this.signAndSendProposal(a.proposal);
        return [];
      case 'broadcastVote':
        return this.signAndSendVote(a.vote, a.lock);
      case 'scheduleTimeout':
        this.setTimer(this.timeoutMs(a.step), () => this.enqueue({ type: 'timeout', height: a.height, round: a.round, step: a.step }));
        return [];
      case 'commit':
        await this.commit(a.height, a.round, a.block, a.precommits);
        return [];
      case 'evidence':
        this.recordEvidence(a);
        return [];
      case 'rejected':
        this.metrics.consensusRejected.inc({ reason: a.reason });
        if (a.reason !== 'STALE' && a.reason !== 'TOO_FAR_AHEAD') this.log.warn('consensus message rejected', { reason: a.reason, from: a.from, height: a.height, round: a.round });
        return [];
    }
  }

  /** The canonical (signed) body of a core vote on this chain and shard. */
  private voteBody(v: Omit<Vote, 'signature'>): VoteBody {
    return {
      chainId: this.chain.genesis.chainId,
      shard: this.chain.shard,
      height: v.height,
      round: v.round,
      step: v.step,
      blockHash: v.blockHash ? fromHex(v.blockHash) : null,
      validator: parseAddress(v.validator),
    };
  }

  private sign(bytes: Uint8Array): Uint8Array {
    return this.verifier.backend.sign(this.key!.secretKey, bytes);
  }

  /**
   * Sign a vote or proposal, on the signer's worker when there is one (an ML-DSA signature is
   * milliseconds of CPU that the event loop then spends on gossip and slot ticks instead).
   *
   * Safety: callers persist the message as cast (guard) before asking, so double-sign protection
   * is exactly as with a synchronous signature; the signature cannot exist before the record.
   * Ordering: the caller runs inside the serial queue and awaits this, so no other event reaches
   * the core while a signature is made: the core's height/round/lock cannot change under it, and
   * our own votes are fed back in the order they were cast. Wall-clock time does move on: the
   * message may go out after its round's slot ended. That is harmless: it is the message the core
   * decided for that round and recorded as cast (we never sign anything else for that step), peers
   * accept or ignore it by their round windows like any late vote, and at worst it is as late as
   * an event loop that was busy for the same time.
   *
   * A failing signer (a crashed worker) does not cost the round: we sign here instead.
   */
  private async signAsync(bytes: Uint8Array): Promise<Uint8Array> {
    if (this.signer) {
      try {
        return await this.signer(bytes);
      } catch (e) {
        this.log.warn('signing on a worker failed; signing on the event loop', { error: (e as Error).message });
      }
    }
    return this.sign(bytes);
  }

  /**
   * Persist (fsync) what we are about to sign, with the lock to restore after
   * a crash, before the signature exists outside this process.
   */
  private async guard(height: number, round: number, step: keyof typeof STEP_CODE, blockHash: string | null, lock: LockState<Candidate> | null): Promise<void> {
    await this.chain.store.saveSigner(
      { height, round, step: STEP_CODE[step], blockHash: blockHash ? fromHex(blockHash) : null },
      lock ? { height: lock.height, round: lock.round, blockHash: fromHex(lock.blockHash), block: lock.block?.raw ?? null, pol: (lock.pol ?? []).map((v) => encodeVote({ body: this.voteBody(v), signature: v.signature })) } : null,
    );
  }

  private async signAndSendProposal(p: Omit<Proposal<Candidate>, 'signature'>): Promise<void> {
    await this.guard(p.height, p.round, 'proposal', p.blockHash, this.core.lockState());
    const body = {
      chainId: this.chain.genesis.chainId,
      shard: this.chain.shard,
      height: p.height,
      round: p.round,
      validRound: p.validRound,
      blockHash: p.block.hash,
      proposer: this.key!.address,
    };
    const signature = await this.signAsync(proposalSigningBytes(body));
    const b = p.block.block;
    const bytes = encodeCompactProposal({ body, signature, header: b.header, headerSignature: b.signature, txHashes: p.block.envs.map((e) => e.hash) });
    this.log.debug('proposing', { height: p.height, round: p.round, txs: p.block.envs.length, validRound: p.validRound, at: this.slotOffset() });
    this.publish(this.t.block, bytes);
  }

  private async signAndSendVote(v: Omit<Vote, 'signature'>, lock: LockState<Candidate> | null | undefined): Promise<Action<Candidate>[]> {
    // A precommit carries the lock snapshot taken as it was cast; other steps keep the current lock.
    await this.guard(v.height, v.round, v.step, v.blockHash, v.step === 'precommit' && lock !== undefined ? lock : this.core.lockState());
    const body = this.voteBody(v);
    const signature = await this.signAsync(voteSigningBytes(body));
    this.sendVote(encodeVoteGossip({ body, signature }));
    if (this.log.enabled('debug')) this.log.debug('voted', { height: v.height, round: v.round, step: v.step, block: v.blockHash?.slice(0, 12) ?? 'nil', at: this.slotOffset() });
    if (this.myVotes.length && this.myVotes[0]!.body.height !== v.height) this.myVotes = [];
    this.myVotes.push({ body, signature });
    if (this.myVotes.length > 8) this.myVotes.shift();
    // Feed our signed copy back so certificates carry our real signature.
    return this.core.handle({ type: 'vote', vote: { ...v, signature } });
  }

  /**
   * Send our new vote once to each connected peer of the shard (the peers on its vote topic:
   * the committee and the full nodes), over a long-lived direct stream per peer, instead of
   * flooding it: gossip delivered each vote to every peer about as many times as its mesh degree,
   * each copy through the gossipsub RPC machinery, and each node relayed it on. Receivers do not
   * relay a direct vote, so this relies on the shard's nodes being connected to each other (they
   * dial every peer of their shard they learn of). Gossip is still used:
   * - for this vote too, when some peer on the topic could not be reached directly (an older
   *   node without the protocol, a stream that cannot be opened) or there is none;
   * - for re-sends (resendVotes), which travel further than our direct peers: after a stall or
   *   a partition, a peer we are not connected to still gets the votes it missed.
   * A node that misses votes anyway (not connected to a voter) falls behind and syncs the block.
   */
  private sendVote(data: Uint8Array): void {
    const peers = this.p2p.topicPeers(this.t.vote);
    let missed = peers.length === 0;
    for (const p of peers) if (!this.p2p.sendDirect(p, this.t.voteDirectProtocol, data)) missed = true;
    if (missed) this.publish(this.t.vote, data);
  }

  /** A vote sent to us directly: validated as on the gossip path ('reject' penalises the sender), delivered once. */
  private async receiveDirectVote(data: Uint8Array, from: string): Promise<ValidationResult> {
    const verdict = await this.validateVote(data, from);
    if (verdict === 'accept') this.deliverVote(data);
    return verdict;
  }

  private publish(topic: string, data: Uint8Array): void {
    this.p2p.publish(topic, data).catch((e: unknown) => this.log.warn('publish failed', { topic, error: (e as Error).message }));
  }

  private async commit(height: number, round: number, c: Candidate, precommits: Vote[]): Promise<void> {
    const votes = precommits.filter((v) => v.signature.length > 0);
    const cert: Certificate = {
      height,
      round,
      blockHash: c.hash,
      votes: votes.map((v) => ({ validator: parseAddress(v.validator), signature: v.signature })),
    };
    const changes = await this.chain.commit(c, cert);
    const g = this.chain.genesis;
    const lag = Math.max(0, (Date.now() - (g.genesisTime + c.block.header.slot * g.slotMs)) / 1000);
    this.metrics.finalityLag.observe(lag);
    this.metrics.lastFinalityLag.set(lag);
    this.afterCommit(c, round, cert, changes);
    this.log.info('finalized block', { height, round, hash: c.hashHex.slice(0, 16), txs: c.envs.length, signers: votes.length });
  }

  /**
   * Called after every finalized block (consensus or sync), inside the serial
   * queue, while the chain state is exactly this block's state.
   */
  readonly commitListeners: ((c: Candidate, cert: Certificate, changes: StateChanges) => void)[] = [];

  /** Bookkeeping shared by consensus commits and sync imports. */
  afterCommit(c: Candidate, round: number, cert: Certificate, changes: StateChanges): void {
    for (const l of this.commitListeners) {
      try {
        l(c, cert, changes);
      } catch (e) {
        this.log.error('commit listener failed', { error: (e as Error).stack ?? String(e) });
      }
    }
    this.mempool.onCommit(c.envs);
    for (const e of c.envs) this.blockTxs.delete(e.hashHex);
    this.votesGate.prune(c.block.header.height);
    this.proposalsGate.prune(c.block.header.height);
    this.included.clear();
    this.newestKnownHeight = Math.max(this.newestKnownHeight, c.block.header.height);
    this.metrics.finalizedHeight.set(c.block.header.height);
    this.metrics.finalizedTxs.inc(c.envs.length);
    this.metrics.blockTxs.observe(c.envs.length);
    this.metrics.mempoolSize.set(this.mempool.size);
    this.metrics.roundsPerHeight.observe(Math.max(1, round - Math.max(this.roundsAtHeightStart, this.busyFrom) + 1));
    this.roundsAtHeightStart = round + 1;
    this.busyFrom = -1;
    const slot = c.block.header.slot;
    if (this.lastFinalizedSlot >= 0 && slot > this.lastFinalizedSlot + 1) this.metrics.slotsMissed.inc(slot - this.lastFinalizedSlot - 1);
    this.lastFinalizedSlot = Math.max(this.lastFinalizedSlot, slot);
    // The decision a held slot waited for: the new height's round starts now, in that slot.
    if (this.heldSlot >= 0) this.releaseSlot('decided');
  }

  /** Called by sync after importing a certified block; must run inside run(). */
  async externalCommit(c: Candidate, cert: Certificate, changes: StateChanges): Promise<void> {
    const round = cert.round;
    this.afterCommit(c, round, cert, changes);
    const actions = this.core.handle({ type: 'externalCommit', height: c.block.header.height, blockHash: c.hashHex });
    for (let i = 0; i < actions.length; i++) {
      const more = await this.act(actions[i]!);
      if (more.length) actions.splice(i + 1, 0, ...more);
    }
  }

  /** Called with each new vote equivocation evidence (e.g. to forward it to the beacon). */
  readonly evidenceListeners: ((e: VoteEvidence) => void)[] = [];

  private recordEvidence(a: Extract<Action<Candidate>, { type: 'evidence' }>): void {
    this.metrics.evidence.inc();
    if (a.kind !== 'vote') {
      this.log.warn('proposer equivocation observed', { proposer: a.first.proposer, height: a.first.height, round: a.first.round });
      return;
    }
    const toSigned = (v: Vote): SignedVote => ({ body: this.voteBody(v), signature: v.signature });
    const ev: VoteEvidence = { first: toSigned(a.first), second: toSigned(a.second) };
    const rec: EvidenceRecord = {
      validator: a.first.validator,
      height: a.first.height,
      round: a.first.round,
      step: a.first.step,
      evidence: toHex(encodeEvidence(ev)),
    };
    if (this.evidence.length >= 256) this.evidence.shift();
    this.evidence.push(rec);
    this.log.warn('equivocation evidence: validator signed two conflicting votes', { validator: rec.validator, height: rec.height, round: rec.round, step: rec.step });
    for (const l of this.evidenceListeners) {
      try {
        l(ev);
      } catch (e) {
        this.log.error('evidence listener failed', { error: (e as Error).stack ?? String(e) });
      }
    }
  }

  // ------------------------------------------------------------------ app callbacks

  private validateCandidate(c: Candidate, height: number): boolean {
    const why = this.chain.validate(c, height);
    if (why) {
      this.log.warn('invalid block proposal', { height, hash: c.hashHex.slice(0, 16), reason: why });
      return false;
    }
    for (const e of c.envs) this.included.set(e.hashHex, height);
    this.newestKnownHeight = Math.max(this.newestKnownHeight, height);
    return true;
  }

  /**
   * A fresh block for our round, or null when there is nothing to propose: no transaction
   * applies and the head is less than `emptyBlockInterval` slots old (an idle shard proposes
   * an empty block only that often, so its chain still moves and its fee roll and
   * participation still happen each epoch).
   */
  private buildCandidate(round: number): Candidate | null {
    const emptyOk = round - this.chain.headSlot >= this.emptyBlockInterval;
    const txs = this.mempool.select(this.chain.genesis.maxBlockTxs);
    if (txs.length === 0 && !emptyOk) return null;
    // Our own clients' transactions still waiting for the next outbound batch leave now, ahead of
    // the proposal naming them, instead of being fetched from us by every peer.
    if (txs.length) this.beforePropose();
    const c = this.chain.build(round, txs, this.key!.address, (b) => this.sign(b), this.blockByteBudget(round), emptyOk);
    if (c === null) return null;
    this.noteBusyRound(round);
    this.noteBlockTxs(c);
    return c;
  }

  /**
   * The first round of the current height that had a proposal (ours or one that reached us):
   * rounds before it were quiet (nothing to propose), not failed attempts, for the block-size
   * back-off and the rounds-per-height metric.
   */
  private noteBusyRound(round: number): void {
    if (this.busyFrom < 0 || round < this.busyFrom) this.busyFrom = round;
  }

  /**
   * Remember the transactions of a block we proposed, assembled or are locked on, so we can
   * serve them to peers assembling it (`/…/txs/1.0.0`) even when they are not in our mempool:
   * fetched for a proposal, or restored with a lock after a crash emptied the mempool. Without
   * this a re-proposed locked block whose transactions no peer still held could never be
   * assembled, and the validators locked on it kept the height from completing. Bounded (the
   * oldest go first); emptied as heights commit.
   */
  private noteBlockTxs(c: Candidate): void {
    for (const e of c.envs) {
      this.blockTxs.delete(e.hashHex);
      this.blockTxs.set(e.hashHex, e);
    }
    const max = 4 * this.chain.genesis.maxBlockTxs;
    for (const k of this.blockTxs.keys()) {
      if (this.blockTxs.size <= max) break;
      this.blockTxs.delete(k);
    }
  }

  /**
   * The proposer's byte budget for a new block: the protocol cap, halved for every two rounds
   * this height has failed, down to BACKOFF_MIN_BYTES. Every validator must fetch the
   * transactions it lacks, check them and execute the block within one round; when the shard is
   * saturated (a backlog after an outage, a starved machine) full blocks failed round after
   * round and the height never completed. Smaller blocks let it finish; the next height starts
   * at full size again. The proposer's own choice: any block within the cap is valid.
   */
  private blockByteBudget(round: number): number {
    const heightStart = Math.max(this.roundsAtHeightStart, this.chain.headSlot + 1, this.busyFrom < 0 ? round : Math.min(this.busyFrom, round));
    const failed = Math.max(0, round - heightStart);
    return Math.max(BACKOFF_MIN_BYTES, MAX_BLOCK_WIRE_BYTES >> Math.min(8, Math.floor(failed / 2)));
  }

  // ------------------------------------------------------------------ gossip validation

  /** Heights worth relaying: the one just finalized (peers may still be deciding it) up to two ahead. */
  private heightRelevant(h: number): boolean {
    return h >= this.chain.headHeight && h <= this.chain.headHeight + 2;
  }

  /** Rounds (slots) a vote or proposal can plausibly be for now: see ROUND_LEAD and ROUND_LAG. */
  private roundRelevant(round: number): boolean {
    return round <= slotAt(this.chain.genesis, Date.now()) + ROUND_LEAD && round + ROUND_LAG >= this.chain.headSlot;
  }

  /**
   * Gossip validation of a vote. Everything that costs no signature check comes first (decode,
   * chain, epoch and membership, height and round windows, already verified); the signature is
   * checked off the event loop, ahead of transaction checks, and only for the few candidates
   * per (validator, height, round, step) the gate admits. Nothing unverified moves networkHeight.
   */
  private async validateVote(data: Uint8Array, from: string): Promise<ValidationResult> {
    let v: SignedVote;
    try {
      v = decodeVoteGossip(data);
    } catch {
      return 'reject';
    }
    const b = v.body;
    if (b.chainId !== this.chain.genesis.chainId || b.shard !== this.chain.shard) return 'reject';
    if (!this.heightRelevant(b.height) || !this.roundRelevant(b.round)) return 'ignore';
    // Membership is per epoch: the committee of the vote's round. An unknown epoch is not the
    // sender's fault (we lack the announcement): ignore, and fetch it.
    const epoch = epochOf(this.chain.genesis, b.round);
    if (!this.chain.committeeFor(epoch)) {
      void this.chain.epochs.ensure(epoch);
      return 'ignore';
    }
    const m = this.chain.memberAt(epoch, formatAddress(b.validator));
    if (!m) return 'reject';
    const signed = voteSigningBytes(b);
    // A re-sent copy of a vote we already verified adds nothing: not checked again, not relayed (its bytes are new).
    const key = `${toHex(b.validator)}/${b.height}/${b.round}/${STEP_CODE[b.step]}`;
    return this.votesGate.check(key, b.height, signed, v.signature, this.p2p.isTrusted(from), () =>
      this.verifier.verifyRawAsync('vote', m.publicKey, signed, v.signature, true),
    );
  }

  private deliverVote(data: Uint8Array): void {
    const v = decodeVoteGossip(data);
    this.enqueue({
      type: 'vote',
      vote: {
        height: v.body.height,
        round: v.body.round,
        step: v.body.step,
        blockHash: v.body.blockHash ? toHex(v.body.blockHash) : null,
        validator: formatAddress(v.body.validator),
        signature: v.signature,
      },
    });
  }

  /**
   * Gossip validation of a compact proposal: everything that can be checked
   * without the transactions (schedule, both signatures, txRoot over the ids)
   * is checked before it is relayed. The block itself is validated by the core.
   */
  private async validateProposal(data: Uint8Array, from: string): Promise<ValidationResult> {
    let p: CompactProposal;
    try {
      p = decodeCompactProposal(data);
    } catch {
      return 'reject';
    }
    const b = p.body;
    const h = p.header;
    if (b.chainId !== this.chain.genesis.chainId || b.shard !== this.chain.shard || h.chainId !== b.chainId || h.shard !== b.shard) return 'reject';
    if (h.height !== b.height || h.slot > b.round || b.validRound >= b.round) return 'reject';
    if (!this.heightRelevant(b.height) || !this.roundRelevant(b.round)) return 'ignore';
    // The round's proposer and the block's author (the proposer of its slot, possibly an earlier
    // round in another epoch) are scheduled by their own epochs' committees.
    const g = this.chain.genesis;
    const roundEpoch = epochOf(g, b.round);
    const slotEpoch = epochOf(g, h.slot);
    const scheduled = this.chain.proposerFor(b.round);
    const scheduledAuthor = this.chain.proposerFor(h.slot);
    if (scheduled === undefined || scheduledAuthor === undefined) {
      void this.chain.epochs.ensure(scheduled === undefined ? roundEpoch : slotEpoch);
      return 'ignore';
    }
    const proposer = formatAddress(b.proposer);
    if (proposer !== scheduled) return 'reject';
    const author = formatAddress(h.proposer);
    if (author !== scheduledAuthor) return 'reject';
    if (toHex(b.blockHash) !== toHex(blockHash(h))) return 'reject';
    if (toHex(txRoot(p.txHashes)) !== toHex(h.txRoot)) return 'reject';
    const pm = this.chain.memberAt(roundEpoch, proposer)!;
    const am = this.chain.memberAt(slotEpoch, author)!;
    const bodyBytes = proposalSigningBytes(b);
    const headerBytes = headerSigningBytes(h);
    // One gate slot per round: the proposal signature and the header signature are checked together.
    const signed = new Uint8Array(bodyBytes.length + headerBytes.length);
    signed.set(bodyBytes);
    signed.set(headerBytes, bodyBytes.length);
    const sigs = new Uint8Array(p.signature.length + p.headerSignature.length);
    sigs.set(p.signature);
    sigs.set(p.headerSignature, p.signature.length);
    return this.proposalsGate.check(`${b.height}/${b.round}`, b.height, signed, sigs, this.p2p.isTrusted(from), async () => {
      const [a, c] = await Promise.all([
        this.verifier.verifyRawAsync('proposal', pm.publicKey, bodyBytes, p.signature, true),
        this.verifier.verifyRawAsync('block', am.publicKey, headerBytes, p.headerSignature, true),
      ]);
      return a && c;
    });
  }

  private deliverProposal(data: Uint8Array, from: string): void {
    // Decoding again is cheap (header, signatures and 32-byte ids); the block is rebuilt from the mempool.
    const p = decodeCompactProposal(data);
    void this.assemble(p, from).catch((e: unknown) => {
      this.txMetrics.assemblyFailures.inc({ cause: e instanceof AssemblyError ? e.reason : 'error' });
      this.log.warn('could not assemble proposal', { height: p.body.height, round: p.body.round, error: (e as Error).message });
    });
  }

  /** Rebuild the proposed block from the mempool, fetching missing transactions by id. */
  private async assemble(p: CompactProposal, from: string): Promise<void> {
    if (p.body.height === this.chain.headHeight + 1) this.noteBusyRound(p.body.round);
    const envs: (TxEnvelope | undefined)[] = p.txHashes.map((h) => this.mempool.get(toHex(h)) ?? this.blockTxs.get(toHex(h)));
    // Transactions that reached us just before the proposal are often still on the verify pool:
    // their verdict comes sooner than a fetch, and fetching them again moved each one twice.
    const settling = p.txHashes.flatMap((h, i) => (envs[i] ? [] : (this.mempool.settled(toHex(h)) ?? [])));
    if (settling.length) {
      await Promise.all(settling);
      for (let i = 0; i < envs.length; i++) envs[i] ??= this.mempool.get(toHex(p.txHashes[i]!));
    }
    const missing = p.txHashes.filter((_h, i) => !envs[i]);
    if (missing.length) {
      const got = await this.fetchTxs(p, missing, from);
      for (let i = 0; i < envs.length; i++) envs[i] ??= got.get(toHex(p.txHashes[i]!)) ?? this.mempool.get(toHex(p.txHashes[i]!));
      const still = envs.filter((e) => !e).length;
      if (still) throw new AssemblyError('unavailable', `${still} of ${envs.length} transactions unavailable from peers`);
      // Check fetched signatures on the verify pool so block validation finds them cached.
      await Promise.all([...got.values()].map((e) => this.verifier.verifyAsync(e)));
    }
    const c = candidateFromEnvs(p.header, p.headerSignature, envs as TxEnvelope[]);
    // validateProposal checked the header's txRoot against p.txHashes, and every transaction here was found by its own id.
    c.txRootChecked = true;
    this.noteBlockTxs(c);
    if (this.log.enabled('debug')) {
      this.log.debug('proposal received', { height: p.body.height, round: p.body.round, block: c.hashHex.slice(0, 12), txs: c.envs.length, fetched: missing.length, at: this.slotOffset() });
    }
    this.enqueue({
      type: 'proposal',
      proposal: {
        height: p.body.height,
        round: p.body.round,
        validRound: p.body.validRound,
        blockHash: c.hashHex,
        block: c,
        proposer: formatAddress(p.body.proposer),
        signature: p.signature,
      },
    });
  }

  /**
   * Fetch a proposal's missing transactions: from the relaying peer and the proposer's own
   * peer (and the block author's, for a re-proposal) at once, then from a few other peers of the
   * shard, retrying until the end of the proposal's round (at least ASSEMBLY_MIN_MS from now).
   * Only ids we asked for are kept; a peer that serves junk is penalised.
   */
  private async fetchTxs(p: CompactProposal, ids: Uint8Array[], from: string): Promise<Map<string, TxEnvelope>> {
    const g = this.chain.genesis;
    const proposers = [...new Set([formatAddress(p.body.proposer), formatAddress(p.header.proposer)])]
      .map((a) => this.peerOfValidator(a))
      .filter((x): x is string => x !== undefined);
    const others = shuffled(this.p2p.topicPeers(this.t.tx));
    const deadline = Math.max(g.genesisTime + (p.body.round + 1) * g.slotMs, Date.now() + ASSEMBLY_MIN_MS);
    const { got, sources } = await fetchProposalTxs(this.p2p, this.t.txsProtocol, ids, {
      relayer: from,
      proposers,
      others,
      deadline,
      local: (h) => this.mempool.get(h),
      onMalformed: (peer) => this.p2p.penalize(peer, 'served a malformed transaction for a proposal'),
    });
    for (const [source, n] of sources) this.txMetrics.proposalFetched.inc({ source }, n);
    return got;
  }

  /**
   * The libp2p peer a validator address is bound to, when known (node.ts wires it to the
   * beacon's latest registry snapshot, which names the committees' peers).
   */
  peerOfValidator: (address: string) => string | undefined = () => undefined;

  /** Called as this validator builds a block with transactions (node.ts flushes the outbound transaction batch). */
  beforePropose: () => void = () => undefined;

}
