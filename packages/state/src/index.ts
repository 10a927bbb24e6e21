import { ADDRESS_BYTES, addressFromPublicKey, bytesEqual, formatAddress, fromHex, homeShard, schemeLengths, toHex, type SchemeName } from '@qnexus/crypto';
import { isQuorum } from '@qnexus/consensus';
import {
  BEACON_SHARD,
  MAX_PUBLIC_KEY_BYTES,
  QnexusError,
  Writer,
  decodeWith,
  decodeXferRecord,
  encodeXferRecord,
  merkleLeaf,
  merkleProofs,
  merkleRootOfLeafHashes,
  verifyMerkleProof,
  xferInfoEqual,
  blockHash,
  certificateVoteBody,
  voteSigningBytes,
  type BlockHeader,
  type Certificate,
  type CertificateVote,
  type Genesis,
  type ReportItem,
  type TxEnvelope,
  type XferInfo,
  type XferRecord,
} from '@qnexus/types';
import { feesRecordId } from './ids.js';

export * from './ids.js';
export * from './evidence.js';
export * from './epochs.js';

/**
 * The shard's state machine: pure functions from (state, transactions) to
 * state changes. No clock, no I/O, no signature checks (the node verifies
 * each signature once, at admission, and remembers the result).
 */

export interface Account {
  balance: bigint;
  nonce: bigint;
  /** Registered on the account's first transaction. */
  publicKey: Uint8Array | null;
}

export interface StateParams {
  chainId: string;
  scheme: SchemeName;
  minFee: bigint;
  /** The shard this state belongs to, and how many there are (home shard of an address = f(address)). */
  shard: number;
  shardCount: number;
  /** Only entries signed with this key may prepare or decide cross-shard transfers. */
  beaconPublicKey: Uint8Array;
  xferTimeoutSlots: number;
  /** Slots per epoch: pending proposer fees are sent to the beacon once per epoch. */
  epochLength: number;
  /** Smallest amount one stake transaction may bond (genesis `staking.minStake`). */
  minStake: bigint;
  /** Fraction of every fee burned, in basis points; the rest is the block proposer's tip. */
  feeBurnBps: number;
}

export function stateParams(g: Genesis, shard: number): StateParams {
  return {
    chainId: g.chainId,
    scheme: g.scheme,
    minFee: g.minFee,
    shard,
    shardCount: g.shardCount,
    beaconPublicKey: g.beacon.publicKey,
    xferTimeoutSlots: g.xferTimeoutSlots,
    epochLength: g.epochLength,
    minStake: g.staking.minStake,
    feeBurnBps: g.staking.feeBurnBps,
  };
}

/** Where in the chain a transaction executes: part of the deterministic input (deadlines, record heights, fee recipient). */
export interface BlockContext {
  height: number;
  slot: number;
  /** 20-byte address of the block's proposer: it earns the non-burned part of every fee in the block. */
  proposer: Uint8Array;
}

/**
 * Shard-wide totals kept in the state tree. Per shard, at every height:
 *   sum(balances) + burned + fees + escrow + exported − imported = the shard's genesis supply
 * and summed over all shards the exported/imported terms cancel once every
 * committed transfer is credited (see docs/ARCHITECTURE.md, "Cross-shard
 * transfers", and docs/staking.md for the beacon as a participant).
 */
export interface Counters {
  /** Burned part of the fees paid. */
  burned: bigint;
  /** Debited from senders, held for undecided outgoing transfers (including stakes and fee records to the beacon). */
  escrow: bigint;
  /** Escrow released by a commit decision (the value now belongs to the destination shard or the beacon). */
  exported: bigint;
  /** Credited to recipients of incoming committed transfers (including releases from the beacon). */
  imported: bigint;
  /** Proposer tips not yet sent to the beacon: the sum of every proposer's pending fees. */
  fees: bigint;
  /** Epoch in which the current pending fees accrued; the first block of a later epoch sends them. */
  feeEpoch: number;
}

export const ZERO_COUNTERS: Counters = { burned: 0n, escrow: 0n, exported: 0n, imported: 0n, fees: 0n, feeEpoch: 0 };

export function encodeAccount(a: Account): Uint8Array {
  return new Writer(64 + (a.publicKey?.length ?? 0)).u64(a.balance).u64(a.nonce).bytes(a.publicKey ?? new Uint8Array(0)).finish();
}

export function decodeAccount(b: Uint8Array): Account {
  return decodeWith(b, 'account', (r) => {
    const balance = r.u64('balance');
    const nonce = r.u64('nonce');
    const pk = r.bytes(MAX_PUBLIC_KEY_BYTES, 'public key');
    return { balance, nonce, publicKey: pk.length ? pk : null };
  });
}

