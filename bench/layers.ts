// npm run bench:layers -- [--baseline <git-rev> (b8f0639) | --baseline-tree <dir>] [--current true|false]
//                         [--exec true|false] [--devnet true|false]
//                         [--accounts 1000,10000] [--block-txs 500] [--blocks 4] [--runs 7] [--warmup-runs 2]
//                         [--rates 40,70] [--duration-s 30] [--warmup-s 10] [--drain-s 30]
//                         [--accounts-per-shard 32] [--base-port 28000] [--out bench/results] [--smoke]
//                         ["--node-flags=--cpu-prof --cpu-prof-dir=<dir>"] (every devnet process)
//
// Issue 15 (the application layer: one key-value store with branches, modules, a u16-kind
// transaction codec) measured before and after in one run, each tree with its OWN code: its
// state/app packages for execution, its SDK for signing (the codec differs between the trees, so a
// transaction signed by one tree's SDK is not valid in the other), its launcher and binaries for
// the devnet. before = the baseline revision (built in a temporary worktree); after = this checkout.
//
// 1. Block execution in process (what the layering costs per transaction). For each --accounts A:
//    a one-shard genesis with A funded accounts and one validator, of which S = --block-txs
//    accounts hold keys; --blocks blocks of --block-txs intra-shard transfers (block k = nonce k of
//    every sender, recipient another genesis account), signed once per tree. Block k runs on the
//    state after blocks 0..k-1 (each tree's own `apply`). Timed, as the node calls them (see each
//    tree's packages/node/src/chain.ts): `executeBlock(state, txs, params, ctx)` (validator path;
//    old: the state package's function, new: `app.executeBlock`), `executeApplicable` (proposer
//    path), and `state.rootWith(changes)` alone (the O(N) state root, inside both of the others).
//    The trees alternate within every repetition (so drift of this shared host hits both alike);
//    --warmup-runs are dropped, the median of --runs is reported as µs per transaction.
//    Then a CPU profile (inspector Profiler, 100 µs sampling) of each tree's executeBlock on the
//    largest A, summarised as top self-time functions and self time per source file.
// 2. Devnet, real processes. For each tree in turn a fresh devnet of its own launcher (2 shards ×
//    4 validators, no full node, the beacon, 1 s slots, --accounts-per-shard funded accounts per
//    shard): open-loop intra-shard transfers at each of --rates tx/s in total (half per shard) for
//    --duration-s each, after a --warmup-s step at the lowest rate (not reported). Every
//    transaction is signed before its step with the tree's SDK; offer k goes at t0 + k/rate to its
//    sender's queue; each sender submits in nonce order to one validator of its shard, retrying
//    the same bytes on 503/429 (after Retry-After, at most 2 s, or 200 ms; at most 30 tries), so
//    client-side queueing shows as latency. Finality is followed by polling each shard's
//    /v1/status and /v1/blocks/{h}. Per step: finalized tx/s as bench.ts defines it (finalized ÷
//    max(step, last finalization − first offer − p10 latency)), latency offer→final p50/p95 in ms
//    and in slots (ms ÷ slot), first attempts not answered 202, never-final transactions.
//
// Output: before | after tables on stdout and bench/results/layers-<time>.json (+ the profiles as
// layers-<time>-<tree>.cpuprofile, for a viewer such as Chrome DevTools).
// --smoke: A = 200, 2 blocks of 100, 3 runs, one rate (20 tx/s) for 10 s, 3 s of warm-up.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { loadavg } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { baselineTreeFromDir, buildBaseline, Cleanups, currentTree, importFromTree, table, type BlockCtx, type SigningKey, type Tree, type TreeCrypto, type TreeSdk, getJson, http, startTreeDevnet } from './lib-trees.js';

