import { sendMsg } from '@qnexus/state';
// One shard: 4 validators + 1 full node (and the beacon), each its own OS process on 127.0.0.1.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError } from '@qnexus/sdk';
import { createP2PNode, topics } from '@qnexus/p2p';
import { generateKeyPair, getBackend, parseAddress } from '@qnexus/crypto';
import { MAX_TX_BYTES, encodeTx, txSigningBytes, type TxBody } from '@qnexus/types';
import {
  chainView,
  finalized,
  freshAddress,
  pool,
  sleep,
  startTestNet,
  statuses,
  transfer,
  waitAllFinalized,
  waitFor,
  type TestNet,
} from './helpers.js';

const NODES = ['validator-0', 'validator-1', 'validator-2', 'validator-3', 'full-0'];

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ApiError, `expected ApiError, got ${String(e)}`);
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    return true;
  });
}

async function postRaw(url: string, body: string | Uint8Array, type: string): Promise<{ status: number; json: { error?: { code: string } } }> {
  const r = await fetch(`${url}/v1/txs`, { method: 'POST', headers: { 'content-type': type }, body });
  return { status: r.status, json: (await r.json()) as { error?: { code: string } } };
}

async function gossipRejects(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /qnexus_p2p_gossip_messages_total\{topic="tx",result="reject"\} (\d+)/.exec(text);
  return m ? Number(m[1]) : 0;
}

