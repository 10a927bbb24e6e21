// Randomized multi-shard run of the dex (seeded, bounded): traders on three shards place and cancel
// orders on markets of two shards, locally and by xcall, while the simulated beacon aborts some
// transfers and holds others past their deadline. After every block the host has already checked
// every denom's supply identity and the dex's invariants (locks = what open orders need, module
// balance = locks + fees + owed, filled + remaining + cancelled = original, the book not crossed);
// this test checks, from outside, the fills against the batch price, the trade ring, the books per
// shard, that permuting a block's transactions leaves its state root unchanged, and at quiet points
// and at the end that base and quote are conserved across shards (delivered = received, paid =
// received + fees).
import assert from 'node:assert/strict';
import { sha256, toHex, type KeyPair } from '@qnexus/crypto';
import { WorldState, bank } from '@qnexus/state';
import type { TxEnvelope, XferInfo } from '@qnexus/types';
import { prng } from '../../../state/test/helpers.js';
import { DEX_ACCOUNT, dexBatchCancelMsg, dexCancelMsg, dexOrderId, dexPlaceMsg, dexState, type Order, type OrderType, type Side } from '../src/index.js';
import { BASE, QUOTE, app, mintMsg, world } from './fixtures.js';

const SHARDS = 3;
const ACCOUNTS = 12;
const SLOTS = 120;
const FUND = 1_000_000_000n;
const TICK = 2n;
const LOT = 10n;

