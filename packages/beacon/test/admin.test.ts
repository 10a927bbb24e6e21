// The beacon API shares the node's rate limit and admin endpoints (@qnexus/runtime): checked here against a real beacon process over HTTP.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { peerIdFromKeyFile } from '@qnexus/p2p';
import { ADMIN_TOKEN_FILE } from '@qnexus/runtime';
import { startBeacon, type RunningBeacon } from '../src/index.js';
import { key, testGenesis, unlocked } from './helpers.js';

describe('beacon: API rate limit and admin endpoints', function () {
  this.timeout(60_000);
  let dir: string;
  let beacon: RunningBeacon;
  let token: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qnexus-beacon-admin-'));
    const dataDir = join(dir, 'beacon');
    const beaconKey = key(9);
    const beaconPeerId = await peerIdFromKeyFile(join(dataDir, 'peer.key'));
    const genesis = testGenesis({ validators: [1, 2, 3, 4].map(key), beacon: beaconKey, beaconPeerId, genesisTime: Date.now() });
    beacon = await startBeacon({
      dataDir,
      genesis,
      beaconKey: unlocked(beaconKey),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: [],
      apiHost: '127.0.0.1',
      apiPort: 0,
      logFormat: 'json',
      logLevel: 'error',
      apiRateLimit: 5,
      apiRateBurst: 20,
    });
    const path = join(dataDir, ADMIN_TOKEN_FILE);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    token = readFileSync(path, 'utf8').trim();
  });
  after(async () => {
    await beacon?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const call = async (method: string, path: string, auth?: string, body?: unknown) => {
    const headers: Record<string, string> = {};
    if (auth !== undefined) headers['authorization'] = auth;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const r = await fetch(beacon.info.apiUrl + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    return { status: r.status, headers: r.headers, text, body: (r.headers.get('content-type') === 'application/json' ? JSON.parse(text) : null) as Record<string, any> | null };
  };

  it('admin routes: 401 without or with a wrong token, 200 with it; log level and peers', async () => {
    for (const [method, path, body] of [
      ['GET', '/v1/admin/peers'],
      ['POST', '/v1/admin/peers', { multiaddr: '/ip4/127.0.0.1/tcp/1' }],
      ['DELETE', '/v1/admin/peers/12D3KooWJWEKvSFbben74C7H4YtKjhPMTDxd7gP7zxWSUEeF27st'],
      ['GET', '/v1/admin/log-level'],
      ['PUT', '/v1/admin/log-level', { level: 'debug' }],
    ] as [string, string, unknown?][]) {
      for (const auth of [undefined, `Bearer ${'f'.repeat(64)}`]) {
        const r = await call(method, path, auth, body);
        assert.equal(r.status, 401, `${method} ${path}`);
        assert.equal(r.body?.error?.code, 'UNAUTHORIZED');
        assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer\b/);
      }
    }
    const auth = `Bearer ${token}`;
    assert.deepEqual((await call('GET', '/v1/admin/peers', auth)).body, { peers: [], count: 0 });
    assert.deepEqual((await call('GET', '/v1/admin/log-level', auth)).body, { level: 'error' });
    assert.deepEqual((await call('PUT', '/v1/admin/log-level', auth, { level: 'warn' })).body, { level: 'warn', previous: 'error' });
    assert.equal((await call('PUT', '/v1/admin/log-level', auth, { level: 'warn', x: 1 })).body?.error?.code, 'UNKNOWN_FIELD');
    assert.deepEqual((await call('GET', '/v1/admin/log-level', auth)).body, { level: 'warn' });
    await call('PUT', '/v1/admin/log-level', auth, { level: 'error' });
  });

  it('429 RATE_LIMITED with Retry-After after the burst; /metrics exempt', async () => {
    let last = await call('GET', '/v1/status');
    for (let i = 0; i < 60 && last.status !== 429; i++) last = await call('GET', '/v1/status');
    assert.equal(last.status, 429);
    assert.equal(last.body?.error?.code, 'RATE_LIMITED');
    assert.match(last.body?.error?.message as string, /retry after \d+ ms/);
    assert.equal(last.headers.get('retry-after'), '1');
    const m = await call('GET', '/metrics');
    assert.equal(m.status, 200);
    assert.match(m.text, /^qnexus_api_rate_limited_total [1-9]/m);
  });
});