const { values: args } = parseArgs({
  options: {
    baseline: { type: 'string', default: 'b8f0639' },
    'baseline-tree': { type: 'string' },
    current: { type: 'string', default: 'true' },
    exec: { type: 'string', default: 'true' },
    devnet: { type: 'string', default: 'true' },
    accounts: { type: 'string' },
    'block-txs': { type: 'string' },
    blocks: { type: 'string' },
    runs: { type: 'string' },
    'warmup-runs': { type: 'string', default: '2' },
    rates: { type: 'string' },
    'duration-s': { type: 'string' },
    'warmup-s': { type: 'string' },
    'drain-s': { type: 'string', default: '30' },
    'accounts-per-shard': { type: 'string', default: '32' },
    'base-port': { type: 'string', default: '28000' },
    out: { type: 'string', default: 'bench/results' },
    smoke: { type: 'boolean', default: false },
    // Node flags for every devnet process (both trees), e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" (run one tree at a time to keep the profiles apart).
    'node-flags': { type: 'string' },
  },
});

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const SMOKE = args.smoke === true;
const nums = (s: string) => s.split(',').map((x) => Number(x.trim()));
const ACCOUNTS = nums(args.accounts ?? (SMOKE ? '200' : '1000,10000'));
const BLOCK_TXS = Number(args['block-txs'] ?? (SMOKE ? 100 : 500));
const BLOCKS = Number(args.blocks ?? (SMOKE ? 2 : 4));
const RUNS = Number(args.runs ?? (SMOKE ? 3 : 7));
const WARMUP_RUNS = Number(args['warmup-runs']);
const RATES = nums(args.rates ?? (SMOKE ? '20' : '40,70'));
const DURATION_MS = Number(args['duration-s'] ?? (SMOKE ? 10 : 30)) * 1000;
const WARMUP_MS = Number(args['warmup-s'] ?? (SMOKE ? 3 : 10)) * 1000;
const DRAIN_MS = Number(args['drain-s']) * 1000;
const PER_SHARD = Number(args['accounts-per-shard']);
const BASE_PORT = Number(args['base-port']);
if (ACCOUNTS.some((a) => !Number.isInteger(a) || a < BLOCK_TXS + 1 || a > 200_000)) throw new Error('--accounts: integers in (block-txs, 200000]');
if (!(BLOCK_TXS >= 1 && BLOCK_TXS <= 2000) || !(BLOCKS >= 1 && BLOCKS <= 20) || !(RUNS >= 1 && RUNS <= 100) || !(WARMUP_RUNS >= 0 && WARMUP_RUNS <= 20)) {
  throw new Error('--block-txs in 1..2000, --blocks in 1..20, --runs in 1..100, --warmup-runs in 0..20');
}
if (RATES.some((r) => !(r > 0 && r <= 500)) || !(DURATION_MS >= 5000) || !(WARMUP_MS >= 0) || !(DRAIN_MS >= 1000)) throw new Error('--rates in (0, 500], --duration-s ≥ 5, --warmup-s ≥ 0, --drain-s ≥ 1');
if (!(PER_SHARD >= 2 && PER_SHARD <= 256) || !(BASE_PORT > 1024 && BASE_PORT < 31_000)) throw new Error('--accounts-per-shard in 2..256, --base-port in 1025..30999');

const SCHEME = 'ml-dsa-44';
const SLOT_MS = 1000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const cleanups = new Cleanups();
cleanups.onSignals('stopping devnets and removing the baseline worktree');

// ---------------------------------------------------------------- the trees' packages (each its own)

/** The parts of a tree's packages this bench calls; the shapes are the same in both trees unless noted. */
type CryptoPkg = TreeCrypto;
type Genesis = { chainId: string; minFee: bigint } & Record<string, unknown>;
interface TypesPkg {
  makeGenesis(input: Record<string, unknown>): Genesis;
  openTx(raw: Uint8Array): unknown;
}
interface Execution {
  changes: unknown;
  stateRoot: Uint8Array;
}
interface State {
  apply(ch: unknown): void;
  rootWith(ch?: unknown): Uint8Array;
}
type ExecFn = (s: State, txs: readonly unknown[], p: unknown, ctx: BlockCtx) => Execution;
type ApplicableFn = (s: State, txs: readonly unknown[], p: unknown, ctx: BlockCtx) => { applied: unknown[]; skipped: { error: { code: string } }[]; exec: Execution };
interface StatePkg {
  stateParams(g: Genesis, shard: number): unknown;
  // old tree only
  WorldState: { fromGenesis?(g: Genesis, shard: number): State };
  executeBlock?: ExecFn;
  executeApplicable?: ApplicableFn;
}
interface Machine {
  genesisState(g: Genesis, shard: number): State;
  executeBlock: ExecFn;
  executeApplicable: ApplicableFn;
}
interface AppPkg {
  app: Machine;
  genesisModules(): unknown[];
}
type SdkPkg = TreeSdk;
interface Devnet {
  genesis: { chainId: string; genesisTime: bigint | number; slotMs: bigint | number; shardCount: number; minFee: bigint };
  passphraseFile: string;
  manifest: { accounts: { address: string; shard: number; keystore: string }[]; processes: { name: string; role: string; shard?: number }[] };
  process(name: string): { apiUrl: string };
  stop(): Promise<void>;
}
interface CliPkg {
  startDevnet(o: Record<string, unknown>): Promise<Devnet>;
  unlockKeystoreFile(path: string, pass: string): Promise<{ key: { publicKey: Uint8Array; secretKey: Uint8Array; scheme: string } }>;
}

/** One tree's code, loaded from its own dist/. */
interface Code {
  tree: Tree;
  layered: boolean;
  crypto: CryptoPkg;
  types: TypesPkg;
  sdk: SdkPkg;
  stateParams: (g: Genesis, shard: number) => unknown;
  genesisState: (g: Genesis) => State;
  executeBlock: ExecFn;
  executeApplicable: ApplicableFn;
  genesisExtra: Record<string, unknown>;
}

