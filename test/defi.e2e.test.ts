// DeFi on a multi-process devnet with the default topology (2 shards × 4 validators + 1 full node,
// and the beacon), driven only through the CLI binary, as a new user would (issue 17): a token
// created on shard 0, minted and sent to shard 1; an AMM pool on shard 0 swapped against from
// both shards (the shard-1 trader's output comes back through the 2PC path); a cross-shard swap
// aborted by its own slippage guard, refunded to the unit; a DEX market on shard 0 with makers and
// takers on both shards, cleared by the batch auction; the faucet funding an address of the other
// shard and refusing a second drip inside its cooldown; and at the end every denom's supply
// identity on both shards, and across them. One devnet for the file.
import { strict as assert } from 'node:assert';
import { toHex } from '@qnexus/crypto';
import { poolIdOf } from '@qnexus/module-amm';
import { QnexusClient } from '@qnexus/sdk';
import { freshAddressOn, qnexusCli, startTestNet, supplyAcrossShards, waitFor, type CliRun, type TestNet } from './helpers.js';

type Run = CliRun;
const qnexus = (args: string[]) => qnexusCli(args, { timeoutMs: 120_000 });

const ok = (r: Run, what: string): Run => {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.stderr}\n${r.stdout}`);
  return r;
};

interface Supply {
  denoms: { denom: string; supply: string; genesis: string; minted: string; balances: string; burned: string; escrow: string; exported: string; imported: string }[];
}

describe('e2e: tokens, faucet, AMM and order book across two shards, through the CLI', function () {
  this.timeout(420_000);
  let net: TestNet;
  let node: [string, string];
  let beacon: string;
  let passFile: string;
  const acct = (shard: number, i: number) => net.devnet.manifest.accounts.filter((a) => a.shard === shard)[i]!;

  before(async () => {
    net = await startTestNet({ shards: 2, validators: 4, fullNodes: 1, accounts: 2 });
    node = [net.devnet.process('s0-validator-0').apiUrl, net.devnet.process('s1-validator-0').apiUrl];
    beacon = net.devnet.manifest.beacon.apiUrl;
    passFile = net.devnet.passphraseFile;
    await Promise.all([0, 1].map((k) => net.devnet.client(`s${k}-validator-0`).waitForHeight(1, 60_000, { finalized: true })));
  });
  after(async () => {
    await net?.cleanup();
  });

  /** `qnexus tx <module> <msg> …` signed by the i-th account of `shard`, waited for; JSON summary. */
  const tx = async (shard: number, i: number, words: string[], expectCode = 0): Promise<Run & { json: Record<string, unknown> | null }> => {
    const r = await qnexus(['tx', ...words, '--keystore', acct(shard, i).keystore, '--passphrase-file', passFile, '--node', node[shard]!, '--beacon', beacon, '--wait', '--json']);
    assert.equal(r.code, expectCode, `tx ${words.join(' ')}: exit ${r.code}\n${r.stderr}\n${r.stdout}`);
    const line = r.stdout.trim().split('\n').at(-1) ?? '';
    return { ...r, json: line.startsWith('{') ? (JSON.parse(line) as Record<string, unknown>) : null };
  };
  const query = async <T>(shard: number, ...words: string[]): Promise<T> => JSON.parse(ok(await qnexus(['query', '--node', node[shard]!, ...words]), `query ${words.join(' ')}`).stdout) as T;
  const balance = async (shard: number, address: string, denom: string): Promise<bigint> => BigInt((await query<{ amount: string }>(shard, 'bank', 'balance', address, denom)).amount);
  const slot = async (): Promise<number> => (await new QnexusClient(node[0]).shards()).slot;

  let token = '';
  let pool = '';

  it('a token is created on shard 0, minted, sent to shard 1, and every account lists its denoms', async () => {
    const a0 = acct(0, 0).address;
    await tx(0, 0, ['token', 'token-create', '--symbol', 'GOLD', '--decimals', '6', '--max-supply', '1000000000000000', '--mint-authority', a0]);
    const list = await query<{ tokens: { id: string; symbol: string }[] }>(0, 'token', 'list');
    const gold = list.tokens.find((t) => t.symbol === 'GOLD');
    assert.ok(gold, JSON.stringify(list));
    token = `token/${gold.id}`;
    await tx(0, 0, ['token', 'token-mint', '--denom', token, '--to', a0, '--amount', '10000000000']);
    // Over the max supply: refused at submission with the module's code, nothing happens.
    const over = await qnexus(['tx', 'token', 'token-mint', '--denom', token, '--to', a0, '--amount', '1000000000000000', '--keystore', acct(0, 0).keystore, '--passphrase-file', passFile, '--node', node[0]]);
    assert.equal(over.code, 1);
    assert.match(over.stderr, /TOKEN_MAX_SUPPLY/);
    // Sent across shards with a denom, through the 2PC path.
    const x = await tx(0, 0, ['bank', 'xtransfer', '--to', acct(1, 1).address, '--amount', '2000000', '--denom', token]);
    assert.equal(x.json?.status, 'committed', x.stdout);
    await waitFor('the token on shard 1', () => balance(1, acct(1, 1).address, token), (b) => b === 2_000_000n, 30_000);
    const shown = (await new QnexusClient(node[1]).account(acct(1, 1).address)) as { balances?: { denom: string; amount: string }[] };
    assert.deepEqual(shown.balances?.find((b) => b.denom === token), { denom: token, amount: '2000000' });
  });

  it('a pool on shard 0 is swapped against from both shards; a cross-shard swap beyond its slippage guard is aborted and refunded exactly', async () => {
    const deadline = String((await slot()) + 300);
    await tx(0, 0, ['amm', 'amm-create', '--denomA', 'qfc', '--denomB', token, '--amountA', '1000000000', '--amountB', '1000000000', '--feeBps', '30', '--deadline', deadline]);
    pool = toHex(poolIdOf(0, 'qfc', token, 30));
    const p = await query<{ id: string; reserves: unknown }>(0, 'amm', 'pools', pool);
    assert.equal(p.id, pool);

    // Same shard (the output lands in the block that took the swap) and from shard 1 at once: there
    // the input is escrowed, the swap runs in the pool's batch on shard 0, and the output comes back
    // to shard 1 as a beacon-coordinated payout.
    const b0 = acct(0, 1).address;
    const a1 = acct(1, 0).address;
    const quote = await query<{ amountOut: string }>(0, 'amm', 'quote', pool, 'qfc', '1000000');
    const [, x] = await Promise.all([
      tx(0, 1, ['amm', 'amm-swap', '--pool', pool, '--denomIn', 'qfc', '--amountIn', '1000000', '--minOut', '1', '--deadline', deadline]),
      tx(1, 0, ['amm', 'amm-swap', '--pool', pool, '--denomIn', 'qfc', '--amountIn', '1000000', '--minOut', '1', '--deadline', deadline]),
    ]);
    assert.ok((await balance(0, b0, token)) > 0n, 'the shard-0 trader got the token');
    assert.equal(x.json?.status, 'committed', x.stdout);
    const got = await waitFor('the swap output on shard 1', () => balance(1, a1, token), (b) => b > 0n, 60_000);
    // Whatever order the two swaps executed in, the output is at most the quote taken before both.
    assert.ok(got > 0n && got <= BigInt(quote.amountOut), `got ${got}, quoted ${quote.amountOut} before this swap`);

    // Its slippage guard refuses at the pool's prepare: aborted, the escrow comes back to the unit.
    const before = await balance(1, a1, 'qfc');
    const q2 = await query<{ amountOut: string }>(0, 'amm', 'quote', pool, 'qfc', '1000000');
    const no = await tx(1, 0, ['amm', 'amm-swap', '--pool', pool, '--denomIn', 'qfc', '--amountIn', '1000000', '--minOut', String(BigInt(q2.amountOut) + 1n), '--deadline', deadline], 1);
    assert.equal(no.json?.status, 'aborted', no.stdout);
    assert.match(String(no.json?.reason), /AMM_SLIPPAGE/);
    assert.equal(await balance(1, a1, 'qfc'), before - 1n, 'only the fee (1) is spent');
  });

  it('a market on shard 0 clears makers and takers of both shards at one batch price', async () => {
    const until = String((await slot()) + 10_000);
    await tx(0, 0, ['dex', 'dex-create-market', '--base', token, '--quote', 'qfc', '--tickSize', '1', '--lotSize', '10', '--minNotional', '100']);
    const markets = await query<{ markets: { id: string; base: string }[] }>(0, 'dex', 'list');
    const market = markets.markets.find((m) => m.base === token)!.id;
    // Makers: one of each shard (the shard-1 maker's sell travels as an xcall with its base locked).
    await Promise.all([
      tx(0, 0, ['dex', 'dex-place', '--market', market, '--side', 'sell', '--price', '2', '--quantity', '1000', '--goodTilSlot', until]),
      tx(1, 1, ['dex', 'dex-place', '--market', market, '--side', 'sell', '--price', '3', '--quantity', '1000', '--goodTilSlot', until, '--denom', token]),
    ]);
    await waitFor('both makers on the book', () => query<{ asks: unknown[] }>(0, 'dex', 'book', market), (b) => b.asks.length === 2, 60_000);
    // Takers: one of each shard, in the same window; the batch clears them at one price.
    const a1 = acct(1, 0).address;
    const baseBefore = await balance(1, a1, token);
    await Promise.all([
      tx(1, 0, ['dex', 'dex-place', '--market', market, '--side', 'buy', '--price', '3', '--quantity', '1500', '--goodTilSlot', until, '--denom', 'qfc']),
      tx(0, 1, ['dex', 'dex-place', '--market', market, '--side', 'buy', '--price', '3', '--quantity', '300', '--goodTilSlot', until]),
    ]);
    const trades = await waitFor('trades', () => query<{ trades: { price: string; quantity: string }[] }>(0, 'dex', 'trades', market), (t) => t.trades.length > 0, 60_000);
    for (const t of trades.trades) assert.ok(BigInt(t.price) >= 2n && BigInt(t.price) <= 3n, JSON.stringify(t));
    // The shard-1 taker's base comes back through the 2PC path; the shard-1 maker's quote too.
    await waitFor("the shard-1 taker's base", () => balance(1, a1, token), (b) => b > baseBefore, 60_000);
    await waitFor("the shard-1 maker's quote", () => balance(1, acct(1, 1).address, 'qfc'), (b) => b > 0n, 60_000);
    const m = await query<{ lastPrice: string | null }>(0, 'dex', 'markets', market);
    assert.ok(m.lastPrice !== null && BigInt(m.lastPrice) >= 2n);
  });

  it('the faucet funds an address of the other shard once, and refuses a second drip inside its cooldown', async () => {
    const to = freshAddressOn(net, 1, 91);
    ok(await qnexus(['faucet', to, '--node', node[0], '--wait']), 'faucet');
    const got = await waitFor('the drip', () => balance(1, to, 'qfc'), (b) => b > 0n, 60_000);
    assert.equal(got, 10_000_000n);
    const again = await qnexus(['faucet', to, '--node', node[0], '--wait']);
    assert.equal(again.code, 1, again.stdout);
    assert.match(again.stderr, /FAUCET_COOLDOWN/);
  });

  it('every denom keeps its supply identity on both shards, and across them once nothing is in flight', async () => {
    const all = await waitFor('the native supply across shards', () => supplyAcrossShards(net), (s) => s.globalOk, 60_000);
    assert.ok(all.perShardOk, all.problems.join('; '));
    const per: Supply[] = await Promise.all([0, 1].map(async (k) => ({ denoms: (await new QnexusClient(node[k]!).supply()).denoms ?? [] })));
    for (const [k, s] of per.entries()) {
      for (const d of s.denoms) {
        const lhs = BigInt(d.balances) + BigInt(d.burned) + BigInt(d.escrow) + BigInt(d.exported) - BigInt(d.imported);
        assert.equal(lhs, BigInt(d.genesis) + BigInt(d.minted), `shard ${k}, ${d.denom}`);
      }
    }
    // The token and the pool's shares are on both shards; summed, what was minted is all held or burned.
    for (const denom of [token, `amm/${pool}`]) {
      const t = per.map((s) => s.denoms.find((d) => d.denom === denom));
      const sum = (f: 'balances' | 'burned' | 'escrow' | 'exported' | 'imported' | 'minted' | 'genesis') => t.reduce((a, d) => a + BigInt(d?.[f] ?? '0'), 0n);
      if (sum('escrow') === 0n && sum('exported') === sum('imported')) assert.equal(sum('balances') + sum('burned'), sum('genesis') + sum('minted'), denom);
    }
  });
});
