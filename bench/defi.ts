// npm run bench:defi -- [topology] [phases] [batch] [--smoke]   (also run by `npm run bench` unless --defi false)
//
// Topology: --shards 2 --validators 4 --accounts 16 (per shard) --slot-ms 1000 --scheme ml-dsa-44 --crypto-backend noble
// Devnet:   --devnet true: one devnet, a token, a qfc/token pool and a token/qfc market (both on shard 0) with
//           --resting 100 resting orders, every trader funded with the token (mints, cross-shard mints), then
//           open-loop phases of --duration 20 s each, same-shard ones at --rate 40 ops/s, cross-shard ones at
//           --xrate 5 ops/s (a DeFi xcall is two 2PC rounds: out and the payout back): transfers and xtransfers (the references),
//           AMM swaps same-shard and cross-shard, DEX orders same-shard and cross-shard (--phases to choose).
// Batch:    --batch true: in process (createApp, a WorldState, no devnet), the time to execute one block of
//           --batch-block 100 crossing orders over --batch-orders 100,1000,10000 resting orders, of
//           --batch-swaps 100,1000 swaps on one pool, and of 100 plain transfers (the reference);
//           median of --batch-runs 5 executions of the same block on the same pre-state.
// Output:   tables on stdout; bench/results/defi-<time>.json.
//
// Figures are only comparable within one run: the tables report ratios to the plain-transfer
// figure measured in the same run. Never asserted in a test (speed is measured here only).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { addressFromPublicKey, concatBytes, formatAddress, fromHex, generateKeyPair, parseAddress, schemeLengths, sha256, toHex, utf8, type KeyPair, type SchemeName } from '@qnexus/crypto';
import { Writer, encodeTx, makeGenesis, openTx, type Genesis, type TxEnvelope, type TxMsg } from '@qnexus/types';
import { Branch, ExecCtx, NATIVE_DENOM, WorldState, payoutId, sendMsg, stateParams, type BlockContext, type StateParams } from '@qnexus/state';
import { createApp, genesisModules } from '@qnexus/app';
import { AMM_ID, ammCreateMsg, ammSwapMsg, poolIdOf } from '@qnexus/module-amm';
import { DEX_ID, dexCreateMarketMsg, dexState, dexMarketId, dexOrderId, dexPlaceMsg } from '@qnexus/module-dex';
import { tokenCreateMsg, tokenDenom, tokenIdFor, tokenMintMsg } from '@qnexus/module-token';
import { startDevnet, unlockKeystoreFile, type Devnet } from '@qnexus/cli';
import { SIGN_BACKEND, applySmoke, argReaders, median, pct, presign, r1, r2, r3, rnd, sleep, type SignJob } from './lib.js';
import type { QnexusClient } from '@qnexus/sdk';

const { values: args } = parseArgs({
  options: {
    shards: { type: 'string', default: '2' },
    validators: { type: 'string', default: '4' },
    accounts: { type: 'string', default: '16' },
    'slot-ms': { type: 'string', default: '1000' },
    scheme: { type: 'string', default: 'ml-dsa-44' },
    'crypto-backend': { type: 'string', default: 'noble' },
    'xfer-timeout-slots': { type: 'string', default: '20' },
    devnet: { type: 'string', default: 'true' },
    rate: { type: 'string', default: '40' },
    xrate: { type: 'string', default: '5' },
    duration: { type: 'string', default: '20' },
    resting: { type: 'string', default: '100' },
    phases: { type: 'string', default: 'transfer,xtransfer,amm-local,amm-xshard,dex-local,dex-xshard' },
    batch: { type: 'string', default: 'true' },
    'batch-orders': { type: 'string', default: '100,1000,10000' },
    'batch-block': { type: 'string', default: '100' },
    'batch-swaps': { type: 'string', default: '100,1000' },
    'batch-runs': { type: 'string', default: '5' },
    smoke: { type: 'boolean', default: false },
    out: { type: 'string', default: 'bench/results' },
    'base-port': { type: 'string', default: '27700' },
  },
});

// --smoke: a tiny run of every phase (checks the script works; no figure means anything).
if (args.smoke) {
  const smoke: Partial<Record<keyof typeof args, string>> = {
    validators: '1',
    accounts: '4',
    rate: '2',
    xrate: '2',
    duration: '3',
    resting: '10',
    'batch-orders': '20',
    'batch-block': '10',
    'batch-swaps': '10',
    'batch-runs': '1',
  };
  applySmoke(args, smoke);
}

const { num, bool } = argReaders(args);
const list = (k: keyof typeof args): number[] =>
  String(args[k] ?? '')
    .split(',')
    .filter((x) => x.trim() !== '')
    .map((x) => {
      const v = Number(x);
      if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`--${k}: ${JSON.stringify(x)} is not a positive integer`);
      return v;
    });
const u64be = (n: bigint | number) => new Writer(8).u64(BigInt(n)).finish();

