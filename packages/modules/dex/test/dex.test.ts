// The dex on one shard, through the real state machine (blocks, end-of-block batches, invariants
// after every block): the failure codes, Injective's worked example, the uniform price and its
// tie-break, self-trade, post-only, IOC, cancel-before-match, expiry, pause.
import assert from 'node:assert/strict';
import { formatAddress, sha256, toHex, type KeyPair } from '@qnexus/crypto';
import { bank, changesOf, moduleKey } from '@qnexus/state';
import type { TxEnvelope } from '@qnexus/types';
import {
  DEX_ACCOUNT,
  dexBatchCancelMsg,
  dexCancelMsg,
  dexCreateMarketMsg as dexCreate,
  dexOrderId,
  dexPauseMsg,
  dexPlaceMsg,
  dexResumeMsg,
  dexState,
  lockOf,
  type OrderType,
  type Side,
} from '../src/index.js';
import { DEX_ID, K, encodeOrder } from '../src/state.js';
import { BASE, QUOTE, app, mintMsg, world } from './fixtures.js';

const FUND = 1_000_000_000n;

function setup(params: Parameters<typeof world>[0]['params'] = {}, market: Parameters<ReturnType<typeof world>['market']>[1] = {}) {
  const w = world({ chainId: 'qn-dex-unit', shardCount: 1, accounts: 4, params });
  w.must(w.keys.flatMap((k) => [w.tx(k, mintMsg(BASE, FUND)), w.tx(k, mintMsg(QUOTE, FUND))]));
  const id = w.market(w.keys[0]!, market);
  const place = (k: KeyPair, side: Side, price: bigint, quantity: bigint, type: OrderType = 'gtc', goodTilSlot?: bigint) =>
    w.tx(k, dexPlaceMsg({ market: id, side, price, quantity, type, goodTilSlot: goodTilSlot ?? BigInt(w.sim.slot + 1000) }));
  const query = (name: string, args: Record<string, string>) => {
    const m = app.module('dex')!;
    return app.query(w.sim.states[0]!, w.sim.params[0]!, m, m.queries!.find((q) => q.name === name)!, args) as Record<string, unknown>;
  };
  const order = (t: TxEnvelope) => dexState.order(w.sim.states[0]!, dexOrderId(t.hash));
  return { ...w, id, place, query, order };
}

