// The token module: create, mint, burn and the failure codes of each on one shard; mints and sends
// across shards (payouts to another shard, aborted and re-sent) over the multi-shard simulator; and
// a randomized run in which every denom's supply identity holds and no token passes its max supply.
import assert from 'node:assert/strict';
import { formatAddress, toHex } from '@qnexus/crypto';
import { QnexusError, type TxEnvelope } from '@qnexus/types';
import { WorldState, bank, moduleAccount, queryProofKeys, runProven, sendMsg } from '@qnexus/state';
import { TOKEN_ID, TOKEN_OP, tokenBurnMsg, tokenCreateMsg, tokenDenom, tokenIdFor, tokenIdOf, tokenMintMsg, tokens } from '@qnexus/module-token';
import { ShardSim } from '../../../state/test/sim.js';
import { prng } from '../../../state/test/helpers.js';
import { app, chain, labelsByShard, runBlock } from './chain.js';

const CHAIN = 'qn-token-test';
const [L0, L1] = labelsByShard(CHAIN, 2, 6) as [string[], string[]];
const c = chain(CHAIN, { shardCount: 2, funded: [...L0, ...L1], modules: [{ name: 'token', id: TOKEN_ID, genesis: { createFee: '1000' } }] });
const [alice, bob, carol] = L0.map(c.key) as [ReturnType<typeof c.key>, ReturnType<typeof c.key>, ReturnType<typeof c.key>];
const dave = c.key(L1[0]!);
const P0 = c.P[0]!;
const store = (s: WorldState) => s.store(TOKEN_ID);

/** A shard-0 state and a block runner over it with consecutive slots; nonces come from the state. */
function shard0() {
  const s = app.genesisState(c.G, 0);
  let height = 0;
  const send = (from: typeof alice, m: Parameters<typeof c.tx>[1]): TxEnvelope => c.tx(from, m, bank.nonce(s, c.addrOf(from)));
  const block = (txs: TxEnvelope[]) => {
    height++;
    return runBlock(s, txs, P0, { height, slot: height, proposer: c.proposer });
  };
  /** Run one transaction in its own block; returns the code it failed with, or null. */
  const one = (from: typeof alice, m: Parameters<typeof c.tx>[1]): string | null => block([send(from, m)]).skipped[0] ?? null;
  return { s, one, block, send };
}

const create = (o: Partial<{ symbol: string; decimals: number; maxSupply: bigint; mintAuthority: Uint8Array }> = {}) =>
  tokenCreateMsg({ symbol: o.symbol ?? 'GOLD', decimals: o.decimals ?? 6, maxSupply: o.maxSupply ?? 1_000_000n, mintAuthority: o.mintAuthority ?? c.addrOf(alice) });

