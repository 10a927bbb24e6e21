// npm run bench -- [--shards 2] [--validators 4] [--full-nodes 0] [--accounts 32] [--slot-ms 1000]
//                   [--duration 30] [--rate <tx/s> | --rate-factor 0.6] [--compare-1shard true]
//                   [--xshard-rate 10] [--xshard-alone true] [--mix-intra-rate <tx/s> | --mix-intra-factor 0.25]
//                   [--xfer-timeout-slots 20] [--base-port 27000] [--out bench/results]
//
// Starts its own devnets (real processes: the beacon and every shard node), measures this
// machine's ML-DSA ceiling in the same run, then, in one invocation:
//   1. intra-1shard  (unless --compare-1shard false): 1 shard, open-loop transfers;
//   2. intra-Nshard: --shards shards, the same total offered rate split over the shards, every
//      account sending to an account of its own shard through a node of its shard;
//   3. xshard-only (unless --xshard-alone false): on the same N-shard devnet once (2) has
//      drained, open-loop cross-shard transfers (xtransfer) at --xshard-rate, spread evenly
//      over the directions, nothing else; measures submit→credited and where the time goes;
//   4. xshard-mix: the same again over a moderate intra-shard background: --mix-intra-rate
//      tx/s, default --mix-intra-factor (0.25) × the finalized tx/s phase 2 reached (its
//      saturation throughput on this machine, measured in the same run).
// All transactions are signed before timing. Figures are only comparable within one run:
// report ratios, not absolutes.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { startDevnet, unlockKeystoreFile, type Devnet } from '@qnexus/cli';
import type { QnexusClient, TxInfo } from '@qnexus/sdk';

const { values: args } = parseArgs({
  options: {
    shards: { type: 'string', default: '2' },
    validators: { type: 'string', default: '4' },
    'full-nodes': { type: 'string', default: '0' },
    duration: { type: 'string', default: '30' },
    rate: { type: 'string' },
    'rate-factor': { type: 'string', default: '0.6' },
    accounts: { type: 'string', default: '32' },
    'slot-ms': { type: 'string', default: '1000' },
    'xshard-rate': { type: 'string', default: '10' },
    'mix-intra-rate': { type: 'string' },
    'mix-intra-factor': { type: 'string', default: '0.25' },
    'compare-1shard': { type: 'string', default: 'true' },
    'xshard-alone': { type: 'string', default: 'true' },
    'xfer-timeout-slots': { type: 'string', default: '20' },
    out: { type: 'string', default: 'bench/results' },
    'base-port': { type: 'string', default: '27000' },
  },
});

const num = (k: keyof typeof args): number => {
  const v = Number(args[k]);
  if (!Number.isFinite(v)) throw new Error(`--${k} must be a number, got ${JSON.stringify(args[k])}`);
  return v;
};
const bool = (k: keyof typeof args): boolean => !/^(false|0|no|off)$/i.test(String(args[k]));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => (xs.length ? xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]! : NaN);
const r1 = (x: number) => (Number.isFinite(x) ? Number(x.toFixed(1)) : null);
const r2 = (x: number) => (Number.isFinite(x) ? Number(x.toFixed(2)) : null);
const r3 = (x: number) => (Number.isFinite(x) ? Number(x.toFixed(3)) : null);
const rnd = (x: number) => (Number.isFinite(x) ? Math.round(x) : null);

/**
 * Single-core ML-DSA-44 rates, measured in a plain `node` child (the nodes run
 * without the tsx loader, which slows this code here) after a JIT warm-up.
 */
