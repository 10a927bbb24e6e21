import { toHex } from '@qnexus/crypto';
import {
  QnexusError,
  decodeTxBatch,
  decodeTxIdList,
  encodeTxBatch,
  encodeTxIdList,
  openTx,
  MAX_TX_BATCH,
  MAX_TX_BATCH_BYTES,
  MAX_TX_BYTES,
  type AnyErrorCode,
  type TxEnvelope,
} from '@qnexus/types';
import { RateLimiter, type DirectHandlerOptions, type P2PNode, type RequestHandler, type RequestHandlerOptions, type Topics, type ValidationResult } from '@qnexus/p2p';
import { Counter, type Registry } from 'prom-client';
import type { Logger } from '@qnexus/runtime';
import type { Mempool } from './mempool.js';
import type { Metrics } from './metrics.js';

/** Admission failures that prove the relaying peer misbehaved (it must have checked before relaying). */
const PEER_FAULT: ReadonlySet<string> = new Set<string>([
  'TX_MALFORMED',
  'TX_TOO_LARGE',
  'TX_BAD_SIGNATURE',
  'TX_WRONG_CHAIN',
  'TX_WRONG_SCHEME',
  'TX_UNKNOWN_KIND',
  'TX_BAD_AMOUNT',
  'TX_FEE_TOO_LOW',
  'TX_SELF_TRANSFER',
  'TX_WRONG_SHARD',
  'TX_CROSS_SHARD',
  'TX_SAME_SHARD',
  // Stake rules a relayer checks statelessly (consent signature, minimum, key length).
  'STAKE_BAD_CONSENT',
  'STAKE_TOO_LOW',
  // A beacon entry not signed by the beacon, or for another shard: the relayer had to check.
  'XS_UNAUTHORIZED',
  'XS_WRONG_SHARD',
]);

/**
 * Default wait for more transactions before publishing a batch. Gossip costs every process of
 * the mesh ~0.2–0.5 ms of CPU per message whatever its size, so at tens of transactions per
 * second per node a short window sends nearly one message per transaction. 100 ms (a tenth of
 * a default slot) fills batches at those rates and costs a transaction at most that much
 * latency, against a block interval of a whole slot.
 */
export const DEFAULT_TX_GOSSIP_FLUSH_MS = 100;

/**
 * Limits of the direct tx-batch protocol (`Topics.txDirectProtocol`), per sending peer. A frame
 * is one batch, at most MAX_TX_BATCH_BYTES (what the gossip path accepts too). An honest node
 * sends at most DIRECT_SEND_PER_SEC batches a second with bursts of DIRECT_SEND_BURST (its own
 * pacing, below): 10 a second from the flush timer (DEFAULT_TX_GOSSIP_FLUSH_MS) plus one per
 * MAX_TX_BATCH transactions when batches fill (40/s is 2 560 tx/s from one node's API, above
 * what one node admits). The receiver allows more than that (50/s, bursts of 100) so frames
 * bunched by the network or by its own slow handling never cost an honest sender a drop or a
 * penalty; beyond it frames are dropped and the sender penalised (direct.ts). The work per frame
 * is bounded before any signature check exactly as on the gossip path: decodeTxBatch refuses
 * more than MAX_TX_BATCH_BYTES or MAX_TX_BATCH transactions, and a peer's frames are handled
 * one after another.
 */
export const TX_DIRECT_LIMITS: DirectHandlerOptions = { maxFrameBytes: MAX_TX_BATCH_BYTES, framesPerSec: 50, frameBurst: 100 };
/** Batches a node sends directly per second, and at once; beyond it a batch goes by gossip only (which has its own flow control). */
const DIRECT_SEND_PER_SEC = 40;
const DIRECT_SEND_BURST = 60;
/** The one key of our send budget's RateLimiter (it is per node, not per peer). */
const SELF = 'self';
/**
 * A peer is "on probation" for this long after it first accepted a direct send (or accepted one
 * again after refusing): batches sent to it meanwhile also go by gossip. sendDirect returns true
 * while the stream is still opening, and a peer that does not serve the protocol (an older
 * node) loses the frames queued before the open fails; from then on sendDirect refuses it for a
 * while and gossip takes over. Opening a stream on a live connection takes one round trip, or
 * fails within the open timeout (5 s), so after this long a peer still accepting is served.
 */
export const TX_DIRECT_PROBATION_MS = 5_000;

