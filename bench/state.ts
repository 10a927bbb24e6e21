// npm run bench:state -- [--baseline <git-rev> (79d82c1) | --baseline-tree <dir>] [--current true|false]
//                        [--parts blocks,rss,snapshot,devnet] [--sizes 10000,100000,1000000]
//                        [--blocks 6] [--warmup-blocks 1] [--block-txs 1000] [--chunk 100000] [--budget-s 90]
//                        [--rss-accounts 1000000] [--rss-validators 2] [--rss-rate 40] [--rss-duration-s 60] [--rss-keep <dir>]
//                        [--rates 40,70] [--duration-s 20] [--warmup-s 5] [--base-port 29000]
//                        [--out bench/results] [--profile] [--smoke]
// Run it under the shared lock (it starts processes and devnets): flock /tmp/qnexus-heavy.lock npm run bench:state
//
// Issue 16 (state at scale) measured before and after in one run, each tree with its OWN code
// (bench/lib-trees.ts): before = the baseline revision (79d82c1: the flat O(N) sorted-leaf root,
// every entry in memory), after = this checkout (the versioned Merkle trie on LevelDB).
// The accounts are written genesis-like by the tree's own `bank.genesisCredit` (totals, supply and
// account count stay consistent), not through 10^6 signed transactions; 2 × --block-txs of them
// hold ML-DSA keys (registered in the state as after a first transaction, keys made once), the
// others have hash-like addresses.
//
// 1. blocks — per-block cost at each --sizes N accounts, each (tree, N) in its own child process
//    (clean RSS, no JIT or heap shared between trees).
//    after: the tree's Chain (packages/node dist/chain.js) on a data dir initialised by
//    `Chain.writeGenesis` with the accounts in chunks of --chunk at version 0 (the largest size
//    reuses the rss part's data dir, copied: building it is the slowest step).
//    before: the baseline's `WorldState.fromEntries` in memory, as its node holds the state.
//    Then --warmup-blocks + --blocks blocks of --block-txs transfers, distinct random senders (keyed
//    accounts) and distinct random recipients (any account) per block, all signed up front. Timed
//    per block, as the node runs them (packages/node/src/chain.ts): `app.executeBlock(state, …)`
//    (the transactions and the root, `rootWith`), then the commit — after: `chain.commit(candidate,
//    cert)` with the execution pre-set (no re-validation): state apply + the synced ChainStore batch;
//    before: `state.apply` + the block's writes in one synced batch of its ChainStore. "state" =
//    total − the same execution re-run warm on a view whose root costs nothing (an upper bound of
//    root + apply + batch). Median and p90 ms per block, growth between sizes, RSS after the build
//    and peak (VmHWM). A size whose blocks take long stops after at least 2 measured blocks once
//    --budget-s is spent (said in the output). --profile: a CPU profile of the measured blocks.
// 2. rss — a real node holding --rss-accounts accounts under load: a 1-shard devnet of this tree
//    (its launcher's prepareDevnet: --rss-validators validators + the beacon, not started), whose
//    first validator's data dir a child process initialises with `Chain.writeGenesis` (the devnet's
//    genesis + the accounts in chunks at version 0), copied into every other validator's data dir
//    before the first start: all hold the same block 0 and state root. (The genesis file does not
//    describe those accounts, so only a snapshot or a data-dir copy can join that chain, never block
//    replay.) Load: --rss-rate transfers/s for --rss-duration-s from the devnet's funded accounts to
//    random pre-populated accounts. Sampled RSS of each validator (1 s), VmHWM after the load and
//    after the snapshot part. --rss-keep <dir> keeps that devnet (a pristine copy, taken before its
//    first start) and reuses it on the next run.
// 3. snapshot — a fresh full node joins that devnet with `--sync snapshot`, bootstrapped to one
//    validator: time, bytes and items (its qnexus_snapshot_* metrics), peak RSS; against block
//    replay: the blocks and bytes that would create the same accounts (1 MiB blocks), and their CPU
//    cost from the verification and execute + commit times measured in 1 (a lower bound).
// 4. devnet — the devnet benchmark at the same offered load before and after: bench/layers.ts run
//    as it is (--exec false --baseline-tree <the baseline>), its results printed as one table.
//
// Output: tables on stdout, progress on stderr, bench/results/state-<time>.json.
// --smoke: sizes 2000,5000, 2 blocks of 200, rss 20000 accounts for 15 s, devnet one rate for 10 s.
import { spawn } from 'node:child_process';
import { Session } from 'node:inspector/promises';
import { closeSync, cpSync, existsSync, openSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { baselineTreeFromDir, buildBaseline, Cleanups, currentTree, getJson, http, importFileFromTree, importFromTree, startTreeDevnet, table, type BlockCtx, type SigningKey, type Tree, type TreeCrypto, type TreeSdk } from './lib-trees.js';

const { values: args } = parseArgs({
  options: {
    baseline: { type: 'string', default: '79d82c1' },
    'baseline-tree': { type: 'string' },
    current: { type: 'string', default: 'true' },
    parts: { type: 'string', default: 'blocks,rss,snapshot,devnet' },
    sizes: { type: 'string' },
    blocks: { type: 'string' },
    'warmup-blocks': { type: 'string', default: '1' },
    'block-txs': { type: 'string' },
    chunk: { type: 'string', default: '100000' },
    'budget-s': { type: 'string', default: '90' },
    'rss-accounts': { type: 'string' },
    'rss-validators': { type: 'string', default: '2' },
    // which tree's node the rss/snapshot parts run (the baseline holds every entry in memory: only for comparison at small sizes)
    'rss-tree': { type: 'string', default: 'after' },
    // keep the rss part's devnet (pre-populated, never started) in this directory and reuse it on the next run
    'rss-keep': { type: 'string' },
    'rss-rate': { type: 'string' },
    'rss-duration-s': { type: 'string' },
    rates: { type: 'string' },
    'duration-s': { type: 'string' },
    'warmup-s': { type: 'string' },
    'base-port': { type: 'string', default: '29000' },
    out: { type: 'string', default: 'bench/results' },
    smoke: { type: 'boolean', default: false },
    // CPU profile (inspector) of the measured blocks of every (tree, size), written next to the results
    profile: { type: 'boolean', default: false },
    // internal: run one job (a JSON file) in this process and write its result next to it
    child: { type: 'string' },
  },
});

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const SCRIPT = fileURLToPath(import.meta.url);
const SMOKE = args.smoke === true;
const nums = (s: string) => s.split(',').map((x) => Number(x.trim()));
const PARTS = new Set(args.parts!.split(',').map((s) => s.trim()));
const SIZES = nums(args.sizes ?? (SMOKE ? '2000,5000' : '10000,100000,1000000'));
const BLOCKS = Number(args.blocks ?? (SMOKE ? 2 : 6));
const WARMUP_BLOCKS = Number(args['warmup-blocks']);
const BLOCK_TXS = Number(args['block-txs'] ?? (SMOKE ? 200 : 1000));
const CHUNK = Number(args.chunk);
const BUDGET_MS = Number(args['budget-s']) * 1000;
const RSS_ACCOUNTS = Number(args['rss-accounts'] ?? (SMOKE ? 20_000 : 1_000_000));
const RSS_VALIDATORS = Number(args['rss-validators']);
const RSS_KEEP = args['rss-keep'] ? resolve(args['rss-keep']) : undefined;
const RSS_RATE = Number(args['rss-rate'] ?? (SMOKE ? 10 : 40));
const RSS_DURATION_MS = Number(args['rss-duration-s'] ?? (SMOKE ? 15 : 60)) * 1000;
const RATES = args.rates ?? (SMOKE ? '20' : '40,70');
const DURATION_S = args['duration-s'] ?? (SMOKE ? '10' : '20');
const WARMUP_S = args['warmup-s'] ?? (SMOKE ? '3' : '5');
const BASE_PORT = Number(args['base-port']);
for (const p of PARTS) if (!['blocks', 'rss', 'snapshot', 'devnet'].includes(p)) throw new Error(`--parts: unknown part ${p}`);
if (SIZES.some((n) => !Number.isInteger(n) || n < 2 * BLOCK_TXS + 2 || n > 5_000_000)) throw new Error('--sizes: integers in [2 × block-txs + 2, 5000000]');
if (!(BLOCK_TXS >= 10 && BLOCK_TXS <= 2000) || !(BLOCKS >= 1 && BLOCKS <= 50) || !(WARMUP_BLOCKS >= 0 && WARMUP_BLOCKS <= 5)) throw new Error('--block-txs in 10..2000, --blocks in 1..50, --warmup-blocks in 0..5');
if (!(CHUNK >= 1000 && CHUNK <= 1_000_000) || !(BUDGET_MS >= 1000)) throw new Error('--chunk in 1000..1000000, --budget-s ≥ 1');
if (!(RSS_ACCOUNTS >= 1000 && RSS_ACCOUNTS <= 5_000_000) || !(RSS_VALIDATORS >= 1 && RSS_VALIDATORS <= 4)) throw new Error('--rss-accounts in 1000..5000000, --rss-validators in 1..4');
if (!(RSS_RATE > 0 && RSS_RATE <= 500) || !(RSS_DURATION_MS >= 5000 && RSS_DURATION_MS <= 600_000)) throw new Error('--rss-rate in (0, 500], --rss-duration-s in 5..600');
if (!(BASE_PORT > 1024 && BASE_PORT < 31_000)) throw new Error('--base-port in 1025..30999');

const SCHEME = 'ml-dsa-44';
const BALANCE = 1_000_000_000n;
const PEER_ID = '12D3KooW' + 'B'.repeat(44);
const ZERO32 = new Uint8Array(32);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const progress = (s: string) => process.stderr.write(`[state ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

// ---------------------------------------------------------------- the trees' packages (the parts this bench calls)

interface CryptoPkg extends TreeCrypto {
  sha256(b: Uint8Array): Uint8Array;
  toHex(b: Uint8Array): string;
  getBackend(scheme: string, name?: string): { verify(pk: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean };
}
type Genesis = { chainId: string; minFee: bigint; maxBlockTxs: number } & Record<string, unknown>;
interface TxEnv {
  hash: Uint8Array;
  hashHex: string;
  raw: Uint8Array;
}
interface BlockHeader {
  chainId: string;
  shard: number;
  height: number;
  slot: number;
  parentHash: Uint8Array;
  stateRoot: Uint8Array;
  txRoot: Uint8Array;
  proposer: Uint8Array;
  txCount: number;
}
interface Certificate {
  height: number;
  round: number;
  blockHash: Uint8Array;
  votes: unknown[];
}
interface TypesPkg {
  makeGenesis(input: Record<string, unknown>): Genesis;
  parseGenesis?(json: unknown): Genesis;
  loadGenesis?(path: string): Genesis;
  openTx(raw: Uint8Array): TxEnv;
  txRoot(hashes: readonly Uint8Array[]): Uint8Array;
  encodeCertificate(c: Certificate): Uint8Array;
}
interface Writes extends ReadonlyMap<string, Uint8Array | null> {}
interface Changes {
  writes: Writes;
  xfers: Map<string, unknown>;
}
interface Execution {
  changes: Changes;
  stateRoot: Uint8Array;
}
interface KV {
  get(k: string): Uint8Array | undefined;
}
interface WorldState {
  readonly kv: KV;
  rootWith(ch?: Changes): Uint8Array;
  root(): Uint8Array;
  apply(ch: Changes): void;
}
interface Branch extends KV {
  readonly writes: Writes;
}
interface StatePkg {
  WorldState: { fromEntries(entries: Iterable<[string, Uint8Array]>): WorldState };
  stateParams(g: Genesis, shard: number): unknown;
  Branch: new (base: KV) => Branch;
  ExecCtx: new (kv: Branch, params: unknown, block: BlockCtx) => unknown;
  bank: {
    genesisCredit(ctx: unknown, to: Uint8Array, amount: bigint): void;
    setAuth(ctx: unknown, addr: Uint8Array, a: { nonce: bigint; publicKey: Uint8Array | null }): void;
  };
}
interface AppPkg {
  app: { executeBlock(s: WorldState, txs: readonly TxEnv[], p: unknown, ctx: BlockCtx): Execution; genesisState(g: Genesis, shard: number): WorldState };
  genesisModules(): unknown[];
}
type SdkPkg = TreeSdk;
interface Candidate {
  hash: Uint8Array;
  raw: Uint8Array;
  exec?: { parentHex: string; result: Execution };
}
interface Chain {
  readonly genesis: Genesis;
  readonly state: WorldState;
  readonly params: unknown;
  headHeight: number;
  headHash: Uint8Array;
  headSlot: number;
  commit(c: Candidate, cert: Certificate, opts?: { defer?: boolean; certificateBytes?: Uint8Array }): Promise<unknown>;
}
interface ChainMod {
  Chain: {
    open(store: unknown, g: Genesis, shard: number, verifier: unknown, log: unknown, epochOpts?: unknown): Promise<Chain>;
    /** After tree: an empty data dir initialised with the genesis state plus chunks of writes, all at version 0. */
    writeGenesis?(store: unknown, g: Genesis, shard: number, log: unknown, stateOpts: unknown, extra: (state: WorldState) => Iterable<Writes>): Promise<WorldState>;
  };
  candidateFromEnvs(h: BlockHeader, signature: Uint8Array, envs: TxEnv[]): Candidate;
}
interface Store {
  close(): Promise<void>;
  commitBlock(c: { height: number; hash: Uint8Array; block: Uint8Array; certificate: Uint8Array | null; txHashes: Uint8Array[]; writes: Writes }): Promise<void>;
}
interface DbPkg {
  ChainStore: { open(dir: string): Promise<Store> };
}
interface RuntimePkg {
  Logger: new (format: string, level: string, base?: Record<string, unknown>, out?: NodeJS.WritableStream) => unknown;
}

/** One tree's packages for the in-process jobs (blocks, populate). */
interface Code {
  crypto: CryptoPkg;
  types: TypesPkg;
  state: StatePkg;
  app: AppPkg;
  sdk: SdkPkg;
  db: DbPkg;
  chain: ChainMod;
  verifier: { TxVerifier: new (scheme: string, metrics: unknown, pool?: unknown, opts?: { backend?: string }) => { verify(env: TxEnv): boolean } };
  metrics: { createMetrics(): unknown };
  runtime: RuntimePkg;
  backend: string;
}

async function loadCode(tree: Tree): Promise<Code> {
  const crypto = await importFromTree<CryptoPkg>(tree, 'crypto');
  return {
    crypto,
    types: await importFromTree<TypesPkg>(tree, 'types'),
    state: await importFromTree<StatePkg>(tree, 'state'),
    app: await importFromTree<AppPkg>(tree, 'app'),
    sdk: await importFromTree<SdkPkg>(tree, 'sdk'),
    db: await importFromTree<DbPkg>(tree, 'db'),
    chain: await importFileFromTree<ChainMod>(tree, 'node', 'chain.js'),
    verifier: await importFileFromTree<Code['verifier']>(tree, 'node', 'verifier.js'),
    metrics: await importFileFromTree<Code['metrics']>(tree, 'node', 'metrics.js'),
    runtime: await importFromTree<RuntimePkg>(tree, 'runtime'),
    backend: crypto.backendAvailable('pqclean') ? 'pqclean' : 'noble',
  };
}

// ---------------------------------------------------------------- statistics, small helpers

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
const sortedOf = (xs: number[]) => [...xs].sort((a, b) => a - b);
const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;
const mb = (bytes: number) => Math.round(bytes / (1024 * 1024));

/** Seeded PRNG (mulberry32): the same accounts, senders and recipients in both trees. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Deterministic key seeds (plain ML-DSA key pairs: the same in both trees). */
function keySeed(i: number): Uint8Array {
  const s = new Uint8Array(32);
  new DataView(s.buffer).setUint32(0, 0x5eed0000 + i);
  s[31] = 0x16;
  return s;
}

/** Address of bulk account i: hash-like, so accounts spread over the key space as real ones do. */
function bulkAddress(crypto: CryptoPkg, i: number): Uint8Array {
  const b = new Uint8Array(12);
  b.set([0x73, 0x74, 0x61, 0x74, 0x65, 0x62, 0x65, 0x6e]); // "statebench"-ish tag
  new DataView(b.buffer).setUint32(8, i);
  return crypto.sha256(b).slice(0, 20);
}

/** VmHWM / VmRSS of a process in bytes (Linux), or null. */
function procMem(pid: number | 'self'): { rss: number; hwm: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return null;
  }
}

interface CpuProfile {
  nodes: { callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }[];
}

/** The functions with the most self time in a CPU profile (share of all samples). */
function topSelf(p: CpuProfile, n: number): { fn: string; where: string; selfPct: number }[] {
  const total = p.nodes.reduce((s, x) => s + (x.hitCount ?? 0), 0) || 1;
  const by = new Map<string, { fn: string; where: string; hits: number }>();
  for (const x of p.nodes) {
    const f = x.callFrame;
    const where = f.url ? `${f.url.replace(/^file:\/\//, '').replace(/^.*\/(packages|node_modules)\//, '')}:${f.lineNumber + 1}` : '(native)';
    const key = `${f.functionName} ${where}`;
    const e = by.get(key) ?? { fn: f.functionName || '(anonymous)', where, hits: 0 };
    e.hits += x.hitCount ?? 0;
    by.set(key, e);
  }
  return [...by.values()].sort((a, b) => b.hits - a.hits).slice(0, n).map((e) => ({ fn: e.fn, where: e.where, selfPct: r1((100 * e.hits) / total) }));
}

/** Bytes under `dir`; a file LevelDB's compaction removes meanwhile counts 0. */
function duBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    try {
      n += e.isDirectory() ? duBytes(p) : statSync(p).size;
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOENT') throw err;
    }
  }
  return n;
}

