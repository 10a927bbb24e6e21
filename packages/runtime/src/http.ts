import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { fromHex, isHex } from '@qnexus/crypto';
import { QnexusError, decodeEvidence, type VoteEvidence } from '@qnexus/types';
import type { Counter, Registry } from 'prom-client';
import { adminRoutes, front, openApiDocument, type AnyRouteDef, type OpenApiInfo } from '@qnexus/api';
import { DEFAULT_HTTP_LIMITS, errorHeaders, handleAdmin, type AdminContext, type ApiGuard, type HttpServerLimits } from './admin.js';

/**
 * The JSON-over-HTTP front both the shard node and the beacon serve: the
 * server's connection caps and timeouts, routing, the rate limit and admin
 * token (ApiGuard), `/metrics` (cached), strict body readers, and errors as
 * `{"error":{"code","message"}}` with the code's HTTP status. Each process
 * supplies only its routes.
 */

/** Largest request body any endpoint reads. */
export const MAX_API_BODY = 64 * 1024;
/** Largest header block a request may send (Node answers 431 beyond it), and the most header lines parsed. */
export const MAX_API_HEADER_BYTES = 16 * 1024;
export const MAX_API_HEADERS = 64;
/** An idle keep-alive connection is closed after this long: idle sockets do not hold connection slots. */
export const API_KEEP_ALIVE_MS = 5_000;
/** A rendered `/metrics` text is served again for this long: scrapes cost one render per interval, however many arrive. */
export const METRICS_CACHE_MS = 1_000;

const tooLarge = () => new QnexusError('PAYLOAD_TOO_LARGE', `request body exceeds ${MAX_API_BODY} bytes`);

/**
 * The request body, at most MAX_API_BODY bytes. Beyond that (declared or counted) it
 * stops reading at once and throws PAYLOAD_TOO_LARGE: the answer then closes the
 * connection (see `handle`), so the rest of the body is never read.
 */
export function readBody(req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_API_BODY) return Promise.reject(tooLarge());
  // Already read to the end, or gone: no 'end' or 'close' is coming.
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0));
  if (req.destroyed) return Promise.reject(new QnexusError('BAD_REQUEST', 'the request body was cut short'));
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const finish = (e?: QnexusError) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onGone);
      req.off('close', onGone);
      if (e) {
        // Stop pulling bytes off the socket; the answer closes the connection.
        req.pause();
        reject(e);
      } else resolve(Buffer.concat(chunks));
    };
    const onData = (c: Buffer) => {
      n += c.length;
      if (n > MAX_API_BODY) finish(tooLarge());
      else chunks.push(c);
    };
    const onEnd = () => finish();
    // A client that goes away (or is timed out) mid-body: an ordinary refusal, not a handler failure to log.
    const onGone = () => finish(new QnexusError('BAD_REQUEST', 'the request body was cut short'));
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onGone);
    req.once('close', onGone);
  });
}

/** After answering a request whose body was not read: how long the client has to read the answer before the reset. */
const LINGER_MS = 2000;

/**
 * Close a connection whose request body we did not read. Destroying the socket once the answer
 * is written (what Node does for `Connection: close`) makes the kernel answer the unread bytes
 * with a reset, and a client still sending then loses the
 * answer it has not read yet (seen: 413s arriving as "connection reset"); reading on to drain
 * the body would let the client decide how long we work for it. So: send our FIN after the
 * answer, read nothing more (TCP flow control stops the sender; nothing is buffered beyond the
 * socket's window), and destroy the socket after LINGER_MS, by when the client has read the answer.
 */
