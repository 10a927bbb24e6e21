import { formatAddress, homeShard, parseAddress, schemeLengths, toHex } from '@qnexus/crypto';
import { QnexusError, Writer, decodeWith, isSystemKind, registerModuleErrors, type Genesis, type TxEnvelope, type TxMsg, type XferInfo } from '@qnexus/types';
import { ExecCtx, stateParams, type BlockContext, type StateParams } from './ctx.js';
import { moduleReader, type Module, type MsgDef, type QueryDef, type SigCheck, type XferOpDef } from './module.js';
import { FEE_COLLECTOR, NATIVE_DENOM, bank, bankModule, denomKeeper, moduleAccount, type DenomKeeper } from './modules/bank/index.js';
import { xferKeeperOf, xferModule, type XferKeeper } from './modules/xfer/index.js';
import { Branch, ModuleStore, type Writes } from './store.js';
import { StateView, WorldState, changesOf, type BlockExecution } from './world.js';

/**
 * The host: runs the modules an app lists over one key-value state. It is the
 * deterministic application behind the node (CometBFT's ABCI boundary: the
 * node checks, proposes, validates and commits blocks through it and never
 * looks inside the state), and it is the only code that dispatches on a
 * transaction's kind.
 */

/** The bank as modules see it: balances, sends, module accounts; no minting (that is `denoms`). */
export type BankKeeper = Omit<typeof bank, 'genesisCredit' | 'setSupply' | 'setAuth' | 'setBalance'>;

/** The keepers of the built-in modules, handed to app modules at wiring (their `expected` interfaces are subsets). */
export interface HostKeepers {
  bank: BankKeeper;
  xfer: XferKeeper;
  /** Mint and burn for a module's own denoms (`<name>/…`): call with the module's own name. */
  denoms(owner: string): DenomKeeper;
}

/** Why an included transaction's message was refused (its fee was charged, nothing else written). */
export interface TxFailure {
  code: string;
  message: string;
}

/** A refused message of a block: its index among the block's transactions. */
export interface BlockTxFailure extends TxFailure {
  index: number;
}

interface Decoded {
  mod: Module;
  def: MsgDef<unknown>;
  p: unknown;
}

const opKey = (module: number, op: number) => (module << 8) | op;

/** Options every generic `qnexus tx <module> <msg>` command has: a message's own arguments cannot take these names. */
export const RESERVED_CLIENT_ARGS: ReadonlySet<string> = new Set(['keystore', 'fee', 'nonce', 'chain-id', 'node', 'beacon', 'wait', 'timeout', 'binary', 'json', 'passphrase-file', 'passphrase-env', 'check-node', 'module', 'help']);

export class StateMachine {
  readonly modules: readonly Module[];
  private readonly kinds = new Map<number, { mod: Module; def: MsgDef<unknown> }>();
  private readonly ops = new Map<number, XferOpDef>();
  private readonly byName = new Map<string, Module>();
  private readonly decoded = new WeakMap<TxEnvelope, Decoded>();
  /** Addresses of every module account (their balances are not users' in the API's totals). */
  readonly moduleAccounts: readonly Uint8Array[];
  private moduleAccountHex = new Set<string>();

