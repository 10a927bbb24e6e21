import { Type } from '@sinclair/typebox';
import { Address, Amount, Hash, Hex, Int, Literals, Nat, Nullable, Obj, defineRoute } from './route.js';
import { ModuleRef } from './module.js';
import { PROOF_QUERY, StateProof } from './proof.js';
import { CryptoBackend, EvidenceRequest, EvidenceResult, NodeCommitteeMember, NodeValidator, StakingTotals, XferDecision } from './schemas.js';

/**
 * The shard node's routes (packages/node/src/api.ts implements them). Each definition is the
 * single source of its path, parameters and answer: the node's handler must return
 * `Static<typeof def.response>`, the SDK's types are the same `Static`s, and the OpenAPI
 * document is generated from these values.
 */

const LIMIT = 'How many (a plain decimal integer within the route\'s bound; BAD_REQUEST otherwise).';

// ---------------------------------------------------------------- status

export const BeaconLink = Obj(
  {
    peerId: Type.String(),
    connected: Type.Boolean({ description: 'A p2p connection to the beacon is open (it may still be hung: see reachable).' }),
    reachable: Type.Boolean({ description: 'A beacon-signed registry snapshot arrived within the last 12 slots (or the node has not waited that long yet).' }),
    lastSnapshotSlot: Nullable(Nat()),
    lastHeardAt: Nullable(Type.String({ description: 'ISO time of the newest snapshot\'s slot; null: none since the node started.' })),
    silentMs: Nullable(Nat()),
    committeeKnown: Type.Boolean({ description: 'The committees of the current epoch are known here.' }),
    committeesKnownThrough: Int('The newest epoch whose committees this node knows.'),
    finalizesThroughSlot: Int('The last slot the known committees cover: past it, blocks wait for the beacon\'s next announcement.'),
  },
  { title: 'BeaconLink', description: "The node's link to the beacon: with it unreachable the shard finalizes through committeesKnownThrough, then stops." },
);

export const NodeStatus = Obj(
  {
    chainId: Type.String(),
    shard: Nat(),
    genesisHash: Hash(),
    version: Type.String(),
    role: Literals(['validator', 'full']),
    validator: Nullable(Address('The validator address this node signs with; null on a full node.')),
    peerId: Type.String(),
    peers: Nat('Connected peers.'),
    height: Nat('The finalized head, plus one while a block is included but not final yet.'),
    finalizedHeight: Nat(),
    networkHeight: Nat('The highest height this node has heard of from its peers (or its own head).'),
    round: Int(),
    step: Literals(['newHeight', 'propose', 'prevote', 'precommit']),
    epoch: Int('The current epoch by the wall clock.'),
    committee: Nullable(
      Obj(
        { inCommittee: Type.Boolean(), assignedShard: Nullable(Nat()) },
        { description: "For a validator: whether it is in this shard's committee this epoch, and which shard's it is in (another shard: restart with that --shard)." },
      ),
    ),
    mempoolSize: Nat(),
    syncing: Type.Boolean(),
    eventLoopLagMs: Nat('Event-loop lag as the load monitor measures it.'),
    overloaded: Type.Boolean({ description: 'The node sheds submissions (NODE_BUSY) while true.' }),
    stateRoot: Hash('State root of the finalized head.'),
    cryptoBackend: CryptoBackend,
    beacon: BeaconLink,
    modules: Type.Array(ModuleRef, { description: "The app's modules on this process (built-ins first, then the app's and any loaded with --module); every process of a chain runs the same." }),
  },
  { title: 'NodeStatus' },
);

export const status = defineRoute({
  id: 'status',
  method: 'GET',
  path: '/v1/status',
  tag: 'node',
  summary: "The node's chain, shard, role, heads, consensus position, load and beacon link",
  response: NodeStatus,
});

// ---------------------------------------------------------------- blocks and transactions

export const CertificateVote = Obj({ validator: Address(), signature: Hex() });
export const Certificate = Obj({ round: Int(), blockHash: Hash(), votes: Type.Array(CertificateVote) }, { title: 'Certificate' });

