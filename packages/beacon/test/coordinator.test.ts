import { app } from '@qnexus/app';
// The pure 2PC coordinator: commit and abort paths, deadlines, idempotence, re-send cadence.
import assert from 'node:assert/strict';
import { toHex } from '@qnexus/crypto';
import { BEACON_SHARD, type XferInfo } from '@qnexus/types';
import { Coordinator, DEADLINE_REASON, entryStatus, isDone, type CoordinatorAction, type XferEntry } from '../src/coordinator.js';
import { FakeSigner, destRecord, info, kinds, sends, sourceRecord, text, OP } from './helpers.js';

function phases(actions: CoordinatorAction[]): string[] {
  return actions.flatMap((a) => (a.type === 'phase' ? [a.phase] : []));
}

/** Every persist comes before every send: the driver logs before it sends. */
function assertLogBeforeSend(actions: CoordinatorAction[]): void {
  const lastPersist = actions.map((a) => a.type).lastIndexOf('persist');
  const firstSend = actions.findIndex((a) => a.type === 'send');
  if (firstSend >= 0) assert.ok(lastPersist < firstSend, `persist after send in ${kinds(actions).join(',')}`);
}

describe('beacon: coordinator', () => {
  let signer: FakeSigner;
  let c: Coordinator;
  const x = info(1);
  const id = toHex(x.id);

  beforeEach(() => {
    signer = new FakeSigner();
    c = new Coordinator({ signer });
  });

  it('commits when the source escrowed and the destination accepted, then tracks both applies', () => {
    let a = c.onRecord(sourceRecord(x), 0, 12, 5);
    assert.deepEqual(phases(a), ['source-prepared']);
    assert.deepEqual(sends(a), ['1:P']);
    assertLogBeforeSend(a);
    let e = c.get(id)!;
    assert.deepEqual(e.sourcePrepared, { height: 10 });
    assert.equal(text(e.prepareTx!), `P:${id}`);
    assert.equal(entryStatus(e), 'preparing');

    a = c.onRecord(destRecord(x), 1, 21, 6);
    assert.deepEqual(phases(a), ['destination-prepared', 'decided']);
    assert.deepEqual(sends(a), ['0:C', '1:C']);
    assertLogBeforeSend(a);
    const persisted = a.find((p) => p.type === 'persist') as Extract<CoordinatorAction, { type: 'persist' }>;
    assert.equal(persisted.entry.decision?.outcome, 'commit', 'the persisted entry carries the decision');
    e = c.get(id)!;
    assert.deepEqual(e.decision, { outcome: 'commit', slot: 6, reason: '' });
    assert.equal(entryStatus(e), 'committed');

    a = c.onRecord(sourceRecord(x, { decision: 'commit', decidedHeight: 30 }), 0, 31, 7);
    assert.deepEqual(phases(a), ['source-applied']);
    assert.deepEqual(sends(a), []);
    assert.deepEqual(e.sourceApplied, { height: 30, outcome: 'commit' });
    assert.equal(isDone(e), false);

    a = c.onRecord(destRecord(x, { decision: 'commit', decidedHeight: 40 }), 1, 40, 8);
    assert.deepEqual(phases(a), ['destination-applied']);
    assert.equal(isDone(e), true);
    assert.deepEqual(c.tick(50), [], 'nothing left to do for a finished transfer');
    assert.deepEqual(c.counts(), { total: 1, undecided: 0, committed: 1, aborted: 0, applied: 1 });
    assert.equal(signer.calls, 2, 'one prepare and one decision signed');
  });

  it('aborts when the destination refuses, with its reason', () => {
    c.onRecord(sourceRecord(x), 0, 12, 5);
    const a = c.onRecord(destRecord(x, { prepare: 'refused', reason: 'TX_BAD_RECIPIENT' }), 1, 21, 6);
    assert.deepEqual(phases(a), ['destination-refused', 'decided']);
    assert.deepEqual(sends(a), ['0:A', '1:A']);
    assertLogBeforeSend(a);
    const e = c.get(id)!;
    assert.deepEqual(e.decision, { outcome: 'abort', slot: 6, reason: 'TX_BAD_RECIPIENT' });
    assert.deepEqual(e.destination, { height: 20, accepted: false, reason: 'TX_BAD_RECIPIENT' });
  });

  it('never presumes an abort from its own clock: past the deadline it keeps asking the destination', () => {
    const y = info(2, { deadlineSlot: 10 });
    c.onRecord(sourceRecord(y), 0, 12, 5);
    for (let slot = 6; slot <= 40; slot++) assert.deepEqual(phases(c.tick(slot)), [], `slot ${slot}: nothing decided without the destination`);
    assert.equal(c.get(toHex(y.id))!.decision, null);
    assert.deepEqual(sends(c.tick(43)), ['1:P'], 'the prepare request is still re-sent');
    // The destination's block past the deadline refuses; that refusal decides.
    const a = c.onRecord(destRecord(y, { prepare: 'refused', reason: DEADLINE_REASON }), 1, 21, 44);
    assert.deepEqual(phases(a), ['destination-refused', 'decided']);
    assert.deepEqual(sends(a), ['0:A', '1:A']);
    assertLogBeforeSend(a);
    assert.deepEqual(c.get(toHex(y.id))!.decision, { outcome: 'abort', slot: 44, reason: DEADLINE_REASON });
  });

  it('asks the destination even when the source prepare reaches it after the deadline', () => {
    const y = info(3, { deadlineSlot: 10 });
    const a = c.onRecord(sourceRecord(y), 0, 12, 11);
    assert.deepEqual(phases(a), ['source-prepared']);
    assert.deepEqual(sends(a), ['1:P']);
    assert.equal(c.get(toHex(y.id))!.decision, null);
  });

  it('replayed reports change nothing', () => {
    const steps = [
      () => c.onRecord(sourceRecord(x), 0, 12, 5),
      () => c.onRecord(destRecord(x), 1, 21, 6),
      () => c.onRecord(sourceRecord(x, { decision: 'commit', decidedHeight: 30 }), 0, 31, 7),
      () => c.onRecord(destRecord(x, { decision: 'commit', decidedHeight: 40 }), 1, 40, 7),
    ];
    for (const step of steps) {
      assert.notDeepEqual(step(), []);
      const snapshot = JSON.stringify(c.get(id), (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
      const calls = signer.calls;
      // The same report again, from the same or another validator, at a later block and slot.
      for (let i = 0; i < 3; i++) assert.deepEqual(step(), []);
      assert.equal(JSON.stringify(c.get(id), (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)), snapshot);
      assert.equal(signer.calls, calls);
    }
    // An older record (source prepared, nothing applied) after everything else: still nothing.
    assert.deepEqual(c.onRecord(sourceRecord(x), 0, 12, 9), []);
    assert.deepEqual(c.onRecord(destRecord(x), 1, 21, 9), []);
  });

  it('never changes a logged decision', () => {
    const y = info(4, { deadlineSlot: 10 });
    const yid = toHex(y.id);
    c.onRecord(sourceRecord(y), 0, 12, 5);
    c.onRecord(destRecord(y, { prepare: 'refused', reason: 'TX_BAD_AMOUNT' }), 1, 21, 6);
    const abortTx = c.get(yid)!.decisionTx;
    // A contradicting destination record (no honest shard sends one): the decision stays.
    const late = c.onRecord(destRecord(y), 1, 22, 12);
    assert.deepEqual(sends(late), []);
    assert.equal(c.get(yid)!.decision!.outcome, 'abort');
    assert.equal(c.get(yid)!.decisionTx, abortTx);
    // A shard claiming it applied the other outcome is an anomaly, not a reason to flip.
    const odd = c.onRecord(sourceRecord(y, { decision: 'commit', decidedHeight: 30 }), 0, 31, 13);
    assert.ok(odd.some((a) => a.type === 'anomaly'));
    assert.equal(c.get(yid)!.decision!.outcome, 'abort');
    // Re-sends carry the very same abort bytes.
    const r = c.tick(20);
    assert.deepEqual(sends(r), ['1:A']);
    assert.equal((r.find((a) => a.type === 'send') as Extract<CoordinatorAction, { type: 'send' }>).raw, abortTx);
  });

  it('re-sends pending prepares and unapplied decisions every resendSlots slots, with the same bytes', () => {
    const first = c.onRecord(sourceRecord(x), 0, 12, 5);
    const prepareRaw = (first.find((a) => a.type === 'send') as Extract<CoordinatorAction, { type: 'send' }>).raw;
    const resent: number[] = [];
    for (let s = 6; s <= 12; s++) {
      const a = c.tick(s);
      if (a.length) {
        assert.deepEqual(sends(a), ['1:P']);
        assert.deepEqual(kinds(a), ['send'], 're-sending needs no new log write');
        assert.equal((a[0] as Extract<CoordinatorAction, { type: 'send' }>).raw, prepareRaw);
        resent.push(s);
      }
    }
    assert.deepEqual(resent, [8, 11]);

    c.onRecord(destRecord(x), 1, 21, 13); // decided at 13
    c.onRecord(destRecord(x, { decision: 'commit', decidedHeight: 40 }), 1, 40, 14);
    const decisionResends: string[] = [];
    for (let s = 14; s <= 19; s++) for (const d of sends(c.tick(s))) decisionResends.push(`${s}>${d}`);
    assert.deepEqual(decisionResends, ['16>0:C', '19>0:C'], 'only the side that has not applied it');
    assert.equal(signer.calls, 2);
  });

  it('honours a custom resendSlots', () => {
    c = new Coordinator({ signer, resendSlots: 1 });
    c.onRecord(sourceRecord(x), 0, 12, 5);
    assert.deepEqual(sends(c.tick(5)), []);
    assert.deepEqual(sends(c.tick(6)), ['1:P']);
    assert.deepEqual(sends(c.tick(7)), ['1:P']);
    assert.throws(() => new Coordinator({ signer, resendSlots: 0 }), RangeError);
  });

  it('ignores records no honest shard produces first, or for the wrong shard', () => {
    const y = info(5);
    let a = c.onRecord(destRecord(y), 1, 21, 5);
    assert.deepEqual(kinds(a), ['anomaly'], 'a destination prepare the beacon never asked for');
    a = c.onRecord(sourceRecord(y), 1, 12, 5);
    assert.deepEqual(kinds(a), ['anomaly'], 'a source record reported by the destination shard');
    assert.equal(c.get(toHex(y.id)), undefined);
    c.onRecord(sourceRecord(y), 0, 12, 5);
    a = c.onRecord(destRecord({ ...y, amount: 1n }), 1, 21, 6);
    assert.deepEqual(kinds(a), ['anomaly'], 'a record that disagrees with the logged transfer');
    assert.equal(c.get(toHex(y.id))!.decision, null);
  });

  it('adopts a decision a shard applied when the log has none (a lost log)', () => {
    const a = c.onRecord(sourceRecord(x, { decision: 'abort', decidedHeight: 30 }), 0, 31, 5);
    assert.ok(a.some((p) => p.type === 'anomaly'));
    const e = c.get(id)!;
    assert.equal(e.decision!.outcome, 'abort');
    assert.deepEqual(sends(a), ['1:A'], 'sent to the side that has not applied it');
  });

  it('restored from its log, re-sends what is pending and decides nothing on its own clock', () => {
    const a = info(10, { deadlineSlot: 100 });
    const b = info(11, { deadlineSlot: 20 });
    const d = info(12, { deadlineSlot: 100 });
    c.onRecord(sourceRecord(a), 0, 12, 5); // committed, applied on the source only
    c.onRecord(destRecord(a), 1, 21, 5);
    c.onRecord(sourceRecord(a, { decision: 'commit', decidedHeight: 30 }), 0, 31, 6);
    c.onRecord(sourceRecord(b), 0, 12, 5); // undecided, its deadline passes while the beacon is down
    c.onRecord(sourceRecord(d), 0, 12, 5); // undecided, in time
    // What the log holds (deep copies, as a reload from disk gives).
    const log: XferEntry[] = [a, b, d].map((y) => structuredClone(c.get(toHex(y.id))!));
    const restarted = new Coordinator({ signer }, log);
    assert.deepEqual(restarted.counts(), c.counts());
    const r = restarted.tick(21);
    assertLogBeforeSend(r);
    assert.deepEqual(phases(r), [], 'a passed deadline decides nothing by itself');
    assert.equal(restarted.get(toHex(b.id))!.decision, null);
    assert.deepEqual(sends(r).sort(), ['1:C', '1:P', '1:P'].sort(), 'pending decision and prepares re-sent at once');
    // b's destination prepared in time, before the crash: it commits.
    assert.equal(phases(restarted.onRecord(destRecord(b), 1, 21, 22)).includes('decided'), true);
    assert.equal(restarted.get(toHex(b.id))!.decision!.outcome, 'commit');
    assert.deepEqual(restarted.recent(2).map((e) => e.id), [toHex(d.id), toHex(b.id)]);
    // New transfers continue the sequence after the restored ones.
    restarted.onRecord(sourceRecord(info(13)), 0, 12, 22);
    assert.equal(restarted.recent(1)[0]!.seq, 3);
  });
});

describe('beacon: coordinator with the beacon as participant', () => {
  const applied: string[] = [];
  let verdict: string | null = null;
  const participant = {
    verdict: () => verdict,
    applied: (x: XferInfo, outcome: string) => applied.push(`${app.xferKindName(x)}:${outcome}`),
  };
  let c: Coordinator;
  beforeEach(() => {
    applied.length = 0;
    verdict = null;
    c = new Coordinator({ signer: new FakeSigner(), participants: new Map([[3, participant]]) });
  });
  const noBeaconSends = (a: CoordinatorAction[]) => assert.ok(a.every((x) => x.type !== 'send' || x.shard !== BEACON_SHARD), 'nothing is sent to BEACON_SHARD');

  it('decides an incoming stake at once, applies it, and tells the source only', () => {
    const x = info(1, { ...OP.stake, denom: 'qfc', dstShard: BEACON_SHARD, payload: new Uint8Array([1]) });
    const a = c.onRecord(sourceRecord(x), 0, 12, 5);
    assert.deepEqual(phases(a), ['source-prepared', 'destination-prepared', 'decided', 'destination-applied']);
    assert.deepEqual(sends(a), ['0:C']);
    assertLogBeforeSend(a);
    noBeaconSends(a);
    assert.deepEqual(applied, ['stake:commit']);
    const e = c.get(toHex(x.id))!;
    assert.equal(isDone(e), false);
    assert.deepEqual(sends(c.tick(8)), ['0:C'], 're-sent to the source until it applies');
    c.onRecord(sourceRecord(x, { decision: 'commit', decidedHeight: 13 }), 0, 13, 9);
    assert.equal(isDone(e), true);
    assert.deepEqual(c.tick(20), []);
  });

  it('aborts with the participant\'s reason', () => {
    verdict = 'STAKE_NOT_OWNER';
    const x = info(2, { ...OP.unstake, denom: 'qfc', dstShard: BEACON_SHARD, amount: 0n });
    const a = c.onRecord(sourceRecord(x), 0, 12, 5);
    assert.deepEqual(sends(a), ['0:A']);
    assert.deepEqual(c.get(toHex(x.id))!.decision, { outcome: 'abort', slot: 5, reason: 'STAKE_NOT_OWNER' });
    assert.deepEqual(c.get(toHex(x.id))!.destination, { height: 0, accepted: false, reason: 'STAKE_NOT_OWNER' });
    assert.deepEqual(applied, ['unstake:abort']);
  });

  it('runs a release: prepare to the home shard, decision to it only, the beacon side applied with the decision', () => {
    const x = info(3, { ...OP.release, denom: 'qfc', srcShard: BEACON_SHARD, dstShard: 1 });
    let a = c.startRelease(x, 5);
    assert.deepEqual(phases(a), ['source-prepared']);
    assert.deepEqual(sends(a), ['1:P']);
    a = c.onRecord(destRecord(x), 1, 21, 6);
    assert.deepEqual(phases(a), ['destination-prepared', 'decided', 'source-applied']);
    assert.deepEqual(sends(a), ['1:C']);
    noBeaconSends(a);
    assert.deepEqual(applied, ['release:commit']);
    assert.deepEqual(c.startRelease(x, 7).map((y) => y.type), ['anomaly'], 'created once');
    c.onRecord(destRecord(x, { decision: 'commit', decidedHeight: 22 }), 1, 22, 7);
    assert.equal(isDone(c.get(toHex(x.id))!), true);
  });

  it('aborts an unanswered release only on the home shard\'s late refusal', () => {
    const x = info(4, { ...OP.release, denom: 'qfc', srcShard: BEACON_SHARD, dstShard: 1, deadlineSlot: 10 });
    c.startRelease(x, 5);
    assert.deepEqual(sends(c.tick(11)), ['1:P'], 'no decision from the clock: the prepare request is re-sent past the deadline');
    assert.deepEqual(applied, []);
    const a = c.onRecord(destRecord(x, { prepare: 'refused', reason: DEADLINE_REASON }), 1, 21, 15);
    assert.deepEqual(sends(a), ['1:A']);
    assert.deepEqual(applied, ['release:abort']);
  });

  it('treats kinds on the wrong path, or beacon transfers without a participant, as anomalies', () => {
    assert.deepEqual(kinds(c.onRecord(sourceRecord(info(5, { ...OP.stake })), 0, 12, 5)), ['anomaly'], 'a stake to a shard');
    assert.deepEqual(kinds(c.onRecord(sourceRecord(info(6, { dstShard: BEACON_SHARD })), 0, 12, 5)), ['anomaly'], 'a transfer to the beacon');
    const bare = new Coordinator({ signer: new FakeSigner() });
    assert.deepEqual(kinds(bare.onRecord(sourceRecord(info(7, { ...OP.fees, denom: 'qfc', dstShard: BEACON_SHARD })), 0, 12, 5)), ['anomaly']);
  });
});

/**
 * The deadline rule, end to end through the coordinator: the destination answers as
 * @qnexus/state does (accepts in a block of slot ≤ deadlineSlot, refuses XS_DEADLINE_PASSED
 * in a later one; packages/state/test/xshard.test.ts checks that side), and whatever the
 * beacon's clock, lag or restarts, the outcome is commit exactly when that block was in time.
 */
describe('beacon: the deadline rule', () => {
  const DEADLINE = 30;
  const answer = (x: XferInfo, slot: number) => (slot <= x.deadlineSlot ? destRecord(x) : destRecord(x, { prepare: 'refused', reason: DEADLINE_REASON }));

  const cases: { name: string; destSlot: number; beaconSlot: number; restart: boolean; expect: 'commit' | 'abort' }[] = [];
  for (const [label, destSlot, expect] of [
    ['just before the deadline', DEADLINE - 1, 'commit'],
    ['at the deadline', DEADLINE, 'commit'],
    ['just after the deadline', DEADLINE + 1, 'abort'],
  ] as const) {
    cases.push({ name: `prepare final ${label}, processed in time`, destSlot, beaconSlot: Math.min(destSlot + 1, DEADLINE), restart: false, expect });
    cases.push({ name: `prepare final ${label}, processed 40 slots late`, destSlot, beaconSlot: DEADLINE + 40, restart: false, expect });
    cases.push({ name: `prepare final ${label}, beacon restarted in between`, destSlot, beaconSlot: DEADLINE + 12, restart: true, expect });
  }

  for (const t of cases) {
    it(`${t.name} → ${t.expect}`, () => {
      const x = info(100, { deadlineSlot: DEADLINE });
      let c = new Coordinator({ signer: new FakeSigner() });
      c.onRecord(sourceRecord(x), 0, 12, 20);
      // The beacon's own ticks run on, up to the slot it processes the answer in.
      for (let slot = 21; slot < t.beaconSlot; slot++) {
        if (t.restart && slot === DEADLINE) c = new Coordinator({ signer: new FakeSigner() }, [structuredClone(c.get(toHex(x.id))!)]);
        assert.deepEqual(phases(c.tick(slot)), [], `nothing decided at slot ${slot}`);
      }
      c.onRecord(answer(x, t.destSlot), 1, 40, t.beaconSlot);
      assert.equal(c.get(toHex(x.id))!.decision?.outcome, t.expect);
    });
  }

  it('randomized: reports duplicated, reordered and late, ticks and restarts at random — the outcome is the destination\'s in-time answer', () => {
    // xorshift32: the run is reproducible from its seed.
    let seed = 0x9e3779b9;
    const rnd = (n: number) => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    for (let run = 0; run < 200; run++) {
      const xs = Array.from({ length: 6 }, (_, i) => info(1000 + run * 10 + i, { deadlineSlot: 20 + rnd(20) }));
      // When each destination's block holding its answer is final (slot), and when the beacon hears of it.
      const destSlot = xs.map((x) => x.deadlineSlot - 5 + rnd(11));
      type Ev = { slot: number; kind: 'src' | 'dst' | 'srcApplied' | 'dstApplied'; i: number };
      const events: Ev[] = [];
      xs.forEach((_x, i) => {
        events.push({ slot: 10 + rnd(5), kind: 'src', i });
        for (let k = 0; k <= rnd(3); k++) events.push({ slot: destSlot[i]! + rnd(40), kind: 'dst', i });
      });
      events.sort((a, b) => a.slot - b.slot || rnd(3) - 1);
      let c = new Coordinator({ signer: new FakeSigner() });
      const decided = new Map<string, string>();
      let slot = 10;
      for (const ev of events) {
        for (; slot < ev.slot; slot++) {
          if (rnd(15) === 0) c = new Coordinator({ signer: new FakeSigner() }, xs.map((x) => c.get(toHex(x.id))).filter((e): e is XferEntry => !!e).map((e) => structuredClone(e)));
          c.tick(slot);
        }
        const x = xs[ev.i]!;
        // An honest destination answers only once asked, i.e. after the source prepare is known.
        if (ev.kind === 'dst' && !c.get(toHex(x.id))) continue;
        if (ev.kind === 'src') c.onRecord(sourceRecord(x), 0, 12, slot);
        else c.onRecord(answer(x, destSlot[ev.i]!), 1, 40, slot);
        for (const y of xs) {
          const d = c.get(toHex(y.id))?.decision?.outcome;
          const prev = decided.get(toHex(y.id));
          if (prev) assert.equal(d, prev, 'a logged decision never changes');
          else if (d) decided.set(toHex(y.id), d);
        }
      }
      assert.equal(decided.size, xs.length, 'every transfer was decided once its destination answered');
      xs.forEach((x, i) => {
        const d = decided.get(toHex(x.id));
        if (d) assert.equal(d, destSlot[i]! <= x.deadlineSlot ? 'commit' : 'abort', `run ${run}: transfer ${i} (deadline ${x.deadlineSlot}, destination slot ${destSlot[i]})`);
      });
    }
  });
});
