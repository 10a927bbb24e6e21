// `--wait` of the tx commands: follow a transaction (and a cross-shard transfer) to its outcome
// on any node of the sender's shard, tell the user what is happening while it waits, and never
// report "not final" because the one node asked died.
import { ApiError, QnexusClient, type TxInfo, type XTransferInfo } from '@qnexus/sdk';
import { CliError, EXIT } from './errors.js';
import { findDevnet } from './util.js';

/** Poll interval; the shard's head is read every other poll (it changes once per slot). */
const POLL_MS = 500;
/** Bound on one request while waiting: a hung node must not hold the wait past a failover. */
const REQUEST_TIMEOUT_MS = 3_000;
/** Non-TTY progress: a heartbeat line at least this often even when nothing changed. */
const HEARTBEAT_MS = 5_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The other nodes of a shard, by API URL: those of the local devnet that resolveNode uses
 * (findDevnet: $QNEXUS_DEVNET_DIR, ./devnet/data, <repo>/devnet/data) when it describes the same
 * chain (genesis hash) as the node asked. Nothing when there is none: failover then uses
 * --check-node only.
 */
export async function manifestShardNodes(genesisHash: string, shard: number): Promise<string[]> {
  try {
    const devnet = await findDevnet();
    if (devnet === null) return [];
    const { manifest } = devnet;
    if (manifest.genesisHash.replace(/^0x/, '') !== genesisHash.replace(/^0x/, '')) return [];
    // Every node of the shard, running or not: the supervisor may restart one while we wait.
    return manifest.processes.filter((p) => p.shard === shard).map((p) => p.apiUrl);
  } catch {
    return [];
  }
}

/** One progress report: what is awaited, how far it is, on which node. */
export interface WaitProgressState {
  /** `tx` until the transaction is final, then `xtransfer` for the beacon's decision. */
  stage: 'tx' | 'xtransfer';
  /** The transaction's status (pending, included, final, unknown) or the transfer's (preparing, prepared, committed…). */
  status: string;
  node: string;
  /** The shard's finalized height as the node reports it. */
  height: number | null;
  slot: number | null;
  /** A cross-shard transfer's deadline slot (its outcome is fixed once it has passed). */
  deadlineSlot: number | null;
  elapsedS: number;
  /** Set when the node being asked stopped answering and the wait moved (or tried to move) to another. */
  failover?: string;
  /** Set while the node has not heard from the beacon: cross-shard decisions (and, past the known epochs, blocks) wait for it. */
  beacon?: string;
}

/**
 * Progress on stderr (stdout carries only the result, so `--json | jq` stays clean): on a TTY one
 * live line rewritten in place; otherwise one JSON object per line, when something changes and as
 * a heartbeat.
 */
export class WaitProgress {
  private lastKey = '';
  private lastAt = 0;
  private live = false;
  constructor(
    private readonly tty: boolean = process.stderr.isTTY === true,
    private readonly write: (s: string) => void = (s) => void process.stderr.write(s),
  ) {}

  update(p: WaitProgressState): void {
    if (this.tty) {
      const parts = [
        p.stage === 'tx' ? `tx ${p.status}` : `transfer ${p.status}`,
        p.height !== null ? `height ${p.height}` : null,
        p.deadlineSlot !== null ? `slot ${p.slot ?? '?'} / deadline ${p.deadlineSlot}` : null,
        `node ${p.node}`,
        `${Math.round(p.elapsedS)} s`,
        p.failover ?? null,
        p.beacon ?? null,
      ].filter((x) => x !== null);
      this.write(`\r\x1b[2K${parts.join(' · ')}`);
      this.live = true;
      return;
    }
    const key = `${p.stage}|${p.status}|${p.node}|${p.failover ?? ''}|${p.beacon !== undefined}`;
    const now = Date.now();
    if (key === this.lastKey && now - this.lastAt < HEARTBEAT_MS) return;
    this.lastKey = key;
    this.lastAt = now;
    this.write(`${JSON.stringify({ event: 'wait', ...p, elapsedS: Math.round(p.elapsedS * 10) / 10 })}\n`);
  }

  /** Clear the live line before the result (or an error) is printed. */
  done(): void {
    if (this.live) this.write('\r\x1b[2K');
    this.live = false;
  }
}

/**
 * The node a wait asks, and the others of its shard to fall back on. `call` runs a request on the
 * current node; when it cannot be reached the next candidate that answers takes over.
 */
