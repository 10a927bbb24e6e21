#!/usr/bin/env node
// Baseline benchmark: how many plain ETH value transfers per second does
// Hardhat's local node (`npx hardhat node`, automine) mine on this machine?
//
// It starts the node itself as a child process (its own process group, bound to
// 127.0.0.1 on a free port), waits for JSON-RPC, then for each offered rate:
//   1. pre-signs rate*duration EIP-1559 transfers spread round-robin over the 20
//      default funded accounts (nonce order, chainId 31337) -- all signing is
//      done BEFORE the timed window;
//   2. sends them open-loop at the offered rate with eth_sendRawTransaction over
//      keep-alive HTTP connections (one connection per account, each account's
//      txs strictly in nonce order: Hardhat rejects future nonces under automine);
//   3. counts transfers mined inside the window (under automine the RPC reply
//      comes back only after the tx's block is mined; this is cross-checked with
//      eth_blockNumber and a sample of receipts), submit->mined latency, CPU% and
//      RSS of the node's process tree (from /proc).
// The sweep stops after the first rate whose mined/offered ratio is < 0.9.
//
// Usage: node bench.mjs [--rates 200,400,800,1200,1600,2400] [--duration 10]
//                       [--quiet-node] [--logging-off] [--warmup 2] [--port N]
//                       [--max-seconds 900] [--stop-ratio 0.9] [--out ../results]
//                       [--wait-idle 180] [--idle-threshold 25]
//                       [--drain] [--json-out FILE]
// --drain: the counting rule of `npm run bench` (bench/bench.ts, which runs this file under
//   --with-hardhat): every transfer of the window is sent (none dropped when the window closes)
//   and each step also reports `drainRule`: mined ÷ max(window, last reply − t0 − p10 latency),
//   the same formula as the devnet's finalized tx/s. --json-out: write the result there.
// Wrap real measurement runs in `flock /tmp/bench.lock ...` (shared machine).

import { spawn, execSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { HDNodeWallet, SigningKey, Transaction } from "ethers";

const HERE = path.dirname(fileURLToPath(import.meta.url));

// ---------------------------------------------------------------- arguments
function parseArgs(argv) {
  const o = {
    rates: [200, 400, 800, 1200, 1600, 2400],
    duration: 10,
    quietNode: false,
    loggingOff: false,
    warmup: 2,
    port: 0,
    maxSeconds: 900,
    stopRatio: 0.9,
    out: path.resolve(HERE, "..", "results"),
    requestTimeoutMs: 30_000,
    waitIdle: 180,
    idleThreshold: 25,
    drain: false,
    jsonOut: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = a.includes("=") ? a.slice(a.indexOf("=") + 1) : argv[++i];
      if (v === undefined) throw new Error(`missing value for ${a}`);
      return v;
    };
    const key = a.split("=")[0];
    switch (key) {
      case "--rates":
        o.rates = val().split(",").map((s) => Number(s.trim()));
        break;
      case "--duration": o.duration = Number(val()); break;
      case "--quiet-node": o.quietNode = true; break;
      case "--logging-off": o.loggingOff = true; break;
      case "--warmup": o.warmup = Number(val()); break;
      case "--port": o.port = Number(val()); break;
      case "--max-seconds": o.maxSeconds = Number(val()); break;
      case "--stop-ratio": o.stopRatio = Number(val()); break;
      case "--out": o.out = path.resolve(val()); break;
      case "--wait-idle": o.waitIdle = Number(val()); break;
      case "--idle-threshold": o.idleThreshold = Number(val()); break;
      case "--drain": o.drain = true; break;
      case "--json-out": o.jsonOut = path.resolve(val()); break;
      case "-h":
      case "--help":
        console.log(fs.readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n").slice(1, 28).join("\n"));
        process.exit(0);
      default:
        throw new Error(`unknown argument ${a}`);
    }
  }
  if (!o.rates.length || o.rates.some((r) => !(r > 0 && r <= 20_000))) throw new Error("--rates must be in (0, 20000]");
  if (!(o.duration > 0 && o.duration <= 120)) throw new Error("--duration must be in (0, 120] s");
  if (!(o.warmup >= 0 && o.warmup <= 30)) throw new Error("--warmup must be in [0, 30] s");
  if (!(o.maxSeconds > 0 && o.maxSeconds <= 3600)) throw new Error("--max-seconds must be in (0, 3600]");
  return o;
}
const opts = parseArgs(process.argv.slice(2));

// ---------------------------------------------------------------- constants
const CHAIN_ID = 31337n;
const MNEMONIC = "test test test test test test test test test test test junk"; // Hardhat's default
const N_ACCOUNTS = 20;
const MAX_FEE = 10_000_000_000n; // 10 gwei (base fee starts at 1 gwei and falls)
const PRIO_FEE = 1_000_000_000n; // 1 gwei
const CLK_TCK = Number(execSync("getconf CLK_TCK").toString().trim()) || 100;
const now = () => performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- child process management
let child = null;
let childExited = false;
function killChild(signal = "SIGTERM") {
  if (!child || childExited) return;
  try { process.kill(-child.pid, signal); } catch { /* already gone */ }
}
process.on("exit", () => killChild("SIGKILL"));
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => { console.error(`\n${sig}: stopping hardhat node`); killChild("SIGKILL"); process.exit(130); });
}
process.on("uncaughtException", (e) => { console.error(e); killChild("SIGKILL"); process.exit(1); });
process.on("unhandledRejection", (e) => { console.error(e); killChild("SIGKILL"); process.exit(1); });
const hardDeadline = setTimeout(() => {
  console.error(`--max-seconds ${opts.maxSeconds} exceeded: aborting`);
  killChild("SIGKILL");
  process.exit(2);
}, opts.maxSeconds * 1000);
hardDeadline.unref();

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

