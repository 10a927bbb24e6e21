import { DEFAULT_BACKEND, resolveBackend, addressFromPublicKey, bytesEqual, compareBytes, formatAddress, getBackend, homeShard, parseAddress, schemeLengths, toHex, type BackendName, type SignatureBackend } from '@qnexus/crypto';
import { epochSeed, makeCommittee, type Committee } from '@qnexus/consensus';
import { NATIVE_DENOM, epochCommitteesFromAnnouncement, genesisEpoch, releaseId, verifyVoteEvidence } from '@qnexus/state';
import { STAKING_ID, STAKING_OP, stakingOpName } from '@qnexus/app';
import {
  BEACON_SHARD,
  QnexusError,
  epochIssuance,
  epochOf,
  evidenceKey,
  genesisHash,
  genesisStake,
  type EpochAnnouncement,
  type Genesis,
  type RegistrySnapshot,
  type ShardHead,
  type SignedPeerBinding,
  type StakingTotals,
  type ValidatorInfo,
  type ValidatorStatus,
  type VoteEvidence,
  type XferInfo,
} from '@qnexus/types';

/**
 * The staking registry (docs/staking.md, "The registry"): validator records,
 * the FIFO activation queue, the frozen committees of each epoch, per-epoch
 * participation, rewards, slashing and releases, plus the libp2p peer each
 * validator bound itself to (in memory only).
 *
 * Pure: no clock, I/O or randomness. Slots come in as arguments; every change
 * is also recorded as "dirty" so the driver can persist exactly what changed
 * (`takeChanges`) in the same LevelDB batch as the 2PC log entry or the epoch
 * announcement that depends on it.
 *
 * Status timing: a pending validator becomes `active` (with activationEpoch =
 * E) when epoch E is frozen with it as a member, i.e. up to F slots before E
 * starts; an `exiting` validator becomes `exited` when its exitEpoch starts.
 */

/** A committee member as the frozen epoch holds it. */
export interface MemberInfo {
  publicKey: Uint8Array;
  stake: bigint;
}

/** One shard's committee of a frozen epoch (same shape as `@qnexus/state`'s EpochCommittees). */
export interface FrozenShard {
  committee: Committee;
  members: Map<string, MemberInfo>;
}

/** The committees of an epoch, fixed once frozen. */
export interface FrozenEpoch {
  epoch: number;
  seed: Uint8Array;
  shards: FrozenShard[];
}

/**
 * A validator as the registry keeps it: what snapshots show (`ValidatorInfo`, with the
 * address as `qn…` text), plus its key and the beacon's own bookkeeping. `exitEpoch` is null
 * while an exit is requested but not yet schedulable (its shard would be left empty).
 */
export interface ValidatorRecord extends Omit<ValidatorInfo, 'address'> {
  /** `qn…` address. */
  address: string;
  publicKey: Uint8Array;
  /** Releases finished so far (committed or aborted); the next release id uses this number. */
  releaseAttempt: number;
  /** Id (hex) of the release in flight, or null. */
  release: string | null;
  /** Registration order: the activation queue is FIFO by it. */
  seq: number;
}

/** The snapshot view of a record. */
export function validatorInfo(v: ValidatorRecord): ValidatorInfo {
  const { publicKey: _pk, releaseAttempt: _ra, release: _rel, seq: _seq, address, ...shown } = v;
  return { ...shown, address: parseAddress(address), last: { ...v.last }, lifetime: { ...v.lifetime } };
}

/** A record as registration creates it: bonded, no epochs, no rewards yet. */
function newRecord(address: string, publicKey: Uint8Array, home: Uint8Array, stake: bigint, status: ValidatorStatus, seq: number): ValidatorRecord {
  return {
    address,
    publicKey,
    home,
    stake,
    status,
    shard: null,
    activationEpoch: null,
    exitEpoch: null,
    withdrawableEpoch: null,
    rewards: 0n,
    slashed: 0n,
    lastEpoch: null,
    last: { signed: 0, blocks: 0 },
    lifetime: { signed: 0, blocks: 0 },
    releaseAttempt: 0,
    release: null,
    seq,
  };
}

