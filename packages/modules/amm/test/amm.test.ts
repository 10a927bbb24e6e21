// The AMM on one shard (and a swap from another): Uniswap v2's vectors, share math, rounding in the
// pool's favour, donations, the fee's commit/apply, the batch at the end of the block, every error code.
import assert from 'node:assert/strict';
import { bank, moduleAccount } from '@qnexus/state';
import { QnexusError } from '@qnexus/types';
import {
  AMM_ACCOUNT,
  AMM_ERRORS,
  FEE_TIERS,
  MINIMUM_LIQUIDITY,
  ammAddMsg,
  ammApplyFeeMsg,
  ammCommitFeeMsg,
  ammCreateMsg,
  ammModule,
  ammRemoveMsg,
  ammSwapMsg,
  amountOut,
  depositFor,
  isqrt,
  lpDenom,
  poolIdOf,
  withdrawalFor,
} from '../src/index.js';
import { DENOMS, books, chain, lpOutstanding, send, type Chain } from './fixture.js';

const E18 = 10n ** 18n;
const [A, B, C] = DENOMS;
const FAR = 1_000_000n; // a deadline far ahead

/** Uniswap v2's getInputPrice vectors (UniswapV2Pair.spec.ts): [swap, reserve in, reserve out] × 1e18 → output (fee 30 bps). */
const VECTORS: [bigint, bigint, bigint, bigint][] = [
  [1n, 5n, 10n, 1662497915624478906n],
  [1n, 10n, 5n, 453305446940074565n],
  [2n, 5n, 10n, 2851015155847869602n],
  [2n, 10n, 5n, 831248957812239453n],
  [1n, 10n, 10n, 906610893880149131n],
  [1n, 100n, 100n, 987158034397061298n],
  [1n, 1000n, 1000n, 996006981039903216n],
];

function create(c: Chain, k = c.keys[0]!, o: Partial<Parameters<typeof ammCreateMsg>[0]> = {}) {
  const m = { denomA: A, denomB: B, amountA: 1_000_000n, amountB: 4_000_000n, feeBps: 30, minShares: 0n, deadline: FAR, ...o };
  c.ok(k, ammCreateMsg(m));
  return poolIdOf(c.shardOf(k), m.denomA, m.denomB, m.feeBps);
}

describe('amm: math', () => {
  it("reproduces Uniswap v2's getInputPrice vectors exactly", () => {
    for (const [s, x, y, expected] of VECTORS) assert.equal(amountOut(s * E18, x * E18, y * E18, 30), expected, `(${s}, ${x}, ${y})`);
  });

  it('isqrt is the exact floor square root', () => {
    for (const n of [0n, 1n, 2n, 3n, 4n, 15n, 16n, 17n, 10n ** 36n - 1n, 10n ** 36n, (1n << 128n) - 1n, 12345678901234567890123n]) {
      const r = isqrt(n);
      assert.ok(r * r <= n && (r + 1n) * (r + 1n) > n, `isqrt(${n}) = ${r}`);
    }
  });

  it('a deposit takes the least amounts that buy its shares, and a withdrawal pays the floors', () => {
    // x = 1000, y = 3001, S = 1732: at most 10 / 100 → shares by A: ⌊10·1732/1000⌋ = 17.
    const d = depositFor(10n, 100n, 1000n, 3001n, 1732n);
    assert.equal(d.shares, 17n);
    assert.equal(d.a, 10n); // ⌈17·1000/1732⌉ = ⌈9.81⌉
    assert.equal(d.b, 30n); // ⌈17·3001/1732⌉ = ⌈29.45⌉, not the 100 offered
    assert.ok(d.a * 1732n >= 17n * 1000n && d.b * 1732n >= 17n * 3001n, 'never fewer than the shares are worth');
    const w = withdrawalFor(17n, 1010n, 3031n, 1749n);
    assert.deepEqual(w, { a: (17n * 1010n) / 1749n, b: (17n * 3031n) / 1749n });
  });
});

