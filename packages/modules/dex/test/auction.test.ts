// The batch auction as a pure function, and the lock/fee arithmetic: uniform price, maximal volume,
// allocation by priority, no crossing left, and locks that always cover the fills exactly.
import assert from 'node:assert/strict';
import { prng } from '../../../state/test/helpers.js';
import { clearBatch, fillFee, lockOf, need, type BatchOrder } from '../src/index.js';

const o = (key: string, price: bigint, qty: bigint): BatchOrder => ({ key, price, qty });
const byPrice = (desc: boolean) => (a: BatchOrder, b: BatchOrder) => (a.price === b.price ? (a.key < b.key ? -1 : 1) : (a.price > b.price) === desc ? -1 : 1);

describe('dex: clearBatch', () => {
  it('nothing crosses → null', () => {
    assert.equal(clearBatch([o('b', 9n, 5n)], [o('s', 10n, 5n)], 1n), null);
    assert.equal(clearBatch([], [o('s', 10n, 5n)], 1n), null);
  });

  it('one price for all fills: the midpoint of the max-volume range, down to the tick', () => {
    const c = clearBatch([o('b1', 12n, 10n), o('b2', 11n, 10n)], [o('s1', 8n, 10n), o('s2', 9n, 5n)], 1n)!;
    // V(8)=10, V(9)=15, V(11)=15, V(12)=10 → [9, 11] → 10.
    assert.equal(c.price, 10n);
    assert.equal(c.volume, 15n);
    assert.deepEqual([...c.fills], [['b1', 10n], ['b2', 5n], ['s1', 10n], ['s2', 5n]]);
  });

  it('the long side fills by priority: the caller’s order (price, then id hash), never arrival', () => {
    const c = clearBatch([o('b', 10n, 5n)], [o('s-a', 10n, 5n), o('s-b', 10n, 5n)], 1n)!;
    assert.deepEqual([...c.fills], [['b', 5n], ['s-a', 5n]]);
  });

  it('random batches: volume is maximal, every fill is within its limit, and what is left does not cross', () => {
    const rnd = prng(7);
    for (let n = 0; n < 400; n++) {
      const tick = BigInt(1 + Math.floor(rnd() * 3));
      const mk = (p: string, i: number) => o(`${p}${i}`, tick * BigInt(1 + Math.floor(rnd() * 20)), BigInt(1 + Math.floor(rnd() * 9)));
      const buys = Array.from({ length: Math.floor(rnd() * 8) }, (_, i) => mk('b', i)).sort(byPrice(true));
      const sells = Array.from({ length: Math.floor(rnd() * 8) }, (_, i) => mk('s', i)).sort(byPrice(false));
      const c = clearBatch(buys, sells, tick);
      // Brute force the best volume over every tick price.
      let best = 0n;
      for (let p = tick; p <= tick * 21n; p += tick) {
        const d = buys.filter((x) => x.price >= p).reduce((t, x) => t + x.qty, 0n);
        const s = sells.filter((x) => x.price <= p).reduce((t, x) => t + x.qty, 0n);
        if ((d < s ? d : s) > best) best = d < s ? d : s;
      }
      if (!c) {
        assert.equal(best, 0n);
        continue;
      }
      assert.equal(c.volume, best);
      assert.equal(c.price % tick, 0n);
      let fb = 0n;
      let fs = 0n;
      for (const x of buys) {
        const f = c.fills.get(x.key) ?? 0n;
        if (f > 0n) assert.ok(x.price >= c.price);
        fb += f;
      }
      for (const x of sells) {
        const f = c.fills.get(x.key) ?? 0n;
        if (f > 0n) assert.ok(x.price <= c.price);
        fs += f;
      }
      assert.equal(fb, c.volume);
      assert.equal(fs, c.volume);
      const leftB = buys.filter((x) => x.qty > (c.fills.get(x.key) ?? 0n)).map((x) => x.price);
      const leftS = sells.filter((x) => x.qty > (c.fills.get(x.key) ?? 0n)).map((x) => x.price);
      if (leftB.length && leftS.length) assert.ok(leftB.reduce((a, b) => (a > b ? a : b)) < leftS.reduce((a, b) => (a < b ? a : b)), 'the rest does not cross');
    }
  });
});

describe('dex: locks and fees', () => {
  it('a buy’s lock covers any sequence of fills at or below its limit (taker fills while new, maker fills once resting), and what is left is exactly need()', () => {
    const rnd = prng(11);
    for (let n = 0; n < 300; n++) {
      const taker = Math.floor(rnd() * 50);
      const maker = Math.floor(rnd() * (taker + 1));
      const price = BigInt(1 + Math.floor(rnd() * 1000));
      const order = { side: 'buy' as const, price, remaining: BigInt(1 + Math.floor(rnd() * 1000)), feeNum: 0n, lockBps: taker };
      let locked = lockOf('buy', price, order.remaining, taker);
      while (order.remaining > 0n) {
        const q = 1n + BigInt(Math.floor(rnd() * Number(order.remaining)));
        const p = price - BigInt(Math.floor(rnd() * Number(price)));
        // Taker fills only while the lock covers the taker fee; once it rests (lockBps = maker), maker fills only.
        const bps = order.lockBps === taker && rnd() < 0.5 ? taker : maker;
        const { feeNum, fee } = fillFee(order.feeNum, q * p, bps);
        order.remaining -= q;
        order.feeNum = feeNum;
        if (rnd() < 0.3) order.lockBps = maker;
        const after = need(order);
        const refund = locked - after - (q * p + fee);
        assert.ok(refund >= 0n, 'the lock covers the fill');
        locked = after;
      }
      assert.equal(locked, 0n);
    }
  });

  it('fees round up, once per order (cumulative), never per fill', () => {
    // Three fills of notional 1 at 20 bps: ⌈0.002⌉ + ⌈0.004⌉ − ⌈0.002⌉ … = 1 in all, not 3.
    let f = { feeNum: 0n, fee: 0n };
    let total = 0n;
    for (let i = 0; i < 3; i++) {
      f = fillFee(f.feeNum, 1n, 20);
      total += f.fee;
    }
    assert.equal(total, 1n);
  });
});
