// @qnexus/beacon: validator registry, epoch announcements and the cross-shard 2PC coordinator.
export { startBeacon } from './beacon.js';
export type { BeaconConfig, BeaconInfo, RunningBeacon } from './beacon.js';
export { Coordinator, isDone, entryStatus, DEADLINE_REASON } from './coordinator.js';
export type { CoordinatorAction, CoordinatorOptions, Outcome, Phase, SystemTxSigner, XferCounts, XferEntry } from './coordinator.js';
export { BeaconStore, encodeEntry, decodeEntry } from './store.js';
export { beaconTxSigner } from './system.js';
export { xferJson, API_VERSION } from './api.js';
export type { LogFormat, LogLevel } from '@qnexus/node';