describe('amm: pools on one shard', function () {
  this.timeout(60_000);

  it('the vectors reproduce through the chain, and expected + 1 as minOut is refused (AMM_SLIPPAGE)', () => {
    for (const [s, x, y, expected] of VECTORS.filter(([s, x, y]) => (s + x) * E18 < 1n << 64n && y * E18 < 1n << 64n)) {
      const c = chain({ n: 1, credits: (a) => [{ addr: a[0]!, denom: A, amount: 15n * E18 }, { addr: a[0]!, denom: B, amount: 15n * E18 }] });
      const k = c.keys[0]!;
      const id = create(c, k, { amountA: x * E18, amountB: y * E18 });
      c.refused(k, ammSwapMsg({ pool: id, denomIn: A, amountIn: s * E18, minOut: expected + 1n, deadline: FAR }), 'AMM_SLIPPAGE');
      const before = c.bal(k, B);
      c.ok(k, ammSwapMsg({ pool: id, denomIn: A, amountIn: s * E18, minOut: expected, deadline: FAR }));
      assert.equal(c.bal(k, B) - before, expected, `(${s}, ${x}, ${y}) pays exactly`);
      const p = c.pool(id);
      assert.equal(p.reserveA, (x + s) * E18);
      assert.equal(p.reserveB, y * E18 - expected);
    }
  });

  it('first deposit: isqrt(a·b) − 1000 to the creator, 1000 locked; the creation fee goes to the fee collector', () => {
    const c = chain({});
    const k = c.keys[0]!;
    const collector = moduleAccount('fee_collector');
    const qfc0 = c.bal(k, 'qfc');
    const fc0 = bank.balance(c.state(0), collector);
    const id = create(c, k, { amountA: 1_000_000n, amountB: 4_000_000n });
    const p = c.pool(id);
    assert.equal(p.totalShares, 2_000_000n);
    assert.equal(c.bal(k, lpDenom(id)), 2_000_000n - MINIMUM_LIQUIDITY);
    assert.equal(lpOutstanding(c.state(0), id) + MINIMUM_LIQUIDITY, p.totalShares);
    assert.equal(qfc0 - c.bal(k, 'qfc'), 1_000_000n + 5n, 'creation fee + tx fee');
    assert.ok(bank.balance(c.state(0), collector) - fc0 >= 1_000_000n, 'the creation fee reached the fee collector');
    assert.equal(p.denomA, A);
    assert.equal(p.admin.toString(), c.addr(k).toString());
    // The creator gave denoms in either order: the pair is canonical (the same pool id).
    c.refused(k, ammCreateMsg({ denomA: B, denomB: A, amountA: 4_000_000n, amountB: 1_000_000n, feeBps: 30, minShares: 0n, deadline: FAR }), 'AMM_POOL_EXISTS');
    // A deposit whose isqrt(a·b) is not above the locked 1000 is refused.
    c.refused(k, ammCreateMsg({ denomA: A, denomB: B, amountA: 1000n, amountB: 1000n, feeBps: 5, minShares: 0n, deadline: FAR }), 'AMM_INSUFFICIENT_LIQUIDITY');
  });

  it('later deposits mint min(dx·S/x, dy·S/y) and take only the amounts in ratio', () => {
    const c = chain({});
    const [k0, k1] = c.keys as [typeof c.keys[0], typeof c.keys[0]];
    const id = create(c, k0, { amountA: 1_000_000n, amountB: 3_000_001n });
    const p0 = c.pool(id);
    const a0 = c.bal(k1, A);
    const b0 = c.bal(k1, B);
    const expect = depositFor(10_000n, 1_000_000n, p0.reserveA, p0.reserveB, p0.totalShares);
    c.refused(k1, ammAddMsg({ pool: id, maxA: 10_000n, maxB: 1_000_000n, minShares: expect.shares + 1n, deadline: FAR }), 'AMM_SLIPPAGE');
    c.ok(k1, ammAddMsg({ pool: id, maxA: 10_000n, maxB: 1_000_000n, minShares: expect.shares, deadline: FAR }));
    assert.equal(c.bal(k1, lpDenom(id)), expect.shares);
    assert.equal(a0 - c.bal(k1, A), expect.a);
    assert.equal(b0 - c.bal(k1, B), expect.b);
    assert.ok(expect.b < 1_000_000n / 10n, 'the excess B was never taken');
    assert.equal(expect.shares, [(expect.a * p0.totalShares) / p0.reserveA, (expect.b * p0.totalShares) / p0.reserveB].reduce((x, y) => (x < y ? x : y)));
    const p1 = c.pool(id);
    assert.equal(p1.totalShares, p0.totalShares + expect.shares);
    // Too little to buy one share.
    c.refused(k1, ammAddMsg({ pool: id, maxA: 1n, maxB: 1n, minShares: 0n, deadline: FAR }), 'AMM_ZERO_SHARES');
  });

  it('withdrawal pays floor(s·x/S), floor(s·y/S), burns the shares, and value per share never falls', () => {
    const c = chain({});
    const [k0, k1] = c.keys as [typeof c.keys[0], typeof c.keys[0]];
    const id = create(c, k0, { amountA: 1_000_003n, amountB: 2_999_999n });
    c.ok(k1, ammSwapMsg({ pool: id, denomIn: A, amountIn: 12_345n, minOut: 1n, deadline: FAR })); // make the reserves uneven
    const p = c.pool(id);
    const s = 777_777n;
    const w = withdrawalFor(s, p.reserveA, p.reserveB, p.totalShares);
    assert.ok((s * p.reserveA) % p.totalShares !== 0n, 'the case rounds');
    const a0 = c.bal(k0, A);
    const b0 = c.bal(k0, B);
    c.refused(k0, ammRemoveMsg({ pool: id, shares: s, minA: w.a + 1n, minB: 0n, deadline: FAR }), 'AMM_SLIPPAGE');
    c.ok(k0, ammRemoveMsg({ pool: id, shares: s, minA: w.a, minB: w.b, deadline: FAR }));
    assert.equal(c.bal(k0, A) - a0, w.a);
    assert.equal(c.bal(k0, B) - b0, w.b);
    const q = c.pool(id);
    assert.equal(q.totalShares, p.totalShares - s);
    assert.equal(q.reserveA, p.reserveA - w.a);
    // k/S² never falls: the remainders of the floors stayed in the pool.
    assert.ok(q.reserveA * q.reserveB * p.totalShares ** 2n >= p.reserveA * p.reserveB * q.totalShares ** 2n);
    assert.ok(q.reserveA * p.totalShares > p.reserveA * q.totalShares, 'strictly more A per share remains (rounded in the pool’s favour)');
    // The locked shares can never be withdrawn.
    const all = c.bal(k0, lpDenom(id));
    c.refused(k0, ammRemoveMsg({ pool: id, shares: all + 1n, minA: 0n, minB: 0n, deadline: FAR }), 'AMM_INSUFFICIENT_LIQUIDITY');
    c.ok(k0, ammRemoveMsg({ pool: id, shares: all, minA: 0n, minB: 0n, deadline: FAR }));
    const z = c.pool(id);
    assert.equal(z.totalShares, MINIMUM_LIQUIDITY);
    assert.ok(z.reserveA > 0n && z.reserveB > 0n);
  });

  it('a donation (bank send to the module account) is refused, and the price is read off the ledger', () => {
    const c = chain({});
    const [k0, k1] = c.keys as [typeof c.keys[0], typeof c.keys[0]];
    const id = create(c, k0);
    const p0 = c.pool(id);
    c.refused(k1, send(AMM_ACCOUNT, 5_000_000n, A), 'TX_BAD_RECIPIENT');
    c.refused(k1, send(AMM_ACCOUNT, 7n, B), 'TX_BAD_RECIPIENT');
    const p1 = c.pool(id);
    assert.equal(p1.reserveA, p0.reserveA);
    assert.equal(p1.reserveB, p0.reserveB);
    const bk = books(c.state(0), A);
    assert.equal(bk.balance, bk.reserves, 'nothing beside the books');
    const expected = amountOut(1000n, p0.reserveA, p0.reserveB, 30);
    const b0 = c.bal(k1, B);
    c.ok(k1, ammSwapMsg({ pool: id, denomIn: A, amountIn: 1000n, minOut: expected, deadline: FAR }));
    assert.equal(c.bal(k1, B) - b0, expected, 'the swap is priced off the ledger, not the balance');
    const pq = c.app.query(c.state(0), c.sim.params[0]!, c.app.module('amm')!, c.app.module('amm')!.queries!.find((q) => q.name === 'pools')!, { id: Buffer.from(id).toString('hex') }) as { spotPrice: string; reserveBase: string };
    assert.equal(pq.reserveBase, (p0.reserveA + 1000n).toString());
  });

  it("fee changes: admin only, tier and cap, one pending, applied no sooner than 32 slots after the commit", () => {
    const c = chain({});
    const [k0, k1] = c.keys as [typeof c.keys[0], typeof c.keys[0]];
    const id = create(c, k0);
    c.refused(k1, ammCommitFeeMsg({ pool: id, feeBps: 50, deadline: FAR }), 'AMM_NOT_ADMIN');
    c.refused(k0, ammCommitFeeMsg({ pool: id, feeBps: 200, deadline: FAR }), 'AMM_FEE_CAP');
    c.refused(k0, ammCommitFeeMsg({ pool: id, feeBps: 7, deadline: FAR }), 'AMM_BAD_FEE_TIER');
    c.refused(k0, ammApplyFeeMsg({ pool: id, deadline: FAR }), 'AMM_NO_PENDING_FEE');
    c.ok(k0, ammCommitFeeMsg({ pool: id, feeBps: 100, deadline: FAR }));
    const committed = BigInt(c.sim.slot);
    c.refused(k0, ammCommitFeeMsg({ pool: id, feeBps: 50, deadline: FAR }), 'AMM_FEE_PENDING');
    while (BigInt(c.sim.slot + 1) < committed + 30n) c.step([]);
    c.refused(k1, ammApplyFeeMsg({ pool: id, deadline: FAR }), 'AMM_NOT_ADMIN');
    c.refused(k0, ammApplyFeeMsg({ pool: id, deadline: FAR }), 'AMM_FEE_NOT_READY');
    assert.equal(BigInt(c.sim.slot), committed + 31n, 'refused 31 slots after the commit');
    assert.equal(c.pool(id).feeBps, 30);
    c.ok(k0, ammApplyFeeMsg({ pool: id, deadline: FAR }));
    assert.equal(BigInt(c.sim.slot), committed + 32n, 'applied 32 slots after the commit');
    const p = c.pool(id);
    assert.equal(p.feeBps, 100);
    assert.equal(p.pendingFee, null);
    const expected = amountOut(10_000n, p.reserveA, p.reserveB, 100);
    const b0 = c.bal(k1, B);
    c.ok(k1, ammSwapMsg({ pool: id, denomIn: A, amountIn: 10_000n, minOut: 0n, deadline: FAR }));
    assert.equal(c.bal(k1, B) - b0, expected, 'the new fee prices the next swap');
  });

  it("a block's swaps execute together at its end, in an order no proposer picks (permuted blocks give one state)", () => {
    const roots = [false, true].map((reverse) => {
      const c = chain({});
      const id = create(c, c.keys[0]!);
      const txs = c.keys.slice(1).map((k, i) => c.tx(k, ammSwapMsg({ pool: id, denomIn: i % 2 ? A : B, amountIn: 10_000n * BigInt(i + 1), minOut: 1n, deadline: FAR })));
      const before = c.pool(id);
      const r = c.step(reverse ? [...txs].reverse() : txs);
      assert.deepEqual(r.skipped, []);
      const after = c.pool(id);
      assert.notEqual(after.reserveA, before.reserveA);
      return Buffer.from(c.state(0).root()).toString('hex');
    });
    assert.equal(roots[0], roots[1]);
  });

  it('a swap whose output at execution falls below its minOut is refunded exactly', () => {
    const c = chain({});
    const [k0, k1, k2] = c.keys as [typeof c.keys[0], typeof c.keys[0], typeof c.keys[0]];
    const id = create(c, k0);
    const p = c.pool(id);
    const q = amountOut(100_000n, p.reserveA, p.reserveB, 30);
    // Both quote well at the tx; the big one executed first (or after) makes the tight one fail.
    const a1 = c.bal(k1, A);
    const b1 = c.bal(k1, B);
    c.step([c.tx(k1, ammSwapMsg({ pool: id, denomIn: A, amountIn: 100_000n, minOut: q, deadline: FAR })), c.tx(k2, ammSwapMsg({ pool: id, denomIn: A, amountIn: 500_000n, minOut: 1n, deadline: FAR }))]);
    const paid = c.bal(k1, B) - b1;
    if (paid === 0n) assert.equal(c.bal(k1, A), a1, 'refunded: the input is back in full');
    else assert.equal(paid, q, 'executed first: the quoted output');
    for (const d of [A, B]) {
      const bk = books(c.state(0), d);
      assert.equal(bk.balance, bk.reserves + bk.queued);
      assert.equal(bk.queued, 0n, 'nothing left queued after the block');
    }
  });

  it('every error code is reachable (a table)', () => {
    const c = chain({});
    const [k0, k1] = c.keys as [typeof c.keys[0], typeof c.keys[0]];
    const id = create(c, k0);
    const other = poolIdOf(0, A, C, 30);
    const seen = new Set<string>();
    const table: [string, typeof k0, Parameters<typeof c.refused>[1]][] = [
      ['AMM_UNKNOWN_POOL', k1, ammSwapMsg({ pool: other, denomIn: A, amountIn: 10n, minOut: 0n, deadline: FAR })],
      ['AMM_UNKNOWN_POOL', k1, ammAddMsg({ pool: new Uint8Array([0, 9, 1, 2, 3, 4, 5, 6]), maxA: 1n, maxB: 1n, minShares: 0n, deadline: FAR })],
      ['AMM_BAD_DENOM', k1, ammCreateMsg({ denomA: 'Bad Denom', denomB: B, amountA: 1n, amountB: 1n, feeBps: 30, minShares: 0n, deadline: FAR })],
      ['AMM_BAD_DENOM', k1, ammCreateMsg({ denomA: 'tst/none', denomB: B, amountA: 10n ** 6n, amountB: 10n ** 6n, feeBps: 30, minShares: 0n, deadline: FAR })],
      ['AMM_BAD_DENOM', k1, ammSwapMsg({ pool: id, denomIn: C, amountIn: 10n, minOut: 0n, deadline: FAR })],
      ['AMM_SAME_DENOM', k1, ammCreateMsg({ denomA: A, denomB: A, amountA: 10n ** 6n, amountB: 10n ** 6n, feeBps: 30, minShares: 0n, deadline: FAR })],
      ['AMM_BAD_FEE_TIER', k1, ammCreateMsg({ denomA: A, denomB: C, amountA: 10n ** 6n, amountB: 10n ** 6n, feeBps: 3, minShares: 0n, deadline: FAR })],
      ['AMM_FEE_CAP', k1, ammCreateMsg({ denomA: A, denomB: C, amountA: 10n ** 6n, amountB: 10n ** 6n, feeBps: 101, minShares: 0n, deadline: FAR })],
      ['AMM_NOT_ADMIN', k1, ammCommitFeeMsg({ pool: id, feeBps: 5, deadline: FAR })],
      ['AMM_NO_PENDING_FEE', k0, ammApplyFeeMsg({ pool: id, deadline: FAR })],
      ['AMM_DEADLINE', k1, ammSwapMsg({ pool: id, denomIn: A, amountIn: 10n, minOut: 0n, deadline: 1n })],
      ['AMM_SLIPPAGE', k1, ammSwapMsg({ pool: id, denomIn: A, amountIn: 1000n, minOut: 10n ** 9n, deadline: FAR })],
      ['AMM_INSUFFICIENT_LIQUIDITY', k1, ammSwapMsg({ pool: id, denomIn: B, amountIn: 1n, minOut: 0n, deadline: FAR })],
      ['AMM_ZERO_SHARES', k1, ammAddMsg({ pool: id, maxA: 1n, maxB: 1n, minShares: 0n, deadline: FAR })],
      ['AMM_ZERO_AMOUNT', k1, ammSwapMsg({ pool: id, denomIn: A, amountIn: 0n, minOut: 0n, deadline: FAR })],
      ['AMM_OVERFLOW', k1, ammSwapMsg({ pool: id, denomIn: A, amountIn: (1n << 64n) - 1n, minOut: 0n, deadline: FAR })],
      ['AMM_POOL_EXISTS', k1, ammCreateMsg({ denomA: A, denomB: B, amountA: 10n ** 6n, amountB: 10n ** 6n, feeBps: 30, minShares: 0n, deadline: FAR })],
      ['AMM_WRONG_SHARD', k1, ammAddMsg({ pool: new Uint8Array([0, 0, 1, 2, 3, 4, 5, 6]).map((v, i) => (i === 1 ? 0 : v)), maxA: 1n, maxB: 1n, minShares: 0n, deadline: FAR })],
    ];
    for (const [code, k, m] of table) {
      if (code === 'AMM_WRONG_SHARD') continue; // needs two shards: below
      c.refused(k, m, code);
      seen.add(code);
    }
    c.ok(k0, ammCommitFeeMsg({ pool: id, feeBps: 5, deadline: FAR }));
    c.refused(k0, ammCommitFeeMsg({ pool: id, feeBps: 10, deadline: FAR }), 'AMM_FEE_PENDING');
    c.refused(k0, ammApplyFeeMsg({ pool: id, deadline: FAR }), 'AMM_FEE_NOT_READY');
    seen.add('AMM_FEE_PENDING').add('AMM_FEE_NOT_READY');
    // Two shards: adding liquidity to a pool of the other shard is refused (only swaps travel).
    const c2 = chain({ shards: 2 });
    const on0 = c2.keys.find((k) => c2.shardOf(k) === 0)!;
    const on1 = c2.keys.find((k) => c2.shardOf(k) === 1)!;
    const id2 = create(c2, on0);
    c2.refused(on1, ammAddMsg({ pool: id2, maxA: 10n ** 6n, maxB: 10n ** 6n, minShares: 0n, deadline: FAR }), 'AMM_WRONG_SHARD');
    seen.add('AMM_WRONG_SHARD');
    assert.deepEqual([...seen].sort(), Object.keys(AMM_ERRORS).sort(), 'every AMM error code was produced');
    assert.ok(FEE_TIERS.every((f) => f <= 100));
  });

  it('a malformed message is refused before any state (bounded, strict decoders)', () => {
    const c = chain({});
    const good = ammSwapMsg({ pool: new Uint8Array(8), denomIn: A, amountIn: 1n, minOut: 0n, deadline: 1n });
    c.refused(c.keys[0]!, { kind: good.kind, msg: new Uint8Array([...good.msg, 0]) }, 'TX_MALFORMED');
    c.refused(c.keys[0]!, { kind: good.kind, msg: good.msg.subarray(0, 10) }, 'TX_MALFORMED');
  });

  it('the CLI builds every message from strings and refuses bad arguments with a typed error', () => {
    const c = chain({});
    const b = (name: string, args: Record<string, string>) => c.app.buildMsg('amm', name, args);
    const pool = '0000' + 'ab'.repeat(6);
    assert.deepEqual(b('amm-create', { denomA: A, denomB: B, amountA: '10', amountB: '20', feeBps: '30', deadline: '99' }), ammCreateMsg({ denomA: A, denomB: B, amountA: 10n, amountB: 20n, feeBps: 30, minShares: 0n, deadline: 99n }));
    assert.ok(b('amm-add', { pool, maxA: '1', maxB: '2', deadline: '9' }));
    assert.ok(b('amm-remove', { pool, shares: '1', deadline: '9' }));
    assert.ok(b('amm-swap', { pool, denomIn: A, amountIn: '5', minOut: '1', deadline: '9' }));
    assert.ok(b('amm-commit-fee', { pool, feeBps: '5', deadline: '9' }));
    assert.ok(b('amm-apply-fee', { pool, deadline: '9' }));
    assert.throws(() => b('amm-swap', { pool: 'zz', denomIn: A, amountIn: '5', minOut: '1', deadline: '9' }), (e: unknown) => e instanceof QnexusError && e.code === 'TX_MALFORMED');
    assert.throws(() => b('amm-swap', { pool, denomIn: A, amountIn: '-5', minOut: '1', deadline: '9' }), (e: unknown) => e instanceof QnexusError && e.code === 'TX_BAD_AMOUNT');
    assert.throws(() => b('amm-swap', { pool, denomIn: A, amountIn: '18446744073709551616', minOut: '1', deadline: '9' }), (e: unknown) => e instanceof QnexusError && e.code === 'TX_BAD_AMOUNT');
    void ammModule;
  });
});