function table(head: string[], rows: (string | number | null | undefined)[][]): void {
  const cells = [head, ...rows.map((r) => r.map((c) => (c === null || c === undefined ? '–' : String(c))))];
  const w = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  for (const [n, r] of cells.entries()) {
    console.log(r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  '));
    if (n === 0) console.log(w.map((x) => '-'.repeat(x)).join('  '));
  }
}

// ================================================================ 2. batch execution in process

/**
 * One shard's chain in this process: the app's state machine over a WorldState, blocks applied
 * with `executeBlock` (the validator path). No signatures: the state machine checks none (the
 * nodes do, before execution), so transactions carry a zero signature of the right length.
 */
class LocalChain {
  readonly app = createApp();
  readonly G: Genesis;
  readonly P: StateParams;
  readonly state: WorldState;
  height = 0;
  slot = 0;
  private readonly nonces = new Map<string, bigint>();
  private readonly sig: Uint8Array;
  private readonly proposer: Uint8Array;

  constructor(readonly keys: KeyPair[], dexParams: Record<string, number | string>) {
    const scheme: SchemeName = 'ml-dsa-44';
    const validator = generateKeyPair(scheme, sha256(utf8('bench-defi-validator')));
    this.proposer = addressFromPublicKey(validator.publicKey);
    const base = makeGenesis({
      chainId: 'bench-defi',
      scheme,
      genesisTime: 0,
      slotMs: 1000,
      epochLength: 1_000_000,
      shardCount: 1,
      minFee: 1n,
      // Room for the largest block measured (weight 2 per order or swap) and for set-up blocks.
      maxBlockTxs: 10_000,
      xferTimeoutSlots: 20,
      beacon: { publicKey: generateKeyPair(scheme, sha256(utf8('bench-defi-beacon'))).publicKey, peerId: '12D3KooWJWEKvSFbben74C7H4YtKjhPMTDxd7gP7zxWSUEeF27st' },
      accounts: keys.map((k) => ({ address: formatAddress(addressFromPublicKey(k.publicKey)), balance: 10n ** 15n })),
      validators: [{ address: formatAddress(this.proposer), publicKey: validator.publicKey, stake: 10n }],
    });
    this.G = { ...base, modules: genesisModules(this.app).map((m) => (m.name === 'dex' ? { ...m, genesis: dexParams } : m)) };
    this.P = stateParams(this.G, 0);
    this.state = this.app.genesisState(this.G, 0);
    this.sig = new Uint8Array(schemeLengths(scheme).signature);
  }

  addr = (k: KeyPair) => addressFromPublicKey(k.publicKey);

  /** A transaction from `k` with its next nonce (counted here: every transaction built is meant to be included). */
  tx(k: KeyPair, m: TxMsg): TxEnvelope {
    const id = toHex(k.publicKey.subarray(0, 32));
    const n = this.nonces.get(id) ?? 0n;
    this.nonces.set(id, n + 1n);
    return openTx(encodeTx({ body: { chainId: this.G.chainId, nonce: n, fee: 1n, publicKey: k.publicKey, payload: m }, signature: this.sig }));
  }

  next(): BlockContext {
    return { height: this.height + 1, slot: this.slot + 1, proposer: this.proposer };
  }

  /** Execute and apply a block; every message must succeed (set-up). */
  must(txs: TxEnvelope[]): void {
    const b = this.next();
    const r = this.app.executeBlock(this.state, txs, this.P, b);
    if (r.failed.length) throw new Error(`set-up block ${b.height}: ${r.failed.length} refused, first: ${r.failed[0]!.code}: ${r.failed[0]!.message}`);
    this.state.apply(r.changes);
    this.height = b.height;
    this.slot = b.slot;
  }

  /**
   * Time `txs` as the next block on the current state, `runs` times (the state is not changed:
   * executeBlock returns the changes). Total = executeBlock (what a validator spends on the block:
   * transactions, end-block hooks, invariants, the state root); then the same block split by stage
   * through the host's public hooks: transactions, end-block (the AMM's and the DEX's batch),
   * invariants. Medians in ms; `failed` from the last run.
   */
  time(txs: TxEnvelope[], runs: number) {
    const b = this.next();
    const total: number[] = [];
    const stages = { txs: [] as number[], endBlock: [] as number[], invariants: [] as number[] };
    let failed: readonly { code: string }[] = [];
    // One untimed run first (JIT warm-up of this block's paths).
    this.app.executeBlock(this.state, txs, this.P, b);
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const r = this.app.executeBlock(this.state, txs, this.P, b);
      total.push(performance.now() - t0);
      failed = r.failed;
      const ctx = new ExecCtx(new Branch(this.state.kv), this.P, b);
      const s0 = performance.now();
      this.app.beginBlock(ctx);
      for (const env of txs) this.app.applyInBlock(ctx.kv, env, this.P, b);
      const s1 = performance.now();
      this.app.endBlock(ctx);
      const s2 = performance.now();
      this.app.checkInvariants(ctx);
      const s3 = performance.now();
      stages.txs.push(s1 - s0);
      stages.endBlock.push(s2 - s1);
      stages.invariants.push(s3 - s2);
    }
    const failures: Record<string, number> = {};
    for (const f of failed) failures[f.code] = (failures[f.code] ?? 0) + 1;
    return {
      txs: txs.length,
      runs,
      executeBlockMs: r2(median(total)),
      executeBlockMsMin: r2(Math.min(...total)),
      perTxMs: r3(median(total) / Math.max(1, txs.length)),
      stagesMs: { txs: r2(median(stages.txs)), endBlock: r2(median(stages.endBlock)), invariants: r2(median(stages.invariants)) },
      refused: failures,
    };
  }
}

const keysFor = (label: string, n: number) => Array.from({ length: n }, (_, i) => generateKeyPair('ml-dsa-44', sha256(utf8(`bench-defi-${label}-${i}`))));

/** A token minted to every key, made by keys[0] (nonce 0 → its id). */
function setupToken(c: LocalChain, holders: KeyPair[], amount: bigint): string {
  const admin = c.keys[0]!;
  c.must([c.tx(admin, tokenCreateMsg({ symbol: 'BENCH', decimals: 6, maxSupply: 10n ** 19n, mintAuthority: c.addr(admin) }))]);
  const denom = tokenDenom(tokenIdFor(0, c.addr(admin), 0n));
  for (let i = 0; i < holders.length; i += 1000) c.must(holders.slice(i, i + 1000).map((h) => c.tx(admin, tokenMintMsg({ denom, to: c.addr(h), amount }))));
  return denom;
}

/** Resting orders placed per set-up block (the batch of a block of new orders costs more than linearly in their number). */
const SETUP_BLOCK = Number(process.env.SETUP_BLOCK ?? 250);

const NEW_QTY = 10n;

