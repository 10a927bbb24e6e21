import { addressFromPublicKey, fromHex, homeShard, schemeLengths, toHex } from '@qnexus/crypto';
import {
  BEACON_SHARD,
  QnexusError,
  decodeXferRecord,
  xferInfoEqual,
  type Genesis,
  type ReportItem,
  type TxEnvelope,
  type XferInfo,
  type XferRecord,
} from '@qnexus/types';
import { ExecCtx, type BlockContext, type StateParams } from './ctx.js';
import { feesRecordId } from './ids.js';
import { NATIVE_DENOM, bank } from './modules/bank.js';
import { FEE_ACCOUNT, fees } from './modules/fees.js';
import { XFER_RECORD_PREFIX, xfer, xferRecordKey } from './modules/xfer.js';
import { Branch, CommittedState, MAX_RANGE, entryLeaf, type KVReader, type KeyHex, type StateProof, type Writes } from './store.js';
import { verifyCountedProof } from '@qnexus/types';

export * from './ids.js';
export * from './evidence.js';
export * from './epochs.js';
export * from './certificate.js';
export { Branch, CommittedState, ModuleStore, MAX_RANGE, entryLeaf, moduleKey, verifyStateProof, type KVReader, type KeyHex, type ProvenEntry, type StateCommitment, type StateProof, type Writes } from './store.js';
export { ExecCtx, MODULE_IDS, stateParams, type BlockContext, type StateParams } from './ctx.js';
export { NATIVE_DENOM, bank, moduleAccount, type AuthRecord, type DenomSupply } from './modules/bank.js';
export { FEE_ACCOUNT } from './modules/fees.js';
export { XFER_RECORD_PREFIX, xferRecordKey, type XferCounters } from './modules/xfer.js';

/**
 * The shard's state machine: pure functions from (state, transactions) to
 * writes on one key-value state (see store.ts). No clock, no I/O, no signature
 * checks (the node verifies each signature once, at admission, and remembers
 * the result).
 */

/** An account as the API shows it: the native balance and the bank's account record. */
export interface Account {
  balance: bigint;
  nonce: bigint;
  publicKey: Uint8Array | null;
}

/**
 * Native-denom totals, in the shape the API has always shown. Per shard:
 *   balances (users) + fees + burned + escrow + exported − imported = genesis supply
 * where `fees` is the fee account's balance (proposer tips not yet sent to the beacon).
 */
export interface Counters {
  burned: bigint;
  escrow: bigint;
  exported: bigint;
  imported: bigint;
  fees: bigint;
  feeEpoch: number;
}

/** One denom's supply identity: balances + burned + escrow + exported − imported = genesis + minted. */
export interface DenomTotals {
  denom: string;
  balances: bigint;
  genesis: bigint;
  minted: bigint;
  burned: bigint;
  escrow: bigint;
  exported: bigint;
  imported: bigint;
}

/** Read access to a state (the committed state or a branch over it). */
export interface StateReader {
  account(addrHex: string): Account | undefined;
  xfer(idHex: string): XferRecord | undefined;
  /** Tips a proposer (address hex) earned and the shard has not yet sent to the beacon; 0 if none. */
  pendingFee(addrHex: string): bigint;
  /** Every proposer with pending fees > 0, sorted by address hex. */
  pendingFees(): [string, bigint][];
  readonly counters: Counters;
}

