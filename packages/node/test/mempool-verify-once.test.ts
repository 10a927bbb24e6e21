import { sendMsg } from '@qnexus/state';
// Verify-once poisoning (issue 12): the tx id does not cover the signature, so a forged copy admitted at the same
// time as the genuine transaction must neither decide the genuine one's verdict nor borrow it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressFromPublicKey, bytesEqual, formatAddress, generateKeyPair, getBackend, sha256, toHex, type KeyPair } from '@qnexus/crypto';
import { QnexusError, encodeTx, openTx, txSigningBytes, type TxEnvelope } from '@qnexus/types';
import { ChainStore } from '@qnexus/db';
import { Chain } from '../src/chain.js';
import { Logger } from '@qnexus/runtime';
import { Mempool } from '../src/mempool.js';
import { createMetrics, type Metrics } from '../src/metrics.js';
import { TxVerifier, signatureDigest, signedTxId } from '../src/verifier.js';
import { unitGenesis } from './helpers.js';
// Worker threads load the built verify-worker.js (Node 20 workers do not get tsx's hooks): the pool comes from dist.
import { VerifyPool as BuiltVerifyPool } from '../dist/verify-pool.js';
import type { VerifyPool } from '../src/verify-pool.js';

const noble = getBackend('ml-dsa-44');
const vals: KeyPair[] = [1, 2, 3, 4].map((i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(i)));
const user = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(50));
const other = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(60));
const beaconKey = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(70));
const addrOf = (k: KeyPair) => formatAddress(addressFromPublicKey(k.publicKey));

function transfer(nonce: bigint): TxEnvelope {
  const body = { chainId: 'unit', nonce, fee: 1n, publicKey: user.publicKey, payload: sendMsg('transfer', { to: addressFromPublicKey(other.publicKey), amount: 10n }) };
  return openTx(encodeTx({ body, signature: noble.sign(user.secretKey, txSigningBytes(body)) }));
}

/** The keyless form of `transfer`: the sender named by address. */
function keylessTransfer(nonce: bigint): TxEnvelope {
  const body = { chainId: 'unit', nonce, fee: 1n, address: addressFromPublicKey(user.publicKey), payload: sendMsg('transfer', { to: addressFromPublicKey(other.publicKey), amount: 10n }) };
  return openTx(encodeTx({ body, signature: noble.sign(user.secretKey, txSigningBytes(body)) }));
}

/** The same transaction (same id) with one bit of its signature flipped. */
function forged(env: TxEnvelope): TxEnvelope {
  const sig = env.tx.signature.slice();
  sig[7]! ^= 1;
  return openTx(encodeTx({ body: env.tx.body, signature: sig }));
}