/** Counters and cursors that are not per validator. */
export interface RegistryMeta {
  stakedIn: bigint;
  feesIn: bigint;
  minted: bigint;
  slashed: bigint;
  released: bigint;
  /** First epoch not frozen yet. */
  frozenNext: number;
  /** Latest epoch whose start was processed (status changes, releases); -1 before epoch 0. */
  startedEpoch: number;
  /** First epoch whose rewards are not computed yet. */
  rewardedNext: number;
  nextSeq: number;
}

/** Certified blocks of one shard seen in one epoch, and who signed their certificates. */
export interface ParticipationBucket {
  heights: Set<number>;
  signed: Map<string, number>;
}

/** What changed since the last `takeChanges`; the driver persists it atomically. */
export interface RegistryChanges {
  validators: ValidatorRecord[];
  meta: RegistryMeta | null;
  buckets: { epoch: number; shard: number; bucket: ParticipationBucket }[];
  /** Buckets no longer needed (their epoch's rewards are computed). */
  deletedBuckets: { epoch: number; shard: number }[];
  evidence: string[];
  /** Newly frozen epochs; the driver stores each one's signed announcement. */
  frozen: FrozenEpoch[];
}

/** What a restarted beacon loads from its store. */
export interface RegistryState {
  meta: RegistryMeta;
  validators: ValidatorRecord[];
  epochs: FrozenEpoch[];
  buckets: { epoch: number; shard: number; bucket: ParticipationBucket }[];
  evidence: string[];
}

export interface EvidenceResult {
  result: 'slashed' | 'duplicate';
  validator: string;
  slashed: bigint;
}

/** What `onSlot` did (for logs and metrics). */
export interface SlotEffects {
  frozen: FrozenEpoch[];
  /** Epochs whose start was processed in this call. */
  started: number[];
  /** Releases to hand to the coordinator (already marked in flight). */
  releases: XferInfo[];
  rewarded: { epoch: number; minted: bigint }[];
}


export class Registry {
  readonly genesisHash: Uint8Array;
  readonly backend: SignatureBackend;
  private readonly validators = new Map<string, ValidatorRecord>();
  private readonly epochs = new Map<number, FrozenEpoch>();
  /** Per frozen epoch: address -> shard. */
  private readonly memberIndex = new Map<number, Map<string, number>>();
  private readonly buckets = new Map<string, ParticipationBucket>();
  /** `${shard}/${height}` -> epoch it was counted in (only for epochs not yet rewarded). */
  private readonly counted = new Map<string, number>();
  private readonly evidence = new Set<string>();
  private meta: RegistryMeta;
  private readonly genesisStake: bigint;
  /** validator address -> its latest binding (peer id, shard); in memory, relearned from hellos. */
  private readonly bound = new Map<string, { peerId: string; shard: number; binding: SignedPeerBinding }>();
  /**
   * Bumped whenever a validator binds a peer other than the one it had: with the epoch, it
   * says when the set of trusted peers (`memberPeers`) may have changed.
   */
  private bindings = 0;
  /** shard -> its newest certified block reported to us; in memory (proposers report every block, so it refills within a slot). */
  private readonly shardHeads = new Map<number, ShardHead>();

  private readonly dirty = { validators: new Set<string>(), meta: false, buckets: new Set<string>(), deleted: new Set<string>(), evidence: [] as string[], frozen: [] as FrozenEpoch[] };

