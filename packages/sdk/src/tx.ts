import {
  addressFromPublicKey,
  formatAddress,
  getBackend,
  isAddressString,
  isValidChainId,
  parseAddress,
  sha256,
  toHex,
  type SchemeName,
} from '@qnexus/crypto';
import { QnexusError, encodeTx, txSigningBytes, type TxBody } from '@qnexus/types';
import type { QnexusClient } from './client.js';
import type { TxInfo } from './types.js';

const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** What signs a transaction: a key pair (e.g. an unlocked keystore). */
export interface SigningKey {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
  scheme: SchemeName;
}

export interface TransferParams {
  key: SigningKey;
  chainId: string;
  /** Recipient, `qn` + 40 hex. */
  to: string;
  amount: bigint;
  fee: bigint;
  nonce: bigint;
}

export interface BuiltTx {
  /** The wire encoding to submit. */
  raw: Uint8Array;
  /** Transaction id (hex): SHA-256 of the signed bytes, as the node reports it. */
  hash: string;
  /** Sender address derived from the public key. */
  from: string;
}

function checkU64(v: bigint, what: string, code: 'TX_BAD_AMOUNT' | 'TX_MALFORMED'): void {
  if (typeof v !== 'bigint' || v < 0n || v > U64_MAX) throw new QnexusError(code, `${what} must be an integer in [0, 2^64-1], got ${String(v)}`);
}

/**
 * Build and sign a transfer: signs `txSigningBytes(body)` with the scheme's
 * backend and wire-encodes it with `encodeTx`. Throws QnexusError
 * `TX_MALFORMED` (bad chain id, recipient or nonce) or `TX_BAD_AMOUNT`.
 */
export function buildTransfer(p: TransferParams): BuiltTx {
  if (!isValidChainId(p.chainId)) throw new QnexusError('TX_MALFORMED', `invalid chain id ${JSON.stringify(p.chainId)}`);
  if (!isAddressString(p.to)) throw new QnexusError('TX_MALFORMED', `invalid recipient ${JSON.stringify(p.to)}: expected qn followed by 40 lowercase hex characters`);
  checkU64(p.amount, 'amount', 'TX_BAD_AMOUNT');
  checkU64(p.fee, 'fee', 'TX_BAD_AMOUNT');
  checkU64(p.nonce, 'nonce', 'TX_MALFORMED');
  const body: TxBody = {
    chainId: p.chainId,
    nonce: p.nonce,
    fee: p.fee,
    publicKey: p.key.publicKey,
    payload: { kind: 'transfer', to: parseAddress(p.to), amount: p.amount },
  };
  const signBytes = txSigningBytes(body);
  const signature = getBackend(p.key.scheme).sign(p.key.secretKey, signBytes);
  const raw = encodeTx({ body, signature });
  return { raw, hash: toHex(sha256(signBytes)), from: formatAddress(addressFromPublicKey(p.key.publicKey)) };
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
  const nonce = p.nonce ?? BigInt((await client.account(from)).pendingNonce);
  const built = buildTransfer({ key: p.key, chainId, to: p.to, amount: p.amount, fee: p.fee ?? 1n, nonce });
  await client.submitTx(built.raw, { binary: p.binary ?? false });
  const waitOpts: { until: 'included' | 'final'; timeoutMs?: number; pollMs?: number } = { until: p.until ?? 'final' };
  if (p.timeoutMs !== undefined) waitOpts.timeoutMs = p.timeoutMs;
  if (p.pollMs !== undefined) waitOpts.pollMs = p.pollMs;
  const tx = await client.waitForTx(built.hash, waitOpts);
  return { hash: built.hash, nonce, tx };
}
