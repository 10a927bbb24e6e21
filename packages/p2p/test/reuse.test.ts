// Request/response on long-lived streams: sequential requests to a peer share one stream.
import assert from 'node:assert/strict';
import { P2PRequestError, type P2PNode, type RequestOptions } from '../src/index.js';
import { Harness, bytes, text, waitFor } from './helpers.js';

async function collect(it: AsyncIterable<Uint8Array>): Promise<string[]> {
  const out: string[] = [];
  for await (const f of it) out.push(text(f));
  return out;
}

describe('p2p: request/response stream reuse', function () {
  this.timeout(60_000);
  const h = new Harness();
  let client: P2PNode, server: P2PNode;
  const handlerOpts = { maxInboundStreams: 8, maxOutboundStreams: 8, maxRequestBytes: 1024, timeoutMs: 5000 };
  const reqOpts: RequestOptions = { timeoutMs: 5000, maxResponseFrameBytes: 4096, maxFrames: 100 };
  const opened = (): number => client.stats().requestStreamsOpened ?? 0;

  beforeEach(async () => {
    server = await h.node('server');
    client = await h.node('client', { bootstrap: server.multiaddrs() });
    await waitFor('connection', () => client.connectedPeers().includes(server.peerId));
    await server.handle('/qn/test/count/1', handlerOpts, async function* (req) {
      const n = Number(text(req));
      for (let i = 0; i < n; i++) yield bytes(`f${i}`);
    });
    await server.handle('/qn/test/throws/1', handlerOpts, async function* (req) {
      if (text(req) === 'fail') throw new Error('handler bug');
      yield bytes('ok');
    });
  });
  afterEach(() => h.stopAll());

  it('sequential requests (empty responses too) use one stream', async () => {
    assert.deepEqual(await collect(client.request(server.peerId, '/qn/test/count/1', bytes('3'), reqOpts)), ['f0', 'f1', 'f2']);
    assert.deepEqual(await collect(client.request(server.peerId, '/qn/test/count/1', bytes('0'), reqOpts)), []);
    assert.deepEqual(await collect(client.request(server.peerId, '/qn/test/count/1', bytes('2'), reqOpts)), ['f0', 'f1']);
    assert.equal(opened(), 1);
  });

  it('concurrent requests each get their own stream, kept for the next ones', async () => {
    const all = await Promise.all([1, 2, 3].map((n) => collect(client.request(server.peerId, '/qn/test/count/1', bytes(String(n)), reqOpts))));
    assert.deepEqual(all, [['f0'], ['f0', 'f1'], ['f0', 'f1', 'f2']]);
    assert.equal(opened(), 3);
    await collect(client.request(server.peerId, '/qn/test/count/1', bytes('1'), reqOpts));
    assert.equal(opened(), 3);
  });

  it('a protocol the server stops serving is not answered on a stream opened before', async () => {
    assert.deepEqual(await collect(client.request(server.peerId, '/qn/test/count/1', bytes('1'), reqOpts)), ['f0']);
    assert.equal(opened(), 1);
    await server.unhandle('/qn/test/count/1');
    // The kept stream is reset by the server: the request fails (a new stream cannot negotiate it either).
    await assert.rejects(collect(client.request(server.peerId, '/qn/test/count/1', bytes('1'), reqOpts)), (e: unknown) => e instanceof P2PRequestError);
  });

  it('a stream reset by the server (a failing handler) is not reused: the next request opens a new one', async () => {
    await assert.rejects(collect(client.request(server.peerId, '/qn/test/throws/1', bytes('fail'), reqOpts)), (e: unknown) => e instanceof P2PRequestError && e.code === 'STREAM_ERROR');
    assert.deepEqual(await collect(client.request(server.peerId, '/qn/test/throws/1', bytes('x'), reqOpts)), ['ok']);
    assert.equal(opened(), 2);
    assert.deepEqual(await collect(client.request(server.peerId, '/qn/test/throws/1', bytes('y'), reqOpts)), ['ok']);
    assert.equal(opened(), 2);
  });

  it('a consumer that stops early gives the stream up (its unread frames must not answer the next request)', async () => {
    for await (const f of client.request(server.peerId, '/qn/test/count/1', bytes('5'), reqOpts)) {
      assert.equal(text(f), 'f0');
      break;
    }
    assert.deepEqual(await collect(client.request(server.peerId, '/qn/test/count/1', bytes('2'), reqOpts)), ['f0', 'f1']);
    assert.equal(opened(), 2);
  });

  it('a stream closed with its connection is reopened by the next request', async () => {
    assert.deepEqual(await collect(client.request(server.peerId, '/qn/test/count/1', bytes('1'), reqOpts)), ['f0']);
    await client.hangUp(server.peerId);
    await waitFor('disconnected', () => !client.connectedPeers().includes(server.peerId));
    await client.dial(server.multiaddrs()[0]!);
    assert.deepEqual(await collect(client.request(server.peerId, '/qn/test/count/1', bytes('1'), reqOpts)), ['f0']);
    assert.equal(opened(), 2);
  });

  it('the per-response bounds still hold on a reused stream', async () => {
    await collect(client.request(server.peerId, '/qn/test/count/1', bytes('1'), reqOpts));
    await assert.rejects(collect(client.request(server.peerId, '/qn/test/count/1', bytes('5'), { ...reqOpts, maxFrames: 2 })), (e: unknown) => e instanceof P2PRequestError && e.code === 'TOO_MANY_FRAMES');
    assert.deepEqual(await collect(client.request(server.peerId, '/qn/test/count/1', bytes('2'), reqOpts)), ['f0', 'f1']);
  });
});
