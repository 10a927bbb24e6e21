import { fromHex, isHex, toHex } from '@qnexus/crypto';
import type { Genesis } from '@qnexus/types';
import type { StateMachine } from '@qnexus/state';
import { beacon as B, front as F, node as N, type AnyRouteDef, type PathParamNames, type Static } from '@qnexus/api';
import { ApiError } from './errors.js';
import { httpRequest, type HttpAnswer } from './transport.js';
import { verifyAccountProof, verifyQueryProof, type ProofVerifyOptions, type VerifiedAccount, type VerifiedQuery } from './verify.js';
import type {
  AdminBackupResult,
  AdminConnectResult,
  AdminDisconnectResult,
  AdminLogLevel,
  AdminLogLevelInfo,
  AdminPeersInfo,
  BlockList,
  ShardsInfo,
  XTransferList,
  AccountInfo,
  BeaconStatusInfo,
  BeaconValidatorsInfo,
  BeaconXTransferInfo,
  BeaconXTransferList,
  BlockInfo,
  CommitteesInfo,
  ErrorInfo,
  NodeCommitteesInfo,
  EvidenceList,
  EvidenceResult,
  StakingTotals,
  StatusInfo,
  SubmitResult,
  SupplyInfo,
  TxInfo,
  ValidatorInfo,
  ValidatorsInfo,
  XTransferInfo,
} from './types.js';

export interface ClientOptions {
  /** Per-request timeout (connect + answer). Default 10 000 ms. */
  timeoutMs?: number;
  /**
   * The node's admin bearer token (the 64 hex digits of `<data-dir>/admin.token`), sent as
   * `Authorization: Bearer …` with the `admin…` methods (`/v1/admin/…`) only.
   */
  adminToken?: string;
  /**
   * More nodes' API URLs, of any shard (e.g. every node of a devnet manifest). `account()` asked
   * of a node of the wrong shard (`ACCOUNT_WRONG_SHARD`) asks one of these whose shard is the
   * account's home shard instead ({@link QnexusClient.forShard}).
   */
  nodes?: readonly string[];
  /**
   * The chain's genesis: the only thing verified reads (`account(…, { verify: true })`,
   * `verifiedQuery`) trust, with what the genesis beacon key signed.
   */
  genesis?: Genesis;
}

/** Options of a proven read: `verify` asks for a proof and checks it (needs `ClientOptions.genesis`); `height` pins the read. */
export interface ProvenReadOptions {
  verify?: boolean;
  /** The finalized height to read and prove at (default: the node's finalized head); needs `verify`. */
  height?: number;
}

export interface WaitForTxOptions {
  /** `included`: in a block (or final); `final`: in a finalized block. Default `final`. */
  until?: 'included' | 'final';
  /** Default 60 000 ms. */
  timeoutMs?: number;
  /** Default 250 ms. */
  pollMs?: number;
}

export interface WaitForXTransferOptions {
  /**
   * `prepared`: the first phase is in a finalized block (a shard node: the source has escrowed
   * the amount, or the destination has prepared or refused; the beacon: the destination has
   * answered). `decided`: the decision is known (a shard node: it has applied it; the beacon:
   * it has logged it). `applied`: a shard node has applied the decision in a finalized block;
   * the beacon knows that both shards have (`done`). Each includes the later ones. Default `applied`.
   */
  until?: 'prepared' | 'decided' | 'applied';
  /** Default 120 000 ms. */
  timeoutMs?: number;
  /** Default 250 ms. */
  pollMs?: number;
}

export interface WaitForHeightOptions {
  /** Wait for `finalizedHeight` instead of `height`. */
  finalized?: boolean;
  /** Default 250 ms. */
  pollMs?: number;
}

/** Where {@link findTx} found a transaction: the most advanced status any node reported, and which node. */
export interface TxLookup {
  tx: TxInfo;
  /** Base URL of the node that reported it. */
  node: string;
}

/** Options of {@link QnexusClient.submitTx}. */
export interface SubmitOptions {
  /** Send as `application/octet-stream` instead of JSON. */
  binary?: boolean;
  /** How long to keep retrying a busy node (503 NODE_BUSY / MEMPOOL_FULL, 429 RATE_LIMITED). Default 10 000 ms. */
  busyRetryMs?: number;
  /** Most attempts in all, however short the node's Retry-After (default 20; `busyRetryMs` usually ends it first). */
  maxAttempts?: number;
  /** Told of each busy answer before it is retried (to show progress, or to count backpressure). */
  onBusy?: (e: ApiError) => void;
}

