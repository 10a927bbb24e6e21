import assert from 'node:assert/strict';
import { ConsensusCore, makeCommittee } from '../src/index.js';
import type { Action, ConsensusOptions, LockState, Schedule } from '../src/index.js';
import { block, equalCommittee, hashTestBlock, ofType, proposal, roundRobin, sig, testApp, vote } from './helpers.js';
import type { TestBlock } from './helpers.js';

// Four equal validators; round-robin proposer: round r -> ['a','b','c','d'][r % 4].
const committee = equalCommittee(['a', 'b', 'c', 'd']);
const schedule = roundRobin(committee);

function core(self: string | null, extra: Partial<ConsensusOptions<TestBlock>> = {}, sched: Schedule = schedule): ConsensusCore<TestBlock> {
  return new ConsensusCore<TestBlock>({ app: testApp(self ?? 'observer'), schedule: sched, self, height: 1, ...extra });
}

const types = (actions: Action<TestBlock>[]) => actions.map((a) => a.type);
const votesOf = (actions: Action<TestBlock>[]) => ofType(actions, 'broadcastVote').map((a) => a.vote);

describe('ConsensusCore: normal operation', () => {
  it('proposes in its slot, locks on a polka and commits with a certificate', () => {
    const c = core('a');
    let acts = c.handle({ type: 'slot', slot: 4 }); // proposer(4) = a
    assert.deepEqual(types(acts), ['broadcastProposal', 'broadcastVote']);
    const p = ofType(acts, 'broadcastProposal')[0]!.proposal;
    assert.equal(p.height, 1);
    assert.equal(p.round, 4);
    assert.equal(p.validRound, -1);
    assert.equal(p.blockHash, hashTestBlock(p.block));
    assert.deepEqual(votesOf(acts), [{ height: 1, round: 4, step: 'prevote', blockHash: p.blockHash, validator: 'a' }]);
    const h = p.blockHash;

    // Feeding back our own signed messages is absorbed silently.
    assert.deepEqual(c.handle({ type: 'proposal', proposal: { ...p, signature: new Uint8Array([1]) } }), []);
    assert.deepEqual(c.handle({ type: 'vote', vote: vote(1, 4, 'prevote', h, 'a') }), []);

    assert.deepEqual(c.handle({ type: 'vote', vote: vote(1, 4, 'prevote', h, 'b') }), []);
    acts = c.handle({ type: 'vote', vote: vote(1, 4, 'prevote', h, 'c') });
    assert.deepEqual(types(acts), ['scheduleTimeout', 'broadcastVote']);
    const pc = ofType(acts, 'broadcastVote')[0]!;
    assert.deepEqual(pc.vote, { height: 1, round: 4, step: 'precommit', blockHash: h, validator: 'a' });
    // The lock snapshot to persist carries its proof of lock: the three prevotes of the polka.
    const polOf = (l: LockState<TestBlock> | null | undefined) => l?.pol?.map((v) => `${v.validator}:${v.round}:${v.step}:${v.blockHash === h}`).sort();
    assert.deepEqual({ ...pc.lock, pol: undefined }, { height: 1, round: 4, blockHash: h, block: p.block, pol: undefined });
    assert.deepEqual(polOf(pc.lock), ['a:4:prevote:true', 'b:4:prevote:true', 'c:4:prevote:true']);
    assert.deepEqual(polOf(c.lockState()), polOf(pc.lock));
    assert.equal(c.step, 'precommit');

    assert.deepEqual(c.handle({ type: 'vote', vote: vote(1, 4, 'precommit', h, 'b') }), []);
    acts = c.handle({ type: 'vote', vote: vote(1, 4, 'precommit', h, 'c') });
    assert.deepEqual(types(acts), ['commit']);
    const commit = ofType(acts, 'commit')[0]!;
    assert.equal(commit.height, 1);
    assert.equal(commit.round, 4);
    assert.equal(commit.blockHash, h);
    assert.deepEqual(commit.block, p.block);
    assert.deepEqual(
      commit.precommits.map((v) => v.validator),
      ['a', 'b', 'c'],
    );
    assert.equal(commit.precommits[0]!.signature.length, 0); // our own, not yet signed

    // The signed copy of our precommit arrives after the commit: the certificate is patched in place.
    assert.deepEqual(c.handle({ type: 'vote', vote: vote(1, 4, 'precommit', h, 'a') }), []);
    assert.deepEqual(commit.precommits[0]!.signature, sig({ height: 1, round: 4, step: 'precommit', blockHash: h, validator: 'a' }));

    assert.equal(c.height, 2);
    assert.equal(c.step, 'newHeight');
    assert.equal(c.lockState(), null);
    // Never start the next height in the slot we committed in.
    assert.deepEqual(c.handle({ type: 'slot', slot: 4 }), []);
    assert.deepEqual(c.handle({ type: 'slot', slot: 5 }), [{ type: 'scheduleTimeout', height: 2, round: 5, step: 'propose' }]);
    assert.equal(c.round, 5);
  });

  it('is deciding while its current-step vote is for the round\'s valid proposal, not after nil, a bad block or as an observer', () => {
    const c = core('a');
    c.handle({ type: 'slot', slot: 5 }); // proposer(5) = b
    assert.equal(c.deciding, false, 'propose step: nothing voted yet');
    const b = block(1, 5, 'b');
    const h = hashTestBlock(b);
    c.handle({ type: 'proposal', proposal: proposal(b) });
    assert.equal(c.step, 'prevote');
    assert.equal(c.deciding, true, 'prevoted the proposal');
    c.handle({ type: 'vote', vote: vote(1, 5, 'prevote', h, 'b') });
    c.handle({ type: 'vote', vote: vote(1, 5, 'prevote', h, 'c') });
    assert.equal(c.step, 'precommit');
    assert.equal(c.deciding, true, 'precommitted the proposal');
    c.handle({ type: 'vote', vote: vote(1, 5, 'precommit', h, 'b') });
    c.handle({ type: 'vote', vote: vote(1, 5, 'precommit', h, 'c') });
    assert.equal(c.step, 'newHeight');
    assert.equal(c.deciding, false, 'decided');

    // Prevoted its block, but the round's prevotes went nil: precommitted nil, nothing to wait for.
    c.handle({ type: 'slot', slot: 6 }); // proposer(6) = c
    const b6 = block(2, 6, 'c');
    c.handle({ type: 'proposal', proposal: proposal(b6) });
    assert.equal(c.deciding, true);
    for (const v of ['b', 'c', 'd']) c.handle({ type: 'vote', vote: vote(2, 6, 'prevote', null, v) });
    assert.equal(c.step, 'precommit');
    assert.equal(c.deciding, false);

    // An invalid block is prevoted nil; a timed-out proposal step too.
    c.handle({ type: 'slot', slot: 7 }); // proposer(7) = d
    c.handle({ type: 'proposal', proposal: proposal(block(2, 7, 'd', 'bad')) });
    assert.equal(c.step, 'prevote');
    assert.equal(c.deciding, false);
    c.handle({ type: 'slot', slot: 9 }); // proposer(9) = b
    c.handle({ type: 'timeout', height: 2, round: 9, step: 'propose' });
    assert.equal(c.step, 'prevote');
    assert.equal(c.deciding, false);

    // An observer follows the steps but votes for nothing.
    const o = core(null);
    o.handle({ type: 'slot', slot: 5 });
    o.handle({ type: 'proposal', proposal: proposal(block(1, 5, 'b')) });
    assert.equal(o.step, 'prevote');
    assert.equal(o.deciding, false);
  });

  it('prevotes nil on timeoutPropose and precommits nil on a nil polka', () => {
    const c = core('a');
    assert.deepEqual(c.handle({ type: 'slot', slot: 1 }), [{ type: 'scheduleTimeout', height: 1, round: 1, step: 'propose' }]);
    assert.deepEqual(c.handle({ type: 'timeout', height: 1, round: 0, step: 'propose' }), []); // stale timeout
    let acts = c.handle({ type: 'timeout', height: 1, round: 1, step: 'propose' });
    assert.deepEqual(votesOf(acts), [{ height: 1, round: 1, step: 'prevote', blockHash: null, validator: 'a' }]);
    c.handle({ type: 'vote', vote: vote(1, 1, 'prevote', null, 'b') });
    acts = c.handle({ type: 'vote', vote: vote(1, 1, 'prevote', null, 'c') });
    assert.deepEqual(types(acts), ['scheduleTimeout', 'broadcastVote']);
    assert.equal(votesOf(acts)[0]!.blockHash, null);
    assert.equal(votesOf(acts)[0]!.step, 'precommit');
    // A late proposal cannot make us prevote again.
    acts = c.handle({ type: 'proposal', proposal: proposal(block(1, 1, 'b')) });
    assert.deepEqual(votesOf(acts), []);
  });

  it('quiet rounds: a proposer with nothing to propose stays silent, and so does everyone without a proposal', () => {
    const idleApp = { ...testApp('a'), buildBlock: () => null };
    const a = core('a', { app: idleApp, quietRounds: true });
    // proposer(4) = a: nothing to build, so no proposal and no vote, only the timeout every member schedules.
    assert.deepEqual(a.handle({ type: 'slot', slot: 4 }), [{ type: 'scheduleTimeout', height: 1, round: 4, step: 'propose' }]);
    assert.deepEqual(a.handle({ type: 'timeout', height: 1, round: 4, step: 'propose' }), []);
    const b = core('b', { quietRounds: true });
    b.handle({ type: 'slot', slot: 4 });
    assert.deepEqual(b.handle({ type: 'timeout', height: 1, round: 4, step: 'propose' }), []);
    assert.equal(b.step, 'propose');
    // A proposal arriving after the timeout of a quiet round still gets its prevote.
    const late = block(1, 4, 'a');
    assert.deepEqual(votesOf(b.handle({ type: 'proposal', proposal: proposal(late) })), [
      { height: 1, round: 4, step: 'prevote', blockHash: hashTestBlock(late), validator: 'b' },
    ]);
    // A proposal that arrived and is invalid is voted nil, quiet rounds or not.
    const c = core('c', { quietRounds: true });
    c.handle({ type: 'slot', slot: 5 });
    assert.deepEqual(votesOf(c.handle({ type: 'proposal', proposal: proposal(block(1, 5, 'b', 'bad')) })), [
      { height: 1, round: 5, step: 'prevote', blockHash: null, validator: 'c' },
    ]);
    // Without quietRounds, the same silence gets Tendermint's nil prevote (L57).
    const d = core('d');
    d.handle({ type: 'slot', slot: 4 });
    assert.equal(votesOf(d.handle({ type: 'timeout', height: 1, round: 4, step: 'propose' }))[0]!.blockHash, null);
  });

  it('precommits nil on timeoutPrevote when prevotes are split', () => {
    const c = core('a');
    c.handle({ type: 'slot', slot: 1 });
    const b1 = block(1, 1, 'b');
    const acts = c.handle({ type: 'proposal', proposal: proposal(b1) });
    assert.equal(votesOf(acts)[0]!.blockHash, hashTestBlock(b1));
    c.handle({ type: 'vote', vote: vote(1, 1, 'prevote', null, 'b') });
    assert.deepEqual(c.handle({ type: 'vote', vote: vote(1, 1, 'prevote', hashTestBlock(b1), 'c') }), [
      { type: 'scheduleTimeout', height: 1, round: 1, step: 'prevote' },
    ]);
    const t = c.handle({ type: 'timeout', height: 1, round: 1, step: 'prevote' });
    assert.deepEqual(votesOf(t), [{ height: 1, round: 1, step: 'precommit', blockHash: null, validator: 'a' }]);
  });

  it('uses strictly-more-than-2/3 stake with unequal stakes', () => {
    const weighted = makeCommittee([
      { address: 'a', stake: 40n },
      { address: 'b', stake: 20n },
      { address: 'c', stake: 20n },
      { address: 'd', stake: 10n },
    ]); // total 90: 60 is exactly 2/3 and must not be enough
    const c = core(null, {}, roundRobin(weighted));
    c.handle({ type: 'slot', slot: 1 });
    const b1 = block(1, 1, 'b');
    const h = hashTestBlock(b1);
    c.handle({ type: 'proposal', proposal: proposal(b1) });
    assert.deepEqual(c.handle({ type: 'vote', vote: vote(1, 1, 'precommit', h, 'a') }), []);
    assert.deepEqual(c.handle({ type: 'vote', vote: vote(1, 1, 'precommit', h, 'b') }), []);
    const acts = c.handle({ type: 'vote', vote: vote(1, 1, 'precommit', h, 'd') }); // 70/90
    const commit = ofType(acts, 'commit')[0]!;
    assert.deepEqual(
      commit.precommits.map((v) => v.validator),
      ['a', 'b', 'd'],
    );
  });

  it('decides on a precommit quorum of an earlier round, and only once the block is known', () => {
    const c = core(null);
    c.handle({ type: 'slot', slot: 1 });
    c.handle({ type: 'slot', slot: 2 });
    c.handle({ type: 'slot', slot: 3 });
    const b1 = block(1, 1, 'b');
    const h = hashTestBlock(b1);
    for (const v of ['a', 'b', 'c']) assert.deepEqual(c.handle({ type: 'vote', vote: vote(1, 1, 'precommit', h, v) }), []);
    const acts = c.handle({ type: 'proposal', proposal: proposal(b1) });
    const commit = ofType(acts, 'commit')[0]!;
    assert.equal(commit.round, 1);
    assert.equal(commit.blockHash, h);
    assert.equal(c.height, 2);
  });

  it('round-skips when more than 1/3 of the stake is in a higher round', () => {
    const c = core('a');
    c.handle({ type: 'slot', slot: 1 });
    assert.deepEqual(c.handle({ type: 'vote', vote: vote(1, 5, 'prevote', null, 'b') }), []); // 1/4: not enough
    assert.equal(c.round, 1);
    const acts = c.handle({ type: 'vote', vote: vote(1, 5, 'prevote', null, 'c') }); // 2/4 > 1/3
    assert.equal(c.round, 5);
    assert.deepEqual(acts, [{ type: 'scheduleTimeout', height: 1, round: 5, step: 'propose' }]);
    // The slot events 2..5 of the lagging clock no longer start anything.
    assert.deepEqual(c.handle({ type: 'slot', slot: 5 }), []);
  });
});

