import { availableParallelism } from 'node:os';
import type { UnlockedKey } from '@qnexus/crypto';
import type { ProcessConfig } from '@qnexus/runtime';

export interface NodeConfig extends ProcessConfig {
  shard: number;
  /** Present on validators: the ML-DSA key that proposes and votes. */
  validatorKey?: UnlockedKey | null;
  /**
   * Worker threads verifying transaction signatures off the event loop (default
   * `defaultVerifyWorkers()`: one per core but one). 0: no pool, every signature is verified on
   * the event loop.
   */
  verifyWorkers?: number;
  /**
   * Capacity of the verify-once cache of transaction signatures (default
   * DEFAULT_VERIFY_CACHE_SIZE). 0 disables it: every check verifies (e.g. a transaction seen on
   * gossip is verified again in its block).
   */
  verifyCacheSize?: number;
  /** Most transactions per outbound gossip message, 1..MAX_TX_BATCH (default MAX_TX_BATCH = 64). */
  txGossipBatch?: number;
  /**
   * How long an admitted transaction may wait for others to share its gossip message, in ms
   * (default DEFAULT_TX_GOSSIP_FLUSH_MS; 0 publishes at the next turn of the event loop).
   */
  txGossipFlushMs?: number;
  /**
   * Journal every transaction the API acknowledges, durably (fdatasync, group-committed) before
   * its 202, so a crash of this node loses no acknowledged transaction (default true). false is
   * for measuring what it costs: a 202 is then only as durable as the gossip that carried it.
   */
  admissionJournal?: boolean;
  /**
   * Slots a validator with nothing to propose lets pass after the head's block before it proposes
   * an empty block anyway (default DEFAULT_EMPTY_BLOCK_INTERVAL). 1: a block every slot, and a
   * nil prevote for every slot without a proposal (Tendermint as written). Above 1, proposers
   * skip their slot when no transaction applies and validators stay silent in a round without a
   * proposal, so an idle shard sends no consensus message between its empty blocks; a
   * transaction still goes into the next slot's block. Like CometBFT's
   * create_empty_blocks_interval; each proposer's own choice (any mix is safe).
   */
  emptyBlockInterval?: number;
  /** Most transactions the mempool (and the admission journal) holds (default 20 000); beyond it 503 MEMPOOL_FULL. */
  mempoolMaxTxs?: number;
  /** Most bytes of transactions the mempool holds (default 32 MiB, DEFAULT_MEMPOOL_MAX_BYTES); beyond it 503 MEMPOOL_FULL. */
  mempoolMaxBytes?: number;
  /**
   * How a node at genesis catches up (default 'snapshot'): 'snapshot' joins from a peer's state
   * snapshot at a recent certified height when the best peer is more than `snapshotThreshold`
   * heights ahead, then syncs blocks from there; 'blocks' replays every block from genesis.
   */
  sync?: 'snapshot' | 'blocks';
  /** Heights the best peer must be ahead of a node at genesis for it to join by snapshot (default DEFAULT_SNAPSHOT_THRESHOLD = 500). */
  snapshotThreshold?: number;
  /** Items asked per snapshot chunk request (default DEFAULT_SNAPSHOT_CHUNK_ITEMS; tests lower it to spread a small state over many requests). */
  snapshotChunkItems?: number;
  /** Heights of state versions kept behind the head, for snapshots served to peers and proofs at recent heights (default 1 000). */
  stateRetention?: number;
  /**
   * Memory for the state's caches in MiB (default DEFAULT_STATE_CACHE_MB): trie nodes and values read
   * from LevelDB. The state itself stays on disk, so this, not the number of accounts, bounds what
   * the state costs in memory.
   */
  stateCacheMb?: number;
}

/** Default of NodeConfig.emptyBlockInterval, in slots. */
export const DEFAULT_EMPTY_BLOCK_INTERVAL = 8;

/** Default memory for the state's caches, in MiB. */
export const DEFAULT_STATE_CACHE_MB = 48;

/** Default verify workers: one per core but one (the event loop's), at least one. */
export function defaultVerifyWorkers(): number {
  return Math.max(1, availableParallelism() - 1);
}

/** Written to `<dataDir>/node-info.json` once the node is listening (read by the devnet launcher). */
export interface NodeInfo {
  pid: number;
  role: 'validator' | 'full';
  shard: number;
  chainId: string;
  peerId: string;
  multiaddrs: string[];
  apiUrl: string;
  validator: string | null;
  dataDir: string;
}

export interface RunningNode {
  readonly info: NodeInfo;
  stop(): Promise<void>;
}