describe('dex: failure codes', () => {
  const w = setup({ maxOrdersPerSide: 2 }, { tickSize: 5n, lotSize: 10n, minNotional: 1000n });
  const [A, B] = w.keys as [KeyPair, KeyPair];
  const slot = () => BigInt(w.sim.slot + 1);
  const bad = new Uint8Array(18);
  bad.set([0, 0, 1, 2, 3]);
  const remote = new Uint8Array(18);
  remote.set([0, 5]);
  const cases: [string, (k: KeyPair) => TxEnvelope, string][] = [
    ['same base and quote', (k) => w.tx(k, { ...marketMsg(BASE, BASE) }), 'DEX_BAD_MARKET'],
    ['zero tick', (k) => w.tx(k, marketMsg(BASE, QUOTE, 0n)), 'DEX_BAD_MARKET'],
    ['bad denom', (k) => w.tx(k, marketMsg('BTC', QUOTE)), 'DEX_BAD_MARKET'],
    ['unknown market', (k) => w.tx(k, dexPlaceMsg({ market: bad, side: 'buy', type: 'gtc', price: 100n, quantity: 100n, goodTilSlot: slot() })), 'DEX_UNKNOWN_MARKET'],
    ['market of a shard that does not exist', (k) => w.tx(k, dexPlaceMsg({ market: remote, side: 'buy', type: 'gtc', price: 100n, quantity: 100n, goodTilSlot: slot(), denom: QUOTE })), 'DEX_UNKNOWN_MARKET'],
    ['off tick', (k) => w.place(k, 'buy', 101n, 100n), 'DEX_OFF_TICK'],
    ['zero price', (k) => w.place(k, 'buy', 0n, 100n), 'DEX_OFF_TICK'],
    ['off lot', (k) => w.place(k, 'buy', 100n, 105n), 'DEX_OFF_LOT'],
    ['below min notional', (k) => w.place(k, 'buy', 50n, 10n), 'DEX_MIN_NOTIONAL'],
    ['good-til in the past', (k) => w.place(k, 'buy', 100n, 100n, 'gtc', 0n + 1n), 'DEX_BAD_EXPIRY'],
    ['good-til too far', (k) => w.place(k, 'buy', 100n, 100n, 'gtc', slot() + 2_592_001n), 'DEX_BAD_EXPIRY'],
    ['overflow', (k) => w.place(k, 'buy', 1n << 40n, 1n << 30n), 'DEX_OVERFLOW'],
    ['wrong lock denom', (k) => w.tx(k, dexPlaceMsg({ market: w.id, side: 'buy', type: 'gtc', price: 100n, quantity: 100n, goodTilSlot: slot(), denom: BASE })), 'DEX_WRONG_DENOM'],
    ['not enough to lock', (k) => w.place(k, 'buy', 1_000_000n, 1_000_000n), 'TX_INSUFFICIENT_FUNDS'],
    ['cancel of an unknown order', (k) => w.tx(k, dexCancelMsg({ market: w.id, orderId: new Uint8Array(32) })), 'DEX_UNKNOWN_ORDER'],
    ['batch cancel naming one order twice', (k) => w.tx(k, dexBatchCancelMsg({ market: w.id, orderIds: [new Uint8Array(32), new Uint8Array(32)] })), 'TX_MALFORMED'],
    ['pause by someone not the admin', (k) => w.tx(k, dexPauseMsg({ market: w.id })), 'DEX_NOT_ADMIN'],
  ];
  function marketMsg(base: string, quote: string, tick = 1n) {
    return { ...dexCreate({ base, quote, tickSize: tick, lotSize: 1n, minNotional: 0n }) };
  }
  for (const [name, make, code] of cases) {
    it(`${name} → ${code}`, () => {
      const skipped = w.step([make(B)]);
      assert.deepEqual(
        skipped.map((s) => s.code),
        [code],
        skipped.map((s) => s.message).join('; '),
      );
    });
  }

  it("cancel of another account's order → DEX_NOT_OWNER", () => {
    const t = w.place(A, 'sell', 1000n, 100n);
    w.must([t]);
    const skipped = w.step([w.tx(B, dexCancelMsg({ market: w.id, orderId: dexOrderId(t.hash) }))]);
    assert.deepEqual(skipped.map((s) => s.code), ['DEX_NOT_OWNER']);
  });

  it('a third open order on a side → DEX_TOO_MANY_ORDERS (maxOrdersPerSide 2)', () => {
    w.must([w.place(B, 'sell', 2000n, 100n)]);
    w.must([w.place(B, 'sell', 2005n, 100n)]);
    const skipped = w.step([w.place(B, 'sell', 2010n, 100n)]);
    assert.deepEqual(skipped.map((s) => s.code), ['DEX_TOO_MANY_ORDERS']);
  });

  it('a paused market refuses orders (DEX_MARKET_PAUSED) until its admin resumes it', () => {
    w.must([w.tx(A, dexPauseMsg({ market: w.id }))]);
    assert.deepEqual(w.step([w.place(B, 'buy', 100n, 100n)]).map((s) => s.code), ['DEX_MARKET_PAUSED']);
    assert.equal((w.query('markets', { id: toHex(w.id) }) as { paused: boolean }).paused, true);
    w.must([w.tx(A, dexResumeMsg({ market: w.id }))]);
    w.must([w.place(B, 'buy', 100n, 100n)]);
  });
});