export const DEFAULT_NODE_URL = 'http://127.0.0.1:7100';
const DEFAULT_TIMEOUT_MS = 10_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Most extra fields of an error object kept in `ApiError.details` (a node's answer is untrusted). */
const MAX_ERROR_DETAILS = 16;

function errorEnvelope(json: unknown): (ErrorInfo & { details: Record<string, string | number | boolean | null> }) | undefined {
  if (typeof json !== 'object' || json === null) return undefined;
  const e = (json as { error?: unknown }).error;
  if (typeof e !== 'object' || e === null) return undefined;
  const { code, message } = e as { code?: unknown; message?: unknown };
  if (typeof code !== 'string') return undefined;
  const details: Record<string, string | number | boolean | null> = {};
  let n = 0;
  for (const [k, v] of Object.entries(e)) {
    if (k === 'code' || k === 'message' || k === '__proto__') continue;
    if (v === null || typeof v === 'number' || typeof v === 'boolean' || (typeof v === 'string' && v.length <= 1024)) {
      details[k] = v as string | number | boolean | null;
      if (++n >= MAX_ERROR_DETAILS) break;
    }
  }
  return { code, message: typeof message === 'string' ? message : code, details };
}

/** A shard number as an error's details state it, or undefined when it is not one. */
function shardDetail(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v < 65_536 ? v : undefined;
}

function describeNetworkError(e: unknown, timeoutMs: number): string {
  if (!(e instanceof Error)) return String(e);
  if (e.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  // node:http errors carry their code (ECONNREFUSED, ECONNRESET, ENOTFOUND…) on the error itself.
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && !e.message.includes(code) ? `${code}: ${e.message}` : e.message;
}

/** `Retry-After` in ms: delay-seconds (an HTTP date is not used by nodes), capped at a minute. */
function parseRetryAfter(v: string | null): number | undefined {
  if (v === null || !/^\d{1,6}$/.test(v.trim())) return undefined;
  return Math.min(60_000, Number(v.trim()) * 1000);
}

/** How far a transaction has got, to pick the most advanced of several nodes' answers. */
const TX_PROGRESS: Record<string, number> = { final: 4, included: 3, pending: 2, rejected: 1 };

/**
 * Ask several nodes of a shard for a transaction by hash; resolves with the most advanced status
 * any of them reports (final > included > pending > rejected), or null when every node that
 * answered said `TX_UNKNOWN`. Throws `UNAVAILABLE` when no node answered at all: then nothing
 * is known. Null is no proof the transaction was never admitted (the node that acknowledged it
 * may be down and re-admit it from its journal when it restarts): ask that node too.
 */
export async function findTx(nodes: readonly (QnexusClient | string)[], hash: string, opts: ClientOptions = {}): Promise<TxLookup | null> {
  const clients = nodes.map((n) => (typeof n === 'string' ? new QnexusClient(n, opts) : n));
  const answers = await Promise.allSettled(clients.map(async (c) => ({ tx: await c.txStatus(hash), node: c.baseUrl })));
  let best: TxLookup | null = null;
  let answered = 0;
  const errors: string[] = [];
  for (const a of answers) {
    if (a.status === 'rejected') {
      errors.push(a.reason instanceof Error ? a.reason.message : String(a.reason));
      continue;
    }
    answered++;
    const { tx, node } = a.value;
    if (tx && (best === null || (TX_PROGRESS[tx.status] ?? 0) > (TX_PROGRESS[best.tx.status] ?? 0))) best = { tx, node };
  }
  if (answered === 0) throw new ApiError('UNAVAILABLE', `no node answered for transaction ${hash}: ${errors.join('; ')}`);
  return best;
}

function truncate(s: string, n = 200): string {
  const t = s.trim();
  return t.length > n ? `${t.slice(0, n)}…` : t;
}

/**
 * Typed client of a node's HTTP API. Every method throws {@link ApiError}.
 * Requests go over node:http(s) with keep-alive connections and a per-request timeout
 * (see `httpRequest` for why not `fetch`).
 */
export class QnexusClient {
  readonly baseUrl: string;
  readonly timeoutMs: number;
  private readonly adminToken: string | undefined;
  /** `ClientOptions.nodes` (without this node): where a wrong-shard answer is followed. */
  readonly nodes: readonly string[];
  /** Each other node's shard as its `/v1/status` said (a node's shard never changes). */
  private readonly shardOf = new Map<string, number>();

  constructor(baseUrl: string, opts: ClientOptions = {}) {
    let url: URL;
    try {
      url = new URL(baseUrl);
    } catch {
      throw new ApiError('BAD_CONFIG', `invalid node URL ${JSON.stringify(baseUrl)} (expected e.g. ${DEFAULT_NODE_URL})`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ApiError('BAD_CONFIG', `invalid node URL ${JSON.stringify(baseUrl)}: only http and https are supported`);
    }
    this.baseUrl = url.toString().replace(/\/+$/, '');
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.adminToken = opts.adminToken?.trim();
    const others: string[] = [];
    for (const u of opts.nodes ?? []) {
      const c = new QnexusClient(u, { timeoutMs: this.timeoutMs });
      if (c.baseUrl !== this.baseUrl && !others.includes(c.baseUrl)) others.push(c.baseUrl);
    }
    this.nodes = others;
    this.genesis = opts.genesis;
  }

  /** `ClientOptions.genesis`: the trust root of verified reads. */
  readonly genesis: Genesis | undefined;

  /**
   * A client of one of `nodes` (see {@link ClientOptions.nodes}) that serves `shard`, or null when
   * none does or none answers. Asks each node's `/v1/status` once (in order, cached); a node
   * that cannot be reached is skipped, so a dead node is passed over for the next one.
   */
  async forShard(shard: number): Promise<QnexusClient | null> {
    for (const url of this.nodes) {
      let s = this.shardOf.get(url);
      if (s === undefined) {
        try {
          s = (await new QnexusClient(url, { timeoutMs: this.timeoutMs }).status()).shard;
          this.shardOf.set(url, s);
        } catch {
          continue;
        }
      }
      if (s === shard) return new QnexusClient(url, { timeoutMs: this.timeoutMs, nodes: [this.baseUrl, ...this.nodes] });
    }
    return null;
  }

  // ------------------------------------------------------------------ admin (bearer token; node or beacon)

  /** `GET /v1/admin/peers` (needs `adminToken`). */
  adminPeers(): Promise<AdminPeersInfo> {
    return this.route(F.adminPeers);
  }

  /** `POST /v1/admin/peers`: dial a multiaddr (needs `adminToken`). */
  adminConnect(multiaddr: string): Promise<AdminConnectResult> {
    return this.route(F.adminConnect, { json: { multiaddr } });
  }

  /** `DELETE /v1/admin/peers/{peerId}`: hang up on a peer (needs `adminToken`). */
  adminDisconnect(peerId: string): Promise<AdminDisconnectResult> {
    return this.route(F.adminDisconnect, { params: { peerId } });
  }

  /** `GET /v1/admin/log-level` (needs `adminToken`). */
  adminLogLevel(): Promise<AdminLogLevelInfo> {
    return this.route(F.adminLogLevel);
  }

  /** `PUT /v1/admin/log-level`: change the running process's log level (needs `adminToken`). */
  adminSetLogLevel(level: AdminLogLevel): Promise<AdminLogLevelInfo> {
    return this.route(F.adminSetLogLevel, { json: { level } });
  }

  /** `GET /v1/status` */
  status(): Promise<StatusInfo> {
    return this.route(N.status);
  }

  /** `GET /v1/blocks/{id}`: a height, a block hash (hex) or `latest`. */
  block(id: number | string): Promise<BlockInfo> {
    if (typeof id === 'number' && (!Number.isSafeInteger(id) || id < 0)) {
      return Promise.reject(new ApiError('BAD_REQUEST', `invalid block height ${id}`));
    }
    return this.route(N.block, { params: { id: String(id) } });
  }

  /** `GET /v1/txs/{hash}`: throws `TX_UNKNOWN` (404) when this node does not know the transaction. */
  tx(hash: string): Promise<TxInfo> {
    return this.route(N.tx, { params: { hash } });
  }

  /**
   * The transaction's status as this node knows it, or null when it does not know it (`TX_UNKNOWN`):
   * not admitted, or not gossiped here yet. After a submission whose answer was lost (timeout,
   * connection reset), ask several nodes of the shard ({@link findTx}) before concluding anything.
   * Other errors (e.g. `UNAVAILABLE`) are thrown.
   */
  async txStatus(hash: string): Promise<TxInfo | null> {
    try {
      return await this.tx(hash);
    } catch (e) {
      if (e instanceof ApiError && (e.code === 'TX_UNKNOWN' || e.code === 'NOT_FOUND')) return null;
      throw e;
    }
  }

  /**
   * `GET /v1/accounts/{address}`. A node of another shard answers `ACCOUNT_WRONG_SHARD` naming the
   * account's home shard: with `nodes` the client asks a node of that shard instead (once; the
   * answer must come from a node of that shard); without, or when none answers, the error is thrown.
   *
   * With `verify: true` the node is asked for a proof (`?proof=true`) and the answer is checked as
   * a light client would (`verifyAccountProof`: the committee from the genesis or the beacon's signed
   * announcement, the finality certificate, the state proof, the fields): `verified` says at which
   * height. Throws PROOF_INVALID when it does not verify, EPOCH_UNKNOWN when the committee cannot
   * be obtained, BAD_CONFIG without `ClientOptions.genesis`.
   */
  account(address: string): Promise<AccountInfo>;
  account(address: string, opts: ProvenReadOptions & { verify: true }): Promise<AccountInfo & { verified: VerifiedAccount }>;
  account(address: string, opts?: ProvenReadOptions): Promise<AccountInfo>;
  async account(address: string, opts: ProvenReadOptions = {}): Promise<AccountInfo | (AccountInfo & { verified: VerifiedAccount })> {
    const query = this.proofQuery({ proof: opts.verify === true, ...(opts.height !== undefined ? { height: opts.height } : {}) });
    const g = opts.verify ? this.trustRoot() : undefined;
    const a = await this.accountAnswer(address, query);
    if (!g) return a;
    const verified = await verifyAccountProof(g, a, this.proofOptions(opts));
    return { ...a, verified };
  }

  private async accountAnswer(address: string, query: Record<string, string>): Promise<AccountInfo> {
    try {
      return await this.route(N.account, { params: { address }, query });
    } catch (e) {
      const home = e instanceof ApiError && e.code === 'ACCOUNT_WRONG_SHARD' ? shardDetail(e.details.homeShard) : undefined;
      if (home === undefined || this.nodes.length === 0) throw e;
      const other = await this.forShard(home);
      if (other === null) {
        throw new ApiError('ACCOUNT_WRONG_SHARD', `${(e as ApiError).message} (none of the other nodes known to this client, ${this.nodes.join(', ')}, serves shard ${home} and answers)`, (e as ApiError).status, {
          details: (e as ApiError).details,
        });
      }
      // Not other.account(): one hop only, so two misconfigured nodes cannot bounce a request between them.
      const a = await other.route(N.account, { params: { address }, query });
      if (a.homeShard !== undefined && a.homeShard !== home) throw new ApiError('BAD_RESPONSE', `${other.baseUrl} says ${address} lives on shard ${a.homeShard}, ${this.baseUrl} said ${home}`);
      return a;
    }
  }

  /** The `?proof=true[&height=h]` of a proven read (empty for a plain one). */
  private proofQuery(opts: { proof?: boolean; height?: number }): Record<string, string> {
    if (opts.height !== undefined && (!Number.isSafeInteger(opts.height) || opts.height < 1)) throw new ApiError('BAD_REQUEST', `invalid height ${opts.height}`);
    if (opts.height !== undefined && !opts.proof) throw new ApiError('BAD_REQUEST', 'a height pins a proven read only: ask for a proof (verify: true)');
    return opts.proof ? { proof: 'true', ...(opts.height !== undefined ? { height: String(opts.height) } : {}) } : {};
  }

  private trustRoot(): Genesis {
    if (!this.genesis) throw new ApiError('BAD_CONFIG', "a verified read needs the chain's genesis (ClientOptions.genesis): it is what a light client trusts");
    return this.genesis;
  }

  /** Committees after epoch 0 come from the beacon's signed announcement, fetched from this node (it cannot forge it). */
  private proofOptions(opts: ProvenReadOptions): ProofVerifyOptions {
    return { announcement: (epoch) => this.signedAnnouncement(epoch), ...(opts.height !== undefined ? { height: opts.height } : {}) };
  }

  /** `GET /v1/committees?epoch=N` on a shard node: the committees of one epoch as its epoch book holds them, with the beacon's signed announcement. */
  nodeCommittees(epoch?: number): Promise<NodeCommitteesInfo> {
    if (epoch !== undefined && (!Number.isSafeInteger(epoch) || epoch < 0)) return Promise.reject(new ApiError('BAD_REQUEST', `invalid epoch ${epoch}`));
    return this.route(N.committees, epoch === undefined ? {} : { query: { epoch: String(epoch) } });
  }

  /**
   * The exact bytes of the beacon's signed announcement of `epoch` as this node holds it
   * (undefined when it has none): untrusted until checked with the genesis beacon key.
   */
  async signedAnnouncement(epoch: number): Promise<Uint8Array | undefined> {
    const c = await this.nodeCommittees(epoch);
    const raw = c.announcement?.raw;
    return typeof raw === 'string' && isHex(raw) && raw.length > 0 ? fromHex(raw) : undefined;
  }

  /**
   * A module query with a proof (`?proof=true`), verified with the app's own query definition
   * (`sm`: the modules as the client has them) like {@link account} with `verify`: the answer
   * must be what the query gives over the proven values. Only queries of single keys (with
   * `proofKeys`) are provable.
   */
  async verifiedQuery(sm: StateMachine, module: string, name: string, params: readonly string[] = [], opts: { height?: number; shard?: number } = {}): Promise<VerifiedQuery> {
    const g = this.trustRoot();
    const answer = await this.moduleQuery(module, name, params, { proof: true, ...(opts.height !== undefined ? { height: opts.height } : {}) });
    return verifyQueryProof(g, sm, { module, name, params, ...(opts.shard !== undefined ? { shard: opts.shard } : {}) }, answer, this.proofOptions({ verify: true, ...(opts.height !== undefined ? { height: opts.height } : {}) }));
  }

  /** `GET /v1/validators` */
  validators(): Promise<ValidatorsInfo> {
    return this.route(N.validators) as Promise<ValidatorsInfo>;
  }

  /** `GET /v1/validators/{address}` (node or beacon): one validator's stake, status, shard, rewards and participation. */
  validator(address: string): Promise<ValidatorInfo> {
    return this.route(N.validator, { params: { address } }) as Promise<ValidatorInfo>;
  }

  /**
   * `POST /v1/evidence` (node or beacon): submit two conflicting signed votes
   * (hex of the canonical evidence encoding). The beacon slashes and ejects the
   * validator; resubmitting is harmless (`duplicate`).
   */
  submitEvidence(evidenceHex: string): Promise<EvidenceResult> {
    return this.route(N.submitEvidence, { json: { evidence: evidenceHex } });
  }

  /** `GET /v1/supply` on the beacon: staking totals (held = genesisStake + stakedIn + feesIn + minted − slashed − released). */
  beaconSupply(): Promise<StakingTotals> {
    return this.route(B.supply);
  }

  /** `GET /v1/supply`: the shard's supply identity, balances + burned + escrow + exported − imported = genesis supply. */
  supply(): Promise<SupplyInfo> {
    return this.route(N.supply);
  }

  /** `GET /v1/xtransfers/{id}` on a shard node: its record of a cross-shard transfer (id = the source transaction's hash). */
  xtransfer(id: string): Promise<XTransferInfo> {
    return this.route(N.xtransfer, { params: { id } });
  }

  /** `GET /v1/status` on the beacon (a client whose base URL is the beacon's API). */
  beaconStatus(): Promise<BeaconStatusInfo> {
    return this.route(B.status);
  }

  /** `GET /v1/validators` on the beacon: the registry with each validator's current shard. */
  beaconValidators(): Promise<BeaconValidatorsInfo> {
    return this.route(B.validators);
  }

  /** `GET /v1/committees` on the beacon: the shard committees of the current epoch. */
  committees(): Promise<CommitteesInfo> {
    return this.route(B.committees);
  }

  /** `GET /v1/xtransfers/{id}` on the beacon: the coordinator's record of a cross-shard transfer. */
  beaconXTransfer(id: string): Promise<BeaconXTransferInfo> {
    return this.route(B.xtransfer, { params: { id } });
  }

  /** `GET /v1/xtransfers?limit=N` on the beacon: recent cross-shard transfers. */
  beaconXTransfers(limit?: number): Promise<BeaconXTransferList> {
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1)) {
      return Promise.reject(new ApiError('BAD_REQUEST', `invalid limit ${limit}`));
    }
    return this.route(B.xtransfers, limit === undefined ? {} : { query: { limit: String(limit) } });
  }

  /**
   * Poll a shard node's record of a cross-shard transfer until its decision is applied there
   * (status `committed` or `aborted`; with `until: 'decided'`, as soon as it reports a
   * decision). Resolves with the record whatever the decision: check `status`/`decision`.
   * `NOT_FOUND`, `XS_UNKNOWN_TRANSFER` and `UNAVAILABLE` are retried until the deadline (the
   * node may not have seen the transfer yet); throws ApiError `TIMEOUT` when time runs out.
   */
  waitForXTransfer(id: string, opts: WaitForXTransferOptions = {}): Promise<XTransferInfo> {
    const until = opts.until ?? 'applied';
    return this.pollXTransfer(id, opts, () => this.xtransfer(id), (x) =>
      x.status === 'committed' ||
      x.status === 'aborted' ||
      (until !== 'applied' && x.decision !== null) ||
      (until === 'prepared' && x.status !== 'pending')
        ? true
        : `status ${x.status}`,
    );
  }

  /**
   * The same against the beacon: until the destination has answered (`prepared`), it has
   * logged a decision (`decided`) or both shards have applied it (`applied`, the default: `done`).
   */
  waitForBeaconXTransfer(id: string, opts: WaitForXTransferOptions = {}): Promise<BeaconXTransferInfo> {
    const until = opts.until ?? 'applied';
    const answered = (x: BeaconXTransferInfo) => x.phases.some((p) => p.phase === 'destination-prepared' || p.phase === 'destination-refused');
    return this.pollXTransfer(id, opts, () => this.beaconXTransfer(id), (x) =>
      x.done || (until !== 'applied' && x.status !== 'preparing') || (until === 'prepared' && answered(x))
        ? true
        : `status ${x.status}${x.status === 'preparing' ? '' : ', not applied on both shards yet'}`,
    );
  }

  private async pollXTransfer<T>(id: string, opts: WaitForXTransferOptions, get: () => Promise<T>, ready: (x: T) => true | string): Promise<T> {
    const until = opts.until ?? 'applied';
    const timeoutMs = opts.timeoutMs ?? 120_000;
    const pollMs = opts.pollMs ?? 250;
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer yet';
    for (;;) {
      try {
        const x = await get();
        const r = ready(x);
        if (r === true) return x;
        last = r;
      } catch (e) {
        if (!(e instanceof ApiError) || (e.code !== 'NOT_FOUND' && e.code !== 'XS_UNKNOWN_TRANSFER' && e.code !== 'UNAVAILABLE')) throw e;
        last = `${e.code}: ${e.message}`;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new ApiError('TIMEOUT', `cross-shard transfer ${id} not ${until} at ${this.baseUrl} after ${timeoutMs} ms (last seen: ${last})`);
      await sleep(Math.min(pollMs, remaining));
    }
  }

  /** `GET /v1/evidence`: equivocation evidence this node has observed. */
  evidence(): Promise<EvidenceList> {
    return this.route(N.evidence);
  }

  /**
   * `POST /v1/txs` with a wire-encoded signed transaction: as `{ "tx": "<hex>" }`
   * (default) or, with `binary`, as `application/octet-stream`. A 202 means the node has the
   * transaction on disk and will see it through a crash of its own.
   *
   * A busy node (503 NODE_BUSY / MEMPOOL_FULL, 429 RATE_LIMITED) is retried after the
   * `Retry-After` it sends (at least an exponential backoff from 50 ms), within `busyRetryMs`
   * and `maxAttempts`. Resubmitting the same bytes is always safe: the node answers 202 again.
   * An `UNAVAILABLE` error (no answer) leaves the outcome unknown: the node may have admitted
   * it. Ask by hash ({@link txStatus}, {@link findTx}) before signing anything else with its nonce.
   */
  async submitTx(raw: Uint8Array, opts: SubmitOptions = {}): Promise<SubmitResult> {
    const body = opts.binary
      ? { contentType: 'application/octet-stream', data: raw }
      : { contentType: 'application/json', data: JSON.stringify({ tx: toHex(raw) }) };
    const deadline = Date.now() + (opts.busyRetryMs ?? 10_000);
    const maxAttempts = opts.maxAttempts ?? 20;
    for (let attempt = 1, backoff = 50; ; attempt++, backoff = Math.min(1_000, backoff * 2)) {
      try {
        return await this.request<SubmitResult>(N.submit.method, N.submit.path, body);
      } catch (e) {
        // RATE_LIMITED: this client is over the node's per-client rate; it refills quickly.
        const busy = e instanceof ApiError && (e.code === 'NODE_BUSY' || e.code === 'MEMPOOL_FULL' || e.code === 'RATE_LIMITED');
        if (!busy) throw e;
        opts.onBusy?.(e);
        const delay = Math.max(backoff, (e as ApiError).retryAfterMs ?? 0);
        if (attempt >= maxAttempts || Date.now() + delay > deadline) throw e;
        await sleep(delay);
      }
    }
  }

  /**
   * Poll a transaction until it reaches `until` (default `final`).
   * Throws ApiError `TX_REJECTED` if the node rejects it and `TIMEOUT` when time runs out.
   * `TX_UNKNOWN` (`NOT_FOUND` from older nodes) and `UNAVAILABLE` answers are retried until the
   * deadline (a node may not have seen the transaction yet, or may be restarting).
   */
  async waitForTx(hash: string, opts: WaitForTxOptions = {}): Promise<TxInfo> {
    const until = opts.until ?? 'final';
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const pollMs = opts.pollMs ?? 250;
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer yet';
    for (;;) {
      let tx: TxInfo | undefined;
      try {
        tx = await this.tx(hash);
      } catch (e) {
        if (!(e instanceof ApiError) || (e.code !== 'TX_UNKNOWN' && e.code !== 'NOT_FOUND' && e.code !== 'UNAVAILABLE')) throw e;
        last = `${e.code}: ${e.message}`;
      }
      if (tx) {
        if (tx.status === 'rejected') {
          const why = tx.error ? `${tx.error.code}: ${tx.error.message}` : 'no reason given';
          throw new ApiError('TX_REJECTED', `transaction ${hash} was rejected (${why})`, 0, { tx });
        }
        if (tx.status === 'final' || (until === 'included' && tx.status === 'included')) return tx;
        last = `status ${tx.status}`;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new ApiError('TIMEOUT', `transaction ${hash} not ${until} after ${timeoutMs} ms (last seen: ${last})`);
      await sleep(Math.min(pollMs, remaining));
    }
  }

  /**
   * Poll `/v1/status` until `height` (or `finalizedHeight` with `finalized`) is at least `h`.
   * `UNAVAILABLE` answers are retried; throws ApiError `TIMEOUT` when time runs out.
   */
  async waitForHeight(h: number, timeoutMs = 30_000, opts: WaitForHeightOptions = {}): Promise<StatusInfo> {
    const pollMs = opts.pollMs ?? 250;
    const deadline = Date.now() + timeoutMs;
    const what = opts.finalized ? 'finalized height' : 'height';
    let last = 'no answer yet';
    for (;;) {
      try {
        const s = await this.status();
        const cur = opts.finalized ? s.finalizedHeight : s.height;
        if (cur >= h) return s;
        last = `${what} ${cur}`;
      } catch (e) {
        if (!(e instanceof ApiError) || e.code !== 'UNAVAILABLE') throw e;
        last = `${e.code}: ${e.message}`;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new ApiError('TIMEOUT', `${this.baseUrl} did not reach ${what} ${h} within ${timeoutMs} ms (last seen: ${last})`);
      await sleep(Math.min(pollMs, remaining));
    }
  }

  /**
   * `GET /v1/<module>/<name>/{param}…`: a module query (any module of the node's app, including one
   * loaded with --module), its path parameters in order, percent-encoded. The answer is the module's
   * JSON (its schema is in /v1/openapi.json under the module's tag). `proof`: with the node's proof
   * (`?proof=true[&height=h]`, queries of single keys only), unchecked: see {@link verifiedQuery}.
   */
  moduleQuery(module: string, name: string, params: readonly string[] = [], opts: { proof?: boolean; height?: number } = {}): Promise<Record<string, unknown>> {
    const seg = /^[a-z][a-z0-9-]{0,63}$/;
    if (!seg.test(module) || !seg.test(name)) return Promise.reject(new ApiError('BAD_REQUEST', `invalid module query ${JSON.stringify(`${module}/${name}`)}`));
    let query: Record<string, string>;
    try {
      query = this.proofQuery(opts);
    } catch (e) {
      return Promise.reject(e);
    }
    const q = new URLSearchParams(query).toString();
    const path = `/v1/${module}/${name}${params.map((p) => `/${encodeURIComponent(p)}`).join('')}${q ? `?${q}` : ''}`;
    return this.request<Record<string, unknown>>('GET', path);
  }

  /**
   * Call a route by its definition (@qnexus/api): its method, its path with the parameters filled in
   * (percent-encoded), the query and the JSON body; the answer is typed by the definition's schema.
   */
  private route<D extends AnyRouteDef>(
    def: D,
    args: { params?: { [K in PathParamNames<D['path']>]: string }; query?: Record<string, string>; json?: unknown } = {},
  ): Promise<Static<D['response']>> {
    const params = (args.params ?? {}) as Record<string, string>;
    let path = def.path.replace(/\{([^}]+)\}/g, (_, name: string) => encodeURIComponent(params[name] ?? ''));
    const q = new URLSearchParams(args.query ?? {}).toString();
    if (q) path += `?${q}`;
    return this.request<Static<D['response']>>(def.method, path, args.json === undefined ? undefined : { contentType: 'application/json', data: JSON.stringify(args.json) });
  }

  private async request<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: { contentType: string; data: string | Uint8Array }): Promise<T> {
    const url = this.baseUrl + path;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body) headers['content-type'] = body.contentType;
    // The token goes to admin endpoints only: it never travels with ordinary requests.
    if (this.adminToken !== undefined && path.startsWith('/v1/admin/')) headers['authorization'] = `Bearer ${this.adminToken}`;
    let res: HttpAnswer;
    try {
      res = await httpRequest(new URL(url), method, headers, body?.data, this.timeoutMs);
    } catch (e) {
      throw new ApiError('UNAVAILABLE', `cannot reach node at ${this.baseUrl} (${method} ${path}): ${describeNetworkError(e, this.timeoutMs)}`, 0, { cause: e });
    }
    const text = res.text;
    let json: unknown;
    try {
      json = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (res.status < 200 || res.status > 299) {
      const err = errorEnvelope(json);
      const retryAfterMs = parseRetryAfter(res.header('retry-after'));
      if (err) throw new ApiError(err.code, err.message, res.status, { details: err.details, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) });
      const detail = text.length > 0 ? `: ${truncate(text)}` : '';
      throw new ApiError(`HTTP_${res.status}`, `node answered ${method} ${path} with HTTP ${res.status} ${res.statusText}${detail}`, res.status);
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      throw new ApiError('BAD_RESPONSE', `node answered ${method} ${path} with a body that is not a JSON object`, res.status);
    }
    return json as T;
  }

  // ------------------------------------------------------------------ explorer lists (a shard node)

  /** `GET /v1/blocks?limit=N` on a shard node: its newest blocks, newest first (limit 1..100, default 20). */
  blocks(limit?: number): Promise<BlockList> {
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1)) return Promise.reject(new ApiError('BAD_REQUEST', `invalid limit ${limit}`));
    return this.route(N.blocks, limit === undefined ? {} : { query: { limit: String(limit) } });
  }

  /** `GET /v1/xtransfers?limit=N` on a shard node: its newest transfer records with their phases, newest first (limit 1..100, default 20). */
  xtransfers(limit?: number): Promise<XTransferList> {
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1)) return Promise.reject(new ApiError('BAD_REQUEST', `invalid limit ${limit}`));
    return this.route(N.xtransfers, limit === undefined ? {} : { query: { limit: String(limit) } });
  }

  /** `GET /v1/shards` on a shard node: every shard's head (its own from its chain, the others from the beacon's registry snapshot). */
  shards(): Promise<ShardsInfo> {
    return this.route(N.shards);
  }

  // ------------------------------------------------------------------ admin: backup (node or beacon)

  /**
   * `POST /v1/admin/backup {"dir"}` (needs `adminToken`): the process writes a consistent snapshot
   * of its database into `dir`, an absolute path on *its* machine that must not exist yet or be
   * empty, and answers with the manifest once the backup is complete. The request waits for the
   * whole copy: the timeout is `timeoutMs` (default: the larger of the client's and 10 minutes).
   */
  adminBackup(dir: string, opts: { timeoutMs?: number } = {}): Promise<AdminBackupResult> {
    const timeoutMs = opts.timeoutMs ?? Math.max(this.timeoutMs, 10 * 60_000);
    const c = timeoutMs === this.timeoutMs ? this : new QnexusClient(this.baseUrl, { timeoutMs, ...(this.adminToken !== undefined ? { adminToken: this.adminToken } : {}) });
    return c.route(F.adminBackup, { json: { dir } });
  }
}
