// The multi-shard simulator the modules' randomized tests run on: it must carry native and module
// denoms across shards exactly, refuse what a destination refuses, and settle everything it opens.
import assert from 'node:assert/strict';
import { homeShard } from '@qnexus/crypto';
import { sendMsg, NATIVE_DENOM } from '@qnexus/state';
import { createApp } from '@qnexus/app';
import { ShardSim } from './sim.js';
import { prng, testModuleChain } from './helpers.js';

const labels = Array.from({ length: 24 }, (_, i) => `u${i}`);
const probe = testModuleChain('qn-sim-test', { funded: [], shardCount: 2 });
const { key, addrOf, G, tx } = testModuleChain('qn-sim-test', { funded: labels, shardCount: 2 });
const users = labels.map(key);
const shardOf = (i: number) => homeShard(probe.addrOf(users[i]!), 2);

describe('state: the multi-shard simulator', () => {
  it('random same- and cross-shard transfers settle, and every shard keeps the supply identity', () => {
    const sim = new ShardSim({ app: createApp(), genesis: G });
    const rnd = prng(7);
    const nonces = users.map(() => 0n);
    let aborted = 0;
    for (let slot = 0; slot < 40; slot++) {
      const txs: Record<number, ReturnType<typeof tx>[]> = { 0: [], 1: [] };
      for (let j = 0; j < 4; j++) {
        const a = Math.floor(rnd() * users.length);
        let b = Math.floor(rnd() * users.length);
        if (b === a) b = (b + 1) % users.length;
        const cross = shardOf(a) !== shardOf(b);
        const m = sendMsg(cross ? 'xtransfer' : 'transfer', { to: addrOf(users[b]!), amount: BigInt(1 + Math.floor(rnd() * 1000)) });
        txs[shardOf(a)]!.push(tx(users[a]!, m.kind, m.msg, nonces[a]!++));
      }
      const r = sim.step(txs, { abortPrepare: () => rnd() < 0.1 && ++aborted > 0, holdPrepare: () => rnd() < 0.2 });
      // Every transaction here is valid when sent (nonces in order, funds ample).
      assert.deepEqual(r.skipped.map((s) => s.code), []);
    }
    sim.settle(60);
    assert.ok(aborted > 0, 'some transfers were aborted');
    const g = sim.globalSupply(NATIVE_DENOM);
    // Nothing in flight: escrow empty, every export imported by a shard except the proposer fee
    // rolls the staking module sent to the beacon, and the rest is balances and burned fees.
    assert.equal(g.escrow, 0n);
    assert.ok(sim.toBeacon(NATIVE_DENOM) > 0n);
    assert.equal(g.exported - g.imported, sim.toBeacon(NATIVE_DENOM));
    assert.equal(g.balances + g.burned + sim.toBeacon(NATIVE_DENOM), g.genesis + g.minted);
  });
});
