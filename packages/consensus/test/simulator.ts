// Deterministic discrete-event simulator for the consensus core.
//
// Everything random (delays, drops, duplicates, clock skew) comes from one seeded PRNG, so a
// seed reproduces a run exactly. Each node is a ConsensusCore plus a small "driver" that
// behaves like the real node should: sign → persist lastSigned/lock → broadcast → feed the
// signed copy back; timers for timeouts; a toy block sync via `externalCommit`.
import { checkCommitCertificate, ConsensusCore, makeCommittee, proposerForSlot } from '../src/index.js';
import type { Action, Committee, ConsensusApp, Event, LockState, Proposal, Schedule, SignedState, SignedStep, Vote } from '../src/index.js';
import { hashTestBlock, mulberry32, sig, testApp } from './helpers.js';
import type { TestBlock } from './helpers.js';

export interface SimOptions {
  seed: number;
  stakes: bigint[];
  slots: number;
  slotMs?: number;
  maxDelayMs?: number;
  dropRate?: number;
  dupRate?: number;
  maxSkewMs?: number;
  /** Nodes (by index) in different groups cannot talk while slot ∈ [fromSlot, toSlot). */
  partition?: { fromSlot: number; toSlot: number; groups: number[][] };
  /**
   * Equivocating validators (by index). Each signs what an honest core tells it, and also a
   * conflicting message: a second block when proposing; for votes, a vote for another real
   * block proposed at that height (or nil). Every peer gets one of the two at random.
   */
  byzantine?: number[];
  /**
   * Nodes relay every message the first time they receive it (default true), like a gossip
   * mesh. Tendermint's liveness assumes every message sent after GST is eventually delivered;
   * with 10% independent drops and no relay, a polka seen by only some nodes can keep rounds
   * failing for a long time (safety is unaffected). It also lets evidence meet.
   */
  gossip?: boolean;
  /** Crash node `node` at `atMs` for `downMs`; it restarts from its persisted lastSigned/lock. */
  crashes?: { node: number; atMs: number; downMs: number }[];
  /**
   * Every slot, nodes re-send their own signed messages of their current height (default
   * true), like Tendermint's vote gossip which keeps sending peers the votes they lack.
   * Liveness after GST needs this: a prevote lost for good can leave validators locked on a
   * value whose polka the others never see (e.g. everything sent across a partition).
   */
  rebroadcast?: boolean;
  /**
   * Quiet rounds: every core runs with `quietRounds`, and a proposer has something to propose in
   * a round only with this probability (else `buildBlock` returns null and it stays silent), like
   * a shard whose mempools are mostly empty. Re-proposals of a valid value are unaffected.
   */
  quiet?: number;
  /** Debugging aid: called with a line per signed message / commit / sync. */
  trace?: (line: string) => void;
}

export interface SimCommit {
  node: string;
  height: number;
  round: number;
  blockHash: string;
  time: number;
}

export interface SimResult {
  names: string[];
  committee: Committee;
  /** Commit actions emitted by honest nodes (not syncs). */
  commits: SimCommit[];
  evidence: { node: string; kind: 'vote' | 'proposal'; offender: string }[];
  /** Safety / certificate / double-sign problems: must stay empty. */
  violations: string[];
  /** Last committed height (by consensus or sync) of each honest node. */
  finalHeights: Map<string, number>;
  decided: Map<number, string>;
  rejected: Map<string, number>;
  delivered: number;
  /** Honest proposals re-proposing a value with validRound ≥ 0 (polka carried across rounds). */
  reproposals: number;
  /** Honest precommits that moved a lock to a different value at the same height. */
  relocks: number;
}

const TIMEOUT_MS = { propose: 500, prevote: 200, precommit: 200 } as const;
const SIGN_ORDER: Record<SignedStep, number> = { proposal: 0, prevote: 1, precommit: 2 };
const enc = new TextEncoder();

type Msg = Extract<Event<TestBlock>, { type: 'proposal' | 'vote' }>;
type Item =
  | { kind: 'slot'; node: number; slot: number }
  | { kind: 'msg'; to: number; from: number; sentAt: number; msg: Msg }
  | { kind: 'status'; to: number; from: number; sentAt: number; height: number }
  | { kind: 'timeout'; node: number; incarnation: number; event: Event<TestBlock> }
  | { kind: 'sync'; node: number; from: number; height: number }
  | { kind: 'crash'; node: number; downMs: number }
  | { kind: 'restart'; node: number };

