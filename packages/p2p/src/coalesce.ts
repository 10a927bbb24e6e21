import type { ConnectionEncrypter, SecuredConnection } from '@libp2p/interface';
import { Uint8ArrayList } from 'uint8arraylist';

/**
 * Most plaintext bytes per coalesced chunk: one Noise transport message (65,535 bytes less the
 * 16-byte tag), so a batch costs one encryption and one socket write. A single larger frame
 * passes whole (Noise splits it).
 */
export const MAX_COALESCED_BYTES = 65_519;

type Chunk = Uint8Array | Uint8ArrayList;

/**
 * Coalesce the frames a connection writes. Yamux hands the encrypter one chunk per frame (a
 * header, or a header and its data), and Noise encrypts each and the TCP socket writes each:
 * under load the socket writes alone were an eighth of a validator's main-thread time, most of
 * them a few hundred bytes. Frames that arrive while the previous batch is being written, or in
 * the same turn of the event loop, go out as one chunk, in order. The wait is one `setImmediate`
 * at most, against one-second slots. Nothing is dropped or reordered; the source's end and errors
 * pass through after what was queued before them.
 */
export async function* coalesce(source: AsyncIterable<Chunk>, maxBytes = MAX_COALESCED_BYTES): AsyncGenerator<Chunk> {
  const queue: Chunk[] = [];
  let ended = false;
  let failure: { error: unknown } | null = null;
  let wake: (() => void) | null = null;
  const signal = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  // Pull eagerly: the source (yamux's outbound queue) is unbounded already; holding its frames
  // here instead of there adds no memory, and lets a batch take everything that is ready.
  void (async () => {
    try {
      for await (const c of source) {
        queue.push(c);
        signal();
      }
    } catch (e) {
      failure = { error: e };
    } finally {
      ended = true;
      signal();
    }
  })();
  for (;;) {
    if (queue.length === 0) {
      if (ended) {
        if (failure) throw (failure as { error: unknown }).error;
        return;
      }
      await new Promise<void>((resolve) => (wake = resolve));
      // Let frames written in the same turn of the event loop join this batch.
      await new Promise<void>((resolve) => setImmediate(resolve));
      continue;
    }
    if (queue.length === 1) {
      yield queue.shift()!;
      continue;
    }
    const batch = new Uint8ArrayList();
    while (queue.length > 0 && (batch.byteLength === 0 || batch.byteLength + queue[0]!.byteLength <= maxBytes)) batch.append(queue.shift()!);
    yield batch;
  }
}

/**
 * Wrap a connection encrypter (Noise) so that what the muxer writes on a secured connection is
 * coalesced before encryption (`coalesce`). The handshake is untouched: only the secured
 * connection's sink changes.
 */
export function coalescingWrites<C, E extends ConnectionEncrypter>(factory: (components: C) => E): (components: C) => E {
  return (components: C) => {
    const inner = factory(components);
    const wrap = async <T extends SecuredConnection<unknown, unknown>>(p: Promise<T>): Promise<T> => {
      const secured = await p;
      const conn = secured.conn as { sink: (source: AsyncIterable<Chunk>) => Promise<void> };
      const sink = conn.sink.bind(conn);
      conn.sink = (source) => sink(coalesce(source));
      return secured;
    };
    const outer = Object.create(inner) as E;
    outer.secureOutbound = ((...a: Parameters<E['secureOutbound']>) => wrap((inner.secureOutbound as (...x: unknown[]) => Promise<SecuredConnection<unknown, unknown>>)(...a))) as E['secureOutbound'];
    outer.secureInbound = ((...a: Parameters<E['secureInbound']>) => wrap((inner.secureInbound as (...x: unknown[]) => Promise<SecuredConnection<unknown, unknown>>)(...a))) as E['secureInbound'];
    return outer;
  };
}
