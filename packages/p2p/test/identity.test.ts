import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadOrCreatePeerKey, peerIdFromKeyFile } from '../src/index.js';
import { Harness } from './helpers.js';

describe('p2p: peer identity', () => {
  const h = new Harness();
  afterEach(() => h.stopAll());

  it('persists the peer id across restarts; key file is created with mode 0600', async () => {
    const dir = await h.tmp();
    const keyPath = join(dir, 'nested', 'node.key');

    const first = await h.node('x', { peerKeyPath: keyPath });
    const id = first.peerId;
    assert.match(id, /^12D3KooW/); // Ed25519 peer ids start like this
    assert.ok(first.multiaddrs().every((a) => a.endsWith(`/p2p/${id}`)));
    await first.stop();

    const st = await stat(keyPath);
    assert.equal(st.mode & 0o777, 0o600);
    const before = await readFile(keyPath);

    const second = await h.node('y', { peerKeyPath: keyPath });
    assert.equal(second.peerId, id);
    assert.equal(await peerIdFromKeyFile(keyPath), id);
    assert.deepEqual(await readFile(keyPath), before, 'key file must not be rewritten');
  });

  it('peerIdFromKeyFile creates the key before any node starts (devnet manifests)', async () => {
    const keyPath = join(await h.tmp(), 'pre.key');
    const id = await peerIdFromKeyFile(keyPath);
    const node = await h.node('pre', { peerKeyPath: keyPath });
    assert.equal(node.peerId, id);
  });

  it('concurrent creation yields one key', async () => {
    const keyPath = join(await h.tmp(), 'race.key');
    const ids = await Promise.all(Array.from({ length: 8 }, () => peerIdFromKeyFile(keyPath)));
    assert.equal(new Set(ids).size, 1);
  });

  it('refuses a corrupt key file instead of silently replacing the identity', async () => {
    const keyPath = join(await h.tmp(), 'bad.key');
    await writeFile(keyPath, new Uint8Array([1, 2, 3]));
    await assert.rejects(loadOrCreatePeerKey(keyPath), /not a valid/);
  });
});

describe('p2p: addresses', () => {
  const h = new Harness();
  afterEach(() => h.stopAll());

  it('announces the configured addresses (with /p2p/) instead of the listen addresses', async () => {
    const n = await h.node('ann', { announce: ['/ip4/10.1.2.3/tcp/4001', '/dns4/node-1/tcp/4001'] });
    assert.deepEqual(n.multiaddrs().sort(), [
      `/dns4/node-1/tcp/4001/p2p/${n.peerId}`,
      `/ip4/10.1.2.3/tcp/4001/p2p/${n.peerId}`,
    ]);
  });
});
