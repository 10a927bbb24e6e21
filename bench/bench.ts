// npm run bench -- [topology] [sweep] [phases] [--smoke]
//
// Topology: --shards 2 --validators 4 --full-nodes 0 (per shard) --slot-ms 1000 --accounts 64 (per shard)
//           --scheme ml-dsa-44|ml-dsa-65|ml-dsa-87 --crypto-backend auto|noble|pqclean (auto, the
//           default: pqclean where it loads, else noble; resolved here and passed to every process)
// Sweep:    --sweep 0.1,0.2,… (factors of the signature ceiling) or --rates 50,100,… (tx/s);
//           --step-duration 15 s; stops at the first saturated step (finalized < --saturation-ratio
//           × offered, or p50 > --saturation-p50-slots); then one step at half the saturation rate.
//           The sweep starts below saturation: if its first step is already saturated, it restarts
//           with every rate ÷ 4 added below (at most 3 times; the probes are kept in the JSON).
// Hardhat:  --with-hardhat: after the devnets stop, bench/hardhat/bench.mjs (`npx hardhat node`)
//           gets the sweep's offered rates, then 1.5, 2, 3, 4, 6 × the highest until it saturates, --step-duration each, open loop, and is counted by the
//           same rule (every offered tx, drain included, ÷ max(window, last final − t0 − p10
//           latency)); the summary shows ours ÷ Hardhat per step. Needs `cd bench/hardhat && npm ci`
//           (the bench says so and exits 2 if it was not run). Not part of CI or --smoke.
// Phases:   --xshard-rate 10 --duration 30 --xshard-alone true --mix-intra-factor 0.25 | --mix-intra-rate
//           --sync true (a fresh full node syncs shard 0 from one peer)
//           --keyless true (each account's first transaction registers its key, then every measured
//           transaction is keyless; false: all carry the key)
//           --variants baseline,keyed,no-verify-cache,no-verify-pool,tx-gossip-batch-1,tx-gossip-flush-20,no-admission-journal,pqclean|none
//           (also malloc-arenas-2 and empty-block-interval-1, not in the default list)
//           (each on a fresh devnet at one fixed rate: --variant-rate or --variant-rate-factor ×
//           the sweep's saturation; --variant-duration 20)
//           --idle-devnet true (after the variants: the default devnet, 2 × (4 validators + 1 full)
//           + beacon, started on its own, --idle-warmup 60 s, then its CPU over --idle-window 30 s:
//           the figure of issue 18's idle target; JSON `idleDevnet`)
// DeFi:     --defi true|false (default true, false under --smoke unless given): after the phases above, run
//           bench/defi.ts (AMM swaps and DEX orders on a fresh devnet, same-shard and cross-shard, against
//           plain transfers in the same run; batch execution time per block in process) with this topology
//           at --base-port + 600; its own result file is named in this one's `defi`.
// Research: --node-flags "--cpu-prof --cpu-prof-dir=/tmp/prof" (Node flags for every devnet process)
//           --log-level warn|info|debug|error (the nodes'; above warn the devnet directories and their
//           logs are kept and named at the end; debug logs each proposal, vote and timeout, which
//           bench/round-timings.ts turns into per-stage round timings)
// Output:   a table on stdout; bench/results/bench-<time>.json and bench-<time>.svg (the sweep);
//           per sweep step, slots without a block (failed or late rounds) after txs/block.
//           The summary table (JSON `summary`) has per sweep step: finalized tx/s, Hardhat's and
//           the ratio, main-thread and total CPU ms per finalized tx per role (validator avg/max,
//           full node, beacon), GC ms per tx, the load generator's CPU, refusals by code, wire
//           bytes per tx; above it the idle devnet's cores (method: bench/cpu.ts).
//
// Starts its own devnets (real processes: the beacon and every shard node), measures this
// machine's ML-DSA ceiling (sign and verify per core, configured scheme and backend) in the same
// run, and offers open-loop load from transactions signed before timing. Figures are only
// comparable within one run: report ratios, not absolutes. Method: docs/performance.md.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync, spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { DEVNET_DEFAULTS, NODE_PROCESS_FLAGS, startDevnet, unlockKeystoreFile, type Devnet } from '@qnexus/cli';
import type { QnexusClient, TxInfo } from '@qnexus/sdk';
import { backendAvailable, parseAddress, type SchemeName } from '@qnexus/crypto';
import { sendMsg } from '@qnexus/state';
import { LOG_LEVELS, isLogLevel, type LogLevel } from '@qnexus/runtime';
import { SIGN_BACKEND, applySmoke, argReaders, pct, presign, r1, r2, r3, rnd, sleep, type SignJob, type Signed } from './lib.js';
import { sweepSvg } from './plot.js';
import { wireDelta, wireSnapshot, type WireSnapshot } from './wire.js';
import { costPerTxByRole, parseGcSeconds, procCpu, selfCpu, type ProcCost } from './cpu.js';

const { values: args } = parseArgs({
  options: {
    shards: { type: 'string', default: '2' },
    validators: { type: 'string', default: '4' },
    'full-nodes': { type: 'string', default: '0' },
    accounts: { type: 'string', default: '64' },
    'slot-ms': { type: 'string', default: '1000' },
    scheme: { type: 'string', default: 'ml-dsa-44' },
    'crypto-backend': { type: 'string', default: 'auto' },
    sweep: { type: 'string', default: '0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.85,1,1.2' },
    rates: { type: 'string' },
    'step-duration': { type: 'string', default: '15' },
    'saturation-ratio': { type: 'string', default: '0.9' },
    'saturation-p50-slots': { type: 'string', default: '5' },
    half: { type: 'string', default: 'true' },
    duration: { type: 'string', default: '30' },
    'xshard-rate': { type: 'string', default: '10' },
    'xshard-alone': { type: 'string', default: 'true' },
    'mix-intra-rate': { type: 'string' },
    'mix-intra-factor': { type: 'string', default: '0.25' },
    'xfer-timeout-slots': { type: 'string', default: '20' },
    sync: { type: 'string', default: 'true' },
    // Default: these plus the other backend than the one the run uses (pqclean or noble).
    variants: { type: 'string' },
    'variant-rate': { type: 'string' },
    'variant-rate-factor': { type: 'string', default: '1.3' },
    'variant-duration': { type: 'string', default: '20' },
    'node-flags': { type: 'string' },
    // The devnet nodes' log level (debug logs each proposal, vote and timeout with its offset in the slot).
    'log-level': { type: 'string', default: 'warn' },
    smoke: { type: 'boolean', default: false },
    out: { type: 'string', default: 'bench/results' },
    'base-port': { type: 'string', default: '27000' },
    defi: { type: 'string' },
    keyless: { type: 'string', default: 'true' },
    'with-hardhat': { type: 'boolean', default: false },
    // The default devnet (a beacon and 2 shards of 4 validators + 1 full node) idle on its own:
    // warmed up this many seconds, then watched this many (issue 18's idle target).
    'idle-devnet': { type: 'string', default: 'true' },
    'idle-warmup': { type: 'string', default: '60' },
    'idle-window': { type: 'string', default: '30' },
  },
});

// `auto` (the default) is resolved here, once, as the nodes will resolve it: the native backend
// where it loads, else noble. The devnets and the DeFi child get the resolved name.
const requestedBackend = args['crypto-backend']!;
if (requestedBackend === 'auto') args['crypto-backend'] = backendAvailable('pqclean') ? 'pqclean' : 'noble';
args.variants ??= `baseline,keyed,no-verify-cache,no-verify-pool,tx-gossip-batch-1,tx-gossip-flush-20,no-admission-journal,${args['crypto-backend'] === 'pqclean' ? 'noble' : 'pqclean'}`;

/** Where the Hardhat baseline lives, and whether its dependencies are installed (`npm ci` there). */
const HARDHAT_DIR = fileURLToPath(new URL('./hardhat/', import.meta.url));
const hardhatInstalled = () => ['hardhat', 'ethers'].every((d) => existsSync(join(HARDHAT_DIR, 'node_modules', d, 'package.json')));
if (args['with-hardhat'] && !hardhatInstalled()) {
  console.error(`--with-hardhat: the Hardhat baseline's dependencies are not installed. Install them (npm registry only) with:\n\n  cd ${HARDHAT_DIR.replace(/\/$/, '')} && npm ci\n`);
  process.exit(2);
}

// --smoke: a tiny run of every phase (CI checks the result file is well formed; no timing).
if (args.smoke) {
  const smoke: Partial<Record<keyof typeof args, string>> = {
    validators: '1',
    accounts: '4',
    rates: '4,8',
    'step-duration': '2',
    duration: '3',
    'xshard-rate': '2',
    'xshard-alone': 'false',
    'mix-intra-rate': '2',
    variants: 'baseline',
    'variant-rate': '4',
    'variant-duration': '2',
    'idle-warmup': '3',
    'idle-window': '2',
  };
  applySmoke(args, smoke);
}

const { num, bool } = argReaders(args);
if (!isLogLevel(args['log-level']!)) {
  console.error(`--log-level must be one of ${LOG_LEVELS.join(', ')}, not ${JSON.stringify(args['log-level'])}`);
  process.exit(2);
}
const logLevel: LogLevel = args['log-level'];

/** Spread of a rate over keys × messages: min / median / max, per second. */
interface Spread {
  min: number;
  median: number;
  max: number;
}
interface CryptoRates {
  /** Median over the key × message pairs: what the ceiling is computed from. */
  verifyPerSec: number;
  signPerSec: number;
  verify: Spread;
  sign: Spread;
  keys: number;
  messages: number;
}

/**
 * Single-core ML-DSA rates of the configured scheme and backend, measured in a plain `node`
 * child (the nodes run without the tsx loader, which slows this code here) after a JIT warm-up,
 * over `keys` keys × `messages` messages of transfer-like sizes: each pair is timed on its own
 * (signing's rejection sampling makes its cost depend on the message; verification's matrix
 * expansion on the key), and the rates are the median over pairs, with min and max as spread.
 */