  /**
   * `wire(keepers)` returns the app's modules given the built-in keepers; the
   * host puts bank and xfer first. Ids, message names and error codes must be
   * unique: a clash is a wiring bug and throws at start.
   */
  constructor(wire: (k: HostKeepers) => readonly Module[]) {
    const lookup = (m: number, op: number) => this.ops.get(opKey(m, op));
    const xferKeeper = xferKeeperOf(lookup);
    // Users may not send to module accounts (their books would no longer match: a block breaking a
    // module's invariant is invalid); the set is known once every module is listed, read lazily.
    const isModuleAccount = (a: Uint8Array) => this.moduleAccountHex.has(toHex(a));
    this.modules = [bankModule(xferKeeper, isModuleAccount), xferModule(lookup, isModuleAccount), ...wire({ bank, xfer: xferKeeper, denoms: denomKeeper })];
    const names = new Set<string>();
    for (const m of this.modules) {
      if (!Number.isInteger(m.id) || m.id < 1 || m.id > 255) throw new Error(`module ${m.name}: id ${m.id} is not in 1..255`);
      if ([...this.byName.values()].some((o) => o.id === m.id)) throw new Error(`module ${m.name}: id ${m.id} is taken`);
      if (!/^[a-z][a-z0-9]{1,31}$/.test(m.name) || this.byName.has(m.name)) throw new Error(`module name ${JSON.stringify(m.name)} is invalid or taken`);
      this.byName.set(m.name, m);
      for (const d of m.msgs ?? []) {
        if (!Number.isInteger(d.type) || d.type < 1 || d.type > 255) throw new Error(`${m.name}/${d.name}: type ${d.type} is not in 1..255`);
        if (names.has(d.name)) throw new Error(`message name ${d.name} is taken`);
        for (const a of d.client?.args ?? []) {
          if (RESERVED_CLIENT_ARGS.has(a.name) || !/^[a-z][a-zA-Z0-9-]{0,31}$/.test(a.name)) throw new Error(`${m.name}/${d.name}: client argument --${a.name} is reserved by the CLI or malformed`);
        }
        names.add(d.name);
        this.kinds.set((m.id << 8) | d.type, { mod: m, def: d as MsgDef<unknown> });
      }
      for (const o of m.xfers ?? []) {
        if (this.ops.has(opKey(m.id, o.op))) throw new Error(`${m.name}: cross-shard op ${o.op} defined twice`);
        this.ops.set(opKey(m.id, o.op), o);
      }
      if (m.errors) registerModuleErrors(m.name, m.errors);
    }
    this.moduleAccounts = [FEE_COLLECTOR, ...this.modules.flatMap((m) => (m.accounts ?? []).map(moduleAccount))];
    this.moduleAccountHex = new Set(this.moduleAccounts.map((a) => toHex(a)));
  }

  module(name: string): Module | undefined {
    return this.byName.get(name);
  }

  /** A message definition by kind, with its module. */
  msgDef(kind: number): { mod: Module; def: MsgDef<unknown> } | undefined {
    return this.kinds.get(kind);
  }

  /** Every message kind: (module name, message name, kind), for the CLI and the docs. */
  messages(): { module: string; name: string; kind: number }[] {
    return [...this.kinds].map(([kind, { mod, def }]) => ({ module: mod.name, name: def.name, kind }));
  }

  /** A message definition by module and message name. */
  msgByName(module: string, name: string): { mod: Module; def: MsgDef<unknown>; kind: number } | undefined {
    const m = this.byName.get(module);
    const def = m?.msgs?.find((d) => d.name === name) as MsgDef<unknown> | undefined;
    return m && def ? { mod: m, def, kind: (m.id << 8) | def.type } : undefined;
  }

  /**
   * Build a message from named string arguments through its module's client
   * side (the generic \`qnexus tx <module> <name>\`). Throws TX_UNKNOWN_KIND for an
   * unknown module/message or one without a client side.
   */
  buildMsg(module: string, name: string, args: Readonly<Record<string, string>>): TxMsg {
    const e = this.msgByName(module, name);
    if (!e || !e.def.client) throw new QnexusError('TX_UNKNOWN_KIND', `no message ${module}/${name} with a client side; known: ${this.messages().map((m) => `${m.module}/${m.name}`).join(', ')}`);
    const p = e.def.client.build(args);
    const w = new Writer(256);
    e.def.encode(w, p as never);
    return { kind: e.kind, msg: w.finish() };
  }

  xferOp(module: number, op: number): XferOpDef | undefined {
    return this.ops.get(opKey(module, op));
  }

  /** The record kind the API shows: the op's name. */
  xferKindName(x: Pick<XferInfo, 'module' | 'op'>): string {
    return this.xferOp(x.module, x.op)?.name ?? `${x.module}/${x.op}`;
  }

  /** Every module query, for the API to mount under `/v1/<module>/<name>`. */
  queries(): { module: Module; query: QueryDef }[] {
    return this.modules.flatMap((m) => (m.queries ?? []).map((query) => ({ module: m, query })));
  }

  /** Run a module query on the committed state. */
  query(state: WorldState, params: StateParams, m: Module, q: QueryDef, args: Record<string, string>): unknown {
    return q.run(moduleReader(new Branch(state.kv), m.id, params), args);
  }

