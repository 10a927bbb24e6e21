import { availableParallelism } from 'node:os';
import type { BackendName, UnlockedKey } from '@qnexus/crypto';
import type { Genesis } from '@qnexus/types';

export type LogFormat = 'json' | 'pretty';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** What every long-running process (shard node, beacon) is configured with. */
export interface ProcessConfig {
  /** The process's own directory: LevelDB (db/), libp2p key (peer.key), admin token (admin.token), node-info.json. */
  dataDir: string;
  genesis: Genesis;
  /** libp2p listen multiaddrs, e.g. ['/ip4/127.0.0.1/tcp/7001']. */
  listen: string[];
  /** Addresses to announce to peers instead of the listen addresses. */
  announce?: string[];
  /** Multiaddrs (with /p2p/<peerId>) to dial at start and re-dial while isolated. */
  bootstrap: string[];
  apiHost: string;
  /** 0 picks a free port (written to node-info.json). */
  apiPort: number;
  logFormat: LogFormat;
  logLevel: LogLevel;
  /** API tokens per second per client IP (token-bucket rate, a request takes 1–8 by its cost; default 500, 0 disables the limit). */
  apiRateLimit?: number;
  /** API burst per client IP (bucket size; default 1000, 0 disables the limit). */
  apiRateBurst?: number;
  /** Open API connections, all clients together (default 512); sockets beyond it are closed at once. */
  apiMaxConnections?: number;
  /** Open API connections per client IP (default 64); its sockets beyond it are closed at once. */
  apiMaxConnectionsPerIp?: number;
  /** A request's headers must arrive within this many ms (default 5000), else 408 and the connection is closed. */
  apiHeadersTimeoutMs?: number;
  /** A whole request, body included, within this many ms (default 10000; at least apiHeadersTimeoutMs). */
  apiRequestTimeoutMs?: number;
  /**
   * ML-DSA implementation that verifies and signs in this process (default `noble`). `pqclean`
   * (the optional native addon) must be installed: the process refuses to start without it
   * (CryptoBackendError CRYPTO_BACKEND_UNAVAILABLE), it never falls back silently.
   */
  cryptoBackend?: BackendName;
}

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
  /** Most transactions the mempool (and the admission journal) holds (default 20 000); beyond it 503 MEMPOOL_FULL. */
  mempoolMaxTxs?: number;
}

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