/** Read access to a state (the committed world state, or a pending overlay on it). */
export interface StateReader {
  account(addrHex: string): Account | undefined;
  xfer(idHex: string): XferRecord | undefined;
  /** Tips a proposer (address hex) earned and the shard has not yet sent to the beacon; 0 if none. */
  pendingFee(addrHex: string): bigint;
  /** Every proposer with pending fees > 0, sorted by address hex. */
  pendingFees(): [string, bigint][];
  readonly counters: Counters;
}

/** Writes produced by executing transactions; applied atomically on commit. */
export interface StateChanges {
  accounts: Map<string, Account>;
  xfers: Map<string, XferRecord>;
  /** New pending-fee amount per proposer (address hex); 0 removes the entry. */
  pendingFees: Map<string, bigint>;
  counters: Counters;
}

// Leaf kinds are kept apart in the tree by a prefix byte ('a' account,
// 'x' transfer record, 'p' pending proposer fees, 'm' meta).
function accountLeaf(addrHex: string, a: Account): Uint8Array {
  return merkleLeaf(new Writer(128).u8(0x61).fixed(fromHex(addrHex), ADDRESS_BYTES).bytes(encodeAccount(a)).finish());
}

/** Leaf of a transfer record: the record encoding carries its id, so the leaf proves id and content. */
export function xferLeaf(recordBytes: Uint8Array): Uint8Array {
  return merkleLeaf(new Writer(recordBytes.length + 8).u8(0x78).bytes(recordBytes).finish());
}

function pendingFeeLeaf(addrHex: string, amount: bigint): Uint8Array {
  return merkleLeaf(new Writer(32).u8(0x70).fixed(fromHex(addrHex), ADDRESS_BYTES).u64(amount).finish());
}

function metaLeaf(c: Counters): Uint8Array {
  return merkleLeaf(new Writer(64).u8(0x6d).u64(c.burned).u64(c.escrow).u64(c.exported).u64(c.imported).u64(c.fees).u64(c.feeEpoch).finish());
}

/**
 * Tree keys: accounts by address hex (40 chars), pending fees by 'p' + address
 * hex, records by 'x' + id hex; so accounts sort first, then pending fees, then records.
 */
const xkey = (idHex: string) => `x${idHex}`;
const pkey = (addrHex: string) => `p${addrHex}`;

const byKey = <T>(a: [string, T], b: [string, T]): number => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/**
 * The committed state of one shard, held in memory (loaded from the database
 * at start) so block validation is synchronous and deterministic. The state
 * root is a Merkle root over all entries sorted by key, then the counters;
 * leaf hashes are cached so a block only rehashes what it touched.
 */
export class WorldState implements StateReader {
  private readonly accounts = new Map<string, Account>();
  private readonly xfers = new Map<string, XferRecord>();
  private readonly fees = new Map<string, bigint>();
  private readonly leaves = new Map<string, Uint8Array>();
  private sortedKeys: string[] | null = [];
  private _counters: Counters = ZERO_COUNTERS;

  /**
   * Rebuild a state from stored entries (the node's load path). `pendingFees`
   * are the proposers' pending fees by address hex (entries at 0 are ignored);
   * their sum must equal `counters.fees` for a consistent state.
   */
  static fromEntries(
    entries: Iterable<[string, Account]>,
    counters: Counters,
    xfers: Iterable<XferRecord> = [],
    pendingFees: Iterable<[string, bigint]> = [],
  ): WorldState {
    const s = new WorldState();
    for (const [k, a] of entries) s.set(k, a);
    for (const x of xfers) s.setXfer(x);
    for (const [k, v] of pendingFees) s.setFee(k, v);
    s._counters = { ...counters };
    return s;
  }

  /** The genesis state of one shard: the genesis accounts whose home shard it is. */
  static fromGenesis(g: Genesis, shard: number): WorldState {
    return WorldState.fromEntries(
      g.accounts
        .filter((a) => homeShard(fromHex(a.address.slice(2)), g.shardCount) === shard)
        .map((a) => [a.address.slice(2), { balance: a.balance, nonce: 0n, publicKey: null }]),
      ZERO_COUNTERS,
    );
  }

  get counters(): Counters {
    return this._counters;
  }

  get burned(): bigint {
    return this._counters.burned;
  }

  get size(): number {
    return this.accounts.size;
  }

  account(addrHex: string): Account | undefined {
    return this.accounts.get(addrHex);
  }

  xfer(idHex: string): XferRecord | undefined {
    return this.xfers.get(idHex);
  }

  pendingFee(addrHex: string): bigint {
    return this.fees.get(addrHex) ?? 0n;
  }

  pendingFees(): [string, bigint][] {
    return [...this.fees.entries()].sort(byKey);
  }

  entries(): IterableIterator<[string, Account]> {
    return this.accounts.entries();
  }

  xferRecords(): IterableIterator<XferRecord> {
    return this.xfers.values();
  }

