// Crash faults on a 4-validator shard: SIGKILL one, then two, real processes.
import assert from 'node:assert/strict';
import { chainView, finalized, freshAddress, sleep, startTestNet, statuses, transfer, waitAllFinalized, waitFor, type TestNet } from './helpers.js';

const VALIDATORS = ['validator-0', 'validator-1', 'validator-2', 'validator-3'];
const SLOT_MS = 1000;

/** Every pair of nodes agrees on every height both have finalized (no conflicting finality). */
async function assertNoConflict(net: TestNet, names: string[]): Promise<number> {
  const heights = (await statuses(net, names)).map((s) => s.finalizedHeight);
  const common = Math.min(...heights);
  const views = await Promise.all(names.map((n) => chainView(net.devnet.client(n), 1, common)));
  for (const v of views) assert.deepEqual(v, views[0]);
  return common;
}

describe('faults: validators killed with SIGKILL', function () {
  let net: TestNet;

  before(async function () {
    this.timeout(120_000);
    net = await startTestNet({ shards: 1, validators: 4, fullNodes: 0, accounts: 2, slotMs: SLOT_MS });
    await waitAllFinalized(net, VALIDATORS, 2, 60_000);
  });

  after(async function () {
    this.timeout(60_000);
    await net?.cleanup();
  });

  it('one validator down: finality continues; restarted, it catches up and agrees on the state root', async () => {
    const v0 = net.devnet.client('validator-0');
    await net.devnet.kill('validator-3', 'SIGKILL');
    const h0 = await finalized(v0);
    // A transfer still becomes final with 3 of 4 validators.
    const tx = transfer(net, net.accounts[0]!, freshAddress(220), 99n, BigInt((await v0.account(net.accounts[0]!.address)).pendingNonce));
    await v0.submitTx(tx.raw);
    await v0.waitForTx(tx.hash, { until: 'final', timeoutMs: 30_000 });
    await waitAllFinalized(net, ['validator-0', 'validator-1', 'validator-2'], h0 + 4, 40_000);
    await net.devnet.restart('validator-3');
    const target = await finalized(v0);
    await waitFor('validator-3 to catch up', () => finalized(net.devnet.client('validator-3')), (h) => h >= target, 60_000);
    const common = await assertNoConflict(net, VALIDATORS);
    assert.ok(common >= target);
    assert.equal((await net.devnet.client('validator-3').account(freshAddress(220))).balance, '99');
  });

  it('two of four down: nothing finalizes, nothing conflicts; restarted, finality resumes', async () => {
    await Promise.all([net.devnet.kill('validator-2', 'SIGKILL'), net.devnet.kill('validator-3', 'SIGKILL')]);
    // Let anything already in flight settle, then watch for several slots.
    await sleep(2 * SLOT_MS);
    const live = ['validator-0', 'validator-1'];
    const stalled = Math.max(...(await statuses(net, live)).map((s) => s.finalizedHeight));
    await sleep(5 * SLOT_MS);
    const after = await statuses(net, live);
    for (const s of after) assert.ok(s.finalizedHeight <= stalled, `no block finalizes with half the stake (was ${stalled}, now ${s.finalizedHeight})`);
    await assertNoConflict(net, live);
    // A transaction submitted now waits in the mempool instead of being finalized.
    const v0 = net.devnet.client('validator-0');
    const tx = transfer(net, net.accounts[1]!, freshAddress(221), 5n, BigInt((await v0.account(net.accounts[1]!.address)).pendingNonce));
    await v0.submitTx(tx.raw);
    await sleep(2 * SLOT_MS);
    assert.notEqual((await v0.tx(tx.hash)).status, 'final');

    await Promise.all([net.devnet.restart('validator-2'), net.devnet.restart('validator-3')]);
    await waitAllFinalized(net, VALIDATORS, stalled + 3, 90_000);
    await v0.waitForTx(tx.hash, { until: 'final', timeoutMs: 60_000 });
    await assertNoConflict(net, VALIDATORS);
  });
});
