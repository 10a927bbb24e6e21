/**
 * The HTTP APIs' per-client rate limit (shard node and beacon): the token buckets of
 * `@qnexus/p2p` (which also budget what peers may ask of the stream protocols), keyed by
 * the client's IP address, with the API's defaults.
 */
export { RateLimiter, type RateDecision, type RateLimitOptions } from '@qnexus/p2p';

/**
 * Defaults, in tokens per client IP (a request takes `requestCost` tokens, see admin.ts).
 * Measured with keep-alive clients against one validator on a 2-core machine: it answers
 * ≈ 4,500–8,000 `GET /v1/status`, ≈ 2,000–3,200 `GET /v1/blocks/latest` (an empty block; ≈ 400
 * with 49 transactions), ≈ 150 block lists of 20 and ≈ 950 admitted `POST /v1/txs` a second
 * with the machine to itself, a third or less of that on a loaded one. 500 tokens/s lets one
 * address take ≈ 10 % of a node's reads or 125 submissions a second, so it takes many addresses
 * to saturate a node. The burst covers the e2e tests' polling (≈ 300 requests in a second to
 * one node from 127.0.0.1); `npm run bench`, one address standing in for every wallet, lifts it.
 */
export const DEFAULT_API_RATE_LIMIT = 500;
export const DEFAULT_API_RATE_BURST = 1000;
/** Tokens a `POST /v1/txs` takes: an ML-DSA verification, the mempool's checks, gossip. */
export const SUBMIT_REQUEST_COST = 4;
/** Tokens a `POST /v1/evidence` takes: two verifications and a message to the beacon. */
export const EVIDENCE_REQUEST_COST = 8;
/** Tokens a `GET /v1/blocks…` takes: a database read and a block with its certificate. */
export const BLOCK_REQUEST_COST = 2;
/**
 * `/metrics` per client IP, a bucket of its own: Prometheus scrapes every few seconds (and the
 * server renders at most once per METRICS_CACHE_MS whatever the scrapes), so this only refuses
 * floods of a text of tens of kilobytes.
 */
export const METRICS_RATE_LIMIT = 10;
export const METRICS_RATE_BURST = 20;
