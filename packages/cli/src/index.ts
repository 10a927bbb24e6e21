export {
  startDevnet,
  prepareDevnet,
  planDevnet,
  devnetNodeName,
  devnetAccountKeyFile,
  devnetBeaconPorts,
  assignDevnetValidators,
  fillShards,
  portFree,
  DEVNET_DEFAULTS,
  API_PORT_OFFSET,
  BEACON_INDEX,
  BEACON_NAME,
  MAX_DEVNET_NODES,
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
  DevnetNodeRole,
  DevnetProcessState,
  ExitInfo,
} from './devnet.js';
export { buildProgram, run } from './program.js';
export { CliError, EXIT, formatError } from './errors.js';
export {
  buildGenesis,
  genesisCommittees,
  assignedShard,
  genesisFileText,
  genesisHashHex,
  loadGenesisFile,
  parseAccountSpec,
  parsePeerId,
  parseValidatorSpec,
  DEFAULT_VALIDATOR_STAKE,
  DEFAULT_XFER_TIMEOUT_SLOTS,
} from './genesis.js';
export type { BeaconSpec, GenesisParams, ValidatorSpec } from './genesis.js';
export { createKeystoreFile, readKeystoreFile, unlockKeystoreFile } from './keystore.js';
