// The API's per-client rate limit (token bucket) and the admin bearer token in the data dir, without a process.
// Served over HTTP by a real node: packages/node/test/admin.test.ts; by the beacon: packages/beacon/test/admin.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QnexusError } from '@qnexus/types';
import { ADMIN_TOKEN_FILE, loadOrCreateAdminToken, tokenMatches } from '../src/admin.js';
import { RateLimiter } from '../src/ratelimit.js';

describe('runtime: API rate limiter (token bucket)', () => {
  const clock = () => {
    let t = 1_000_000;
    return { now: () => t, advance: (ms: number) => (t += ms) };
  };

  it('allows the burst, then refuses with the time until the next token, and refills at the rate', () => {
    const c = clock();
    const rl = new RateLimiter({ ratePerSec: 10, burst: 5, now: c.now });
    for (let i = 0; i < 5; i++) assert.deepEqual(rl.take('a'), { ok: true }, `request ${i}`);
    assert.deepEqual(rl.take('a'), { ok: false, retryAfterMs: 100 });
    c.advance(40);
    // 0.4 tokens back: 60 ms to go.
    assert.deepEqual(rl.take('a'), { ok: false, retryAfterMs: 60 });
    c.advance(60);
    assert.deepEqual(rl.take('a'), { ok: true });
    assert.equal(rl.take('a').ok, false);
    // Other clients have their own buckets.
    assert.deepEqual(rl.take('b'), { ok: true });
    // A long pause refills to the burst, never beyond.
    c.advance(60_000);
    for (let i = 0; i < 5; i++) assert.equal(rl.take('a').ok, true);
    assert.equal(rl.take('a').ok, false);
  });

  it('a clock stepping backwards adds no tokens', () => {
    const c = clock();
    const rl = new RateLimiter({ ratePerSec: 1, burst: 1, now: c.now });
    assert.equal(rl.take('a').ok, true);
    c.advance(-10_000);
    assert.deepEqual(rl.take('a'), { ok: false, retryAfterMs: 1000 });
  });

  it('memory is bounded: full buckets are swept, and beyond maxClients the least recently used go', () => {
    const c = clock();
    const rl = new RateLimiter({ ratePerSec: 100, burst: 10, sweepMs: 1000, maxClients: 50, now: c.now });
    for (let i = 0; i < 40; i++) rl.take(`10.0.0.${i}`);
    assert.equal(rl.size, 40);
    // 100 ms refill a bucket of 10 at 100/s; the next take after the sweep period drops all 40.
    c.advance(1000);
    rl.take('fresh');
    assert.equal(rl.size, 1);
    // A flood of distinct clients stays capped, keeping the most recent.
    for (let i = 0; i < 200; i++) rl.take(`flood-${i}`);
    assert.equal(rl.size, 50);
    // Evicting a client that is still limited hands it a fresh bucket (the documented cost of the cap): the newest survive.
    const keep = new RateLimiter({ ratePerSec: 1, burst: 1, maxClients: 2, now: c.now });
    keep.take('x');
    keep.take('y');
    keep.take('x'); // refused, but x is now the most recently used
    keep.take('z'); // evicts y
    assert.equal(keep.take('x').ok, false, 'x is still tracked and limited');
    assert.equal(keep.take('y').ok, true, 'y was evicted: a fresh bucket');
  });

  it('rejects nonsensical parameters', () => {
    assert.throws(() => new RateLimiter({ ratePerSec: 0, burst: 10 }), RangeError);
    assert.throws(() => new RateLimiter({ ratePerSec: 10, burst: 0 }), RangeError);
  });
});

describe('runtime: admin token file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'qnexus-token-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is created with mode 0600 holding 32 random bytes as hex, and reused afterwards', () => {
    const t = loadOrCreateAdminToken(dir);
    assert.match(t, /^[0-9a-f]{64}$/);
    const path = join(dir, ADMIN_TOKEN_FILE);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(readFileSync(path, 'utf8').trim(), t);
    assert.equal(loadOrCreateAdminToken(dir), t, 'same token on the next start');
    const other = mkdtempSync(join(tmpdir(), 'qnexus-token-'));
    try {
      assert.notEqual(loadOrCreateAdminToken(other), t, 'each data dir has its own');
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('refuses a file that does not hold a token', () => {
    writeFileSync(join(dir, ADMIN_TOKEN_FILE), 'hunter2\n', { mode: 0o600 });
    assert.throws(() => loadOrCreateAdminToken(dir), (e: unknown) => e instanceof QnexusError && e.code === 'BAD_CONFIG');
  });

  it('tokenMatches compares exactly', () => {
    const t = 'ab'.repeat(32);
    assert.equal(tokenMatches(t, t), true);
    assert.equal(tokenMatches(t.slice(0, 63) + 'c', t), false);
    assert.equal(tokenMatches(t.slice(0, 10), t), false);
    assert.equal(tokenMatches('', t), false);
  });
});