  /**
   * Without `restored`: the genesis registry (genesis validators active in epoch 0, epoch 0 frozen).
   * `backend`: the beacon's signature backend (`--crypto-backend`), which verifies bindings,
   * evidence and reports (the beacon signs with it too); throws CryptoBackendError when it cannot load.
   */
  constructor(
    readonly genesis: Genesis,
    restored?: RegistryState,
    backend: BackendName = resolveBackend(DEFAULT_BACKEND),
  ) {
    this.genesisHash = genesisHash(genesis);
    this.backend = getBackend(genesis.scheme, backend);
    this.genesisStake = genesisStake(genesis);
    if (restored) {
      this.meta = { ...restored.meta };
      for (const v of restored.validators) this.validators.set(v.address, v);
      for (const e of restored.epochs) this.addEpoch(e);
      for (const b of restored.buckets) {
        this.buckets.set(`${b.epoch}/${b.shard}`, b.bucket);
        for (const h of b.bucket.heights) this.counted.set(`${b.shard}/${h}`, b.epoch);
      }
      for (const k of restored.evidence) this.evidence.add(k);
      return;
    }
    this.meta = { stakedIn: 0n, feesIn: 0n, minted: 0n, slashed: 0n, released: 0n, frozenNext: 1, startedEpoch: -1, rewardedNext: 0, nextSeq: 0 };
    // Epoch 0 is the genesis assignment, exactly as shard nodes compute it.
    const epoch0: FrozenEpoch = genesisEpoch(genesis, this.genesisHash);
    const shards = epoch0.shards;
    for (const gv of genesis.validators) {
      const shard = shards.findIndex((s) => s.members.has(gv.address));
      this.put({ ...newRecord(gv.address, gv.publicKey, parseAddress(gv.address), gv.stake, 'active', this.meta.nextSeq++), shard, activationEpoch: 0 });
    }
    this.addEpoch(epoch0);
    this.dirty.frozen.push(epoch0);
    this.dirty.meta = true;
  }

  // ---------------------------------------------------------------- queries

  get staking() {
    return this.genesis.staking;
  }

  get frozenNext(): number {
    return this.meta.frozenNext;
  }

  get rewardedNext(): number {
    return this.meta.rewardedNext;
  }

  validator(address: string): ValidatorRecord | undefined {
    return this.validators.get(address);
  }

  /** Every validator in registration order. */
  all(): ValidatorRecord[] {
    return [...this.validators.values()].sort((a, b) => a.seq - b.seq);
  }

  epoch(e: number): FrozenEpoch | undefined {
    return this.epochs.get(e);
  }

  frozenEpochs(): number[] {
    return [...this.epochs.keys()].sort((a, b) => a - b);
  }

  seed(epoch: number): Uint8Array {
    return this.epochs.get(epoch)?.seed ?? this.seedOf(epoch);
  }

  /** Committees of a frozen epoch, or undefined. */
  committees(epoch: number): Committee[] | undefined {
    return this.epochs.get(epoch)?.shards.map((s) => s.committee);
  }

  membership(epoch: number, address: string): { shard: number; stake: bigint; publicKey: Uint8Array } | undefined {
    const shard = this.memberIndex.get(epoch)?.get(address);
    if (shard === undefined) return undefined;
    const m = this.epochs.get(epoch)!.shards[shard]!.members.get(address)!;
    return { shard, stake: m.stake, publicKey: m.publicKey };
  }

  totals(): StakingTotals {
    let held = 0n;
    for (const v of this.validators.values()) held += v.stake + v.rewards;
    const m = this.meta;
    return { genesisStake: this.genesisStake, stakedIn: m.stakedIn, feesIn: m.feesIn, minted: m.minted, slashed: m.slashed, released: m.released, held };
  }

  /** Stake bonded in the registry (validators not withdrawn). */
  bonded(): bigint {
    let s = 0n;
    for (const v of this.validators.values()) s += v.stake;
    return s;
  }

  snapshot(slot: number): RegistrySnapshot {
    const epoch = epochOf(this.genesis, Math.max(0, slot));
    const peers = [...this.memberPeers(epoch)].map(([address, peerId]) => ({ validator: parseAddress(address), peerId })).sort((a, b) => compareBytes(a.validator, b.validator));
    return { chainId: this.genesis.chainId, slot, epoch, validators: this.all().map(validatorInfo), totals: this.totals(), heads: this.heads(), peers };
  }

  // ---------------------------------------------------------------- shard heads

  /**
   * A block of a shard whose finality certificate was verified (a report): kept when it is the
   * newest of its shard seen so far. Returns whether it became the shard's head.
   */
  recordHead(head: ShardHead): boolean {
    if (!Number.isInteger(head.shard) || head.shard < 0 || head.shard >= this.genesis.shardCount) return false;
    const cur = this.shardHeads.get(head.shard);
    if (cur && cur.height >= head.height) return false;
    this.shardHeads.set(head.shard, { ...head, blockHash: head.blockHash.slice() });
    return true;
  }