describe('dex: randomized multi-shard run with aborts and deadlines', function () {
  this.timeout(60_000);

  it('keeps every invariant after every block, and conserves base and quote across shards', () => {
    const rnd = prng(0xd3c5);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const w = world({ chainId: 'qn-dex-prop', shardCount: SHARDS, accounts: ACCOUNTS, params: { retryPerBlock: 16 } });
    const byShard = [0, 1, 2].map((s) => w.keys.filter((k) => w.shardOf(k) === s));
    assert.ok(byShard.every((ks) => ks.length > 0), 'accounts on every shard');
    w.must(w.keys.flatMap((k) => [w.tx(k, mintMsg(BASE, FUND)), w.tx(k, mintMsg(QUOTE, FUND))]));
    const markets = [w.market(byShard[0]![0]!, { tickSize: TICK, lotSize: LOT }), w.market(byShard[1]![0]!, { tickSize: TICK, lotSize: LOT })];
    const home = (m: Uint8Array) => (m[0]! << 8) | m[1]!;
    const placed = new Map<KeyPair, { market: Uint8Array; id: Uint8Array }[]>();

    // Beacon faults: ~8 % of transfers aborted outright; ~8 % held 12 slots (past the 10-slot deadline).
    const firstSeen = new Map<string, number>();
    const faults = {
      abortPrepare: (x: XferInfo) => sha256(x.id)[0]! < 20,
      holdPrepare: (x: XferInfo) => {
        const id = toHex(x.id);
        if (!firstSeen.has(id)) firstSeen.set(id, w.sim.slot);
        return sha256(x.id)[1]! < 20 && w.sim.slot < firstSeen.get(id)! + 12;
      },
    };

    const openOrders = (): Order[] => markets.flatMap((m) => (['buy', 'sell'] as const).flatMap((side) => dexState.side(w.sim.states[home(m)]!, m, side)));

    /** Σ over shards of users' balances, the dex's books and what is owed or in flight must be what was minted. */
    const conserved = () => {
      for (const denom of [BASE, QUOTE]) {
        let users = 0n;
        for (const k of w.keys) users += w.bal(k, denom);
        let books = 0n;
        let held = 0n;
        for (const s of w.sim.states) {
          const b = dexState.books(s, denom);
          books += b.locks + b.fees;
          held += bank.balance(s, DEX_ACCOUNT, denom);
        }
        const g = w.sim.globalSupply(denom);
        assert.equal(g.escrow, 0n, 'nothing in flight');
        // Module balances are exactly the books (owed payouts are 0 once nothing is in flight).
        assert.equal(held, books, `${denom}: module accounts ${held} vs books ${books}`);
        assert.equal(users + held, FUND * BigInt(ACCOUNTS), `${denom}: delivered ≠ received`);
      }
    };

    /** Execute `txs` of one shard in a different (nonce-respecting) interleaving on a copy: same root. */
    const permutationHolds = (shard: number, txs: TxEnvelope[]) => {
      const groups = new Map<string, TxEnvelope[]>();
      for (const t of txs) groups.set(toHex(t.from), [...(groups.get(toHex(t.from)) ?? []), t]);
      if (groups.size < 2) return;
      const queues = [...groups.values()].map((g) => [...g]);
      const shuffled: TxEnvelope[] = [];
      while (queues.some((q) => q.length)) {
        const q = pick(queues.filter((x) => x.length));
        shuffled.push(q.shift()!);
      }
      const block = { height: w.sim.heights[shard]! + 1, slot: w.sim.slot + 1, proposer: new Uint8Array(20) };
      const root = (order: TxEnvelope[]) => {
        const copy = WorldState.fromEntries([...w.sim.states[shard]!.kv.all()]);
        return toHex(app.executeApplicable(copy, order, w.sim.params[shard]!, block).exec.stateRoot);
      };
      assert.equal(root(shuffled), root(txs), `shard ${shard}: permuting the block's transactions changed its state root`);
    };

    let fills = 0;
    let remote = 0;
    for (let slot = 0; slot < SLOTS; slot++) {
      const quiet = slot % 30 === 29;
      const txs: TxEnvelope[] = [];
      if (!quiet) {
        for (const k of w.keys) {
          if (rnd() < 0.45) continue;
          const mine = placed.get(k) ?? [];
          const r = rnd();
          if (r < 0.75 || mine.length === 0) {
            const market = pick(markets);
            const side: Side = rnd() < 0.5 ? 'buy' : 'sell';
            const type: OrderType = pick(['gtc', 'gtc', 'gtc', 'gtc', 'post-only', 'ioc']);
            const price = TICK * BigInt(45 + Math.floor(rnd() * 11));
            const quantity = LOT * BigInt(1 + Math.floor(rnd() * 5));
            const goodTilSlot = BigInt(w.sim.slot + 2 + Math.floor(rnd() * 30));
            const t = w.tx(k, dexPlaceMsg({ market, side, type, price, quantity, goodTilSlot, denom: side === 'buy' ? QUOTE : BASE }));
            if (home(market) !== w.shardOf(k)) remote++;
            mine.push({ market, id: dexOrderId(t.hash) });
            placed.set(k, mine);
            txs.push(t);
          } else if (r < 0.92) {
            const o = pick(mine);
            txs.push(w.tx(k, dexCancelMsg({ market: o.market, orderId: o.id })));
          } else {
            const market = pick(markets);
            const ids = mine.filter((o) => toHex(o.market) === toHex(market)).slice(-3).map((o) => o.id);
            if (ids.length) txs.push(w.tx(k, dexBatchCancelMsg({ market, orderIds: ids })));
          }
        }
      }
      if (slot % 10 === 0) for (let s = 0; s < SHARDS; s++) permutationHolds(s, txs.filter((t) => w.shardOf(w.keys.find((k) => toHex(w.addrOf(k)) === toHex(t.from))!) === s));

      const before = new Map(openOrders().map((o) => [toHex(o.id), o]));
      const heightsBefore = [...w.sim.heights];
      // Skipped transactions are expected (a cancel of an order already filled or expired): the
      // block is valid either way and the invariants hold.
      w.step(txs, faults);

      for (const m of markets) {
        const s = w.sim.states[home(m)]!;
        const mk = dexState.market(s, m)!;
        const bids = dexState.side(s, m, 'buy', 1);
        const asks = dexState.side(s, m, 'sell', 1);
        if (bids[0] && asks[0] && !mk.backlog) assert.ok(bids[0].price < asks[0].price, 'the book is not crossed after the batch');
        const height = BigInt(w.sim.heights[home(m)]!);
        const traded = mk.tradeSeq > 0n && (() => {
          const trades = (app.query(s, w.sim.params[home(m)]!, app.module('dex')!, app.module('dex')!.queries!.find((q) => q.name === 'trades')!, { id: toHex(m) }) as { trades: { price: string; height: string }[] }).trades;
          return trades[0]!.height === height.toString();
        })();
        if (traded) {
          fills++;
          assert.equal(mk.lastPrice % TICK, 0n, 'the batch price is on the tick');
        }
        for (const side of ['buy', 'sell'] as const) {
          for (const o of dexState.side(s, m, side)) {
            const prev = before.get(toHex(o.id));
            const filledNow = o.filled - (prev?.filled ?? 0n);
            assert.equal(o.filled + o.remaining + o.cancelled, o.original);
            if (filledNow > 0n) {
              assert.ok(traded, 'a fill only in a block with a batch trade');
              // Every fill at the batch price, inside the order's limit.
              if (side === 'buy') assert.ok(o.price >= mk.lastPrice, `buy limit ${o.price} < p* ${mk.lastPrice}`);
              else assert.ok(o.price <= mk.lastPrice, `sell limit ${o.price} > p* ${mk.lastPrice}`);
            }
          }
        }
      }
      assert.ok(w.sim.heights.every((h, i) => h === heightsBefore[i]! + 1));
      if (quiet) {
        w.sim.settle(200, faults);
        conserved();
      }
    }

    // Wind down: every owner cancels what is left, then nothing is locked anywhere.
    for (const round of [0, 1]) {
      const txs: TxEnvelope[] = [];
      const left = openOrders();
      for (const k of w.keys) {
        for (const m of markets) {
          const ids = left.filter((o) => toHex(o.owner) === toHex(w.addrOf(k)) && toHex(o.market) === toHex(m)).map((o) => o.id);
          if (ids.length) txs.push(w.tx(k, dexBatchCancelMsg({ market: m, orderIds: ids.slice(0, 100) })));
        }
      }
      w.step(txs, round === 0 ? faults : {});
      w.sim.settle(200, round === 0 ? faults : {});
    }
    assert.deepEqual(openOrders(), []);
    for (const s of w.sim.states) for (const d of [BASE, QUOTE]) assert.equal(dexState.books(s, d).locks, 0n);
    conserved();
    assert.ok(fills > 10, `the run traded (${fills} batches with fills)`);
    assert.ok(remote > 50, `the run placed orders across shards (${remote})`);
  });
});