  totalBalance(): bigint {
    let s = 0n;
    for (const a of this.accounts.values()) s += a.balance;
    return s;
  }

  private set(addrHex: string, a: Account): void {
    if (!this.accounts.has(addrHex)) this.sortedKeys = null;
    this.accounts.set(addrHex, a);
    this.leaves.set(addrHex, accountLeaf(addrHex, a));
  }

  private setXfer(x: XferRecord): void {
    const id = toHex(x.info.id);
    if (!this.xfers.has(id)) this.sortedKeys = null;
    this.xfers.set(id, x);
    this.leaves.set(xkey(id), xferLeaf(encodeXferRecord(x)));
  }

  /** A proposer's pending fees; 0 removes the leaf (a proposer whose fees were sent leaves no trace). */
  private setFee(addrHex: string, amount: bigint): void {
    if (amount === 0n) {
      if (this.fees.delete(addrHex)) {
        this.leaves.delete(pkey(addrHex));
        this.sortedKeys = null;
      }
      return;
    }
    if (!this.fees.has(addrHex)) this.sortedKeys = null;
    this.fees.set(addrHex, amount);
    this.leaves.set(pkey(addrHex), pendingFeeLeaf(addrHex, amount));
  }

  apply(ch: StateChanges): void {
    for (const [k, a] of ch.accounts) this.set(k, a);
    for (const x of ch.xfers.values()) this.setXfer(x);
    for (const [k, v] of ch.pendingFees) this.setFee(k, v);
    this._counters = { ...ch.counters };
  }

  private keys(): string[] {
    if (!this.sortedKeys) this.sortedKeys = [...this.leaves.keys()].sort();
    return this.sortedKeys;
  }

  /** State root of this state with `ch` applied on top (without mutating it). */
  rootWith(ch?: StateChanges): Uint8Array {
    let keys = this.keys();
    const changed = new Map<string, Uint8Array>();
    if (ch) {
      const removed = new Set<string>();
      for (const [k, a] of ch.accounts) changed.set(k, accountLeaf(k, a));
      for (const [id, x] of ch.xfers) changed.set(xkey(id), xferLeaf(encodeXferRecord(x)));
      for (const [k, v] of ch.pendingFees) {
        if (v === 0n) removed.add(pkey(k));
        else changed.set(pkey(k), pendingFeeLeaf(k, v));
      }
      const extra = [...changed.keys()].filter((k) => !this.leaves.has(k));
      if (extra.length) keys = [...keys, ...extra].sort();
      if (removed.size) keys = keys.filter((k) => !removed.has(k));
    }
    const leaves: Uint8Array[] = [];
    for (const k of keys) leaves.push(changed.get(k) ?? this.leaves.get(k)!);
    leaves.push(metaLeaf(ch ? ch.counters : this._counters));
    return merkleRootOfLeafHashes(leaves);
  }

  root(): Uint8Array {
    return this.rootWith();
  }

  /**
   * Inclusion proofs of transfer records against `root()`, for the beacon.
   * Unknown ids are skipped.
   */
  proveXfers(idHexes: readonly string[]): ReportItem[] {
    const keys = this.keys();
    const index = new Map<string, number>();
    keys.forEach((k, i) => index.set(k, i));
    const known = idHexes.filter((id) => this.xfers.has(id));
    const leaves = keys.map((k) => this.leaves.get(k)!);
    leaves.push(metaLeaf(this._counters));
    const proofs = merkleProofs(leaves, known.map((id) => index.get(xkey(id))!));
    return known.map((id, i) => ({ record: encodeXferRecord(this.xfers.get(id)!), proof: proofs[i]! }));
  }
}

/** Check a transfer record's inclusion proof against a (certified) state root; returns the record or null. */
export function verifyXferProof(stateRoot: Uint8Array, item: ReportItem): XferRecord | null {
  let rec: XferRecord;
  try {
    rec = decodeXferRecord(item.record);
  } catch {
    return null;
  }
  return verifyMerkleProof(xferLeaf(item.record), item.proof, stateRoot) ? rec : null;
}

/** Pending writes layered over a reader: what block execution and the mempool build on. */
export class Overlay implements StateReader {
  readonly accounts = new Map<string, Account>();
  readonly xfers = new Map<string, XferRecord>();
  /**
   * New pending-fee amounts by proposer address hex (0 = sent, removed on
   * apply); `changes().pendingFees`. (Named `fees` because `pendingFees()` is
   * the StateReader's merged view.)
   */
  readonly fees = new Map<string, bigint>();
  counters: Counters;
  constructor(private readonly base: StateReader) {
    this.counters = { ...base.counters };
  }
  account(addrHex: string): Account | undefined {
    return this.accounts.get(addrHex) ?? this.base.account(addrHex);
  }
  xfer(idHex: string): XferRecord | undefined {
    return this.xfers.get(idHex) ?? this.base.xfer(idHex);
  }
  pendingFee(addrHex: string): bigint {
    return this.fees.get(addrHex) ?? this.base.pendingFee(addrHex);
  }
  /** The merged view: base entries overridden by this overlay's, only those > 0, by address. */
  pendingFees(): [string, bigint][] {
    const m = new Map(this.base.pendingFees());
    for (const [k, v] of this.fees) m.set(k, v);
    return [...m.entries()].filter(([, v]) => v > 0n).sort(byKey);
  }
  changes(): StateChanges {
    return { accounts: this.accounts, xfers: this.xfers, pendingFees: this.fees, counters: this.counters };
  }
}

