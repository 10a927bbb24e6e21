import { ADDRESS_BYTES, bytesEqual, schemeLengths, toHex } from '@qnexus/crypto';
import { MAX_COMMITTEE, QnexusError, Reader, Writer, decodeBlock, decodeCertificate, epochOf, slotAt, type Block, type Certificate } from '@qnexus/types';
import { P2PRequestError, type P2PNode, type ServeBudget, type Topics } from '@qnexus/p2p';
import { MAX_BLOCK_WIRE_BYTES, candidateFromBlock, type Candidate, type Chain, type VerifiedSignatures } from './chain.js';
import type { Engine } from './engine.js';
import type { Metrics } from './metrics.js';
import type { Logger } from '@qnexus/runtime';
import { SyncReporter, type ReporterOptions } from './sync-progress.js';

/**
 * Most blocks served per range request; a client asks again for the rest.
 * (Nodes before this limit served 64 and ask for 64: a response shorter than
 * asked is normal on both sides.)
 */
export const MAX_SYNC_BATCH = 256;
/** A range response stops once its frames reach this many bytes (always at least one block). */
export const MAX_SYNC_RESPONSE_BYTES = 8 * 1024 * 1024;
/** Heights the server reads from its store per call. */
const SYNC_READ_CHUNK = 32;
/** Ranges requested (concurrently) ahead of the blocks being imported. */
const SYNC_RANGES_AHEAD = 3;
/**
 * Bytes of sync frames received and not imported yet, over all ranges: a
 * range request reserves MAX_SYNC_RESPONSE_BYTES (what a server may send) and
 * keeps what arrived until it is imported or dropped.
 */
export const SYNC_BUFFER_BYTES = 32 * 1024 * 1024;
/** Longest wait for a status or range response to start, or between two of its frames, before it is STALLED. */
export const SYNC_IDLE_MS = 3_000;
const STATUS_TIMEOUT_MS = 3_000;
const RANGE_TIMEOUT_MS = 30_000;
/** A head claimed by one peer more than this far above every other peer's is synced to last. */
const LONE_LEAD = 4;
/** Peers synced from per tick (each one after the previous failed or ran out of blocks). */
const MAX_PEERS_PER_TICK = 4;
/** How long a peer is not asked again after a lie (bad frames, an implausible head), after a timeout or stall, and after a refusal or running out of blocks. */
const AVOID_LIAR_MS = 60_000;
const AVOID_SLOW_MS = 30_000;
const AVOID_SKIP_MS = 10_000;
const STREAM_LIMITS = { maxInboundStreams: 16, maxOutboundStreams: 16 };
/**
 * A node is in step when its head's block is from one of the last IN_STEP_SLOTS slots: it is
 * finalizing with its committee (or following it), so no peer can be more than a few blocks
 * ahead and consensus itself carries it to the next height. Then the peers are asked for their
 * heads only every IN_STEP_POLL_TICKS-th tick (a backstop), not every slot: asking each connected
 * peer opens a stream per peer and per slot on both sides (on an idle devnet, ten new streams a
 * second per node, with their protocol negotiation and peer-store writes). A node that falls
 * behind (a partition, a pause, a crash) stops finalizing, so within IN_STEP_SLOTS its head is
 * stale and it asks every slot again. A peer that connected since the last poll is asked at the
 * next tick, in step or not: its claims (true or false) are looked at within a slot, not eight.
 */
const IN_STEP_SLOTS = 3;
const IN_STEP_POLL_TICKS = 8;
/** A syncing peer asks every peer for its head once a slot. */
const STATUS_BUDGET: ServeBudget = { requestsPerSec: 5, requestBurst: 10 };
/**
 * What one peer, and all together, may pull: a 13-byte request returns up to 8 MiB, and 96 of
 * them once pushed a validator behind consensus. 16 MiB/s per peer is ~1,600 empty blocks or ~16
 * full ones a second (more than sync imports); 32 MiB/s in all bounds the serving work whatever
 * the number of peers (a response that runs out ends early; the client asks again).
 */
const BLOCKS_BUDGET: ServeBudget = {
  requestsPerSec: 10,
  requestBurst: 20,
  bytesPerSec: 16 * 1024 * 1024,
  byteBurst: 32 * 1024 * 1024,
  globalBytesPerSec: 32 * 1024 * 1024,
  globalByteBurst: 64 * 1024 * 1024,
};
/** Codes of what a peer sent that an honest peer never sends. */
const LIES = new Set(['MALFORMED', 'BAD_BLOCK', 'BAD_CERTIFICATE', 'EPOCH_UNKNOWN', 'FRAME_TOO_LARGE', 'TOO_MANY_FRAMES', 'TOO_MANY_BYTES', 'BAD_FRAME']);

