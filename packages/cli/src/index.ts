export {
  startDevnet,
  prepareDevnet,
  planDevnet,
  devnetNodeName,
  devnetAccountKeyFile,
  fillShards,
  portFree,
  DEVNET_DEFAULTS,
  API_PORT_OFFSET,
  MAX_DEVNET_SHARDS,
} from './devnet.js';
export type {
  Devnet,
  DevnetOptions,
  DevnetManifest,
  DevnetProcess,
  DevnetAccount,
  DevnetEvent,
  DevnetNodePlan,
  DevnetRole,
  DevnetProcessState,
  ExitInfo,
} from './devnet.js';
export { buildProgram, run } from './program.js';
export { CliError, EXIT, formatError } from './errors.js';
export { buildGenesis, genesisFileText, genesisHashHex, loadGenesisFile, parseAccountSpec, parseValidatorSpec, DEFAULT_VALIDATOR_STAKE } from './genesis.js';
export type { GenesisParams, ValidatorSpec } from './genesis.js';
export { createKeystoreFile, readKeystoreFile, unlockKeystoreFile } from './keystore.js';