// ---------------------------------------------------------------- child jobs

interface BlocksJob {
  kind: 'blocks';
  tree: Tree;
  accounts: number;
  blocks: number;
  warmup: number;
  blockTxs: number;
  chunk: number;
  budgetMs: number;
  /** Also time single-core verification of one block's signatures (the replay estimate). */
  timeVerify: boolean;
  /** The keyed accounts' key pairs (hex), generated once by the parent (seeded ML-DSA key generation is slow). */
  keysFile: string;
  /** Write a CPU profile of the measured blocks here. */
  profileFile?: string;
  /**
   * After tree only: instead of building the state, open a copy of this pre-populated data dir
   * (the rss part's, built once for both: the keyed accounts are the same) on its genesis file.
   */
  template?: { genesisFile: string; dbDir: string; buildMs: number };
}
interface PopulateJob {
  kind: 'populate';
  tree: Tree;
  genesisFile: string;
  dbDir: string;
  accounts: number;
  chunk: number;
  /** The keyed accounts (as in BlocksJob), so the blocks part can run on a copy of this data dir. */
  keysFile?: string;
}
type Job = BlocksJob | PopulateJob;

interface BlockSample {
  /** app.executeBlock: the transactions and the state root (rootWith). */
  executeMs: number;
  /** chain.commit: state apply + the synced ChainStore batch. */
  commitMs: number;
  totalMs: number;
  /** The same execution again right after, warm, on a view whose rootWith costs nothing: the transactions alone. */
  txsOnlyMs: number;
  /** total − txsOnly: the state's share (root + apply + batch), an upper bound (the re-run is warm). */
  stateMs: number;
  writes: number;
}
interface BlocksResult {
  tree: string;
  rev: string;
  accounts: number;
  keys: number;
  buildMs: number;
  bulkBlocks: number;
  dataDirMB: number;
  rssAfterBuildMB: number;
  peakRssMB: number;
  rssEndMB: number;
  warmup: BlockSample[];
  samples: BlockSample[];
  stoppedByBudget: boolean;
  medianMs: number;
  p90Ms: number;
  medianExecuteMs: number;
  medianCommitMs: number;
  medianTxsOnlyMs: number;
  /** Median and p90 of the state's share per block (total − transactions alone). */
  medianStateMs: number;
  p90StateMs: number;
  verifyMsPerBlock?: number;
  /** Wire bytes of one benchmark transfer. */
  txBytes: number;
  /** With --profile: the top functions by self time over the measured blocks. */
  profile?: { file: string; top: { fn: string; where: string; selfPct: number }[] };
}
interface PopulateResult {
  accounts: number;
  keys: number;
  buildMs: number;
  bulkBlocks: number;
  headHeight: number;
  dataDirMB: number;
  peakRssMB: number;
}

