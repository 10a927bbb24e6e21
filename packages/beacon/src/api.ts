import type { IncomingMessage, Server } from 'node:http';
import { formatAddress, isHex, toHex } from '@qnexus/crypto';
import { QnexusError, stakingTotalsToJson, validatorInfoToJson } from '@qnexus/types';
import type { P2PNode } from '@qnexus/p2p';
import { entryStatus, isDone, type Coordinator, type XferEntry } from './coordinator.js';
import { parseListLimit, queryParams, readEvidenceBody, startJsonApi, type ApiGuard, type JsonRoute, type Logger } from '@qnexus/runtime';
import type { Metrics } from './metrics.js';
import { validatorInfo, type Registry } from './registry.js';
import type { BeaconService } from './service.js';
import { beaconExplorerPage, networkJson } from './explorer.js';

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
    // The deadline rule makes a logged decision final: the destination's recorded answer (or the
    // beacon's own verdict as destination) decided it, and no crash or lag can change it.
    outcomeFinal: e.decision !== null,
    done: isDone(e),
    phases,
  };
}

type Handler = (c: ApiContext, params: string[], req: IncomingMessage, url: URL) => unknown;




function parseEpoch(raw: string | null, dflt: number): number {
  if (raw === null) return dflt;
  if (!/^[0-9]{1,15}$/.test(raw)) throw new QnexusError('BAD_REQUEST', 'epoch must be a non-negative integer');
  return Number(raw);
}

const routes: { re: RegExp; name: string; method?: 'GET' | 'POST'; h: Handler }[] = [
  {
    re: /^\/explorer$/,
    name: 'explorer',
    // The network page (explorer.ts): every shard's head, finality lag, cross-shard flows; it polls /v1/network.
    h: () => beaconExplorerPage(),
  },
  {
    re: /^\/v1\/network$/,
    name: 'network',
    h: (c, _p, _req, url) => {
      queryParams(url, []);
      return networkJson(c);
    },
  },
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
        // The newest slot whose tick is durable, and how late after its start it became so.
        processedSlot: c.service.processedSlot.slot,
        slotLagMs: Math.round(c.service.processedSlot.lagMs),
        frozenThrough: c.registry.frozenNext - 1,
        xtransfers: c.coordinator.counts(),
        cryptoBackend: c.registry.backend.name,
        // Each shard's newest certified block reported to the beacon (what its registry snapshots carry).
        heads: c.registry.heads().map((h) => ({ shard: h.shard, height: h.height, blockHash: toHex(h.blockHash), slot: h.slot, round: h.round })),
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
    // `/v1/committee` too: the name shard nodes used to serve.
    re: /^\/v1\/committees?$/,
    name: 'committees',
    h: (c, _p, _req, url) => {
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
    h: async (c, _p, req) => {
      const ev = await readEvidenceBody(req);
      const r = await c.service.submitEvidence(ev);
      return { result: r.result, validator: r.validator, slashed: r.slashed.toString() };
    },
  },
  {
    re: /^\/v1\/xtransfers$/,
    name: 'xtransfers',
    h: (c, _p, _req, url) => {
      const limit = parseListLimit(url.searchParams.get('limit'), DEFAULT_LIST, MAX_LIST);
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
  // Every beacon endpoint answers 200 with its body (or throws a QnexusError).
  const json: JsonRoute<ApiContext>[] = routes.map((r) => ({ method: r.method ?? 'GET', re: r.re, name: r.name, h: async (c, p, req, url) => [200, await r.h(c, p, req, url)] }));
  return startJsonApi(ctx, json, host, port);
}