describe('dex: the batch auction', () => {
  it("Injective's worked example: buy 1000 at 5 with a 0.1 % fee clearing at 4 → debit 4004, refund 1001", () => {
    const w = setup({ takerFeeBps: 10, makerFeeBps: 10 });
    const [, S, Bu] = w.keys as [KeyPair, KeyPair, KeyPair];
    w.must([w.place(S, 'sell', 4n, 1000n)]);
    const q0 = w.bal(Bu, QUOTE);
    const b0 = w.bal(Bu, BASE);
    const s0 = w.bal(S, QUOTE);
    assert.equal(lockOf('buy', 5n, 1000n, 10), 5005n, 'the buy locks 5000 + 5');
    const t = w.place(Bu, 'buy', 5n, 1000n);
    w.must([t]);
    assert.equal(w.bal(Bu, QUOTE), q0 - 4004n, 'debited 4004 in all: 5005 locked, 1001 refunded');
    assert.equal(w.bal(Bu, BASE), b0 + 1000n);
    assert.equal(w.bal(S, QUOTE), s0 + 4000n - 4n, 'the maker gets 4000 less its 0.1 % fee');
    assert.equal(w.order(t), undefined, 'filled orders leave the book');
    assert.deepEqual(dexState.books(w.sim.states[0]!, QUOTE), { locks: 0n, fees: 8n });
    const trades = (w.query('trades', { id: toHex(w.id) }) as { trades: { price: string; quantity: string }[] }).trades;
    assert.deepEqual(trades.map((x) => [x.price, x.quantity]), [['4', '1000']]);
  });

  it('one uniform price for every fill, the midpoint of the max-volume range rounded down to the tick', () => {
    const w = setup({}, { tickSize: 2n });
    const [A, B, C, D] = w.keys as [KeyPair, KeyPair, KeyPair, KeyPair];
    // Resting sells: 10 @ 100 (A), 10 @ 104 (B). New buys: 15 @ 110 (C), 5 @ 96 (D).
    w.must([w.place(A, 'sell', 100n, 10n), w.place(B, 'sell', 104n, 10n)]);
    const base = [C, D, A, B].map((k) => w.bal(k, BASE));
    const quote = [C, D, A, B].map((k) => w.bal(k, QUOTE));
    w.must([w.place(C, 'buy', 110n, 15n), w.place(D, 'buy', 96n, 5n)]);
    // V(100)=10, V(104)=15, V(110)=15: the range is [104, 110], its midpoint 107 → 106 on the tick 2.
    const m = w.query('markets', { id: toHex(w.id) }) as { lastPrice: string };
    assert.equal(m.lastPrice, '106');
    assert.equal(w.bal(C, BASE) - base[0]!, 15n);
    // C (taker, 20 bps): 15 × 106 = 1590 + ⌈3.18⌉ = 4 → 1594.
    assert.equal(quote[0]! - w.bal(C, QUOTE), 1594n);
    // A and B (makers, 10 bps) each sell at 106, not at their own limits.
    assert.equal(w.bal(A, QUOTE) - quote[2]!, 1060n - 2n);
    assert.equal(w.bal(B, QUOTE) - quote[3]!, 530n - 1n);
    assert.equal(w.bal(D, BASE), base[1]!, 'the buy below the price does not fill');
    const book = w.query('book', { id: toHex(w.id) }) as { bids: { price: string; quantity: string }[]; asks: { price: string; quantity: string }[] };
    assert.deepEqual(book.bids, [{ price: '96', quantity: '5', orders: 1 }]);
    assert.deepEqual(book.asks, [{ price: '104', quantity: '5', orders: 1 }]);
  });

  it('ties at one price go by the hash of the order id, never by arrival: both arrival orders give the same state', () => {
    const roots: string[] = [];
    const winners: string[] = [];
    for (const flip of [false, true]) {
      const w = setup();
      const [A, B, C] = w.keys as [KeyPair, KeyPair, KeyPair];
      const ta = w.place(A, 'sell', 50n, 10n);
      const tb = w.place(B, 'sell', 50n, 10n);
      w.must(flip ? [tb, ta] : [ta, tb]);
      w.must([w.place(C, 'buy', 50n, 10n)]);
      const ha = toHex(sha256(dexOrderId(ta.hash)));
      const hb = toHex(sha256(dexOrderId(tb.hash)));
      const expectFilled = ha < hb ? ta : tb;
      const expectRest = ha < hb ? tb : ta;
      assert.equal(w.order(expectFilled), undefined, 'the smaller id hash fills first');
      assert.equal(w.order(expectRest)!.remaining, 10n);
      winners.push(toHex(expectFilled.hash));
      roots.push(toHex(w.sim.states[0]!.root()));
    }
    assert.equal(roots[0], roots[1]);
    assert.equal(winners[0], winners[1]);
  });

  it('self-trade: a new order crossing its owner’s resting order cancels that maker (refunded), and trades with nobody', () => {
    const w = setup();
    const [A, B] = w.keys as [KeyPair, KeyPair];
    const rest = w.place(A, 'sell', 30n, 10n);
    w.must([rest]);
    const b0 = w.bal(A, BASE);
    const q0 = w.bal(A, QUOTE);
    const t = w.place(A, 'buy', 30n, 10n);
    w.must([t]);
    assert.equal(w.order(rest), undefined);
    assert.equal(w.bal(A, BASE), b0 + 10n, 'the maker’s base is back');
    assert.equal(w.order(t)!.remaining, 10n, 'the new buy rests unfilled');
    assert.equal(q0 - w.bal(A, QUOTE), lockOf('buy', 30n, 10n, 20), 'only the new lock left');
    // Another owner still trades against it.
    w.must([w.place(B, 'sell', 30n, 10n)]);
    assert.equal(w.order(t), undefined);
  });

  it('an order that comes to rest gets the taker–maker fee difference back (its lock drops to the maker fee)', () => {
    const w = setup();
    const [A] = w.keys as [KeyPair];
    const q0 = w.bal(A, QUOTE);
    const t = w.place(A, 'buy', 5n, 1000n);
    w.must([t]);
    // Locked 5000 + 20 bps (10) = 5010; resting, it needs 5000 + 10 bps (5) = 5005: 5 come back.
    assert.equal(q0 - w.bal(A, QUOTE), 5005n);
    assert.equal(w.order(t)!.locked, 5005n);
  });

  it('post-only: cancelled (lock returned exactly) when it would cross, rests when it would not', () => {
    const w = setup();
    const [A, B] = w.keys as [KeyPair, KeyPair];
    w.must([w.place(A, 'sell', 40n, 10n)]);
    const q0 = w.bal(B, QUOTE);
    const cross = w.place(B, 'buy', 40n, 10n, 'post-only');
    w.must([cross]);
    assert.equal(w.order(cross), undefined);
    assert.equal(w.bal(B, QUOTE), q0, 'refunded exactly');
    const maker = w.place(B, 'buy', 39n, 10n, 'post-only');
    w.must([maker]);
    assert.equal(w.order(maker)!.remaining, 10n);
  });

  it('IOC: fills what crosses, the remainder is cancelled after the auction and its lock returned', () => {
    const w = setup();
    const [A, B] = w.keys as [KeyPair, KeyPair];
    w.must([w.place(A, 'sell', 10n, 5n)]);
    const q0 = w.bal(B, QUOTE);
    const t = w.place(B, 'buy', 10n, 8n, 'ioc');
    w.must([t]);
    assert.equal(w.order(t), undefined);
    assert.equal(q0 - w.bal(B, QUOTE), 50n + 1n, 'paid 5 × 10 and the taker fee ⌈0.1⌉ only');
    assert.equal(dexState.books(w.sim.states[0]!, QUOTE).locks, 0n);
  });

  it('cancels of a block apply before its batch: a cancelled maker does not trade', () => {
    const w = setup();
    const [A, B] = w.keys as [KeyPair, KeyPair];
    const rest = w.place(A, 'sell', 20n, 10n);
    w.must([rest]);
    const buy = w.place(B, 'buy', 20n, 10n);
    // The buy comes first in the block, the cancel after it: still no trade.
    w.must([buy, w.tx(A, dexCancelMsg({ market: w.id, orderId: dexOrderId(rest.hash) }))]);
    assert.equal(w.order(rest), undefined);
    assert.equal(w.order(buy)!.filled, 0n);
    assert.equal(w.bal(A, BASE), FUND, 'the maker has all its base back');
  });

  it('expiry: an order past its good-til slot is removed at the start of a block and its lock returned', () => {
    const w = setup();
    const [A] = w.keys as [KeyPair];
    const t = w.place(A, 'buy', 7n, 10n, 'gtc', BigInt(w.sim.slot + 2));
    w.must([t]);
    assert.ok(w.order(t));
    w.must([]);
    assert.ok(w.order(t), 'alive through its good-til slot');
    w.must([]);
    assert.equal(w.order(t), undefined);
    assert.equal(w.bal(A, QUOTE), FUND);
    assert.equal(bank.balance(w.sim.states[0]!, DEX_ACCOUNT, QUOTE), 0n);
  });

  it('when both sides are new in the block, both pay the taker fee', () => {
    const w = setup();
    const [A, B] = w.keys as [KeyPair, KeyPair];
    const qa = w.bal(A, QUOTE);
    const qb = w.bal(B, QUOTE);
    w.must([w.place(A, 'sell', 100n, 50n), w.place(B, 'buy', 100n, 50n)]);
    // 5000 at 20 bps = 10 each.
    assert.equal(w.bal(A, QUOTE) - qa, 5000n - 10n);
    assert.equal(qb - w.bal(B, QUOTE), 5000n + 10n);
    assert.equal(dexState.books(w.sim.states[0]!, QUOTE).fees, 20n);
  });

  it('a batch reads at most matchLimit orders a side: a deeper crossing carries over to the next block (backlog)', () => {
    const w = setup({ matchLimit: 2 });
    const [A, B] = w.keys as [KeyPair, KeyPair];
    w.must([w.place(A, 'sell', 10n, 5n), w.place(A, 'sell', 10n, 5n), w.place(A, 'sell', 10n, 5n)]);
    w.must([w.place(B, 'buy', 10n, 5n), w.place(B, 'buy', 10n, 5n), w.place(B, 'buy', 10n, 5n)]);
    assert.equal(dexState.side(w.sim.states[0]!, w.id, 'sell').length, 1);
    assert.equal(dexState.market(w.sim.states[0]!, w.id)!.backlog, true);
    w.must([]);
    assert.equal(dexState.side(w.sim.states[0]!, w.id, 'sell').length, 0);
    assert.equal(dexState.side(w.sim.states[0]!, w.id, 'buy').length, 0);
    assert.equal(dexState.market(w.sim.states[0]!, w.id)!.backlog, false);
    assert.equal(w.bal(B, BASE) - FUND, 15n);
  });

  it('batch cancel returns every lock exactly; the orders query lists what is open', () => {
    const w = setup();
    const [A] = w.keys as [KeyPair];
    const ts = [w.place(A, 'buy', 5n, 3n), w.place(A, 'buy', 6n, 7n), w.place(A, 'sell', 90n, 11n)];
    w.must(ts);
    const open = (w.query('orders', { market: toHex(w.id), address: formatAddress(w.addrOf(A)) }) as { orders: unknown[] }).orders;
    assert.equal(open.length, 3);
    w.must([w.tx(A, dexBatchCancelMsg({ market: w.id, orderIds: ts.map((t) => dexOrderId(t.hash)) }))]);
    assert.equal(w.bal(A, QUOTE), FUND);
    assert.equal(w.bal(A, BASE), FUND);
    assert.deepEqual(dexState.books(w.sim.states[0]!, QUOTE), { locks: 0n, fees: 0n });
  });
});

