// Direct messages: one-way frames over one long-lived stream per (peer, protocol), bounded and rate-limited.
import assert from 'node:assert/strict';
import type { DirectHandlerOptions, P2PNode, ValidationResult } from '../src/index.js';
import { DIRECT_MAX_QUEUED } from '../src/direct.js';
import { Harness, bytes, sleep, text, waitFor } from './helpers.js';

describe('p2p: direct messages', function () {
  this.timeout(60_000);
  const h = new Harness();
  const opts: DirectHandlerOptions = { maxFrameBytes: 1024, framesPerSec: 1000, frameBurst: 1000 };
  afterEach(() => h.stopAll());

  /** A receiver (penalties ban at the first offence, so a penalty is observable) and a sender connected to it. */
  async function pair(): Promise<{ a: P2PNode; b: P2PNode }> {
    const b = await h.node('b', { penalty: { maxOffences: 1 } });
    const a = await h.node('a', { bootstrap: b.multiaddrs() });
    await waitFor('connection', () => a.connectedPeers().includes(b.peerId) && b.connectedPeers().includes(a.peerId));
    return { a, b };
  }

  it('frames arrive once each, in order, all over one stream', async () => {
    const { a, b } = await pair();
    const got: string[] = [];
    await b.handleDirect('/qn/test/direct/1', opts, (d, from) => {
      assert.equal(from, a.peerId);
      got.push(text(d));
      return 'accept';
    });
    for (let i = 0; i < 20; i++) assert.equal(a.sendDirect(b.peerId, '/qn/test/direct/1', bytes(`m${i}`)), true);
    await waitFor('20 frames', () => got.length >= 20);
    // A second batch later goes over the same stream.
    await sleep(100);
    for (let i = 20; i < 25; i++) a.sendDirect(b.peerId, '/qn/test/direct/1', bytes(`m${i}`));
    await waitFor('25 frames', () => got.length >= 25);
    await sleep(200);
    assert.deepEqual(got, Array.from({ length: 25 }, (_, i) => `m${i}`));
    assert.deepEqual(b.stats().direct?.['/qn/test/direct/1'], { streams: 1, frames: 25, dropped: 0, rejected: 0 });
  });

  it('a full queue drops its oldest frame, or refuses the new one when asked to', async () => {
    const { a, b } = await pair();
    const got = new Map<string, string[]>();
    for (const mode of ['drop-oldest', 'refuse'] as const) {
      const protocol = `/qn/test/direct-${mode}/1`;
      got.set(mode, []);
      await b.handleDirect(protocol, opts, (d) => {
        got.get(mode)!.push(text(d));
        return 'accept';
      });
      // In one turn, before the stream has opened: nothing drains the queue meanwhile.
      const accepted = Array.from({ length: DIRECT_MAX_QUEUED + 2 }, (_, i) => a.sendDirect(b.peerId, protocol, bytes(`m${i}`), { whenFull: mode }));
      const n = DIRECT_MAX_QUEUED;
      if (mode === 'refuse') assert.deepEqual(accepted, [...Array<boolean>(n).fill(true), false, false]);
      else assert.ok(accepted.every(Boolean));
      await waitFor(`${n} frames (${mode})`, () => got.get(mode)!.length >= n);
    }
    await sleep(200);
    const range = (from: number) => Array.from({ length: DIRECT_MAX_QUEUED }, (_, i) => `m${from + i}`);
    // A newer vote supersedes an older one; a batch refused is sent another way by the caller.
    assert.deepEqual(got.get('drop-oldest'), range(2));
    assert.deepEqual(got.get('refuse'), range(0));
  });

  it('a message the handler rejects penalises the sender', async () => {
    const { a, b } = await pair();
    await b.handleDirect('/qn/test/direct/1', opts, (d): ValidationResult => (text(d) === 'bad' ? 'reject' : 'accept'));
    a.sendDirect(b.peerId, '/qn/test/direct/1', bytes('good'));
    await waitFor('good frame', () => b.stats().direct?.['/qn/test/direct/1']?.frames === 1);
    assert.equal(b.isBanned(a.peerId), false);
    a.sendDirect(b.peerId, '/qn/test/direct/1', bytes('bad'));
    await waitFor('sender banned', () => b.isBanned(a.peerId));
    assert.equal(b.stats().direct?.['/qn/test/direct/1']?.rejected, 1);
  });

  it('a frame over the limit is not handled: the stream ends and the sender is penalised', async () => {
    const { a, b } = await pair();
    let handled = 0;
    await b.handleDirect('/qn/test/direct/1', opts, () => {
      handled++;
      return 'accept';
    });
    a.sendDirect(b.peerId, '/qn/test/direct/1', new Uint8Array(opts.maxFrameBytes + 1));
    await waitFor('sender banned', () => b.isBanned(a.peerId));
    assert.equal(handled, 0);
  });

  it('frames beyond the peer budget are dropped, and the sender penalised', async () => {
    const { a, b } = await pair();
    let handled = 0;
    await b.handleDirect('/qn/test/direct/1', { maxFrameBytes: 1024, framesPerSec: 0.001, frameBurst: 3 }, () => {
      handled++;
      return 'accept';
    });
    for (let i = 0; i < 10; i++) a.sendDirect(b.peerId, '/qn/test/direct/1', bytes(`m${i}`));
    await waitFor('sender banned', () => b.isBanned(a.peerId));
    await waitFor('all frames seen', () => (b.stats().direct?.['/qn/test/direct/1']?.dropped ?? 0) + handled >= 10 || !b.connectedPeers().includes(a.peerId));
    assert.equal(handled, 3);
  });

  it('a stream that was closed is reopened by the next send', async () => {
    const { a, b } = await pair();
    const got: string[] = [];
    await b.handleDirect('/qn/test/direct/1', opts, (d) => {
      got.push(text(d));
      return 'accept';
    });
    a.sendDirect(b.peerId, '/qn/test/direct/1', bytes('before'));
    await waitFor('first frame', () => got.length === 1);
    // The connection goes away (and with it the stream); the peers reconnect.
    await a.hangUp(b.peerId);
    await waitFor('disconnected', () => !a.connectedPeers().includes(b.peerId));
    assert.equal(a.sendDirect(b.peerId, '/qn/test/direct/1', bytes('lost')), false, 'not connected: nothing is sent');
    await a.dial(b.multiaddrs()[0]!);
    await waitFor('reconnected', () => a.connectedPeers().includes(b.peerId));
    assert.equal(a.sendDirect(b.peerId, '/qn/test/direct/1', bytes('after')), true);
    await waitFor('second frame', () => got.length === 2);
    assert.deepEqual(got, ['before', 'after']);
    assert.equal(b.stats().direct?.['/qn/test/direct/1']?.streams, 2);
  });

  it('a peer that does not serve the protocol is reported unreachable (the caller falls back to gossip)', async () => {
    const { a, b } = await pair();
    // The first send cannot know yet: it queues while the stream opens, which fails.
    a.sendDirect(b.peerId, '/qn/test/none/1', bytes('x'));
    await waitFor('send refused', () => a.sendDirect(b.peerId, '/qn/test/none/1', bytes('x')) === false);
    assert.equal(a.sendDirect('not-a-peer-id', '/qn/test/none/1', bytes('x')), false);
  });
});