/** Entries in a tree's committed state (`size` of the in-memory map, `count` of the trie), NaN if neither. */
function keyCount(s: WorldState): number {
  const kv = s.kv as KV & { size?: unknown; count?: unknown };
  return typeof kv.size === 'number' ? kv.size : typeof kv.count === 'number' ? kv.count : NaN;
}

/**
 * Open the tree's Chain on `dbDir`. With `accounts`, a fresh data dir is first initialised with the
 * genesis state plus that many genesis-like accounts: in chunks at version 0 when the tree's Chain
 * has `writeGenesis` (the after tree: what the node itself offers for a big genesis), else (the
 * baseline) committed through `chain.commit` as blocks of writes. Returns how many such blocks.
 */
async function openChain(code: Code, g: Genesis, dbDir: string, accounts = 0, keyed: Uint8Array[] = [], chunk = 100_000, label = ''): Promise<{ chain: Chain; close(): Promise<void>; bulkBlocks: number }> {
  const store = await code.db.ChainStore.open(dbDir);
  try {
    const verifier = new code.verifier.TxVerifier(SCHEME, code.metrics.createMetrics(), null, { backend: code.backend });
    const log = new code.runtime.Logger('json', 'error', {}, process.stderr);
    const writeGenesis = code.chain.Chain.writeGenesis?.bind(code.chain.Chain);
    if (accounts > 0 && writeGenesis) {
      const t0 = performance.now();
      const params = code.state.stateParams(g, 0);
      await writeGenesis(store, g, 0, log, {}, function* (state) {
        for (let start = 0; start < accounts; start += chunk) {
          const end = Math.min(accounts, start + chunk);
          yield creditWrites(code, state.kv, params, start, end, keyed).writes;
          progress(`${label}: ${end.toLocaleString('en')} / ${accounts.toLocaleString('en')} accounts computed (${((performance.now() - t0) / 1000).toFixed(1)} s, RSS ${mb(procMem('self')?.rss ?? 0)} MB)`);
        }
      });
      const chain = await code.chain.Chain.open(store, g, 0, verifier, log);
      return { chain, close: () => store.close(), bulkBlocks: 0 };
    }
    const chain = await code.chain.Chain.open(store, g, 0, verifier, log);
    const bulkBlocks = accounts > 0 ? await bulkLoad(code, chain, accounts, keyed, chunk, label) : 0;
    return { chain, close: () => store.close(), bulkBlocks };
  } catch (e) {
    await store.close();
    throw e;
  }
}

/** Commit an execution on the head through the node's own path (the execution pre-set: no re-validation). */
async function commitExec(code: Code, chain: Chain, exec: Execution, envs: TxEnv[], proposer: Uint8Array): Promise<void> {
  const height = chain.headHeight + 1;
  const slot = chain.headSlot + 1;
  const header: BlockHeader = { chainId: chain.genesis.chainId, shard: 0, height, slot, parentHash: chain.headHash, stateRoot: exec.stateRoot, txRoot: code.types.txRoot(envs.map((e) => e.hash)), proposer, txCount: envs.length };
  const c = code.chain.candidateFromEnvs(header, new Uint8Array(0), envs);
  c.exec = { parentHex: code.crypto.toHex(chain.headHash), result: exec };
  await chain.commit(c, { height, round: slot, blockHash: c.hash, votes: [] });
}


/** The first min(accounts / 2, all) key pairs of the keys file: the keyed accounts are accounts 0..K-1. */
function readKeys(file: string, accounts: number, backend: string): SigningKey[] {
  const kf = JSON.parse(readFileSync(file, 'utf8')) as { publicKey: string; secretKey: string }[];
  return kf.slice(0, Math.min(Math.floor(accounts / 2), kf.length)).map((k) => ({ publicKey: Buffer.from(k.publicKey, 'hex'), secretKey: Buffer.from(k.secretKey, 'hex'), scheme: SCHEME, backend }));
}

/**
 * The genesis-like writes of accounts `from..to-1` (the first `keyed.length` with their public keys),
 * by the tree's own bank on a branch over `base`: balances, account records, totals, supply, count.
 */
function creditWrites(code: Code, base: KV, params: unknown, from: number, to: number, keyed: Uint8Array[]): Branch {
  const kv = new code.state.Branch(base);
  const ctx = new code.state.ExecCtx(kv, params, { height: 0, slot: 0, proposer: new Uint8Array(20) });
  for (let i = from; i < to; i++) {
    const pk = keyed[i];
    const addr = pk ? code.crypto.addressFromPublicKey(pk) : bulkAddress(code.crypto, i);
    code.state.bank.genesisCredit(ctx, addr, BALANCE);
    if (pk) code.state.bank.setAuth(ctx, addr, { nonce: 0n, publicKey: pk });
  }
  return kv;
}

/**
 * Write `accounts` genesis-like accounts into the chain, `chunk` accounts per block of writes
 * committed through `chain.commit` (the node's path: state apply + one ChainStore batch).
 * Returns the number of such blocks.
 */
async function bulkLoad(code: Code, chain: Chain, accounts: number, keyed: Uint8Array[], chunk: number, label: string): Promise<number> {
  const zero = new Uint8Array(20);
  let blocks = 0;
  const t0 = performance.now();
  for (let start = 0; start < accounts; start += chunk) {
    const end = Math.min(accounts, start + chunk);
    const kv = creditWrites(code, chain.state.kv, chain.params, start, end, keyed);
    const changes: Changes = { writes: kv.writes, xfers: new Map() };
    await commitExec(code, chain, { changes, stateRoot: chain.state.rootWith(changes) }, [], zero);
    blocks++;
    progress(`${label}: ${end.toLocaleString('en')} / ${accounts.toLocaleString('en')} accounts written (${((performance.now() - t0) / 1000).toFixed(1)} s, RSS ${mb(procMem('self')?.rss ?? 0)} MB)`);
  }
  return blocks;
}

/**
 * How a tree commits a block in this bench. after: the tree's Chain on a data dir holding the
 * accounts (built through `chain.commit`). before: the baseline's state in memory
 * (`WorldState.fromEntries`, as its node loads it), committed as its Chain.commit does it —
 * `state.apply`, then the block's writes in one synced ChainStore batch (a fresh store: the flat
 * layout's batch does not depend on what is already stored).
 */
interface Committer {
  state: WorldState;
  params: unknown;
  head(): { height: number; slot: number; hash: Uint8Array };
  commit(envs: TxEnv[], exec: Execution, proposer: Uint8Array): Promise<{ commitMs: number }>;
  dataDir: string;
  bulkBlocks: number;
  close(): Promise<void>;
}

