import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { formatAddress, fromHex, isHex, toHex } from '@qnexus/crypto';
import { QnexusError, decodeEvidence, stakingTotalsToJson, validatorInfoToJson, type VoteEvidence } from '@qnexus/types';
import type { P2PNode } from '@qnexus/p2p';
import { entryStatus, isDone, type Coordinator, type XferEntry } from './coordinator.js';
import { errorHeaders, handleAdmin, type ApiGuard, type Logger } from '@qnexus/node';
import type { Metrics } from './metrics.js';
import { validatorInfo, type Registry } from './registry.js';
import type { BeaconService } from './service.js';

export const API_VERSION = '0.1.0';
const DEFAULT_LIST = 50;
const MAX_LIST = 500;
const MAX_BODY = 64 * 1024;

export interface ApiContext {
  registry: Registry;
  coordinator: Coordinator;
  service: BeaconService;
  p2p: P2PNode;
  metrics: Metrics;
  log: Logger;
  /** Per-client rate limit and the admin token (shared with the node API); without one nothing is limited and /v1/admin/ does not exist. */
  guard?: ApiGuard;
}

/** The API view of a transfer: what happened, in protocol order. */
export function xferJson(e: XferEntry) {
  const i = e.info;
  const phases: Record<string, unknown>[] = [];
  if (e.sourcePrepared) phases.push({ phase: 'source-prepared', shard: i.srcShard, height: e.sourcePrepared.height });
  if (e.destination) {
    phases.push({
      phase: e.destination.accepted ? 'destination-prepared' : 'destination-refused',
      shard: i.dstShard,
      height: e.destination.height,
      ...(e.destination.reason ? { reason: e.destination.reason } : {}),
    });
  }
  if (e.decision) phases.push({ phase: 'decided', decision: e.decision.outcome, slot: e.decision.slot, ...(e.decision.reason ? { reason: e.decision.reason } : {}) });
  if (e.sourceApplied) phases.push({ phase: 'source-applied', shard: i.srcShard, height: e.sourceApplied.height, decision: e.sourceApplied.outcome });
  if (e.destinationApplied) phases.push({ phase: 'destination-applied', shard: i.dstShard, height: e.destinationApplied.height, decision: e.destinationApplied.outcome });
  return {
    id: e.id,
    kind: i.kind,
    from: formatAddress(i.from),
    to: formatAddress(i.to),
    amount: i.amount.toString(),
    sourceShard: i.srcShard,
    destinationShard: i.dstShard,
    deadlineSlot: i.deadlineSlot,
    status: entryStatus(e),
    decision: e.decision?.outcome ?? null,
    done: isDone(e),
    phases,
  };
}

