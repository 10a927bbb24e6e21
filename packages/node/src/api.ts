import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { formatAddress, fromHex, homeShard, isAddressString, isHex, parseAddress, toHex } from '@qnexus/crypto';
import { epochCommittees } from '@qnexus/state';
import {
  QnexusError,
  blockHash,
  decodeBlock,
  decodeCertificate,
  genesisHash,
  genesisSupply,
  epochOf,
  openTx,
  slotAt,
  MAX_TX_BYTES,
  xferRecordPhase,
  type Block,
  type XferRecord,
  type TxEnvelope,
} from '@qnexus/types';
import type { P2PNode } from '@qnexus/p2p';
import type { Chain } from './chain.js';
import type { Engine } from './engine.js';
import type { Mempool } from './mempool.js';
import type { Metrics } from './metrics.js';
import type { Syncer } from './sync.js';
import type { TxGossip } from './txgossip.js';
import type { LoadMonitor } from './load.js';
import type { Logger } from './log.js';
import type { XShard } from './xshard.js';

export const API_VERSION = '0.1.0';
const MAX_BODY = 64 * 1024;

interface Ctx {
  chain: Chain;
  engine: Engine;
  mempool: Mempool;
  p2p: P2PNode;
  syncer: Syncer;
  txGossip: TxGossip;
  load: LoadMonitor;
  metrics: Metrics;
  log: Logger;
  role: 'validator' | 'full';
  validator: string | null;
  xshard: XShard;
}

type Handler = (ctx: Ctx, params: string[], req: IncomingMessage) => Promise<[number, unknown]>;

function notFound(what: string): never {
  throw new QnexusError('NOT_FOUND', `${what} not found`);
}

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

function blockJson(b: Block, certRaw: Uint8Array | undefined) {
  const h = b.header;
  const cert = certRaw ? decodeCertificate(certRaw) : null;
  return {
    hash: toHex(blockHash(h)),
    height: h.height,
    slot: h.slot,
    shard: h.shard,
    chainId: h.chainId,
    parentHash: toHex(h.parentHash),
    stateRoot: toHex(h.stateRoot),
    txRoot: toHex(h.txRoot),
    proposer: h.height === 0 ? null : formatAddress(h.proposer),
    txCount: h.txCount,
    txs: b.txs.map((t) => openTx(t).hashHex),
    certificate: cert && {
      round: cert.round,
      blockHash: toHex(cert.blockHash),
      votes: cert.votes.map((v) => ({ validator: formatAddress(v.validator), signature: toHex(v.signature) })),
    },
  };
}

function txJson(env: TxEnvelope) {
  const b = env.tx.body;
  const p = b.payload;
  // `raw` is the exact wire encoding, so anyone can re-verify or relay it (a beacon entry can be relayed by anyone; replays are refused by state).
  const common = { hash: env.hashHex, kind: p.kind, fee: b.fee.toString(), nonce: b.nonce.toString(), raw: toHex(env.raw) };
  if (p.kind === 'transfer' || p.kind === 'xtransfer') return { ...common, from: env.fromStr, to: formatAddress(p.to), amount: p.amount.toString() };
  // Beacon entries: the transfer they act on.
  return {
    ...common,
    from: formatAddress(p.xfer.from),
    to: formatAddress(p.xfer.to),
    amount: p.xfer.amount.toString(),
    transfer: toHex(p.xfer.id),
    ...(p.kind === 'xdecision' ? { decision: p.commit ? 'commit' : 'abort' } : {}),
  };
}