/** Sending batches directly to the shard's peers (see TxGossip). */
export interface TxDirectOptions {
  /** The direct protocol of the shard (`Topics.txDirectProtocol`); without it batches only go by gossip, as before. */
  protocol?: string;
  /** Probation of a newly reached peer (default TX_DIRECT_PROBATION_MS; 0 trusts the first send). */
  probationMs?: number;
  /** Peers that should get every batch (the shard committee's peers we know of); one we did not reach directly makes the batch go by gossip too. */
  expectedPeers?: () => Iterable<string>;
}

/**
 * Transaction batches of the shard. Outbound: transactions admitted through the API are
 * collected for up to `flushMs` (`--tx-gossip-flush-ms`) or `maxBatch` (default and at most
 * MAX_TX_BATCH; `--tx-gossip-batch`) and sent as one batch:
 *
 * - directly, once to each peer on the shard's tx topic, over a long-lived stream per peer
 *   (`direct.protocol`, see direct.ts), as a validator's votes are: gossip delivered each batch
 *   to every peer about mesh-degree times, each copy through the gossipsub RPC machinery;
 * - and ALSO by gossip, as before, when direct sending could not be trusted to reach everyone:
 *   no peer on the topic, a peer that refused the direct send (not connected, or its stream
 *   could not be opened lately: an older node without the protocol), a peer still on probation
 *   (TX_DIRECT_PROBATION_MS), a known committee peer (`expectedPeers`) we did not reach, or our
 *   own direct send budget spent. Older nodes and partially connected ones keep working.
 *
 * Direct batches are not relayed. A node not connected to the origin gets the transactions
 * anyway: the origin falls back to gossip whenever it could not reach every topic peer (and
 * every known committee peer) directly; pending transactions are announced again to every shard
 * peer (TxInventory, first after 2 slots) and pulled by whoever lacks them; and a proposal's
 * missing transactions are fetched from its relayer and proposer (fetchProposalTxs). The same
 * paths recover the rare batch lost in a direct stream that broke.
 *
 * Inbound (gossip or direct alike): each transaction in a batch goes through full admission;
 * the batch is rejected (not relayed, sender penalised) if any transaction is invalid in a way
 * the sender must have noticed, accepted if it brought at least one new transaction, ignored
 * otherwise.
 */
export class TxGossip {
  private pending: Uint8Array[] = [];
  private timer: NodeJS.Timeout | null = null;
  /** Since when each topic peer has accepted direct sends without a refusal (probation). */
  private readonly directSince = new Map<string, number>();
  /** Our own direct send budget (one bucket, key SELF). */
  private readonly sendBudget = new RateLimiter({ ratePerSec: DIRECT_SEND_PER_SEC, burst: DIRECT_SEND_BURST });
  private readonly probationMs: number;
  /** Peers that should get every batch (set by the node once it knows the committee's peers); see TxDirectOptions. */
  expectedPeers: (() => Iterable<string>) | null;

