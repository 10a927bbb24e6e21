import { bytesEqual, toHex } from '@qnexus/crypto';
import { QnexusError, type AnyErrorCode, type ErrorCode, type Reader, type TxEnvelope, type Writer, type XferInfo } from '@qnexus/types';
import type { ExecCtx, StateParams } from './ctx.js';
import { bank } from './modules/bank/keeper.js';
import { Branch, ModuleStore, moduleKey, type KVReader, type KeyHex } from './store.js';

/**
 * The module contract. A module is a value the app lists: a name, a u8 id
 * (the first byte of its state keys and of its message kinds), its messages,
 * its cross-shard operations, its errors, genesis section, queries, block
 * hooks and invariants. The host (this package) runs them; a module never
 * reads another module's keys and never imports another module: what it needs
 * from others arrives as keepers at wiring (its `expected` interfaces).
 *
 * Rules for module code: bigint for amounts, no clock, no randomness, no I/O;
 * every loop bounded (by `weight` or a parameter); every write through the
 * store handed to it; value a module holds sits in its module account.
 */

/** A signature a message carries besides the transaction's own, verified once on the verify pool at admission. */
export interface SigCheck {
  /** Label for metrics (`qnexus_sig_verify_total{kind}`), e.g. `stake-consent`. */
  label: string;
  publicKey: Uint8Array;
  message: Uint8Array;
  signature: Uint8Array;
  /** The rejection code when it does not verify (a module code, e.g. STAKE_BAD_CONSENT). */
  code: AnyErrorCode;
}

/** What a handler gets: the transaction's branch (its writes vanish if the handler throws), the tx and the chain. */
export interface MsgCtx {
  ctx: ExecCtx;
  env: TxEnvelope;
  /** The module's own store on this branch. */
  store: ModuleStore;
}

export interface MsgDef<P> {
  /** Message type within the module (1..255): the wire kind is `(module id << 8) | type`. */
  type: number;
  /** Name, unique in the app: the API's `kind` field and `qnexus tx <module> <name>`. */
  name: string;
  /** Canonical encoding; `decode` is bounded and strict (the envelope's decoder rejects trailing bytes). */
  encode(w: Writer, p: P): void;
  decode(r: Reader): P;
  /** Checks that need no state (amounts, shapes, the recipient's shard); throws a typed error. */
  validate?(p: P, env: TxEnvelope, params: StateParams): void;
  /** Extra signatures carried by the message (e.g. a validator key's consent); bound to the tx's own chain id. */
  signatures?(p: P, env: TxEnvelope): SigCheck[];
  /** What the sender gives up besides the fee, in the native denom (mempool admission). */
  spend?(p: P): bigint;
  /**
   * The message may carry fee 0 (below the chain's minimum fee): the faucet's drip request, so an
   * account with nothing can ask for coins. Nobody is paid to include it, so its handler must bound
   * how often it can apply (per block, per recipient); a message that throws is not included.
   */
  feeless?: boolean;
  /** Bounded work of the handler, in units of a plain transfer (1 if absent); a block's total is capped. */
  weight?(p: P): number;
  /** The cross-shard record this message will open, for the API while it is still pending (null: none). */
  xferPreview?(p: P, env: TxEnvelope, params: StateParams): { kind: string; to: Uint8Array; amount: bigint; dstShard: number } | null;
  /**
   * The client side, for generic tools (\`qnexus tx <module> <name> --arg value…\`, the SDK's
   * \`buildMsg\`): the named arguments and how to build the message from their strings. Throws a
   * typed error (TX_MALFORMED, TX_BAD_AMOUNT…) for a bad argument. Absent: no generic client.
   */
  client?: {
    args: readonly { name: string; help: string; optional?: boolean }[];
    build(args: Readonly<Record<string, string>>): P;
  };
  /** Effects, on the transaction's branch; throws a typed error and nothing is written. */
  handle(m: MsgCtx, p: P): void;
  /** JSON fields of the message for the API (`GET /v1/txs/{hash}`), merged after `kind`. */
  json(p: P): Record<string, unknown>;
}

