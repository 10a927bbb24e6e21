export { startNode } from './node.js';
export type { NodeConfig, NodeInfo, ProcessConfig, RunningNode, LogFormat, LogLevel } from './config.js';
export { defaultVerifyWorkers } from './config.js';
export { DEFAULT_VERIFY_CACHE_SIZE } from './verifier.js';
export { chainTopics, topics } from './topics.js';
// Shared with the beacon process: the same structured log format everywhere.
export { Logger, LOG_LEVELS, isLogLevel, type LogFields } from './log.js';
// Shared with the beacon API: per-client rate limit, admin bearer token, /v1/admin/ endpoints.
export { DEFAULT_API_RATE_BURST, DEFAULT_API_RATE_LIMIT, RateLimiter, type RateDecision, type RateLimitOptions } from './ratelimit.js';
export {
  ADMIN_TOKEN_FILE,
  ApiGuard,
  HttpHeaderError,
  clientAddress,
  loadOrCreateAdminToken,
  tokenMatches,
  type AdminContext,
  type AdminLogLevelJson,
  type AdminPeersJson,
  type ApiGuardOptions,
} from './admin.js';
// The JSON HTTP front (routing, guard, /metrics, errors, strict bodies) both APIs serve.
export { MAX_API_BODY, parseListLimit, queryParams, readBody, readEvidenceBody, readJsonObject, startJsonApi, type JsonApiContext, type JsonApiOptions, type JsonRoute, type RawBody } from './http.js';
// The explorer's page kit, shared with the beacon's network page.
export { BASE_STYLE, CLIENT_LIB, SVG_ANCHOR, explorerDocument, explorerResponse, type ExplorerDocument } from './explorer-ui.js';
export { Shutdown, serverUrl, writeInfoFile } from './process.js';
// Shared with the beacon process: default process metrics and p2p gauges/counters.
export { registerProcessMetrics, registerCryptoBackendInfo, P2PMetrics, topicName } from './metrics.js';
