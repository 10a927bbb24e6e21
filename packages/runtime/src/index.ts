/**
 * @qnexus/runtime: the process plumbing the shard node and the beacon both run on, so that
 * neither process depends on the other: structured logging, ordered shutdown and the info file,
 * the JSON HTTP front (routing, strict bodies, errors, /metrics), its guard (per-client rate
 * limit, connection caps and timeouts, the admin bearer token and /v1/admin/ endpoints), the
 * explorer's page kit, process metrics, and what every process is configured with.
 */
export type { LogFormat, LogLevel, ProcessConfig } from './config.js';
export { Logger, LOG_LEVELS, isLogLevel, type LogFields } from './log.js';
export { Shutdown, serverUrl, writeInfoFile } from './process.js';
export {
  BLOCK_REQUEST_COST,
  DEFAULT_API_RATE_BURST,
  DEFAULT_API_RATE_LIMIT,
  EVIDENCE_REQUEST_COST,
  METRICS_RATE_BURST,
  METRICS_RATE_LIMIT,
  RateLimiter,
  SUBMIT_REQUEST_COST,
  type RateDecision,
  type RateLimitOptions,
} from './ratelimit.js';
export {
  ADMIN_TOKEN_FILE,
  ApiGuard,
  DEFAULT_HTTP_LIMITS,
  HTTP_LIMIT_RANGES,
  HttpHeaderError,
  clientAddress,
  httpServerLimits,
  loadOrCreateAdminToken,
  requestCost,
  tokenMatches,
  type AdminBackupHandler,
  type AdminBackupJson,
  type AdminContext,
  type AdminLogLevelJson,
  type AdminPeersJson,
  type ApiGuardOptions,
  type HttpServerLimits,
} from './admin.js';
export {
  MAX_API_BODY,
  METRICS_CACHE_MS,
  RawBody,
  parseListLimit,
  queryParams,
  readBody,
  readEvidenceBody,
  readJsonObject,
  runningApis,
  servedRoutes,
  startJsonApi,
  type JsonApiContext,
  type JsonApiOptions,
  type JsonRoute,
} from './http.js';
export { BASE_STYLE, CLIENT_LIB, SVG_ANCHOR, explorerDocument, explorerResponse, type ExplorerDocument } from './explorer-ui.js';
export { P2PMetrics, registerCryptoBackendInfo, registerProcessMetrics, topicName } from './metrics.js';
export { implement, moduleRoutes, routeDefs, routePattern, type QueryNames, type RouteHandler, type RouteRequest, type RouteResult } from './routes.js';
