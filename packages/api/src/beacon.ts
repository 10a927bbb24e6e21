import { Type } from '@sinclair/typebox';
import { Address, Amount, Hash, Int, Literals, Nat, Nullable, Obj, defineRoute } from './route.js';
import { ModuleRef } from './module.js';
import { BeaconValidator, CommitteeMember, CryptoBackend, EvidenceRequest, EvidenceResult, HeadRef, StakingTotals, XferDecision } from './schemas.js';

/** The beacon's routes (packages/beacon/src/api.ts implements them). */

export const XferCounts = Obj({
  total: Nat(),
  undecided: Nat('Not decided yet.'),
  committed: Nat(),
  aborted: Nat(),
  applied: Nat('Decided and applied on both shards.'),
});

export const BeaconStatus = Obj(
  {
    chainId: Type.String(),
    genesisHash: Hash(),
    version: Type.String(),
    role: Type.Literal('beacon'),
    peerId: Type.String(),
    peers: Nat(),
    slot: Int('The current slot (-1 before genesis time).'),
    epoch: Int(),
    processedSlot: Int('The newest slot whose tick (decisions, committee freezes, releases) is durable.'),
    slotLagMs: Nat('How late after its slot began that tick became durable.'),
    frozenThrough: Int('The newest epoch whose committees are frozen.'),
    xtransfers: XferCounts,
    cryptoBackend: CryptoBackend,
    heads: Type.Array(HeadRef, { description: "Each shard's newest certified block reported to the beacon." }),
    modules: Type.Array(ModuleRef, { description: "The app's modules on the beacon; every process of a chain runs the same." }),
  },
  { title: 'BeaconStatus' },
);

export const status = defineRoute({
  id: 'status',
  method: 'GET',
  path: '/v1/status',
  tag: 'beacon',
  summary: "The beacon's chain, slot, epoch, tick lag, transfer counts and shard heads",
  response: BeaconStatus,
});

export const BeaconValidators = Obj({ epoch: Int(), slot: Int(), validators: Type.Array(BeaconValidator), totals: StakingTotals }, { title: 'BeaconValidators' });

export const validators = defineRoute({
  id: 'validators',
  method: 'GET',
  path: '/v1/validators',
  tag: 'beacon',
  summary: 'The whole validator registry and the staking totals',
  response: BeaconValidators,
});

export const validator = defineRoute({
  id: 'validator',
  method: 'GET',
  path: '/v1/validators/{address}',
  tag: 'beacon',
  summary: 'One validator of the registry',
  params: { address: 'The validator address (qn…, any case).' },
  response: BeaconValidator,
  errors: ['BAD_REQUEST', 'VALIDATOR_UNKNOWN'],
});

export const supply = defineRoute({
  id: 'supply',
  method: 'GET',
  path: '/v1/supply',
  tag: 'beacon',
  summary: 'The staking totals: held = genesisStake + stakedIn + feesIn + minted − slashed − released',
  response: StakingTotals,
});

export const BeaconCommittees = Obj(
  {
    epoch: Nat(),
    startSlot: Nat(),
    seed: Hash(),
    committees: Type.Array(Obj({ shard: Nat(), members: Type.Array(CommitteeMember), totalStake: Amount() }), { description: 'Index = shard.' }),
  },
  { title: 'BeaconCommittees' },
);

export const committees = defineRoute({
  id: 'committees',
  method: 'GET',
  path: '/v1/committees',
  aliases: ['/v1/committee'],
  tag: 'beacon',
  summary: 'The frozen committees of one epoch (default: the current one)',
  query: { epoch: 'The epoch (a non-negative integer).' },
  looseQuery: true,
  response: BeaconCommittees,
  errors: ['BAD_REQUEST', 'EPOCH_UNKNOWN'],
});

export const submitEvidence = defineRoute({
  id: 'evidence',
  method: 'POST',
  path: '/v1/evidence',
  tag: 'beacon',
  summary: 'Submit equivocation evidence: the beacon slashes and ejects the validator',
  body: { json: EvidenceRequest },
  response: EvidenceResult,
  errors: ['BAD_REQUEST', 'UNKNOWN_FIELD', 'UNSUPPORTED_MEDIA_TYPE', 'MALFORMED', 'EVIDENCE_INVALID', 'EPOCH_UNKNOWN'],
});