const ZERO_ADDRESS_HEX = '00'.repeat(ADDRESS_BYTES);

/** Shards of a transfer are well-formed for its kind (the beacon is BEACON_SHARD, never a regular shard). */
function xferShardsValid(x: XferInfo, p: StateParams): boolean {
  const isShard = (s: number) => s < p.shardCount;
  switch (x.kind) {
    case 'transfer':
      return isShard(x.srcShard) && isShard(x.dstShard) && x.srcShard !== x.dstShard;
    case 'stake':
    case 'unstake':
    case 'fees':
      return isShard(x.srcShard) && x.dstShard === BEACON_SHARD;
    case 'release':
      return x.srcShard === BEACON_SHARD && isShard(x.dstShard);
  }
}

/**
 * Stateless shape of a system entry: signed by the beacon key, nonce and fee
 * 0, shards valid for the kind, `data` only on stakes, and for this shard.
 * A prepare is only ever asked of a shard destination (shard transfers and
 * beacon releases); a decision goes to whichever side this shard is.
 */
function checkSystemEntry(pl: { kind: 'xprepare' | 'xdecision'; xfer: XferInfo }, env: TxEnvelope, p: StateParams): void {
  const b = env.tx.body;
  if (toHex(b.publicKey) !== toHex(p.beaconPublicKey)) throw new QnexusError('XS_UNAUTHORIZED', `${pl.kind} entries must be signed by the genesis beacon key`);
  if (b.nonce !== 0n || b.fee !== 0n) throw new QnexusError('TX_MALFORMED', 'beacon entries carry nonce 0 and fee 0');
  const x = pl.xfer;
  if (pl.kind === 'xprepare' && x.kind !== 'transfer' && x.kind !== 'release') {
    throw new QnexusError('TX_MALFORMED', `a ${x.kind} transfer has the beacon as its destination: nothing to prepare on a shard`);
  }
  if (!xferShardsValid(x, p)) throw new QnexusError('TX_MALFORMED', `${x.kind} transfer shards ${x.srcShard} -> ${x.dstShard} are invalid`);
  const dataLen = x.kind === 'stake' ? schemeLengths(p.scheme).publicKey : 0;
  if (x.data.length !== dataLen) throw new QnexusError('TX_MALFORMED', `${x.kind} transfer data must be ${dataLen} bytes`);
  if (pl.kind === 'xprepare' ? x.dstShard !== p.shard : x.srcShard !== p.shard && x.dstShard !== p.shard) {
    throw new QnexusError('XS_WRONG_SHARD', `${pl.kind} for ${x.kind} ${toHex(x.id).slice(0, 16)} is not for shard ${p.shard}`);
  }
}

/**
 * Checks that need no state: chain id, parameter set, fee floor, amount,
 * shards, and for beacon entries the beacon key. Run at admission (before
 * gossip) and again in block validation. The stake consent signature is the
 * node's to verify (with the transaction signature), not the state machine's.
 */