/** A shard's view of one cross-shard transfer, from its state record (or its mempool). */
export function xferJson(rec: XferRecord, shard: number) {
  const x = rec.info;
  const phases: Record<string, unknown>[] = [];
  if (rec.role === 'source') {
    phases.push({ phase: 'source-prepared', shard, height: rec.preparedHeight });
    if (rec.decision !== 'none') phases.push({ phase: 'source-applied', shard, height: rec.decidedHeight, decision: rec.decision });
  } else {
    if (rec.prepare !== 'none') {
      phases.push({ phase: rec.prepare === 'accepted' ? 'destination-prepared' : 'destination-refused', shard, height: rec.preparedHeight, ...(rec.reason ? { reason: rec.reason } : {}) });
    }
    if (rec.decision !== 'none') phases.push({ phase: 'destination-applied', shard, height: rec.decidedHeight, decision: rec.decision });
  }
  return {
    id: toHex(x.id),
    from: formatAddress(x.from),
    to: formatAddress(x.to),
    amount: x.amount.toString(),
    sourceShard: x.srcShard,
    destinationShard: x.dstShard,
    deadlineSlot: x.deadlineSlot,
    role: rec.role,
    status: xferRecordPhase(rec),
    decision: rec.decision === 'none' ? null : rec.decision,
    phases,
  };
}

