// The API server's own limits, against real nodes over real sockets on 127.0.0.1 (and 127.0.0.2 as a second client):
// header and request timeouts, per-IP and global connection caps, 413 closing the connection unread, the /metrics
// cache and its own bucket, request costs. The limits and costs alone: packages/runtime/test/http-limits.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, type KeyPair } from '@qnexus/crypto';
import type { Genesis } from '@qnexus/types';
import { MAX_API_BODY, METRICS_CACHE_MS } from '@qnexus/runtime';
import { startNode } from '../src/node.js';
import type { NodeConfig, RunningNode } from '../src/config.js';
import { embeddedNodeConfig, unitGenesis } from './helpers.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves with `p`, or rejects once `ms` have passed: an upper bound generous enough never to decide a test by itself. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** A raw client socket that records what it receives and when it closes. */
interface RawClient {
  socket: Socket;
  /** Everything received so far. */
  data(): string;
  /** Resolves once the socket has closed (by either side), with what it received. */
  closed: Promise<string>;
  isClosed(): boolean;
}

async function raw(url: string, localAddress = '127.0.0.1'): Promise<RawClient> {
  const u = new URL(url);
  const socket = connect({ host: u.hostname, port: Number(u.port), localAddress });
  let received = '';
  let closed = false;
  socket.on('data', (d) => (received += d.toString('latin1')));
  // Resets and EPIPE are expected here (the server closes sockets on purpose).
  socket.on('error', () => undefined);
  const closedP = new Promise<string>((r) =>
    socket.once('close', () => {
      closed = true;
      r(received);
    }),
  );
  await within(new Promise<void>((r, j) => {
    socket.once('connect', () => r());
    socket.once('close', () => j(new Error('closed before connecting')));
  }), 10_000, 'connect');
  return { socket, data: () => received, closed: closedP, isClosed: () => closed };
}

/** One request on a fresh connection (no keep-alive) from `localAddress`: status and body. */
function get(url: string, path: string, localAddress = '127.0.0.1', method = 'GET'): Promise<{ status: number; text: string; headers: Record<string, string | string[] | undefined> }> {
  const u = new URL(url);
  return within(
    new Promise((resolve, reject) => {
      const r = request({ host: u.hostname, port: Number(u.port), path, method, localAddress, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString(), headers: res.headers }));
        res.on('error', reject);
      });
      r.on('error', reject);
      r.end();
    }),
    20_000,
    `${method} ${path}`,
  );
}

/** A POST with a body, on a fresh connection. */
function post(url: string, path: string, body: Uint8Array, type = 'application/octet-stream', localAddress = '127.0.0.1'): Promise<{ status: number; text: string }> {
  const u = new URL(url);
  return within(
    new Promise((resolve, reject) => {
      const r = request({ host: u.hostname, port: Number(u.port), path, method: 'POST', localAddress, agent: false, headers: { 'content-type': type, 'content-length': body.length } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      });
      r.on('error', reject);
      r.end(body);
    }),
    20_000,
    `POST ${path}`,
  );
}

const code = (text: string) => (JSON.parse(text) as { error?: { code?: string } }).error?.code;

