// Shared by the state tests (not a test file itself: mocha only picks up *.test.ts).
import assert from 'node:assert/strict';
import { addressFromPublicKey, formatAddress, generateKeyPair, sha256, toHex, utf8, type KeyPair } from '@qnexus/crypto';
import { QnexusError, encodeTx, encodeXDecision, encodeXPrepare, makeGenesis, openTx, type ErrorCode, type TxEnvelope, type TxMsg, type XferInfo } from '@qnexus/types';
import {
  BANK_XFER_OP,
  Branch,
  TrieState,
  ExecCtx,
  MODULE_IDS,
  NATIVE_DENOM,
  StateView,
  WorldState,
  bank,
  sendMsg,
  stateParams,
  type BlockContext,
  type StateParams,
} from '@qnexus/state';
import { createApp } from '@qnexus/app';
import { STAKING_OP, fees, stakeMsg, stakingOpName, unstakeMsg } from '@qnexus/module-staking';

/**
 * The application the state tests run: the host with the app's modules
 * (bank and xfer built in, staking wired by @qnexus/app).
 */
export const app = createApp();

/**
 * Pending writes over a state, read through the keepers' views: what the old
 * tests called an overlay. `kv` is what applyTx takes; the reads are StateView's.
 */
export class Pending extends StateView {
  constructor(readonly kv: Branch) {
    super(kv);
  }

  /** Pending writes over a committed state, or a child of other pending writes. */
  static over(s: WorldState | Pending): Pending {
    return new Pending(s instanceof Pending ? s.kv.branch() : new Branch(s.kv));
  }
}

/** The write set of a branch as comparable data (key hex → value hex | null), in key order. */
export function snapshot(b: Branch | Pending): [string, string | null][] {
  const kv = b instanceof Pending ? b.kv : b;
  return [...kv.writes].map(([k, v]): [string, string | null] => [k, v ? toHex(v) : null]).sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
}

/** `fn` throws a QnexusError with this code (a core code, or a module's own, e.g. BANK_BAD_DENOM). */
export function throwsCode(fn: () => unknown, code: ErrorCode | `${Uppercase<string>}_${string}`, msg?: string): void {
  assert.throws(
    fn,
    (e: unknown) => {
      assert.ok(e instanceof QnexusError, `expected QnexusError, got ${String(e)}`);
      assert.equal(e.code, code, `${msg ?? ''}: ${e.message}`);
      return true;
    },
    msg,
  );
}

/** Seeded PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NO_BLOCK: BlockContext = { height: 0, slot: 0, proposer: new Uint8Array(20) };

/**
 * A state holding exactly these native balances, booked as genesis supply (so
 * every invariant holds), e.g. a balance close to u64 max that no genesis
 * file would allow.
 */
export function stateWith(credits: readonly [Uint8Array, bigint][], p: StateParams): WorldState {
  const kv = new Branch(TrieState.memory());
  const ctx = new ExecCtx(kv, p, NO_BLOCK);
  for (const [addr, amount] of credits) bank.genesisCredit(ctx, addr, amount);
  bank.setSupply(ctx, NATIVE_DENOM, bank.supply(ctx));
  return WorldState.fromEntries([...kv.writes].map(([k, v]): [string, Uint8Array] => [k, v!]));
}

