import {
  addressFromPublicKey,
  formatAddress,
  getBackend,
  homeShard,
  isAddressString,
  isValidChainId,
  parseAddress,
  sha256,
  toHex,
  type BackendName,
  type SchemeName,
} from '@qnexus/crypto';
import { QnexusError, encodeTx, txSigningBytes, type TxBody, type TxMsg } from '@qnexus/types';
import { sendMsg } from '@qnexus/state';
import { stakeConsentSigningBytes, stakeMsg, unstakeMsg } from '@qnexus/module-staking';
import type { QnexusClient } from './client.js';
import type { TxInfo, XTransferInfo } from './types.js';

const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** What signs a transaction: a key pair (e.g. an unlocked keystore). */
export interface SigningKey {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
  scheme: SchemeName;
  /** The ML-DSA implementation that signs (default `noble`; `pqclean` is faster where installed). Both produce signatures every node accepts. */
  backend?: BackendName;
}

export interface TransferParams {
  key: SigningKey;
  chainId: string;
  /** Recipient, `qn` + 40 hex. */
  to: string;
  amount: bigint;
  fee: bigint;
  nonce: bigint;
  /** Name the sender by address instead of carrying its public key: see {@link AccountTxParams.keyless}. */
  keyless?: boolean;
}

export interface BuiltTx {
  /** The wire encoding to submit. */
  raw: Uint8Array;
  /** Transaction id (hex): SHA-256 of the signed bytes, as the node reports it. */
  hash: string;
  /** Sender address derived from the public key. */
  from: string;
  /** Whether the body names its sender by address instead of carrying the public key. */
  keyless: boolean;
}

function checkU64(v: bigint, what: string, code: 'TX_BAD_AMOUNT' | 'TX_MALFORMED'): void {
  if (typeof v !== 'bigint' || v < 0n || v > U64_MAX) throw new QnexusError(code, `${what} must be an integer in [0, 2^64-1], got ${String(v)}`);
}

/**
 * Build and sign a transfer: signs `txSigningBytes(body)` with the scheme's
 * backend and wire-encodes it with `encodeTx`. Throws QnexusError
 * `TX_MALFORMED` (bad chain id, recipient or nonce) or `TX_BAD_AMOUNT`.
 * The recipient must live on the sender's shard (else the node answers
 * `TX_CROSS_SHARD`: use {@link buildXTransfer}).
 */
export function buildTransfer(p: TransferParams): BuiltTx {
  return buildValueTx('transfer', p);
}

export interface XTransferParams extends TransferParams {
  /**
   * The genesis `shardCount`. When given, a recipient on the sender's own shard is refused
   * here (`TX_SAME_SHARD`) instead of by the node.
   */
  shardCount?: number;
}

/**
 * Build and sign a cross-shard transfer (`xtransfer`) to a recipient whose home shard
 * differs from the sender's. Submit it to a node of the sender's shard; its id (`hash`) is
 * the transfer's id in `GET /v1/xtransfers/{id}` on the shard nodes and the beacon. The
 * sender's shard burns the fee and escrows the amount, the beacon runs the two-phase
 * commit, and the amount is credited on the recipient's shard (commit) or refunded (abort). Throws QnexusError like {@link buildTransfer}, and `TX_SAME_SHARD`
 * when `shardCount` shows both addresses on one shard.
 */
export function buildXTransfer(p: XTransferParams): BuiltTx {
  if (p.shardCount !== undefined && isAddressString(p.to)) {
    const from = addressFromPublicKey(p.key.publicKey);
    const src = homeShard(from, p.shardCount);
    if (src === homeShard(parseAddress(p.to), p.shardCount)) {
      throw new QnexusError('TX_SAME_SHARD', `recipient ${p.to} lives on the sender's shard ${src}: send a plain transfer`);
    }
  }
  return buildValueTx('xtransfer', p);
}

function buildValueTx(kind: 'transfer' | 'xtransfer', p: TransferParams): BuiltTx {
  if (!isAddressString(p.to)) throw new QnexusError('TX_MALFORMED', `invalid recipient ${JSON.stringify(p.to)}: expected qn followed by 40 lowercase hex characters`);
  checkU64(p.amount, 'amount', 'TX_BAD_AMOUNT');
  return signTx(p, sendMsg(kind, { to: parseAddress(p.to), amount: p.amount }));
}

