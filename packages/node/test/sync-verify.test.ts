// Sync's parallel pre-verification (certificate votes and tx signatures on the verify pool) does not let a bad block through:
// a range whose middle block carries a forged certificate vote, or a transaction with a forged signature (which the block hash
// does not cover), is refused at that block, the blocks before it are kept (and written), and the serving peer is penalised.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressFromPublicKey, formatAddress, generateKeyPair, getBackend, type KeyPair } from '@qnexus/crypto';
import { certificateVoteBody, encodeTx, openTx, txSigningBytes, voteSigningBytes, type Certificate, type Genesis, type TxEnvelope } from '@qnexus/types';
import { ChainStore } from '@qnexus/db';
import { createP2PNode, type P2PNode } from '@qnexus/p2p';
import { Chain, candidateFromEnvs } from '../src/chain.js';
import { Engine } from '../src/engine.js';
import { Mempool } from '../src/mempool.js';
import { createMetrics, type Metrics } from '../src/metrics.js';
import { Syncer } from '../src/sync.js';
import { topics } from '../src/topics.js';
import { TxVerifier } from '../src/verifier.js';
import type { VerifyPool } from '../src/verify-pool.js';
import { capturingLogger, unitGenesis } from './helpers.js';

const b = getBackend('ml-dsa-44');
const vals: KeyPair[] = [1, 2, 3, 4].map((i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(i)));
const user = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(50));
const sink = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(60));
const beaconKey = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(70));
const addrOf = (k: KeyPair) => formatAddress(addressFromPublicKey(k.publicKey));
const BLOCKS = 6;
const BAD = 4;
const TXS = 2;

/**
 * A stand-in for the worker pool (its workers only load from the built dist): verdicts come back
 * asynchronously, each after a random short delay so they settle out of order, and every ask is counted.
 */
function fakePool(): VerifyPool & { asked: number } {
  const pool = {
    asked: 0,
    verify: async (pk: Uint8Array, msg: Uint8Array, sig: Uint8Array) => {
      pool.asked++;
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 5)));
      return b.verify(pk, msg, sig);
    },
    close: async () => undefined,
  };
  return pool as unknown as VerifyPool & { asked: number };
}

interface Peer {
  chain: Chain;
  store: ChainStore;
  p2p: P2PNode;
  engine: Engine;
  syncer: Syncer;
  metrics: Metrics;
  pool: VerifyPool | null;
  penalties: string[];
}

async function count(m: Metrics, kind: string): Promise<number> {
  return (await m.sigVerify.get()).values.find((v) => v.labels.kind === kind)?.value ?? 0;
}