/** Keeper reads over any KV reader. */
export class StateView implements StateReader {
  protected readonly r: Branch;
  constructor(kv: KVReader) {
    // A branch that is never written: reads pass through to `kv`.
    this.r = kv instanceof Branch ? kv : new Branch(kv);
  }
  store(id: number) {
    return new ExecCtx(this.r, undefined as never, undefined as never).store(id);
  }
  account(addrHex: string): Account | undefined {
    const addr = fromHex(addrHex);
    const a = bank.auth(this, addr);
    if (!a) return undefined;
    return { balance: bank.balance(this, addr), nonce: a.nonce, publicKey: a.publicKey };
  }
  xfer(idHex: string): XferRecord | undefined {
    return xfer.record(this, idHex);
  }
  pendingFee(addrHex: string): bigint {
    return fees.pending(this, addrHex);
  }
  pendingFees(): [string, bigint][] {
    return fees.allPending(this);
  }
  get counters(): Counters {
    const s = bank.supply(this);
    const x = xfer.counters(this);
    return { burned: s.burned, escrow: x.escrow, exported: x.exported, imported: x.imported, fees: fees.held(this), feeEpoch: fees.epoch(this) };
  }
  get burned(): bigint {
    return bank.supply(this).burned;
  }
  /** Supply identity terms of every denom with a supply record. */
  denomTotals(): DenomTotals[] {
    return bank.denoms(this, 10_000).map((denom) => ({ denom, balances: bank.totalBalances(this, denom), ...bank.supply(this, denom), ...xfer.counters(this, denom) }));
  }
  /** Σ native balances outside module accounts (the API's `balances`). */
  userBalances(): bigint {
    return bank.totalBalances(this) - fees.held(this);
  }
  /** Number of account records. */
  get size(): number {
    return Number(bank.accountCount(this));
  }
}

/** Writes of a block, with the transfer records it touched (decoded once, for reports and metrics). */
export interface StateChanges {
  writes: Writes;
  xfers: Map<string, XferRecord>;
}

function changesOf(writes: Writes): StateChanges {
  const xfers = new Map<string, XferRecord>();
  for (const [k, v] of writes) if (v && k.startsWith(XFER_RECORD_PREFIX)) xfers.set(k.slice(XFER_RECORD_PREFIX.length), decodeXferRecord(v));
  return { writes, xfers };
}

/**
 * The committed state of one shard: the key-value entries with their
 * commitment, and the keeper reads the node and the API use.
 */
export class WorldState extends StateView {
  private constructor(readonly kv: CommittedState) {
    super(kv);
  }

  static fromEntries(entries: Iterable<[KeyHex, Uint8Array]>): WorldState {
    return new WorldState(CommittedState.fromEntries(entries));
  }

  /** The genesis state of one shard: the genesis accounts whose home shard it is. */
  static fromGenesis(g: Genesis, shard: number): WorldState {
    const empty = new CommittedState();
    const ctx = new ExecCtx(new Branch(empty), {} as StateParams, { height: 0, slot: 0, proposer: new Uint8Array(20) });
    for (const a of g.accounts) {
      const addr = fromHex(a.address.slice(2));
      if (homeShard(addr, g.shardCount) === shard) bank.genesisCredit(ctx, addr, a.balance);
    }
    // The native denom's supply record exists on every shard, even one with no genesis accounts.
    bank.setSupply(ctx, NATIVE_DENOM, bank.supply(ctx));
    const s = new WorldState(empty);
    s.kv.apply(ctx.kv.writes);
    return s;
  }

  apply(ch: StateChanges): void {
    this.kv.apply(ch.writes);
  }

  rootWith(ch?: StateChanges): Uint8Array {
    return this.kv.rootWith(ch?.writes);
  }

  root(): Uint8Array {
    return this.kv.root();
  }

  prove(keys: readonly Uint8Array[]): StateProof[] {
    return this.kv.prove(keys);
  }

  xferRecords(): XferRecord[] {
    return xfer.records(this, MAX_RANGE);
  }

  totalBalance(): bigint {
    return this.userBalances();
  }