describe('amm: queries and statistics', function () {
  this.timeout(60_000);

  it('pools/{id}: reserves, shares, spot and cumulative price, 24 h volume and fees, recent prices; list; quote', () => {
    const c = chain({});
    const [k0, k1] = c.keys as [typeof c.keys[0], typeof c.keys[0]];
    const id = create(c, k0);
    const amm = c.app.module('amm')!;
    const q = (name: string, args: Record<string, string>) => c.app.query(c.state(0), c.sim.params[0]!, amm, amm.queries!.find((x) => x.name === name)!, args) as Record<string, unknown>;
    const idHex = Buffer.from(id).toString('hex');
    // The TWAP accumulator by hand: Σ price(reserves before the block) × slots since the last update.
    let cum = 0n;
    let last = BigInt(c.sim.slot);
    let volA = 0n;
    let volB = 0n;
    let feeA = 0n;
    let feeB = 0n;
    const touched: bigint[] = [BigInt(c.sim.slot)];
    for (let i = 0; i < 5; i++) {
      c.step([]);
      c.step([]);
      const p = c.pool(id);
      const aIn = i % 2 === 0;
      const amt = 1000n * BigInt(i + 1) + 7n;
      c.ok(k1, ammSwapMsg({ pool: id, denomIn: aIn ? A : B, amountIn: amt, minOut: 1n, deadline: FAR }));
      const slot = BigInt(c.sim.slot);
      cum += ((p.reserveB * E18) / p.reserveA) * (slot - last);
      last = slot;
      touched.push(slot);
      if (aIn) {
        volA += amt;
        feeA += (amt * 30n) / 10_000n;
      } else {
        volB += amt;
        feeB += (amt * 30n) / 10_000n;
      }
    }
    const p = c.pool(id);
    const j = q('pools', { id: idHex }) as Record<string, unknown> & { prices: { slot: string; price: string }[] };
    assert.equal(j.reserveBase, p.reserveA.toString());
    assert.equal(j.reserveQuote, p.reserveB.toString());
    assert.equal(j.totalShares, p.totalShares.toString());
    assert.equal(j.spotPrice, ((p.reserveB * E18) / p.reserveA).toString());
    assert.equal(j.cumulativePrice, cum.toString());
    assert.deepEqual(j.volume24h, { base: volA.toString(), quote: volB.toString() });
    assert.deepEqual(j.fees24h, { base: feeA.toString(), quote: feeB.toString() });
    assert.deepEqual(j.prices.map((x) => x.slot), touched.map(String), 'one point per block that touched the pool, oldest first');
    assert.equal(j.prices.at(-1)!.price, j.spotPrice);
    assert.equal(j.lpDenom, lpDenom(id));
    const l = q('list', {}) as { pools: { id: string }[]; more: boolean };
    assert.deepEqual(l.pools.map((x) => x.id), [idHex]);
    assert.equal(l.more, false);
    const expected = amountOut(5000n, p.reserveA, p.reserveB, 30).toString();
    for (const side of ['base', A, encodeURIComponent(A)]) assert.equal(q('quote', { pool: idHex, denomIn: side, amountIn: '5000' }).amountOut, expected, side);
    assert.throws(() => q('quote', { pool: idHex, denomIn: C, amountIn: '5000' }), (e: unknown) => e instanceof QnexusError && e.code === 'AMM_BAD_DENOM');
    assert.throws(() => q('pools', { id: 'xyz' }), (e: unknown) => e instanceof QnexusError && e.code === 'BAD_REQUEST');
    assert.throws(() => q('pools', { id: '0000' + '00'.repeat(6) }), (e: unknown) => e instanceof QnexusError && e.code === 'AMM_UNKNOWN_POOL');
    assert.throws(() => q('pools', { id: '0001' + '00'.repeat(6) }), (e: unknown) => e instanceof QnexusError && e.code === 'AMM_WRONG_SHARD');
  });
});

