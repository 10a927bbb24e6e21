import { ADDRESS_BYTES, bytesEqual, formatAddress, fromHex, homeShard, schemeLengths, toHex, type SchemeName } from '@qnexus/crypto';
import { assignCommittees, epochSeed, isQuorum, type Committee } from '@qnexus/consensus';
import {
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
  genesisHash,
  voteSigningBytes,
  type BlockHeader,
  type Certificate,
  type Genesis,
  type ReportItem,
  type TxEnvelope,
  type XferInfo,
  type XferRecord,
} from '@qnexus/types';

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
  };
}

/** Where in the chain a transaction executes: part of the deterministic input (deadlines, record heights). */
export interface BlockContext {
  height: number;
  slot: number;
}

/**
 * Shard-wide totals kept in the state tree. Per shard, at every height:
 *   sum(balances) + burned + escrow + exported − imported = the shard's genesis supply
 * and summed over all shards the exported/imported terms cancel once every
 * committed transfer is credited (see docs/ARCHITECTURE.md, "Cross-shard transfers").
 */
export interface Counters {
  /** Fees paid (burned). */
  burned: bigint;
  /** Debited from senders, held for undecided outgoing transfers. */
  escrow: bigint;
  /** Escrow released by a commit decision (the value now belongs to the destination shard). */
  exported: bigint;
  /** Credited to recipients of incoming committed transfers. */
  imported: bigint;
}

export const ZERO_COUNTERS: Counters = { burned: 0n, escrow: 0n, exported: 0n, imported: 0n };

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
  readonly counters: Counters;
}

/** Writes produced by executing transactions; applied atomically on commit. */
export interface StateChanges {
  accounts: Map<string, Account>;
  xfers: Map<string, XferRecord>;
  counters: Counters;
}

// Leaf kinds are kept apart in the tree by a prefix byte ('a' account, 'x' transfer record, 'm' meta).
function accountLeaf(addrHex: string, a: Account): Uint8Array {
  return merkleLeaf(new Writer(128).u8(0x61).fixed(fromHex(addrHex), ADDRESS_BYTES).bytes(encodeAccount(a)).finish());
}

/** Leaf of a transfer record: the record encoding carries its id, so the leaf proves id and content. */
export function xferLeaf(recordBytes: Uint8Array): Uint8Array {
  return merkleLeaf(new Writer(recordBytes.length + 8).u8(0x78).bytes(recordBytes).finish());
}

function metaLeaf(c: Counters): Uint8Array {
  return merkleLeaf(new Writer(40).u8(0x6d).u64(c.burned).u64(c.escrow).u64(c.exported).u64(c.imported).finish());
}

/** Tree keys: accounts by address hex (40 chars), records by 'x' + id hex, so records sort after accounts. */
const xkey = (idHex: string) => `x${idHex}`;

/**
 * The committed state of one shard, held in memory (loaded from the database
 * at start) so block validation is synchronous and deterministic. The state
 * root is a Merkle root over all entries sorted by key, then the counters;
 * leaf hashes are cached so a block only rehashes what it touched.
 */
export class WorldState implements StateReader {
  private readonly accounts = new Map<string, Account>();
  private readonly xfers = new Map<string, XferRecord>();
  private readonly leaves = new Map<string, Uint8Array>();
  private sortedKeys: string[] | null = [];
  private _counters: Counters = ZERO_COUNTERS;