type Handler = (c: ApiContext, params: string[], url: URL, req: IncomingMessage) => unknown;

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY) throw new QnexusError('PAYLOAD_TOO_LARGE', `request body exceeds ${MAX_BODY} bytes`);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > MAX_BODY) throw new QnexusError('PAYLOAD_TOO_LARGE', `request body exceeds ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Parse a JSON object body, allowing only the listed fields (UNKNOWN_FIELD otherwise). */
async function readJsonObject(req: IncomingMessage, fields: readonly string[]): Promise<Record<string, unknown>> {
  let j: unknown;
  try {
    j = JSON.parse((await readBody(req)).toString('utf8'));
  } catch (e) {
    if (e instanceof QnexusError) throw e;
    throw new QnexusError('BAD_REQUEST', 'body is not valid JSON');
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new QnexusError('BAD_REQUEST', `body must be a JSON object with ${fields.map((f) => JSON.stringify(f)).join(', ')}`);
  for (const k of Object.keys(j)) if (!fields.includes(k)) throw new QnexusError('UNKNOWN_FIELD', `unknown field ${JSON.stringify(k)}; expected only ${fields.map((f) => JSON.stringify(f)).join(', ')}`);
  return j as Record<string, unknown>;
}

/** `{"evidence": "<hex of encodeEvidence>"}`, strictly (unknown fields are refused, as on the node API). */
async function evidenceBody(req: IncomingMessage): Promise<VoteEvidence> {
  const type = (req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw new QnexusError('UNSUPPORTED_MEDIA_TYPE', 'use Content-Type application/json ({"evidence":"<hex>"})');
  let j: unknown;
  try {
    j = JSON.parse((await readBody(req)).toString('utf8'));
  } catch (e) {
    if (e instanceof QnexusError) throw e;
    throw new QnexusError('BAD_REQUEST', 'body is not valid JSON');
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new QnexusError('BAD_REQUEST', 'body must be a JSON object { "evidence": "<hex>" }');
  for (const k of Object.keys(j)) if (k !== 'evidence') throw new QnexusError('UNKNOWN_FIELD', `unknown field ${JSON.stringify(k)}; expected only "evidence"`);
  const hex = (j as { evidence?: unknown }).evidence;
  if (typeof hex !== 'string') throw new QnexusError('BAD_REQUEST', 'field "evidence" must be a hex string');
  const h = hex.startsWith('0x') ? hex.slice(2) : hex;
  if (!isHex(h)) throw new QnexusError('MALFORMED', 'field "evidence" is not valid hex');
  return decodeEvidence(fromHex(h));
}

function parseEpoch(raw: string | null, dflt: number): number {
  if (raw === null) return dflt;
  if (!/^[0-9]{1,15}$/.test(raw)) throw new QnexusError('BAD_REQUEST', 'epoch must be a non-negative integer');
  return Number(raw);
}

const routes: { re: RegExp; name: string; method?: 'GET' | 'POST'; h: Handler }[] = [
  {
    re: /^\/v1\/status$/,
    name: 'status',
    h: (c) => {
      const slot = c.service.slot;
      return {
        chainId: c.registry.genesis.chainId,
        genesisHash: toHex(c.registry.genesisHash),
        version: API_VERSION,
        role: 'beacon',
        peerId: c.p2p.peerId,
        peers: c.p2p.connectedPeers().length,
        slot,
        epoch: c.service.epoch,
        frozenThrough: c.registry.frozenNext - 1,
        xtransfers: c.coordinator.counts(),
      };
    },
  },
  {
    re: /^\/v1\/validators$/,
    name: 'validators',
    h: (c) => {
      const epoch = c.service.epoch;
      return {
        epoch,
        slot: c.service.slot,
        validators: c.registry.all().map((v) => ({
          ...validatorInfoToJson(validatorInfo(v)),
          publicKey: toHex(v.publicKey),
          peerId: c.registry.peerOf(v.address),
        })),
        totals: stakingTotalsToJson(c.registry.totals()),
      };
    },
  },
  {
    re: /^\/v1\/validators\/([^/]+)$/,
    name: 'validator',
    h: (c, [address]) => {
      const a = address!.toLowerCase();
      if (!/^qn[0-9a-f]{40}$/.test(a)) throw new QnexusError('BAD_REQUEST', 'address must be qn followed by 40 hex digits');
      const v = c.registry.validator(a);
      if (!v) throw new QnexusError('VALIDATOR_UNKNOWN', `no validator ${a} in the registry`);
      return { ...validatorInfoToJson(validatorInfo(v)), publicKey: toHex(v.publicKey), peerId: c.registry.peerOf(v.address) };
    },
  },
  {
    re: /^\/v1\/supply$/,
    name: 'supply',
    h: (c) => stakingTotalsToJson(c.registry.totals()),
  },
  {
    re: /^\/v1\/committees$/,
    name: 'committees',
    h: (c, _p, url) => {
      const epoch = parseEpoch(url.searchParams.get('epoch'), c.service.epoch);
      const fe = c.registry.epoch(epoch);
      if (!fe) throw new QnexusError('EPOCH_UNKNOWN', `epoch ${epoch} is not frozen (frozen through ${c.registry.frozenNext - 1})`);
      return {
        epoch,
        startSlot: epoch * c.registry.genesis.epochLength,
        seed: toHex(fe.seed),
        committees: fe.shards.map((k, shard) => ({
          shard,
          members: k.committee.validators.map((m) => ({ address: m.address, publicKey: toHex(k.members.get(m.address)!.publicKey), stake: m.stake.toString() })),
          totalStake: k.committee.totalStake.toString(),
        })),
      };
    },
  },
  {
    re: /^\/v1\/evidence$/,
    name: 'evidence',
    method: 'POST',
    h: async (c, _p, _u, req) => {
      const ev = await evidenceBody(req);
      const r = await c.service.submitEvidence(ev);
      return { result: r.result, validator: r.validator, slashed: r.slashed.toString() };
    },
  },
  {
    re: /^\/v1\/xtransfers$/,
    name: 'xtransfers',
    h: (c, _p, url) => {
      const raw = url.searchParams.get('limit');
      let limit = DEFAULT_LIST;
      if (raw !== null) {
        if (!/^[0-9]{1,4}$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_LIST) throw new QnexusError('BAD_REQUEST', `limit must be an integer in [1, ${MAX_LIST}]`);
        limit = Number(raw);
      }
      return { xtransfers: c.coordinator.recent(limit).map(xferJson) };
    },
  },
  {
    re: /^\/v1\/xtransfers\/([^/]+)$/,
    name: 'xtransfer',
    h: (c, [id]) => {
      if (!isHex(id!, 32)) throw new QnexusError('BAD_REQUEST', 'transfer id must be 32 bytes of hex (the source transaction id)');
      const e = c.coordinator.get(id!.toLowerCase());
      if (!e) throw new QnexusError('XS_UNKNOWN_TRANSFER', `no record of transfer ${id}`);
      return xferJson(e);
    },
  },
];

export function startApi(ctx: ApiContext, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    void handle(ctx, req, res);
  });
  server.keepAliveTimeout = 5_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

async function handle(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
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
    const match = routes.find((r) => r.re.test(path));
    if (path !== '/metrics' && !match) throw new QnexusError('NOT_FOUND', `no such endpoint: ${req.method} ${path}`);
    const method = match?.method ?? 'GET';
    if (req.method !== method) throw new QnexusError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}`);
    if (path === '/metrics') {
      route = 'metrics';
      send(200, await ctx.metrics.registry.metrics(), ctx.metrics.registry.contentType);
      return;
    }
    for (const r of routes) {
      const m = r.re.exec(path);
      if (!m) continue;
      route = r.name;
      let params: string[];
      try {
        params = m.slice(1).map(decodeURIComponent);
      } catch {
        throw new QnexusError('BAD_REQUEST', 'malformed percent-encoding in the path');
      }
      send(200, await r.h(ctx, params, url, req));
      return;
    }
  } catch (e) {
    if (e instanceof QnexusError) {
      if (e.code === 'RATE_LIMITED') route = 'rate-limited';
      send(e.httpStatus, e.toJSON(), 'application/json', errorHeaders(e));
    } else {
      ctx.log.error('API handler failed', { path, error: (e as Error).stack ?? String(e) });
      send(500, { error: { code: 'INTERNAL', message: 'internal error' } });
    }
  }
}