function lingerAndClose(socket: Socket): void {
  // Node has just set the unconsumed body to be dumped (read and discarded): not on our time.
  socket.pause();
  socket.end();
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/** Whether the request declares a body (Content-Length above 0, or chunked). */
function declaresBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

/**
 * `/metrics` text rendered at most once per `ttlMs`: a scrape within the interval gets the
 * text of the last render, and scrapes arriving during a render share it. A render walks every
 * metric of the registry (tens of kilobytes of text), so uncached scrapes were one of the most
 * expensive requests a client could send.
 */
export class MetricsCache {
  private text: string | null = null;
  private renderedAt = 0;
  private rendering: Promise<string> | null = null;

  constructor(
    private readonly registry: Registry,
    private readonly ttlMs = METRICS_CACHE_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get(): Promise<string> {
    if (this.text !== null && this.now() - this.renderedAt < this.ttlMs) return Promise.resolve(this.text);
    if (!this.rendering) {
      // Stamped when the render starts: what is served is never older than the interval plus one render.
      const started = this.now();
      this.rendering = this.registry
        .metrics()
        .then((t) => {
          this.text = t;
          this.renderedAt = started;
          return t;
        })
        .finally(() => {
          this.rendering = null;
        });
    }
    return this.rendering;
  }
}

/** Parse a JSON object body, allowing only the listed fields (UNKNOWN_FIELD otherwise). */
export async function readJsonObject(req: IncomingMessage, fields: readonly string[]): Promise<Record<string, unknown>> {
  const body = await readBody(req);
  let j: unknown;
  try {
    j = JSON.parse(body.toString('utf8'));
  } catch {
    throw new QnexusError('BAD_REQUEST', 'body is not valid JSON');
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new QnexusError('BAD_REQUEST', `body must be a JSON object with ${fields.map((f) => JSON.stringify(f)).join(', ')}`);
  for (const k of Object.keys(j)) if (!fields.includes(k)) throw new QnexusError('UNKNOWN_FIELD', `unknown field ${JSON.stringify(k)}; expected only ${fields.map((f) => JSON.stringify(f)).join(', ')}`);
  return j as Record<string, unknown>;
}

/** `POST /v1/evidence` on a node or the beacon: `application/json {"evidence":"<hex of encodeEvidence>"}`, strictly. */
export async function readEvidenceBody(req: IncomingMessage): Promise<VoteEvidence> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw new QnexusError('UNSUPPORTED_MEDIA_TYPE', 'use Content-Type application/json ({"evidence":"<hex>"})');
  const hex = (await readJsonObject(req, ['evidence']))['evidence'];
  if (typeof hex !== 'string') throw new QnexusError('MALFORMED', 'field "evidence" must be a hex string (the canonical evidence encoding)');
  const h = hex.startsWith('0x') ? hex.slice(2) : hex;
  if (!isHex(h)) throw new QnexusError('MALFORMED', 'field "evidence" is not valid hex');
  return decodeEvidence(fromHex(h));
}

/**
 * A body sent as is, not as JSON (e.g. the explorer's HTML page): its content type and
 * extra headers (a Content-Security-Policy, …). A route returns one in place of a JSON value.
 */
export class RawBody {
  constructor(
    readonly type: string,
    readonly text: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {}
}

/** The query's parameters; any not in `allowed`, or one given twice, is a BAD_REQUEST. */
export function queryParams(url: URL, allowed: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of url.searchParams) {
    if (!allowed.includes(k)) {
      const expected = allowed.length ? `expected only ${allowed.map((a) => JSON.stringify(a)).join(', ')}` : 'this endpoint takes none';
      throw new QnexusError('BAD_REQUEST', `unknown query parameter ${JSON.stringify(k)}; ${expected}`);
    }
    if (out.has(k)) throw new QnexusError('BAD_REQUEST', `query parameter ${JSON.stringify(k)} is given more than once`);
    out.set(k, v);
  }
  return out;
}

/** A list endpoint's `limit`: `def` when absent, else a plain decimal integer in [1, max] (BAD_REQUEST otherwise). */
export function parseListLimit(raw: string | null | undefined, def: number, max: number): number {
  if (raw === undefined || raw === null) return def;
  if (!/^[0-9]+$/.test(raw) || raw.length > String(max).length || Number(raw) < 1 || Number(raw) > max) {
    throw new QnexusError('BAD_REQUEST', `limit must be an integer in [1, ${max}]`);
  }
  return Number(raw);
}

/**
 * One endpoint: its definition (@qnexus/api), a method, a path pattern (its groups are the params,
 * percent-decoded) and a handler giving [status, body] (a JSON value or a RawBody). Built by
 * `implement(def, handler)` (routes.ts), so every route served is a defined one.
 */
export interface JsonRoute<C> {
  def: AnyRouteDef;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  re: RegExp;
  /** Label of `qnexus_api_requests_total{route}`. */
  name: string;
  h(ctx: C, params: string[], req: IncomingMessage, url: URL): Promise<[number, unknown]> | [number, unknown];
}

/** What the front needs from a process's API context. */
export interface JsonApiContext extends AdminContext {
  metrics: { registry: Registry; apiRequests: Counter<'route' | 'status'> };
  guard?: ApiGuard | undefined;
}

export interface JsonApiOptions {
  /** Called for every QnexusError answer, with the route it came from (e.g. to count refused submissions). */
  onError?: (route: string, e: QnexusError) => void;
  /** The title and version of the `GET /v1/openapi.json` document (default: a generic title). */
  openapi?: OpenApiInfo;
}

/** What each running server routes, by definition: the front's own routes, then the process's. */
const served = new Map<Server, readonly AnyRouteDef[]>();

/**
 * The definitions of every route a server started by startJsonApi serves, in the order it routes
 * them: `/metrics`, `/v1/openapi.json`, the admin routes when it has a guard, then the process's
 * routes. The OpenAPI document it serves is generated from exactly this list.
 */
export function servedRoutes(server: Server): readonly AnyRouteDef[] {
  return served.get(server) ?? [];
}

/** The JSON APIs this process is serving now (a node, a beacon, or both in one test process), with their routes. */
export function runningApis(): { server: Server; routes: readonly AnyRouteDef[] }[] {
  return [...served].map(([server, routes]) => ({ server, routes }));
}

/** The front's own routes and the process's, as the OpenAPI document lists them. */
function allDefs(routes: readonly { def: AnyRouteDef }[], admin: boolean): AnyRouteDef[] {
  return [front.metrics, front.openapi, ...(admin ? adminRoutes : []), ...routes.map((r) => r.def)];
}

/**
 * Serve `routes` on host:port. The server's limits come from the context's guard
 * (DEFAULT_HTTP_LIMITS without one): at most maxConnections sockets (beyond it Node closes
 * new ones at once; idle keep-alive sockets are then closed to make room), at most
 * maxConnectionsPerIp per client IP (ApiGuard.admit), headers within headersTimeoutMs and
 * the whole request within requestTimeoutMs (else 408 and close), idle keep-alive sockets
 * closed after API_KEEP_ALIVE_MS, header blocks capped at MAX_API_HEADER_BYTES.
 */
export function startJsonApi<C extends JsonApiContext>(ctx: C, routes: readonly JsonRoute<C>[], host: string, port: number, opts: JsonApiOptions = {}): Promise<Server> {
  const limits: HttpServerLimits = ctx.guard?.http ?? DEFAULT_HTTP_LIMITS;
  const metrics = new MetricsCache(ctx.metrics.registry);
  const defs = allDefs(routes, ctx.guard !== undefined);
  // Generated on first request and kept: the routes of a running server do not change.
  let openapiText: string | null = null;
  const openapiRoute: JsonRoute<C> = {
    def: front.openapi,
    method: 'GET',
    re: /^\/v1\/openapi\.json$/,
    name: front.openapi.id,
    h: () => {
      openapiText ??= JSON.stringify(openApiDocument(opts.openapi ?? { title: 'Quantum Nexus API', version: '0.1.0' }, defs));
      return [200, new RawBody('application/json; charset=utf-8', openapiText)];
    },
  };
  routes = [openapiRoute, ...routes];
  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      // How often Node looks for requests past those timeouts (its default, 30 s, would let a slowloris socket live that long).
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 4))),
      maxHeaderSize: MAX_API_HEADER_BYTES,
    },
    (req, res) => {
      void handle(ctx, routes, opts, metrics, req, res);
    },
  );
  server.keepAliveTimeout = API_KEEP_ALIVE_MS;
  server.maxHeadersCount = MAX_API_HEADERS;
  server.maxConnections = limits.maxConnections;
  const guard = ctx.guard;
  if (guard) server.on('connection', (socket) => guard.admit(socket));
  let idleSweepAt = -Infinity;
  server.on('drop', () => {
    guard?.dropped();
    // Full: idle keep-alive sockets make way for clients with requests (at most once a second, so a flood of connects does not turn into a flood of sweeps).
    const now = performance.now();
    if (now - idleSweepAt >= 1_000) {
      idleSweepAt = now;
      server.closeIdleConnections();
    }
  });
  served.set(server, defs);
  server.once('close', () => served.delete(server));
  return new Promise((resolve, reject) => {
    server.once('error', (e) => {
      served.delete(server);
      reject(e);
    });
    server.listen(port, host, () => resolve(server));
  });
}

