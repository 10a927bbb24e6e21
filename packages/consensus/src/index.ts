// @qnexus/consensus: a pure Tendermint-style BFT state machine driven by slots.
export * from './types.js';
export {
  epochSeed,
  assignCommittees,
  makeCommittee,
  isQuorum,
  exceedsOneThird,
  stakeOf,
  compareAddress,
  proposerForSlot,
  checkCommitCertificate,
} from './committee.js';
export type { CertificateCheck } from './committee.js';
export { ConsensusCore } from './core.js';