  constructor(
    private readonly p2p: P2PNode,
    private readonly topic: string,
    private readonly mempool: Mempool,
    private readonly metrics: Metrics,
    private readonly onPublishError: (e: Error) => void,
    /** Most transactions per outbound message, 1..MAX_TX_BATCH (inbound batches may always hold MAX_TX_BATCH). */
    readonly maxBatch: number = MAX_TX_BATCH,
    /** Longest wait (ms) for more transactions before publishing a partial batch. */
    readonly flushMs: number = DEFAULT_TX_GOSSIP_FLUSH_MS,
    private readonly direct: TxDirectOptions = {},
  ) {
    if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > MAX_TX_BATCH) throw new RangeError(`tx gossip batch must be 1..${MAX_TX_BATCH}, not ${maxBatch}`);
    this.probationMs = direct.probationMs ?? TX_DIRECT_PROBATION_MS;
    if (!(this.probationMs >= 0)) throw new RangeError(`direct probation must be ≥ 0 ms, not ${this.probationMs}`);
    this.expectedPeers = direct.expectedPeers ?? null;
  }

  /** Receive batches: the shard's tx topic, and (with a direct protocol) direct batches, checked alike. */
  async subscribe(): Promise<void> {
    this.p2p.subscribe(this.topic, { maxBytes: MAX_TX_BATCH_BYTES, validate: (d) => this.validate(d, 'gossip') });
    if (this.direct.protocol !== undefined) await this.p2p.handleDirect(this.direct.protocol, TX_DIRECT_LIMITS, (d) => this.validate(d, 'direct'));
  }

  /** Queue an admitted transaction for the next outbound batch. */
  publish(raw: Uint8Array): void {
    this.pending.push(raw);
    if (this.pending.length >= this.maxBatch) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.flushMs);
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (this.pending.length) {
      const batch = this.pending.splice(0, this.maxBatch);
      this.send(encodeTxBatch(batch));
    }
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pending = [];
  }

  /** One batch: directly to each topic peer, and by gossip too when that may not reach everyone (see the class comment). */
  private send(data: Uint8Array): void {
    let gossip = true;
    const protocol = this.direct.protocol;
    if (protocol !== undefined && this.sendBudget.take(SELF).ok) {
      const now = Date.now();
      const peers = this.p2p.topicPeers(this.topic);
      const reached = new Set<string>();
      let missed = peers.length === 0;
      for (const peer of peers) {
        // A batch must not be dropped silently behind a stalled stream: refused, it goes by gossip.
        if (!this.p2p.sendDirect(peer, protocol, data, { whenFull: 'refuse' })) {
          this.directSince.delete(peer);
          missed = true;
          continue;
        }
        reached.add(peer);
        const since = this.directSince.get(peer);
        if (since === undefined) this.directSince.set(peer, now);
        if (since === undefined ? this.probationMs > 0 : now - since < this.probationMs) missed = true;
      }
      // Peers gone from the topic start a new probation when they come back.
      for (const peer of this.directSince.keys()) if (!reached.has(peer)) this.directSince.delete(peer);
      if (!missed && this.expectedPeers) {
        for (const peer of this.expectedPeers()) {
          if (peer !== this.p2p.peerId && !reached.has(peer)) {
            missed = true;
            break;
          }
        }
      }
      if (reached.size > 0) this.metrics.txBatchesSent.inc({ path: 'direct' });
      gossip = missed;
    }
    if (!gossip) return;
    this.metrics.txBatchesSent.inc({ path: 'gossip' });
    this.p2p.publish(this.topic, data).catch((e: Error) => this.onPublishError(e));
  }

  /** A batch from a peer (relayed by gossip, or sent to us directly by its origin): `source` labels the admission metric. */
  private async validate(data: Uint8Array, source: 'gossip' | 'direct'): Promise<ValidationResult> {
    let raws: Uint8Array[];
    try {
      raws = decodeTxBatch(data);
    } catch {
      this.metrics.txAdmission.inc({ source, result: 'TX_MALFORMED' });
      return 'reject';
    }
    let added = 0;
    let fault = false;
    // Signatures are checked on the verify pool; the batch's transactions go through together.
    await Promise.all(
      raws.map(async (raw) => {
        try {
          const r = await this.mempool.admit(openTx(raw));
          this.metrics.txAdmission.inc({ source, result: r === 'added' ? 'accepted' : 'known' });
          if (r === 'added') added++;
        } catch (e) {
          const code: AnyErrorCode = e instanceof QnexusError ? e.code : 'TX_MALFORMED';
          this.metrics.txAdmission.inc({ source, result: code });
          // State-dependent failures (nonce races, funds, a full pool) are not the sender's fault.
          if (PEER_FAULT.has(code)) fault = true;
        }
      }),
    );
    this.metrics.mempoolSize.set(this.mempool.size);
    if (fault) return 'reject';
    return added > 0 ? 'accept' : 'ignore';
  }
}

// ------------------------------------------------------------------ pulling by id

/** Largest response frame of a transaction fetch: one transaction at its size cap, plus framing. */
const TX_FRAME_BYTES = MAX_TX_BYTES + 64;
/** Longest wait for one peer's answer to a fetch by id (within the caller's deadline). */
const FETCH_TIMEOUT_MS = 3_000;

/** What one peer served for a fetch by id: the transactions asked for, and whether it sent junk. */
export interface FetchedTxs {
  envs: TxEnvelope[];
  /** The peer sent a frame that is no transaction: its own fault (an honest peer serves its mempool's bytes). */
  malformed: boolean;
}

/**
 * Ask one peer for transactions by id over the shard's txs protocol (`Topics.txsProtocol`, served
 * by `serveTxsByIds`). Only transactions whose id was asked for are kept; a failed exchange
 * (timeout, reset, protocol unsupported) yields what arrived before it.
 */
