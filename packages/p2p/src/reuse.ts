/**
 * Request/response over long-lived streams: a client keeps its stream to a peer for a protocol
 * open and sends its next request on it, instead of opening (and negotiating, and recording in
 * the peer store) a new stream per request, which costs about 4× more per exchange.
 *
 * Each request/response protocol `P` is also served as `P/reuse` (REUSE_SUFFIX). On a `P/reuse`
 * stream the client sends request frames one after another, each only after the previous
 * response ended; the server answers each with zero or more data frames `0x00 ‖ bytes` and one end
 * frame `0x01`. Frames are unsigned-varint length-prefixed (it-length-prefixed) as on `P`.
 * A client dials `[P/reuse, P]` and multistream-select picks what the server has, so an older
 * server is still served one request per stream on `P`.
 *
 * Failure of any kind (timeout, a bad frame, a reset, the consumer stopping early) resets the
 * stream: it is never reused after an exchange that did not end cleanly. A server closes a stream
 * idle for SERVER_IDLE_MS; a client does not reuse a stream idle for CLIENT_IDLE_MS (shorter), so
 * it never sends a request on a stream the server is closing.
 */
import * as lp from 'it-length-prefixed';
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface';
import { P2PRequestError } from './errors.js';
import { abortable, asError, plainBytes } from './reqresp.js';
import type { LogFn, RequestHandler, RequestHandlerOptions, RequestOptions } from './types.js';

export const REUSE_SUFFIX = '/reuse';
const DATA = 0x00;
const END = 0x01;
const END_FRAME = Uint8Array.of(END);
/** A server closes a stream that brought no request for this long. */
export const SERVER_IDLE_MS = 60_000;
/** A client reuses a stream idle for at most this long (well under SERVER_IDLE_MS). */
export const CLIENT_IDLE_MS = 20_000;
/** Idle streams kept per (peer, protocol); more concurrent requests open more streams, closed after. */
const MAX_IDLE_PER_KEY = 2;
/** After a peer answered on the old protocol only, it is not offered the reusable one for this long. */
const LEGACY_RETRY_MS = 10 * 60_000;

export function reuseProtocol(protocol: string): string {
  return protocol + REUSE_SUFFIX;
}

/**
 * The writing side of a long-lived stream: frames handed to the stream's sink one at a time.
 * `write` resolves once the sink took the frame (back-pressure), and rejects once the stream failed.
 */
class FrameWriter {
  private readonly queue: { frame: Uint8Array; resolve: () => void; reject: (e: Error) => void }[] = [];
  private wake: (() => void) | null = null;
  private ended = false;
  private failure: Error | null = null;

