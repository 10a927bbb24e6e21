/**
 * What the shard node and beacon HTTP APIs share beyond their routes: the
 * per-client rate limit, the connection caps and timeouts of the server, the
 * admin bearer token and the admin endpoints (peers, log level, backup) under
 * /v1/admin/.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { Counter, Gauge, type Registry } from 'prom-client';
import { QnexusError, type AnyErrorCode, type ErrorCode } from '@qnexus/types';
import type { BackupResult } from '@qnexus/db';
import type { P2PNode, PeerConnection } from '@qnexus/p2p';
import type { LogLevel } from './config.js';
import { LOG_LEVELS, isLogLevel, type Logger } from './log.js';
import {
  DEFAULT_API_RATE_BURST,
  DEFAULT_API_RATE_LIMIT,
  EVIDENCE_REQUEST_COST,
  METRICS_RATE_BURST,
  METRICS_RATE_LIMIT,
  SUBMIT_REQUEST_COST,
  BLOCK_REQUEST_COST,
  RateLimiter,
} from './ratelimit.js';

/** The admin token's file name inside the data dir. */
export const ADMIN_TOKEN_FILE = 'admin.token';
const TOKEN_RE = /^[0-9a-f]{64}$/;

/**
 * The admin bearer token of a data dir: `<dataDir>/admin.token`, 32 random
 * bytes as hex, created (mode 0600) on first start and reused afterwards, so
 * operators' scripts keep working across restarts. Creation is atomic (a
 * private temporary file hard-linked into place), so a concurrent reader never
 * sees a partial token and two starters agree on one.
 */
