// Measurement from outside the nodes: /proc of the attacked process, the nodes' public
// /v1/status, and their JSON log files. Nothing here asks a node to report on itself beyond what
// any operator can read.
import { existsSync, readFileSync } from 'node:fs';
import type { CutOff } from './peer.js';
import type { NodeTarget, Target } from './target.js';
import { shardNodes } from './target.js';

/** Linux USER_HZ: /proc/<pid>/stat counts CPU time in these ticks. */
const CLOCK_TICKS = 100;

export interface ProcSample {
  rssMb: number;
  cpuSec: number;
}

export function procSample(pid: number): ProcSample | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuSec = (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return { rssMb: m ? Number(m[1]) / 1024 : NaN, cpuSec };
  } catch {
    return null;
  }
}

export interface ProcWindow {
  peakRssMb: number;
  /** RSS at the end of the window. */
  endRssMb: number;
  /** CPU seconds (user + system) the process used during the window. */
  cpuSec: number;
  samples: number;
}

/** Samples VmRSS and utime+stime of one process every `everyMs` until stopped. */
export class ProcSampler {
  private readonly first: ProcSample | null;
  private last: ProcSample | null;
  private peak = 0;
  private n = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly pid: number,
    everyMs = 250,
  ) {
    this.first = procSample(pid);
    this.last = this.first;
    this.take();
    this.timer = setInterval(() => this.take(), everyMs);
  }

  private take(): void {
    const s = procSample(this.pid);
    if (!s) return;
    this.last = s;
    this.n++;
    if (s.rssMb > this.peak) this.peak = s.rssMb;
  }

  stop(): ProcWindow {
    clearInterval(this.timer);
    this.take();
    return {
      peakRssMb: this.peak,
      endRssMb: this.last?.rssMb ?? NaN,
      cpuSec: this.first && this.last ? this.last.cpuSec - this.first.cpuSec : NaN,
      samples: this.n,
    };
  }
}

export interface NodeStatus {
  finalizedHeight: number;
  networkHeight: number;
  round: number;
  syncing: boolean;
  eventLoopLagMs: number;
  peers: number;
}

/** `/v1/status` of a node from 127.0.0.1, or null if it does not answer within `timeoutMs`. */
export async function status(n: NodeTarget, timeoutMs = 3000): Promise<NodeStatus | null> {
  try {
    const r = await fetch(`${n.apiUrl}/v1/status`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!r.ok) return null;
    return (await r.json()) as NodeStatus;
  } catch {
    return null;
  }
}

export interface Heights {
  /** Highest finalized height any node of the shard reports: the shard's finality. */
  shard: number;
  /** The attacked node's own (null if it did not answer). */
  victim: number | null;
}

/** The shard's finalized head and the victim's, read at one moment (each node gets `timeoutMs`, the victim a few tries). */
export async function heights(t: Target, victim: NodeTarget, timeoutMs = 3000): Promise<Heights> {
  const nodes = shardNodes(t);
  const ss = await Promise.all(nodes.map((n) => status(n, timeoutMs)));
  let v = ss[nodes.indexOf(victim)] ?? null;
  for (let i = 0; v === null && i < 2 && nodes.includes(victim); i++) v = await status(victim, timeoutMs);
  const answered = ss.filter((s): s is NodeStatus => s !== null).map((s) => s.finalizedHeight);
  return { shard: answered.length ? Math.max(...answered) : -1, victim: v?.finalizedHeight ?? null };
}

/**
 * Polls one node's /v1/status every `everyMs` during a window: what it says about itself
 * (syncing, network height, event-loop lag) and how often it did not answer an honest client.
 */
export class StatusPoller {
  readonly samples: (NodeStatus | null)[] = [];
  private readonly timer: NodeJS.Timeout;
  private inFlight = false;

  constructor(
    readonly node: NodeTarget,
    everyMs = 1000,
  ) {
    this.timer = setInterval(() => {
      if (this.inFlight) return;
      this.inFlight = true;
      void status(node, Math.max(500, everyMs)).then((s) => {
        this.samples.push(s);
        this.inFlight = false;
      });
    }, everyMs);
  }

  stop(): { polls: number; unanswered: number; syncingFraction: number; maxNetworkHeight: number; maxLagMs: number } {
    clearInterval(this.timer);
    const ok = this.samples.filter((s): s is NodeStatus => s !== null);
    return {
      polls: this.samples.length,
      unanswered: this.samples.length - ok.length,
      syncingFraction: ok.length ? ok.filter((s) => s.syncing).length / ok.length : 0,
      maxNetworkHeight: ok.reduce((m, s) => Math.max(m, s.networkHeight), -1),
      maxLagMs: ok.reduce((m, s) => Math.max(m, s.eventLoopLagMs ?? 0), 0),
    };
  }
}

export interface LogLine {
  t?: string;
  msg: string;
  peerId?: string;
  [k: string]: unknown;
}

/** The JSON lines of a log file written at or after `sinceMs` (lines without a time are kept). */
export function logLinesSince(file: string, sinceMs: number): LogLine[] {
  if (!existsSync(file)) return [];
  const out: LogLine[] = [];
  for (const l of readFileSync(file, 'utf8').split('\n')) {
    if (!l.startsWith('{')) continue;
    let j: LogLine;
    try {
      j = JSON.parse(l) as LogLine;
    } catch {
      continue;
    }
    if (j.t !== undefined && Date.parse(j.t) < sinceMs) continue;
    out.push(j);
  }
  return out;
}

const PENALTY_MSGS = new Set(['p2p: peer penalised', 'p2p: peer banned after repeated offences']);

export interface Penalty {
  node: string;
  peerId: string;
  at: number;
  msg: string;
  reason: string;
}

/** Penalties and bans the nodes logged since `sinceMs` (optionally only those of `peerIds`). */
export function penalties(nodes: NodeTarget[], sinceMs: number, peerIds?: ReadonlySet<string>): Penalty[] {
  const out: Penalty[] = [];
  for (const n of nodes) {
    for (const l of logLinesSince(n.logFile, sinceMs)) {
      if (!PENALTY_MSGS.has(l.msg) || typeof l.peerId !== 'string') continue;
      if (peerIds && !peerIds.has(l.peerId)) continue;
      out.push({ node: n.name, peerId: l.peerId, at: l.t ? Date.parse(l.t) : sinceMs, msg: l.msg, reason: String(l['reason'] ?? '') });
    }
  }
  return out.sort((a, b) => a.at - b.at);
}

/** The first logged penalty of an attacker identity, as a cut-off. */
export function penaltyCutOff(nodes: NodeTarget[], sinceMs: number, attackerIds: ReadonlySet<string>): CutOff | null {
  const p = penalties(nodes, sinceMs, attackerIds)[0];
  return p ? { at: p.at, how: 'penalised', detail: `${p.node} logged "${p.msg}" (${p.reason})` } : null;
}

/** A counter of a node's Prometheus text (the sum over the series matching `labels`), or null. */
export async function metricValue(n: NodeTarget, name: string, labels: Record<string, string> = {}): Promise<number | null> {
  try {
    const r = await fetch(`${n.apiUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
    if (!r.ok) return null;
    let sum = 0;
    for (const line of (await r.text()).split('\n')) {
      if (!line.startsWith(name)) continue;
      const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
      if (!m || m[1] !== name) continue;
      const ls = m[2] ?? '';
      if (Object.entries(labels).every(([k, v]) => ls.includes(`${k}="${v}"`))) sum += Number(m[3]);
    }
    return sum;
  } catch {
    return null;
  }
}
