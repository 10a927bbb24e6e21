// Randomised (but seeded, hence reproducible) network simulations of 7 validators.
import assert from 'node:assert/strict';
import { exceedsOneThird, isQuorum } from '../src/index.js';
import { runSimulation } from './simulator.js';
import type { SimOptions, SimResult } from './simulator.js';

const SLOT_MS = 1000;

function assertSafe(r: SimResult, label: string): void {
  assert.deepEqual(r.violations, [], `${label}: ${r.violations.slice(0, 5).join('; ')}`);
}

/** Slot of the first honest commit decided in a round ≥ `fromRound`. */
function firstCommitRoundFrom(r: SimResult, fromRound: number): number | undefined {
  let best: number | undefined;
  for (const c of r.commits) if (c.round >= fromRound && (best === undefined || c.round < best)) best = c.round;
  return best;
}

function maxHeight(r: SimResult): number {
  return Math.max(...r.finalHeights.values());
}

/** Partition scenario shared by the equal- and unequal-stake runs. */
function partitionScenario(base: Omit<SimOptions, 'seed' | 'partition' | 'slots'>, groups: number[][], seeds: number[]) {
  const FROM = 20;
  const TO = 35;
  const SLOTS = 60;
  // Precondition of the test: no side of the partition holds a quorum.
  const stakeOf = (g: number[]) => g.reduce((s, i) => s + base.stakes[i]!, 0n);
  const total = base.stakes.reduce((a, b) => a + b, 0n);
  for (const g of groups) assert.equal(isQuorum(stakeOf(g), total), false);

  const recoveries: number[] = [];
  for (const seed of seeds) {
    const r = runSimulation({ ...base, seed, slots: SLOTS, partition: { fromSlot: FROM, toSlot: TO, groups } });
    const label = `seed ${seed}`;
    assertSafe(r, label);

    // Liveness before the partition.
    const before = r.commits.filter((c) => c.round < FROM);
    assert.ok(new Set(before.map((c) => c.height)).size >= 4, `${label}: only ${before.length} commits before the partition`);

    // During the partition no round can gather a quorum, so nothing is decided in those rounds,
    // and after in-flight pre-partition rounds settle, no commit happens at all.
    const during = r.commits.filter((c) => c.round >= FROM && c.round < TO);
    assert.deepEqual(during, [], `${label}: commits in partitioned rounds`);
    const late = r.commits.filter((c) => c.time >= (FROM + 2) * SLOT_MS && c.time < TO * SLOT_MS - 200);
    assert.deepEqual(late, [], `${label}: commits while partitioned`);

    // Liveness after healing: commits resume within a few slots.
    const first = firstCommitRoundFrom(r, TO);
    assert.ok(first !== undefined, `${label}: no commit after healing`);
    recoveries.push(first - TO);
    assert.ok(first - TO <= 6, `${label}: first commit after healing only in round ${first}`);

    // Progress continues and every honest node keeps up (by consensus or sync).
    const after = new Set(r.commits.filter((c) => c.round >= TO).map((c) => c.height));
    assert.ok(after.size >= 5, `${label}: only ${after.size} heights after healing`);
    for (const [name, h] of r.finalHeights) assert.ok(h >= maxHeight(r) - 2, `${label}: ${name} stuck at ${h} of ${maxHeight(r)}`);
  }
  return recoveries;
}

