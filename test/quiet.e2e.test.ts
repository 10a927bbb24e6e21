// The default devnet's idle behaviour (`--empty-block-interval`, default 8): a proposer with
// nothing to propose skips its slot, validators send no vote in a round without a proposal, and
// an empty block comes only every 8 slots; a transaction (intra- or cross-shard) still goes into
// the next slot's block. Real processes: 1 beacon + 2 shards × (4 validators + 1 full node).
import assert from 'node:assert/strict';
import { DEFAULT_EMPTY_BLOCK_INTERVAL } from '@qnexus/node';
import type { QnexusClient } from '@qnexus/sdk';
import { freshAddressOn, shardClient, sleep, startTestNet, transfer, waitFor, waitXferDone, xtransfer, type TestNet } from './helpers.js';

const K = DEFAULT_EMPTY_BLOCK_INTERVAL;

async function metricSum(c: QnexusClient, name: string, label: string): Promise<number> {
  const text = await (await fetch(`${c.baseUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name) && line.includes(label)) sum += Number(line.split(' ').pop());
  return sum;
}

describe(`quiet rounds: an idle shard makes an empty block every ${K} slots and no other consensus traffic (real processes)`, function () {
  this.timeout(300_000);
  let net: TestNet;

  before(async () => {
    // The node default, not the test nets' block-every-slot (TEST_NODE_ENV).
    net = await startTestNet({ env: { QNEXUS_EMPTY_BLOCK_INTERVAL: String(K) } });
  });

  after(async () => {
    await net?.cleanup();
  });

  const slotNow = () => Math.floor((Date.now() - net.devnet.genesis.genesisTime) / net.devnet.genesis.slotMs);

  it(`idle: blocks are empty and ${K} slots apart, and a validator verifies votes only for them`, async () => {
    const v = net.devnet.client('s0-validator-1');
    await waitFor('shard 0 to finalize its first block', () => v.status(), (s) => s.finalizedHeight >= 1, 60_000);
    const h0 = (await v.status()).finalizedHeight;
    const votes0 = await metricSum(v, 'qnexus_crypto_verify_total', 'kind="vote"');
    const windowSlots = 2 * K + 2;
    await sleep(windowSlots * net.devnet.genesis.slotMs);
    const h1 = (await v.status()).finalizedHeight;
    const votes1 = await metricSum(v, 'qnexus_crypto_verify_total', 'kind="vote"');
    const made = h1 - h0;
    // The chain still moves, about once every K slots (a block every slot would be windowSlots).
    assert.ok(made >= 1 && made <= 3, `${made} blocks in ${windowSlots} idle slots`);
    // Only those blocks' rounds carry votes: 3 peers × (prevote + precommit) each, plus a re-send
    // or a late vote; a block every slot would mean ≈ 6 per slot (≈ ${6 * windowSlots}).
    assert.ok(votes1 - votes0 <= 8 * (made + 1), `${votes1 - votes0} vote verifications for ${made} blocks in ${windowSlots} slots`);
    for (let h = 2; h <= h1; h++) {
      const [b, parent] = await Promise.all([v.block(h), v.block(h - 1)]);
      assert.equal(b.txCount, 0, `block ${h} of an idle shard holds ${b.txCount} transactions`);
      assert.ok(b.slot - parent.slot >= K, `empty block ${h} at slot ${b.slot}, only ${b.slot - parent.slot} slots after block ${h - 1}`);
    }
  });

  it(`a transaction goes into the next block, without waiting for the empty-block interval`, async () => {
    const c = shardClient(net, 0);
    // Right after an empty block, so the next one is K slots away.
    const h = (await c.status()).finalizedHeight;
    await waitFor(`height ${h + 1}`, () => c.status(), (s) => s.finalizedHeight > h, 60_000);
    const head = await c.block(h + 1);
    const from = net.accountsByShard[0]![0]!;
    const tx = transfer(net, from, freshAddressOn(net, 0, 201), 5n, BigInt((await c.account(from.address)).pendingNonce));
    const submitted = slotNow();
    await c.submitTx(tx.raw);
    const info = await c.waitForTx(tx.hash, { until: 'final', timeoutMs: 60_000 });
    const b = await c.block(info.block!.height);
    assert.equal(b.height, head.height + 1, 'the transaction is in the block after the empty one');
    assert.ok(b.slot < head.slot + K, `its block is at slot ${b.slot} (submitted in ${submitted}), not before the empty block due at ${head.slot + K}`);
  });

  it('a cross-shard transfer completes: the beacon entries get the two quiet shards proposing', async () => {
    const from = net.accountsByShard[0]![1]!;
    const id = await xtransfer(net, from, freshAddressOn(net, 1, 202), 7n);
    const done = await waitXferDone(net, id);
    assert.equal(done.decision, 'commit');
    const dst = await shardClient(net, 1).account(done.beacon.to);
    assert.equal(BigInt(dst.balance), 7n);
  });
});
