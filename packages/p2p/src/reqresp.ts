/**
 * Request/response over dedicated libp2p streams.
 *
 * Wire format (both directions): unsigned-varint length-prefixed frames
 * (it-length-prefixed). The client writes exactly one request frame and closes
 * its write side; the server answers with zero or more frames and closes.
 * Every exchange is bounded by a timeout on both ends, and any failure aborts
 * (resets) the stream so nothing is left dangling.
 */
import * as lp from 'it-length-prefixed';
import { pipe } from 'it-pipe';
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface';
import { P2PRequestError } from './errors.js';
import type { LogFn, RequestHandler, RequestHandlerOptions, RequestOptions } from './types.js';
import type { StreamPool } from './reuse.js';

/** How often a server checks whether the client went away mid-response. */
const STREAM_WATCH_MS = 100;

/** Serve one inbound stream: read one request frame, stream the handler's responses, close. */
export async function serveStream(
  protocol: string,
  stream: Stream,
  connection: Connection,
  opts: RequestHandlerOptions,
  fn: RequestHandler,
  log: LogFn,
): Promise<void> {
  const peer = connection.remotePeer.toString();
  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort(new P2PRequestError('TIMEOUT', `${protocol}: exchange with ${peer} exceeded ${opts.timeoutMs} ms`));
  }, opts.timeoutMs);
  // Aborting the stream ends its source with the reason, which unblocks any read.
  const onAbort = (): void => { stream.abort(asError(controller.signal.reason)); };
  controller.signal.addEventListener('abort', onAbort, { once: true });
  let watch: NodeJS.Timeout | undefined;
  try {
    const request = await readFirstFrame(stream, opts.maxRequestBytes);
    // `abortable` makes a stalled handler unable to keep the sink (and stream) alive past the timeout.
    const responses = abortable(fn(request, peer, controller.signal), controller.signal);
    // Notice a remote reset / stop-reading while the handler is still producing. libp2p
    // gives no callback for it, and on inbound streams multistream-select wraps `sink`,
    // so the muxer cannot interrupt our source either: poll the stream state instead.
    watch = setInterval(() => {
      if (stream.status === 'reset' || stream.status === 'aborted' || stream.writeStatus === 'closed') {
        controller.abort(new P2PRequestError('STREAM_ERROR', `${protocol}: ${peer} closed the stream before the response was complete`));
      }
    }, STREAM_WATCH_MS);
    // The sink can stay blocked forever on a write whose connection is gone (yamux waiting for send
    // window that never comes, even after the stream is aborted): the exchange ends at the abort
    // (timeout, reset, stop) whatever the sink does, so the timers and the handler never outlive it.
    await Promise.race([pipe(responses, (source) => lp.encode(source), stream.sink), abortedPromise(controller.signal)]);
    clearInterval(watch);
    await stream.close({ signal: controller.signal });
  } catch (err) {
    const e = asError(err);
    const level = e instanceof P2PRequestError || e.name === 'InvalidDataLengthError' ? 'debug' : 'warn';
    log(level, 'request handler failed, stream aborted', { protocol, peer, error: e.message });
    stream.abort(e);
  } finally {
    clearTimeout(timer);
    clearInterval(watch);
    controller.signal.removeEventListener('abort', onAbort);
  }
}

/** Read exactly one length-prefixed frame (≤ maxBytes) and stop reading. */
async function readFirstFrame(stream: Stream, maxBytes: number): Promise<Uint8Array> {
  // Breaking out of the loop ends our read side; anything the client sends after its one frame is ignored.
  for await (const frame of lp.decode(stream.source, { maxDataLength: maxBytes })) {
    return plainBytes(frame.subarray());
  }
  throw new Error('stream closed before a request frame arrived');
}