/** Measure the DEX batch: a market with `resting` orders over 100 price levels per side, then a block of `block` crossing orders. */
function dexBatch(resting: number, block: number, runs: number) {
  const perMaker = 100; // dex maxOrdersPerSide (default): each maker rests up to 100 buys and 100 sells
  const makers = keysFor('maker', Math.max(1, Math.ceil(resting / (2 * perMaker))));
  const takers = keysFor('taker', Math.max(1, Math.ceil(block / perMaker)));
  const admin = generateKeyPair('ml-dsa-44', sha256(utf8('bench-defi-admin')));
  // The market holds the resting orders and the new block's (maxOrdersPerMarket default 10,000 bounds the invariants' walk).
  const c = new LocalChain([admin, ...makers, ...takers], { maxOrdersPerMarket: Math.max(10_000, resting + block) });
  const t0 = performance.now();
  const token = setupToken(c, [...makers, ...takers], 10n ** 12n);
  const create = c.tx(admin, dexCreateMarketMsg({ base: token, quote: NATIVE_DENOM, tickSize: 1n, lotSize: 1n, minNotional: 0n }));
  c.must([create]);
  const market = dexMarketId(0, create.hash);
  const goodTil = 1_000_000n;
  // Resting: sells at 1001..1100, buys at 999..900 (100 levels each side), quantity 100 each.
  const orders: TxEnvelope[] = [];
  for (let i = 0; i < resting; i++) {
    const maker = makers[Math.floor(i / (2 * perMaker))]!;
    const sell = i % 2 === 0;
    const level = BigInt(Math.floor(i / 2) % 100);
    orders.push(c.tx(maker, dexPlaceMsg({ market, side: sell ? 'sell' : 'buy', type: 'gtc', price: sell ? 1001n + level : 999n - level, quantity: 100n, goodTilSlot: goodTil })));
  }
  for (let i = 0; i < orders.length; i += SETUP_BLOCK) c.must(orders.slice(i, i + SETUP_BLOCK));
  const setupSec = (performance.now() - t0) / 1000;
  // The block: buys at 1010, 10 each (1,000 in all), taking from the book (one-sided: new buys and sells
  // in one uniform-price batch would mostly match each other). Asks at or below 1010 hold 1,000 at 100
  // resting orders and more beyond: every size fills all of them against ten makers, so the sizes
  // differ only in how deep the book is.
  const txs = Array.from({ length: block }, (_, i) =>
    c.tx(takers[i % takers.length]!, dexPlaceMsg({ market, side: 'buy', type: 'gtc', price: 1010n, quantity: NEW_QTY, goodTilSlot: goodTil })),
  );
  const timed = c.time(txs, runs);
  // Then apply the block, to show it did what it is meant to (fills at one price, nothing refused).
  c.must(txs);
  const view = new ExecCtx(new Branch(c.state.kv), c.P, c.next());
  const after = txs.map((t) => dexState.order(view, dexOrderId(t.hash)));
  const m = dexState.market(view, market)!;
  const check = {
    // A fully filled order leaves the book (its record goes).
    newOrdersFilled: after.filter((o) => !o || o.filled > 0n).length,
    filledQuantity: after.reduce((a, o) => a + (o ? o.filled : NEW_QTY), 0n).toString(),
    clearingPrice: m.lastPrice.toString(),
    openOrdersAfter: m.open,
  };
  return { restingOrders: resting, newOrders: block, setupSec: r1(setupSec), ...timed, check };
}

/** Measure the AMM batch: one qfc/token pool, a block of `n` swaps (alternating directions). */
function ammBatch(n: number, runs: number) {
  const traders = keysFor('swapper', 20);
  const admin = generateKeyPair('ml-dsa-44', sha256(utf8('bench-defi-admin')));
  const c = new LocalChain([admin, ...traders], {});
  const token = setupToken(c, [admin, ...traders], 10n ** 14n);
  c.must([c.tx(admin, ammCreateMsg({ denomA: NATIVE_DENOM, denomB: token, amountA: 10n ** 13n, amountB: 10n ** 13n, feeBps: 30, minShares: 0n, deadline: 1_000_000n }))]);
  const pool = poolIdOf(0, NATIVE_DENOM, token, 30);
  const txs = Array.from({ length: n }, (_, i) =>
    c.tx(traders[i % traders.length]!, ammSwapMsg({ pool, denomIn: i % 2 === 0 ? NATIVE_DENOM : token, amountIn: 1_000_000n, minOut: 1n, deadline: 1_000_000n })),
  );
  return { swaps: n, ...c.time(txs, runs) };
}

/** The reference: a block of `n` plain native transfers. */
function transferBatch(n: number, runs: number) {
  const senders = keysFor('sender', 20);
  const c = new LocalChain(senders, {});
  const txs = Array.from({ length: n }, (_, i) => c.tx(senders[i % senders.length]!, sendMsg('transfer', { to: c.addr(senders[(i + 1) % senders.length]!), amount: 1n })));
  return { transfers: n, ...c.time(txs, runs) };
}

function batchBench() {
  const runs = num('batch-runs');
  const block = num('batch-block');
  console.log(`\n[batch] in process: median of ${runs} executions of the same block on the same pre-state`);
  const reference = transferBatch(block, runs);
  console.log(`[batch] ${block} transfers: ${reference.executeBlockMs} ms`);
  const dex = list('batch-orders').map((n) => {
    console.log(`[batch] dex: setting up ${n} resting orders…`);
    const r = dexBatch(n, block, runs);
    console.log(`[batch] dex: ${block} crossing orders over ${n} resting: ${r.executeBlockMs} ms (set-up ${r.setupSec} s)`);
    return { ...r, ratioToTransferBlock: r3((r.executeBlockMs ?? NaN) / (reference.executeBlockMs ?? NaN)) };
  });
  const amm = list('batch-swaps').map((n) => {
    const r = ammBatch(n, runs);
    console.log(`[batch] amm: ${n} swaps on one pool: ${r.executeBlockMs} ms`);
    return { ...r, perTxRatioToTransfer: r3((r.perTxMs ?? NaN) / (reference.perTxMs ?? NaN)) };
  });
  return { runs, reference, dex, amm };
}

// ================================================================ 1. devnet throughput and latency

interface Account {
  address: string;
  bytes: Uint8Array;
  shard: number;
  key: { publicKey: Uint8Array; secretKey: Uint8Array };
  client: QnexusClient;
}

interface Net {
  devnet: Devnet;
  shards: number;
  /** By shard: [shard][i]. */
  byShard: Account[][];
  observers: QnexusClient[];
  beacon: QnexusClient;
}

