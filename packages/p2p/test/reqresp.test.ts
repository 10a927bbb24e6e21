import assert from 'node:assert/strict';
import { P2PRequestError, type P2PNode, type RequestOptions } from '../src/index.js';
import { Harness, bytes, sleep, text } from './helpers.js';

async function collect(it: AsyncIterable<Uint8Array>): Promise<string[]> {
  const out: string[] = [];
  for await (const f of it) out.push(text(f));
  return out;
}

const isCode = (code: string) => (err: unknown): boolean => {
  assert.ok(err instanceof P2PRequestError, `expected P2PRequestError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  return true;
};

describe('p2p: request/response', function () {
  this.timeout(60_000);
  const h = new Harness();
  let client: P2PNode, server: P2PNode;
  const handlerOpts = { maxInboundStreams: 32, maxOutboundStreams: 32, maxRequestBytes: 1024, timeoutMs: 5000 };
  const reqOpts: RequestOptions = { timeoutMs: 5000, maxResponseFrameBytes: 4096, maxFrames: 100 };
  let handlerAborted = 0;

  before(async () => {
    server = await h.node('server');
    client = await h.node('client', { bootstrap: server.multiaddrs() });
    await server.handle('/qn/test/count/1', handlerOpts, async function* (req, peer) {
      assert.equal(peer, client.peerId);
      const n = Number(text(req));
      for (let i = 0; i < n; i++) yield bytes(`frame-${i}`);
    });
    await server.handle('/qn/test/stall/1', handlerOpts, async function* (_req, _peer, signal) {
      yield bytes('first');
      await new Promise<void>((resolve) => { signal.addEventListener('abort', () => { handlerAborted++; resolve(); }); });
    });
    await server.handle('/qn/test/stall-short/1', { ...handlerOpts, timeoutMs: 300 }, async function* (_req, _peer, signal) {
      // Ignores the signal while "working", as a buggy handler would; the server must still reset.
      await new Promise<void>((resolve) => { const t = setTimeout(resolve, 10_000); signal.addEventListener('abort', () => { setTimeout(() => { clearTimeout(t); resolve(); }, 1000); }); });
      yield bytes('never');
    });
    await server.handle('/qn/test/big/1', handlerOpts, async function* () {
      yield new Uint8Array(5000);
    });
    await server.handle('/qn/test/throws/1', handlerOpts, async function* () {
      yield bytes('ok');
      throw new Error('handler bug');
    });
  });
  after(() => h.stopAll());

  it('streams a multi-frame response in order', async () => {
    assert.deepEqual(await collect(client.request(server.peerId, '/qn/test/count/1', bytes('20'), reqOpts)),
      Array.from({ length: 20 }, (_, i) => `frame-${i}`));
    assert.deepEqual(await collect(client.request(server.peerId, '/qn/test/count/1', bytes('0'), reqOpts)), []);
  });

  it('handles many concurrent requests', async () => {
    const results = await Promise.all(Array.from({ length: 30 }, () =>
      collect(client.request(server.peerId, '/qn/test/count/1', bytes('3'), reqOpts))));
    for (const r of results) assert.deepEqual(r, ['frame-0', 'frame-1', 'frame-2']);
  });

  it('refuses a request larger than maxRequestBytes', async () => {
    const t0 = Date.now();
    await assert.rejects(collect(client.request(server.peerId, '/qn/test/count/1', new Uint8Array(2000), reqOpts)), isCode('STREAM_ERROR'));
    assert.ok(Date.now() - t0 < 2000);
    // The protocol still works afterwards.
    assert.deepEqual(await collect(client.request(server.peerId, '/qn/test/count/1', bytes('1'), reqOpts)), ['frame-0']);
  });

  it('client timeout fires within the bound on a stalled handler (and the handler is told)', async () => {
    const t0 = Date.now();
    const got: string[] = [];
    await assert.rejects((async () => {
      for await (const f of client.request(server.peerId, '/qn/test/stall/1', bytes('x'), { ...reqOpts, timeoutMs: 500 })) got.push(text(f));
    })(), isCode('TIMEOUT'));
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 450 && elapsed < 1500, `elapsed ${elapsed}`);
    assert.deepEqual(got, ['first']);
    // The server sees the reset (or its own timeout) and aborts the handler's signal.
    const deadline = Date.now() + 6000;
    while (handlerAborted === 0 && Date.now() < deadline) await sleep(20);
    assert.equal(handlerAborted, 1);
  });

  it('server-side timeout resets a stalled exchange', async () => {
    const t0 = Date.now();
    await assert.rejects(collect(client.request(server.peerId, '/qn/test/stall-short/1', bytes('x'), reqOpts)), isCode('STREAM_ERROR'));
    const elapsed = Date.now() - t0;
    assert.ok(elapsed < 2000, `elapsed ${elapsed}`);
  });

  it('enforces maxFrames', async () => {
    await assert.rejects(collect(client.request(server.peerId, '/qn/test/count/1', bytes('10'), { ...reqOpts, maxFrames: 3 })), isCode('TOO_MANY_FRAMES'));
    assert.deepEqual((await collect(client.request(server.peerId, '/qn/test/count/1', bytes('3'), { ...reqOpts, maxFrames: 3 }))).length, 3);
  });

  it('enforces maxResponseFrameBytes', async () => {
    await assert.rejects(collect(client.request(server.peerId, '/qn/test/big/1', bytes('x'), reqOpts)), isCode('FRAME_TOO_LARGE'));
  });

  it('a throwing handler resets the stream after the frames already sent', async () => {
    const got: string[] = [];
    await assert.rejects((async () => {
      for await (const f of client.request(server.peerId, '/qn/test/throws/1', bytes('x'), reqOpts)) got.push(text(f));
    })(), isCode('STREAM_ERROR'));
    assert.deepEqual(got, ['ok']);
  });

  it('unknown protocol → DIAL_FAILED; breaking out early is fine', async () => {
    await assert.rejects(collect(client.request(server.peerId, '/qn/test/nope/1', bytes('x'), reqOpts)), isCode('DIAL_FAILED'));
    for await (const f of client.request(server.peerId, '/qn/test/count/1', bytes('50'), reqOpts)) {
      assert.equal(text(f), 'frame-0');
      break;
    }
    assert.deepEqual(await collect(client.request(server.peerId, '/qn/test/count/1', bytes('2'), reqOpts)), ['frame-0', 'frame-1']);
  });
});
