// Sync from scratch across epochs with changing committees, over real libp2p with the engine and syncer.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressFromPublicKey, formatAddress, generateKeyPair, getBackend, type KeyPair } from '@qnexus/crypto';
import type { Genesis } from '@qnexus/types';
import { announce, capturingLogger, unitGenesis } from './helpers.js';
import { SyncPeers, certify, type SyncPeer } from './sync-peers.js';

const b = getBackend('ml-dsa-44');
const vals: KeyPair[] = [1, 2, 3, 4].map((i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(i)));
const fresh: KeyPair[] = [11, 12, 13].map((i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(i)));
const beaconKey = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(70));
const addrOf = (k: KeyPair) => formatAddress(addressFromPublicKey(k.publicKey));
const EPOCH = 4;
const SLOT_MS = 2000;
/** Committee per epoch: genesis, then two old members and a newcomer, then newcomers only. */
const COMMITTEES: KeyPair[][] = [vals, [vals[0]!, vals[1]!, fresh[0]!], fresh];
/** Block slots: two per epoch. */
const SLOTS = [1, 2, 5, 6, 9, 10];

function keyFor(address: string): KeyPair {
  const k = [...vals, ...fresh].find((v) => addrOf(v) === address);
  if (!k) throw new Error(`no key for ${address}`);
  return k;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('node: sync across epochs', function () {
  this.timeout(60_000);
  let dir: string;
  let G: Genesis;
  // Refused sync imports are logged at error level by the engine queue; keep them out of the test output.
  const log = capturingLogger('error').log;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'qnexus-sync-epochs-'));
    // Wall clock in slot 10 (epoch 2), with a few seconds before epoch 3.
    G = unitGenesis(vals, beaconKey, { chainId: 'unit-sync-ep', genesisTime: Date.now() - 10 * SLOT_MS - 200, slotMs: SLOT_MS, epochLength: EPOCH });
  });
  const peers = new SyncPeers(() => ({ dir, genesis: G }), log);
  const peer = (name: string): Promise<SyncPeer> => peers.peer(name);
  afterEach(async () => {
    await peers.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Commit the fixture chain on `p`, each block certified by `signersOf(epoch)` (the
   * epoch's committee unless a test forges it). commit() trusts its caller: this is the
   * history a peer serves, right or wrong.
   */
  async function history(p: SyncPeer, signersOf: (epoch: number) => KeyPair[]): Promise<void> {
    await p.chain.epochs.add(announce(G, beaconKey, 1, [COMMITTEES[1]!]), 't');
    await p.chain.epochs.add(announce(G, beaconKey, 2, [COMMITTEES[2]!]), 't');
    for (const slot of SLOTS) {
      const k = keyFor(p.chain.proposerFor(slot)!);
      const c = p.chain.build(slot, [], addressFromPublicKey(k.publicKey), (m) => b.sign(k.secretKey, m));
      const cert = certify(G, c, slot, signersOf(Math.floor(slot / EPOCH)));
      await p.engine.run(() => p.chain.commit(c, cert));
    }
  }

  it('a fresh node fetches each epoch announcement from its peer and verifies every certificate against its own epoch committee', async () => {
    const server = await peer('server');
    await history(server, (e) => COMMITTEES[e]!);
    const client = await peer('client');
    assert.equal(client.chain.committeeFor(1), undefined);
    await client.p2p.dial(server.p2p.multiaddrs()[0]!);
    for (let i = 0; i < 100 && client.chain.headHeight < SLOTS.length; i++) {
      await client.syncer.tick();
      if (client.chain.headHeight < SLOTS.length) await sleep(100);
    }
    assert.equal(client.chain.headHeight, SLOTS.length);
    assert.deepEqual(client.chain.headHash, server.chain.headHash);
    assert.deepEqual(client.chain.epochs.signed(2), server.chain.epochs.signed(2));
    assert.ok(client.chain.epochs.signed(1));
  });

  it('refuses a block of an epoch-2 round certified by the old committee, keeping what verified before it', async () => {
    const server = await peer('server');
    // Epoch 2's blocks carry the genesis committee's signatures: valid votes, wrong committee.
    await history(server, (e) => (e === 2 ? vals : COMMITTEES[e]!));
    const client = await peer('client');
    await client.p2p.dial(server.p2p.multiaddrs()[0]!);
    for (let i = 0; i < 20; i++) {
      await client.syncer.tick();
      if (client.chain.headHeight >= 4) break;
      await sleep(100);
    }
    await client.syncer.tick();
    assert.equal(client.chain.headHeight, 4, 'blocks of epochs 0 and 1 verify; the first epoch-2 block does not');
    assert.ok(client.chain.committeeFor(2), 'the epoch-2 committee itself was fetched');
  });
});