/** Sum of a metric's samples whose line contains every `labels` fragment. */
function metric(text: string, name: string, ...labels: string[]): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue;
    if (labels.every((l) => line.includes(l))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

describe('node: API server limits (real nodes, real sockets)', function () {
  this.timeout(120_000);
  const vals: KeyPair[] = [1, 2, 3, 4].map((i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(i)));
  const beaconKey = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(70));
  let dir: string;
  let g: Genesis;
  const running: RunningNode[] = [];
  const opened: Socket[] = [];

  const start = async (name: string, over: Partial<NodeConfig> = {}) => {
    const n = await startNode(embeddedNodeConfig(join(dir, name), g, over));
    running.push(n);
    return n;
  };
  const open = async (url: string, localAddress = '127.0.0.1') => {
    const c = await raw(url, localAddress);
    opened.push(c.socket);
    return c;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'qnexus-http-limits-'));
    g = unitGenesis(vals, beaconKey, { chainId: 'http-limits-test', genesisTime: Date.now() });
  });
  afterEach(() => {
    for (const s of opened.splice(0)) s.destroy();
  });
  after(async () => {
    for (const n of running) await n.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('slow-header, silent and slow-body sockets are closed by the server (408) while a normal client is served', async () => {
    const n = await start('timeouts', { apiHeadersTimeoutMs: 400, apiRequestTimeoutMs: 1_000 });
    const url = n.info.apiUrl;
    const timers: NodeJS.Timeout[] = [];
    try {
      // Slowloris: a request line, then one more header line every 100 ms, never the blank line.
      const slow = await Promise.all(Array.from({ length: 5 }, () => open(url)));
      for (const c of slow) {
        c.socket.write('GET /v1/status HTTP/1.1\r\nHost: x\r\n');
        const t = setInterval(() => {
          if (!c.isClosed()) c.socket.write('X-Slow: 1\r\n');
        }, 100);
        timers.push(t);
      }
      const silent = await open(url);
      // Headers complete, then the declared body trickles in.
      const slowBody = await open(url);
      slowBody.socket.write('POST /v1/txs HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n');
      timers.push(
        setInterval(() => {
          if (!slowBody.isClosed()) slowBody.socket.write('a');
        }, 100),
      );

      // Meanwhile an ordinary client is served, over and over.
      for (let i = 0; i < 5; i++) assert.equal((await get(url, '/v1/status')).status, 200);

      // The bound is generous (timeouts are 0.4 s and 1 s): it only keeps a broken server from hanging the test.
      const got = await within(Promise.all([...slow, silent].map((c) => c.closed)), 20_000, 'the server to close slow-header sockets');
      for (const text of got) assert.match(text, /^HTTP\/1\.1 408 /, 'answered 408 Request Timeout, then closed');
      await within(slowBody.closed, 20_000, 'the server to close the slow-body socket');
      assert.ok(!/^HTTP\/1\.1 2/.test(slowBody.data()), `a body that never completes is not served: ${slowBody.data().slice(0, 80)}`);
      assert.equal((await get(url, '/v1/status')).status, 200);
    } finally {
      for (const t of timers) clearInterval(t);
    }
  });

  it('caps connections per client IP and in total; a closed socket frees its slot', async () => {
    // Long timeouts: the idle sockets below must stay open while the caps are probed.
    const n = await start('caps', { apiMaxConnectionsPerIp: 3, apiMaxConnections: 5, apiHeadersTimeoutMs: 60_000, apiRequestTimeoutMs: 60_000 });
    const url = n.info.apiUrl;
    // The server accepts in connect order, so these three are the ones within 127.0.0.1's cap.
    const fill = await Promise.all([0, 1, 2].map(() => open(url)));

    // A fourth from 127.0.0.1 is closed at once, unanswered even though it sends a whole request.
    const over = await open(url);
    over.socket.write('GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(await within(over.closed, 20_000, 'the server to refuse the fourth socket'), '', 'no answer on a refused socket');
    for (const c of fill) assert.ok(!c.isClosed(), 'the sockets within the cap stay open');

    // Another address is served, on a connection that then stays busy (a request whose body never comes).
    const other = await open(url, '127.0.0.2');
    other.socket.write('GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n');
    await within(
      (async () => {
        while (!/^HTTP\/1\.1 200 [\s\S]*\r\n\r\n[\s\S]*"chainId"/.test(other.data())) await sleep(20);
      })(),
      20_000,
      'an answer to 127.0.0.2',
    );
    other.socket.write('POST /v1/txs HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 10\r\n\r\n');

    // One more from 127.0.0.2 makes 5 open: the next, though within 127.0.0.2's own cap, is dropped.
    await open(url, '127.0.0.2');
    const dropped = await open(url, '127.0.0.2');
    dropped.socket.write('GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(await within(dropped.closed, 20_000, 'the server to drop a socket beyond the total'), '');
    for (const c of fill) assert.ok(!c.isClosed(), 'a socket still waiting for its headers is not idle: the drop does not close it');

    // Closing a socket gives its slot back (the server learns of it asynchronously: a few tries, each a fresh connection).
    fill[0]!.socket.destroy();
    const retry = async (localAddress: string, path: string) => {
      for (let i = 0; i < 100; i++) {
        const r = await get(url, path, localAddress).catch(() => null);
        if (r?.status === 200) return r;
        await sleep(100);
      }
      return null;
    };
    assert.ok(await retry('127.0.0.1', '/v1/status'), 'a slot freed by a close is reusable from 127.0.0.1');

    for (const s of opened) if (s.localAddress === '127.0.0.2') s.destroy();
    const m = await retry('127.0.0.2', '/metrics');
    assert.ok(m, 'a scrape once 127.0.0.2 closed its sockets');
    assert.ok(metric(m.text, 'qnexus_api_connections_refused_total', 'reason="per-ip"') >= 1, 'per-ip refusals are counted');
    assert.ok(metric(m.text, 'qnexus_api_connections_refused_total', 'reason="max"') >= 1, 'refusals at the total are counted');
    assert.ok(metric(m.text, 'qnexus_api_connections') >= 2, 'open connections are exported (two of 127.0.0.1\'s idle sockets, the scrape)');
  });

  it('413: declared or counted, answers and closes the connection without reading the rest of the body', async () => {
    const n = await start('payload');
    const url = n.info.apiUrl;
    // On the evidence route: submissions may be answered NODE_BUSY (before their body) on a loaded machine.
    const TOTAL = 64 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 0x61);

    /** Write up to TOTAL bytes (respecting backpressure) until the server closes; resolves with the bytes the socket took. */
    const pump = async (c: RawClient, frame: (b: Buffer) => Buffer) => {
      let flushed = 0;
      while (flushed < TOTAL && !c.isClosed()) {
        const ok = await new Promise<boolean>((r) => {
          if (!c.socket.write(frame(chunk), (e) => r(!e))) c.socket.once('drain', () => r(true));
          else setImmediate(() => r(true));
        });
        if (!ok || c.isClosed()) break;
        flushed += chunk.length;
      }
      return flushed;
    };

    // Declared: Content-Length far above the limit.
    const declared = await open(url);
    declared.socket.write(`POST /v1/evidence HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${TOTAL}\r\n\r\n`);
    const sentDeclared = await within(pump(declared, (b) => b), 60_000, 'writing the declared body');
    const answer = await within(declared.closed, 20_000, 'the server to close after 413');
    assert.match(answer, /^HTTP\/1\.1 413 /);
    assert.match(answer, /\r\nconnection: close\r\n/i);
    assert.match(answer, /PAYLOAD_TOO_LARGE/);
    // Loopback buffers hold a few MB; had the server kept reading, all 64 MiB would have gone through.
    assert.ok(sentDeclared < TOTAL / 2, `the server stopped taking the body (the client got ${sentDeclared} bytes out)`);

    // Counted: chunked, no length; the server notices after MAX_API_BODY bytes.
    const counted = await open(url);
    counted.socket.write('POST /v1/evidence HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
    const sentCounted = await within(pump(counted, (b) => Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')])), 60_000, 'writing the chunked body');
    const answer2 = await within(counted.closed, 20_000, 'the server to close after a counted 413');
    assert.match(answer2, /^HTTP\/1\.1 413 /);
    assert.match(answer2, /\r\nconnection: close\r\n/i);
    assert.ok(sentCounted < TOTAL / 2, `the server stopped taking the chunked body (the client got ${sentCounted} bytes out)`);
    assert.ok(sentCounted > MAX_API_BODY / 2, 'sanity: the client did get to write');

    // An answer to a request without a body keeps the connection.
    const keep = await open(url);
    keep.socket.write('GET /v1/nowhere HTTP/1.1\r\nHost: x\r\n\r\n');
    await within(
      (async () => {
        while (!/\r\n\r\n[\s\S]*NOT_FOUND/.test(keep.data())) await sleep(20);
      })(),
      20_000,
      'the 404',
    );
    assert.ok(!keep.isClosed(), 'a request without a body keeps its connection');
    assert.match(keep.data(), /\r\nconnection: keep-alive\r\n/i);

    // The node is fine and serves the next client.
    assert.equal((await get(url, '/v1/status')).status, 200);
  });

  it('/metrics: scrapes within the cache interval share one render; the next interval renders anew', async () => {
    const n = await start('metrics');
    const url = n.info.apiUrl;
    const statusCount = (text: string) => metric(text, 'qnexus_api_requests_total', 'route="status"', 'status="200"');
    // Two scrapes with a counted request between them. If the pair took longer than the interval (a very
    // slow machine), it proves nothing either way: try again.
    let pair: { a: string; b: string } | null = null;
    for (let i = 0; i < 5 && !pair; i++) {
      const t0 = performance.now();
      const a = (await get(url, '/metrics')).text;
      assert.equal((await get(url, '/v1/status')).status, 200);
      const b = (await get(url, '/metrics')).text;
      if (performance.now() - t0 < METRICS_CACHE_MS * 0.8) pair = { a, b };
      else await sleep(METRICS_CACHE_MS);
    }
    assert.ok(pair, 'two scrapes within the cache interval');
    assert.equal(pair.b, pair.a, 'the second scrape is the first render, byte for byte');

    // Once the interval has passed, the request shows.
    await sleep(METRICS_CACHE_MS + 200);
    const c = (await get(url, '/metrics')).text;
    assert.ok(statusCount(c) > statusCount(pair.a), `the status request is counted after the interval (${statusCount(pair.a)} → ${statusCount(c)})`);

    // Concurrent scrapes after the interval share one render (CPU seconds and event-loop figures differ between renders).
    await sleep(METRICS_CACHE_MS + 200);
    const many = await Promise.all(Array.from({ length: 5 }, () => get(url, '/metrics')));
    assert.deepEqual([...new Set(many.map((r) => r.status))], [200]);
    assert.equal(new Set(many.map((r) => r.text)).size, 1, 'one render for concurrent scrapes');
  });

  it('requests cost by route; /metrics has a small bucket of its own; other addresses are unaffected', async () => {
    // A bucket of 10 that (practically) never refills.
    const n = await start('costs', { apiRateLimit: 0.001, apiRateBurst: 10 });
    const url = n.info.apiUrl;
    const junk = new Uint8Array([1, 2, 3, 4, 5]);
    // Two submissions (4 tokens each) are answered on their merits (NODE_BUSY if the event loop lags right after the start)…
    for (let i = 0; i < 2; i++) assert.ok(['TX_MALFORMED', 'NODE_BUSY'].includes(code((await post(url, '/v1/txs', junk)).text)!));
    // …a third does not fit in the 2 tokens left…
    // (refused before its body is read: the answer closes the connection, the rest of the body is never read).
    const early = await open(url);
    early.socket.write('POST /v1/txs HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\nabc');
    const refused = await within(early.closed, 20_000, 'the server to close after a 429 before the body');
    assert.match(refused, /^HTTP\/1\.1 429 /);
    assert.match(refused, /\r\nconnection: close\r\n/i);
    assert.match(refused, /"code":"RATE_LIMITED"/);
    assert.match(refused, /this request costs 4/);
    // …but a status read (1 token) does.
    assert.equal((await get(url, '/v1/status')).status, 200);
    assert.equal((await get(url, '/v1/status')).status, 200);
    assert.equal((await get(url, '/v1/status')).status, 429);

    // /metrics is still served to this client (its own bucket), until that bucket runs dry too.
    const scrapes: number[] = [];
    for (let i = 0; i < 40; i++) {
      const r = await get(url, '/metrics');
      scrapes.push(r.status);
      if (r.status === 429) {
        assert.match(r.text, /scrapes of \/metrics/);
        break;
      }
    }
    assert.ok(scrapes.filter((s) => s === 200).length >= 10, `scrapes served first: ${scrapes.join(',')}`);
    assert.equal(scrapes.at(-1), 429, 'a flood of scrapes is refused');

    // Another address has its own buckets.
    assert.equal((await get(url, '/v1/status', '127.0.0.2')).status, 200);
    assert.equal((await get(url, '/metrics', '127.0.0.2')).status, 200);
  });
});