async function openCommitter(code: Code, job: BlocksJob, g: Genesis, keyed: Uint8Array[], dir: string, label: string): Promise<Committer> {
  const header = (h: { height: number; slot: number; hash: Uint8Array }, envs: TxEnv[], exec: Execution, proposer: Uint8Array): BlockHeader => ({
    chainId: g.chainId,
    shard: 0,
    height: h.height + 1,
    slot: h.slot + 1,
    parentHash: h.hash,
    stateRoot: exec.stateRoot,
    txRoot: code.types.txRoot(envs.map((e) => e.hash)),
    proposer,
    txCount: envs.length,
  });
  if (job.tree.label === 'before') {
    const params = code.state.stateParams(g, 0);
    const genesis = code.app.app.genesisState(g, 0);
    const entries = new Map<string, Uint8Array>((genesis.kv as KV & { all(): Iterable<[string, Uint8Array]> }).all());
    for (let start = 0; start < job.accounts; start += job.chunk) {
      const end = Math.min(job.accounts, start + job.chunk);
      // Chunks over what is built so far, so totals and counts carry over.
      const base: KV = { get: (k) => entries.get(k) };
      for (const [k, v] of creditWrites(code, base, params, start, end, keyed).writes) {
        if (v) entries.set(k, v);
        else entries.delete(k);
      }
      progress(`${label}: ${end.toLocaleString('en')} / ${job.accounts.toLocaleString('en')} accounts written (RSS ${mb(procMem('self')?.rss ?? 0)} MB)`);
    }
    const state = code.state.WorldState.fromEntries(entries);
    entries.clear();
    state.root(); // the node checks it against the head block at load
    const store = await code.db.ChainStore.open(join(dir, 'db'));
    let head: { height: number; slot: number; hash: Uint8Array } = { height: 0, slot: 0, hash: new Uint8Array(32) };
    return {
      state,
      params,
      head: () => head,
      async commit(envs, exec, proposer) {
        const h = header(head, envs, exec, proposer);
        const c = code.chain.candidateFromEnvs(h, new Uint8Array(0), envs);
        const certificate = code.types.encodeCertificate({ height: h.height, round: h.slot, blockHash: c.hash, votes: [] });
        const t = performance.now();
        state.apply(exec.changes);
        await store.commitBlock({ height: h.height, hash: c.hash, block: c.raw, certificate, txHashes: envs.map((e) => e.hash), writes: exec.changes.writes });
        const commitMs = performance.now() - t;
        head = { height: h.height, slot: h.slot, hash: c.hash };
        return { commitMs };
      },
      dataDir: join(dir, 'db'),
      bulkBlocks: 0,
      close: () => store.close(),
    };
  }
  if (job.template) {
    const tc = performance.now();
    cpSync(job.template.dbDir, join(dir, 'db'), { recursive: true });
    progress(`${label}: copied the pre-populated data dir in ${((performance.now() - tc) / 1000).toFixed(1)} s`);
  }
  const { chain, close, bulkBlocks } = await openChain(code, g, join(dir, 'db'), job.template ? 0 : job.accounts, keyed, job.chunk, label);
  return {
    state: chain.state,
    params: chain.params,
    head: () => ({ height: chain.headHeight, slot: chain.headSlot, hash: chain.headHash }),
    async commit(envs, exec, proposer) {
      const h = header({ height: chain.headHeight, slot: chain.headSlot, hash: chain.headHash }, envs, exec, proposer);
      const c = code.chain.candidateFromEnvs(h, new Uint8Array(0), envs);
      c.exec = { parentHex: code.crypto.toHex(chain.headHash), result: exec };
      const t = performance.now();
      await chain.commit(c, { height: h.height, round: h.slot, blockHash: c.hash, votes: [] });
      return { commitMs: performance.now() - t };
    },
    dataDir: join(dir, 'db'),
    bulkBlocks,
    close,
  };
}