describe('ConsensusCore: locking', () => {
  it('a locked validator prevotes nil for another value until a polka at a round ≥ its lock justifies it', () => {
    const c = core('a');
    const v1 = block(1, 1, 'b', 'v1');
    const h1 = hashTestBlock(v1);
    const v2 = block(1, 2, 'c', 'v2');
    const h2 = hashTestBlock(v2);

    c.handle({ type: 'slot', slot: 1 });
    assert.equal(votesOf(c.handle({ type: 'proposal', proposal: proposal(v1) }))[0]!.blockHash, h1);
    c.handle({ type: 'vote', vote: vote(1, 1, 'prevote', h1, 'b') });
    const lockActs = c.handle({ type: 'vote', vote: vote(1, 1, 'prevote', h1, 'c') });
    assert.equal(votesOf(lockActs)[0]!.blockHash, h1); // precommit v1: locked on v1 at round 1
    assert.equal(c.lockState()!.round, 1);
    // The polka behind the lock, others' prevotes included, for a driver to relay to validators
    // that lost it (a restart): without it they never prevote v1's re-proposal (L28).
    assert.deepEqual(
      c.polkaPrevotes().map((v) => `${v.validator}:${v.round}:${v.step}:${v.blockHash === h1}`).sort(),
      ['a:1:prevote:true', 'b:1:prevote:true', 'c:1:prevote:true'],
    );

    // Round 2: fresh proposal of v2 -> nil (locked on v1).
    c.handle({ type: 'slot', slot: 2 });
    assert.deepEqual(votesOf(c.handle({ type: 'proposal', proposal: proposal(v2) })), [
      { height: 1, round: 2, step: 'prevote', blockHash: null, validator: 'a' },
    ]);

    // Round 3: v2 re-proposed with validRound 2, but no polka for v2 in round 2 seen yet: wait.
    c.handle({ type: 'slot', slot: 3 });
    assert.deepEqual(votesOf(c.handle({ type: 'proposal', proposal: proposal(v2, 2, 'd', 3) })), []);
    c.handle({ type: 'vote', vote: vote(1, 2, 'prevote', h2, 'b') });
    assert.deepEqual(votesOf(c.handle({ type: 'vote', vote: vote(1, 2, 'prevote', h2, 'c') })), []);
    // Polka for v2 in round 2 ≥ lockedRound 1: now v2 is acceptable.
    const acts = c.handle({ type: 'vote', vote: vote(1, 2, 'prevote', h2, 'd') });
    assert.deepEqual(votesOf(acts), [{ height: 1, round: 3, step: 'prevote', blockHash: h2, validator: 'a' }]);
    assert.equal(c.lockState()!.blockHash, h1); // the lock only moves when we precommit

    c.handle({ type: 'vote', vote: vote(1, 3, 'prevote', h2, 'b') });
    const relock = c.handle({ type: 'vote', vote: vote(1, 3, 'prevote', h2, 'c') });
    assert.equal(votesOf(relock)[0]!.step, 'precommit');
    const relocked = c.lockState()!;
    assert.deepEqual({ ...relocked, pol: undefined }, { height: 1, round: 3, blockHash: h2, block: v2, pol: undefined });
    // The lock carries its proof: the round-3 prevotes for v2 (ours, b's and c's), to persist with it.
    assert.deepEqual(relocked.pol!.map((v) => `${v.validator}:${v.round}:${v.blockHash === h2}`).sort(), ['b:3:true', 'c:3:true']);
  });

  it('a polka older than the lock does not unlock', () => {
    const c = core('c');
    const v1 = block(1, 1, 'b', 'v1');
    const h1 = hashTestBlock(v1);
    const v2 = block(1, 0, 'a', 'v2');
    const h2 = hashTestBlock(v2);
    c.handle({ type: 'slot', slot: 0 });
    c.handle({ type: 'timeout', height: 1, round: 0, step: 'propose' }); // prevote nil in round 0
    c.handle({ type: 'slot', slot: 1 });
    c.handle({ type: 'proposal', proposal: proposal(v1) });
    c.handle({ type: 'vote', vote: vote(1, 1, 'prevote', h1, 'a') });
    c.handle({ type: 'vote', vote: vote(1, 1, 'prevote', h1, 'b') });
    assert.equal(c.lockState()!.round, 1);

    c.handle({ type: 'slot', slot: 3 });
    assert.deepEqual(votesOf(c.handle({ type: 'proposal', proposal: proposal(v2, 0, 'd', 3) })), []);
    c.handle({ type: 'vote', vote: vote(1, 0, 'prevote', h2, 'a') });
    c.handle({ type: 'vote', vote: vote(1, 0, 'prevote', h2, 'b') });
    const acts = c.handle({ type: 'vote', vote: vote(1, 0, 'prevote', h2, 'd') }); // polka at round 0 < lockedRound 1
    assert.deepEqual(votesOf(acts), [{ height: 1, round: 3, step: 'prevote', blockHash: null, validator: 'c' }]);
  });

  it('re-proposes its valid value with validRound when it becomes proposer', () => {
    const c = core('a');
    const v1 = block(1, 1, 'b', 'v1');
    const h1 = hashTestBlock(v1);
    c.handle({ type: 'slot', slot: 1 });
    c.handle({ type: 'proposal', proposal: proposal(v1) });
    c.handle({ type: 'vote', vote: vote(1, 1, 'prevote', h1, 'b') });
    c.handle({ type: 'vote', vote: vote(1, 1, 'prevote', h1, 'c') });
    const acts = c.handle({ type: 'slot', slot: 4 });
    const p = ofType(acts, 'broadcastProposal')[0]!.proposal;
    assert.equal(p.blockHash, h1);
    assert.equal(p.validRound, 1);
    assert.equal(p.round, 4);
    // Our own re-proposal is justified by the round-1 polka we hold: we prevote it.
    assert.equal(votesOf(acts)[0]!.blockHash, h1);
  });
});