describe('token: create, mint, burn on one shard', () => {
  it('creates a token whose id carries its home shard, keeps the creation fee, and stores its metadata', () => {
    const { s, one } = shard0();
    const before = bank.balance(s, c.addrOf(alice));
    assert.equal(one(alice, create()), null);
    const id = tokenIdFor(0, c.addrOf(alice), 0n);
    assert.match(id, /^00[0-9a-f]{14}$/);
    assert.equal(tokenIdOf(tokenDenom(id)), id);
    const m = tokens.meta(store(s), id)!;
    assert.equal(m.symbol, 'GOLD');
    assert.equal(m.decimals, 6);
    assert.equal(m.maxSupply, 1_000_000n);
    assert.equal(m.minted, 0n);
    assert.equal(formatAddress(m.creator), formatAddress(c.addrOf(alice)));
    // fee 5 + creation fee 1000, which the module account keeps
    assert.equal(bank.balance(s, c.addrOf(alice)), before - 5n - 1000n);
    assert.equal(bank.balance(s, moduleAccount('token')), 1000n);
    // A second token by the same creator (next nonce) gets another id.
    assert.equal(one(alice, create({ symbol: 'SILVER' })), null);
    assert.ok(tokens.meta(store(s), tokenIdFor(0, c.addrOf(alice), 1n)));
  });

  it('refuses bad parameters with their codes, and writes nothing', () => {
    const { s, one } = shard0();
    const cases: [Parameters<typeof create>[0], string][] = [
      [{ symbol: 'gold' }, 'TOKEN_BAD_PARAMS'],
      [{ symbol: '' }, 'TOKEN_BAD_PARAMS'],
      [{ symbol: 'A'.repeat(17) }, 'TX_MALFORMED'], // over the codec's bound: refused at decode
      [{ symbol: 'GO-LD' }, 'TOKEN_BAD_PARAMS'],
      [{ decimals: 19 }, 'TOKEN_BAD_PARAMS'],
      [{ maxSupply: 0n }, 'TX_BAD_AMOUNT'],
      [{ mintAuthority: c.addrOf(dave) }, 'TOKEN_AUTHORITY_WRONG_SHARD'],
    ];
    for (const [o, code] of cases) assert.equal(one(alice, create(o)), code, JSON.stringify(o, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
    // Only the empty blocks' hooks ran: no token exists.
    assert.equal(tokens.list(store(s), 10).length, 0);
  });

  it('mints by the authority only, on the home shard only, never above max supply', () => {
    const { s, one } = shard0();
    one(alice, create({ maxSupply: 1000n, mintAuthority: c.addrOf(bob) }));
    const denom = tokenDenom(tokenIdFor(0, c.addrOf(alice), 0n));
    const mint = (to: Uint8Array, amount: bigint, d = denom) => tokenMintMsg({ denom: d, to, amount });
    assert.equal(one(alice, mint(c.addrOf(carol), 10n)), 'TOKEN_NOT_AUTHORITY');
    assert.equal(one(bob, mint(c.addrOf(carol), 0n)), 'TX_BAD_AMOUNT');
    assert.equal(one(bob, mint(c.addrOf(carol), 10n, 'token/xyz')), 'TOKEN_BAD_DENOM');
    assert.equal(one(bob, mint(c.addrOf(carol), 10n, 'token/0011223344556677')), 'TOKEN_UNKNOWN');
    assert.equal(one(bob, mint(c.addrOf(carol), 10n, 'token/0111223344556677')), 'TOKEN_WRONG_SHARD');
    assert.equal(one(bob, mint(c.addrOf(carol), 600n)), null);
    assert.equal(one(bob, mint(c.addrOf(carol), 401n)), 'TOKEN_MAX_SUPPLY');
    assert.equal(one(bob, mint(c.addrOf(bob), 400n)), null);
    assert.equal(one(bob, mint(c.addrOf(bob), 1n)), 'TOKEN_MAX_SUPPLY');
    assert.equal(bank.balance(s, c.addrOf(carol), denom), 600n);
    assert.equal(bank.balance(s, c.addrOf(bob), denom), 400n);
    assert.deepEqual(bank.supply(s, denom), { genesis: 0n, minted: 1000n, burned: 0n });
    assert.equal(tokens.meta(store(s), tokenIdOf(denom)!)!.minted, 1000n);
  });

  it('burns from any holder, records it, and refuses what the holder does not have', () => {
    const { s, one } = shard0();
    one(alice, create());
    const denom = tokenDenom(tokenIdFor(0, c.addrOf(alice), 0n));
    one(alice, tokenMintMsg({ denom, to: c.addrOf(carol), amount: 500n }));
    assert.equal(one(carol, tokenBurnMsg({ denom, amount: 0n })), 'TX_BAD_AMOUNT');
    assert.equal(one(carol, tokenBurnMsg({ denom, amount: 501n })), 'TX_INSUFFICIENT_FUNDS');
    assert.equal(one(carol, tokenBurnMsg({ denom: 'token/0011223344556677', amount: 1n })), 'TOKEN_UNKNOWN');
    assert.equal(one(carol, tokenBurnMsg({ denom, amount: 200n })), null);
    assert.equal(bank.balance(s, c.addrOf(carol), denom), 300n);
    assert.deepEqual(bank.supply(s, denom), { genesis: 0n, minted: 500n, burned: 200n });
    assert.equal(tokens.burned(store(s), tokenIdOf(denom)!), 200n);
    // Burning does not give back mint room: max supply caps what is ever minted.
    assert.equal(tokens.meta(store(s), tokenIdOf(denom)!)!.minted, 500n);
  });

  it('sends with the bank on one shard (--denom token/…)', () => {
    const { s, one } = shard0();
    one(alice, create());
    const denom = tokenDenom(tokenIdFor(0, c.addrOf(alice), 0n));
    one(alice, tokenMintMsg({ denom, to: c.addrOf(alice), amount: 100n }));
    assert.equal(one(alice, sendMsg('transfer', { to: c.addrOf(bob), amount: 30n, denom })), null);
    assert.equal(one(alice, sendMsg('transfer', { to: c.addrOf(bob), amount: 71n, denom })), 'TX_INSUFFICIENT_FUNDS');
    assert.equal(bank.balance(s, c.addrOf(bob), denom), 30n);
  });

  it('answers info, list and list-after queries, and refuses bad ids', () => {
    const { s, one } = shard0();
    for (let i = 0; i < 3; i++) one(alice, create({ symbol: `T${i}` }));
    const mod = app.module('token')!;
    const q = (name: string, params: Record<string, string> = {}) => app.query(s, P0, mod, mod.queries!.find((x) => x.name === name)!, params) as Record<string, unknown>;
    const ids = [0n, 1n, 2n].map((n) => tokenIdFor(0, c.addrOf(alice), n)).sort();
    const list = q('list') as { tokens: { id: string }[]; next: string | null };
    assert.deepEqual(list.tokens.map((t) => t.id), ids);
    assert.equal(list.next, null);
    assert.deepEqual((q('list-after', { after: ids[0]! }) as { tokens: { id: string }[] }).tokens.map((t) => t.id), ids.slice(1));
    const info = q('info', { id: ids[1]! });
    assert.equal(info.denom, `token/${ids[1]}`);
    assert.equal(info.homeShard, 0);
    assert.throws(() => q('info', { id: 'zz' }), (e: unknown) => e instanceof QnexusError && e.code === 'BAD_REQUEST');
    assert.throws(() => q('info', { id: '0011223344556677' }), (e: unknown) => e instanceof QnexusError && e.code === 'TOKEN_UNKNOWN');
  });

  it('info is provable: run over its proven keys only, it answers what the state does', () => {
    const { s, one } = shard0();
    one(alice, create());
    const id = tokenIdFor(0, c.addrOf(alice), 0n);
    one(alice, tokenMintMsg({ denom: tokenDenom(id), to: c.addrOf(alice), amount: 40n }));
    one(alice, tokenBurnMsg({ denom: tokenDenom(id), amount: 15n }));
    const mod = app.module('token')!;
    const info = mod.queries!.find((x) => x.name === 'info')!;
    const keys = queryProofKeys(mod, info, { id });
    const proven = keys.map((key) => ({ key, value: s.kv.get(toHex(key)) ?? null }));
    const answer = runProven(mod, info, P0, { id }, proven) as Record<string, unknown>;
    assert.deepEqual(answer, app.query(s, P0, mod, info, { id }));
    assert.equal(answer.minted, '40');
    assert.equal(answer.burnedHere, '15');
  });

  it('pages through more tokens than one list answer holds, in id order, without gaps or repeats', () => {
    const { s, block } = shard0();
    // 130 tokens by one creator in one block (nonces 0..129).
    const txs = Array.from({ length: 130 }, (_, i) => c.tx(alice, create({ symbol: `P${i}` }), BigInt(i)));
    assert.deepEqual(block(txs).skipped, []);
    const all = Array.from({ length: 130 }, (_, i) => tokenIdFor(0, c.addrOf(alice), BigInt(i))).sort();
    const mod = app.module('token')!;
    const q = (name: string, params: Record<string, string> = {}) => app.query(s, P0, mod, mod.queries!.find((x) => x.name === name)!, params) as { tokens: { id: string }[]; next: string | null };
    const first = q('list');
    assert.equal(first.tokens.length, 100);
    assert.equal(first.next, all[99]);
    const second = q('list-after', { after: first.next! });
    assert.equal(second.next, null);
    assert.deepEqual([...first.tokens, ...second.tokens].map((t) => t.id), all);
    // A cursor that is not a token id works too (ids after it).
    const mid = all[57]!.slice(0, 15) + (all[57]!.endsWith('f') ? 'f' : '0');
    assert.deepEqual(q('list-after', { after: mid }).tokens.map((t) => t.id), all.filter((id) => id > mid).slice(0, 100));
  });

  it("the generic client builds the same messages as the typed builders, and refuses bad arguments", () => {
    const to = formatAddress(c.addrOf(bob));
    const id = tokenIdFor(0, c.addrOf(alice), 0n);
    assert.deepEqual(app.buildMsg('token', 'token-mint', { denom: id, to, amount: '5' }), tokenMintMsg({ denom: tokenDenom(id), to: c.addrOf(bob), amount: 5n }));
    assert.deepEqual(app.buildMsg('token', 'token-burn', { denom: tokenDenom(id), amount: '5' }), tokenBurnMsg({ denom: tokenDenom(id), amount: 5n }));
    assert.deepEqual(
      app.buildMsg('token', 'token-create', { symbol: 'GOLD', decimals: '6', 'max-supply': '1000', 'mint-authority': to }),
      tokenCreateMsg({ symbol: 'GOLD', decimals: 6, maxSupply: 1000n, mintAuthority: c.addrOf(bob) }),
    );
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e instanceof QnexusError ? e.code : String(e);
      }
      return null;
    };
    assert.equal(code(() => app.buildMsg('token', 'token-mint', { denom: id, to, amount: '0' })), 'TX_BAD_AMOUNT');
    assert.equal(code(() => app.buildMsg('token', 'token-mint', { denom: id, to, amount: '18446744073709551616' })), 'TX_BAD_AMOUNT');
    assert.equal(code(() => app.buildMsg('token', 'token-mint', { denom: 'qfc', to, amount: '1' })), 'TOKEN_BAD_DENOM');
    assert.equal(code(() => app.buildMsg('token', 'token-mint', { denom: id, to: 'qnxyz', amount: '1' })), 'TX_MALFORMED');
    assert.equal(code(() => app.buildMsg('token', 'token-create', { symbol: 'gold', decimals: '6', 'max-supply': '1', 'mint-authority': to })), 'TOKEN_BAD_PARAMS');
    assert.equal(code(() => app.buildMsg('token', 'token-create', { symbol: 'GOLD', decimals: '100', 'max-supply': '1', 'mint-authority': to })), 'TOKEN_BAD_PARAMS');
  });
});

