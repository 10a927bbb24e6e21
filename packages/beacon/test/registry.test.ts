// The pure staking registry, driven through the coordinator as the beacon drives it.
import assert from 'node:assert/strict';
import { CryptoBackendError, addressFromPublicKey, backendAvailable, formatAddress, getBackend, homeShard, sha256, toHex, utf8, type BackendName, type KeyPair } from '@qnexus/crypto';
import { releaseId } from '@qnexus/state';
import { BEACON_SHARD, QnexusError, epochIssuance, evidenceKey, openTx, voteSigningBytes, type Genesis, type GenesisStaking, type VoteBody, type VoteEvidence, type XferInfo } from '@qnexus/types';
import { Coordinator, type CoordinatorAction } from '../src/coordinator.js';
import { Registry, freezeLead } from '../src/registry.js';
import { beaconTxSigner } from '../src/system.js';
import { FakeSigner, addrOf, destRecord, key, sends, sourceRecord, testGenesis, OP } from './helpers.js';

const backend = getBackend('ml-dsa-44');
const L = 8;
const F = freezeLead(L); // 4

let nextId = 0;
const freshId = () => sha256(utf8(`registry-test-${nextId++}`));
const addrBytes = (k: KeyPair) => addressFromPublicKey(k.publicKey);

/** The held identity of docs/staking.md, checked after every step. */
function assertHeld(r: Registry): void {
  const t = r.totals();
  let sum = 0n;
  for (const v of r.all()) sum += v.stake + v.rewards;
  assert.equal(t.held, sum);
  assert.equal(t.held, t.genesisStake + t.stakedIn + t.feesIn + t.minted - t.slashed - t.released, 'held = genesisStake + stakedIn + feesIn + minted − slashed − released');
}

class World {
  readonly g: Genesis;
  readonly r: Registry;
  readonly c: Coordinator;
  readonly vals = [1, 2, 3, 4].map(key);
  height = 100;
  constructor(staking: Partial<GenesisStaking> = {}) {
    this.g = testGenesis({ validators: this.vals, beacon: key(9), epochLength: L, staking: { churnLimit: 2, unbondingEpochs: 1, minStake: 10n, ...staking } });
    this.r = new Registry(this.g);
    this.c = new Coordinator({ signer: new FakeSigner(), participants: new Map([[3, this.r]]) });
  }
  shardOf(addr: Uint8Array): number {
    return homeShard(addr, this.g.shardCount);
  }
  /** A proven source record of a beacon-bound transfer, processed at `slot`. */
  incoming(info: XferInfo, slot: number): CoordinatorAction[] {
    const a = this.c.onRecord(sourceRecord(info, { preparedHeight: this.height }), info.srcShard, this.height++, slot);
    assertHeld(this.r);
    return a;
  }
  stake(funder: Uint8Array, v: KeyPair, amount: bigint, slot: number, over: Partial<XferInfo> = {}): CoordinatorAction[] {
    return this.incoming({ ...OP.stake, denom: 'qfc', id: freshId(), srcShard: this.shardOf(funder), dstShard: BEACON_SHARD, from: funder, to: addrBytes(v), amount, deadlineSlot: slot + 20, payload: v.publicKey, ...over }, slot);
  }
  unstake(signer: Uint8Array, validator: Uint8Array, slot: number): CoordinatorAction[] {
    return this.incoming({ ...OP.unstake, denom: 'qfc', id: freshId(), srcShard: this.shardOf(signer), dstShard: BEACON_SHARD, from: signer, to: validator, amount: 0n, deadlineSlot: slot + 20, payload: new Uint8Array(0) }, slot);
  }
  fees(proposer: Uint8Array, amount: bigint, slot: number): CoordinatorAction[] {
    return this.incoming({ ...OP.fees, denom: 'qfc', id: freshId(), srcShard: 0, dstShard: BEACON_SHARD, from: proposer, to: proposer, amount, deadlineSlot: slot + 20, payload: new Uint8Array(0) }, slot);
  }
  /** Tick the registry (and start its releases) at `slot`; returns the coordinator actions. */
  tick(slot: number): { actions: CoordinatorAction[]; releases: XferInfo[] } {
    const actions = this.c.tick(slot);
    const fx = this.r.onSlot(slot);
    for (const info of fx.releases) actions.push(...this.c.startRelease(info, slot));
    assertHeld(this.r);
    return { actions, releases: fx.releases };
  }
  /** The home shard's answer to a release prepare. */
  answer(info: XferInfo, accepted: boolean, slot: number): CoordinatorAction[] {
    const a = this.c.onRecord(destRecord(info, accepted ? {} : { prepare: 'refused', reason: 'TX_BAD_RECIPIENT' }), info.dstShard, this.height++, slot);
    assertHeld(this.r);
    return a;
  }
  v(k: KeyPair) {
    return this.r.validator(addrOf(k))!;
  }
}