export const BeaconXferPhase = Obj({
  phase: Type.String({ description: 'The shard phases (source-prepared, destination-prepared|refused, source-applied, destination-applied) and the beacon\'s own decided.' }),
  shard: Type.Optional(Nat()),
  height: Type.Optional(Nat()),
  slot: Type.Optional(Int('On decided: the slot the decision was logged in.')),
  decision: Type.Optional(XferDecision),
  reason: Type.Optional(Type.String()),
});

export const BeaconXTransfer = Obj(
  {
    id: Hash(),
    kind: Type.String(),
    from: Address(),
    to: Address(),
    amount: Amount(),
    sourceShard: Nat(),
    destinationShard: Nat(),
    deadlineSlot: Int(),
    status: Literals(['preparing', 'committed', 'aborted']),
    decision: Nullable(XferDecision),
    outcomeFinal: Type.Boolean({ description: 'A decision is logged: it is final (the deadline rule), though shards may not have applied it yet.' }),
    done: Type.Boolean({ description: 'Both shards have applied the decision.' }),
    phases: Type.Array(BeaconXferPhase),
  },
  { title: 'BeaconXTransfer' },
);

export const xtransfer = defineRoute({
  id: 'xtransfer',
  method: 'GET',
  path: '/v1/xtransfers/{id}',
  tag: 'beacon',
  summary: "The coordinator's record of a cross-shard transfer",
  params: { id: "The transfer id: the source transaction's hash." },
  response: BeaconXTransfer,
  errors: ['BAD_REQUEST', 'XS_UNKNOWN_TRANSFER'],
});

export const BeaconXTransferList = Obj({ xtransfers: Type.Array(BeaconXTransfer) }, { title: 'BeaconXTransferList' });

export const xtransfers = defineRoute({
  id: 'xtransfers',
  method: 'GET',
  path: '/v1/xtransfers',
  tag: 'beacon',
  summary: 'The most recent cross-shard transfers, newest first',
  query: { limit: 'How many: 1..500, default 50.' },
  looseQuery: true,
  response: BeaconXTransferList,
  errors: ['BAD_REQUEST'],
});

export const Flow = Obj({
  sourceShard: Nat(),
  destinationShard: Nat(),
  transfers: Nat(),
  committed: Nat(),
  aborted: Nat(),
  preparing: Nat(),
  amount: Amount('Sum of the committed transfers\' amounts.'),
});

export const Network = Obj(
  {
    chainId: Type.String(),
    shardCount: Nat(),
    beaconShard: Nat(),
    slotMs: Nat(),
    genesisTime: Nat(),
    now: Nat(),
    slot: Int(),
    epoch: Int(),
    shards: Type.Array(
      Obj({ shard: Nat(), height: Nullable(Nat()), slot: Nullable(Int()), round: Nullable(Int()), blockHash: Nullable(Hash()), lagSlots: Nullable(Nat()), lagMs: Nullable(Nat()) }),
    ),
    xtransfers: XferCounts,
    flowWindow: Nat('How many of the newest transfers the flows sum.'),
    flows: Type.Array(Flow),
  },
  { title: 'Network' },
);

export const network = defineRoute({
  id: 'network',
  method: 'GET',
  path: '/v1/network',
  tag: 'beacon',
  summary: "Every shard's newest certified head and its lag, and the cross-shard flows (the network page's data)",
  query: {},
  response: Network,
  errors: ['BAD_REQUEST'],
});

export const explorer = defineRoute({
  id: 'explorer',
  method: 'GET',
  path: '/explorer',
  tag: 'explorer',
  summary: 'The network page (HTML); it polls /v1/network',
  contentType: 'text/html',
  response: Type.String(),
});

/** Every route of the beacon's API beyond the front's own (`/metrics`, `/v1/openapi.json`, `/v1/admin/…`). */
export const beaconRoutes = {
  explorer,
  network,
  status,
  validators,
  validator,
  supply,
  committees,
  submitEvidence,
  xtransfers,
  xtransfer,
} as const;
