// Sync's parallel pre-verification (certificate votes and tx signatures on the verify pool) does not let a bad block through:
// a range whose middle block carries a forged certificate vote, or a transaction with a forged signature (which the block hash
// does not cover), is refused at that block, the blocks before it are kept (and written), and the serving peer is penalised.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeTx, openTx, type Genesis } from '@qnexus/types';
import { candidateFromEnvs } from '../src/chain.js';
import type { Metrics } from '../src/metrics.js';
import type { Syncer } from '../src/sync.js';
import type { VerifyPool } from '../src/verify-pool.js';
import { capturingLogger, unitGenesis } from './helpers.js';
import { SyncPeers, addrOf, beaconKey, certifiedHistory, fakePool, user, validators as vals, type SyncPeer } from './sync-peers.js';

const BLOCKS = 6;
const BAD = 4;
const TXS = 2;

async function count(m: Metrics, kind: string): Promise<number> {
  return (await m.sigVerify.get()).values.find((v) => v.labels.kind === kind)?.value ?? 0;
}

describe('node: sync pre-verification', function () {
  this.timeout(60_000);
  let dir: string;
  let G: Genesis;
  const log = capturingLogger('error').log;
  const peers = new SyncPeers(() => ({ dir, genesis: G }), log);
  const peer = (name: string, pool: VerifyPool | null): Promise<SyncPeer> => peers.peer(name, { pool });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'qnexus-sync-verify-'));
    G = unitGenesis(vals, beaconKey, { chainId: 'unit-sync-verify', genesisTime: Date.now() - 20_000, accounts: [{ address: addrOf(user), balance: 1_000_000n }] });
  });
  afterEach(async () => {
    await peers.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The server's history, as certifiedHistory builds it; `tamper` forges block BAD as the server will serve it. */
  const history = (p: SyncPeer, tamper: 'vote' | 'tx' | null): Promise<void> =>
    certifiedHistory(p, G, BLOCKS, TXS, (slot, c, cert) => {
      if (slot !== BAD || tamper === null) return c;
      if (tamper === 'vote') {
        cert.votes[1]!.signature[200]! ^= 1;
        return c;
      }
      // Same tx id (it excludes the signature), so the same tx root, block hash and valid certificate: only the signature is forged.
      const env = c.envs[1]!;
      const forged = env.tx.signature.slice();
      forged[300]! ^= 1;
      const envs = [c.envs[0]!, openTx(encodeTx({ body: env.tx.body, signature: forged }))];
      assert.equal(envs[1]!.hashHex, env.hashHex);
      const tampered = candidateFromEnvs(c.block.header, c.block.signature, envs);
      tampered.exec = c.exec;
      return tampered;
    });

  for (const tamper of ['vote', 'tx'] as const) {
    it(`refuses the block with a forged ${tamper === 'vote' ? 'certificate vote' : 'transaction signature'} in the middle of a pre-verified range, keeps the blocks before it and penalises the peer`, async () => {
      const server = await peer('server', null);
      await history(server, tamper);
      const client = await peer('client', fakePool());
      await client.p2p.dial(server.p2p.multiaddrs()[0]!);
      await client.syncer.tick();
      assert.equal(client.chain.headHeight, BAD - 1, 'the blocks before the forged one are imported, the forged one and those after it are not');
      assert.equal(client.penalties.length, 1);
      assert.match(client.penalties[0]![1], tamper === 'vote' ? /BAD_CERTIFICATE/ : /BAD_BLOCK/);
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
  async function syncAll(limits: Partial<Syncer['serveLimits']> = {}): Promise<SyncPeer> {
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