function measureCrypto(ms = 2000): { verifyPerSec: number; signPerSec: number } {
  const script = `
    import { getBackend, randomSeed } from '@qnexus/crypto';
    const b = getBackend('ml-dsa-44');
    const kp = b.keygen(randomSeed());
    const msg = new Uint8Array(200).fill(7);
    const sig = b.sign(kp.secretKey, msg);
    const rate = (f, ms) => { let n = 0; const t0 = performance.now(); while (performance.now() - t0 < ms) { f(); n++; } return (n * 1000) / (performance.now() - t0); };
    rate(() => b.verify(kp.publicKey, msg, sig), 1000);
    rate(() => b.sign(kp.secretKey, msg), 500);
    const verifyPerSec = rate(() => b.verify(kp.publicKey, msg, sig), ${ms});
    const signPerSec = rate(() => b.sign(kp.secretKey, msg), ${ms / 2});
    console.log(JSON.stringify({ verifyPerSec, signPerSec }));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!) as { verifyPerSec: number; signPerSec: number };
}

type Kind = 'transfer' | 'xtransfer';
interface TxSpec {
  kind: Kind;
  to: string;
  nonce: number;
}
interface SignJob {
  chainId: string;
  shardCount: number;
  publicKey: Uint8Array;
  secretKey: Uint8Array;
  txs: TxSpec[];
}
interface Signed {
  raw: Uint8Array;
  hash: string;
}

/** Sign all transactions up front on every core (signing is not what we measure). */
async function presign(jobs: SignJob[]): Promise<Signed[][]> {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    import('@qnexus/sdk').then(({ buildTransfer, buildXTransfer }) => {
      const out = workerData.jobs.map((j) => j.txs.map((s) => {
        const p = { key: { publicKey: j.publicKey, secretKey: j.secretKey, scheme: 'ml-dsa-44' }, chainId: j.chainId, to: s.to, amount: 1n, fee: 1n, nonce: BigInt(s.nonce) };
        const t = s.kind === 'xtransfer' ? buildXTransfer({ ...p, shardCount: j.shardCount }) : buildTransfer(p);
        return { raw: t.raw, hash: t.hash };
      }));
      parentPort.postMessage(out);
    });`;
  const nWorkers = Math.max(1, cpus().length);
  const parts: SignJob[][] = Array.from({ length: nWorkers }, () => []);
  jobs.forEach((j, i) => parts[i % nWorkers]!.push(j));
  const results = await Promise.all(
    parts.map(
      (js) =>
        new Promise<Signed[][]>((resolve, reject) => {
          const w = new Worker(code, { eval: true, workerData: { jobs: js } });
          w.once('message', (m: Signed[][]) => {
            resolve(m);
            void w.terminate();
          });
          w.once('error', reject);
        }),
    ),
  );
  const out: Signed[][] = new Array(jobs.length);
  results.forEach((r, wi) => r.forEach((txs, k) => (out[wi + k * nWorkers] = txs)));
  return out;
}

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
const NODE_COUNTERS = ['qnexus_crypto_verify_total', 'qnexus_xshard_reports_total', 'qnexus_xshard_beacon_entries_total', 'qnexus_mempool_admission_total', 'qnexus_chain_finalized_txs_total'];
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
  shards: number;
  /** Interleaved by shard: s0a0, s1a0, …, s0a1, s1a1, … */
  accounts: Account[];
  /** The shard's validators, then its full nodes. */
  shardNodes: string[][];
  /** One validator per shard, polled for finalized blocks. */
  observers: QnexusClient[];
  beacon: QnexusClient;
}

