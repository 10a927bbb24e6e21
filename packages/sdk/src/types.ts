import type { BackendName } from '@qnexus/crypto';
import type { StakingTotalsJson, ValidatorInfoJson } from '@qnexus/types';
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
  /** The current epoch (by the wall clock). */
  epoch: number;
  /**
   * For a validator: whether its key is in this shard's committee this epoch, and which
   * shard's committee it is in (null: none, e.g. pending activation or unbonding). An
   * `assignedShard` other than `shard` means the node should be restarted with that `--shard`.
   */
  committee: { inCommittee: boolean; assignedShard: number | null } | null;
  /** The ML-DSA implementation the node verifies and signs with (`--crypto-backend`). */
  cryptoBackend: BackendName;
  /** The node's link to the beacon (older nodes omit it). */
  beacon?: BeaconLinkInfo;
}

/**
 * `GET /v1/status` `beacon`: when this node last heard from the beacon (its newest verified,
 * beacon-signed registry snapshot, which the beacon signs every 4 slots) and how far the
 * committees it knows reach. With the beacon unreachable the shard keeps finalizing through
 * `committeesKnownThrough` (slot `finalizesThroughSlot`), then stops until the beacon is back.
 */
export interface BeaconLinkInfo {
  peerId: string;
  /** A p2p connection to the beacon is open (it may still be hung: see `reachable`). */
  connected: boolean;
  /** A beacon snapshot arrived within the last 12 slots. */
  reachable: boolean;
  lastSnapshotSlot: number | null;
  /** ISO time of the newest beacon snapshot's slot; null: none since the node started. */
  lastHeardAt: string | null;
  silentMs: number | null;
  /** The committees of the current epoch are known here. */
  committeeKnown: boolean;
  committeesKnownThrough: number;
  finalizesThroughSlot: number;
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
  /** The shard of the node that answered (older nodes omit it). */
  shard?: number;
  /** The address's home shard: the only shard that holds its account (older nodes omit it). */
  homeShard?: number;
  balance: string;
  /** Next nonce according to finalized/applied state. */
  nonce: string;
  /** Next nonce counting this node's pending mempool transactions: use it for a new transaction. */
  pendingNonce: string;
  /** Known once the account has sent a transaction, else null. */
  publicKey: string | null;
}

/**
 * One validator of the beacon's registry (stake, status, shard, rewards,
 * participation): the same shape on the beacon and on every node. Amounts are
 * decimal strings; epochs are null when not set.
 */
export type ValidatorInfo = ValidatorInfoJson & { publicKey?: string };
export type StakingTotals = StakingTotalsJson;

/**
 * `GET /v1/validators` on a shard node: the latest registry snapshot the beacon
 * signed (`source: 'beacon-snapshot'`), or before one arrived the current
 * committee (`source: 'committee'`, totals null).
 */
export interface ValidatorsInfo {
  epoch: number;
  slot: number;
  source: 'beacon-snapshot' | 'committee';
  validators: ValidatorInfo[];
  totals: StakingTotals | null;
  /** This shard's committee in the current epoch. */
  committee: { address: string; stake: string }[];
}

/** `POST /v1/evidence` (node or beacon): the beacon's verdict. */
export interface EvidenceResult {
  result: 'slashed' | 'duplicate';
  validator: string;
  /** Amount slashed by this evidence ("0" for a duplicate). */
  slashed: string;
}

/**
 * `GET /v1/supply` of a shard node (amounts are decimal strings). The shard's identity,
 * checkable at every height: `total = balances + burned + escrow + exported − imported`
 * equals `genesisSupply` (the genesis balance of the shard's home accounts).
 */
