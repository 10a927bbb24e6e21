// The faucet: every limit (cooldown, lifetime cap, per block, per epoch, empty) refused with its
// code on the faucet's shard; feeless requests from keys holding nothing; requests from another
// shard as zero-value xcalls that reserve at prepare and release on abort; racing requests; and
// a randomized two-shard run in which the limits are never exceeded and the coins all land.
import assert from 'node:assert/strict';
import { formatAddress, homeShard, type KeyPair } from '@qnexus/crypto';
import { QnexusError, type TxEnvelope, type XferInfo } from '@qnexus/types';
import { NATIVE_DENOM, WorldState, bank, moduleAccount } from '@qnexus/state';
import { FAUCET_ID, FAUCET_OP, faucetDripMsg, faucetShard, faucetState } from '@qnexus/module-faucet';
import { tokenBurnMsg } from '@qnexus/module-token';
import { ShardSim } from '../../../state/test/sim.js';
import { prng } from '../../../state/test/helpers.js';
import { app, chain, labelsByShard, runBlock } from '../../token/test/chain.js';

const FACCOUNT = moduleAccount('faucet');
const params = { drip: '100', cooldown: '5', cap: '300', perBlock: 3, epochBps: 1000 };

/** A one-shard chain whose faucet holds `balance`; requests come from fresh keys (fee 0, nonce 0). */
function oneShard(balance: bigint, o: { epochBps?: number } = {}) {
  const c = chain('qn-faucet-1', { shardCount: 1, funded: ['rich'], faucetBalance: balance, modules: [{ name: 'faucet', id: FAUCET_ID, genesis: { ...params, epochBps: o.epochBps ?? params.epochBps } }] });
  const s = app.genesisState(c.G, 0);
  let slot = 0;
  let fresh = 0;
  const P = c.P[0]!;
  const drip = (to: Uint8Array): TxEnvelope => c.tx(c.key(`req-${fresh++}`), faucetDripMsg({ to }), 0n, 0n);
  /** One block at the next slot (or `at`); the skipped codes in order. */
  const block = (txs: TxEnvelope[], at?: number) => {
    slot = at ?? slot + 1;
    return runBlock(s, txs, P, { height: slot, slot, proposer: c.proposer }).skipped;
  };
  const to = (i: number) => c.addrOf(c.key(`to-${i}`));
  const q = (name: string, args: Record<string, string> = {}) => {
    const m = app.module('faucet')!;
    return app.query(s, P, m, m.queries!.find((x) => x.name === name)!, args) as Record<string, unknown>;
  };
  return { c, s, P, drip, block, to, q, slot: () => slot };
}

