import assert from 'node:assert/strict';
import { checkCommitCertificate, exceedsOneThird, isQuorum, makeCommittee, proposerForSlot } from '../src/index.js';
import { vote } from './helpers.js';

describe('committee', () => {
  it('makeCommittee sorts by address and sums stake', () => {
    const c = makeCommittee([
      { address: 'qn03', stake: 3n },
      { address: 'qn01', stake: 1n },
      { address: 'qn02', stake: 2n },
    ]);
    assert.deepEqual(
      c.validators.map((v) => v.address),
      ['qn01', 'qn02', 'qn03'],
    );
    assert.equal(c.totalStake, 6n);
  });

  it('makeCommittee rejects duplicates and non-positive stake', () => {
    assert.throws(() => makeCommittee([{ address: 'a', stake: 1n }, { address: 'a', stake: 2n }]), RangeError);
    assert.throws(() => makeCommittee([{ address: 'a', stake: 0n }]), RangeError);
  });
});

describe('quorum math', () => {
  it('quorum is strictly more than 2/3 of stake', () => {
    assert.equal(isQuorum(2n, 3n), false); // exactly 2/3 is not enough
    assert.equal(isQuorum(3n, 4n), true);
    assert.equal(isQuorum(66n, 100n), false);
    assert.equal(isQuorum(67n, 100n), true);
    assert.equal(isQuorum(60n, 90n), false); // exactly 2/3 with unequal stakes
    assert.equal(isQuorum(61n, 90n), true);
  });

  it('f+1 is strictly more than 1/3 of stake', () => {
    assert.equal(exceedsOneThird(1n, 3n), false);
    assert.equal(exceedsOneThird(34n, 100n), true);
    assert.equal(exceedsOneThird(33n, 100n), false);
  });

  it('checkCommitCertificate requires distinct members and > 2/3 stake', () => {
    const c = makeCommittee([
      { address: 'a', stake: 40n },
      { address: 'b', stake: 20n },
      { address: 'c', stake: 20n },
      { address: 'd', stake: 10n },
    ]);
    const pc = (v: string) => vote(5, 9, 'precommit', 'h', v);
    assert.equal(checkCommitCertificate(c, 5, 9, 'h', [pc('a'), pc('b')]).ok, false); // 60/90 = exactly 2/3
    assert.deepEqual(checkCommitCertificate(c, 5, 9, 'h', [pc('a'), pc('b'), pc('d')]), { ok: true, stake: 70n });
    assert.equal(checkCommitCertificate(c, 5, 9, 'h', [pc('a'), pc('b'), pc('b')]).ok, false);
    assert.equal(checkCommitCertificate(c, 5, 9, 'h', [pc('a'), pc('b'), pc('x')]).ok, false);
    assert.equal(checkCommitCertificate(c, 5, 9, 'h', [pc('a'), pc('b'), vote(5, 9, 'precommit', 'other', 'd')]).ok, false);
    assert.equal(checkCommitCertificate(c, 5, 9, 'h', [pc('a'), pc('b'), vote(5, 9, 'prevote', 'h', 'd')]).ok, false);
  });
});

describe('proposerForSlot', () => {
  const seed = new TextEncoder().encode('epoch-seed');
  const validators = [
    { address: 'qn-d', stake: 4n },
    { address: 'qn-a', stake: 1n },
    { address: 'qn-c', stake: 3n },
    { address: 'qn-b', stake: 2n },
  ];
  const committee = makeCommittee(validators);

  it('is deterministic and independent of input order', () => {
    const shuffled = { validators: [...validators], totalStake: 10n }; // unsorted on purpose
    for (let s = 0; s < 200; s++) {
      const p = proposerForSlot(committee, seed, s);
      assert.equal(proposerForSlot(committee, seed, s), p);
      assert.equal(proposerForSlot(shuffled, seed, s), p);
    }
  });

  it('depends on the seed', () => {
    const other = new TextEncoder().encode('another-seed');
    let differ = 0;
    for (let s = 0; s < 100; s++) if (proposerForSlot(committee, seed, s) !== proposerForSlot(committee, other, s)) differ++;
    assert.ok(differ > 30, `only ${differ} of 100 slots differ`);
  });

  it('is roughly stake-proportional', () => {
    const n = 20000;
    const counts = new Map<string, number>();
    for (let s = 0; s < n; s++) {
      const p = proposerForSlot(committee, seed, s);
      counts.set(p, (counts.get(p) ?? 0) + 1);
    }
    for (const v of validators) {
      const expected = (n * Number(v.stake)) / 10;
      const got = counts.get(v.address) ?? 0;
      assert.ok(Math.abs(got - expected) < expected * 0.1, `${v.address}: got ${got}, expected ≈ ${expected}`);
    }
  });

  it('rejects an empty committee and bad slots', () => {
    assert.throws(() => proposerForSlot({ validators: [], totalStake: 0n }, seed, 1), RangeError);
    assert.throws(() => proposerForSlot(committee, seed, -1), RangeError);
  });
});
