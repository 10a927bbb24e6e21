// TEST-ONLY: the adversary's HTTP client. Plain node:http / node:net sockets from ATTACKER_IP
// (127.0.0.2), so a node's per-IP limits can tell it from the honest clients (the tests, the
// devnet launcher) on 127.0.0.1. Every function is bounded in sockets, requests and time, and
// reports what the server did to it: status codes, sockets it closed, when it first refused.
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { ATTACKER_IP, type CutOff } from './peer.js';

export interface HttpAnswer {
  status: number;
  body: string;
  headers: IncomingHttpHeaders;
}

/** One request; resolves with the answer or rejects with the socket error (ECONNRESET, timeout, …). */
export function send(
  url: string,
  o: { method?: string; headers?: Record<string, string>; body?: string | Uint8Array; agent?: Agent; timeoutMs?: number; localAddress?: string } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        method: o.method ?? 'GET',
        headers: o.headers,
        agent: o.agent,
        localAddress: o.agent ? undefined : (o.localAddress ?? ATTACKER_IP),
        timeout: o.timeoutMs ?? 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let n = 0;
        res.on('data', (c: Buffer) => {
          // Keep at most 64 KiB of any answer (a /metrics page is enough to tell it was served).
          if (n < 65_536) chunks.push(c);
          n += c.length;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    if (o.body !== undefined) req.write(o.body);
    req.end();
  });
}

/** An Agent whose sockets all leave from ATTACKER_IP, kept alive between requests. */
export function attackerAgent(maxSockets: number): Agent {
  return new Agent({ keepAlive: true, maxSockets, localAddress: ATTACKER_IP } as ConstructorParameters<typeof Agent>[0] & { localAddress: string });
}

/** Answers counted by status (0: no answer: reset, refused, timed out). */
export type StatusCounts = Record<string, number>;

function count(c: StatusCounts, k: string | number): void {
  c[String(k)] = (c[String(k)] ?? 0) + 1;
}

/**
 * What counts as the server refusing an abusive client: a 429 (its rate limit), or dropping or
 * refusing the connection. A 503 is not: NODE_BUSY is the node overwhelmed, refusing everyone.
 */
function isRefusal(status: number): boolean {
  return status === 429 || status === 0;
}

export interface FloodResult {
  answers: StatusCounts;
  requests: number;
  /** First refusal (a 429, or a dropped or refused connection). */
  cutOff: CutOff | null;
  /** Latency of answered requests (ms). */
  p50Ms: number;
  p99Ms: number;
}

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

/**
 * `clients` concurrent keep-alive clients, each sending requests back to back (one of `paths` in
 * turn; POSTs carry a small junk transaction) until `durationMs` passes or `maxRequests` went out.
 */
