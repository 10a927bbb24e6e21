import { Type, type Static } from '@sinclair/typebox';
import { Address, Amount, Hash, Hex, Int, Literals, Nat, Nullable, Obj } from './route.js';

/** Response shapes shared by the node's and the beacon's routes. Hex is lowercase without 0x; amounts are decimal strings. */

export const CryptoBackend = Literals(['noble', 'pqclean'], 'The ML-DSA implementation the process verifies and signs with (--crypto-backend).');
export const ValidatorStatus = Literals(['pending', 'active', 'exiting', 'exited', 'slashed', 'withdrawn']);
export const XferDecision = Literals(['commit', 'abort']);

export const Participation = Obj({ epoch: Nullable(Nat()), signed: Nat(), blocks: Nat(), rate: Nullable(Type.Number({ minimum: 0, maximum: 1 })) });
export const Lifetime = Obj({ signed: Nat(), blocks: Nat(), rate: Nullable(Type.Number({ minimum: 0, maximum: 1 })) });

/** The beacon registry's view of a validator (ValidatorInfoJson of @qnexus/types). */
const validatorFields = {
  address: Address(),
  home: Address('The account that funds the validator and receives its rewards and released stake.'),
  stake: Amount(),
  status: ValidatorStatus,
  shard: Nullable(Nat('The shard whose committee it serves this epoch (null: none).')),
  activationEpoch: Nullable(Nat()),
  exitEpoch: Nullable(Nat()),
  withdrawableEpoch: Nullable(Nat()),
  rewards: Amount(),
  slashed: Amount(),
  participation: Participation,
  lifetime: Lifetime,
};

/** A validator as the beacon's `/v1/validators` lists it: its registry entry, public key and the libp2p peer it announced. */
export const BeaconValidator = Obj({ ...validatorFields, publicKey: Hex(), peerId: Nullable(Type.String()) }, { title: 'BeaconValidator' });

/**
 * A validator as a shard node's `/v1/validators` lists it: the registry entry of the beacon's latest
 * verified snapshot, or before one arrived what the committees say (the registry-only fields null).
 */
export const NodeValidator = Obj(
  {
    ...validatorFields,
    home: Nullable(validatorFields.home),
    activationEpoch: Nullable(Nat()),
    rewards: Nullable(Amount()),
    slashed: Nullable(Amount()),
    participation: Nullable(Participation),
    lifetime: Nullable(Lifetime),
    publicKey: Nullable(Hex(undefined, 'Known when the epoch book holds a committee it is in.')),
  },
  { title: 'NodeValidator' },
);

/** The beacon's staking ledger: held = genesisStake + stakedIn + feesIn + minted − slashed − released. */
export const StakingTotals = Obj(
  { genesisStake: Amount(), stakedIn: Amount(), feesIn: Amount(), minted: Amount(), slashed: Amount(), released: Amount(), held: Amount() },
  { title: 'StakingTotals' },
);

/** `POST /v1/evidence` (node or beacon): the beacon's verdict. */
export const EvidenceResult = Obj(
  {
    result: Type.String({ description: '"slashed" or "duplicate" (resubmitting is harmless).' }),
    validator: Address(),
    slashed: Nullable(Amount('Amount slashed by this evidence ("0" for a duplicate).')),
  },
  { title: 'EvidenceResult' },
);

/** The JSON body of `POST /v1/evidence`. */
export const EvidenceRequest = Obj({ evidence: Type.String({ description: 'Hex (0x optional) of the canonical VoteEvidence encoding: two conflicting signed votes.' }) });

export const CommitteeMember = Obj({ address: Address(), publicKey: Hex(), stake: Amount() });
export const NodeCommitteeMember = Obj({ address: Address(), publicKey: Nullable(Hex()), stake: Amount() });

export const HeadRef = Obj({ shard: Nat(), height: Nat(), blockHash: Hash(), slot: Nat(), round: Int() });

export type CryptoBackendName = Static<typeof CryptoBackend>;