  /** Every shard's newest certified block heard of, by shard. */
  heads(): ShardHead[] {
    return [...this.shardHeads.values()].sort((a, b) => a.shard - b.shard);
  }

  /** The announcement of a frozen epoch (members with keys and stakes, in committee order). */
  announcement(epoch: number, issuedSlot: number): EpochAnnouncement {
    const fe = this.epochs.get(epoch);
    if (!fe) throw new QnexusError('EPOCH_UNKNOWN', `epoch ${epoch} is not frozen yet`);
    return {
      chainId: this.genesis.chainId,
      epoch,
      startSlot: epoch * this.genesis.epochLength,
      seed: fe.seed,
      committees: fe.shards.map((s, shard) => ({ shard, members: s.committee.validators.map((m) => ({ publicKey: s.members.get(m.address)!.publicKey, stake: m.stake })) })),
      issuedSlot,
    };
  }

  // ---------------------------------------------------------------- peer bindings

  /** Remember the peer a committee member speaks through (the latest binding wins). */
  bind(address: string, shard: number, peerId: string, binding: SignedPeerBinding): void {
    const prev = this.bound.get(address);
    if (prev?.peerId !== peerId) this.bindings++;
    this.bound.set(address, { peerId, shard, binding });
  }

  /** Changes whenever a validator binds a new peer. */
  get bindingsVersion(): number {
    return this.bindings;
  }

  /**
   * Members of `epoch`'s and `epoch + 1`'s committees (whichever are frozen) that bound a
   * peer, with that peer: the peers to trust (the snapshot carries them to every node).
   */
  memberPeers(epoch: number): Map<string, string> {
    const out = new Map<string, string>();
    for (const e of [epoch, epoch + 1]) {
      const idx = this.memberIndex.get(e);
      if (!idx) continue;
      for (const address of idx.keys()) {
        const b = this.bound.get(address);
        if (b) out.set(address, b.peerId);
      }
    }
    return out;
  }

  peerOf(address: string): string | null {
    return this.bound.get(address)?.peerId ?? null;
  }

  /** Peers bound by members of `shard`'s committee in `epoch` (and the next frozen one), deduplicated. */
  shardPeers(epoch: number, shard: number): string[] {
    const out = new Set<string>();
    for (const e of [epoch, epoch + 1]) {
      const s = this.epochs.get(e)?.shards[shard];
      if (!s) continue;
      for (const m of s.committee.validators) {
        const b = this.bound.get(m.address);
        if (b && b.shard === shard) out.add(b.peerId);
      }
    }
    return [...out];
  }

  // ---------------------------------------------------------------- slots

  /**
   * Everything time-driven, for the beacon's slot `slot`: freeze every epoch
   * E not frozen with E·L − F ≤ slot (catching up after downtime), process
   * epoch starts (exiting → exited, releases), compute the rewards of every
   * epoch e with (e+1)·L + F ≤ slot.
   */
  onSlot(slot: number): SlotEffects {
    const L = this.genesis.epochLength;
    const F = freezeLead(L);
    const fx: SlotEffects = { frozen: [], started: [], releases: [], rewarded: [] };
    while (this.meta.frozenNext * L - F <= slot) fx.frozen.push(this.freeze(this.meta.frozenNext));
    const current = epochOf(this.genesis, slot);
    if (slot >= 0 && current > this.meta.startedEpoch) {
      for (let e = this.meta.startedEpoch + 1; e <= current; e++) {
        for (const v of this.validators.values()) {
          if (v.status === 'exiting' && v.exitEpoch !== null && v.exitEpoch <= e) {
            v.status = 'exited';
            this.touch(v);
          }
        }
        fx.started.push(e);
      }
      this.meta.startedEpoch = current;
      this.dirty.meta = true;
      fx.releases = this.startReleases(current, slot);
    }
    while ((this.meta.rewardedNext + 1) * L + F <= slot) {
      const e = this.meta.rewardedNext;
      fx.rewarded.push({ epoch: e, minted: this.reward(e) });
      this.meta.rewardedNext++;
      this.dirty.meta = true;
    }
    return fx;
  }