describe('ConsensusCore: restart safety', () => {
  it('never signs at or below lastSigned and restores the lock', () => {
    const v1 = block(1, 3, 'd', 'v1');
    const h1 = hashTestBlock(v1);
    const c = core('a', { lastSigned: { height: 1, round: 4, step: 'prevote' }, locked: { height: 1, round: 3, blockHash: h1, block: v1 } });
    assert.deepEqual(c.lockState(), { height: 1, round: 3, blockHash: h1, block: v1 });

    // Slot 4: we are the proposer, but we already signed a prevote at round 4: no proposal.
    assert.deepEqual(c.handle({ type: 'slot', slot: 4 }), [{ type: 'scheduleTimeout', height: 1, round: 4, step: 'propose' }]);
    // timeoutPropose: the nil prevote would be a second prevote at round 4: not emitted.
    assert.deepEqual(c.handle({ type: 'timeout', height: 1, round: 4, step: 'propose' }), []);
    assert.equal(c.step, 'prevote');
    c.handle({ type: 'vote', vote: vote(1, 4, 'prevote', h1, 'b') });
    c.handle({ type: 'vote', vote: vote(1, 4, 'prevote', h1, 'c') });
    // A precommit at round 4 is above lastSigned and the block is known from the lock.
    const acts = c.handle({ type: 'vote', vote: vote(1, 4, 'prevote', h1, 'd') });
    assert.deepEqual(votesOf(acts), [{ height: 1, round: 4, step: 'precommit', blockHash: h1, validator: 'a' }]);
    assert.deepEqual(c.lastSigned(), { height: 1, round: 4, step: 'precommit' });

    // Round 5: a different fresh value gets nil (still locked on v1).
    c.handle({ type: 'slot', slot: 5 });
    assert.equal(votesOf(c.handle({ type: 'proposal', proposal: proposal(block(1, 5, 'b', 'v2')) }))[0]!.blockHash, null);
    // Round 8: our turn again; we re-propose v1, justified by the round-4 polka.
    const p = ofType(c.handle({ type: 'slot', slot: 8 }), 'broadcastProposal')[0]!.proposal;
    assert.equal(p.blockHash, h1);
    assert.equal(p.validRound, 4);
  });

  it('after signing a precommit, the same round cannot be re-signed at all', () => {
    const c = core('a', { lastSigned: { height: 1, round: 4, step: 'precommit' } });
    assert.deepEqual(c.handle({ type: 'slot', slot: 4 }), [{ type: 'scheduleTimeout', height: 1, round: 4, step: 'propose' }]);
    const b4 = block(1, 4, 'a');
    const h = hashTestBlock(b4);
    c.handle({ type: 'proposal', proposal: proposal(b4) }); // our own pre-crash proposal, relayed back to us
    for (const v of ['b', 'c', 'd']) {
      const acts = c.handle({ type: 'vote', vote: vote(1, 4, 'prevote', h, v) });
      assert.deepEqual(votesOf(acts), []);
      assert.deepEqual(ofType(acts, 'broadcastProposal'), []);
    }
    // Later rounds are fine.
    assert.deepEqual(
      types(c.handle({ type: 'slot', slot: 5 })),
      ['scheduleTimeout'],
    );
  });

  it('a restored lock without block still filters prevotes by hash', () => {
    const x = block(1, 2, 'c', 'x');
    const hx = hashTestBlock(x);
    const c = core('a', { locked: { height: 1, round: 2, blockHash: hx } });
    assert.deepEqual(c.lockState(), { height: 1, round: 2, blockHash: hx });
    c.handle({ type: 'slot', slot: 5 });
    assert.equal(votesOf(c.handle({ type: 'proposal', proposal: proposal(block(1, 5, 'b', 'y')) }))[0]!.blockHash, null);
    c.handle({ type: 'slot', slot: 6 });
    assert.equal(votesOf(c.handle({ type: 'proposal', proposal: proposal(x, -1, 'c', 6) }))[0]!.blockHash, hx);
    assert.deepEqual(c.lockState()!.block, x);
  });

  it('a lock restored with its proof of lock: the polka is held again, honoured on re-proposal and relayable', () => {
    // Before the restart: b, c and d prevoted v1 in round 3 and we (a) locked on it.
    const v1 = block(1, 3, 'd', 'v1');
    const h1 = hashTestBlock(v1);
    const pol = ['b', 'c', 'd'].map((v) => vote(1, 3, 'prevote', h1, v));
    // Junk in the record is ignored: another round, another block, a non-member, no signature.
    const junk = [vote(1, 2, 'prevote', h1, 'b'), vote(1, 3, 'prevote', 'ff'.repeat(32), 'c'), vote(1, 3, 'prevote', h1, 'z'), { ...vote(1, 3, 'prevote', h1, 'b'), signature: new Uint8Array(0) }];
    const c = core('a', { lastSigned: { height: 1, round: 3, step: 'precommit' }, locked: { height: 1, round: 3, blockHash: h1, block: v1, pol: [...pol, ...junk] } });
    assert.deepEqual(c.polkaPrevotes().map((v) => v.validator).sort(), ['b', 'c', 'd']);
    assert.deepEqual(c.lockState()!.pol!.map((v) => v.validator).sort(), ['b', 'c', 'd']);
    // v1 re-proposed by c in round 6 with validRound 3: we prevote it at once, on the restored polka.
    c.handle({ type: 'slot', slot: 6 });
    assert.deepEqual(votesOf(c.handle({ type: 'proposal', proposal: proposal(v1, 3, 'c', 6) })), [{ height: 1, round: 6, step: 'prevote', blockHash: h1, validator: 'a' }]);
  });

  it('validators that lost the polka prevote the locked value once a locked one relays it (the 2-of-4 restart)', () => {
    // a and b locked on v1 in round 3 (polka a, b, c); c and d restarted with nothing, so only a
    // lock-holder's copy of c's prevote can complete the proof.
    const v1 = block(1, 3, 'd', 'v1');
    const h1 = hashTestBlock(v1);
    const lockedA = core('a', { lastSigned: { height: 1, round: 3, step: 'precommit' }, locked: { height: 1, round: 3, blockHash: h1, block: v1, pol: ['a', 'b', 'c'].map((v) => vote(1, 3, 'prevote', h1, v)) } });
    const fresh = core('d');
    fresh.handle({ type: 'slot', slot: 6 });
    // Without the polka, the re-proposal gets no prevote from the restarted validator (L28 waits).
    assert.deepEqual(votesOf(fresh.handle({ type: 'proposal', proposal: proposal(v1, 3, 'c', 6) })), []);
    let acts: Action<TestBlock>[] = [];
    for (const v of lockedA.polkaPrevotes()) acts = fresh.handle({ type: 'vote', vote: v });
    assert.deepEqual(votesOf(acts), [{ height: 1, round: 6, step: 'prevote', blockHash: h1, validator: 'd' }]);
  });

  it('a lock for another height is ignored', () => {
    const c = core('a', { locked: { height: 0, round: 2, blockHash: 'ab' } });
    assert.equal(c.lockState(), null);
  });
});