// ---------------------------------------------------------------- /proc sampling
function readStat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
  } catch { return null; }
}
function readStatus(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (k) => { const m = s.match(new RegExp(`^${k}:\\s+(\\d+) kB`, "m")); return m ? Number(m[1]) : 0; };
    const name = (s.match(/^Name:\s+(.*)$/m) || [])[1];
    return { name, rssKb: kb("VmRSS"), hwmKb: kb("VmHWM"), threads: Number((s.match(/^Threads:\s+(\d+)/m) || [])[1] || 0) };
  } catch { return null; }
}
function treePids(root) {
  const kids = new Map();
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const st = readStat(d);
    if (!st) continue;
    if (!kids.has(st.ppid)) kids.set(st.ppid, []);
    kids.get(st.ppid).push(Number(d));
  }
  const out = [];
  const stack = [root];
  while (stack.length) { const p = stack.pop(); out.push(p); for (const k of kids.get(p) || []) stack.push(k); }
  return out;
}
// Samples the whole tree (npx wrapper + the node running Hardhat). CPU ticks are
// summed; "main" is the process with the largest RSS (the Hardhat/EDR process).
function sampleTree() {
  const procs = [];
  for (const pid of treePids(child.pid)) {
    const st = readStat(pid);
    const ss = readStatus(pid);
    if (st && ss) procs.push({ pid, ...ss, ticks: st.ticks });
  }
  const main = procs.reduce((a, b) => (b.rssKb > (a?.rssKb ?? -1) ? b : a), null);
  return {
    t: now(),
    ticks: procs.reduce((a, p) => a + p.ticks, 0),
    mainPid: main?.pid, mainName: main?.name, mainThreads: main?.threads,
    mainTicks: main?.ticks ?? 0,
    mainRssKb: main?.rssKb ?? 0, mainHwmKb: main?.hwmKb ?? 0,
    treeRssKb: procs.reduce((a, p) => a + p.rssKb, 0),
    procs: procs.map((p) => `${p.pid}:${p.name}`),
  };
}

// machine-wide busy time (all cores, jiffies) from /proc/stat, to see interference
function readSysBusy() {
  const f = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + (f[4] || 0);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}
// Busy CPU of everything except this process, in % of one core, over `ms`.
async function otherCpuPct(ms) {
  const a = readSysBusy(), c0 = process.cpuUsage(), t0 = now();
  await sleep(ms);
  const b = readSysBusy(), c1 = process.cpuUsage(c0), dt = (now() - t0) / 1000;
  const sysPct = ((b.busy - a.busy) / CLK_TCK / dt) * 100;
  return sysPct - ((c1.user + c1.system) / 1e6 / dt) * 100;
}