export async function requestTxs(p2p: P2PNode, protocol: string, peer: string, ids: readonly Uint8Array[], timeoutMs: number): Promise<FetchedTxs> {
  const want = new Set(ids.map((h) => toHex(h)));
  const envs: TxEnvelope[] = [];
  let malformed = false;
  if (ids.length === 0) return { envs, malformed };
  try {
    for await (const raw of p2p.request(peer, protocol, encodeTxIdList(ids), { timeoutMs, maxResponseFrameBytes: TX_FRAME_BYTES, maxFrames: ids.length })) {
      let env: TxEnvelope;
      try {
        env = openTx(raw);
      } catch {
        malformed = true;
        break;
      }
      if (want.delete(env.hashHex)) envs.push(env);
    }
  } catch {
    // The peer went away or stalled: what it served so far still counts.
  }
  return { envs, malformed };
}

/** Request options of the txs protocol, for a chain whose blocks hold at most `maxBlockTxs`. */
export function txsProtocolOptions(maxBlockTxs: number): RequestHandlerOptions {
  return {
    maxInboundStreams: 16,
    maxOutboundStreams: 16,
    // A request names at most a block's worth of ids (a proposal's, or an inventory's share).
    maxRequestBytes: 4 + 32 * maxBlockTxs,
    timeoutMs: 10_000,
    budget: { requestsPerSec: 10, requestBurst: 20, bytesPerSec: 4 * 1024 * 1024, byteBurst: 8 * 1024 * 1024, globalBytesPerSec: 16 * 1024 * 1024 },
  };
}

/** Serve transactions by id from the mempool (the txs protocol): the ones we hold, in the order asked. */
export function serveTxsByIds(mempool: Mempool, alsoKnown: (hashHex: string) => TxEnvelope | undefined = () => undefined): RequestHandler {
  return async function* (req: Uint8Array) {
    // maxRequestBytes already bounds the list to a block's worth of ids.
    for (const h of decodeTxIdList(req)) {
      const k = toHex(h);
      const env = mempool.get(k) ?? alsoKnown(k);
      if (env) yield env.raw;
    }
  };
}

/** Where a proposal's missing transactions came from (the `source` label of qnexus_proposal_txs_fetched_total). */
export type FetchSource = 'relayer' | 'proposer' | 'peer' | 'mempool';

/** Who to ask for a proposal's missing transactions, and until when. */
export interface ProposalFetchPlan {
  /** The peer that relayed the proposal to us (it validated it, so it had every id once). */
  relayer: string;
  /** The peers of the round's proposer and of the block's author, when the registry binds them (they built or re-proposed the block). */
  proposers: readonly string[];
  /** Other peers of the shard, asked (at most MAX_OTHER_PEERS per attempt, each once) when the first two lack some. */
  others: readonly string[];
  /** Give up at this time (ms since the epoch): the end of the proposal's round, or a little later. */
  deadline: number;
  /** Transactions that reached the mempool meanwhile (by gossip or inventory) count too. */
  local?: (hashHex: string) => TxEnvelope | undefined;
  /** Told of peers that served junk (the caller penalises them). */
  onMalformed?: (peer: string) => void;
}

/** Other shard peers asked per attempt once the relayer and proposer lack some transactions. */
const MAX_OTHER_PEERS = 3;
/** Attempts within the deadline, and the pause between two. */
const MAX_FETCH_ATTEMPTS = 3;
const FETCH_RETRY_MS = 300;

/**
 * Fetch a proposal's missing transactions. Each attempt asks the relayer and the proposer at
 * once (neither can hold the other up), then, for what is still missing, a few other shard
 * peers not asked before; attempts repeat (picking up what reached the mempool meanwhile) until
 * everything is here, MAX_FETCH_ATTEMPTS are spent or the deadline passes. Every request asks
 * only for what is still missing, so the bytes are bounded by a few copies of the block.
 */