  private freeze(E: number): FrozenEpoch {
    const k = this.genesis.shardCount;
    const churn = this.staking.churnLimit;
    const members: { v: ValidatorRecord; shard: number }[][] = Array.from({ length: k }, () => []);
    const stakes: bigint[] = Array(k).fill(0n);
    const add = (v: ValidatorRecord, shard: number) => {
      members[shard]!.push({ v, shard });
      stakes[shard]! += v.stake;
    };
    // Continuing members keep their shard.
    for (const v of this.all()) {
      if (v.shard === null || v.activationEpoch === null || v.stake <= 0n) continue;
      if (v.status === 'active' || (v.status === 'exiting' && (v.exitEpoch === null || v.exitEpoch > E))) add(v, v.shard);
    }
    const pending = this.all().filter((v) => v.status === 'pending' && v.stake > 0n);
    let room = churn - this.exitsInto(E);
    const activate = (v: ValidatorRecord) => {
      let best = 0;
      for (let s = 1; s < k; s++) {
        if (stakes[s]! < stakes[best]! || (stakes[s] === stakes[best] && members[s]!.length < members[best]!.length)) best = s;
      }
      v.status = 'active';
      v.shard = best;
      v.activationEpoch = E;
      this.touch(v);
      add(v, best);
    };
    while (room > 0 && pending.length > 0) {
      activate(pending.shift()!);
      room--;
    }
    // A shard left with no member (ejections) takes queued validators beyond the churn limit.
    while (pending.length > 0 && members.some((m) => m.length === 0)) activate(pending.shift()!);
    const prev = this.epochs.get(E - 1);
    const shards: FrozenShard[] = members.map((ms, shard) => {
      if (ms.length === 0 && prev) {
        // Liveness fallback: nobody is left to run this shard; it keeps its previous committee.
        return prev.shards[shard]!;
      }
      return {
        committee: makeCommittee(ms.map(({ v }) => ({ address: v.address, stake: v.stake }))),
        members: new Map(ms.map(({ v }) => [v.address, { publicKey: v.publicKey, stake: v.stake }])),
      };
    });
    const fe: FrozenEpoch = { epoch: E, seed: this.seedOf(E), shards };
    this.addEpoch(fe);
    this.meta.frozenNext = E + 1;
    this.dirty.meta = true;
    this.dirty.frozen.push(fe);
    // Exits that had to wait for their shard to keep a member may fit now.
    for (const v of this.all()) if (v.status === 'exiting' && v.exitEpoch === null) this.scheduleExit(v);
    return fe;
  }

  /** Validators leaving the committees at E by unstaking (counted against the churn limit; ejections are not). */
  private exitsInto(E: number): number {
    let n = 0;
    for (const v of this.validators.values()) if ((v.status === 'exiting' || v.status === 'exited') && v.exitEpoch === E && v.activationEpoch !== null) n++;
    return n;
  }

  /** Members `shard` would have in (unfrozen) epoch E, not counting `except` and newcomers. */
  private projectedMembers(shard: number, E: number, except: ValidatorRecord): number {
    let n = 0;
    for (const v of this.validators.values()) {
      if (v === except || v.shard !== shard || v.activationEpoch === null) continue;
      if (v.status === 'active' || (v.status === 'exiting' && (v.exitEpoch === null || v.exitEpoch > E))) n++;
    }
    return n;
  }

  /** Give an exiting validator its exit epoch: the first unfrozen one with churn room where its shard keeps a member. */
  private scheduleExit(v: ValidatorRecord): void {
    const unbonding = this.staking.unbondingEpochs;
    if (v.activationEpoch === null) {
      // Never in a committee (left the queue): no churn, no shard to keep.
      v.exitEpoch = this.meta.frozenNext;
    } else {
      const churn = this.staking.churnLimit;
      let E = this.meta.frozenNext;
      for (;;) {
        if (this.projectedMembers(v.shard!, E, v) === 0) return; // wait for a newcomer on its shard
        if (this.exitsInto(E) < churn) break;
        E++;
      }
      v.exitEpoch = E;
    }
    v.withdrawableEpoch = v.exitEpoch + unbonding;
    this.touch(v);
  }

