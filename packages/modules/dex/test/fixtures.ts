// Shared by the dex tests (not a test file itself): a chain with the app's modules plus `tmint`, a
// test module that mints `tmint/…` denoms to its caller (the tokens markets trade), driven by the
// in-process multi-shard simulator (one shard for the unit tests).
import { homeShard, type KeyPair } from '@qnexus/crypto';
import { bank, msg, type HostKeepers, type Module, type StateMachine } from '@qnexus/state';
import { createApp } from '@qnexus/app';
import { QnexusError, Writer, type TxEnvelope, type TxMsg } from '@qnexus/types';
import { testModuleChain } from '../../../state/test/helpers.js';
import { ShardSim } from '../../../state/test/sim.js';
import { DEX_ACCOUNT, dexCreateMarketMsg, dexMarketId, type DexParams } from '../src/index.js';

export const BASE = 'tmint/btc';
export const QUOTE = 'tmint/usd';
export const TMINT_ID = 210;

/** `tmint-mint {denom, amount}`: mint `tmint/…` to the sender (test only). */
function tmint(k: HostKeepers): Module {
  return {
    name: 'tmint',
    id: TMINT_ID,
    msgs: [
      msg<{ denom: string; amount: bigint }>({
        type: 1,
        name: 'tmint-mint',
        encode: (w, p) => void w.string(p.denom).u64(p.amount),
        decode: (r) => ({ denom: r.string(64), amount: r.u64() }),
        handle: ({ ctx, env }, p) => k.denoms('tmint').mint(ctx, env.from, p.amount, p.denom),
        json: () => ({}),
      }),
    ],
  };
}

export const app: StateMachine = createApp((k) => [tmint(k)]);

export function mintMsg(denom: string, amount: bigint): TxMsg {
  const e = app.msgByName('tmint', 'tmint-mint')!;
  const w = new Writer(96);
  e.def.encode(w, { denom, amount } as never);
  return { kind: e.kind, msg: w.finish() };
}

/**
 * A world of `shardCount` shards with `labels.length` funded accounts (native), the dex's genesis
 * `params`, and helpers: `tx` signs with the sender's next nonce (counting this slot's earlier
 * ones), `step` runs one slot and throws if a transaction expected to apply was skipped.
 */
export function world(o: { chainId: string; shardCount: number; accounts: number; params?: Partial<Record<keyof DexParams, number | string>> }) {
  const labels = Array.from({ length: o.accounts }, (_, i) => `acct-${i}`);
  const c = testModuleChain(o.chainId, { funded: labels, shardCount: o.shardCount });
  const G = { ...c.G, maxBlockTxs: 2000, modules: [{ name: 'dex', id: 7, genesis: { ...(o.params ?? {}) } }] };
  const sim = new ShardSim({ app, genesis: G });
  const keys = labels.map((l) => c.key(l));
  const pending = new Map<string, bigint>();
  const shardOf = (k: KeyPair) => homeShard(c.addrOf(k), o.shardCount);
  const tx = (from: KeyPair, m: TxMsg): TxEnvelope => {
    const a = c.addrOf(from);
    const id = Buffer.from(a).toString('hex');
    const n = pending.get(id) ?? bank.nonce(sim.states[shardOf(from)]!, a);
    pending.set(id, n + 1n);
    return c.tx(from, m.kind, m.msg, n);
  };
  /** One slot; `txs` by sender (each goes to its home shard). Returns the skipped ones' codes. */
  const step = (txs: TxEnvelope[] = [], opts: Parameters<ShardSim['step']>[1] = {}) => {
    const byShard: Record<number, TxEnvelope[]> = {};
    for (const t of txs) (byShard[homeShard(t.from, o.shardCount)] ??= []).push(t);
    const r = sim.step(byShard, opts);
    pending.clear();
    return r.skipped;
  };
  const must = (txs: TxEnvelope[] = [], opts: Parameters<ShardSim['step']>[1] = {}) => {
    const skipped = step(txs, opts);
    if (skipped.length) throw new Error(`skipped: ${skipped.map((s) => `${s.code}: ${s.message}`).join('; ')}`);
  };
  const bal = (k: KeyPair | Uint8Array, denom: string, shard?: number) => {
    const a = k instanceof Uint8Array ? k : c.addrOf(k);
    return bank.balance(sim.states[shard ?? homeShard(a, o.shardCount)]!, a, denom);
  };
  /** Create a market from `admin`, returning its id. */
  const market = (admin: KeyPair, p: { tickSize?: bigint; lotSize?: bigint; minNotional?: bigint; base?: string; quote?: string } = {}) => {
    const t = tx(admin, dexCreateMarketMsg({ base: p.base ?? BASE, quote: p.quote ?? QUOTE, tickSize: p.tickSize ?? 1n, lotSize: p.lotSize ?? 1n, minNotional: p.minNotional ?? 0n }));
    must([t]);
    return dexMarketId(shardOf(admin), t.hash);
  };
  const moduleBal = (shard: number, denom: string) => bank.balance(sim.states[shard]!, DEX_ACCOUNT, denom);
  return { ...c, G, sim, keys, tx, step, must, bal, market, moduleBal, shardOf };
}

/** The code of the error `fn` throws (a QnexusError). */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof QnexusError) return e.code;
    throw e;
  }
  return 'none';
}
