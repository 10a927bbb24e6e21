// The API server's limits without a process: their defaults and ranges, what each request costs, and the guard's
// buckets. The same limits against real nodes over real sockets: packages/node/test/http-limits.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { QnexusError } from '@qnexus/types';
import { ApiGuard, httpServerLimits, requestCost } from '../src/admin.js';

describe('runtime: API server limits (unit)', () => {
  it('limits default sanely and refuse nonsense with BAD_CONFIG', () => {
    const d = httpServerLimits();
    assert.ok(d.maxConnectionsPerIp < d.maxConnections);
    assert.ok(d.headersTimeoutMs <= d.requestTimeoutMs);
    assert.deepEqual(httpServerLimits({ maxConnectionsPerIp: 3 }), { ...d, maxConnectionsPerIp: 3 });
    const bad = (e: unknown) => e instanceof QnexusError && e.code === 'BAD_CONFIG';
    assert.throws(() => httpServerLimits({ maxConnections: 0 }), bad);
    assert.throws(() => httpServerLimits({ maxConnectionsPerIp: 1.5 }), bad);
    assert.throws(() => httpServerLimits({ headersTimeoutMs: 20_000, requestTimeoutMs: 10_000 }), bad);
    assert.throws(() => httpServerLimits({ requestTimeoutMs: Number.NaN }), bad);
  });

  it('submissions, evidence and blocks cost more than a status read', () => {
    assert.equal(requestCost('GET', '/v1/status'), 1);
    assert.equal(requestCost('GET', '/v1/nowhere'), 1);
    assert.ok(requestCost('POST', '/v1/txs') > requestCost('GET', '/v1/blocks/latest'));
    assert.ok(requestCost('GET', '/v1/blocks/latest') > 1);
    // A search may read a block by hash: it costs what that read costs.
    assert.equal(requestCost('GET', '/v1/search'), requestCost('GET', '/v1/blocks/latest'));
    assert.ok(requestCost('POST', '/v1/evidence') >= requestCost('POST', '/v1/txs'));
    // A GET of the same path is a read (e.g. GET /v1/evidence lists what was seen).
    assert.equal(requestCost('GET', '/v1/evidence'), 1);
    // The block list is charged for the blocks it reads: the default 20, or its limit.
    const one = requestCost('GET', '/v1/blocks/7');
    assert.equal(requestCost('GET', '/v1/blocks', new URLSearchParams()), 20 * one);
    assert.equal(requestCost('GET', '/v1/blocks', new URLSearchParams('limit=5')), 5 * one);
    assert.equal(requestCost('GET', '/v1/blocks', new URLSearchParams('limit=500')), 100 * one);
    assert.equal(requestCost('GET', '/v1/blocks', new URLSearchParams('limit=x')), one);
  });

  it('a request costing more than the burst takes the whole bucket instead of being refused forever', () => {
    const dir = mkdtempSync(join(tmpdir(), 'qnexus-guard-'));
    try {
      let t = 0;
      const g = new ApiGuard({ dataDir: dir, rateLimit: 1, rateBurst: 2, registry: new Registry(), now: () => t });
      const req = { method: 'POST', socket: { remoteAddress: '::ffff:10.0.0.1' } } as never;
      g.limit(req, '/v1/txs');
      assert.throws(() => g.limit(req, '/v1/txs'), (e: unknown) => e instanceof QnexusError && e.code === 'RATE_LIMITED');
      t += 2_000;
      g.limit(req, '/v1/txs');
      // The IPv4-mapped form and the plain one are one client.
      assert.throws(() => g.limit({ method: 'GET', socket: { remoteAddress: '10.0.0.1' } } as never, '/v1/status'), (e: unknown) => e instanceof QnexusError && e.code === 'RATE_LIMITED');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
