// Orders into a market of another shard (xcalls): the lock is escrowed on the trader's shard, the
// market's shard validates and reserves at prepare, the order joins the batch at commit, proceeds
// and refunds travel back as beacon-coordinated payouts; an abort or a refusal refunds the escrow
// and releases the reservation; a remote owner cancels with a zero-value xcall.
import assert from 'node:assert/strict';
import { toHex, type KeyPair } from '@qnexus/crypto';
import { xfer } from '@qnexus/state';
import type { XferInfo } from '@qnexus/types';
import { DEX_OP, dexCancelMsg, dexOrderId, dexPlaceMsg, dexState, lockOf, type Side } from '../src/index.js';
import { BASE, QUOTE, mintMsg, world } from './fixtures.js';

const FUND = 1_000_000n;

function setup() {
  const w = world({ chainId: 'qn-dex-xshard', shardCount: 2, accounts: 8 });
  const on = [0, 1].map((s) => w.keys.filter((k) => w.shardOf(k) === s));
  w.must(w.keys.flatMap((k) => [w.tx(k, mintMsg(BASE, FUND)), w.tx(k, mintMsg(QUOTE, FUND))]));
  const maker = on[0]![0]!;
  const trader = on[1]![0]!;
  const id = w.market(maker);
  const place = (k: KeyPair, side: Side, price: bigint, quantity: bigint, denom?: string) =>
    w.tx(k, dexPlaceMsg({ market: id, side, type: 'gtc', price, quantity, goodTilSlot: BigInt(w.sim.slot + 100), denom: denom ?? (side === 'buy' ? QUOTE : BASE) }));
  return { ...w, on, maker, trader, id, place };
}

describe('dex: orders across shards', () => {
  it('a buy from another shard fills; the base and the refund come back as payouts', () => {
    const w = setup();
    w.must([w.place(w.maker, 'sell', 10n, 100n)]);
    const t = w.place(w.trader, 'buy', 12n, 100n);
    w.must([t]);
    const lock = lockOf('buy', 12n, 100n, 20);
    assert.equal(w.bal(w.trader, QUOTE), FUND - lock, 'the lock is escrowed on the trader’s shard');
    w.sim.settle(20);
    assert.equal(dexState.order(w.sim.states[0]!, dexOrderId(t.hash)), undefined, 'filled on the market’s shard');
    // Clearing at 11 (midpoint of [10, 12]); the taker pays 1100 + ⌈2.2⌉ = 1103.
    assert.equal(dexState.market(w.sim.states[0]!, w.id)!.lastPrice, 11n);
    assert.equal(w.bal(w.trader, BASE), FUND + 100n);
    assert.equal(w.bal(w.trader, QUOTE), FUND - 1103n);
    assert.equal(w.bal(w.maker, QUOTE), FUND + 1100n - 2n);
  });

  it('a refused order (wrong lock denom) and an aborted one refund the escrow and leave no reservation', () => {
    const w = setup();
    w.must([w.place(w.trader, 'buy', 12n, 100n, BASE)]); // wrong lock denom: refused at prepare
    w.sim.settle(20);
    const abort = { abortPrepare: (x: XferInfo) => x.op === DEX_OP.place };
    w.must([w.place(w.trader, 'sell', 12n, 100n)], abort);
    w.sim.settle(20, abort);
    assert.equal(w.bal(w.trader, BASE), FUND);
    assert.equal(w.bal(w.trader, QUOTE), FUND);
    assert.equal(dexState.market(w.sim.states[0]!, w.id)!.open, 0);
    assert.deepEqual(dexState.side(w.sim.states[0]!, w.id, 'sell'), []);
  });

  it('a prepare held past the deadline aborts; the trader gets the lock back', () => {
    const w = setup();
    let held = 0;
    const hold = { holdPrepare: () => held++ < 12 };
    w.must([w.place(w.trader, 'sell', 12n, 100n)], hold);
    w.sim.settle(40, hold);
    assert.equal(w.bal(w.trader, BASE), FUND);
    assert.equal(dexState.market(w.sim.states[0]!, w.id)!.open, 0);
  });

  it('a remote owner cancels with a zero-value xcall and gets the lock back as a payout', () => {
    const w = setup();
    const t = w.place(w.trader, 'sell', 50n, 100n);
    w.must([t]);
    w.sim.settle(20);
    const id = dexOrderId(t.hash);
    assert.equal(dexState.order(w.sim.states[0]!, id)!.remaining, 100n);
    assert.equal(w.bal(w.trader, BASE), FUND - 100n);
    // Someone else's remote cancel is refused at prepare; the owner's goes through.
    const other = w.on[1]![1]!;
    w.must([w.tx(other, dexCancelMsg({ market: w.id, orderId: id }))]);
    w.sim.settle(20);
    assert.ok(dexState.order(w.sim.states[0]!, id));
    const c = w.tx(w.trader, dexCancelMsg({ market: w.id, orderId: id }));
    w.must([c]);
    w.sim.settle(20);
    assert.equal(dexState.order(w.sim.states[0]!, id), undefined);
    assert.equal(w.bal(w.trader, BASE), FUND);
    assert.equal(xfer.record(w.sim.states[1]!, toHex(c.hash))!.decision, 'commit');
  });
});