export const Block = Obj(
  {
    hash: Hash(),
    height: Nat(),
    slot: Int(),
    shard: Nat(),
    chainId: Type.String(),
    parentHash: Hash(),
    stateRoot: Hash(),
    txRoot: Hash(),
    proposer: Nullable(Address('null for block 0 (genesis).')),
    txCount: Nat(),
    txs: Type.Array(Hash(), { description: 'Transaction hashes in execution order.' }),
    certificate: Nullable(Certificate),
  },
  { title: 'Block' },
);

export const block = defineRoute({
  id: 'block',
  method: 'GET',
  path: '/v1/blocks/{id}',
  tag: 'node',
  summary: 'A finalized block with its finality certificate',
  params: { id: 'A height, a 32-byte hex block hash, or "latest".' },
  response: Block,
  errors: ['BAD_REQUEST', 'NOT_FOUND'],
});

export const BlockSummary = Obj({
  height: Nat(),
  hash: Hash(),
  slot: Int(),
  proposer: Nullable(Address()),
  txCount: Nat(),
  finalized: Type.Boolean({ description: 'Always true: a node stores a block only with its finality certificate.' }),
  round: Nullable(Int()),
  signers: Nat(),
});
export const BlockList = Obj({ shard: Nat(), headHeight: Nat(), blocks: Type.Array(BlockSummary) }, { title: 'BlockList' });

export const blocks = defineRoute({
  id: 'blocks',
  method: 'GET',
  path: '/v1/blocks',
  tag: 'node',
  summary: "This shard's newest blocks, newest first",
  query: { limit: `${LIMIT} 1..100, default 20.` },
  response: BlockList,
  errors: ['BAD_REQUEST'],
});

/**
 * A transaction as the node shows it. Every kind has hash, kind, fee, nonce, raw (the exact wire
 * bytes), from, to and amount; stake and unstake add the validator; beacon entries add the
 * transfer they act on (and a decision: its outcome).
 */
/**
 * A transaction's fields: the envelope's (hash, kind = the message's name, fee, nonce, raw, the
 * sender), then its message's, which its module defines (`MsgDef.json`). The built-in modules'
 * are listed; another module's fields are allowed (the object is open beyond these), so a module
 * needs no change here.
 */
const txFields = {
  hash: Hash(),
  kind: Type.String({ description: "The message's name (its module defines the fields that follow)." }),
  fee: Amount(),
  nonce: Amount(),
  raw: Hex(undefined, 'The exact wire encoding: anyone can re-verify or relay it.'),
  from: Address(),
  to: Type.Optional(Address()),
  amount: Type.Optional(Amount()),
  denom: Type.Optional(Type.String({ description: 'bank: the denomination moved, when not the native one.' })),
  validator: Type.Optional(Address()),
  validatorPublicKey: Type.Optional(Hex()),
  transfer: Type.Optional(Hash('Beacon entries: the id of the cross-shard transfer they act on.')),
  transferKind: Type.Optional(Type.String()),
  decision: Type.Optional(XferDecision),
};

export const TxStatus = Literals(['pending', 'included', 'final', 'rejected']);
export const ErrorInfo = Obj({ code: Type.String(), message: Type.String() });
export const TxBlockRef = Obj({ height: Nat(), hash: Hash(), index: Nat() });

export const Tx = Obj(
  {
    ...txFields,
    status: TxStatus,
    block: Nullable(TxBlockRef),
    // For `rejected`: why it was refused. For `final`: set when its message was refused in its
    // block (a deadline passed, slippage…): the fee was paid and the nonce used, nothing else happened.
    error: Nullable(ErrorInfo),
  },
  { title: 'Tx', additionalProperties: true },
);

export const tx = defineRoute({
  id: 'tx',
  method: 'GET',
  path: '/v1/txs/{hash}',
  tag: 'node',
  summary: 'A transaction by hash: final (with its block), included, pending or rejected (with why)',
  params: { hash: 'The transaction hash (32 bytes of hex).' },
  response: Tx,
  errors: ['BAD_REQUEST', 'TX_UNKNOWN'],
});