  private startReleases(E: number, slot: number): XferInfo[] {
    const out: XferInfo[] = [];
    for (const v of this.all()) {
      if (!(v.status === 'exited' || v.status === 'slashed' || v.status === 'withdrawn')) continue;
      if (v.withdrawableEpoch === null || E < v.withdrawableEpoch || v.release !== null) continue;
      const amount = v.stake + v.rewards;
      if (amount <= 0n) continue;
      const from = parseAddress(v.address);
      const id = releaseId(this.genesis.chainId, from, v.releaseAttempt);
      const info: XferInfo = {
        module: STAKING_ID,
        op: STAKING_OP.release,
        denom: NATIVE_DENOM,
        id,
        srcShard: BEACON_SHARD,
        dstShard: homeShard(v.home, this.genesis.shardCount),
        from,
        to: v.home,
        amount,
        deadlineSlot: slot + this.genesis.xferTimeoutSlots,
        payload: new Uint8Array(0),
      };
      v.release = toHex(id);
      this.touch(v);
      out.push(info);
    }
    return out;
  }

  private reward(e: number): bigint {
    const fe = this.epochs.get(e);
    let minted = 0n;
    if (fe) {
      const issuance = epochIssuance(this.staking, e);
      let total = 0n;
      for (const s of fe.shards) total += s.committee.totalStake;
      fe.shards.forEach((s, shard) => {
        const b = this.buckets.get(`${e}/${shard}`);
        const blocks = b?.heights.size ?? 0;
        for (const m of s.committee.validators) {
          const v = this.validators.get(m.address);
          if (!v) continue;
          const signed = b?.signed.get(m.address) ?? 0;
          // A slashed validator forfeits the rewards of every epoch rewarded after its slashing.
          const r = blocks === 0 || total === 0n || v.status === 'slashed' ? 0n : (issuance * m.stake * BigInt(signed)) / (total * BigInt(blocks));
          v.rewards += r;
          minted += r;
          v.lastEpoch = e;
          v.last = { signed, blocks };
          v.lifetime = { signed: v.lifetime.signed + signed, blocks: v.lifetime.blocks + blocks };
          this.touch(v);
        }
      });
      for (let shard = 0; shard < fe.shards.length; shard++) {
        const key = `${e}/${shard}`;
        const b = this.buckets.get(key);
        if (b) {
          for (const h of b.heights) this.counted.delete(`${shard}/${h}`);
          this.buckets.delete(key);
          this.dirty.buckets.delete(key);
          this.dirty.deleted.add(key);
        }
      }
    }
    this.meta.minted += minted;
    this.dirty.meta = true;
    return minted;
  }

  // ---------------------------------------------------------------- participation

  /**
   * A verified certificate of block `height` of `shard`, certified in `round`
   * by `signers` (addresses). Counts once per (shard, height), in the epoch of
   * the round, unless that epoch's rewards are already computed. Returns
   * whether it counted.
   */
  recordParticipation(shard: number, height: number, round: number, signers: readonly string[]): boolean {
    const e = epochOf(this.genesis, round);
    if (e < this.meta.rewardedNext || !this.epochs.has(e)) return false;
    const ck = `${shard}/${height}`;
    if (this.counted.has(ck)) return false;
    const key = `${e}/${shard}`;
    let b = this.buckets.get(key);
    if (!b) this.buckets.set(key, (b = { heights: new Set(), signed: new Map() }));
    b.heights.add(height);
    for (const s of new Set(signers)) if (this.membership(e, s)?.shard === shard) b.signed.set(s, (b.signed.get(s) ?? 0) + 1);
    this.counted.set(ck, e);
    this.dirty.buckets.add(key);
    this.dirty.deleted.delete(key);
    return true;
  }

  bucket(epoch: number, shard: number): ParticipationBucket | undefined {
    return this.buckets.get(`${epoch}/${shard}`);
  }

  // ---------------------------------------------------------------- 2PC participant

