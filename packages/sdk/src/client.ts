import { toHex } from '@qnexus/crypto';
import { ApiError } from './errors.js';
import type { AccountInfo, BlockInfo, ErrorInfo, EvidenceList, StatusInfo, SubmitResult, SupplyInfo, TxInfo, ValidatorsInfo } from './types.js';

export interface ClientOptions {
  /** Per-request timeout (connect + answer). Default 10 000 ms. */
  timeoutMs?: number;
}

export interface WaitForTxOptions {
  /** `included`: in a block (or final); `final`: in a finalized block. Default `final`. */
  until?: 'included' | 'final';
  /** Default 60 000 ms. */
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

export const DEFAULT_NODE_URL = 'http://127.0.0.1:8545';
const DEFAULT_TIMEOUT_MS = 10_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function errorEnvelope(json: unknown): ErrorInfo | undefined {
  if (typeof json !== 'object' || json === null) return undefined;
  const e = (json as { error?: unknown }).error;
  if (typeof e !== 'object' || e === null) return undefined;
  const { code, message } = e as { code?: unknown; message?: unknown };
  if (typeof code !== 'string') return undefined;
  return { code, message: typeof message === 'string' ? message : code };
}

function describeNetworkError(e: unknown, timeoutMs: number): string {
  if (e instanceof Error) {
    if (e.name === 'TimeoutError' || e.name === 'AbortError') return `no answer within ${timeoutMs} ms`;
    const cause = (e as { cause?: unknown }).cause;
    if (cause instanceof Error) {
      const code = (cause as { code?: unknown }).code;
      return typeof code === 'string' && !cause.message.includes(code) ? `${code}: ${cause.message}` : cause.message;
    }
    return e.message;
  }
  return String(e);
}

function truncate(s: string, n = 200): string {
  const t = s.trim();
  return t.length > n ? `${t.slice(0, n)}…` : t;
}

/**
 * Typed client of a node's HTTP API. Every method throws {@link ApiError}.
 * Uses the global `fetch` (Node 20) with a per-request timeout.
 */
export class QnexusClient {
  readonly baseUrl: string;
  readonly timeoutMs: number;

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
  }

  /** `GET /v1/status` */
  status(): Promise<StatusInfo> {
    return this.request<StatusInfo>('GET', '/v1/status');
  }

  /** `GET /v1/blocks/{id}`: a height, a block hash (hex) or `latest`. */
  block(id: number | string): Promise<BlockInfo> {
    if (typeof id === 'number' && (!Number.isSafeInteger(id) || id < 0)) {
      return Promise.reject(new ApiError('BAD_REQUEST', `invalid block height ${id}`));
    }
    return this.request<BlockInfo>('GET', `/v1/blocks/${encodeURIComponent(String(id))}`);
  }

  /** `GET /v1/txs/{hash}` */
  tx(hash: string): Promise<TxInfo> {
    return this.request<TxInfo>('GET', `/v1/txs/${encodeURIComponent(hash)}`);
  }

  /** `GET /v1/accounts/{address}` */
  account(address: string): Promise<AccountInfo> {
    return this.request<AccountInfo>('GET', `/v1/accounts/${encodeURIComponent(address)}`);
  }

  /** `GET /v1/validators` */
  validators(): Promise<ValidatorsInfo> {
    return this.request<ValidatorsInfo>('GET', '/v1/validators');
  }

  /** `GET /v1/supply`: the fee invariant, balances + burned = genesis supply. */
  supply(): Promise<SupplyInfo> {
    return this.request<SupplyInfo>('GET', '/v1/supply');
  }

  /** `GET /v1/evidence`: equivocation evidence this node has observed. */
  evidence(): Promise<EvidenceList> {
    return this.request<EvidenceList>('GET', '/v1/evidence');
  }

  /**
   * `POST /v1/txs` with a wire-encoded signed transaction: as `{ "tx": "<hex>" }`
   * (default) or, with `binary`, as `application/octet-stream`.
   */
  async submitTx(raw: Uint8Array, opts: { binary?: boolean; busyRetryMs?: number } = {}): Promise<SubmitResult> {
    const body = opts.binary
      ? { contentType: 'application/octet-stream', data: raw }
      : { contentType: 'application/json', data: JSON.stringify({ tx: toHex(raw) }) };
    // A saturated node answers 503 NODE_BUSY / MEMPOOL_FULL: back off and retry within the budget.
    const deadline = Date.now() + (opts.busyRetryMs ?? 10_000);
    for (let delay = 50; ; delay = Math.min(1_000, delay * 2)) {
      try {
        return await this.request<SubmitResult>('POST', '/v1/txs', body);
      } catch (e) {
        const busy = e instanceof ApiError && (e.code === 'NODE_BUSY' || e.code === 'MEMPOOL_FULL');
        if (!busy || Date.now() + delay > deadline) throw e;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /**
   * Poll a transaction until it reaches `until` (default `final`).
   * Throws ApiError `TX_REJECTED` if the node rejects it and `TIMEOUT` when time runs out.
   * `NOT_FOUND` and `UNAVAILABLE` answers are retried until the deadline (a node
   * may not have seen the transaction yet, or may be restarting).
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
        if (!(e instanceof ApiError) || (e.code !== 'NOT_FOUND' && e.code !== 'UNAVAILABLE')) throw e;
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

  private async request<T>(method: 'GET' | 'POST', path: string, body?: { contentType: string; data: string | Uint8Array }): Promise<T> {
    const url = this.baseUrl + path;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body) headers['content-type'] = body.contentType;
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, { method, headers, body: body?.data, signal: AbortSignal.timeout(this.timeoutMs) });
      text = await res.text();
    } catch (e) {
      throw new ApiError('UNAVAILABLE', `cannot reach node at ${this.baseUrl} (${method} ${path}): ${describeNetworkError(e, this.timeoutMs)}`, 0, { cause: e });
    }
    let json: unknown;
    try {
      json = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const err = errorEnvelope(json);
      if (err) throw new ApiError(err.code, err.message, res.status);
      const detail = text.length > 0 ? `: ${truncate(text)}` : '';
      throw new ApiError(`HTTP_${res.status}`, `node answered ${method} ${path} with HTTP ${res.status} ${res.statusText}${detail}`, res.status);
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      throw new ApiError('BAD_RESPONSE', `node answered ${method} ${path} with a body that is not a JSON object`, res.status);
    }
    return json as T;
  }
}