  /** Decode a transaction's message (cached on the envelope). Throws TX_UNKNOWN_KIND / TX_MALFORMED. */
  decode(env: TxEnvelope): Decoded {
    const hit = this.decoded.get(env);
    if (hit) return hit;
    const k = env.tx.body.payload.kind;
    const e = this.kinds.get(k);
    if (!e) throw new QnexusError('TX_UNKNOWN_KIND', `unknown transaction kind ${k} (module ${k >> 8}, type ${k & 0xff})`);
    let p: unknown;
    try {
      p = decodeWith(env.tx.body.payload.msg, e.def.name, (r) => e.def.decode(r));
    } catch (err) {
      if (err instanceof QnexusError && err.code === 'MALFORMED') throw new QnexusError('TX_MALFORMED', err.message);
      throw err;
    }
    const d = { ...e, p };
    this.decoded.set(env, d);
    return d;
  }

  /**
   * Checks that need no state: chain id, parameter set, the message decodes,
   * then for account transactions the fee floor and home shard, and the
   * message's own `validate` (for beacon entries, the beacon key and shape).
   * Run at admission (before gossip) and again in block validation.
   */
  checkStateless(env: TxEnvelope, p: StateParams): void {
    const b = env.tx.body;
    if (b.chainId !== p.chainId) throw new QnexusError('TX_WRONG_CHAIN', `transaction is for chain ${JSON.stringify(b.chainId)}, this is ${JSON.stringify(p.chainId)}`);
    const len = schemeLengths(p.scheme);
    if ((b.publicKey !== undefined && b.publicKey.length !== len.publicKey) || env.tx.signature.length !== len.signature) {
      throw new QnexusError('TX_WRONG_SCHEME', `this chain uses ${p.scheme} (public key ${len.publicKey} B, signature ${len.signature} B)`);
    }
    // Beacon entries are authenticated by the genesis beacon key they carry: never keyless.
    if (b.publicKey === undefined && isSystemKind(b.payload.kind)) throw new QnexusError('XS_UNAUTHORIZED', 'beacon entries must carry the genesis beacon key');
    const d = this.decode(env);
    if (!isSystemKind(b.payload.kind)) {
      if (b.fee < p.minFee && !(d.def.feeless && b.fee === 0n)) throw new QnexusError('TX_FEE_TOO_LOW', `fee ${b.fee} is below the minimum ${p.minFee}`);
      // An account lives on its home shard only; its transactions are executed there.
      const from = homeShard(env.from, p.shardCount);
      if (from !== p.shard) throw new QnexusError('TX_WRONG_SHARD', `sender ${env.fromStr} lives on shard ${from}; submit to a node of that shard (this is shard ${p.shard})`);
    }
    d.def.validate?.(d.p, env, p);
  }

  /** Extra signatures a message carries (checked once, with the transaction's, on the verify pool). */
  signatures(env: TxEnvelope): SigCheck[] {
    const d = this.decode(env);
    return d.def.signatures ? d.def.signatures(d.p as never, env) : [];
  }

  /** What the sender gives up in the native denom: the message's spend plus the fee (0 for beacon entries). */
  cost(env: TxEnvelope): bigint {
    if (isSystemKind(env.tx.body.payload.kind)) return 0n;
    const d = this.decode(env);
    return (d.def.spend ? d.def.spend(d.p) : 0n) + env.tx.body.fee;
  }

  weight(env: TxEnvelope): number {
    const d = this.decode(env);
    return d.def.weight ? Math.max(1, Math.ceil(d.def.weight(d.p))) : 1;
  }

  /** The API's JSON of a transaction: kind, fee, nonce, raw, the sender for account transactions, then the message's fields. */
  txJson(env: TxEnvelope): Record<string, unknown> {
    const d = this.decode(env);
    const b = env.tx.body;
    const common = { hash: env.hashHex, kind: d.def.name, fee: b.fee.toString(), nonce: b.nonce.toString(), raw: toHex(env.raw) };
    return { ...common, ...(isSystemKind(b.payload.kind) ? {} : { from: env.fromStr }), ...d.def.json(d.p) };
  }

  /** The message's name (the API's `kind`); 'unknown' for a kind no module defines. */
  kindName(env: TxEnvelope): string {
    try {
      return this.decode(env).def.name;
    } catch {
      return 'unknown';
    }
  }

