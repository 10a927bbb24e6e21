import { toHex } from '@qnexus/crypto';
import { QnexusError, Reader, Writer, decodeBlock, decodeCertificate, epochOf, type Block, type Certificate } from '@qnexus/types';
import type { P2PNode } from '@qnexus/p2p';
import { candidateFromBlock, type Candidate, type Chain, type VerifiedSignatures } from './chain.js';
import type { Engine } from './engine.js';
import type { Metrics } from './metrics.js';
import type { Logger } from './log.js';
import type { Topics } from './topics.js';
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
/** Ranges fetched (or being fetched, concurrently) ahead of the one being imported. */
const SYNC_RANGES_AHEAD = 3;
const FRAME_LIMIT = 4 * 1024 * 1024 + 64 * 1024;
const STREAM_LIMITS = { maxInboundStreams: 16, maxOutboundStreams: 16 };

/** One received (block, certificate) frame, decoded, with its pre-verification once started. */
interface SyncFrame {
  block: Block;
  raw: Uint8Array;
  cert: Certificate;
  /** The certificate's wire bytes (stored as received). */
  certRaw: Uint8Array;
  candidate: Candidate;
  epoch: number;
  /** Vote signatures verified on the pool (settles, never rejects). */
  verified?: Promise<VerifiedSignatures>;
  done?: VerifiedSignatures;
}

export interface SyncProgress {
  syncing: boolean;
  target: number;
  blocksPerSecond: number;
  /** Seconds left at the current rate (null while unknown). */
  etaSeconds: number | null;
}

/**
 * Block-range sync over request/response streams: `status` tells a peer's
 * finalized head; `blocks` streams (block, certificate) frames for a range.
 * The client verifies every certificate against the committee of its round's
 * epoch (fetching that epoch's announcement first if needed), checks every
 * transaction's signature, re-executes the block and checks its state root
 * before committing it — a peer can waste our time but cannot make us accept
 * anything (it is penalised instead).
 *
 * It is pipelined: while one batch is imported the next is being fetched, and
 * each received block's signatures (certificate votes and transactions) are
 * verified on the verify pool as soon as its epoch committee is known. The
 * serial import still runs every certificate check itself, taking a vote
 * signature as good only if that exact (key, message, signature) verified on
 * the pool, and otherwise verifying it again; transactions are checked against
 * the verify-once cache (bound to their exact signature). Imports run on the
 * engine queue in groups of consecutive pre-verified blocks, each group
 * written as one synced batch.
 */
export class Syncer {
  progress: SyncProgress = { syncing: false, target: 0, blocksPerSecond: 0, etaSeconds: null };
  /** Most blocks and bytes this node serves per range response (tests lower them to act as a smaller or older server). */
  serveLimits = { blocks: MAX_SYNC_BATCH, bytes: MAX_SYNC_RESPONSE_BYTES };
  /** Where the progress bar / progress lines go (tests replace it). */
  reporterOptions: ReporterOptions = {};
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private stopped = false;
  /** The batch write of the last imported group, awaited before the next group's is issued (and at the end of a sync). */
  private writeBehind: Promise<void> = Promise.resolve();

