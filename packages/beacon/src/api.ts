import type { Server } from 'node:http';
import { formatAddress, isHex, toHex } from '@qnexus/crypto';
import { QnexusError, stakingTotalsToJson, validatorInfoToJson } from '@qnexus/types';
import type { P2PNode } from '@qnexus/p2p';
import { app } from '@qnexus/app';
import { entryStatus, isDone, type Coordinator, type XferEntry } from './coordinator.js';
import { implement, parseListLimit, readEvidenceBody, startJsonApi, type ApiGuard, type JsonRoute, type Logger } from '@qnexus/runtime';
import { beaconRoutes as R, type beacon as B, type Static } from '@qnexus/api';
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
export function xferJson(e: XferEntry): Static<typeof B.BeaconXTransfer> {
  const i = e.info;
  const phases: Static<typeof B.BeaconXTransfer>['phases'] = [];
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
    kind: app.xferKindName(i),
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

function parseEpoch(raw: string | undefined, dflt: number): number {
  if (raw === undefined) return dflt;
  if (!/^[0-9]{1,15}$/.test(raw)) throw new QnexusError('BAD_REQUEST', 'epoch must be a non-negative integer');
  return Number(raw);
}

/** The beacon's routes, in routing order (the OpenAPI document and the route-coverage test read them). */
export const beaconApiRoutes: readonly JsonRoute<ApiContext>[] = [
  // The network page (explorer.ts): every shard's head, finality lag, cross-shard flows; it polls /v1/network.
  implement(R.explorer, () => beaconExplorerPage()),
  implement(R.network, (c: ApiContext) => networkJson(c)),
  implement(R.status, (c: ApiContext) => {
    const slot = c.service.slot;
    return {
      chainId: c.registry.genesis.chainId,
      genesisHash: toHex(c.registry.genesisHash),
      version: API_VERSION,
      role: 'beacon' as const,
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
      modules: app.modules.map((m) => ({ name: m.name, id: m.id })),
    };
  }),
  implement(R.validators, (c: ApiContext) => {
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
  }),
  implement(R.validator, (c: ApiContext, { params: { address } }) => {
    const a = address.toLowerCase();
    if (!/^qn[0-9a-f]{40}$/.test(a)) throw new QnexusError('BAD_REQUEST', 'address must be qn followed by 40 hex digits');
    const v = c.registry.validator(a);
    if (!v) throw new QnexusError('VALIDATOR_UNKNOWN', `no validator ${a} in the registry`);
    return { ...validatorInfoToJson(validatorInfo(v)), publicKey: toHex(v.publicKey), peerId: c.registry.peerOf(v.address) };
  }),
  implement(R.supply, (c: ApiContext) => stakingTotalsToJson(c.registry.totals())),
  // `/v1/committee` too: the name shard nodes used to serve.
  implement(R.committees, (c: ApiContext, { query }) => {
    const epoch = parseEpoch(query.epoch, c.service.epoch);
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
  }),
  implement(R.submitEvidence, async (c: ApiContext, { req }) => {
    const ev = await readEvidenceBody(req);
    const r = await c.service.submitEvidence(ev);
    return { result: r.result, validator: r.validator, slashed: r.slashed.toString() };
  }),
  implement(R.xtransfers, (c: ApiContext, { query }) => {
    const limit = parseListLimit(query.limit, DEFAULT_LIST, MAX_LIST);
    return { xtransfers: c.coordinator.recent(limit).map(xferJson) };
  }),
  implement(R.xtransfer, (c: ApiContext, { params: { id } }) => {
    if (!isHex(id, 32)) throw new QnexusError('BAD_REQUEST', 'transfer id must be 32 bytes of hex (the source transaction id)');
    const e = c.coordinator.get(id.toLowerCase());
    if (!e) throw new QnexusError('XS_UNKNOWN_TRANSFER', `no record of transfer ${id}`);
    return xferJson(e);
  }),
];

export function startApi(ctx: ApiContext, host: string, port: number): Promise<Server> {
  return startJsonApi(ctx, beaconApiRoutes, host, port, { openapi: { title: 'Quantum Nexus beacon API', version: API_VERSION } });
}
