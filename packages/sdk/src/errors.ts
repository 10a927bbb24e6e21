import type { TxInfo } from './types.js';

/**
 * Every failure of a {@link QnexusClient} call.
 *
 * - Errors answered by the node carry the node's stable `code` (e.g. `TX_NONCE_STALE`,
 *   `NOT_FOUND`) and the HTTP `status`.
 * - `UNAVAILABLE` (status 0): the node could not be reached or did not answer in time.
 * - `TIMEOUT` (status 0): a `waitFor…` helper gave up; the awaited event may still happen.
 * - `TX_REJECTED` (status 0): `waitForTx` saw the transaction rejected; `tx` holds its
 *   record and `tx.error` the node's reason.
 * - `BAD_RESPONSE`: a 2xx answer whose body is not a JSON object.
 * - `HTTP_<status>`: a non-2xx answer without the `{ error: { code, message } }` envelope.
 * - `BAD_CONFIG` (status 0): the client was given an unusable base URL.
 * - `ACCOUNT_WRONG_SHARD` (400): the node is not of the account's home shard; `details.homeShard`
 *   names it (a client given `nodes` asks one of that shard instead).
 *
 * A 503 or 429 answer's `Retry-After` is in `retryAfterMs`.
 */
export class ApiError extends Error {
  readonly code: string;
  /** HTTP status of the answer, or 0 when there was no HTTP error answer. */
  readonly status: number;
  /** The transaction record, for `TX_REJECTED`. */
  readonly tx: TxInfo | undefined;
  /** How long the node asked the client to wait before retrying (its `Retry-After`), if it said. */
  readonly retryAfterMs: number | undefined;
  /**
   * The error object's other scalar fields as the node sent them (e.g. `homeShard` and `shard` of
   * `ACCOUNT_WRONG_SHARD`); empty when it sent none. Untrusted: check before acting on them.
   */
  readonly details: Readonly<Record<string, string | number | boolean | null>>;

  constructor(
    code: string,
    message: string,
    status = 0,
    opts: { cause?: unknown; tx?: TxInfo; retryAfterMs?: number; details?: Readonly<Record<string, string | number | boolean | null>> } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
    this.tx = opts.tx;
    this.retryAfterMs = opts.retryAfterMs;
    this.details = opts.details ?? {};
  }
}

export function isApiError(e: unknown): e is ApiError {
  return e instanceof ApiError;
}