  static fromEntries(entries: Iterable<[string, Account]>, counters: Counters, xfers: Iterable<XferRecord> = []): WorldState {
    const s = new WorldState();
    for (const [k, a] of entries) s.set(k, a);
    for (const x of xfers) s.setXfer(x);
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

  apply(ch: StateChanges): void {
    for (const [k, a] of ch.accounts) this.set(k, a);
    for (const x of ch.xfers.values()) this.setXfer(x);
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
      for (const [k, a] of ch.accounts) changed.set(k, accountLeaf(k, a));
      for (const [id, x] of ch.xfers) changed.set(xkey(id), xferLeaf(encodeXferRecord(x)));
      const extra = [...changed.keys()].filter((k) => !this.leaves.has(k));
      if (extra.length) keys = [...keys, ...extra].sort();
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
  changes(): StateChanges {
    return { accounts: this.accounts, xfers: this.xfers, counters: this.counters };
  }
}

const ZERO_ADDRESS_HEX = '00'.repeat(ADDRESS_BYTES);

/**
 * Checks that need no state: chain id, parameter set, fee floor, amount,
 * shards, and for beacon entries the beacon key. Run at admission (before
 * gossip) and again in block validation.
 */
export function checkTxStateless(env: TxEnvelope, p: StateParams): void {
  const b = env.tx.body;
  if (b.chainId !== p.chainId) throw new QnexusError('TX_WRONG_CHAIN', `transaction is for chain ${JSON.stringify(b.chainId)}, this is ${JSON.stringify(p.chainId)}`);
  const len = schemeLengths(p.scheme);
  if (b.publicKey.length !== len.publicKey || env.tx.signature.length !== len.signature) {
    throw new QnexusError('TX_WRONG_SCHEME', `this chain uses ${p.scheme} (public key ${len.publicKey} B, signature ${len.signature} B)`);
  }
  const pl = b.payload;
  if (pl.kind === 'xprepare' || pl.kind === 'xdecision') {
    if (toHex(b.publicKey) !== toHex(p.beaconPublicKey)) throw new QnexusError('XS_UNAUTHORIZED', `${pl.kind} entries must be signed by the genesis beacon key`);
    if (b.nonce !== 0n || b.fee !== 0n) throw new QnexusError('TX_MALFORMED', 'beacon entries carry nonce 0 and fee 0');
    const x = pl.xfer;
    if (x.srcShard === x.dstShard || x.srcShard >= p.shardCount || x.dstShard >= p.shardCount) throw new QnexusError('TX_MALFORMED', 'transfer shards are invalid');
    if (pl.kind === 'xprepare' ? x.dstShard !== p.shard : x.srcShard !== p.shard && x.dstShard !== p.shard) {
      throw new QnexusError('XS_WRONG_SHARD', `${pl.kind} for transfer ${toHex(x.id).slice(0, 16)} is not for shard ${p.shard}`);
    }
    return;
  }
  if (b.fee < p.minFee) throw new QnexusError('TX_FEE_TOO_LOW', `fee ${b.fee} is below the minimum ${p.minFee}`);
  // An account lives on its home shard only; its transactions are executed there.
  const from = homeShard(env.from, p.shardCount);
  if (from !== p.shard) throw new QnexusError('TX_WRONG_SHARD', `sender ${env.fromStr} lives on shard ${from}; submit to a node of that shard (this is shard ${p.shard})`);
  if (pl.amount === 0n) throw new QnexusError('TX_BAD_AMOUNT', 'transfer amount must be positive');
  if (toHex(pl.to) === toHex(env.from)) throw new QnexusError('TX_SELF_TRANSFER', 'sender and recipient are the same account');
  const to = homeShard(pl.to, p.shardCount);
  if (pl.kind === 'transfer' && to !== p.shard) {
    throw new QnexusError('TX_CROSS_SHARD', `recipient lives on shard ${to}; a plain transfer stays within shard ${p.shard} (use a cross-shard transfer: qnexus tx xtransfer)`);
  }
  if (pl.kind === 'xtransfer' && to === p.shard) throw new QnexusError('TX_SAME_SHARD', `recipient lives on this shard (${p.shard}); use a plain transfer`);
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
 * Apply one transaction to an overlay. Throws a QnexusError with a stable code
 * and leaves the overlay untouched if the transaction cannot apply.
 * Fee rule: the fee is burned (added to `burned`).
 * Cross-shard (see docs/ARCHITECTURE.md): an xtransfer debits amount + fee
 * into escrow; the beacon's xprepare records the destination's answer; the
 * beacon's xdecision releases the escrow (commit: exported; abort: refunded)
 * on the source and credits the recipient (commit) on the destination. Each
 * record phase applies once: a replay throws XS_DUPLICATE / XS_ALREADY_DECIDED.
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
      o.counters.burned += b.fee;
      return;
    }
    case 'xtransfer': {
      if (o.xfer(env.hashHex)) throw new QnexusError('XS_DUPLICATE', 'transfer already recorded');
      debitSender(o, env, pl.amount + b.fee);
      o.counters.burned += b.fee;
      o.counters.escrow += pl.amount;
      const info: XferInfo = {
        id: env.hash,
        srcShard: p.shard,
        dstShard: homeShard(pl.to, p.shardCount),
        from: env.from,
        to: pl.to,
        amount: pl.amount,
        deadlineSlot: ctx.slot + p.xferTimeoutSlots,
      };
      o.xfers.set(env.hashHex, { role: 'source', info, prepare: 'accepted', reason: '', decision: 'none', preparedHeight: ctx.height, decidedHeight: 0 });
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
        o.counters.escrow -= x.amount;
        if (pl.commit) o.counters.exported += x.amount;
        else credit(o, toHex(x.from), x.amount);
      } else {
        if (pl.commit) {
          if (!rec || rec.prepare !== 'accepted') throw new QnexusError('XS_NOT_PREPARED', `commit for transfer ${id.slice(0, 16)} that this shard did not accept`);
          if (!canCredit(o, toHex(x.to), x.amount)) throw new QnexusError('TX_BAD_AMOUNT', 'recipient balance would overflow');
          credit(o, toHex(x.to), x.amount);
          o.counters.imported += x.amount;
        }
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

/** Execute a block's transactions in order; any failing transaction makes the whole block invalid. */
export function executeBlock(state: WorldState, txs: readonly TxEnvelope[], p: StateParams, ctx: BlockContext): BlockExecution {
  const o = new Overlay(state);
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
 * Proposer side of executeBlock: apply candidates in order and skip any that
 * fail (a racing spend, a nonce gap, a replayed beacon entry), so the block
 * built is valid by construction.
 */
export function executeApplicable(
  state: WorldState,
  txs: readonly TxEnvelope[],
  p: StateParams,
  ctx: BlockContext,
): { applied: TxEnvelope[]; skipped: { env: TxEnvelope; error: QnexusError }[]; exec: BlockExecution } {
  const o = new Overlay(state);
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

export function encodeCounters(c: Counters): Uint8Array {
  return new Writer(32).u64(c.burned).u64(c.escrow).u64(c.exported).u64(c.imported).finish();
}

export function decodeCounters(b: Uint8Array | undefined): Counters {
  if (!b) return { ...ZERO_COUNTERS };
  return decodeWith(b, 'counters', (r) => ({ burned: r.u64('burned'), escrow: r.u64('escrow'), exported: r.u64('exported'), imported: r.u64('imported') }));
}

/**
 * The shard committees of an epoch. The registry is the genesis validator set
 * (staking, which changes it, comes later), and assignments are sticky: they
 * are drawn once, from epoch 0's seed, so a validator keeps serving the shard
 * whose chain it holds. Every process (beacon, shard nodes, devnet) computes
 * this alone; the beacon's signed epoch announcements must agree with it.
 */
export function epochCommittees(g: Genesis, _epoch: number): Committee[] {
  return assignCommittees(
    g.validators.map((v) => ({ address: v.address, stake: v.stake })),
    g.shardCount,
    epochSeed(g.chainId, genesisHash(g), 0),
  );
}

/** A committee member as a certificate check needs it. */
export interface CertifyingMember {
  publicKey: Uint8Array;
  stake: bigint;
}

/**
 * Check a finality certificate for a header: > 2/3 of `totalStake` from
 * distinct members, each signature valid over the certificate vote body.
 * Shared by shard nodes (sync imports) and the beacon (2PC reports); the
 * caller supplies the committee lookup and the signature check (cached or not).
 * Throws QnexusError BAD_CERTIFICATE.
 */
export function checkCertificate(
  cert: Certificate,
  header: BlockHeader,
  member: (address: string) => CertifyingMember | undefined,
  totalStake: bigint,
  verify: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean,
): void {
  const fail = (m: string): never => {
    throw new QnexusError('BAD_CERTIFICATE', m);
  };
  if (cert.height !== header.height) fail(`certificate is for height ${cert.height}, block is ${header.height}`);
  if (!bytesEqual(cert.blockHash, blockHash(header))) fail('certificate is for a different block');
  if (cert.round < header.slot) fail('certificate round precedes the block slot');
  let stake = 0n;
  const seen = new Set<string>();
  for (const v of cert.votes) {
    const addr = formatAddress(v.validator);
    const m = member(addr);
    if (!m) fail(`certificate vote from non-member ${addr}`);
    if (seen.has(addr)) fail(`duplicate certificate vote from ${addr}`);
    seen.add(addr);
    const body = certificateVoteBody(cert, header.chainId, header.shard, v.validator);
    if (!verify(m!.publicKey, voteSigningBytes(body), v.signature)) fail(`bad signature from ${addr}`);
    stake += m!.stake;
  }
  if (!isQuorum(stake, totalStake)) fail(`certificate carries ${stake} of ${totalStake} stake; more than 2/3 is required`);
}
