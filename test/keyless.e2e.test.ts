// Keyless transactions on a running devnet (issue 18): an account's first transaction carries its
// public key; once that is final, `qnexus tx transfer` and the SDK's transferAndWait name the sender by
// address only (1,292 fewer bytes with ML-DSA-44), and every node, validators and the full node,
// validates and finalizes them against the key the state registered. A keyless transaction of an
// account whose key is not registered is refused with TX_KEY_UNKNOWN (422). One small shard.
import { strict as assert } from 'node:assert';
import { fromHex } from '@qnexus/crypto';
import { openTx } from '@qnexus/types';
import { ApiError, buildTransfer, transferAndWait, type QnexusClient } from '@qnexus/sdk';
import { freshAddressOn, qnexusCli, startTestNet, type TestNet } from './helpers.js';

describe('e2e: keyless transactions', function () {
  this.timeout(240_000);
  let net: TestNet;
  let nodes: QnexusClient[];

  before(async function () {
    this.timeout(180_000);
    net = await startTestNet({ shards: 1, validators: 3, fullNodes: 1, accounts: 2 });
    nodes = net.devnet.manifest.processes.filter((p) => p.shard === 0).map((p) => net.devnet.client(p.name));
    await nodes[0]!.waitForHeight(1, 60_000, { finalized: true });
  });
  after(async function () {
    this.timeout(60_000);
    await net?.cleanup();
  });

  /** The transaction as final on every node of the shard; its public key (null: keyless). */
  async function finalEverywhere(hash: string): Promise<{ publicKey: Uint8Array | null; bytes: number }> {
    let raw = '';
    for (const c of nodes) {
      const t = await c.waitForTx(hash, { until: 'final', timeoutMs: 60_000 });
      raw = (t as { raw: string }).raw;
    }
    const env = openTx(fromHex(raw));
    return { publicKey: env.publicKey, bytes: env.raw.length };
  }

  it('qnexus tx transfer: the first carries the key, the next one (after it is final) does not', async () => {
    const from = net.devnet.manifest.accounts.find((a) => a.shard === 0)!;
    const full = net.devnet.manifest.processes.find((p) => p.shard === 0 && /full/.test(p.name))!;
    const send = async (seed: number) => {
      const r = await qnexusCli(['tx', 'transfer', '--keystore', from.keystore, '--passphrase-file', net.devnet.passphraseFile, '--node', full.apiUrl, '--to', freshAddressOn(net, 0, seed), '--amount', '5', '--wait', '--json']);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { hash: string }).hash;
    };
    const first = await finalEverywhere(await send(91));
    assert.ok(first.publicKey, 'the first transaction carries the key');
    const second = await finalEverywhere(await send(92));
    assert.equal(second.publicKey, null, 'the second names its sender by address');
    assert.equal(first.bytes - second.bytes, 1312 - 20);
  });

  it('the SDK: TX_KEY_UNKNOWN before the key is registered; transferAndWait keyed, then keyless', async () => {
    const a = net.accountsByShard[0]![1]!;
    const c = nodes[0]!;
    const early = buildTransfer({ key: a.key, chainId: net.chainId, to: freshAddressOn(net, 0, 93), amount: 1n, fee: 1n, nonce: 0n, keyless: true });
    const refused = await c.submitTx(early.raw).then(
      () => assert.fail('a keyless transaction before the key is registered must be refused'),
      (e: unknown) => e,
    );
    assert.ok(refused instanceof ApiError && refused.code === 'TX_KEY_UNKNOWN' && refused.status === 422, String(refused));
    const r1 = await transferAndWait(c, { key: a.key, to: freshAddressOn(net, 0, 94), amount: 2n, timeoutMs: 60_000 });
    assert.ok((await finalEverywhere(r1.hash)).publicKey);
    const r2 = await transferAndWait(c, { key: a.key, to: freshAddressOn(net, 0, 95), amount: 3n, timeoutMs: 60_000 });
    assert.equal((await finalEverywhere(r2.hash)).publicKey, null);
    // every node agrees on the account after both
    const views = await Promise.all(nodes.map((n) => n.account(a.address)));
    for (const v of views) assert.equal(v.nonce, '2');
  });
});