const routes: { method: string; re: RegExp; name: string; h: Handler }[] = [
  {
    method: 'GET',
    re: /^\/v1\/status$/,
    name: 'status',
    h: async (c) => [
      200,
      {
        chainId: c.chain.genesis.chainId,
        shard: c.chain.shard,
        genesisHash: toHex(genesisHash(c.chain.genesis)),
        version: API_VERSION,
        role: c.role,
        validator: c.validator,
        peerId: c.p2p.peerId,
        peers: c.p2p.connectedPeers().length,
        height: Math.max(c.chain.headHeight, c.engine.included.size ? c.chain.headHeight + 1 : 0),
        finalizedHeight: c.chain.headHeight,
        networkHeight: Math.max(c.engine.newestKnownHeight, c.chain.headHeight),
        round: c.engine.core.round,
        step: c.engine.core.step,
        mempoolSize: c.mempool.size,
        syncing: c.syncer.progress.syncing,
        eventLoopLagMs: Math.round(c.load.lagMs),
        overloaded: c.load.overloaded,
        stateRoot: toHex(c.chain.headStateRoot),
      },
    ],
  },
  {
    method: 'GET',
    re: /^\/v1\/blocks\/([^/]+)$/,
    name: 'block',
    h: async (c, [id]) => {
      let raw: Uint8Array | undefined;
      let height: number;
      if (id === 'latest') {
        height = c.chain.headHeight;
        raw = await c.chain.store.blockAtHeight(height);
      } else if (/^[0-9]{1,15}$/.test(id!)) {
        height = Number(id);
        raw = await c.chain.store.blockAtHeight(height);
      } else if (isHex(id!, 32)) {
        raw = await c.chain.store.blockByHash(fromHex(id!));
        height = raw ? decodeBlock(raw).header.height : -1;
      } else {
        throw new QnexusError('BAD_REQUEST', 'block id must be a height, a 32-byte hex hash or "latest"');
      }
      if (!raw) notFound(`block ${id}`);
      const block = decodeBlock(raw!);
      return [200, blockJson(block, height > 0 ? await c.chain.store.certificate(height) : undefined)];
    },
  },
  {
    method: 'GET',
    re: /^\/v1\/txs\/([^/]+)$/,
    name: 'tx',
    h: async (c, [id]) => {
      if (!isHex(id!, 32)) throw new QnexusError('BAD_REQUEST', 'transaction hash must be 32 bytes of hex');
      const hashHex = id!.toLowerCase();
      const loc = await c.chain.store.txLocation(fromHex(hashHex));
      if (loc) {
        const raw = await c.chain.store.blockAtHeight(loc.height);
        const block = decodeBlock(raw!);
        const env = openTx(block.txs[loc.index]!);
        return [200, { ...txJson(env), status: 'final', block: { height: loc.height, hash: toHex(blockHash(block.header)), index: loc.index }, error: null }];
      }
      const pending = c.mempool.get(hashHex);
      if (pending) {
        const h = c.engine.included.get(hashHex);
        return [200, { ...txJson(pending), status: h !== undefined ? 'included' : 'pending', block: null, error: null }];
      }
      const rej = c.mempool.rejection(hashHex);
      if (rej) return [200, { ...txJson(rej.env), status: 'rejected', block: null, error: { code: rej.code, message: rej.message } }];
      notFound(`transaction ${hashHex}`);
    },
  },
  {
    method: 'GET',
    re: /^\/v1\/accounts\/([^/]+)$/,
    name: 'account',
    h: async (c, [addr]) => {
      if (!isAddressString(addr!)) throw new QnexusError('BAD_REQUEST', 'address must be qn followed by 40 lowercase hex characters');
      const key = toHex(parseAddress(addr!));
      const a = c.chain.state.account(key);
      return [
        200,
        {
          address: addr,
          balance: (a?.balance ?? 0n).toString(),
          nonce: (a?.nonce ?? 0n).toString(),
          pendingNonce: c.mempool.pendingNonce(key).toString(),
          publicKey: a?.publicKey ? toHex(a.publicKey) : null,
        },
      ];
    },
  },
  {
    method: 'POST',
    re: /^\/v1\/txs$/,
    name: 'submit',
    h: async (c, _p, req) => {
      if (c.load.overloaded) {
        throw new QnexusError('NODE_BUSY', `node is overloaded (event-loop lag ${Math.round(c.load.lagMs)} ms); retry shortly`);
      }
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      const body = await readBody(req);
      let raw: Uint8Array;
      if (type === 'application/octet-stream') {
        raw = new Uint8Array(body);
      } else if (type === 'application/json') {
        let j: unknown;
        try {
          j = JSON.parse(body.toString('utf8'));
        } catch {
          throw new QnexusError('BAD_REQUEST', 'body is not valid JSON');
        }
        if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new QnexusError('BAD_REQUEST', 'body must be a JSON object { "tx": "<hex>" }');
        for (const k of Object.keys(j)) if (k !== 'tx') throw new QnexusError('UNKNOWN_FIELD', `unknown field ${JSON.stringify(k)}; expected only "tx"`);
        const tx = (j as { tx?: unknown }).tx;
        if (typeof tx !== 'string') throw new QnexusError('BAD_REQUEST', 'field "tx" must be a hex string');
        if (tx.length > MAX_TX_BYTES * 2 + 2) throw new QnexusError('TX_TOO_LARGE', `transaction exceeds ${MAX_TX_BYTES} bytes`);
        if (!isHex(tx.startsWith('0x') ? tx.slice(2) : tx)) throw new QnexusError('TX_MALFORMED', 'field "tx" is not valid hex');
        raw = fromHex(tx);
      } else {
        throw new QnexusError('UNSUPPORTED_MEDIA_TYPE', 'use Content-Type application/json ({"tx":"<hex>"}) or application/octet-stream');
      }
      const env = openTx(raw);
      const result = await c.mempool.admit(env);
      if (result === 'added') {
        c.txGossip.publish(env.raw);
        c.metrics.mempoolSize.set(c.mempool.size);
      }
      c.metrics.txAdmission.inc({ source: 'api', result: 'accepted' });
      return [202, { hash: env.hashHex, status: 'pending' }];
    },
  },
  {
    method: 'GET',
    re: /^\/v1\/validators$/,
    name: 'validators',
    h: async (c) => {
      const epoch = epochOf(c.chain.genesis, Math.max(0, slotAt(c.chain.genesis, Date.now())));
      const shardOf = new Map<string, number>();
      epochCommittees(c.chain.genesis, epoch).forEach((cm, k) => cm.validators.forEach((v) => shardOf.set(v.address, k)));
      return [
        200,
        {
          epoch,
          validators: c.chain.genesis.validators.map((v) => ({ address: v.address, publicKey: toHex(v.publicKey), stake: v.stake.toString(), shard: shardOf.get(v.address) ?? null })),
        },
      ];
    },
  },
  {
    method: 'GET',
    re: /^\/v1\/committee$/,
    name: 'committee',
    // This shard's committee, and whether the beacon's signed announcement for the epoch agreed with it.
    h: async (c) => {
      const a = c.xshard.announcement;
      return [
        200,
        {
          shard: c.chain.shard,
          members: c.chain.committee.validators.map((v) => ({ address: v.address, stake: v.stake.toString() })),
          totalStake: c.chain.committee.totalStake.toString(),
          announcement: a && { epoch: a.epoch, startSlot: a.startSlot, seed: toHex(a.seed), issuedSlot: a.issuedSlot, verified: true },
        },
      ];
    },
  },
  {
    method: 'GET',
    re: /^\/v1\/xtransfers\/([^/]+)$/,
    name: 'xtransfer',
    h: async (c, [id]) => {
      if (!isHex(id!, 32)) throw new QnexusError('BAD_REQUEST', 'transfer id must be 32 bytes of hex (the xtransfer transaction hash)');
      const idHex = id!.toLowerCase();
      const rec = c.chain.state.xfer(idHex);
      if (rec) return [200, xferJson(rec, c.chain.shard)];
      const pending = c.mempool.get(idHex);
      if (pending && pending.tx.body.payload.kind === 'xtransfer') {
        const p = pending.tx.body.payload;
        return [
          200,
          { id: idHex, from: pending.fromStr, to: formatAddress(p.to), amount: p.amount.toString(), sourceShard: c.chain.shard, destinationShard: homeShard(p.to, c.chain.genesis.shardCount), deadlineSlot: null, role: 'source', status: 'pending', decision: null, phases: [] },
        ];
      }
      throw new QnexusError('XS_UNKNOWN_TRANSFER', `no cross-shard transfer ${idHex} on shard ${c.chain.shard}`);
    },
  },
  {
    method: 'GET',
    re: /^\/v1\/supply$/,
    name: 'supply',
    // The shard's supply identity, checkable by anyone: balances + burned + escrow + exported − imported = genesis supply.
    h: async (c) => {
      const k = c.chain.state.counters;
      const balances = c.chain.state.totalBalance();
      return [
        200,
        {
          shard: c.chain.shard,
          height: c.chain.headHeight,
          genesisSupply: genesisSupply(c.chain.genesis, c.chain.shard).toString(),
          balances: balances.toString(),
          burned: k.burned.toString(),
          escrow: k.escrow.toString(),
          exported: k.exported.toString(),
          imported: k.imported.toString(),
          total: (balances + k.burned + k.escrow + k.exported - k.imported).toString(),
          accounts: c.chain.state.size,
        },
      ];
    },
  },
  {
    method: 'GET',
    re: /^\/v1\/evidence$/,
    name: 'evidence',
    h: async (c) => [200, { evidence: c.engine.evidence }],
  },
];