  /** Who a transaction touches: its sender and its recipient if it names one (a beacon entry: the transfer's endpoints). */
  parties(env: TxEnvelope): { from: string; to: string | null } {
    const d = this.decode(env);
    const j = d.def.json(d.p as never);
    const from = typeof j.from === 'string' ? j.from : env.fromStr;
    return { from, to: typeof j.to === 'string' ? j.to : null };
  }

  /** The record a pending transaction will open, if any (API, before it is in a block). */
  xferPreview(env: TxEnvelope, p: StateParams): { kind: string; from: string; to: string; amount: bigint; dstShard: number } | null {
    const d = this.decode(env);
    const v = d.def.xferPreview?.(d.p, env, p);
    return v ? { kind: v.kind, from: env.fromStr, to: formatAddress(v.to), amount: v.amount, dstShard: v.dstShard } : null;
  }

  /**
   * The ante step of an account transaction: nonce, key registration on the
   * first transaction, then the fee: debited from the sender, offered to every module's `onFee`
   * (staking burns a share and books the proposer's tip), the rest to the fee collector.
   */
  private ante(ctx: ExecCtx, env: TxEnvelope, keysBefore: StateView | undefined): void {
    const b = env.tx.body;
    // A keyless transaction's signature was checked against the key registered for its sender:
    // in a block, registered before the block (`keysBefore`, the parent state), so a key carried
    // by an earlier transaction of the same block does not count; elsewhere, in the state it runs on.
    if (env.publicKey === null && bank.publicKey(keysBefore ?? ctx, env.from) === null) {
      throw new QnexusError('TX_KEY_UNKNOWN', `${env.fromStr} has no registered public key: send the public key with the account's first transaction`);
    }
    const nonce = bank.nonce(ctx, env.from);
    if (b.nonce < nonce) throw new QnexusError('TX_NONCE_STALE', `nonce ${b.nonce} already used; the account's next nonce is ${nonce}`);
    if (b.nonce > nonce) throw new QnexusError('TX_NONCE_FUTURE', `nonce ${b.nonce} is ahead of the account's next nonce ${nonce}`);
    const cost = this.cost(env);
    const balance = bank.balance(ctx, env.from);
    if (balance < cost) throw new QnexusError('TX_INSUFFICIENT_FUNDS', `balance ${balance} is less than amount + fee = ${cost}`);
    bank.setAuth(ctx, env.from, { nonce: nonce + 1n, publicKey: env.publicKey });
    if (b.fee === 0n) return;
    // The fee leaves the sender, each module with a fee hook takes its part, the rest is the collector's.
    bank.debit(ctx, env.from, b.fee);
    let left = b.fee;
    for (const m of this.modules) {
      if (!m.onFee || left === 0n) continue;
      const after = m.onFee(ctx, left);
      if (after < 0n || after > left) throw new QnexusError('INVARIANT_BROKEN', `module ${m.name} took ${left - after} of a fee of ${left}`);
      left = after;
    }
    if (left > 0n) bank.credit(ctx, FEE_COLLECTOR, left);
  }

  /**
   * Apply one transaction to a branch. Throws a QnexusError with a stable code
   * and leaves the branch untouched if the transaction cannot apply: it runs on
   * a child branch that is folded in only on success.
   */
  applyTx(kv: Branch, env: TxEnvelope, p: StateParams, block: BlockContext): void {
    this.run(kv, env, p, block, false);
  }

  /**
   * Apply one transaction as a block does: like `applyTx`, except that when the message's
   * handler refuses (a deadline passed, slippage, an order off the tick…) the transaction is
   * still included and its sender pays for it: the ante step (nonce, fee) stands, the handler's
   * writes vanish, and the refusal is returned (the block's `failed`). Bad input costs the fee
   * and never leaves the sender's later nonces stuck behind it. Anything that fails before the
   * handler (stateless checks, nonce, funds for the fee) still throws: such a transaction is
   * never included. Beacon entries and feeless messages keep `applyTx`'s rule (nobody pays
   * for them, so a refused one is left out).
   */
  applyInBlock(kv: Branch, env: TxEnvelope, p: StateParams, block: BlockContext, keysBefore?: StateView): TxFailure | null {
    return this.run(kv, env, p, block, true, keysBefore);
  }