  write(frame: Uint8Array): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended) return Promise.reject(new Error('stream writer ended'));
    return new Promise((resolve, reject) => {
      this.queue.push({ frame, resolve, reject });
      this.notify();
    });
  }

  end(): void {
    this.ended = true;
    this.notify();
  }

  fail(e: Error): void {
    this.failure ??= e;
    for (const q of this.queue.splice(0)) q.reject(e);
    this.end();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  async *source(): AsyncGenerator<Uint8Array, void, undefined> {
    for (;;) {
      const q = this.queue.shift();
      if (q) {
        yield lp.encode.single(q.frame).subarray();
        q.resolve();
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }
}

/** A stream both ends keep for a sequence of exchanges. */
class LongStream {
  readonly writer = new FrameWriter();
  readonly frames: AsyncIterator<{ subarray(): Uint8Array; byteLength: number }>;
  /** Resolves (never rejects) when the sink ends: with its error, or undefined. */
  readonly sinkDone: Promise<Error | undefined>;
  broken = false;
  idleSince = Date.now();

  constructor(
    readonly stream: Stream,
    maxFrameBytes: number,
  ) {
    this.frames = lp.decode(stream.source, { maxDataLength: maxFrameBytes })[Symbol.asyncIterator]();
    this.sinkDone = stream.sink(this.writer.source()).then(
      () => undefined,
      (e: unknown) => asError(e),
    );
    void this.sinkDone.then((e) => {
      this.broken = true;
      this.writer.fail(e ?? new Error('stream closed'));
    });
  }

  abort(e: Error): void {
    this.broken = true;
    this.writer.fail(e);
    this.stream.abort(e);
  }

  usable(now: number): boolean {
    return !this.broken && this.stream.status === 'open' && now - this.idleSince < CLIENT_IDLE_MS;
  }
}

/** Rejects with the signal's reason once it aborts (handled: racing it never leaves an unhandled rejection). */
function aborted(signal: AbortSignal): Promise<never> {
  const p = new Promise<never>((_resolve, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
  p.catch(() => undefined);
  return p;
}

function dataFrame(b: Uint8Array): Uint8Array {
  const f = new Uint8Array(b.length + 1);
  f[0] = DATA;
  f.set(b, 1);
  return f;
}

/**
 * Serve a `P/reuse` stream: requests one after another, each admitted by `admit` (the serving
 * budget: a refused request resets the stream, as a refused stream is on `P`), each bounded by
 * `opts.timeoutMs` from when it arrived.
 */
export async function serveReusable(
  protocol: string,
  stream: Stream,
  connection: Connection,
  opts: RequestHandlerOptions,
  fn: RequestHandler,
  admit: (peer: string) => boolean,
  log: LogFn,
): Promise<void> {
  const peer = connection.remotePeer.toString();
  const s = new LongStream(stream, opts.maxRequestBytes);
  try {
    for (;;) {
      let idleTimer: NodeJS.Timeout | undefined;
      const idle = new Promise<null>((resolve) => {
        idleTimer = setTimeout(() => resolve(null), SERVER_IDLE_MS);
      });
      const next = await Promise.race([s.frames.next(), idle]).finally(() => clearTimeout(idleTimer));
      if (next === null || next.done === true) break; // idle for too long, or the client closed
      if (!admit(peer)) throw new P2PRequestError('STREAM_ERROR', `${protocol}: over the request budget`);
      const controller = new AbortController();
      const timer = setTimeout(() => {
        controller.abort(new P2PRequestError('TIMEOUT', `${protocol}: exchange with ${peer} exceeded ${opts.timeoutMs} ms`));
      }, opts.timeoutMs);
      try {
        const respond = async (): Promise<void> => {
          for await (const r of abortable(fn(plainBytes(next.value.subarray()), peer, controller.signal), controller.signal)) {
            await s.writer.write(dataFrame(r));
          }
          await s.writer.write(END_FRAME);
        };
        // The client resetting the stream ends the sink: the handler is then stopped at once.
        const gone = s.sinkDone.then((e) => {
          throw e ?? new P2PRequestError('STREAM_ERROR', `${protocol}: ${peer} closed the stream before the response was complete`);
        });
        gone.catch(() => undefined);
        await Promise.race([respond(), aborted(controller.signal), gone]);
      } finally {
        clearTimeout(timer);
        if (!controller.signal.aborted) controller.abort(new Error('exchange over'));
      }
    }
    s.writer.end();
    await Promise.race([s.sinkDone, new Promise((r) => setTimeout(r, 2000))]);
    await stream.close({ signal: AbortSignal.timeout(2000) }).catch(() => undefined);
  } catch (err) {
    const e = asError(err);
    const level = e instanceof P2PRequestError || e.name === 'InvalidDataLengthError' ? 'debug' : 'warn';
    log(level, 'request handler failed, stream aborted', { protocol, peer, error: e.message });
    s.abort(e);
  }
}

/**
 * The client's long-lived streams: idle ones by (peer, protocol), and the peers that serve only
 * the old one-stream-per-request protocol.
 */
export class StreamPool {
  private readonly idle = new Map<string, LongStream[]>();
  private readonly legacy = new Map<string, number>();
  /** Streams opened (for tests and stats). */
  opened = 0;

  private take(key: string): LongStream | undefined {
    const list = this.idle.get(key);
    if (!list) return undefined;
    const now = Date.now();
    let s: LongStream | undefined;
    while ((s = list.pop()) !== undefined) {
      if (s.usable(now)) break;
      s.abort(new Error('idle stream expired'));
    }
    if (list.length === 0) this.idle.delete(key);
    return s;
  }

  private put(key: string, s: LongStream): void {
    const list = this.idle.get(key) ?? [];
    if (list.length >= MAX_IDLE_PER_KEY || !s.usable(Date.now())) {
      s.writer.end();
      void s.stream.close({ signal: AbortSignal.timeout(2000) }).catch(() => s.abort(new Error('close failed')));
      return;
    }
    s.idleSince = Date.now();
    list.push(s);
    this.idle.set(key, list);
  }

  /** Close the idle streams to a peer (it disconnected). */
  dropPeer(peer: string): void {
    for (const [key, list] of this.idle) {
      if (!key.startsWith(`${peer} `)) continue;
      for (const s of list) s.abort(new Error('peer disconnected'));
      this.idle.delete(key);
    }
  }

  closeAll(): void {
    for (const list of this.idle.values()) for (const s of list) s.abort(new Error('node stopping'));
    this.idle.clear();
  }

  /**
   * A stream for one exchange: an idle reusable one, a new reusable one, or (the peer serves only
   * `protocol`) a one-off stream for the old exchange, which the caller runs itself.
   */
  async acquire(libp2p: Libp2p, peer: PeerId, protocol: string, maxFrameBytes: number, signal: AbortSignal): Promise<{ reusable: LongStream; key: string } | { oneOff: Stream }> {
    // The frame bound is part of the key: a stream's decoder keeps the bound it was made with.
    const key = `${peer.toString()} ${protocol} ${maxFrameBytes}`;
    const idle = this.take(key);
    if (idle) return { reusable: idle, key };
    const until = this.legacy.get(key);
    const offerReuse = until === undefined || until < Date.now();
    const stream = await libp2p.dialProtocol(peer, offerReuse ? [reuseProtocol(protocol), protocol] : [protocol], { signal });
    this.opened++;
    if (stream.protocol !== reuseProtocol(protocol)) {
      if (this.legacy.size > 10_000) this.legacy.clear();
      this.legacy.set(key, Date.now() + LEGACY_RETRY_MS);
      return { oneOff: stream };
    }
    return { reusable: new LongStream(stream, maxFrameBytes + 1), key };
  }

  /**
   * One exchange on a reusable stream: write the request, yield the response's data frames until
   * its end frame, then keep the stream for the next request. Bounds (frames, bytes, idle, the
   * overall timeout through `signal`) are the caller's: see requestStream. Any failure, or the
   * consumer stopping early, resets the stream.
   */
  async *exchange(s: LongStream, key: string, protocol: string, peerStr: string, request: Uint8Array, signal: AbortSignal): AsyncGenerator<Uint8Array, void, undefined> {
    let clean = false;
    const stop = aborted(signal);
    try {
      await Promise.race([s.writer.write(request), stop]);
      for (;;) {
        const next = await Promise.race([s.frames.next(), stop]);
        if (next.done === true) throw new P2PRequestError('STREAM_ERROR', `${protocol}: ${peerStr} closed the stream before the response ended`);
        const f = plainBytes(next.value.subarray());
        if (f.length === 1 && f[0] === END) break;
        if (f.length === 0 || f[0] !== DATA) throw new P2PRequestError('BAD_FRAME', `${protocol}: ${peerStr} sent a frame of unknown type`);
        yield f.subarray(1);
      }
      clean = true;
    } finally {
      if (clean) this.put(key, s);
      else s.abort(new Error('request abandoned'));
    }
  }
}