interface Node {
  index: number;
  name: string;
  skew: number;
  byzantine: boolean;
  core: ConsensusCore<TestBlock>;
  /** Committed or synced blocks: height → hash (contiguous from 1). */
  chain: Map<number, string>;
  // What a real node keeps on disk (fsync'd before broadcasting).
  persistedSigned: SignedState | null;
  persistedLock: LockState<TestBlock> | null;
  seen: Set<string>;
  /** Our own signed messages of the current height, re-sent every slot (see `rebroadcast`). */
  own: Msg[];
  /** Byzantine nodes: blocks seen proposed per height (material for conflicting messages). */
  proposed: Map<number, TestBlock[]>;
  down: boolean;
  incarnation: number;
}

/** Min-heap on (time, seq): deterministic order for simultaneous events. */
class Queue {
  private heap: { t: number; seq: number; item: Item }[] = [];
  private seq = 0;
  push(t: number, item: Item): void {
    const h = this.heap;
    h.push({ t, seq: this.seq++, item });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.less(h[p]!, h[i]!)) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }
  pop(): { t: number; item: Item } | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }
  private less(a: { t: number; seq: number }, b: { t: number; seq: number }): boolean {
    return a.t < b.t || (a.t === b.t && a.seq < b.seq);
  }
}

function msgKey(m: Msg): string {
  if (m.type === 'proposal') {
    const p = m.proposal;
    return `p|${p.height}|${p.round}|${p.proposer}|${p.blockHash}`;
  }
  const v = m.vote;
  return `v|${v.height}|${v.round}|${v.step}|${v.validator}|${v.blockHash}`;
}

function proposalSig(p: Omit<Proposal<TestBlock>, 'signature'>): Uint8Array {
  return enc.encode(`psig:${p.proposer}:${p.height}:${p.round}:${p.blockHash}`);
}