function measureCrypto(scheme: string, backend: string, ms = 2000, keys = 4, messages = 8): CryptoRates {
  const script = `
    import { getBackend, randomSeed } from '@qnexus/crypto';
    const b = getBackend(${JSON.stringify(scheme)}, ${JSON.stringify(backend)});
    const K = ${keys}, M = ${messages}, per = ${Math.max(20, Math.round(ms / (keys * messages)))};
    const pairs = [];
    for (let k = 0; k < K; k++) {
      const kp = b.keygen(randomSeed());
      for (let m = 0; m < M; m++) {
        // 150..360-byte messages with different content: transfer-sized signing payloads.
        const msg = new Uint8Array(150 + 30 * m).map((_, i) => (i * 31 + k * 7 + m * 13) & 255);
        const sig = b.sign(kp.secretKey, msg);
        if (!b.verify(kp.publicKey, msg, sig)) throw new Error('self-check failed');
        pairs.push({ kp, msg, sig });
      }
    }
    const rate = (f, ms) => { let n = 0; const t0 = performance.now(); do { f(); n++; } while (performance.now() - t0 < ms); return (n * 1000) / (performance.now() - t0); };
    // JIT warm-up over every pair, then each pair timed on its own.
    for (const p of pairs) { rate(() => b.verify(p.kp.publicKey, p.msg, p.sig), per / 4); rate(() => b.sign(p.kp.secretKey, p.msg), per / 8); }
    const verify = pairs.map((p) => rate(() => b.verify(p.kp.publicKey, p.msg, p.sig), per));
    const sign = pairs.map((p) => rate(() => b.sign(p.kp.secretKey, p.msg), per / 2));
    console.log(JSON.stringify({ verify, sign }));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  const raw = JSON.parse(out.trim().split('\n').pop()!) as { verify: number[]; sign: number[] };
  const spread = (xs: number[]): Spread => {
    const v = [...xs].sort((a, b) => a - b);
    return { min: Math.round(v[0]!), median: Math.round(pct(v, 50)), max: Math.round(v[v.length - 1]!) };
  };
  const verify = spread(raw.verify);
  const sign = spread(raw.sign);
  return { verifyPerSec: verify.median, signPerSec: sign.median, verify, sign, keys, messages };
}

type Kind = 'transfer' | 'xtransfer';

/** CPU seconds (user+sys) and peak RSS of a process, from /proc. */
function procStats(pid: number): { cpuSec: number; peakRssMb: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const tick = 100; // USER_HZ on Linux
    const cpuSec = (Number(fields[11]) + Number(fields[12])) / tick;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    return { cpuSec, peakRssMb: hwm ? Number(hwm[1]) / 1024 : NaN };
  } catch {
    return null;
  }
}

/** Aggregate CPU jiffies from /proc/stat: total and steal (time the hypervisor gave to someone else). */
function cpuJiffies(): { total: number; steal: number; idle: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { total: f.reduce((a, b) => a + b, 0), steal: f[7] ?? 0, idle: (f[3] ?? 0) + (f[4] ?? 0) };
}

/** This process and its ancestors (npm, sh), which are not "other load". */
function ourPids(): Set<number> {
  const out = new Set<number>([process.pid]);
  let pid = process.ppid;
  for (let i = 0; i < 10 && pid > 1; i++) {
    out.add(pid);
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      break;
    }
  }
  return out;
}

/** Host load when a phase starts: load average and `node` processes that are neither this bench nor its devnet. */
function hostLoad(devnetPids: number[] = []): { loadavg1: number; loadavg5: number; otherNodeProcesses: number } {
  const mine = ourPids();
  devnetPids.forEach((p) => mine.add(p));
  let other = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || mine.has(Number(d))) continue;
    try {
      const comm = readFileSync(`/proc/${d}/comm`, 'utf8').trim();
      if (comm === 'node' || comm.startsWith('node ')) other++;
    } catch {
      // exited meanwhile
    }
  }
  const [l1, l5] = loadavg();
  return { loadavg1: r2(l1!)!, loadavg5: r2(l5!)!, otherNodeProcesses: other };
}

/** Count other `node` processes every 2 s while a phase runs (tests started meanwhile would distort it). */
function sampleOtherLoad(devnetPids: number[]): () => { otherNodeProcessesMax: number; loadavg1Max: number } {
  let maxOther = 0;
  let maxLoad = 0;
  const tick = () => {
    const l = hostLoad(devnetPids);
    maxOther = Math.max(maxOther, l.otherNodeProcesses);
    maxLoad = Math.max(maxLoad, l.loadavg1);
  };
  tick();
  const timer = setInterval(tick, 2000);
  return () => {
    clearInterval(timer);
    tick();
    return { otherNodeProcessesMax: maxOther, loadavg1Max: maxLoad };
  };
}

/** Counters worth a delta over a phase, summed over the processes of a role. */
const NODE_COUNTERS = [
  'qnexus_crypto_verify_total',
  'qnexus_xshard_reports_total',
  'qnexus_xshard_beacon_entries_total',
  'qnexus_mempool_admission_total',
  'qnexus_chain_finalized_txs_total',
  'qnexus_admission_journal_fsyncs_total',
  'qnexus_admission_journal_group_entries_sum',
  'qnexus_admission_journal_group_entries_count',
];
const BEACON_COUNTERS = ['qnexus_beacon_2pc_requests_total', 'qnexus_beacon_2pc_sends_total', 'qnexus_beacon_2pc_rejected_total', 'qnexus_beacon_2pc_anomalies_total', 'qnexus_beacon_2pc_phases_total'];
type Counters = Map<string, number>;

/** Scrape `/metrics` of every process; series (name{labels}) of the chosen counters, summed per role. */
async function scrapeCounters(net: Net): Promise<{ nodes: Counters; beacon: Counters }> {
  const out = { nodes: new Map<string, number>(), beacon: new Map<string, number>() };
  await Promise.all(
    net.devnet.manifest.processes.map(async (p) => {
      const beacon = p.role === 'beacon';
      const wanted = beacon ? BEACON_COUNTERS : NODE_COUNTERS;
      try {
        const text = await (await fetch(`${p.apiUrl.replace(/\/+$/, '')}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
        for (const line of text.split('\n')) {
          if (line.startsWith('#')) continue;
          const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([0-9.eE+-]+)$/.exec(line.trim());
          if (!m || !wanted.includes(m[1]!)) continue;
          const key = `${m[1]}${m[2] ?? ''}`;
          const into = beacon ? out.beacon : out.nodes;
          into.set(key, (into.get(key) ?? 0) + Number(m[3]));
        }
      } catch {
        // a process that does not answer: its counters are missing from the sums
      }
    }),
  );
  return out;
}

function counterDelta(before: Counters, after: Counters): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of [...after].sort(([a], [b]) => a.localeCompare(b))) {
    const d = v - (before.get(k) ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

const sumMatching = (d: Record<string, number>, prefix: string) => Object.entries(d).reduce((a, [k, v]) => (k.startsWith(prefix) ? a + v : a), 0);

// ---------------------------------------------------------------- devnet context

interface Account {
  address: string;
  shard: number;
  /** Index among its shard's accounts. */
  idx: number;
  key: { publicKey: Uint8Array; secretKey: Uint8Array };
  /** The node (of its shard) it submits to: shard node idx mod n. */
  nodeName: string;
  client: QnexusClient;
}

interface Net {
  devnet: Devnet;
  /** Every measured transaction names its sender by address (its key was registered by a warm-up transaction). */
  keyless: boolean;
  shards: number;
  /** Interleaved by shard: s0a0, s1a0, …, s0a1, s1a1, … */
  accounts: Account[];
  /** The shard's validators, then its full nodes. */
  shardNodes: string[][];
  /** One validator per shard, polled for finalized blocks. */
  observers: QnexusClient[];
  beacon: QnexusClient;
}

/** What a devnet runs with beyond the topology: extra `QNEXUS_*` settings for every process (a variant). */
interface NetOptions {
  env?: Record<string, string>;
  /** Sign the measured transactions with the public key in every one (the format before issue 18). Default: --keyless. */
  keyed?: boolean;
}

/** `--node-flags`: every devnet process runs the built bin with them after NODE_PROCESS_FLAGS; else the launcher's default command. */
function nodeCommandOption(): { nodeCommand?: { command: string; args: string[] } } {
  if (!args['node-flags']) return {};
  const bin = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));
  return { nodeCommand: { command: process.execPath, args: [...NODE_PROCESS_FLAGS, ...args['node-flags'].split(/\s+/).filter(Boolean), bin] } };
}

async function openNet(shards: number, accountsPerShard: number, basePort: number, dir: string, o: NetOptions = {}): Promise<Net> {
  const devnet = await startDevnet({
    dir,
    shards,
    scheme: args.scheme as SchemeName,
    // The bench is one address (127.0.0.1) standing in for every wallet of the network: the API's
    // per-address limits (500 tokens/s, a submission takes 4; 64 connections) would throttle its
    // sweep well below saturation (pqclean's steps offer hundreds of tx/s to each node), so its
    // devnets lift them (the global connection cap stays at its default).
    env: { QNEXUS_CRYPTO_BACKEND: args['crypto-backend']!, QNEXUS_API_RATE_LIMIT: '0', QNEXUS_API_MAX_CONNECTIONS_PER_IP: '512', ...o.env },
    ...nodeCommandOption(),
    validators: num('validators'),
    fullNodes: num('full-nodes'),
    accounts: accountsPerShard,
    slotMs: num('slot-ms'),
    basePort,
    xferTimeoutSlots: num('xfer-timeout-slots'),
    logFormat: 'json',
    logLevel,
    reset: true,
  });
  try {
    const nodes = devnet.manifest.processes.filter((p) => p.role !== 'beacon');
    const shardNodes = Array.from({ length: shards }, (_, k) => nodes.filter((p) => p.shard === k).map((p) => p.name));
    const clients = new Map(nodes.map((p) => [p.name, devnet.client(p.name, { timeoutMs: 30_000 })]));
    const observers = shardNodes.map((ns, k) => {
      const v = nodes.find((p) => p.shard === k && p.role === 'validator') ?? nodes.find((p) => p.shard === k);
      if (!v || ns.length === 0) throw new Error(`shard ${k} has no node`);
      return devnet.client(v.name, { timeoutMs: 30_000 });
    });
    const pass = readFileSync(devnet.passphraseFile, 'utf8').trim();
    const byShard: Account[][] = Array.from({ length: shards }, () => []);
    for (const a of devnet.manifest.accounts) {
      const k = a.shard;
      const idx = byShard[k]!.length;
      const nodeName = shardNodes[k]![idx % shardNodes[k]!.length]!;
      const { key } = await unlockKeystoreFile(a.keystore, pass);
      byShard[k]!.push({ address: a.address, shard: k, idx, key: { publicKey: key.publicKey, secretKey: key.secretKey }, nodeName, client: clients.get(nodeName)! });
    }
    const accounts: Account[] = [];
    for (let i = 0; i < accountsPerShard; i++) for (let k = 0; k < shards; k++) if (byShard[k]![i]) accounts.push(byShard[k]![i]!);
    const net: Net = { devnet, shards, keyless: !(o.keyed ?? !bool('keyless')), accounts, shardNodes, observers, beacon: devnet.client('beacon', { timeoutMs: 30_000 }) };
    if (net.keyless) await registerKeys(net);
    return net;
  } catch (e) {
    await devnet.stop();
    throw e;
  }
}

/**
 * Before anything is measured, each account sends one transfer that carries its public key, and
 * the bench waits until all are final: from then on every transaction it signs is keyless (the
 * sender named by its address, 1,292 fewer bytes per ML-DSA-44 transaction), which nodes admit
 * only once the key is in their state. What a wallet does after its first transaction.
 */
async function registerKeys(net: Net): Promise<void> {
  const t0 = performance.now();
  const nonces = await currentNonces(net);
  const todo = net.accounts.map((a, i) => ({ a, i })).filter(({ i }) => nonces[i] === 0);
  if (todo.length === 0) return;
  const signed = await presign(
    todo.map(({ a }) => {
      const m = sendMsg('transfer', { to: parseAddress(recipient(net, a, 'transfer')), amount: 1n });
      return { chainId: net.devnet.genesis.chainId, scheme: net.devnet.genesis.scheme, backend: SIGN_BACKEND, publicKey: a.key.publicKey, secretKey: a.key.secretKey, txs: [{ kind: m.kind, msg: m.msg, nonce: 0 }] };
    }),
  );
  await Promise.all(todo.map(({ a }, k) => a.client.submitTx(signed[k]![0]!.raw, { binary: true, busyRetryMs: 60_000 })));
  // Final = the key is in the state the nodes admit against (bounded: 60 slots).
  const deadline = performance.now() + 60 * num('slot-ms') + 30_000;
  for (;;) {
    const done = await Promise.all(todo.map(async ({ a }) => (await a.client.account(a.address)).publicKey !== null));
    if (done.every(Boolean)) break;
    if (performance.now() > deadline) throw new Error(`registering the accounts' keys: ${done.filter((d) => !d).length} of ${todo.length} still unregistered after ${Math.round((performance.now() - t0) / 1000)} s`);
    await sleep(250);
  }
  console.log(`registered ${todo.length} accounts' keys in ${r1((performance.now() - t0) / 1000)} s; the measured transactions are keyless`);
}

/** Another account of the same shard (intra) or the same-index account of the next shard (cross). */
function recipient(net: Net, a: Account, kind: Kind): string {
  const sameShard = net.accounts.filter((b) => b.shard === a.shard);
  if (kind === 'transfer') return sameShard[(a.idx + 1) % sameShard.length]!.address;
  const dst = (a.shard + 1) % net.shards;
  const other = net.accounts.filter((b) => b.shard === dst);
  return other[a.idx % other.length]!.address;
}

// ---------------------------------------------------------------- load

interface Item extends Signed {
  kind: Kind;
  acct: number;
  /** Offered at t0 + at (ms). */
  at: number;
}

/**
 * Build a schedule of `streams` (each `count` transactions of one kind at `rate` tx/s, assigned
 * round-robin over the interleaved accounts), sign it, and return it in offer order. Nonces
 * continue from `nonces` (per account) in offer order, so each account's queue is in nonce order.
 */
async function buildSchedule(net: Net, streams: { kind: Kind; rate: number; count: number }[], nonces: number[]): Promise<Item[]> {
  const events: { kind: Kind; at: number; acct: number }[] = [];
  for (const s of streams) for (let k = 0; k < s.count; k++) events.push({ kind: s.kind, at: (k * 1000) / s.rate, acct: k % net.accounts.length });
  events.sort((a, b) => a.at - b.at);
  const next = [...nonces];
  const specs: SignJob['txs'][] = net.accounts.map(() => []);
  const where: { acct: number; i: number }[] = [];
  for (const e of events) {
    const a = net.accounts[e.acct]!;
    where.push({ acct: e.acct, i: specs[e.acct]!.length });
    // What the SDK's buildTransfer / buildXTransfer sign: the bank's send of 1, fee 1.
    const m = sendMsg(e.kind, { to: parseAddress(recipient(net, a, e.kind)), amount: 1n });
    specs[e.acct]!.push({ kind: m.kind, msg: m.msg, nonce: next[e.acct]!++ });
  }
  const signed = await presign(
    net.accounts.map((a, i) => ({ chainId: net.devnet.genesis.chainId, scheme: net.devnet.genesis.scheme, backend: SIGN_BACKEND, publicKey: a.key.publicKey, secretKey: a.key.secretKey, txs: specs[i]! })),
    { keylessAfterFirst: net.keyless },
  );
  return events.map((e, n) => ({ ...signed[where[n]!.acct]![where[n]!.i]!, kind: e.kind, acct: e.acct, at: e.at }));
}

interface Driven {
  t0: number;
  submitAt: Map<string, number>;
  rejected: Map<string, number>;
  submitEnd: number;
  maxInFlight: number;
  /** Duration of each accepted submission's POST (its 202 waits for the admission journal's fsync), ms. */
  admitMs: number[];
  /** Busy answers (503 NODE_BUSY / MEMPOOL_FULL, 429, and TX_NONCE_FUTURE: the account's nonce window is full), by code, retried by the client. */
  busy: Map<string, number>;
  /** Submissions whose first attempt got a busy answer (load shedding as a client sees it). */
  firstRefused: number;
}

/** How long the load generator waits before offering again a transaction refused TX_NONCE_FUTURE. */
const NONCE_FUTURE_RETRY_MS = 250;

