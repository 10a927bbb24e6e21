// EpochBook: verified committees per epoch from beacon-signed announcements (ML-DSA), stored, restored, served and fetched.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressFromPublicKey, formatAddress, generateKeyPair, type KeyPair } from '@qnexus/crypto';
import { beaconTopics, genesisHash, type Genesis } from '@qnexus/types';
import { createP2PNode, peerIdFromKeyFile, type P2PNode, type TopicHandler } from '@qnexus/p2p';
import { EpochBook } from '../src/epochs.js';
import { Logger } from '@qnexus/runtime';
import { MemoryAnnouncements, announce, announcementBody, capturingLogger, signAnnouncement, unitGenesis } from './helpers.js';

const vals: KeyPair[] = [1, 2, 3, 4].map((i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(i)));
const fresh: KeyPair[] = [11, 12, 13].map((i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(i)));
const beaconKey = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(70));
const impostor = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(71));
const addrOf = (k: KeyPair) => formatAddress(addressFromPublicKey(k.publicKey));
const SLOT_MS = 1000;
const EPOCH = 4;

const G: Genesis = unitGenesis(vals, beaconKey, { chainId: 'unit-ep', slotMs: SLOT_MS, epochLength: EPOCH });
const GH = genesisHash(G);
const quiet = new Logger('json', 'error');

/** A clock standing in the given slot. */
const at = (slot: number) => () => slot * SLOT_MS + 1;