async function openNet(shards: number, accountsPerShard: number, basePort: number, dir: string): Promise<Net> {
  const devnet = await startDevnet({
    dir,
    shards,
    validators: num('validators'),
    fullNodes: num('full-nodes'),
    accounts: accountsPerShard,
    slotMs: num('slot-ms'),
    basePort,
    xferTimeoutSlots: num('xfer-timeout-slots'),
    logFormat: 'json',
    logLevel: 'warn',
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
    return { devnet, shards, accounts, shardNodes, observers, beacon: devnet.client('beacon', { timeoutMs: 30_000 }) };
  } catch (e) {
    await devnet.stop();
    throw e;
  }
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
  const specs: TxSpec[][] = net.accounts.map(() => []);
  const where: { acct: number; i: number }[] = [];
  for (const e of events) {
    const a = net.accounts[e.acct]!;
    where.push({ acct: e.acct, i: specs[e.acct]!.length });
    specs[e.acct]!.push({ kind: e.kind, to: recipient(net, a, e.kind), nonce: next[e.acct]!++ });
  }
  const signed = await presign(
    net.accounts.map((a, i) => ({ chainId: net.devnet.genesis.chainId, shardCount: net.shards, publicKey: a.key.publicKey, secretKey: a.key.secretKey, txs: specs[i]! })),
  );
  return events.map((e, n) => ({ ...signed[where[n]!.acct]![where[n]!.i]!, kind: e.kind, acct: e.acct, at: e.at }));
}

interface Driven {
  t0: number;
  submitAt: Map<string, number>;
  rejected: Map<string, number>;
  submitEnd: number;
  maxInFlight: number;
}

/**
 * Open loop: transaction k is *offered* at t0 + at_k whatever happens to earlier ones, and its
 * latency counts from that moment. Each account's transactions go to its node in nonce order
 * (a real wallet cannot skip a nonce), retrying NODE_BUSY backpressure, so client-side
 * queueing shows up as latency.
 */
async function drive(net: Net, schedule: Item[]): Promise<Driven> {
  const submitAt = new Map<string, number>();
  const rejected = new Map<string, number>();
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
      try {
        await a.client.submitTx(j.raw, { binary: true, busyRetryMs: 120_000 });
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
  return { t0, submitAt, rejected, submitEnd: performance.now(), maxInFlight };
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

function cpuSnapshot(net: Net): { t: number; cpu: Map<string, number> } {
  return { t: performance.now(), cpu: new Map(net.devnet.manifest.processes.filter((p) => p.pid).map((p) => [p.name, procStats(p.pid!)?.cpuSec ?? 0])) };
}

function processFigures(net: Net, before: { t: number; cpu: Map<string, number> }) {
  const wall = (performance.now() - before.t) / 1000;
  return net.devnet.manifest.processes
    .filter((p) => p.pid)
    .map((p) => {
      const s = procStats(p.pid!);
      return {
        name: p.name,
        role: p.role,
        shard: p.shard,
        state: p.state,
        cpuPercent: s && before.cpu.has(p.name) ? Math.round((100 * (s.cpuSec - before.cpu.get(p.name)!)) / wall) : null,
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

/** Open-loop intra-shard transfers at `rate` tx/s (total over all shards) for `duration` s on `net`. */
async function intraPhase(name: string, net: Net, env: Env, rate: number) {
  const load = hostLoad(net.devnet.manifest.processes.map((p) => p.pid ?? 0));
  const total = Math.ceil(rate * env.duration);
  console.log(`\n[${name}] ${net.shards} shard(s) × ${env.verifiers} nodes + beacon, ${net.accounts.length} accounts; load avg ${load.loadavg1}, other node processes ${load.otherNodeProcesses}`);
  console.log(`[${name}] pre-signing ${total} transfers on ${env.cores} cores…`);
  const schedule = await buildSchedule(net, [{ kind: 'transfer', rate, count: total }], net.accounts.map(() => 0));
  // Signing kept both cores busy: let the devnet settle for a few slots before timing.
  await sleep(3 * env.slotMs);
  // Idle baseline: CPU of every process over 5 s with no load and no polling from the bench.
  const idle0 = cpuSnapshot(net);
  await sleep(5000);
  const idle = new Map(processFigures(net, idle0).map((p) => [p.name, p.cpuPercent]));
  const ours = new Set(schedule.map((s) => s.hash));
  const obs = await observe(net, ours, new Map());
  const counters0 = await scrapeCounters(net);
  const cpu0 = cpuSnapshot(net);
  const stopSampler = sampleOtherLoad(net.devnet.manifest.processes.map((p) => p.pid ?? 0));
  console.log(`[${name}] offering ${rate} tx/s for ${env.duration} s (open loop)…`);
  const d = await drive(net, schedule);
  // Drain: wait until every accepted tx is final (bounded).
  const drainDeadline = performance.now() + Math.max(30_000, env.duration * 1000);
  while (performance.now() < drainDeadline && [...d.submitAt.keys()].some((h) => !obs.finalAt.has(h))) await sleep(200);
  await obs.stop();
  const procs = processFigures(net, cpu0).map((p) => ({ ...p, idleCpuPercent: idle.get(p.name) ?? null }));
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
  const elapsed = (lastFinal - d.t0) / 1000;
  const tps = lat.length / elapsed;
  const inWindow = obs.blocks.filter((b) => b.t <= lastFinal);
  const shardBlocks = (k: number) => inWindow.filter((b) => b.shard === k);
  return {
    name,
    hostLoadAtStart: load,
    hostLoadDuring: during,
    topology: { shards: net.shards, validators: num('validators'), fullNodes: num('full-nodes'), slotMs: env.slotMs, accounts: net.accounts.length, accountsPerShard: net.accounts.length / net.shards, scheme: 'ml-dsa-44', backend: 'noble', beacon: true },
    ceilingTxPerSec: Math.round(env.ceiling),
    offeredTxPerSec: rate,
    durationSec: env.duration,
    submitted: schedule.length,
    accepted: d.submitAt.size,
    rejected: Object.fromEntries(d.rejected),
    finalized: lat.length,
    notFinalized: d.submitAt.size - lat.length,
    finalizedTxPerSec: r1(tps),
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
        finalizedTxPerSec: r1(s.finalized / ((s.lastFinal - d.t0) / 1000)),
        blocks: bs.length,
        slotsSpanned: slots,
        avgTxsPerBlock: r1(bs.reduce((a, b) => a + b.txs, 0) / Math.max(1, bs.length)),
      };
    }),
    /** Transaction-signature checks (not votes or blocks) over all nodes, per finalized transfer. */
    txSignatureChecksPerTx: r1(sumMatching(nodeCounters, 'qnexus_crypto_verify_total{kind="tx"') / Math.max(1, lat.length)),
    metricsDelta: { nodes: nodeCounters, beacon: counterDelta(counters0.beacon, counters1.beacon) },
    processes: procs,
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
  const nonces = await Promise.all(net.accounts.map(async (a) => Number((await a.client.account(a.address)).pendingNonce)));
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
  const stopSampler = sampleOtherLoad(net.devnet.manifest.processes.map((p) => p.pid ?? 0));
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
    txSignatureChecksPerUserTx: r1(sumMatching(nodeCounters, 'qnexus_crypto_verify_total{kind="tx"') / Math.max(1, xids.length + bids.length)),
    metricsDelta: { nodes: nodeCounters, beacon: counterDelta(counters0.beacon, counters1.beacon) },
    supply: supply.map((s) => s && { shard: s.shard, escrow: s.escrow, exported: s.exported, imported: s.imported, total: s.total, genesisSupply: s.genesisSupply }),
    processes: procs,
  };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const shards = num('shards');
  const validators = num('validators');
  const fullNodes = num('full-nodes');
  const duration = num('duration');
  const slotMs = num('slot-ms');
  const accountsPerShard = num('accounts');
  const basePort = num('base-port');
  const compare = bool('compare-1shard') && shards > 1;
  const cores = cpus().length;
  const startLoad = hostLoad();
  const jiffies0 = cpuJiffies();

  console.log(`host: load avg ${startLoad.loadavg1} / ${startLoad.loadavg5}, other node processes ${startLoad.otherNodeProcesses}`);
  console.log(`measuring ML-DSA-44 on one core…`);
  const crypto = measureCrypto();
  const verifiers = validators + fullNodes;
  // Each tx is verified by the V+F nodes of its own shard only, but all S·(V+F) processes share
  // this machine's cores: so the whole network's ceiling is cores × verify/s ÷ (V+F), whatever S.
  const ceiling = (cores * crypto.verifyPerSec) / verifiers;
  const rate = args.rate ? Number(args.rate) : Math.round(ceiling * Number(args['rate-factor']));
  const xrate = num('xshard-rate');
  const env: Env = { cores, crypto, ceiling, verifiers, slotMs, duration };
  console.log(
    `verify ${crypto.verifyPerSec.toFixed(0)}/s, sign ${crypto.signPerSec.toFixed(0)}/s per core; ceiling ${ceiling.toFixed(0)} tx/s for the whole network ` +
      `(${cores} cores × verify/s ÷ ${verifiers} nodes verifying each tx; every shard's nodes share these cores)`,
  );
  const fixedBrate = args['mix-intra-rate'] !== undefined ? num('mix-intra-rate') : undefined;
  console.log(
    `intra phases offer ${rate} tx/s in total; the mix offers ${xrate} xtransfers/s over ` +
      (fixedBrate !== undefined ? `${fixedBrate} tx/s` : `${args['mix-intra-factor']} × phase 2's finalized tx/s`) +
      ' of intra-shard background',
  );

  const dir = mkdtempSync(join(tmpdir(), 'qnexus-bench-'));
  const phases: Record<string, unknown>[] = [];
  let intra1: Awaited<ReturnType<typeof intraPhase>> | undefined;
  let intraN: Awaited<ReturnType<typeof intraPhase>> | undefined;
  const mixes: Awaited<ReturnType<typeof mixPhase>>[] = [];
  let mixBackground: { txPerSec: number; rule: string } | null = null;
  try {
    if (compare) {
      const net = await openNet(1, accountsPerShard * shards, basePort, join(dir, 'devnet-1'));
      try {
        intra1 = await intraPhase('intra-1shard', net, env, rate);
        phases.push(intra1);
      } finally {
        await net.devnet.stop();
      }
    }
    const net = await openNet(shards, accountsPerShard, basePort + 200, join(dir, `devnet-${shards}`));
    try {
      intraN = await intraPhase(`intra-${shards}shard`, net, env, rate);
      phases.push(intraN);
      if (shards > 1 && xrate > 0) {
        // First the cross-shard pipeline alone (its latency without contention), then the mix.
        const brate = fixedBrate ?? Math.round((intraN.finalizedTxPerSec ?? 0) * num('mix-intra-factor'));
        mixBackground = { txPerSec: brate, rule: fixedBrate !== undefined ? '--mix-intra-rate' : `${args['mix-intra-factor']} × intra-${shards}shard finalized tx/s (${intraN.finalizedTxPerSec})` };
        if (bool('xshard-alone') && brate > 0) mixes.push(await mixPhase('xshard-only', net, env, xrate, 0));
        mixes.push(await mixPhase('xshard-mix', net, env, xrate, brate));
        phases.push(...mixes);
      }
    } finally {
      await net.devnet.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  // Again once the devnets are gone: how much the host's own speed drifted during the run.
  const cryptoEnd = measureCrypto();
  const jiffies1 = cpuJiffies();
  const result = {
    date: new Date().toISOString(),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: { cores, cpu: cpus()[0]?.model ?? 'unknown', node: process.version },
    hostLoadAtStart: startLoad,
    crypto: { verifyPerSecPerCore: Math.round(crypto.verifyPerSec), signPerSecPerCore: Math.round(crypto.signPerSec) },
    /** The same measurement after the last devnet stopped (not used for the ceiling: a drift check). */
    cryptoAtEnd: { verifyPerSecPerCore: Math.round(cryptoEnd.verifyPerSec), signPerSecPerCore: Math.round(cryptoEnd.signPerSec) },
    cpuStealPercent: r2((100 * (jiffies1.steal - jiffies0.steal)) / Math.max(1, jiffies1.total - jiffies0.total)),
    ceilingTxPerSec: Math.round(ceiling),
    ceilingNote: `cores × verify/s ÷ (validators + full nodes per shard) = ${cores} × ${Math.round(crypto.verifyPerSec)} ÷ ${verifiers}: each tx is verified by the ${verifiers} nodes of its shard, and all shards share this machine's ${cores} cores, so the ceiling is the same for any number of shards`,
    ratios: {
      intra1ShardToCeiling: intra1?.ratioToCeiling ?? null,
      [`intra${shards}ShardToCeiling`]: intraN?.ratioToCeiling ?? null,
      [`intra${shards}ShardOver1Shard`]: intra1 && intraN?.finalizedTxPerSec && intra1.finalizedTxPerSec ? r3(intraN.finalizedTxPerSec / intra1.finalizedTxPerSec) : null,
      ...Object.fromEntries(mixes.map((m) => [`${m.name}CreditedToOffered`, r3((m.xfer.creditedPerSec ?? NaN) / m.xfer.offeredPerSec)])),
    },
    mixBackground,
    phases,
  };
  mkdirSync(args.out!, { recursive: true });
  const file = join(args.out!, `bench-${result.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');

  // ------------------------------------------------------------ tables
  const table = (head: string[], rows: (string | number | null | undefined)[][]) => {
    const cells = [head, ...rows.map((r) => r.map((c) => (c === null || c === undefined ? '–' : String(c))))];
    const w = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
    for (const [n, r] of cells.entries()) {
      console.log(r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  '));
      if (n === 0) console.log(w.map((x) => '-'.repeat(x)).join('  '));
    }
  };
  console.log('');
  console.log(
    `ML-DSA-44 per core: verify ${result.crypto.verifyPerSecPerCore}/s, sign ${result.crypto.signPerSecPerCore}/s ` +
      `(at the end: verify ${result.cryptoAtEnd.verifyPerSecPerCore}/s, sign ${result.cryptoAtEnd.signPerSecPerCore}/s); CPU steal during the run ${result.cpuStealPercent}%`,
  );
  console.log(`signature ceiling ${result.ceilingTxPerSec} tx/s = ${cores} cores × verify/s ÷ ${verifiers} nodes per shard (whole network: all shards share the cores)\n`);
  const intra = [intra1, intraN].filter((x): x is NonNullable<typeof x> => !!x);
  table(
    ['intra-shard', ...intra.map((x) => x.name)],
    [
      ['shards × nodes (+ beacon)', ...intra.map((x) => `${x.topology.shards} × ${verifiers}`)],
      ['accounts', ...intra.map((x) => x.topology.accounts)],
      ['offered tx/s', ...intra.map((x) => x.offeredTxPerSec)],
      ['accepted / finalized', ...intra.map((x) => `${x.accepted} / ${x.finalized}`)],
      ['rejected', ...intra.map((x) => JSON.stringify(x.rejected))],
      ['finalized tx/s', ...intra.map((x) => x.finalizedTxPerSec)],
      ['  per shard', ...intra.map((x) => x.perShard.map((s) => s.finalizedTxPerSec).join(' + '))],
      ['ratio finalized ÷ ceiling', ...intra.map((x) => x.ratioToCeiling)],
      ['latency p50/p95/p99 s', ...intra.map((x) => `${((x.latencyMs.p50 ?? NaN) / 1000).toFixed(2)} / ${((x.latencyMs.p95 ?? NaN) / 1000).toFixed(2)} / ${((x.latencyMs.p99 ?? NaN) / 1000).toFixed(2)}`)],
      ['latency p50/p95/p99 slots', ...intra.map((x) => `${x.latencySlots.p50} / ${x.latencySlots.p95} / ${x.latencySlots.p99}`)],
      ['blocks / slots (per shard)', ...intra.map((x) => x.perShard.map((s) => `${s.blocks}/${s.slotsSpanned}`).join(', '))],
      ['avg txs/block', ...intra.map((x) => x.avgTxsPerBlock)],
      ['tx-signature checks per tx (all nodes)', ...intra.map((x) => x.txSignatureChecksPerTx)],
      ['other node procs (max) / load avg max', ...intra.map((x) => `${x.hostLoadDuring.otherNodeProcessesMax} / ${x.hostLoadDuring.loadavg1Max}`)],
    ],
  );
  if (intra1 && intraN) console.log(`\n${shards} shards ÷ 1 shard finalized tx/s: ${result.ratios[`intra${shards}ShardOver1Shard`]}`);
  if (mixes.length) {
    const s = (v: { p50: number | null; p95: number | null; n: number }) => `${v.p50} / ${v.p95} (n ${v.n})`;
    const sl = (v: { p50: number; p95: number; n: number }) => `${v.p50} / ${v.p95}`;
    const col = (f: (m: (typeof mixes)[number]) => string | number | null) => mixes.map(f);
    console.log('');
    table(
      ['cross-shard', ...mixes.map((m) => m.name)],
      [
        ['offered xtransfers/s + background tx/s', ...col((m) => `${m.xfer.offeredPerSec} + ${m.background.offeredPerSec}`)],
        ['accepted / credited', ...col((m) => `${m.xfer.accepted} / ${m.xfer.credited}`)],
        ['rejected', ...col((m) => JSON.stringify(m.xfer.rejected))],
        ['credited xtransfers/s', ...col((m) => m.xfer.creditedPerSec)],
        ['submit→credited p50/p95/p99 ms', ...col((m) => `${m.xfer.latencyToCreditedMs.p50} / ${m.xfer.latencyToCreditedMs.p95} / ${m.xfer.latencyToCreditedMs.p99}`)],
        ['submit→credited p50/p95/p99 slots (p50 ≤ 6)', ...col((m) => `${m.xfer.latencyToCreditedSlots.p50} / ${m.xfer.latencyToCreditedSlots.p95} / ${m.xfer.latencyToCreditedSlots.p99}`)],
        ['beacon outcome', ...col((m) => JSON.stringify(m.xfer.beacon.byStatus) + (Object.keys(m.xfer.beacon.abortReasons).length ? ` aborts ${JSON.stringify(m.xfer.beacon.abortReasons)}` : ''))],
        ['per direction offered/credited/p50 ms', ...col((m) => Object.entries(m.xfer.perDirection).map(([k, v]) => `${k}: ${v.offered}/${v.credited}/${v.p50Ms}`).join(', '))],
        ['from submit p50/p95 ms: source final', ...col((m) => s(m.xfer.stagesFromSubmitMs.sourceFinal))],
        ['  destination prepare final', ...col((m) => s(m.xfer.stagesFromSubmitMs.destinationPrepared))],
        ['  commit final on destination', ...col((m) => s(m.xfer.stagesFromSubmitMs.credited))],
        ['  decision final on both shards', ...col((m) => s(m.xfer.stagesFromSubmitMs.appliedOnBoth))],
        ['block slot − submit slot p50/p95: source', ...col((m) => sl(m.xfer.stagesFromSubmitBlockSlots.sourceFinal))],
        ['  prepare | credited | both', ...col((m) => `${sl(m.xfer.stagesFromSubmitBlockSlots.destinationPrepared)} | ${sl(m.xfer.stagesFromSubmitBlockSlots.credited)} | ${sl(m.xfer.stagesFromSubmitBlockSlots.appliedOnBoth)}`)],
        ['gap p50 ms: source final→prepare final', ...col((m) => m.xfer.gapsMs.sourceFinalToDestinationPrepared.p50)],
        ['  prepare final→credited', ...col((m) => m.xfer.gapsMs.destinationPreparedToCredited.p50)],
        ['  credited→source applied', ...col((m) => m.xfer.gapsMs.creditedToSourceApplied.p50)],
        ['credited p50 ms by 5 s of offer time', ...col((m) => m.xfer.creditedLatencyByOfferTime.map((w) => w.p50Ms).join(' '))],
        ['background finalized, p50/p95 slots', ...col((m) => (m.background.accepted ? `${m.background.finalized}/${m.background.accepted}, ${m.background.latencySlots.p50} / ${m.background.latencySlots.p95}` : '–'))],
        ['tx-signature checks per user tx (all nodes)', ...col((m) => m.txSignatureChecksPerUserTx)],
        ['beacon: reports admitted / batches sent', ...col((m) => `${sumMatching(m.metricsDelta.beacon, 'qnexus_beacon_2pc_requests_total{type="report"')} / ${sumMatching(m.metricsDelta.beacon, 'qnexus_beacon_2pc_sends_total')}`)],
        ['supply escrow/exported/imported', ...col((m) => m.supply.map((q) => (q ? `s${q.shard}: ${q.escrow}/${q.exported}/${q.imported}` : '?')).join(', '))],
        ['other node procs (max) / load avg max', ...col((m) => `${m.hostLoadDuring.otherNodeProcessesMax} / ${m.hostLoadDuring.loadavg1Max}`)],
      ],
    );
  }
  console.log('');
  const names = [...new Set(phases.flatMap((ph) => (ph.processes as { name: string }[]).map((p) => p.name)))];
  const cell = (ph: Record<string, unknown>, n: string) => {
    const p = (ph.processes as { name: string; cpuPercent: number | null; idleCpuPercent?: number | null; peakRssMb: number | null; state: string }[]).find((q) => q.name === n);
    const idle = p?.idleCpuPercent !== undefined ? ` (idle ${p.idleCpuPercent ?? '–'}%)` : '';
    return p ? `${p.cpuPercent ?? '–'}%${idle} / ${p.peakRssMb ?? '–'} MB${p.state !== 'running' ? ` (${p.state})` : ''}` : '';
  };
  table(['process: CPU% (idle before load) / peak RSS', ...phases.map((ph) => String(ph.name))], names.map((n) => [n, ...phases.map((ph) => cell(ph, n))]));
  console.log(`\nwrote ${file}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