async function openNet(dir: string): Promise<Net> {
  const shards = num('shards');
  const devnet = await startDevnet({
    dir,
    shards,
    scheme: args.scheme as SchemeName,
    // One address stands in for every wallet: lift the API's per-address limits (as bench.ts does).
    env: { QNEXUS_CRYPTO_BACKEND: args['crypto-backend']!, QNEXUS_API_RATE_LIMIT: '0', QNEXUS_API_MAX_CONNECTIONS_PER_IP: '512' },
    validators: num('validators'),
    fullNodes: 0,
    accounts: num('accounts'),
    slotMs: num('slot-ms'),
    basePort: num('base-port'),
    xferTimeoutSlots: num('xfer-timeout-slots'),
    logFormat: 'json',
    logLevel: 'warn',
    reset: true,
  });
  try {
    const nodes = devnet.manifest.processes.filter((p) => p.role !== 'beacon');
    const shardNodes = Array.from({ length: shards }, (_, k) => nodes.filter((p) => p.shard === k).map((p) => p.name));
    const clients = new Map(nodes.map((p) => [p.name, devnet.client(p.name, { timeoutMs: 30_000 })]));
    const observers = shardNodes.map((ns) => clients.get(ns[0]!)!);
    const pass = readFileSync(devnet.passphraseFile, 'utf8').trim();
    const byShard: Account[][] = Array.from({ length: shards }, () => []);
    for (const a of devnet.manifest.accounts) {
      const idx = byShard[a.shard]!.length;
      const { key } = await unlockKeystoreFile(a.keystore, pass);
      const ns = shardNodes[a.shard]!;
      byShard[a.shard]!.push({ address: a.address, bytes: parseAddress(a.address), shard: a.shard, key: { publicKey: key.publicKey, secretKey: key.secretKey }, client: clients.get(ns[idx % ns.length]!)! });
    }
    return { devnet, shards, byShard, observers, beacon: devnet.client('beacon', { timeoutMs: 30_000 }) };
  } catch (e) {
    await devnet.stop();
    throw e;
  }
}

/** An operation of a phase: who sends which message, offered at t0 + at. */
interface Op {
  acct: Account;
  msg: TxMsg;
  at: number;
  /** Cross-shard: the shard the xcall goes to. */
  xshard: boolean;
  /** DEX: the order crosses the book (else it rests). */
  crossing?: boolean;
}
interface SignedOp extends Op {
  raw: Uint8Array;
  hash: string;
}

const nextNonce = new Map<string, number>();
async function nonceOf(a: Account): Promise<number> {
  if (!nextNonce.has(a.address)) nextNonce.set(a.address, Number((await a.client.account(a.address)).pendingNonce));
  return nextNonce.get(a.address)!;
}

/** Sign ops (nonces continue per account in offer order). */
async function sign(net: Net, ops: Op[]): Promise<SignedOp[]> {
  const accts = [...new Set(ops.map((o) => o.acct))];
  const where: { job: number; i: number }[] = [];
  const jobs: SignJob[] = [];
  for (const a of accts) {
    const n0 = await nonceOf(a);
    jobs.push({ chainId: net.devnet.genesis.chainId, scheme: net.devnet.genesis.scheme, backend: SIGN_BACKEND, publicKey: a.key.publicKey, secretKey: a.key.secretKey, txs: [] });
    nextNonce.set(a.address, n0);
  }
  for (const o of ops) {
    const j = accts.indexOf(o.acct);
    const n = nextNonce.get(o.acct.address)!;
    nextNonce.set(o.acct.address, n + 1);
    where.push({ job: j, i: jobs[j]!.txs.length });
    jobs[j]!.txs.push({ kind: o.msg.kind, msg: o.msg.msg, nonce: n });
  }
  const signed = await presign(jobs);
  return ops.map((o, k) => ({ ...o, ...signed[where[k]!.job]![where[k]!.i]! }));
}

interface Seen {
  t: number;
  shard: number;
  slot: number;
  height: number;
}

/**
 * Poll one node per shard every 50 ms for newly finalized blocks: when each transaction of ours
 * was first seen final, and every beacon entry (xprepare / xdecision) by transfer id and shard.
 */
async function observe(net: Net, ours: Set<string>) {
  const start = await Promise.all(net.observers.map(async (c) => (await c.status()).finalizedHeight));
  const finalAt = new Map<string, Seen>();
  /** transfer id → shard → decision seen there. */
  const decisions = new Map<string, Map<number, Seen & { decision: string }>>();
  const blocks: { shard: number; slot: number; txs: number }[] = [];
  let done = false;
  const loops = net.observers.map(async (c, shard) => {
    let h0 = start[shard]!;
    while (!done) {
      try {
        const head = (await c.status()).finalizedHeight;
        for (let h = h0 + 1; h <= head; h++) {
          const b = await c.block(h);
          const seen = { t: performance.now(), shard, slot: b.slot, height: h };
          for (const t of b.txs) if (ours.has(t) && !finalAt.has(t)) finalAt.set(t, seen);
          blocks.push({ shard, slot: b.slot, txs: b.txs.length });
          const others = b.txs.filter((t) => !ours.has(t));
          const infos = await Promise.all(others.map((t) => c.tx(t) as Promise<{ kind?: string; transfer?: string; decision?: string }>));
          for (const x of infos) {
            if (x.kind !== 'xdecision' || !x.transfer) continue;
            const m = decisions.get(x.transfer) ?? new Map();
            decisions.set(x.transfer, m);
            if (!m.has(shard)) m.set(shard, { ...seen, decision: x.decision ?? '?' });
          }
          h0 = h;
        }
      } catch {
        // transient: retry the same block
      }
      await sleep(50);
    }
  });
  return {
    finalAt,
    decisions,
    blocks,
    stop: async () => {
      done = true;
      await Promise.all(loops);
    },
  };
}