describe('ConsensusCore: evidence', () => {
  it('reports a double vote once; an equivocator counts once per value, for at most two values', () => {
    const c = core(null);
    c.handle({ type: 'slot', slot: 1 });
    const b1 = block(1, 1, 'b');
    const h = hashTestBlock(b1);
    c.handle({ type: 'proposal', proposal: proposal(b1) });
    assert.deepEqual(c.handle({ type: 'vote', vote: vote(1, 1, 'precommit', 'ff00', 'b') }), []);
    const acts = c.handle({ type: 'vote', vote: vote(1, 1, 'precommit', h, 'b') });
    assert.equal(acts.length, 1);
    const ev = acts[0]!;
    assert.ok(ev.type === 'evidence' && ev.kind === 'vote');
    assert.equal(ev.first.validator, 'b');
    assert.equal(ev.first.blockHash, 'ff00');
    assert.equal(ev.second.blockHash, h);
    assert.deepEqual(c.handle({ type: 'vote', vote: vote(1, 1, 'precommit', null, 'b') }), []); // reported once, third value dropped
    assert.deepEqual(c.handle({ type: 'vote', vote: vote(1, 1, 'precommit', h, 'b') }), []); // duplicate
    // b's vote for h counts once (like any Byzantine vote it may appear in a quorum): b + c + d.
    assert.deepEqual(c.handle({ type: 'vote', vote: vote(1, 1, 'precommit', h, 'c') }), []);
    const commit = ofType(c.handle({ type: 'vote', vote: vote(1, 1, 'precommit', h, 'd') }), 'commit')[0]!;
    assert.deepEqual(
      commit.precommits.map((v) => [v.validator, v.blockHash]),
      [
        ['b', h],
        ['c', h],
        ['d', h],
      ],
    );
  });

  it('an equivocator is counted once in the any-value total', () => {
    const c = core('a');
    c.handle({ type: 'slot', slot: 1 });
    c.handle({ type: 'timeout', height: 1, round: 1, step: 'propose' }); // a prevotes nil
    c.handle({ type: 'vote', vote: vote(1, 1, 'prevote', 'aa', 'b') });
    // b equivocates: 2 distinct voters (a, b) of 4, no timeoutPrevote yet.
    assert.deepEqual(ofType(c.handle({ type: 'vote', vote: vote(1, 1, 'prevote', 'bb', 'b') }), 'scheduleTimeout'), []);
    assert.equal(ofType(c.handle({ type: 'vote', vote: vote(1, 1, 'prevote', 'cc', 'c') }), 'scheduleTimeout').length, 1);
  });

  it('treats nil as a value: nil then a hash is equivocation', () => {
    const c = core(null);
    c.handle({ type: 'slot', slot: 1 });
    c.handle({ type: 'vote', vote: vote(1, 1, 'prevote', null, 'c') });
    const acts = c.handle({ type: 'vote', vote: vote(1, 1, 'prevote', 'aa', 'c') });
    assert.equal(ofType(acts, 'evidence').length, 1);
    // An exact duplicate is not evidence.
    assert.deepEqual(c.handle({ type: 'vote', vote: vote(1, 1, 'prevote', null, 'c') }), []);
  });

  it('reports two different proposals of the same round once', () => {
    const c = core(null);
    c.handle({ type: 'slot', slot: 1 });
    c.handle({ type: 'proposal', proposal: proposal(block(1, 1, 'b', 'one')) });
    const acts = c.handle({ type: 'proposal', proposal: proposal(block(1, 1, 'b', 'two')) });
    const ev = ofType(acts, 'evidence')[0]!;
    assert.ok(ev.kind === 'proposal');
    assert.equal(ev.first.block.payload, 'one');
    assert.equal(ev.second.block.payload, 'two');
    assert.deepEqual(ofType(c.handle({ type: 'proposal', proposal: proposal(block(1, 1, 'b', 'three')) }), 'evidence'), []);
  });

  it('can still commit the second of two conflicting proposals', () => {
    const c = core(null);
    c.handle({ type: 'slot', slot: 1 });
    const two = block(1, 1, 'b', 'two');
    c.handle({ type: 'proposal', proposal: proposal(block(1, 1, 'b', 'one')) });
    c.handle({ type: 'proposal', proposal: proposal(two) });
    let commits = 0;
    for (const v of ['a', 'b', 'c']) commits += ofType(c.handle({ type: 'vote', vote: vote(1, 1, 'precommit', hashTestBlock(two), v) }), 'commit').length;
    assert.equal(commits, 1);
  });
});

