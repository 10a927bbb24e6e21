export { startNode } from './node.js';
export type { NodeConfig, NodeInfo, RunningNode, LogFormat, LogLevel } from './config.js';
export { topics } from './topics.js';
