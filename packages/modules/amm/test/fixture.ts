// Shared by the AMM tests (not a test file itself): a chain of 1..3 shards run by the lead's ShardSim,
// with test denoms credited at genesis by a tiny test module, and signed-shape transactions.
import assert from 'node:assert/strict';
import { addressFromPublicKey, formatAddress, generateKeyPair, homeShard, sha256, utf8, type KeyPair } from '@qnexus/crypto';
import { encodeTx, makeGenesis, openTx, type Genesis, type TxEnvelope, type TxMsg } from '@qnexus/types';
import { ExecCtx, Branch, bank, sendMsg, type Module, type StateMachine, type WorldState } from '@qnexus/state';
import { createApp } from '@qnexus/app';
import { AMM_ACCOUNT, AMM_ID, denomBook, getPool, lpDenom, type Pool } from '../src/index.js';
import { ShardSim } from '../../../state/test/sim.js';

export const MIN_FEE = 5n;
export const QFC = 100_000_000n;
export const DENOMS = ['tst/a', 'tst/b', 'tst/c'] as const;

/** A module that only credits test denoms at genesis (on each account's home shard). */
function testDenoms(credits: readonly { addr: Uint8Array; denom: string; amount: bigint }[]): Module {
  return {
    name: 'tstdenoms',
    id: 201,
    genesis: {
      parse: (j: unknown) => j,
      default: () => null,
      init(ctx: ExecCtx) {
        for (const c of credits) if (homeShard(c.addr, ctx.params.shardCount) === ctx.params.shard) bank.genesisCredit(ctx, c.addr, c.amount, c.denom);
      },
    },
  };
}

export interface Chain {
  sim: ShardSim;
  app: StateMachine;
  G: Genesis;
  keys: KeyPair[];
  addr: (k: KeyPair) => Uint8Array;
  shardOf: (k: KeyPair) => number;
  /** A transaction from `k` with its next nonce (tracked here). */
  tx: (k: KeyPair, m: TxMsg, fee?: bigint) => TxEnvelope;
  /** Run one slot with these transactions (grouped by the sender's shard); returns the skipped ones' codes. */
  step: (txs: TxEnvelope[], o?: Parameters<ShardSim['step']>[1]) => { skipped: { env: TxEnvelope; code: string; message: string }[]; applied: TxEnvelope[][] };
  /** A transaction that must apply (fails the test with its code otherwise). */
  ok: (k: KeyPair, m: TxMsg) => void;
  /** A transaction that must be refused with `code` (and cost nothing: it is not included). */
  refused: (k: KeyPair, m: TxMsg, code: string) => void;
  bal: (k: KeyPair | Uint8Array, denom: string, shard?: number) => bigint;
  pool: (id: Uint8Array) => Pool;
  state: (shard: number) => WorldState;
}

const SIG44 = new Uint8Array(2420);
const keyCache = new Map<string, KeyPair>();
const keyOf = (label: string) => {
  let k = keyCache.get(label);
  if (!k) keyCache.set(label, (k = generateKeyPair('ml-dsa-44', sha256(utf8(`amm-test-${label}`)))));
  return k;
};

