// The coordinator's log is compacted: settled entries become tombstones, then are forgotten; replays stay refused, across a reopen.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toHex } from '@qnexus/crypto';
import type { XferInfo } from '@qnexus/types';
import { Coordinator, type CoordinatorAction, type XferEntry } from '../src/coordinator.js';
import { createMetrics } from '../src/metrics.js';
import { ActionRunner } from '../src/service.js';
import { BeaconStore, encodeEntry } from '../src/store.js';
import { FakeSigner, destRecord, info, sends, sourceRecord } from './helpers.js';

const W = 20;
const DEADLINE = 10;

const phases = (a: CoordinatorAction[]) => a.flatMap((x) => (x.type === 'phase' ? [x.phase] : []));
const refusals = (a: CoordinatorAction[]) => a.flatMap((x) => (x.type === 'refused' ? [x.code] : []));
const persisted = (a: CoordinatorAction[]) => a.flatMap((x) => (x.type === 'persist' ? [x.entry] : []));

/** Commit `x` and have both sides report it applied; the last report arrives at `slot` (what "done" is measured from). */
function settle(c: Coordinator, x: XferInfo, slot: number): CoordinatorAction[] {
  return [
    ...c.onRecord(sourceRecord(x), 0, 12, slot - 3),
    ...c.onRecord(destRecord(x), 1, 21, slot - 2),
    ...c.onRecord(sourceRecord(x, { decision: 'commit', decidedHeight: 30 }), 0, 31, slot - 1),
    ...c.onRecord(destRecord(x, { decision: 'commit', decidedHeight: 40 }), 1, 41, slot),
  ];
}

/** Every report a shard could replay for `x`, in every phase. */
const replays = (x: XferInfo) => [
  { rec: sourceRecord(x), shard: 0 },
  { rec: destRecord(x), shard: 1 },
  { rec: destRecord(x, { prepare: 'refused', reason: 'XS_DEADLINE_PASSED' }), shard: 1 },
  { rec: sourceRecord(x, { decision: 'abort', decidedHeight: 50 }), shard: 0 },
  { rec: destRecord(x, { decision: 'commit', decidedHeight: 40 }), shard: 1 },
];

