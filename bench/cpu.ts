// CPU cost per finalized transaction, from the kernel's counters and the nodes' own GC metric.
//
// - Total CPU of a process: utime + stime of /proc/<pid>/stat (every thread: the event loop,
//   the verify workers, libuv's pool, V8's GC and compiler threads).
// - Main-thread CPU: the same fields of /proc/<pid>/task/<pid>/stat. A process's main thread
//   has the process's id as its thread id, and in Node that thread runs the event loop (JS,
//   socket I/O, and the part of GC that stops JS).
// - GC: prom-client's default metric qnexus_nodejs_gc_duration_seconds (a histogram by `kind`,
//   enabled by registerProcessMetrics in @qnexus/runtime): its _sum summed over kinds is the time
//   spent in GC pauses. A delta over a step, like the CPU counters.
// ms per finalized tx = CPU (or GC) seconds over the step ÷ the transactions finalized in the
// step that the process had to handle: its own shard's for shard nodes, all of them for the beacon.
import { readFileSync } from 'node:fs';

/** Linux's USER_HZ: /proc's CPU times are in these ticks (100 on every mainstream kernel). */
export const USER_HZ = 100;

/** utime + stime (seconds) of one /proc stat line (process or thread); null if it does not parse. */
export function parseStatCpuSec(stat: string): number | null {
  // The command name (field 2) is in parentheses and may hold spaces or ')': cut at the last ')'.
  const close = stat.lastIndexOf(')');
  if (close < 0) return null;
  const f = stat.slice(close + 2).split(' ');
  // After the name: state (field 3) is f[0], so utime (14) is f[11] and stime (15) f[12].
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime) || f.length < 13) return null;
  return (utime + stime) / USER_HZ;
}

export interface ProcCpu {
  /** Every thread of the process, seconds. */
  totalSec: number;
  /** The main (event-loop) thread only, seconds; null if its task entry could not be read. */
  mainSec: number | null;
}

/** CPU seconds of `pid` so far, total and main thread; null if the process is gone. */
export function procCpu(pid: number): ProcCpu | null {
  let totalSec: number | null;
  try {
    totalSec = parseStatCpuSec(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
  if (totalSec === null) return null;
  let mainSec: number | null = null;
  try {
    mainSec = parseStatCpuSec(readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8'));
  } catch {
    // the task directory is unreadable: total only
  }
  return { totalSec, mainSec };
}

/** Seconds spent in GC so far from a Prometheus text page: qnexus_nodejs_gc_duration_seconds_sum summed over its labels; null if absent. */
export function parseGcSeconds(metricsText: string): number | null {
  let sum = 0;
  let seen = false;
  for (const line of metricsText.split('\n')) {
    const m = /^qnexus_nodejs_gc_duration_seconds_sum(\{[^}]*\})?\s+([0-9.eE+-]+)\s*$/.exec(line.trim());
    if (!m) continue;
    const v = Number(m[2]);
    if (!Number.isFinite(v)) continue;
    sum += v;
    seen = true;
  }
  return seen ? sum : null;
}

/** One process's deltas over a step. */
export interface ProcCost {
  name: string;
  role: string;
  /** null: the beacon (it serves every shard). */
  shard: number | null;
  cpuSec: number | null;
  mainCpuSec: number | null;
  gcSec: number | null;
}

/** avg and max over a role's processes of a per-tx figure, in ms (null when no process had it). */
export interface AvgMax {
  avg: number | null;
  max: number | null;
}

export interface RoleCost {
  processes: number;
  /** Main-thread CPU ms per finalized tx. */
  mainMsPerTx: AvgMax;
  /** All threads' CPU ms per finalized tx. */
  totalMsPerTx: AvgMax;
  /** GC pause ms per finalized tx. */
  gcMsPerTx: AvgMax;
}

const r3 = (x: number) => Number(x.toFixed(3));

function avgMax(xs: (number | null)[]): AvgMax {
  const v = xs.filter((x): x is number => x !== null && Number.isFinite(x));
  if (!v.length) return { avg: null, max: null };
  return { avg: r3(v.reduce((a, b) => a + b, 0) / v.length), max: r3(Math.max(...v)) };
}

/**
 * Per role (validator, full, beacon): CPU and GC ms per finalized transaction, averaged and max
 * over the role's processes. `finalizedByShard[k]` is what shard k finalized in the step; a
 * shard node's cost is divided by its own shard's count, the beacon's by the total. A process
 * whose divisor is 0 has no per-tx figure.
 */
export function costPerTxByRole(procs: ProcCost[], finalizedByShard: number[]): Record<string, RoleCost> {
  const total = finalizedByShard.reduce((a, b) => a + b, 0);
  const roles = [...new Set(procs.map((p) => p.role))].sort();
  const out: Record<string, RoleCost> = {};
  for (const role of roles) {
    const ps = procs.filter((p) => p.role === role);
    const per = (p: ProcCost, x: number | null) => {
      const n = p.shard === null ? total : (finalizedByShard[p.shard] ?? 0);
      return x === null || n <= 0 ? null : (1000 * x) / n;
    };
    out[role] = {
      processes: ps.length,
      mainMsPerTx: avgMax(ps.map((p) => per(p, p.mainCpuSec))),
      totalMsPerTx: avgMax(ps.map((p) => per(p, p.cpuSec))),
      gcMsPerTx: avgMax(ps.map((p) => per(p, p.gcSec))),
    };
  }
  return out;
}

/** CPU of this process (all threads: process.cpuUsage is getrusage(RUSAGE_SELF)) and of its main thread, seconds. */
export function selfCpu(): { totalSec: number; mainSec: number | null } {
  const u = process.cpuUsage();
  return { totalSec: (u.user + u.system) / 1e6, mainSec: procCpu(process.pid)?.mainSec ?? null };
}
