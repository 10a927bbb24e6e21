/**
 * Stable error codes. They are part of the public API: the HTTP API returns
 * them as `{ error: { code, message } }`, the CLI prints them and exits
 * non-zero, and tests assert on them. Never renumber or rename.
 */
export const ERROR_HTTP_STATUS = {
  // transaction admission
  TX_MALFORMED: 400,
  TX_TOO_LARGE: 413,
  TX_WRONG_CHAIN: 400,
  TX_WRONG_SCHEME: 400,
  TX_BAD_SIGNATURE: 400,
  /**
   * A keyless transaction (it names its sender by address) whose sender has no public key
   * registered in the state yet (the head state at admission, the parent state in a block): the
   * account's first transaction must carry the key.
   */
  TX_KEY_UNKNOWN: 422,
  TX_UNKNOWN_KIND: 400,
  TX_BAD_AMOUNT: 400,
  TX_FEE_TOO_LOW: 400,
  TX_SELF_TRANSFER: 400,
  TX_WRONG_SHARD: 400,
  TX_CROSS_SHARD: 400,
  /** A cross-shard transfer whose recipient lives on the sender's shard (use a plain transfer). */
  TX_SAME_SHARD: 400,
  /** The recipient cannot receive (the reserved all-zero address). */
  TX_BAD_RECIPIENT: 400,
  TX_NONCE_STALE: 409,
  TX_NONCE_FUTURE: 409,
  TX_NONCE_TAKEN: 409,
  TX_INSUFFICIENT_FUNDS: 402,
  /** The mempool holds its bound of transactions; the answer carries `Retry-After` (seconds). */
  MEMPOOL_FULL: 503,
  /** The node's admission queues are full (signature backlog, admission journal) or it is overloaded for seconds; with `Retry-After`. */
  NODE_BUSY: 503,
  /**
   * `GET /v1/txs/{hash}`: this node knows nothing of the transaction: not in a block, not pending,
   * not recently rejected. Either it was never admitted anywhere, or it has not been gossiped here
   * yet: ask another node of the shard, or the node that acknowledged it.
   */
  TX_UNKNOWN: 404,
  /**
   * `GET /v1/accounts/{address}` on a node of a shard that is not the address's home shard: its
   * state there is not the account's (it would read balance 0). The error body carries
   * `homeShard` (where to ask) and `shard` (this node's).
   */
  ACCOUNT_WRONG_SHARD: 400,
  // generic API
  BAD_REQUEST: 400,
  UNKNOWN_FIELD: 400,
  UNSUPPORTED_MEDIA_TYPE: 415,
  PAYLOAD_TOO_LARGE: 413,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  /** Over the API's per-client request rate; the answer carries `Retry-After` (seconds). */
  RATE_LIMITED: 429,
  /** An admin endpoint without the bearer token of `<data-dir>/admin.token` (or with a wrong one). */
  UNAUTHORIZED: 401,
  INTERNAL: 500,
  /** `POST /v1/admin/backup` into a directory that exists and is not empty (a backup never overwrites). */
  BACKUP_EXISTS: 409,
  // codec / consensus objects
  MALFORMED: 400,
  BAD_CERTIFICATE: 400,
  BAD_BLOCK: 400,
  /** The proposer's block has no weight budget left for this transaction; it stays pending for a later block. */
  BLOCK_FULL: 503,
  /** A block's end state breaks an invariant a module declares (e.g. a denom's supply identity): the block is invalid. */
  INVARIANT_BROKEN: 400,
  // configuration / keys
  BAD_GENESIS: 400,
  BAD_CONFIG: 400,
  KEYSTORE_BAD_PASSPHRASE: 401,
  KEYSTORE_MALFORMED: 400,
  UNAVAILABLE: 503,
  // cross-shard two-phase commit
  /** A 2PC system message not signed by the genesis beacon key, or a 2PC request from a peer outside the committee. */
  XS_UNAUTHORIZED: 403,
  /** The message is for a different shard than this one. */
  XS_WRONG_SHARD: 400,
  /** The message disagrees with what this shard recorded for the transfer id. */
  XS_MISMATCH: 400,
  /** This phase of the transfer was already recorded (replay or re-send). */
  XS_DUPLICATE: 409,
  /** The transfer was already decided here. */
  XS_ALREADY_DECIDED: 409,
  /** A commit for a transfer this shard never prepared (or refused). */
  XS_NOT_PREPARED: 409,
  /** No record of the transfer id. */
  XS_UNKNOWN_TRANSFER: 404,
  /** A report whose certificate or inclusion proof does not verify. */
  XS_BAD_PROOF: 400,
  /** The destination was asked to prepare after the transfer's deadline slot. */
  XS_DEADLINE_PASSED: 409,
  /** The transfer was settled here and its record pruned (a compact tombstone remains): a replay, refused. */
  XS_PRUNED: 409,
  /** Nothing is recorded of the transfer and its deadline passed more than the retention window ago: a replay, refused. */
  XS_EXPIRED: 409,
  // staking, rewards and slashing
  /** The validator's consent signature in a stake transaction does not verify. */
  STAKE_BAD_CONSENT: 400,
  /** Stake below genesis `staking.minStake`. */
  STAKE_TOO_LOW: 400,
  /** The validator is registered to another funding (home) account, or the signer may not unstake it. */
  STAKE_NOT_OWNER: 403,
  /** The validator cannot take this step in its current status (e.g. unstake twice, stake into a slashed validator). */
  STAKE_BAD_STATUS: 409,
  /** No such validator in the registry. */
  VALIDATOR_UNKNOWN: 404,
  /** Evidence that does not prove equivocation (not conflicting, bad signature, not a member of that epoch's committee). */
  EVIDENCE_INVALID: 400,
  /** The validator's stake was already withdrawn: there is nothing left to slash. */
  EVIDENCE_EXPIRED: 409,
  /** The committee of an epoch is not known yet (its beacon announcement has not arrived). */
  EPOCH_UNKNOWN: 503,
  // state at scale: versions, proofs, snapshots
  /** The state of that height is no longer kept (older than the node's state retention window). */
  STATE_PRUNED: 410,
  /** A state snapshot item that does not match the certified state root (or is malformed); its sender is penalised. */
  BAD_SNAPSHOT: 400,
  /** No peer offers a usable snapshot (none reachable, or none with a recent enough retained height). */
  SNAPSHOT_UNAVAILABLE: 503,
  /** A state proof, or the certificate and committee it rests on, that does not verify. */
  PROOF_INVALID: 400,
} as const;