async function blocksJob(job: BlocksJob): Promise<BlocksResult> {
  const code = await loadCode(job.tree);
  const label = `${job.tree.label} N=${job.accounts.toLocaleString('en')}`;
  const { crypto, types, sdk, app } = code;
  const keys = readKeys(job.keysFile, job.accounts, code.backend);
  const K = keys.length;
  if (K < job.blockTxs) throw new Error(`${K} keyed accounts for blocks of ${job.blockTxs} distinct senders`);
  const validator = crypto.generateKeyPair(SCHEME, keySeed(1_000_001));
  const beacon = crypto.generateKeyPair(SCHEME, keySeed(1_000_002));
  const vAddr = crypto.formatAddress(crypto.addressFromPublicKey(validator.publicKey));
  const g = job.template
    ? (types as TypesPkg & { parseGenesis(json: unknown): Genesis }).parseGenesis(JSON.parse(readFileSync(job.template.genesisFile, 'utf8')))
    : types.makeGenesis({
        chainId: 'qnexus-statebench',
        scheme: SCHEME,
        genesisTime: 1_790_000_000_000,
        slotMs: 1000,
        epochLength: 1_000_000,
        shardCount: 1,
        minFee: 1n,
        maxBlockTxs: job.blockTxs,
        xferTimeoutSlots: 20,
        beacon: { publicKey: beacon.publicKey, peerId: PEER_ID },
        accounts: [{ address: vAddr, balance: BALANCE }],
        validators: [{ address: vAddr, publicKey: validator.publicKey, stake: 1_000_000n }],
        modules: app.genesisModules(),
      });
  const dir = mkdtempSync(join(tmpdir(), `qnexus-statebench-${job.tree.label}-`));
  const verifier = new code.verifier.TxVerifier(SCHEME, code.metrics.createMetrics(), null, { backend: code.backend });
  let cm: Committer | undefined;
  try {
    const tb = performance.now();
    cm = await openCommitter(code, job, g, keys.map((k) => k.publicKey), dir, label);
    // A shared data dir: its build time is the populate job's.
    const buildMs = job.template ? job.template.buildMs : performance.now() - tb;
    const rssAfterBuild = procMem('self')?.rss ?? 0;
    progress(`${label}: state built in ${(buildMs / 1000).toFixed(1)} s, ${keyCount(cm.state).toLocaleString('en')} keys, RSS ${mb(rssAfterBuild)} MB`);
    const rnd = prng(0x16_0000 + job.accounts);
    const nonces = new Array<bigint>(K).fill(0n);
    const proposer = crypto.addressFromPublicKey(job.template ? (g.validators as { publicKey: Uint8Array }[])[0]!.publicKey : validator.publicKey);
    const toStr = (i: number) => crypto.formatAddress(i < K ? crypto.addressFromPublicKey(keys[i]!.publicKey) : bulkAddress(crypto, i));
    /** One block: distinct random senders among the keyed accounts, distinct random recipients among all, signed now. */
    const makeBlock = (): TxEnv[] => {
      const idx = Array.from({ length: K }, (_, i) => i);
      for (let i = 0; i < job.blockTxs; i++) {
        const j = i + Math.floor(rnd() * (K - i));
        [idx[i], idx[j]] = [idx[j]!, idx[i]!];
      }
      const senders = idx.slice(0, job.blockTxs);
      const taken = new Set(senders);
      const envs: TxEnv[] = [];
      for (const s of senders) {
        let r: number;
        do r = Math.floor(rnd() * job.accounts);
        while (taken.has(r));
        taken.add(r);
        const tx = sdk.buildTransfer({ key: keys[s]!, chainId: g.chainId, to: toStr(r), amount: 1n, fee: 1n, nonce: nonces[s]!++ });
        envs.push(types.openTx(tx.raw));
      }
      return envs;
    };
    const warmup: BlockSample[] = [];
    const samples: BlockSample[] = [];
    let stoppedByBudget = false;
    let verifyMsPerBlock: number | undefined;
    let txBytes = 0;
    const session = job.profileFile ? new Session() : null;
    // Every block signed up front: signing is not what is measured (nor profiled).
    const ts = performance.now();
    const signed = Array.from({ length: job.warmup + job.blocks }, makeBlock);
    progress(`${label}: ${signed.length} blocks signed in ${((performance.now() - ts) / 1000).toFixed(1)} s`);
    const tm = performance.now();
    for (let b = 0; b < job.warmup + job.blocks; b++) {
      if (session && b === job.warmup) {
        session.connect();
        await session.post('Profiler.enable');
        await session.post('Profiler.setSamplingInterval', { interval: 200 });
        await session.post('Profiler.start');
      }
      const envs = signed[b]!;
      txBytes = envs[0]!.raw.length;
      if (job.timeVerify && verifyMsPerBlock === undefined) {
        // The replay estimate: a syncing node verifies every signature of every block once (no cache hit).
        const tv = performance.now();
        for (const e of envs) if (!verifier.verify(e)) throw new Error('a benchmark transaction does not verify');
        verifyMsPerBlock = performance.now() - tv;
      }
      const h = cm.head();
      const t0 = performance.now();
      const exec = app.app.executeBlock(cm.state, envs, cm.params, { height: h.height + 1, slot: h.slot + 1, proposer });
      const executeMs = performance.now() - t0;
      // Before the commit (the nonces are still unused): the execution again without the root.
      const noRoot = Object.create(cm.state, { rootWith: { value: () => ZERO32 } }) as WorldState;
      const t1 = performance.now();
      app.app.executeBlock(noRoot, envs, cm.params, { height: h.height + 1, slot: h.slot + 1, proposer });
      const txsOnlyMs = performance.now() - t1;
      const { commitMs } = await cm.commit(envs, exec, proposer);
      const totalMs = executeMs + commitMs;
      const s: BlockSample = { executeMs: r2(executeMs), commitMs: r2(commitMs), totalMs: r2(totalMs), txsOnlyMs: r2(txsOnlyMs), stateMs: r2(Math.max(0, totalMs - txsOnlyMs)), writes: exec.changes.writes.size };
      (b < job.warmup ? warmup : samples).push(s);
      progress(`${label}: block ${b + 1}/${job.warmup + job.blocks}${b < job.warmup ? ' (warm-up)' : ''}: execute ${s.executeMs} ms + commit ${s.commitMs} ms = ${s.totalMs} ms (transactions alone ${s.txsOnlyMs} ms), ${s.writes} writes`);
      if (b >= job.warmup && samples.length >= 2 && b < job.warmup + job.blocks - 1 && performance.now() - tm > job.budgetMs) {
        stoppedByBudget = true;
        progress(`${label}: budget of ${job.budgetMs / 1000} s spent: ${samples.length} blocks measured`);
        break;
      }
    }
    let profile: BlocksResult['profile'];
    if (session && job.profileFile) {
      const { profile: p } = (await session.post('Profiler.stop')) as unknown as { profile: CpuProfile };
      session.disconnect();
      writeFileSync(job.profileFile, JSON.stringify(p));
      profile = { file: job.profileFile, top: topSelf(p, 15) };
    }
    const totals = sortedOf(samples.map((s) => s.totalMs));
    const mem = procMem('self');
    return {
      tree: job.tree.label,
      rev: job.tree.rev,
      accounts: job.accounts,
      keys: keyCount(cm.state),
      buildMs: Math.round(buildMs),
      bulkBlocks: cm.bulkBlocks,
      dataDirMB: mb(duBytes(cm.dataDir)),
      rssAfterBuildMB: mb(rssAfterBuild),
      peakRssMB: mb(mem?.hwm ?? NaN),
      rssEndMB: mb(mem?.rss ?? NaN),
      warmup,
      samples,
      stoppedByBudget,
      medianMs: r1(pct(totals, 50)),
      p90Ms: r1(pct(totals, 90)),
      medianExecuteMs: r1(pct(sortedOf(samples.map((s) => s.executeMs)), 50)),
      medianCommitMs: r1(pct(sortedOf(samples.map((s) => s.commitMs)), 50)),
      medianTxsOnlyMs: r1(pct(sortedOf(samples.map((s) => s.txsOnlyMs)), 50)),
      medianStateMs: r1(pct(sortedOf(samples.map((s) => s.stateMs)), 50)),
      p90StateMs: r1(pct(sortedOf(samples.map((s) => s.stateMs)), 90)),
      verifyMsPerBlock: verifyMsPerBlock === undefined ? undefined : r1(verifyMsPerBlock),
      txBytes,
      profile,
    };
  } finally {
    await cm?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Pre-populate a node data dir: the genesis of `genesisFile`, then the accounts in chunks, through the node's Chain. */
async function populateJob(job: PopulateJob): Promise<PopulateResult> {
  const code = await loadCode(job.tree);
  const types = code.types as TypesPkg & { parseGenesis(json: unknown): Genesis };
  const g = types.parseGenesis(JSON.parse(readFileSync(job.genesisFile, 'utf8')));
  const t0 = performance.now();
  const keyed = job.keysFile ? readKeys(job.keysFile, job.accounts, code.backend).map((k) => k.publicKey) : [];
  const { chain, close, bulkBlocks } = await openChain(code, g, job.dbDir, job.accounts, keyed, job.chunk, `populate N=${job.accounts.toLocaleString('en')}`);
  try {
    return {
      accounts: job.accounts,
      keys: keyCount(chain.state),
      buildMs: Math.round(performance.now() - t0),
      bulkBlocks,
      headHeight: chain.headHeight,
      dataDirMB: mb(duBytes(job.dbDir)),
      peakRssMB: mb(procMem('self')?.hwm ?? NaN),
    };
  } finally {
    await close();
  }
}

/** Run a job in a child process of this script (its own heap and RSS); progress goes to our stderr. */
async function runChild<R>(job: Job): Promise<R> {
  const dir = mkdtempSync(join(tmpdir(), 'qnexus-statebench-job-'));
  const file = join(dir, 'job.json');
  writeFileSync(file, JSON.stringify(job));
  try {
    const code = await new Promise<number | null>((res, rej) => {
      const child = spawn(process.execPath, [...process.execArgv, '--max-old-space-size=16384', SCRIPT, '--child', file], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
      const kill = () => {
      child.kill('SIGTERM');
    };
      cleanups.add(kill);
      child.on('error', rej);
      child.on('exit', (c) => {
        cleanups.remove(kill);
        res(c);
      });
    });
    if (code !== 0 || !existsSync(`${file}.out`)) throw new Error(`${job.kind} job (${job.tree.label}) exited with ${code}`);
    return JSON.parse(readFileSync(`${file}.out`, 'utf8')) as R;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function childMain(file: string): Promise<void> {
  const job = JSON.parse(readFileSync(file, 'utf8')) as Job;
  const res = job.kind === 'blocks' ? await blocksJob(job) : await populateJob(job);
  writeFileSync(`${file}.out`, JSON.stringify(res));
}

const cleanups = new Cleanups();
const STAMP = new Date().toISOString().replace(/[:.]/g, '-');

// ---------------------------------------------------------------- 1. blocks (parent)

/** 2 × block-txs key pairs (each block's senders are a random half of them), made once for every job. */
async function makeKeysFile(tree: Tree): Promise<string> {
  const crypto = await importFromTree<CryptoPkg>(tree, 'crypto');
  const tk = performance.now();
  const kdir = mkdtempSync(join(tmpdir(), 'qnexus-statebench-keys-'));
  cleanups.add(() => rmSync(kdir, { recursive: true, force: true }));
  const keysFile = join(kdir, 'keys.json');
  writeFileSync(
    keysFile,
    JSON.stringify(
      Array.from({ length: 2 * BLOCK_TXS }, (_, i) => {
        const k = crypto.generateKeyPair(SCHEME, keySeed(i));
        return { publicKey: Buffer.from(k.publicKey).toString('hex'), secretKey: Buffer.from(k.secretKey).toString('hex') };
      }),
    ),
  );
  progress(`${2 * BLOCK_TXS} keys in ${((performance.now() - tk) / 1000).toFixed(1)} s`);
  return keysFile;
}

async function benchBlocks(trees: Tree[], keysFile: string, shared?: RssNet): Promise<BlocksResult[]> {
  const out: BlocksResult[] = [];
  for (const n of SIZES) {
    for (const tree of trees) {
      progress(`blocks: ${tree.label} (${tree.rev}) at ${n.toLocaleString('en')} accounts…`);
      const template = shared && tree.label === 'after' && n === shared.populate.accounts ? { genesisFile: shared.devnet.manifest.genesis, dbDir: shared.db0, buildMs: shared.populate.buildMs } : undefined;
      const profileFile = args.profile ? join(resolve(ROOT, args.out!), `state-${STAMP}-${tree.label}-${n}.cpuprofile`) : undefined;
      try {
        out.push(
          await runChild<BlocksResult>({ kind: 'blocks', tree, accounts: n, blocks: BLOCKS, warmup: WARMUP_BLOCKS, blockTxs: BLOCK_TXS, chunk: CHUNK, budgetMs: BUDGET_MS, timeVerify: tree.label === 'after' && n === SIZES[0], keysFile, profileFile, template }),
        );
      } catch (e) {
        progress(`blocks: ${tree.label} at ${n}: ${(e as Error).message}`);
      }
    }
  }
  return out;
}

function blocksTable(res: BlocksResult[]): string[][] {
  const rows: string[][] = [['tree', 'accounts', 'state keys', 'blocks', 'median ms', 'p90 ms', 'execute (incl. root) ms', 'commit ms', 'txs alone ms', 'state median / p90 ms', 'writes/block', 'build s', 'data dir MB', 'RSS after build MB', 'peak RSS MB']];
  for (const r of res) {
    rows.push([
      `${r.tree} (${r.rev})`,
      r.accounts.toLocaleString('en'),
      Number.isFinite(r.keys) ? r.keys.toLocaleString('en') : '?',
      `${r.samples.length}${r.stoppedByBudget ? ' (budget)' : ''}`,
      String(r.medianMs),
      String(r.p90Ms),
      String(r.medianExecuteMs),
      String(r.medianCommitMs),
      String(r.medianTxsOnlyMs),
      `${r.medianStateMs} / ${r.p90StateMs}`,
      String(r.samples[0]?.writes ?? '?'),
      String(r1(r.buildMs / 1000)),
      String(r.dataDirMB),
      String(r.rssAfterBuildMB),
      String(r.peakRssMB),
    ]);
  }
  return rows;
}

/** Growth of the median per-block time between consecutive sizes, per tree. */
function growth(res: BlocksResult[]): string[][] {
  const rows: string[][] = [['tree', 'from → to accounts', 'median ms', 'growth', 'state median ms', 'state growth']];
  for (const tree of [...new Set(res.map((r) => r.tree))]) {
    const rs = res.filter((r) => r.tree === tree).sort((a, b) => a.accounts - b.accounts);
    for (let i = 1; i < rs.length; i++) {
      const [a, b] = [rs[i - 1]!, rs[i]!];
      const x = (p: number, q: number) => (p > 0 ? `${(q / p).toFixed(2)}×` : '–');
      rows.push([`${tree} (${b.rev})`, `${a.accounts.toLocaleString('en')} → ${b.accounts.toLocaleString('en')}`, `${a.medianMs} → ${b.medianMs}`, x(a.medianMs, b.medianMs), `${a.medianStateMs} → ${b.medianStateMs}`, x(a.medianStateMs, b.medianStateMs)]);
    }
  }
  return rows;
}

// ---------------------------------------------------------------- 4. devnet (bench/layers.ts as it is)

interface LayersStep {
  offeredTxPerSec: number;
  finalizedTxPerSec: number;
  latencyMs: { p50: number; p95: number };
  latencySlots: { p50: number; p95: number };
  accepted: number;
  notFinalized: number;
  firstAttemptNot202: Record<string, number>;
}
interface LayersRun {
  tree: string;
  rev: string;
  steps: LayersStep[];
  error?: string;
}

/** bench:layers' devnet part for both trees (its own code, not a copy): `--exec false`, the same baseline tree. */
async function benchDevnet(before: Tree | undefined, current: boolean): Promise<{ file: string; devnet: LayersRun[] }> {
  const a = ['--exec', 'false', '--rates', RATES, '--duration-s', DURATION_S, '--warmup-s', WARMUP_S, '--base-port', String(BASE_PORT + 1000), '--out', args.out!, '--current', String(current)];
  if (before) a.push('--baseline-tree', before.root);
  else a.push('--baseline', 'none');
  progress(`devnet: bench/layers.ts ${a.join(' ')}`);
  let stdout = '';
  const code = await new Promise<number | null>((res, rej) => {
    const child = spawn(process.execPath, [...process.execArgv, join(ROOT, 'bench/layers.ts'), ...a], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    const kill = () => {
      child.kill('SIGTERM');
    };
    cleanups.add(kill);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      process.stderr.write(d);
    });
    child.on('error', rej);
    child.on('exit', (c) => {
      cleanups.remove(kill);
      res(c);
    });
  });
  const file = /wrote (\S+\.json)/.exec(stdout)?.[1];
  if (!file) throw new Error(`bench/layers.ts exited with ${code} without writing its results`);
  const json = JSON.parse(readFileSync(file, 'utf8')) as { devnet: LayersRun[] };
  return { file, devnet: json.devnet };
}

function devnetTable(runs: LayersRun[]): string[][] {
  const head = ['offered tx/s', ...runs.flatMap((r) => [`${r.tree} (${r.rev}) finalized tx/s`, `${r.tree} p50 / p95 s`, `${r.tree} never final`])];
  const rates = [...new Set(runs.flatMap((r) => r.steps.map((s) => s.offeredTxPerSec)))].sort((a, b) => a - b);
  const rows = rates.map((rate) => [
    String(rate),
    ...runs.flatMap((r) => {
      const s = r.steps.find((x) => x.offeredTxPerSec === rate);
      return s ? [String(s.finalizedTxPerSec), `${r2(s.latencyMs.p50 / 1000)} / ${r2(s.latencyMs.p95 / 1000)}`, String(s.notFinalized)] : [r.error ? 'error' : '–', '–', '–'];
    }),
  ]);
  return [head, ...rows];
}

const md = (rows: string[][]) => `| ${rows[0]!.join(' | ')} |\n|${rows[0]!.map(() => '---').join('|')}|\n${rows.slice(1).map((r) => `| ${r.join(' | ')} |`).join('\n')}`;

// ---------------------------------------------------------------- 2. rss, 3. snapshot (a real devnet on a pre-populated data dir)

interface DevnetProc {
  name: string;
  role: string;
  pid: number | null;
  dataDir: string;
  apiUrl: string;
  multiaddr: string;
}
interface Devnet {
  manifest: { genesis: string; accounts: { address: string; keystore: string }[]; processes: DevnetProc[]; beacon: DevnetProc };
  passphraseFile: string;
  process(name: string): DevnetProc;
  restart(name: string): Promise<DevnetProc>;
  stop(): Promise<void>;
}
interface CliPkg {
  prepareDevnet(o: Record<string, unknown>): Promise<Devnet>;
  unlockKeystoreFile(path: string, pass: string): Promise<{ key: { publicKey: Uint8Array; secretKey: Uint8Array; scheme: string } }>;
}

interface RssResult {
  tree: string;
  rev: string;
  accounts: number;
  validators: number;
  populate: PopulateResult;
  copyMs: number;
  startMs: number;
  offeredTxPerSec: number;
  durationSec: number;
  offered: number;
  accepted: number;
  finalized: number;
  heights: { start: number; end: number };
  /** Per validator: RSS when ready (before load), highest sampled RSS under load, VmHWM at the end (MB). */
  perValidator: { name: string; readyMB: number; maxSampledMB: number; hwmMB: number }[];
  peakRssMB: number;
  snapshot?: SnapshotResult;
  /** Per validator: VmHWM after the snapshot part (validator 0 served it), MB. */
  hwmAfterSnapshotMB?: number[];
}
interface SnapshotResult {
  ok: boolean;
  error?: string;
  targetHeight: number;
  seconds: number;
  /** The joining node's metric lines about the snapshot (names are the node's). */
  metrics: Record<string, number>;
  bytes: number | null;
  peakRssMB: number;
  log: string[];
}

let portSlot = 0;

/** The rss part's devnet, created but not started, with its first validator's data dir pre-populated. */
interface RssNet {
  tree: Tree;
  devnet: Devnet;
  db0: string;
  populate: PopulateResult;
  close(): Promise<void>;
}

async function prepareRssNet(tree: Tree, keysFile: string): Promise<RssNet> {
  const cli = await importFromTree<CliPkg>(tree, 'cli');
  const crypto = await importFromTree<CryptoPkg>(tree, 'crypto');
  const backend = crypto.backendAvailable('pqclean') ? 'pqclean' : 'noble';
  let populate: PopulateResult | undefined;
  let db0 = '';
  const { devnet, close } = await startTreeDevnet<Devnet>({
    prefix: 'qnexus-statebench-rss-',
    basePort: () => BASE_PORT + (portSlot++ % 4) * 200,
    cleanups,
    start: async (tmp, basePort) => {
      // With --rss-keep the devnet lives at a fixed path, and a pristine copy of it (taken before its first start) is restored on the next run instead of building the data dir again.
      const dir = RSS_KEEP ? join(RSS_KEEP, 'devnet') : tmp;
      const pristine = RSS_KEEP ? join(RSS_KEEP, 'pristine') : '';
      const kept = RSS_KEEP ? join(RSS_KEEP, 'populate.json') : '';
      const reuse = RSS_KEEP !== undefined && existsSync(kept);
      if (reuse) {
        rmSync(dir, { recursive: true, force: true });
        cpSync(pristine, dir, { recursive: true });
      }
      // Epochs long enough that the run stays in the genesis committee's epoch (the processes start long after the genesis time).
      const dn = await cli.prepareDevnet({ dir, basePort, reset: !reuse, shards: 1, validators: RSS_VALIDATORS, fullNodes: 0, accounts: 64, logFormat: 'json', scryptN: 1 << 12, epochLength: 1_000_000, readyTimeoutMs: 180_000, cryptoBackend: backend });
      try {
        const vals = dn.manifest.processes.filter((p) => p.role === 'validator');
        db0 = join(vals[0]!.dataDir, 'db');
        if (reuse) {
          populate = JSON.parse(readFileSync(kept, 'utf8')) as PopulateResult;
          progress(`rss: reusing the pre-populated devnet of ${RSS_KEEP} (${populate.accounts.toLocaleString('en')} accounts, built in ${r1(populate.buildMs / 1000)} s)`);
          if (populate.accounts !== RSS_ACCOUNTS) throw new Error(`--rss-keep ${RSS_KEEP} holds ${populate.accounts} accounts, not --rss-accounts ${RSS_ACCOUNTS}`);
        } else {
          progress(`rss: pre-populating ${db0} with ${RSS_ACCOUNTS.toLocaleString('en')} accounts…`);
          populate = await runChild<PopulateResult>({ kind: 'populate', tree, genesisFile: dn.manifest.genesis, dbDir: db0, accounts: RSS_ACCOUNTS, chunk: CHUNK, keysFile });
          progress(`rss: ${populate.dataDirMB} MB in ${r1(populate.buildMs / 1000)} s (${populate.bulkBlocks} blocks of writes, head ${populate.headHeight}), peak RSS of the writer ${populate.peakRssMB} MB`);
          if (RSS_KEEP) {
            rmSync(pristine, { recursive: true, force: true });
            cpSync(dir, pristine, { recursive: true });
            writeFileSync(kept, JSON.stringify(populate));
          }
        }
      } catch (e) {
        await dn.stop();
        throw e;
      }
      return dn;
    },
  });
  return { tree, devnet, db0, populate: populate!, close };
}

async function benchRss(net: RssNet, withSnapshot: boolean): Promise<RssResult> {
  const { tree, devnet: d, db0, populate } = net;
  const cli = await importFromTree<CliPkg>(tree, 'cli');
  const crypto = await importFromTree<CryptoPkg>(tree, 'crypto');
  const sdk = await importFromTree<SdkPkg>(tree, 'sdk');
  const backend = crypto.backendAvailable('pqclean') ? 'pqclean' : 'noble';
  const tc = performance.now();
  const vals0 = d.manifest.processes.filter((p) => p.role === 'validator');
  for (const v of vals0.slice(1)) {
    rmSync(join(v.dataDir, 'db'), { recursive: true, force: true });
    cpSync(db0, join(v.dataDir, 'db'), { recursive: true });
  }
  const copyMs = Math.round(performance.now() - tc);
  const ts = performance.now();
  await d.restart('beacon');
  for (const v of vals0) await d.restart(v.name);
  const startMs = Math.round(performance.now() - ts);
  progress(`rss: data dir copied into ${vals0.length - 1} more validator(s) in ${r1(copyMs / 1000)} s; beacon and validators started in ${r1(startMs / 1000)} s`);
  const vals = d.manifest.processes.filter((p) => p.role === 'validator');
  const apis = vals.map((v) => d.process(v.name).apiUrl);
  const pids = () => vals.map((v) => d.process(v.name).pid);
  const ready = pids().map((p) => (p ? procMem(p) : null));
  // Wallets: the devnet's funded accounts; recipients: random pre-populated accounts.
  const pass = readFileSync(d.passphraseFile, 'utf8').trim();
  const wallets: { key: SigningKey; nonce: bigint; queue: Promise<void> }[] = [];
  for (const a of d.manifest.accounts) {
    const { key } = await cli.unlockKeystoreFile(a.keystore, pass);
    wallets.push({ key: { ...key, backend }, nonce: 0n, queue: Promise.resolve() });
  }
  const chainId = (JSON.parse(readFileSync(d.manifest.genesis, 'utf8')) as { chainId: string }).chainId;
  const n = Math.round((RSS_RATE * RSS_DURATION_MS) / 1000);
  const rnd = prng(0x16_0002);
  const keyedCount = Math.min(Math.floor(RSS_ACCOUNTS / 2), 2 * BLOCK_TXS);
  const txs = Array.from({ length: n }, (_, j) => {
    const w = wallets[j % wallets.length]!;
    // Accounts 0..K-1 are the keyed ones (readKeys): recipients among the hash-addressed rest, all existing.
    const to = crypto.formatAddress(bulkAddress(crypto, keyedCount + Math.floor(rnd() * (RSS_ACCOUNTS - keyedCount))));
    return { w, ...sdk.buildTransfer({ key: w.key, chainId, to, amount: 1n, fee: 1n, nonce: w.nonce++ }) };
  });
  const status = async () => (await getJson<{ finalizedHeight: number }>(`${apis[0]}/v1/status`))?.finalizedHeight ?? -1;
  // Wait until the chain finalizes (every validator up and connected), at most 60 s.
  const h0 = await status();
  for (let i = 0; i < 120 && (await status()) <= h0; i++) await sleep(500);
  const startHeight = await status();
  progress(`rss: finalizing from height ${startHeight}; offering ${RSS_RATE} tx/s for ${RSS_DURATION_MS / 1000} s`);
  const maxRss = vals.map(() => 0);
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      pids().forEach((p, i) => {
        const m = p ? procMem(p) : null;
        if (m && m.rss > maxRss[i]!) maxRss[i] = m.rss;
      });
      await sleep(1000);
    }
  })();
  let accepted = 0;
  const t0 = performance.now();
  const submits: Promise<void>[] = [];
  for (let j = 0; j < txs.length; j++) {
    const wait = t0 + (j * 1000) / RSS_RATE - performance.now();
    if (wait > 0) await sleep(wait);
    const t = txs[j]!;
    // One wallet's transactions go in nonce order; 503/429 are retried a few times.
    t.w.queue = t.w.queue.then(async () => {
      for (let i = 0; i < 5; i++) {
        try {
          const a = await http(`${apis[j % apis.length]}/v1/txs`, { method: 'POST', body: t.raw, timeoutMs: 5000 });
          if (a.status === 202) accepted++;
          if (a.status !== 503 && a.status !== 429) return;
        } catch {
          return;
        }
        await sleep(300);
      }
    });
    submits.push(t.w.queue);
  }
  await Promise.all(submits);
  // Drain: until the accepted transactions are in finalized blocks, at most 30 s.
  const ours = new Set(txs.map((t) => t.hash));
  let finalized = 0;
  let seen = startHeight;
  const drainEnd = performance.now() + 30_000;
  while (performance.now() < drainEnd) {
    const h = await status();
    for (; seen < h; seen++) {
      const b = await getJson<{ txs: string[] }>(`${apis[0]}/v1/blocks/${seen + 1}`);
      if (!b) break;
      for (const x of b.txs) if (ours.has(x)) finalized++;
    }
    if (finalized >= accepted) break;
    await sleep(500);
  }
  sampling = false;
  await sampler;
  const perValidator = vals.map((v, i) => {
    const p = pids()[i];
    return { name: v.name, readyMB: mb(ready[i]?.rss ?? NaN), maxSampledMB: mb(maxRss[i]!), hwmMB: mb((p ? procMem(p)?.hwm : undefined) ?? NaN) };
  });
  const res: RssResult = {
    tree: tree.label,
    rev: tree.rev,
    accounts: RSS_ACCOUNTS,
    validators: vals.length,
    populate,
    copyMs,
    startMs,
    offeredTxPerSec: RSS_RATE,
    durationSec: RSS_DURATION_MS / 1000,
    offered: n,
    accepted,
    finalized,
    heights: { start: startHeight, end: seen },
    perValidator,
    peakRssMB: Math.max(...perValidator.map((v) => Math.max(v.maxSampledMB, Number.isFinite(v.hwmMB) ? v.hwmMB : 0))),
  };
  progress(`rss: ${finalized}/${accepted} accepted transactions final; per validator ${perValidator.map((v) => `${v.name} ready ${v.readyMB} / max ${v.maxSampledMB} / HWM ${v.hwmMB} MB`).join('; ')}`);
  // The caller stops the devnet (net.close).
  if (withSnapshot) {
    res.snapshot = await joinBySnapshot(tree, d, vals[0]!);
    // The validators kept running (idle but for empty blocks) while one served the snapshot: their high-water marks since start.
    res.hwmAfterSnapshotMB = pids().map((p) => mb((p ? procMem(p)?.hwm : undefined) ?? NaN));
  }
  return res;
}

/** Metric samples of a Prometheus text page whose name mentions `word` (name{labels} → value). */
function metricLines(text: string, word: RegExp): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !word.test(line)) continue;
    const m = /^(\S+)\s+(\S+)$/.exec(line.trim());
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/**
 * A fresh full node joins by snapshot from ONE peer (bootstrapped to `peer` only): the time from
 * its start until it has the peer's finalized height, the bytes its metrics report.
 */