describe('node: epoch book', () => {
  it('epoch 0 is the genesis assignment; a beacon-signed epoch is verified, stored, announced to listeners and restored', async () => {
    const store = new MemoryAnnouncements();
    const book = await EpochBook.open(G, GH, store, quiet, { now: at(5) });
    assert.deepEqual([...book.get(0)!.shards[0]!.members.keys()].sort(), vals.map(addrOf).sort());
    assert.equal(book.latestEpoch(), 0);
    assert.equal(book.get(1), undefined);
    assert.equal(book.signed(0), undefined, 'epoch 0 needs no announcement');
    const seen: number[] = [];
    book.listeners.push((e) => seen.push(e.epoch));

    const raw = announce(G, beaconKey, 1, [[vals[0]!, ...fresh]], 250n);
    assert.equal(await book.add(raw, 'test'), 'accepted');
    const e1 = book.get(1)!;
    assert.deepEqual([...e1.shards[0]!.members.keys()].sort(), [vals[0]!, ...fresh].map(addrOf).sort());
    assert.equal(e1.shards[0]!.committee.totalStake, 1000n);
    assert.deepEqual(book.signed(1), raw);
    assert.deepEqual(store.map.get(1), raw);
    assert.equal(book.latestEpoch(), 1);
    // The beacon re-announces every few slots (new issuedSlot, same committees): known, not new.
    assert.equal(await book.add(announce(G, beaconKey, 1, [[vals[0]!, ...fresh]], 250n, 7), 'test'), 'known');
    assert.equal(await book.add(raw, 'test'), 'known');
    assert.deepEqual(book.signed(1), raw, 'the first verified copy is the one kept and served');
    assert.deepEqual(seen, [1]);

    // A restart re-verifies what the data dir holds; a corrupted entry is dropped, loudly.
    const bad = announce(G, beaconKey, 2, [vals]);
    bad[bad.length - 5]! ^= 1;
    store.map.set(2, bad);
    const { log, records } = capturingLogger('error');
    const again = await EpochBook.open(G, GH, store, log, { now: at(5) });
    assert.ok(again.get(1));
    assert.equal(again.get(2), undefined);
    assert.equal(again.latestEpoch(), 1);
    assert.ok(records.some((r) => r.level === 'error' && /does not verify/.test(r.msg) && r['epoch'] === 2));
  });

  it('rejects malformed, unsigned and impostor announcements and keeps the first committees of an epoch against a conflicting one', async () => {
    const { log, records } = capturingLogger('warn');
    const book = await EpochBook.open(G, GH, new MemoryAnnouncements(), log, { now: at(5) });
    assert.equal(await book.add(new Uint8Array([1, 2, 3]), 't'), 'malformed');
    assert.equal(await book.add(announce(G, impostor, 1, [vals]), 't'), 'bad-signature');
    const wrongSeed = announcementBody(G, 1, [vals]);
    wrongSeed.seed = new Uint8Array(32).fill(1);
    assert.equal(await book.add(signAnnouncement(G, wrongSeed, beaconKey), 't'), 'malformed');
    assert.equal(await book.add(signAnnouncement(G, { ...announcementBody(G, 1, [vals]), startSlot: 5 }, beaconKey), 't'), 'malformed');
    assert.equal(await book.add(announce(G, beaconKey, 1, [[]]), 't'), 'malformed', 'an empty committee');
    assert.equal(await book.add(announce(G, beaconKey, 1, [vals], 0n), 't'), 'malformed', 'zero stakes');
    assert.equal(await book.add(announce(G, beaconKey, 1, [vals, fresh]), 't'), 'malformed', 'one committee per shard');
    assert.equal(book.get(1), undefined);
    // Epoch 0 is genesis: an announcement of it can only agree.
    assert.equal(await book.add(announce(G, beaconKey, 0, [fresh]), 't'), 'malformed');

    assert.equal(await book.add(announce(G, beaconKey, 1, [vals.slice(0, 3)]), 't'), 'accepted');
    // A validly signed, different committee for a known epoch: refused, the first stays, and it is logged as an error.
    assert.equal(await book.add(announce(G, beaconKey, 1, [fresh]), 't'), 'conflict');
    assert.equal(await book.add(announce(G, beaconKey, 1, [vals.slice(0, 3)], 101n), 't'), 'conflict', 'different stakes');
    assert.deepEqual([...book.get(1)!.shards[0]!.members.keys()].sort(), vals.slice(0, 3).map(addrOf).sort());
    assert.ok(records.some((r) => r.level === 'error' && /CONFLICTING/.test(r.msg) && r['epoch'] === 1));
    // An impostor's "re-announcement" of the known epoch changes nothing either.
    assert.equal(await book.add(announce(G, impostor, 1, [fresh]), 't'), 'bad-signature');
    assert.deepEqual(book.counters, { accepted: 1, known: 0, implausible: 0, malformed: 7, badSignature: 2, conflict: 2, fetched: 0, fetchFailed: 0, served: 0 });
  });

  it('refuses an epoch beyond the next one as implausible, before checking its signature', async () => {
    let slot = 5; // epoch 1: the beacon may have announced epoch 2, not 3
    const book = await EpochBook.open(G, GH, new MemoryAnnouncements(), quiet, { now: () => slot * SLOT_MS + 1 });
    assert.equal(await book.add(announce(G, beaconKey, 3, [vals]), 't'), 'implausible');
    // An impostor's far-future epoch is refused the same way: its signature is never looked at.
    assert.equal(await book.add(announce(G, impostor, 500_000_000, [vals]), 't'), 'implausible');
    assert.equal(book.counters.implausible, 2);
    assert.equal(book.counters.badSignature, 0);
    assert.equal(book.get(3), undefined);
    assert.equal(await book.add(announce(G, beaconKey, 2, [vals]), 't'), 'accepted');
    slot = 8; // epoch 2 started: 3 is the next one now
    assert.equal(await book.add(announce(G, beaconKey, 3, [vals]), 't'), 'accepted');
  });

  it('gossip validation: accept a new epoch, ignore a known one, reject invalid and conflicting ones', async () => {
    const book = await EpochBook.open(G, GH, new MemoryAnnouncements(), capturingLogger('error').log, { now: at(5) });
    const handlers = new Map<string, TopicHandler>();
    // Only the subscription side of p2p is exercised here; fetches are tested over real libp2p below.
    const stub = {
      subscribe: (topic: string, h: TopicHandler) => void handlers.set(topic, h),
      unsubscribe: (topic: string) => void handlers.delete(topic),
      handle: async () => undefined,
    } as unknown as P2PNode;
    await book.start(stub);
    const h = handlers.get(beaconTopics(G.chainId).epochs)!;
    assert.ok(h);
    const metrics: string[] = [];
    book.onCount = (r) => metrics.push(r);
    assert.equal(await h.validate(announce(G, beaconKey, 1, [fresh]), 'p'), 'accept');
    assert.equal(await h.validate(announce(G, beaconKey, 1, [fresh], 100n, 9), 'p'), 'ignore');
    assert.equal(await h.validate(announce(G, beaconKey, 1, [vals]), 'p'), 'reject');
    assert.equal(await h.validate(announce(G, impostor, 2, [vals]), 'p'), 'reject');
    assert.equal(await h.validate(new Uint8Array(10), 'p'), 'reject');
    assert.equal(await h.validate(announce(G, beaconKey, 9, [vals]), 'p'), 'reject', 'implausible: nobody relays it');
    assert.deepEqual(metrics, ['accepted', 'known', 'conflict', 'bad-signature', 'malformed', 'implausible']);
    book.stop();
    assert.equal(handlers.size, 0);
  });

  describe('fetching over libp2p', () => {
    let dir: string;
    let nodes: P2PNode[] = [];
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'qnexus-epochs-'));
    });
    afterEach(async () => {
      await Promise.all(nodes.map((n) => n.stop()));
      nodes = [];
      rmSync(dir, { recursive: true, force: true });
    });
    const peer = async (name: string) => {
      const n = await createP2PNode({ peerKeyPath: join(dir, `${name}.key`), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], maxMessageBytes: 4 * 1024 * 1024, log: () => undefined });
      nodes.push(n);
      return n;
    };

    it('ensure fetches a missing epoch from the serving peer, shares one fetch, and tries an unknown epoch at most once per slot', async () => {
      let slot = 9; // epoch 2: epochs up to 3 may have been announced
      const now = () => slot * SLOT_MS + 1;
      const serverBook = await EpochBook.open(G, GH, new MemoryAnnouncements(), quiet, { now });
      const e1 = announce(G, beaconKey, 1, [vals.slice(1)]);
      const e2 = announce(G, beaconKey, 2, [fresh]);
      assert.equal(await serverBook.add(e1, 't'), 'accepted');
      assert.equal(await serverBook.add(e2, 't'), 'accepted');
      const store = new MemoryAnnouncements();
      const clientBook = await EpochBook.open(G, GH, store, quiet, { now });
      const [a, b] = [await peer('server'), await peer('client')];
      await serverBook.start(a);
      await clientBook.start(b);
      await b.dial(a.multiaddrs()[0]!);

      assert.equal(await clientBook.ensure(0), true, 'genesis needs no fetch');
      assert.equal(await clientBook.ensure(1, a.peerId), true);
      assert.deepEqual(clientBook.signed(1), e1);
      assert.deepEqual(store.map.get(1), e1, 'fetched announcements are stored too');
      // Concurrent callers share one fetch (found among the connected peers, no preference given).
      const p = clientBook.ensure(2);
      assert.equal(clientBook.ensure(2), p);
      assert.equal(await p, true);
      assert.deepEqual([...clientBook.get(2)!.shards[0]!.members.keys()].sort(), fresh.map(addrOf).sort());
      assert.equal(clientBook.counters.fetched, 2);
      assert.equal(serverBook.counters.served, 2);

      // Nobody has epoch 3 yet: one attempt in this slot, none more until the next slot.
      assert.equal(await clientBook.ensure(3, a.peerId), false);
      assert.equal(await clientBook.ensure(3, a.peerId), false);
      assert.equal(clientBook.counters.fetchFailed, 1);
      // Epochs that cannot have been announced yet are not asked for at all.
      assert.equal(await clientBook.ensure(5, a.peerId), false);
      assert.equal(clientBook.counters.fetchFailed, 1);
      // Next slot, the beacon has announced epoch 3 and the server learnt it.
      slot = 10;
      await serverBook.add(announce(G, beaconKey, 3, [vals]), 't');
      assert.equal(await clientBook.ensure(3, a.peerId), true);
      assert.equal(clientBook.latestEpoch(), 3);
      clientBook.stop();
      serverBook.stop();
    });

    it('a node with no link to the beacon learns new epochs from its shard peer: relayed on gossip, or fetched', async () => {
      const beaconKeyPath = join(dir, 'beacon.key');
      const g = unitGenesis(vals, beaconKey, { chainId: 'unit-ep-relay', slotMs: SLOT_MS, epochLength: EPOCH, beacon: { publicKey: beaconKey.publicKey, peerId: await peerIdFromKeyFile(beaconKeyPath) } });
      const gh = genesisHash(g);
      const now = at(6); // epoch 1: epochs 1 and 2 can have been announced
      const topic = beaconTopics(g.chainId).epochs;
      const beacon = await createP2PNode({ peerKeyPath: beaconKeyPath, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], maxMessageBytes: 4 * 1024 * 1024, log: () => undefined });
      nodes.push(beacon);
      assert.equal(beacon.peerId, g.beacon.peerId);
      // The beacon authors its topic and needs nobody's copy.
      beacon.subscribe(topic, { validate: () => 'ignore' });
      const [shardPeer, isolated] = [await peer('shard-peer'), await peer('isolated')];
      const peerBook = await EpochBook.open(g, gh, new MemoryAnnouncements(), quiet, { now });
      const { log, records } = capturingLogger('info');
      const book = await EpochBook.open(g, gh, new MemoryAnnouncements(), log, { now });
      await peerBook.start(shardPeer);
      await book.start(isolated);
      await shardPeer.dial(beacon.multiaddrs()[0]!);
      await isolated.dial(shardPeer.multiaddrs()[0]!);
      const until = async (what: string, cond: () => boolean) => {
        for (let i = 0; !cond(); i++) {
          if (i >= 200) throw new Error(`timed out waiting for ${what}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      await until('the gossip mesh', () => beacon.topicPeers(topic).includes(shardPeer.peerId) && shardPeer.meshPeers(topic).includes(isolated.peerId));

      const e2 = announce(g, beaconKey, 2, [fresh]);
      await beacon.publish(topic, e2);
      await until('epoch 2 on the isolated node', () => book.has(2));
      assert.ok(peerBook.has(2));
      assert.ok(!isolated.connectedPeers().includes(beacon.peerId), 'never connected to the beacon');
      assert.ok(records.some((r) => r.msg === 'beacon announced epoch' && r['epoch'] === 2 && r['source'] === `gossip:${shardPeer.peerId}`), 'relayed by the shard peer');

      // The beacon is gone for good; the shard peer learnt epoch 1 (say, from a sync peer), the isolated node missed it.
      await beacon.stop();
      await peerBook.add(announce(g, beaconKey, 1, [vals.slice(2)]), 'test');
      assert.equal(await book.ensure(1), true);
      assert.deepEqual([...book.get(1)!.shards[0]!.members.keys()].sort(), vals.slice(2).map(addrOf).sort());
      assert.equal(book.counters.fetched, 1);
      assert.equal(peerBook.counters.served, 1);
      book.stop();
      peerBook.stop();
    });
  });
});
