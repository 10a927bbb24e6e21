/**
 * The HTTP APIs' per-client rate limit (shard node and beacon): the token buckets of
 * `@qnexus/p2p` (which also budget what peers may ask of the stream protocols), keyed by
 * the client's IP address, with the API's defaults.
 */
export { RateLimiter, type RateDecision, type RateLimitOptions } from '@qnexus/p2p';

/**
 * Defaults: far above what one honest client needs (the e2e tests and
 * `npm run bench` submit a few hundred transactions a second from 127.0.0.1 to
 * each node), low enough that a single client cannot monopolise the event loop.
 */
export const DEFAULT_API_RATE_LIMIT = 2000;
export const DEFAULT_API_RATE_BURST = 4000;
