// Per-client API rate limit and the admin API (bearer token in the data dir), against real nodes over HTTP.
// The limiter and the token file alone: packages/runtime/test/admin.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, type KeyPair } from '@qnexus/crypto';
import type { Genesis } from '@qnexus/types';
import { ADMIN_TOKEN_FILE } from '@qnexus/runtime';
import { startNode } from '../src/node.js';
import type { RunningNode } from '../src/config.js';
import { unitGenesis } from './helpers.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('node: API rate limit and admin endpoints (real nodes)', function () {
  this.timeout(60_000);
  const vals: KeyPair[] = [1, 2, 3, 4].map((i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(i)));
  const beaconKey = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(70));
  let dir: string;
  let g: Genesis;
  /** Default limits: the admin API under test. */
  let a: RunningNode;
  /** A small limit (5/s, burst 10): the rate-limit test; also the peer A dials. */
  let b: RunningNode;
  let tokenA: string;
  let tokenB: string;

  const start = (name: string, over: { apiRateLimit?: number; apiRateBurst?: number } = {}) =>
    startNode({
      dataDir: join(dir, name),
      genesis: g,
      shard: 0,
      validatorKey: null,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: [],
      apiHost: '127.0.0.1',
      apiPort: 0,
      logFormat: 'json',
      logLevel: 'warn',
      ...over,
    });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qnexus-admin-'));
    g = unitGenesis(vals, beaconKey, { chainId: 'admin-test', genesisTime: Date.now() });
    a = await start('a');
    b = await start('b', { apiRateLimit: 5, apiRateBurst: 10 });
    tokenA = readFileSync(join(dir, 'a', ADMIN_TOKEN_FILE), 'utf8').trim();
    tokenB = readFileSync(join(dir, 'b', ADMIN_TOKEN_FILE), 'utf8').trim();
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const call = async (node: RunningNode, method: string, path: string, opts: { auth?: string; body?: unknown } = {}) => {
    const headers: Record<string, string> = {};
    if (opts.auth !== undefined) headers['authorization'] = opts.auth;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    const r = await fetch(node.info.apiUrl + path, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
    const text = await r.text();
    return { status: r.status, headers: r.headers, text, body: (r.headers.get('content-type') === 'application/json' ? JSON.parse(text) : null) as Record<string, any> | null };
  };
  const code = (r: { body: Record<string, any> | null }) => (r.body?.error as { code?: string } | undefined)?.code;

  it('429 RATE_LIMITED with Retry-After once a client exceeds its burst; /metrics draws on a bucket of its own; recovers after waiting', async () => {
    const results: Awaited<ReturnType<typeof call>>[] = [];
    // Burst 10 at 5/s: within ~40 back-to-back requests the bucket must run dry.
    for (let i = 0; i < 40; i++) {
      const r = await call(b, 'GET', '/v1/status');
      results.push(r);
      if (r.status === 429) break;
    }
    const ok = results.filter((r) => r.status === 200).length;
    assert.ok(ok >= 10, `the burst (10) is served first, got ${ok}`);
    const limited = results.at(-1)!;
    assert.equal(limited.status, 429, 'refused after the burst');
    assert.equal(code(limited), 'RATE_LIMITED');
    assert.match(limited.body!.error.message as string, /retry after \d+ ms/);
    const retryMs = Number(/retry after (\d+) ms/.exec(limited.body!.error.message as string)![1]);
    assert.ok(retryMs > 0 && retryMs <= 200, `one token at 5/s is at most 200 ms away, said ${retryMs}`);
    assert.equal(limited.headers.get('retry-after'), String(Math.ceil(retryMs / 1000)));
    // Any route, even an unknown one, takes a token and is refused while the bucket is empty.
    let unknown = await call(b, 'GET', '/v1/nowhere');
    for (let i = 0; i < 10 && unknown.status !== 429; i++) unknown = await call(b, 'GET', '/v1/nowhere');
    assert.equal(unknown.status, 429);
    // Prometheus keeps scraping: /metrics has its own bucket.
    const m = await call(b, 'GET', '/metrics');
    assert.equal(m.status, 200);
    const rejected = Number(/^qnexus_api_rate_limited_total (\d+)/m.exec(m.text)?.[1]);
    assert.ok(rejected >= 2, `qnexus_api_rate_limited_total counts the refusals (${rejected})`);
    // Waiting as told brings the client back.
    await sleep(retryMs + 250);
    assert.equal((await call(b, 'GET', '/v1/status')).status, 200);
  });

  it('the default limits do not get in the way of a few hundred quick requests from one client', async () => {
    // 32 at a time, like the e2e tests' pools: within the per-address connection cap (64) and the burst.
    const statuses: number[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < 300) {
          next++;
          statuses.push((await call(a, 'GET', '/v1/status')).status);
        }
      }),
    );
    assert.equal(statuses.length, 300);
    assert.deepEqual([...new Set(statuses)], [200]);
  });

  it('401 UNAUTHORIZED with WWW-Authenticate on every admin route without the right token', async () => {
    const routes: [string, string, unknown?][] = [
      ['GET', '/v1/admin/peers'],
      ['POST', '/v1/admin/peers', { multiaddr: b.info.multiaddrs[0] }],
      ['DELETE', `/v1/admin/peers/${b.info.peerId}`],
      ['GET', '/v1/admin/log-level'],
      ['PUT', '/v1/admin/log-level', { level: 'debug' }],
      ['GET', '/v1/admin/nothing-here'],
    ];
    const wrongs: (string | undefined)[] = [undefined, `Bearer ${'0'.repeat(64)}`, `Bearer ${tokenB}`, `Basic ${Buffer.from(`admin:${tokenA}`).toString('base64')}`, 'Bearer', `Bearer ${tokenA.slice(0, 63)}`];
    for (const [method, path, body] of routes) {
      for (const auth of wrongs) {
        const r = await call(a, method, path, { auth, body });
        assert.equal(r.status, 401, `${method} ${path} with ${auth ?? 'no Authorization'}`);
        assert.equal(code(r), 'UNAUTHORIZED');
        assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer\b/);
      }
    }
    // Nothing happened: no dial, no level change.
    assert.deepEqual((await call(a, 'GET', '/v1/admin/peers', { auth: `Bearer ${tokenA}` })).body, { peers: [], count: 0 });
    const lvl = await call(a, 'GET', '/v1/admin/log-level', { auth: `Bearer ${tokenA}` });
    assert.deepEqual(lvl.body, { level: 'warn' });
  });

  it('with the token: list, dial and hang up on peers; strict bodies', async () => {
    const auth = `Bearer ${tokenA}`;
    const empty = await call(a, 'GET', '/v1/admin/peers', { auth });
    assert.equal(empty.status, 200);
    assert.deepEqual(empty.body, { peers: [], count: 0 });

    const bad = await call(a, 'POST', '/v1/admin/peers', { auth, body: { multiaddr: b.info.multiaddrs[0], force: true } });
    assert.equal(bad.status, 400);
    assert.equal(code(bad), 'UNKNOWN_FIELD');
    assert.equal(code(await call(a, 'POST', '/v1/admin/peers', { auth, body: { multiaddr: 'not a multiaddr' } })), 'BAD_REQUEST');

    const dialed = await call(a, 'POST', '/v1/admin/peers', { auth, body: { multiaddr: b.info.multiaddrs[0] } });
    assert.equal(dialed.status, 200, dialed.text);
    assert.equal(dialed.body!.peerId, b.info.peerId);
    assert.equal(dialed.body!.connected, true);
    const listed = await call(a, 'GET', '/v1/admin/peers', { auth });
    const entry = (listed.body!.peers as { peerId: string; addrs: string[]; directions: string[] }[]).find((p) => p.peerId === b.info.peerId);
    assert.ok(entry, JSON.stringify(listed.body));
    assert.ok(entry.addrs.some((x) => x.startsWith('/ip4/127.0.0.1/tcp/')), JSON.stringify(entry));
    assert.ok(entry.directions.includes('outbound'));

    const gone = await call(a, 'DELETE', `/v1/admin/peers/${b.info.peerId}`, { auth });
    assert.equal(gone.status, 200, gone.text);
    assert.equal(gone.body!.disconnected, true);
    const after = await call(a, 'GET', '/v1/admin/peers', { auth });
    assert.ok(!(after.body!.peers as { peerId: string }[]).some((p) => p.peerId === b.info.peerId));
    assert.equal(code(await call(a, 'DELETE', `/v1/admin/peers/${b.info.peerId}`, { auth })), 'NOT_FOUND');
    assert.equal(code(await call(a, 'PATCH', '/v1/admin/peers', { auth })), 'METHOD_NOT_ALLOWED');
  });

  it('PUT /v1/admin/log-level changes the running logger', async () => {
    const auth = `Bearer ${tokenA}`;
    const captured: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    // Watch what the node (this process) writes while the level changes.
    const capture = async <T>(fn: () => Promise<T>): Promise<T> => {
      process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
        captured.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
        return (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
      }) as typeof process.stdout.write;
      try {
        return await fn();
      } finally {
        process.stdout.write = write;
      }
    };
    assert.equal(code(await call(a, 'PUT', '/v1/admin/log-level', { auth, body: { level: 'verbose' } })), 'BAD_REQUEST');
    assert.equal(code(await call(a, 'PUT', '/v1/admin/log-level', { auth, body: { level: 'info', extra: 1 } })), 'UNKNOWN_FIELD');

    const quiet = await call(a, 'PUT', '/v1/admin/log-level', { auth, body: { level: 'error' } });
    assert.deepEqual(quiet.body, { level: 'error', previous: 'warn' });
    // At error, the info line of a dial is not written…
    await capture(() => call(a, 'POST', '/v1/admin/peers', { auth, body: { multiaddr: b.info.multiaddrs[0] } }));
    assert.ok(!captured.some((l) => l.includes('admin: dialled peer')), captured.join(''));
    // …at info, the hang-up's is.
    const loud = await call(a, 'PUT', '/v1/admin/log-level', { auth, body: { level: 'info' } });
    assert.deepEqual(loud.body, { level: 'info', previous: 'error' });
    await capture(() => call(a, 'DELETE', `/v1/admin/peers/${b.info.peerId}`, { auth }));
    assert.ok(captured.some((l) => l.includes('admin: disconnected peer')), captured.join(''));
    assert.deepEqual((await call(a, 'GET', '/v1/admin/log-level', { auth })).body, { level: 'info' });
    await call(a, 'PUT', '/v1/admin/log-level', { auth, body: { level: 'warn' } });
  });

  it('the token survives a restart', async () => {
    await a.stop();
    a = await start('a');
    assert.equal(readFileSync(join(dir, 'a', ADMIN_TOKEN_FILE), 'utf8').trim(), tokenA);
    assert.equal((await call(a, 'GET', '/v1/admin/log-level', { auth: `Bearer ${tokenA}` })).status, 200);
  });
});
