// An xcall into a module's shared object and the payouts back: the escrowed value lands in the
// module account of the object's shard (XferOpDef.toModule), what the module owes goes back as a
// beacon-coordinated transfer keyed by (xcall, leg), and an aborted payout is owed and re-sent,
// never lost, with the module's books (balance = held + owed) checked at the end of every block.
import assert from 'node:assert/strict';
import { homeShard } from '@qnexus/crypto';
import { QnexusError, Writer, type Reader } from '@qnexus/types';
import { NATIVE_DENOM, bank, moduleAccount, msg, payouts, sendMsg, stateParams, type HostKeepers, type Module } from '@qnexus/state';
import { createApp } from '@qnexus/app';
import { ShardSim } from './sim.js';
import { testModuleChain } from './helpers.js';

const ID = 203;
const HELD = new Uint8Array([0x68]);
const labels = Array.from({ length: 16 }, (_, i) => `x${i}`);
const probe = testModuleChain('qn-xcall-test', { funded: [], shardCount: 2 });
const aliceLabel = labels.find((l) => homeShard(probe.addrOf(probe.key(l)), 2) === 0)!;
const { key, addrOf, G, tx } = testModuleChain('qn-xcall-test', { funded: [aliceLabel], shardCount: 2 });
const alice = key(aliceLabel);
const sim0Params = stateParams(G, 0);

/** `vault`: deposits go to the vault on shard 1, which keeps half and pays the other half back. */
function vault(k: HostKeepers): Module {
  const pay = payouts(k.xfer, ID, 2, 'vault');
  const held = (ctx: { store(id: number): { get(k: Uint8Array): Uint8Array | undefined } }) => {
    const v = ctx.store(ID).get(HELD);
    return v ? new DataView(v.buffer, v.byteOffset).getBigUint64(0) : 0n;
  };
  return {
    name: 'vault',
    id: ID,
    accounts: ['vault'],
    errors: { VAULT_TOO_SMALL: 400 },
    msgs: [
      msg<{ amount: bigint }>({
        type: 1,
        name: 'vault-deposit',
        encode: (w: Writer, p) => void w.u64(p.amount),
        decode: (r: Reader) => ({ amount: r.u64() }),
        json: () => ({}),
        handle: ({ ctx, env }, p) => k.xfer.open(ctx, k.xfer.infoFor(ctx, env, { module: ID, op: 1, denom: NATIVE_DENOM, dstShard: 1, to: moduleAccount('vault'), amount: p.amount }), env.from),
      }),
    ],
    xfers: [
      {
        op: 1,
        name: 'vault-deposit',
        route: 'shard-shard',
        toModule: 'vault',
        prepare: (_ctx, x) => (x.amount < 10n ? 'VAULT_TOO_SMALL' : null),
        settleDestination(ctx, x, commit) {
          if (!commit) return;
          const back = x.amount / 2n;
          ctx.store(ID).set(HELD, new Writer(8).u64(held(ctx) + x.amount - back).finish());
          pay.pay(ctx, x.id, 0, x.from, back, NATIVE_DENOM);
        },
      },
      pay.op,
    ],
    endBlock: (ctx) => pay.retry(ctx, 4),
    invariants(ctx) {
      if (ctx.params.shard !== 1) return;
      const bal = bank.balance(ctx, moduleAccount('vault'));
      if (bal !== held(ctx) + pay.owed(ctx, NATIVE_DENOM)) throw new QnexusError('INVARIANT_BROKEN', `vault balance ${bal} ≠ held + owed`);
    },
  };
}

const deposit = (amount: bigint, nonce: bigint) => tx(alice, (ID << 8) | 1, new Writer(8).u64(amount).finish(), nonce);

describe('state: xcalls into a module account and payouts back', () => {
  it("a user's send to a module account is refused (TX_BAD_RECIPIENT): only the module's own messages move its balance", () => {
    const app = createApp((k) => [vault(k)]);
    const s = app.genesisState(G, 0);
    for (const kind of ['transfer', 'xtransfer'] as const) {
      // The vault's account lives on one shard; either kind is refused before anything is written, whichever it is.
      const m = sendMsg(kind, { to: moduleAccount('vault'), amount: 10n });
      const r = app.executeApplicable(s, [tx(alice, m.kind, m.msg, 0n)], sim0Params, { height: 1, slot: 1, proposer: new Uint8Array(20) });
      assert.deepEqual(r.skipped.map((x) => x.error.code), ['TX_BAD_RECIPIENT'], kind);
    }
  });

  it('a deposit credits the module account on the object shard and half comes back to the sender', () => {
    const sim = new ShardSim({ app: createApp((k) => [vault(k)]), genesis: G });
    const before = bank.balance(sim.states[0]!, addrOf(alice));
    sim.step({ 0: [deposit(1000n, 0n)] });
    sim.settle(20);
    assert.equal(bank.balance(sim.states[1]!, moduleAccount('vault')), 500n);
    assert.equal(bank.balance(sim.states[0]!, addrOf(alice)), before - 1000n - 5n + 500n);
  });

  it('a refused deposit is refunded exactly; an aborted payout is owed, re-sent and delivered once', () => {
    const sim = new ShardSim({ app: createApp((k) => [vault(k)]), genesis: G });
    const before = bank.balance(sim.states[0]!, addrOf(alice));
    sim.step({ 0: [deposit(5n, 0n), deposit(400n, 1n)] });
    let abortedPayouts = 0;
    // The first payout is aborted by the beacon (as if its destination had refused it).
    const o = { abortPrepare: (x: { module: number; op: number }) => x.module === ID && x.op === 2 && abortedPayouts++ === 0 };
    for (let i = 0; i < 30 && sim.inFlight() > 0; i++) sim.step({}, o);
    assert.equal(sim.inFlight(), 0);
    assert.equal(abortedPayouts, 2, 'the re-sent payout was asked again, under a new id');
    assert.equal(bank.balance(sim.states[1]!, moduleAccount('vault')), 200n);
    // 5 came back whole (refused), 200 of 400 came back through the re-sent payout; two fees paid.
    assert.equal(bank.balance(sim.states[0]!, addrOf(alice)), before - 400n + 200n - 10n);
  });
});