describe('one shard: 4 validators + 1 full node as separate processes', function () {
  let net: TestNet;

  before(async function () {
    this.timeout(120_000);
    net = await startTestNet({ shards: 1, validators: 4, fullNodes: 1, accounts: 6, slotMs: 1000 });
  });

  after(async function () {
    this.timeout(60_000);
    await net?.cleanup();
  });

  it('every node finalizes blocks and reports the same chain', async () => {
    await waitAllFinalized(net, NODES, 3, 60_000);
    const views = await Promise.all(NODES.map((n) => chainView(net.devnet.client(n), 1, 3)));
    for (const v of views) assert.deepEqual(v, views[0]);
    const b = await net.devnet.client('full-0').block(2);
    assert.ok(b.certificate, 'finalized block carries its certificate');
    assert.ok(b.certificate.votes.length >= 3, 'certificate has > 2/3 of 4 equal stakes');
  });

  it('a transfer submitted to the full node becomes final; balances and state roots agree on all nodes', async () => {
    const full = net.devnet.client('full-0');
    const from = net.accounts[0]!;
    const to = freshAddress(201);
    const before = BigInt((await full.account(from.address)).balance);
    const tx = transfer(net, from, to, 1234n, BigInt((await full.account(from.address)).pendingNonce));
    const sub = await full.submitTx(tx.raw);
    assert.equal(sub.hash, tx.hash);
    const info = await full.waitForTx(tx.hash, { until: 'final', timeoutMs: 30_000 });
    assert.equal(info.status, 'final');
    const h = info.block!.height;
    await waitAllFinalized(net, NODES, h);
    for (const n of NODES) {
      const c = net.devnet.client(n);
      assert.equal((await c.tx(tx.hash)).status, 'final', `${n} sees the tx final`);
      assert.equal((await c.account(to)).balance, '1234', `${n} credits the recipient`);
      assert.equal(BigInt((await c.account(from.address)).balance), before - 1234n - 1n, `${n} debits amount + fee`);
    }
    const views = await Promise.all(NODES.map((n) => chainView(net.devnet.client(n), h, h)));
    for (const v of views) assert.deepEqual(v, views[0], 'same block hash and state root at the tx height');
  });

  it('rejects each kind of bad input with its error code, never gossips it, and keeps finalizing', async () => {
    const v1 = net.devnet.client('validator-1');
    const url = net.devnet.process('validator-1').apiUrl;
    const acct = net.accounts[1]!;
    const to = freshAddress(202);
    const nonce = BigInt((await v1.account(acct.address)).pendingNonce);
    const h0 = await finalized(v1);

    // bad signature: flip one bit of the signature
    const bad = transfer(net, acct, to, 5n, nonce);
    const badRaw = bad.raw.slice();
    badRaw[badRaw.length - 10]! ^= 1;
    await expectCode(v1.submitTx(badRaw), 'TX_BAD_SIGNATURE');
    // wrong chain id (signed correctly for another chain)
    const body: TxBody = { chainId: 'other-chain', nonce, fee: 1n, publicKey: acct.key.publicKey, payload: sendMsg('transfer', { to: parseAddress(to), amount: 5n }) };
    const wrongChain = encodeTx({ body, signature: getBackend('ml-dsa-44').sign(acct.key.secretKey, txSigningBytes(body)) });
    await expectCode(v1.submitTx(wrongChain), 'TX_WRONG_CHAIN');
    // wrong parameter set: an ML-DSA-65 key on an ML-DSA-44 chain
    const k65 = generateKeyPair('ml-dsa-65', new Uint8Array(32).fill(3));
    const b65: TxBody = { ...body, chainId: net.chainId, publicKey: k65.publicKey };
    await expectCode(v1.submitTx(encodeTx({ body: b65, signature: getBackend('ml-dsa-65').sign(k65.secretKey, txSigningBytes(b65)) })), 'TX_WRONG_SCHEME');
    // stale nonce: use one, then replay a different tx with the same nonce after it is final
    const ok = transfer(net, acct, to, 5n, nonce);
    await v1.submitTx(ok.raw);
    await v1.waitForTx(ok.hash, { until: 'final', timeoutMs: 30_000 });
    const stale = transfer(net, acct, to, 6n, nonce);
    await expectCode(v1.submitTx(stale.raw), 'TX_NONCE_STALE');
    // replay of the very same (already final) transaction
    await expectCode(v1.submitTx(ok.raw), 'TX_NONCE_STALE');
    // future nonce, beyond the mempool window
    const future = transfer(net, acct, to, 5n, nonce + 1000n);
    await expectCode(v1.submitTx(future.raw), 'TX_NONCE_FUTURE');
    // insufficient funds
    const rich = transfer(net, acct, to, 10n ** 18n, nonce + 1n);
    await expectCode(v1.submitTx(rich.raw), 'TX_INSUFFICIENT_FUNDS');
    // fee below the genesis minimum
    await expectCode(v1.submitTx(transfer(net, acct, to, 5n, nonce + 1n, 0n).raw), 'TX_FEE_TOO_LOW');
    // oversized and malformed bytes, binary and JSON
    await expectCode(v1.submitTx(new Uint8Array(MAX_TX_BYTES + 1), { binary: true }), 'TX_TOO_LARGE');
    await expectCode(v1.submitTx(new Uint8Array([1, 2, 3, 4, 5]), { binary: true }), 'TX_MALFORMED');
    await expectCode(v1.submitTx(ok.raw.slice(0, ok.raw.length - 1)), 'TX_MALFORMED');
    const unknownField = await postRaw(url, JSON.stringify({ tx: Buffer.from(ok.raw).toString('hex'), extra: 1 }), 'application/json');
    assert.equal(unknownField.status, 400);
    assert.equal(unknownField.json.error?.code, 'UNKNOWN_FIELD');
    const notJson = await postRaw(url, '{nope', 'application/json');
    assert.equal(notJson.json.error?.code, 'BAD_REQUEST');
    const badType = await postRaw(url, 'x', 'text/plain');
    assert.equal(badType.status, 415);

    // None of the rejected transactions reached any other node.
    await sleep(1500);
    for (const n of NODES.filter((x) => x !== 'validator-1')) {
      for (const h of [stale.hash, future.hash, rich.hash]) {
        await expectCode(net.devnet.client(n).tx(h), 'TX_UNKNOWN');
      }
    }
    // The network kept finalizing.
    await waitAllFinalized(net, NODES, h0 + 3, 30_000);
  });

  it('malformed gossip from a foreign peer is rejected and scored down; the network keeps finalizing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qnexus-attacker-'));
    const target = net.devnet.process('validator-2');
    const attacker = await createP2PNode({
      peerKeyPath: join(dir, 'peer.key'),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: [target.multiaddr],
      maxMessageBytes: 1 << 20,
    });
    try {
      const topic = topics(net.chainId, 0).tx;
      assert.ok(await attacker.waitForTopicPeers(topic, 1, 20_000), 'attacker sees a tx-topic peer');
      const before = await gossipRejects(target.apiUrl);
      const h0 = await finalized(net.devnet.client('validator-2'));
      const good = transfer(net, net.accounts[2]!, freshAddress(203), 7n, 0n);
      const forged = good.raw.slice();
      forged[forged.length - 1]! ^= 0xff;
      await attacker.publish(topic, forged);
      await attacker.publish(topic, new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
      await waitFor('the target to count rejected gossip', () => gossipRejects(target.apiUrl), (n) => n >= before + 2, 15_000);
      // The forged transaction was not relayed: no node admitted it.
      for (const n of NODES) await expectCode(net.devnet.client(n).tx(good.hash), 'TX_UNKNOWN');
      await waitAllFinalized(net, NODES, h0 + 2, 30_000);
    } finally {
      await attacker.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('commits every accepted transaction exactly once, and the shard supply identity holds', async function () {
    this.timeout(240_000);
    const clients = NODES.map((n) => net.devnet.client(n));
    const senders = net.accounts.slice(0, 6);
    const perSender = 50;
    const recipients = [freshAddress(210), freshAddress(211), freshAddress(212)];
    // Sign everything first, then submit each sender's transactions in nonce
    // order but spread over all five nodes (so they reach proposers via gossip).
    const jobs: { raw: Uint8Array; hash: string; node: number }[] = [];
    for (const [si, s] of senders.entries()) {
      const n0 = BigInt((await clients[0]!.account(s.address)).pendingNonce);
      for (let k = 0; k < perSender; k++) {
        const tx = transfer(net, s, recipients[(si + k) % recipients.length]!, BigInt(1 + k), n0 + BigInt(k));
        jobs.push({ raw: tx.raw, hash: tx.hash, node: (si + k) % clients.length });
      }
    }
    const bySender = senders.map((_, si) => jobs.slice(si * perSender, (si + 1) * perSender));
    const accepted: string[] = [];
    await pool(bySender, senders.length, async (list) => {
      for (const j of list) {
        try {
          await clients[j.node]!.submitTx(j.raw, { binary: true });
          accepted.push(j.hash);
        } catch (e) {
          if (!(e instanceof ApiError)) throw e;
          // A node may not have seen the previous nonce yet (future-nonce window), or be momentarily busy: resubmit once to the first node.
          await clients[0]!.submitTx(j.raw, { binary: true });
          accepted.push(j.hash);
        }
      }
    });
    assert.equal(accepted.length, senders.length * perSender);
    const v0 = clients[0]!;
    await waitFor(
      'all accepted transactions to be final',
      async () => (await pool(accepted, 16, (h) => v0.tx(h))).filter((t) => t.status !== 'final').length,
      (left) => left === 0,
      180_000,
      1000,
    );
    const head = await finalized(v0);
    await waitAllFinalized(net, NODES, head);
    // Supply is read first; the scan below then covers exactly the blocks it reflects.
    const genesisSupply = net.devnet.genesis.accounts.reduce((s, a) => s + a.balance, 0n);
    const s0 = await v0.supply();
    assert.ok(s0.height >= head);
    // Scan the whole chain: every accepted hash appears exactly once; no hash appears twice.
    const seen = new Map<string, number>();
    let totalTxs = 0;
    for (let h = 1; h <= s0.height; h++) {
      const b = await v0.block(h);
      for (const t of b.txs) seen.set(t, (seen.get(t) ?? 0) + 1);
      totalTxs += b.txs.length;
    }
    for (const h of accepted) assert.equal(seen.get(h), 1, `tx ${h} is final exactly once`);
    for (const [h, n] of seen) assert.equal(n, 1, `tx ${h} appears ${n} times`);
    // Every transaction in this suite pays fee 1: burned (genesis feeBurnBps) or tipped to the
    // proposer (pending until the epoch ends, then sent to the beacon as a \`fees\` transfer).
    const identity = (s: typeof s0) => BigInt(s.balances) + BigInt(s.burned) + BigInt(s.fees) + BigInt(s.modules ?? '0') + BigInt(s.escrow) + BigInt(s.exported) - BigInt(s.imported);
    assert.equal(identity(s0), genesisSupply, 'balances + burned + fees + modules + escrow + exported − imported = genesis supply');
    assert.ok(BigInt(s0.burned) + BigInt(s0.fees) + BigInt(s0.escrow) + BigInt(s0.exported) <= BigInt(totalTxs), 'fees never exceed what the finalized txs paid');
    for (const c of clients) {
      const s = await c.supply();
      assert.equal(identity(s), genesisSupply, `invariant holds at height ${s.height}`);
    }
    // Independently: the balances of every address that can hold funds add up the same.
    // Users' balances only (`balances` leaves out module accounts such as the faucet's).
    const addrs = [...net.devnet.manifest.accounts.map((a) => a.address), ...recipients, freshAddress(201), freshAddress(202), freshAddress(203)];
    let sum = 0n;
    for (const a of new Set(addrs)) sum += BigInt((await v0.account(a)).balance);
    assert.equal(sum, BigInt((await v0.supply()).balances));
    // All nodes agree on the state root at the head.
    const roots = await Promise.all(clients.map(async (c) => (await c.block(head)).stateRoot));
    assert.equal(new Set(roots).size, 1);
  });

  it('a node started from scratch later syncs the finalized chain from peers and reaches the same state root', async () => {
    const v0 = net.devnet.client('validator-0');
    const target = await finalized(v0);
    const p = await net.devnet.addNode({ role: 'full' });
    const fresh = net.devnet.client(p.name);
    await waitFor(`${p.name} to sync to ${target}`, () => finalized(fresh), (h) => h >= target, 90_000);
    const [a, b] = await Promise.all([chainView(v0, 1, target), chainView(fresh, 1, target)]);
    assert.deepEqual(b, a, 'same block hashes and state roots at every height');
    // …and then it follows gossip like everyone else.
    await waitFor(`${p.name} to keep following`, () => finalized(fresh), (h) => h >= target + 2, 30_000);
    const ss = await statuses(net, ['validator-0', p.name]);
    assert.equal(ss[1]!.chainId, ss[0]!.chainId);
  });
});
