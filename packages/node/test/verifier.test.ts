import { sendMsg } from '@qnexus/state';
// The node's signature verification under the configured crypto backend and knobs: TxVerifier
// and the worker pool with pqclean, the verify-once cache switched off (capacity 0), and a
// real node started with --crypto-backend pqclean / --verify-workers / --verify-cache-size.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CryptoBackendError,
  addressFromPublicKey,
  backendAvailable,
  backendStatus,
  formatAddress,
  generateKeyPair,
  getBackend,
  toHex,
  type BackendName,
  type KeyPair,
} from '@qnexus/crypto';
import { QnexusError, encodeTx, openTx, txSigningBytes, type TxEnvelope } from '@qnexus/types';
import { ChainStore } from '@qnexus/db';
import { Chain, candidateFromBlock, type Candidate } from '../src/chain.js';
import type { NodeConfig, RunningNode } from '../src/config.js';
import { Logger } from '@qnexus/runtime';
import { Mempool } from '../src/mempool.js';
import { createMetrics, type Metrics } from '../src/metrics.js';
import { TxVerifier } from '../src/verifier.js';
import { unitGenesis } from './helpers.js';
// Worker threads load the built verify-worker.js (Node 20 workers do not get tsx's hooks): the pool and a
// node with one come from dist (npm test builds first; so does `npx tsc -b`).
import { VerifyPool as BuiltVerifyPool } from '../dist/verify-pool.js';
import { startNode } from '../dist/node.js';
import type { VerifyPool } from '../src/verify-pool.js';

const newPool = (size: number, backend?: BackendName): VerifyPool => new BuiltVerifyPool('ml-dsa-44', size, backend) as unknown as VerifyPool;

const REQUIRE_TOOLS = process.env.QNEXUS_REQUIRE_TOOLS === '1';

const noble = getBackend('ml-dsa-44');
const vals: KeyPair[] = [1, 2, 3, 4].map((i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(i)));
const user = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(50));
const outsider = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(60));
const beaconKey = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(70));
const addrOf = (k: KeyPair) => formatAddress(addressFromPublicKey(k.publicKey));
const genesis = (over: Parameters<typeof unitGenesis>[2] = {}) => unitGenesis(vals, beaconKey, { accounts: [{ address: addrOf(user), balance: 1_000_000n }], ...over });

/** A transfer signed with noble (what wallets and the CLI make). */
function transfer(nonce: bigint, chainId = 'unit'): TxEnvelope {
  const body = { chainId, nonce, fee: 1n, publicKey: user.publicKey, payload: sendMsg('transfer', { to: addressFromPublicKey(outsider.publicKey), amount: 10n }) };
  return openTx(encodeTx({ body, signature: noble.sign(user.secretKey, txSigningBytes(body)) }));
}

/** The same transaction with one bit of its signature flipped. */
function forged(env: TxEnvelope): TxEnvelope {
  const sig = env.tx.signature.slice();
  sig[7]! ^= 1;
  return openTx(encodeTx({ body: env.tx.body, signature: sig }));
}

async function counter(m: Metrics, which: 'sigVerify' | 'sigCacheHits'): Promise<number> {
  return (await m[which].get()).values.reduce((a, v) => a + v.value, 0);
}

/** Skip the pqclean cases with a notice when it is not installed (fail under QNEXUS_REQUIRE_TOOLS=1). */
function needPqclean(ctx: Mocha.Context): void {
  const st = backendStatus('pqclean');
  if (st.available) return;
  const msg = `pqclean is unavailable (${st.detail})`;
  if (REQUIRE_TOOLS) assert.fail(`${msg}, and QNEXUS_REQUIRE_TOOLS=1 requires it`);
  console.warn(`\n  !!!!!!!! SKIPPED: ${msg}; run npm install to build it (CI sets QNEXUS_REQUIRE_TOOLS=1) !!!!!!!!\n`);
  ctx.skip();
}