export function checkTxStateless(env: TxEnvelope, p: StateParams): void {
  const b = env.tx.body;
  if (b.chainId !== p.chainId) throw new QnexusError('TX_WRONG_CHAIN', `transaction is for chain ${JSON.stringify(b.chainId)}, this is ${JSON.stringify(p.chainId)}`);
  const len = schemeLengths(p.scheme);
  if (b.publicKey.length !== len.publicKey || env.tx.signature.length !== len.signature) {
    throw new QnexusError('TX_WRONG_SCHEME', `this chain uses ${p.scheme} (public key ${len.publicKey} B, signature ${len.signature} B)`);
  }
  const pl = b.payload;
  if (pl.kind === 'xprepare' || pl.kind === 'xdecision') return checkSystemEntry(pl, env, p);
  if (b.fee < p.minFee) throw new QnexusError('TX_FEE_TOO_LOW', `fee ${b.fee} is below the minimum ${p.minFee}`);
  // An account lives on its home shard only; its transactions are executed there.
  const from = homeShard(env.from, p.shardCount);
  if (from !== p.shard) throw new QnexusError('TX_WRONG_SHARD', `sender ${env.fromStr} lives on shard ${from}; submit to a node of that shard (this is shard ${p.shard})`);
  switch (pl.kind) {
    case 'transfer':
    case 'xtransfer': {
      if (pl.amount === 0n) throw new QnexusError('TX_BAD_AMOUNT', 'transfer amount must be positive');
      if (toHex(pl.to) === toHex(env.from)) throw new QnexusError('TX_SELF_TRANSFER', 'sender and recipient are the same account');
      const to = homeShard(pl.to, p.shardCount);
      if (pl.kind === 'transfer' && to !== p.shard) {
        throw new QnexusError('TX_CROSS_SHARD', `recipient lives on shard ${to}; a plain transfer stays within shard ${p.shard} (use a cross-shard transfer: qnexus tx xtransfer)`);
      }
      if (pl.kind === 'xtransfer' && to === p.shard) throw new QnexusError('TX_SAME_SHARD', `recipient lives on this shard (${p.shard}); use a plain transfer`);
      return;
    }
    case 'stake':
      if (pl.amount < p.minStake) throw new QnexusError('STAKE_TOO_LOW', `stake ${pl.amount} is below the minimum ${p.minStake}`);
      if (pl.validatorPublicKey.length !== len.publicKey || pl.validatorSignature.length !== len.signature) {
        throw new QnexusError('TX_WRONG_SCHEME', `the validator key and its consent signature must be ${p.scheme} (${len.publicKey} B, ${len.signature} B)`);
      }
      return;
    case 'unstake':
      return;
  }
}

const U64_MAX = 0xffffffffffffffffn;

function debitSender(o: Overlay, env: TxEnvelope, cost: bigint): void {
  const b = env.tx.body;
  const fromHex_ = toHex(env.from);
  const sender = o.account(fromHex_);
  const nonce = sender?.nonce ?? 0n;
  if (b.nonce < nonce) throw new QnexusError('TX_NONCE_STALE', `nonce ${b.nonce} already used; the account's next nonce is ${nonce}`);
  if (b.nonce > nonce) throw new QnexusError('TX_NONCE_FUTURE', `nonce ${b.nonce} is ahead of the account's next nonce ${nonce}`);
  const balance = sender?.balance ?? 0n;
  if (balance < cost) throw new QnexusError('TX_INSUFFICIENT_FUNDS', `balance ${balance} is less than amount + fee = ${cost}`);
  o.accounts.set(fromHex_, { balance: balance - cost, nonce: nonce + 1n, publicKey: sender?.publicKey ?? b.publicKey });
}

function credit(o: Overlay, toHex_: string, amount: bigint): void {
  const r = o.account(toHex_) ?? { balance: 0n, nonce: 0n, publicKey: null };
  o.accounts.set(toHex_, { ...r, balance: r.balance + amount });
}

function canCredit(o: Overlay, toHex_: string, amount: bigint): boolean {
  return (o.account(toHex_)?.balance ?? 0n) + amount <= U64_MAX;
}

/** Split of a fee: `burn = fee × feeBurnBps / 10000` (floor) is burned, the rest is the proposer's tip. */
export function splitFee(fee: bigint, feeBurnBps: number): { burn: bigint; tip: bigint } {
  const burn = (fee * BigInt(feeBurnBps)) / 10_000n;
  return { burn, tip: fee - burn };
}

/** Book a paid fee (already debited from the sender): burn part, and the tip into the proposer's pending fees. */
function payFee(o: Overlay, fee: bigint, p: StateParams, ctx: BlockContext): void {
  const { burn, tip } = splitFee(fee, p.feeBurnBps);
  o.counters.burned += burn;
  if (tip === 0n) return;
  o.counters.fees += tip;
  const who = toHex(ctx.proposer);
  o.fees.set(who, o.pendingFee(who) + tip);
}

/** Escrow `info.amount` under a new source record of this shard (prepared in this block). */
function openSourceRecord(o: Overlay, info: XferInfo, ctx: BlockContext): void {
  o.counters.escrow += info.amount;
  o.xfers.set(toHex(info.id), { role: 'source', info, prepare: 'accepted', reason: '', decision: 'none', preparedHeight: ctx.height, decidedHeight: 0 });
}

/** Why a destination refuses a credit, or null to accept. Deterministic in (state, entry, block). */
function refusal(o: Overlay, x: XferInfo, p: StateParams, ctx: BlockContext): string | null {
  if (homeShard(x.to, p.shardCount) !== p.shard) return 'XS_WRONG_SHARD';
  // The all-zero address is reserved (nobody holds its key): crediting it would destroy value silently.
  if (toHex(x.to) === ZERO_ADDRESS_HEX) return 'TX_BAD_RECIPIENT';
  if (!canCredit(o, toHex(x.to), x.amount)) return 'TX_BAD_AMOUNT';
  if (ctx.slot > x.deadlineSlot) return 'XS_DEADLINE_PASSED';
  return null;
}

