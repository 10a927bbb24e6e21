export { startNode } from './node.js';
export type { NodeConfig, NodeInfo, RunningNode, LogFormat, LogLevel } from './config.js';
export { topics } from './topics.js';
// Shared with the beacon process: the same structured log format everywhere.
export { Logger, type LogFields } from './log.js';
export { Shutdown, serverUrl, writeInfoFile } from './process.js';