describe('ConsensusCore: observer mode', () => {
  it('never signs but follows and commits', () => {
    const c = core(null);
    const all: Action<TestBlock>[] = [];
    const b0 = block(1, 0, 'a');
    const h = hashTestBlock(b0);
    all.push(...c.handle({ type: 'slot', slot: 0 }));
    all.push(...c.handle({ type: 'proposal', proposal: proposal(b0) }));
    for (const v of ['a', 'b', 'c']) all.push(...c.handle({ type: 'vote', vote: vote(1, 0, 'prevote', h, v) }));
    for (const v of ['a', 'b', 'c']) all.push(...c.handle({ type: 'vote', vote: vote(1, 0, 'precommit', h, v) }));
    assert.deepEqual(ofType(all, 'broadcastVote'), []);
    assert.deepEqual(ofType(all, 'broadcastProposal'), []);
    assert.equal(ofType(all, 'commit').length, 1);
    assert.equal(c.height, 2);
    // An observer never proposes, even in "its" slot (it has none).
    assert.deepEqual(ofType(c.handle({ type: 'slot', slot: 4 }), 'broadcastProposal'), []);
  });
});

describe('ConsensusCore: admission and rejections', () => {
  it('rejects non-members, wrong proposers, bad hashes and invalid blocks', () => {
    const c = core('a');
    c.handle({ type: 'slot', slot: 1 });
    assert.deepEqual(c.handle({ type: 'vote', vote: vote(1, 1, 'prevote', null, 'x') }), [
      { type: 'rejected', reason: 'NOT_IN_COMMITTEE', from: 'x', height: 1, round: 1 },
    ]);
    assert.deepEqual(c.handle({ type: 'proposal', proposal: proposal(block(1, 1, 'c'), -1, 'c') }), [
      { type: 'rejected', reason: 'WRONG_PROPOSER', from: 'c', height: 1, round: 1 },
    ]);
    const forged = { ...proposal(block(1, 1, 'b')), blockHash: 'ff'.repeat(32) };
    assert.deepEqual(c.handle({ type: 'proposal', proposal: forged }), [
      { type: 'rejected', reason: 'BAD_BLOCK_HASH', from: 'b', height: 1, round: 1 },
    ]);
    assert.equal(c.step, 'propose');
    const acts = c.handle({ type: 'proposal', proposal: proposal(block(1, 1, 'b', 'bad')) });
    assert.deepEqual(acts[0], { type: 'rejected', reason: 'INVALID_BLOCK', from: 'b', height: 1, round: 1 });
    assert.deepEqual(votesOf(acts), [{ height: 1, round: 1, step: 'prevote', blockHash: null, validator: 'a' }]);
  });

  it('rejects stale, too-far-ahead and malformed messages', () => {
    const c = core('a', { height: 5, maxFutureRounds: 4 });
    c.handle({ type: 'slot', slot: 10 });
    assert.deepEqual(c.handle({ type: 'vote', vote: vote(4, 10, 'precommit', 'aa', 'b') }), [
      { type: 'rejected', reason: 'STALE', from: 'b', height: 4, round: 10 },
    ]);
    assert.deepEqual(c.handle({ type: 'vote', vote: vote(7, 10, 'prevote', null, 'b') }), [
      { type: 'rejected', reason: 'TOO_FAR_AHEAD', from: 'b', height: 7, round: 10 },
    ]);
    assert.deepEqual(c.handle({ type: 'vote', vote: vote(5, 15, 'prevote', null, 'b') }), [
      { type: 'rejected', reason: 'TOO_FAR_AHEAD', from: 'b', height: 5, round: 15 },
    ]);
    assert.deepEqual(c.handle({ type: 'vote', vote: vote(5, 14, 'prevote', null, 'b') }), []);
    assert.deepEqual(c.handle({ type: 'proposal', proposal: proposal(block(5, 11, 'd'), 11) }), [
      { type: 'rejected', reason: 'MALFORMED', from: 'd' },
    ]);
    const bad = { ...vote(5, 10, 'prevote', null, 'b'), step: 'commit' } as unknown as ReturnType<typeof vote>;
    assert.deepEqual(c.handle({ type: 'vote', vote: bad }), [{ type: 'rejected', reason: 'MALFORMED', from: 'b' }]);
  });

  it('keeps memory bounded by evicting old rounds', () => {
    const c = core(null, { maxPastRounds: 2, maxFutureRounds: 4 });
    c.handle({ type: 'slot', slot: 40 });
    for (let r = 30; r <= 40; r++) c.handle({ type: 'vote', vote: vote(1, r, 'prevote', null, 'b') });
    assert.deepEqual(c.handle({ type: 'vote', vote: vote(1, 3, 'prevote', null, 'c') }), [
      { type: 'rejected', reason: 'STALE', from: 'c', height: 1, round: 3 },
    ]);
    // Recent rounds still work: a quorum at round 40 decides.
    const b = block(1, 40, 'a');
    c.handle({ type: 'proposal', proposal: proposal(b) });
    let commits = 0;
    for (const v of ['a', 'b', 'c']) commits += ofType(c.handle({ type: 'vote', vote: vote(1, 40, 'precommit', hashTestBlock(b), v) }), 'commit').length;
    assert.equal(commits, 1);
  });
});