/** Client side of an exchange; see P2PNode.request. With `pool`, on a reused stream where the peer serves one (reuse.ts). */
export async function* requestStream(
  libp2p: Libp2p,
  peer: PeerId,
  protocol: string,
  request: Uint8Array,
  opts: RequestOptions,
  pool?: StreamPool,
): AsyncGenerator<Uint8Array, void, undefined> {
  const peerStr = peer.toString();
  const timeoutError = new P2PRequestError('TIMEOUT', `${protocol}: request to ${peerStr} timed out after ${opts.timeoutMs} ms`);
  const controller = new AbortController();
  const timer = setTimeout(() => { controller.abort(timeoutError); }, opts.timeoutMs);
  // A server that accepts and then sends nothing (or stops between frames) is given up on this soon.
  let idle: NodeJS.Timeout | undefined;
  const armIdle = (): void => {
    if (opts.idleTimeoutMs === undefined) return;
    clearTimeout(idle);
    idle = setTimeout(() => {
      controller.abort(new P2PRequestError('STALLED', `${protocol}: ${peerStr} sent no response frame for ${opts.idleTimeoutMs} ms`));
    }, opts.idleTimeoutMs);
  };
  const maxBytes = opts.maxResponseBytes ?? opts.maxFrames * opts.maxResponseFrameBytes;
  const classify = (err: unknown): P2PRequestError => {
    if (controller.signal.aborted) return controller.signal.reason instanceof P2PRequestError ? controller.signal.reason : timeoutError;
    if (err instanceof P2PRequestError) return err;
    const e = asError(err);
    if (e.name === 'InvalidDataLengthError') {
      return new P2PRequestError('FRAME_TOO_LARGE', `${protocol}: response frame from ${peerStr} exceeds ${opts.maxResponseFrameBytes} bytes`, { cause: e });
    }
    return new P2PRequestError('STREAM_ERROR', `${protocol}: stream to ${peerStr} failed: ${e.message}`, { cause: e });
  };

  // A one-off stream (the old exchange: one request, then the server closes), or none when the
  // exchange runs on a reusable stream of `pool` (reuse.ts), which handles its own stream.
  let stream: Stream | undefined;
  let completed = false;
  const onAbort = (): void => { stream?.abort(asError(controller.signal.reason)); };
  try {
    let source: AsyncIterable<{ subarray(): Uint8Array; byteLength: number }>;
    let writing: Promise<unknown> = Promise.resolve(undefined);
    try {
      if (pool !== undefined) {
        const got = await pool.acquire(libp2p, peer, protocol, opts.maxResponseFrameBytes, controller.signal);
        if ('oneOff' in got) stream = got.oneOff;
        else source = { [Symbol.asyncIterator]: () => pool.exchange(got.reusable, got.key, protocol, peerStr, request, controller.signal) };
      } else {
        stream = await libp2p.dialProtocol(peer, protocol, { signal: controller.signal });
      }
    } catch (err) {
      if (controller.signal.aborted) throw timeoutError;
      throw new P2PRequestError('DIAL_FAILED', `${protocol}: cannot open stream to ${peerStr}: ${asError(err).message}`, { cause: err });
    }
    if (stream !== undefined) {
      controller.signal.addEventListener('abort', onAbort, { once: true });
      const s = stream;
      // Write concurrently with reading: if the server refuses the request (e.g. too
      // large) it resets the stream, which surfaces below as a read error.
      writing = s.sink([lp.encode.single(request)]).then(() => undefined, (err: unknown) => err);
      source = lp.decode(s.source, { maxDataLength: opts.maxResponseFrameBytes });
    }

    let frames = 0;
    let bytes = 0;
    try {
      armIdle();
      for await (const frame of source!) {
        clearTimeout(idle);
        if (++frames > opts.maxFrames) {
          throw new P2PRequestError('TOO_MANY_FRAMES', `${protocol}: ${peerStr} sent more than ${opts.maxFrames} response frames`);
        }
        bytes += frame.byteLength;
        if (bytes > maxBytes) {
          throw new P2PRequestError('TOO_MANY_BYTES', `${protocol}: ${peerStr} sent more than ${maxBytes} response bytes`);
        }
        yield plainBytes(frame.subarray());
        // The consumer's own time between frames (e.g. verifying one) is not the server's stall.
        armIdle();
      }
      clearTimeout(idle);
    } catch (err) {
      throw classify(err);
    }
    const writeError = await writing;
    if (writeError !== undefined) throw classify(writeError);
    completed = true;
  } finally {
    clearTimeout(timer);
    clearTimeout(idle);
    controller.signal.removeEventListener('abort', onAbort);
    if (stream !== undefined) {
      if (completed) {
        await stream.close({ signal: AbortSignal.timeout(2000) }).catch((err: unknown) => { stream?.abort(asError(err)); });
      } else {
        // Error, timeout, or the consumer stopped iterating early: reset rather than drain.
        stream.abort(new Error('request abandoned'));
      }
    }
  }
}

/**
 * Wrap an async iterable so that pending `next()` calls lose a race against
 * `signal`. Used so a stalled producer cannot pin a stream open forever. The
 * producer is asked to stop via `return()`, which is deliberately not awaited.
 */
export async function* abortable<T>(source: AsyncIterable<T>, signal: AbortSignal): AsyncGenerator<T, void, undefined> {
  signal.throwIfAborted();
  const it = source[Symbol.asyncIterator]();
  let rejectAborted: (reason: unknown) => void = () => undefined;
  const aborted = new Promise<never>((_resolve, reject) => { rejectAborted = reject; });
  aborted.catch(() => undefined); // handled by the race below; avoid unhandled-rejection noise
  const onAbort = (): void => { rejectAborted(signal.reason); };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      const next = await Promise.race([it.next(), aborted]);
      if (next.done === true) return;
      yield next.value;
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    if (it.return !== undefined) {
      Promise.resolve(it.return()).catch(() => undefined);
    }
  }
}

/** Rejects with the signal's reason once it aborts (handled: racing it never leaves an unhandled rejection). */
function abortedPromise(signal: AbortSignal): Promise<never> {
  const p = new Promise<never>((_resolve, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
  p.catch(() => undefined);
  return p;
}

/**
 * Zero-copy view as a plain Uint8Array. Network data arrives as Node Buffers;
 * handing those out would make `deepStrictEqual(bytes, new Uint8Array(...))`
 * and similar prototype-sensitive code in callers fail.
 */
export function plainBytes(b: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(b) === Uint8Array.prototype ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
