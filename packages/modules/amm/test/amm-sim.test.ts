// Randomized multi-shard run of the AMM (seeded, bounded): three shards under the lead's ShardSim with
// aborts and held prepares injected, many accounts creating, adding, removing, swapping on their own
// shard and on others, trying to donate (refused) and sending LP shares across shards. After every block (the host
// already checks each denom's supply identity and the module's invariants): k never falls without a
// withdrawal, value per share (k/S²) never falls, the pool ledger = the module balance (less owed
// payouts), LP shares on all shards + 1000 locked = total shares; and a block of
// swaps gives one state whatever its order.
import assert from 'node:assert/strict';
import { homeShard, toHex } from '@qnexus/crypto';
import { AMM_ID, AMM_ACCOUNT, ammAddMsg, ammCreateMsg, ammRemoveMsg, ammSwapMsg, amountOut, getPool, lpDenom, poolShard, poolIdOf, MINIMUM_LIQUIDITY, type Pool } from '../src/index.js';
import { payouts, sendMsg, xferKeeperOf, type WorldState } from '@qnexus/state';
import type { TxEnvelope } from '@qnexus/types';
import { DENOMS, books, chain, send } from './fixture.js';
import { prng } from '../../../state/test/helpers.js';

const [A, B, C] = DENOMS;
const SHARDS = 3;
const STEPS = 160;
const owedOf = payouts(xferKeeperOf(() => undefined), AMM_ID, 2, 'amm').owed;

function allPools(s: WorldState): Pool[] {
  return s
    .store(AMM_ID)
    .range(new Uint8Array([0x01]), 1000)
    .map(([k]) => getPool(s.store(AMM_ID), k.subarray(1))!);
}