export const SubmitRequest = Obj({ tx: Type.String({ description: 'Hex (0x optional) of the signed transaction\'s wire encoding.' }) });
export const SubmitResult = Obj({ hash: Hash(), status: Type.Literal('pending') }, { title: 'SubmitResult' });

export const submit = defineRoute({
  id: 'submit',
  method: 'POST',
  path: '/v1/txs',
  tag: 'node',
  summary: 'Submit a signed transaction; 202 once it is admitted and on disk',
  description: 'A 202 is a promise: the admission is journaled before the answer. Resubmitting the same bytes is safe (202 again). 503 NODE_BUSY / MEMPOOL_FULL carry Retry-After.',
  body: { json: SubmitRequest, octetStream: 'The transaction\'s wire encoding as is.' },
  status: 202,
  response: SubmitResult,
  errors: ['BAD_REQUEST', 'UNKNOWN_FIELD', 'UNSUPPORTED_MEDIA_TYPE', 'PAYLOAD_TOO_LARGE', 'TX_MALFORMED', 'TX_TOO_LARGE', 'NODE_BUSY', 'MEMPOOL_FULL'],
});

export const FaucetResult = Obj(
  {
    hash: Hex(32, 'The drip request transaction (signed by a throwaway key of this shard; the faucet pays it, fee 0).'),
    status: Type.Literal('pending'),
    to: Address(),
    shard: Nat('The shard of the node that took the request (its faucet request travels to the faucet through the 2PC path when the faucet lives elsewhere).'),
  },
  { title: 'FaucetResult' },
);

export const faucet = defineRoute({
  id: 'faucet',
  method: 'POST',
  path: '/v1/faucet/{address}',
  tag: 'node',
  summary: "Ask the devnet's faucet for coins for an address (of any shard); 202 once the request is admitted",
  description:
    "The node signs a feeless faucet-drip request with a throwaway key of its own shard and admits it like any transaction; the faucet module enforces its limits (per-address cooldown and lifetime cap, per-block and per-epoch budgets: FAUCET_* codes), and this route allows one request per client IP every few seconds and a few a second per node (RATE_LIMITED). Follow the drip with GET /v1/txs/{hash}, or `qnexus faucet <address> --wait`.",
  params: { address: 'qn followed by 40 lowercase hex digits: the address to fund (any shard).' },
  status: 202,
  response: FaucetResult,
  errors: ['BAD_REQUEST', 'RATE_LIMITED', 'NODE_BUSY', 'MEMPOOL_FULL', 'TX_UNKNOWN_KIND'],
});

// ---------------------------------------------------------------- accounts

export { PROOF_QUERY, StateProof, StateProofEntry } from './proof.js';

export const Account = Obj(
  {
    address: Address(),
    shard: Nat('The shard of the node that answered.'),
    homeShard: Nat('The only shard that holds the account.'),
    balance: Amount(),
    nonce: Amount('The next nonce by finalized state.'),
    pendingNonce: Amount("The next nonce counting this node's pending transactions: use it for a new transaction."),
    publicKey: Nullable(Hex(undefined, 'Known once the account has sent a transaction.')),
    balances: Type.Optional(
      Type.Array(Obj({ denom: Type.String(), amount: Amount() }), {
        description: 'Every denom the account holds, in denom order (without ?proof=true; not proven: GET /v1/bank/balance/{address}/{denom}?proof=true proves one).',
      }),
    ),
    proof: Type.Optional(StateProof),
  },
  { title: 'Account' },
);