/** `n` funded keys (QFC native each, `tokens` of each test denom, or the `credits` given). */
export function chain(o: { shards?: number; n?: number; tokens?: bigint; credits?: (addrs: Uint8Array[]) => { addr: Uint8Array; denom: string; amount: bigint }[]; ammGenesis?: unknown }): Chain {
  const shards = o.shards ?? 1;
  const n = o.n ?? 6;
  const keys = Array.from({ length: n }, (_, i) => keyOf(`acct-${i}`));
  const addr = (k: KeyPair) => addressFromPublicKey(k.publicKey);
  const addrs = keys.map(addr);
  const credits = o.credits ? o.credits(addrs) : addrs.flatMap((a) => DENOMS.map((denom) => ({ addr: a, denom, amount: o.tokens ?? 10n ** 15n })));
  const chainId = `qn-amm-test-${shards}`;
  const G = makeGenesis({
    chainId,
    scheme: 'ml-dsa-44',
    genesisTime: 0,
    slotMs: 1000,
    epochLength: 16,
    shardCount: shards,
    minFee: MIN_FEE,
    maxBlockTxs: 1000,
    xferTimeoutSlots: 10,
    beacon: { publicKey: keyOf('beacon').publicKey, peerId: '12D3KooWJWEKvSFbben74C7H4YtKjhPMTDxd7gP7zxWSUEeF27st' },
    accounts: addrs.map((a) => ({ address: formatAddress(a), balance: QFC })),
    validators: Array.from({ length: shards }, (_, i) => keyOf(`val-${i}`)).map((v) => ({ address: formatAddress(addr(v)), publicKey: v.publicKey, stake: 10n })),
    ...(o.ammGenesis === undefined ? {} : { modules: [{ name: 'amm', id: AMM_ID, genesis: o.ammGenesis }] }),
  });
  const app = createApp(() => [testDenoms(credits)]);
  const sim = new ShardSim({ app, genesis: G });
  const nonces = new Map<string, bigint>();
  const shardOf = (k: KeyPair) => homeShard(addr(k), shards);
  const tx = (k: KeyPair, m: TxMsg, fee = MIN_FEE) => {
    const id = formatAddress(addr(k));
    const nonce = nonces.get(id) ?? 0n;
    nonces.set(id, nonce + 1n);
    return openTx(encodeTx({ body: { chainId, nonce, fee, publicKey: k.publicKey, payload: m }, signature: SIG44 }));
  };
  const step: Chain['step'] = (txs, so) => {
    const by: Record<number, TxEnvelope[]> = {};
    for (const t of txs) (by[homeShard(t.from, shards)] ??= []).push(t);
    const r = sim.step(by, so);
    // A transaction left out did not use its nonce: give it back (tests send one per sender per block when it
    // may fail). One included with its message refused (`charged`: the host's applyInBlock) paid the fee and used it.
    for (const s of r.skipped) if (!(s as { charged?: boolean }).charged) nonces.set(formatAddress(s.env.from), s.env.tx.body.nonce);
    return { skipped: r.skipped, applied: r.applied };
  };
  const ok = (k: KeyPair, m: TxMsg) => {
    const r = step([tx(k, m)]);
    assert.deepEqual(r.skipped.map((s) => `${s.code}: ${s.message}`), [], 'the transaction applies');
  };
  const refused = (k: KeyPair, m: TxMsg, code: string) => {
    const home = homeShard(addr(k), shards);
    const before = sim.states.map((s) => DENOMS.map((d) => bank.balance(s, addr(k), d)));
    const qfc = bank.balance(sim.states[home]!, addr(k));
    const r = step([tx(k, m)]);
    assert.equal(r.skipped.length, 1, `refused with ${code}`);
    assert.equal(r.skipped[0]!.code, code, r.skipped[0]!.message);
    assert.deepEqual(sim.states.map((s) => DENOMS.map((d) => bank.balance(s, addr(k), d))), before, 'a refused transaction moves nothing');
    const paid = qfc - bank.balance(sim.states[home]!, addr(k));
    assert.equal(paid, (r.skipped[0] as { charged?: boolean }).charged ? MIN_FEE : 0n, 'a refused transaction costs nothing but the fee');
  };
  const bal = (k: KeyPair | Uint8Array, denom: string, shard?: number) => {
    const a = k instanceof Uint8Array ? k : addr(k);
    return bank.balance(sim.states[shard ?? homeShard(a, shards)]!, a, denom);
  };
  const pool = (id: Uint8Array) => {
    const p = getPool(sim.states[(id[0]! << 8) | id[1]!]!.store(AMM_ID), id);
    assert.ok(p, 'pool exists');
    return p;
  };
  return { sim, app, G, keys, addr, shardOf, tx, step, ok, refused, bal, pool, state: (s) => sim.states[s]! };
}

/** A bank send (any denom) as a message. */
export const send = (to: Uint8Array, amount: bigint, denom: string): TxMsg => sendMsg('transfer', { to, amount, denom });

/** The AMM's books on one shard, for a denom: module balance, Σ reserves, queued, owed. */
export function books(s: WorldState, denom: string): { balance: bigint; reserves: bigint; queued: bigint } {
  const b = denomBook(s.store(AMM_ID), denom);
  return { balance: bank.balance(s, AMM_ACCOUNT, denom), ...b };
}

/** LP shares in existence on the pool's shard (minted − burned), the locked 1000 excluded. */
export function lpOutstanding(s: WorldState, id: Uint8Array): bigint {
  const sup = bank.supply(s, lpDenom(id));
  return sup.minted - sup.burned;
}

export { Branch };