/**
 * Open loop: transaction k is *offered* at t0 + at_k whatever happens to earlier ones, and its
 * latency counts from that moment. Each account's transactions go to its node in nonce order
 * (a real wallet cannot skip a nonce), retrying NODE_BUSY backpressure and a full nonce window
 * (TX_NONCE_FUTURE), so client-side queueing shows up as latency.
 */
async function drive(net: Net, schedule: Item[]): Promise<Driven> {
  const submitAt = new Map<string, number>();
  const rejected = new Map<string, number>();
  const admitMs: number[] = [];
  const busy = new Map<string, number>();
  let firstRefused = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const t0 = performance.now();
  const queues: Item[][] = net.accounts.map(() => []);
  const wake: (() => void)[] = net.accounts.map(() => () => undefined);
  let offering = true;
  const senders = net.accounts.map(async (a, i) => {
    for (;;) {
      const j = queues[i]!.shift();
      if (!j) {
        if (!offering) return;
        await new Promise<void>((r) => (wake[i] = r));
        continue;
      }
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const sent = performance.now();
      let tries = 0;
      const onBusy = (e: { code: string }) => {
        if (tries++ === 0) firstRefused++;
        busy.set(e.code, (busy.get(e.code) ?? 0) + 1);
      };
      try {
        // TX_NONCE_FUTURE: more than the node's nonce window (64) of this account's earlier
        // transactions are still pending, all accepted. A wallet waits for some to become final
        // and sends it again; dropping it would strand every later nonce of the account.
        for (const giveUp = sent + 120_000; ; ) {
          try {
            await a.client.submitTx(j.raw, { binary: true, busyRetryMs: 120_000, maxAttempts: 1_000, onBusy });
            break;
          } catch (e) {
            if ((e as { code?: string }).code !== 'TX_NONCE_FUTURE' || performance.now() > giveUp) throw e;
            onBusy(e as { code: string });
            await sleep(NONCE_FUTURE_RETRY_MS);
          }
        }
        admitMs.push(performance.now() - sent);
      } catch (e) {
        const code = (e as { code?: string }).code ?? 'ERROR';
        rejected.set(code, (rejected.get(code) ?? 0) + 1);
        submitAt.delete(j.hash);
      } finally {
        inFlight--;
      }
    }
  });
  let offered = 0;
  while (offered < schedule.length) {
    const now = performance.now() - t0;
    while (offered < schedule.length && schedule[offered]!.at <= now) {
      const j = schedule[offered++]!;
      submitAt.set(j.hash, t0 + j.at);
      queues[j.acct]!.push(j);
      wake[j.acct]!();
    }
    await sleep(5);
  }
  offering = false;
  wake.forEach((w) => w());
  await Promise.all(senders);
  return { t0, submitAt, rejected, submitEnd: performance.now(), maxInFlight, admitMs, busy, firstRefused };
}

// ---------------------------------------------------------------- finality observer

interface Seen {
  /** When the observer first saw the finalized block (performance.now()). */
  t: number;
  shard: number;
  slot: number;
}
interface XEvents {
  srcShard: number;
  dstShard: number;
  prepare?: Seen;
  /** xdecision finalized on the destination (commit = credited). */
  dstDecision?: Seen & { decision: string };
  srcDecision?: Seen & { decision: string };
}

type BeaconEntry = TxInfo & { kind?: string; transfer?: string; decision?: string };

interface Observer {
  finalAt: Map<string, Seen>;
  blocks: { shard: number; txs: number; slot: number; t: number }[];
  xev: Map<string, XEvents>;
  beaconEntriesSeen: number;
  stop(): Promise<void>;
}

/**
 * Poll one node per shard every 50 ms for newly finalized blocks; a transaction's final time is
 * when the block holding it is first seen. Hashes not in `ours` are beacon entries (xprepare,
 * xdecision): when `xev` tracks transfers, those are fetched once to see which transfer they act on.
 */
async function observe(net: Net, ours: Set<string>, xev: Map<string, XEvents>): Promise<Observer> {
  const startHeights = await Promise.all(net.observers.map(async (c) => (await c.status()).finalizedHeight));
  const o: Observer = { finalAt: new Map(), blocks: [], xev, beaconEntriesSeen: 0, stop: async () => undefined };
  const fetched = new Map<string, BeaconEntry>();
  let done = false;
  const loops = net.observers.map(async (c, shard) => {
    let observed = startHeights[shard]!;
    while (!done) {
      try {
        const head = (await c.status()).finalizedHeight;
        for (let h = observed + 1; h <= head; h++) {
          const b = await c.block(h);
          const now = performance.now();
          const seen = { t: now, shard, slot: b.slot };
          for (const t of b.txs) if (ours.has(t) && !o.finalAt.has(t)) o.finalAt.set(t, seen);
          if (xev.size > 0) {
            // The same signed entry (e.g. a decision) lands on both shards: fetch each hash once.
            const others = b.txs.filter((t) => !ours.has(t));
            const infos = await Promise.all(
              others.map(async (t) => {
                let x = fetched.get(t);
                if (!x) fetched.set(t, (x = (await c.tx(t)) as BeaconEntry));
                return x;
              }),
            );
            for (const x of infos) {
              o.beaconEntriesSeen++;
              const e = x.transfer ? xev.get(x.transfer) : undefined;
              if (!e) continue;
              if (x.kind === 'xprepare' && shard === e.dstShard) e.prepare ??= seen;
              if (x.kind === 'xdecision' && shard === e.dstShard) e.dstDecision ??= { ...seen, decision: x.decision ?? '?' };
              if (x.kind === 'xdecision' && shard === e.srcShard) e.srcDecision ??= { ...seen, decision: x.decision ?? '?' };
            }
          }
          o.blocks.push({ shard, txs: b.txs.length, slot: b.slot, t: now });
          observed = h;
        }
      } catch {
        // transient; retry the same block
      }
      await sleep(50);
    }
  });
  o.stop = async () => {
    done = true;
    await Promise.all(loops);
  };
  return o;
}

// ---------------------------------------------------------------- per-process CPU / RSS

interface CpuSnap {
  t: number;
  /** Per process name: total and main-thread CPU seconds so far (bench/cpu.ts). */
  cpu: Map<string, { totalSec: number; mainSec: number | null }>;
}

function cpuSnapshot(net: Pick<Net, 'devnet'>): CpuSnap {
  const cpu = new Map<string, { totalSec: number; mainSec: number | null }>();
  for (const p of net.devnet.manifest.processes) {
    const c = p.pid ? procCpu(p.pid) : null;
    if (c) cpu.set(p.name, c);
  }
  return { t: performance.now(), cpu };
}