export async function fetchProposalTxs(p2p: P2PNode, protocol: string, ids: readonly Uint8Array[], plan: ProposalFetchPlan): Promise<{ got: Map<string, TxEnvelope>; sources: Map<FetchSource, number> }> {
  const got = new Map<string, TxEnvelope>();
  const sources = new Map<FetchSource, number>();
  const want = new Map(ids.map((h) => [toHex(h), h] as const));
  const missing = (): Uint8Array[] => [...want].filter(([k]) => !got.has(k)).map(([, h]) => h);
  const take = (envs: Iterable<TxEnvelope>, source: FetchSource): void => {
    for (const env of envs) {
      if (!want.has(env.hashHex) || got.has(env.hashHex)) continue;
      got.set(env.hashHex, env);
      sources.set(source, (sources.get(source) ?? 0) + 1);
    }
  };
  const ask = async (peers: readonly string[], source: (peer: string) => FetchSource, turn: number): Promise<void> => {
    const ids = missing();
    const timeout = Math.min(FETCH_TIMEOUT_MS, plan.deadline - Date.now());
    if (ids.length === 0 || timeout <= 0 || peers.length === 0) return;
    // Each missing id is asked of one peer of the wave (round-robin, rotated every attempt so a
    // stalling peer's share goes to another next time): asking every peer for everything moved
    // each missing transaction twice or more, which a saturated shard could not afford.
    const shares = peers.map((peer, k) => ({ peer, ids: ids.filter((_h, i) => (i + turn) % peers.length === k) })).filter((x) => x.ids.length > 0);
    // Done when every request answered or nothing is missing any more. A peer that answered its
    // share is asked once more for what is still missing of the others' shares (work stealing),
    // so a stalling peer holds up nobody and a fast one is used to the full.
    await new Promise<void>((resolve) => {
      let left = 0;
      const stole = new Set<string>();
      const run = (peer: string, share: Uint8Array[]): void => {
        left++;
        void requestTxs(p2p, protocol, peer, share, timeout).then((r) => {
          if (r.malformed) plan.onMalformed?.(peer);
          take(r.envs, source(peer));
          const rest = missing();
          if (shares.length > 1 && rest.length > 0 && !r.malformed && !stole.has(peer) && Date.now() < plan.deadline) {
            stole.add(peer);
            run(peer, rest);
          }
          if (--left === 0 || rest.length === 0) resolve();
        });
      };
      for (const { peer, ids: share } of shares) run(peer, share);
    });
  };
  const first = [...new Set([plan.relayer, ...plan.proposers])].filter((x) => x !== p2p.peerId);
  const proposers = new Set(plan.proposers);
  const others = plan.others.filter((x) => x !== p2p.peerId && !first.includes(x));
  for (let attempt = 0; attempt < MAX_FETCH_ATTEMPTS && missing().length > 0 && Date.now() < plan.deadline; attempt++) {
    if (attempt > 0) {
      await new Promise((r) => setTimeout(r, Math.min(FETCH_RETRY_MS, Math.max(0, plan.deadline - Date.now()))));
      if (plan.local) take(missing().flatMap((h) => plan.local!(toHex(h)) ?? []), 'mempool');
    }
    await ask(first, (peer) => (proposers.has(peer) ? 'proposer' : 'relayer'), attempt);
    if (missing().length === 0) break;
    await ask(others.splice(0, MAX_OTHER_PEERS), () => 'peer', attempt);
  }
  return { got, sources };
}

// ------------------------------------------------------------------ metrics

/** Metrics of transaction propagation beyond the first gossip (inventories, pulls, proposal assembly). */
export interface TxPropagationMetrics {
  /** Transaction ids sent in inventories, by trigger (connect: a new shard peer; periodic: still pending). */
  reannounced: Counter<'trigger'>;
  /** Transactions pulled after an inventory, by result (added, known, rejected, unavailable). */
  pulled: Counter<'result'>;
  /** Missing proposal transactions fetched, by source (relayer, proposer, peer, mempool). */
  proposalFetched: Counter<'source'>;
  /** Proposals that could not be assembled, by cause (unavailable, error). */
  assemblyFailures: Counter<'cause'>;
}

const propagationMetrics = new WeakMap<Registry, TxPropagationMetrics>();