describe('node: sync pre-verification', function () {
  this.timeout(60_000);
  let dir: string;
  let G: Genesis;
  const started: Peer[] = [];
  const log = capturingLogger('error').log;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'qnexus-sync-verify-'));
    G = unitGenesis(vals, beaconKey, { chainId: 'unit-sync-verify', genesisTime: Date.now() - 20_000, accounts: [{ address: addrOf(user), balance: 1_000_000n }] });
  });
  afterEach(async () => {
    for (const p of started.splice(0)) {
      p.syncer.stop();
      await p.engine.stop();
      p.chain.epochs.stop();
      await p.p2p.stop();
      await p.store.close();
      await p.pool?.close();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  async function peer(name: string, pool: VerifyPool | null): Promise<Peer> {
    const metrics = createMetrics();
    const verifier = new TxVerifier('ml-dsa-44', metrics, pool);
    const store = await ChainStore.open(join(dir, name));
    const chain = await Chain.open(store, G, 0, verifier, log);
    const p2p = await createP2PNode({ peerKeyPath: join(dir, `${name}.key`), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], maxMessageBytes: 4 * 1024 * 1024, log: () => undefined });
    await chain.epochs.start(p2p);
    const t = topics(G.chainId, 0);
    const engine = new Engine(chain, new Mempool(chain, verifier), p2p, verifier, null, t, metrics, log);
    await engine.start();
    const syncer = new Syncer(chain, engine, p2p, t, metrics, log);
    syncer.reporterOptions = { out: { isTTY: false, write: () => true }, logEveryMs: 1e9 };
    await syncer.start();
    const penalties: string[] = [];
    const penalize = p2p.penalize.bind(p2p);
    p2p.penalize = (id: string, reason: string) => {
      penalties.push(reason);
      penalize(id, reason);
    };
    const p = { chain, store, p2p, engine, syncer, metrics, pool, penalties };
    started.push(p);
    return p;
  }

  const keyFor = (address: string): KeyPair => vals.find((v) => addrOf(v) === address)!;

  /**
   * Commit BLOCKS blocks of TXS transfers each on the server, certified by 3 of the 4 validators;
   * `tamper` may forge block BAD as the server will serve it. commit() trusts its caller.
   */
  async function history(p: Peer, tamper: 'vote' | 'tx' | null): Promise<void> {
    let nonce = 0n;
    for (let slot = 1; slot <= BLOCKS; slot++) {
      const txs: TxEnvelope[] = [];
      for (let i = 0; i < TXS; i++) {
        const body = { chainId: G.chainId, nonce: nonce++, fee: 1n, publicKey: user.publicKey, payload: { kind: 'transfer' as const, to: addressFromPublicKey(sink.publicKey), amount: 5n } };
        txs.push(openTx(encodeTx({ body, signature: b.sign(user.secretKey, txSigningBytes(body)) })));
      }
      const k = keyFor(p.chain.proposerFor(slot)!);
      let c = p.chain.build(slot, txs, addressFromPublicKey(k.publicKey), (m) => b.sign(k.secretKey, m));
      assert.equal(c.envs.length, TXS);
      const cert: Certificate = { height: c.block.header.height, round: slot, blockHash: c.hash, votes: [] };
      for (const s of vals.filter((v) => v !== k).slice(0, 3)) {
        const validator = addressFromPublicKey(s.publicKey);
        cert.votes.push({ validator, signature: b.sign(s.secretKey, voteSigningBytes(certificateVoteBody(cert, G.chainId, 0, validator))) });
      }
      if (slot === BAD && tamper === 'vote') cert.votes[1]!.signature[200]! ^= 1;
      if (slot === BAD && tamper === 'tx') {
        // Same tx id (it excludes the signature), so the same tx root, block hash and valid certificate: only the signature is forged.
        const env = c.envs[1]!;
        const forged = env.tx.signature.slice();
        forged[300]! ^= 1;
        const envs = [c.envs[0]!, openTx(encodeTx({ body: env.tx.body, signature: forged }))];
        assert.equal(envs[1]!.hashHex, env.hashHex);
        const exec = c.exec;
        c = candidateFromEnvs(c.block.header, c.block.signature, envs);
        c.exec = exec;
      }
      await p.engine.run(() => p.chain.commit(c, cert));
    }
  }

  for (const tamper of ['vote', 'tx'] as const) {
    it(`refuses the block with a forged ${tamper === 'vote' ? 'certificate vote' : 'transaction signature'} in the middle of a pre-verified range, keeps the blocks before it and penalises the peer`, async () => {
      const server = await peer('server', null);
      await history(server, tamper);
      const client = await peer('client', fakePool());
      await client.p2p.dial(server.p2p.multiaddrs()[0]!);
      await client.syncer.tick();
      assert.equal(client.chain.headHeight, BAD - 1, 'the blocks before the forged one are imported, the forged one and those after it are not');
      assert.equal(client.penalties.length, 1);
      assert.match(client.penalties[0]!, tamper === 'vote' ? /BAD_CERTIFICATE/ : /BAD_BLOCK/);
      const failures = (await client.metrics.syncFailures.get()).values;
      assert.deepEqual(failures.map((v) => [v.labels.reason, v.value]), [[tamper === 'vote' ? 'BAD_CERTIFICATE' : 'BAD_BLOCK', 1]]);
      // The good prefix is on disk, not only in memory.
      assert.equal(await client.store.headHeight(), BAD - 1);
      // The pre-verification ran on the pool: the good blocks' votes were verified once each, their txs came from the cache.
      const votes = await count(client.metrics, 'certificate');
      assert.ok(votes >= (BAD - 1) * 3 && votes <= BLOCKS * 3 + 1, `${votes} certificate verifications`);
      const hits = (await client.metrics.sigCacheHits.get()).values[0]?.value ?? 0;
      assert.ok(hits >= (BAD - 1) * TXS, `${hits} cache hits`);
      assert.ok((client.pool as VerifyPool & { asked: number }).asked >= (BAD - 1) * (3 + TXS));
    });
  }

  /**
   * A fresh client syncs the server's whole history (responses bounded by `limits`) and ends on its
   * head with nothing penalised, each signature verified once, on the pool: no range is fetched
   * (and pre-verified) twice, and the import found every verdict.
   */
  async function syncAll(limits: Partial<Syncer['serveLimits']> = {}): Promise<Peer> {
    const server = await peer('server', null);
    await history(server, null);
    server.syncer.serveLimits = { ...server.syncer.serveLimits, ...limits };
    const client = await peer('client', fakePool());
    await client.p2p.dial(server.p2p.multiaddrs()[0]!);
    await client.syncer.tick();
    assert.equal(client.chain.headHeight, BLOCKS);
    assert.deepEqual(client.chain.headHash, server.chain.headHash);
    assert.equal(await client.store.headHeight(), BLOCKS);
    assert.deepEqual(client.penalties, []);
    assert.equal((client.pool as VerifyPool & { asked: number }).asked, BLOCKS * (3 + TXS));
    assert.equal(await count(client.metrics, 'certificate'), BLOCKS * 3);
    return client;
  }

  it('syncs a good range with every signature verified once, on the pool', async () => {
    const client = await syncAll();
    // None verified again on the main thread: every tx check was a cache hit.
    assert.equal(await count(client.metrics, 'tx'), BLOCKS * TXS);
    assert.equal((await client.metrics.sigCacheHits.get()).values[0]?.value, BLOCKS * TXS);
  });

  for (const limit of ['bytes', 'blocks'] as const) {
    it(`syncs through responses shorter than asked (a server bounded by ${limit === 'bytes' ? 'response bytes' : 'an older, smaller batch'}), each signature verified once`, async () => {
      // About 2 blocks per response: the client asks for whole batches, then for the rest of each range.
      await syncAll(limit === 'bytes' ? { bytes: 20_000 } : { blocks: 2 });
    });
  }
});
