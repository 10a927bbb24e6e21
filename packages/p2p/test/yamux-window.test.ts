import assert from 'node:assert/strict';
import { yamux } from '@chainsafe/libp2p-yamux';
import { defaultLogger } from '@libp2p/logger';
import type { Stream, StreamMuxer } from '@libp2p/interface';
import { pipe } from 'it-pipe';
import { Uint8ArrayList } from 'uint8arraylist';
import { lazyYamuxWindowUpdates, windowUpdateOmittable } from '../src/yamux-window.js';
import { waitFor } from './helpers.js';

const WINDOW_UPDATE = 1;
const KiB = 1024;

/** Counts the yamux frames one side writes, by type (header: version, type, flags, stream id, length). */
class FrameTap {
  readonly types = new Map<number, number>();
  private buf = new Uint8ArrayList();

  tap = (src: AsyncIterable<Uint8Array | Uint8ArrayList>): AsyncGenerator<Uint8Array | Uint8ArrayList> => {
    const self = this;
    return (async function* () {
      for await (const chunk of src) {
        self.buf.append(chunk);
        for (;;) {
          if (self.buf.byteLength < 12) break;
          const type = self.buf.get(1);
          const length = self.buf.getUint32(8);
          const body = type === 0 ? length : 0; // only data frames carry a body
          if (self.buf.byteLength < 12 + body) break;
          self.types.set(type, (self.types.get(type) ?? 0) + 1);
          self.buf.consume(12 + body);
        }
        yield chunk;
      }
    })();
  };

  count(type: number): number {
    return this.types.get(type) ?? 0;
  }
}

/** Two real yamux muxers joined back to back; `inbound` receives the streams `outbound` opens. */
function muxerPair(): { outbound: StreamMuxer; inbound: StreamMuxer; fromOutbound: FrameTap; fromInbound: FrameTap; incoming: Stream[] } {
  const factory = yamux()({ logger: defaultLogger() });
  const incoming: Stream[] = [];
  const outbound = factory.createStreamMuxer({ direction: 'outbound' });
  const inbound = factory.createStreamMuxer({ direction: 'inbound', onIncomingStream: (s) => incoming.push(s) });
  const fromOutbound = new FrameTap();
  const fromInbound = new FrameTap();
  // The pipe ends when a muxer is aborted (afterEach); that rejection is expected.
  Promise.resolve(pipe(outbound, fromOutbound.tap, inbound, fromInbound.tap, outbound)).catch(() => undefined);
  return { outbound, inbound, fromOutbound, fromInbound, incoming };
}

/** Read a stream to its end, counting bytes. */
async function readAll(s: Stream): Promise<number> {
  let n = 0;
  for await (const c of s.source) n += c.byteLength;
  return n;
}

describe('p2p: yamux window updates only when needed', () => {
  // A failed assertion must not leave a muxer's keep-alive timer holding the process open.
  const open: StreamMuxer[] = [];
  afterEach(() => {
    for (const m of open.splice(0)) m.abort(new Error('test over'));
  });
  before(() => assert.equal(lazyYamuxWindowUpdates(), true, 'the yamux version in use still has the method wrapped'));

  it('omits an update while less than half the window is consumed and no flag is due', () => {
    const established = 3;
    assert.equal(windowUpdateOmittable({ state: established, recvWindow: 256 * KiB, recvWindowCapacity: 256 * KiB - 3 * KiB }), true);
    assert.equal(windowUpdateOmittable({ state: established, recvWindow: 256 * KiB, recvWindowCapacity: 128 * KiB }), false);
    assert.equal(windowUpdateOmittable({ state: established, recvWindow: 256 * KiB, recvWindowCapacity: 0 }), false);
    // SYN (Init) and ACK (SYNReceived) must go out whatever the window.
    assert.equal(windowUpdateOmittable({ state: 0, recvWindow: 256 * KiB, recvWindowCapacity: 256 * KiB }), false);
    assert.equal(windowUpdateOmittable({ state: 2, recvWindow: 256 * KiB, recvWindowCapacity: 256 * KiB }), false);
  });

  it('small messages on a long-lived stream are not each answered by a window update', async () => {
    const { outbound, inbound, fromInbound, incoming } = muxerPair();
    open.push(outbound, inbound);
    const s = await outbound.newStream();
    const messages = 200;
    const size = 2500; // about a vote frame: 200 × 2.5 KB = 500 KB, about two windows
    const sent = pipe(async function* () {
      for (let i = 0; i < messages; i++) yield new Uint8Array(size).fill(i & 0xff);
    }, s.sink);
    await waitFor('the stream to arrive', () => incoming.length === 1);
    const got = await readAll(incoming[0]!);
    await sent;
    assert.equal(got, messages * size);
    const updates = fromInbound.count(WINDOW_UPDATE);
    // Unpatched yamux sends one per chunk read (≈ 200); now: the ACK, one per half window consumed, the close.
    assert.ok(updates >= 2, `the receiver still acknowledged the stream and refilled the window (${updates})`);
    assert.ok(updates <= 8, `${updates} window updates for ${messages} messages`);
  });

  it('a transfer many times the window never stalls the sender', async () => {
    const { outbound, inbound, incoming } = muxerPair();
    open.push(outbound, inbound);
    const s = await outbound.newStream();
    const total = 8 * 1024 * KiB; // 32 windows of 256 KiB
    const chunk = 60 * KiB;
    const sent = pipe(async function* () {
      for (let n = 0; n < total; n += chunk) yield new Uint8Array(Math.min(chunk, total - n));
    }, s.sink);
    await waitFor('the stream to arrive', () => incoming.length === 1);
    assert.equal(await readAll(incoming[0]!), total);
    await sent;
  });
});
