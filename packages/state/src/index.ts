/**
 * The host of the application layer: one authenticated key-value state
 * (store.ts), the module contract (module.ts), the runner that executes
 * blocks through the modules an app lists (host.ts), and the built-in modules
 * bank and xfer. Pure: no clock, no I/O besides the synchronous reads of
 * the storage it is handed, no signature checks (the node
 * verifies each signature once, at admission, and remembers the result).
 */
export * from './ids.js';
export * from './evidence.js';
export * from './epochs.js';
export * from './certificate.js';
export {
  Branch,
  DEFAULT_VALUE_CACHE_BYTES,
  MAX_RANGE,
  MemoryStorage,
  ModuleStore,
  TrieState,
  moduleKey,
  type KVReader,
  type KeyHex,
  type StateCommitment,
  type StateOptions,
  type StateStorage,
  type StateUpdate,
  type Writes,
} from './store.js';
export * from './trie.js';
export { EMPTY_ROOT } from './trie-node.js';
export { ExecCtx, MODULE_IDS, stateParams, type BlockContext, type StateParams } from './ctx.js';
export * from './module.js';
export { StateMachine, type BankKeeper, type BlockTxFailure, type HostKeepers, type TxFailure } from './host.js';
export { StateView, WorldState, changesOf, verifyXferProof, type Account, type BlockExecution, type DenomTotals, type StateChanges } from './world.js';
export { sendMsg, bankAccountKeys, BANK_KIND, BANK_MSG, BANK_XFER_OP, FEE_COLLECTOR, MAX_DENOM_BYTES, NATIVE_DENOM, bank, denomKeeper, moduleAccount, ownsDenom, type DenomKeeper, type AuthRecord, type DenomSupply, type SendMsg } from './modules/bank/index.js';
export { XFER_RECORD_PREFIX, xfer, xferKeeperOf, xferRecordKey, type XferCounters, type XferKeeper, type XferOpLookup } from './modules/xfer/index.js';

/** Split of a fee: `burn = fee × feeBurnBps / 10000` (floor) is burned, the rest is the proposer's tip. */
export function splitFee(fee: bigint, feeBurnBps: number): { burn: bigint; tip: bigint } {
  const burn = (fee * BigInt(feeBurnBps)) / 10_000n;
  return { burn, tip: fee - burn };
}
export { payoutId, payouts, type Payouts } from './xcall.js';
