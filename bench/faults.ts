// npm run bench:faults -- [--baseline <git-rev> | --baseline-tree <dir>] [--current true|false]
//                         [--duration-s 180] [--rate 14] [--accounts 32] [--grace-s 60]
//                         [--base-port 26000] [--out bench/results] [--smoke]
//
// Issue 13's fault workload, measured before and after in one run. For each tree (the baseline
// first, then this checkout) a fresh default-shaped devnet (2 shards × (4 validators + 1 full
// node) + the beacon, 1 s slots, the launcher's genesis defaults; the same in both trees) runs:
//
// Load: open loop at --rate tx/s in total, a quarter each of intra-shard on shard 0, cross-shard
//   0→1, intra-shard on shard 1, cross-shard 1→0; transaction k goes to node k of its shard
//   (validators and full nodes in turn). Senders are --accounts funded accounts per shard, each a
//   wallet that sends one transaction at a time in nonce order (signed when its turn comes). The
//   client policy is the same for both trees: on 503, 429, a refused or reset connection or a
//   5 s timeout, retry the same bytes after Retry-After (at most 5 s) or 500 ms, at most 5 tries.
//   A definite refusal gives the nonce back; an answer-less end (timeout, reset) keeps it used.
//   Nothing is ever resubmitted after a 202.
// Faults: on one schedule scaled to the duration (fractions of it; outage lengths ×
//   min(1, duration/180 s)): SIGKILL s0-validator-1 (restart 5 s later), SIGKILL s1-full-0 (5 s),
//   SIGKILL the beacon (5 s), SIGSTOP s1-validator-2 for 10 s, SIGKILL s0-validator-2 and
//   s0-validator-3 together for 15 s, and SIGKILL s1-validator-0 right after its 3rd
//   acknowledgement once armed (5 s). A network partition is left out: this host has no iptables
//   or nft, and a node cannot be moved into a network namespace after it started.
// Measures per tree: first-attempt outcomes (NODE_BUSY share), accepted (202) and finalized tx/s,
//   acknowledged-but-never-final transactions (and whether each is the first loss of its sender or
//   stuck behind an earlier one), cross-shard decisions (abort rate, aborts although both sides
//   prepared in a block of slot ≤ deadline, commits decided after the deadline, decision latency
//   in slots), the beacon's lag after its restart, peak RSS and CPU per process class, warnings in
//   the logs; sanity: no transaction final twice, beacon and shards agree, supply identities.
//
// Decision latency: the beacon's decision slot minus the slot of the source block that escrowed
// the transfer (and, second figure, minus the wall-clock slot of the first submission attempt).
// Beacon lag: wall-clock slot minus the newest shard block slot the beacon has processed (the
// `heads` of its /v1/status, updated inside its serial queue from the proposers' per-block
// reports, so it includes about one slot of finality and report delay), plus any
// qnexus_beacon_*lag* / *processed* metric the tree exports.
//
// Output: bench/results/faults-<time>.json and a before | after table on stdout.
// --smoke: 30 s of load (unless --duration-s), 20 s of grace, no baseline unless one is given.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { Devnet, DevnetOptions } from '@qnexus/cli';
import { unlockKeystoreFile } from '@qnexus/cli';
import { backendAvailable } from '@qnexus/crypto';
import { buildTransfer, buildXTransfer, type SigningKey } from '@qnexus/sdk';
import { baselineTreeFromDir, buildBaseline, Cleanups, currentTree, table, type Tree, getJson, http, startTreeDevnet } from './lib-trees.js';

const { values: args } = parseArgs({
  options: {
    baseline: { type: 'string' },
    'baseline-tree': { type: 'string' },
    current: { type: 'string', default: 'true' },
    'duration-s': { type: 'string' },
    rate: { type: 'string', default: '14' },
    accounts: { type: 'string', default: '32' },
    'grace-s': { type: 'string' },
    'base-port': { type: 'string', default: '26000' },
    out: { type: 'string', default: 'bench/results' },
    smoke: { type: 'boolean', default: false },
    // Keep each devnet's directory (data dirs and process logs) for inspection instead of removing it.
    'keep-logs': { type: 'boolean', default: false },
    // Node flags for every process of the current tree's devnet, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    'node-flags': { type: 'string' },
  },
});

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const SMOKE = args.smoke === true;
const DURATION_MS = Number(args['duration-s'] ?? (SMOKE ? 30 : 180)) * 1000;
const RATE = Number(args.rate);
const ACCOUNTS = Number(args.accounts);
const GRACE_MS = Number(args['grace-s'] ?? (SMOKE ? 20 : 60)) * 1000;
const BASE_PORT = Number(args['base-port']);
if (!(DURATION_MS >= 10_000) || !(RATE > 0 && RATE <= 500) || !(ACCOUNTS >= 2 && ACCOUNTS <= 256) || !(GRACE_MS >= 0)) {
  throw new Error('--duration-s ≥ 10, --rate in (0, 500], --accounts in 2..256, --grace-s ≥ 0');
}
if (!(BASE_PORT > 1024 && BASE_PORT < 31_000)) throw new Error('--base-port must be in 1025..30999');

/** The client policy both trees get (see the header). */
const POLICY = { maxTries: 5, retryMs: 500, retryAfterCapMs: 5000, timeoutMs: 5000 };
/** Outage lengths scale with the run, so a smoke run's faults fit in it. */
const SCALE = Math.min(1, DURATION_MS / 180_000);
const outage = (nominalMs: number, minMs: number) => Math.max(minMs, Math.round(nominalMs * SCALE));
const SIGN_BACKEND = backendAvailable('pqclean') ? 'pqclean' : 'noble';
/** A node acknowledging this many transactions after the kill-after-ack fault is armed is SIGKILLed at once. */
const KILL_AFTER_ACKS = 3;
/** Acks this close before a kill count as "acknowledged just before the kill". */
const JUST_BEFORE_MS = 2000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const cleanups = new Cleanups();
cleanups.onSignals('stopping devnets and removing the baseline worktree');

// ---------------------------------------------------------------- HTTP (http/getJson: lib-trees.ts)

function errorCode(body: unknown): string {
  const e = (body as { error?: { code?: unknown } } | undefined)?.error;
  return typeof e?.code === 'string' ? e.code : '?';
}

/** What a request that got no HTTP answer ended with. `refused`: never delivered (safe to reuse the nonce). */
function networkOutcome(e: unknown): 'timeout' | 'refused' | 'reset' | 'network' {
  const err = e as { name?: string; cause?: { code?: string; name?: string } };
  if (err.name === 'TimeoutError' || err.cause?.name === 'TimeoutError') return 'timeout';
  const code = err.cause?.code ?? '';
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') return 'reset';
  return 'network';
}