/**
 * The largest range frame an honest server sends: a block of at most
 * MAX_BLOCK_WIRE_BYTES and a certificate signed by a whole committee of
 * MAX_COMMITTEE members with the scheme's signatures, each length-prefixed.
 */
export function syncFrameLimit(signatureBytes: number): number {
  const certificate = 1 + 8 + 8 + 32 + 4 + MAX_COMMITTEE * (ADDRESS_BYTES + 4 + signatureBytes);
  return 4 + MAX_BLOCK_WIRE_BYTES + 4 + certificate;
}

/** One received (block, certificate) frame, decoded and checked on arrival, with its pre-verification once started. */
interface SyncFrame {
  block: Block;
  raw: Uint8Array;
  cert: Certificate;
  /** The certificate's wire bytes (stored as received). */
  certRaw: Uint8Array;
  candidate: Candidate;
  epoch: number;
  /** Wire size, counted in the buffer budget until imported or dropped. */
  bytes: number;
  released: boolean;
  /** Pre-verification on the pool (settles, never rejects). */
  verified?: Promise<void>;
  /** The vote signatures that verified. */
  done?: VerifiedSignatures;
  /** Why pre-verification refused the certificate (before verifying anything). */
  error?: unknown;
}

/** One range request and the frames it has brought. */
interface Range {
  from: number;
  count: number;
  /** Frames received, each checked on arrival and linked to the one before it in this range. */
  frames: SyncFrame[];
  /** frames[0, linked) are linked to our chain and handed to the import. */
  linked: number;
  started: boolean;
  /** The response ended complete (not cut short by an error or by the sync ending). */
  done: boolean;
  /** Dropped: the sync ended or failed; the request stops at its next frame. */
  cancelled: boolean;
  /** Bytes reserved in the buffer budget while the response is in flight. */
  reserved: number;
}

/** One sync from one peer. */
interface Session {
  peer: string;
  target: number;
  /** The last block linked to our chain (our head at first). */
  tip: { height: number; hash: Uint8Array; slot: number };
  /** Ranges not linked yet, in height order. */
  ranges: Range[];
  /** Linked frames, in height order, waiting for import. */
  ready: SyncFrame[];
  nextFrom: number;
  /** Blocks asked per range (lowered to what a server sends per response). */
  stride: number;
  /** The peer sent an empty response: it has nothing from there on. */
  exhausted: boolean;
  /** The first failure, already judged (penalty, back-off). The import finishes the linked frames, then stops. */
  failure: unknown;
  failed: boolean;
  importing: boolean;
  over: boolean;
  /** Wakes the import loop while it waits for frames. */
  wake: (() => void) | null;
}

export interface SyncProgress {
  syncing: boolean;
  /** Height being synced to: never above what the slot clock allows. */
  target: number;
  blocksPerSecond: number;
  /** Seconds left at the current rate (null while unknown). */
  etaSeconds: number | null;
}

/** What this node asks of a server and holds while syncing. */
export interface FetchLimits {
  /** Most bytes one range response may carry (servers stop at MAX_SYNC_RESPONSE_BYTES): beyond it, TOO_MANY_BYTES. */
  responseBytes: number;
  /** Bytes of frames received and not imported, over all ranges (see SYNC_BUFFER_BYTES); at least twice `responseBytes`. */
  bufferBytes: number;
  /** See SYNC_IDLE_MS. */
  idleMs: number;
}

