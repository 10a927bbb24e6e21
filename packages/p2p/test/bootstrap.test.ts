import assert from 'node:assert/strict';
import { join } from 'node:path';
import { peerIdFromKeyFile } from '../src/index.js';
import { Harness, freePort, sleep, waitFor } from './helpers.js';

describe('p2p: bootstrap', function () {
  this.timeout(60_000);
  const h = new Harness();
  afterEach(() => h.stopAll());

  it('keeps re-dialling a bootstrap peer that is not up yet, and after it restarts', async () => {
    const dir = await h.tmp();
    const port = await freePort();
    const bKey = join(dir, 'boot.key');
    const bId = await peerIdFromKeyFile(bKey);
    const bAddr = `/ip4/127.0.0.1/tcp/${port}/p2p/${bId}`;

    const a = await h.node('A', { bootstrap: [bAddr], bootstrapBackoffMs: { min: 200, max: 1000 } });
    await sleep(1200);
    assert.deepEqual(a.connectedPeers(), []);
    assert.ok(h.logs.some((l) => l.msg === 'bootstrap dial failed'));

    const b1 = await h.node('boot', { peerKeyPath: bKey, listen: [`/ip4/127.0.0.1/tcp/${port}`] });
    await waitFor('A connects to the late bootstrap peer', () => a.connectedPeers().includes(bId), 5000);

    // Bootstrap node restarts on the same address: A must come back by itself.
    await b1.stop();
    await waitFor('A notices the disconnect', () => !a.connectedPeers().includes(bId), 5000);
    await sleep(500);
    const b2 = await h.node('boot', { peerKeyPath: bKey, listen: [`/ip4/127.0.0.1/tcp/${port}`] });
    assert.equal(b2.peerId, bId);
    await waitFor('A reconnects to the restarted bootstrap peer', () => a.connectedPeers().includes(bId), 5000);
  });

  it('skips itself in the bootstrap list and rejects addresses without /p2p/', async () => {
    const dir = await h.tmp();
    const key = join(dir, 'self.key');
    const id = await peerIdFromKeyFile(key);
    const self = await h.node('self', { peerKeyPath: key, bootstrap: [`/ip4/127.0.0.1/tcp/1/p2p/${id}`] });
    assert.equal(self.peerId, id);
    await assert.rejects(h.node('bad', { bootstrap: ['/ip4/127.0.0.1/tcp/1'] }), /lacks \/p2p/);
  });
});

describe('p2p: lifecycle', () => {
  const h = new Harness();
  afterEach(() => h.stopAll());

  it('fails cleanly when the listen port is taken, and stop() is idempotent', async () => {
    const a = await h.node('A');
    const port = a.multiaddrs()[0]!.split('/')[4];
    await assert.rejects(h.node('B', { listen: [`/ip4/127.0.0.1/tcp/${port}`] }));
    await a.stop();
    await a.stop();
    assert.equal(await a.publish('t', new Uint8Array(1)), 0);
  });
});
