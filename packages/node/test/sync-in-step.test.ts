// The sync loop asks every peer for its head each slot only while this node is not in step with the chain.
import assert from 'node:assert/strict';
import type { P2PNode, Topics } from '@qnexus/p2p';
import { Logger } from '@qnexus/runtime';
import { Syncer } from '../src/sync.js';
import type { Chain } from '../src/chain.js';
import type { Engine } from '../src/engine.js';
import type { Metrics } from '../src/metrics.js';

describe('sync: in step with the chain', () => {
  const genesis = { genesisTime: 1_000_000, slotMs: 1000, scheme: 'ml-dsa-44' as const };
  const at = (slot: number): number => genesis.genesisTime + slot * genesis.slotMs + 500;
  function syncer(head: { headHeight: number; headSlot: number }, connected: string[] = [], emptyBlockInterval = 1): Syncer {
    const chain = { genesis, ...head } as unknown as Chain;
    const p2p = { connectedPeers: () => connected } as unknown as P2PNode;
    return new Syncer(chain, { emptyBlockInterval } as Engine, p2p, {} as Topics, {} as Metrics, new Logger('json', 'error'));
  }

  it('is in step while the head is from one of the last few slots', () => {
    const s = syncer({ headHeight: 40, headSlot: 57 });
    assert.equal(s.inStep(at(57)), true);
    assert.equal(s.inStep(at(60)), true);
  });

  it('is not in step once the head is older (a stall, a partition, a pause): it then polls every slot', () => {
    const s = syncer({ headHeight: 40, headSlot: 57 });
    assert.equal(s.inStep(at(61)), false);
    assert.equal(s.inStep(at(500)), false);
  });

  it('with an empty-block interval, an idle head as old as the interval is still in step', () => {
    const s = syncer({ headHeight: 40, headSlot: 57 }, [], 8);
    assert.equal(s.inStep(at(57 + 8)), true, 'the next empty block is due');
    assert.equal(s.inStep(at(57 + 10)), true);
    assert.equal(s.inStep(at(57 + 11)), false, 'three slots past the due empty block');
  });

  it('is never in step at genesis or before the chain started', () => {
    assert.equal(syncer({ headHeight: 0, headSlot: -1 }).inStep(at(0)), false);
    assert.equal(syncer({ headHeight: 3, headSlot: 2 }).inStep(genesis.genesisTime - 1), false);
  });

  it('in step, polls every 8th tick, and at once when a peer connected since the last poll', () => {
    const connected: string[] = [];
    const s = syncer({ headHeight: 40, headSlot: 57 }, connected);
    const due = Array.from({ length: 16 }, () => s.pollDue(at(58)));
    assert.deepEqual(due.map((d, i) => (d ? i : -1)).filter((i) => i >= 0), [7, 15]);
    connected.push('peer-b');
    assert.equal(s.pollDue(at(58)), true, 'a newly connected peer is asked at the next tick');
  });

  it('not in step, polls every tick', () => {
    const s = syncer({ headHeight: 40, headSlot: 57 }, []);
    assert.ok(Array.from({ length: 5 }, () => s.pollDue(at(100))).every(Boolean));
  });
});