/**
 * Block-range sync over request/response streams: `status` tells a peer's
 * finalized head; `blocks` streams (block, certificate) frames for a range.
 *
 * Every byte a peer sends is treated as hostile. A claimed head is believed
 * only up to the slot clock (a block per slot at most) and a lone claim far
 * above every other peer's is synced to last. Ranges are fetched pipelined
 * (up to 3 at once, ahead of the import), each bounded in frames, bytes
 * (MAX_SYNC_RESPONSE_BYTES) and time (a STALLED response after SYNC_IDLE_MS),
 * and everything received but not imported is bounded by SYNC_BUFFER_BYTES.
 * Each frame is checked as it arrives, before any signature work: the next
 * height, linked to the block before it, chain and shard, transaction root,
 * a slot and round up to the current slot, and the certificate's structure
 * (`Chain.precheckCertified`); the first violation stops reading and fails
 * the sync. Linked frames are pre-verified on the verify pool (certificate
 * votes, transactions: `Chain.preverifyCertified`, which refuses a
 * structurally bad certificate before verifying anything) and imported in
 * order on the engine queue, where `importCertified` runs every certificate
 * check itself, taking a vote signature as good only if that exact
 * (key, message, signature) verified on the pool; groups of pre-verified
 * blocks are written as one synced batch, write-behind one batch deep.
 *
 * A peer that lies (an implausible head, a bad frame, a certificate that
 * fails, an epoch announcement it cannot provide for a block it served),
 * times out or stalls is penalised and avoided for a while; one that refuses
 * (resets the stream, e.g. its serving budget) or runs out of blocks is only
 * avoided for a while. Either way the sync moves on to another peer at once,
 * keeping the blocks it imported. `engine.newestKnownHeight` rises only with
 * blocks whose certificate verified, never with a claim.
 */
export class Syncer {
  progress: SyncProgress = { syncing: false, target: 0, blocksPerSecond: 0, etaSeconds: null };
  /** Most blocks and bytes this node serves per range response (tests lower them to act as a smaller or older server). */
  serveLimits = { blocks: MAX_SYNC_BATCH, bytes: MAX_SYNC_RESPONSE_BYTES };
  /** What this node accepts and buffers as a client (tests lower them). */
  fetchLimits: FetchLimits = { responseBytes: MAX_SYNC_RESPONSE_BYTES, bufferBytes: SYNC_BUFFER_BYTES, idleMs: SYNC_IDLE_MS };
  /** Where the progress bar / progress lines go (tests replace it). */
  reporterOptions: ReporterOptions = {};
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private stopped = false;
  /** The batch write of the last imported group, awaited before the next group's is issued (and at the end of a sync). */
  private writeBehind: Promise<void> = Promise.resolve();
  /** The largest frame accepted (see syncFrameLimit). */
  private readonly frameLimit: number;
  /** Bytes reserved by responses in flight plus frames received and not imported or dropped, over all syncs. */
  private buffered = 0;
  private peakBuffered = 0;
  /** Peers not asked until the given time (ms). */
  private readonly avoid = new Map<string, number>();
  private session: Session | null = null;
  /** Ticks skipped in a row while in step (see IN_STEP_SLOTS). */
  private skippedTicks = 0;
  /** The peers connected at the last poll (see pollDue). */
  private asked = new Set<string>();

  constructor(
    private readonly chain: Chain,
    private readonly engine: Engine,
    private readonly p2p: P2PNode,
    private readonly t: Topics,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.frameLimit = syncFrameLimit(schemeLengths(chain.genesis.scheme).signature);
  }

  /** Bytes buffered now and at most so far (see SYNC_BUFFER_BYTES). */
  get bufferStats(): { bytes: number; peakBytes: number } {
    return { bytes: this.buffered, peakBytes: this.peakBuffered };
  }

  /** Whether a peer is being avoided after a failure (see AVOID_LIAR_MS). */
  avoiding(peer: string, now: number = Date.now()): boolean {
    const until = this.avoid.get(peer);
    return until !== undefined && until > now;
  }

  async start(): Promise<void> {
    await this.p2p.handle(this.t.statusProtocol, { ...STREAM_LIMITS, maxRequestBytes: 64, timeoutMs: 5_000, budget: STATUS_BUDGET }, () => this.serveStatus());
    await this.p2p.handle(this.t.blocksProtocol, { ...STREAM_LIMITS, maxRequestBytes: 64, timeoutMs: 30_000, budget: BLOCKS_BUDGET }, (req) => this.serveBlocks(req));
    const every = Math.max(250, this.chain.genesis.slotMs);
    const loop = () => {
      if (this.stopped) return;
      this.timer = setTimeout(() => {
        if (!this.pollDue()) return loop();
        this.tick().finally(loop);
      }, every);
    };
    loop();
  }

  /**
   * Whether this tick asks the peers for their heads: always when not in step; in step, every
   * IN_STEP_POLL_TICKS-th tick, or at once when a peer connected since the last poll.
   */
  pollDue(nowMs: number = Date.now()): boolean {
    if (!this.inStep(nowMs) || ++this.skippedTicks >= IN_STEP_POLL_TICKS || this.p2p.connectedPeers().some((p) => !this.asked.has(p))) {
      this.skippedTicks = 0;
      return true;
    }
    return false;
  }