export function loadOrCreateAdminToken(dataDir: string): string {
  const path = join(dataDir, ADMIN_TOKEN_FILE);
  const existing = readToken(path);
  if (existing !== undefined) return existing;
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  try {
    chmodSync(tmp, 0o600); // whatever the umask
    try {
      linkSync(tmp, path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  } finally {
    unlinkSync(tmp);
  }
  const token = readToken(path);
  if (token === undefined) throw new QnexusError('BAD_CONFIG', `${path} vanished while it was being created`);
  return token;
}

function readToken(path: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const t = text.trim();
  if (!TOKEN_RE.test(t)) throw new QnexusError('BAD_CONFIG', `${path} does not hold an admin token (64 hex digits); delete it to have a new one created`);
  return t;
}

/** Constant-time comparison of a presented token with the expected one (hashes first, so lengths leak nothing either). */
export function tokenMatches(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** A QnexusError answered with extra HTTP headers (Retry-After, WWW-Authenticate). */
export class HttpHeaderError extends QnexusError {
  constructor(
    code: AnyErrorCode,
    message: string,
    readonly headers: Record<string, string>,
  ) {
    super(code, message);
  }
}

/** Headers to send with an error answer (none for an ordinary QnexusError). */
export function errorHeaders(e: QnexusError): Record<string, string> {
  return e instanceof HttpHeaderError ? e.headers : {};
}

/** A socket's remote IP as the API counts clients: IPv4-mapped IPv6 (`::ffff:1.2.3.4`) folded to IPv4. */
export function socketAddress(socket: Pick<Socket, 'remoteAddress'>): string {
  const a = socket.remoteAddress ?? 'unknown';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

/** The client a request is counted against: its remote IP (IPv4-mapped IPv6 folded to IPv4). Proxy headers are not trusted. */
export function clientAddress(req: IncomingMessage): string {
  return socketAddress(req.socket);
}

/** What the API's HTTP server enforces below the routes: connections and how long a request may take to arrive. */
export interface HttpServerLimits {
  /** Open connections, all clients together; sockets beyond it are closed at once. */
  maxConnections: number;
  /** Open connections from one client IP; its sockets beyond it are closed at once. */
  maxConnectionsPerIp: number;
  /** A request's headers must have arrived this many ms after it started (a new connection's first request: after the connect); else 408 and the connection is closed. */
  headersTimeoutMs: number;
  /** The whole request, body included, within this many ms (at least headersTimeoutMs). */
  requestTimeoutMs: number;
}

/**
 * Defaults sized to what one node serves (measurements: ratelimit.ts): a node answers a few
 * thousand cheap requests a second on two cores, so 512 open connections already queue
 * for a hundred milliseconds or more, and 64 per address covers an honest client's pool
 * (the e2e tests poll with up to 32 at once). Headers come in one packet from an honest
 * client; 5 s closes a slowloris socket within seconds, 10 s is ample for a 64 KiB body.
 */
export const DEFAULT_HTTP_LIMITS: Readonly<HttpServerLimits> = Object.freeze({
  maxConnections: 512,
  maxConnectionsPerIp: 64,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
});

/** Ranges the limits must be in (the CLI's flags check the same). */
export const HTTP_LIMIT_RANGES: Readonly<Record<keyof HttpServerLimits, readonly [number, number]>> = Object.freeze({
  maxConnections: [1, 1_000_000],
  maxConnectionsPerIp: [1, 1_000_000],
  headersTimeoutMs: [100, 3_600_000],
  requestTimeoutMs: [100, 3_600_000],
});

/** Fill in the defaults and check ranges (BAD_CONFIG otherwise). */
export function httpServerLimits(given: Partial<HttpServerLimits> = {}): HttpServerLimits {
  const out = { ...DEFAULT_HTTP_LIMITS };
  for (const k of Object.keys(HTTP_LIMIT_RANGES) as (keyof HttpServerLimits)[]) {
    const v = given[k];
    if (v === undefined) continue;
    const [lo, hi] = HTTP_LIMIT_RANGES[k];
    if (!Number.isSafeInteger(v) || v < lo || v > hi) throw new QnexusError('BAD_CONFIG', `the API's ${k} must be an integer in [${lo}, ${hi}], got ${String(v)}`);
    out[k] = v;
  }
  if (out.headersTimeoutMs > out.requestTimeoutMs) {
    throw new QnexusError('BAD_CONFIG', `the API's headers timeout (${out.headersTimeoutMs} ms) must not exceed its request timeout (${out.requestTimeoutMs} ms)`);
  }
  return out;
}

/**
 * Tokens a request takes from its client's bucket, roughly its CPU time in status reads
 * (measurements: ratelimit.ts). A submission is verified (an ML-DSA
 * signature on a worker, the mempool's checks) and gossiped; evidence costs two
 * verifications and a message to the beacon; a block is read from the database and decoded
 * with its certificate, and the block list (`GET /v1/blocks?limit=N`) does that for each of
 * its N blocks (default 20), and a search (`GET /v1/search`) may read one. Everything else (status, accounts, unknown paths, errors) costs
 * one. /metrics has its own bucket (ApiGuard.limit).
 */
export function requestCost(method: string | undefined, path: string, query?: URLSearchParams): number {
  if (method === 'POST') {
    if (path === '/v1/txs') return SUBMIT_REQUEST_COST;
    if (path === '/v1/evidence') return EVIDENCE_REQUEST_COST;
    return 1;
  }
  // A search by hash may read and decode a stored block, as GET /v1/blocks/{hash} does.
  if (method === 'GET' && path === '/v1/search') return BLOCK_REQUEST_COST;
  if (method !== 'GET' || !path.startsWith('/v1/blocks')) return 1;
  if (path !== '/v1/blocks') return BLOCK_REQUEST_COST;
  // The list: charged for the blocks it would read (a bad limit is refused by the route: one block's worth).
  const raw = query?.get('limit');
  const n = raw === null || raw === undefined ? BLOCK_LIST_DEFAULT : /^[0-9]{1,3}$/.test(raw) ? Math.min(BLOCK_LIST_MAX, Math.max(1, Number(raw))) : 1;
  return BLOCK_REQUEST_COST * n;
}

/** The block list's default and largest `limit` (node/src/api.ts: DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT). */
const BLOCK_LIST_DEFAULT = 20;
const BLOCK_LIST_MAX = 100;

export interface ApiGuardOptions {
  dataDir: string;
  /** Sustained tokens per second per client (a request takes requestCost tokens); 0 disables the limit. Default DEFAULT_API_RATE_LIMIT. */
  rateLimit?: number;
  /** Burst per client in tokens; 0 disables the limit. Default DEFAULT_API_RATE_BURST. */
  rateBurst?: number;
  /** Connection caps and timeouts of the API server (each default from DEFAULT_HTTP_LIMITS). */
  http?: Partial<HttpServerLimits>;
  /** The process's metrics registry: the `qnexus_api_*` guard metrics are registered there. */
  registry: Registry;
  /** Clock for the limiters (tests). */
  now?: () => number;
}

/** Writes a consistent snapshot of the process's database into a new directory (the store's `backup`). */
export type AdminBackupHandler = (dir: string) => Promise<BackupResult>;

/**
 * Rate limit, connection caps + admin authentication for one API server. The
 * rate limit applies to every route, admin routes too (which also throttles
 * token guessing); requests take requestCost tokens. /metrics draws on a
 * bucket of its own (METRICS_RATE_LIMIT per client, and the text is cached
 * per scrape interval by the server): a client busy with the API still gets
 * its scrapes, and a flood of scrapes costs little and is refused early.
 * It also holds what the admin endpoints need from the process beyond its API
 * context: the backup handler, set once the store is open (`setBackup`).
 */
export class ApiGuard {
  readonly limiter: RateLimiter | null;
  /** The /metrics bucket (null when the rate limit is disabled). */
  readonly metricsLimiter: RateLimiter | null;
  /** What the server enforces on connections and request timing. */
  readonly http: HttpServerLimits;
  private readonly token: string;
  private readonly rejected: Counter;
  private readonly refused: Counter<'reason'>;
  /** Open connections per client IP (an entry lives only while the IP has one open: bounded by maxConnections). */
  private readonly perIp = new Map<string, number>();
  private open = 0;
  private backupHandler: AdminBackupHandler | null = null;
  private backupRunning = false;

  constructor(opts: ApiGuardOptions) {
    const rate = opts.rateLimit ?? DEFAULT_API_RATE_LIMIT;
    const burst = opts.rateBurst ?? DEFAULT_API_RATE_BURST;
    if (!(rate >= 0) || !(burst >= 0)) throw new QnexusError('BAD_CONFIG', 'the API rate limit and burst must be >= 0 (0 disables)');
    this.http = httpServerLimits(opts.http);
    const now = opts.now ? { now: opts.now } : {};
    const enabled = rate > 0 && burst > 0;
    this.limiter = enabled ? new RateLimiter({ ratePerSec: rate, burst: Math.max(1, Math.floor(burst)), ...now }) : null;
    this.metricsLimiter = enabled ? new RateLimiter({ ratePerSec: METRICS_RATE_LIMIT, burst: METRICS_RATE_BURST, ...now }) : null;
    this.token = loadOrCreateAdminToken(opts.dataDir);
    this.rejected = new Counter({ name: 'qnexus_api_rate_limited_total', help: 'HTTP API requests refused with 429 RATE_LIMITED (per-client rate limit)', registers: [opts.registry] });
    this.refused = new Counter({
      name: 'qnexus_api_connections_refused_total',
      help: 'HTTP API connections closed at once: reason per-ip (the client IP has apiMaxConnectionsPerIp open) or max (the server has apiMaxConnections open)',
      labelNames: ['reason'],
      registers: [opts.registry],
    });
    // Both series exist from the start (a rate() over a missing series shows nothing).
    this.refused.inc({ reason: 'per-ip' }, 0);
    this.refused.inc({ reason: 'max' }, 0);
    const guard = this;
    new Gauge({
      name: 'qnexus_api_connections',
      help: 'open HTTP API connections',
      registers: [opts.registry],
      collect() {
        this.set(guard.open);
      },
    });
  }

  /** Open API connections (those admitted and not closed yet). */
  get openConnections(): number {
    return this.open;
  }

  /**
   * A new socket of the API server: counted against its client IP's cap, or destroyed at
   * once when that IP already has maxConnectionsPerIp open (returns false). The count is
   * released when the socket closes, however it closes.
   */
  admit(socket: Socket): boolean {
    const ip = socketAddress(socket);
    const n = this.perIp.get(ip) ?? 0;
    if (n >= this.http.maxConnectionsPerIp) {
      this.refused.inc({ reason: 'per-ip' });
      socket.destroy();
      return false;
    }
    this.perIp.set(ip, n + 1);
    this.open++;
    socket.once('close', () => {
      this.open--;
      const left = (this.perIp.get(ip) ?? 1) - 1;
      if (left > 0) this.perIp.set(ip, left);
      else this.perIp.delete(ip);
    });
    return true;
  }

  /** The server refused a socket because maxConnections are open (its `drop` event). */
  dropped(): void {
    this.refused.inc({ reason: 'max' });
  }

  /** Throws 429 RATE_LIMITED (with Retry-After) when the request's client is over its rate. `query`: the URL's, for costs that depend on it. */
  limit(req: IncomingMessage, path: string, query?: URLSearchParams): void {
    const metrics = path === '/metrics';
    const limiter = metrics ? this.metricsLimiter : this.limiter;
    if (!limiter) return;
    // A cost above the burst could never be paid: such a request takes the whole bucket.
    const cost = metrics ? 1 : Math.min(limiter.burst, requestCost(req.method, path, query));
    const d = limiter.take(clientAddress(req), cost);
    if (d.ok) return;
    this.rejected.inc();
    const what = metrics ? 'scrapes of /metrics' : 'requests';
    const costs = cost > 1 ? `; this request costs ${cost}` : '';
    throw new HttpHeaderError(
      'RATE_LIMITED',
      `too many ${what} from this client (limit ${limiter.ratePerSec}/s, burst ${limiter.burst}${costs}); retry after ${d.retryAfterMs} ms`,
      { 'retry-after': String(Math.ceil(d.retryAfterMs / 1000)) },
    );
  }

  /** Enable `POST /v1/admin/backup` (node: ChainStore.backup, beacon: BeaconStore.backup). */
  setBackup(handler: AdminBackupHandler): void {
    this.backupHandler = handler;
  }

  /** Run the backup handler, one backup at a time (`UNAVAILABLE` while one runs or before setBackup). */
  async backup(dir: string): Promise<BackupResult> {
    if (!this.backupHandler) throw new QnexusError('UNAVAILABLE', 'backups are not available in this process (its database is not open)');
    if (this.backupRunning) throw new QnexusError('UNAVAILABLE', 'a backup is already running in this process; retry once it has finished');
    this.backupRunning = true;
    try {
      return await this.backupHandler(dir);
    } finally {
      this.backupRunning = false;
    }
  }

  /** Throws 401 UNAUTHORIZED unless the request carries `Authorization: Bearer <admin token>`. */
  authorize(req: IncomingMessage): void {
    const h = req.headers.authorization;
    const m = typeof h === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
    if (m && tokenMatches(m[1]!, this.token)) return;
    throw new HttpHeaderError(
      'UNAUTHORIZED',
      m ? 'wrong admin token' : `admin endpoints need "Authorization: Bearer <token>" with the token in <data-dir>/${ADMIN_TOKEN_FILE}`,
      { 'www-authenticate': 'Bearer realm="qnexus-admin"' },
    );
  }
}

/** What the admin endpoints act on (both the node's and the beacon's API contexts have these). */
export interface AdminContext {
  p2p: P2PNode;
  log: Logger;
}

export interface AdminPeersJson {
  peers: { peerId: string; addrs: string[]; directions: PeerConnection['direction'][] }[];
  count: number;
}

export interface AdminLogLevelJson {
  level: LogLevel;
  previous?: LogLevel;
}

/** `POST /v1/admin/backup` answer: where the backup is, its manifest (also in `<dir>/backup.json`), how long it took. */
export type AdminBackupJson = BackupResult;

/** errno codes that mean "this path cannot be written" (the client chose a bad directory). */
const PATH_ERRNOS = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'ENAMETOOLONG', 'ELOOP', 'EEXIST', 'ENOTEMPTY']);

type BodyReader = (req: IncomingMessage, fields: readonly string[]) => Promise<Record<string, unknown>>;

/**
 * Serve `/v1/admin/…` after authentication; returns undefined when the path is
 * not an admin path. `readJson` is the API's strict JSON body reader
 * (UNKNOWN_FIELD for fields it was not told about).
 */
export async function handleAdmin(
  guard: ApiGuard,
  c: AdminContext,
  path: string,
  req: IncomingMessage,
  readJson: BodyReader,
): Promise<{ route: string; status: number; body: unknown } | undefined> {
  if (path !== '/v1/admin' && !path.startsWith('/v1/admin/')) return undefined;
  // Authentication comes before routing: without the token, nothing about the admin API is revealed.
  guard.authorize(req);
  const method = req.method ?? 'GET';
  const notAllowed = (allowed: string) => new QnexusError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${path} (use ${allowed})`);
  if (path === '/v1/admin/peers') {
    if (method === 'GET') return { route: 'admin-peers', status: 200, body: peersJson(c.p2p) };
    if (method === 'POST') {
      const j = await readJson(req, ['multiaddr']);
      const addr = j['multiaddr'];
      if (typeof addr !== 'string' || !addr.startsWith('/') || /\s/.test(addr)) throw new QnexusError('BAD_REQUEST', 'field "multiaddr" must be a multiaddr such as /ip4/10.0.0.2/tcp/7000/p2p/12D3KooW…');
      try {
        await c.p2p.dial(addr);
      } catch (e) {
        const msg = (e as Error).message;
        if (/invalid|unknown protocol|parse/i.test(msg)) throw new QnexusError('BAD_REQUEST', `bad multiaddr ${addr}: ${msg}`);
        throw new QnexusError('UNAVAILABLE', `could not dial ${addr}: ${msg}`);
      }
      c.log.info('admin: dialled peer', { multiaddr: addr });
      const peerId = /\/p2p\/([^/]+)/.exec(addr)?.[1] ?? null;
      return { route: 'admin-peers', status: 200, body: { dialed: addr, peerId, connected: peerId === null ? null : c.p2p.connectedPeers().includes(peerId), peers: c.p2p.connectedPeers().length } };
    }
    throw notAllowed('GET or POST');
  }
  const peer = /^\/v1\/admin\/peers\/([^/]+)$/.exec(path);
  if (peer) {
    if (method !== 'DELETE') throw notAllowed('DELETE');
    let peerId: string;
    try {
      peerId = decodeURIComponent(peer[1]!);
    } catch {
      throw new QnexusError('BAD_REQUEST', 'malformed percent-encoding in the path');
    }
    if (!c.p2p.connectedPeers().includes(peerId)) throw new QnexusError('NOT_FOUND', `not connected to peer ${peerId}`);
    try {
      await c.p2p.hangUp(peerId);
    } catch (e) {
      throw new QnexusError('BAD_REQUEST', `cannot hang up on ${peerId}: ${(e as Error).message}`);
    }
    c.log.info('admin: disconnected peer', { peerId });
    return { route: 'admin-peer', status: 200, body: { peerId, disconnected: true, peers: c.p2p.connectedPeers().length } };
  }
  if (path === '/v1/admin/log-level') {
    if (method === 'GET') return { route: 'admin-log-level', status: 200, body: { level: c.log.level } satisfies AdminLogLevelJson };
    if (method === 'PUT') {
      const j = await readJson(req, ['level']);
      const level = j['level'];
      if (!isLogLevel(level)) throw new QnexusError('BAD_REQUEST', `field "level" must be one of ${LOG_LEVELS.join(', ')}`);
      const previous = c.log.level;
      c.log.setLevel(level);
      // Logged at warn, after the change: visible at every level but error.
      c.log.warn('admin: log level changed', { level, previous });
      return { route: 'admin-log-level', status: 200, body: { level, previous } satisfies AdminLogLevelJson };
    }
    throw notAllowed('GET or PUT');
  }
  if (path === '/v1/admin/backup') {
    if (method !== 'POST') throw notAllowed('POST');
    const j = await readJson(req, ['dir']);
    const dir = j['dir'];
    if (typeof dir !== 'string' || !isAbsolute(dir)) {
      throw new QnexusError('BAD_REQUEST', 'field "dir" must be an absolute path on the machine this process runs on: a directory that does not exist yet, or is empty');
    }
    let r: BackupResult;
    try {
      r = await guard.backup(dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const err =
        e instanceof QnexusError
          ? e
          : typeof code === 'string' && /^E[A-Z]+$/.test(code)
            ? new QnexusError(PATH_ERRNOS.has(code) ? 'BAD_REQUEST' : 'UNAVAILABLE', `cannot write the backup to ${dir}: ${(e as Error).message}`)
            : null;
      c.log.warn('admin: backup failed', { dir, error: (err ?? (e as Error)).message });
      throw err ?? e;
    }
    const m = r.manifest;
    c.log.info('admin: backup written', { dir: r.dir, kind: m.kind, height: m.height, epoch: m.epoch, keys: m.keys, bytes: m.bytes, ms: r.ms });
    return { route: 'admin-backup', status: 200, body: r satisfies AdminBackupJson };
  }
  throw new QnexusError('NOT_FOUND', `no such admin endpoint: ${method} ${path}`);
}

function peersJson(p2p: P2PNode): AdminPeersJson {
  const byPeer = new Map<string, { peerId: string; addrs: string[]; directions: PeerConnection['direction'][] }>();
  for (const c of p2p.connections()) {
    const e = byPeer.get(c.peerId) ?? { peerId: c.peerId, addrs: [], directions: [] };
    e.addrs.push(c.addr);
    e.directions.push(c.direction);
    byPeer.set(c.peerId, e);
  }
  const peers = [...byPeer.values()].sort((a, b) => (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0));
  return { peers, count: peers.length };
}