export type ErrorCode = keyof typeof ERROR_HTTP_STATUS;

export function isErrorCode(s: string): s is ErrorCode {
  return Object.prototype.hasOwnProperty.call(ERROR_HTTP_STATUS, s);
}

/** Machine-readable facts an error answer carries beside code and message (e.g. `homeShard` of ACCOUNT_WRONG_SHARD). */
export type ErrorDetails = Readonly<Record<string, string | number | boolean | null>>;

/**
 * A module's own error code: its module name in capitals, '_', the rest
 * (`STAKING_TOO_LOW`, `NFT_NOT_OWNER`). Modules register theirs with their
 * HTTP statuses at wiring (registerModuleErrors), so the API answers them like
 * the core's.
 */
export type ModuleErrorCode = `${Uppercase<string>}_${string}`;
export type AnyErrorCode = ErrorCode | ModuleErrorCode;

const moduleErrors = new Map<string, number>();

/** Register a module's error codes; each must carry the module's prefix and must not shadow a core code. */
export function registerModuleErrors(module: string, table: Readonly<Record<string, number>>): void {
  const prefix = `${module.toUpperCase()}_`;
  for (const [code, status] of Object.entries(table)) {
    if (!code.startsWith(prefix)) throw new Error(`module ${module}: error code ${code} must start with ${prefix}`);
    if (isErrorCode(code)) throw new Error(`module ${module}: error code ${code} is a core code`);
    const had = moduleErrors.get(code);
    if (had !== undefined && had !== status) throw new Error(`module ${module}: error code ${code} registered twice with different statuses`);
    moduleErrors.set(code, status);
  }
}

/** Every registered module error code with its HTTP status (for the OpenAPI document and the CLI). */
export function moduleErrorCodes(): ReadonlyMap<string, number> {
  return moduleErrors;
}

export function isKnownErrorCode(s: string): s is AnyErrorCode {
  return isErrorCode(s) || moduleErrors.has(s);
}

export class QnexusError extends Error {
  readonly code: AnyErrorCode;
  /** Extra fields of the `error` object in the HTTP answer; they never replace `code` or `message`. */
  readonly details: ErrorDetails | undefined;
  constructor(code: AnyErrorCode, message: string, details?: ErrorDetails) {
    super(message);
    this.name = 'QnexusError';
    this.code = code;
    this.details = details;
  }
  get httpStatus(): number {
    return isErrorCode(this.code) ? ERROR_HTTP_STATUS[this.code] : (moduleErrors.get(this.code) ?? 400);
  }
  toJSON(): { error: { code: AnyErrorCode; message: string } & Record<string, unknown> } {
    return { error: { ...this.details, code: this.code, message: this.message } };
  }
}
