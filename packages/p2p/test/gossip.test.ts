import assert from 'node:assert/strict';
import type { P2PNode, ValidationResult } from '../src/index.js';
import { Harness, bytes, sleep, text, waitFor } from './helpers.js';

describe('p2p: gossip', function () {
  this.timeout(60_000);
  const h = new Harness();
  afterEach(() => h.stopAll());

  it('returns 0 (does not throw) when publishing with no topic peers', async () => {
    const a = await h.node('lonely');
    a.subscribe('t', { validate: () => 'accept' });
    assert.equal(await a.publish('t', bytes('nobody listens')), 0);
    assert.equal(await a.publish('unsubscribed-topic', bytes('x')), 0);
  });

  describe('forwarding through a validating middle peer (A → B → C)', () => {
    const h = new Harness(); // own harness: the outer afterEach must not stop these nodes between steps
    const topic = 'qn/test/relay';
    let a: P2PNode, b: P2PNode, c: P2PNode;
    let bMode: ValidationResult;
    const atC: string[] = [];
    let bValidated = 0;

    before(async () => {
      b = await h.node('B');
      a = await h.node('A', { bootstrap: b.multiaddrs() });
      c = await h.node('C', { bootstrap: b.multiaddrs() });
      b.subscribe(topic, { validate: () => { bValidated++; return bMode; } });
      c.subscribe(topic, { validate: () => 'accept', deliver: (d) => atC.push(text(d)) });
      a.subscribe(topic, { validate: () => 'accept' });
      assert.ok(await a.waitForTopicPeers(topic, 1, 10_000), 'A sees B on the topic');
      // B forwards to its mesh, so C must be in B's mesh (and B in C's) before the test.
      await waitFor('B mesh contains C', () => b.meshPeers(topic).includes(c.peerId), 10_000);
      await waitFor('B mesh contains A', () => b.meshPeers(topic).includes(a.peerId), 10_000);
      assert.ok(!a.connectedPeers().includes(c.peerId), 'A and C must only be linked through B');
    });
    after(() => h.stopAll());

    it("'accept' at B: the message reaches C", async () => {
      bMode = 'accept';
      assert.equal(await a.publish(topic, bytes('m-accept')), 1);
      await waitFor('C receives m-accept', () => atC.includes('m-accept'));
      assert.equal(b.stats().topics[topic]?.accept, 1);
      assert.ok(b.peerScore(a.peerId) >= 0);
    });

    it("'ignore' at B: not forwarded, A not penalised", async () => {
      bMode = 'ignore';
      const seen = bValidated;
      await a.publish(topic, bytes('m-ignore'));
      await waitFor('B validates m-ignore', () => bValidated > seen);
      await sleep(1500); // > 2 heartbeats: time for any forward or gossip to happen
      assert.ok(!atC.includes('m-ignore'));
      assert.equal(b.stats().topics[topic]?.ignore, 1);
      assert.ok(b.peerScore(a.peerId) >= 0, `score ${b.peerScore(a.peerId)}`);
      assert.ok(b.meshPeers(topic).includes(a.peerId));
    });

    it("'reject' at B: not forwarded, A's score at B goes negative and A is pruned", async () => {
      bMode = 'reject';
      const seen = bValidated;
      await a.publish(topic, bytes('m-reject'));
      await waitFor('B validates m-reject', () => bValidated > seen);
      assert.equal(b.stats().topics[topic]?.reject, 1);
      await waitFor('A score at B < 0', () => b.peerScore(a.peerId) < 0, 3000);
      assert.ok(b.peerScore(a.peerId) <= -20, `score ${b.peerScore(a.peerId)}`);
      await waitFor('B prunes A from its mesh', () => !b.meshPeers(topic).includes(a.peerId), 3000);
      await sleep(1000);
      assert.ok(!atC.includes('m-reject'));
      assert.deepEqual(atC, ['m-accept']);
    });
  });

  it('validate exceptions count as reject', async () => {
    const b = await h.node('B');
    const a = await h.node('A', { bootstrap: b.multiaddrs() });
    let calls = 0;
    b.subscribe('t', { validate: () => { calls++; throw new Error('boom'); } });
    assert.ok(await a.waitForTopicPeers('t', 1, 10_000));
    await a.publish('t', bytes('x'));
    await waitFor('reject counted', () => b.stats().topics['t']?.reject === 1);
    assert.equal(calls, 1);
    assert.ok(h.logs.some((l) => l.level === 'warn' && l.msg.includes('validator threw')));
  });

  it('async validators work and delivered data is a plain Uint8Array', async () => {
    const b = await h.node('B');
    const a = await h.node('A', { bootstrap: b.multiaddrs() });
    const got: Uint8Array[] = [];
    b.subscribe('t', {
      validate: async (): Promise<ValidationResult> => { await sleep(50); return 'accept'; },
      deliver: (d, from) => { assert.equal(from, a.peerId); got.push(d); },
    });
    assert.ok(await a.waitForTopicPeers('t', 1, 10_000));
    await a.publish('t', new Uint8Array([1, 2, 3]));
    await waitFor('delivery', () => got.length === 1);
    assert.deepStrictEqual(got[0], new Uint8Array([1, 2, 3]));
  });

  it('oversized messages are rejected without calling validate (per-topic and global caps)', async () => {
    // Receiver: global cap 4000 bytes, topic 'small' capped at 1000.
    const r = await h.node('R', { maxMessageBytes: 4000 });
    const s = await h.node('S', { bootstrap: r.multiaddrs(), maxMessageBytes: 1024 * 1024 });
    const validated: Record<string, number[]> = { small: [], big: [] };
    r.subscribe('small', { maxBytes: 1000, validate: (d) => { validated.small!.push(d.length); return 'accept'; } });
    r.subscribe('big', { validate: (d) => { validated.big!.push(d.length); return 'accept'; } });
    assert.ok(await s.waitForTopicPeers('small', 1, 10_000));
    assert.ok(await s.waitForTopicPeers('big', 1, 10_000));

    await s.publish('small', new Uint8Array(1001));   // over the topic cap
    await s.publish('big', new Uint8Array(4001));     // over the global cap (but within the RPC frame margin)
    await s.publish('small', new Uint8Array(1000));   // exactly at the cap: validated
    await waitFor('two rejects and one accept', () =>
      r.stats().topics['small']?.reject === 1 && r.stats().topics['big']?.reject === 1 && r.stats().topics['small']?.accept === 1);
    assert.deepEqual(validated, { small: [1000], big: [] });
    await waitFor('sender penalised', () => r.peerScore(s.peerId) < 0, 3000);
  });

  it('publish refuses payloads above our own cap', async () => {
    const a = await h.node('A', { maxMessageBytes: 100 });
    await assert.rejects(a.publish('t', new Uint8Array(101)), RangeError);
    a.subscribe('t2', { maxBytes: 10, validate: () => 'accept' });
    await assert.rejects(a.publish('t2', new Uint8Array(11)), RangeError);
    assert.throws(() => { a.subscribe('t3', { maxBytes: 101, validate: () => 'accept' }); }, RangeError);
  });

  it('a burst larger than the stream buffer is paced, not dropped', async () => {
    const r = await h.node('R', { maxMessageBytes: 4 * 1024 * 1024 });
    const s = await h.node('S', { bootstrap: r.multiaddrs(), maxMessageBytes: 4 * 1024 * 1024 });
    const sizes: number[] = [];
    r.subscribe('blocks', { validate: () => 'accept', deliver: (d) => sizes.push(d.length) });
    assert.ok(await s.waitForTopicPeers('blocks', 1, 10_000));
    const N = 24; // 24 × 1 MiB ≫ a 4 MiB buffer
    const sent = await Promise.all(Array.from({ length: N }, (_, i) => {
      const payload = new Uint8Array(1024 * 1024);
      payload[0] = i; // distinct content → distinct message ids
      return s.publish('blocks', payload);
    }));
    assert.deepEqual(sent, Array(N).fill(1));
    await waitFor(`${N} deliveries`, () => sizes.length === N, 30_000);
  });

  it('penalize: lowers the score, then bans (disconnect + refuse) after repeated offences, then lets the peer back', async () => {
    const b = await h.node('B', { penalty: { maxOffences: 3, windowMs: 60_000, banMs: 1500 } });
    const a = await h.node('A', { bootstrapBackoffMs: { min: 100, max: 200 }, bootstrap: b.multiaddrs() });
    // Subscribing both sides makes B's gossipsub track A (it scores only peers it knows).
    a.subscribe('t', { validate: () => 'accept' });
    b.subscribe('t', { validate: () => 'accept' });
    assert.ok(await b.waitForTopicPeers('t', 1, 10_000));
    b.penalize(a.peerId, 'bad sync response');
    assert.ok(b.peerScore(a.peerId) < 0, `score ${b.peerScore(a.peerId)}`);
    b.penalize(a.peerId, 'bad sync response');
    assert.ok(b.connectedPeers().includes(a.peerId));
    b.penalize(a.peerId, 'bad sync response');
    assert.ok(b.isBanned(a.peerId));
    await waitFor('B drops A', () => !b.connectedPeers().includes(a.peerId) && !a.connectedPeers().includes(b.peerId));
    // A keeps re-dialling (bootstrap) but B refuses during the cooling-off period.
    await sleep(800);
    assert.ok(!b.connectedPeers().includes(a.peerId));
    await assert.rejects(b.dial(a.multiaddrs()[0]!));
    // After the ban A's bootstrap loop gets back in.
    await waitFor('A reconnects after the ban', () => b.connectedPeers().includes(a.peerId), 5000);
    b.penalize('not-a-peer-id', 'garbage'); // must not throw
  });
});