export const account = defineRoute({
  id: 'account',
  method: 'GET',
  path: '/v1/accounts/{address}',
  tag: 'node',
  summary: 'An account of this shard: balance, nonces, public key; with ?proof=true, proven at a finalized height',
  description:
    'A node of another shard answers ACCOUNT_WRONG_SHARD with details homeShard and shard. With proof=true the balance, nonce and public key are read at one finalized height and proven (its bank keys: the account record, the key, the native balance); pendingNonce is this node\'s mempool view and is not proven.',
  params: { address: 'qn followed by 40 lowercase hex digits.' },
  query: PROOF_QUERY,
  looseQuery: true,
  response: Account,
  errors: ['BAD_REQUEST', 'ACCOUNT_WRONG_SHARD', 'STATE_PRUNED', 'NOT_FOUND', 'UNAVAILABLE'],
});

// ---------------------------------------------------------------- validators and committees

export const NodeValidators = Obj(
  {
    epoch: Int(),
    slot: Int(),
    source: Literals(['beacon-snapshot', 'committee'], 'beacon-snapshot: the registry of the latest snapshot the beacon signed; committee: none arrived yet.'),
    validators: Type.Array(NodeValidator),
    totals: Nullable(StakingTotals),
    committee: Type.Array(Obj({ address: Address(), stake: Amount() }), { description: "This shard's committee in the current epoch." }),
  },
  { title: 'NodeValidators' },
);

export const validators = defineRoute({
  id: 'validators',
  method: 'GET',
  path: '/v1/validators',
  tag: 'node',
  summary: "The beacon's validator registry as of its latest verified snapshot (before one: the current committees)",
  response: NodeValidators,
});

export const validator = defineRoute({
  id: 'validator',
  method: 'GET',
  path: '/v1/validators/{address}',
  tag: 'node',
  summary: 'One validator of the registry snapshot (or of the current committees)',
  params: { address: 'The validator address (qn…).' },
  response: NodeValidator,
  errors: ['BAD_REQUEST', 'VALIDATOR_UNKNOWN'],
});

export const NodeCommittees = Obj(
  {
    epoch: Nat(),
    startSlot: Nat(),
    seed: Hash(),
    shard: Nat(),
    members: Type.Array(NodeCommitteeMember, { description: "This node's shard's committee." }),
    totalStake: Amount(),
    shards: Type.Array(Obj({ shard: Nat(), members: Type.Array(NodeCommitteeMember), totalStake: Amount() })),
    source: Literals(['genesis', 'beacon'], 'Epoch 0 is the genesis assignment; later ones come from the beacon\'s signed announcement.'),
    announcement: Nullable(
      Obj({
        epoch: Nat(),
        startSlot: Nat(),
        issuedSlot: Int(),
        signature: Hex(),
        verified: Type.Literal(true),
        raw: Hex(undefined, "The signed announcement's exact encoding: a light client checks it with the genesis beacon key itself."),
      }),
    ),
  },
  { title: 'NodeCommittees' },
);

export const committees = defineRoute({
  id: 'committees',
  method: 'GET',
  path: '/v1/committees',
  aliases: ['/v1/committee'],
  tag: 'node',
  summary: "The committees of one epoch (default: the current one) as this node's epoch book holds them",
  query: { epoch: 'The epoch (a non-negative integer).' },
  looseQuery: true,
  response: NodeCommittees,
  errors: ['BAD_REQUEST', 'EPOCH_UNKNOWN'],
});

// ---------------------------------------------------------------- cross-shard transfers

export const XferPhase = Obj({
  phase: Type.String({ description: 'source-prepared, source-applied, destination-prepared, destination-refused or destination-applied.' }),
  shard: Nat(),
  height: Nat(),
  decision: Type.Optional(XferDecision),
  reason: Type.Optional(Type.String({ description: 'Why the destination refused (an error code such as XS_DEADLINE_PASSED).' })),
});

export const XTransfer = Obj(
  {
    id: Hash('The source transaction\'s hash.'),
    kind: Type.String({ description: 'transfer, stake, unstake, fees or release.' }),
    from: Address(),
    to: Address(),
    amount: Amount(),
    sourceShard: Nat(),
    destinationShard: Nat('65535 (BEACON_SHARD): the beacon.'),
    deadlineSlot: Nullable(Int('The destination prepares only in a block of a slot up to this one. Null while pending.')),
    role: Literals(['source', 'destination']),
    status: Literals(['pending', 'escrowed', 'prepared', 'refused', 'committed', 'aborted']),
    decision: Nullable(XferDecision),
    outcome: Nullable(XferDecision),
    phases: Type.Array(XferPhase),
  },
  { title: 'XTransfer' },
);