  constructor(
    private readonly chain: Chain,
    private readonly engine: Engine,
    private readonly p2p: P2PNode,
    private readonly t: Topics,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.p2p.handle(this.t.statusProtocol, { ...STREAM_LIMITS, maxRequestBytes: 64, timeoutMs: 5_000 }, () => this.serveStatus());
    await this.p2p.handle(this.t.blocksProtocol, { ...STREAM_LIMITS, maxRequestBytes: 64, timeoutMs: 30_000 }, (req) => this.serveBlocks(req));
    const every = Math.max(250, this.chain.genesis.slotMs);
    const loop = () => {
      if (this.stopped) return;
      this.timer = setTimeout(() => {
        this.tick().finally(loop);
      }, every);
    };
    loop();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private async *serveStatus(): AsyncIterable<Uint8Array> {
    yield new Writer(48).u64(this.chain.headHeight).fixed(this.chain.headHash, 32).finish();
  }

  private async *serveBlocks(req: Uint8Array): AsyncIterable<Uint8Array> {
    const r = new Reader(req);
    const from = r.u64n('from');
    const count = Math.min(r.u32('count'), this.serveLimits.blocks);
    const maxBytes = this.serveLimits.bytes;
    r.end('sync request');
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

  /** Ask connected peers for their heads; if one is ahead, fetch from it. */
  async tick(): Promise<void> {
    if (this.busy || this.stopped) return;
    this.busy = true;
    try {
      const peers = this.p2p.connectedPeers();
      const heads = await Promise.all(peers.map((p) => this.peerHead(p)));
      let best = -1;
      for (let i = 0; i < peers.length; i++) if ((heads[i] ?? -1) > this.chain.headHeight && (best < 0 || heads[i]! > heads[best]!)) best = i;
      if (best >= 0) await this.syncFrom(peers[best]!, heads[best]!);
    } finally {
      this.busy = false;
    }
  }

  private async peerHead(peer: string): Promise<number | null> {
    try {
      for await (const f of this.p2p.request(peer, this.t.statusProtocol, new Uint8Array(0), { timeoutMs: 2_000, maxResponseFrameBytes: 64, maxFrames: 1 })) {
        const r = new Reader(f);
        return r.u64n('height');
      }
    } catch {
      // Peers that do not serve our shard (or are slow) are simply skipped.
    }
    return null;
  }

  /**
   * Request one range from `peer` and decode its frames; the pre-verification
   * of each block whose epoch committee is already known starts at once.
   */
  private async fetchRange(peer: string, from: number, count: number): Promise<SyncFrame[]> {
    const req = new Writer(12).u64(from).u32(count).finish();
    // (A server sends at most MAX_SYNC_BATCH frames, fewer past MAX_SYNC_RESPONSE_BYTES, at most 64 before this version.)
    const frames: SyncFrame[] = [];
    for await (const frame of this.p2p.request(peer, this.t.blocksProtocol, req, { timeoutMs: 30_000, maxResponseFrameBytes: FRAME_LIMIT, maxFrames: count })) {
      const r = new Reader(frame);
      const raw = r.bytes(FRAME_LIMIT, 'block');
      const certRaw = r.bytes(FRAME_LIMIT, 'certificate');
      const cert = decodeCertificate(certRaw);
      r.end('sync frame');
      const block = decodeBlock(raw);
      const f: SyncFrame = { block, raw, cert, certRaw, candidate: candidateFromBlock(block, raw), epoch: epochOf(this.chain.genesis, cert.round) };
      if (this.chain.committeeFor(f.epoch)) this.preverify(f);
      frames.push(f);
    }
    return frames;
  }

  private preverify(f: SyncFrame): void {
    f.verified = this.chain.preverifyCertified(f.candidate, f.cert).then((v) => (f.done = v));
  }

  private async syncFrom(peer: string, target: number): Promise<void> {
    const start = this.chain.headHeight;
    const report = new SyncReporter(this.log, start, target, this.reporterOptions);
    this.progress = { syncing: true, target, blocksPerSecond: 0, etaSeconds: null };
    this.metrics.syncActive.set(1);
    this.metrics.syncTarget.set(target);
    this.metrics.syncSpeed.set(0);
    this.engine.newestKnownHeight = Math.max(this.engine.newestKnownHeight, target);
    this.log.info('sync: peer is ahead, fetching blocks', { peer, from: start + 1, target });
    const observe = () => {
      const st = report.update(this.chain.headHeight);
      this.progress.blocksPerSecond = st.blocksPerSec;
      this.progress.etaSeconds = st.etaSec;
      this.metrics.syncSpeed.set(st.blocksPerSec);
    };
    let ok = false;
    // Up to SYNC_RANGES_AHEAD ranges are fetched at once, ahead of the range being imported, each
    // asked for `stride` blocks from where the one before it should end; `queue` holds them in height
    // order. A response shorter than asked (the server's byte bound, or an older server's smaller
    // batch) gets the rest of its range asked for next, in its place in the queue, and later ranges
    // are asked for that many blocks. An empty response ends the sync from this peer there.
    type Entry = { frames: Promise<SyncFrame[]> };
    const queue: Entry[] = [];
    const importing = new Set<Entry>();
    let nextFrom = this.chain.headHeight + 1;
    let stride = MAX_SYNC_BATCH;
    let done = false;
    const fetch = (from: number, count: number): Entry => {
      const entry: Entry = { frames: this.fetchRange(peer, from, count) };
      entry.frames.then(
        (frames) => {
          const i = queue.indexOf(entry);
          if (done || (i < 0 && !importing.has(entry))) return; // dropped
          const last = frames[frames.length - 1]?.block.header.height;
          if (frames.length === 0 || last === undefined || last < from) {
            queue.splice(i + 1); // nothing after it can be imported
            nextFrom = target + 1;
            return;
          }
          if (frames.length < count && last < from + count - 1) {
            stride = Math.max(1, frames.length);
            queue.splice(i + 1, 0, fetch(last + 1, from + count - 1 - last)); // i + 1 = 0 while being imported
          }
          pump();
        },
        () => undefined, // reported when the import loop reaches this range (or dropped if an earlier one fails)
      );
      return entry;
    };
    const pump = (): void => {
      while (!done && !this.stopped && nextFrom <= target && queue.length < SYNC_RANGES_AHEAD) {
        const count = Math.min(stride, target - nextFrom + 1);
        queue.push(fetch(nextFrom, count));
        nextFrom += count;
      }
    };
    try {
      pump();
      while (queue.length && !this.stopped) {
        const entry = queue.shift()!;
        importing.add(entry);
        const frames: SyncFrame[] = await entry.frames;
        importing.delete(entry);
        pump();
        if (frames.length === 0) break;
        await this.importFrames(peer, frames, observe);
        if (this.chain.headHeight >= target) break;
      }
      const written = this.writeBehind;
      this.writeBehind = Promise.resolve();
      await written;
      ok = this.chain.headHeight >= target;
    } catch (e) {
      const code = e instanceof QnexusError ? e.code : 'STREAM';
      this.metrics.syncFailures.inc({ reason: code });
      this.log.warn('sync from peer failed', { peer, code, error: (e as Error).message, head: toHex(this.chain.headHash).slice(0, 16) });
      // A missing epoch announcement is our gap (retried next tick), not the peer's fault.
      if (e instanceof QnexusError && code !== 'EPOCH_UNKNOWN') this.p2p.penalize(peer, `sync: ${code}`);
    } finally {
      done = true;
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
   * Import a received range in order. Blocks go to the engine queue in groups:
   * the next block whose pre-verification has settled, plus the following ones
   * already settled too; each group is imported block by block (every check of
   * `importCertified`, then the engine's bookkeeping) and written as one batch.
   */
  private async importFrames(peer: string, frames: SyncFrame[], observe: () => void): Promise<void> {
    // The certificate is checked against the committee of its round's epoch: get that
    // epoch's announcement first (the serving peer has it, having verified this block).
    let usable = frames.length;
    let missing: QnexusError | null = null;
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i]!;
      if (f.verified) continue;
      if (!(await this.chain.epochs.ensure(f.epoch, peer))) {
        usable = i;
        missing = new QnexusError('EPOCH_UNKNOWN', `cannot verify block ${f.block.header.height}: the committee of epoch ${f.epoch} is not available yet`);
        break;
      }
      this.preverify(f);
    }
    let i = 0;
    while (i < usable && !this.stopped) {
      await frames[i]!.verified;
      let end = i + 1;
      while (end < usable && frames[end]!.done) end++;
      const group = frames.slice(i, end);
      i = end;
      let imported = 0;
      let write: Promise<void> = Promise.resolve();
      try {
        await this.engine.run(async () => {
          try {
            for (const f of group) {
              // Consensus may have finalized this height meanwhile; skip what we already have.
              if (f.block.header.height <= this.chain.headHeight) continue;
              const { candidate, changes } = await this.chain.importCertified(f.block, f.raw, f.cert, { candidate: f.candidate, verified: f.done, certificateBytes: f.certRaw, defer: true });
              await this.engine.externalCommit(candidate, f.cert, changes);
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
        throw e;
      } finally {
        this.metrics.syncedBlocks.inc(imported);
        observe();
      }
      // Write-behind, one batch deep: the next group is imported while this one is synced to disk,
      // but not before the previous one is (a failed write stops the sync here).
      const previous = this.writeBehind;
      this.writeBehind = write;
      await previous;
    }
    if (missing) {
      await this.writeBehind;
      throw missing;
    }
  }
}
