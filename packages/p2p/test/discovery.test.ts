import assert from 'node:assert/strict';
import { decodeDiscoveryRequest, decodeDiscoveryResponse, encodeDiscoveryRequest, encodeDiscoveryResponse, isLocalOnlyAddr } from '../src/discovery.js';
import { discoveryProtocol } from '../src/index.js';
import { Harness, bytes, sleep, waitFor } from './helpers.js';

const PROTOCOL = discoveryProtocol('test-chain');
const accept = { validate: () => 'accept' as const };

describe('p2p: discovery (peer exchange)', function () {
  this.timeout(60_000);
  const h = new Harness();
  afterEach(() => h.stopAll());

  it('a newcomer knowing one peer that does not share its topic finds the topic peers and a wanted peer', async () => {
    const discovery = { protocol: PROTOCOL, intervalMs: 200, minTopicPeers: 2 };
    // "beacon": on no shard topic, connected to everyone (as the real beacon is).
    const hub = await h.node('hub', { discovery });
    const a = await h.node('A', { discovery, bootstrap: [hub.multiaddrs()[0]!] });
    const b = await h.node('B', { discovery, bootstrap: [hub.multiaddrs()[0]!] });
    const other = await h.node('other', { discovery, bootstrap: [hub.multiaddrs()[0]!] });
    a.subscribe('shard-1', accept);
    b.subscribe('shard-1', accept);
    other.subscribe('shard-0', accept);
    await waitFor('hub sees both shard-1 subscribers', () => hub.connectedPeers().length === 3, 10_000);
    // A and B find each other through the hub alone.
    await waitFor('A and B connected', () => a.topicPeers('shard-1').includes(b.peerId), 10_000);

    // The newcomer knows only B's address and wants the hub by id (like a node wants the beacon).
    const c = await h.node('C', { discovery: { ...discovery, wantPeers: [hub.peerId] }, bootstrap: [b.multiaddrs()[0]!] });
    c.subscribe('shard-1', accept);
    await waitFor('C finds A (via B) and the hub', () => c.topicPeers('shard-1').includes(a.peerId) && c.connectedPeers().includes(hub.peerId), 10_000);
    // It dials only what it lacks: the shard-0 peer is nobody's answer for shard-1.
    assert.ok(!c.connectedPeers().includes(other.peerId), 'no dial to a peer of another topic');

    // Gossip now flows to the newcomer from a peer it was never told about.
    let got = '';
    c.subscribe('news', { validate: () => 'accept', deliver: (d) => { got = new TextDecoder().decode(d); } });
    a.subscribe('news', accept);
    await waitFor('news mesh', () => a.topicPeers('news').includes(c.peerId), 10_000);
    await a.publish('news', bytes('hello'));
    await waitFor('C receives A\'s message', () => got === 'hello', 5000);
  });

  it('a malformed request is refused and penalised; the responder keeps serving', async () => {
    const server = await h.node('S', { discovery: { protocol: PROTOCOL, intervalMs: 60_000 } });
    const client = await h.node('X', { bootstrap: [server.multiaddrs()[0]!] });
    await waitFor('connected', () => client.connectedPeers().includes(server.peerId), 5000);
    const ask = async (req: Uint8Array) => {
      const out: Uint8Array[] = [];
      for await (const f of client.request(server.peerId, PROTOCOL, req, { timeoutMs: 3000, maxResponseFrameBytes: 65536, maxFrames: 1 })) out.push(f);
      return out;
    };
    await assert.rejects(ask(bytes('{"topics":[],"peers":[],"extra":1}')));
    await sleep(100);
    assert.ok(server.peerScore(client.peerId) < 0, 'the asker was penalised');
    const ok = await ask(encodeDiscoveryRequest({ topics: ['t'], peers: [] }));
    assert.deepEqual(decodeDiscoveryResponse(ok[0]!), { peers: [] });
  });

  it('codec: strict bounds and fields', () => {
    const req = { topics: ['a', 'b'], peers: ['12D3KooWx'] };
    assert.deepEqual(decodeDiscoveryRequest(encodeDiscoveryRequest(req)), req);
    assert.throws(() => decodeDiscoveryRequest(bytes('[]')), /not a JSON object/);
    assert.throws(() => decodeDiscoveryRequest(bytes('{"topics":[1],"peers":[]}')), /entries must be strings/);
    assert.throws(() => decodeDiscoveryRequest(bytes(JSON.stringify({ topics: Array(17).fill('t'), peers: [] }))), /at most 16/);
    assert.throws(() => decodeDiscoveryRequest(new Uint8Array([0xff, 0xfe])), /not UTF-8 JSON/);
    const res = { peers: [{ id: 'p', addrs: ['/ip4/10.0.0.1/tcp/7000'] }] };
    assert.deepEqual(decodeDiscoveryResponse(encodeDiscoveryResponse(res)), res);
    assert.throws(() => decodeDiscoveryResponse(bytes('{"peers":[{"id":"p","addrs":[],"x":1}]}')), /unknown peer field/);
    assert.ok(isLocalOnlyAddr('/ip4/127.0.0.1/tcp/1') && isLocalOnlyAddr('/ip4/0.0.0.0/tcp/1') && isLocalOnlyAddr('/ip6/::1/tcp/1'));
    assert.ok(!isLocalOnlyAddr('/ip4/10.1.2.3/tcp/1') && !isLocalOnlyAddr('/dns4/s0-validator-0/tcp/7000'));
  });
});