interface Submission {
  /** One per try: `202`, `503 NODE_BUSY`, `409 TX_NONCE_TAKEN`, `timeout`, `refused`, … */
  attempts: string[];
  acked: boolean;
  ackAt: number | null;
  /**
   * No definite answer (the last try timed out or was reset, or a retry after such a try found
   * the nonce already taken): the node may have admitted it, so the wallet keeps the nonce used.
   */
  ambiguous: boolean;
}

async function submit(apiUrl: string, raw: Uint8Array, onAck: () => void): Promise<Submission> {
  const attempts: string[] = [];
  let unanswered = false;
  for (let i = 0; i < POLICY.maxTries; i++) {
    let wait = POLICY.retryMs;
    try {
      const a = await http(`${apiUrl}/v1/txs`, { method: 'POST', body: raw, timeoutMs: POLICY.timeoutMs });
      if (a.status === 202) {
        attempts.push('202');
        onAck();
        return { attempts, acked: true, ackAt: performance.now(), ambiguous: false };
      }
      const code = errorCode(a.body);
      attempts.push(`${a.status} ${code}`);
      // An earlier try without an answer may have admitted these very bytes.
      if (unanswered && (code === 'TX_NONCE_TAKEN' || code === 'TX_NONCE_STALE')) return { attempts, acked: false, ackAt: null, ambiguous: true };
      if (a.status !== 503 && a.status !== 429) return { attempts, acked: false, ackAt: null, ambiguous: false };
      const ra = a.retryAfter !== null ? Number(a.retryAfter) * 1000 : NaN;
      if (Number.isFinite(ra) && ra >= 0) wait = Math.min(POLICY.retryAfterCapMs, ra);
    } catch (e) {
      const o = networkOutcome(e);
      attempts.push(o);
      if (o !== 'refused') unanswered = true;
    }
    if (i + 1 < POLICY.maxTries) await sleep(wait);
  }
  const last = attempts[attempts.length - 1]!;
  return { attempts, acked: false, ackAt: null, ambiguous: unanswered && (last === 'timeout' || last === 'reset' || last === 'network') };
}

// ---------------------------------------------------------------- records

type Kind = 'transfer' | 'xtransfer';

interface XRecord {
  decision: 'commit' | 'abort' | null;
  decisionSlot: number | null;
  reason: string | null;
  deadline: number | null;
  done: boolean;
  srcPrepareSlot: number | null;
  /** The destination's prepare (or refusal) block slot. */
  dstPrepareSlot: number | null;
  dstRefused: string | null;
  /** The source and destination nodes' own records (status/decision). */
  srcNode: string | null;
  dstNode: string | null;
}

interface TxRec {
  hash: string;
  kind: Kind;
  src: number;
  dst: number;
  account: string;
  nonce: string;
  node: string;
  /** ms after load start */
  offerMs: number;
  firstAttemptMs: number;
  submitSlot: number;
  attempts: string[];
  acked: boolean;
  ackMs: number | null;
  ambiguous: boolean;
  finalMs: number | null;
  finalSlot: number | null;
  finalHeight: number | null;
  /** In how many finalized blocks the observer saw it (must be ≤ 1). */
  timesFinal: number;
  x?: XRecord;
}

interface Offer {
  k: number;
  kind: Kind;
  src: number;
  dst: number;
  offerMs: number;
}

interface Wallet {
  address: string;
  shard: number;
  idx: number;
  key: SigningKey;
  nonce: bigint;
  queue: Offer[];
  busy: boolean;
  /** Hashes sent (acked or ambiguous) and not seen final yet. */
  outstanding: Set<string>;
}

// ---------------------------------------------------------------- devnet of a tree

interface Net {
  devnet: Devnet;
  chainId: string;
  genesisTime: number;
  slotMs: number;
  xferTimeoutSlots: number;
  /** Per shard: its nodes (validators, then full nodes). */
  shardNodes: string[][];
  wallets: Wallet[][];
  url(name: string): string;
  wallSlot(): number;
  /** Stop every process and remove the devnet's directory. */
  close(): Promise<void>;
}

type StartDevnet = (o: DevnetOptions) => Promise<Devnet>;

let portSlot = 0;
async function openNet(tree: Tree): Promise<Net> {
  // The tree's own launcher (and through it its own node and beacon binaries).
  const mod = (await import(pathToFileURL(join(tree.root, 'packages/cli/dist/index.js')).href)) as { startDevnet: StartDevnet };
  const nodeCommand = args['node-flags'] && tree.label !== 'before' ? { command: process.execPath, args: [...args['node-flags'].split(/\s+/).filter(Boolean), join(tree.root, 'packages/cli/dist/bin.js')] } : undefined;
  const { devnet: d, close } = await startTreeDevnet({
    prefix: `qnexus-faults-${tree.label}-`,
    // A fresh 200-port range per devnet.
    basePort: () => BASE_PORT + (portSlot++ % 20) * 200,
    // A restart on a saturated 2-core host can take well over the launcher's default 30 s: a node
    // given up on is stopped, which would turn a slow start into an outage of its own.
    start: (dir, basePort) =>
      mod.startDevnet({ dir, basePort, reset: true, accounts: ACCOUNTS, logFormat: 'json', scryptN: 1 << 12, readyTimeoutMs: 90_000, ...(nodeCommand ? { nodeCommand } : {}) }),
    cleanups,
    keepDir: !!args['keep-logs'],
  });
  const g = d.genesis;
  const shards = g.shardCount;
  const pass = readFileSync(d.passphraseFile, 'utf8').trim();
  const wallets: Wallet[][] = Array.from({ length: shards }, () => []);
  for (const a of d.manifest.accounts) {
    const { key } = await unlockKeystoreFile(a.keystore, pass);
    wallets[a.shard]!.push({
      address: a.address,
      shard: a.shard,
      idx: wallets[a.shard]!.length,
      key: { publicKey: key.publicKey, secretKey: key.secretKey, scheme: key.scheme, backend: SIGN_BACKEND },
      nonce: 0n,
      queue: [],
      busy: false,
      outstanding: new Set(),
    });
  }
  const nodes = d.manifest.processes.filter((p) => p.role !== 'beacon');
  return {
    devnet: d,
    chainId: g.chainId,
    genesisTime: Number(g.genesisTime),
    slotMs: Number(g.slotMs),
    xferTimeoutSlots: Number(g.xferTimeoutSlots),
    shardNodes: Array.from({ length: shards }, (_, k) => nodes.filter((p) => p.shard === k).map((p) => p.name)),
    wallets,
    url: (name) => d.process(name).apiUrl,
    wallSlot: () => Math.floor((Date.now() - Number(g.genesisTime)) / Number(g.slotMs)),
    close,
  };
}

/** The nodes of a shard whose process runs. */
function runningNodes(net: Net, shard: number): string[] {
  return net.shardNodes[shard]!.filter((n) => net.devnet.isRunning(n));
}