describe('node: mempool verify-once keyed by the signature', () => {
  const log = new Logger('json', 'error');
  let dir: string;
  let store: ChainStore;
  let pool: VerifyPool;
  let mempool: Mempool;
  let metrics: Metrics;

  before(() => {
    pool = new BuiltVerifyPool('ml-dsa-44', 1) as unknown as VerifyPool;
  });
  after(async () => {
    await pool.close();
  });
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qnexus-verify-once-'));
    store = await ChainStore.open(dir);
    const g = unitGenesis(vals, beaconKey, { accounts: [{ address: addrOf(user), balance: 1_000_000n }] });
    // Verdicts come back from worker threads: both admissions are in flight at once.
    metrics = createMetrics();
    const verifier = new TxVerifier('ml-dsa-44', metrics, pool);
    mempool = new Mempool(await Chain.open(store, g, 0, verifier, log), verifier);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const outcome = (r: PromiseSettledResult<string>): string => (r.status === 'fulfilled' ? r.value : r.reason instanceof QnexusError ? r.reason.code : String(r.reason));

  it('settled(id) follows an admission in flight: a proposal naming it waits for the verdict, then finds it in the pool', async () => {
    const env = transfer(0n);
    assert.equal(mempool.settled(env.hashHex), undefined, 'nothing in flight');
    // admit() hands the signature to a worker before its first await: in flight from here on.
    const admitted = mempool.admit(env);
    const settled = mempool.settled(env.hashHex);
    assert.ok(settled, 'in flight');
    assert.equal(mempool.get(env.hashHex), undefined);
    await settled;
    assert.ok(mempool.get(env.hashHex), 'in the pool once settled');
    assert.equal(await admitted, 'added');
    assert.equal(mempool.settled(env.hashHex), undefined, 'no longer in flight');
    // A forged copy in flight settles too, and leaves nothing in the pool: the caller fetches instead.
    const copy = forged(transfer(1n));
    const refused = mempool.admit(copy).catch((e: unknown) => (e instanceof QnexusError ? e.code : String(e)));
    const copySettled = mempool.settled(copy.hashHex);
    assert.ok(copySettled, 'the forged copy is in flight');
    await copySettled;
    assert.equal(mempool.get(copy.hashHex), undefined);
    assert.equal(await refused, 'TX_BAD_SIGNATURE');
  });

  it('a forged copy gossiped just before the genuine transaction does not make the genuine one fail', async () => {
    const genuine = transfer(0n);
    const copy = forged(genuine);
    assert.equal(copy.hashHex, genuine.hashHex, 'the id excludes the signature');
    const [f, g] = await Promise.allSettled([mempool.admit(copy), mempool.admit(genuine)]);
    assert.equal(outcome(f), 'TX_BAD_SIGNATURE');
    assert.equal(outcome(g), 'added');
    assert.ok(bytesEqual(mempool.get(genuine.hashHex)!.tx.signature, genuine.tx.signature));
  });

  it('a forged copy arriving while the genuine one is being verified does not inherit its verdict', async () => {
    const genuine = transfer(0n);
    const [g, f] = await Promise.allSettled([mempool.admit(genuine), mempool.admit(forged(genuine))]);
    assert.equal(outcome(g), 'added');
    assert.equal(outcome(f), 'TX_BAD_SIGNATURE');
    assert.ok(bytesEqual(mempool.get(genuine.hashHex)!.tx.signature, genuine.tx.signature), 'the pool holds the genuine signature');
    // Copies of the genuine transaction in flight together still share one verification.
    const checks = async () => (await metrics.sigVerify.get()).values.reduce((n, v) => n + v.value, 0);
    const before = await checks();
    const next = transfer(1n);
    const again = await Promise.allSettled([mempool.admit(next), mempool.admit(openTx(next.raw))]);
    assert.deepEqual(again.map(outcome).sort(), ['added', 'known']);
    assert.equal((await checks()) - before, 1, 'one signature check for both copies');
  });

  it('the signature digest is computed once per envelope and names the exact signed copy', () => {
    const genuine = transfer(0n);
    const d = signatureDigest(genuine);
    assert.deepEqual(d, sha256(genuine.tx.signature));
    assert.equal(signatureDigest(genuine), d, 'memoized on the envelope: the same array');
    assert.equal(signedTxId(genuine), `${genuine.hashHex}/${toHex(d)}`);
    const copy = forged(genuine);
    assert.equal(copy.hashHex, genuine.hashHex);
    assert.notEqual(signedTxId(copy), signedTxId(genuine));
    assert.equal(signedTxId(openTx(genuine.raw)), signedTxId(genuine), 'another envelope of the same bytes has the same name');
  });

  it('a keyless transaction from an account without a registered key is refused TX_KEY_UNKNOWN before any signature check', async () => {
    const checks = async () => (await metrics.sigVerify.get()).values.reduce((n, v) => n + v.value, 0);
    const before = await checks();
    const env = keylessTransfer(0n);
    const r = await Promise.allSettled([mempool.admit(env)]);
    assert.equal(outcome(r[0]!), 'TX_KEY_UNKNOWN');
    assert.match((r[0] as PromiseRejectedResult).reason.message, /send the public key with the account's first transaction/);
    assert.equal(await checks(), before);
    assert.equal(mempool.size, 0);
    // the keyed form of the same transfer is admitted
    assert.equal(await mempool.admit(transfer(0n)), 'added');
  });
});