/** Per process: its GC seconds so far (qnexus_nodejs_gc_duration_seconds_sum from `/metrics`); missing if it did not answer or has no such metric. */
async function gcSnapshot(net: Net): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  await Promise.all(
    net.devnet.manifest.processes.map(async (p) => {
      try {
        const text = await (await fetch(`${p.apiUrl.replace(/\/+$/, '')}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
        const gc = parseGcSeconds(text);
        if (gc !== null) out.set(p.name, gc);
      } catch {
        // reported as null
      }
    }),
  );
  return out;
}

/** Per process over the window since `before`: CPU (total and main thread, seconds and % of a core), GC seconds, peak RSS. */
function processFigures(net: Pick<Net, 'devnet'>, before: CpuSnap, gc?: { before: Map<string, number>; after: Map<string, number> }) {
  const wall = (performance.now() - before.t) / 1000;
  return net.devnet.manifest.processes
    .filter((p) => p.pid)
    .map((p) => {
      const s = procStats(p.pid!);
      const now = procCpu(p.pid!);
      const b = before.cpu.get(p.name);
      const cpuSec = now && b ? now.totalSec - b.totalSec : null;
      const mainCpuSec = now && b && now.mainSec !== null && b.mainSec !== null ? now.mainSec - b.mainSec : null;
      const g0 = gc?.before.get(p.name);
      const g1 = gc?.after.get(p.name);
      return {
        name: p.name,
        role: p.role,
        shard: p.shard,
        state: p.state,
        cpuPercent: cpuSec !== null ? Math.round((100 * cpuSec) / wall) : null,
        mainThreadCpuPercent: mainCpuSec !== null ? Math.round((100 * mainCpuSec) / wall) : null,
        cpuSec: cpuSec !== null ? r3(cpuSec) : null,
        mainThreadCpuSec: mainCpuSec !== null ? r3(mainCpuSec) : null,
        gcSec: g0 !== undefined && g1 !== undefined ? r3(g1 - g0) : null,
        peakRssMb: s ? Math.round(s.peakRssMb) : null,
      };
    });
}

// ---------------------------------------------------------------- phases

interface Env {
  cores: number;
  crypto: { verifyPerSec: number; signPerSec: number };
  ceiling: number;
  verifiers: number;
  slotMs: number;
  duration: number;
}

const latencyOf = (lat: number[], slotMs: number) => ({
  latencyMs: { p50: rnd(pct(lat, 50)), p95: rnd(pct(lat, 95)), p99: rnd(pct(lat, 99)) },
  latencySlots: { p50: r2(pct(lat, 50) / slotMs), p95: r2(pct(lat, 95) / slotMs), p99: r2(pct(lat, 99) / slotMs) },
});

/** Each account's next nonce, from its node (pending transactions included). */
async function currentNonces(net: Net): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < net.accounts.length; i += 16) {
    const part = await Promise.all(net.accounts.slice(i, i + 16).map(async (a) => Number((await a.client.account(a.address)).pendingNonce)));
    out.push(...part);
  }
  return out;
}

const devnetPids = (net: Net) => net.devnet.manifest.processes.map((p) => p.pid).filter((p): p is number => !!p);
const wireNow = (net: Net): WireSnapshot => wireSnapshot(devnetPids(net), new Set(net.devnet.manifest.processes.map((p) => p.p2pPort)));

/**
 * Open-loop intra-shard transfers at `rate` tx/s (total over all shards) for `duration` s on `net`.
 * `idle`: first measure every process's idle CPU over 5 s (once per devnet is enough).
 */
async function intraPhase(name: string, net: Net, env: Env, rate: number, o: { duration: number; idle: boolean }) {
  const load = hostLoad(devnetPids(net));
  const total = Math.max(1, Math.ceil(rate * o.duration));
  console.log(`\n[${name}] ${net.shards} shard(s) × ${env.verifiers} nodes + beacon, ${net.accounts.length} accounts; load avg ${load.loadavg1}, other node processes ${load.otherNodeProcesses}`);
  console.log(`[${name}] pre-signing ${total} transfers on ${env.cores} cores…`);
  const schedule = await buildSchedule(net, [{ kind: 'transfer', rate, count: total }], await currentNonces(net));
  // Signing kept both cores busy: let the devnet settle for a few slots before timing.
  await sleep(3 * env.slotMs);
  let idle = new Map<string, number | null>();
  let idleCpu: IdleCpu | null = null;
  if (o.idle) {
    // Idle baseline: CPU of every process over the idle window with no load and no polling from the bench.
    const idle0 = cpuSnapshot(net);
    await sleep(IDLE_WINDOW_MS);
    const wall = (performance.now() - idle0.t) / 1000;
    const ps = processFigures(net, idle0);
    idle = new Map(ps.map((p) => [p.name, p.cpuPercent]));
    idleCpu = idleFigures(ps, wall);
    console.log(`[${name}] idle devnet: ${idleCpu.cores} cores over ${idleCpu.windowSec} s (main threads ${idleCpu.mainThreadCores}) ${JSON.stringify(idleCpu.coresByRole)}`);
  }
  const ours = new Set(schedule.map((s) => s.hash));
  const obs = await observe(net, ours, new Map());
  const counters0 = await scrapeCounters(net);
  const gc0 = await gcSnapshot(net);
  const cpu0 = cpuSnapshot(net);
  const self0 = selfCpu();
  const wire0 = wireNow(net);
  const stopSampler = sampleOtherLoad(devnetPids(net));
  console.log(`[${name}] offering ${rate} tx/s for ${o.duration} s (open loop)…`);
  const d = await drive(net, schedule);
  // Drain: wait until every accepted tx is final (bounded).
  const drainDeadline = performance.now() + Math.max(30_000, o.duration * 1000);
  while (performance.now() < drainDeadline && [...d.submitAt.keys()].some((h) => !obs.finalAt.has(h))) await sleep(200);
  await obs.stop();
  const self1 = selfCpu();
  const wire = wireDelta(wire0, wireNow(net));
  const gc1 = await gcSnapshot(net);
  const procs = processFigures(net, cpu0, { before: gc0, after: gc1 }).map((p) => ({ ...p, idleCpuPercent: idle.get(p.name) ?? null }));
  const stepSec = (performance.now() - cpu0.t) / 1000;
  const during = stopSampler();
  const counters1 = await scrapeCounters(net);
  const nodeCounters = counterDelta(counters0.nodes, counters1.nodes);

  const lat: number[] = [];
  let lastFinal = d.t0;
  const perShard = Array.from({ length: net.shards }, () => ({ finalized: 0, lastFinal: d.t0 }));
  for (const [h, t] of d.submitAt) {
    const f = obs.finalAt.get(h);
    if (!f) continue;
    lat.push(f.t - t);
    lastFinal = Math.max(lastFinal, f.t);
    perShard[f.shard]!.finalized++;
    perShard[f.shard]!.lastFinal = Math.max(perShard[f.shard]!.lastFinal, f.t);
  }
  lat.sort((a, b) => a - b);
  // Throughput window: from the first offer to the last finalization, less the pipeline's own
  // delay (p10 latency: what even an unloaded tx waits for its block), and never shorter than the
  // offer window. Below saturation this is ≈ the offered rate whatever the step length; at
  // saturation the drain dominates and it is the rate the chain finalized at.
  const pipelineMs = lat.length ? pct(lat, 10) : 0;
  const elapsedSec = (lastFinal - d.t0 - pipelineMs) / 1000;
  const windowSec = Math.max(o.duration, elapsedSec);
  const tps = lat.length / windowSec;
  const inWindow = obs.blocks.filter((b) => b.t <= lastFinal);
  const shardBlocks = (k: number) => inWindow.filter((b) => b.shard === k);
  return {
    name,
    hostLoadAtStart: load,
    hostLoadDuring: during,
    topology: { shards: net.shards, validators: num('validators'), fullNodes: num('full-nodes'), slotMs: env.slotMs, accounts: net.accounts.length, accountsPerShard: net.accounts.length / net.shards, scheme: args.scheme!, backend: args['crypto-backend']!, beacon: true },
    ceilingTxPerSec: Math.round(env.ceiling),
    offeredTxPerSec: rate,
    durationSec: o.duration,
    submitted: schedule.length,
    accepted: d.submitAt.size,
    rejected: Object.fromEntries(d.rejected),
    /** Busy answers the client retried, by code, and the share of submissions refused at their first attempt. */
    busyAnswers: Object.fromEntries(d.busy),
    firstAttemptRefusedShare: r3(d.firstRefused / Math.max(1, schedule.length)),
    finalized: lat.length,
    notFinalized: d.submitAt.size - lat.length,
    finalizedTxPerSec: r1(tps),
    /** Seconds the throughput is divided by (see above) and the p10 latency taken off as the pipeline delay. */
    throughputWindowSec: r2(windowSec),
    pipelineDelayMs: rnd(pipelineMs),
    ratioToCeiling: r3(tps / env.ceiling),
    ...latencyOf(lat, env.slotMs),
    blocks: inWindow.length,
    avgTxsPerBlock: r1(inWindow.reduce((a, b) => a + b.txs, 0) / Math.max(1, inWindow.length)),
    submitSeconds: r1((d.submitEnd - d.t0) / 1000),
    maxClientInFlight: d.maxInFlight,
    perShard: perShard.map((s, k) => {
      const bs = shardBlocks(k);
      const slots = bs.length ? bs[bs.length - 1]!.slot - bs[0]!.slot + 1 : 0;
      return {
        shard: k,
        finalized: s.finalized,
        finalizedTxPerSec: r1(s.finalized / Math.max(o.duration, (s.lastFinal - d.t0 - pipelineMs) / 1000)),
        blocks: bs.length,
        slotsSpanned: slots,
        /** Slots between the shard's first and last block of the step that ended without one (failed or late rounds). */
        slotsWithoutBlock: Math.max(0, slots - bs.length),
        avgTxsPerBlock: r1(bs.reduce((a, b) => a + b.txs, 0) / Math.max(1, bs.length)),
      };
    }),
    /**
     * CPU per finalized tx by role over the step (offer window and drain): main-thread and
     * all-thread CPU and GC pauses, ms, averaged and max over the role's processes; a shard
     * node's seconds are divided by its own shard's finalized txs, the beacon's by all (bench/cpu.ts).
     */
    cpuPerTxByRole: costPerTxByRole(
      procs.map((p) => ({ name: p.name, role: p.role, shard: p.role === 'beacon' ? null : (p.shard ?? null), cpuSec: p.cpuSec, mainCpuSec: p.mainThreadCpuSec, gcSec: p.gcSec })),
      perShard.map((s) => s.finalized),
    ),
    /** GC figures come from every process's /metrics (prom-client default metrics); false if none answered. */
    gcAvailable: procs.some((p) => p.gcSec !== null),
    /** The load generator (this process: pre-signed submissions, the finality observer's polling) over the step: all threads and the main thread. */
    loadGenerator: loadGenFigures(self0, self1, stepSec, lat.length),
    /** Idle devnet before the first step's load (first step of a devnet only). */
    idleCpu,
    /** Refusals as the client saw them, by code: busy answers retried (503/429) and final rejections. */
    refusals: { busy: Object.fromEntries(d.busy), rejected: Object.fromEntries(d.rejected) },
    /** Transaction-signature checks (not votes or blocks) over all nodes, per finalized transfer. */
    txSignatureChecksPerTx: r1(sumMatching(nodeCounters, 'qnexus_crypto_verify_total{kind="tx"') / Math.max(1, lat.length)),
    admission: admissionFigures(d.admitMs, nodeCounters),
    /** libp2p TCP payload sent between the devnet's processes during the phase (kernel counters), per finalized tx. */
    wire: { ok: wire.ok, bytes: wire.bytes, bytesPerFinalizedTx: lat.length ? Math.round(wire.bytes / lat.length) : null, sockets: wire.sockets },
    metricsDelta: { nodes: nodeCounters, beacon: counterDelta(counters0.beacon, counters1.beacon) },
    processes: procs,
  };
}

/** How long the idle devnet is watched before the first step's load. */
const IDLE_WINDOW_MS = 5000;

interface IdleCpu {
  windowSec: number;
  /** Total CPU of every devnet process over the window ÷ its length: cores in use doing nothing. */
  cores: number | null;
  /** The same for the main threads only. */
  mainThreadCores: number | null;
  coresByRole: Record<string, number>;
}

function idleFigures(ps: ReturnType<typeof processFigures>, wallSec: number): IdleCpu {
  const sum = (xs: (number | null)[]) => (xs.some((x) => x === null) ? null : xs.reduce<number>((a, b) => a + b!, 0));
  const total = sum(ps.map((p) => p.cpuSec));
  const main = sum(ps.map((p) => p.mainThreadCpuSec));
  const byRole: Record<string, number> = {};
  for (const p of ps) byRole[p.role] = (byRole[p.role] ?? 0) + (p.cpuSec ?? 0);
  return {
    windowSec: r2(wallSec)!,
    cores: total !== null ? r3(total / wallSec) : null,
    mainThreadCores: main !== null ? r3(main / wallSec) : null,
    coresByRole: Object.fromEntries(Object.entries(byRole).map(([k, v]) => [k, r3(v / wallSec)!])),
  };
}

interface IdleDevnet extends IdleCpu {
  /** Processes watched (the default devnet: 11). */
  processes: number;
  warmupSec: number;
  topology: { shards: number; validators: number; fullNodes: number; slotMs: number };
}

/**
 * The default devnet (`qnexus devnet`'s topology: a beacon and 2 shards of 4 validators + 1 full
 * node, 1-s slots), idle on its own: started, left `--idle-warmup` seconds (JIT compilation, the
 * first connections and announcements are start-up, not idling), then every process's CPU over
 * `--idle-window` seconds. The sweep's own idle figure (5 s after its devnet settled, without
 * full nodes) stays in the result too; this is the one issue 18's target is about.
 */
async function idleDevnetPhase(basePort: number, dir: string): Promise<IdleDevnet> {
  const warmupSec = num('idle-warmup');
  const windowSec = num('idle-window');
  const devnet = await startDevnet({
    dir,
    scheme: args.scheme as SchemeName,
    env: { QNEXUS_CRYPTO_BACKEND: args['crypto-backend']! },
    ...nodeCommandOption(),
    basePort,
    logFormat: 'json',
    logLevel: 'warn',
    reset: true,
  });
  try {
    const nodes = devnet.manifest.processes.filter((p) => p.role !== 'beacon');
    const topology = {
      shards: new Set(nodes.map((p) => p.shard)).size,
      validators: nodes.filter((p) => p.role === 'validator' && p.shard === 0).length,
      fullNodes: nodes.filter((p) => p.role === 'full' && p.shard === 0).length,
      slotMs: DEVNET_DEFAULTS.slotMs,
    };
    console.log(`\n[idle devnet] ${devnet.manifest.processes.length} processes (${topology.shards} × (${topology.validators} validators + ${topology.fullNodes} full) + beacon); warming up ${warmupSec} s, then watching ${windowSec} s…`);
    await sleep(warmupSec * 1000);
    const net = { devnet };
    const before = cpuSnapshot(net);
    await sleep(windowSec * 1000);
    const ps = processFigures(net, before);
    const idle = idleFigures(ps, (performance.now() - before.t) / 1000);
    console.log(`[idle devnet] ${idle.cores} cores (main threads ${idle.mainThreadCores}) ${JSON.stringify(idle.coresByRole)}`);
    return { ...idle, processes: ps.length, warmupSec, topology };
  } finally {
    await devnet.stop();
  }
}

/** The load generator's own CPU over a step: cores (all threads, main thread) and ms per finalized tx. */
function loadGenFigures(a: { totalSec: number; mainSec: number | null }, b: { totalSec: number; mainSec: number | null }, wallSec: number, finalized: number) {
  const total = b.totalSec - a.totalSec;
  const main = a.mainSec !== null && b.mainSec !== null ? b.mainSec - a.mainSec : null;
  return {
    cpuSec: r3(total),
    mainThreadCpuSec: main !== null ? r3(main) : null,
    cores: r3(total / wallSec),
    msPerFinalizedTx: finalized ? r3((1000 * total) / finalized) : null,
  };
}

/**
 * What acknowledging costs: the POST's duration (client to 202, which waits for the admission
 * journal's group fsync) and the journal's own counters over the phase (all nodes).
 */
function admissionFigures(admitMs: number[], nodeCounters: Record<string, number>) {
  const xs = [...admitMs].sort((a, b) => a - b);
  const fsyncs = sumMatching(nodeCounters, 'qnexus_admission_journal_fsyncs_total');
  const groups = sumMatching(nodeCounters, 'qnexus_admission_journal_group_entries_count');
  const entries = sumMatching(nodeCounters, 'qnexus_admission_journal_group_entries_sum');
  return {
    n: xs.length,
    postMs: { p50: r1(pct(xs, 50)), p95: r1(pct(xs, 95)), p99: r1(pct(xs, 99)) },
    journalFsyncs: fsyncs,
    journalGroups: groups,
    entriesPerGroup: groups ? r2(entries / groups) : null,
    fsyncsPerAcceptedTx: xs.length ? r3(fsyncs / xs.length) : null,
  };
}

/** p50 / p95 of latencies (ms) per `windowMs` window of offer time (`at`, ms after t0): does latency grow during the run? */
function byOfferWindow(samples: { at: number; ms: number }[], windowMs: number): { fromSec: number; n: number; p50Ms: number | null; p95Ms: number | null }[] {
  const buckets = new Map<number, number[]>();
  for (const x of samples) {
    const b = Math.floor(x.at / windowMs);
    const xs = buckets.get(b) ?? [];
    xs.push(x.ms);
    buckets.set(b, xs);
  }
  return [...buckets.entries()]
    .sort(([a], [b]) => a - b)
    .map(([b, xs]) => {
      xs.sort((p, q) => p - q);
      return { fromSec: (b * windowMs) / 1000, n: xs.length, p50Ms: rnd(pct(xs, 50)), p95Ms: rnd(pct(xs, 95)) };
    });
}

/**
 * Cross-shard phase on `net`: xtransfers at `xrate` (directions alternating) over intra-shard
 * background at `brate` (0: none); submit→credited latency, its stages, the beacon's outcomes.
 */
async function mixPhase(name: string, net: Net, env: Env, xrate: number, brate: number) {
  const load = hostLoad(net.devnet.manifest.processes.map((p) => p.pid ?? 0));
  const xcount = Math.ceil(xrate * env.duration);
  const bcount = Math.ceil(brate * env.duration);
  console.log(`\n[${name}] load avg ${load.loadavg1}, other node processes ${load.otherNodeProcesses}`);
  // Continue each account's nonces where the intra phase left them (its node's pending nonce).
  const nonces = await currentNonces(net);
  console.log(`[${name}] pre-signing ${xcount} xtransfers + ${bcount} background transfers…`);
  const streams: { kind: Kind; rate: number; count: number }[] = [{ kind: 'xtransfer', rate: xrate, count: xcount }];
  if (bcount > 0) streams.push({ kind: 'transfer', rate: brate, count: bcount });
  const schedule = await buildSchedule(net, streams, nonces);
  await sleep(3 * env.slotMs);
  const ours = new Set(schedule.map((s) => s.hash));
  const xev = new Map<string, XEvents>();
  for (const s of schedule) {
    if (s.kind !== 'xtransfer') continue;
    const src = net.accounts[s.acct]!.shard;
    xev.set(s.hash, { srcShard: src, dstShard: (src + 1) % net.shards });
  }
  const obs = await observe(net, ours, xev);
  const counters0 = await scrapeCounters(net);
  const cpu0 = cpuSnapshot(net);
  const wire0 = wireNow(net);
  const stopSampler = sampleOtherLoad(devnetPids(net));
  const genesisTime = net.devnet.genesis.genesisTime;
  const wallOffset = Date.now() - performance.now();
  const slotAt = (t: number) => Math.floor((t + wallOffset - genesisTime) / env.slotMs);
  console.log(`[${name}] offering ${xrate} xtransfers/s + ${brate} transfers/s for ${env.duration} s (open loop)…`);
  const d = await drive(net, schedule);
  const xids = schedule.filter((s) => s.kind === 'xtransfer' && d.submitAt.has(s.hash)).map((s) => s.hash);
  const bids = schedule.filter((s) => s.kind === 'transfer' && d.submitAt.has(s.hash)).map((s) => s.hash);
  // Drain: until every accepted xtransfer's decision is final on both shards and every background tx is final (bounded).
  const drainMs = Math.max(60_000, env.duration * 1000, (num('xfer-timeout-slots') + 15) * env.slotMs);
  const drainDeadline = performance.now() + drainMs;
  const settled = () => xids.every((id) => xev.get(id)!.srcDecision && xev.get(id)!.dstDecision) && bids.every((h) => obs.finalAt.has(h));
  while (performance.now() < drainDeadline && !settled()) await sleep(250);
  await obs.stop();
  const wire = wireDelta(wire0, wireNow(net));
  const procs = processFigures(net, cpu0);
  const during = stopSampler();
  const counters1 = await scrapeCounters(net);
  const nodeCounters = counterDelta(counters0.nodes, counters1.nodes);

  // The beacon's verdict per transfer.
  const verdicts = new Map<string, { status: string; done: boolean; reason?: string }>();
  for (let i = 0; i < xids.length; i += 16) {
    await Promise.all(
      xids.slice(i, i + 16).map(async (id) => {
        try {
          const x = await net.beacon.beaconXTransfer(id);
          verdicts.set(id, { status: x.status, done: x.done, reason: x.phases.find((p) => p.phase === 'decided')?.reason });
        } catch (e) {
          verdicts.set(id, { status: `error ${(e as { code?: string }).code ?? ''}`.trim(), done: false });
        }
      }),
    );
  }
  const byStatus: Record<string, number> = {};
  const abortReasons: Record<string, number> = {};
  for (const v of verdicts.values()) {
    byStatus[v.status] = (byStatus[v.status] ?? 0) + 1;
    if (v.status === 'aborted') abortReasons[v.reason ?? '?'] = (abortReasons[v.reason ?? '?'] ?? 0) + 1;
  }
  const beaconStatus = await net.beacon.beaconStatus().catch(() => null);
  const supply = await Promise.all(net.observers.map((c) => c.supply().catch(() => null)));

  // Stages, from submit (offer) time, in observed ms and in chain slots (block slot − submit slot).
  const stage = { srcFinal: [] as number[], prepared: [] as number[], credited: [] as number[], bothApplied: [] as number[] };
  const stageSlots = { srcFinal: [] as number[], prepared: [] as number[], credited: [] as number[], bothApplied: [] as number[] };
  const gaps = { submitToSrcFinal: [] as number[], srcFinalToPrepared: [] as number[], preparedToCredited: [] as number[], creditedToSrcApplied: [] as number[] };
  let credited = 0;
  let lastCredit = d.t0;
  const creditSeries: { at: number; ms: number }[] = [];
  const perDirection = new Map<string, { offered: number; credited: number; lat: number[] }>();
  for (const id of xids) {
    const t = d.submitAt.get(id)!;
    const e = xev.get(id)!;
    const dir = `${e.srcShard}->${e.dstShard}`;
    const pd = perDirection.get(dir) ?? { offered: 0, credited: 0, lat: [] };
    perDirection.set(dir, pd);
    pd.offered++;
    const s0 = slotAt(t);
    const f = obs.finalAt.get(id);
    if (f) {
      stage.srcFinal.push(f.t - t);
      stageSlots.srcFinal.push(f.slot - s0);
      gaps.submitToSrcFinal.push(f.t - t);
    }
    if (e.prepare) {
      stage.prepared.push(e.prepare.t - t);
      stageSlots.prepared.push(e.prepare.slot - s0);
      if (f) gaps.srcFinalToPrepared.push(e.prepare.t - f.t);
    }
    if (e.dstDecision?.decision === 'commit') {
      credited++;
      pd.credited++;
      lastCredit = Math.max(lastCredit, e.dstDecision.t);
      stage.credited.push(e.dstDecision.t - t);
      pd.lat.push(e.dstDecision.t - t);
      creditSeries.push({ at: t - d.t0, ms: e.dstDecision.t - t });
      stageSlots.credited.push(e.dstDecision.slot - s0);
      if (e.prepare) gaps.preparedToCredited.push(e.dstDecision.t - e.prepare.t);
      if (e.srcDecision) gaps.creditedToSrcApplied.push(e.srcDecision.t - e.dstDecision.t);
    }
    if (e.srcDecision && e.dstDecision) {
      stage.bothApplied.push(Math.max(e.srcDecision.t, e.dstDecision.t) - t);
      stageSlots.bothApplied.push(Math.max(e.srcDecision.slot, e.dstDecision.slot) - s0);
    }
  }
  for (const xs of [...Object.values(stage), ...Object.values(stageSlots), ...Object.values(gaps)]) xs.sort((a, b) => a - b);
  const p = (xs: number[]) => ({ n: xs.length, p50: rnd(pct(xs, 50)), p95: rnd(pct(xs, 95)) });
  const ps = (xs: number[]) => ({ n: xs.length, p50: pct(xs, 50), p95: pct(xs, 95) });
  const blat: number[] = [];
  for (const h of bids) {
    const f = obs.finalAt.get(h);
    if (f) blat.push(f.t - d.submitAt.get(h)!);
  }
  blat.sort((a, b) => a - b);
  const xtps = credited / ((lastCredit - d.t0) / 1000);
  return {
    name,
    hostLoadAtStart: load,
    hostLoadDuring: during,
    durationSec: env.duration,
    xfer: {
      offeredPerSec: xrate,
      submitted: xcount,
      accepted: xids.length,
      rejected: Object.fromEntries([...d.rejected]),
      credited,
      notCredited: xids.length - credited,
      creditedPerSec: r1(xtps),
      latencyToCreditedMs: { p50: rnd(pct(stage.credited, 50)), p95: rnd(pct(stage.credited, 95)), p99: rnd(pct(stage.credited, 99)) },
      latencyToCreditedSlots: { p50: r2(pct(stage.credited, 50) / env.slotMs), p95: r2(pct(stage.credited, 95) / env.slotMs), p99: r2(pct(stage.credited, 99) / env.slotMs) },
      targetP50Slots: 6,
      beacon: { byStatus, abortReasons, notDone: [...verdicts.values()].filter((v) => !v.done).length, status: beaconStatus?.xtransfers ?? null },
      perDirection: Object.fromEntries([...perDirection].map(([k, v]) => [k, { offered: v.offered, credited: v.credited, p50Ms: rnd(pct(v.lat.sort((a, b) => a - b), 50)) }])),
      stagesFromSubmitMs: { sourceFinal: p(stage.srcFinal), destinationPrepared: p(stage.prepared), credited: p(stage.credited), appliedOnBoth: p(stage.bothApplied) },
      stagesFromSubmitBlockSlots: { sourceFinal: ps(stageSlots.srcFinal), destinationPrepared: ps(stageSlots.prepared), credited: ps(stageSlots.credited), appliedOnBoth: ps(stageSlots.bothApplied) },
      gapsMs: {
        submitToSourceFinal: p(gaps.submitToSrcFinal),
        sourceFinalToDestinationPrepared: p(gaps.srcFinalToPrepared),
        destinationPreparedToCredited: p(gaps.preparedToCredited),
        creditedToSourceApplied: p(gaps.creditedToSrcApplied),
      },
      beaconEntriesObserved: obs.beaconEntriesSeen,
      creditedLatencyByOfferTime: byOfferWindow(creditSeries, 5000),
    },
    background: {
      offeredPerSec: brate,
      submitted: bcount,
      accepted: bids.length,
      finalized: blat.length,
      ...latencyOf(blat, env.slotMs),
    },
    blocks: obs.blocks.length,
    /** Transaction-signature checks (user txs and beacon entries; not votes or blocks) over all nodes, per user tx. */
    /** libp2p TCP payload between the devnet's processes (kernel counters) per user transaction (xtransfers + background). */
    wire: { ok: wire.ok, bytes: wire.bytes, bytesPerUserTx: xids.length + bids.length ? Math.round(wire.bytes / (xids.length + bids.length)) : null },
    txSignatureChecksPerUserTx: r1(sumMatching(nodeCounters, 'qnexus_crypto_verify_total{kind="tx"') / Math.max(1, xids.length + bids.length)),
    metricsDelta: { nodes: nodeCounters, beacon: counterDelta(counters0.beacon, counters1.beacon) },
    supply: supply.map((s) => s && { shard: s.shard, escrow: s.escrow, exported: s.exported, imported: s.imported, total: s.total, genesisSupply: s.genesisSupply }),
    processes: procs,
  };
}

// ---------------------------------------------------------------- sweep, sync, variants

type IntraResult = Awaited<ReturnType<typeof intraPhase>>;

/**
 * Open-loop rate sweep on one devnet, as CometBFT's QA does it: each step offers a fixed rate for
 * --step-duration s and drains; the sweep stops at the first saturated step (finalized tx/s below
 * --saturation-ratio × offered, or p50 above --saturation-p50-slots: queueing). Saturation =
 * the highest finalized tx/s of any step. Then one step at half that rate (latency target).
 *
 * The sweep must start below saturation whatever the backend (the ceiling it is scaled by is the
 * signatures' alone, and the chain saturates far below it with a fast backend): if the first step
 * is already saturated, the sweep restarts on the same devnet with every rate divided by
 * LOWER_FACTOR followed by the rates themselves, at most LOWER_TRIES times; the saturated first
 * steps are kept as `lowered`.
 */
const LOWER_FACTOR = 4;
const LOWER_TRIES = 3;
async function sweepPhase(net: Net, env: Env, rates: number[]) {
  let steps: IntraResult[] = [];
  const ratio = num('saturation-ratio');
  const maxP50 = num('saturation-p50-slots');
  let saturatedAt: number | null = null;
  const lowered: { offeredTxPerSec: number; finalizedTxPerSec: number | null; p50Slots: number | null }[] = [];
  let idleCpu: IdleCpu | null = null;
  let list = rates;
  for (let attempt = 0; ; attempt++) {
    steps = [];
    saturatedAt = null;
    for (const [i, rate] of list.entries()) {
      const st = await intraPhase(`sweep ${i + 1}/${list.length}: ${rate} tx/s`, net, env, rate, { duration: num('step-duration'), idle: idleCpu === null && i === 0 && attempt === 0 });
      idleCpu ??= st.idleCpu;
      steps.push(st);
      const fin = st.finalizedTxPerSec ?? 0;
      const p50 = st.latencySlots.p50 ?? Infinity;
      console.log(`[sweep] offered ${rate} → finalized ${fin} tx/s, p50 ${p50} slots`);
      if (fin < ratio * rate || p50 > maxP50) {
        saturatedAt = rate;
        break;
      }
    }
    if (!(saturatedAt !== null && steps.length === 1) || attempt >= LOWER_TRIES || list[0]! <= 1) break;
    lowered.push({ offeredTxPerSec: list[0]!, finalizedTxPerSec: steps[0]!.finalizedTxPerSec, p50Slots: steps[0]!.latencySlots.p50 });
    // A quarter of every rate, then the rates themselves (a short --rates list divided by 4 might
    // not reach saturation again), ascending: the sweep still stops at its first saturated step.
    list = [...new Set([...list.map((r) => Math.max(1, Math.round(r / LOWER_FACTOR))), ...list])].sort((a, b) => a - b);
    console.log(`[sweep] the first step was already saturated: restarting at ${list.join(', ')} tx/s`);
  }
  const best = steps.reduce((a, b) => ((b.finalizedTxPerSec ?? 0) > (a.finalizedTxPerSec ?? 0) ? b : a), steps[0]!);
  const saturationTxPerSec = best.finalizedTxPerSec ?? 0;
  let half: IntraResult | null = null;
  let third: IntraResult | null = null;
  if (bool('half') && saturationTxPerSec > 0) {
    half = await intraPhase('half-saturation', net, env, Math.max(1, Math.round(saturationTxPerSec / 2)), { duration: num('step-duration'), idle: false });
    // Admission control target: at a third of saturation, no submission is refused.
    third = await intraPhase('third-saturation', net, env, Math.max(1, Math.round(saturationTxPerSec / 3)), { duration: num('step-duration'), idle: false });
  }
  return {
    rule: `stop at the first step with finalized < ${ratio} × offered or p50 > ${maxP50} slots; if the first step is saturated, restart with every rate ÷ ${LOWER_FACTOR} added below (≤ ${LOWER_TRIES} times)`,
    /** First steps found already saturated, each followed by a restart with a quarter of the rates added below. */
    lowered,
    /** Did the (final) sweep's first step finalize ≥ the saturation ratio × offered? */
    firstStepBelowSaturation: !(saturatedAt !== null && steps.length === 1),
    /** Total CPU of the idle devnet before any load, in cores (and by role, and main threads). */
    idleCpu,
    saturated: saturatedAt !== null,
    saturatedAtOfferedTxPerSec: saturatedAt,
    saturationTxPerSec,
    saturationRatioToCeiling: r3(saturationTxPerSec / env.ceiling),
    steps,
    halfSaturation: half,
    thirdSaturation: third,
  };
}

/** A fresh full node joins shard 0 from an empty data dir and catches up by block-range sync (from one peer at a time). */
async function syncPhase(net: Net, env: Env) {
  const target = (await net.observers[0]!.status()).finalizedHeight;
  console.log(`\n[sync] a fresh full node of shard 0 catches up ${target} blocks…`);
  const t0 = performance.now();
  const p = await net.devnet.addNode({ role: 'full', shard: 0, name: 'bench-sync' });
  const tReady = performance.now();
  const c = net.devnet.client(p.name, { timeoutMs: 10_000 });
  const deadline = performance.now() + Math.max(60_000, target * 50);
  let height = 0;
  let tDone: number | null = null;
  while (performance.now() < deadline) {
    try {
      height = (await c.status()).finalizedHeight;
    } catch {
      // starting
    }
    if (height >= target) {
      tDone = performance.now();
      break;
    }
    await sleep(50);
  }
  let gauge: number | null = null;
  let synced: number | null = null;
  try {
    const text = await (await fetch(`${p.apiUrl.replace(/\/+$/, '')}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    gauge = Number(/^qnexus_sync_blocks_per_second\s+(\S+)$/m.exec(text)?.[1] ?? NaN);
    synced = Number(/^qnexus_sync_blocks_total\s+(\S+)$/m.exec(text)?.[1] ?? NaN);
  } catch {
    // reported as null
  }
  const stats = p.pid ? procStats(p.pid) : null;
  const secs = tDone !== null ? (tDone - tReady) / 1000 : null;
  const out = {
    targetHeight: target,
    reached: height,
    caughtUp: tDone !== null,
    startSeconds: r2((tReady - t0) / 1000),
    catchUpSeconds: secs !== null ? r2(secs) : null,
    /** Blocks ÷ time from the node's API answering to its finalized height reaching the target (connection set-up included). */
    blocksPerSec: secs ? r1(target / secs) : null,
    /** The node's own measure over its sync (qnexus_sync_blocks_per_second at the end). */
    nodeReportedBlocksPerSec: Number.isFinite(gauge) ? r1(gauge!) : null,
    blocksImportedBySync: Number.isFinite(synced) ? synced : null,
    peakRssMb: stats ? Math.round(stats.peakRssMb) : null,
    cpuSeconds: stats ? r2(stats.cpuSec) : null,
    slotMs: env.slotMs,
  };
  console.log(`[sync] ${out.caughtUp ? `caught up in ${out.catchUpSeconds} s: ${out.blocksPerSec} blocks/s (node: ${out.nodeReportedBlocksPerSec})` : `not caught up (${height}/${target})`}`);
  return out;
}

/** The optimizations, each switched off (or the backend switched) on an otherwise identical devnet. */
const VARIANTS: Record<string, { what: string; env: Record<string, string>; rateFactor?: number; backend?: string; keyed?: boolean }> = {
  baseline: { what: 'defaults: every optimization on', env: {} },
  keyed: { what: 'every transaction carries its public key (1,292 B more per ML-DSA-44 tx: the format before keyless)', env: {}, keyed: true },
  'no-verify-cache': { what: 'verify-once cache off (--verify-cache-size 0): blocks re-verify every tx signature', env: { QNEXUS_VERIFY_CACHE_SIZE: '0' } },
  'no-verify-pool': { what: 'tx signatures on the event loop (--verify-workers 0), no worker threads', env: { QNEXUS_VERIFY_WORKERS: '0' } },
  'tx-gossip-batch-1': { what: 'one transaction per gossip message (--tx-gossip-batch 1)', env: { QNEXUS_TX_GOSSIP_BATCH: '1' } },
  'tx-gossip-flush-20': { what: 'tx gossip batches flushed after 20 ms, the old window (--tx-gossip-flush-ms 20)', env: { QNEXUS_TX_GOSSIP_FLUSH_MS: '20' } },
  'no-admission-journal': {
    what: 'no durable admission (--admission-journal false): a 202 without the group-committed fsync, lost if the node crashes',
    env: { QNEXUS_ADMISSION_JOURNAL: 'false' },
  },
  pqclean: { what: 'native PQClean backend in every process (--crypto-backend pqclean)', env: { QNEXUS_CRYPTO_BACKEND: 'pqclean' }, rateFactor: 6, backend: 'pqclean' },
  noble: { what: 'pure-JS noble backend in every process (--crypto-backend noble)', env: { QNEXUS_CRYPTO_BACKEND: 'noble' }, backend: 'noble' },
  'malloc-arenas-2': { what: 'glibc malloc limited to 2 arenas (MALLOC_ARENA_MAX=2; its default is 8 per core)', env: { MALLOC_ARENA_MAX: '2' } },
  'empty-block-interval-1': {
    what: 'a block every slot and nil votes in rounds without a proposal (--empty-block-interval 1; the default 8 leaves quiet slots empty)',
    env: { QNEXUS_EMPTY_BLOCK_INTERVAL: '1' },
  },
};

async function variantPhase(name: string, shards: number, accountsPerShard: number, basePort: number, dir: string, env: Env, rate: number) {
  const v = VARIANTS[name]!;
  const net = await openNet(shards, accountsPerShard, basePort, dir, { env: v.env, ...(v.keyed !== undefined ? { keyed: v.keyed } : {}) });
  try {
    const r = await intraPhase(`variant ${name}`, net, env, rate, { duration: num('variant-duration'), idle: false });
    return { variant: name, what: v.what, env: v.env, ...r };
  } finally {
    await net.devnet.stop();
  }
}

// ---------------------------------------------------------------- main

function parseList(s: string | undefined, what: string): number[] {
  if (!s) return [];
  return s.split(',').map((x) => {
    const v = Number(x.trim());
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${what}: ${JSON.stringify(x)} is not a positive number`);
    return v;
  });
}

async function main(): Promise<void> {
  const shards = num('shards');
  const validators = num('validators');
  const fullNodes = num('full-nodes');
  const slotMs = num('slot-ms');
  const accountsPerShard = num('accounts');
  const basePort = num('base-port');
  const scheme = args.scheme!;
  const backend = args['crypto-backend']!;
  const cores = cpus().length;
  const startLoad = hostLoad();
  const jiffies0 = cpuJiffies();
  const cryptoMs = args.smoke ? 400 : 2000;
  const variantNames = args.variants === 'none' || !args.variants ? [] : args.variants.split(',').map((x) => x.trim());
  for (const v of variantNames) if (!VARIANTS[v]) throw new Error(`--variants: unknown variant ${JSON.stringify(v)} (known: ${Object.keys(VARIANTS).join(', ')})`);

  console.log(`host: load avg ${startLoad.loadavg1} / ${startLoad.loadavg5}, other node processes ${startLoad.otherNodeProcesses}`);
  console.log(`crypto backend: ${backend}${requestedBackend === 'auto' ? ' (auto: pqclean where it loads, else noble)' : ''}`);
  console.log(`measuring ${scheme} (${backend}) on one core over 4 keys × 8 messages…`);
  const crypto = measureCrypto(scheme, backend, cryptoMs);
  // The other backend's ceiling too, when a variant uses it (native ÷ JS in the same run).
  const otherBackends: Record<string, { verifyPerSec: number; signPerSec: number } | { error: string }> = {};
  for (const v of variantNames) {
    const b = VARIANTS[v]!.backend;
    if (!b || b === backend || otherBackends[b]) continue;
    try {
      otherBackends[b] = measureCrypto(scheme, b, cryptoMs);
    } catch (e) {
      otherBackends[b] = { error: String((e as Error).message).split('\n').find((l) => /CRYPTO|unavailable|Error/.test(l)) ?? 'failed' };
    }
  }
  const verifiers = validators + fullNodes;
  // Each tx is verified by the V+F nodes of its own shard only, but all S·(V+F) processes share
  // this machine's cores: so the whole network's ceiling is cores × verify/s ÷ (V+F), whatever S.
  const ceiling = (cores * crypto.verifyPerSec) / verifiers;
  const env: Env = { cores, crypto, ceiling, verifiers, slotMs, duration: num('duration') };
  console.log(
    `verify ${crypto.verifyPerSec.toFixed(0)}/s, sign ${crypto.signPerSec.toFixed(0)}/s per core; ceiling ${ceiling.toFixed(0)} tx/s for the whole network ` +
      `(${cores} cores × verify/s ÷ ${verifiers} nodes verifying each tx; every shard's nodes share these cores)`,
  );
  for (const [b, c] of Object.entries(otherBackends)) console.log(`${b}: ${'error' in c ? c.error : `verify ${c.verifyPerSec.toFixed(0)}/s, sign ${c.signPerSec.toFixed(0)}/s per core`}`);
  const rates = args.rates ? parseList(args.rates, '--rates') : parseList(args.sweep, '--sweep').map((f) => Math.max(1, Math.round(f * ceiling)));
  console.log(`sweep: ${rates.join(', ')} tx/s, ${args['step-duration']} s each`);
  const xrate = num('xshard-rate');
  const fixedBrate = args['mix-intra-rate'] !== undefined ? num('mix-intra-rate') : undefined;

  const dir = mkdtempSync(join(tmpdir(), 'qnexus-bench-'));
  let sweep: Awaited<ReturnType<typeof sweepPhase>> | undefined;
  const mixes: Awaited<ReturnType<typeof mixPhase>>[] = [];
  let mixBackground: { txPerSec: number; rule: string } | null = null;
  let sync: Awaited<ReturnType<typeof syncPhase>> | null = null;
  const variants: Awaited<ReturnType<typeof variantPhase>>[] = [];
  const skipped: Record<string, string> = {};
  let variantRate: number | null = null;
  let idleDevnet: IdleDevnet | null = null;
  try {
    const net = await openNet(shards, accountsPerShard, basePort, join(dir, 'main'));
    try {
      sweep = await sweepPhase(net, env, rates);
      if (shards > 1 && xrate > 0) {
        // First the cross-shard pipeline alone (its latency without contention), then the mix.
        const brate = fixedBrate ?? Math.round(sweep.saturationTxPerSec * num('mix-intra-factor'));
        mixBackground = { txPerSec: brate, rule: fixedBrate !== undefined ? '--mix-intra-rate' : `${args['mix-intra-factor']} × the sweep's saturation (${sweep.saturationTxPerSec} tx/s)` };
        if (bool('xshard-alone') || brate === 0) mixes.push(await mixPhase('xshard-only', net, env, xrate, 0));
        if (brate > 0) mixes.push(await mixPhase('xshard-mix', net, env, xrate, brate));
      }
      if (bool('sync')) sync = await syncPhase(net, env);
    } finally {
      await net.devnet.stop();
    }
    // Each variant on a fresh devnet (same topology, same fixed offered rate), one after another.
    variantRate = args['variant-rate'] ? num('variant-rate') : Math.max(1, Math.round(num('variant-rate-factor') * (sweep.saturationTxPerSec || rates[rates.length - 1]!)));
    for (const [i, v] of variantNames.entries()) {
      const b = VARIANTS[v]!.backend;
      if (b && otherBackends[b] && 'error' in otherBackends[b]!) {
        skipped[v] = `backend ${b} unavailable: ${(otherBackends[b] as { error: string }).error}`;
        console.log(`\n[variant ${v}] skipped: ${skipped[v]}`);
        continue;
      }
      const rate = Math.round(variantRate * (VARIANTS[v]!.rateFactor ?? 1));
      variants.push(await variantPhase(v, shards, accountsPerShard, basePort + 200 * (1 + (i % 2)), join(dir, `variant-${v}`), env, rate));
    }
    if (bool('idle-devnet')) idleDevnet = await idleDevnetPhase(basePort + 800, join(dir, 'idle'));
  } finally {
    // Debug or info logs are what such a run is for (e.g. bench/round-timings.ts): kept.
    if (logLevel === 'warn' || logLevel === 'error') rmSync(dir, { recursive: true, force: true });
    else console.log(`\ndevnet directories and their --log-level ${logLevel} logs kept in ${dir}`);
  }

  // Hardhat's node on the sweep's offered rates, once every devnet above is gone (same cores).
  // Hardhat gets the sweep's rates, then higher ones until it saturates too (it stops at its first
  // saturated step): a ratio at a rate that saturated only us would say nothing about its ceiling.
  const hardhatRates = (rs: number[]) => {
    const top = Math.max(...rs);
    return [...rs, ...[1.5, 2, 3, 4, 6].map((f) => Math.round(top * f))];
  };
  const hardhat = args['with-hardhat'] && sweep ? await runHardhat(hardhatRates(sweep.steps.map((x) => x.offeredTxPerSec)), num('step-duration')) : null;

  // The DeFi workloads (bench/defi.ts) once every devnet above is gone, in a child of their own.
  const defi = args.defi !== undefined ? bool('defi') : !args.smoke;
  const defiFile = defi ? await runDefi(shards, basePort + 600) : null;

  // Again once the devnets are gone: how much the host's own speed drifted during the run.
  const cryptoEnd = measureCrypto(scheme, backend, cryptoMs);
  const jiffies1 = cpuJiffies();
  const allPhases: { name: string; processes: ReturnType<typeof processFigures> }[] = [...(sweep?.steps ?? []), ...(sweep?.halfSaturation ? [sweep.halfSaturation] : []), ...mixes, ...variants];
  const nodeRss = allPhases.flatMap((ph) => ph.processes.filter((p) => p.role !== 'beacon').map((p) => p.peakRssMb ?? 0));
  const beaconRss = allPhases.flatMap((ph) => ph.processes.filter((p) => p.role === 'beacon').map((p) => p.peakRssMb ?? 0));
  const base = variants.find((v) => v.variant === (backend === 'noble' ? 'baseline' : 'noble'));
  const native = variants.find((v) => v.variant === (backend === 'pqclean' ? 'baseline' : 'pqclean'));
  const half = sweep?.halfSaturation ?? null;
  const third = sweep?.thirdSaturation ?? null;
  const target = (value: number | null | undefined, goal: number, higherIsBetter: boolean) => ({
    value: value ?? null,
    target: goal,
    met: value === null || value === undefined || !Number.isFinite(value) ? null : higherIsBetter ? value >= goal : value <= goal,
  });
  const satStep = sweep?.steps.length ? sweep.steps.reduce((a, b) => ((b.finalizedTxPerSec ?? 0) > (a.finalizedTxPerSec ?? 0) ? b : a)) : null;
  const summary = summaryOf(sweep ?? null, hardhat && !('error' in hardhat) ? hardhat : null);
  const date = new Date().toISOString();
  const stamp = date.replace(/[:.]/g, '-');
  const result = {
    benchVersion: 3,
    date,
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    smoke: !!args.smoke,
    machine: { cores, cpu: cpus()[0]?.model ?? 'unknown', node: process.version },
    config: { shards, validators, fullNodes, slotMs, accountsPerShard, scheme, backend, backendRequested: requestedBackend, stepDurationSec: num('step-duration'), phaseDurationSec: num('duration'), variantDurationSec: num('variant-duration') },
    hostLoadAtStart: startLoad,
    /** Per core, median over keys × messages (the ceiling uses the verify median); spread min / median / max. */
    crypto: {
      scheme,
      backend,
      verifyPerSecPerCore: Math.round(crypto.verifyPerSec),
      signPerSecPerCore: Math.round(crypto.signPerSec),
      keys: crypto.keys,
      messages: crypto.messages,
      verifySpread: crypto.verify,
      signSpread: crypto.sign,
    },
    /** The same measurement after the last devnet stopped (not used for the ceiling: a drift check). */
    cryptoAtEnd: { verifyPerSecPerCore: Math.round(cryptoEnd.verifyPerSec), signPerSecPerCore: Math.round(cryptoEnd.signPerSec) },
    otherBackends: Object.fromEntries(Object.entries(otherBackends).map(([b, c]) => [b, 'error' in c ? c : { verifyPerSecPerCore: Math.round(c.verifyPerSec), signPerSecPerCore: Math.round(c.signPerSec) }])),
    cpuStealPercent: r2((100 * (jiffies1.steal - jiffies0.steal)) / Math.max(1, jiffies1.total - jiffies0.total)),
    ceilingTxPerSec: Math.round(ceiling),
    ceilingNote: `cores × verify/s ÷ (validators + full nodes per shard) = ${cores} × ${Math.round(crypto.verifyPerSec)} ÷ ${verifiers}: each tx is verified by the ${verifiers} nodes of its shard, and all shards share this machine's ${cores} cores, so the ceiling is the same for any number of shards`,
    sweep: sweep ?? null,
    mixBackground,
    xshard: mixes,
    sync,
    variantRateTxPerSec: variantRate,
    variants,
    variantsSkipped: skipped,
    /** The default devnet idle on its own after a warm-up (null: --idle-devnet false). */
    idleDevnet,
    targets: {
      intraFinalizedOverCeiling: target(sweep?.saturationRatioToCeiling, 0.5, true),
      p50SlotsAtHalfSaturation: target(half?.latencySlots.p50, 2, false),
      firstAttemptRefusedAtThirdSaturation: target(third?.firstAttemptRefusedShare, 0, false),
      ...Object.fromEntries(mixes.map((m) => [`${m.name}P50Slots`, target(m.xfer.latencyToCreditedSlots.p50, 6, false)])),
      maxNodePeakRssMb: target(nodeRss.length ? Math.max(...nodeRss) : null, 200, false),
      syncBlocksPerSec: target(sync?.blocksPerSec, 1000, true),
      nativeOverJsFinalized: target(base && native && base.finalizedTxPerSec ? r2((native.finalizedTxPerSec ?? 0) / base.finalizedTxPerSec) : null, 5, true),
      // Issue 18: at the saturation step (the sweep's best), per validator; idle devnet; Hardhat in the same run.
      validatorMainThreadMsPerTxAtSaturation: target(satStep?.cpuPerTxByRole.validator?.mainMsPerTx.avg, 0.3, false),
      // The default devnet's 11 processes after a warm-up (--idle-devnet); else the sweep's 5-s figure.
      idleDevnetCores: target(idleDevnet?.cores ?? sweep?.idleCpu?.cores, 0.25, false),
      oursOverHardhatAtSaturation: target(summary.bestRatioOverHardhat, 1, true),
    },
    maxBeaconPeakRssMb: beaconRss.length ? Math.max(...beaconRss) : null,
    /** The issue-18 figures per sweep step (and the half / third saturation steps): see summaryOf. */
    summary,
    /** Hardhat's baseline in this invocation (--with-hardhat): its result file, or why it is missing. */
    hardhat: hardhat && { ...('error' in hardhat ? { error: hardhat.error } : { file: hardhat.file, version: hardhat.version, mode: hardhat.mode, steps: hardhat.steps }) },
    plot: `bench-${stamp}.svg`,
    /** bench/defi.ts's result file of this run (null: --defi false, or it failed: see its output above). */
    defi: defiFile,
  };
  mkdirSync(args.out!, { recursive: true });
  const file = join(args.out!, `bench-${stamp}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  const steps = sweep?.steps ?? [];
  const svg = sweepSvg({
    title: `Quantum Nexus: ${shards} shard(s) × ${validators} validators${fullNodes ? ` + ${fullNodes} full` : ''}, ${scheme} (${backend}), ${slotMs} ms slots`,
    subtitle: `${date.slice(0, 16)}Z · ${cores} cores · verify ${result.crypto.verifyPerSecPerCore}/s per core · ceiling ${result.ceilingTxPerSec} tx/s · saturation ${sweep?.saturationTxPerSec ?? '–'} tx/s (${sweep?.saturationRatioToCeiling ?? '–'} of ceiling)`,
    points: steps.map((x) => ({ offered: x.offeredTxPerSec, finalized: x.finalizedTxPerSec, p50Slots: x.latencySlots.p50, p95Slots: x.latencySlots.p95, p99Slots: x.latencySlots.p99 })),
    refs: [{ label: `signature ceiling ${result.ceilingTxPerSec} tx/s`, y: result.ceilingTxPerSec }],
    marks: [
      ...(half?.finalizedTxPerSec ? [{ label: 'half-saturation', offered: half.offeredTxPerSec, finalized: half.finalizedTxPerSec }] : []),
      ...variants.filter((v) => v.finalizedTxPerSec !== null).map((v) => ({ label: v.variant, offered: v.offeredTxPerSec, finalized: v.finalizedTxPerSec! })),
      ...summary.steps.filter((x) => x.hardhatTxPerSec !== null).map((x) => ({ label: 'hardhat', offered: x.offeredTxPerSec, finalized: x.hardhatTxPerSec! })),
    ],
    latencyMarks: half?.latencySlots.p50 ? [{ label: 'half-saturation', offered: half.offeredTxPerSec, p50Slots: half.latencySlots.p50 }] : [],
  });
  writeFileSync(join(args.out!, result.plot), svg);

  // ------------------------------------------------------------ tables
  const table = (head: string[], rows: (string | number | null | undefined)[][]) => {
    const cells = [head, ...rows.map((r) => r.map((c) => (c === null || c === undefined ? '–' : String(c))))];
    const w = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
    for (const [n, r] of cells.entries()) {
      console.log(r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  '));
      if (n === 0) console.log(w.map((x) => '-'.repeat(x)).join('  '));
    }
  };
  const maxOf = (ps: ReturnType<typeof processFigures>, f: (p: ReturnType<typeof processFigures>[number]) => number | null, role?: string) =>
    Math.max(...ps.filter((p) => (role ? p.role === role : p.role !== 'beacon')).map((p) => f(p) ?? 0));
  const intraRow = (x: IntraResult, label: string) => [
    label,
    x.offeredTxPerSec,
    x.finalizedTxPerSec,
    x.ratioToCeiling,
    `${x.latencySlots.p50} / ${x.latencySlots.p95} / ${x.latencySlots.p99}`,
    `${x.latencyMs.p50} / ${x.latencyMs.p95} / ${x.latencyMs.p99}`,
    `${x.admission.postMs.p50} / ${x.admission.postMs.p99}`,
    `${x.avgTxsPerBlock} (${x.perShard.reduce((a, sh) => a + sh.slotsWithoutBlock, 0)})`,
    x.wire.bytesPerFinalizedTx,
    `${maxOf(x.processes, (p) => p.cpuPercent)}% / ${maxOf(x.processes, (p) => p.cpuPercent, 'beacon')}%`,
    `${maxOf(x.processes, (p) => p.peakRssMb)} / ${maxOf(x.processes, (p) => p.peakRssMb, 'beacon')}`,
    x.firstAttemptRefusedShare ? `${(100 * x.firstAttemptRefusedShare).toFixed(1)}% ${JSON.stringify(x.busyAnswers)}` : '0',
    Object.keys(x.rejected).length ? JSON.stringify(x.rejected) : '',
  ];
  const intraHead = ['step', 'offered', 'finalized tx/s', '÷ ceiling', 'p50/p95/p99 slots', 'p50/p95/p99 ms', 'POST→202 p50/p99 ms', 'txs/block (slots w/o)', 'wire B/tx', 'CPU max node/beacon', 'peak RSS MB node/beacon', 'busy (first tries)', 'rejected'];
  console.log('');
  console.log(
    `${scheme} (${backend}) per core: verify ${result.crypto.verifyPerSecPerCore}/s, sign ${result.crypto.signPerSecPerCore}/s ` +
      `(at the end: verify ${result.cryptoAtEnd.verifyPerSecPerCore}/s, sign ${result.cryptoAtEnd.signPerSecPerCore}/s); CPU steal ${result.cpuStealPercent}%`,
  );
  for (const [b, c] of Object.entries(result.otherBackends)) console.log(`${scheme} (${b}) per core: ${'error' in c ? c.error : `verify ${c.verifyPerSecPerCore}/s, sign ${c.signPerSecPerCore}/s`}`);
  console.log(`signature ceiling ${result.ceilingTxPerSec} tx/s = ${cores} cores × verify/s ÷ ${verifiers} nodes per shard\n`);
  if (sweep) {
    table(intraHead, [...steps.map((x, i) => intraRow(x, `sweep ${i + 1}`)), ...(half ? [intraRow(half, 'half-saturation')] : []), ...(third ? [intraRow(third, 'third-saturation')] : [])]);
    console.log(`\nsaturation: ${sweep.saturationTxPerSec} tx/s = ${sweep.saturationRatioToCeiling} of the ceiling (${sweep.saturated ? `saturated at ${sweep.saturatedAtOfferedTxPerSec} offered` : 'not saturated: extend --sweep'})`);
  }
  if (mixes.length) {
    const col = (f: (m: (typeof mixes)[number]) => string | number | null) => mixes.map(f);
    console.log('');
    table(
      ['cross-shard', ...mixes.map((m) => m.name)],
      [
        ['offered xtransfers/s + background tx/s', ...col((m) => `${m.xfer.offeredPerSec} + ${m.background.offeredPerSec}`)],
        ['accepted / credited', ...col((m) => `${m.xfer.accepted} / ${m.xfer.credited}`)],
        ['submit→credited p50/p95/p99 slots', ...col((m) => `${m.xfer.latencyToCreditedSlots.p50} / ${m.xfer.latencyToCreditedSlots.p95} / ${m.xfer.latencyToCreditedSlots.p99}`)],
        ['submit→credited p50/p95/p99 ms', ...col((m) => `${m.xfer.latencyToCreditedMs.p50} / ${m.xfer.latencyToCreditedMs.p95} / ${m.xfer.latencyToCreditedMs.p99}`)],
        ['beacon outcome', ...col((m) => JSON.stringify(m.xfer.beacon.byStatus))],
        ['background finalized, p50/p95 slots', ...col((m) => (m.background.accepted ? `${m.background.finalized}/${m.background.accepted}, ${m.background.latencySlots.p50} / ${m.background.latencySlots.p95}` : '–'))],
        ['wire bytes per user tx', ...col((m) => m.wire.bytesPerUserTx)],
        ['CPU% max node / beacon', ...col((m) => `${maxOf(m.processes, (p) => p.cpuPercent)} / ${maxOf(m.processes, (p) => p.cpuPercent, 'beacon')}`)],
      ],
    );
  }
  if (sync) console.log(`\nsync: ${sync.caughtUp ? `${sync.targetHeight} blocks in ${sync.catchUpSeconds} s = ${sync.blocksPerSec} blocks/s (node's own measure ${sync.nodeReportedBlocksPerSec}), peak RSS ${sync.peakRssMb} MB` : `did not catch up (${sync.reached}/${sync.targetHeight})`}`);
  if (variants.length) {
    console.log(`\nvariants (each a fresh devnet; offered ${variantRate} tx/s × factor, ${args['variant-duration']} s):`);
    table(['variant', ...intraHead.slice(1)], variants.map((v) => intraRow(v, v.variant)));
    for (const v of variants) console.log(`  ${v.variant}: ${v.what}`);
    const withJ = variants.find((v) => v.variant === 'baseline');
    const noJ = variants.find((v) => v.variant === 'no-admission-journal');
    if (withJ && noJ) {
      const a = withJ.admission;
      console.log(
        `  admission journal cost: finalized ${withJ.finalizedTxPerSec} vs ${noJ.finalizedTxPerSec} tx/s without it; POST→202 p50 ${a.postMs.p50} vs ${noJ.admission.postMs.p50} ms, ` +
          `p99 ${a.postMs.p99} vs ${noJ.admission.postMs.p99} ms; ${a.fsyncsPerAcceptedTx} fsyncs per accepted tx (${a.entriesPerGroup} per group)`,
      );
    }
  }
  for (const [v, why] of Object.entries(skipped)) console.log(`  ${v}: skipped (${why})`);
  console.log('');
  table(
    ['target', 'value', 'goal', 'met'],
    Object.entries(result.targets).map(([k, t]) => [k, t.value, `${/^(intra|sync|native|ours)/.test(k) ? '≥' : '≤'} ${t.target}`, t.met === null ? '–' : t.met ? 'yes' : 'no']),
  );
  printSummary(summary, result.crypto, table);
  if (idleDevnet) {
    console.log(
      `\nidle default devnet (${idleDevnet.processes} processes, after ${idleDevnet.warmupSec} s of warm-up, over ${idleDevnet.windowSec} s): ` +
        `${idleDevnet.cores} cores (main threads ${idleDevnet.mainThreadCores}) ${JSON.stringify(idleDevnet.coresByRole)}`,
    );
  }
  if (hardhat && 'error' in hardhat) console.log(`\nhardhat: no figures (${hardhat.error})`);
  console.log(`\nwrote ${file} and ${join(args.out!, result.plot)}`);
}

interface HardhatRun {
  file: string;
  version: string | null;
  mode: string | null;
  /** Per offered rate: Hardhat's transfers/s by the devnet's counting rule (drain included). */
  steps: { offeredRate: number; perSec: number | null; inWindowPerSec: number | null; latencyMsP50: number | null; nodeCpuPct: number | null }[];
}

/**
 * bench/hardhat/bench.mjs (`npx hardhat node`, default logging to bench/hardhat/logs/) on the
 * sweep's offered rates, `duration` s each, every rate run (--stop-ratio 0), counted as the devnet
 * is (--drain: every offered transfer, drain included, ÷ max(window, last reply − t0 − p10)).
 */
async function runHardhat(rates: number[], duration: number): Promise<HardhatRun | { error: string }> {
  // Absolute: the child runs in bench/hardhat.
  const jsonOut = resolvePath(args.out!, `hardhat-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  const maxSeconds = Math.min(3600, 120 + rates.length * (3 * duration + 30));
  const argv = ['bench.mjs', '--rates', rates.join(','), '--duration', String(duration), '--drain', '--stop-ratio', '0.9', '--wait-idle', '30', '--max-seconds', String(maxSeconds), '--json-out', jsonOut];
  console.log(`\n[hardhat] (cd ${HARDHAT_DIR} && node ${argv.join(' ')})`);
  const code = await new Promise<number | null>((resolve) => {
    const c = spawn(process.execPath, argv, { cwd: HARDHAT_DIR, stdio: ['ignore', 'pipe', 'inherit'] });
    // Its output passes through, each complete line prefixed.
    let pending = '';
    c.stdout.on('data', (b: Buffer) => {
      const lines = (pending + b.toString()).split('\n');
      pending = lines.pop()!;
      for (const l of lines) console.log(`[hardhat] ${l}`);
    });
    c.on('close', (code) => {
      if (pending) console.log(`[hardhat] ${pending}`);
      resolve(code);
    });
  });
  if (code !== 0 || !existsSync(jsonOut)) return { error: `bench/hardhat/bench.mjs exited ${code}${existsSync(jsonOut) ? '' : ', no result file'}` };
  type HhStep = { offeredRate: number; minedPerSec: number; nodeCpuPct: number; drainRule: { minedPerSec: number; latencyMs: { p50: number } } | null };
  const r = JSON.parse(readFileSync(jsonOut, 'utf8')) as { versions?: { hardhat?: string }; mode?: string; steps: HhStep[] };
  return {
    file: jsonOut,
    version: r.versions?.hardhat ?? null,
    mode: r.mode ?? null,
    steps: r.steps.map((x) => ({ offeredRate: x.offeredRate, perSec: x.drainRule?.minedPerSec ?? null, inWindowPerSec: x.minedPerSec, latencyMsP50: x.drainRule?.latencyMs.p50 ?? null, nodeCpuPct: x.nodeCpuPct })),
  };
}

const COUNTING_RULE =
  'both sides: every transaction offered in the step\'s window (open loop, at its scheduled time), counted when final (devnet: in a finalized block; Hardhat: mined, its reply), ' +
  'drain included (bounded), ÷ max(window, last final − first offer − p10 latency)';

/** The issue-18 figures, one row per sweep step (Hardhat matched by offered rate), then the half and third saturation steps. */
function summaryOf(sweep: Awaited<ReturnType<typeof sweepPhase>> | null, hh: HardhatRun | null) {
  const row = (label: string, x: IntraResult) => {
    const h = hh?.steps.find((s) => s.offeredRate === x.offeredTxPerSec) ?? null;
    const hps = h?.perSec ?? null;
    return {
      step: label,
      offeredTxPerSec: x.offeredTxPerSec,
      finalizedTxPerSec: x.finalizedTxPerSec,
      hardhatTxPerSec: hps,
      oursOverHardhat: hps && x.finalizedTxPerSec !== null ? r2(x.finalizedTxPerSec / hps) : null,
      /** Secondary: finalized ÷ the signature ceiling (3 significant digits: the ceiling is far above). */
      ratioToCeiling: x.finalizedTxPerSec !== null && x.ceilingTxPerSec > 0 ? Number((x.finalizedTxPerSec / x.ceilingTxPerSec).toPrecision(3)) : null,
      cpuPerTxByRole: x.cpuPerTxByRole,
      loadGenerator: x.loadGenerator,
      refusals: x.refusals,
      firstAttemptRefusedShare: x.firstAttemptRefusedShare,
      wireBytesPerTx: x.wire.bytesPerFinalizedTx,
    };
  };
  const steps = sweep ? sweep.steps.map((x, i) => row(`sweep ${i + 1}`, x)) : [];
  const extra = sweep ? [...(sweep.halfSaturation ? [row('half-saturation', sweep.halfSaturation)] : []), ...(sweep.thirdSaturation ? [row('third-saturation', sweep.thirdSaturation)] : [])] : [];
  const ratios = steps.map((x) => x.oursOverHardhat).filter((x): x is number => x !== null);
  const hhBest = hh ? Math.max(0, ...hh.steps.map((x) => x.perSec ?? 0)) : 0;
  const ourBest = Math.max(0, ...steps.map((x) => x.finalizedTxPerSec ?? 0));
  return {
    countingRule: COUNTING_RULE,
    idleCores: sweep?.idleCpu?.cores ?? null,
    idleMainThreadCores: sweep?.idleCpu?.mainThreadCores ?? null,
    idleCoresByRole: sweep?.idleCpu?.coresByRole ?? null,
    gcAvailable: sweep ? sweep.steps.some((x) => x.gcAvailable) : false,
    /** Best finalized tx/s ÷ Hardhat's best, Hardhat offered the sweep's rates and higher ones until it saturated (null without --with-hardhat). */
    bestRatioOverHardhat: hhBest > 0 ? r2(ourBest / hhBest) : null,
    hardhatBestTxPerSec: hh ? hhBest : null,
    stepRatiosOverHardhat: ratios,
    steps,
    extra,
  };
}

/** The summary table: the issue-18 columns per step. */
function printSummary(
  sm: ReturnType<typeof summaryOf>,
  crypto: { verifySpread: { min: number; median: number; max: number }; signSpread: { min: number; median: number; max: number }; keys: number; messages: number },
  table: (head: string[], rows: (string | number | null | undefined)[][]) => void,
): void {
  const am = (x: { avg: number | null; max: number | null } | undefined) => (x && x.avg !== null ? `${x.avg} / ${x.max}` : '–');
  const one = (x: { avg: number | null } | undefined) => (x && x.avg !== null ? String(x.avg) : '–');
  const refusals = (r: { busy: Record<string, number>; rejected: Record<string, number> }) =>
    Object.entries({ ...r.busy, ...Object.fromEntries(Object.entries(r.rejected).map(([k, v]) => [`${k}(final)`, v])) })
      .map(([k, v]) => `${k}:${v}`)
      .join(' ') || '0';
  console.log(`\nsummary (issue 18). Counting rule: ${sm.countingRule}.`);
  console.log(
    `idle devnet before load: ${sm.idleCores ?? '–'} cores (main threads ${sm.idleMainThreadCores ?? '–'}) ${sm.idleCoresByRole ? JSON.stringify(sm.idleCoresByRole) : ''}; ` +
      `crypto per core over ${crypto.keys} keys × ${crypto.messages} messages, min/median/max: verify ${crypto.verifySpread.min}/${crypto.verifySpread.median}/${crypto.verifySpread.max}, sign ${crypto.signSpread.min}/${crypto.signSpread.median}/${crypto.signSpread.max}` +
      (sm.gcAvailable ? '' : '; GC: unavailable (no qnexus_nodejs_gc_duration_seconds in /metrics)'),
  );
  console.log('CPU columns: ms per finalized tx over the step (offer + drain), per process; validator avg / max over validators; full node and beacon avg. main = event-loop thread, total = all threads.\n');
  table(
    ['step', 'offered', 'finalized tx/s', 'hardhat tx/s', 'ours/hardhat', '÷ ceiling', 'val main ms/tx', 'val total ms/tx', 'full main/total', 'beacon main/total', 'GC ms/tx val/beacon', 'loadgen cores (ms/tx)', 'refusals by code', 'wire B/tx'],
    [...sm.steps, ...sm.extra].map((x) => {
      const c = x.cpuPerTxByRole;
      return [
        x.step,
        x.offeredTxPerSec,
        x.finalizedTxPerSec,
        x.hardhatTxPerSec,
        x.oursOverHardhat,
        x.ratioToCeiling,
        am(c.validator?.mainMsPerTx),
        am(c.validator?.totalMsPerTx),
        c.full ? `${one(c.full.mainMsPerTx)} / ${one(c.full.totalMsPerTx)}` : '–',
        c.beacon ? `${one(c.beacon.mainMsPerTx)} / ${one(c.beacon.totalMsPerTx)}` : '–',
        `${one(c.validator?.gcMsPerTx)} / ${one(c.beacon?.gcMsPerTx)}`,
        `${x.loadGenerator.cores} (${x.loadGenerator.msPerFinalizedTx ?? '–'})`,
        refusals(x.refusals),
        x.wireBytesPerTx,
      ];
    }),
  );
  if (sm.bestRatioOverHardhat !== null) console.log(`\nbest finalized tx/s ÷ Hardhat's best (${sm.hardhatBestTxPerSec} tx/s; it was offered the sweep's rates, then higher ones until it saturated): ${sm.bestRatioOverHardhat}`);
}

/**
 * Run bench/defi.ts with this run's topology (its output passes through); the path of the result
 * file it wrote, or null if it failed (the transfer results above still stand).
 */
async function runDefi(shards: number, basePort: number): Promise<string | null> {
  const pass = ['validators', 'slot-ms', 'scheme', 'crypto-backend', 'xfer-timeout-slots', 'out'] as const;
  const argv = ['--import', 'tsx', fileURLToPath(new URL('./defi.ts', import.meta.url)), '--shards', String(Math.max(2, shards)), '--base-port', String(basePort)];
  for (const k of pass) argv.push(`--${k}`, String(args[k]));
  if (args.smoke) argv.push('--smoke');
  console.log(`\n[defi] node ${argv.slice(2).join(' ')}`);
  let last: string | null = null;
  const code = await new Promise<number | null>((resolve) => {
    const c = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    c.stdout.on('data', (b: Buffer) => {
      process.stdout.write(b);
      const m = /wrote (\S+defi-[^\s]+\.json)/.exec(b.toString());
      if (m) last = m[1]!;
    });
    c.on('close', resolve);
  });
  if (code !== 0) console.log(`[defi] failed (exit ${code}); the DeFi figures are missing from this run`);
  return code === 0 ? last : null;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