/** What every account transaction needs besides its payload. */
export interface AccountTxParams {
  key: SigningKey;
  chainId: string;
  fee: bigint;
  nonce: bigint;
  /**
   * Omit the public key: the body names the sender by its address (20 bytes instead of
   * 1,312–2,592) and nodes check the signature against the key the chain registered from the
   * account's first transaction. Only valid once that transaction is final (the account's
   * `publicKey` is non-null in `GET /v1/accounts/{address}`); before, nodes refuse it with
   * `TX_KEY_UNKNOWN`. Default false.
   */
  keyless?: boolean;
}

export interface StakeParams extends AccountTxParams {
  /** The validator key that will propose and vote; omit to stake the funding key itself. It signs its consent here. */
  validatorKey?: SigningKey;
  amount: bigint;
}

/**
 * Build a stake transaction: `key` is the funding ("home") account, whose
 * balance pays amount + fee and to which the stake returns after unbonding;
 * `validatorKey` (default: the same key) signs its consent to be staked by that
 * account, so the binding is signed by both. Submit it to a node of the funding
 * account's shard. The beacon registers the validator once the stake is final
 * and activates it at an epoch boundary (docs/staking.md).
 */
export function buildStake(p: StakeParams): BuiltTx {
  checkU64(p.amount, 'amount', 'TX_BAD_AMOUNT');
  const v = p.validatorKey ?? p.key;
  if (v.scheme !== p.key.scheme) throw new QnexusError('TX_WRONG_SCHEME', `validator key is ${v.scheme}, funding key is ${p.key.scheme}`);
  if (!isValidChainId(p.chainId)) throw new QnexusError('TX_MALFORMED', `invalid chain id ${JSON.stringify(p.chainId)}`);
  const consent = getBackend(v.scheme, v.backend).sign(v.secretKey, stakeConsentSigningBytes(p.chainId, addressFromPublicKey(p.key.publicKey), v.publicKey));
  return signTx(p, stakeMsg({ validatorPublicKey: v.publicKey, amount: p.amount, validatorSignature: consent }));
}

export interface UnstakeParams extends AccountTxParams {
  /** The validator to take out (`qn…`); signed by its home account or by the validator key itself. */
  validator: string;
}

/** Build an unstake transaction (cost: the fee). The validator leaves the committees at the next epoch it can; funds return home after unbonding. */
export function buildUnstake(p: UnstakeParams): BuiltTx {
  if (!isAddressString(p.validator)) throw new QnexusError('TX_MALFORMED', `invalid validator ${JSON.stringify(p.validator)}: expected qn followed by 40 lowercase hex characters`);
  return signTx(p, unstakeMsg({ validator: parseAddress(p.validator) }));
}

/** Sign any module's message as an account transaction (the SDK's generic builder). */
export function signTx(p: AccountTxParams, payload: TxMsg): BuiltTx {
  if (!isValidChainId(p.chainId)) throw new QnexusError('TX_MALFORMED', `invalid chain id ${JSON.stringify(p.chainId)}`);
  checkU64(p.fee, 'fee', 'TX_BAD_AMOUNT');
  checkU64(p.nonce, 'nonce', 'TX_MALFORMED');
  const address = addressFromPublicKey(p.key.publicKey);
  const keyless = p.keyless === true;
  const common = { chainId: p.chainId, nonce: p.nonce, fee: p.fee, payload };
  const body: TxBody = keyless ? { ...common, address } : { ...common, publicKey: p.key.publicKey };
  const signBytes = txSigningBytes(body);
  const signature = getBackend(p.key.scheme, p.key.backend).sign(p.key.secretKey, signBytes);
  const raw = encodeTx({ body, signature });
  return { raw, hash: toHex(sha256(signBytes)), from: formatAddress(address), keyless };
}

/**
 * The sender's next nonce and whether its transactions may omit the key (its key is registered
 * on the node asked): one account read. `nonce` and `keyless` given by the caller win.
 */
async function senderState(client: QnexusClient, from: string, p: { nonce?: bigint; keyless?: boolean }): Promise<{ nonce: bigint; keyless: boolean }> {
  if (p.nonce !== undefined && p.keyless !== undefined) return { nonce: p.nonce, keyless: p.keyless };
  const a = await client.account(from);
  return { nonce: p.nonce ?? BigInt(a.pendingNonce), keyless: p.keyless ?? a.publicKey !== null };
}