export async function keepAliveFlood(
  baseUrl: string,
  o: { clients: number; durationMs: number; maxRequests: number; paths: { method: 'GET' | 'POST'; path: string }[]; signal?: AbortSignal },
): Promise<FloodResult> {
  const agent = attackerAgent(o.clients);
  const answers: StatusCounts = {};
  const lat: number[] = [];
  const end = Date.now() + o.durationMs;
  let requests = 0;
  let cutOff: CutOff | null = null;
  const t0 = Date.now();
  try {
    await Promise.all(
      Array.from({ length: o.clients }, async (_, c) => {
        for (let i = c; Date.now() < end && requests < o.maxRequests && !o.signal?.aborted; i++) {
          requests++;
          const p = o.paths[i % o.paths.length]!;
          const t = Date.now();
          let status: number | 'timeout' = 0;
          try {
            const a = await send(baseUrl + p.path, {
              method: p.method,
              agent,
              timeoutMs: Math.max(1000, end - Date.now()),
              ...(p.method === 'POST' ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tx: '00'.repeat(200) }) } : {}),
            });
            status = a.status;
            lat.push(Date.now() - t);
          } catch (e) {
            // Our own patience running out (a slow server) is not the server refusing us.
            status = (e as Error).message === 'timeout' ? 'timeout' : 0;
            // A refused client backs off a little instead of spinning on a closed port.
            await new Promise((r) => setTimeout(r, 50));
          }
          count(answers, status);
          if (status !== 'timeout' && isRefusal(status) && cutOff === null) cutOff = { at: Date.now(), how: 'refused', detail: status === 0 ? 'connection dropped or refused' : `HTTP ${status}` };
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  void t0;
  return { answers, requests, cutOff, p50Ms: quantile(lat, 0.5), p99Ms: quantile(lat, 0.99) };
}

export interface SlowlorisResult {
  sockets: number;
  /** Sockets that connected at all. */
  connected: number;
  /** Sockets the server closed before we gave up (at the end of the attack). */
  closedByServer: number;
  /** Most sockets open at once. */
  peakOpen: number;
  /** When the server had closed 90 % of the connected sockets (null if it never did). */
  cutOff: CutOff | null;
  firstCloseMs: number | null;
}

/**
 * `sockets` connections that each send a request line and then one header byte every
 * `byteIntervalMs`, never finishing the headers, until `durationMs` passes.
 */
export async function slowloris(host: string, port: number, o: { sockets: number; durationMs: number; byteIntervalMs: number; signal?: AbortSignal }): Promise<SlowlorisResult> {
  const t0 = Date.now();
  const socks: { s: Socket; open: boolean; closedAt: number | null }[] = [];
  let connected = 0;
  let open = 0;
  let peakOpen = 0;
  let cutOffAt: number | null = null;
  const onClose = (x: (typeof socks)[number]) => {
    if (!x.open) return;
    x.open = false;
    x.closedAt = Date.now();
    open--;
    const closed = socks.filter((y) => y.closedAt !== null).length;
    if (cutOffAt === null && connected > 0 && closed >= 0.9 * connected) cutOffAt = Date.now();
  };
  for (let i = 0; i < o.sockets; i++) {
    const s = connect({ host, port, localAddress: ATTACKER_IP });
    const x = { s, open: false, closedAt: null as number | null };
    socks.push(x);
    s.on('connect', () => {
      connected++;
      x.open = true;
      open++;
      peakOpen = Math.max(peakOpen, open);
      s.write(`GET /v1/status HTTP/1.1\r\nHost: ${host}\r\nX-Slow: `);
    });
    s.on('error', () => undefined);
    s.on('close', () => onClose(x));
    // Opening hundreds of sockets at once would itself be a burst: a few per millisecond.
    if (i % 20 === 19) await new Promise((r) => setTimeout(r, 5));
  }
  const end = t0 + o.durationMs;
  while (Date.now() < end && !o.signal?.aborted) {
    await new Promise((r) => setTimeout(r, Math.min(o.byteIntervalMs, Math.max(1, end - Date.now()))));
    for (const x of socks) if (x.open) x.s.write('a');
  }
  const closedByServer = socks.filter((x) => x.closedAt !== null).length;
  const firstClose = socks.reduce<number | null>((m, x) => (x.closedAt !== null && (m === null || x.closedAt < m) ? x.closedAt : m), null);
  for (const x of socks) x.s.destroy();
  return {
    sockets: o.sockets,
    connected,
    closedByServer,
    peakOpen,
    cutOff: cutOffAt === null ? null : { at: cutOffAt, how: 'disconnected', detail: `the server closed ${closedByServer} of ${connected} slow sockets` },
    firstCloseMs: firstClose === null ? null : firstClose - t0,
  };
}

export interface OversizeResult {
  requests: number;
  answers: StatusCounts;
  /** Bytes we managed to write per request before the server answered and closed (mean). */
  meanBytesWritten: number;
  /** Requests whose connection the server closed before the whole body was written. */
  closedEarly: number;
  cutOff: CutOff | null;
}

/**
 * POST bodies that declare (or stream) `bodyBytes`, written in 64 KiB chunks as fast as the socket
 * takes them; a server that refuses the body answers 413 and closes without reading the rest.
 */
export async function oversizeBodies(baseUrl: string, o: { requests: number; bodyBytes: number; declare: boolean; timeoutMs: number }): Promise<OversizeResult> {
  const deadline = Date.now() + o.timeoutMs;
  const answers: StatusCounts = {};
  const written: number[] = [];
  let closedEarly = 0;
  let cutOff: CutOff | null = null;
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  for (let i = 0; i < o.requests; i++) {
    const r = await new Promise<{ status: number; bytes: number; early: boolean }>((resolve) => {
      let bytes = 0;
      let status = 0;
      let finished = false;
      const done = (early: boolean) => {
        if (finished) return;
        finished = true;
        resolve({ status, bytes, early });
      };
      const req = httpRequest(baseUrl + '/v1/txs', {
        method: 'POST',
        localAddress: ATTACKER_IP,
        headers: { 'content-type': 'application/octet-stream', ...(o.declare ? { 'content-length': String(o.bodyBytes) } : { 'transfer-encoding': 'chunked' }) },
        timeout: Math.max(100, deadline - Date.now()),
      });
      // The whole batch gets `timeoutMs`: a server that reads everything slowly must not stretch it.
      const cap = setTimeout(() => req.destroy(new Error('timeout')), Math.max(100, deadline - Date.now()));
      req.on('close', () => clearTimeout(cap));
      req.on('response', (res) => {
        status = res.statusCode ?? 0;
        res.resume();
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => done(bytes < o.bodyBytes));
      req.on('close', () => done(bytes < o.bodyBytes));
      const pump = () => {
        while (bytes < o.bodyBytes && !req.destroyed) {
          const n = Math.min(chunk.length, o.bodyBytes - bytes);
          bytes += n;
          if (!req.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
            req.once('drain', pump);
            return;
          }
        }
        if (!req.destroyed) req.end();
      };
      pump();
    });
    count(answers, r.status);
    written.push(r.bytes);
    if (r.early) closedEarly++;
    if (r.status === 413 && r.early && cutOff === null) cutOff = { at: Date.now(), how: 'refused', detail: `413 and the connection closed after ${r.bytes} of ${o.bodyBytes} bytes` };
  }
  return { requests: o.requests, answers, meanBytesWritten: written.reduce((a, b) => a + b, 0) / Math.max(1, written.length), closedEarly, cutOff };
}