describe('simulation (7 validators, lossy network, partition)', function () {
  this.timeout(60_000);

  it('equal stakes, 4|3 partition: safe, stalls while partitioned, recovers (20 seeds × 60 slots)', () => {
    const seeds = Array.from({ length: 20 }, (_, i) => 1000 + i);
    partitionScenario({ stakes: Array<bigint>(7).fill(10n) }, [[0, 1, 2, 3], [4, 5, 6]], seeds);
  });

  it('unequal stakes, partition with no side above 2/3: same guarantees (10 seeds × 60 slots)', () => {
    const stakes = [50n, 30n, 20n, 10n, 10n, 5n, 5n]; // total 130; each side 65
    const seeds = Array.from({ length: 10 }, (_, i) => 2000 + i);
    partitionScenario({ stakes }, [[0, 3, 5], [1, 2, 4, 6]], seeds);
  });

  it('a side with > 2/3 stake keeps committing while the minority stalls, then syncs', () => {
    const stakes = [50n, 30n, 20n, 10n, 10n, 5n, 5n]; // {0,1,2} = 100/130 > 2/3
    for (const seed of [3000, 3001, 3002, 3003, 3004]) {
      const r = runSimulation({ seed, stakes, slots: 50, partition: { fromSlot: 15, toSlot: 35, groups: [[0, 1, 2], [3, 4, 5, 6]] } });
      assertSafe(r, `seed ${seed}`);
      const during = r.commits.filter((c) => c.round >= 16 && c.round < 35);
      assert.ok(during.length > 0 && during.every((c) => ['v0', 'v1', 'v2'].includes(c.node)), `seed ${seed}: majority side should commit alone`);
      for (const [name, h] of r.finalHeights) assert.ok(h >= maxHeight(r) - 2, `seed ${seed}: ${name} stuck at ${h}`);
    }
  });

  it('crashing validators restart from lastSigned/lock without double signing (10 seeds × 60 slots)', () => {
    for (let i = 0; i < 10; i++) {
      const seed = 4000 + i;
      // Every few slots a validator crashes mid-slot for up to 1.5 slots, repeatedly.
      const crashes = Array.from({ length: 12 }, (_, k) => ({ node: (k * 3 + i) % 7, atMs: (4 + 4 * k) * SLOT_MS + 137 * ((k + i) % 7), downMs: 300 + 100 * ((k * 5 + i) % 12) }));
      const r = runSimulation({ seed, stakes: [10n, 10n, 10n, 10n, 10n, 10n, 10n], slots: 60, crashes });
      assertSafe(r, `seed ${seed}`);
      assert.ok(maxHeight(r) >= 15, `seed ${seed}: only ${maxHeight(r)} heights`);
    }
  });
});

describe('simulation with a Byzantine equivocator', function () {
  this.timeout(60_000);

  it('honest nodes produce evidence naming it and safety holds (5 seeds × 40 slots)', () => {
    const stakes = [10n, 10n, 10n, 10n, 10n, 10n, 10n];
    const byzIndex = 6;
    const total = stakes.reduce((a, b) => a + b, 0n);
    assert.equal(exceedsOneThird(stakes[byzIndex]!, total), false); // within the fault budget
    const kinds = new Set<string>();
    for (const seed of [5000, 5001, 5002, 5003, 5004]) {
      const r = runSimulation({ seed, stakes, slots: 40, byzantine: [byzIndex] });
      const label = `seed ${seed}`;
      assertSafe(r, label);
      assert.ok(r.evidence.length > 0, `${label}: no evidence`);
      for (const e of r.evidence) assert.equal(e.offender, 'v6', `${label}: evidence against an honest node`);
      const accusers = new Set(r.evidence.map((e) => e.node));
      assert.ok(accusers.size >= 4, `${label}: only ${accusers.size} honest nodes saw the equivocation`);
      for (const e of r.evidence) kinds.add(e.kind);
      assert.ok(maxHeight(r) >= 10, `${label}: only ${maxHeight(r)} heights`);
    }
    assert.deepEqual([...kinds].sort(), ['proposal', 'vote']);
  });
});