describe('beacon: log compaction', () => {
  it('a settled entry is compacted a window after both sides applied it, refuses replays (XS_PRUNED, then XS_EXPIRED) and is never reopened', () => {
    const signer = new FakeSigner();
    const c = new Coordinator({ signer, retentionSlots: W });
    const x = info(1, { deadlineSlot: DEADLINE });
    const id = toHex(x.id);
    settle(c, x, 8);
    const compactAt = Math.max(8 + W, DEADLINE + 1); // 28
    assert.deepEqual(phases(c.tick(compactAt - 1)), []);
    assert.ok(c.get(id)!.decisionTx, 'kept whole until then');

    const a = c.tick(compactAt);
    assert.deepEqual(phases(a), ['compacted']);
    const [t] = persisted(a) as [XferEntry];
    assert.equal(t.id, id);
    assert.deepEqual(t.compacted, { until: DEADLINE + W + 1, dropped: false });
    assert.equal(t.prepareTx, null, 'signed entries dropped');
    assert.equal(t.decisionTx, null);
    assert.deepEqual(sends(a), []);
    assert.equal(c.tombstones, 1);
    assert.equal(c.get(id)!.decision!.outcome, 'commit', 'its outcome is still shown');
    assert.deepEqual(c.counts().total, 0, 'no longer a log entry');
    assert.deepEqual(c.recent(10), []);

    const calls = signer.calls;
    for (const { rec, shard } of replays(x)) {
      const r = c.onRecord(rec, shard, 60, compactAt + 1);
      assert.deepEqual(refusals(r), ['XS_PRUNED'], `${rec.role} ${rec.prepare}/${rec.decision}`);
      assert.equal(r.length, 1, 'nothing persisted or sent');
    }
    assert.equal(signer.calls, calls, 'nothing signed again');

    const f = c.tick(DEADLINE + W + 1);
    assert.deepEqual(phases(f), ['forgotten']);
    assert.deepEqual(persisted(f).map((e) => e.compacted), [{ until: DEADLINE + W + 1, dropped: true }]);
    assert.equal(c.tombstones, 0);
    assert.equal(c.get(id), undefined);
    for (const { rec, shard } of replays(x)) {
      const r = c.onRecord(rec, shard, 60, DEADLINE + W + 1);
      assert.deepEqual(refusals(r), ['XS_EXPIRED'], 'past deadline + window: an unknown id is refused by its deadline');
    }
    assert.equal(c.get(id), undefined, 'the replays opened nothing');
    assert.deepEqual(c.tick(DEADLINE + W + 100), []);
    assert.deepEqual(c.stats, { compacted: 1, forgotten: 1, refused: 10 });
  });

  it('never compacts what still has work: no answer yet, or a decision a side has not applied', () => {
    const c = new Coordinator({ signer: new FakeSigner(), retentionSlots: W, resendSlots: 1 });
    const open = info(2, { deadlineSlot: DEADLINE });
    const half = info(3, { deadlineSlot: DEADLINE });
    c.onRecord(sourceRecord(open), 0, 12, 1);
    c.onRecord(sourceRecord(half), 0, 12, 1);
    c.onRecord(destRecord(half), 1, 21, 2);
    c.onRecord(destRecord(half, { decision: 'commit', decidedHeight: 30 }), 1, 31, 3);
    const late = DEADLINE + 10 * W;
    const a = c.tick(late);
    assert.deepEqual(phases(a), []);
    assert.deepEqual(sends(a).sort(), ['0:C', '1:P'], 'still asking the destination, still deciding the source');
    assert.equal(c.counts().total, 2);
    // A record of a logged transfer is always taken, however late.
    c.onRecord(sourceRecord(half, { decision: 'commit', decidedHeight: 50 }), 0, 51, late + 1);
    assert.deepEqual(phases(c.tick(late + 1 + W)), ['compacted', 'forgotten'], 'done after its deadline + window: forgotten at once');
    assert.equal(c.get(toHex(half.id)), undefined);
  });

  it('at most compactPerTick steps per tick', () => {
    const c = new Coordinator({ signer: new FakeSigner(), retentionSlots: W, compactPerTick: 2 });
    const xs = [1, 2, 3, 4, 5].map((n) => info(10 + n, { deadlineSlot: DEADLINE }));
    for (const x of xs) settle(c, x, 8);
    const held = (slot: number) => {
      c.tick(slot);
      return [c.counts().total, c.tombstones];
    };
    assert.deepEqual([28, 29, 30].map(held), [
      [3, 2],
      [1, 4],
      [0, 5],
    ]);
  });

  it('on LevelDB: a tombstone survives a reopen and still refuses; a forgotten one is deleted from disk', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qnexus-beacon-compact-'));
    let store = await BeaconStore.open(join(dir, 'db'));
    try {
      const signer = new FakeSigner();
      let c = new Coordinator({ signer, retentionSlots: W });
      let runner = new ActionRunner(store, () => undefined);
      const x = info(21, { deadlineSlot: DEADLINE });
      const y = info(22, { deadlineSlot: 1000 });
      await runner.run(settle(c, x, 8));
      await runner.run(settle(c, y, 8));
      const full = encodeEntry(c.get(toHex(x.id))!).length;
      await runner.run(c.tick(28)); // x: compacted (tombstone until 31); y: not due (deadline 1000)
      await runner.run(c.onRecord(sourceRecord(info(23, { deadlineSlot: 40 })), 0, 12, 28)); // an open one alongside
      await store.close();

      store = await BeaconStore.open(join(dir, 'db'));
      const loaded = await store.loadEntries();
      assert.equal(loaded.length, 3);
      const tomb = loaded.find((e) => e.id === toHex(x.id))!;
      assert.deepEqual(tomb.compacted, { until: DEADLINE + W + 1, dropped: false });
      assert.ok(encodeEntry(tomb).length < full, 'the tombstone is smaller than the entry');
      c = new Coordinator({ signer, retentionSlots: W }, loaded);
      runner = new ActionRunner(store, () => undefined);
      assert.equal(c.tombstones, 1);
      assert.deepEqual(c.counts().total, 2);
      assert.deepEqual(refusals(c.onRecord(sourceRecord(x), 0, 12, 29)), ['XS_PRUNED'], 'refused after the reopen');
      assert.deepEqual(refusals(c.onRecord(destRecord(x, { decision: 'commit', decidedHeight: 40 }), 1, 41, 29)), ['XS_PRUNED']);

      // y (done before the restart, when is not logged) is compacted from its decision's slot; x is forgotten.
      await runner.run(c.tick(1001));
      await store.close();
      store = await BeaconStore.open(join(dir, 'db'));
      const after = await store.loadEntries();
      assert.deepEqual(after.map((e) => [e.id.slice(0, 8), e.compacted ?? null]).sort(), [
        [toHex(info(23).id).slice(0, 8), null],
        [toHex(y.id).slice(0, 8), { until: 1000 + W + 1, dropped: false }],
      ].sort());
      assert.equal(await store.getEntry(toHex(x.id)), undefined, 'deleted from disk');
      c = new Coordinator({ signer, retentionSlots: W }, after);
      assert.deepEqual(refusals(c.onRecord(sourceRecord(x), 0, 12, 1001)), ['XS_EXPIRED']);
      assert.deepEqual(refusals(c.onRecord(sourceRecord(y), 0, 12, 1001)), ['XS_PRUNED']);
    } finally {
      await store.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('randomized, with restarts: never compacts early or what is not done, never reopens a compacted id, and forgets everything in the end', () => {
    // xorshift32: the run is reproducible from its seed.
    let seed = 0x2545f491;
    const rnd = (n: number) => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const w = 6;
    for (let run = 0; run < 40; run++) {
      const opts = () => ({ signer: new FakeSigner(), retentionSlots: w, compactPerTick: 1 + rnd(3) });
      let c = new Coordinator(opts());
      const xs = Array.from({ length: 8 }, (_, i) => info(5000 + run * 10 + i, { deadlineSlot: 5 + rnd(30) }));
      const ids = xs.map((x) => toHex(x.id));
      /** Per transfer: the slot of each step, in order (source prepared, destination answered, source applied, destination applied). */
      const steps = xs.map(() => {
        const a = 1 + rnd(10);
        const b2 = a + 1 + rnd(10);
        return [a, b2, b2 + 1 + rnd(8), b2 + 1 + rnd(8)];
      });
      const accepted = xs.map(() => rnd(4) !== 0);
      const gone = new Set<string>();
      for (let slot = 1; slot <= 120; slot++) {
        if (rnd(12) === 0) {
          const log = ids.map((id) => c.get(id)).filter((e): e is XferEntry => !!e).map((e) => structuredClone(e));
          c = new Coordinator(opts(), log);
        }
        xs.forEach((x, i) => {
          if (gone.has(ids[i]!)) return;
          const [sp, da, sa, dd] = steps[i]!;
          const outcome = accepted[i] ? 'commit' : 'abort';
          if (slot === sp) c.onRecord(sourceRecord(x), 0, 12, slot);
          if (slot === da) c.onRecord(destRecord(x, accepted[i] ? {} : { prepare: 'refused', reason: 'TX_BAD_RECIPIENT' }), 1, 21, slot);
          if (slot === sa) c.onRecord(sourceRecord(x, { decision: outcome, decidedHeight: 30 }), 0, 31, slot);
          if (slot === dd) c.onRecord(destRecord(x, { ...(accepted[i] ? {} : { prepare: 'refused', reason: 'TX_BAD_RECIPIENT' }), decision: outcome, decidedHeight: 40 }), 1, 41, slot);
        });
        c.tick(slot);
        xs.forEach((x, i) => {
          const id = ids[i]!;
          const e = c.get(id);
          const [, , sa, dd] = steps[i]!;
          const doneAt = Math.max(sa!, dd!);
          if (e?.compacted) {
            assert.ok(slot >= e.decision!.slot + w && slot >= x.deadlineSlot + 1, `run ${run}: ${i} compacted too early (slot ${slot})`);
            assert.ok(slot >= doneAt, `run ${run}: ${i} compacted before both sides applied`);
          }
          if ((!e || e.compacted) && slot >= doneAt) gone.add(id);
          if (gone.has(id)) {
            assert.ok(!e || e.compacted, `run ${run}: ${i} came back as an entry`);
            // Any replay now is refused (by the tombstone while held, else by the deadline) and opens nothing.
            const r = c.onRecord(sourceRecord(x), 0, 12, slot);
            assert.deepEqual(r.map((a) => (a.type === 'refused' ? a.code : a.type)), [e ? 'XS_PRUNED' : 'XS_EXPIRED'], `run ${run}: ${i} replay at slot ${slot}`);
            assert.ok(!c.get(id) || c.get(id)!.compacted, 'still not reopened');
          }
        });
      }
      assert.deepEqual(
        ids.map((id) => c.get(id)),
        ids.map(() => undefined),
        `run ${run}: everything settled, compacted and forgotten`,
      );
      assert.equal(c.tombstones, 0);
    }
  });

  it('metrics follow the coordinator: entries held, tombstones, compactions, refused replays', async () => {
    const m = createMetrics();
    const c = new Coordinator({ signer: new FakeSigner(), retentionSlots: W });
    m.bindLog(c);
    const x = info(31, { deadlineSlot: DEADLINE });
    settle(c, x, 8);
    c.tick(28);
    c.onRecord(sourceRecord(x), 0, 12, 29);
    const text = await m.registry.metrics();
    assert.match(text, /^qnexus_beacon_2pc_log_entries 0$/m);
    assert.match(text, /^qnexus_beacon_2pc_tombstones 1$/m);
    assert.match(text, /^qnexus_beacon_2pc_compacted_total 1$/m);
    assert.match(text, /^qnexus_beacon_2pc_replays_refused_total 1$/m);
  });
});