/**
 * Start a block: at the first block of an epoch later than the one the
 * pending fees accrued in, each proposer's pending fees become one `fees`
 * record to the beacon (escrowed like any outgoing transfer), in address
 * order; then the fee epoch moves to this block's epoch. Runs before the
 * block's transactions (executeBlock and executeApplicable call it); a no-op
 * within an epoch.
 */
export function beginBlock(o: Overlay, p: StateParams, ctx: BlockContext): void {
  const epoch = Math.floor(ctx.slot / p.epochLength);
  if (epoch <= o.counters.feeEpoch) return;
  for (const [addrHex, amount] of o.pendingFees()) {
    const addr = fromHex(addrHex);
    const info: XferInfo = {
      kind: 'fees',
      // Unique: feeEpoch strictly increases with every roll, so (epoch, proposer) names one record.
      id: feesRecordId(p.chainId, p.shard, o.counters.feeEpoch, addr),
      srcShard: p.shard,
      dstShard: BEACON_SHARD,
      from: addr,
      to: addr,
      amount,
      deadlineSlot: ctx.slot + p.xferTimeoutSlots,
      data: new Uint8Array(0),
    };
    o.counters.fees -= amount;
    o.fees.set(addrHex, 0n);
    openSourceRecord(o, info, ctx);
  }
  o.counters.feeEpoch = epoch;
}

/** Source side of a decision: commit exports the escrow; abort returns it to whoever it came from. */
function applySourceDecision(o: Overlay, x: XferInfo, commit: boolean): void {
  o.counters.escrow -= x.amount;
  if (commit) {
    o.counters.exported += x.amount;
    return;
  }
  switch (x.kind) {
    case 'transfer':
    case 'stake':
      credit(o, toHex(x.from), x.amount);
      return;
    case 'fees': {
      // Back into the proposer's pending fees: sent again at the next epoch change.
      const who = toHex(x.from);
      o.counters.fees += x.amount;
      o.fees.set(who, o.pendingFee(who) + x.amount);
      return;
    }
    case 'unstake':
      return; // amount 0: nothing was escrowed
    case 'release':
      return; // unreachable: the beacon is the source of a release, never a shard
  }
}

const EMPTY = new Uint8Array(0);

/**
 * Apply one transaction to an overlay. Throws a QnexusError with a stable code
 * and leaves the overlay untouched if the transaction cannot apply.
 * Fee rule: `feeBurnBps` of every fee is burned, the rest is the block
 * proposer's tip (pending fees, sent to the beacon once per epoch by beginBlock).
 * Cross-shard (see docs/ARCHITECTURE.md and docs/staking.md): an xtransfer,
 * stake or unstake debits amount + fee and escrows the amount under a source
 * record; the beacon's xprepare records the destination's answer (shard
 * transfers and releases); the beacon's xdecision releases the escrow
 * (commit: exported; abort: refunded) on the source and credits the recipient
 * (commit) on the destination. Each record phase applies once: a replay
 * throws XS_DUPLICATE / XS_ALREADY_DECIDED.
 */
