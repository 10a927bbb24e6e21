/**
 * Response shapes of the node's HTTP JSON API (`/v1/...`).
 * Hex strings are lowercase without `0x`; amounts and nonces are decimal
 * strings (u64) so they survive JSON without precision loss.
 */

export type NodeRole = 'validator' | 'full';

/** `GET /v1/status` */
export interface StatusInfo {
  chainId: string;
  shard: number;
  genesisHash: string;
  version: string;
  role: NodeRole;
  /** The validator address this node signs with, or null on a full node. */
  validator: string | null;
  peerId: string;
  /** Number of connected peers. */
  peers: number;
  height: number;
  finalizedHeight: number;
  round: number;
  step: string;
  mempoolSize: number;
  syncing: boolean;
}

export interface CertificateVoteInfo {
  validator: string;
  signature: string;
}

export interface CertificateInfo {
  round: number;
  blockHash: string;
  votes: CertificateVoteInfo[];
}

/** `GET /v1/blocks/{height|hash|latest}` */
export interface BlockInfo {
  hash: string;
  height: number;
  slot: number;
  shard: number;
  chainId: string;
  parentHash: string;
  stateRoot: string;
  txRoot: string;
  proposer: string;
  txCount: number;
  /** Transaction hashes, in execution order. */
  txs: string[];
  /** The finality certificate, once the block is final. */
  certificate: CertificateInfo | null;
}

export type TxStatus = 'pending' | 'included' | 'final' | 'rejected';

export interface ErrorInfo {
  code: string;
  message: string;
}

export interface TxBlockRef {
  height: number;
  hash: string;
  index: number;
}

/** `GET /v1/txs/{hash}` */
export interface TxInfo {
  hash: string;
  status: TxStatus;
  from: string;
  to: string;
  amount: string;
  fee: string;
  nonce: string;
  block: TxBlockRef | null;
  /** Why the transaction was rejected (status `rejected`), else null. */
  error: ErrorInfo | null;
}

/** `GET /v1/accounts/{address}` */
export interface AccountInfo {
  address: string;
  balance: string;
  /** Next nonce according to finalized/applied state. */
  nonce: string;
  /** Next nonce counting this node's pending mempool transactions: use it for a new transaction. */
  pendingNonce: string;
  /** Known once the account has sent a transaction, else null. */
  publicKey: string | null;
}

export interface ValidatorInfo {
  address: string;
  publicKey: string;
  stake: string;
  shard: number;
}

/** `GET /v1/validators` */
export interface ValidatorsInfo {
  validators: ValidatorInfo[];
}

/** `GET /v1/supply` (amounts are decimal strings) */
export interface SupplyInfo {
  height: number;
  genesisSupply: string;
  balances: string;
  burned: string;
  accounts: number;
}

/** `GET /v1/evidence` */
export interface EvidenceList {
  evidence: { validator: string; height: number; round: number; step: string; evidence: string }[];
}

/** `POST /v1/txs` (HTTP 202) */
export interface SubmitResult {
  hash: string;
  status: 'pending';
}

/** Error body of every non-2xx answer. */
export interface ErrorBody {
  error: ErrorInfo;
}