async function loadCode(tree: Tree): Promise<Code> {
  const crypto = await importFromTree<CryptoPkg>(tree, 'crypto');
  const types = await importFromTree<TypesPkg>(tree, 'types');
  const state = await importFromTree<StatePkg>(tree, 'state');
  const sdk = await importFromTree<SdkPkg>(tree, 'sdk');
  const base = { tree, crypto, types, sdk, stateParams: state.stateParams.bind(state) };
  if (existsSync(join(tree.root, 'packages/app/dist/index.js'))) {
    // The layered tree: the node runs `app.*` (packages/node/src/chain.ts), the genesis names the app's modules.
    const appPkg = await importFromTree<AppPkg>(tree, 'app');
    const m = appPkg.app;
    return {
      ...base,
      layered: true,
      genesisState: (g) => m.genesisState(g, 0),
      executeBlock: (s, t, p, c) => m.executeBlock(s, t, p, c),
      executeApplicable: (s, t, p, c) => m.executeApplicable(s, t, p, c),
      genesisExtra: { modules: appPkg.genesisModules() },
    };
  }
  const { executeBlock, executeApplicable, WorldState } = state;
  if (!executeBlock || !executeApplicable || !WorldState.fromGenesis) throw new Error(`${tree.label}: neither packages/app nor the state package's executeBlock/executeApplicable/WorldState.fromGenesis`);
  const fromGenesis = WorldState.fromGenesis.bind(WorldState);
  return { ...base, layered: false, genesisState: (g) => fromGenesis(g, 0), executeBlock, executeApplicable, genesisExtra: {} };
}

// ---------------------------------------------------------------- statistics

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
const median = (xs: number[]) => pct([...xs].sort((a, b) => a - b), 50);
const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;
const r3 = (x: number) => Math.round(x * 1000) / 1000;

// ---------------------------------------------------------------- 1. block execution in process

/** Deterministic key seeds: the same accounts in both trees (keys are plain ML-DSA key pairs). */
function seed(i: number): Uint8Array {
  const s = new Uint8Array(32);
  new DataView(s.buffer).setUint32(0, 0x1a7e5 + i);
  s[31] = 0x15;
  return s;
}

interface Fixture {
  code: Code;
  params: unknown;
  /** Per block: the state it runs on, its envelopes, its context. */
  blocks: { state: State; txs: unknown[]; ctx: BlockCtx }[];
}

const PEER_ID = '12D3KooW' + 'A'.repeat(44);

/** The genesis, signed blocks and pre-states of one tree for A accounts (keys shared: `keys`). */
function fixture(code: Code, a: number, keys: SigningKey[], validator: SigningKey, beacon: SigningKey, backend: string): Fixture {
  const { crypto, types, sdk } = code;
  const addr = (k: SigningKey) => crypto.formatAddress(crypto.addressFromPublicKey(k.publicKey));
  const senders = keys.map(addr);
  // The rest of the A accounts are addresses without keys (recipients only).
  const others = Array.from({ length: a - keys.length }, (_, i) => {
    const b = new Uint8Array(20);
    new DataView(b.buffer).setUint32(0, 0x0e000000 + i);
    b[19] = 0x77;
    return crypto.formatAddress(b);
  });
  const all = [...senders, ...others];
  const g = types.makeGenesis({
    chainId: 'qnexus-layerbench',
    scheme: SCHEME,
    genesisTime: 1_800_000_000_000,
    slotMs: SLOT_MS,
    epochLength: 1_000_000,
    shardCount: 1,
    minFee: 1n,
    maxBlockTxs: BLOCK_TXS,
    xferTimeoutSlots: 20,
    beacon: { publicKey: beacon.publicKey, peerId: PEER_ID },
    accounts: all.map((address) => ({ address, balance: 1_000_000_000n })),
    validators: [{ address: addr(validator), publicKey: validator.publicKey, stake: 1_000_000n }],
    ...code.genesisExtra,
  });
  const params = code.stateParams(g, 0);
  const proposer = crypto.addressFromPublicKey(validator.publicKey);
  const txsOf = (k: number) =>
    keys.map((key, i) => {
      const to = all[(i * 7919 + k * 104_729 + 1) % a]!;
      const tx = sdk.buildTransfer({ key: { ...key, backend }, chainId: g.chainId, to: to === senders[i] ? all[(i + 1) % a]! : to, amount: 1n + BigInt(k), fee: 1n, nonce: BigInt(k) });
      return types.openTx(tx.raw);
    });
  const blocks: Fixture['blocks'] = [];
  const signed = Array.from({ length: BLOCKS }, (_, k) => txsOf(k));
  for (let k = 0; k < BLOCKS; k++) {
    // Block k's pre-state: genesis + blocks 0..k-1, each applied by the tree's own state.
    const state = code.genesisState(g);
    for (let j = 0; j < k; j++) {
      const ctx = { height: j + 1, slot: j + 1, proposer };
      state.apply(code.executeBlock(state, signed[j]!, params, ctx).changes);
    }
    blocks.push({ state, txs: signed[k]!, ctx: { height: k + 1, slot: k + 1, proposer } });
  }
  return { code, params, blocks };
}

interface ExecSample {
  executeBlockMs: number;
  executeApplicableMs: number;
  rootMs: number;
}