export function applyTx(o: Overlay, env: TxEnvelope, p: StateParams, ctx: BlockContext): void {
  checkTxStateless(env, p);
  const b = env.tx.body;
  const pl = b.payload;
  switch (pl.kind) {
    case 'transfer': {
      const toHex_ = toHex(pl.to);
      if (!canCredit(o, toHex_, pl.amount)) throw new QnexusError('TX_BAD_AMOUNT', 'recipient balance would overflow');
      debitSender(o, env, pl.amount + b.fee);
      credit(o, toHex_, pl.amount);
      payFee(o, b.fee, p, ctx);
      return;
    }
    case 'xtransfer':
    case 'stake':
    case 'unstake': {
      if (o.xfer(env.hashHex)) throw new QnexusError('XS_DUPLICATE', 'transfer already recorded');
      let info: XferInfo;
      const common = { id: env.hash, srcShard: p.shard, from: env.from, deadlineSlot: ctx.slot + p.xferTimeoutSlots };
      if (pl.kind === 'xtransfer') {
        info = { ...common, kind: 'transfer', dstShard: homeShard(pl.to, p.shardCount), to: pl.to, amount: pl.amount, data: EMPTY };
      } else if (pl.kind === 'stake') {
        const pk = pl.validatorPublicKey;
        info = { ...common, kind: 'stake', dstShard: BEACON_SHARD, to: addressFromPublicKey(pk), amount: pl.amount, data: pk };
      } else {
        info = { ...common, kind: 'unstake', dstShard: BEACON_SHARD, to: pl.validator, amount: 0n, data: EMPTY };
      }
      debitSender(o, env, info.amount + b.fee);
      payFee(o, b.fee, p, ctx);
      openSourceRecord(o, info, ctx);
      return;
    }
    case 'xprepare': {
      const x = pl.xfer;
      const id = toHex(x.id);
      const rec = o.xfer(id);
      if (rec) throw new QnexusError(rec.decision !== 'none' ? 'XS_ALREADY_DECIDED' : 'XS_DUPLICATE', `transfer ${id.slice(0, 16)} is already ${rec.decision !== 'none' ? 'decided' : 'prepared'} here`);
      const why = refusal(o, x, p, ctx);
      o.xfers.set(id, {
        role: 'destination',
        info: x,
        prepare: why ? 'refused' : 'accepted',
        reason: why ?? '',
        decision: 'none',
        preparedHeight: ctx.height,
        decidedHeight: 0,
      });
      return;
    }
    case 'xdecision': {
      const x = pl.xfer;
      const id = toHex(x.id);
      const rec = o.xfer(id);
      if (rec && !xferInfoEqual(rec.info, x)) throw new QnexusError('XS_MISMATCH', `decision for ${id.slice(0, 16)} disagrees with the recorded transfer`);
      if (rec && rec.decision !== 'none') throw new QnexusError('XS_ALREADY_DECIDED', `transfer ${id.slice(0, 16)} was already decided (${rec.decision})`);
      const decision = pl.commit ? 'commit' : 'abort';
      if (x.srcShard === p.shard) {
        if (!rec || rec.role !== 'source') throw new QnexusError('XS_UNKNOWN_TRANSFER', `no escrow for transfer ${id.slice(0, 16)}`);
        applySourceDecision(o, x, pl.commit);
      } else if (pl.commit) {
        // Destination of a shard transfer or of a beacon release.
        if (!rec || rec.prepare !== 'accepted') throw new QnexusError('XS_NOT_PREPARED', `commit for transfer ${id.slice(0, 16)} that this shard did not accept`);
        if (!canCredit(o, toHex(x.to), x.amount)) throw new QnexusError('TX_BAD_AMOUNT', 'recipient balance would overflow');
        credit(o, toHex(x.to), x.amount);
        o.counters.imported += x.amount;
      }
      const base: XferRecord = rec ?? { role: 'destination', info: x, prepare: 'none', reason: '', decision: 'none', preparedHeight: 0, decidedHeight: 0 };
      o.xfers.set(id, { ...base, decision, decidedHeight: ctx.height });
      return;
    }
  }
}

export interface BlockExecution {
  changes: StateChanges;
  stateRoot: Uint8Array;
}

/** Execute a block: beginBlock, then its transactions in order; any failing transaction makes the whole block invalid. */
export function executeBlock(state: WorldState, txs: readonly TxEnvelope[], p: StateParams, ctx: BlockContext): BlockExecution {
  const o = new Overlay(state);
  beginBlock(o, p, ctx);
  txs.forEach((env, i) => {
    try {
      applyTx(o, env, p, ctx);
    } catch (e) {
      if (e instanceof QnexusError) throw new QnexusError('BAD_BLOCK', `transaction ${i} (${env.hashHex}) is invalid: ${e.code}: ${e.message}`);
      throw e;
    }
  });
  const changes = o.changes();
  return { changes, stateRoot: state.rootWith(changes) };
}

/**
 * Proposer side of executeBlock: beginBlock, then apply candidates in order
 * and skip any that fail (a racing spend, a nonce gap, a replayed beacon
 * entry), so the block built is valid by construction.
 */
export function executeApplicable(
  state: WorldState,
  txs: readonly TxEnvelope[],
  p: StateParams,
  ctx: BlockContext,
): { applied: TxEnvelope[]; skipped: { env: TxEnvelope; error: QnexusError }[]; exec: BlockExecution } {
  const o = new Overlay(state);
  beginBlock(o, p, ctx);
  const applied: TxEnvelope[] = [];
  const skipped: { env: TxEnvelope; error: QnexusError }[] = [];
  for (const env of txs) {
    try {
      applyTx(o, env, p, ctx);
      applied.push(env);
    } catch (e) {
      if (!(e instanceof QnexusError)) throw e;
      skipped.push({ env, error: e });
    }
  }
  const changes = o.changes();
  return { applied, skipped, exec: { changes, stateRoot: state.rootWith(changes) } };
}

/** Stored form of the counters (the node's meta record): six u64, in Counters order. */
export function encodeCounters(c: Counters): Uint8Array {
  return new Writer(48).u64(c.burned).u64(c.escrow).u64(c.exported).u64(c.imported).u64(c.fees).u64(c.feeEpoch).finish();
}

export function decodeCounters(b: Uint8Array | undefined): Counters {
  if (!b) return { ...ZERO_COUNTERS };
  return decodeWith(b, 'counters', (r) => ({
    burned: r.u64('burned'),
    escrow: r.u64('escrow'),
    exported: r.u64('exported'),
    imported: r.u64('imported'),
    fees: r.u64('fees'),
    feeEpoch: r.u64n('fee epoch'),
  }));
}