export function startApi(ctx: Ctx, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    void handle(ctx, req, res);
  });
  server.keepAliveTimeout = 5_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

async function handle(ctx: Ctx, req: IncomingMessage, res: ServerResponse): Promise<void> {
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
    if (path === '/metrics' && req.method === 'GET') {
      route = 'metrics';
      const stats = ctx.p2p.stats();
      ctx.metrics.peers.set(stats.peers);
      for (const [topic, s] of Object.entries(stats.topics)) {
        const name = topic.split('/').pop()!;
        for (const r of ['accept', 'ignore', 'reject'] as const) ctx.metrics.gossip.set({ topic: name, result: r }, s[r]);
      }
      send(200, await ctx.metrics.registry.metrics(), ctx.metrics.registry.contentType);
      return;
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
      const [status, body] = await r.h(ctx, m.slice(1).map(decodeURIComponent), req);
      send(status, body);
      return;
    }
    if (methodMismatch) throw new QnexusError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}`);
    throw new QnexusError('NOT_FOUND', `no such endpoint: ${req.method} ${path}`);
  } catch (e) {
    if (e instanceof QnexusError) {
      if (route === 'submit') ctx.metrics.txAdmission.inc({ source: 'api', result: e.code });
      send(e.httpStatus, e.toJSON());
    } else {
      ctx.log.error('API handler failed', { path, error: (e as Error).stack ?? String(e) });
      send(500, { error: { code: 'INTERNAL', message: 'internal error' } });
    }
  }
}