describe('faucet: on its own shard', () => {
  it('pays a drip to a fresh address from a key that holds nothing (fee 0), out of the module account', () => {
    const f = oneShard(10_000n);
    assert.deepEqual(f.block([f.drip(f.to(0))]), []);
    assert.equal(bank.balance(f.s, f.to(0)), 100n);
    assert.equal(bank.balance(f.s, FACCOUNT), 9_900n);
    // Fee 0 is for the drip only: any other message at fee 0 is refused.
    const other = f.c.tx(f.c.key('req-x'), tokenBurnMsg({ denom: 'token/0011223344556677', amount: 1n }), 0n, 0n);
    assert.deepEqual(f.block([other]), ['TX_FEE_TOO_LOW']);
  });

  it('refuses a drip inside the cooldown, and pays again once it is over', () => {
    const f = oneShard(10_000n);
    assert.deepEqual(f.block([f.drip(f.to(0))], 10), []);
    assert.deepEqual(f.block([f.drip(f.to(0))], 14), ['FAUCET_COOLDOWN']);
    assert.deepEqual(f.block([f.drip(f.to(0))], 15), []);
    assert.equal(bank.balance(f.s, f.to(0)), 200n);
  });

  it('refuses past the lifetime cap per address', () => {
    const f = oneShard(100_000n);
    for (const at of [1, 6, 11]) assert.deepEqual(f.block([f.drip(f.to(0))], at), []);
    assert.deepEqual(f.block([f.drip(f.to(0))], 16), ['FAUCET_CAP']);
    assert.equal(faucetState.address(f.s.store(FAUCET_ID), f.to(0))!.total, 300n);
  });

  it('takes at most perBlock drips per block', () => {
    const f = oneShard(100_000n);
    assert.deepEqual(f.block([0, 1, 2, 3].map((i) => f.drip(f.to(i)))), ['FAUCET_BLOCK_LIMIT']);
    assert.equal(bank.balance(f.s, f.to(3)), 0n);
    assert.deepEqual(f.block([f.drip(f.to(3))]), []);
  });

  it("refuses past the epoch's budget (epochBps of the available balance), and a new epoch has a new budget", () => {
    // 10 % of 10,000 = 1,000 = ten drips per epoch (16 slots).
    const f = oneShard(10_000n);
    const codes: string[] = [];
    let i = 0;
    for (const at of [1, 2, 3, 4]) codes.push(...f.block([0, 1, 2].map(() => f.drip(f.to(i++))), at));
    assert.deepEqual(codes, ['FAUCET_EPOCH_BUDGET', 'FAUCET_EPOCH_BUDGET']);
    const ep = faucetState.epoch(f.s.store(FAUCET_ID))!;
    assert.deepEqual(ep, { epoch: 0n, budget: 1_000n, spent: 1_000n });
    // Epoch 1 (slot 16): 10 % of the 9,000 left.
    assert.deepEqual(f.block([f.drip(f.to(100))], 16), []);
    assert.deepEqual(faucetState.epoch(f.s.store(FAUCET_ID)), { epoch: 1n, budget: 900n, spent: 100n });
  });

  it('refuses when the faucet holds less than a drip', () => {
    const f = oneShard(150n, { epochBps: 10_000 });
    assert.deepEqual(f.block([f.drip(f.to(0))]), []);
    assert.deepEqual(f.block([f.drip(f.to(1))]), ['FAUCET_EMPTY']);
  });

  it('refuses the zero address and the faucet itself as recipients', () => {
    const f = oneShard(10_000n);
    assert.deepEqual(f.block([f.drip(new Uint8Array(20)), f.drip(FACCOUNT)]), ['TX_BAD_RECIPIENT', 'TX_BAD_RECIPIENT']);
  });

  it('answers status and address queries', () => {
    const f = oneShard(10_000n);
    f.block([f.drip(f.to(0))], 3);
    const st = f.q('status');
    assert.equal(st.shard, 0);
    assert.equal(st.balance, '9900');
    assert.equal(st.available, '9900');
    assert.equal(st.drip, '100');
    assert.deepEqual(st.epoch, { epoch: 0, budget: '1000', spent: '100', left: '900' });
    const a = f.q('address', { address: formatAddress(f.to(0)) });
    assert.deepEqual(a, { address: formatAddress(f.to(0)), shard: 0, lastDripSlot: 3, totalReceived: '100', nextAllowedSlot: 8, capLeft: '200' });
    assert.throws(() => f.q('address', { address: 'qn00' }), (e: unknown) => e instanceof QnexusError && e.code === 'BAD_REQUEST');
  });

  it('parses its genesis section strictly', () => {
    const c = chain('qn-faucet-g', { shardCount: 1, funded: [] });
    const m = app.module('faucet')!;
    const parse = (g: unknown) => () => app.moduleGenesis({ ...c.G, modules: [{ name: 'faucet', id: FAUCET_ID, genesis: g }] }, m);
    assert.deepEqual(parse({})(), { drip: 10_000_000n, cooldown: 3_600n, cap: 100_000_000n, perBlock: 8, epochBps: 100 });
    for (const bad of [{ drip: '0' }, { cap: '1', drip: '2' }, { perBlock: 0 }, { epochBps: 10_001 }, { extra: 1 }, { drip: '-1' }, []]) {
      assert.throws(parse(bad), (e: unknown) => e instanceof QnexusError && e.code === 'BAD_GENESIS', JSON.stringify(bad));
    }
  });
});

// ------------------------------------------------------------------ two shards

