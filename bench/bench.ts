// npm run bench -- [--validators 4] [--full-nodes 1] [--duration 30] [--rate <tx/s>] [--rate-factor 0.6]
//                   [--accounts 64] [--slot-ms 1000] [--out bench/results]
//
// Starts its own devnet (real processes), measures this machine's ML-DSA
// ceiling in the same run, then drives open-loop load from transfers signed
// before timing and reports finalized tx/s, submit→final latency and the ratio
// finalized tx/s ÷ (cores × verify/s ÷ nodes verifying each tx).
// Figures are only comparable within one run: report ratios, not absolutes.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { startDevnet, unlockKeystoreFile, type Devnet } from '@qnexus/cli';
import type { QnexusClient } from '@qnexus/sdk';

const { values: args } = parseArgs({
  options: {
    validators: { type: 'string', default: '4' },
    'full-nodes': { type: 'string', default: '1' },
    duration: { type: 'string', default: '30' },
    rate: { type: 'string' },
    'rate-factor': { type: 'string', default: '0.6' },
    accounts: { type: 'string', default: '64' },
    'slot-ms': { type: 'string', default: '1000' },
    out: { type: 'string', default: 'bench/results' },
    'base-port': { type: 'string', default: '27000' },
  },
});

const num = (k: keyof typeof args): number => Number(args[k]);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => (xs.length ? xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]! : NaN);

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

interface SignJob {
  chainId: string;
  publicKey: Uint8Array;
  secretKey: Uint8Array;
  to: string;
  startNonce: number;
  count: number;
}