async function joinBySnapshot(tree: Tree, d: Devnet, peer: DevnetProc): Promise<SnapshotResult> {
  const dir = mkdtempSync(join(tmpdir(), 'qnexus-statebench-join-'));
  const api = `http://127.0.0.1:${BASE_PORT + 900}`;
  const logFile = join(dir, 'node.log');
  const target = (await getJson<{ finalizedHeight: number }>(`${peer.apiUrl}/v1/status`))?.finalizedHeight ?? -1;
  const argv = [
    join(tree.root, 'packages/cli/dist/bin.js'),
    'node',
    '--data-dir', join(dir, 'data'),
    '--genesis', d.manifest.genesis,
    '--shard', '0',
    '--p2p-port', String(BASE_PORT + 800),
    '--api-host', '127.0.0.1',
    '--api-port', String(BASE_PORT + 900),
    '--log-format', 'json',
    '--bootstrap', peer.multiaddr,
    '--sync', 'snapshot',
    '--snapshot-threshold', '1',
  ];
  progress(`snapshot: a fresh node joins from ${peer.name} (finalized height ${target})`);
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const kill = () => {
    child.kill('SIGTERM');
  };
  cleanups.add(kill);
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  const t0 = performance.now();
  let ok = false;
  let peak = 0;
  let error: string | undefined;
  try {
    // At most 15 minutes (bounded): until the node's finalized height reaches the peer's at the start.
    while (performance.now() - t0 < 900_000) {
      if (child.exitCode !== null) {
        error = `the joining node exited with ${child.exitCode}`;
        break;
      }
      const m = child.pid ? procMem(child.pid) : null;
      if (m && m.rss > peak) peak = m.rss;
      const st = await getJson<{ finalizedHeight: number }>(`${api}/v1/status`, 2000);
      if (st && st.finalizedHeight >= target) {
        ok = true;
        break;
      }
      await sleep(500);
    }
    if (!ok && !error) error = 'did not reach the target height within 15 min';
  } catch (e) {
    error = (e as Error).message;
  }
  const seconds = (performance.now() - t0) / 1000;
  const text = await fetch(`${api}/metrics`, { signal: AbortSignal.timeout(3000) })
    .then((r) => r.text())
    .catch(() => '');
  const metrics = metricLines(text, /snapshot/i);
  if (child.pid) peak = Math.max(peak, procMem(child.pid)?.hwm ?? 0);
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(10_000)]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  cleanups.remove(kill);
  const all = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter(Boolean) : [];
  // What it said about the snapshot; on a failure its last words too.
  const log = [...all.filter((l) => /snapshot/i.test(l)).slice(-20), ...(ok ? [] : all.slice(-8))];
  // The joining node's received bytes (packages/node/src/snapshot.ts), not what it served.
  const bytesKey = 'qnexus_snapshot_bytes_total' in metrics ? 'qnexus_snapshot_bytes_total' : Object.keys(metrics).find((k) => /bytes/i.test(k) && !/served|bucket|_sum|_count/.test(k));
  rmSync(dir, { recursive: true, force: true });
  const res: SnapshotResult = { ok, error, targetHeight: target, seconds: r1(seconds), metrics, bytes: bytesKey ? metrics[bytesKey]! : null, peakRssMB: mb(peak), log };
  progress(`snapshot: ${ok ? 'joined' : `failed (${error})`} in ${res.seconds} s, bytes ${res.bytes ?? '?'}`);
  return res;
}