describe('amm: a swap from another shard', function () {
  this.timeout(60_000);

  it('executes in the pool shard’s batch and pays the output back; a slippage refusal and an abort refund exactly', () => {
    const c = chain({ shards: 2 });
    const on0 = c.keys.find((k) => c.shardOf(k) === 0)!;
    const on1 = c.keys.find((k) => c.shardOf(k) === 1)!;
    const id = create(c, on0);
    const p = c.pool(id);
    const expected = amountOut(50_000n, p.reserveA, p.reserveB, 30);
    const a0 = c.bal(on1, A);
    const b0 = c.bal(on1, B);
    c.ok(on1, ammSwapMsg({ pool: id, denomIn: A, amountIn: 50_000n, minOut: expected, deadline: FAR }));
    assert.equal(c.bal(on1, A), a0 - 50_000n, 'escrowed on the trader’s shard');
    c.sim.settle(20);
    assert.equal(c.bal(on1, B) - b0, expected, 'the output came back');
    const q = c.pool(id);
    assert.equal(q.reserveA, p.reserveA + 50_000n);
    assert.equal(q.reserveB, p.reserveB - expected);
    // Refused at prepare (the quote at the pool's reserves is below minOut): refunded by the engine.
    const a1 = c.bal(on1, A);
    c.ok(on1, ammSwapMsg({ pool: id, denomIn: A, amountIn: 50_000n, minOut: 10n ** 12n, deadline: FAR }));
    c.sim.settle(20);
    assert.equal(c.bal(on1, A), a1, 'refunded exactly');
    assert.equal(c.pool(id).reserveA, q.reserveA, 'the pool did not move');
    // The beacon aborts: refunded.
    const b2 = c.bal(on1, B);
    assert.deepEqual(c.step([c.tx(on1, ammSwapMsg({ pool: id, denomIn: B, amountIn: 50_000n, minOut: 1n, deadline: FAR }))], { abortPrepare: () => true }).skipped, []);
    c.sim.settle(20);
    assert.equal(c.bal(on1, B), b2, 'refunded after the abort');
    // The payout of the output is aborted once: owed, re-sent (by the end of the block that aborts it), paid exactly once.
    const p4 = c.pool(id);
    const out4 = amountOut(20_000n, p4.reserveA, p4.reserveB, 30);
    const b4 = c.bal(on1, B);
    c.step([c.tx(on1, ammSwapMsg({ pool: id, denomIn: A, amountIn: 20_000n, minOut: 1n, deadline: FAR }))]);
    let aborted = 0;
    for (let i = 0; i < 30 && (c.sim.inFlight() > 0 || i < 3); i++) {
      c.step([], { abortPrepare: (x) => x.op === 2 && x.srcShard === 0 && aborted++ === 0 });
    }
    assert.equal(aborted >= 1, true, 'the payout was aborted once');
    assert.equal(c.bal(on1, B) - b4, out4, 'paid exactly once after the retry');
    // The swap's own deadline passes while the prepare is held: refused (AMM_DEADLINE), refunded.
    const a3 = c.bal(on1, A);
    const dl = BigInt(c.sim.slot + 2);
    c.ok(on1, ammSwapMsg({ pool: id, denomIn: A, amountIn: 50_000n, minOut: 1n, deadline: dl }));
    for (let i = 0; i < 3; i++) c.step([], { holdPrepare: () => true });
    c.sim.settle(20);
    assert.equal(c.bal(on1, A), a3, 'refunded after its deadline');
    for (const d of [A, B]) {
      const bk = books(c.state(0), d);
      assert.equal(bk.balance, bk.reserves + bk.queued);
    }
  });
});
