// What one peer can make a node do: validations once its first messages are invalid, state for
// junk subscriptions and topics, connection slots, and stream requests and bytes.
import assert from 'node:assert/strict';
import { RPC } from '@chainsafe/libp2p-gossipsub/message';
import type { P2PNode } from '../src/index.js';
import { countRpcEntries } from '../src/gossip.js';
import { Harness, bytes, sleep, text, waitFor } from './helpers.js';

describe('p2p: hostile peers', function () {
  this.timeout(60_000);
  const h = new Harness();
  afterEach(() => h.stopAll());

  const penalisedOrBanned = (node: P2PNode, peer: string) => node.peerScore(peer) < 0 || node.isBanned(peer);

  it('a peer whose messages fail validation gets no more of them validated (per message, not per RPC)', async () => {
    const r = await h.node('R');
    const s = await h.node('S', { bootstrap: r.multiaddrs() });
    let validated = 0;
    r.subscribe('votes', { concurrencyPerPeer: 1, validate: () => { validated++; return 'reject'; } });
    s.subscribe('votes', { validate: () => 'accept' });
    assert.ok(await s.waitForTopicPeers('votes', 1, 10_000));
    const N = 200;
    await Promise.all(Array.from({ length: N }, (_, i) => s.publish('votes', bytes(`forged-${i}`))));
    await waitFor('R to have seen the burst', () => (r.stats().topics['votes']?.reject ?? 0) + (r.stats().topics['votes']?.ignore ?? 0) >= 2, 10_000);
    await sleep(1000);
    // Two rejections take the sender below the graylist threshold (−30 each, squared); the rest cost nothing.
    assert.ok(validated <= 3, `validated ${validated} of ${N}`);
    assert.ok(r.peerScore(s.peerId) < -80, `score ${r.peerScore(s.peerId)}`);
  });

  it('subscriptions to topics of no use here leave no state and get the sender penalised past its budget', async () => {
    const r = await h.node('R', { allowedTopics: ['chain/a', 'chain/b'] });
    const s = await h.node('S', { bootstrap: r.multiaddrs() });
    r.subscribe('chain/a', { validate: () => 'accept' });
    s.subscribe('chain/a', { validate: () => 'accept' });
    s.subscribe('chain/b', { validate: () => 'accept' });
    // The allowed ones are taken: R may publish to S on both.
    await waitFor('R sees S on chain/a', () => r.topicPeers('chain/a').includes(s.peerId), 10_000);
    for (let i = 0; i < 1200; i++) s.subscribe(`junk/${i}`, { validate: () => 'accept' });
    await waitFor('S penalised at R', () => penalisedOrBanned(r, s.peerId), 20_000);
    // R asks the same questions peer exchange does: it knows S on chain/b (allowed) and nothing of the junk.
    assert.deepEqual(r.topicPeers('junk/7'), []);
    assert.ok(h.logs.some((l) => l.msg === 'peer penalised' && String(l.fields?.['reason']).includes('subscriptions to topics of no use here')));
  });

  it('an RPC is screened by counting its messages and subscriptions without decoding them', () => {
    const rpc = RPC.encode({
      subscriptions: Array.from({ length: 3 }, (_, i) => ({ subscribe: true, topic: `t${i}` })),
      messages: Array.from({ length: 300 }, (_, i) => ({ topic: 'votes', data: bytes(`vote-${i}`) })),
      control: { ihave: [{ topicID: 'votes', messageIDs: [bytes('id')] }], iwant: [], graft: [], prune: [], idontwant: [] },
    });
    assert.deepEqual(countRpcEntries(rpc), { messages: 300, subscriptions: 3 });
    assert.deepEqual(countRpcEntries(new Uint8Array(0)), { messages: 0, subscriptions: 0 });
    assert.equal(countRpcEntries(rpc.subarray(0, rpc.length - 3)), null, 'a truncated RPC does not parse');
  });

  it('untrusted peers share a few slots, per IP too; a trusted one always gets in', async () => {
    const r = await h.node('R', { connectionLimits: { maxUntrusted: 2, maxUntrustedPerIp: 2 } });
    const u = await Promise.all([0, 1, 2].map((i) => h.node(`U${i}`)));
    for (const n of u.slice(0, 2)) await n.dial(r.multiaddrs()[0]!);
    await waitFor('two untrusted connected', () => r.connectedPeers().length === 2, 10_000);
    await u[2]!.dial(r.multiaddrs()[0]!).catch(() => undefined); // R closes it once the handshake names the peer
    await sleep(500);
    assert.ok(!r.connectedPeers().includes(u[2]!.peerId), 'the third untrusted peer is refused');
    // A peer R trusts (e.g. a committee member known from the beacon's snapshot) connects anyway.
    const t = await h.node('T');
    r.setTrustedPeers([t.peerId]);
    assert.ok(r.isTrusted(t.peerId));
    await t.dial(r.multiaddrs()[0]!);
    await waitFor('trusted connected', () => r.connectedPeers().includes(t.peerId), 10_000);
    // Per IP: with one slot per address, the second untrusted peer from 127.0.0.1 is refused.
    const r2 = await h.node('R2', { connectionLimits: { maxUntrusted: 10, maxUntrustedPerIp: 1 } });
    await u[0]!.dial(r2.multiaddrs()[0]!);
    await waitFor('one untrusted at R2', () => r2.connectedPeers().length === 1, 10_000);
    await u[1]!.dial(r2.multiaddrs()[0]!).catch(() => undefined);
    await sleep(500);
    assert.deepEqual(r2.connectedPeers(), [u[0]!.peerId]);
  });

  it('a peer over its request budget is refused before any handler work, then penalised; responses stop at the byte budget', async () => {
    const r = await h.node('R');
    const c = await h.node('C', { bootstrap: r.multiaddrs() });
    await waitFor('connected', () => c.connectedPeers().includes(r.peerId), 10_000);
    let handled = 0;
    await r.handle('/qn/test/budget/1', { maxInboundStreams: 64, maxOutboundStreams: 64, maxRequestBytes: 64, timeoutMs: 5000, budget: { requestsPerSec: 1, requestBurst: 5 } }, async function* () {
      handled++;
      yield bytes('ok');
    });
    const opts = { timeoutMs: 5000, maxResponseFrameBytes: 64, maxFrames: 1 };
    const results = await Promise.allSettled(Array.from({ length: 20 }, async () => {
      for await (const f of c.request(r.peerId, '/qn/test/budget/1', bytes('x'), opts)) return text(f);
      return null;
    }));
    const ok = results.filter((x) => x.status === 'fulfilled' && x.value === 'ok').length;
    assert.ok(ok >= 5 && ok <= 6, `served ${ok} of 20`);
    assert.equal(handled, ok);
    await waitFor('C penalised at R', () => penalisedOrBanned(r, c.peerId), 5000);

    // Byte budget: 10 frames of 1 KiB asked, 3 KiB of budget → a short response (at least one frame).
    await r.handle('/qn/test/bytes/1', { maxInboundStreams: 8, maxOutboundStreams: 8, maxRequestBytes: 64, timeoutMs: 5000, budget: { bytesPerSec: 100, byteBurst: 3 * 1024 } }, async function* () {
      for (let i = 0; i < 10; i++) yield new Uint8Array(1024);
    });
    const c2 = await h.node('C2', { bootstrap: r.multiaddrs() });
    await waitFor('C2 connected', () => c2.connectedPeers().includes(r.peerId), 10_000);
    const frames = async () => { let n = 0; for await (const _f of c2.request(r.peerId, '/qn/test/bytes/1', bytes('x'), { timeoutMs: 5000, maxResponseFrameBytes: 2048, maxFrames: 10 })) n++; return n; };
    assert.equal(await frames(), 3);
    assert.equal(await frames(), 1, 'in debt: one frame, the minimum a response makes');
  });
});