  /**
   * Whether the beacon, as destination, accepts a proven incoming record:
   * null to commit, or the abort reason (an error code). No state change.
   */
  verdict(info: XferInfo): string | null {
    const to = formatAddress(info.to);
    const v = this.validators.get(to);
    if (info.denom !== NATIVE_DENOM) return 'MALFORMED';
    switch (stakingOpName(info)) {
      case 'stake': {
        if (v) {
          if (!bytesEqual(v.home, info.from)) return 'STAKE_NOT_OWNER';
          if (v.status !== 'pending' && v.status !== 'active') return 'STAKE_BAD_STATUS';
          return null;
        }
        if (info.payload.length !== schemeLengths(this.genesis.scheme).publicKey || !bytesEqual(addressFromPublicKey(info.payload), info.to)) return 'MALFORMED';
        if (info.amount <= 0n) return 'STAKE_TOO_LOW';
        return null;
      }
      case 'unstake': {
        if (!v) return 'VALIDATOR_UNKNOWN';
        if (!bytesEqual(info.from, v.home) && !bytesEqual(info.from, info.to)) return 'STAKE_NOT_OWNER';
        if (v.status !== 'pending' && v.status !== 'active') return 'STAKE_BAD_STATUS';
        return null;
      }
      case 'fees':
        // Proposers are always registered validators; anything else is refunded to the shard.
        return v ? null : 'VALIDATOR_UNKNOWN';
      default:
        return 'MALFORMED';
    }
  }

  /**
   * A logged decision of a transfer the beacon takes part in: apply its
   * effect (beacon as destination: stake, unstake, fees on commit; beacon as
   * source: a release's commit or abort).
   */
  applied(info: XferInfo, outcome: 'commit' | 'abort'): void {
    if (info.srcShard === BEACON_SHARD) return this.releaseDecided(info, outcome);
    if (outcome !== 'commit') return;
    const to = formatAddress(info.to);
    let v = this.validators.get(to);
    switch (stakingOpName(info)) {
      case 'stake':
        v ??= newRecord(to, info.payload, info.from, 0n, 'pending', this.meta.nextSeq++);
        v.stake += info.amount;
        this.meta.stakedIn += info.amount;
        this.put(v);
        this.dirty.meta = true;
        return;
      case 'unstake':
        if (!v || (v.status !== 'pending' && v.status !== 'active')) return;
        v.status = 'exiting';
        this.touch(v);
        this.scheduleExit(v);
        return;
      case 'fees':
        if (!v) return;
        v.rewards += info.amount;
        this.meta.feesIn += info.amount;
        this.touch(v);
        this.dirty.meta = true;
        return;
      default:
        return;
    }
  }

  private releaseDecided(info: XferInfo, outcome: 'commit' | 'abort'): void {
    const v = this.validators.get(formatAddress(info.from));
    if (!v || v.release !== toHex(info.id)) return;
    v.release = null;
    v.releaseAttempt++;
    if (outcome === 'commit') {
      // Whatever accrued while the release was in flight (late fees or rewards) stays as rewards and is released next epoch.
      const left = v.stake + v.rewards - info.amount;
      this.meta.released += info.amount;
      v.stake = 0n;
      v.rewards = left > 0n ? left : 0n;
      v.status = 'withdrawn';
      this.dirty.meta = true;
    }
    this.touch(v);
  }

  // ---------------------------------------------------------------- evidence

