import assert from 'node:assert/strict';
import { sha256, toHex } from '@qnexus/crypto';
import { assignCommittees, checkCommitCertificate, epochSeed, exceedsOneThird, isQuorum, makeCommittee, proposerForSlot, type Committee, type Validator } from '../src/index.js';
import { mulberry32, vote } from './helpers.js';

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

describe('epochSeed', () => {
  const gh = sha256(new TextEncoder().encode('genesis'));

  it('is 32 bytes, deterministic, and depends on chain id, genesis hash and epoch', () => {
    const s = epochSeed('qn-a', gh, 0);
    assert.equal(s.length, 32);
    assert.deepEqual(epochSeed('qn-a', gh, 0), s);
    const seen = new Set([toHex(s)]);
    for (const x of [epochSeed('qn-b', gh, 0), epochSeed('qn-a', sha256(gh), 0), epochSeed('qn-a', gh, 1), epochSeed('qn-a', gh, 2 ** 40)]) seen.add(toHex(x));
    assert.equal(seen.size, 5);
    assert.throws(() => epochSeed('qn-a', gh, -1), RangeError);
  });
});

describe('assignCommittees', () => {
  const seed = sha256(new TextEncoder().encode('seed-1'));
  const names = (n: number) => Array.from({ length: n }, (_, i) => `qn${String(i).padStart(2, '0')}`);
  const equal = (n: number, stake = 10n): Validator[] => names(n).map((address) => ({ address, stake }));
  const members = (cs: Committee[]) => cs.map((c) => c.validators.map((v) => v.address));
  const totals = (cs: Committee[]) => cs.map((c) => c.totalStake);

  /** Every validator lands in exactly one committee, with its stake, and committees are valid (sorted, summed). */
  function assertPartition(cs: Committee[], vs: readonly Validator[], shards: number): void {
    assert.equal(cs.length, shards);
    const all = cs.flatMap((c) => c.validators);
    assert.deepEqual(all.map((v) => v.address).sort(), vs.map((v) => v.address).sort());
    const stakeOf = new Map(vs.map((v) => [v.address, v.stake]));
    for (const c of cs) {
      assert.ok(c.validators.length > 0, 'no empty committee');
      let t = 0n;
      for (const v of c.validators) {
        assert.equal(v.stake, stakeOf.get(v.address));
        t += v.stake;
      }
      assert.equal(c.totalStake, t);
      const addrs = c.validators.map((v) => v.address);
      assert.deepEqual(addrs, [...addrs].sort(), 'members sorted by address');
    }
  }

  it('is deterministic and independent of input order', () => {
    const rand = mulberry32(11);
    const vs = names(11).map((address) => ({ address, stake: BigInt(1 + Math.floor(rand() * 50)) }));
    const a = assignCommittees(vs, 3, seed);
    assertPartition(a, vs, 3);
    assert.deepEqual(assignCommittees(vs, 3, seed), a);
    for (let i = 0; i < 5; i++) {
      const shuffled = vs.map((v) => [rand(), v] as const).sort((p, q) => p[0] - q[0]).map((p) => p[1]);
      assert.deepEqual(assignCommittees(shuffled, 3, seed), a);
    }
    // the input is not mutated
    assert.deepEqual(vs.map((v) => v.address), names(11));
  });

  it('equal stakes: 8 validators over 2 shards gives 4 + 4; 9 over 3 gives 3 + 3 + 3', () => {
    const a = assignCommittees(equal(8), 2, seed);
    assertPartition(a, equal(8), 2);
    assert.deepEqual(a.map((c) => c.validators.length), [4, 4]);
    assert.deepEqual(totals(a), [40n, 40n]);
    const b = assignCommittees(equal(9, 3n), 3, seed);
    assert.deepEqual(b.map((c) => c.validators.length), [3, 3, 3]);
    // n·S + r validators: sizes differ by at most one
    const c = assignCommittees(equal(10), 4, seed);
    assert.deepEqual(c.map((x) => x.validators.length).sort(), [2, 2, 3, 3]);
  });

  it('one shard takes everyone; one validator per shard is enough', () => {
    const vs = equal(5);
    assert.deepEqual(members(assignCommittees(vs, 1, seed)), [names(5)]);
    const one = assignCommittees(equal(3), 3, seed);
    assert.deepEqual(one.map((c) => c.validators.length), [1, 1, 1]);
  });

  it('unequal stakes: the spread between shard stakes is at most the largest single stake', () => {
    const rand = mulberry32(0xabc);
    for (let trial = 0; trial < 60; trial++) {
      const shards = 2 + Math.floor(rand() * 5);
      const n = shards + Math.floor(rand() * 25);
      const skew = rand() < 0.3;
      const vs = names(n).map((address) => ({ address, stake: BigInt(1 + Math.floor(rand() * (skew && rand() < 0.2 ? 100_000 : 1000))) }));
      const cs = assignCommittees(vs, shards, sha256(new Uint8Array([trial])));
      assertPartition(cs, vs, shards);
      const t = totals(cs);
      const max = t.reduce((x, y) => (y > x ? y : x));
      const min = t.reduce((x, y) => (y < x ? y : x));
      const largest = vs.reduce((x, v) => (v.stake > x ? v.stake : x), 0n);
      assert.ok(max - min <= largest, `trial ${trial}: shard stakes ${t.join(',')}, largest single stake ${largest}`);
    }
  });

  it('largest stakes first onto the lightest shard (worked example)', () => {
    // 5 -> A, 4 -> B, 3 -> B (4 < 5), 3 -> A (5 < 7), 3 -> B (7 < 8): totals 8 and 10
    const vs: Validator[] = [
      { address: 'qn-e', stake: 3n },
      { address: 'qn-a', stake: 5n },
      { address: 'qn-c', stake: 3n },
      { address: 'qn-b', stake: 4n },
      { address: 'qn-d', stake: 3n },
    ];
    const cs = assignCommittees(vs, 2, seed);
    assert.deepEqual(totals(cs), [8n, 10n]);
    assert.ok(cs[0]!.validators.some((v) => v.address === 'qn-a'));
    assert.ok(cs[1]!.validators.some((v) => v.address === 'qn-b'));
    // equal shard stakes: the shard with fewer members takes the next validator (not simply the lowest index)
    // 4 -> A, 3 -> B, 3 -> B (3 < 4), 1 -> A, 1 -> A (5 < 6); now A = B = 6 with 3 vs 2 members: the last 1 -> B
    const byCount = assignCommittees([4n, 3n, 3n, 1n, 1n, 1n].map((stake, i) => ({ address: `qn-${i}`, stake })), 2, seed);
    assert.deepEqual(totals(byCount), [6n, 7n]);
    assert.deepEqual(byCount.map((c) => c.validators.length), [3, 3]);
    // a big validator cannot be split: it sits alone while the small ones share the other shard
    const big = assignCommittees([{ address: 'big', stake: 100n }, ...equal(4, 1n)], 2, seed);
    assert.deepEqual(members(big)[0], ['big']);
    assert.deepEqual(totals(big), [100n, 4n]);
  });

  it('throws RangeError when a shard would be empty or shardCount is invalid', () => {
    assert.throws(() => assignCommittees(equal(2), 3, seed), RangeError);
    assert.throws(() => assignCommittees([], 1, seed), RangeError);
    assert.throws(() => assignCommittees(equal(7), 8, seed), /empty committee/);
    assert.throws(() => assignCommittees(equal(4), 0, seed), RangeError);
    assert.throws(() => assignCommittees(equal(4), 1.5, seed), RangeError);
    // duplicates and zero stakes are caught by makeCommittee
    assert.throws(() => assignCommittees([{ address: 'a', stake: 1n }, { address: 'a', stake: 1n }, { address: 'b', stake: 1n }], 1, seed), RangeError);
    assert.throws(() => assignCommittees([{ address: 'a', stake: 0n }, { address: 'b', stake: 1n }], 2, seed), RangeError);
  });

  it('the seed decides the tie-breaking among equal stakes (and only that)', () => {
    const vs = equal(8);
    const partitions = new Set<string>();
    for (let e = 0; e < 12; e++) {
      const s = sha256(new Uint8Array([e, 7]));
      const cs = assignCommittees(vs, 2, s);
      assert.deepEqual(totals(cs), [40n, 40n], 'balance does not depend on the seed');
      partitions.add(JSON.stringify(members(cs)));
      // within a seed: ties are broken by sha256(seed || address), largest stake first
      const order = [...vs].sort((a, b) => {
        const ta = toHex(sha256(new Uint8Array([...s, ...new TextEncoder().encode(a.address)])));
        const tb = toHex(sha256(new Uint8Array([...s, ...new TextEncoder().encode(b.address)])));
        return ta < tb ? -1 : 1;
      });
      // with equal stakes the greedy alternates: 1st, 3rd, 5th, 7th to shard 0
      assert.deepEqual(members(cs)[0], order.filter((_, i) => i % 2 === 0).map((v) => v.address).sort(), `seed ${e}`);
    }
    assert.ok(partitions.size >= 6, `only ${partitions.size} distinct assignments over 12 seeds`);
    // distinct stakes leave nothing to break: the seed does not matter
    const distinct = names(6).map((address, i) => ({ address, stake: BigInt(10 ** i) }));
    const ref = JSON.stringify(members(assignCommittees(distinct, 2, seed)));
    for (let e = 0; e < 5; e++) assert.equal(JSON.stringify(members(assignCommittees(distinct, 2, sha256(new Uint8Array([e]))))), ref);
  });
});