export interface TransferAndWaitParams {
  key: SigningKey;
  to: string;
  amount: bigint;
  /** Default 1. */
  fee?: bigint;
  /** Default: the sender's `pendingNonce` as reported by the node. */
  nonce?: bigint;
  /** Default: the node's chain id from `/v1/status`. */
  chainId?: string;
  /** Default `final`. */
  until?: 'included' | 'final';
  /** Default 60 000 ms. */
  timeoutMs?: number;
  pollMs?: number;
  /** Submit as application/octet-stream instead of JSON. */
  binary?: boolean;
  /** Omit the public key (see {@link AccountTxParams.keyless}). Default: when the node reports the sender's key registered. */
  keyless?: boolean;
}

export interface TransferResult {
  hash: string;
  nonce: bigint;
  tx: TxInfo;
}

/** Build, sign, submit a transfer and wait until it is included/final. Throws ApiError or QnexusError. */
export async function transferAndWait(client: QnexusClient, p: TransferAndWaitParams): Promise<TransferResult> {
  const chainId = p.chainId ?? (await client.status()).chainId;
  const from = formatAddress(addressFromPublicKey(p.key.publicKey));
  const { nonce, keyless } = await senderState(client, from, p);
  const built = buildTransfer({ key: p.key, chainId, to: p.to, amount: p.amount, fee: p.fee ?? 1n, nonce, keyless });
  await client.submitTx(built.raw, { binary: p.binary ?? false });
  const waitOpts: { until: 'included' | 'final'; timeoutMs?: number; pollMs?: number } = { until: p.until ?? 'final' };
  if (p.timeoutMs !== undefined) waitOpts.timeoutMs = p.timeoutMs;
  if (p.pollMs !== undefined) waitOpts.pollMs = p.pollMs;
  const tx = await client.waitForTx(built.hash, waitOpts);
  return { hash: built.hash, nonce, tx };
}

export interface XTransferAndWaitParams extends Omit<TransferAndWaitParams, 'until'> {
  /** Check the recipient's shard locally (see {@link XTransferParams.shardCount}). */
  shardCount?: number;
  /** What to wait for on the source node once the transaction is final. Default `applied`. */
  xferUntil?: 'decided' | 'applied';
}

export interface XTransferResult {
  /** The transfer id (= the source transaction's hash). */
  id: string;
  nonce: bigint;
  /** The source transaction, final. */
  tx: TxInfo;
  /** The source node's record once the decision is applied there: check `status` (`committed` or `aborted`). */
  xfer: XTransferInfo;
}

/**
 * Build, sign and submit a cross-shard transfer to `client` (a node of the sender's shard),
 * wait until its transaction is final (throws ApiError `TX_REJECTED` if the node rejects it),
 * then until the source node has applied the beacon's decision. An abort is not an error:
 * the result's `xfer.status` says `aborted`. `timeoutMs` bounds each of the two waits.
 */
export async function xtransferAndWait(client: QnexusClient, p: XTransferAndWaitParams): Promise<XTransferResult> {
  const chainId = p.chainId ?? (await client.status()).chainId;
  const from = formatAddress(addressFromPublicKey(p.key.publicKey));
  const { nonce, keyless } = await senderState(client, from, p);
  const params: XTransferParams = { key: p.key, chainId, to: p.to, amount: p.amount, fee: p.fee ?? 1n, nonce, keyless };
  if (p.shardCount !== undefined) params.shardCount = p.shardCount;
  const built = buildXTransfer(params);
  await client.submitTx(built.raw, { binary: p.binary ?? false });
  const waitOpts: { until: 'final'; timeoutMs?: number; pollMs?: number } = { until: 'final' };
  if (p.timeoutMs !== undefined) waitOpts.timeoutMs = p.timeoutMs;
  if (p.pollMs !== undefined) waitOpts.pollMs = p.pollMs;
  const tx = await client.waitForTx(built.hash, waitOpts);
  const xfer = await client.waitForXTransfer(built.hash, { ...waitOpts, until: p.xferUntil ?? 'applied' });
  return { id: built.hash, nonce, tx, xfer };
}