  /**
   * Verify equivocation evidence and slash (once per validator). Throws
   * EVIDENCE_INVALID (not two conflicting valid votes of a member of that
   * shard's committee in epochOf(round)) or EVIDENCE_EXPIRED (stake already
   * withdrawn or being released).
   */
  submitEvidence(ev: VoteEvidence, verify: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean = (pk, m, s) => this.backend.verify(pk, m, s)): EvidenceResult {
    const body = ev.first.body;
    const address = formatAddress(body.validator);
    const v = this.validators.get(address);
    if (!v) throw new QnexusError('EVIDENCE_INVALID', `${address} is not a registered validator`);
    // Everything but the two signatures first (a dry run takes every signature as valid): a
    // resubmission of recorded evidence costs no verification.
    verifyVoteEvidence(ev, this.genesis.chainId, v.publicKey, () => true);
    const e = epochOf(this.genesis, body.round);
    const m = this.membership(e, address);
    if (!m || m.shard !== body.shard) throw new QnexusError('EVIDENCE_INVALID', `${address} is not a member of shard ${body.shard}'s committee in epoch ${e}`);
    if (v.status === 'withdrawn' || v.release !== null) throw new QnexusError('EVIDENCE_EXPIRED', `${address}'s stake is ${v.status === 'withdrawn' ? 'withdrawn' : 'being released'}`);
    const key = evidenceKey(ev);
    if (this.evidence.has(key)) return { result: 'duplicate', validator: address, slashed: 0n };
    verifyVoteEvidence(ev, this.genesis.chainId, v.publicKey, verify);
    // Slashed once per validator. More evidence against it changes nothing and is not stored:
    // its key signs as many conflicting votes as it likes, which must not grow our store.
    if (v.status === 'slashed') return { result: 'duplicate', validator: address, slashed: 0n };
    this.evidence.add(key);
    this.dirty.evidence.push(key);
    const amount = (v.stake * BigInt(this.staking.slashBps)) / 10_000n;
    v.stake -= amount;
    v.slashed += amount;
    this.meta.slashed += amount;
    this.dirty.meta = true;
    v.status = 'slashed';
    // Ejected from every committee not frozen yet; an earlier scheduled exit stands.
    if (v.exitEpoch === null || v.exitEpoch > this.meta.frozenNext) {
      v.exitEpoch = this.meta.frozenNext;
      v.withdrawableEpoch = v.exitEpoch + this.staking.unbondingEpochs;
    }
    this.touch(v);
    return { result: 'slashed', validator: address, slashed: amount };
  }

  hasEvidence(key: string): boolean {
    return this.evidence.has(key);
  }

  // ---------------------------------------------------------------- persistence

  /** Everything changed since the last call, for one atomic write. */
  takeChanges(): RegistryChanges {
    const d = this.dirty;
    const parse = (k: string) => {
      const [e, s] = k.split('/');
      return { epoch: Number(e), shard: Number(s) };
    };
    const out: RegistryChanges = {
      validators: [...d.validators].map((a) => this.validators.get(a)!),
      meta: d.meta ? { ...this.meta } : null,
      buckets: [...d.buckets].map((k) => ({ ...parse(k), bucket: this.buckets.get(k)! })),
      deletedBuckets: [...d.deleted].map(parse),
      evidence: d.evidence,
      frozen: d.frozen,
    };
    d.validators = new Set();
    d.meta = false;
    d.buckets = new Set();
    d.deleted = new Set();
    d.evidence = [];
    d.frozen = [];
    return out;
  }

  /** Whether `takeChanges` would return anything. */
  get changed(): boolean {
    const d = this.dirty;
    return d.validators.size > 0 || d.meta || d.buckets.size > 0 || d.deleted.size > 0 || d.evidence.length > 0 || d.frozen.length > 0;
  }

  /** The full state (what the store holds after every change is written). */
  state(): RegistryState {
    return {
      meta: { ...this.meta },
      validators: this.all(),
      epochs: this.frozenEpochs().map((e) => this.epochs.get(e)!),
      buckets: [...this.buckets].map(([k, bucket]) => {
        const [e, s] = k.split('/');
        return { epoch: Number(e), shard: Number(s), bucket };
      }),
      evidence: [...this.evidence],
    };
  }

  // ---------------------------------------------------------------- internals

  private seedOf(epoch: number): Uint8Array {
    return epochSeed(this.genesis.chainId, this.genesisHash, epoch);
  }

  private addEpoch(fe: FrozenEpoch): void {
    this.epochs.set(fe.epoch, fe);
    const idx = new Map<string, number>();
    fe.shards.forEach((s, shard) => {
      for (const a of s.members.keys()) idx.set(a, shard);
    });
    this.memberIndex.set(fe.epoch, idx);
  }

  private put(v: ValidatorRecord): void {
    this.validators.set(v.address, v);
    this.touch(v);
  }

  private touch(v: ValidatorRecord): void {
    this.dirty.validators.add(v.address);
  }
}

/** F: how many slots before its start an epoch is frozen (max(1, floor(L/2))). */
export function freezeLead(epochLength: number): number {
  return Math.max(1, Math.floor(epochLength / 2));
}

/** Build a frozen epoch back from a (verified, stored) announcement. */
export function frozenFromAnnouncement(a: EpochAnnouncement): FrozenEpoch {
  return epochCommitteesFromAnnouncement(a);
}
