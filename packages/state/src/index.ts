import { ADDRESS_BYTES, fromHex, homeShard, schemeLengths, toHex, type SchemeName } from '@qnexus/crypto';
import {
  MAX_PUBLIC_KEY_BYTES,
  QnexusError,
  Writer,
  decodeWith,
  merkleLeaf,
  merkleRootOfLeafHashes,
  type Genesis,
  type TxEnvelope,
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
}

export function stateParams(g: Genesis, shard: number): StateParams {
  return { chainId: g.chainId, scheme: g.scheme, minFee: g.minFee, shard, shardCount: g.shardCount };
}

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
  readonly burned: bigint;
}

/** Writes produced by executing transactions; applied atomically on commit. */
export interface StateChanges {
  accounts: Map<string, Account>;
  burned: bigint;
}

// Leaf kinds are kept apart in the tree by a prefix byte ('a' account, 'm' meta).
function accountLeaf(addrHex: string, a: Account): Uint8Array {
  return merkleLeaf(new Writer(128).u8(0x61).fixed(fromHex(addrHex), ADDRESS_BYTES).bytes(encodeAccount(a)).finish());
}

function burnedLeaf(burned: bigint): Uint8Array {
  return merkleLeaf(new Writer(16).u8(0x6d).u64(burned).finish());
}

/**
 * The committed state of one shard, held in memory (loaded from the database
 * at start) so block validation is synchronous and deterministic. The state
 * root is a Merkle root over all entries sorted by key; leaf hashes are cached
 * so a block only rehashes the accounts it touched.
 */
export class WorldState implements StateReader {
  private readonly accounts = new Map<string, Account>();
  private readonly leaves = new Map<string, Uint8Array>();
  private sortedKeys: string[] | null = [];
  private _burned = 0n;

  static fromEntries(entries: Iterable<[string, Account]>, burned: bigint): WorldState {
    const s = new WorldState();
    for (const [k, a] of entries) s.set(k, a);
    s._burned = burned;
    return s;
  }

  /** The genesis state of one shard: the genesis accounts whose home shard it is. */
  static fromGenesis(g: Genesis, shard: number): WorldState {
    return WorldState.fromEntries(
      g.accounts
        .filter((a) => homeShard(fromHex(a.address.slice(2)), g.shardCount) === shard)
        .map((a) => [a.address.slice(2), { balance: a.balance, nonce: 0n, publicKey: null }]),
      0n,
    );
  }

  get burned(): bigint {
    return this._burned;
  }

  get size(): number {
    return this.accounts.size;
  }

  account(addrHex: string): Account | undefined {
    return this.accounts.get(addrHex);
  }