export class ShardNodes {
  private idx = 0;
  readonly all: QnexusClient[];
  constructor(first: QnexusClient, others: readonly string[]) {
    const urls = new Set([first.baseUrl]);
    this.all = [first];
    for (const u of others) {
      const c = new QnexusClient(u, { timeoutMs: REQUEST_TIMEOUT_MS });
      if (!urls.has(c.baseUrl)) {
        urls.add(c.baseUrl);
        this.all.push(c);
      }
    }
  }

  get current(): QnexusClient {
    return this.all[this.idx]!;
  }

  /** Move to the next node (round robin); false when there is no other. */
  next(): boolean {
    if (this.all.length < 2) return false;
    this.idx = (this.idx + 1) % this.all.length;
    return true;
  }
}

function unavailable(e: unknown): boolean {
  return e instanceof ApiError && (e.code === 'UNAVAILABLE' || e.code === 'HTTP_502' || e.code === 'HTTP_504');
}

/** What `waitTxFinal` needs: the nodes, where to report progress, and the deadline. */
export interface WaitContext {
  nodes: ShardNodes;
  progress: WaitProgress;
  /** ms since the epoch. */
  deadline: number;
  startedAt: number;
}

/** The most advanced answer of the other nodes, to decide with when the node asked is gone. */
async function askOthers(ctx: WaitContext, hash: string): Promise<{ tx: TxInfo | null; node: string; asked: number; answered: number }> {
  const others = ctx.nodes.all.filter((c) => c !== ctx.nodes.current);
  const rank: Record<string, number> = { final: 4, included: 3, pending: 2, rejected: 1 };
  const answers = await Promise.allSettled(others.map(async (c) => ({ tx: await c.txStatus(hash), node: c.baseUrl })));
  let best: { tx: TxInfo | null; node: string } = { tx: null, node: '' };
  let answered = 0;
  for (const a of answers) {
    if (a.status !== 'fulfilled') continue;
    answered++;
    if (a.value.tx && (best.tx === null || (rank[a.value.tx.status] ?? 0) > (rank[best.tx.status] ?? 0))) best = a.value;
  }
  return { ...best, asked: others.length, answered };
}

/**
 * Wait until the transaction is final on the shard. Rejected: TX_REJECTED. When the node asked
 * stops answering, the other nodes are asked at once (final on any of them is final: it is in a
 * finalized block) and the first that answers is followed from then on. Timeout: TIMEOUT (exit 3)
 * while a node answered "not final"; when the node asked was unreachable at the end,
 * NODE_UNREACHABLE (exit 3 too) saying how many other nodes were checked: it may still be final.
 */
/** A final transaction whose message its block refused fails with the module's code (the fee was paid). */
function refusedOrFinal(tx: TxInfo, hash: string): TxInfo {
  if (!tx.error) return tx;
  throw new ApiError(tx.error.code, `transaction ${hash} is final but its message was refused: ${tx.error.code}: ${tx.error.message} (the fee was paid, nothing else happened)`, 0, { tx });
}

export async function waitTxFinal(ctx: WaitContext, hash: string): Promise<TxInfo> {
  let status = 'unknown';
  let head: Head = { height: null, slot: null };
  let failover: string | undefined;
  let downSince: number | null = null;
  let lastOthers: Awaited<ReturnType<typeof askOthers>> | null = null;
  for (let poll = 0; ; poll++) {
    const c = ctx.nodes.current;
    try {
      const tx = await c.txStatus(hash);
      downSince = null;
      if (tx) {
        if (tx.status === 'rejected') {
          const why = tx.error ? `${tx.error.code}: ${tx.error.message}` : 'no reason given';
          throw new ApiError('TX_REJECTED', `transaction ${hash} was rejected (${why})`, 0, { tx });
        }
        if (tx.status === 'final') return refusedOrFinal(tx, hash);
        status = tx.status;
      } else status = 'unknown here';
      if (poll % 2 === 0) head = await shardHead(c);
    } catch (e) {
      if (!unavailable(e)) throw e;
      downSince ??= Date.now();
      const others = await askOthers(ctx, hash);
      lastOthers = others;
      if (others.tx?.status === 'final') return refusedOrFinal(others.tx, hash);
      const from = c.baseUrl;
      if (ctx.nodes.next()) failover = `${from} unreachable: now asking ${ctx.nodes.current.baseUrl} (${others.answered}/${others.asked} other nodes answer)`;
      else failover = `${from} unreachable; no other node of the shard known (pass --check-node, or run inside the devnet's directory)`;
    }
    ctx.progress.update({ stage: 'tx', status, node: ctx.nodes.current.baseUrl, ...head, deadlineSlot: null, elapsedS: (Date.now() - ctx.startedAt) / 1000, ...(failover ? { failover } : {}) });
    const remaining = ctx.deadline - Date.now();
    if (remaining <= 0) {
      if (downSince !== null) {
        // The last word must not be "not final": the node may have finalized it and died.
        const others = lastOthers ?? (await askOthers(ctx, hash));
        throw new CliError(
          'NODE_UNREACHABLE',
          `node unreachable; the transaction may still be final: checked ${others.answered} other node${others.answered === 1 ? '' : 's'}` +
            `${others.asked > others.answered ? ` (${others.asked - others.answered} more did not answer)` : ''}, none has it final${others.tx ? ` (best: ${others.tx.status})` : ''}. ` +
            `hint: qnexus tx status ${hash} --node <a node of the shard>`,
          EXIT.TIMEOUT,
        );
      }
      throw new ApiError('TIMEOUT', `transaction ${hash} not final after ${Math.round((Date.now() - ctx.startedAt) / 100) / 10} s (last seen at ${ctx.nodes.current.baseUrl}: ${status})${head.beacon ? `; ${head.beacon}` : ''}`);
    }
    await sleep(Math.min(POLL_MS, remaining));
  }
}