describe('amm: randomized run over three shards', function () {
  this.timeout(120_000);

  it('keeps k, value per share, the ledger and the LP supply after every block; swap order never matters', () => {
    const rnd = prng(Number(process.env.AMM_SEED ?? 0xa11e));
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const c = chain({ shards: SHARDS, n: 15, tokens: 10n ** 14n });
    const byShard = Array.from({ length: SHARDS }, (_, s) => c.keys.filter((k) => c.shardOf(k) === s));
    assert.ok(byShard.every((ks) => ks.length >= 2), 'accounts on every shard');
    // Pools: A/B on every shard, B/C on shard 0 (a fee tier each).
    const pools: Uint8Array[] = [];
    for (let s = 0; s < SHARDS; s++) {
      c.ok(byShard[s]![0]!, ammCreateMsg({ denomA: A, denomB: B, amountA: 10n ** 9n, amountB: 3n * 10n ** 9n, feeBps: 30, minShares: 0n, deadline: 10n ** 6n }));
      pools.push(poolIdOf(s, A, B, 30));
    }
    c.ok(byShard[0]![1]!, ammCreateMsg({ denomA: B, denomB: C, amountA: 5n * 10n ** 8n, amountB: 10n ** 8n, feeBps: 5, minShares: 0n, deadline: 10n ** 6n }));
    pools.push(poolIdOf(0, B, C, 5));
    let prev = new Map<string, Pool>();
    const stats = { swaps: 0, xswaps: 0, adds: 0, removes: 0, skipped: 0, permuted: 0 };

    const check = (label: string) => {
      const now = new Map<string, Pool>();
      for (let s = 0; s < SHARDS; s++) {
        const st = c.state(s);
        for (const p of allPools(st)) {
          const key = toHex(p.id);
          now.set(key, p);
          const q = prev.get(key);
          if (q) {
            const k0 = q.reserveA * q.reserveB;
            const k1 = p.reserveA * p.reserveB;
            assert.ok(k1 * q.totalShares ** 2n >= k0 * p.totalShares ** 2n, `${label}: value per share of ${key} never falls`);
            if (p.totalShares >= q.totalShares) assert.ok(k1 >= k0, `${label}: k of ${key} never falls without a withdrawal`);
          }
          // LP shares anywhere (balances on every shard, escrow, and exported not yet imported) + the locked 1000 = total shares.
          const g = c.sim.globalSupply(lpDenom(p.id));
          assert.equal(g.balances + g.escrow + g.exported - g.imported + MINIMUM_LIQUIDITY, p.totalShares, `${label}: shares of ${key}`);
          assert.equal(g.minted - g.burned + MINIMUM_LIQUIDITY, p.totalShares, `${label}: minted − burned + locked of ${key}`);
        }
        for (const d of DENOMS) {
          const b = books(st, d);
          assert.equal(b.queued, 0n, `${label}: no swap stays queued past its block`);
          assert.equal(b.balance, b.reserves + owedOf(st, d), `${label}: shard ${s} ${d}: module balance = Σ reserves + owed`);
          const sum = allPools(st).reduce((t, p) => t + (p.denomA === d ? p.reserveA : 0n) + (p.denomB === d ? p.reserveB : 0n), 0n);
          assert.equal(b.reserves, sum, `${label}: shard ${s} ${d}: the book is Σ reserves`);
        }
      }
      prev = now;
    };
    check('setup');

    for (let step = 0; step < STEPS; step++) {
      const swapsOnly = step % 8 === 7;
      const txs: TxEnvelope[] = [];
      for (const k of c.keys) {
        if (rnd() < 0.45) continue;
        const home = c.shardOf(k);
        const r = swapsOnly ? 0 : rnd();
        const local = pools.filter((id) => poolShard(id) === home);
        if (r < 0.6) {
          const id = pick(pools);
          const p = getPool(c.state(poolShard(id)).store(AMM_ID), id)!;
          const aIn = rnd() < 0.5;
          const amountIn = BigInt(1 + Math.floor(rnd() * 5_000_000));
          const q = amountOut(amountIn, aIn ? p.reserveA : p.reserveB, aIn ? p.reserveB : p.reserveA, p.feeBps);
          // A guard at, below or above the current quote: some execute, some are refunded at the batch.
          const minOut = pick([0n, q, (q * 99n) / 100n, q + 1n]);
          const deadline = BigInt(c.sim.slot + 1 + Math.floor(rnd() * 4));
          txs.push(c.tx(k, ammSwapMsg({ pool: id, denomIn: aIn ? p.denomA : p.denomB, amountIn, minOut, deadline })));
          if (poolShard(id) === home) stats.swaps++;
          else stats.xswaps++;
        } else if (r < 0.75 && local.length) {
          const id = pick(local);
          txs.push(c.tx(k, ammAddMsg({ pool: id, maxA: BigInt(1 + Math.floor(rnd() * 3_000_000)), maxB: BigInt(1 + Math.floor(rnd() * 3_000_000)), minShares: 0n, deadline: BigInt(c.sim.slot + 3) })));
          stats.adds++;
        } else if (r < 0.88 && local.length) {
          const id = pick(local);
          const held = c.bal(k, lpDenom(id));
          if (held === 0n) continue;
          txs.push(c.tx(k, ammRemoveMsg({ pool: id, shares: 1n + BigInt(Math.floor(rnd() * Number(held))), minA: 0n, minB: 0n, deadline: BigInt(c.sim.slot + 3) })));
          stats.removes++;
        } else if (r < 0.93 && homeShard(AMM_ACCOUNT, SHARDS) === home) {
          // A donation to the module account: the bank refuses it (TX_BAD_RECIPIENT), so nothing beside the books ever reaches it.
          const d = pick(DENOMS);
          const amount = BigInt(1 + Math.floor(rnd() * 1000));
          txs.push(c.tx(k, send(AMM_ACCOUNT, amount, d)));
        } else {
          // LP shares travel like any token: to an account of another shard.
          const id = pick(pools);
          const held = c.bal(k, lpDenom(id));
          const to = pick(c.keys.filter((x) => c.shardOf(x) !== home));
          if (held === 0n) continue;
          txs.push(c.tx(k, sendMsg('xtransfer', { to: c.addr(to), amount: 1n + BigInt(Math.floor(rnd() * Number(held))), denom: lpDenom(id) })));
        }
      }
      if (swapsOnly) {
        // Permuting a block's swaps leaves its state the same (per shard, one tx per sender).
        for (let s = 0; s < SHARDS; s++) {
          const mine = txs.filter((t) => c.shardOf(c.keys.find((k) => toHex(c.addr(k)) === toHex(t.from))!) === s);
          if (mine.length < 2) continue;
          const block = { height: c.sim.heights[s]! + 1, slot: c.sim.slot + 1, proposer: new Uint8Array(20) };
          const shuffled = [...mine].sort(() => rnd() - 0.5);
          const r1 = c.app.executeApplicable(c.state(s), mine, c.sim.params[s]!, block);
          const r2 = c.app.executeApplicable(c.state(s), [...mine].reverse(), c.sim.params[s]!, block);
          const r3 = c.app.executeApplicable(c.state(s), shuffled, c.sim.params[s]!, block);
          assert.equal(toHex(r2.exec.stateRoot), toHex(r1.exec.stateRoot), `step ${step} shard ${s}: reversed swaps`);
          assert.equal(toHex(r3.exec.stateRoot), toHex(r1.exec.stateRoot), `step ${step} shard ${s}: shuffled swaps`);
          stats.permuted++;
        }
      }
      const res = c.step(txs, { abortPrepare: () => rnd() < 0.1, holdPrepare: () => rnd() < 0.2 });
      stats.skipped += res.skipped.length;
      // Every donation was left out (refused before its fee), with the bank's code.
      const bankSend = send(AMM_ACCOUNT, 1n, A).kind;
      for (const sk of res.skipped) if (sk.env.tx.body.payload.kind === bankSend) assert.equal(sk.code, 'TX_BAD_RECIPIENT');
      for (const t of res.applied.flat()) assert.notEqual(t.tx.body.payload.kind, bankSend, 'a donation was included');
      check(`step ${step}`);
    }
    c.sim.settle(60);
    check('settled');
    for (const d of [...DENOMS, ...pools.map(lpDenom)]) {
      const g = c.sim.globalSupply(d);
      assert.equal(g.balances + g.burned + g.escrow, g.genesis + g.minted, `global supply of ${d} once nothing is in flight`);
      assert.equal(g.escrow, 0n);
    }
    assert.ok(stats.swaps > 100 && stats.xswaps > 100 && stats.adds > 20 && stats.removes > 10 && stats.permuted > 10, JSON.stringify(stats));
  });
});
