/**
 * What the shard node and beacon HTTP APIs share beyond their routes: the
 * per-client rate limit, the admin bearer token and the admin endpoints
 * (peers, log level, backup) under /v1/admin/.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { Counter, type Registry } from 'prom-client';
import { QnexusError, type ErrorCode } from '@qnexus/types';
import type { BackupResult } from '@qnexus/db';
import type { P2PNode, PeerConnection } from '@qnexus/p2p';
import type { LogLevel } from './config.js';
import { LOG_LEVELS, isLogLevel, type Logger } from './log.js';
import { DEFAULT_API_RATE_BURST, DEFAULT_API_RATE_LIMIT, RateLimiter } from './ratelimit.js';

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
    code: ErrorCode,
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

/** The client a request is counted against: its remote IP (IPv4-mapped IPv6 folded to IPv4). Proxy headers are not trusted. */
export function clientAddress(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? 'unknown';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

export interface ApiGuardOptions {
  dataDir: string;
  /** Sustained requests per second per client; 0 disables the limit. Default DEFAULT_API_RATE_LIMIT. */
  rateLimit?: number;
  /** Burst per client; 0 disables the limit. Default DEFAULT_API_RATE_BURST. */
  rateBurst?: number;
  /** The process's metrics registry: `qnexus_api_rate_limited_total` is registered there. */
  registry: Registry;
  /** Clock for the limiter (tests). */
  now?: () => number;
}

/** Writes a consistent snapshot of the process's database into a new directory (the store's `backup`). */
export type AdminBackupHandler = (dir: string) => Promise<BackupResult>;

/**
 * Rate limit + admin authentication for one API server. The limit applies to
 * every route but /metrics (Prometheus scrapes it every few seconds, and an
 * operator's monitoring must not go blind exactly when a client floods the
 * API); admin routes are limited too, which also throttles token guessing.
 * It also holds what the admin endpoints need from the process beyond its API
 * context: the backup handler, set once the store is open (`setBackup`).
 */
export class ApiGuard {
  readonly limiter: RateLimiter | null;
  private readonly token: string;
  private readonly rejected: Counter;
  private backupHandler: AdminBackupHandler | null = null;
  private backupRunning = false;

  constructor(opts: ApiGuardOptions) {
    const rate = opts.rateLimit ?? DEFAULT_API_RATE_LIMIT;
    const burst = opts.rateBurst ?? DEFAULT_API_RATE_BURST;
    if (!(rate >= 0) || !(burst >= 0)) throw new QnexusError('BAD_CONFIG', 'the API rate limit and burst must be >= 0 (0 disables)');
    this.limiter = rate > 0 && burst > 0 ? new RateLimiter({ ratePerSec: rate, burst: Math.max(1, Math.floor(burst)), ...(opts.now ? { now: opts.now } : {}) }) : null;
    this.token = loadOrCreateAdminToken(opts.dataDir);
    this.rejected = new Counter({ name: 'qnexus_api_rate_limited_total', help: 'HTTP API requests refused with 429 RATE_LIMITED (per-client rate limit)', registers: [opts.registry] });
  }

  /** Throws 429 RATE_LIMITED (with Retry-After) when the request's client is over its rate. */
  limit(req: IncomingMessage, path: string): void {
    if (!this.limiter || path === '/metrics') return;
    const d = this.limiter.take(clientAddress(req));
    if (d.ok) return;
    this.rejected.inc();
    throw new HttpHeaderError(
      'RATE_LIMITED',
      `too many requests from this client (limit ${this.limiter.ratePerSec}/s, burst ${this.limiter.burst}); retry after ${d.retryAfterMs} ms`,
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