describe('simulation: safety under a hostile network', function () {
  this.timeout(60_000);

  it('25% drops, 0–900 ms delays, ±300 ms skew, no retransmission, 2 equivocators, crashes: never forks (40 seeds × 40 slots)', () => {
    let heights = 0;
    let reproposals = 0;
    let relocks = 0;
    let evidence = 0;
    for (let i = 0; i < 40; i++) {
      const seed = 6000 + i;
      const stakes = i % 2 === 0 ? [10n, 10n, 10n, 10n, 10n, 10n, 10n] : [30n, 25n, 20n, 15n, 10n, 6n, 6n];
      // The equivocators v5, v6 hold < 1/3 of the stake in both configurations (20/70, 12/112).
      const crashes = [
        { node: i % 5, atMs: 7_300 + 500 * (i % 9), downMs: 1_700 },
        { node: (i + 2) % 5, atMs: 21_100, downMs: 900 },
      ];
      const r = runSimulation({
        seed,
        stakes,
        slots: 40,
        dropRate: 0.25,
        dupRate: 0.2,
        maxDelayMs: 900,
        maxSkewMs: 300,
        rebroadcast: false,
        byzantine: [5, 6],
        crashes,
        partition: i % 4 === 0 ? { fromSlot: 10, toSlot: 18, groups: [[0, 1, 2], [3, 4, 5, 6]] } : undefined,
      });
      assertSafe(r, `seed ${seed}`);
      for (const e of r.evidence) assert.ok(e.offender === 'v5' || e.offender === 'v6', `seed ${seed}: evidence against ${e.offender}`);
      heights += maxHeight(r);
      reproposals += r.reproposals;
      relocks += r.relocks;
      evidence += r.evidence.length;
    }
    // The sweep must actually exercise the protocol: blocks get decided, polkas are carried
    // across rounds (validRound re-proposals), validators move their lock to another value
    // after a newer polka, and the equivocators get caught.
    assert.ok(heights > 50, `only ${heights} heights decided in total`);
    assert.ok(reproposals > 0, 'no re-proposal');
    assert.ok(relocks > 0, 'no validator ever changed its lock');
    assert.ok(evidence > 0, 'no evidence produced');
  });
});

describe('simulation: quiet rounds (proposers with nothing to propose stay silent)', function () {
  this.timeout(60_000);

  it('safe and live across a partition and crashes when most proposers have nothing to propose (20 seeds × 60 slots)', () => {
    let heights = 0;
    for (let i = 0; i < 20; i++) {
      const seed = 7000 + i;
      const stakes = i % 2 === 0 ? [10n, 10n, 10n, 10n, 10n, 10n, 10n] : [30n, 25n, 20n, 15n, 10n, 6n, 6n];
      const r = runSimulation({
        seed,
        stakes,
        slots: 60,
        quiet: 0.3,
        dropRate: 0.1,
        partition: i % 2 === 0 ? { fromSlot: 20, toSlot: 30, groups: [[0, 1, 2, 3], [4, 5, 6]] } : undefined,
        crashes: [{ node: i % 7, atMs: 11_300, downMs: 2_500 }],
      });
      const label = `seed ${seed}`;
      assertSafe(r, label);
      // Blocks still get decided (only in rounds whose proposer had something), after the partition too.
      assert.ok(new Set(r.commits.map((c) => c.height)).size >= 5, `${label}: only ${maxHeight(r)} heights`);
      assert.ok(r.commits.some((c) => c.round >= 32), `${label}: nothing decided after the partition healed`);
      for (const [name, h] of r.finalHeights) assert.ok(h >= maxHeight(r) - 2, `${label}: ${name} stuck at ${h} of ${maxHeight(r)}`);
      heights += maxHeight(r);
    }
    // ≈ 0.3 × 60 rounds have work: fewer heights than slots, but a steady chain.
    assert.ok(heights > 20 * 8, `only ${heights} heights in total`);
  });

  it('a round whose proposer is silent carries no vote at all', () => {
    const r = runSimulation({ seed: 7100, stakes: Array<bigint>(4).fill(10n), slots: 30, quiet: 0, dropRate: 0 });
    assert.deepEqual(r.commits, []);
    assert.equal(r.delivered, 0, `${r.delivered} messages delivered on a shard with nothing to propose`);
  });
});