/** The propagation metrics of a node's registry (created on first use: TxInventory and the engine share them). */
export function txPropagationMetrics(registry: Registry): TxPropagationMetrics {
  let m = propagationMetrics.get(registry);
  if (m) return m;
  const r = [registry];
  m = {
    reannounced: new Counter({ name: 'qnexus_tx_reannounced_total', help: 'Pending transaction ids announced to shard peers again, by trigger (connect: a peer joined the shard topic; periodic: still pending)', labelNames: ['trigger'], registers: r }),
    pulled: new Counter({ name: 'qnexus_tx_pulled_total', help: "Transactions pulled from a peer's inventory, by result (added, known, rejected, unavailable)", labelNames: ['result'], registers: r }),
    proposalFetched: new Counter({ name: 'qnexus_proposal_txs_fetched_total', help: 'Missing transactions of a received proposal fetched, by source (relayer, proposer, peer, mempool)', labelNames: ['source'], registers: r }),
    assemblyFailures: new Counter({ name: 'qnexus_proposal_assembly_failures_total', help: 'Received proposals that could not be assembled into a block, by cause (unavailable: transactions no peer served in time; error)', labelNames: ['cause'], registers: r }),
  };
  propagationMetrics.set(registry, m);
  return m;
}

// ------------------------------------------------------------------ re-announcement

/** Most ids in one inventory: 32 KiB of ids. */
export const MAX_INVENTORY_IDS = 1024;
/** Inventories sent to a peer that just joined the shard topic: up to this many × MAX_INVENTORY_IDS of our oldest pending ids. */
const CONNECT_INVENTORIES = 4;
/** Pulls in flight at once, over all peers (one per peer). */
const MAX_PULLS = 4;
/** Ids waiting to be pulled from one peer: what its connect inventories name. */
const MAX_QUEUED_PER_PEER = CONNECT_INVENTORIES * MAX_INVENTORY_IDS;
/** Ids remembered as tried (pulled and not admitted, or not served) so an inventory does not pull them again at once. */
const MAX_TRIED = 20_000;

/** The inventory protocol of a shard: a peer names pending transaction ids, we pull what we lack. */
export function txInventoryProtocol(t: Topics): string {
  return `${t.tx}/inventory/1.0.0`;
}

export interface TxReannounceOptions {
  /** Send inventories at all (default true). The inventory protocol is served either way. */
  enabled?: boolean;
  /** How often new shard peers and due transactions are looked for (default 1000 ms). */
  tickMs?: number;
  /** First re-announcement of a transaction this long after it is first seen pending (default 2 slots); then the interval doubles. */
  firstAfterMs?: number;
  /** Longest interval between two re-announcements of a transaction (default 16 slots). */
  maxIntervalMs?: number;
  /** Most ids per inventory, 1..MAX_INVENTORY_IDS (default MAX_INVENTORY_IDS). */
  maxIds?: number;
}

interface Schedule {
  next: number;
  interval: number;
}

/**
 * Pending transactions reach every peer of the shard, whatever gossip lost (a partition, a
 * restart, a pruned mesh link). Gossip publishes a transaction once; besides that:
 *
 * - when a peer joins the shard's tx topic (a new or restored connection), it is sent an
 *   inventory of our pending ids (up to CONNECT_INVENTORIES × maxIds, oldest first);
 * - every pending transaction is announced again to all shard peers `firstAfterMs` after we
 *   first saw it pending, then at doubling intervals up to `maxIntervalMs`, at most `maxIds`
 *   ids per peer per tick (so at most 32 KiB of ids per peer per tick).
 *
 * An inventory is a request (`txInventoryProtocol`): the receiver answers with how many of the
 * ids it lacks and pulls those from the announcer over the txs protocol, one pull per peer and
 * MAX_PULLS in all at a time; pulled transactions go through full admission. Ids it holds cost
 * a map lookup and are never an offence, so an honest re-announcer is never penalised; a peer
 * is penalised only for what it sent: a malformed inventory, or a transaction it served that
 * fails a check the server must have made (PEER_FAULT). Requests beyond the serve budget are
 * refused by the p2p layer (and penalised there when they persist).
 */
export class TxInventory {
  private readonly schedule = new Map<string, Schedule>();
  private peers = new Set<string>();
  private readonly announcing = new Set<string>();
  /** Ids queued or being pulled, per peer to pull them from, and the peers being pulled from now. */
  private readonly queued = new Map<string, Uint8Array[]>();
  private readonly active = new Set<string>();
  private readonly pulling = new Set<string>();
  private readonly tried = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly m: TxPropagationMetrics;
  private readonly opts: Required<TxReannounceOptions>;
  readonly protocol: string;