async function handle<C extends JsonApiContext>(ctx: C, routes: readonly JsonRoute<C>[], opts: JsonApiOptions, metrics: MetricsCache, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://x');
  const path = url.pathname.replace(/\/+$/, '') || '/';
  let route = 'unknown';
  const send = (status: number, body: unknown, type = 'application/json', headers: Record<string, string> = {}) => {
    const text = type === 'application/json' ? JSON.stringify(body) : String(body);
    // Answered before the whole body arrived (413, 429, 401, 415, …): close the connection once the
    // answer is out, instead of letting Node read (and discard) the rest to keep the connection alive.
    const unread = declaresBody(req) && !req.complete;
    const h: Record<string, string | number> = { ...headers, 'content-type': type, 'content-length': Buffer.byteLength(text) };
    if (unread) {
      h['connection'] = 'close';
      // Node closes a `Connection: close` socket with destroySoon() once the answer is written: our
      // own close instead (see lingerAndClose).
      const socket = req.socket;
      socket.destroySoon = () => lingerAndClose(socket);
    }
    res.writeHead(status, h);
    res.end(text);
    ctx.metrics.apiRequests.inc({ route, status: String(status) });
  };
  try {
    // Before anything else (routing included): a flood of bad requests costs as little as possible.
    ctx.guard?.limit(req, path, url.searchParams);
    if (path === '/metrics' && req.method === 'GET') {
      route = 'metrics';
      send(200, await metrics.get(), ctx.metrics.registry.contentType);
      return;
    }
    if (ctx.guard) {
      route = 'admin';
      const a = await handleAdmin(ctx.guard, ctx, path, req, readJsonObject);
      if (a) {
        route = a.route;
        send(a.status, a.body);
        return;
      }
      route = 'unknown';
    }
    let methodMismatch = false;
    for (const r of routes) {
      const m = r.re.exec(path);
      if (!m) continue;
      if (r.method !== req.method) {
        methodMismatch = true;
        continue;
      }
      route = r.name;
      let params: string[];
      try {
        params = m.slice(1).map(decodeURIComponent);
      } catch {
        throw new QnexusError('BAD_REQUEST', 'malformed percent-encoding in the path');
      }
      const [status, body] = await r.h(ctx, params, req, url);
      if (body instanceof RawBody) send(status, body.text, body.type, { ...body.headers });
      else send(status, body);
      return;
    }
    if (methodMismatch) throw new QnexusError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}`);
    throw new QnexusError('NOT_FOUND', `no such endpoint: ${req.method} ${path}`);
  } catch (e) {
    if (e instanceof QnexusError) {
      opts.onError?.(route, e);
      if (e.code === 'RATE_LIMITED') route = 'rate-limited';
      send(e.httpStatus, e.toJSON(), 'application/json', errorHeaders(e));
    } else {
      ctx.log.error('API handler failed', { path, error: (e as Error).stack ?? String(e) });
      send(500, { error: { code: 'INTERNAL', message: 'internal error' } });
    }
  }
}