/** Every entry of a committed state, sorted by key (the persisted form). */
export function entriesOf(s: WorldState): [string, Uint8Array][] {
  return [...s.kv.all()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** Reads of a state as it would be after `writes` (a block's changes), without applying them. */
export function viewAfter(s: WorldState, writes: ReadonlyMap<string, Uint8Array | null>): Pending {
  const b = new Branch(s.kv);
  for (const [k, v] of writes) {
    if (v) b.set(k, v);
    else b.delete(k);
  }
  return new Pending(b);
}

// ------------------------------------------------------------------ the app's reads, in the tests' terms

/**
 * Native-denom totals as the API shows them (GET /v1/supply): burned and the
 * xfer counters of the native denom, `fees` the staking fee account (tips not
 * yet rolled to the beacon) and the fee epoch.
 */
export interface Counters {
  burned: bigint;
  escrow: bigint;
  exported: bigint;
  imported: bigint;
  fees: bigint;
  feeEpoch: number;
}

export function counters(v: StateView): Counters {
  const t = v.denomTotals().find((d) => d.denom === NATIVE_DENOM);
  return { burned: t?.burned ?? 0n, escrow: t?.escrow ?? 0n, exported: t?.exported ?? 0n, imported: t?.imported ?? 0n, fees: fees.held(v), feeEpoch: fees.epoch(v) };
}

/** Tips a proposer (address hex) earned and the shard has not yet sent to the beacon; 0 if none. */
export const pendingFee = (v: StateView, addrHex: string): bigint => fees.pending(v, addrHex);
/** Every proposer with pending tips, by address hex. */
export const pendingFees = (v: StateView): [string, bigint][] => fees.allPending(v);
/** Σ native balances of users (module accounts excluded): the API's `balances`. */
export const userBalances = (v: StateView): bigint => app.nativeSplit(v).users;

// ------------------------------------------------------------------ messages and cross-shard operations

/** A transaction's message, named as the tests (and the CLI's aliases) name them. */
export type Payload =
  | { kind: 'transfer' | 'xtransfer'; to: Uint8Array; amount: bigint; denom?: string }
  | { kind: 'stake'; validatorPublicKey: Uint8Array; amount: bigint; validatorSignature: Uint8Array }
  | { kind: 'unstake'; validator: Uint8Array }
  | { kind: 'xprepare'; xfer: XferInfo }
  | { kind: 'xdecision'; xfer: XferInfo; commit: boolean };

export function message(p: Payload): TxMsg {
  switch (p.kind) {
    case 'transfer':
    case 'xtransfer':
      return sendMsg(p.kind, p);
    case 'stake':
      return stakeMsg(p);
    case 'unstake':
      return unstakeMsg(p);
    case 'xprepare':
      return encodeXPrepare(p.xfer);
    case 'xdecision':
      return encodeXDecision(p.xfer, p.commit);
  }
}

/** The cross-shard operations by the name the API shows as a record's kind. */
export const OPS = {
  transfer: { module: MODULE_IDS.bank, op: BANK_XFER_OP.transfer },
  stake: { module: MODULE_IDS.staking, op: STAKING_OP.stake },
  unstake: { module: MODULE_IDS.staking, op: STAKING_OP.unstake },
  fees: { module: MODULE_IDS.staking, op: STAKING_OP.fees },
  release: { module: MODULE_IDS.staking, op: STAKING_OP.release },
} as const;
export type OpName = keyof typeof OPS;

/** An XferInfo of the native denom from the op's name. */
export function xinfo(o: Omit<XferInfo, 'module' | 'op' | 'denom'> & { kind: OpName; denom?: string }): XferInfo {
  const { kind, denom, ...rest } = o;
  return { ...OPS[kind], denom: denom ?? NATIVE_DENOM, ...rest };
}

/** The op name of a record's info (bank's transfer or one of staking's). */
export function kindOf(x: Pick<XferInfo, 'module' | 'op'>): OpName {
  if (x.module === MODULE_IDS.bank && x.op === BANK_XFER_OP.transfer) return 'transfer';
  const n = stakingOpName(x);
  if (!n) throw new Error(`unknown op ${x.module}/${x.op}`);
  return n;
}

/**
 * A small chain for tests that wire a test module next to the app's: deterministic keys by label,
 * a genesis funding `funded` (1,000,000 each) with one validator per shard, its shard-0 params and
 * a block context, and `tx` to sign (with a dummy signature: the state machine checks none) a
 * message of any kind from a key.
 */
export function testModuleChain(chainId: string, o: { funded: readonly string[]; shardCount?: number }) {
  const key = (label: string): KeyPair => generateKeyPair('ml-dsa-44', sha256(utf8(`${chainId}-${label}`)));
  const addrOf = (k: KeyPair) => addressFromPublicKey(k.publicKey);
  const shardCount = o.shardCount ?? 1;
  const validators = Array.from({ length: shardCount }, (_, i) => key(`validator-${i}`));
  const G = makeGenesis({
    chainId,
    scheme: 'ml-dsa-44',
    genesisTime: 0,
    slotMs: 1000,
    epochLength: 10,
    shardCount,
    minFee: 5n,
    maxBlockTxs: 100,
    xferTimeoutSlots: 10,
    beacon: { publicKey: key('beacon').publicKey, peerId: '12D3KooWJWEKvSFbben74C7H4YtKjhPMTDxd7gP7zxWSUEeF27st' },
    accounts: o.funded.map((label) => ({ address: formatAddress(addrOf(key(label))), balance: 1_000_000n })),
    validators: validators.map((v) => ({ address: formatAddress(addrOf(v)), publicKey: v.publicKey, stake: 10n })),
  });
  const SIG44 = new Uint8Array(2420);
  const tx = (from: KeyPair, kind: number, msg: Uint8Array, nonce: bigint): TxEnvelope =>
    openTx(encodeTx({ body: { chainId, nonce, fee: 5n, publicKey: from.publicKey, payload: { kind, msg } }, signature: SIG44 }));
  return { key, addrOf, G, P: stateParams(G, 0), CTX: { height: 1, slot: 1, proposer: addrOf(validators[0]!) }, tx };
}

/**
 * Commit `writes` as `version` on a trie over a map-backed node store the way the node does
 * (update, install, write the batch, flushed), and follow them in `model` when given.
 */
export function commitTrie<U>(
  t: { update(w: ReadonlyMap<string, Uint8Array | null>, version: number): U; apply(u: U): void; flushed(u: U): void },
  db: { apply(u: U): void },
  writes: ReadonlyMap<string, Uint8Array | null>,
  version: number,
  model?: Map<string, Uint8Array>,
): U {
  const u = t.update(writes, version);
  t.apply(u);
  db.apply(u);
  t.flushed(u);
  if (model) {
    for (const [k, v] of writes) {
      if (v) model.set(k, v);
      else model.delete(k);
    }
  }
  return u;
}