  /** Inclusion proofs of transfer records against `root()`, for the beacon. Unknown ids are skipped. */
  proveXfers(idHexes: readonly string[]): ReportItem[] {
    const known = idHexes.filter((id) => this.kv.get(XFER_RECORD_PREFIX + id) !== undefined);
    return this.kv.prove(known.map((id) => xferRecordKey(fromHex(id)))).map((p) => ({ record: p.value!, proof: p.entries[0]!.proof }));
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
  return verifyCountedProof(entryLeaf(xferRecordKey(rec.info.id), item.record), item.proof, stateRoot) ? rec : null;
}

const ZERO_ADDRESS_HEX = '00'.repeat(20);

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

/** Split of a fee: `burn = fee × feeBurnBps / 10000` (floor) is burned, the rest is the proposer's tip. */
export function splitFee(fee: bigint, feeBurnBps: number): { burn: bigint; tip: bigint } {
  const burn = (fee * BigInt(feeBurnBps)) / 10_000n;
  return { burn, tip: fee - burn };
}

/**
 * Nonce check, key registration and the fee: the sender pays the fee into the
 * fee account, the burned part is burned from there, and the tip is booked as
 * the block proposer's pending fees (sent to the beacon once per epoch).
 */
function authAndFee(ctx: ExecCtx, env: TxEnvelope): void {
  const b = env.tx.body;
  const a = bank.auth(ctx, env.from);
  const nonce = a?.nonce ?? 0n;
  if (b.nonce < nonce) throw new QnexusError('TX_NONCE_STALE', `nonce ${b.nonce} already used; the account's next nonce is ${nonce}`);
  if (b.nonce > nonce) throw new QnexusError('TX_NONCE_FUTURE', `nonce ${b.nonce} is ahead of the account's next nonce ${nonce}`);
  bank.setAuth(ctx, env.from, { nonce: nonce + 1n, publicKey: a?.publicKey ?? b.publicKey });
  if (b.fee === 0n) return;
  bank.send(ctx, env.from, FEE_ACCOUNT, b.fee);
  const { burn, tip } = splitFee(b.fee, ctx.params.feeBurnBps);
  bank.burn(ctx, FEE_ACCOUNT, burn);
  if (tip === 0n) return;
  const who = toHex(ctx.block.proposer);
  fees.setPending(ctx, who, fees.pending(ctx, who) + tip);
}

/** Escrow `info.amount` from `payer` under a new source record of this shard (prepared in this block). */
function openSourceRecord(ctx: ExecCtx, info: XferInfo, payer: Uint8Array): void {
  if (info.amount > 0n) bank.debit(ctx, payer, info.amount);
  xfer.add(ctx, 'escrow', info.amount);
  xfer.setRecord(ctx, { role: 'source', info, prepare: 'accepted', reason: '', decision: 'none', preparedHeight: ctx.block.height, decidedHeight: 0 });
}

/** Why a destination refuses a credit, or null to accept. Deterministic in (state, entry, block). */
function refusal(ctx: ExecCtx, x: XferInfo): string | null {
  const p = ctx.params;
  if (homeShard(x.to, p.shardCount) !== p.shard) return 'XS_WRONG_SHARD';
  // The all-zero address is reserved (nobody holds its key): crediting it would destroy value silently.
  if (toHex(x.to) === ZERO_ADDRESS_HEX) return 'TX_BAD_RECIPIENT';
  if (!bank.canCredit(ctx, x.to, x.amount)) return 'TX_BAD_AMOUNT';
  if (ctx.block.slot > x.deadlineSlot) return 'XS_DEADLINE_PASSED';
  return null;
}

/**
 * Start a block: at the first block of an epoch later than the one the
 * pending fees accrued in, each proposer's pending fees become one `fees`
 * record to the beacon (escrowed from the fee account), in address order;
 * then the fee epoch moves to this block's epoch. A no-op within an epoch.
 */
export function beginBlock(ctx: ExecCtx): void {
  const p = ctx.params;
  const epoch = Math.floor(ctx.block.slot / p.epochLength);
  const feeEpoch = fees.epoch(ctx);
  if (epoch <= feeEpoch) return;
  for (const [addrHex, amount] of fees.allPending(ctx)) {
    const addr = fromHex(addrHex);
    const info: XferInfo = {
      kind: 'fees',
      // Unique: feeEpoch strictly increases with every roll, so (epoch, proposer) names one record.
      id: feesRecordId(p.chainId, p.shard, feeEpoch, addr),
      srcShard: p.shard,
      dstShard: BEACON_SHARD,
      from: addr,
      to: addr,
      amount,
      deadlineSlot: ctx.block.slot + p.xferTimeoutSlots,
      data: new Uint8Array(0),
    };
    fees.setPending(ctx, addrHex, 0n);
    openSourceRecord(ctx, info, FEE_ACCOUNT);
  }
  fees.setEpoch(ctx, epoch);
}

/** Source side of a decision: commit exports the escrow; abort returns it to whoever it came from. */
function applySourceDecision(ctx: ExecCtx, x: XferInfo, commit: boolean): void {
  xfer.add(ctx, 'escrow', -x.amount);
  if (commit) {
    xfer.add(ctx, 'exported', x.amount);
    return;
  }
  switch (x.kind) {
    case 'transfer':
    case 'stake':
      bank.credit(ctx, x.from, x.amount);
      return;
    case 'fees': {
      // Back into the proposer's pending fees: sent again at the next epoch change.
      const who = toHex(x.from);
      bank.credit(ctx, FEE_ACCOUNT, x.amount);
      fees.setPending(ctx, who, fees.pending(ctx, who) + x.amount);
      return;
    }
    case 'unstake':
      return; // amount 0: nothing was escrowed
    case 'release':
      return; // unreachable: the beacon is the source of a release, never a shard
  }
}

const EMPTY = new Uint8Array(0);

/** The effects of one transaction, on its own branch (the caller drops the branch if this throws). */
function execute(ctx: ExecCtx, env: TxEnvelope): void {
  checkTxStateless(env, ctx.params);
  const p = ctx.params;
  const b = env.tx.body;
  const pl = b.payload;
  switch (pl.kind) {
    case 'transfer':
      authAndFee(ctx, env);
      bank.send(ctx, env.from, pl.to, pl.amount);
      return;
    case 'xtransfer':
    case 'stake':
    case 'unstake': {
      if (xfer.record(ctx, env.hashHex)) throw new QnexusError('XS_DUPLICATE', 'transfer already recorded');
      let info: XferInfo;
      const common = { id: env.hash, srcShard: p.shard, from: env.from, deadlineSlot: ctx.block.slot + p.xferTimeoutSlots };
      if (pl.kind === 'xtransfer') {
        info = { ...common, kind: 'transfer', dstShard: homeShard(pl.to, p.shardCount), to: pl.to, amount: pl.amount, data: EMPTY };
      } else if (pl.kind === 'stake') {
        const pk = pl.validatorPublicKey;
        info = { ...common, kind: 'stake', dstShard: BEACON_SHARD, to: addressFromPublicKey(pk), amount: pl.amount, data: pk };
      } else {
        info = { ...common, kind: 'unstake', dstShard: BEACON_SHARD, to: pl.validator, amount: 0n, data: EMPTY };
      }
      authAndFee(ctx, env);
      openSourceRecord(ctx, info, env.from);
      return;
    }
    case 'xprepare': {
      const x = pl.xfer;
      const id = toHex(x.id);
      const rec = xfer.record(ctx, id);
      if (rec) throw new QnexusError(rec.decision !== 'none' ? 'XS_ALREADY_DECIDED' : 'XS_DUPLICATE', `transfer ${id.slice(0, 16)} is already ${rec.decision !== 'none' ? 'decided' : 'prepared'} here`);
      const why = refusal(ctx, x);
      xfer.setRecord(ctx, { role: 'destination', info: x, prepare: why ? 'refused' : 'accepted', reason: why ?? '', decision: 'none', preparedHeight: ctx.block.height, decidedHeight: 0 });
      return;
    }
    case 'xdecision': {
      const x = pl.xfer;
      const id = toHex(x.id);
      const rec = xfer.record(ctx, id);
      if (rec && !xferInfoEqual(rec.info, x)) throw new QnexusError('XS_MISMATCH', `decision for ${id.slice(0, 16)} disagrees with the recorded transfer`);
      if (rec && rec.decision !== 'none') throw new QnexusError('XS_ALREADY_DECIDED', `transfer ${id.slice(0, 16)} was already decided (${rec.decision})`);
      if (x.srcShard === p.shard) {
        if (!rec || rec.role !== 'source') throw new QnexusError('XS_UNKNOWN_TRANSFER', `no escrow for transfer ${id.slice(0, 16)}`);
        applySourceDecision(ctx, x, pl.commit);
      } else if (pl.commit) {
        // Destination of a shard transfer or of a beacon release.
        if (!rec || rec.prepare !== 'accepted') throw new QnexusError('XS_NOT_PREPARED', `commit for transfer ${id.slice(0, 16)} that this shard did not accept`);
        bank.credit(ctx, x.to, x.amount);
        xfer.add(ctx, 'imported', x.amount);
      }
      const base: XferRecord = rec ?? { role: 'destination', info: x, prepare: 'none', reason: '', decision: 'none', preparedHeight: 0, decidedHeight: 0 };
      xfer.setRecord(ctx, { ...base, decision: pl.commit ? 'commit' : 'abort', decidedHeight: ctx.block.height });
      return;
    }
  }
}

/**
 * Apply one transaction to a branch. Throws a QnexusError with a stable code
 * and leaves the branch untouched if the transaction cannot apply: it runs on
 * a child branch that is folded in only on success.
 * Cross-shard (see docs/ARCHITECTURE.md and docs/staking.md): an xtransfer,
 * stake or unstake debits amount + fee and escrows the amount under a source
 * record; the beacon's xprepare records the destination's answer (shard
 * transfers and releases); the beacon's xdecision releases the escrow
 * (commit: exported; abort: refunded) on the source and credits the recipient
 * (commit) on the destination. Each record phase applies once: a replay
 * throws XS_DUPLICATE / XS_ALREADY_DECIDED.
 */
export function applyTx(kv: Branch, env: TxEnvelope, p: StateParams, block: BlockContext): void {
  const ctx = new ExecCtx(kv.branch(), p, block);
  execute(ctx, env);
  ctx.kv.commit();
}

/**
 * Invariants checked at the end of every block, as part of its validity:
 * each denom's supply identity, and the fee account holding exactly the
 * proposers' pending tips. A block that breaks one is invalid.
 */
export function checkInvariants(view: StateView): void {
  for (const t of view.denomTotals()) {
    if (t.balances + t.burned + t.escrow + t.exported - t.imported !== t.genesis + t.minted) {
      throw new QnexusError('INVARIANT_BROKEN', `supply of ${t.denom}: balances ${t.balances} + burned ${t.burned} + escrow ${t.escrow} + exported ${t.exported} − imported ${t.imported} ≠ genesis ${t.genesis} + minted ${t.minted}`);
    }
  }
  let pending = 0n;
  for (const [, v] of view.pendingFees()) pending += v;
  const held = view.counters.fees;
  if (held !== pending) throw new QnexusError('INVARIANT_BROKEN', `fee account holds ${held}, proposers are owed ${pending}`);
}

export interface BlockExecution {
  changes: StateChanges;
  stateRoot: Uint8Array;
}

function finish(state: WorldState, kv: Branch): BlockExecution {
  try {
    checkInvariants(new StateView(kv));
  } catch (e) {
    if (e instanceof QnexusError) throw new QnexusError('BAD_BLOCK', `block breaks an invariant: ${e.message}`);
    throw e;
  }
  const changes = changesOf(kv.writes);
  return { changes, stateRoot: state.rootWith(changes) };
}

/** Execute a block: beginBlock, then its transactions in order; any failing transaction makes the whole block invalid. */
export function executeBlock(state: WorldState, txs: readonly TxEnvelope[], p: StateParams, block: BlockContext): BlockExecution {
  const kv = new Branch(state.kv);
  beginBlock(new ExecCtx(kv, p, block));
  txs.forEach((env, i) => {
    try {
      applyTx(kv, env, p, block);
    } catch (e) {
      if (e instanceof QnexusError) throw new QnexusError('BAD_BLOCK', `transaction ${i} (${env.hashHex}) is invalid: ${e.code}: ${e.message}`);
      throw e;
    }
  });
  return finish(state, kv);
}

/**
 * Proposer side of executeBlock: beginBlock, then apply candidates in order
 * and skip any that fail (a racing spend, a nonce gap, a replayed beacon
 * entry), so the block built is valid by construction; a skipped
 * transaction's branch is dropped, so it leaves nothing behind.
 */
export function executeApplicable(
  state: WorldState,
  txs: readonly TxEnvelope[],
  p: StateParams,
  block: BlockContext,
): { applied: TxEnvelope[]; skipped: { env: TxEnvelope; error: QnexusError }[]; exec: BlockExecution } {
  const kv = new Branch(state.kv);
  beginBlock(new ExecCtx(kv, p, block));
  const applied: TxEnvelope[] = [];
  const skipped: { env: TxEnvelope; error: QnexusError }[] = [];
  for (const env of txs) {
    try {
      applyTx(kv, env, p, block);
      applied.push(env);
    } catch (e) {
      if (!(e instanceof QnexusError)) throw e;
      skipped.push({ env, error: e });
    }
  }
  return { applied, skipped, exec: finish(state, kv) };
}
