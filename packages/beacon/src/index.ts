// @qnexus/beacon: the staking registry, epoch announcements and registry snapshots, and the 2PC coordinator.
export { startBeacon } from './beacon.js';
export type { BeaconConfig, BeaconInfo, RunningBeacon } from './beacon.js';
export { Coordinator, isDone, entryStatus, DEADLINE_REASON } from './coordinator.js';
export type { BeaconParticipant, CoordinatorAction, CoordinatorOptions, Outcome, Phase, SystemTxSigner, XferCounts, XferEntry } from './coordinator.js';
export { Registry, freezeLead, frozenFromAnnouncement, validatorInfo } from './registry.js';
export type {
  EvidenceResult,
  FrozenEpoch,
  FrozenShard,
  MemberInfo,
  ParticipationBucket,
  RegistryChanges,
  RegistryMeta,
  RegistryState,
  SlotEffects,
  ValidatorRecord,
} from './registry.js';
export { BeaconStore, encodeEntry, decodeEntry, encodeValidatorRecord, decodeValidatorRecord } from './store.js';
export type { RegistryWrite } from './store.js';
export { ActionRunner, MAX_BEACON_GOSSIP_BYTES } from './service.js';
export { beaconTxSigner } from './system.js';
export { xferJson, API_VERSION } from './api.js';
