// Runs one attack class against a live devnet and measures it from the outside: finality of the
// shard (and of the attacked node) during the attack against the same-length window just before,
// peak RSS and CPU of the attacked process, when the attacker was cut off and how, whether a fresh
// honest libp2p identity can still connect, whether a genuine transaction submitted during the
// attack becomes final, and whether every devnet process is still alive.
import { generateKeyPair, addressFromPublicKey, formatAddress } from '@qnexus/crypto';
import { QnexusClient, buildTransfer } from '@qnexus/sdk';
import type { AttackClass, AttackEnv, AttackOutcome, Check } from './attacks.js';
import { heights, penaltyCutOff, ProcSampler, StatusPoller, type Heights, type ProcWindow } from './measure.js';
import { earliestCutOff, honestPeerCheck, type CutOff } from './peer.js';
import { processAlive, shardNodes, shardProtocols, type NodeTarget, type Target } from './target.js';

export interface RunOptions {
  /** Length of the baseline window and of the attack window. Default 12 s. */
  windowMs?: number;
  /** How long a genuine transaction may take to become final after the attack. Default 30 s. */
  txFinalTimeoutMs?: number;
  /** Before the baseline, how long the shard may take to finalize a new block (liveness precondition). Default 30 s. */
  livenessTimeoutMs?: number;
  /** The funded account (index into target.accounts) the genuine transaction comes from. Default the last one. */
  account?: number;
  log?: (msg: string) => void;
}

export interface WindowFigures {
  /** Blocks the shard finalized in the window (highest finalized height any node reports). */
  shardBlocks: number;
  /** Blocks the attacked node itself finalized (null if it did not answer at an edge of the window). */
  victimBlocks: number | null;
  proc: ProcWindow;
}

export interface AttackResult {
  attack: string;
  summary: string;
  victim: string;
  windowMs: number;
  baseline: WindowFigures;
  during: WindowFigures & {
    /** The attacked node's /v1/status as an honest client saw it, polled every second. */
    polls: { polls: number; unanswered: number; syncingFraction: number; maxNetworkHeight: number; maxLagMs: number };
  };
  /** during.shardBlocks / baseline.shardBlocks (null when the baseline finalized nothing). */
  finalityRatio: number | null;
  /** The same for the attacked node's own finalized height. */
  victimFinalityRatio: number | null;
  /**
   * When (ms after the attack started) and how the attacker was first cut off during the attack
   * (up to CUTOFF_GRACE_MS after the window, for a penalty logged while the node catches up);
   * null: never. A later one is in `lateCutOff`.
   */
  cutOff: (CutOff & { ms: number }) | null;
  lateCutOff: (CutOff & { ms: number }) | null;
  honestPeer: { ok: boolean; detail: string };
  genuineTx: { ok: boolean; detail: string };
  /** Devnet processes that were not alive after the attack. */
  dead: string[];
  outcome: AttackOutcome;
  /** The class's own checks (run and after). */
  checks: Check[];
}

/** A cut-off logged this long after the attack window still counts (the node may be working through a backlog). */
export const CUTOFF_GRACE_MS = 2000;
/** Past its window an attack is told to stop after this long… */
const ABORT_AFTER_MS = 15_000;
/** …and reported as hung if it still runs this long after being told. */
const HUNG_AFTER_ABORT_MS = 30_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

/** Every devnet process alive, and a new block finalized within `timeoutMs`: the precondition of a measurement. */
export async function waitLive(t: Target, timeoutMs: number): Promise<void> {
  const dead = t.nodes.filter((n) => !processAlive(n.pid)).map((n) => n.name);
  if (dead.length) throw new Error(`devnet processes not running before the attack: ${dead.join(', ')}`);
  const v = shardNodes(t)[0]!;
  const h0 = (await heights(t, v)).shard;
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    await sleep(500);
    if ((await heights(t, v)).shard > h0) return;
  }
  throw new Error(`the shard finalized nothing for ${timeoutMs / 1000} s before the attack (finalized height ${h0}): an earlier attack left it stalled`);
}

function blocks(a: Heights, b: Heights): { shard: number; victim: number | null } {
  return { shard: b.shard - a.shard, victim: a.victim === null || b.victim === null ? null : b.victim - a.victim };
}

async function submitGenuine(t: Target, via: NodeTarget, account: number, busyRetryMs: number): Promise<{ hash: string | null; detail: string }> {
  const acct = t.accounts[(account + t.accounts.length) % t.accounts.length];
  if (!acct) return { hash: null, detail: 'no funded account' };
  const c = new QnexusClient(via.apiUrl, { timeoutMs: 10_000 });
  try {
    const nonce = BigInt((await c.account(acct.address)).pendingNonce);
    const to = formatAddress(addressFromPublicKey(generateKeyPair(t.scheme).publicKey));
    const tx = buildTransfer({ key: acct.key, chainId: t.chainId, to, amount: 1n, fee: 1n, nonce });
    await c.submitTx(tx.raw, { busyRetryMs });
    return { hash: tx.hash, detail: `submitted to ${via.name}` };
  } catch (e) {
    return { hash: null, detail: `submission to ${via.name} failed: ${(e as Error).message}` };
  }
}

