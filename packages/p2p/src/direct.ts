/**
 * Direct messages: one-way, length-prefixed frames over one long-lived stream per (peer,
 * protocol), for small messages every connected peer needs once (a validator's own consensus
 * votes), instead of gossip, which delivers each message several times per peer (mesh degree D)
 * and runs it through the gossipsub RPC machinery each time. Nothing is relayed: a frame reaches
 * exactly the peer it was sent to.
 *
 * Hostile input: frames are bounded (a larger one ends the stream and penalises the sender), a
 * peer's frames are rate-limited (beyond its budget they are dropped, and the peer penalised once
 * per burst), and a peer's frames are handled one after another (its next frame is not read until
 * the handler returned), so a peer never has more than one frame of work in progress per stream.
 * The handler's verdict 'reject' penalises the sender, as on the gossip path.
 *
 * Sending never blocks: frames queue per stream (a bounded queue; the oldest go first when it is
 * full), and a stream that fails or is closed (by the peer, or by the muxer when idle) is
 * reopened by the next send. A frame in flight when a stream breaks is lost: callers must
 * tolerate loss (votes are re-sent by the engine when a height stalls).
 */
import * as lp from 'it-length-prefixed';
import type { Libp2p, PeerId, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { RateLimiter } from './ratelimit.js';
import { asError, plainBytes } from './reqresp.js';
import type { DirectHandler, DirectHandlerOptions, DirectStats, DirectWhenFull, LogFn } from './types.js';

/** Frames waiting per outbound stream; beyond it the oldest is dropped (a newer vote supersedes). */
export const DIRECT_MAX_QUEUED = 64;
/** After a failed open (peer down, protocol not served), the peer is not dialled again for this long. */
export const DIRECT_REDIAL_MS = 10_000;
/** Longest wait for an outbound stream to open. */
const OPEN_TIMEOUT_MS = 5_000;
/** Streams a peer may hold open to us per protocol and connection (one, plus one being replaced). */
export const DIRECT_MAX_INBOUND_STREAMS = 2;

/** One outbound stream and the frames waiting for it. */
class Outbound {
  readonly queue: Uint8Array[] = [];
  closed = false;
  /** When the stream could not be opened (0: it opened). */
  failedAt = 0;
  stream: Stream | undefined;
  private wake: (() => void) | null = null;

  /** Queue a frame; when the queue is full, drop the oldest, or refuse this one (false). */
  push(frame: Uint8Array, whenFull: DirectWhenFull): boolean {
    if (this.queue.length >= DIRECT_MAX_QUEUED) {
      if (whenFull === 'refuse') return false;
      this.queue.shift();
    }
    this.queue.push(frame);
    this.notify();
    return true;
  }

  close(): void {
    this.closed = true;
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** The stream's source: queued frames, length-prefixed, until closed. */
  async *source(): AsyncGenerator<Uint8Array, void, undefined> {
    for (;;) {
      while (this.queue.length > 0) yield lp.encode.single(this.queue.shift()!).subarray();
      if (this.closed) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }
}

/** Outbound direct streams of one node, keyed by peer and protocol. */
export class DirectSender {
  private readonly out = new Map<string, Outbound>();
  private stopped = false;

  constructor(
    private readonly libp2p: Libp2p,
    private readonly log: LogFn,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Queue `data` for `peer` on `protocol`, opening the stream if needed. Returns false, sending
   * nothing, when the peer is not connected or its stream could not be opened lately (it does
   * not serve the protocol, or it is unreachable): the caller should reach it another way. A full
   * queue drops its oldest frame, or with `whenFull` 'refuse' refuses this one (false).
   */
  send(peer: string, protocol: string, data: Uint8Array, whenFull: DirectWhenFull = 'drop-oldest'): boolean {
    if (this.stopped) return false;
    const key = `${peer} ${protocol}`;
    let o = this.out.get(key);
    if (o === undefined || o.closed) {
      if (o !== undefined && o.failedAt > 0 && this.now() - o.failedAt < DIRECT_REDIAL_MS) return false;
      let id: PeerId;
      try {
        id = peerIdFromString(peer);
      } catch {
        return false;
      }
      if (this.libp2p.getConnections(id).length === 0) return false;
      o = new Outbound();
      this.out.set(key, o);
      void this.run(o, id, protocol, key);
    }
    return o.push(data, whenFull);
  }

  /** Whether an outbound stream to `peer` on `protocol` is open or opening (for tests and stats). */
  isOpen(peer: string, protocol: string): boolean {
    const o = this.out.get(`${peer} ${protocol}`);
    return o !== undefined && !o.closed;
  }

  /** Close every stream to `peer` (it disconnected): the next send reopens. */
  dropPeer(peer: string): void {
    for (const [key, o] of this.out) {
      if (!key.startsWith(`${peer} `)) continue;
      o.close();
      o.stream?.abort(new Error('peer disconnected'));
      if (o.failedAt === 0) this.out.delete(key);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const o of this.out.values()) {
      o.close();
      o.stream?.abort(new Error('node stopping'));
    }
    this.out.clear();
  }

  private async run(o: Outbound, peer: PeerId, protocol: string, key: string): Promise<void> {
    try {
      o.stream = await this.libp2p.dialProtocol(peer, protocol, { signal: AbortSignal.timeout(OPEN_TIMEOUT_MS) });
    } catch (err) {
      o.failedAt = this.now();
      o.close();
      o.queue.length = 0;
      this.log('debug', 'direct stream could not be opened', { protocol, peer: peer.toString(), error: asError(err).message });
      return;
    }
    if (o.closed) {
      o.stream.abort(new Error('closed while opening'));
      return;
    }
    try {
      await o.stream.sink(o.source());
      await o.stream.close({ signal: AbortSignal.timeout(2000) }).catch(() => undefined);
    } catch (err) {
      this.log('debug', 'direct stream ended', { protocol, peer: peer.toString(), error: asError(err).message });
      o.stream.abort(asError(err));
    } finally {
      o.close();
      // A later stream under the same key may already have replaced this one.
      if (this.out.get(key) === o) this.out.delete(key);
    }
  }
}

/** Inbound side of one protocol: per-peer frame budget shared by all of that peer's streams. */
export class DirectReceiver {
  private readonly budget: RateLimiter;
  private readonly dropped = new Map<string, number>();
  readonly stats: DirectStats = { streams: 0, frames: 0, dropped: 0, rejected: 0 };

  constructor(
    readonly protocol: string,
    private readonly opts: DirectHandlerOptions,
    private readonly fn: DirectHandler,
    private readonly penalize: (peer: string, reason: string) => void,
    private readonly log: LogFn,
  ) {
    this.budget = new RateLimiter({ ratePerSec: opts.framesPerSec, burst: opts.frameBurst });
  }

  /** Read a peer's stream to its end, one frame at a time. */
  async serve(stream: Stream, peer: string): Promise<void> {
    this.stats.streams++;
    try {
      for await (const frame of lp.decode(stream.source, { maxDataLength: this.opts.maxFrameBytes })) {
        if (!this.budget.take(peer).ok) {
          this.stats.dropped++;
          const n = (this.dropped.get(peer) ?? 0) + 1;
          if (this.dropped.size > 4096 && !this.dropped.has(peer)) this.dropped.clear();
          this.dropped.set(peer, n);
          if (n % this.opts.frameBurst === 1) this.penalize(peer, `${this.protocol}: frames over its budget`);
          continue;
        }
        this.stats.frames++;
        let verdict;
        try {
          verdict = await this.fn(plainBytes(frame.subarray()), peer);
        } catch (err) {
          // Our handler's failure is not the peer's fault.
          this.log('warn', 'direct message handler failed', { protocol: this.protocol, peer, error: asError(err).message });
          continue;
        }
        if (verdict === 'reject') {
          this.stats.rejected++;
          this.penalize(peer, `${this.protocol}: invalid message`);
        }
      }
      await stream.close().catch(() => undefined);
    } catch (err) {
      const e = asError(err);
      if (e.name === 'InvalidDataLengthError') this.penalize(peer, `${this.protocol}: frame over ${this.opts.maxFrameBytes} bytes`);
      else this.log('debug', 'direct stream closed', { protocol: this.protocol, peer, error: e.message });
      stream.abort(e);
    }
  }
}