interface Head {
  height: number | null;
  slot: number | null;
  beacon?: string;
}

/**
 * The shard's finalized height, the current slot, and a word on the beacon when the node has not
 * heard from it (older nodes do not say), as a node reports them (null when it cannot say).
 */
async function shardHead(c: QnexusClient): Promise<Head> {
  try {
    const [s, st] = await Promise.all([c.shards(), c.status()]);
    const b = st.beacon;
    const head: Head = { height: s.shards[s.shard]?.finalizedHeight ?? null, slot: s.slot };
    if (b && !b.reachable) {
      head.beacon = `beacon unreachable since ${b.lastHeardAt ?? 'this node started'}: ${b.committeeKnown ? `blocks continue through epoch ${b.committeesKnownThrough}, cross-shard decisions wait` : 'blocks wait for the next committee'}`;
    }
    return head;
  } catch (e) {
    if (unavailable(e)) throw e;
    return { height: null, slot: null };
  }
}

/**
 * Wait until the shard has applied the beacon's decision on a cross-shard transfer (or, with
 * `until: 'decided'`, knows it), with the same failover and progress; TIMEOUT when time runs out.
 */
export async function waitXTransferApplied(ctx: WaitContext, id: string): Promise<XTransferInfo> {
  let status = 'unknown';
  let deadlineSlot: number | null = null;
  let head: Head = { height: null, slot: null };
  let failover: string | undefined;
  for (let poll = 0; ; poll++) {
    const c = ctx.nodes.current;
    try {
      let x: XTransferInfo | null = null;
      try {
        x = await c.xtransfer(id);
      } catch (e) {
        if (!(e instanceof ApiError) || (e.code !== 'XS_UNKNOWN_TRANSFER' && e.code !== 'NOT_FOUND')) throw e;
      }
      if (x) {
        if (x.status === 'committed' || x.status === 'aborted') return x;
        status = x.status;
        deadlineSlot = x.deadlineSlot;
      }
      if (poll % 2 === 0) head = await shardHead(c);
    } catch (e) {
      if (!unavailable(e)) throw e;
      const from = c.baseUrl;
      failover = ctx.nodes.next() ? `${from} unreachable: now asking ${ctx.nodes.current.baseUrl}` : `${from} unreachable; no other node of the shard known`;
    }
    ctx.progress.update({ stage: 'xtransfer', status, node: ctx.nodes.current.baseUrl, ...head, deadlineSlot, elapsedS: (Date.now() - ctx.startedAt) / 1000, ...(failover ? { failover } : {}) });
    const remaining = ctx.deadline - Date.now();
    if (remaining <= 0) {
      throw new ApiError(
        'TIMEOUT',
        `cross-shard transfer ${id} not applied at ${ctx.nodes.current.baseUrl} after ${Math.round((Date.now() - ctx.startedAt) / 100) / 10} s (last seen: status ${status}` +
          `${deadlineSlot !== null && head.slot !== null ? `, slot ${head.slot}, deadline slot ${deadlineSlot}` : ''})${head.beacon ? `; ${head.beacon}` : ''}`,
      );
    }
    await sleep(Math.min(POLL_MS, remaining));
  }
}
