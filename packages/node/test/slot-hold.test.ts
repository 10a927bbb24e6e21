// A slot's round is held back at the slot boundary while the round before it is deciding (our vote
// is for its block): the decision then starts the new height in that same slot, instead of a whole
// slot later. The hold is bounded: without a decision the slot's round starts SLOT_HOLD late.
import assert from 'node:assert/strict';
import type { P2PNode, Topics } from '@qnexus/p2p';
import { Logger } from '@qnexus/runtime';
import { createMetrics } from '../src/metrics.js';
import { Engine } from '../src/engine.js';
import type { Chain } from '../src/chain.js';
import type { Mempool } from '../src/mempool.js';
import type { TxVerifier } from '../src/verifier.js';

describe('engine: a slot held for the previous round’s decision', () => {
  const slot = 100; // the wall clock's slot when a test builds its engine
  const slotMs = 200;

  function engine() {
    // Pin "now" to the start of slot `slot` when each test builds its engine.
    const genesis = { chainId: 'test-chain', genesisTime: Date.now() - slot * slotMs - 5, slotMs, epochLength: 32 };
    const chain = { genesis, shard: 0, headHeight: 10, headSlot: slot - 2, committeeFor: () => ({}) } as unknown as Chain;
    const mempool = { onCommit: () => undefined, size: 0 } as unknown as Mempool;
    const metrics = createMetrics();
    const e = new Engine(chain, mempool, {} as P2PNode, {} as TxVerifier, null, {} as Topics, metrics, new Logger('json', 'error'));
    const core = { round: slot - 1, deciding: true };
    const started: number[] = [];
    const internals = e as unknown as {
      core: typeof core;
      enqueue: (ev: { type: string; slot?: number }) => void;
      startSlot: (s: number) => void;
      afterCommit: (c: unknown, round: number, cert: unknown, changes: unknown) => void;
    };
    internals.core = core;
    internals.enqueue = (ev) => {
      if (ev.type === 'slot') started.push(ev.slot!);
    };
    const commit = (blockSlot: number) => {
      (chain as { headSlot: number }).headSlot = blockSlot;
      internals.afterCommit({ envs: [], block: { header: { height: 11, slot: blockSlot } } }, blockSlot, {}, {});
    };
    const holds = async (outcome: string) => (await metrics.registry.getSingleMetric('qnexus_consensus_slot_holds_total')!.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
    return { e, core, started, start: (s: number) => internals.startSlot(s), commit, holds, stop: () => e.stop() };
  }

  it('the decision releases the held slot: the new height starts in it', async () => {
    const t = engine();
    try {
      t.start(slot);
      assert.deepEqual(t.started, [], 'held while the previous round decides');
      t.commit(slot - 1);
      assert.deepEqual(t.started, [slot], 'started at the decision, in the held slot');
      assert.equal(await t.holds('decided'), 1);
      // A later commit (e.g. a sync import) starts nothing more.
      t.commit(slot - 1);
      assert.deepEqual(t.started, [slot]);
    } finally {
      await t.stop();
    }
  });

  it('nothing is held when the previous round is not deciding, or is not before the slot', async () => {
    const t = engine();
    try {
      t.core.deciding = false;
      t.start(slot);
      assert.deepEqual(t.started, [slot]);
      t.core.deciding = true;
      t.core.round = slot; // already in this slot's round (e.g. it skipped ahead)
      t.start(slot);
      assert.deepEqual(t.started, [slot, slot]);
      assert.equal((await t.holds('decided')) + (await t.holds('expired')), 0);
    } finally {
      await t.stop();
    }
  });

  it('a later slot supersedes a hold still pending: only it starts, at the decision', async () => {
    const t = engine();
    try {
      t.start(slot);
      t.start(slot + 1);
      assert.deepEqual(t.started, []);
      assert.equal(await t.holds('expired'), 1);
      t.commit(slot - 1);
      assert.deepEqual(t.started, [slot + 1]);
      assert.equal(await t.holds('decided'), 1);
    } finally {
      await t.stop();
    }
  });

  it('without a decision the hold expires and the slot starts late', async () => {
    const t = engine();
    try {
      t.start(slot);
      assert.deepEqual(t.started, []);
      // SLOT_HOLD is half a slot (100 ms here); bounded wait for the timer.
      for (let i = 0; i < 100 && t.started.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(t.started.length, 1, 'started once the hold expired');
      assert.ok(t.started[0]! >= slot);
      assert.equal(await t.holds('expired'), 1);
      assert.equal(await t.holds('decided'), 0);
    } finally {
      await t.stop();
    }
  });
});