/** Open loop: each op is offered at t0 + at whatever happened to earlier ones; per account in nonce order. */
async function drive(ops: SignedOp[]) {
  const submitAt = new Map<string, number>();
  const rejected = new Map<string, number>();
  const queues = new Map<Account, SignedOp[]>();
  const wake = new Map<Account, () => void>();
  for (const o of ops) queues.set(o.acct, []);
  let offering = true;
  const t0 = performance.now();
  const senders = [...queues.keys()].map(async (a) => {
    const q = queues.get(a)!;
    for (;;) {
      const j = q.shift();
      if (!j) {
        if (!offering) return;
        await new Promise<void>((r) => wake.set(a, r));
        continue;
      }
      try {
        await a.client.submitTx(j.raw, { binary: true, busyRetryMs: 120_000, maxAttempts: 1_000 });
      } catch (e) {
        const code = (e as { code?: string }).code ?? 'ERROR';
        rejected.set(code, (rejected.get(code) ?? 0) + 1);
        submitAt.delete(j.hash);
      }
    }
  });
  let offered = 0;
  while (offered < ops.length) {
    const now = performance.now() - t0;
    while (offered < ops.length && ops[offered]!.at <= now) {
      const j = ops[offered++]!;
      submitAt.set(j.hash, t0 + j.at);
      queues.get(j.acct)!.push(j);
      wake.get(j.acct)?.();
    }
    await sleep(5);
  }
  offering = false;
  for (const w of wake.values()) w();
  await Promise.all(senders);
  return { t0, submitAt, rejected };
}

/** CPU seconds of a process from /proc. */
function cpuSec(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return null;
  }
}
const cpuNow = (net: Net) => ({ t: performance.now(), cpu: new Map(net.devnet.manifest.processes.filter((p) => p.pid).map((p) => [p.name, cpuSec(p.pid!) ?? 0])) });
function cpuFigures(net: Net, before: ReturnType<typeof cpuNow>) {
  const wall = (performance.now() - before.t) / 1000;
  const ps = net.devnet.manifest.processes.filter((p) => p.pid);
  const pctOf = (p: (typeof ps)[number]) => {
    const s = cpuSec(p.pid!);
    return s === null ? 0 : (100 * (s - (before.cpu.get(p.name) ?? s))) / wall;
  };
  return { maxNodeCpuPercent: rnd(Math.max(0, ...ps.filter((p) => p.role !== 'beacon').map(pctOf))), beaconCpuPercent: rnd(Math.max(0, ...ps.filter((p) => p.role === 'beacon').map(pctOf))) };
}

/** Submit set-up transactions, wait until all are final, and return their infos (throws on a refused message). */
async function setupTxs(net: Net, ops: Op[], what: string): Promise<SignedOp[]> {
  const signed = await sign(net, ops);
  // In chunks, each final before the next: a node refuses a nonce more than 64 ahead of the account's (TX_NONCE_FUTURE).
  for (let i = 0; i < signed.length; i += 48) await submitAndWait(signed.slice(i, i + 48), what);
  console.log(`[setup] ${what}: ${signed.length} final`);
  return signed;
}

async function submitAndWait(signed: SignedOp[], what: string): Promise<void> {
  for (const s of signed) await s.acct.client.submitTx(s.raw, { binary: true, busyRetryMs: 60_000, maxAttempts: 1_000 });
  const deadline = performance.now() + 120_000;
  for (const s of signed) {
    for (;;) {
      const x = await s.acct.client.tx(s.hash).catch(() => null);
      if (x?.status === 'final') {
        if (x.error) throw new Error(`set-up (${what}) ${s.hash}: ${x.error.code}: ${x.error.message}`);
        break;
      }
      if (x?.status === 'rejected') throw new Error(`set-up (${what}) ${s.hash} rejected: ${JSON.stringify(x.error)}`);
      if (performance.now() > deadline) throw new Error(`set-up (${what}) ${s.hash} not final after 120 s`);
      await sleep(250);
    }
  }
}

/** The chain's current slot by the wall clock (deadlines and expiries are in slots). */
const slotNow = (net: Net): bigint => BigInt(Math.max(0, Math.floor((Date.now() - net.devnet.genesis.genesisTime) / num('slot-ms'))));

async function waitFor(what: string, f: () => Promise<boolean>, ms = 120_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await f().catch(() => false))) {
    if (performance.now() > deadline) throw new Error(`set-up: ${what} not reached after ${ms / 1000} s`);
    await sleep(500);
  }
}

interface Market {
  token: string;
  pool: Uint8Array;
  market: Uint8Array;
  admin: Account;
  /** Traders per shard (every account but the admin). */
  traders: Account[][];
}

/** A token, a qfc/token pool and a token/qfc market on shard 0 with resting orders; every trader holds the token. */
async function setupMarkets(net: Net): Promise<Market> {
  const admin = net.byShard[0]![0]!;
  const traders = net.byShard.map((as, k) => (k === 0 ? as.slice(1) : as));
  const n0 = await nonceOf(admin);
  await setupTxs(net, [{ acct: admin, msg: tokenCreateMsg({ symbol: 'BENCH', decimals: 6, maxSupply: 10n ** 19n, mintAuthority: admin.bytes }), at: 0, xshard: false }], 'token-create');
  const token = tokenDenom(tokenIdFor(0, admin.bytes, BigInt(n0)));
  // Funding: mints to shard 0's traders, cross-shard mints (payouts over the beacon) to the others', and the admin's own.
  const all = [admin, ...traders.flat()];
  await setupTxs(net, all.map((a) => ({ acct: admin, msg: tokenMintMsg({ denom: token, to: a.bytes, amount: 10n ** 13n }), at: 0, xshard: a.shard !== 0 })), 'token mints');
  // A cross-shard xtransfer of the token too (the "funding via mints and xtransfers"): admin → the first trader of each other shard.
  const xs = traders.slice(1).map((ts) => ts[0]!);
  if (xs.length) await setupTxs(net, xs.map((a) => ({ acct: admin, msg: sendMsg('xtransfer', { to: a.bytes, amount: 10n ** 9n, denom: token }), at: 0, xshard: true })), 'token xtransfers');
  await waitFor('the token on every shard', async () => {
    for (const a of traders.flat()) {
      const info = await a.client.account(a.address);
      if (!(info.balances ?? []).some((b) => b.denom === token && BigInt(b.amount) > 0n)) return false;
    }
    return true;
  });
  console.log(`[setup] token ${token} on every trader`);
  const slot = slotNow(net);
  const create = await setupTxs(
    net,
    [
      { acct: admin, msg: ammCreateMsg({ denomA: NATIVE_DENOM, denomB: token, amountA: 10n ** 11n, amountB: 10n ** 11n, feeBps: 30, minShares: 0n, deadline: slot + 100_000n }), at: 0, xshard: false },
      { acct: admin, msg: dexCreateMarketMsg({ base: token, quote: NATIVE_DENOM, tickSize: 1n, lotSize: 1n, minNotional: 0n }), at: 0, xshard: false },
    ],
    'pool and market',
  );
  const pool = poolIdOf(0, NATIVE_DENOM, token, 30);
  const market = dexMarketId(0, fromHex(create[1]!.hash));
  // Resting orders from the admin (≤ 100 per side, the dex's per-account limit): sells 101.., buys 99.. .
  const resting = Math.min(200, num('resting'));
  const goodTil = slot + 1_000_000n;
  const rest: Op[] = Array.from({ length: resting }, (_, i) => {
    const sell = i % 2 === 0;
    const level = BigInt(Math.floor(i / 2) % 20);
    return { acct: admin, msg: dexPlaceMsg({ market, side: sell ? 'sell' : 'buy', type: 'gtc', price: sell ? 101n + level : 99n - level, quantity: 1_000_000n, goodTilSlot: goodTil }), at: 0, xshard: false };
  });
  await setupTxs(net, rest, `${resting} resting orders`);
  return { token, pool, market, admin, traders };
}

