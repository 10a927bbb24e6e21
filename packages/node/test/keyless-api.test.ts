import { sendMsg } from '@qnexus/state';
// Keyless transactions over the HTTP API: POST /v1/txs refuses one whose sender has no registered key
// (422 TX_KEY_UNKNOWN), and once admitted and final, GET /v1/txs/{hash} and the account view show its sender.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressFromPublicKey, formatAddress, generateKeyPair, getBackend, toHex, type KeyPair } from '@qnexus/crypto';
import { encodeTx, openTx, txSigningBytes, type TxBody, type TxEnvelope } from '@qnexus/types';
import { ChainStore } from '@qnexus/db';
import { Logger } from '@qnexus/runtime';
import type { ApiContext } from '../src/api.js';
import { Chain, type Candidate } from '../src/chain.js';
import { createMetrics } from '../src/metrics.js';
import { TxVerifier } from '../src/verifier.js';
import { certify, startTestApi, unitGenesis } from './helpers.js';

const b = getBackend('ml-dsa-44');
const vals: KeyPair[] = [1, 2, 3, 4].map((i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(i)));
const user = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(50));
const outsider = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(60));
const beaconKey = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(70));
const addrOf = (k: KeyPair) => formatAddress(addressFromPublicKey(k.publicKey));

function transfer(nonce: bigint, keyless: boolean): TxEnvelope {
  const common = { chainId: 'unit', nonce, fee: 1n, payload: sendMsg('transfer', { to: addressFromPublicKey(outsider.publicKey), amount: 10n }) };
  const body: TxBody = keyless ? { ...common, address: addressFromPublicKey(user.publicKey) } : { ...common, publicKey: user.publicKey };
  return openTx(encodeTx({ body, signature: b.sign(user.secretKey, txSigningBytes(body)) }));
}

describe('node: keyless transactions over the API', () => {
  const log = new Logger('json', 'error');
  const metrics = createMetrics();
  const verifier = new TxVerifier('ml-dsa-44', metrics);
  let dir: string;
  let store: ChainStore;
  let chain: Chain;
  let server: Server;
  let url: string;
  let ctx: ApiContext;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qnexus-keyless-api-'));
    store = await ChainStore.open(dir);
    chain = await Chain.open(store, unitGenesis(vals, beaconKey, { accounts: [{ address: addrOf(user), balance: 1_000_000n }] }), 0, verifier, log);
    ({ server, url, ctx } = await startTestApi({ chain, verifier, metrics, log, xshard: {} }));
  });
  after(async () => {
    server.closeAllConnections();
    server.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Build, certify and import the next block (at `slot`) with what the API's mempool selects. */
  async function commitNext(slot: number): Promise<Candidate> {
    const proposer = vals.find((v) => addrOf(v) === chain.proposerFor(slot))!;
    const c = chain.build(slot, ctx.mempool.select(100), addressFromPublicKey(proposer.publicKey), (m) => b.sign(proposer.secretKey, m));
    await chain.importCertified(c.block, c.raw, certify(chain.genesis, 0, c.block.header.height, slot, c.hash, vals.slice(0, 3)));
    ctx.mempool.onCommit(c.envs);
    return c;
  }

  const post = (env: TxEnvelope) => fetch(`${url}/v1/txs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tx: toHex(env.raw) }) });
  const getJson = async (path: string) => (await (await fetch(`${url}${path}`)).json()) as Record<string, unknown>;

  it('422 TX_KEY_UNKNOWN before the key is registered; accepted after, and shown like any transaction', async () => {
    const early = await post(transfer(0n, true));
    assert.equal(early.status, 422);
    const err = ((await early.json()) as { error: { code: string; message: string } }).error;
    assert.equal(err.code, 'TX_KEY_UNKNOWN');
    assert.match(err.message, /first transaction/);
    assert.equal((await getJson(`/v1/accounts/${addrOf(user)}`)).publicKey, null);

    assert.equal((await post(transfer(0n, false))).status, 202);
    await commitNext(1);
    assert.equal((await getJson(`/v1/accounts/${addrOf(user)}`)).publicKey, toHex(user.publicKey));

    const k1 = transfer(1n, true);
    const accepted = await post(k1);
    assert.equal(accepted.status, 202, JSON.stringify(await accepted.clone().json()));
    const pending = await getJson(`/v1/txs/${k1.hashHex}`);
    assert.equal(pending.status, 'pending');
    assert.equal(pending.from, addrOf(user));
    const c = await commitNext(2);
    assert.deepEqual(c.envs.map((e) => e.hashHex), [k1.hashHex]);
    const final = await getJson(`/v1/txs/${k1.hashHex}`);
    assert.equal(final.from, addrOf(user));
    assert.equal(final.nonce, '1');
    assert.equal(final.kind, 'transfer');
    assert.equal(final.raw, toHex(k1.raw));
  });
});