  entries(): IterableIterator<[string, Account]> {
    return this.accounts.entries();
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

  apply(ch: StateChanges): void {
    for (const [k, a] of ch.accounts) this.set(k, a);
    this._burned = ch.burned;
  }

  private keys(): string[] {
    if (!this.sortedKeys) this.sortedKeys = [...this.accounts.keys()].sort();
    return this.sortedKeys;
  }

  /** State root of this state with `ch` applied on top (without mutating it). */
  rootWith(ch?: StateChanges): Uint8Array {
    let keys = this.keys();
    if (ch) {
      const extra = [...ch.accounts.keys()].filter((k) => !this.accounts.has(k));
      if (extra.length) keys = [...keys, ...extra].sort();
    }
    const leaves: Uint8Array[] = [];
    for (const k of keys) {
      const changed = ch?.accounts.get(k);
      leaves.push(changed ? accountLeaf(k, changed) : this.leaves.get(k)!);
    }
    leaves.push(burnedLeaf(ch ? ch.burned : this._burned));
    return merkleRootOfLeafHashes(leaves);
  }

  root(): Uint8Array {
    return this.rootWith();
  }
}

/** Pending writes layered over a reader: what block execution and the mempool build on. */
export class Overlay implements StateReader {
  readonly accounts = new Map<string, Account>();
  burned: bigint;
  constructor(private readonly base: StateReader) {
    this.burned = base.burned;
  }
  account(addrHex: string): Account | undefined {
    return this.accounts.get(addrHex) ?? this.base.account(addrHex);
  }
  changes(): StateChanges {
    return { accounts: this.accounts, burned: this.burned };
  }
}

/**
 * Checks that need no state: chain id, parameter set, fee floor, amount.
 * Run at admission (before gossip) and again in block validation.
 */
export function checkTxStateless(env: TxEnvelope, p: StateParams): void {
  const b = env.tx.body;
  if (b.chainId !== p.chainId) throw new QnexusError('TX_WRONG_CHAIN', `transaction is for chain ${JSON.stringify(b.chainId)}, this is ${JSON.stringify(p.chainId)}`);
  const len = schemeLengths(p.scheme);
  if (b.publicKey.length !== len.publicKey || env.tx.signature.length !== len.signature) {
    throw new QnexusError('TX_WRONG_SCHEME', `this chain uses ${p.scheme} (public key ${len.publicKey} B, signature ${len.signature} B)`);
  }
  if (b.fee < p.minFee) throw new QnexusError('TX_FEE_TOO_LOW', `fee ${b.fee} is below the minimum ${p.minFee}`);
  // An account lives on its home shard only; its transactions are executed there.
  const from = homeShard(env.from, p.shardCount);
  if (from !== p.shard) throw new QnexusError('TX_WRONG_SHARD', `sender ${env.fromStr} lives on shard ${from}; submit to a node of that shard (this is shard ${p.shard})`);
  switch (b.payload.kind) {
    case 'transfer': {
      const to = homeShard(b.payload.to, p.shardCount);
      if (to !== p.shard) throw new QnexusError('TX_CROSS_SHARD', `recipient lives on shard ${to}; a plain transfer stays within shard ${p.shard} (cross-shard transfers need the cross-shard kind)`);
      if (b.payload.amount === 0n) throw new QnexusError('TX_BAD_AMOUNT', 'transfer amount must be positive');
      if (toHex(b.payload.to) === toHex(env.from)) throw new QnexusError('TX_SELF_TRANSFER', 'sender and recipient are the same account');
      break;
    }
  }
}

const U64_MAX = 0xffffffffffffffffn;

/**
 * Apply one transaction to an overlay. Throws a QnexusError with a stable code
 * and leaves the overlay untouched if the transaction cannot apply.
 * Fee rule: the fee is burned (added to `burned`), so at every height
 * sum(balances) + burned = genesis supply.
 */
export function applyTx(o: Overlay, env: TxEnvelope, p: StateParams): void {
  checkTxStateless(env, p);
  const b = env.tx.body;
  const fromHex_ = toHex(env.from);
  const sender = o.account(fromHex_);
  const nonce = sender?.nonce ?? 0n;
  if (b.nonce < nonce) throw new QnexusError('TX_NONCE_STALE', `nonce ${b.nonce} already used; the account's next nonce is ${nonce}`);
  if (b.nonce > nonce) throw new QnexusError('TX_NONCE_FUTURE', `nonce ${b.nonce} is ahead of the account's next nonce ${nonce}`);
  const amount = b.payload.amount;
  const cost = amount + b.fee;
  const balance = sender?.balance ?? 0n;
  if (balance < cost) throw new QnexusError('TX_INSUFFICIENT_FUNDS', `balance ${balance} is less than amount + fee = ${cost}`);
  const toHex_ = toHex(b.payload.to);
  const recipient = o.account(toHex_) ?? { balance: 0n, nonce: 0n, publicKey: null };
  if (recipient.balance + amount > U64_MAX) throw new QnexusError('TX_BAD_AMOUNT', 'recipient balance would overflow');
  o.accounts.set(fromHex_, { balance: balance - cost, nonce: nonce + 1n, publicKey: sender?.publicKey ?? b.publicKey });
  o.accounts.set(toHex_, { ...recipient, balance: recipient.balance + amount });
  o.burned += b.fee;
}

export interface BlockExecution {
  changes: StateChanges;
  stateRoot: Uint8Array;
}

/** Execute a block's transactions in order; any failing transaction makes the whole block invalid. */
export function executeBlock(state: WorldState, txs: readonly TxEnvelope[], p: StateParams): BlockExecution {
  const o = new Overlay(state);
  txs.forEach((env, i) => {
    try {
      applyTx(o, env, p);
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
 * fail (a racing spend, a nonce gap), so the block built is valid by construction.
 */
export function executeApplicable(
  state: WorldState,
  txs: readonly TxEnvelope[],
  p: StateParams,
): { applied: TxEnvelope[]; skipped: { env: TxEnvelope; error: QnexusError }[]; exec: BlockExecution } {
  const o = new Overlay(state);
  const applied: TxEnvelope[] = [];
  const skipped: { env: TxEnvelope; error: QnexusError }[] = [];
  for (const env of txs) {
    try {
      applyTx(o, env, p);
      applied.push(env);
    } catch (e) {
      if (!(e instanceof QnexusError)) throw e;
      skipped.push({ env, error: e });
    }
  }
  const changes = o.changes();
  return { applied, skipped, exec: { changes, stateRoot: state.rootWith(changes) } };
}