type PhaseName = 'transfer' | 'xtransfer' | 'amm-local' | 'amm-xshard' | 'dex-local' | 'dex-xshard';
const PHASES: readonly PhaseName[] = ['transfer', 'xtransfer', 'amm-local', 'amm-xshard', 'dex-local', 'dex-xshard'];
/** Cross-shard phases: traders of the other shards, xcalls to shard 0 (where the pool and the market live). */
const isX = (p: PhaseName) => p === 'xtransfer' || p.endsWith('xshard');

/** The ops of a phase: `rate` ops/s for `duration` s, round-robin over the phase's traders. */
function phaseOps(name: PhaseName, net: Net, m: Market, rate: number, duration: number, slot: bigint): Op[] {
  const local = m.traders[0]!;
  const remote = m.traders.slice(1).flat();
  const who = isX(name) ? remote : local;
  const count = Math.max(1, Math.ceil(rate * duration));
  const goodTil = slot + 1_000_000n;
  return Array.from({ length: count }, (_, k) => {
    const a = who[k % who.length]!;
    const at = (k * 1000) / rate;
    const xshard = a.shard !== 0;
    switch (name) {
      case 'transfer': {
        const to = local[(local.indexOf(a) + 1) % local.length]!;
        return { acct: a, at, xshard, msg: sendMsg('transfer', { to: to.bytes, amount: 1n }) };
      }
      case 'xtransfer':
        return { acct: a, at, xshard, msg: sendMsg('xtransfer', { to: local[k % local.length]!.bytes, amount: 1n }) };
      case 'amm-local':
      case 'amm-xshard':
        return { acct: a, at, xshard, msg: ammSwapMsg({ pool: m.pool, denomIn: k % 2 === 0 ? NATIVE_DENOM : m.token, amountIn: 10_000n, minOut: 1n, deadline: slot + 100_000n }) };
      default: {
        // Half the orders cross the resting book (buy at 105 / sell at 95 against asks from 101 / bids
        // from 99), half are buys that rest below it (80..89). A resting buy is owed the taker-maker fee
        // difference once it rests (a payout back, like a fill's proceeds), so every cross-shard order's
        // "executed" is a payout decided on the trader's shard; a resting sell would be owed nothing.
        const crossing = k % 2 === 0;
        const buy = !crossing || Math.floor(k / 2) % 2 === 0;
        const price = crossing ? (buy ? 105n : 95n) : 80n + BigInt(k % 10);
        return { acct: a, at, xshard, crossing, msg: dexPlaceMsg({ market: m.market, side: buy ? 'buy' : 'sell', type: 'gtc', price, quantity: 10n, goodTilSlot: goodTil, ...(xshard ? { denom: buy ? NATIVE_DENOM : m.token } : {}) }) };
      }
    }
  });
}

interface Reference {
  name: PhaseName;
  executedPerSec: number | null;
  p50Ms: number | null;
}