describe('ConsensusCore: height transitions', () => {
  it('buffers next-height messages and replays them after the commit', () => {
    const c = core(null);
    c.handle({ type: 'slot', slot: 1 });
    const next = block(2, 2, 'c');
    const hn = hashTestBlock(next);
    assert.deepEqual(c.handle({ type: 'proposal', proposal: proposal(next) }), []);
    for (const v of ['a', 'b', 'c']) assert.deepEqual(c.handle({ type: 'vote', vote: vote(2, 2, 'precommit', hn, v) }), []);

    const b1 = block(1, 1, 'b');
    const h1 = hashTestBlock(b1);
    c.handle({ type: 'proposal', proposal: proposal(b1) });
    c.handle({ type: 'vote', vote: vote(1, 1, 'precommit', h1, 'a') });
    c.handle({ type: 'vote', vote: vote(1, 1, 'precommit', h1, 'b') });
    const acts = c.handle({ type: 'vote', vote: vote(1, 1, 'precommit', h1, 'c') });
    // Only height 1 is committed in this call: the driver must apply it before height 2 is validated.
    assert.deepEqual(
      ofType(acts, 'commit').map((a) => a.height),
      [1],
    );
    // The next event replays the buffer and commits height 2 (the slot itself is postponed).
    const acts2 = c.handle({ type: 'slot', slot: 2 });
    assert.deepEqual(
      ofType(acts2, 'commit').map((a) => [a.height, a.round]),
      [[2, 2]],
    );
    assert.equal(c.height, 3);
    assert.equal(c.round, 2); // the replayed round-2 messages (> 1/3 stake) made us round-skip to 2
    assert.deepEqual(c.handle({ type: 'slot', slot: 3 }), [{ type: 'scheduleTimeout', height: 3, round: 3, step: 'propose' }]);
  });

  it('caps buffered next-height messages per sender', () => {
    const c = core(null);
    c.handle({ type: 'slot', slot: 1 });
    // b floods height 2 with many distinct votes; only 4 are kept.
    for (let r = 2; r < 12; r++) c.handle({ type: 'vote', vote: vote(2, r, 'prevote', null, 'b') });
    c.handle({ type: 'externalCommit', height: 1, blockHash: 'aa' });
    // Replay happens on the next event: rounds 2..5 exist, so f+1 from b plus c at round 11 is not enough,
    // but b + c at round 5 triggers a round skip.
    c.handle({ type: 'vote', vote: vote(2, 11, 'prevote', null, 'c') });
    assert.equal(c.round, 1);
    c.handle({ type: 'vote', vote: vote(2, 5, 'prevote', null, 'c') });
    assert.equal(c.round, 5);
  });

  it('jumps heights on externalCommit', () => {
    const c = core('a');
    c.handle({ type: 'slot', slot: 1 });
    assert.deepEqual(c.handle({ type: 'externalCommit', height: 0, blockHash: 'aa' }), []);
    assert.equal(c.height, 1);
    c.handle({ type: 'externalCommit', height: 1, blockHash: 'aa' });
    assert.equal(c.height, 2);
    assert.equal(c.step, 'newHeight');
    c.handle({ type: 'externalCommit', height: 7, blockHash: 'bb' });
    assert.equal(c.height, 8);
    assert.deepEqual(c.handle({ type: 'slot', slot: 1 }), []); // same slot as before: nothing starts
    assert.deepEqual(
      types(c.handle({ type: 'slot', slot: 2 })),
      ['scheduleTimeout'],
    );
    assert.equal(c.round, 2);
  });

  it('is not re-entrant', () => {
    const sched: Schedule = {
      committee: () => committee,
      proposer: () => {
        c.handle({ type: 'slot', slot: 9 });
        return 'a';
      },
    };
    const c = core('a', {}, sched);
    assert.throws(() => c.handle({ type: 'slot', slot: 1 }), /re-entrant/);
  });
});
