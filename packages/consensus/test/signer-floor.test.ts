// minSignRound: the signer floor of a data dir restored from a backup (docs/backup.md).
import assert from 'node:assert/strict';
import { ConsensusCore } from '../src/index.js';
import type { Action, ConsensusOptions } from '../src/index.js';
import { block, equalCommittee, ofType, proposal, roundRobin, testApp, vote } from './helpers.js';
import type { TestBlock } from './helpers.js';

// Round-robin over a, b, c, d: round r is proposed by ['a','b','c','d'][r % 4].
const committee = equalCommittee(['a', 'b', 'c', 'd']);
const schedule = roundRobin(committee);

function core(extra: Partial<ConsensusOptions<TestBlock>>): ConsensusCore<TestBlock> {
  return new ConsensusCore<TestBlock>({ app: testApp('a'), schedule, self: 'a', height: 1, ...extra });
}

const signed = (acts: Action<TestBlock>[]) => [...ofType(acts, 'broadcastProposal'), ...ofType(acts, 'broadcastVote')];

describe('ConsensusCore: minSignRound (signer floor after a restore)', () => {
  it('signs no proposal or vote in a round below the floor, and signs normally from it on', () => {
    const c = core({ minSignRound: 10 });
    // Round 4 is ours to propose: below the floor, nothing is signed.
    assert.deepEqual(signed(c.handle({ type: 'slot', slot: 4 })), []);
    const p = proposal(block(1, 5, 'b'));
    c.handle({ type: 'slot', slot: 5 });
    assert.deepEqual(signed(c.handle({ type: 'proposal', proposal: p })), [], 'no prevote for a valid proposal below the floor');
    c.handle({ type: 'vote', vote: vote(1, 5, 'prevote', p.blockHash, 'b') });
    c.handle({ type: 'vote', vote: vote(1, 5, 'prevote', p.blockHash, 'c') });
    const acts = c.handle({ type: 'vote', vote: vote(1, 5, 'prevote', p.blockHash, 'd') });
    assert.deepEqual(signed(acts), [], 'no precommit on a polka below the floor');
    // It still follows the protocol: the others' precommits decide the block.
    c.handle({ type: 'vote', vote: vote(1, 5, 'precommit', p.blockHash, 'b') });
    c.handle({ type: 'vote', vote: vote(1, 5, 'precommit', p.blockHash, 'c') });
    const commit = c.handle({ type: 'vote', vote: vote(1, 5, 'precommit', p.blockHash, 'd') });
    assert.deepEqual(
      ofType(commit, 'commit').map((a) => a.height),
      [1],
    );
    // Height 2: round 8 is ours, still below the floor; round 12 is ours and at/after the floor.
    assert.deepEqual(signed(c.handle({ type: 'slot', slot: 8 })), []);
    const at = c.handle({ type: 'slot', slot: 12 });
    assert.deepEqual(
      signed(at).map((a) => a.type),
      ['broadcastProposal', 'broadcastVote'],
    );
  });

  it('holds even where lastSigned (ordered by height first) would allow signing', () => {
    // The restored record says height 3 round 50; a later height would pass lastSigned at any round.
    const c = core({ height: 4, lastSigned: { height: 3, round: 50, step: 'precommit' }, minSignRound: 100 });
    assert.deepEqual(signed(c.handle({ type: 'slot', slot: 60 })), [], 'round 60 of height 4: the original may have signed there');
    // f+1 of the stake in a later round pulls us there; still below the floor, still nothing signed.
    c.handle({ type: 'vote', vote: vote(4, 64, 'prevote', null, 'b') });
    const skip = c.handle({ type: 'vote', vote: vote(4, 64, 'prevote', null, 'c') });
    assert.equal(c.round, 64);
    assert.deepEqual(signed(skip), []);
    assert.deepEqual(signed(c.handle({ type: 'timeout', height: 4, round: 64, step: 'propose' })), []);
    assert.equal(
      signed(c.handle({ type: 'slot', slot: 100 })).length,
      2,
      'round 100 (ours) is at the floor',
    );
  });

  it('defaults to 0 (no floor) and rejects a non-integer floor', () => {
    assert.equal(signed(core({}).handle({ type: 'slot', slot: 0 })).length, 2);
    assert.throws(() => core({ minSignRound: 1.5 }), RangeError);
  });
});
