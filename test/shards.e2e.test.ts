// Two shards in one devnet: each shard's committee finalizes its own chain and
// holds only its home accounts; plain transfers stay within a shard.
import assert from 'node:assert/strict';
import { ApiError } from '@qnexus/sdk';
import { freshAddress, startTestNet, transfer, waitAllFinalized, type TestAccount, type TestNet } from './helpers.js';
import { homeShard, parseAddress } from '@qnexus/crypto';

const names = (shard: number) => [0, 1, 2, 3].map((i) => `s${shard}-validator-${i}`);

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof ApiError && e.code === code);
}

describe('two shards side by side', function () {
  let net: TestNet;
  let byShard: TestAccount[][];

  before(async function () {
    this.timeout(150_000);
    net = await startTestNet({ shards: 2, validators: 4, fullNodes: 0, accounts: 2, slotMs: 1000 });
    byShard = [0, 1].map((s) => net.accounts.filter((a) => homeShard(parseAddress(a.address), 2) === s));
  });

  after(async function () {
    this.timeout(60_000);
    await net?.cleanup();
  });

  it('each shard finalizes its own chain', async () => {
    await waitAllFinalized(net, [...names(0), ...names(1)], 3, 90_000);
    const [a, b] = await Promise.all([net.devnet.client('s0-validator-0').block(2), net.devnet.client('s1-validator-0').block(2)]);
    assert.equal(a.shard, 0);
    assert.equal(b.shard, 1);
    assert.notEqual(a.hash, b.hash);
    for (const s of [0, 1]) {
      const hashes = await Promise.all(names(s).map(async (n) => (await net.devnet.client(n).block(2)).hash));
      assert.equal(new Set(hashes).size, 1, `shard ${s} nodes agree`);
    }
  });

  it('intra-shard transfers finalize on their shard only; other-shard senders and recipients are refused', async () => {
    assert.ok(byShard[0]!.length >= 2 && byShard[1]!.length >= 2, 'two funded accounts per shard');
    for (const s of [0, 1]) {
      const c = net.devnet.client(`s${s}-validator-1`);
      const [from, to] = byShard[s]!;
      const tx = transfer(net, from!, to!.address, 77n, BigInt((await c.account(from!.address)).pendingNonce));
      await c.submitTx(tx.raw);
      const info = await c.waitForTx(tx.hash, { until: 'final', timeoutMs: 30_000 });
      assert.equal(info.status, 'final');
      await expectCode(net.devnet.client(`s${1 - s}-validator-0`).tx(tx.hash), 'TX_UNKNOWN');
    }
    const s0 = net.devnet.client('s0-validator-0');
    // A shard-1 account cannot spend on shard 0…
    const wrong = transfer(net, byShard[1]![0]!, byShard[1]![1]!.address, 5n, 0n);
    await expectCode(s0.submitTx(wrong.raw), 'TX_WRONG_SHARD');
    // …and a plain transfer cannot leave its shard.
    const cross = transfer(net, byShard[0]![0]!, byShard[1]![0]!.address, 5n, 1n);
    await expectCode(s0.submitTx(cross.raw), 'TX_CROSS_SHARD');
    // A shard-0 address that was never funded reads as empty on shard 0.
    assert.equal((await s0.account(freshAddress(230))).balance, '0');
  });

  it("each shard's balances + burned fees equal its genesis supply, and the shards add up to the whole", async () => {
    const total = net.devnet.genesis.accounts.reduce((s, a) => s + a.balance, 0n);
    let sum = 0n;
    for (const s of [0, 1]) {
      const sup = await net.devnet.client(`s${s}-validator-2`).supply();
      assert.equal(BigInt(sup.balances) + BigInt(sup.burned) + BigInt(sup.fees) + BigInt(sup.modules ?? '0') + BigInt(sup.escrow) + BigInt(sup.exported) - BigInt(sup.imported), BigInt(sup.genesisSupply));
      sum += BigInt(sup.genesisSupply);
    }
    assert.equal(sum, total);
  });
});
