import type { BackendChoice } from '@qnexus/crypto';
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
  cryptoBackend?: BackendChoice;
}
