import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { formatAddress, isHex, toHex } from '@qnexus/crypto';
import { QnexusError } from '@qnexus/types';
import type { P2PNode } from '@qnexus/p2p';
import { entryStatus, isDone, type Coordinator, type XferEntry } from './coordinator.js';
import type { Logger } from '@qnexus/node';
import type { Metrics } from './metrics.js';
import type { Registry } from './registry.js';
import type { BeaconService } from './service.js';

export const API_VERSION = '0.1.0';
const DEFAULT_LIST = 50;
const MAX_LIST = 500;

export interface ApiContext {
  registry: Registry;
  coordinator: Coordinator;
  service: BeaconService;
  p2p: P2PNode;
  metrics: Metrics;
  log: Logger;
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

type Handler = (c: ApiContext, params: string[], url: URL) => unknown;

const routes: { re: RegExp; name: string; h: Handler }[] = [
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
        validators: c.registry.genesis.validators.map((v) => ({
          address: v.address,
          publicKey: toHex(v.publicKey),
          stake: v.stake.toString(),
          shard: c.registry.membership(epoch, v.address)?.shard ?? null,
          peerId: c.registry.peerOf(v.address),
        })),
      };
    },
  },
  {
    re: /^\/v1\/committees$/,
    name: 'committees',
    h: (c) => {
      const epoch = c.service.epoch;
      return {
        epoch,
        seed: toHex(c.registry.seed(epoch)),
        committees: c.registry.committees(epoch).map((k, shard) => ({
          shard,
          members: k.validators.map((m) => ({ address: m.address, stake: m.stake.toString() })),
          totalStake: k.totalStake.toString(),
        })),
      };
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
  const send = (status: number, body: unknown, type = 'application/json') => {
    const text = type === 'application/json' ? JSON.stringify(body) : String(body);
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
    res.end(text);
    ctx.metrics.apiRequests.inc({ route, status: String(status) });
  };
  try {
    const known = path === '/metrics' || routes.some((r) => r.re.test(path));
    if (!known) throw new QnexusError('NOT_FOUND', `no such endpoint: ${req.method} ${path}`);
    if (req.method !== 'GET') throw new QnexusError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}`);
    if (path === '/metrics') {
      route = 'metrics';
      ctx.metrics.peers.set(ctx.p2p.connectedPeers().length);
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
      send(200, r.h(ctx, params, url));
      return;
    }
  } catch (e) {
    if (e instanceof QnexusError) {
      send(e.httpStatus, e.toJSON());
    } else {
      ctx.log.error('API handler failed', { path, error: (e as Error).stack ?? String(e) });
      send(500, { error: { code: 'INTERNAL', message: 'internal error' } });
    }
  }
}