/** GET a path from the running nodes of a shard in turn until one answers 200. */
async function shardGet<T>(net: Net, shard: number, path: string): Promise<T | null> {
  for (const n of runningNodes(net, shard)) {
    const r = await getJson<T>(net.url(n) + path);
    if (r !== null) return r;
  }
  return null;
}

// ---------------------------------------------------------------- finality observer

interface Observer {
  /** shard → height → slot, for every finalized block seen. */
  slots: Map<number, number>[];
  blocks: number;
  stop(): Promise<void>;
}

/** Follows every shard's finalized chain through whichever node answers; counts our transactions in it. */
function observe(net: Net, recs: Map<string, TxRec>, t0: number): Observer {
  const o: Observer = { slots: net.shardNodes.map(() => new Map()), blocks: 0, stop: async () => undefined };
  let done = false;
  const loops = net.shardNodes.map(async (_, shard) => {
    let observed = 0;
    let turn = 0;
    while (!done) {
      const names = runningNodes(net, shard);
      const name = names[turn++ % Math.max(1, names.length)];
      if (name) {
        try {
          const st = await getJson<{ finalizedHeight: number }>(`${net.url(name)}/v1/status`, 3000);
          for (let h = observed + 1; st && h <= st.finalizedHeight && !done; h++) {
            const b = await getJson<{ height: number; slot: number; txs: string[] }>(`${net.url(name)}/v1/blocks/${h}`, 5000);
            if (!b) break;
            const now = performance.now() - t0;
            o.slots[shard]!.set(h, b.slot);
            o.blocks++;
            for (const t of b.txs) {
              const r = recs.get(t);
              if (!r) continue;
              r.timesFinal++;
              if (r.finalMs === null) {
                r.finalMs = now;
                r.finalSlot = b.slot;
                r.finalHeight = h;
                walletOf(net, r).outstanding.delete(r.hash);
              }
            }
            observed = h;
            turn--; // stay on a node that answers
          }
        } catch {
          // next node
        }
      }
      await sleep(250);
    }
  });
  o.stop = async () => {
    done = true;
    await Promise.all(loops);
  };
  return o;
}

function walletOf(net: Net, r: TxRec): Wallet {
  return net.wallets[r.src]!.find((w) => w.address === r.account)!;
}

// ---------------------------------------------------------------- load

interface Load {
  recs: Map<string, TxRec>;
  /** Offers no wallet could take (never happens unless every queue is long). */
  offered: number;
  /** Acks per node name, with times (for the kill-after-ack fault). */
  onAck: (node: string, hash: string) => void;
  done: Promise<void>;
}

function startLoad(net: Net, t0: number, ackHook: (node: string, hash: string) => void): Load {
  const recs = new Map<string, TxRec>();
  const nodeTurn = net.shardNodes.map(() => 0);
  const pick = net.wallets.map(() => 0);
  const load: Load = { recs, offered: 0, onAck: ackHook, done: Promise.resolve() };

  const send = async (w: Wallet): Promise<void> => {
    if (w.busy) return;
    w.busy = true;
    try {
      for (let o = w.queue.shift(); o; o = w.queue.shift()) {
        const dstWallets = net.wallets[o.dst]!;
        const to = o.kind === 'transfer' ? dstWallets[(w.idx + 1) % dstWallets.length]!.address : dstWallets[w.idx % dstWallets.length]!.address;
        const p = { key: w.key, chainId: net.chainId, to, amount: 1n, fee: 1n, nonce: w.nonce };
        const tx = o.kind === 'xtransfer' ? buildXTransfer({ ...p, shardCount: net.wallets.length }) : buildTransfer(p);
        const names = net.shardNodes[o.src]!;
        const node = names[nodeTurn[o.src]!++ % names.length]!;
        const firstAttemptMs = performance.now() - t0;
        const rec: TxRec = {
          hash: tx.hash,
          kind: o.kind,
          src: o.src,
          dst: o.dst,
          account: w.address,
          nonce: w.nonce.toString(),
          node,
          offerMs: o.offerMs,
          firstAttemptMs,
          submitSlot: net.wallSlot(),
          attempts: [],
          acked: false,
          ackMs: null,
          ambiguous: false,
          finalMs: null,
          finalSlot: null,
          finalHeight: null,
          timesFinal: 0,
        };
        recs.set(tx.hash, rec);
        const s = await submit(net.url(node), tx.raw, () => load.onAck(node, tx.hash));
        rec.attempts = s.attempts;
        rec.acked = s.acked;
        rec.ackMs = s.ackAt === null ? null : s.ackAt - t0;
        rec.ambiguous = s.ambiguous;
        if (s.acked || s.ambiguous) {
          w.nonce++;
          if (rec.finalMs === null) w.outstanding.add(tx.hash);
        }
      }
    } finally {
      w.busy = false;
    }
  };

  load.done = (async () => {
    const senders: Promise<void>[] = [];
    for (let k = 0; ; k++) {
      const at = (k * 1000) / RATE;
      if (at >= DURATION_MS) break;
      const wait = t0 + at - performance.now();
      if (wait > 0) await sleep(wait);
      // k mod 4: intra on 0, cross 0→1, intra on 1, cross 1→0.
      const src = (k >> 1) % 2;
      const kind: Kind = k % 2 === 0 ? 'transfer' : 'xtransfer';
      const dst = kind === 'transfer' ? src : 1 - src;
      // The least loaded wallet of the shard (queued + unfinalized), round robin among equals.
      const ws = net.wallets[src]!;
      let best: Wallet | undefined;
      for (let i = 0; i < ws.length; i++) {
        const w = ws[(pick[src]! + i) % ws.length]!;
        const l = w.queue.length + w.outstanding.size + (w.busy ? 1 : 0);
        if (!best || l < best.queue.length + best.outstanding.size + (best.busy ? 1 : 0)) best = w;
        if (l === 0) break;
      }
      pick[src] = (best!.idx + 1) % ws.length;
      best!.queue.push({ k, kind, src, dst, offerMs: performance.now() - t0 });
      load.offered++;
      senders.push(send(best!));
    }
    await Promise.all(senders);
  })();
  return load;
}

// ---------------------------------------------------------------- faults

interface FaultEvent {
  fault: string;
  targets: string[];
  /** ms after load start */
  atMs: number;
  downMs?: number;
  upMs?: number;
  /** Restart call → API answering. */
  restartTookMs?: number;
  /** Transactions the killed node acknowledged within JUST_BEFORE_MS of its kill. */
  ackedJustBefore?: string[];
  error?: string;
}

interface FaultPlan {
  events: FaultEvent[];
  done: Promise<void>;
  ackHook: (node: string, hash: string) => void;
  /** ms after load start: killed, restarted (process spawned), API answering. */
  beaconRestart: { downAt: number; startAt: number; upAt: number } | null;
}

