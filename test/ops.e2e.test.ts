// Operations against real node processes: the admin API's bearer token lives in each data dir.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError, QnexusClient } from '@qnexus/sdk';
import { BEACON_NAME } from '@qnexus/cli';
import { qnexus } from '../packages/cli/test/helpers.js';
import { startTestNet, waitFor, type TestNet } from './helpers.js';

describe('operations: admin API auth on a running devnet', function () {
  let net: TestNet;

  before(async function () {
    this.timeout(120_000);
    net = await startTestNet({ shards: 1, validators: 4, fullNodes: 0 });
  });

  after(async function () {
    this.timeout(60_000);
    await net?.cleanup();
  });

  it('401 without the token, 200 with the one in the data dir (SDK and CLI), on a node and the beacon', async function () {
    this.timeout(30_000);
    for (const name of ['validator-0', BEACON_NAME]) {
      const p = net.devnet.process(name);
      const tokenPath = join(p.dataDir, 'admin.token');
      const token = readFileSync(tokenPath, 'utf8').trim();
      assert.match(token, /^[0-9a-f]{64}$/);

      const anon = await fetch(`${p.apiUrl}/v1/admin/peers`);
      assert.equal(anon.status, 401, name);
      assert.equal(((await anon.json()) as { error: { code: string } }).error.code, 'UNAUTHORIZED');
      assert.match(anon.headers.get('www-authenticate') ?? '', /^Bearer/);
      await assert.rejects(new QnexusClient(p.apiUrl, { adminToken: 'ab'.repeat(32) }).adminLogLevel(), (e: unknown) => e instanceof ApiError && e.code === 'UNAUTHORIZED' && e.status === 401);

      const admin = new QnexusClient(p.apiUrl, { adminToken: token });
      const peers = await waitFor(`${name}'s peers`, () => admin.adminPeers(), (r) => r.count >= 1, 10_000);
      assert.ok(peers.peers.every((x) => x.addrs.length > 0), JSON.stringify(peers));
      assert.deepEqual(await admin.adminLogLevel(), { level: 'info' });

      // The CLI reads the same file from --data-dir.
      const cli = await qnexus(['admin', 'peers', '--node', p.apiUrl, '--data-dir', p.dataDir, '--json']);
      assert.equal(cli.code, 0, cli.stderr);
      assert.ok((JSON.parse(cli.stdout) as { count: number }).count >= 1);
      const wrong = join(net.devnet.dir, `${name}-wrong.token`);
      writeFileSync(wrong, 'cd'.repeat(32));
      const denied = await qnexus(['admin', 'log-level', 'debug', '--node', p.apiUrl, '--token-file', wrong]);
      assert.equal(denied.code, 1);
      assert.match(denied.stderr, /UNAUTHORIZED/);
      assert.deepEqual(await admin.adminLogLevel(), { level: 'info' }, 'the refused change did not happen');
    }
  });
});