/** A cross-shard operation's effects; the 2PC engine (xfer) owns records, escrow of `amount`, proofs and deadlines. */
export interface XferOpDef {
  /** Op number within the module (1..255). */
  op: number;
  /** Name shown as the record's `kind` in the API. */
  name: string;
  /** Which participants: a shard to another shard, a shard to the beacon, or the beacon to a shard. */
  route: 'shard-shard' | 'shard-beacon' | 'beacon-shard';
  /**
   * An xcall into a module's shared object (a pool, a market): the destination credits `amount` to
   * this module account (its name), which exists on every shard, instead of to an account whose
   * home shard is the destination; a record naming any other recipient is refused
   * (TX_BAD_RECIPIENT). Absent: `to` is an ordinary account of the destination shard.
   */
  toModule?: string;
  /** Stateless check of the op's payload (length, shape); a bad one makes the entry malformed. */
  checkPayload?(x: XferInfo, params: StateParams): boolean;
  /**
   * Source, right after the engine escrowed `amount` (on the same branch, so a throw undoes the
   * escrow): lock whatever else the op moves (an NFT, an order's reservation).
   */
  lock?(ctx: ExecCtx, x: XferInfo): void;
  /** Destination: validate and reserve, or return a refusal code (the credit of `amount` is checked generically first). */
  prepare?(ctx: ExecCtx, x: XferInfo): string | null;
  /** Source, on abort: who gets the escrow back (default `x.from`). */
  refundTo?(x: XferInfo): Uint8Array;
  /** Source, after the generic commit (export) or abort (refund). */
  settleSource?(ctx: ExecCtx, x: XferInfo, commit: boolean): void;
  /** Destination, after the generic credit of a commit (or on an abort). */
  settleDestination?(ctx: ExecCtx, x: XferInfo, commit: boolean): void;
}

/** A read-only query a module serves at `GET /v1/<module>/<name>/{param}…`. */
export interface QueryDef {
  name: string;
  summary: string;
  /** Path parameters after `/v1/<module>/<name>/`, in order. */
  params: string[];
  /** JSON Schema (2020-12) of the answer, for the OpenAPI document; absent = any object. */
  response?: Readonly<Record<string, unknown>>;
  /** Answer from the committed state (a reader, never a writer); throw a typed error for bad input. */
  run(read: ModuleReader, params: Record<string, string>): unknown;
  /**
   * The keys (module-relative) `run` reads for these arguments, when it reads no others (no
   * `range`): it makes the query provable (`?proof=true`). The node proves these keys at one
   * height and runs the query over the proven values only (`runProven`), and a light client runs
   * it again over the same values, so the answer is what the proof says. Throw a typed error for
   * a bad argument, as `run` does.
   */
  proofKeys?(params: Record<string, string>): Uint8Array[];
}

/** What a query or a view reads: a module's store over the committed state. */
export interface ModuleReader {
  store: ModuleStore;
  params: StateParams;
  /**
   * A balance in the same state (the bank's, read-only): what a module account holds, for a query
   * that shows it. In a provable query it reads proven values only, like `store`.
   */
  balance(addr: Uint8Array, denom: string): bigint;
}

/** The reader of module `id` over `kv`. */
export function moduleReader(kv: Branch, id: number, params: StateParams): ModuleReader {
  return { store: new ModuleStore(kv, id), params, balance: (addr, denom) => bank.balance({ store: (i) => new ModuleStore(kv, i) }, addr, denom) };
}

export interface GenesisDef<G> {
  /** The module's section of the genesis file (`modules.<name>`), parsed strictly; absent → `default()`. */
  parse(json: unknown): G;
  default(): G;
  /** Write the section into the genesis state of one shard. */
  init(ctx: ExecCtx, g: G): void;
}