  /** `keysBefore`: the state before the block, where a keyless transaction's key must be registered (absent: the state it runs on). */
  private run(kv: Branch, env: TxEnvelope, p: StateParams, block: BlockContext, charge: boolean, keysBefore?: StateView): TxFailure | null {
    const ctx = new ExecCtx(kv.branch(), p, block);
    this.checkStateless(env, p);
    const d = this.decode(env);
    const system = isSystemKind(env.tx.body.payload.kind);
    if (!system) this.ante(ctx, env, keysBefore);
    // The handler runs on a branch of its own when a refusal is to be charged, so the ante's writes survive it.
    const h = charge && !system && !d.def.feeless ? ctx.child() : ctx;
    try {
      d.def.handle({ ctx: h, env, store: h.store(d.mod.id) }, d.p as never);
    } catch (e) {
      if (h === ctx || !(e instanceof QnexusError)) throw e;
      ctx.kv.commit();
      return { code: e.code, message: e.message };
    }
    if (h !== ctx) h.kv.commit();
    ctx.kv.commit();
    return null;
  }

  beginBlock(ctx: ExecCtx): void {
    for (const m of this.modules) m.beginBlock?.(ctx);
  }

  endBlock(ctx: ExecCtx): void {
    for (const m of this.modules) m.endBlock?.(ctx);
  }