// ---------------------------------------------------------------- JSON-RPC over HTTP
let port;
// Hardhat's HTTP server closes keep-alive sockets idle for 5 s (Node's default);
// reusing one just as it closes gives "socket hang up". So a fresh agent is
// made right before each timed window (after the long pre-signing), and the
// read-only calls outside the window are retried.
const newAgent = () => new http.Agent({ keepAlive: true, maxSockets: N_ACCOUNTS + 4, maxFreeSockets: N_ACCOUNTS + 4 });
let agent = newAgent();
function post(body, timeoutMs = opts.requestTimeoutMs) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: "127.0.0.1", port, method: "POST", path: "/", agent,
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      timeout: timeoutMs,
    }, (res) => {
      let data = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (data += c));
      res.on("end", () => resolve(data));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`request timeout after ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}
let rpcId = 1;
async function rpc(method, params = [], timeoutMs) {
  const body = JSON.stringify({ jsonrpc: "2.0", id: rpcId++, method, params });
  let raw;
  for (let attempt = 0; ; attempt++) {
    try { raw = await post(body, timeoutMs); break; } catch (e) {
      // only read-only methods are called through rpc(); retry connection resets
      if (attempt >= 3 || !/ECONNRESET|socket hang up|EPIPE/.test(`${e.code} ${e.message}`)) throw e;
      await sleep(50);
    }
  }
  const r = JSON.parse(raw);
  if (r.error) throw new Error(`${method}: ${r.error.message}`);
  return r.result;
}

// ---------------------------------------------------------------- helpers
function pct(sorted, p) {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}
const r1 = (x) => (x == null ? null : Math.round(x * 10) / 10);
const r3 = (x) => (x == null ? null : Math.round(x * 1000) / 1000);
function fileSize(p) { try { return fs.statSync(p).size; } catch { return 0; } }

// ---------------------------------------------------------------- one rate step
async function runStep(wallets, rate, duration, label) {
  const count = Math.max(1, Math.round(rate * duration));
  // fresh nonces from the node (a failed tx in an earlier step would break the chain)
  const nonces = await Promise.all(wallets.map((w) => rpc("eth_getTransactionCount", [w.address, "pending"]).then((n) => Number(BigInt(n)))));
  // pre-sign, outside the timed window
  const tSign0 = now();
  const queues = wallets.map(() => []);
  for (let i = 0; i < count; i++) {
    const a = i % N_ACCOUNTS;
    const w = wallets[a];
    const tx = Transaction.from({
      type: 2, chainId: CHAIN_ID, nonce: nonces[a]++,
      to: wallets[(a + 1) % N_ACCOUNTS].address, value: 1n, data: "0x",
      gasLimit: 21000n, maxFeePerGas: MAX_FEE, maxPriorityFeePerGas: PRIO_FEE,
    });
    tx.signature = w.signingKey.sign(tx.unsignedHash);
    const body = `{"jsonrpc":"2.0","id":${i},"method":"eth_sendRawTransaction","params":["${tx.serialized}"]}`;
    queues[a].push({ i, sched: (i * 1000) / rate, body, sent: null, done: null, ok: false, hash: null, err: null });
  }
  const signMs = now() - tSign0;
  agent.destroy();
  agent = newAgent();

  const block0 = Number(BigInt(await rpc("eth_blockNumber")));
  const logSize0 = logPath ? fileSize(logPath) : 0;
  const cpuClient0 = process.cpuUsage();
  const sys0 = readSysBusy();
  const s0 = sampleTree();
  const t0 = now() + 50; // small lead so every account loop is armed before t0
  const deadline = t0 + duration * 1000;
  let sEnd = null, sysEnd = null, blockEnd = null, logSizeEnd = null, cpuClientEnd = null;
  // 1 s time series over the window: node CPU%, other processes' CPU%, mined/s
  const series = [];
  const seriesSampler = (async () => {
    let prevT = s0.t, prevTicks = s0.ticks, prevSys = sys0, prevCli = cpuClient0;
    for (let k = 1; k <= Math.ceil(duration); k++) {
      await sleep(Math.max(0, t0 + k * 1000 - now()));
      if (now() > deadline + 500) break;
      const st = sampleTree(), sy = readSysBusy(), cl = process.cpuUsage();
      const dt = (st.t - prevT) / 1000;
      const nodePct = ((st.ticks - prevTicks) / CLK_TCK / dt) * 100;
      const cliPct = ((cl.user - prevCli.user + cl.system - prevCli.system) / 1e6 / dt) * 100;
      const sysPct = ((sy.busy - prevSys.busy) / CLK_TCK / dt) * 100;
      series.push({ s: k, nodeCpuPct: Math.round(nodePct), otherCpuPct: Math.round(sysPct - nodePct - cliPct), rssMb: Math.round(st.mainRssKb / 1024) });
      prevT = st.t; prevTicks = st.ticks; prevSys = sy; prevCli = cl;
    }
  })();
  const endSampler = (async () => {
    await sleep(Math.max(0, deadline - now()));
    sEnd = sampleTree();
    sysEnd = readSysBusy();
    cpuClientEnd = process.cpuUsage(cpuClient0);
    logSizeEnd = logPath ? fileSize(logPath) : 0;
  })();

  const errors = new Map();
  await Promise.all(queues.map(async (q) => {
    for (const tx of q) {
      const due = t0 + tx.sched;
      const wait = due - now();
      if (wait > 1) await sleep(wait);
      // Open-loop window over: the rest is not offered (counted as not mined), unless --drain
      // (every transfer is offered, as the devnet bench does, and counted by drainRule).
      if (!opts.drain && now() >= deadline) break;
      tx.sent = now();
      try {
        const resp = await post(tx.body);
        tx.done = now();
        const r = JSON.parse(resp);
        if (r.error) { tx.err = r.error.message; } else { tx.ok = true; tx.hash = r.result; }
      } catch (e) { tx.done = now(); tx.err = String(e.message || e); }
      if (tx.err) {
        const k = tx.err.slice(0, 160);
        errors.set(k, (errors.get(k) || 0) + 1);
      }
    }
  }));
  const drainedAt = now();
  await endSampler;
  await seriesSampler;
  blockEnd = Number(BigInt(await rpc("eth_blockNumber")));

  const all = queues.flat().sort((a, b) => a.i - b.i);
  const sent = all.filter((t) => t.sent != null);
  const ok = all.filter((t) => t.ok);
  const inWindow = ok.filter((t) => t.done <= deadline);
  // latency from the intended (scheduled) submit time: open-loop, includes waiting
  // behind the same account's previous tx; and from the actual HTTP send.
  for (const p of series) p.mined = inWindow.filter((t) => t.done > t0 + (p.s - 1) * 1000 && t.done <= t0 + p.s * 1000).length;
  const lat = inWindow.map((t) => t.done - (t0 + t.sched)).sort((a, b) => a - b);
  const rpcLat = inWindow.map((t) => t.done - t.sent).sort((a, b) => a - b);
  // bench.ts's rule: everything mined (drain included) over max(window, first offer → last
  // reply less the pipeline's own delay, the p10 latency of all mined transfers).
  const latAll = ok.map((t) => t.done - (t0 + t.sched)).sort((a, b) => a - b);
  const lastDone = ok.reduce((m, t) => Math.max(m, t.done), t0);
  const p10 = latAll.length ? latAll[Math.min(latAll.length - 1, Math.floor(0.1 * latAll.length))] : 0;
  const drainWindowS = Math.max(duration, (lastDone - t0 - p10) / 1000);

  // cross-check a sample of receipts: mined, status 1, one tx per block (automine)
  const sample = [];
  for (let k = 0; k < 10 && ok.length; k++) sample.push(ok[Math.floor((k * (ok.length - 1)) / 9)]);
  let receiptsOk = 0, oneTxBlocks = 0;
  for (const t of sample) {
    const rc = await rpc("eth_getTransactionReceipt", [t.hash]);
    if (rc && rc.status === "0x1") receiptsOk++;
    if (rc) {
      const b = await rpc("eth_getBlockByNumber", [rc.blockNumber, false]);
      if (b && b.transactions.length === 1) oneTxBlocks++;
    }
  }

  const wall = (sEnd.t - s0.t) / 1000;
  const offered = count;
  const nodeCpu = ((sEnd.ticks - s0.ticks) / CLK_TCK / wall) * 100;
  const clientCpu = ((cpuClientEnd.user + cpuClientEnd.system) / 1e6 / wall) * 100;
  const machineCpu = ((sysEnd.busy - sys0.busy) / CLK_TCK / wall) * 100;
  const minedPerSec = inWindow.length / duration;
  const res = {
    label,
    offeredRate: rate,
    durationS: duration,
    offered,
    sent: sent.length,
    notSentBeforeDeadline: offered - sent.length,
    minedTotal: ok.length,
    minedInWindow: inWindow.length,
    minedPerSec: r1(minedPerSec),
    minedOverOffered: r3(inWindow.length / offered),
    errors: ok.length === sent.length ? 0 : sent.length - ok.length,
    errorSamples: [...errors.entries()].slice(0, 5).map(([m, n]) => ({ message: m, count: n })),
    blocksMined: blockEnd - block0,
    drainAfterDeadlineMs: r1(Math.max(0, drainedAt - deadline)),
    latencyMs: { from: "scheduled submit time", p50: r1(pct(lat, 50)), p95: r1(pct(lat, 95)), p99: r1(pct(lat, 99)), max: r1(lat[lat.length - 1] ?? null) },
    rpcLatencyMs: { from: "actual HTTP send", p50: r1(pct(rpcLat, 50)), p95: r1(pct(rpcLat, 95)), p99: r1(pct(rpcLat, 99)) },
    nodeCpuPct: r1(nodeCpu),
    nodeMainCpuPct: r1(((sEnd.mainTicks - s0.mainTicks) / CLK_TCK / wall) * 100),
    nodeRssMb: r1(sEnd.mainRssKb / 1024),
    nodePeakRssMb: r1(sEnd.mainHwmKb / 1024),
    nodeTreeRssMb: r1(sEnd.treeRssKb / 1024),
    nodeThreads: sEnd.mainThreads,
    clientCpuPct: r1(clientCpu),
    machineCpuPct: r1(machineCpu),
    otherCpuPct: r1(machineCpu - nodeCpu - clientCpu), // other processes on the machine (interference), % of one core
    nodeLogBytesInWindow: logPath ? logSizeEnd - logSize0 : null,
    presignMs: r1(signMs),
    loadavg1AtStart: r3(os.loadavg()[0]),
    perSecond: series,
    receiptCheck: { sampled: sample.length, status1: receiptsOk, oneTxPerBlock: oneTxBlocks },
    drainRule: opts.drain
      ? {
          rule: "mined (drain included) / max(window, last reply - t0 - p10 latency)",
          mined: ok.length,
          windowS: r3(drainWindowS),
          pipelineDelayMs: r1(p10),
          minedPerSec: r1(ok.length / drainWindowS),
          latencyMs: { p50: r1(pct(latAll, 50)), p95: r1(pct(latAll, 95)), p99: r1(pct(latAll, 99)) },
        }
      : null,
  };
  return res;
}

// ---------------------------------------------------------------- main
let logPath = null;
async function main() {
  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[:.]/g, "-");
  let uptime = "";
  try { uptime = execSync("uptime").toString().trim(); } catch { /* ignore */ }
  console.log(`uptime: ${uptime}`);

  // Shared machine: wait (bounded) until other processes use < idleThreshold % of one core.
  const tIdle0 = now();
  let idleOther = await otherCpuPct(2000);
  while (idleOther > opts.idleThreshold && now() - tIdle0 < opts.waitIdle * 1000) {
    console.log(`machine busy: other processes use ${idleOther.toFixed(0)}% of a core; waiting (max ${opts.waitIdle} s)`);
    await sleep(5000);
    idleOther = await otherCpuPct(2000);
  }
  const preRunOtherCpuPct = r1(idleOther);
  console.log(`other load before start: ${preRunOtherCpuPct}% of one core${idleOther > opts.idleThreshold ? " (still busy: results will be disturbed)" : ""}`);

  const pkgVersion = (name) => {
    try { return JSON.parse(fs.readFileSync(path.join(HERE, "node_modules", name, "package.json"), "utf8")).version; } catch { return null; }
  };
  const hhVersion = pkgVersion("hardhat");
  const ethersVersion = pkgVersion("ethers");
  const edrVersion = pkgVersion("@nomicfoundation/edr");

  port = opts.port || (await freePort());
  let stdoutTarget = "ignore";
  if (!opts.quietNode) {
    fs.mkdirSync(path.join(HERE, "logs"), { recursive: true });
    logPath = path.join(HERE, "logs", `hardhat-node-${stamp}.log`);
    stdoutTarget = fs.openSync(logPath, "w");
  }
  const stderrPath = path.join(os.tmpdir(), `hardhat-node-stderr-${process.pid}.log`);
  const stderrFd = fs.openSync(stderrPath, "w");
  const cmd = ["hardhat", "node", "--hostname", "127.0.0.1", "--port", String(port)];
  console.log(`starting: npx ${cmd.join(" ")}  (stdout -> ${opts.quietNode ? "/dev/null" : path.relative(process.cwd(), logPath)})`);
  child = spawn("npx", cmd, {
    cwd: HERE,
    detached: true, // own process group so the whole tree can be killed
    stdio: ["ignore", stdoutTarget, stderrFd],
    env: { ...process.env, HARDHAT_DISABLE_TELEMETRY_PROMPT: "true", npm_config_update_notifier: "false" },
  });
  child.on("exit", (code, sig) => { childExited = true; if (!shuttingDown) console.error(`hardhat node exited early: code=${code} signal=${sig}`); });

  // wait for JSON-RPC
  const tStart = now();
  let clientVersion = null;
  while (now() - tStart < 90_000) {
    if (childExited) throw new Error(`hardhat node died during startup; stderr: ${fs.readFileSync(stderrPath, "utf8").slice(-2000)}`);
    try { clientVersion = await rpc("web3_clientVersion", [], 2000); break; } catch { await sleep(250); }
  }
  if (!clientVersion) throw new Error("hardhat node did not answer JSON-RPC within 90 s");
  const startupMs = now() - tStart;
  const chainId = BigInt(await rpc("eth_chainId"));
  if (chainId !== CHAIN_ID) throw new Error(`unexpected chainId ${chainId}`);
  console.log(`node up in ${(startupMs / 1000).toFixed(1)} s: ${clientVersion}, chainId ${chainId}, port ${port}`);
  if (opts.loggingOff) {
    await rpc("hardhat_setLoggingEnabled", [false]);
    console.log("node logging disabled with hardhat_setLoggingEnabled(false)");
  }

  const base = HDNodeWallet.fromPhrase(MNEMONIC, undefined, "m/44'/60'/0'/0");
  const wallets = [];
  for (let i = 0; i < N_ACCOUNTS; i++) {
    const w = base.deriveChild(i);
    wallets.push({ address: w.address, signingKey: new SigningKey(w.privateKey) });
  }
  const nodeAccounts = (await rpc("eth_accounts")).map((a) => a.toLowerCase());
  for (const w of wallets) if (!nodeAccounts.includes(w.address.toLowerCase())) throw new Error(`account ${w.address} not funded by node`);

  const steps = [];
  let warmup = null;
  if (opts.warmup > 0) {
    const wr = Math.min(opts.rates[0], 500);
    process.stdout.write(`warmup: ${wr} tx/s for ${opts.warmup} s ... `);
    warmup = await runStep(wallets, wr, opts.warmup, "warmup");
    console.log(`mined ${warmup.minedPerSec}/s`);
    await sleep(1000);
  }
  let sweepError = null;
  for (const rate of opts.rates) {
    process.stdout.write(`rate ${rate} tx/s for ${opts.duration} s ... `);
    let st;
    try { st = await runStep(wallets, rate, opts.duration, "sweep"); } catch (e) {
      sweepError = `rate ${rate}: ${e.message || e}`;
      console.log(`FAILED: ${sweepError}`);
      break;
    }
    steps.push(st);
    console.log(`mined ${st.minedPerSec}/s (ratio ${st.minedOverOffered}), p50 ${st.latencyMs.p50} ms, p99 ${st.latencyMs.p99} ms, node CPU ${st.nodeCpuPct}%, RSS ${st.nodeRssMb} MB${st.drainRule ? `, drain rule ${st.drainRule.minedPerSec}/s` : ""}${st.errors ? `, ${st.errors} errors` : ""}`);
    if (st.minedOverOffered < opts.stopRatio) break;
    await sleep(1000);
  }

  const sat = steps.reduce((a, b) => (b.minedPerSec > (a?.minedPerSec ?? -1) ? b : a), null);
  const sustained = steps.filter((s) => s.minedOverOffered >= opts.stopRatio).reduce((a, b) => (b.offeredRate > (a?.offeredRate ?? -1) ? b : a), null);
  const half = sat ? steps.reduce((a, b) => (Math.abs(b.offeredRate - sat.minedPerSec / 2) < Math.abs(a.offeredRate - sat.minedPerSec / 2) ? b : a)) : null;
  const saturated = steps.some((s) => s.minedOverOffered < opts.stopRatio);
  const final = sampleTree();

  const result = {
    benchmark: "hardhat-node-eth-transfers",
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    mode: opts.loggingOff ? "logging-off (hardhat_setLoggingEnabled false)" : opts.quietNode ? "quiet-node (stdout -> /dev/null)" : "default logging (stdout -> file)",
    config: { ...opts, accounts: N_ACCOUNTS, txType: "EIP-1559 (type 2)", maxFeePerGasWei: String(MAX_FEE), maxPriorityFeePerGasWei: String(PRIO_FEE), value: "1 wei", gasLimit: 21000 },
    versions: { node: process.version, hardhat: hhVersion, edr: edrVersion, ethers: ethersVersion, clientVersion },
    machine: { preRunOtherCpuPct, idleWaitS: r1((now() - tIdle0) / 1000 - 2), nproc: os.cpus().length, cpuModel: os.cpus()[0]?.model, memTotalGb: r1(os.totalmem() / 2 ** 30), kernel: os.release(), uptimeAtStart: uptime },
    node: { command: `npx ${cmd.join(" ")}`, startupMs: Math.round(startupMs), processTree: final.procs, mainPid: final.mainPid, peakRssMb: r1(final.mainHwmKb / 1024), logFile: logPath ? path.relative(path.resolve(HERE, ".."), logPath) : null },
    summary: {
      sweepError,
      saturated,
      saturationMinedPerSec: sat?.minedPerSec ?? null,
      saturationAtOfferedRate: sat?.offeredRate ?? null,
      highestSustainedOfferedRate: sustained?.offeredRate ?? null,
      halfSaturationStep: half ? { offeredRate: half.offeredRate, minedPerSec: half.minedPerSec, latencyMs: half.latencyMs, nodeCpuPct: half.nodeCpuPct } : null,
      nodePeakRssMb: r1(final.mainHwmKb / 1024),
      note: saturated ? null : "mined/offered never fell below the stop ratio: raise --rates to find saturation",
    },
    warmup,
    steps,
  };
  fs.mkdirSync(opts.out, { recursive: true });
  const outFile = opts.jsonOut ?? path.join(opts.out, `hardhat-${stamp}.json`);
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, JSON.stringify(result, null, 2) + "\n");

  // table
  const cols = ["offered/s", "mined/s", "ratio", "p50 ms", "p95 ms", "p99 ms", "node CPU%", "client CPU%", "other CPU%", "RSS MB", "errors"];
  const rows = steps.map((s) => [s.offeredRate, s.minedPerSec, s.minedOverOffered, s.latencyMs.p50, s.latencyMs.p95, s.latencyMs.p99, s.nodeCpuPct, s.clientCpuPct, s.otherCpuPct, s.nodeRssMb, s.errors].map(String));
  const w = cols.map((c, k) => Math.max(c.length, ...rows.map((r) => r[k].length)));
  console.log(`\nHardhat ${hhVersion} node (${result.mode}), ${opts.duration} s per rate, ${N_ACCOUNTS} accounts`);
  console.log(cols.map((c, k) => c.padStart(w[k])).join("  "));
  for (const r of rows) console.log(r.map((c, k) => c.padStart(w[k])).join("  "));
  console.log(`\nsaturation: ${result.summary.saturationMinedPerSec} transfers/s mined (offered ${result.summary.saturationAtOfferedRate}/s)${saturated ? "" : "  [NOT saturated]"}; peak RSS ${result.summary.nodePeakRssMb} MB`);
  console.log(`wrote ${path.relative(process.cwd(), outFile)}`);
  if (sweepError) throw new Error(`sweep stopped early: ${sweepError}`);
}

let shuttingDown = false;
main()
  .then(async () => {
    shuttingDown = true;
    killChild("SIGTERM");
    const t = now();
    while (!childExited && now() - t < 5000) await sleep(100);
    killChild("SIGKILL");
    agent.destroy();
    process.exit(0);
  })
  .catch((e) => {
    shuttingDown = true;
    console.error(e);
    killChild("SIGKILL");
    process.exit(1);
  });