export interface Module {
  name: string;
  /** First byte of every state key and message kind of this module; never changes once a chain runs. */
  id: number;
  msgs?: readonly MsgDef<never>[];
  xfers?: readonly XferOpDef[];
  /** Names of the module accounts it holds value in (addresses: `moduleAccount(name)`); their balances are the module's, not users'. */
  accounts?: readonly string[];
  /** The module's error codes (each prefixed with its name in capitals) and their HTTP statuses. */
  errors?: Readonly<Record<string, number>>;
  genesis?: GenesisDef<unknown>;
  queries?: readonly QueryDef[];
  /** Before the block's transactions, on the block branch; bounded. */
  beginBlock?(ctx: ExecCtx): void;
  /** After them; bounded. */
  endBlock?(ctx: ExecCtx): void;
  /**
   * Called with every fee paid, already debited from the sender: the module takes what it books
   * (credits to its account, burns with `bank.burnFees`) and returns what is left for the next
   * module; what the last one leaves goes to the fee collector. The supply identity, checked at the
   * end of the block, holds only if what it took was booked exactly.
   */
  onFee?(ctx: ExecCtx, fee: bigint): bigint;
  /** Checked at the end of every block: throw (any error) and the block is invalid. */
  invariants?(ctx: ExecCtx): void;
}

/** Type-erase a message definition for a module's list, keeping the definition itself checked against its payload type. */
export function msg<P>(def: MsgDef<P>): MsgDef<never> {
  return def as unknown as MsgDef<never>;
}

/** A module error, raised with `throw moduleError(...)`: its code must be in the module's `errors`. */
export type ModuleErrorCode = ErrorCode | string;

/** A key and its proven value (null: proven absent), as a state proof carries them. */
export interface ProvenValue {
  key: Uint8Array;
  value: Uint8Array | null;
}

/**
 * A reader over proven values only: `get` of a proven key answers its proven value, any other
 * read throws INTERNAL (a query reading what it did not name in `proofKeys` is a bug in the
 * query, never something to answer from unproven state).
 */
export class ProvenReader implements KVReader {
  private readonly values = new Map<KeyHex, Uint8Array | null>();
  constructor(entries: readonly ProvenValue[]) {
    for (const e of entries) this.values.set(toHex(e.key), e.value);
  }
  get(key: KeyHex): Uint8Array | undefined {
    const v = this.values.get(key);
    if (v === undefined) throw new QnexusError('INTERNAL', `read of state key ${key}, which is not among the proven keys`);
    return v ?? undefined;
  }
  range(prefix: KeyHex): [KeyHex, Uint8Array][] {
    throw new QnexusError('INTERNAL', `range read under ${prefix} over proven keys: a provable query reads single keys only`);
  }
}

/** The full state keys (module id ‖ key) a provable query reads for `args`; BAD_REQUEST for a query that is not provable. */
export function queryProofKeys(m: Pick<Module, 'id' | 'name'>, q: QueryDef, args: Record<string, string>): Uint8Array[] {
  if (!q.proofKeys) throw new QnexusError('BAD_REQUEST', `query ${m.name}/${q.name} reads a range of keys: it has no proof (only queries of single keys do)`);
  return q.proofKeys(args).map((k) => moduleKey(m.id, k));
}

/**
 * Run a provable query over proven values only (the node after proving its keys at one height,
 * a light client after verifying them). `entries` must be exactly the query's `proofKeys`, in
 * order: INTERNAL otherwise.
 */
export function runProven(m: Pick<Module, 'id' | 'name'>, q: QueryDef, params: StateParams, args: Record<string, string>, entries: readonly ProvenValue[]): unknown {
  const keys = queryProofKeys(m, q, args);
  if (keys.length !== entries.length || keys.some((k, i) => !bytesEqual(k, entries[i]!.key))) {
    throw new QnexusError('INTERNAL', `query ${m.name}/${q.name}: the proven keys are not the keys it names for these arguments`);
  }
  return q.run(moduleReader(new Branch(new ProvenReader(entries)), m.id, params), args);
}