export const xtransfer = defineRoute({
  id: 'xtransfer',
  method: 'GET',
  path: '/v1/xtransfers/{id}',
  tag: 'node',
  summary: "This shard's record of a cross-shard transfer (source or destination side)",
  params: { id: "The transfer id: the source transaction's hash." },
  response: XTransfer,
  errors: ['BAD_REQUEST', 'XS_UNKNOWN_TRANSFER'],
});

export const XTransferList = Obj({ shard: Nat(), xtransfers: Type.Array(XTransfer) }, { title: 'XTransferList' });

export const xtransfers = defineRoute({
  id: 'xtransfers',
  method: 'GET',
  path: '/v1/xtransfers',
  tag: 'node',
  summary: "This shard's newest transfer records (every kind), newest first, with their phases",
  query: { limit: `${LIMIT} 1..100, default 20.` },
  response: XTransferList,
  errors: ['BAD_REQUEST'],
});

// ---------------------------------------------------------------- supply, shards, evidence

/** One denomination's supply (the per-denom identity of the module layer); absent until the bank module reports it. */
export const DenomSupply = Obj(
  {
    denom: Type.String(),
    supply: Amount('genesis + minted: what the identity must add up to.'),
    genesis: Amount(),
    minted: Amount(),
    balances: Amount('Σ balances, module accounts included.'),
    burned: Amount(),
    escrow: Amount(),
    exported: Amount(),
    imported: Amount(),
  },
  { additionalProperties: true, description: 'balances + burned + escrow + exported − imported = genesis + minted, on this shard.' },
);

export const Supply = Obj(
  {
    shard: Nat(),
    height: Nat('The head height the figures are taken at.'),
    genesisSupply: Amount("Genesis balance of this shard's home accounts."),
    balances: Amount('Σ account balances.'),
    burned: Amount(),
    fees: Amount("Proposers' tips not yet sent to the beacon."),
    modules: Type.Optional(Amount('Native coins held by module accounts other than fees (the faucet, AMM pools, DEX markets).')),
    escrow: Amount('Held by outgoing transfers not decided yet.'),
    exported: Amount(),
    imported: Amount(),
    total: Amount('balances + burned + fees + modules + escrow + exported − imported; equals genesisSupply.'),
    accounts: Nat(),
    denoms: Type.Optional(Type.Array(DenomSupply, { description: 'One entry per denomination (the native one included).' })),
  },
  { title: 'Supply' },
);

export const supply = defineRoute({
  id: 'supply',
  method: 'GET',
  path: '/v1/supply',
  tag: 'node',
  summary: "The shard's supply identity, checkable by anyone at every height",
  response: Supply,
});

export const ShardHead = Obj({
  shard: Nat(),
  height: Nullable(Nat()),
  finalizedHeight: Nullable(Nat()),
  blockHash: Nullable(Hash()),
  slot: Nullable(Int()),
  round: Nullable(Int()),
  source: Literals(['local', 'beacon-snapshot', 'unknown']),
});
export const Shards = Obj({ shard: Nat(), shardCount: Nat(), slot: Nat(), epoch: Int(), snapshotSlot: Nullable(Int()), shards: Type.Array(ShardHead) }, { title: 'Shards' });

export const shards = defineRoute({
  id: 'shards',
  method: 'GET',
  path: '/v1/shards',
  tag: 'node',
  summary: "Every shard's head: this one from its chain, the others as the beacon's latest signed snapshot reports them",
  query: {},
  response: Shards,
  errors: ['BAD_REQUEST'],
});