// ---------------------------------------------------------------- replay estimate

/**
 * What replaying the chain that creates N accounts would cost here: one new account per transfer,
 * so at least N transfers, in blocks of at most what fits the 1 MiB block cap; each transfer's
 * signature verified once (single-core figure from the blocks part, divided by the cores a node
 * verifies on) and its execution + commit at the per-transfer cost measured for the after tree
 * (the range between the smallest and the largest size measured: the state grows during replay).
 */
interface ReplayEstimate {
  accounts: number;
  txBytes: number;
  transfersPerBlock: number;
  blocks: number;
  bytes: number;
  verifyMsPerTx: number;
  /** Lowest and highest per-transfer cost measured over the sizes. */
  commitMsPerTx: { smallest: number; largest: number };
  seconds: { low: number; high: number };
}

function replayEstimate(res: BlocksResult[], accounts: number): ReplayEstimate | null {
  const after = res.filter((r) => r.tree === 'after').sort((a, b) => a.accounts - b.accounts);
  const v = after.find((r) => r.verifyMsPerBlock !== undefined);
  if (!after.length || !v) return null;
  const perTx = (r: BlocksResult) => r.medianMs / BLOCK_TXS;
  const cap = 1024 * 1024;
  const transfersPerBlock = Math.floor((cap - 600) / (v.txBytes + 4));
  const verifyMsPerTx = v.verifyMsPerBlock! / BLOCK_TXS / 2; // the node verifies on a pool: both cores
  const lo = Math.min(...after.map(perTx));
  const hi = Math.max(...after.map(perTx));
  return {
    accounts,
    txBytes: v.txBytes,
    transfersPerBlock,
    blocks: Math.ceil(accounts / transfersPerBlock),
    bytes: accounts * (v.txBytes + 4),
    verifyMsPerTx: Number(verifyMsPerTx.toFixed(4)),
    commitMsPerTx: { smallest: Number(lo.toFixed(4)), largest: Number(hi.toFixed(4)) },
    seconds: { low: Math.round((accounts * (verifyMsPerTx + lo)) / 1000), high: Math.round((accounts * (verifyMsPerTx + hi)) / 1000) },
  };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const trees: Tree[] = [];
  if (args['baseline-tree']) trees.push(baselineTreeFromDir(args['baseline-tree']));
  else if (args.baseline && args.baseline !== 'none') trees.push(buildBaseline(ROOT, args.baseline, cleanups));
  if (args.current !== 'false') trees.push(currentTree(ROOT));
  if (trees.length === 0) throw new Error('nothing to run: --current false needs a baseline');
  const before = trees.find((t) => t.label === 'before');
  const after = trees.find((t) => t.label === 'after');
  const started = Date.now();
  const out = resolve(ROOT, args.out!);
  mkdirSync(out, { recursive: true });
  const config = {
    parts: [...PARTS],
    sizes: SIZES,
    blocks: BLOCKS,
    warmupBlocks: WARMUP_BLOCKS,
    blockTxs: BLOCK_TXS,
    chunk: CHUNK,
    budgetSec: BUDGET_MS / 1000,
    rss: { accounts: RSS_ACCOUNTS, validators: RSS_VALIDATORS, rate: RSS_RATE, durationSec: RSS_DURATION_MS / 1000 },
    devnet: { rates: RATES, durationSec: Number(DURATION_S), warmupSec: Number(WARMUP_S) },
    smoke: SMOKE,
    hostLoadAtStart: loadavg().map(r2),
    node: process.version,
    command: `npm run bench:state -- ${process.argv.slice(2).join(' ')}`.trim(),
  };
  const result: { blocks: BlocksResult[]; replay: ReplayEstimate | null; rss?: RssResult; rssError?: string; devnet?: LayersRun[]; devnetFile?: string; devnetError?: string } = { blocks: [], replay: null };
  const keysFile = await makeKeysFile(trees[trees.length - 1]!);
  const rssTree = args['rss-tree'] === 'before' ? before : after;
  // The rss part's 10^6-account data dir is built first and also serves the blocks part's after tree at that size (built once: it is the slowest step).
  let net: RssNet | undefined;
  if ((PARTS.has('rss') || PARTS.has('snapshot')) && rssTree) {
    try {
      net = await prepareRssNet(rssTree, keysFile);
    } catch (e) {
      result.rssError = (e as Error).stack ?? String(e);
      progress(`rss: ${result.rssError}`);
    }
  }
  try {
    if (PARTS.has('blocks')) {
      result.blocks = await benchBlocks(trees, keysFile, net?.tree.label === 'after' ? net : undefined);
      result.replay = replayEstimate(result.blocks, RSS_ACCOUNTS);
    }
    if (net) {
      try {
        result.rss = await benchRss(net, PARTS.has('snapshot'));
      } catch (e) {
        result.rssError = (e as Error).stack ?? String(e);
        progress(`rss: ${result.rssError}`);
      }
    }
  } finally {
    await net?.close();
  }
  if (PARTS.has('devnet')) {
    try {
      const d = await benchDevnet(before, after !== undefined);
      result.devnet = d.devnet;
      result.devnetFile = d.file;
    } catch (e) {
      result.devnetError = (e as Error).message;
      progress(`devnet: ${result.devnetError}`);
    }
  }
  const lines: string[] = [`state: ${trees.map((t) => `${t.label} = ${t.rev}`).join(', ')}; ${((Date.now() - started) / 60_000).toFixed(1)} min; ${config.command}`];
  if (result.blocks.length) {
    const budget = result.blocks.filter((r) => r.stoppedByBudget);
    lines.push(`\nPer block: ${BLOCK_TXS} transfers (distinct random senders and recipients), execute + commit through the tree's own Chain; median of ${BLOCKS} blocks after ${WARMUP_BLOCKS} warm-up${budget.length ? ` (fewer where marked: --budget-s ${BUDGET_MS / 1000} spent)` : ''}`);
    lines.push(table(blocksTable(result.blocks)), '', md(blocksTable(result.blocks)));
    lines.push('\nGrowth of the median per-block time', table(growth(result.blocks)), '', md(growth(result.blocks)));
    for (const r of result.blocks.filter((x) => x.profile)) {
      lines.push(`\nCPU profile, ${r.tree} at ${r.accounts.toLocaleString('en')} accounts, measured blocks (${r.profile!.file}): top self time`);
      lines.push(table([['function', 'where', 'self %'], ...r.profile!.top.map((t) => [t.fn, t.where, String(t.selfPct)])]));
    }
  }
  if (result.replay) {
    const r = result.replay;
    lines.push(
      `\nBlock replay estimate for ${r.accounts.toLocaleString('en')} accounts: ≥ ${r.blocks.toLocaleString('en')} blocks of ≤ ${r.transfersPerBlock} transfers (1 MiB cap, ${r.txBytes} B each), ${mb(r.bytes).toLocaleString('en')} MB of transactions; ${r.verifyMsPerTx} ms/tx to verify (2 cores) + ${r.commitMsPerTx.smallest}–${r.commitMsPerTx.largest} ms/tx to execute and commit → ${r.seconds.low.toLocaleString('en')}–${r.seconds.high.toLocaleString('en')} s of CPU, network not counted`,
    );
  }
  if (result.rss) {
    const r = result.rss;
    lines.push(
      `\nNode RSS, ${r.tree} (${r.rev}), with ${r.accounts.toLocaleString('en')} accounts (1 shard, ${r.validators} validator(s), data dir ${r.populate.dataDirMB} MB built in ${r1(r.populate.buildMs / 1000)} s and copied in ${r1(r.copyMs / 1000)} s): ${r.offeredTxPerSec} tx/s for ${r.durationSec} s, ${r.accepted}/${r.offered} accepted, ${r.finalized} final (heights ${r.heights.start}–${r.heights.end})`,
    );
    const rows = [['validator', 'RSS ready MB', 'max RSS under load MB', 'VmHWM MB'], ...r.perValidator.map((v) => [v.name, String(v.readyMB), String(v.maxSampledMB), String(v.hwmMB)])];
    lines.push(table(rows), '', md(rows), `peak: ${r.peakRssMB} MB`);
    if (r.snapshot) {
      const s = r.snapshot;
      if (r.hwmAfterSnapshotMB) lines.push(`validators' VmHWM after the snapshot part (validator-0 served it): ${r.hwmAfterSnapshotMB.join(' / ')} MB`);
      lines.push(`\nSnapshot sync from one peer to height ${s.targetHeight}: ${s.ok ? `${s.seconds} s` : `FAILED (${s.error}) after ${s.seconds} s`}, bytes ${s.bytes ?? '?'}, peak RSS of the joining node ${s.peakRssMB} MB`);
      for (const [k, v] of Object.entries(s.metrics)) lines.push(`  ${k} ${v}`);
      if (!s.ok) for (const l of s.log.slice(-8)) lines.push(`  log: ${l.slice(0, 300)}`);
    }
  } else if (result.rssError) lines.push(`\nrss/snapshot: error: ${result.rssError.split('\n')[0]}`);
  if (result.devnet) {
    lines.push(`\nDevnet (bench:layers --exec false: 2 shards × 4 validators + beacon, ${DURATION_S} s per rate; ${result.devnetFile})`);
    lines.push(table(devnetTable(result.devnet)), '', md(devnetTable(result.devnet)));
  } else if (result.devnetError) lines.push(`\ndevnet: error: ${result.devnetError}`);
  console.log(lines.join('\n'));
  const file = join(out, `state-${STAMP}.json`);
  writeFileSync(file, JSON.stringify({ benchVersion: 1, config, trees: trees.map((t) => ({ label: t.label, rev: t.rev })), ...result }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 1));
  console.log(`\nwrote ${file}`);
  if (result.rssError || result.devnetError) process.exitCode = 1;
}

if (args.child) {
  await childMain(args.child);
} else {
  cleanups.onSignals('stopping child jobs and devnets, removing the baseline worktree');
  try {
    await main();
  } finally {
    await cleanups.run();
  }
}
