import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { fromHex, isHex } from '@qnexus/crypto';
import { QnexusError, decodeEvidence, type VoteEvidence } from '@qnexus/types';
import type { Counter, Registry } from 'prom-client';
import { errorHeaders, handleAdmin, type AdminContext, type ApiGuard } from './admin.js';

/**
 * The JSON-over-HTTP front both the shard node and the beacon serve: routing,
 * the rate limit and admin token (ApiGuard), `/metrics`, strict body readers,
 * and errors as `{"error":{"code","message"}}` with the code's HTTP status.
 * Each process supplies only its routes.
 */

/** Largest request body any endpoint reads. */
export const MAX_API_BODY = 64 * 1024;

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_API_BODY) throw new QnexusError('PAYLOAD_TOO_LARGE', `request body exceeds ${MAX_API_BODY} bytes`);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > MAX_API_BODY) throw new QnexusError('PAYLOAD_TOO_LARGE', `request body exceeds ${MAX_API_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
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

/** One endpoint: a method, a path pattern (its groups are the params, percent-decoded) and a handler giving [status, body] (a JSON value or a RawBody). */
export interface JsonRoute<C> {
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
}

export function startJsonApi<C extends JsonApiContext>(ctx: C, routes: readonly JsonRoute<C>[], host: string, port: number, opts: JsonApiOptions = {}): Promise<Server> {
  const server = createServer((req, res) => {
    void handle(ctx, routes, opts, req, res);
  });
  server.keepAliveTimeout = 5_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

async function handle<C extends JsonApiContext>(ctx: C, routes: readonly JsonRoute<C>[], opts: JsonApiOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://x');
  const path = url.pathname.replace(/\/+$/, '') || '/';
  let route = 'unknown';
  const send = (status: number, body: unknown, type = 'application/json', headers: Record<string, string> = {}) => {
    const text = type === 'application/json' ? JSON.stringify(body) : String(body);
    res.writeHead(status, { ...headers, 'content-type': type, 'content-length': Buffer.byteLength(text) });
    res.end(text);
    ctx.metrics.apiRequests.inc({ route, status: String(status) });
  };
  try {
    // Before anything else (routing included): a flood of bad requests costs as little as possible.
    ctx.guard?.limit(req, path);
    if (path === '/metrics' && req.method === 'GET') {
      route = 'metrics';
      send(200, await ctx.metrics.registry.metrics(), ctx.metrics.registry.contentType);
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