/** One repetition: every block of the fixture through each path, timed. Throws if a block does not apply cleanly. */
function runOnce(f: Fixture): ExecSample {
  const s: ExecSample = { executeBlockMs: 0, executeApplicableMs: 0, rootMs: 0 };
  for (const b of f.blocks) {
    let t = performance.now();
    const e = f.code.executeBlock(b.state, b.txs, f.params, b.ctx);
    s.executeBlockMs += performance.now() - t;
    t = performance.now();
    const r = b.state.rootWith(e.changes);
    s.rootMs += performance.now() - t;
    if (Buffer.compare(Buffer.from(r), Buffer.from(e.stateRoot)) !== 0) throw new Error(`${f.code.tree.label}: rootWith(changes) differs from the execution's root`);
    t = performance.now();
    const ap = f.code.executeApplicable(b.state, b.txs, f.params, b.ctx);
    s.executeApplicableMs += performance.now() - t;
    if (ap.applied.length !== b.txs.length) throw new Error(`${f.code.tree.label}: the proposer path skipped ${ap.skipped.length} (${ap.skipped[0]?.error.code})`);
  }
  return s;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
}

interface ProfileSummary {
  tree: string;
  accounts: number;
  blocksExecuted: number;
  sampledMs: number;
  /** Top functions by self time: share of all samples, µs per transaction. */
  topFunctions: { fn: string; where: string; selfPct: number; usPerTx: number }[];
  /** Self time by source file (package-relative), same units. */
  byFile: { file: string; selfPct: number; usPerTx: number }[];
  file: string;
}

function shortUrl(tree: Tree, url: string): string {
  if (!url) return '(native)';
  const p = url.startsWith('file://') ? fileURLToPath(url) : url;
  const nm = p.lastIndexOf('node_modules/');
  if (nm >= 0) return p.slice(nm + 'node_modules/'.length);
  return p.startsWith(tree.root) ? relative(tree.root, p) : p;
}

/** CPU profile of the tree's executeBlock path over `reps` repetitions of the fixture's blocks. */
async function profile(f: Fixture, accounts: number, reps: number, outBase: string): Promise<ProfileSummary> {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    await session.post('Profiler.start');
    for (let i = 0; i < reps; i++) for (const b of f.blocks) f.code.executeBlock(b.state, b.txs, f.params, b.ctx);
    const { profile: p } = (await session.post('Profiler.stop')) as unknown as { profile: Profile };
    await session.post('Profiler.disable');
    const file = `${outBase}-${f.code.tree.label}.cpuprofile`;
    writeFileSync(file, JSON.stringify(p));
    const total = p.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0) || 1;
    const sampledMs = (p.endTime - p.startTime) / 1000;
    const txs = reps * f.blocks.reduce((s, b) => s + b.txs.length, 0);
    const usPerTx = (hits: number) => r2(((hits / total) * sampledMs * 1000) / txs);
    const byFn = new Map<string, { fn: string; where: string; hits: number }>();
    const byFile = new Map<string, number>();
    for (const n of p.nodes) {
      const h = n.hitCount ?? 0;
      if (!h) continue;
      const where = shortUrl(f.code.tree, n.callFrame.url);
      const fn = n.callFrame.functionName || '(anonymous)';
      const key = `${fn} ${where}:${n.callFrame.lineNumber + 1}`;
      const e = byFn.get(key) ?? { fn, where: n.callFrame.url ? `${where}:${n.callFrame.lineNumber + 1}` : where, hits: 0 };
      e.hits += h;
      byFn.set(key, e);
      byFile.set(where, (byFile.get(where) ?? 0) + h);
    }
    return {
      tree: f.code.tree.label,
      accounts,
      blocksExecuted: reps * f.blocks.length,
      sampledMs: r1(sampledMs),
      topFunctions: [...byFn.values()].sort((x, y) => y.hits - x.hits).slice(0, 15).map((e) => ({ fn: e.fn, where: e.where, selfPct: r1((100 * e.hits) / total), usPerTx: usPerTx(e.hits) })),
      byFile: [...byFile].sort((x, y) => y[1] - x[1]).slice(0, 12).map(([file, h]) => ({ file, selfPct: r1((100 * h) / total), usPerTx: usPerTx(h) })),
      file,
    };
  } finally {
    session.disconnect();
  }
}

interface ExecResult {
  accounts: number;
  blockTxs: number;
  blocks: number;
  runs: number;
  /** Per tree: the medians in µs per transaction, and every kept sample (ms per repetition, all blocks). */
  trees: {
    tree: string;
    rev: string;
    executeBlockUsPerTx: number;
    executeApplicableUsPerTx: number;
    rootUsPerTx: number;
    executeBlockWithoutRootUsPerTx: number;
    samples: ExecSample[];
  }[];
}