export const EvidenceList = Obj(
  { evidence: Type.Array(Obj({ validator: Address(), height: Nat(), round: Int(), step: Type.String(), evidence: Hex(undefined, 'The canonical VoteEvidence encoding.') })) },
  { title: 'EvidenceList' },
);

export const evidence = defineRoute({
  id: 'evidence',
  method: 'GET',
  path: '/v1/evidence',
  tag: 'node',
  summary: 'Equivocation evidence this node has observed',
  response: EvidenceList,
});

export const submitEvidence = defineRoute({
  id: 'submit-evidence',
  method: 'POST',
  path: '/v1/evidence',
  tag: 'node',
  summary: 'Submit equivocation evidence: verified here in full, then relayed to the beacon',
  body: { json: EvidenceRequest },
  response: EvidenceResult,
  errors: ['BAD_REQUEST', 'UNKNOWN_FIELD', 'UNSUPPORTED_MEDIA_TYPE', 'MALFORMED', 'EVIDENCE_INVALID', 'EPOCH_UNKNOWN', 'UNAVAILABLE'],
});

// ---------------------------------------------------------------- explorer

export const explorer = defineRoute({
  id: 'explorer',
  method: 'GET',
  path: '/explorer',
  tag: 'explorer',
  summary: "The live explorer page (HTML); it polls this node's JSON routes",
  contentType: 'text/html',
  response: Type.String(),
});

export const SearchResult = Obj(
  {
    query: Type.String(),
    shard: Nat(),
    matches: Type.Array(Obj({ kind: Literals(['account', 'block', 'tx', 'xtransfer']), id: Type.String(), label: Type.String() })),
    hint: Nullable(Type.String()),
  },
  { title: 'SearchResult' },
);

export const search = defineRoute({
  id: 'search',
  method: 'GET',
  path: '/v1/search',
  tag: 'explorer',
  summary: 'What a query names: an address, a height, a block, transaction or transfer hash',
  query: { q: 'The query (at most 130 characters).' },
  response: SearchResult,
  errors: ['BAD_REQUEST'],
});

export const AccountTxs = Obj(
  {
    address: Address(),
    shard: Nat(),
    homeShard: Nat(),
    complete: Type.Boolean({ description: 'Always false: a bounded recent history, not a full one.' }),
    txs: Type.Array(Obj({ hash: Hash(), height: Nat(), index: Nat(), kind: Type.String(), direction: Literals(['out', 'in', 'self']) })),
  },
  { title: 'AccountTxs' },
);

export const accountTxs = defineRoute({
  id: 'account-txs',
  method: 'GET',
  path: '/v1/accounts/{address}/txs',
  tag: 'explorer',
  summary: "The account's newest transactions this node has seen finalized",
  params: { address: 'qn followed by 40 lowercase hex digits.' },
  query: { limit: LIMIT },
  response: AccountTxs,
  errors: ['BAD_REQUEST'],
});

export const Activity = Obj(
  {
    shard: Nat(),
    slotMs: Nat(),
    genesisTime: Nat(),
    now: Nat(),
    slot: Nat(),
    headHeight: Nat(),
    headHash: Hash(),
    blocks: Type.Array(Obj({ height: Nat(), slot: Int(), txCount: Nat(), finalizedAt: Nullable(Nat()) })),
  },
  { title: 'Activity' },
);

export const activity = defineRoute({
  id: 'activity',
  method: 'GET',
  path: '/v1/activity',
  tag: 'explorer',
  summary: "The newest blocks' sizes, slots and finality times (the explorer's charts)",
  query: { limit: LIMIT },
  response: Activity,
  errors: ['BAD_REQUEST'],
});

/** Every route of a shard node's API beyond the front's own (`/metrics`, `/v1/openapi.json`, `/v1/admin/…`). */
export const nodeRoutes = {
  explorer,
  search,
  accountTxs,
  faucet,
  activity,
  shards,
  blocks,
  xtransfers,
  status,
  block,
  tx,
  account,
  submit,
  validators,
  validator,
  committees,
  xtransfer,
  supply,
  evidence,
  submitEvidence,
} as const;