function startFaults(net: Net, t0: number, recentAcks: Map<string, { hash: string; t: number }[]>): FaultPlan {
  const D = DURATION_MS;
  const restartAfter = outage(5000, 2000);
  const ms = () => performance.now() - t0;
  const events: FaultEvent[] = [];
  const plan: FaultPlan = { events, done: Promise.resolve(), ackHook: () => undefined, beaconRestart: null };
  const at = async (frac: number) => {
    const w = t0 + frac * D - performance.now();
    if (w > 0) await sleep(w);
  };
  const ackedBefore = (node: string) => {
    const now = performance.now();
    return (recentAcks.get(node) ?? []).filter((a) => now - a.t <= JUST_BEFORE_MS).map((a) => a.hash);
  };
  const killRestart = async (fault: string, targets: string[], downFor: number, kill: () => Promise<void> = async () => undefined) => {
    const ev: FaultEvent = { fault, targets, atMs: ms() };
    events.push(ev);
    try {
      await kill();
      if (ev.atMs === undefined) ev.atMs = ms();
      ev.ackedJustBefore = targets.flatMap(ackedBefore);
      await Promise.all(targets.map((n) => net.devnet.kill(n, 'SIGKILL')));
      ev.downMs = ms();
      await sleep(downFor);
      const r0 = ms();
      await Promise.all(targets.map((n) => net.devnet.restart(n)));
      ev.upMs = ms();
      ev.restartTookMs = ev.upMs - r0;
    } catch (e) {
      ev.error = (e as Error).message;
    }
    return ev;
  };
  const tasks: Promise<unknown>[] = [];
  tasks.push(at(0.1).then(() => killRestart('SIGKILL validator', ['s0-validator-1'], restartAfter)));
  tasks.push(at(0.2).then(() => killRestart('SIGKILL full node', ['s1-full-0'], restartAfter)));
  tasks.push(
    at(0.3).then(async () => {
      const ev = await killRestart('SIGKILL beacon', ['beacon'], restartAfter);
      if (ev.downMs !== undefined && ev.upMs !== undefined) plan.beaconRestart = { downAt: ev.downMs, startAt: ev.upMs - ev.restartTookMs!, upAt: ev.upMs };
    }),
  );
  tasks.push(
    at(0.45).then(async () => {
      const ev: FaultEvent = { fault: 'SIGSTOP validator', targets: ['s1-validator-2'], atMs: ms() };
      events.push(ev);
      try {
        await net.devnet.kill('s1-validator-2', 'SIGSTOP');
        ev.downMs = ms();
        await sleep(outage(10_000, 2000));
      } catch (e) {
        ev.error = (e as Error).message;
      } finally {
        await net.devnet.kill('s1-validator-2', 'SIGCONT').catch(() => undefined);
        ev.upMs = ms();
      }
    }),
  );
  tasks.push(at(0.6).then(() => killRestart('SIGKILL 2 of 4 validators of shard 0', ['s0-validator-2', 's0-validator-3'], outage(15_000, 3000))));
  tasks.push(
    at(0.8).then(() =>
      killRestart('SIGKILL right after acks', ['s1-validator-0'], restartAfter, async () => {
        // Armed: the node dies the moment it has acknowledged KILL_AFTER_ACKS more transactions (or after 5 s).
        let n = 0;
        await new Promise<void>((res) => {
          const t = setTimeout(res, 5000);
          plan.ackHook = (node) => {
            if (node === 's1-validator-0' && ++n >= KILL_AFTER_ACKS) {
              clearTimeout(t);
              res();
            }
          };
        });
        plan.ackHook = () => undefined;
      }),
    ),
  );
  plan.done = Promise.all(tasks).then(() => undefined);
  return plan;
}

// ---------------------------------------------------------------- beacon lag and processes

interface BeaconSample {
  tMs: number;
  wallSlot: number;
  /** Newest shard block slot the beacon has processed; null if it did not answer or has none. */
  headSlot: number | null;
  /** qnexus_beacon_* metrics whose name mentions lag or processed (whatever the tree exports). */
  metrics: Record<string, number>;
}

function sampleBeacon(net: Net, t0: number): { samples: BeaconSample[]; stop(): Promise<void> } {
  const samples: BeaconSample[] = [];
  let done = false;
  const loop = (async () => {
    while (!done) {
      const started = performance.now();
      const url = net.url('beacon');
      // Status and metrics together: a busy beacon (just restarted) answers slowly, and a sample
      // every 500 ms is what the "within 10 s" figure is read from.
      const [st, m] = await Promise.all([
        getJson<{ heads?: { slot: number }[] }>(`${url}/v1/status`, 2000),
        http(`${url}/metrics`, { timeoutMs: 2000 }).catch(() => null),
      ]);
      const s: BeaconSample = { tMs: performance.now() - t0, wallSlot: net.wallSlot(), headSlot: null, metrics: {} };
      if (st?.heads?.length) s.headSlot = Math.max(...st.heads.map((h) => h.slot));
      if (m?.status === 200 && typeof m.body === 'string') {
        for (const line of m.body.split('\n')) {
          const mm = /^(qnexus_beacon_[a-z_]*(?:lag|processed)[a-z_]*)(\{[^}]*\})? ([0-9.eE+-]+)$/.exec(line);
          if (mm) s.metrics[mm[1]! + (mm[2] ?? '')] = Number(mm[3]);
        }
      }
      samples.push(s);
      await sleep(Math.max(0, 500 - (performance.now() - started)));
    }
  })();
  return { samples, stop: async () => ((done = true), await loop) };
}

const CLOCK_TICKS = 100;
interface ProcClass {
  peakRssMb: number;
  cpuSec: number;
  processes: number;
}