export interface SupplyInfo {
  shard: number;
  /** Genesis balance of this shard's home accounts. */
  genesisSupply: string;
  /** Σ account balances. */
  balances: string;
  /** The burned part of fees (genesis `staking.feeBurnBps`). */
  burned: string;
  /** Proposers' fee tips not yet sent to the beacon (they leave at the next epoch, as \`fees\` transfers). */
  fees: string;
  /** Amounts held by outgoing cross-shard transfers not decided yet (their fees are burned at once). */
  escrow: string;
  /** Value that left this shard in committed outgoing transfers. */
  exported: string;
  /** Value that arrived in committed incoming transfers. */
  imported: string;
  /** balances + burned + fees + escrow + exported − imported; equals genesisSupply. */
  total: string;
  /** Head height the figures are taken at. */
  height: number;
  /** Number of accounts in the shard's state. */
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

// ---------------------------------------------------------------- cross-shard transfers

/** Outcome of a cross-shard transfer's two-phase commit. */
export type XferDecision = 'commit' | 'abort';

/**
 * One step of a cross-shard transfer recorded in a finalized block of a shard, as a shard
 * node reports it: `source-prepared`, `source-applied` on the source; `destination-prepared`
 * | `destination-refused` (with the `reason`), `destination-applied` on the destination.
 */
export interface XferPhase {
  phase: string;
  /** The shard whose chain recorded it. */
  shard: number;
  /** The block height on that shard. */
  height: number;
  /** On `…-applied`: the decision applied. */
  decision?: XferDecision;
  /** Why the destination refused (an error code such as `XS_DEADLINE_PASSED`). */
  reason?: string;
}

/**
 * One step as the beacon reports it, in protocol order: the shard phases above (with `shard`
 * and `height`) and its own `decided` (with the `decision`, the `slot` it was logged in and,
 * for an abort, the `reason`: the destination's refusal code, e.g. `XS_DEADLINE_PASSED`).
 */
export interface BeaconXferPhase {
  phase: string;
  shard?: number;
  height?: number;
  /** On `decided`: the slot the beacon logged its decision in. */
  slot?: number;
  decision?: XferDecision;
  reason?: string;
}

/**
 * A shard node's record of a cross-shard transfer (`GET /v1/xtransfers/{id}` on a node of
 * the source or destination shard). Status on the source: `pending` (in the mempool) →
 * `escrowed` → `committed` | `aborted`; on the destination: `prepared` | `refused` →
 * `committed` | `aborted`. Why the beacon aborted is in its own record (BeaconXTransferInfo).
 */
export type XferNodeStatus = 'pending' | 'escrowed' | 'prepared' | 'refused' | 'committed' | 'aborted';

export interface XTransferInfo {
  /** The source transaction's id (hash). */
  id: string;
  from: string;
  to: string;
  amount: string;
  sourceShard: number;
  destinationShard: number;
  /**
   * The destination prepares only in a block of a slot ≤ this one and refuses in any later
   * block, which aborts the transfer (the deadline rule). A passed deadline is not itself an
   * outcome: read `outcome`. Null while the transaction is still in the mempool.
   */
  deadlineSlot: number | null;
  /** Which side this node is on. */
  role: 'source' | 'destination';
  status: XferNodeStatus;
  /** The decision once this shard has applied it, else null. */
  decision: XferDecision | null;
  /**
   * The final outcome as soon as finalized facts on this shard fix it (an applied decision, or
   * the destination's recorded answer: accepted → commit, refused → abort), else null. Never
   * changes once set, whatever crashes.
   */
  outcome: XferDecision | null;
  /** Empty while `pending`. */
  phases: XferPhase[];
}

/** The beacon's view: `preparing` until it logs a decision. */
export type XferBeaconStatus = 'preparing' | 'committed' | 'aborted';

/** The beacon's record of a cross-shard transfer (`GET /v1/xtransfers/{id}` on the beacon). */
export interface BeaconXTransferInfo {
  id: string;
  from: string;
  to: string;
  amount: string;
  sourceShard: number;
  destinationShard: number;
  deadlineSlot: number;
  status: XferBeaconStatus;
  decision: XferDecision | null;
  /** true once a decision is logged: it is final (the deadline rule) though shards may not have applied it yet. */
  outcomeFinal: boolean;
  /** true once both shards have applied the decision. */
  done: boolean;
  phases: BeaconXferPhase[];
}

/** `GET /v1/xtransfers?limit=N` on the beacon: the most recent transfers, newest first. */
export interface BeaconXTransferList {
  xtransfers: BeaconXTransferInfo[];
}

// ---------------------------------------------------------------- beacon

/** How many cross-shard transfers the beacon has seen, by outcome. */
export interface BeaconXferCounts {
  total: number;
  /** Not decided yet. */
  undecided: number;
  committed: number;
  aborted: number;
  /** Decided and applied on both shards. */
  applied: number;
}

/** `GET /v1/status` on the beacon. */
export interface BeaconStatusInfo {
  chainId: string;
  genesisHash: string;
  version: string;
  role: 'beacon';
  peerId: string;
  /** Number of connected peers. */
  peers: number;
  /** The current slot (-1 before genesis time). */
  slot: number;
  epoch: number;
  /** The newest slot whose tick (decisions, committee freezes, releases) is durable on the beacon. */
  processedSlot: number;
  /** How late, in ms after its slot began, that tick became durable: the beacon's lag behind the wall clock. */
  slotLagMs: number;
  /** The newest epoch whose committees the beacon has frozen. */
  frozenThrough: number;
  xtransfers: BeaconXferCounts;
  /** The ML-DSA implementation the beacon verifies and signs with (`--crypto-backend`). */
  cryptoBackend: BackendName;
}

/** `GET /v1/validators` on the beacon: the whole registry and the staking totals. */
export interface BeaconValidatorsInfo {
  epoch: number;
  slot: number;
  validators: ValidatorInfo[];
  totals: StakingTotals;
}

export interface CommitteeMemberInfo {
  address: string;
  stake: string;
}

export interface CommitteeInfo {
  shard: number;
  members: CommitteeMemberInfo[];
  totalStake: string;
}

/** `GET /v1/committees` on the beacon: which validators serve which shard in the current epoch. */
export interface CommitteesInfo {
  epoch: number;
  /** The epoch seed (hex). */
  seed: string;
  /** Index = shard. */
  committees: CommitteeInfo[];
}

// ---------------------------------------------------------------- explorer lists (shard node)

/** One block of `GET /v1/blocks?limit=N`. */
export interface BlockSummary {
  height: number;
  hash: string;
  slot: number;
  /** null for block 0 (genesis). */
  proposer: string | null;
  txCount: number;
  /** Always true: a node stores a block only with its finality certificate (block 0 is genesis). */
  finalized: boolean;
  /** Round of the finality certificate (null for block 0). */
  round: number | null;
  /** Number of precommits in the certificate. */
  signers: number;
}

/** `GET /v1/blocks?limit=N` on a shard node: the newest blocks, newest first. */
export interface BlockList {
  shard: number;
  headHeight: number;
  blocks: BlockSummary[];
}

/** `GET /v1/xtransfers?limit=N` on a shard node: this shard's newest transfer records (every kind), newest first. */
export interface XTransferList {
  shard: number;
  xtransfers: (XTransferInfo & { kind: 'transfer' | 'stake' | 'unstake' | 'fees' | 'release' })[];
}

/** One shard's head in `GET /v1/shards`; all null while the beacon has not reported that shard yet (`unknown`). */
export interface ShardHeadInfo {
  shard: number;
  height: number | null;
  /** Equal to height: the local head is final, and the beacon reports only certified blocks. */
  finalizedHeight: number | null;
  blockHash: string | null;
  /** The head block's slot. */
  slot: number | null;
  /** Round of its finality certificate (null for the genesis block). */
  round: number | null;
  /** `local`: this node's own shard, from its chain; `beacon-snapshot`: from the beacon's latest signed registry snapshot. */
  source: 'local' | 'beacon-snapshot' | 'unknown';
}

/** `GET /v1/shards` on a shard node. */
export interface ShardsInfo {
  /** The node's own shard. */
  shard: number;
  shardCount: number;
  /** The current slot and epoch by the node's clock. */
  slot: number;
  epoch: number;
  /** Slot of the beacon registry snapshot the other shards' heads come from (null before the first). */
  snapshotSlot: number | null;
  shards: ShardHeadInfo[];
}

/** `<backup>/backup.json` as `POST /v1/admin/backup` returns it (`qnexus db backup`; docs/backup.md). */
export interface BackupManifestInfo {
  /** Backup layout version (1). */
  format: number;
  /** `node` (a shard node's database) or `beacon`. */
  kind: 'node' | 'beacon';
  chainId: string | null;
  /** Hex genesis hash the data is bound to. */
  genesisHash: string | null;
  /** The node's shard; null for the beacon. */
  shard: number | null;
  /** The node's finalized head height in the snapshot; null for the beacon. */
  height: number | null;
  /** The beacon's newest stored epoch announcement; null for a node. */
  epoch: number | null;
  keys: number;
  /** Key + value bytes copied. */
  bytes: number;
  /** Hex SHA-256 digest of every (key, value) in key order; restore checks it. */
  sha256: string;
  /** When the snapshot was taken (ISO 8601). */
  createdAt: string;
  qnexusVersion: string;
  /** What the backup deliberately does not contain (peer.key, admin.token, keystores, …). */
  excludes: string[];
}

/** `POST /v1/admin/backup` */
export interface AdminBackupResult {
  /** The backup directory, absolute, on the process's machine. */
  dir: string;
  manifest: BackupManifestInfo;
  /** How long the backup took. */
  ms: number;
}