async function phase(name: PhaseName, net: Net, m: Market, reference: Reference | null) {
  const rate = num(isX(name) ? 'xrate' : 'rate');
  const duration = num('duration');
  const slotMs = num('slot-ms');
  const slot = slotNow(net);
  const ops = phaseOps(name, net, m, rate, duration, slot);
  console.log(`\n[${name}] signing ${ops.length} ops…`);
  const signed = await sign(net, ops);
  await sleep(2 * slotMs);
  const ours = new Set(signed.map((s) => s.hash));
  const obs = await observe(net, ours);
  const cpu0 = cpuNow(net);
  const genesisTime = net.devnet.genesis.genesisTime;
  const wallOffset = Date.now() - performance.now();
  const slotAt = (t: number) => Math.floor((t + wallOffset - genesisTime) / slotMs);
  console.log(`[${name}] offering ${rate} ops/s for ${duration} s (open loop)…`);
  const d = await drive(signed);
  const accepted = signed.filter((s) => d.submitAt.has(s.hash));
  const xs = accepted.filter((s) => s.xshard);

  // What "executed" is, per op (time and slot when first seen):
  //  - same shard: the transaction final (the batch ran at the end of its block) without an error;
  //  - xtransfer: credited (the decision commit final on the recipient's shard);
  //  - AMM cross-shard: the payout (leg 0 output, leg 1 refund) decided on the trader's shard;
  //  - DEX cross-shard: the first payout the order's batch owes the trader (fill proceeds, refunds: legs
  //    1..4 at the height where the xcall committed on the market's shard and joined that block's batch)
  //    decided on the trader's shard; the commit itself is reported beside it.
  const xcallDst = (s: SignedOp) => obs.decisions.get(s.hash)?.get(0);
  const payoutSeen = (s: SignedOp): (Seen & { decision: string; leg: number }) | undefined => {
    if (name === 'amm-xshard') {
      for (const leg of [0, 1]) {
        const d2 = obs.decisions.get(toHex(payoutId(AMM_ID, fromHex(s.hash), leg)))?.get(s.acct.shard);
        if (d2) return { ...d2, leg };
      }
      return undefined;
    }
    const c = xcallDst(s);
    if (!c || c.decision !== 'commit') return undefined;
    const xcall = sha256(concatBytes(dexOrderId(fromHex(s.hash)), u64be(c.height)));
    let best: (Seen & { decision: string; leg: number }) | undefined;
    for (const leg of [1, 2, 3, 4]) {
      const d2 = obs.decisions.get(toHex(payoutId(DEX_ID, xcall, leg)))?.get(s.acct.shard);
      if (d2 && (!best || d2.t < best.t)) best = { ...d2, leg };
    }
    return best;
  };
  const executedAt = (s: SignedOp): Seen | undefined => {
    if (!s.xshard) return obs.finalAt.get(s.hash);
    if (name === 'amm-xshard') return payoutSeen(s);
    if (name === 'xtransfer') return xcallDst(s)?.decision === 'commit' ? xcallDst(s) : undefined;
    return payoutSeen(s);
  };
  const drainMs = Math.max(60_000, (num('xfer-timeout-slots') + 20) * slotMs);
  const drainDeadline = performance.now() + drainMs;
  const settled = () =>
    accepted.every((s) => {
      if (!obs.finalAt.has(s.hash)) return false;
      if (!s.xshard) return true;
      const c = xcallDst(s);
      if (name === 'xtransfer') return !!c;
      if (name === 'amm-xshard') return !!payoutSeen(s) || c?.decision === 'abort';
      // A DEX xcall: aborted, or committed and its payout back decided (every order here is owed one).
      return !!c && (c.decision === 'abort' || !!payoutSeen(s));
    });
  while (performance.now() < drainDeadline && !settled()) await sleep(250);
  await obs.stop();
  const cpu = cpuFigures(net, cpu0);

  // Failures by code: a message refused in its block is final with `error`; an xcall's abort reason from the beacon.
  const failures: Record<string, number> = Object.fromEntries([...d.rejected].map(([k, v]) => [`rejected ${k}`, v]));
  const bump = (k: string) => (failures[k] = (failures[k] ?? 0) + 1);
  const refusedInBlock = new Set<string>();
  for (let i = 0; i < accepted.length; i += 16) {
    await Promise.all(
      accepted.slice(i, i + 16).map(async (s) => {
        const x = await s.acct.client.tx(s.hash).catch(() => null);
        if (x?.error) {
          refusedInBlock.add(s.hash);
          bump(x.error.code);
        }
      }),
    );
  }
  for (const s of xs) {
    if (refusedInBlock.has(s.hash) || xcallDst(s)?.decision !== 'abort') continue;
    const b = await net.beacon.beaconXTransfer(s.hash).catch(() => null);
    bump(`aborted ${b?.phases.find((p) => p.phase === 'decided')?.reason ?? '?'}`);
  }
  let refundedSwaps = 0;
  const payoutLegs: Record<string, number> = {};
  const lat: number[] = [];
  const latSlots: number[] = [];
  const toCommit: number[] = [];
  let lastExec = d.t0;
  let notExecuted = 0;
  for (const s of accepted) {
    const e = refusedInBlock.has(s.hash) ? undefined : executedAt(s);
    if (!e) {
      notExecuted++;
      continue;
    }
    if (s.xshard && name !== 'xtransfer') {
      const p = payoutSeen(s);
      if (p) payoutLegs[`leg ${p.leg}`] = (payoutLegs[`leg ${p.leg}`] ?? 0) + 1;
      if (name === 'amm-xshard' && p?.leg === 1) refundedSwaps++;
      const c = xcallDst(s);
      if (c) toCommit.push(c.t - d.submitAt.get(s.hash)!);
    }
    const t = d.submitAt.get(s.hash)!;
    lat.push(e.t - t);
    latSlots.push(e.slot - slotAt(t));
    lastExec = Math.max(lastExec, e.t);
  }
  lat.sort((a, b) => a - b);
  latSlots.sort((a, b) => a - b);
  toCommit.sort((a, b) => a - b);
  // As bench.ts: executed ÷ (first offer → last execution, less the pipeline's own delay (p10), never below the offer window).
  const windowSec = Math.max(duration, (lastExec - d.t0 - (lat.length ? pct(lat, 10) : 0)) / 1000);
  const perSec = lat.length / windowSec;
  const p50 = pct(lat, 50);
  const out = {
    name,
    offeredPerSec: rate,
    durationSec: duration,
    submitted: signed.length,
    accepted: accepted.length,
    crossShard: xs.length,
    executed: lat.length,
    notExecuted,
    executedPerSec: r1(perSec),
    latencyMs: { p50: rnd(p50), p95: rnd(pct(lat, 95)) },
    latencySlots: { p50: pct(latSlots, 50), p95: pct(latSlots, 95) },
    ...(xs.length && name !== 'xtransfer' ? { xcallCommittedOnMarketShardMs: { n: toCommit.length, p50: rnd(pct(toCommit, 50)), p95: rnd(pct(toCommit, 95)) }, payoutLegs } : {}),
    ...(name === 'amm-xshard' ? { refundedSwaps } : {}),
    failures,
    /** To the plain-transfer phase of the same kind (same-shard: transfer, cross-shard: xtransfer) of this run. */
    ratioToTransfer: reference ? { reference: reference.name, executedPerSec: r3(perSec / (reference.executedPerSec ?? NaN)), p50Latency: r2(p50 / (reference.p50Ms ?? NaN)) } : null,
    /** Finalized blocks per shard while the phase ran and drained: a shard that falls behind shows fewer blocks than slots, or fuller blocks. */
    blocks: Array.from({ length: net.shards }, (_, k) => {
      const bs = obs.blocks.filter((b) => b.shard === k);
      const slots = bs.length ? bs[bs.length - 1]!.slot - bs[0]!.slot + 1 : 0;
      return { shard: k, blocks: bs.length, slotsSpanned: slots, avgTxsPerBlock: r1(bs.reduce((a, b) => a + b.txs, 0) / Math.max(1, bs.length)), maxTxsPerBlock: Math.max(0, ...bs.map((b) => b.txs)) };
    }),
    ...cpu,
    loadavg1: r2(loadavg()[0]!),
  };
  console.log(`[${name}] executed ${out.executed}/${out.accepted} → ${out.executedPerSec}/s, p50/p95 ${out.latencyMs.p50}/${out.latencyMs.p95} ms, failures ${JSON.stringify(failures)}`);
  return out;
}