  constructor(
    private readonly p2p: P2PNode,
    private readonly t: Topics,
    private readonly mempool: Mempool,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    /** Slot length and block cap of the chain (the default intervals are in slots; a pull asks at most a block's worth). */
    private readonly chain: { slotMs: number; maxBlockTxs: number },
    opts: TxReannounceOptions = {},
  ) {
    this.opts = {
      enabled: opts.enabled ?? true,
      tickMs: opts.tickMs ?? 1000,
      firstAfterMs: opts.firstAfterMs ?? 2 * chain.slotMs,
      maxIntervalMs: opts.maxIntervalMs ?? 16 * chain.slotMs,
      maxIds: opts.maxIds ?? MAX_INVENTORY_IDS,
    };
    const o = this.opts;
    if (!Number.isInteger(o.maxIds) || o.maxIds < 1 || o.maxIds > MAX_INVENTORY_IDS) throw new RangeError(`inventory ids must be 1..${MAX_INVENTORY_IDS}, not ${o.maxIds}`);
    if (!(o.tickMs > 0) || !(o.firstAfterMs > 0) || !(o.maxIntervalMs >= o.firstAfterMs)) throw new RangeError('re-announce intervals must be positive, the longest at least the first');
    this.protocol = txInventoryProtocol(t);
    this.m = txPropagationMetrics(metrics.registry);
  }

  async start(): Promise<void> {
    await this.p2p.handle(
      this.protocol,
      {
        maxInboundStreams: 16,
        maxOutboundStreams: 16,
        maxRequestBytes: 4 + 32 * MAX_INVENTORY_IDS,
        timeoutMs: 5_000,
        // An honest peer sends one inventory per tick, a few more when it (re)connects.
        budget: { requestsPerSec: 5, requestBurst: 20 },
      },
      (req, from) => this.serve(req, from),
    );
    if (this.opts.enabled) this.timer = setTimeout(() => this.tick(), this.opts.tickMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.queued.clear();
  }

  /** Look for new shard peers and due transactions, send the inventories, and schedule the next tick. */
  tick(): void {
    this.timer = null;
    if (this.stopped) return;
    try {
      this.announce();
    } catch (e) {
      this.log.error('tx re-announcement failed', { error: (e as Error).stack ?? String(e) });
    }
    this.timer = setTimeout(() => this.tick(), this.opts.tickMs);
  }

  private announce(): void {
    const now = Date.now();
    const peers = this.p2p.topicPeers(this.t.tx);
    const joined = peers.filter((p) => !this.peers.has(p));
    this.peers = new Set(peers);
    if (this.mempool.size === 0) {
      this.schedule.clear();
      return;
    }
    // Beacon entries first, then each sender's by nonce: what blocks need first.
    const pending = this.mempool.pending();
    const live = new Set<string>();
    const due: Uint8Array[] = [];
    for (const env of pending) {
      live.add(env.hashHex);
      let s = this.schedule.get(env.hashHex);
      if (!s) {
        s = { next: now + this.opts.firstAfterMs, interval: this.opts.firstAfterMs };
        this.schedule.set(env.hashHex, s);
      } else if (s.next <= now && due.length < this.opts.maxIds) {
        due.push(env.hash);
        s.interval = Math.min(2 * s.interval, this.opts.maxIntervalMs);
        s.next = now + s.interval;
      }
    }
    for (const k of this.schedule.keys()) if (!live.has(k)) this.schedule.delete(k);
    if (joined.length > 0) {
      const ids = pending.slice(0, CONNECT_INVENTORIES * this.opts.maxIds).map((e) => e.hash);
      for (const peer of joined) this.send(peer, ids, 'connect');
    }
    if (due.length > 0) for (const peer of peers) if (!joined.includes(peer)) this.send(peer, due, 'periodic');
  }

  /** Send `ids` to a peer in inventories of at most maxIds, one exchange at a time per peer (a stuck peer gets no pile-up). */
  private send(peer: string, ids: readonly Uint8Array[], trigger: 'connect' | 'periodic'): void {
    if (this.announcing.has(peer) || ids.length === 0) return;
    this.announcing.add(peer);
    void (async () => {
      try {
        for (let i = 0; i < ids.length && !this.stopped; i += this.opts.maxIds) {
          const chunk = ids.slice(i, i + this.opts.maxIds);
          for await (const _ of this.p2p.request(peer, this.protocol, encodeTxIdList(chunk), { timeoutMs: 5_000, maxResponseFrameBytes: 8, maxFrames: 1 })) void _;
          this.m.reannounced.inc({ trigger }, chunk.length);
        }
      } catch (e) {
        // A peer without the protocol (older version) or gone: the next tick tries again.
        this.log.debug('tx inventory not delivered', { peer, error: (e as Error).message });
      } finally {
        this.announcing.delete(peer);
      }
    })();
  }

  /** An inventory from `from`: answer how many of its ids we lack, and pull those from it. */
  private async *serve(req: Uint8Array, from: string): AsyncIterable<Uint8Array> {
    let ids: Uint8Array[];
    try {
      ids = decodeTxIdList(req);
      if (ids.length > MAX_INVENTORY_IDS) throw new RangeError(`${ids.length} ids exceed ${MAX_INVENTORY_IDS}`);
    } catch (e) {
      this.p2p.penalize(from, `malformed tx inventory: ${(e as Error).message}`);
      throw e;
    }
    const now = Date.now();
    const wanted: Uint8Array[] = [];
    const seen = new Set<string>();
    for (const h of ids) {
      const k = toHex(h);
      if (seen.has(k) || this.mempool.get(k) || this.pulling.has(k)) continue;
      seen.add(k);
      const at = this.tried.get(k);
      if (at !== undefined && now - at < this.opts.firstAfterMs) continue;
      wanted.push(h);
    }
    if (wanted.length > 0) this.pull(from, wanted);
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, wanted.length);
    yield out;
  }