describe('token: across shards', () => {
  const nonceOf = new Map<string, bigint>();
  const next = (k: typeof alice) => {
    const a = formatAddress(c.addrOf(k));
    const n = nonceOf.get(a) ?? 0n;
    nonceOf.set(a, n + 1n);
    return n;
  };
  beforeEach(() => nonceOf.clear());

  it('a mint to another shard travels as a payout; an aborted payout is owed, re-sent, and lands once', () => {
    const sim = new ShardSim({ app, genesis: c.G });
    sim.step({ 0: [c.tx(alice, create(), next(alice))] });
    const denom = tokenDenom(tokenIdFor(0, c.addrOf(alice), 0n));
    let aborts = 0;
    // The first payout's prepare is refused by the beacon: the module account holds it as owed, then re-sends it.
    const isPayout = (x: { module: number; op: number }) => x.module === TOKEN_ID && x.op === TOKEN_OP.payout;
    sim.step({ 0: [c.tx(alice, tokenMintMsg({ denom, to: c.addrOf(dave), amount: 70n }), next(alice))] }, { abortPrepare: (x) => isPayout(x) && aborts++ === 0 });
    sim.settle(30);
    assert.equal(aborts, 1, 'the beacon refused the first payout');
    assert.equal(bank.balance(sim.states[1]!, c.addrOf(dave), denom), 70n);
    assert.equal(bank.balance(sim.states[0]!, moduleAccount('token'), denom), 0n);
    const g = sim.globalSupply(denom);
    assert.equal(g.minted, 70n);
    assert.equal(g.balances, 70n);
    assert.equal(g.escrow, 0n);
    // dave burns on his own shard: recorded in shard 1's supply of the denom.
    sim.step({ 1: [c.tx(dave, tokenBurnMsg({ denom, amount: 20n }), next(dave))] });
    assert.deepEqual(bank.supply(sim.states[1]!, denom).burned, 20n);
    assert.equal(tokens.burned(sim.states[1]!.store(TOKEN_ID), tokenIdOf(denom)!), 20n);
    // ...and sends the rest home by xtransfer.
    sim.step({ 1: [c.tx(dave, sendMsg('xtransfer', { to: c.addrOf(carol), amount: 50n, denom }), next(dave))] });
    sim.settle(30);
    assert.equal(bank.balance(sim.states[0]!, c.addrOf(carol), denom), 50n);
    const end = sim.globalSupply(denom);
    assert.equal(end.balances + end.burned, end.minted);
  });

  it('randomized: creates, mints (both shards), burns, sends and xsends with aborts; identities hold, max supply never passed', () => {
    const sim = new ShardSim({ app, genesis: c.G });
    const rnd = prng(17);
    const users = [...L0, ...L1].map(c.key);
    const creators = users.filter((u) => c.shardOf(u) === 0).slice(0, 2);
    const made: { denom: string; authority: typeof alice; max: bigint }[] = [];
    const pick = <T,>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
    for (let slot = 0; slot < 60; slot++) {
      const txs: Record<number, TxEnvelope[]> = { 0: [], 1: [] };
      for (let j = 0; j < 5; j++) {
        const r = rnd();
        if (made.length === 0 || (r < 0.05 && made.length < 4)) {
          const cr = pick(creators);
          const n = next(cr);
          made.push({ denom: tokenDenom(tokenIdFor(0, c.addrOf(cr), n)), authority: cr, max: BigInt(500 + Math.floor(rnd() * 1000)) });
          txs[0]!.push(c.tx(cr, create({ symbol: `R${made.length}`, maxSupply: made[made.length - 1]!.max, mintAuthority: c.addrOf(cr) }), n));
          continue;
        }
        const t = pick(made);
        const u = pick(users);
        const su = c.shardOf(u);
        if (r < 0.4) txs[0]!.push(c.tx(t.authority, tokenMintMsg({ denom: t.denom, to: c.addrOf(u), amount: BigInt(1 + Math.floor(rnd() * 200)) }), next(t.authority)));
        else if (r < 0.5) txs[su]!.push(c.tx(u, tokenBurnMsg({ denom: t.denom, amount: BigInt(1 + Math.floor(rnd() * 50)) }), next(u)));
        else {
          const v = pick(users.filter((x) => x !== u));
          const cross = c.shardOf(v) !== su;
          txs[su]!.push(c.tx(u, sendMsg(cross ? 'xtransfer' : 'transfer', { to: c.addrOf(v), amount: BigInt(1 + Math.floor(rnd() * 100)), denom: t.denom }), next(u)));
        }
      }
      const res = sim.step(txs, { abortPrepare: () => rnd() < 0.15, holdPrepare: () => rnd() < 0.2 });
      // A transaction the proposer left out leaves its nonce unused (later ones of that sender then
      // fail with TX_NONCE_FUTURE) while a refused message uses it: resynchronize every sender from the state.
      for (const k of users) nonceOf.set(formatAddress(c.addrOf(k)), bank.nonce(sim.states[c.shardOf(k)]!, c.addrOf(k)));
      for (const sk of res.skipped) assert.ok(['TOKEN_MAX_SUPPLY', 'TX_INSUFFICIENT_FUNDS', 'TOKEN_UNKNOWN', 'TX_NONCE_FUTURE', 'TX_SAME_SHARD'].includes(sk.code), `${sk.code}: ${sk.message}`);
      for (const t of made) {
        const m = tokens.meta(sim.states[0]!.store(TOKEN_ID), tokenIdOf(t.denom)!);
        if (m) assert.ok(m.minted <= m.maxSupply);
      }
    }
    sim.settle(60);
    for (const t of made) {
      const g = sim.globalSupply(t.denom);
      assert.equal(g.escrow, 0n, t.denom);
      assert.equal(g.exported, g.imported, t.denom);
      assert.equal(g.balances + g.burned, g.genesis + g.minted, t.denom);
      assert.ok(g.minted <= t.max);
      assert.equal(bank.balance(sim.states[0]!, moduleAccount('token'), t.denom), 0n, 'every payout delivered');
    }
    assert.ok(made.some((t) => sim.globalSupply(t.denom).minted > 0n));
    assert.ok(made.some((t) => sim.globalSupply(t.denom).imported > 0n), 'some tokens crossed shards');
    assert.ok(made.some((t) => sim.globalSupply(t.denom).burned > 0n), 'some tokens were burned');
  });
});