export async function runAttack(t: Target, cls: AttackClass<unknown>, o: RunOptions = {}): Promise<AttackResult> {
  const W = o.windowMs ?? 12_000;
  const log = o.log ?? (() => undefined);
  const victim = cls.victim(t);
  const state = cls.prepare ? await cls.prepare(t, victim) : undefined;
  await waitLive(t, o.livenessTimeoutMs ?? 30_000);

  // Baseline: the same length of time just before the attack, measured the same way.
  log(`${cls.name}: baseline ${W / 1000} s`);
  const b0 = await heights(t, victim);
  const baseSampler = new ProcSampler(victim.pid);
  await sleep(W);
  const b1 = await heights(t, victim);
  const baseProc = baseSampler.stop();

  log(`${cls.name}: attacking ${victim.name} for ${W / 1000} s`);
  const startedAt = Date.now();
  const sampler = new ProcSampler(victim.pid);
  const poller = new StatusPoller(victim, 1000);
  const abort = new AbortController();
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((r) => (onReady = r));
  const env: AttackEnv = {
    target: t,
    victim,
    durationMs: W,
    startedAt,
    signal: abort.signal,
    ready: () => onReady(),
    log,
  };
  const running = cls.run(env, state).catch((e: unknown): AttackOutcome => ({ attackerIds: [], cutOff: null, counts: { error: (e as Error).stack ?? String(e) }, checks: [{ name: 'the attack ran', ok: false, detail: String(e) }] }));

  // While the attack is in full swing (and at least a third into the window): an honest newcomer
  // dials the node, and a genuine transaction is submitted through the node's API.
  const probes = (async () => {
    await Promise.race([ready, sleep(W / 2)]);
    await sleep(startedAt + W / 3 - Date.now());
    const p = shardProtocols(t.chainId, t.shard);
    const [honest, tx] = await Promise.all([
      honestPeerCheck(victim.multiaddr, p.status, Math.max(3000, startedAt + W - Date.now())),
      submitGenuine(t, victim.role === 'beacon' ? shardNodes(t)[0]! : victim, o.account ?? -1, Math.max(1000, startedAt + W - Date.now())),
    ]);
    return { honest, tx };
  })();

  await sleep(startedAt + W - Date.now());
  const a1 = await heights(t, victim);
  const proc = sampler.stop();
  const polls = poller.stop();
  // The attack ends by itself at the end of its window; past a grace period it is told to. One
  // that ignores being told is a broken attack, reported as such rather than left running: its
  // sockets and timers would outlive the test and keep the process from exiting.
  const guard = setTimeout(() => abort.abort(), ABORT_AFTER_MS);
  let hung: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    running,
    new Promise<AttackOutcome>((r) => {
      const detail = `still running ${HUNG_AFTER_ABORT_MS / 1000} s after its abort`;
      hung = setTimeout(() => r({ attackerIds: [], cutOff: null, counts: {}, checks: [{ name: 'the attack ended when told to', ok: false, detail }] }), ABORT_AFTER_MS + HUNG_AFTER_ABORT_MS);
    }),
  ]);
  clearTimeout(guard);
  clearTimeout(hung);
  const { honest, tx } = await probes;
  log(`${cls.name}: attack over, checking`);

  let genuineTx: { ok: boolean; detail: string };
  if (tx.hash === null) genuineTx = { ok: false, detail: tx.detail };
  else {
    try {
      const c = new QnexusClient((victim.role === 'beacon' ? shardNodes(t)[0]! : victim).apiUrl, { timeoutMs: 10_000 });
      const info = await c.waitForTx(tx.hash, { until: 'final', timeoutMs: o.txFinalTimeoutMs ?? 30_000 });
      genuineTx = { ok: true, detail: `final at height ${info.block?.height ?? '?'}` };
    } catch (e) {
      genuineTx = { ok: false, detail: `${tx.detail}; not final: ${(e as Error).message}` };
    }
  }
  const afterChecks = cls.after ? await cls.after(env, outcome, state).catch((e: unknown) => [{ name: 'after-attack checks ran', ok: false, detail: String(e) }]) : [];

  const ids = new Set(outcome.attackerIds);
  const penalised = ids.size ? penaltyCutOff(shardNodes(t), startedAt, ids) : null;
  const found = earliestCutOff(outcome.cutOff, penalised);
  const cut = found ? { ...found, ms: found.at - startedAt } : null;
  const inTime = cut !== null && cut.ms <= W + CUTOFF_GRACE_MS;
  const base = blocks(b0, b1);
  const during = blocks(b1, a1);
  return {
    attack: cls.name,
    summary: cls.summary,
    victim: victim.name,
    windowMs: W,
    baseline: { shardBlocks: base.shard, victimBlocks: base.victim, proc: baseProc },
    during: { shardBlocks: during.shard, victimBlocks: during.victim, proc, polls },
    finalityRatio: base.shard > 0 ? during.shard / base.shard : null,
    victimFinalityRatio: base.victim && during.victim !== null ? during.victim / base.victim : null,
    cutOff: inTime ? cut : null,
    lateCutOff: inTime ? null : cut,
    honestPeer: honest,
    genuineTx,
    dead: t.nodes.filter((n) => !processAlive(n.pid)).map((n) => n.name),
    outcome,
    checks: [...outcome.checks, ...afterChecks],
  };
}
