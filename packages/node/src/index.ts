export { startNode } from './node.js';
export type { NodeConfig, NodeInfo, RunningNode } from './config.js';
export { DEFAULT_EMPTY_BLOCK_INTERVAL, DEFAULT_STATE_CACHE_MB, defaultVerifyWorkers } from './config.js';
export { DEFAULT_VERIFY_CACHE_SIZE } from './verifier.js';