function sampleProcesses(net: Net): { stop(): Record<string, ProcClass & { cpuPercentPerProcess: number }> } {
  const t0 = performance.now();
  const cpu = new Map<number, { first: number; last: number; cls: string }>();
  const peak = new Map<string, number>();
  const take = () => {
    for (const p of net.devnet.manifest.processes) {
      if (!p.pid) continue;
      try {
        const stat = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const sec = (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p.pid}/status`, 'utf8'));
        const cls = p.role;
        const c = cpu.get(p.pid);
        // A process first seen mid-run (restarted) counts from 0: its start-up work is part of the fault.
        if (c) c.last = sec;
        else cpu.set(p.pid, { first: performance.now() - t0 < 2000 ? sec : 0, last: sec, cls });
        if (m) peak.set(cls, Math.max(peak.get(cls) ?? 0, Number(m[1]) / 1024));
      } catch {
        // exited
      }
    }
  };
  take();
  const timer = setInterval(take, 1000);
  return {
    stop: () => {
      clearInterval(timer);
      take();
      const wall = (performance.now() - t0) / 1000;
      const out: Record<string, ProcClass & { cpuPercentPerProcess: number }> = {};
      const count = (cls: string) => net.devnet.manifest.processes.filter((p) => p.role === cls).length;
      for (const cls of ['validator', 'full', 'beacon']) {
        let s = 0;
        for (const c of cpu.values()) if (c.cls === cls) s += c.last - c.first;
        out[cls] = { peakRssMb: peak.get(cls) ?? NaN, cpuSec: s, processes: count(cls), cpuPercentPerProcess: (100 * s) / wall / Math.max(1, count(cls)) };
      }
      return out;
    },
  };
}

// ---------------------------------------------------------------- after the load

interface BeaconXfer {
  deadlineSlot: number;
  status: string;
  decision: 'commit' | 'abort' | null;
  done: boolean;
  phases: { phase: string; shard?: number; height?: number; slot?: number; decision?: string; reason?: string }[];
}

async function pool<T>(items: T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

/** Wait (at most GRACE_MS) until everything sent is final and every escrowed transfer is decided and applied. */
async function grace(net: Net, recs: Map<string, TxRec>, slots: Map<number, number>[]): Promise<number> {
  const t0 = Date.now();
  const all = [...recs.values()];
  const xs = all.filter((r) => r.kind === 'xtransfer');
  for (;;) {
    const waitingFinal = all.filter((r) => (r.acked || r.ambiguous) && r.finalMs === null).length;
    // Query the beacon only for transfers not known to be done.
    const open = xs.filter((r) => r.finalMs !== null && !r.x?.done);
    await pool(open, 16, async (r) => {
      const b = await getJson<BeaconXfer>(`${net.url('beacon')}/v1/xtransfers/${r.hash}`);
      if (b) r.x = xRecord(b, slots, r.x);
    });
    const undone = xs.filter((r) => r.finalMs !== null && !r.x?.done).length;
    if ((waitingFinal === 0 && undone === 0) || Date.now() - t0 >= GRACE_MS) return Date.now() - t0;
    await sleep(2000);
  }
}

function xRecord(b: BeaconXfer, slots: Map<number, number>[], prev?: XRecord): XRecord {
  const ph = (name: string) => b.phases.find((p) => p.phase === name);
  const slotOf = (p: { shard?: number; height?: number } | undefined) => (p?.shard !== undefined && p.height !== undefined ? (slots[p.shard]?.get(p.height) ?? null) : null);
  const dec = ph('decided');
  const dstP = ph('destination-prepared') ?? ph('destination-refused');
  return {
    decision: b.decision,
    decisionSlot: dec?.slot ?? null,
    reason: dec?.reason ?? null,
    deadline: b.deadlineSlot,
    done: b.done,
    srcPrepareSlot: slotOf(ph('source-prepared')),
    dstPrepareSlot: slotOf(dstP),
    dstRefused: ph('destination-refused')?.reason ?? (ph('destination-refused') ? '?' : null),
    srcNode: prev?.srcNode ?? null,
    dstNode: prev?.dstNode ?? null,
  };
}

interface SupplyCheck {
  perShardOk: boolean;
  settled: boolean;
  globalOk: boolean;
  problems: string[];
}

/** The supply identities of test/helpers.ts supplyAcrossShards, read through this script's own HTTP client. */
async function supplyCheck(net: Net): Promise<SupplyCheck> {
  type S = Record<'genesisSupply' | 'balances' | 'burned' | 'fees' | 'modules' | 'escrow' | 'exported' | 'imported' | 'total', string> & { shard: number };
  type B = Record<'genesisStake' | 'stakedIn' | 'feesIn' | 'minted' | 'slashed' | 'released' | 'held', string>;
  const problems: string[] = [];
  const beacon = await getJson<B>(`${net.url('beacon')}/v1/supply`);
  const shards: S[] = [];
  for (let k = 0; k < net.shardNodes.length; k++) {
    const s = await shardGet<S>(net, k, '/v1/supply');
    if (!s) return { perShardOk: false, settled: false, globalOk: false, problems: [`shard ${k}: no node answered /v1/supply`] };
    shards.push(s);
  }
  if (!beacon) return { perShardOk: false, settled: false, globalOk: false, problems: ['the beacon did not answer /v1/supply'] };
  const sum = { balances: 0n, burned: 0n, fees: 0n, modules: 0n, escrow: 0n, exported: 0n, imported: 0n };
  for (const s of shards) {
    const v = (k: keyof S) => BigInt((s[k] as string | undefined) ?? '0');
    for (const k of Object.keys(sum) as (keyof typeof sum)[]) sum[k] += v(k);
    const total = v('balances') + v('burned') + v('fees') + v('modules') + v('escrow') + v('exported') - v('imported');
    if (total !== v('genesisSupply') || v('total') !== v('genesisSupply')) problems.push(`shard ${s.shard}: identity ${total} ≠ genesis supply ${s.genesisSupply}`);
  }
  const perShardOk = problems.length === 0;
  const b = Object.fromEntries(Object.entries(beacon).map(([k, v]) => [k, BigInt(v)])) as Record<keyof B, bigint>;
  if (b.held !== b.genesisStake + b.stakedIn + b.feesIn + b.minted - b.slashed - b.released) problems.push('beacon: held ≠ genesisStake + stakedIn + feesIn + minted − slashed − released');
  const settled = sum.exported - sum.imported === b.stakedIn + b.feesIn - b.released;
  const genesisTotal = net.devnet.genesis.accounts.reduce((s, a) => s + BigInt(a.balance), 0n);
  const circulating = sum.balances + sum.burned + sum.fees + sum.modules + sum.escrow + b.held;
  const globalOk = settled && problems.length === 0 && circulating === genesisTotal + b.genesisStake + b.minted - b.slashed;
  if (settled && !globalOk && problems.length === 0) problems.push(`Σ balances + burned + fees + escrow + held = ${circulating} ≠ genesis + minted − slashed`);
  return { perShardOk, settled, globalOk, problems };
}

const LOG_PATTERNS: [string, RegExp][] = [
  ['could not assemble proposal', /could not assemble proposal/],
  ['block too large', /block too large/],
  ['committee unknown (rounds held back)', /committee of this epoch is unknown/],
  ['XS_UNAUTHORIZED', /XS_UNAUTHORIZED/],
];

function logCounts(net: Net): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(LOG_PATTERNS.map(([k]) => [k, 0]));
  for (const p of net.devnet.manifest.processes) {
    let text = '';
    try {
      text = readFileSync(p.logFile, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) for (const [k, re] of LOG_PATTERNS) if (re.test(line)) out[k]!++;
  }
  return out;
}

// ---------------------------------------------------------------- summary

function pct(xs: number[], p: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

interface Summary {
  offered: number;
  offeredTxPerSec: number;
  firstAttempts: Record<string, number>;
  nodeBusyShare: number;
  refusedShare: number;
  acked: number;
  ackedTxPerSec: number;
  finalized: number;
  finalizedTxPerSec: number;
  finalizedDuringLoad: number;
  notAckedNotSent: Record<string, number>;
  ackedNeverFinal: { total: number; firstLoss: number; behindEarlierLoss: number; ackedJustBeforeKill: number };
  ambiguous: { total: number; final: number };
  xfer: {
    sent: number;
    decided: number;
    committed: number;
    aborted: number;
    undecided: number;
    abortRate: number | null;
    abortReasons: Record<string, number>;
    abortedBothPreparedInTime: number;
    committedAfterDeadline: number;
    latencyFromPrepare: { p50: number | null; p95: number | null };
    latencyFromSubmit: { p50: number | null; p95: number | null };
    disagreements: number;
  };
  finalTwice: number;
  beaconLag: {
    steadyMedianSlots: number | null;
    /** From the restarted process's spawn (its start), over 60 s; caught up = 3 samples in a row (1.5 s) within 1 slot of the steady lag. */
    afterRestart: { maxSlots: number | null; caughtUpSecAfterStart: number | null; atStartPlus10sSlots: number | null; apiUpSecAfterStart: number } | null;
    /** Per exported lag metric, converted to slots behind the wall clock; caught up = 3 samples in a row ≤ 1 slot. */
    metrics: Record<string, { maxSlotsAfterRestart: number; atStartPlus10sSlots: number | null; underOneSlotSecAfterStart: number | null }>;
  };
  processes: Record<string, ProcClass & { cpuPercentPerProcess: number }>;
  logs: Record<string, number>;
  supply: SupplyCheck;
  graceMs: number;
}

function beaconLag(samples: BeaconSample[], restart: { downAt: number; startAt: number; upAt: number } | null, slotMs: number): Summary['beaconLag'] {
  const lag = (s: BeaconSample) => (s.headSlot === null ? null : s.wallSlot - s.headSlot);
  const steady = samples.filter((s) => (restart ? s.tMs < restart.downAt : true)).map(lag).filter((x): x is number => x !== null);
  const steadyMedian = pct(steady, 50);
  const metrics: Summary['beaconLag']['metrics'] = {};
  if (!restart) return { steadyMedianSlots: steadyMedian, afterRestart: null, metrics };
  const after = samples.filter((s) => s.tMs >= restart.startAt && s.tMs <= restart.startAt + 60_000);
  const lags = after.map(lag);
  const known = lags.filter((x): x is number => x !== null);
  // Caught up: three samples in a row (1.5 s) within one slot of the steady lag.
  const thr = (steadyMedian ?? 1) + 1;
  let caught: number | null = null;
  for (let i = 0; i + 2 < after.length && caught === null; i++) {
    if ([0, 1, 2].every((j) => lags[i + j] !== null && lags[i + j]! <= thr)) caught = (after[i]!.tMs - restart.startAt) / 1000;
  }
  const at10 = after.find((s) => s.tMs >= restart.startAt + 10_000);
  // A tree's own lag figures, as slots behind the wall clock: a processed-slot gauge is subtracted
  // from the wall-clock slot, a lag in seconds divided by the slot length.
  const asSlots = (name: string, v: number, s: BeaconSample) => (/processed_slot/.test(name) ? s.wallSlot - v : /seconds/.test(name) ? (v * 1000) / slotMs : /_ms\b|millis/.test(name) ? v / slotMs : v);
  const names = new Set(after.flatMap((s) => Object.keys(s.metrics)));
  for (const k of names) {
    // A processed-slot gauge below 0 means "no tick durable yet" (not slot -1): no sample.
    const series = after.filter((s) => k in s.metrics && !(/processed_slot/.test(k) && s.metrics[k]! < 0)).map((s) => ({ tMs: s.tMs, lag: asSlots(k, s.metrics[k]!, s) }));
    let up: number | null = null;
    for (let i = 0; i + 2 < series.length && up === null; i++) if ([0, 1, 2].every((j) => series[i + j]!.lag <= 1)) up = (series[i]!.tMs - restart.startAt) / 1000;
    metrics[k] = {
      maxSlotsAfterRestart: Math.max(...series.map((x) => x.lag)),
      atStartPlus10sSlots: series.find((x) => x.tMs >= restart.startAt + 10_000)?.lag ?? null,
      underOneSlotSecAfterStart: up,
    };
  }
  return {
    steadyMedianSlots: steadyMedian,
    afterRestart: { maxSlots: known.length ? Math.max(...known) : null, caughtUpSecAfterStart: caught, atStartPlus10sSlots: at10 ? lag(at10) : null, apiUpSecAfterStart: (restart.upAt - restart.startAt) / 1000 },
    metrics,
  };
}

function summarize(net: Net, recs: TxRec[], faults: FaultEvent[]): Omit<Summary, 'beaconLag' | 'processes' | 'logs' | 'supply' | 'graceMs'> {
  const D = DURATION_MS / 1000;
  const first: Record<string, number> = {};
  for (const r of recs) if (r.attempts[0]) first[r.attempts[0]] = (first[r.attempts[0]] ?? 0) + 1;
  const attempted = recs.filter((r) => r.attempts.length > 0).length;
  const acked = recs.filter((r) => r.acked);
  const finals = recs.filter((r) => r.finalMs !== null);
  const notSent: Record<string, number> = {};
  for (const r of recs) if (!r.acked && !r.ambiguous) notSent[r.attempts[r.attempts.length - 1] ?? '?'] = (notSent[r.attempts[r.attempts.length - 1] ?? '?'] ?? 0) + 1;
  // A lost transaction blocks its sender's later nonces: tell the first loss from those stuck behind it.
  const lostByAccount = new Map<string, bigint>();
  for (const r of recs) {
    if ((r.acked || r.ambiguous) && r.finalMs === null) {
      const n = BigInt(r.nonce);
      const m = lostByAccount.get(r.account);
      if (m === undefined || n < m) lostByAccount.set(r.account, n);
    }
  }
  const neverFinal = acked.filter((r) => r.finalMs === null);
  const justBefore = new Set(faults.flatMap((f) => f.ackedJustBefore ?? []));
  const xs = recs.filter((r) => r.kind === 'xtransfer' && r.finalMs !== null);
  const decided = xs.filter((r) => r.x?.decision);
  const aborted = decided.filter((r) => r.x!.decision === 'abort');
  const reasons: Record<string, number> = {};
  for (const r of aborted) reasons[r.x!.reason ?? '?'] = (reasons[r.x!.reason ?? '?'] ?? 0) + 1;
  const inTime = (r: TxRec) => r.x!.deadline !== null && r.x!.srcPrepareSlot !== null && r.x!.dstPrepareSlot !== null && r.x!.dstRefused === null && r.x!.srcPrepareSlot <= r.x!.deadline && r.x!.dstPrepareSlot <= r.x!.deadline;
  const fromPrep = decided.filter((r) => r.x!.decisionSlot !== null && r.x!.srcPrepareSlot !== null).map((r) => r.x!.decisionSlot! - r.x!.srcPrepareSlot!);
  const fromSubmit = decided.filter((r) => r.x!.decisionSlot !== null).map((r) => r.x!.decisionSlot! - r.submitSlot);
  const disagreements = decided.filter((r) => {
    const applied = (s: string | null) => (s === 'committed' ? 'commit' : s === 'aborted' ? 'abort' : null);
    const a = [applied(r.x!.srcNode), applied(r.x!.dstNode)].filter((x) => x !== null);
    return a.some((x) => x !== r.x!.decision);
  }).length;
  return {
    offered: recs.length,
    offeredTxPerSec: recs.length / D,
    firstAttempts: first,
    nodeBusyShare: attempted ? (first['503 NODE_BUSY'] ?? 0) / attempted : 0,
    refusedShare: attempted ? recs.filter((r) => r.attempts[0] !== '202').length / attempted : 0,
    acked: acked.length,
    ackedTxPerSec: acked.length / D,
    finalized: finals.length,
    finalizedTxPerSec: finals.length / D,
    finalizedDuringLoad: finals.filter((r) => r.finalMs! <= DURATION_MS).length,
    notAckedNotSent: notSent,
    ackedNeverFinal: {
      total: neverFinal.length,
      firstLoss: neverFinal.filter((r) => lostByAccount.get(r.account) === BigInt(r.nonce)).length,
      behindEarlierLoss: neverFinal.filter((r) => lostByAccount.get(r.account)! < BigInt(r.nonce)).length,
      ackedJustBeforeKill: neverFinal.filter((r) => justBefore.has(r.hash)).length,
    },
    ambiguous: { total: recs.filter((r) => r.ambiguous).length, final: recs.filter((r) => r.ambiguous && r.finalMs !== null).length },
    xfer: {
      sent: recs.filter((r) => r.kind === 'xtransfer' && (r.acked || r.ambiguous || r.finalMs !== null)).length,
      decided: decided.length,
      committed: decided.length - aborted.length,
      aborted: aborted.length,
      undecided: xs.length - decided.length,
      abortRate: decided.length ? aborted.length / decided.length : null,
      abortReasons: reasons,
      abortedBothPreparedInTime: aborted.filter(inTime).length,
      committedAfterDeadline: decided.filter((r) => r.x!.decision === 'commit' && r.x!.decisionSlot !== null && r.x!.deadline !== null && r.x!.decisionSlot > r.x!.deadline).length,
      latencyFromPrepare: { p50: pct(fromPrep, 50), p95: pct(fromPrep, 95) },
      latencyFromSubmit: { p50: pct(fromSubmit, 50), p95: pct(fromSubmit, 95) },
      disagreements,
    },
    finalTwice: recs.filter((r) => r.timesFinal > 1).length,
  };
}

// ---------------------------------------------------------------- one tree

interface TreeRun {
  tree: string;
  rev: string;
  summary?: Summary;
  faults?: FaultEvent[];
  beaconSamples?: BeaconSample[];
  txs?: TxRec[];
  error?: string;
}

async function runTree(tree: Tree): Promise<TreeRun> {
  console.log(`\n== ${tree.label} (${tree.rev}): starting a devnet from ${tree.root}`);
  const net = await openNet(tree);
  try {
    // Both shards finalizing before the clock starts.
    for (let k = 0; k < net.shardNodes.length; k++) {
      for (let i = 0; ; i++) {
        const s = await shardGet<{ finalizedHeight: number }>(net, k, '/v1/status');
        if (s && s.finalizedHeight >= 2) break;
        if (i > 240) throw new Error(`shard ${k} did not finalize height 2 within 60 s`);
        await sleep(250);
      }
    }
    const t0 = performance.now();
    const recentAcks = new Map<string, { hash: string; t: number }[]>();
    let faults: FaultPlan | undefined;
    const ackHook = (node: string, hash: string) => {
      const l = recentAcks.get(node) ?? [];
      const now = performance.now();
      l.push({ hash, t: now });
      while (l.length && now - l[0]!.t > JUST_BEFORE_MS) l.shift();
      recentAcks.set(node, l);
      faults?.ackHook(node, hash);
    };
    const load = startLoad(net, t0, ackHook);
    const observer = observe(net, load.recs, t0);
    const beacon = sampleBeacon(net, t0);
    const procs = sampleProcesses(net);
    faults = startFaults(net, t0, recentAcks);
    const progress = setInterval(() => {
      const rs = [...load.recs.values()];
      console.log(`  ${((performance.now() - t0) / 1000).toFixed(0)} s: offered ${load.offered}, acked ${rs.filter((r) => r.acked).length}, final ${rs.filter((r) => r.finalMs !== null).length}, faults ${faults!.events.map((e) => `${e.fault}${e.upMs !== undefined ? ' ✓' : e.error ? ' ✗' : ' …'}`).join(', ')}`);
    }, 15_000);
    await load.done;
    const processes = procs.stop();
    await faults.done;
    clearInterval(progress);
    console.log(`  load done at ${((performance.now() - t0) / 1000).toFixed(1)} s; grace (≤ ${GRACE_MS / 1000} s)…`);
    const graceMs = await grace(net, load.recs, observer.slots);
    await beacon.stop();
    const recs = [...load.recs.values()];
    // The shards' own records of each transfer (both must agree with the beacon).
    await pool(
      recs.filter((r) => r.x?.decision),
      16,
      async (r) => {
        const s = await shardGet<{ status: string }>(net, r.src, `/v1/xtransfers/${r.hash}`);
        const d = await shardGet<{ status: string }>(net, r.dst, `/v1/xtransfers/${r.hash}`);
        r.x!.srcNode = s?.status ?? null;
        r.x!.dstNode = d?.status ?? null;
      },
    );
    await observer.stop();
    let supply = await supplyCheck(net);
    for (let i = 0; i < 10 && !supply.globalOk; i++) {
      await sleep(2000);
      supply = await supplyCheck(net);
    }
    const summary: Summary = {
      ...summarize(net, recs, faults.events),
      beaconLag: beaconLag(beacon.samples, faults.beaconRestart, net.slotMs),
      processes,
      logs: logCounts(net),
      supply,
      graceMs,
    };
    console.log(`  ${tree.label}: ${JSON.stringify({ acked: summary.acked, finalized: summary.finalized, xfer: summary.xfer, beaconLag: summary.beaconLag })}`);
    return { tree: tree.label, rev: tree.rev, summary, faults: faults.events, beaconSamples: beacon.samples, txs: recs };
  } finally {
    await net.close();
  }
}

// ---------------------------------------------------------------- table

const f1 = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(1));
const f0 = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(0));
const pc = (x: number | null | undefined) => (x === null || x === undefined ? '-' : `${(100 * x).toFixed(1)} %`);

const ROWS: [string, (s: Summary, r: TreeRun) => string][] = [
  ['offered (tx/s)', (s) => `${s.offered} (${f1(s.offeredTxPerSec)})`],
  ['first attempt 503 NODE_BUSY', (s) => `${pc(s.nodeBusyShare)} (${s.firstAttempts['503 NODE_BUSY'] ?? 0})`],
  ['first attempt not 202', (s) => pc(s.refusedShare)],
  ['  first attempts by answer', (s) => Object.entries(s.firstAttempts).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}: ${v}`).join(', ')],
  ['accepted 202 (tx/s)', (s) => `${s.acked} (${f1(s.ackedTxPerSec)})`],
  ['finalized (tx/s)', (s) => `${s.finalized} (${f1(s.finalizedTxPerSec)})`],
  ['never accepted (last answer)', (s) => Object.entries(s.notAckedNotSent).map(([k, v]) => `${k}: ${v}`).join(', ') || '0'],
  ['acked, never final (first loss / behind it)', (s) => `${s.ackedNeverFinal.total} (${s.ackedNeverFinal.firstLoss} / ${s.ackedNeverFinal.behindEarlierLoss})`],
  ['  of which acked ≤ 2 s before a kill', (s) => String(s.ackedNeverFinal.ackedJustBeforeKill)],
  ['no answer, nonce kept (became final)', (s) => `${s.ambiguous.total} (${s.ambiguous.final})`],
  ['cross-shard decided (undecided)', (s) => `${s.xfer.decided} (${s.xfer.undecided})`],
  ['cross-shard abort rate', (s) => `${pc(s.xfer.abortRate)} (${s.xfer.aborted})`],
  ['  abort reasons', (s) => Object.entries(s.xfer.abortReasons).map(([k, v]) => `${k}: ${v}`).join(', ') || '-'],
  ['  aborted though both prepared ≤ deadline', (s) => String(s.xfer.abortedBothPreparedInTime)],
  ['  committed after the deadline slot', (s) => String(s.xfer.committedAfterDeadline)],
  ['decision latency p50/p95 (slots from src prepare)', (s) => `${f0(s.xfer.latencyFromPrepare.p50)} / ${f0(s.xfer.latencyFromPrepare.p95)}`],
  ['decision latency p50/p95 (slots from submission)', (s) => `${f0(s.xfer.latencyFromSubmit.p50)} / ${f0(s.xfer.latencyFromSubmit.p95)}`],
  ['beacon lag, steady (slots, median)', (s) => f0(s.beaconLag.steadyMedianSlots)],
  ['beacon lag after restart: max (slots, 60 s)', (s) => f0(s.beaconLag.afterRestart?.maxSlots)],
  ['  at start + 10 s (slots)', (s) => f0(s.beaconLag.afterRestart?.atStartPlus10sSlots)],
  ['  API answering after (s from spawn)', (s) => f1(s.beaconLag.afterRestart?.apiUpSecAfterStart)],
  ['  caught up after (s from spawn)', (s) => (s.beaconLag.afterRestart ? (s.beaconLag.afterRestart.caughtUpSecAfterStart === null ? 'never' : f1(s.beaconLag.afterRestart.caughtUpSecAfterStart)) : '-')],
  [
    '  lag metrics in slots: max / at +10 s / < 1 slot after (s)',
    (s) => Object.entries(s.beaconLag.metrics).map(([k, v]) => `${k.replace(/^qnexus_beacon_/, '')} ${f1(v.maxSlotsAfterRestart)} / ${f1(v.atStartPlus10sSlots)} / ${v.underOneSlotSecAfterStart === null ? 'never' : f1(v.underOneSlotSecAfterStart)}`).join('; ') || 'none exported'],
  ['peak RSS MB validator/full/beacon', (s) => ['validator', 'full', 'beacon'].map((c) => f0(s.processes[c]?.peakRssMb)).join(' / ')],
  ['CPU % per process validator/full/beacon', (s) => ['validator', 'full', 'beacon'].map((c) => f0(s.processes[c]?.cpuPercentPerProcess)).join(' / ')],
  ...LOG_PATTERNS.map(([k]): [string, (s: Summary) => string] => [`log: ${k}`, (s) => String(s.logs[k] ?? 0)]),
  ['sanity: final twice / beacon-shard disagreements', (s) => `${s.finalTwice} / ${s.xfer.disagreements}`],
  ['sanity: supply per shard / settled / global', (s) => `${s.supply.perShardOk ? 'ok' : 'FAIL'} / ${s.supply.settled ? 'yes' : 'no'} / ${s.supply.globalOk ? 'ok' : 'no'}`],
  ['faults that failed', (_s, r) => (r.faults ?? []).filter((f) => f.error).map((f) => `${f.fault}: ${f.error}`).join('; ') || 'none'],
];

function report(runs: TreeRun[]): string {
  const header = ['measure', ...runs.map((r) => `${r.tree} (${r.rev})`)];
  const rows = ROWS.map(([name, fn]) => [name, ...runs.map((r) => (r.summary ? fn(r.summary, r) : `error: ${r.error ?? '?'}`))]);
  const md = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
  return `${table([header, ...rows])}\n\n${md.join('\n')}`;
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const trees: Tree[] = [];
  if (args['baseline-tree']) trees.push(baselineTreeFromDir(args['baseline-tree']));
  else if (args.baseline) trees.push(buildBaseline(ROOT, args.baseline, cleanups));
  if (args.current !== 'false') trees.push(currentTree(ROOT));
  if (trees.length === 0) throw new Error('nothing to run: --current false needs --baseline or --baseline-tree');
  const started = Date.now();
  const runs: TreeRun[] = [];
  for (const tree of trees) {
    try {
      runs.push(await runTree(tree));
    } catch (e) {
      console.log(`  error: ${(e as Error).stack ?? String(e)}`);
      runs.push({ tree: tree.label, rev: tree.rev, error: (e as Error).message.split('\n')[0]! });
    }
  }
  const config = { durationSec: DURATION_MS / 1000, rate: RATE, accountsPerShard: ACCOUNTS, graceSec: GRACE_MS / 1000, smoke: SMOKE, policy: POLICY, outageScale: SCALE, signBackend: SIGN_BACKEND, partition: 'left out (no iptables/nft on this host)' };
  console.log(`\nfaults: ${DURATION_MS / 1000} s of load at ${RATE} tx/s per tree, ${((Date.now() - started) / 60_000).toFixed(1)} min; ${trees.map((t) => `${t.label} = ${t.rev}`).join(', ')}\n`);
  console.log(report(runs));
  const out = resolve(ROOT, args.out!);
  mkdirSync(out, { recursive: true });
  const file = join(out, `faults-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ benchVersion: 1, config, trees: runs }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 1));
  console.log(`\nwrote ${file}`);
  if (runs.some((r) => r.error)) process.exitCode = 1;
}

try {
  await main();
} finally {
  await cleanups.run();
}