/** Sign all transfers up front on every core (signing is not what we measure). */
async function presign(jobs: SignJob[]): Promise<{ raw: Uint8Array; hash: string }[][]> {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    import('@qnexus/sdk').then(({ buildTransfer }) => {
      const out = workerData.jobs.map((j) => {
        const txs = [];
        for (let k = 0; k < j.count; k++) {
          const t = buildTransfer({ key: { publicKey: j.publicKey, secretKey: j.secretKey, scheme: 'ml-dsa-44' }, chainId: j.chainId, to: j.to, amount: 1n, fee: 1n, nonce: BigInt(j.startNonce + k) });
          txs.push({ raw: t.raw, hash: t.hash });
        }
        return txs;
      });
      parentPort.postMessage(out);
    });`;
  const nWorkers = Math.max(1, cpus().length);
  const shards: SignJob[][] = Array.from({ length: nWorkers }, () => []);
  jobs.forEach((j, i) => shards[i % nWorkers]!.push(j));
  const results = await Promise.all(
    shards.map(
      (js) =>
        new Promise<{ raw: Uint8Array; hash: string }[][]>((resolve, reject) => {
          const w = new Worker(code, { eval: true, workerData: { jobs: js } });
          w.once('message', resolve);
          w.once('error', reject);
        }),
    ),
  );
  const out: { raw: Uint8Array; hash: string }[][] = new Array(jobs.length);
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

async function main(): Promise<void> {
  const validators = num('validators');
  const fullNodes = num('full-nodes');
  const duration = num('duration');
  const slotMs = num('slot-ms');
  const nAccounts = num('accounts');
  const cores = cpus().length;

  console.log(`measuring ML-DSA-44 on one core…`);
  const crypto = measureCrypto();
  const verifiers = validators + fullNodes;
  const ceiling = (cores * crypto.verifyPerSec) / verifiers;
  const rate = args.rate ? Number(args.rate) : Math.round(ceiling * Number(args['rate-factor']));
  console.log(`verify ${crypto.verifyPerSec.toFixed(0)}/s, sign ${crypto.signPerSec.toFixed(0)}/s per core; ceiling ${ceiling.toFixed(0)} tx/s (${cores} cores, ${verifiers} nodes verify each tx); offering ${rate} tx/s for ${duration} s`);

  const dir = mkdtempSync(join(tmpdir(), 'qnexus-bench-'));
  let devnet: Devnet | undefined;
  try {
    devnet = await startDevnet({
      dir: join(dir, 'devnet'),
      validators,
      fullNodes,
      accounts: nAccounts,
      slotMs,
      basePort: num('base-port'),
      logFormat: 'json',
      logLevel: 'warn',
      reset: true,
    });
    const nodes = devnet.manifest.processes.map((p) => p.name);
    const clients: QnexusClient[] = nodes.map((n) => devnet!.client(n, { timeoutMs: 30_000 }));
    const pass = readFileSync(devnet.passphraseFile, 'utf8').trim();
    const accounts = await Promise.all(devnet.manifest.accounts.map(async (a) => ({ address: a.address, key: (await unlockKeystoreFile(a.keystore, pass)).key })));

    const total = Math.ceil(rate * duration);
    const perAccount = Math.ceil(total / accounts.length);
    console.log(`pre-signing ${perAccount * accounts.length} transfers from ${accounts.length} accounts on ${cores} cores…`);
    const signed = await presign(
      accounts.map((a, i) => ({
        chainId: devnet!.genesis.chainId,
        publicKey: a.key.publicKey,
        secretKey: a.key.secretKey,
        to: accounts[(i + 1) % accounts.length]!.address,
        startNonce: 0,
        count: perAccount,
      })),
    );
    // Interleave accounts so the offered stream is spread evenly; account i talks to node i mod N.
    const schedule: { raw: Uint8Array; hash: string; node: number }[] = [];
    for (let k = 0; k < perAccount && schedule.length < total; k++) {
      for (let i = 0; i < accounts.length && schedule.length < total; i++) schedule.push({ ...signed[i]![k]!, node: i % clients.length });
    }

    // Signing kept both cores busy: let the devnet settle for a few slots before timing.
    await sleep(3 * slotMs);
    const startHeight = (await clients[0]!.status()).finalizedHeight;
    const cpuT0 = performance.now();
    const cpuBefore = new Map(devnet.manifest.processes.map((p) => [p.name, procStats(p.pid!)?.cpuSec ?? 0]));
    const submitAt = new Map<string, number>();
    const finalAt = new Map<string, number>();
    const rejected = new Map<string, number>();
    let inFlight = 0;
    let maxInFlight = 0;
    let done = false;

    // Finality observer: poll one validator for new blocks.
    let observed = startHeight;
    const blockTxs: number[] = [];
    const observer = (async () => {
      while (!done) {
        try {
          const head = (await clients[0]!.status()).finalizedHeight;
          for (let h = observed + 1; h <= head; h++) {
            const b = await clients[0]!.block(h);
            const now = performance.now();
            blockTxs.push(b.txs.length);
            for (const t of b.txs) if (!finalAt.has(t)) finalAt.set(t, now);
            observed = h;
          }
        } catch {
          // transient; retry
        }
        await sleep(50);
      }
    })();

    console.log(`submitting (open loop)…`);
    // Open loop: transaction k is *offered* at t0 + k/rate whatever happens to
    // earlier ones, and its latency counts from that moment. Each account's
    // transactions are sent in nonce order (a real wallet cannot skip a nonce),
    // retrying NODE_BUSY backpressure, so client-side queueing shows up as latency.
    const t0 = performance.now();
    const queues: { raw: Uint8Array; hash: string; node: number }[][] = accounts.map(() => []);
    const wake: (() => void)[] = accounts.map(() => () => undefined);
    let offered = 0;
    let offering = true;
    const senders = accounts.map(async (_a, i) => {
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
          await clients[j.node]!.submitTx(j.raw, { binary: true, busyRetryMs: 120_000 });
        } catch (e) {
          const code = (e as { code?: string }).code ?? 'ERROR';
          rejected.set(code, (rejected.get(code) ?? 0) + 1);
          submitAt.delete(j.hash);
        } finally {
          inFlight--;
        }
      }
    });
    while (offered < schedule.length) {
      const due = Math.min(schedule.length, Math.floor(((performance.now() - t0) / 1000) * rate));
      while (offered < due) {
        const j = schedule[offered]!;
        const acct = offered % accounts.length;
        offered++;
        submitAt.set(j.hash, performance.now());
        queues[acct]!.push(j);
        wake[acct]!();
      }
      await sleep(5);
    }
    offering = false;
    wake.forEach((w) => w());
    await Promise.all(senders);
    const submitEnd = performance.now();
    // Drain: wait until every accepted tx is final (bounded).
    const drainDeadline = performance.now() + Math.max(30_000, duration * 1000);
    while (performance.now() < drainDeadline && [...submitAt.keys()].some((h) => !finalAt.has(h))) await sleep(200);
    done = true;
    await observer;

    const lat: number[] = [];
    let lastFinal = t0;
    for (const [h, t] of submitAt) {
      const f = finalAt.get(h);
      if (f === undefined) continue;
      lat.push(f - t);
      lastFinal = Math.max(lastFinal, f);
    }
    lat.sort((a, b) => a - b);
    const finalizedCount = lat.length;
    const elapsed = (lastFinal - t0) / 1000;
    const tps = finalizedCount / elapsed;
    const cpuWall = (performance.now() - cpuT0) / 1000;
    const procs = devnet.manifest.processes.map((p) => {
      const s = procStats(p.pid!);
      return {
        name: p.name,
        cpuPercent: s ? Math.round((100 * (s.cpuSec - (cpuBefore.get(p.name) ?? 0))) / cpuWall) : null,
        peakRssMb: s ? Math.round(s.peakRssMb) : null,
      };
    });
    const result = {
      date: new Date().toISOString(),
      machine: { cores, cpu: cpus()[0]?.model ?? 'unknown', node: process.version },
      topology: { shards: 1, validators, fullNodes, slotMs, accounts: accounts.length, scheme: 'ml-dsa-44', backend: 'noble' },
      crypto: { verifyPerSecPerCore: Math.round(crypto.verifyPerSec), signPerSecPerCore: Math.round(crypto.signPerSec) },
      ceilingTxPerSec: Math.round(ceiling),
      offeredTxPerSec: rate,
      durationSec: duration,
      submitted: schedule.length,
      accepted: submitAt.size,
      rejected: Object.fromEntries(rejected),
      finalized: finalizedCount,
      notFinalized: submitAt.size - finalizedCount,
      finalizedTxPerSec: Number(tps.toFixed(1)),
      ratioToCeiling: Number((tps / ceiling).toFixed(3)),
      latencyMs: { p50: Math.round(pct(lat, 50)), p95: Math.round(pct(lat, 95)), p99: Math.round(pct(lat, 99)) },
      latencySlots: { p50: Number((pct(lat, 50) / slotMs).toFixed(2)), p95: Number((pct(lat, 95) / slotMs).toFixed(2)), p99: Number((pct(lat, 99) / slotMs).toFixed(2)) },
      blocks: blockTxs.length,
      avgTxsPerBlock: Number((blockTxs.reduce((a, b) => a + b, 0) / Math.max(1, blockTxs.length)).toFixed(1)),
      submitSeconds: Number(((submitEnd - t0) / 1000).toFixed(1)),
      maxClientInFlight: maxInFlight,
      processes: procs,
    };
    mkdirSync(args.out!, { recursive: true });
    const file = join(args.out!, `bench-${result.date.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
    const row = (k: string, v: unknown) => console.log(`${k.padEnd(34)} ${String(v)}`);
    console.log('');
    row('ML-DSA-44 verify /s (1 core)', result.crypto.verifyPerSecPerCore);
    row('ML-DSA-44 sign /s (1 core)', result.crypto.signPerSecPerCore);
    row('signature ceiling tx/s', `${result.ceilingTxPerSec}  (= ${cores} cores × verify/s ÷ ${verifiers} nodes)`);
    row('offered tx/s', result.offeredTxPerSec);
    row('accepted / finalized', `${result.accepted} / ${result.finalized}  (rejected: ${JSON.stringify(result.rejected)})`);
    row('finalized tx/s', result.finalizedTxPerSec);
    row('ratio finalized ÷ ceiling', result.ratioToCeiling);
    row('latency p50/p95/p99 ms', `${result.latencyMs.p50} / ${result.latencyMs.p95} / ${result.latencyMs.p99}`);
    row('latency p50/p95/p99 slots', `${result.latencySlots.p50} / ${result.latencySlots.p95} / ${result.latencySlots.p99}`);
    row('blocks, avg txs/block', `${result.blocks}, ${result.avgTxsPerBlock}`);
    for (const p of procs) row(`  ${p.name} CPU% / peak RSS MB`, `${p.cpuPercent} / ${p.peakRssMb}`);
    console.log(`\nwrote ${file}`);
  } finally {
    await devnet?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