export function runSimulation(opts: SimOptions): SimResult {
  const slotMs = opts.slotMs ?? 1000;
  const maxDelay = opts.maxDelayMs ?? 400;
  const dropRate = opts.dropRate ?? 0.1;
  const dupRate = opts.dupRate ?? 0.1;
  const maxSkew = opts.maxSkewMs ?? 50;
  const rng = mulberry32(opts.seed);
  const names = opts.stakes.map((_, i) => `v${i}`);
  const committee = makeCommittee(names.map((address, i) => ({ address, stake: opts.stakes[i]! })));
  const seedBytes = enc.encode(`sim-seed-${opts.seed}`);
  const proposerCache = new Map<number, string>();
  const schedule: Schedule = {
    committee: () => committee,
    proposer: (slot) => {
      let p = proposerCache.get(slot);
      if (p === undefined) {
        p = proposerForSlot(committee, seedBytes, slot);
        proposerCache.set(slot, p);
      }
      return p;
    },
  };
  const byz = new Set(opts.byzantine ?? []);

  const result: SimResult = {
    names,
    committee,
    commits: [],
    evidence: [],
    violations: [],
    finalHeights: new Map(),
    decided: new Map(),
    rejected: new Map(),
    delivered: 0,
    reproposals: 0,
    relocks: 0,
  };

  const quiet = opts.quiet;
  const appFor = (name: string): ConsensusApp<TestBlock> => {
    const app = testApp(name);
    if (quiet === undefined) return app;
    // Work per (node, round) from a hash, not the shared PRNG: whether a proposer has work does not
    // depend on how many messages were sent before.
    const busy = (round: number) => mulberry32((opts.seed * 31 + round) * 131 + names.indexOf(name))() < quiet;
    return { ...app, buildBlock: (height, round) => (busy(round) ? app.buildBlock(height, round) : null) };
  };
  const newCore = (name: string, height: number, lastSigned: SignedState | null, locked: LockState<TestBlock> | null) =>
    new ConsensusCore<TestBlock>({ app: appFor(name), schedule, self: name, height, lastSigned, locked, quietRounds: quiet !== undefined });

  const nodes: Node[] = names.map((name, index) => ({
    index,
    name,
    skew: Math.round((rng() * 2 - 1) * maxSkew),
    byzantine: byz.has(index),
    core: newCore(name, 1, null, null),
    chain: new Map(),
    persistedSigned: null,
    persistedLock: null,
    seen: new Set(),
    own: [],
    proposed: new Map(),
    down: false,
    incarnation: 0,
  }));

  const queue = new Queue();
  let now = 0;
  const endTime = (opts.slots + 1) * slotMs;

  // Partition is active slightly before slot boundaries so clock skew cannot leak a round across it.
  const partition = opts.partition;
  const partStart = partition ? partition.fromSlot * slotMs - 200 : Infinity;
  const partEnd = partition ? partition.toSlot * slotMs - 200 : -Infinity;
  const group = new Map<number, number>();
  partition?.groups.forEach((g, gi) => g.forEach((n) => group.set(n, gi)));
  const connected = (a: number, b: number, t: number) => !(t >= partStart && t < partEnd && group.get(a) !== group.get(b));

  const transmit = (from: number, to: number, make: (sentAt: number) => Item) => {
    if (rng() < dropRate || !connected(from, to, now)) return;
    queue.push(now + rng() * maxDelay, make(now));
    if (rng() < dupRate) queue.push(now + rng() * maxDelay, make(now));
  };
  const send = (from: number, to: number, msg: Msg) => transmit(from, to, (sentAt) => ({ kind: 'msg', to, from, sentAt, msg }));
  const broadcast = (from: Node, msg: Msg, targets: number[] = names.map((_, i) => i)) => {
    from.seen.add(msgKey(msg));
    for (const to of targets) if (to !== from.index) send(from.index, to, msg);
  };
  // A Byzantine node shows one face to a random subset of its peers and another to the rest.
  const split = (n: Node): [number[], number[]] => {
    const a: number[] = [];
    const b: number[] = [];
    for (const x of nodes) if (x !== n) (rng() < 0.5 ? a : b).push(x.index);
    return [a, b];
  };
  const noteProposal = (n: Node, p: Proposal<TestBlock>) => {
    const list = n.proposed.get(p.height) ?? [];
    if (!list.some((b) => hashTestBlock(b) === p.blockHash)) list.push(p.block);
    n.proposed.set(p.height, list);
  };
  const otherBlocks = (n: Node, height: number, notHash: string | null) => (n.proposed.get(height) ?? []).filter((b) => hashTestBlock(b) !== notHash);
  const conflictingValue = (n: Node, v: Omit<Vote, 'signature'>): string | null => {
    const candidates = otherBlocks(n, v.height, v.blockHash);
    if (candidates.length > 0) return hashTestBlock(candidates[Math.floor(rng() * candidates.length)]!);
    return v.blockHash === null ? 'ee'.repeat(32) : null;
  };
  /** Second proposal: a fresh block, or an older block of this height with a made-up validRound. */
  const conflictingProposal = (n: Node, p: Omit<Proposal<TestBlock>, 'signature'>): Omit<Proposal<TestBlock>, 'signature'> => {
    const old = otherBlocks(n, p.height, p.blockHash);
    if (old.length > 0 && p.round > 0 && rng() < 0.5) {
      const b = old[Math.floor(rng() * old.length)]!;
      return { ...p, block: b, blockHash: hashTestBlock(b), validRound: Math.floor(rng() * p.round) };
    }
    const fresh = { ...p.block, payload: `evil-${p.round}` };
    return { ...p, block: fresh, blockHash: hashTestBlock(fresh), validRound: -1 };
  };

  const keepOwn = (n: Node, msg: Msg) => {
    const h = msg.type === 'vote' ? msg.vote.height : msg.proposal.height;
    n.own = n.own.filter((m) => (m.type === 'vote' ? m.vote.height : m.proposal.height) >= h);
    n.own.push(msg);
  };

  const checkSign = (n: Node, height: number, round: number, step: SignedStep) => {
    const s = n.persistedSigned;
    if (s !== null) {
      const cmp = height - s.height || round - s.round || SIGN_ORDER[step] - SIGN_ORDER[s.step];
      if (cmp <= 0) result.violations.push(`DOUBLE_SIGN ${n.name} (${height},${round},${step}) after (${s.height},${s.round},${s.step})`);
    }
    n.persistedSigned = { height, round, step };
  };

  const recordChain = (n: Node, height: number, hash: string, how: string) => {
    const mine = n.chain.get(height);
    if (mine !== undefined && mine !== hash) result.violations.push(`SAFETY ${n.name} h${height}: ${how} ${hash} over ${mine}`);
    n.chain.set(height, hash);
    if (n.byzantine) return;
    const d = result.decided.get(height);
    if (d === undefined) result.decided.set(height, hash);
    else if (d !== hash) result.violations.push(`SAFETY h${height}: ${n.name} ${how} ${hash}, others ${d}`);
  };

  const handle = (n: Node, e: Event<TestBlock>) => {
    if (n.down) return;
    perform(n, n.core.handle(e));
  };

  const trace = opts.trace;
  const perform = (n: Node, actions: Action<TestBlock>[]) => {
    for (const a of actions) {
      if (trace && a.type !== 'rejected' && a.type !== 'scheduleTimeout') {
        const what =
          a.type === 'broadcastVote' ? `${a.vote.step} r${a.vote.round} ${a.vote.blockHash?.slice(0, 6) ?? 'nil'}` + (a.lock ? ` lock r${a.lock.round}` : '')
          : a.type === 'broadcastProposal' ? `proposal r${a.proposal.round} ${a.proposal.blockHash.slice(0, 6)} vr${a.proposal.validRound}`
          : a.type === 'commit' ? `COMMIT r${a.round} ${a.blockHash.slice(0, 6)}`
          : `evidence ${a.kind}`;
        trace(`${now.toFixed(0).padStart(6)} ${n.name} h${n.core.height} ${what}`);
      }
      switch (a.type) {
        case 'broadcastProposal': {
          const p = a.proposal;
          checkSign(n, p.height, p.round, 'proposal');
          if (p.validRound >= 0 && !n.byzantine) result.reproposals++;
          const signed: Proposal<TestBlock> = { ...p, signature: proposalSig(p) };
          if (n.byzantine) {
            const altP = conflictingProposal(n, p);
            const signedAlt = { ...altP, signature: proposalSig(altP) };
            const [a1, a2] = split(n);
            broadcast(n, { type: 'proposal', proposal: signed }, a1);
            broadcast(n, { type: 'proposal', proposal: signedAlt }, a2);
            noteProposal(n, signed);
            noteProposal(n, signedAlt);
          } else {
            broadcast(n, { type: 'proposal', proposal: signed });
            keepOwn(n, { type: 'proposal', proposal: signed });
          }
          handle(n, { type: 'proposal', proposal: signed });
          break;
        }
        case 'broadcastVote': {
          const v = a.vote;
          checkSign(n, v.height, v.round, v.step);
          if (a.lock !== undefined) {
            const prev = n.persistedLock;
            if (a.lock && prev && prev.height === a.lock.height && prev.blockHash !== a.lock.blockHash && !n.byzantine) result.relocks++;
            n.persistedLock = a.lock; // persisted with the precommit
          }
          const signed: Vote = { ...v, signature: sig(v) };
          if (n.byzantine) {
            const other = { ...v, blockHash: conflictingValue(n, v) };
            const [a1, a2] = split(n);
            broadcast(n, { type: 'vote', vote: signed }, a1);
            broadcast(n, { type: 'vote', vote: { ...other, signature: sig(other) } }, a2);
          } else {
            broadcast(n, { type: 'vote', vote: signed });
            keepOwn(n, { type: 'vote', vote: signed });
          }
          // Feed the signed copy back before acting on later actions (fills certificates).
          handle(n, { type: 'vote', vote: signed });
          break;
        }
        case 'scheduleTimeout':
          queue.push(now + TIMEOUT_MS[a.step], { kind: 'timeout', node: n.index, incarnation: n.incarnation, event: { type: 'timeout', height: a.height, round: a.round, step: a.step } });
          break;
        case 'commit': {
          const cert = checkCommitCertificate(committee, a.height, a.round, a.blockHash, a.precommits);
          if (!cert.ok) result.violations.push(`CERT ${n.name} h${a.height}: ${cert.reason}`);
          for (const pc of a.precommits) {
            const { signature, ...body } = pc;
            if (Buffer.compare(Buffer.from(signature), Buffer.from(sig(body))) !== 0) result.violations.push(`UNSIGNED ${n.name} h${a.height} precommit of ${pc.validator}`);
          }
          if (hashTestBlock(a.block) !== a.blockHash || a.block.height !== a.height) result.violations.push(`BLOCK ${n.name} h${a.height}`);
          recordChain(n, a.height, a.blockHash, 'committed');
          if (!n.byzantine) result.commits.push({ node: n.name, height: a.height, round: a.round, blockHash: a.blockHash, time: now });
          break;
        }
        case 'evidence':
          if (!n.byzantine) {
            const offender = a.kind === 'vote' ? a.first.validator : a.first.proposer;
            result.evidence.push({ node: n.name, kind: a.kind, offender });
          }
          break;
        case 'rejected':
          result.rejected.set(a.reason, (result.rejected.get(a.reason) ?? 0) + 1);
          break;
      }
    }
  };

  for (const n of nodes) for (let s = 1; s <= opts.slots; s++) queue.push(s * slotMs + n.skew, { kind: 'slot', node: n.index, slot: s });
  for (const c of opts.crashes ?? []) queue.push(c.atMs, { kind: 'crash', node: c.node, downMs: c.downMs });

  for (let ev = queue.pop(); ev !== undefined && ev.t <= endTime; ev = queue.pop()) {
    now = ev.t;
    const it = ev.item;
    switch (it.kind) {
      case 'slot': {
        const n = nodes[it.node]!;
        if (n.down) break;
        handle(n, { type: 'slot', slot: it.slot });
        if ((opts.rebroadcast ?? true) && !n.byzantine) {
          for (const m of n.own) {
            const h = m.type === 'vote' ? m.vote.height : m.proposal.height;
            if (h === n.core.height) for (const other of nodes) if (other !== n) send(n.index, other.index, m);
          }
        }
        // Sync gossip: advertise our last committed height.
        if (!n.byzantine) for (const other of nodes) if (other !== n) transmit(n.index, other.index, (sentAt) => ({ kind: 'status', to: other.index, from: n.index, sentAt, height: n.core.height - 1 }));
        break;
      }
      case 'msg': {
        const n = nodes[it.to]!;
        if (n.down || !connected(it.from, it.to, now)) break;
        result.delivered++;
        if (n.byzantine && it.msg.type === 'proposal') noteProposal(n, it.msg.proposal);
        const key = msgKey(it.msg);
        const fresh = !n.seen.has(key);
        n.seen.add(key);
        handle(n, it.msg);
        if ((opts.gossip ?? true) && fresh && !n.byzantine) for (const other of nodes) if (other !== n && other.index !== it.from) send(n.index, other.index, it.msg);
        break;
      }
      case 'status': {
        const n = nodes[it.to]!;
        if (n.down || !connected(it.from, it.to, now)) break;
        if (it.height >= n.core.height) queue.push(now + 100 + rng() * 200, { kind: 'sync', node: n.index, from: it.from, height: it.height });
        break;
      }
      case 'sync': {
        // Toy block sync: copy the peer's blocks (their certificates would be verified) and jump.
        const n = nodes[it.node]!;
        const src = nodes[it.from]!;
        if (n.down || it.height < n.core.height) break;
        trace?.(`${now.toFixed(0).padStart(6)} ${n.name} SYNC ${n.core.height}..${it.height} from ${src.name}`);
        for (let h = n.core.height; h <= it.height; h++) recordChain(n, h, src.chain.get(h)!, 'synced');
        handle(n, { type: 'externalCommit', height: it.height, blockHash: src.chain.get(it.height)! });
        break;
      }
      case 'timeout': {
        const n = nodes[it.node]!;
        if (!n.down && n.incarnation === it.incarnation) handle(n, it.event);
        break;
      }
      case 'crash': {
        const n = nodes[it.node]!;
        n.down = true;
        n.incarnation++;
        queue.push(now + it.downMs, { kind: 'restart', node: n.index });
        break;
      }
      case 'restart': {
        // Restart from disk: the chain, lastSigned and the lock survive; everything else is lost.
        const n = nodes[it.node]!;
        n.down = false;
        n.core = newCore(n.name, n.chain.size + 1, n.persistedSigned, n.persistedLock);
        // The clock tells the new process the current slot straight away.
        const slot = Math.floor((now - n.skew) / slotMs);
        if (slot >= 1) handle(n, { type: 'slot', slot });
        break;
      }
    }
  }

  for (const n of nodes) if (!n.byzantine) result.finalHeights.set(n.name, n.chain.size);
  return result;
}