/** A committee member as a certificate check needs it. */
export interface CertifyingMember {
  publicKey: Uint8Array;
  stake: bigint;
}

/** Bounds a certificate check can apply when the caller knows them. */
export interface CertificateLimits {
  /** Members in the committee: a certificate with more votes is refused before any of them is looked at. */
  committeeSize?: number;
  /** Latest round a certificate may carry (e.g. the current slot): a later one is refused. */
  maxRound?: number;
}

/** A certificate vote whose signer is a member, as `checkCertificateStructure` found it. */
export interface CertificateSigner {
  address: string;
  member: CertifyingMember;
  vote: CertificateVote;
}

/**
 * The checks of a finality certificate that need neither the committee nor a
 * signature: it names this block (height, hash), its round is not before the
 * block's slot (nor after `limits.maxRound`), it carries no more votes than
 * `limits.committeeSize`, and no signer appears twice. Throws QnexusError
 * BAD_CERTIFICATE.
 */
export function checkCertificateShape(
  cert: Certificate,
  header: BlockHeader,
  /** `blockHash(header)` when the caller has it already (computed from this very header). */
  headerHash: Uint8Array = blockHash(header),
  limits: CertificateLimits = {},
): void {
  const fail = (m: string): never => {
    throw new QnexusError('BAD_CERTIFICATE', m);
  };
  if (cert.height !== header.height) fail(`certificate is for height ${cert.height}, block is ${header.height}`);
  if (!bytesEqual(cert.blockHash, headerHash)) fail('certificate is for a different block');
  if (cert.round < header.slot) fail('certificate round precedes the block slot');
  if (limits.maxRound !== undefined && cert.round > limits.maxRound) fail(`certificate round ${cert.round} is beyond the current slot ${limits.maxRound}`);
  if (limits.committeeSize !== undefined && cert.votes.length > limits.committeeSize) {
    fail(`certificate carries ${cert.votes.length} votes; the committee has ${limits.committeeSize} members`);
  }
  const seen = new Set<string>();
  for (const v of cert.votes) {
    const address = formatAddress(v.validator);
    if (seen.has(address)) fail(`duplicate certificate vote from ${address}`);
    seen.add(address);
  }
}

/**
 * Every check of a finality certificate that needs no signature work, in the
 * order of their cost: `checkCertificateShape`, then every signer is a member
 * and the signers' stake is more than 2/3 of `totalStake`. Returns the
 * signers, whose signatures are all that is left to check. Throws QnexusError
 * BAD_CERTIFICATE; a certificate refused here costs no signature verification
 * (a thousand copies of one vote are refused at the second).
 */
export function checkCertificateStructure(
  cert: Certificate,
  header: BlockHeader,
  member: (address: string) => CertifyingMember | undefined,
  totalStake: bigint,
  /** `blockHash(header)` when the caller has it already (computed from this very header). */
  headerHash: Uint8Array = blockHash(header),
  limits: CertificateLimits = {},
): CertificateSigner[] {
  checkCertificateShape(cert, header, headerHash, limits);
  let stake = 0n;
  const signers: CertificateSigner[] = [];
  for (const vote of cert.votes) {
    const address = formatAddress(vote.validator);
    const m = member(address);
    if (!m) throw new QnexusError('BAD_CERTIFICATE', `certificate vote from non-member ${address}`);
    signers.push({ address, member: m, vote });
    stake += m.stake;
  }
  if (!isQuorum(stake, totalStake)) throw new QnexusError('BAD_CERTIFICATE', `certificate carries ${stake} of ${totalStake} stake; more than 2/3 is required`);
  return signers;
}

/**
 * Check a finality certificate for a header: > 2/3 of `totalStake` from
 * distinct members, each signature valid over the certificate vote body.
 * Shared by shard nodes (sync imports) and the beacon (2PC reports); the
 * caller supplies the committee lookup and the signature check (cached or not).
 * Every structural check (`checkCertificateStructure`) runs before the first
 * signature is verified. Throws QnexusError BAD_CERTIFICATE.
 */
export function checkCertificate(
  cert: Certificate,
  header: BlockHeader,
  member: (address: string) => CertifyingMember | undefined,
  totalStake: bigint,
  verify: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean,
  /** `blockHash(header)` when the caller has it already (computed from this very header). */
  headerHash: Uint8Array = blockHash(header),
  limits: CertificateLimits = {},
): void {
  for (const s of checkCertificateStructure(cert, header, member, totalStake, headerHash, limits)) {
    const body = certificateVoteBody(cert, header.chainId, header.shard, s.vote.validator);
    if (!verify(s.member.publicKey, voteSigningBytes(body), s.vote.signature)) throw new QnexusError('BAD_CERTIFICATE', `bad signature from ${s.address}`);
  }
}