const CHAIN2 = 'qn-faucet-2';
const F = faucetShard(2);
const S = 1 - F;
const [REQ0, REQ1] = labelsByShard(CHAIN2, 2, 120, 'req') as [string[], string[]];
const TO = labelsByShard(CHAIN2, 2, 12, 'to') as [string[], string[]];
const c2 = chain(CHAIN2, { shardCount: 2, funded: [], faucetBalance: 1_000_000n, modules: [{ name: 'faucet', id: FAUCET_ID, genesis: params }] });
const reqKeys: KeyPair[][] = [REQ0.map(c2.key), REQ1.map(c2.key)];
const toAddr = (shard: number, i: number) => c2.addrOf(c2.key(TO[shard]![i]!));

describe('faucet: across shards', () => {
  let used = [0, 0];
  beforeEach(() => (used = [0, 0]));
  /** A drip request submitted on `shard` by a fresh key of that shard. */
  const req = (shard: number, to: Uint8Array): TxEnvelope => c2.tx(reqKeys[shard]![used[shard]!++]!, faucetDripMsg({ to }), 0n, 0n);

  it('the faucet lives on the home shard of its module account', () => {
    assert.equal(F, homeShard(FACCOUNT, 2));
  });

  it('a request on another shard is a zero-value xcall: F reserves at prepare, pays at commit through a payout', () => {
    const sim = new ShardSim({ app, genesis: c2.G });
    const to = toAddr(S, 0);
    const r = sim.step({ [S]: [req(S, to)] });
    assert.deepEqual(r.skipped, []);
    // The source cooldown refuses a second request for the same address at once.
    const r2 = sim.step({ [S]: [req(S, to)] });
    assert.deepEqual(r2.skipped.map((x) => x.code), ['FAUCET_COOLDOWN']);
    // F has prepared (reserved) by now.
    assert.equal(faucetState.address(sim.states[F]!.store(FAUCET_ID), to)!.total, 100n);
    sim.settle(30);
    assert.equal(bank.balance(sim.states[S]!, to), 100n);
    assert.equal(bank.balance(sim.states[F]!, FACCOUNT), 1_000_000n - 100n);
    assert.equal(faucetState.reserved(sim.states[F]!.store(FAUCET_ID)), 0n);
    // A request on F for an address of S is paid by a payout directly (and F's cooldown holds).
    sim.step({ [F]: [req(F, toAddr(S, 1)), req(F, to)] });
    sim.settle(30);
    assert.equal(bank.balance(sim.states[S]!, toAddr(S, 1)), 100n);
    assert.equal(bank.balance(sim.states[S]!, to), 100n, 'F refused the second drip to the same address (cooldown)');
  });

  it('two requests racing from both shards for one address: exactly one drip', () => {
    const sim = new ShardSim({ app, genesis: c2.G });
    const to = toAddr(F, 0);
    sim.step({ [S]: [req(S, to)], [F]: [req(F, to)] });
    sim.settle(30);
    assert.equal(bank.balance(sim.states[F]!, to), 100n);
    assert.equal(faucetState.address(sim.states[F]!.store(FAUCET_ID), to)!.total, 100n);
  });

  it('an abort after an accepted prepare releases the reservation, and the source forgets its cooldown', () => {
    const s = [0, 1].map((k) => app.genesisState(c2.G, k)) as WorldState[];
    const to = toAddr(S, 2);
    const blk = (k: number, txs: TxEnvelope[], slot: number) => runBlock(s[k]!, txs, c2.P[k]!, { height: slot, slot, proposer: c2.proposer });
    const r = blk(S, [req(S, to)], 1);
    assert.deepEqual(r.skipped, []);
    const x: XferInfo = r.xfers[0]!.info;
    assert.equal(x.module, FAUCET_ID);
    assert.equal(x.op, FAUCET_OP.drip);
    assert.equal(x.amount, 0n);
    const fs = () => s[F]!.store(FAUCET_ID);
    const p = blk(F, [c2.prepare(x)], 2);
    assert.equal(p.xfers[0]!.prepare, 'accepted');
    assert.equal(faucetState.reserved(fs()), 100n);
    assert.equal(faucetState.epoch(fs())!.spent, 100n);
    blk(F, [c2.decision(x, false)], 3);
    blk(S, [c2.decision(x, false)], 3);
    assert.equal(faucetState.reserved(fs()), 0n);
    assert.equal(faucetState.address(fs(), to), undefined);
    assert.equal(faucetState.epoch(fs())!.spent, 0n);
    assert.equal(faucetState.lastRequest(s[S]!.store(FAUCET_ID), to), undefined);
    assert.equal(bank.balance(s[F]!, FACCOUNT), 1_000_000n);
    // ...so the address may ask again at once, and this time it is paid.
    const again = blk(S, [req(S, to)], 4);
    assert.deepEqual(again.skipped, []);
  });

  it('F refuses at prepare when a limit is reached there (the source refunds nothing: the xcall carries no value)', () => {
    const s = [0, 1].map((k) => app.genesisState(c2.G, k)) as WorldState[];
    const to = toAddr(S, 3);
    const blk = (k: number, txs: TxEnvelope[], slot: number) => runBlock(s[k]!, txs, c2.P[k]!, { height: slot, slot, proposer: c2.proposer });
    // F pays `to` directly first (a request on F), then a request from S for the same address is refused at prepare.
    assert.deepEqual(blk(F, [req(F, to)], 1).skipped, []);
    const x = blk(S, [req(S, to)], 1).xfers[0]!.info;
    const p = blk(F, [c2.prepare(x)], 2);
    assert.equal(p.xfers[0]!.prepare, 'refused');
    assert.equal(p.xfers[0]!.reason, 'FAUCET_COOLDOWN');
  });

  it('randomized: requests from both shards with aborts and held prepares; limits hold after every block and every granted coin lands', () => {
    const sim = new ShardSim({ app, genesis: c2.G });
    const rnd = prng(5);
    const targets = [...TO[0]!.map((_, i) => toAddr(0, i)), ...TO[1]!.map((_, i) => toAddr(1, i))];
    const refused = new Map<string, number>();
    for (let slot = 0; slot < 40; slot++) {
      const txs: Record<number, TxEnvelope[]> = { 0: [], 1: [] };
      const n = Math.floor(rnd() * 6);
      for (let j = 0; j < n; j++) {
        const k = rnd() < 0.5 ? 0 : 1;
        if (used[k]! >= reqKeys[k]!.length) continue;
        txs[k]!.push(req(k, targets[Math.floor(rnd() * targets.length)]!));
      }
      const r = sim.step(txs, { abortPrepare: (x) => x.op === FAUCET_OP.drip && rnd() < 0.15, holdPrepare: () => rnd() < 0.2 });
      for (const sk of r.skipped) refused.set(sk.code, (refused.get(sk.code) ?? 0) + 1);
      const fs = sim.states[F]!.store(FAUCET_ID);
      for (const t of targets) assert.ok((faucetState.address(fs, t)?.total ?? 0n) <= 300n);
      const ep = faucetState.epoch(fs);
      if (ep) assert.ok(ep.spent <= ep.budget);
    }
    sim.settle(60);
    for (const code of refused.keys()) assert.ok(['FAUCET_COOLDOWN', 'FAUCET_BLOCK_LIMIT', 'FAUCET_CAP', 'FAUCET_EPOCH_BUDGET'].includes(code), code);
    assert.ok((refused.get('FAUCET_COOLDOWN') ?? 0) > 0);
    const fs = sim.states[F]!.store(FAUCET_ID);
    assert.equal(faucetState.reserved(fs), 0n, 'no reservation left once everything settled');
    // Every coin the faucet granted is in a target's balance (nothing in flight, nothing owed).
    const granted = targets.reduce((a, t) => a + (faucetState.address(fs, t)?.total ?? 0n), 0n);
    const received = targets.reduce((a, t) => a + bank.balance(sim.states[homeShard(t, 2)]!, t), 0n);
    assert.ok(granted > 0n);
    assert.equal(received, granted);
    assert.equal(bank.balance(sim.states[F]!, FACCOUNT), 1_000_000n - granted);
    const g = sim.globalSupply(NATIVE_DENOM);
    assert.equal(g.escrow, 0n);
  });
});