describe('node: signature verification backend and knobs', function () {
  this.timeout(60_000);

  describe('TxVerifier and VerifyPool with pqclean', () => {
    before(function () {
      needPqclean(this);
    });

    it('verifies noble-signed transactions on the event loop, and refuses a forged signature', () => {
      const metrics = createMetrics();
      const v = new TxVerifier('ml-dsa-44', metrics, null, { backend: 'pqclean' });
      assert.equal(v.backend.name, 'pqclean');
      assert.equal(v.check(transfer(0n)), 'ok');
      assert.equal(v.check(forged(transfer(1n))), 'TX_BAD_SIGNATURE');
      // Consensus signatures (votes, headers) go through the same backend.
      const m = new Uint8Array([1, 2, 3]);
      assert.equal(v.verifyRaw('vote', vals[0]!.publicKey, m, noble.sign(vals[0]!.secretKey, m)), true);
      assert.equal(v.verifyRaw('vote', vals[1]!.publicKey, m, noble.sign(vals[0]!.secretKey, m)), false);
    });

    it('verifies noble-signed transactions on pqclean worker threads', async () => {
      const metrics = createMetrics();
      const pool = newPool(2, 'pqclean');
      try {
        assert.equal(pool.backend, 'pqclean');
        const v = new TxVerifier('ml-dsa-44', metrics, pool, { backend: 'pqclean' });
        const good = Array.from({ length: 40 }, (_, i) => transfer(BigInt(i)));
        assert.deepEqual(await Promise.all(good.map((e) => v.checkAsync(e))), good.map(() => 'ok'));
        assert.equal(await v.checkAsync(forged(transfer(99n))), 'TX_BAD_SIGNATURE');
      } finally {
        await pool.close();
      }
    });

    it('a chain and mempool on pqclean admit a noble-signed transaction and validate its block', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'qnexus-verifier-'));
      const store = await ChainStore.open(dir);
      try {
        const metrics = createMetrics();
        const verifier = new TxVerifier('ml-dsa-44', metrics, null, { backend: 'pqclean' });
        const chain = await Chain.open(store, genesis(), 0, verifier, new Logger('json', 'error'));
        assert.equal(chain.backend.name, 'pqclean');
        const mempool = new Mempool(chain, verifier);
        const tx = transfer(0n);
        assert.equal(await mempool.admit(tx), 'added');
        await assert.rejects(mempool.admit(forged(transfer(1n))), (e: unknown) => e instanceof QnexusError && e.code === 'TX_BAD_SIGNATURE');
        const c = buildBlock(chain, [tx]);
        assert.equal(chain.validate(c, 1), null);
      } finally {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  it('the pool hands its backend to the workers by name: one that cannot load fails the requests (no hang, no fallback)', async () => {
    const pool = newPool(1, 'bogus' as BackendName);
    try {
      const env = transfer(0n);
      await assert.rejects(pool.verify(user.publicKey, env.signBytes, env.tx.signature), /unknown signature backend "bogus"/);
      // Later requests fail at once too.
      await assert.rejects(pool.verify(user.publicKey, env.signBytes, env.tx.signature), /unknown signature backend "bogus"/);
    } finally {
      await pool.close();
    }
  });

  it('an unknown backend is refused by TxVerifier with CryptoBackendError', () => {
    assert.throws(
      () => new TxVerifier('ml-dsa-44', createMetrics(), null, { backend: 'bogus' as BackendName }),
      (e: unknown) => e instanceof CryptoBackendError && e.code === 'CRYPTO_BACKEND_UNKNOWN',
    );
  });

  describe('verify-once cache', () => {
    it('default capacity: the second check of a transaction is a cache hit', async () => {
      const metrics = createMetrics();
      const v = new TxVerifier('ml-dsa-44', metrics);
      const tx = transfer(0n);
      assert.equal(v.check(tx), 'ok');
      assert.equal(v.check(tx), 'ok');
      assert.equal(await counter(metrics, 'sigVerify'), 1);
      assert.equal(await counter(metrics, 'sigCacheHits'), 1);
      assert.equal(v.cacheSize, 1);
    });

    it('capacity 0 caches nothing: every check verifies (event loop and pool), sigCacheHits stays 0', async () => {
      const metrics = createMetrics();
      const pool = newPool(1);
      try {
        const v = new TxVerifier('ml-dsa-44', metrics, pool, { capacity: 0 });
        assert.equal(v.capacity, 0);
        const tx = transfer(0n);
        for (let i = 0; i < 3; i++) assert.equal(v.check(tx), 'ok');
        for (let i = 0; i < 3; i++) assert.equal(await v.checkAsync(tx), 'ok');
        assert.equal(await counter(metrics, 'sigVerify'), 6);
        assert.equal(await counter(metrics, 'sigCacheHits'), 0);
        assert.equal(v.cacheSize, 0);
      } finally {
        await pool.close();
      }
    });

    it('capacity 0 through admission and block validation: the block verifies its transaction again', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'qnexus-verifier-'));
      const store = await ChainStore.open(dir);
      try {
        const metrics = createMetrics();
        const verifier = new TxVerifier('ml-dsa-44', metrics, null, { capacity: 0 });
        const chain = await Chain.open(store, genesis(), 0, verifier, new Logger('json', 'error'));
        const mempool = new Mempool(chain, verifier);
        const tx = transfer(0n);
        assert.equal(await mempool.admit(tx), 'added');
        const before = await counter(metrics, 'sigVerify');
        assert.equal(chain.validate(buildBlock(chain, [tx]), 1), null);
        assert.ok((await counter(metrics, 'sigVerify')) > before, 'validation verified the transaction again');
        assert.equal(await counter(metrics, 'sigCacheHits'), 0);
      } finally {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it("a transaction's verdict serves its block's validation, and leaves the cache once the block is final", async () => {
      const dir = mkdtempSync(join(tmpdir(), 'qnexus-verifier-'));
      const store = await ChainStore.open(dir);
      try {
        const metrics = createMetrics();
        const verifier = new TxVerifier('ml-dsa-44', metrics);
        const chain = await Chain.open(store, genesis(), 0, verifier, new Logger('json', 'error'));
        const mempool = new Mempool(chain, verifier);
        const [t0, t1] = [transfer(0n), transfer(1n)];
        assert.equal(await mempool.admit(t0), 'added');
        assert.equal(await mempool.admit(t1), 'added');
        assert.equal(verifier.cacheSize, 2);
        assert.equal(chain.validate(buildBlock(chain, [t0]), 1), null);
        assert.equal(await counter(metrics, 'sigCacheHits'), 1, 'validation found the verdict');
        mempool.onCommit([t0]);
        assert.equal(verifier.cacheSize, 1, "the final transaction's entry is gone, the pending one's stays");
        assert.equal(verifier.check(t1), 'ok');
        assert.equal(await counter(metrics, 'sigCacheHits'), 2);
      } finally {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a negative capacity is refused', () => {
      assert.throws(() => new TxVerifier('ml-dsa-44', createMetrics(), null, { capacity: -1 }), RangeError);
    });
  });

  describe('a node started with the knobs', function () {
    this.timeout(120_000);
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'qnexus-verifier-node-'));
    });
    after(() => {
      rmSync(dir, { recursive: true, force: true });
    });

    const config = (name: string, over: Partial<NodeConfig>): NodeConfig => ({
      dataDir: join(dir, name),
      genesis: genesis({ genesisTime: Date.now() }),
      shard: 0,
      validatorKey: null,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: [],
      apiHost: '127.0.0.1',
      apiPort: 0,
      logFormat: 'json',
      logLevel: 'error',
      ...over,
    });

    async function submit(node: RunningNode, env: TxEnvelope): Promise<{ status: number; body: any }> {
      const r = await fetch(`${node.info.apiUrl}/v1/txs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tx: toHex(env.raw) }) });
      return { status: r.status, body: await r.json() };
    }

    it('pqclean, no verify workers, no cache: admits noble-signed txs, reports the backend in /v1/status and /metrics', async function () {
      needPqclean(this);
      const node = await startNode(config('pq', { cryptoBackend: 'pqclean', verifyWorkers: 0, verifyCacheSize: 0, txGossipBatch: 8 }));
      try {
        const status = (await (await fetch(`${node.info.apiUrl}/v1/status`)).json()) as { cryptoBackend: string };
        assert.equal(status.cryptoBackend, 'pqclean');
        const ok = await submit(node, transfer(0n));
        assert.equal(ok.status, 202, JSON.stringify(ok.body));
        assert.equal(ok.body.status, 'pending');
        const bad = await submit(node, forged(transfer(1n)));
        assert.equal(bad.status, 400);
        assert.equal(bad.body.error.code, 'TX_BAD_SIGNATURE');
        const metrics = await (await fetch(`${node.info.apiUrl}/metrics`)).text();
        assert.match(metrics, /^qnexus_crypto_backend_info\{backend="pqclean",scheme="ml-dsa-44"\} 1$/m);
        assert.match(metrics, /^qnexus_crypto_verify_cache_hits_total 0$/m);
      } finally {
        await node.stop();
      }
    });

    it('auto by default (pqclean where it loads, else noble), with a pool of workers', async () => {
      const node = await startNode(config('noble', { verifyWorkers: 1 }));
      const expected = backendAvailable('pqclean') ? 'pqclean' : 'noble';
      try {
        const status = (await (await fetch(`${node.info.apiUrl}/v1/status`)).json()) as { cryptoBackend: string };
        assert.equal(status.cryptoBackend, expected);
        assert.equal((await submit(node, transfer(0n))).status, 202);
        assert.equal((await submit(node, forged(transfer(1n)))).body.error.code, 'TX_BAD_SIGNATURE');
        assert.match(await (await fetch(`${node.info.apiUrl}/metrics`)).text(), new RegExp(`^qnexus_crypto_backend_info\\{backend="${expected}",scheme="ml-dsa-44"\\} 1$`, 'm'));
      } finally {
        await node.stop();
      }
    });

    it('refuses to start with an unknown backend or out-of-range knobs, before creating its data dir', async () => {
      await assert.rejects(startNode(config('bogus', { cryptoBackend: 'bogus' as BackendName })), (e: unknown) => e instanceof CryptoBackendError && e.code === 'CRYPTO_BACKEND_UNKNOWN');
      assert.equal(existsSync(join(dir, 'bogus')), false);
      for (const over of [{ txGossipBatch: 0 }, { txGossipBatch: 65 }, { verifyWorkers: -1 }, { verifyCacheSize: 1.5 }]) {
        await assert.rejects(startNode(config('bad', over)), (e: unknown) => e instanceof QnexusError && e.code === 'BAD_CONFIG', JSON.stringify(over));
      }
      assert.equal(existsSync(join(dir, 'bad')), false);
    });
  });
});

/** Block 1 at the slot whose proposer we can sign for, holding `txs`, as a peer receives it (not yet executed here). */
function buildBlock(chain: Chain, txs: TxEnvelope[]): Candidate {
  const slot = 1;
  const addr = chain.proposerFor(slot)!;
  const proposer = vals.find((v) => addrOf(v) === addr)!;
  const built = chain.build(slot, txs, addressFromPublicKey(proposer.publicKey), (m) => noble.sign(proposer.secretKey, m));
  return candidateFromBlock(built.block, built.raw);
}