function decisionOf(w: World, actions: CoordinatorAction[]): { outcome: string; reason: string } {
  const p = actions.find((a) => a.type === 'phase' && a.phase === 'decided');
  assert.ok(p && p.type === 'phase', 'a decision');
  return { outcome: p.entry.decision!.outcome, reason: p.entry.decision!.reason };
}

function vote(k: KeyPair, g: Genesis, over: Partial<VoteBody>): { body: VoteBody; signature: Uint8Array } {
  const body: VoteBody = { chainId: g.chainId, shard: 0, height: 5, round: 3, step: 'prevote', blockHash: sha256(utf8('a')), validator: addrBytes(k), ...over };
  return { body, signature: backend.sign(k.secretKey, voteSigningBytes(body)) };
}

function evidence(k: KeyPair, g: Genesis, over: Partial<VoteBody> = {}): VoteEvidence {
  return { first: vote(k, g, over), second: vote(k, g, { ...over, blockHash: sha256(utf8('b')) }) };
}

const code = (c: string) => (e: unknown) => e instanceof QnexusError && e.code === c;

describe('beacon: staking registry', () => {
  it('starts from the genesis validators: active in epoch 0, home = own address, epoch 0 = the genesis assignment', () => {
    const w = new World();
    assert.deepEqual(w.r.frozenEpochs(), [0]);
    for (const k of w.vals) {
      const v = w.v(k);
      assert.equal(v.status, 'active');
      assert.equal(v.activationEpoch, 0);
      assert.equal(formatAddress(v.home), v.address);
      assert.equal(w.r.membership(0, v.address)?.shard, v.shard);
    }
    assert.deepEqual(w.r.committees(0)!.map((c) => c.validators.length), [2, 2]);
    assert.equal(w.r.totals().held, 400n);
    assertHeld(w.r);
  });

  it('stake: a new validator is pending, then active in the epoch frozen with it, on the shard with the least stake', () => {
    const w = new World();
    const funder = sha256(utf8('funder')).subarray(0, 20);
    const nv = key(20);
    const a = w.stake(funder, nv, 500n, 1);
    assert.deepEqual(decisionOf(w, a), { outcome: 'commit', reason: '' });
    assert.deepEqual(sends(a), [`${w.shardOf(funder)}:C`], 'the decision goes to the source shard only');
    assert.equal(a.filter((x) => x.type === 'persist').length, 1);
    const e = w.c.get(toHex((a.find((x) => x.type === 'persist') as Extract<CoordinatorAction, { type: 'persist' }>).entry.info.id))!;
    assert.ok(e.destinationApplied, 'the beacon side counts as applied at once');
    assert.equal(w.v(nv).status, 'pending');
    assert.equal(toHex(w.v(nv).home), toHex(funder));
    assert.equal(w.r.totals().stakedIn, 500n);

    w.tick(L - F - 1);
    assert.deepEqual(w.r.frozenEpochs(), [0], 'not frozen before E·L − F');
    w.tick(L - F);
    assert.deepEqual(w.r.frozenEpochs(), [0, 1]);
    const v = w.v(nv);
    assert.equal(v.status, 'active');
    assert.equal(v.activationEpoch, 1);
    assert.equal(v.shard, 0, 'equal stakes: the lowest index');
    assert.equal(w.r.membership(1, v.address)?.stake, 500n);
    assert.equal(w.r.committees(1)![0]!.totalStake, 700n);
    // Members keep their shard.
    for (const k of w.vals) assert.equal(w.r.membership(1, addrOf(k))?.shard, w.r.membership(0, addrOf(k))?.shard);
  });

  it('churn limit: activations wait in FIFO order, net of exits into the epoch', () => {
    const w = new World({ churnLimit: 2 });
    const funder = sha256(utf8('funder')).subarray(0, 20);
    const news = [21, 22, 23].map(key);
    for (const k of news) w.stake(funder, k, 100n, 1);
    // A genesis validator exits into epoch 1: one churn slot left.
    w.unstake(addrBytes(w.vals[0]!), addrBytes(w.vals[0]!), 1);
    assert.equal(w.v(w.vals[0]!).exitEpoch, 1);
    w.tick(L - F);
    assert.deepEqual(news.map((k) => w.v(k).status), ['active', 'pending', 'pending']);
    assert.equal(w.r.membership(1, addrOf(w.vals[0]!)), undefined, 'left at its exit epoch');
    w.tick(2 * L - F);
    assert.deepEqual(news.map((k) => w.v(k).status), ['active', 'active', 'active']);
    assert.deepEqual(news.map((k) => w.v(k).activationEpoch), [1, 2, 2]);
  });

  it('stake top-up from the home account; a foreign funder or a bad key is refused', () => {
    const w = new World();
    const home = addrBytes(w.vals[1]!);
    let a = w.stake(home, w.vals[1]!, 50n, 1);
    assert.equal(decisionOf(w, a).outcome, 'commit');
    assert.equal(w.v(w.vals[1]!).stake, 150n);
    const stranger = sha256(utf8('stranger')).subarray(0, 20);
    a = w.stake(stranger, w.vals[1]!, 50n, 1);
    assert.deepEqual(decisionOf(w, a), { outcome: 'abort', reason: 'STAKE_NOT_OWNER' });
    assert.deepEqual(sends(a), [`${w.shardOf(stranger)}:A`]);
    assert.equal(w.v(w.vals[1]!).stake, 150n);
    // A public key that does not hash to `to`.
    a = w.stake(stranger, key(30), 50n, 1, { payload: key(31).publicKey });
    assert.deepEqual(decisionOf(w, a), { outcome: 'abort', reason: 'MALFORMED' });
    assert.equal(w.r.validator(addrOf(key(30))), undefined);
    assert.equal(w.r.totals().stakedIn, 50n);
  });

  it('unstake → exiting → exited → release at withdrawableEpoch (not before) → withdrawn', () => {
    const w = new World({ unbondingEpochs: 2 });
    const k = w.vals[2]!;
    const home = addrBytes(k);
    const stranger = sha256(utf8('stranger')).subarray(0, 20);
    assert.deepEqual(decisionOf(w, w.unstake(stranger, home, 1)), { outcome: 'abort', reason: 'STAKE_NOT_OWNER' });
    assert.equal(decisionOf(w, w.unstake(home, home, 1)).outcome, 'commit');
    assert.deepEqual(decisionOf(w, w.unstake(home, home, 1)), { outcome: 'abort', reason: 'STAKE_BAD_STATUS' });
    let v = w.v(k);
    assert.equal(v.status, 'exiting');
    assert.equal(v.exitEpoch, 1);
    assert.equal(v.withdrawableEpoch, 3);
    w.tick(0);
    w.tick(L - F);
    assert.equal(w.r.membership(1, v.address), undefined);
    assert.equal(w.r.membership(0, v.address)?.shard, v.shard);
    w.tick(L);
    assert.equal(w.v(k).status, 'exited');
    assert.deepEqual(w.tick(2 * L).releases, [], 'not before withdrawableEpoch');
    const { actions, releases } = w.tick(3 * L);
    assert.equal(releases.length, 1);
    const rel = releases[0]!;
    assert.deepEqual([rel.module, rel.op], [3, 4]);
    assert.equal(rel.srcShard, BEACON_SHARD);
    assert.equal(rel.dstShard, w.shardOf(home));
    assert.equal(rel.amount, 100n);
    assert.equal(toHex(rel.id), toHex(releaseId(w.g.chainId, home, 0)));
    assert.deepEqual(sends(actions).filter((x) => x.endsWith('P')), [`${rel.dstShard}:P`], 'xprepare to the home shard');
    assert.deepEqual(w.tick(3 * L + 1).releases, [], 'one release in flight');
    const a = w.answer(rel, true, 3 * L + 2);
    assert.deepEqual(sends(a), [`${rel.dstShard}:C`], 'the decision goes to the home shard only');
    v = w.v(k);
    assert.equal(v.status, 'withdrawn');
    assert.equal(v.stake, 0n);
    assert.equal(w.r.totals().released, 100n);
    assert.ok(w.c.get(toHex(rel.id))!.sourceApplied, 'the beacon side applied with the decision');
  });

  it('an aborted release is retried next epoch with the next attempt number', () => {
    const w = new World({ unbondingEpochs: 0 });
    const k = w.vals[3]!;
    w.unstake(addrBytes(k), addrBytes(k), 1);
    w.tick(L - F);
    const first = w.tick(L).releases;
    assert.equal(first.length, 1);
    assert.equal(decisionOf(w, w.answer(first[0]!, false, L + 1)).outcome, 'abort');
    assert.equal(w.v(k).status, 'exited');
    assert.deepEqual(w.tick(L + 2).releases, []);
    const second = w.tick(2 * L).releases;
    assert.equal(toHex(second[0]!.id), toHex(releaseId(w.g.chainId, addrBytes(k), 1)));
    // Unanswered past its deadline, the release stays open (no decision from the beacon's clock)…
    const { actions: past, releases: none } = w.tick(second[0]!.deadlineSlot + 1);
    assert.ok(!past.some((a) => a.type === 'phase' && a.phase === 'decided'));
    assert.deepEqual(none, [], 'one release in flight');
    // …until the home shard's block past the deadline refuses it (the deadline rule).
    const late = w.c.onRecord(destRecord(second[0]!, { prepare: 'refused', reason: 'XS_DEADLINE_PASSED' }), second[0]!.dstShard, w.height++, second[0]!.deadlineSlot + 2);
    assert.equal(decisionOf(w, late).outcome, 'abort');
    assert.equal(w.c.get(toHex(second[0]!.id))!.decision!.reason, 'XS_DEADLINE_PASSED');
    // The next epoch's first slot: the third attempt goes out.
    const third = w.tick(Math.ceil((second[0]!.deadlineSlot + 3) / L) * L).releases;
    assert.equal(toHex(third[0]!.id), toHex(releaseId(w.g.chainId, addrBytes(k), 2)));
  });

  it('a pending validator that unstakes just leaves the queue', () => {
    const w = new World();
    const funder = sha256(utf8('funder')).subarray(0, 20);
    const nv = key(40);
    w.stake(funder, nv, 100n, 1);
    assert.equal(decisionOf(w, w.unstake(addrBytes(nv), addrBytes(nv), 1)).outcome, 'commit');
    w.tick(L - F);
    assert.equal(w.r.membership(1, addrOf(nv)), undefined);
    assert.equal(w.v(nv).activationEpoch, null);
  });

  it('rewards follow stake × participation, with the halving curve', () => {
    const w = new World({ rewardPerEpoch: 1000n, halvingEpochs: 1 });
    const [a0, b0] = w.r.committees(0)![0]!.validators.map((m) => m.address) as [string, string];
    const s1 = w.r.committees(0)![1]!.validators.map((m) => m.address);
    // Shard 0: 4 blocks, a0 signed all, b0 signed 2. Shard 1: 2 blocks, all signed.
    for (let h = 1; h <= 4; h++) assert.ok(w.r.recordParticipation(0, h, h, h <= 2 ? [a0, b0] : [a0]));
    assert.equal(w.r.recordParticipation(0, 1, 2, [a0, b0]), false, 'once per (shard, height)');
    for (let h = 1; h <= 2; h++) w.r.recordParticipation(1, h, h, s1);
    w.tick(L + F - 1);
    assert.equal(w.r.totals().minted, 0n, 'not before (e+1)·L + F');
    w.tick(L + F);
    // issuance 1000, total stake 400: a0 = 1000·100·4/(400·4) = 250, b0 = 125, shard 1 members 250 each.
    assert.equal(w.r.validator(a0)!.rewards, 250n);
    assert.equal(w.r.validator(b0)!.rewards, 125n);
    for (const a of s1) assert.equal(w.r.validator(a)!.rewards, 250n);
    assert.deepEqual(w.r.validator(b0)!.last, { signed: 2, blocks: 4 });
    assert.equal(w.r.validator(b0)!.lastEpoch, 0);
    assert.equal(w.r.totals().minted, 875n);
    // Epoch 1 (halved: 500), only shard 1 saw blocks.
    w.r.recordParticipation(1, 10, L + 1, s1);
    assert.equal(w.r.recordParticipation(0, 9, 2, [a0]), false, 'epoch 0 is already rewarded');
    w.tick(2 * L + F);
    assert.equal(epochIssuance(w.g.staking, 1), 500n);
    for (const a of s1) assert.equal(w.r.validator(a)!.rewards, 250n + 125n);
    assert.equal(w.r.validator(a0)!.rewards, 250n, 'no block of shard 0: no reward');
    assert.deepEqual(w.r.validator(s1[0]!)!.lifetime, { signed: 3, blocks: 3 });
    assertHeld(w.r);
  });

  it('a validator slashed before its epoch is rewarded forfeits that reward', () => {
    const w = new World({ rewardPerEpoch: 1000n, halvingEpochs: 0 });
    const [k0, k1] = w.vals as [KeyPair, KeyPair];
    const v0 = w.v(k0);
    const v1 = w.v(k1);
    const s0 = w.r.committees(0)![v0.shard!]!.validators.map((m) => m.address);
    const s1 = w.r.committees(0)![v1.shard!]!.validators.map((m) => m.address);
    for (let h = 1; h <= 2; h++) {
      w.r.recordParticipation(v0.shard!, h, h, s0);
      if (v1.shard !== v0.shard) w.r.recordParticipation(v1.shard!, h, h, s1);
    }
    w.r.submitEvidence(evidence(k0, w.g, { shard: v0.shard! }));
    w.tick(L + F);
    assert.equal(v0.rewards, 0n, 'slashed: nothing for epoch 0');
    assert.ok(v1.rewards > 0n, 'the honest members are rewarded');
    assert.equal(v0.last.signed, 2, 'its participation is still recorded');
    assertHeld(w.r);
  });

  it('fees credit the proposer\'s rewards', () => {
    const w = new World();
    const p = addrBytes(w.vals[0]!);
    const a = w.fees(p, 37n, 3);
    assert.equal(decisionOf(w, a).outcome, 'commit');
    assert.deepEqual(sends(a), ['0:C']);
    assert.equal(w.v(w.vals[0]!).rewards, 37n);
    assert.equal(w.r.totals().feesIn, 37n);
  });

  it('evidence: valid slashes once and ejects from unfrozen epochs; invalid, duplicate and expired are told apart', () => {
    const w = new World({ slashBps: 1000, unbondingEpochs: 0 });
    const k = w.vals[0]!;
    const v = w.v(k);
    const shard = v.shard!;
    // Not conflicting (same block).
    const same = { first: vote(k, w.g, { shard }), second: vote(k, w.g, { shard }) };
    assert.throws(() => w.r.submitEvidence(same), code('EVIDENCE_INVALID'));
    // Wrong shard for this validator in epoch 0.
    assert.throws(() => w.r.submitEvidence(evidence(k, w.g, { shard: 1 - shard })), code('EVIDENCE_INVALID'));
    // Epoch not frozen: not a member of a known committee.
    assert.throws(() => w.r.submitEvidence(evidence(k, w.g, { shard, round: 5 * L })), code('EVIDENCE_INVALID'));
    // Signed by someone else.
    const forged = evidence(w.vals[1]!, w.g, { shard });
    forged.first.body = { ...forged.first.body, validator: addrBytes(k) };
    forged.second.body = { ...forged.second.body, validator: addrBytes(k) };
    assert.throws(() => w.r.submitEvidence(forged), code('EVIDENCE_INVALID'));

    const res = w.r.submitEvidence(evidence(k, w.g, { shard }));
    assert.deepEqual(res, { result: 'slashed', validator: v.address, slashed: 10n });
    assertHeld(w.r);
    assert.equal(v.status, 'slashed');
    assert.equal(v.stake, 90n);
    assert.equal(v.exitEpoch, 1);
    assert.equal(w.r.totals().slashed, 10n);
    assert.deepEqual(w.r.submitEvidence(evidence(k, w.g, { shard })), { result: 'duplicate', validator: v.address, slashed: 0n });
    assert.deepEqual(w.r.submitEvidence(evidence(k, w.g, { shard, step: 'precommit' })), { result: 'duplicate', validator: v.address, slashed: 0n }, 'slashed once');
    w.tick(L - F);
    assert.equal(w.r.membership(1, v.address), undefined, 'ejected from the next epoch');
    assert.equal(w.r.committees(1)![shard]!.validators.length, 1);
    // Released at its withdrawable epoch, then evidence has expired.
    const rel = w.tick(L).releases;
    assert.equal(rel[0]!.amount, 90n);
    assert.throws(() => w.r.submitEvidence(evidence(k, w.g, { shard, height: 6 })), code('EVIDENCE_EXPIRED'), 'release in flight');
    w.answer(rel[0]!, true, L + 1);
    assert.equal(v.status, 'withdrawn');
    assert.throws(() => w.r.submitEvidence(evidence(k, w.g, { shard, height: 7 })), code('EVIDENCE_EXPIRED'));
  });

  it('evidence: everything but the signatures is checked first, so a resubmission costs no verification; a slashed validator\'s is not stored', () => {
    const w = new World({ slashBps: 1000 });
    const k = w.vals[0]!;
    const shard = w.v(k).shard!;
    let checks = 0;
    const counting = (pk: Uint8Array, m: Uint8Array, sig: Uint8Array) => {
      checks++;
      return backend.verify(pk, m, sig);
    };
    // Refused before any signature: an unregistered validator, a non-member, not conflicting, an epoch not frozen.
    assert.throws(() => w.r.submitEvidence(evidence(key(30), w.g, { shard }), counting), code('EVIDENCE_INVALID'));
    assert.throws(() => w.r.submitEvidence(evidence(k, w.g, { shard: 1 - shard }), counting), code('EVIDENCE_INVALID'));
    assert.throws(() => w.r.submitEvidence({ first: vote(k, w.g, { shard }), second: vote(k, w.g, { shard }) }, counting), code('EVIDENCE_INVALID'));
    assert.throws(() => w.r.submitEvidence(evidence(k, w.g, { shard, round: 2_000_000_000 }), counting), code('EVIDENCE_INVALID'));
    assert.equal(checks, 0);
    // A forged second vote is verified, and refused.
    const forged = evidence(k, w.g, { shard });
    forged.second = { ...forged.second, signature: forged.first.signature };
    assert.throws(() => w.r.submitEvidence(forged, counting), code('EVIDENCE_INVALID'));
    assert.equal(checks, 2);
    assert.equal(w.v(k).status, 'active');
    const ev = evidence(k, w.g, { shard });
    assert.equal(w.r.submitEvidence(ev, counting).result, 'slashed');
    assert.equal(checks, 4);
    // The same key again, any signature bytes: a duplicate without a check.
    const sameKey = evidence(k, w.g, { shard });
    sameKey.second = { ...sameKey.second, signature: new Uint8Array(sameKey.second.signature.length) };
    assert.equal(w.r.submitEvidence(sameKey, counting).result, 'duplicate');
    assert.equal(checks, 4);
    // New evidence against the slashed validator is still verified (a forgery is refused), then a duplicate.
    const forgedLater = evidence(k, w.g, { shard, height: 9 });
    forgedLater.second = { ...forgedLater.second, signature: forgedLater.first.signature };
    assert.throws(() => w.r.submitEvidence(forgedLater, counting), code('EVIDENCE_INVALID'));
    assert.equal(w.r.submitEvidence(evidence(k, w.g, { shard, height: 10 }), counting).result, 'duplicate');
    assert.equal(checks, 8);
    assert.equal(w.r.takeChanges().evidence.length, 1, 'only the slashing evidence is stored');
    assert.equal(w.r.hasEvidence(evidenceKey(evidence(k, w.g, { shard, height: 10 }))), false);
  });

  it('memberPeers: the bound peers of the current and next frozen committees, in the snapshot and for trust', () => {
    const w = new World();
    const [a, b, c] = w.vals as [KeyPair, KeyPair, KeyPair];
    const sb = { binding: { chainId: w.g.chainId, shard: 0, publicKey: a.publicKey, peerId: 'pa' }, signature: new Uint8Array(0) };
    assert.equal(w.r.memberPeers(0).size, 0);
    assert.deepEqual(w.r.snapshot(1).peers, []);
    const v0 = w.r.bindingsVersion;
    w.r.bind(addrOf(a), w.v(a).shard!, 'pa', sb);
    w.r.bind(addrOf(b), w.v(b).shard!, 'pb', sb);
    assert.equal(w.r.bindingsVersion, v0 + 2);
    w.r.bind(addrOf(b), w.v(b).shard!, 'pb', sb);
    assert.equal(w.r.bindingsVersion, v0 + 2, 'the same peer again changes nothing');
    assert.deepEqual(Object.fromEntries(w.r.memberPeers(0)), { [addrOf(a)]: 'pa', [addrOf(b)]: 'pb' });
    // Not a member of epoch 0 or 1 (no such validator): never listed, whatever it bound.
    w.r.bind(addrOf(key(31)), 0, 'stranger', sb);
    assert.equal(w.r.memberPeers(0).size, 2);
    const snap = w.r.snapshot(1);
    assert.deepEqual(
      snap.peers.map((p) => [formatAddress(p.validator), p.peerId]),
      [
        [addrOf(a), 'pa'],
        [addrOf(b), 'pb'],
      ].sort((x, y) => (x[0]! < y[0]! ? -1 : 1)),
    );
    // Epochs far ahead have no frozen committees: nobody to trust there.
    assert.equal(w.r.memberPeers(50).size, 0);
    assert.ok(!w.r.memberPeers(0).has(addrOf(c)), 'a member that never bound is absent');
  });

  it('catches up every missing freeze after downtime, at once', () => {
    const w = new World();
    const fx = w.r.onSlot(5 * L);
    assert.deepEqual(fx.frozen.map((f) => f.epoch), [1, 2, 3, 4, 5]);
    assert.deepEqual(fx.started, [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(fx.rewarded.map((r) => r.epoch), [0, 1, 2, 3]);
    assertHeld(w.r);
  });

  it('keeps the held identity through a randomized sequence', () => {
    const w = new World({ churnLimit: 1, unbondingEpochs: 1, rewardPerEpoch: 777n, halvingEpochs: 3 });
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return (seed >>> 12) % n;
    };
    const pool = [...w.vals, ...[50, 51, 52, 53, 54, 55].map(key)];
    const funders = [0, 1, 2].map((i) => sha256(utf8(`funder-${i}`)).subarray(0, 20));
    const homes = new Map<string, Uint8Array>();
    const inFlight: XferInfo[] = [];
    let height = 1;
    for (let slot = 1; slot < 12 * L; slot++) {
      const { releases } = w.tick(slot);
      inFlight.push(...releases);
      const op = rnd(10);
      const k = pool[rnd(pool.length)]!;
      const addr = addrOf(k);
      if (op === 0) {
        const f = homes.get(addr) ?? (w.r.validator(addr) ? w.v(k).home : funders[rnd(3)]!);
        w.stake(rnd(4) === 0 ? funders[rnd(3)]! : f, k, BigInt(10 + rnd(300)), slot);
        if (w.r.validator(addr)) homes.set(addr, w.v(k).home);
      } else if (op === 1 && w.r.validator(addr)) {
        w.unstake(rnd(2) ? w.v(k).home : addrBytes(k), addrBytes(k), slot);
      } else if (op === 2 && w.r.validator(addr)) {
        w.fees(addrBytes(k), BigInt(rnd(50)), slot);
      } else if (op === 3 && inFlight.length) {
        w.answer(inFlight.shift()!, rnd(3) > 0, slot);
      } else if (op === 4) {
        const e = Math.floor(slot / L);
        const fe = w.r.epoch(e);
        if (fe) {
          const s = rnd(2);
          const members = fe.shards[s]!.committee.validators.map((m) => m.address);
          w.r.recordParticipation(s, height++, slot, members.filter(() => rnd(4) > 0));
        }
      } else if (op === 5 && rnd(3) === 0) {
        const v = w.r.validator(addr);
        const e = Math.floor(slot / L);
        const m = w.r.membership(e, addr);
        if (v && m) {
          try {
            w.r.submitEvidence(evidence(k, w.g, { shard: m.shard, round: slot, height: slot }));
          } catch (err) {
            assert.ok(code('EVIDENCE_EXPIRED')(err), String(err));
          }
        }
      }
      assertHeld(w.r);
      for (const fe of w.r.frozenEpochs().map((e) => w.r.epoch(e)!)) {
        for (const s of fe.shards) assert.ok(s.committee.validators.length > 0, `epoch ${fe.epoch}: every shard has a committee`);
      }
    }
    const t = w.r.totals();
    assert.ok(t.minted > 0n && t.stakedIn > 0n && t.released > 0n && t.slashed > 0n && t.feesIn > 0n, `the sequence exercised every term: ${JSON.stringify(t, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x))}`);
  });
});

describe('beacon: crypto backend', () => {
  it('the registry and the system-entry signer use the configured backend; pqclean signatures verify under noble', function () {
    if (!backendAvailable('pqclean')) {
      if (process.env.QNEXUS_REQUIRE_TOOLS === '1') assert.fail('pqclean is unavailable, and QNEXUS_REQUIRE_TOOLS=1 requires it');
      console.warn('\n  !!!!!!!! SKIPPED: pqclean is unavailable; run npm install to build it !!!!!!!!\n');
      this.skip();
    }
    const beaconKey = key(9);
    const g = testGenesis({ validators: [1, 2, 3, 4].map(key), beacon: beaconKey, epochLength: L });
    // The default is auto: pqclean here, since it loads.
    assert.equal(new Registry(g).backend.name, 'pqclean');
    assert.equal(new Registry(g, undefined, 'noble').backend.name, 'noble');
    const r = new Registry(g, undefined, 'pqclean');
    assert.equal(r.backend.name, 'pqclean');
    const signer = beaconTxSigner(g.chainId, g.scheme, beaconKey, r.backend);
    const info: XferInfo = { ...OP.transfer, denom: 'qfc', id: freshId(), srcShard: 0, dstShard: 1, from: addrBytes(key(1)), to: addrBytes(key(2)), amount: 5n, deadlineSlot: 50, payload: new Uint8Array(0) };
    const env = openTx(signer.prepare(info));
    assert.equal(getBackend(g.scheme, 'noble').verify(beaconKey.publicKey, env.signBytes, env.tx.signature), true);
    assert.equal(r.backend.verify(beaconKey.publicKey, env.signBytes, env.tx.signature), true);
  });

  it('an unknown backend is refused', () => {
    const g = testGenesis({ validators: [1, 2, 3, 4].map(key), beacon: key(9), epochLength: L });
    assert.throws(() => new Registry(g, undefined, 'bogus' as BackendName), (e: unknown) => e instanceof CryptoBackendError && e.code === 'CRYPTO_BACKEND_UNKNOWN');
  });
});