  /** Queue `ids` to be pulled from `peer` (bounded per peer: the rest wait for its next inventory). */
  private pull(peer: string, ids: Uint8Array[]): void {
    if (this.stopped) return;
    const q = this.queued.get(peer) ?? [];
    for (const h of ids.slice(0, Math.max(0, MAX_QUEUED_PER_PEER - q.length))) {
      q.push(h);
      this.pulling.add(toHex(h));
    }
    if (q.length > 0) this.queued.set(peer, q);
    this.pump();
  }

  /** Start pulls from queued peers: one exchange per peer, MAX_PULLS in all, a block's worth of ids each. */
  private pump(): void {
    for (const [peer, q] of this.queued) {
      if (this.stopped || this.active.size >= MAX_PULLS) return;
      if (this.active.has(peer)) continue;
      const chunk = q.splice(0, this.chain.maxBlockTxs);
      if (q.length === 0) this.queued.delete(peer);
      this.active.add(peer);
      void this.pullChunk(peer, chunk).finally(() => {
        this.active.delete(peer);
        this.pump();
      });
    }
  }

  /** Fetch `ids` from `peer` and admit them; remember the ones that did not make it for a while. */
  private async pullChunk(peer: string, ids: Uint8Array[]): Promise<void> {
    const keys = ids.map((h) => toHex(h));
    try {
      const { envs, malformed } = await requestTxs(this.p2p, this.t.txsProtocol, peer, ids, 10_000);
      let fault = malformed ? 'served a malformed transaction' : '';
      const admitted = new Set<string>();
      await Promise.all(
        envs.map(async (env) => {
          try {
            const r = await this.mempool.admit(env);
            this.metrics.txAdmission.inc({ source: 'pull', result: r === 'added' ? 'accepted' : 'known' });
            this.m.pulled.inc({ result: r });
            admitted.add(env.hashHex);
          } catch (e) {
            const code: AnyErrorCode = e instanceof QnexusError ? e.code : 'TX_MALFORMED';
            this.metrics.txAdmission.inc({ source: 'pull', result: code });
            this.m.pulled.inc({ result: 'rejected' });
            // It announced the transaction as pending and served it: it must have admitted it, so
            // only failures no state difference explains are its fault.
            if (PEER_FAULT.has(code)) fault = `served an invalid transaction (${code})`;
          }
        }),
      );
      const served = new Set(envs.map((e) => e.hashHex));
      const unavailable = keys.filter((k) => !served.has(k)).length;
      if (unavailable > 0) this.m.pulled.inc({ result: 'unavailable' }, unavailable);
      const now = Date.now();
      if (this.tried.size + keys.length > MAX_TRIED) this.tried.clear();
      for (const k of keys) if (!admitted.has(k)) this.tried.set(k, now);
      if (admitted.size > 0) this.metrics.mempoolSize.set(this.mempool.size);
      if (fault) this.p2p.penalize(peer, `tx inventory pull: ${fault}`);
    } catch (e) {
      this.log.warn('tx pull failed', { peer, error: (e as Error).message });
    } finally {
      for (const k of keys) this.pulling.delete(k);
    }
  }
}