async function benchExec(codes: Code[], outBase: string): Promise<{ results: ExecResult[]; profiles: ProfileSummary[] }> {
  const backend = codes[0]!.crypto.backendAvailable('pqclean') ? 'pqclean' : 'noble';
  const keyOf = (i: number): SigningKey => ({ ...codes[0]!.crypto.generateKeyPair(SCHEME, seed(i)), scheme: SCHEME });
  console.log(`\n[exec] ${BLOCK_TXS} keys (signing with ${backend})…`);
  const keys = Array.from({ length: BLOCK_TXS }, (_, i) => keyOf(i));
  const validator = keyOf(1_000_001);
  const beacon = keyOf(1_000_002);
  const results: ExecResult[] = [];
  const profiles: ProfileSummary[] = [];
  for (const a of ACCOUNTS) {
    const t = performance.now();
    const fx = codes.map((c) => fixture(c, a, keys, validator, beacon, backend));
    console.log(`[exec] A = ${a}: ${BLOCKS} × ${BLOCK_TXS} transfers signed and pre-states built per tree in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    const samples: ExecSample[][] = fx.map(() => []);
    for (let rep = 0; rep < WARMUP_RUNS + RUNS; rep++) {
      // Alternate which tree goes first, so neither always runs right after the other's garbage.
      const order = rep % 2 === 0 ? fx.map((_, i) => i) : fx.map((_, i) => fx.length - 1 - i);
      for (const i of order) {
        const s = runOnce(fx[i]!);
        if (rep >= WARMUP_RUNS) samples[i]!.push(s);
      }
    }
    const n = BLOCKS * BLOCK_TXS;
    const us = (ms: number) => r2((ms * 1000) / n);
    const res: ExecResult = {
      accounts: a,
      blockTxs: BLOCK_TXS,
      blocks: BLOCKS,
      runs: RUNS,
      trees: fx.map((f, i) => {
        const ss = samples[i]!;
        return {
          tree: f.code.tree.label,
          rev: f.code.tree.rev,
          executeBlockUsPerTx: us(median(ss.map((s) => s.executeBlockMs))),
          executeApplicableUsPerTx: us(median(ss.map((s) => s.executeApplicableMs))),
          rootUsPerTx: us(median(ss.map((s) => s.rootMs))),
          executeBlockWithoutRootUsPerTx: us(median(ss.map((s) => s.executeBlockMs - s.rootMs))),
          samples: ss.map((s) => ({ executeBlockMs: r3(s.executeBlockMs), executeApplicableMs: r3(s.executeApplicableMs), rootMs: r3(s.rootMs) })),
        };
      }),
    };
    results.push(res);
    console.log(table([['tree', 'executeBlock µs/tx', 'executeApplicable µs/tx', 'root µs/tx', 'executeBlock − root µs/tx'], ...res.trees.map((r) => [`${r.tree} (${r.rev})`, String(r.executeBlockUsPerTx), String(r.executeApplicableUsPerTx), String(r.rootUsPerTx), String(r.executeBlockWithoutRootUsPerTx)])]));
    if (a === Math.max(...ACCOUNTS)) {
      // About 2 s of samples per tree.
      for (const f of fx) {
        const perRep = median(samples[fx.indexOf(f)]!.map((s) => s.executeBlockMs)) || 1;
        profiles.push(await profile(f, a, Math.max(3, Math.min(200, Math.round(2000 / perRep))), outBase));
      }
    }
  }
  return { results, profiles };
}

// ---------------------------------------------------------------- 2. devnet, real processes

interface Net {
  devnet: Devnet;
  chainId: string;
  genesisTime: number;
  slotMs: number;
  /** Per shard: its validators' API URLs. */
  shardApis: string[][];
  /** Per shard: its funded accounts' keys and addresses. */
  wallets: { address: string; key: SigningKey; nonce: bigint }[][];
  close(): Promise<void>;
}

let portSlot = 0;
async function openNet(code: Code): Promise<Net> {
  const tree = code.tree;
  const cli = await importFromTree<CliPkg>(tree, 'cli');
  const flags = args['node-flags'] ? args['node-flags'].split(/\s+/).filter(Boolean) : [];
  const nodeCommand = flags.length ? { nodeCommand: { command: process.execPath, args: [...flags, join(tree.root, 'packages/cli/dist/bin.js')] } } : {};
  const { devnet: d, close } = await startTreeDevnet({
    prefix: `qnexus-layers-${tree.label}-`,
    basePort: () => BASE_PORT + (portSlot++ % 10) * 200,
    start: (dir, basePort) =>
      cli.startDevnet({ dir, basePort, reset: true, shards: 2, validators: 4, fullNodes: 0, accounts: PER_SHARD, logFormat: 'json', scryptN: 1 << 12, readyTimeoutMs: 90_000, ...nodeCommand }),
    cleanups,
  });
  const g = d.genesis;
  const backend = code.crypto.backendAvailable('pqclean') ? 'pqclean' : 'noble';
  const pass = readFileSync(d.passphraseFile, 'utf8').trim();
  const wallets: Net['wallets'] = Array.from({ length: g.shardCount }, () => []);
  for (const a of d.manifest.accounts) {
    const { key } = await cli.unlockKeystoreFile(a.keystore, pass);
    wallets[a.shard]!.push({ address: a.address, key: { publicKey: key.publicKey, secretKey: key.secretKey, scheme: key.scheme, backend }, nonce: 0n });
  }
  const validators = d.manifest.processes.filter((p) => p.role === 'validator');
  return {
    devnet: d,
    chainId: g.chainId,
    genesisTime: Number(g.genesisTime),
    slotMs: Number(g.slotMs),
    shardApis: Array.from({ length: g.shardCount }, (_, k) => validators.filter((p) => p.shard === k).map((p) => d.process(p.name).apiUrl)),
    wallets,
    close,
  };
}

interface Tx {
  hash: string;
  raw: Uint8Array;
  shard: number;
  wallet: number;
  offerMs: number;
  firstAnswer: string | null;
  acked: boolean;
  finalMs: number | null;
}

/** Follows each shard's finalized blocks through its validators; marks our transactions final. */
function observe(net: Net, txs: Map<string, Tx>, t0: () => number): { stop(): Promise<void> } {
  let done = false;
  const loops = net.shardApis.map(async (apis) => {
    let seen = -1;
    let turn = 0;
    while (!done) {
      const api = apis[turn % apis.length]!;
      const st = await getJson<{ finalizedHeight: number }>(`${api}/v1/status`, 3000);
      if (!st) turn++;
      if (seen < 0 && st) seen = st.finalizedHeight; // only blocks after the bench started
      for (let h = seen + 1; st && h <= st.finalizedHeight && !done; h++) {
        const b = await getJson<{ txs: string[] }>(`${api}/v1/blocks/${h}`, 5000);
        if (!b) {
          turn++;
          break;
        }
        const now = performance.now() - t0();
        for (const hash of b.txs) {
          const t = txs.get(hash);
          if (t && t.finalMs === null) t.finalMs = now;
        }
        seen = h;
      }
      await sleep(100);
    }
  });
  return {
    stop: async () => {
      done = true;
      await Promise.all(loops);
    },
  };
}

/** Submit the same bytes until a 202 or a definite refusal (503/429 are retried). */
async function submit(api: string, t: Tx): Promise<void> {
  for (let i = 0; i < 30; i++) {
    let wait = 200;
    let answer: string;
    try {
      const a = await http(`${api}/v1/txs`, { method: 'POST', body: t.raw, timeoutMs: 5000 });
      const code = (a.body as { error?: { code?: string } } | undefined)?.error?.code ?? '';
      answer = a.status === 202 ? '202' : `${a.status} ${code}`;
      if (a.status === 202) t.acked = true;
      const ra = a.retryAfter !== null ? Number(a.retryAfter) * 1000 : NaN;
      if (Number.isFinite(ra) && ra >= 0) wait = Math.min(2000, ra);
      t.firstAnswer ??= answer;
      if (a.status !== 503 && a.status !== 429) return;
    } catch (e) {
      answer = (e as Error).name === 'TimeoutError' ? 'timeout' : 'network';
      t.firstAnswer ??= answer;
      // A timed-out POST may have been admitted: do not send the same nonce again.
      if (answer === 'timeout') return;
    }
    await sleep(wait);
  }
}

interface StepResult {
  name: string;
  offeredTxPerSec: number;
  durationSec: number;
  offered: number;
  accepted: number;
  firstAttemptNot202: Record<string, number>;
  finalized: number;
  notFinalized: number;
  finalizedTxPerSec: number;
  latencyMs: { p50: number; p95: number; p99: number };
  latencySlots: { p50: number; p95: number; p99: number };
  hostLoad1m: number;
}

async function step(net: Net, code: Code, name: string, rate: number, durationMs: number): Promise<StepResult> {
  // Sign everything first (not what is measured): offer j goes to shard j % shards, round robin over its wallets.
  const shards = net.wallets.length;
  const n = Math.round((rate * durationMs) / 1000);
  const turn = net.wallets.map(() => 0);
  const txs: Tx[] = [];
  for (let j = 0; j < n; j++) {
    const shard = j % shards;
    const ws = net.wallets[shard]!;
    const wi = turn[shard]!++ % ws.length;
    const w = ws[wi]!;
    const to = ws[(wi + 1) % ws.length]!.address;
    const b = code.sdk.buildTransfer({ key: w.key, chainId: net.chainId, to, amount: 1n, fee: 1n, nonce: w.nonce++ });
    txs.push({ hash: b.hash, raw: b.raw, shard, wallet: wi, offerMs: (j * 1000) / rate, firstAnswer: null, acked: false, finalMs: null });
  }
  const byHash = new Map(txs.map((t) => [t.hash, t]));
  let t0 = performance.now();
  const obs = observe(net, byHash, () => t0);
  await sleep(1500); // the observer has found the current heights
  t0 = performance.now();
  const startWall = Date.now();
  // Each wallet submits in nonce order, one at a time, to one validator of its shard.
  const queues = new Map<string, Tx[]>();
  const busy = new Set<string>();
  const pump = async (key: string, api: string) => {
    if (busy.has(key)) return;
    busy.add(key);
    for (let t = queues.get(key)!.shift(); t; t = queues.get(key)!.shift()) await submit(api, t);
    busy.delete(key);
  };
  const pumps: Promise<void>[] = [];
  for (const t of txs) {
    const wait = t0 + t.offerMs - performance.now();
    if (wait > 0) await sleep(wait);
    const key = `${t.shard}/${t.wallet}`;
    if (!queues.has(key)) queues.set(key, []);
    queues.get(key)!.push(t);
    const apis = net.shardApis[t.shard]!;
    pumps.push(pump(key, apis[t.wallet % apis.length]!));
  }
  await Promise.all(pumps);
  // Drain: until every accepted transaction is final, at most DRAIN_MS after the last offer.
  const drainEnd = performance.now() + DRAIN_MS;
  while (performance.now() < drainEnd && txs.some((t) => t.acked && t.finalMs === null)) await sleep(250);
  await obs.stop();
  const lat = txs.filter((t) => t.finalMs !== null).map((t) => t.finalMs! - t.offerMs).sort((a, b) => a - b);
  const lastFinal = Math.max(0, ...txs.map((t) => t.finalMs ?? 0));
  // bench.ts's definition: the window is at least the offer window, else first offer → last
  // finalization less the pipeline's own delay (p10 latency).
  const windowSec = Math.max(durationMs / 1000, (lastFinal - (lat.length ? pct(lat, 10) : 0)) / 1000);
  const firstNot202: Record<string, number> = {};
  for (const t of txs) if (t.firstAnswer !== '202') firstNot202[t.firstAnswer ?? 'none'] = (firstNot202[t.firstAnswer ?? 'none'] ?? 0) + 1;
  const res: StepResult = {
    name,
    offeredTxPerSec: rate,
    durationSec: durationMs / 1000,
    offered: n,
    accepted: txs.filter((t) => t.acked).length,
    firstAttemptNot202: firstNot202,
    finalized: lat.length,
    notFinalized: txs.filter((t) => t.acked && t.finalMs === null).length,
    finalizedTxPerSec: r1(lat.length / windowSec),
    latencyMs: { p50: Math.round(pct(lat, 50)), p95: Math.round(pct(lat, 95)), p99: Math.round(pct(lat, 99)) },
    latencySlots: { p50: r2(pct(lat, 50) / net.slotMs), p95: r2(pct(lat, 95) / net.slotMs), p99: r2(pct(lat, 99) / net.slotMs) },
    hostLoad1m: r2(loadavg()[0]!),
  };
  console.log(`[devnet ${code.tree.label}] ${name}: offered ${rate} tx/s × ${durationMs / 1000} s (from ${new Date(startWall).toISOString()}), finalized ${res.finalizedTxPerSec} tx/s, p50 ${res.latencySlots.p50} / p95 ${res.latencySlots.p95} slots, not final ${res.notFinalized}, first not 202 ${JSON.stringify(firstNot202)}`);
  return res;
}

interface DevnetRun {
  tree: string;
  rev: string;
  warmup?: StepResult;
  steps: StepResult[];
  error?: string;
}

async function benchDevnet(code: Code): Promise<DevnetRun> {
  const run: DevnetRun = { tree: code.tree.label, rev: code.tree.rev, steps: [] };
  console.log(`\n[devnet ${code.tree.label}] starting the tree's own devnet…`);
  const net = await openNet(code);
  try {
    const lowest = Math.min(...RATES);
    if (WARMUP_MS > 0) run.warmup = await step(net, code, 'warm-up', lowest, WARMUP_MS);
    for (const r of RATES) run.steps.push(await step(net, code, `${r} tx/s`, r, DURATION_MS));
  } catch (e) {
    run.error = (e as Error).stack ?? String(e);
    console.log(`[devnet ${code.tree.label}] error: ${run.error}`);
  } finally {
    await net.close();
  }
  return run;
}

// ---------------------------------------------------------------- report

const ratio = (b: number, a: number) => (b > 0 ? `${(a / b).toFixed(2)}×` : '–');

function report(exec: ExecResult[], profiles: ProfileSummary[], devnet: DevnetRun[]): string {
  const out: string[] = [];
  for (const e of exec) {
    const [b, a] = [e.trees.find((t) => t.tree === 'before'), e.trees.find((t) => t.tree === 'after')];
    const rows: [string, keyof ExecResult['trees'][number]][] = [
      ['executeBlock (validator)', 'executeBlockUsPerTx'],
      ['executeApplicable (proposer)', 'executeApplicableUsPerTx'],
      ['state root alone', 'rootUsPerTx'],
      ['executeBlock − root', 'executeBlockWithoutRootUsPerTx'],
    ];
    out.push(`\nBlock execution, A = ${e.accounts} accounts, ${e.blocks} blocks × ${e.blockTxs} transfers, median of ${e.runs} (µs per transaction)`);
    const head = ['path', ...e.trees.map((t) => `${t.tree} (${t.rev})`), ...(b && a ? ['after ÷ before'] : [])];
    const body = rows.map(([name, k]) => [name, ...e.trees.map((t) => String(t[k])), ...(b && a ? [ratio(b[k] as number, a[k] as number)] : [])]);
    out.push(table([head, ...body]));
    out.push(`\n| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|\n${body.map((r) => `| ${r.join(' | ')} |`).join('\n')}`);
  }
  for (const p of profiles) {
    out.push(`\nCPU profile, ${p.tree}, executeBlock at A = ${p.accounts} (${p.blocksExecuted} blocks, ${p.sampledMs} ms sampled): top self time`);
    out.push(table([['function', 'where', 'self %', 'µs/tx'], ...p.topFunctions.map((f) => [f.fn, f.where, String(f.selfPct), String(f.usPerTx)])]));
    out.push('by file:');
    out.push(table([['file', 'self %', 'µs/tx'], ...p.byFile.map((f) => [f.file, String(f.selfPct), String(f.usPerTx)])]));
  }
  if (devnet.length) {
    const head = ['measure', ...devnet.map((d) => `${d.tree} (${d.rev})`)];
    const rows: string[][] = [];
    for (const r of RATES) {
      const s = devnet.map((d) => d.steps.find((x) => x.offeredTxPerSec === r));
      const cell = (f: (x: StepResult) => string) => s.map((x) => (x ? f(x) : 'error'));
      rows.push([`${r} tx/s: finalized tx/s`, ...cell((x) => String(x.finalizedTxPerSec))]);
      rows.push([`${r} tx/s: p50 / p95 latency (slots)`, ...cell((x) => `${x.latencySlots.p50} / ${x.latencySlots.p95}`)]);
      rows.push([`${r} tx/s: p50 / p95 latency (ms)`, ...cell((x) => `${x.latencyMs.p50} / ${x.latencyMs.p95}`)]);
      rows.push([`${r} tx/s: accepted / never final`, ...cell((x) => `${x.accepted} / ${x.notFinalized}`)]);
      rows.push([`${r} tx/s: first attempt not 202`, ...cell((x) => JSON.stringify(x.firstAttemptNot202))]);
    }
    out.push(`\nDevnet (2 shards × 4 validators + beacon, ${DURATION_MS / 1000} s per rate)`);
    out.push(table([head, ...rows]));
    out.push(`\n| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|\n${rows.map((r) => `| ${r.join(' | ')} |`).join('\n')}`);
  }
  return out.join('\n');
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const trees: Tree[] = [];
  if (args['baseline-tree']) trees.push(baselineTreeFromDir(args['baseline-tree']));
  else if (args.baseline && args.baseline !== 'none') trees.push(buildBaseline(ROOT, args.baseline, cleanups));
  if (args.current !== 'false') trees.push(currentTree(ROOT));
  if (trees.length === 0) throw new Error('nothing to run: --current false needs a baseline');
  const started = Date.now();
  const out = resolve(ROOT, args.out!);
  mkdirSync(out, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const outBase = join(out, `layers-${stamp}`);
  const codes: Code[] = [];
  for (const t of trees) codes.push(await loadCode(t));
  const config = { accounts: ACCOUNTS, blockTxs: BLOCK_TXS, blocks: BLOCKS, runs: RUNS, warmupRuns: WARMUP_RUNS, rates: RATES, durationSec: DURATION_MS / 1000, warmupSec: WARMUP_MS / 1000, drainSec: DRAIN_MS / 1000, accountsPerShard: PER_SHARD, smoke: SMOKE, hostLoadAtStart: loadavg().map(r2), node: process.version };
  const exec = args.exec !== 'false' ? await benchExec(codes, outBase) : { results: [], profiles: [] };
  const devnet: DevnetRun[] = [];
  if (args.devnet !== 'false') {
    for (const c of codes) {
      try {
        devnet.push(await benchDevnet(c));
      } catch (e) {
        console.log(`[devnet ${c.tree.label}] error: ${(e as Error).stack ?? String(e)}`);
        devnet.push({ tree: c.tree.label, rev: c.tree.rev, steps: [], error: (e as Error).message.split('\n')[0]! });
      }
    }
  }
  console.log(`\nlayers: ${trees.map((t) => `${t.label} = ${t.rev}`).join(', ')}; ${((Date.now() - started) / 60_000).toFixed(1)} min`);
  console.log(report(exec.results, exec.profiles, devnet));
  const file = `${outBase}.json`;
  writeFileSync(file, JSON.stringify({ benchVersion: 1, config, trees: trees.map((t) => ({ label: t.label, rev: t.rev })), exec: exec.results, profiles: exec.profiles, devnet }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 1));
  console.log(`\nwrote ${file}`);
  if (devnet.some((d) => d.error)) process.exitCode = 1;
}

try {
  await main();
} finally {
  await cleanups.run();
}