describe('dex: the invariants follow the block, not the book', () => {
  it("re-check every order of an account the block touches: a corrupted lock breaks the block that touches its owner, and only that one", () => {
    const w = setup();
    const [A, B] = w.keys as [KeyPair, KeyPair];
    const t = w.place(A, 'buy', 5n, 3n);
    w.must([t]);
    // Corrupt A's resting order behind the module's back: one more unit locked than it needs.
    const st = w.sim.states[0]!;
    const id = dexOrderId(t.hash);
    const o = dexState.order(st, id)!;
    st.apply(changesOf(new Map([[toHex(moduleKey(DEX_ID, K.order(id))), encodeOrder({ ...o, locked: o.locked + 1n })]])));
    // A block that does not touch A's books passes (nothing of A changed in it).
    w.must([w.place(B, 'sell', 90n, 11n)]);
    // A block that touches them finds it: the proposer leaves the transaction out (INVARIANT_BROKEN).
    const skipped = w.step([w.place(A, 'buy', 6n, 7n)]);
    assert.deepEqual(skipped.map((x) => x.code), ['INVARIANT_BROKEN']);
    assert.match(skipped[0]!.message, /locks \d+, needs \d+/);
  });
});

describe('dex: client side (the generic `qnexus tx dex <msg> --arg v`)', () => {
  const market = 'ab'.repeat(18);
  const order = 'cd'.repeat(32);
  const hexBytes = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));
  it('builds every message from strings, as the typed builders do', () => {
    const cases: [string, Record<string, string>, ReturnType<typeof dexPlaceMsg>][] = [
      ['dex-create-market', { base: BASE, quote: QUOTE, tickSize: '5', lotSize: '10', minNotional: '100' }, dexCreate({ base: BASE, quote: QUOTE, tickSize: 5n, lotSize: 10n, minNotional: 100n })],
      ['dex-place', { market, side: 'sell', price: '7', quantity: '20', goodTilSlot: '900', type: 'ioc' }, dexPlaceMsg({ market: hexBytes(market), side: 'sell', type: 'ioc', price: 7n, quantity: 20n, goodTilSlot: 900n })],
      ['dex-place', { market, side: 'buy', price: '7', quantity: '20', goodTilSlot: '900', denom: QUOTE }, dexPlaceMsg({ market: hexBytes(market), side: 'buy', type: 'gtc', price: 7n, quantity: 20n, goodTilSlot: 900n, denom: QUOTE })],
      ['dex-cancel', { market, orderId: order }, dexCancelMsg({ market: hexBytes(market), orderId: hexBytes(order) })],
      ['dex-batch-cancel', { market, orderIds: `${order},${'ef'.repeat(32)}` }, dexBatchCancelMsg({ market: hexBytes(market), orderIds: [hexBytes(order), hexBytes('ef'.repeat(32))] })],
      ['dex-pause-market', { market }, dexPauseMsg({ market: hexBytes(market) })],
      ['dex-resume-market', { market }, dexResumeMsg({ market: hexBytes(market) })],
    ];
    for (const [name, args, want] of cases) assert.deepEqual(app.buildMsg('dex', name, args), want, name);
  });

  it('refuses bad arguments with typed codes', () => {
    const code = (name: string, args: Record<string, string>) => {
      try {
        app.buildMsg('dex', name, args);
        return 'none';
      } catch (e) {
        return (e as { code: string }).code;
      }
    };
    assert.equal(code('dex-place', { market, side: 'long', price: '7', quantity: '20', goodTilSlot: '9' }), 'TX_MALFORMED');
    assert.equal(code('dex-place', { market: 'zz', side: 'buy', price: '7', quantity: '20', goodTilSlot: '9' }), 'TX_MALFORMED');
    assert.equal(code('dex-place', { market, side: 'buy', price: '-1', quantity: '20', goodTilSlot: '9' }), 'TX_BAD_AMOUNT');
    assert.equal(code('dex-place', { market, side: 'buy', price: '7', quantity: '0', goodTilSlot: '9' }), 'TX_BAD_AMOUNT');
    assert.equal(code('dex-place', { market, side: 'buy', price: '7', quantity: '1', goodTilSlot: '9', type: 'fok' }), 'TX_MALFORMED');
    assert.equal(code('dex-create-market', { base: BASE, quote: QUOTE, tickSize: '18446744073709551616', lotSize: '1' }), 'TX_BAD_AMOUNT');
    assert.equal(code('dex-batch-cancel', { market, orderIds: '' }), 'TX_MALFORMED');
  });
});
