// An acknowledged transaction survives a crash of the node that acknowledged it (issue 13 item 6): real processes, a
// shard of 4 validators and a full node. The full node takes a batch of transactions over its API and is SIGKILLed
// right after the 202s, before it has gossiped any: its tx gossip waits up to 10 s to fill a batch
// (QNEXUS_TX_GOSSIP_FLUSH_MS) and the batch is smaller than a gossip message holds, and a full node never proposes, so
// the batch exists nowhere but in its own process. After a restart every one of them becomes final without
// resubmission. A client that "timed out" asks other nodes of the shard by hash: unknown before the restart
// (TX_UNKNOWN), pending or final after it.
//
// QNEXUS_ACKED_JOURNAL=false runs the same with `--admission-journal false`: the test must then fail (the
// transactions are lost), which shows that it tests the journal.
import assert from 'node:assert/strict';
import { findTx } from '@qnexus/sdk';
import { freshAddress, startTestNet, transfer, waitAllFinalized, type TestNet } from './helpers.js';

const VALIDATORS = ['validator-0', 'validator-1', 'validator-2', 'validator-3'];
const ACKING = 'full-0';
const N = 20;

describe('acked: a node SIGKILLed right after acknowledging transactions', function () {
  let net: TestNet;
  const journal = process.env.QNEXUS_ACKED_JOURNAL ?? 'true';

  before(async function () {
    this.timeout(120_000);
    net = await startTestNet({
      shards: 1,
      validators: 4,
      fullNodes: 1,
      accounts: 1,
      slotMs: 1000,
      env: { QNEXUS_TX_GOSSIP_FLUSH_MS: '10000', QNEXUS_ADMISSION_JOURNAL: journal },
    });
    await waitAllFinalized(net, [...VALIDATORS, ACKING], 2, 60_000);
  });

  after(async function () {
    this.timeout(60_000);
    await net?.cleanup();
  });

  it(`every acknowledged transaction becomes final after the restart, without resubmission (admission journal ${journal})`, async function () {
    this.timeout(180_000);
    const full = net.devnet.client(ACKING);
    const from = net.accounts[0]!;
    const base = BigInt((await full.account(from.address)).pendingNonce);
    const txs = Array.from({ length: N }, (_, i) => transfer(net, from, freshAddress(200 + i), 10n + BigInt(i), base + BigInt(i)));
    const acks = await Promise.all(txs.map((t) => full.submitTx(t.raw)));
    assert.deepEqual(acks.map((a) => a.hash), txs.map((t) => t.hash));
    await net.devnet.kill(ACKING, 'SIGKILL');

    // The client whose POST "timed out" asks the rest of the shard: nobody else has it yet (not gossiped).
    const others = VALIDATORS.map((n) => net.devnet.client(n));
    assert.equal(await findTx(others, txs[0]!.hash), null, 'the batch left the acking node before the kill: the test would not show anything');
    await assert.rejects(others[0]!.tx(txs[0]!.hash), (e: unknown) => (e as { code?: string }).code === 'TX_UNKNOWN');

    await net.devnet.restart(ACKING);
    const again = net.devnet.client(ACKING);
    for (const t of txs) await again.waitForTx(t.hash, { until: 'final', timeoutMs: 90_000 });
    // And any node of the shard now tells the client the outcome by hash.
    for (const t of txs) {
      const found = await findTx(others, t.hash);
      assert.ok(found !== null && ['pending', 'included', 'final'].includes(found.tx.status), `${t.hash}: ${found?.tx.status ?? 'unknown'} on the validators`);
    }
    await others[0]!.waitForTx(txs.at(-1)!.hash, { until: 'final', timeoutMs: 30_000 });
  });
});