  /** Whether the head is recent enough that polling every peer each slot is not needed (see IN_STEP_SLOTS). */
  inStep(nowMs: number = Date.now()): boolean {
    const g = this.chain.genesis;
    if (this.chain.headHeight === 0 || nowMs < g.genesisTime) return false;
    // An idle shard makes a block only every emptyBlockInterval slots (quiet rounds in between).
    return slotAt(g, nowMs) - this.chain.headSlot <= IN_STEP_SLOTS + this.engine.emptyBlockInterval - 1;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /**
   * `u64 head ‖ head hash ‖ u64 base`: the base (the height a node joined at by snapshot, 0
   * otherwise) tells clients which blocks it cannot serve; clients of before it read the first two.
   */
  private async *serveStatus(): AsyncIterable<Uint8Array> {
    yield new Writer(48).u64(this.chain.headHeight).fixed(this.chain.headHash, 32).u64(this.chain.baseHeight).finish();
  }

  private async *serveBlocks(req: Uint8Array): AsyncIterable<Uint8Array> {
    const r = new Reader(req);
    const from = r.u64n('from');
    const count = Math.min(r.u32('count'), this.serveLimits.blocks);
    const maxBytes = this.serveLimits.bytes;
    r.end('sync request');
    // A node that joined by snapshot holds no block below its base: a range starting there gets nothing
    // (a response must start at the height asked for).
    if (from < this.chain.baseHeight) return;
    const first = Math.max(1, from);
    const to = Math.min(this.chain.headHeight, from + count - 1);
    // Read SYNC_READ_CHUNK heights per store call (one iterator each for heights and certificates, one
    // multi-get for blocks), the next chunk while this one is written; stop at MAX_SYNC_RESPONSE_BYTES.
    const read = (a: number) => {
      const p = this.chain.store.certifiedRange(a, Math.min(to, a + SYNC_READ_CHUNK - 1));
      p.catch(() => undefined); // a read-ahead the stream no longer wants must not fail unhandled
      return p;
    };
    let sent = 0;
    let next = first <= to ? read(first) : null;
    for (let h = first; next; ) {
      const rows = await next;
      let size = 0;
      for (const row of rows) size += row.block.length + row.certificate.length + 16;
      const end = h + rows.length;
      // A short chunk means the store stopped (a height not written yet): end the response there.
      next = rows.length === Math.min(SYNC_READ_CHUNK, to - h + 1) && end <= to && sent + size < maxBytes ? read(end) : null;
      for (const row of rows) {
        const n = row.block.length + row.certificate.length + 16;
        if (sent > 0 && sent + n > maxBytes) return;
        sent += n;
        yield new Writer(n).bytes(row.block).bytes(row.certificate).finish();
      }
      h = end;
    }
  }

  /**
   * Ask the connected peers (those not avoided) for their heads and sync from
   * those ahead, in the order `plan` gives, until one gets us to its target.
   */
  async tick(): Promise<void> {
    if (this.busy || this.stopped) return;
    this.busy = true;
    try {
      const now = Date.now();
      for (const [p, until] of this.avoid) if (until <= now) this.avoid.delete(p);
      const connected = this.p2p.connectedPeers();
      this.asked = new Set(connected);
      const peers = connected.filter((p) => !this.avoid.has(p) && !this.p2p.isBanned(p));
      const heads = await Promise.all(peers.map((p) => this.peerHead(p)));
      // A block per slot at most: a head above the slot clock is a lie.
      const maxHeight = this.chain.latestPlausibleRound();
      const claims: { peer: string; height: number }[] = [];
      for (let i = 0; i < peers.length; i++) {
        const head = heads[i];
        if (head === null || head === undefined) continue;
        const { height, base } = head;
        if (height > maxHeight) {
          this.implausible(peers[i]!, height, maxHeight);
          continue;
        }
        // It joined by snapshot above our next height: it has none of the blocks we need next (not a fault).
        if (base > this.chain.headHeight + 1) continue;
        claims.push({ peer: peers[i]!, height });
      }
      let tried = 0;
      for (const { peer, target } of this.plan(claims)) {
        if (this.stopped || tried >= MAX_PEERS_PER_TICK) break;
        if (this.chain.headHeight >= target || this.avoiding(peer)) continue;
        tried++;
        await this.syncFrom(peer, target);
      }
    } finally {
      this.busy = false;
    }
  }

  /**
   * Whom to sync from, to what height, in order. The target is the highest
   * claim, unless that claim is one peer's alone and more than LONE_LEAD above
   * every other claim ahead of us: then it is the highest height another peer
   * backs, and the lone claim is chased only once we are there (next tick). The
   * peers claiming at least the target come first, those claiming least first
   * (an extreme claim is tried last), then the peers behind the target, each to
   * its own claim.
   */
  private plan(claims: { peer: string; height: number }[]): { peer: string; target: number }[] {
    const head = this.chain.headHeight;
    const ahead = claims.filter((c) => c.height > head).sort((a, b) => b.height - a.height);
    if (!ahead.length) return [];
    const top = ahead[0]!.height;
    const backed = ahead[1]?.height ?? head;
    const target = top - backed <= LONE_LEAD || backed <= head ? top : backed;
    const first = ahead.filter((c) => c.height >= target).sort((a, b) => a.height - b.height);
    const rest = ahead.filter((c) => c.height < target);
    return [...first.map((c) => ({ peer: c.peer, target })), ...rest.map((c) => ({ peer: c.peer, target: c.height }))];
  }

  private implausible(peer: string, height: number, maxHeight: number): void {
    this.metrics.syncFailures.inc({ reason: 'IMPLAUSIBLE_HEAD' });
    this.avoidPeer(peer, AVOID_LIAR_MS);
    this.p2p.penalize(peer, `sync: IMPLAUSIBLE_HEAD ${height} > ${maxHeight}`);
    this.log.warn('sync: peer claims a head beyond the slot clock', { peer, height, maxHeight });
  }

  /** A peer's head and base (0 from a peer of before the base was sent). */
  private async peerHead(peer: string): Promise<{ height: number; base: number } | null> {
    try {
      const opts = { timeoutMs: STATUS_TIMEOUT_MS, idleTimeoutMs: this.fetchLimits.idleMs, maxResponseFrameBytes: 64, maxFrames: 1 };
      for await (const f of this.p2p.request(peer, this.t.statusProtocol, new Uint8Array(0), opts)) {
        const r = new Reader(f);
        const height = r.u64n('height');
        r.fixed(32, 'head hash');
        return { height, base: r.remaining >= 8 ? r.u64n('base') : 0 };
      }
    } catch (e) {
      // Peers that do not serve our shard fail to open the stream (DIAL_FAILED): skipped for a while, not penalised.
      this.judge(peer, e);
    }
    return null;
  }

  private avoidPeer(peer: string, ms: number): void {
    if (this.avoid.size >= 4096 && !this.avoid.has(peer)) this.avoid.delete(this.avoid.keys().next().value!);
    this.avoid.set(peer, Math.max(this.avoid.get(peer) ?? 0, Date.now() + ms));
  }

  /**
   * Account for a failed exchange with a peer: lies (see LIES), timeouts and
   * stalls are penalised; the peer is avoided for a while in every case (a
   * refusal, e.g. a stream reset by its serving budget, only briefly). Our own
   * failures (a disk write) are not the peer's.
   */
  private judge(peer: string, e: unknown): void {
    const code = e instanceof QnexusError || e instanceof P2PRequestError ? e.code : 'INTERNAL';
    const lie = LIES.has(code);
    const slow = code === 'TIMEOUT' || code === 'STALLED';
    if (code !== 'DIAL_FAILED') this.metrics.syncFailures.inc({ reason: code });
    this.avoidPeer(peer, lie ? AVOID_LIAR_MS : slow ? AVOID_SLOW_MS : AVOID_SKIP_MS);
    if (lie || slow) {
      this.p2p.penalize(peer, `sync: ${code}`);
      this.log.warn('sync from peer failed', { peer, code, error: (e as Error).message, head: toHex(this.chain.headHash).slice(0, 16) });
    } else if (code === 'INTERNAL') {
      this.log.warn('sync failed', { peer, error: (e as Error).message });
    } else {
      this.log.debug('sync: peer refused', { peer, code, error: (e as Error).message });
    }
  }

  private reserve(bytes: number): void {
    this.buffered += bytes;
    if (this.buffered > this.peakBuffered) this.peakBuffered = this.buffered;
  }

  private release(bytes: number): void {
    this.buffered -= bytes;
  }

  private releaseFrame(f: SyncFrame): void {
    if (f.released) return;
    f.released = true;
    this.release(f.bytes);
  }

  private wake(s: Session): void {
    const w = s.wake;
    s.wake = null;
    w?.();
  }

  /** The first failure of a sync: judge it, drop every frame not linked yet and stop fetching. */
  private fail(s: Session, e: unknown): void {
    if (s.failed) return;
    s.failed = true;
    s.failure = e;
    this.judge(s.peer, e);
    for (const r of s.ranges) {
      r.cancelled = true;
      for (const f of r.frames.slice(r.linked)) this.releaseFrame(f);
    }
    s.ranges = [];
    this.wake(s);
  }

  /**
   * Request ranges while the pipeline has room: up to SYNC_RANGES_AHEAD not
   * linked yet, each only if its reservation fits the buffer budget (the range
   * the import waits for starts anyway when nothing else could free the
   * budget: nothing ready or importing). Ranges waiting for the budget start in
   * height order.
   */
  private pump(s: Session): void {
    if (s.over || s.failed || this.stopped) return;
    const { responseBytes, bufferBytes } = this.fetchLimits;
    const fits = () => this.buffered + responseBytes <= bufferBytes;
    for (const r of s.ranges) {
      if (r.started) continue;
      if (!fits() && !(r === s.ranges[0] && !s.ready.length && !s.importing)) return;
      this.startRange(s, r);
    }
    while (!s.exhausted && s.nextFrom <= s.target && s.ranges.length < SYNC_RANGES_AHEAD && fits()) {
      const count = Math.min(s.stride, s.target - s.nextFrom + 1);
      const r: Range = { from: s.nextFrom, count, frames: [], linked: 0, started: false, done: false, cancelled: false, reserved: 0 };
      s.ranges.push(r);
      s.nextFrom += count;
      this.startRange(s, r);
    }
  }

  private startRange(s: Session, r: Range): void {
    r.started = true;
    r.reserved = this.fetchLimits.responseBytes;
    this.reserve(r.reserved);
    this.fetchRange(s, r).catch((e: unknown) => this.log.error('sync range fetch failed unexpectedly', { error: (e as Error).stack ?? String(e) }));
  }

  private decodeFrame(frame: Uint8Array): SyncFrame {
    const r = new Reader(frame);
    const raw = r.bytes(MAX_BLOCK_WIRE_BYTES, 'block');
    const certRaw = r.bytes(this.frameLimit, 'certificate');
    r.end('sync frame');
    const cert = decodeCertificate(certRaw);
    const block = decodeBlock(raw);
    return { block, raw, cert, certRaw, candidate: candidateFromBlock(block, raw), epoch: epochOf(this.chain.genesis, cert.round), bytes: frame.byteLength, released: false };
  }

  /**
   * Request one range and check each frame as it arrives (see the class
   * comment); a frame that fails stops reading the response and fails the
   * sync. A response shorter than asked gets the rest of its range requested
   * next, in its place; an empty one ends the fetching from this peer there.
   */
  private async fetchRange(s: Session, r: Range): Promise<void> {
    const req = new Writer(12).u64(r.from).u32(r.count).finish();
    const opts = { timeoutMs: RANGE_TIMEOUT_MS, idleTimeoutMs: this.fetchLimits.idleMs, maxResponseFrameBytes: this.frameLimit, maxFrames: r.count, maxResponseBytes: r.reserved };
    const maxRound = this.chain.latestPlausibleRound();
    let held = 0;
    let error: unknown = null;
    let prev: SyncFrame | null = null;
    let complete = true;
    try {
      for await (const frame of this.p2p.request(s.peer, this.t.blocksProtocol, req, opts)) {
        if (this.stopped || s.over || s.failed || r.cancelled) {
          complete = false;
          break;
        }
        const f = this.decodeFrame(frame);
        const h = f.block.header;
        const expected = r.from + r.frames.length;
        if (h.height !== expected) throw new QnexusError('BAD_BLOCK', `sync block ${h.height} sent where ${expected} was asked for`);
        if (prev && (!bytesEqual(h.parentHash, prev.candidate.hash) || h.slot <= prev.block.header.slot)) {
          throw new QnexusError('BAD_BLOCK', `sync block ${h.height} does not extend block ${prev.block.header.height}`);
        }
        this.chain.precheckCertified(f.candidate, f.cert, maxRound);
        r.frames.push(f);
        held += f.bytes;
        prev = f;
        this.advance(s);
        if (s.failed) {
          complete = false;
          break;
        }
      }
    } catch (e) {
      error = e;
    } finally {
      // The frames now hold their own bytes; the rest of the reservation is free.
      this.release(r.reserved - held);
      r.reserved = 0;
      if (s.over || r.cancelled) for (const f of r.frames.slice(r.linked)) this.releaseFrame(f);
    }
    if (error !== null) {
      if (!s.over && !r.cancelled) this.fail(s, error);
    } else if (complete && !s.over && !r.cancelled && !this.stopped) {
      r.done = true;
      const i = s.ranges.indexOf(r);
      if (r.frames.length === 0) {
        // The peer has nothing from here on: whatever was asked after this range cannot link.
        for (const later of s.ranges.splice(i + 1)) {
          later.cancelled = true;
          for (const f of later.frames) this.releaseFrame(f);
        }
        s.exhausted = true;
      } else if (r.frames.length < r.count) {
        // A server's byte bound, or an older server's smaller batch: ask for the rest next, and that many per range from now on.
        s.stride = Math.max(1, r.frames.length);
        const from = r.from + r.frames.length;
        s.ranges.splice(i + 1, 0, { from, count: r.count - r.frames.length, frames: [], linked: 0, started: false, done: false, cancelled: false, reserved: 0 });
      }
      this.advance(s);
    }
    if (this.session) this.pump(this.session);
    this.wake(s);
  }

  /**
   * Hand over to the import, in height order, every received frame that links
   * to the last one handed over (our head at first): the first frame of each
   * range is checked against the last of the range before it here (frames
   * within a range were linked on arrival). Pre-verification starts for each
   * frame whose epoch committee is known.
   */
  private advance(s: Session): void {
    while (s.ranges.length && !s.failed) {
      const r = s.ranges[0]!;
      while (r.linked < r.frames.length) {
        const f = r.frames[r.linked]!;
        const h = f.block.header;
        if (r.linked === 0 && (h.height !== s.tip.height + 1 || !bytesEqual(h.parentHash, s.tip.hash) || h.slot <= s.tip.slot)) {
          this.fail(s, new QnexusError('BAD_BLOCK', `sync block ${h.height} does not extend block ${s.tip.height}`));
          return;
        }
        r.linked++;
        s.tip = { height: h.height, hash: f.candidate.hash, slot: h.slot };
        s.ready.push(f);
        if (this.chain.committeeFor(f.epoch)) this.preverify(f);
      }
      if (!r.done) break;
      s.ranges.shift();
    }
    this.wake(s);
  }

  private preverify(f: SyncFrame): void {
    f.verified = this.chain.preverifyCertified(f.candidate, f.cert).then(
      (v) => {
        f.done = v;
        // A certificate whose verified votes carry a quorum proves this height exists (the only source of networkHeight here).
        if (v.quorum) this.engine.newestKnownHeight = Math.max(this.engine.newestKnownHeight, f.block.header.height);
      },
      (e: unknown) => {
        f.error = e;
      },
    );
  }

  /** The committee of `epoch`, from `peer` (which must have it: it served a block certified in that epoch) or anyone else. */
  private async ensureEpoch(epoch: number, peer: string): Promise<boolean> {
    // A fetch of this epoch already running (started elsewhere) may not ask `peer`; asking again does, once per slot.
    return (await this.chain.epochs.ensure(epoch, peer)) || this.chain.epochs.ensure(epoch, peer);
  }

  private async syncFrom(peer: string, target: number): Promise<void> {
    const start = this.chain.headHeight;
    const report = new SyncReporter(this.log, start, target, this.reporterOptions);
    this.progress = { syncing: true, target, blocksPerSecond: 0, etaSeconds: null };
    this.metrics.syncActive.set(1);
    this.metrics.syncTarget.set(target);
    this.metrics.syncSpeed.set(0);
    this.log.info('sync: peer is ahead, fetching blocks', { peer, from: start + 1, target });
    const observe = () => {
      const st = report.update(this.chain.headHeight);
      this.progress.blocksPerSecond = st.blocksPerSec;
      this.progress.etaSeconds = st.etaSec;
      this.metrics.syncSpeed.set(st.blocksPerSec);
    };
    const s: Session = {
      peer,
      target,
      tip: { height: start, hash: this.chain.headHash, slot: this.chain.headSlot },
      ranges: [],
      ready: [],
      nextFrom: start + 1,
      stride: MAX_SYNC_BATCH,
      exhausted: false,
      failure: null,
      failed: false,
      importing: false,
      over: false,
      wake: null,
    };
    this.session = s;
    let ok = false;
    try {
      this.pump(s);
      await this.importReady(s, observe);
      const written = this.writeBehind;
      this.writeBehind = Promise.resolve();
      await written;
      ok = this.chain.headHeight >= target;
      // It served nothing of what it claimed: try others first. (Serving less than claimed is not a lie: an
      // honest server's disk may trail its head by a batch.)
      if (this.chain.headHeight === start && !ok && !this.stopped) this.avoidPeer(peer, AVOID_SKIP_MS);
    } catch (e) {
      this.fail(s, e);
    } finally {
      s.over = true;
      this.session = null;
      for (const f of s.ready) this.releaseFrame(f);
      for (const r of s.ranges) {
        r.cancelled = true;
        for (const f of r.frames) this.releaseFrame(f);
      }
      s.ready = [];
      s.ranges = [];
      // After a failure, still wait for the good blocks' write (a failed write was reported above or fails the next sync).
      await this.writeBehind.catch(() => undefined);
      this.writeBehind = Promise.resolve();
      observe();
      report.finish(this.chain.headHeight, ok);
      this.progress.syncing = false;
      this.metrics.syncActive.set(0);
    }
  }

  /**
   * Import the linked frames in order, as they come. Blocks go to the engine
   * queue in groups: the next block whose pre-verification has settled, plus
   * the following ones settled too; each group is imported block by block
   * (every check of `importCertified`, then the engine's bookkeeping) and
   * written as one batch. Returns when the fetching is over and everything
   * linked is imported; throws the sync's failure after importing what was
   * linked before it.
   */
  private async importReady(s: Session, observe: () => void): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      const f = s.ready[0];
      if (!f) {
        if (s.failed) throw s.failure;
        if (!s.ranges.length && (s.exhausted || s.nextFrom > s.target)) return;
        await new Promise<void>((resolve) => (s.wake = resolve));
        continue;
      }
      if (!f.verified) {
        // The certificate is checked against the committee of its round's epoch: get that epoch's
        // announcement first (the serving peer has it, having verified this block).
        if (!(await this.ensureEpoch(f.epoch, s.peer))) {
          const e = new QnexusError('EPOCH_UNKNOWN', `cannot verify block ${f.block.header.height}: the committee of epoch ${f.epoch} is not available from ${s.peer}`);
          this.fail(s, e);
          throw e;
        }
        for (const g of s.ready) if (!g.verified && this.chain.committeeFor(g.epoch)) this.preverify(g);
      }
      await f.verified;
      if (f.error !== undefined) {
        this.fail(s, f.error);
        throw f.error;
      }
      let end = 1;
      while (end < s.ready.length && s.ready[end]!.done) end++;
      const group = s.ready.splice(0, end);
      let imported = 0;
      let write: Promise<void> = Promise.resolve();
      s.importing = true;
      try {
        await this.engine.run(async () => {
          try {
            for (const g of group) {
              // Consensus may have finalized this height meanwhile; skip what we already have.
              if (g.block.header.height <= this.chain.headHeight) continue;
              const { candidate, changes } = await this.chain.importCertified(g.block, g.raw, g.cert, { candidate: g.candidate, verified: g.done, certificateBytes: g.certRaw, defer: true });
              await this.engine.externalCommit(candidate, g.cert, changes);
              imported++;
            }
          } finally {
            // The blocks imported before a refused one are good: write them (one batch, or together
            // with the next group if the previous batch is still being written).
            write = this.chain.flush();
            write.catch(() => undefined);
          }
        });
      } catch (e) {
        await write.catch(() => undefined); // the block refused is what this sync reports
        this.fail(s, e);
        throw e;
      } finally {
        s.importing = false;
        for (const g of group) this.releaseFrame(g);
        this.metrics.syncedBlocks.inc(imported);
        observe();
      }
      this.pump(s);
      // Write-behind, one batch deep: the next group is imported while this one is synced to disk,
      // but not before the previous one is (a failed write stops the sync here).
      const previous = this.writeBehind;
      this.writeBehind = write;
      await previous;
    }
  }
}