  /**
   * Invariants at the end of a block, as part of its validity: each denom's
   * supply identity (Σ balances, module accounts included, + burned + escrow
   * + exported − imported = genesis + minted), then every module's own.
   */
  checkInvariants(ctx: ExecCtx): void {
    const view = new StateView(ctx.kv);
    for (const t of view.denomTotals()) {
      if (t.balances + t.burned + t.escrow + t.exported - t.imported !== t.genesis + t.minted) {
        throw new QnexusError('INVARIANT_BROKEN', `supply of ${t.denom}: balances ${t.balances} + burned ${t.burned} + escrow ${t.escrow} + exported ${t.exported} − imported ${t.imported} ≠ genesis ${t.genesis} + minted ${t.minted}`);
      }
    }
    for (const m of this.modules) {
      try {
        m.invariants?.(ctx);
      } catch (e) {
        throw new QnexusError('INVARIANT_BROKEN', `module ${m.name}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }

  private finish(state: WorldState, ctx: ExecCtx): Omit<BlockExecution, 'failed'> {
    this.endBlock(ctx);
    try {
      this.checkInvariants(ctx);
    } catch (e) {
      if (e instanceof QnexusError) throw new QnexusError('BAD_BLOCK', `block breaks an invariant: ${e.message}`);
      throw e;
    }
    const changes = changesOf(ctx.kv.writes);
    return { changes, stateRoot: state.rootWith(changes) };
  }

  /** Execute a block: begin hooks, its transactions in order, end hooks, invariants; any failure makes the block invalid. */
  executeBlock(state: WorldState, txs: readonly TxEnvelope[], p: StateParams, block: BlockContext): BlockExecution {
    const ctx = new ExecCtx(new Branch(state.kv), p, block);
    this.beginBlock(ctx);
    let weight = 0;
    const failed: BlockTxFailure[] = [];
    const keysBefore = new StateView(state.kv);
    txs.forEach((env, i) => {
      try {
        weight += this.weight(env);
        if (weight > p.maxBlockWeight) throw new QnexusError('BAD_BLOCK', `block weight exceeds ${p.maxBlockWeight}`);
        const f = this.applyInBlock(ctx.kv, env, p, block, keysBefore);
        if (f) failed.push({ index: i, ...f });
      } catch (e) {
        if (e instanceof QnexusError) throw new QnexusError('BAD_BLOCK', `transaction ${i} (${env.hashHex}) is invalid: ${e.code}: ${e.message}`);
        throw e;
      }
    });
    return { ...this.finish(state, ctx), failed };
  }

  /**
   * Proposer side of executeBlock: apply candidates in order and skip any
   * that fail (a racing spend, a nonce gap, a replayed beacon entry) or would
   * push the block over its weight; a skipped transaction's branch is dropped,
   * so it leaves nothing behind and the block is valid by construction.
   */
  executeApplicable(
    state: WorldState,
    txs: readonly TxEnvelope[],
    p: StateParams,
    block: BlockContext,
  ): { applied: TxEnvelope[]; skipped: { env: TxEnvelope; error: QnexusError }[]; exec: BlockExecution } {
    try {
      return this.buildOn(state, txs, p, block, false);
    } catch (e) {
      if (!(e instanceof QnexusError) || e.code !== 'BAD_BLOCK') throw e;
      // A transaction broke an invariant (a module bug): find it by checking after each one and
      // leave it out, so one bad transaction cannot stop this shard from proposing. Costly, but
      // only ever on this path.
      return this.buildOn(state, txs, p, block, true);
    }
  }

  private buildOn(
    state: WorldState,
    txs: readonly TxEnvelope[],
    p: StateParams,
    block: BlockContext,
    checkEach: boolean,
  ): { applied: TxEnvelope[]; skipped: { env: TxEnvelope; error: QnexusError }[]; exec: BlockExecution } {
    const ctx = new ExecCtx(new Branch(state.kv), p, block);
    this.beginBlock(ctx);
    const applied: TxEnvelope[] = [];
    const skipped: { env: TxEnvelope; error: QnexusError }[] = [];
    const failed: BlockTxFailure[] = [];
    const keysBefore = new StateView(state.kv);
    let weight = 0;
    for (const env of txs) {
      try {
        const w = this.weight(env);
        if (weight + w > p.maxBlockWeight) throw new QnexusError('BLOCK_FULL', `the block's weight budget (${p.maxBlockWeight}) is spent`);
        let f: TxFailure | null;
        if (checkEach) {
          const trial = new ExecCtx(ctx.kv.branch(), p, block);
          f = this.applyInBlock(trial.kv, env, p, block, keysBefore);
          this.checkInvariants(trial);
          trial.kv.commit();
        } else f = this.applyInBlock(ctx.kv, env, p, block, keysBefore);
        weight += w;
        if (f) failed.push({ index: applied.length, ...f });
        applied.push(env);
      } catch (e) {
        if (!(e instanceof QnexusError)) throw e;
        skipped.push({ env, error: e });
      }
    }
    return { applied, skipped, exec: { ...this.finish(state, ctx), failed } };
  }

  /** The genesis state of one shard: the genesis accounts whose home shard it is, then each module's genesis. */
  genesisState(g: Genesis, shard: number): WorldState {
    const s = WorldState.memory();
    s.kv.apply(this.genesisWrites(g, shard), 0);
    return s;
  }

  /** The writes of a shard's genesis state (version 0), for a state kept elsewhere (the node's database). */
  genesisWrites(g: Genesis, shard: number): Writes {
    const ctx = new ExecCtx(new Branch(WorldState.memory().kv), stateParams(g, shard), { height: 0, slot: 0, proposer: new Uint8Array(20) });
    for (const a of g.accounts) {
      const addr = parseAddress(a.address);
      if (homeShard(addr, g.shardCount) === shard) bank.genesisCredit(ctx, addr, a.balance);
    }
    // The native denom's supply record exists on every shard, even one with no genesis accounts.
    bank.setSupply(ctx, NATIVE_DENOM, bank.supply(ctx));
    for (const m of this.modules) if (m.genesis) m.genesis.init(ctx, this.moduleGenesis(g, m));
    return ctx.kv.writes;
  }

  /**
   * A module's genesis section from the genesis file (`modules[].genesis`), parsed by the module;
   * its default when the file has none. Throws BAD_GENESIS for a section the module refuses.
   */
  moduleGenesis(g: Genesis, m: Module): unknown {
    if (!m.genesis) return undefined;
    const json = g.modules?.find((x) => x.name === m.name)?.genesis;
    if (json === undefined) return m.genesis.default();
    try {
      return m.genesis.parse(json);
    } catch (e) {
      throw new QnexusError('BAD_GENESIS', `module ${m.name}: invalid genesis section: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /**
   * Σ native balances of users (module accounts excluded) and of module accounts, on a reader;
   * `fees` is the part of `modules` that is fees on their way (the fee collector and the accounts
   * of modules with a fee hook), the rest is what modules hold (a faucet, pools, markets).
   */
  nativeSplit(view: StateView): { users: bigint; modules: bigint; fees: bigint } {
    let modules = 0n;
    for (const a of this.moduleAccounts) modules += bank.balance(view, a);
    let fees = bank.balance(view, FEE_COLLECTOR);
    for (const m of this.modules) if (m.onFee) for (const a of m.accounts ?? []) fees += bank.balance(view, moduleAccount(a));
    return { users: bank.totalBalances(view) - modules, modules, fees };
  }
}

