// @qnexus/runtime: the process plumbing shared by the shard node and the beacon (logging, lifecycle and
// shutdown, the JSON HTTP front, admin guard, rate limit, process metrics), so neither process depends on the other.
export {};
