import type { ErrorBodyJson, Static, beacon, front, node, schemas } from '@qnexus/api';
/**
 * Response shapes of the node's and the beacon's HTTP JSON API (`/v1/...`), derived from the
 * route definitions the servers implement (@qnexus/api): each type is the `Static` of the schema
 * the route answers with, so the SDK cannot drift from the server (a field the server adds
 * without its definition fails to compile there, and the OpenAPI tests fail at run time).
 * Hex strings are lowercase without `0x`; amounts and nonces are decimal strings (u64).
 * The names are kept from the hand-written types they replace.
 */

export type NodeRole = StatusInfo['role'];

/** `GET /v1/status` on a shard node. */
export type StatusInfo = Static<typeof node.NodeStatus>;
/** `GET /v1/status` `beacon`: the node's link to the beacon. */
export type BeaconLinkInfo = Static<typeof node.BeaconLink>;
export type CertificateVoteInfo = Static<typeof node.CertificateVote>;
export type CertificateInfo = Static<typeof node.Certificate>;
/** `GET /v1/blocks/{height|hash|latest}` */
export type BlockInfo = Static<typeof node.Block>;
export type TxStatus = Static<typeof node.TxStatus>;
export type ErrorInfo = Static<typeof node.ErrorInfo>;
export type TxBlockRef = Static<typeof node.TxBlockRef>;
/** `GET /v1/txs/{hash}` */
export type TxInfo = Static<typeof node.Tx>;
/** `GET /v1/accounts/{address}` */
export type AccountInfo = Static<typeof node.Account>;
/** What `?proof=true` adds to an answer: the certified header, its certificate and the proven entries (verify with verifyStateAnswer). */
export type StateProofInfo = Static<typeof node.StateProof>;

/** A validator of the beacon's registry as the beacon shows it (`GET /v1/validators[/{address}]` on the beacon). */
export type BeaconValidatorInfo = Static<typeof schemas.BeaconValidator>;
/**
 * A validator as a shard node shows it: the registry entry of the beacon's latest snapshot, or
 * before one arrived what the committees say (the registry-only fields null).
 */
export type NodeValidatorInfo = Static<typeof schemas.NodeValidator>;
/**
 * A validator as `GET /v1/validators[/{address}]` answers it: the beacon's registry entry, or a
 * node's ({@link NodeValidatorInfo}: before its first beacon snapshot the registry-only fields are
 * null; `source` of {@link ValidatorsInfo} says 'committee' then).
 */
export type ValidatorInfo = NodeValidatorInfo | BeaconValidatorInfo;
export type StakingTotals = Static<typeof schemas.StakingTotals>;
/** `GET /v1/validators` on a shard node, exactly as the server defines it. */
export type NodeValidatorsInfo = Static<typeof node.NodeValidators>;
/** `GET /v1/validators` on a shard node. */
export type ValidatorsInfo = NodeValidatorsInfo;
/** `POST /v1/evidence` (node or beacon): the beacon's verdict. */
export type EvidenceResult = Static<typeof schemas.EvidenceResult>;
/** `GET /v1/supply` of a shard node: its supply identity (total = genesisSupply at every height). */
export type SupplyInfo = Static<typeof node.Supply>;
/** `GET /v1/evidence` */
export type EvidenceList = Static<typeof node.EvidenceList>;
/** `POST /v1/txs` (HTTP 202) */
export type SubmitResult = Static<typeof node.SubmitResult>;
/** Error body of every non-2xx answer. */
export type ErrorBody = ErrorBodyJson;

// ---------------------------------------------------------------- cross-shard transfers

export type XferDecision = Static<typeof schemas.XferDecision>;
/** One step of a cross-shard transfer recorded in a finalized block of a shard. */
export type XferPhase = Static<typeof node.XferPhase>;
/** One step as the beacon reports it (the shard phases and its own `decided`). */
export type BeaconXferPhase = Static<typeof beacon.BeaconXferPhase>;
export type XferNodeStatus = XTransferInfo['status'];
/** A shard node's record of a cross-shard transfer (`GET /v1/xtransfers/{id}` on a node of either side). */
export type XTransferInfo = Static<typeof node.XTransfer>;
export type XferBeaconStatus = BeaconXTransferInfo['status'];
/** The beacon's record of a cross-shard transfer (`GET /v1/xtransfers/{id}` on the beacon). */
export type BeaconXTransferInfo = Static<typeof beacon.BeaconXTransfer>;
/** `GET /v1/xtransfers?limit=N` on the beacon. */
export type BeaconXTransferList = Static<typeof beacon.BeaconXTransferList>;

// ---------------------------------------------------------------- beacon

export type BeaconXferCounts = Static<typeof beacon.XferCounts>;
/** `GET /v1/status` on the beacon. */
export type BeaconStatusInfo = Static<typeof beacon.BeaconStatus>;
/** `GET /v1/validators` on the beacon: the whole registry and the staking totals. */
export type BeaconValidatorsInfo = Static<typeof beacon.BeaconValidators>;
export type CommitteeMemberInfo = CommitteesInfo['committees'][number]['members'][number];
export type CommitteeInfo = CommitteesInfo['committees'][number];
/** `GET /v1/committees` on the beacon. */
export type CommitteesInfo = Static<typeof beacon.BeaconCommittees>;
/** `GET /v1/committees` on a shard node. */
export type NodeCommitteesInfo = Static<typeof node.NodeCommittees>;
/** `GET /v1/network` on the beacon. */
export type NetworkInfo = Static<typeof beacon.Network>;

// ---------------------------------------------------------------- explorer lists (shard node)

export type BlockSummary = Static<typeof node.BlockSummary>;
/** `GET /v1/blocks?limit=N` on a shard node. */
export type BlockList = Static<typeof node.BlockList>;
/** `GET /v1/xtransfers?limit=N` on a shard node. */
export type XTransferList = Static<typeof node.XTransferList>;
export type ShardHeadInfo = Static<typeof node.ShardHead>;
/** `GET /v1/shards` on a shard node. */
export type ShardsInfo = Static<typeof node.Shards>;
/** `GET /v1/search?q=` on a shard node. */
export type SearchInfo = Static<typeof node.SearchResult>;
/** `GET /v1/accounts/{address}/txs` on a shard node. */
export type AccountTxsInfo = Static<typeof node.AccountTxs>;
/** `GET /v1/activity` on a shard node. */
export type ActivityInfo = Static<typeof node.Activity>;

// ---------------------------------------------------------------- admin

/** `<backup>/backup.json` as `POST /v1/admin/backup` returns it (`qnexus db backup`; docs/backup.md). */
export type BackupManifestInfo = Static<typeof front.BackupManifest>;
/** `POST /v1/admin/backup` */
export type AdminBackupResult = Static<typeof front.AdminBackup>;
/** A log level as `/v1/admin/log-level` takes it. */
export type AdminLogLevel = Static<typeof front.LogLevel>;
/** `GET /v1/admin/peers`: connected peers with the remote address of each connection. */
export type AdminPeersInfo = Static<typeof front.AdminPeers>;
/** `POST /v1/admin/peers`: the dial's outcome. */
export type AdminConnectResult = Static<typeof front.AdminConnect>;
/** `DELETE /v1/admin/peers/{peerId}` */
export type AdminDisconnectResult = Static<typeof front.AdminDisconnect>;
/** `GET|PUT /v1/admin/log-level` (`previous` only on PUT). */
export type AdminLogLevelInfo = Static<typeof front.AdminLogLevel>;