async function devnetBench() {
  const dir = mkdtempSync(join(tmpdir(), 'qnexus-bench-defi-'));
  const wanted = String(args.phases)
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean) as PhaseName[];
  for (const p of wanted) if (!PHASES.includes(p)) throw new Error(`--phases: unknown phase ${p} (known: ${PHASES.join(', ')})`);
  if (num('shards') < 2 && wanted.some(isX)) throw new Error('the cross-shard phases need --shards 2 or more');
  try {
    console.log(`\n[devnet] ${num('shards')} shards × ${num('validators')} validators + beacon, ${num('accounts')} accounts per shard, ${num('slot-ms')} ms slots`);
    const net = await openNet(join(dir, 'net'));
    try {
      const t0 = performance.now();
      const m = await setupMarkets(net);
      const setupSec = r1((performance.now() - t0) / 1000);
      const phases: Awaited<ReturnType<typeof phase>>[] = [];
      const refs = new Map<PhaseName, Reference>();
      for (const p of wanted) {
        // Each phase against the plain transfers of its kind; xtransfer itself against transfer.
        const kind: PhaseName = isX(p) ? 'xtransfer' : 'transfer';
        const r = await phase(p, net, m, refs.get(kind) ?? refs.get('transfer') ?? null);
        if (p === kind) refs.set(kind, { name: kind, executedPerSec: r.executedPerSec, p50Ms: r.latencyMs.p50 });
        phases.push(r);
      }
      return { setupSec, token: m.token, pool: toHex(m.pool), market: toHex(m.market), phases };
    } finally {
      await net.devnet.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ================================================================ main

async function main(): Promise<void> {
  const started = new Date().toISOString();
  console.log(`host: ${cpus().length} cores, load avg ${loadavg().map((x) => x.toFixed(2)).join(' / ')}`);
  const devnet = bool('devnet') ? await devnetBench() : null;
  const batch = bool('batch') ? batchBench() : null;
  const stamp = started.replace(/[:.]/g, '-');
  const result = {
    defiBenchVersion: 1,
    date: started,
    command: `npm run bench:defi -- ${process.argv.slice(2).join(' ')}`.trim(),
    smoke: !!args.smoke,
    machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version },
    config: {
      shards: num('shards'),
      validators: num('validators'),
      accountsPerShard: num('accounts'),
      slotMs: num('slot-ms'),
      scheme: args.scheme,
      backend: args['crypto-backend'],
      ratePerSec: num('rate'),
      crossShardRatePerSec: num('xrate'),
      phaseDurationSec: num('duration'),
      restingOrdersOnDevnet: Math.min(200, num('resting')),
    },
    devnet,
    batch,
  };
  mkdirSync(args.out!, { recursive: true });
  const file = join(args.out!, `defi-${stamp}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');

  if (devnet) {
    console.log(`\nDeFi on the devnet (${num('duration')} s per phase; ratios to the plain transfers of the same kind in this run):`);
    table(
      ['phase', 'offered/s', 'executed/s', '÷ transfer', 'p50 ÷ transfer', 'p50/p95 ms', 'p50/p95 slots', 'executed/accepted', 'failures', 'CPU max node/beacon'],
      devnet.phases.map((p) => [
        p.name,
        p.offeredPerSec,
        p.executedPerSec,
        p.ratioToTransfer ? `${p.ratioToTransfer.executedPerSec} (${p.ratioToTransfer.reference})` : null,
        p.ratioToTransfer?.p50Latency,
        `${p.latencyMs.p50} / ${p.latencyMs.p95}`,
        `${p.latencySlots.p50} / ${p.latencySlots.p95}`,
        `${p.executed}/${p.accepted}`,
        Object.keys(p.failures).length ? JSON.stringify(p.failures) : '',
        `${p.maxNodeCpuPercent}% / ${p.beaconCpuPercent}%`,
      ]),
    );
  }
  if (batch) {
    console.log(`\nBatch execution in process (median of ${batch.runs}; executeBlock = txs + end-block + invariants + state root):`);
    table(
      ['block', 'executeBlock ms', 'per tx ms', 'txs / end-block / invariants ms', '÷ transfer block', 'refused'],
      [
        [`${batch.reference.transfers} transfers`, batch.reference.executeBlockMs, batch.reference.perTxMs, `${batch.reference.stagesMs.txs} / ${batch.reference.stagesMs.endBlock} / ${batch.reference.stagesMs.invariants}`, 1, ''],
        ...batch.dex.map((d) => [
          `${d.newOrders} orders, ${d.restingOrders} resting`,
          d.executeBlockMs,
          d.perTxMs,
          `${d.stagesMs.txs} / ${d.stagesMs.endBlock} / ${d.stagesMs.invariants}`,
          d.ratioToTransferBlock,
          Object.keys(d.refused).length ? JSON.stringify(d.refused) : '',
        ]),
        ...batch.amm.map((a) => [
          `${a.swaps} swaps, one pool`,
          a.executeBlockMs,
          a.perTxMs,
          `${a.stagesMs.txs} / ${a.stagesMs.endBlock} / ${a.stagesMs.invariants}`,
          r3((a.executeBlockMs ?? NaN) / (batch.reference.executeBlockMs ?? NaN)),
          Object.keys(a.refused).length ? JSON.stringify(a.refused) : '',
        ]),
      ],
    );
  }
  console.log(`\nwrote ${file}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
