// POST /v1/evidence on a shard node: verified in full before anything reaches the beacon, answers remembered,
// relays budgeted. The node's XShard talks to a stand-in beacon over real libp2p that counts what it is sent.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressFromPublicKey, formatAddress, generateKeyPair, getBackend, toHex, type KeyPair } from '@qnexus/crypto';
import { beaconTopics, decodeBeaconRequest, encodeEvidence, encodeXAck, evidenceKey, voteSigningBytes, type Genesis, type SignedVote, type VoteBody, type VoteEvidence, type XAck } from '@qnexus/types';
import { ChainStore } from '@qnexus/db';
import { createP2PNode, peerIdFromKeyFile, type P2PNode } from '@qnexus/p2p';
import { Chain } from '../src/chain.js';
import type { Engine } from '../src/engine.js';
import { Logger } from '@qnexus/runtime';
import { Mempool } from '../src/mempool.js';
import { createMetrics, type Metrics } from '../src/metrics.js';
import type { TxGossip } from '../src/txgossip.js';
import { TxVerifier } from '../src/verifier.js';
import { XShard } from '../src/xshard.js';
import { startTestApi, unitGenesis } from './helpers.js';

const CHAIN = 'unit-evidence';
const b = getBackend('ml-dsa-44');
const vals: KeyPair[] = [1, 2, 3, 4].map((i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(i)));
const beaconKey = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(70));
const impostor = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(71));
const addrOf = (k: KeyPair) => formatAddress(addressFromPublicKey(k.publicKey));
/** Long slots, so the whole test runs inside one: slot 31, the last of epoch 0 (epoch 1 is not announced here). */
const SLOT_MS = 60_000;
const EPOCH = 32;

function vote(k: KeyPair, over: Partial<VoteBody> = {}): SignedVote {
  const body: VoteBody = { chainId: CHAIN, shard: 0, height: 5, round: 7, step: 'prevote', blockHash: new Uint8Array(32).fill(1), validator: addressFromPublicKey(k.publicKey), ...over };
  return { body, signature: b.sign(k.secretKey, voteSigningBytes(body)) };
}

function equivocation(k: KeyPair, over: Partial<VoteBody> = {}): VoteEvidence {
  return { first: vote(k, over), second: vote(k, { ...over, blockHash: new Uint8Array(32).fill(2) }) };
}

/**
 * Stands in for the beacon's 2PC protocol: counts the evidence it is sent and answers like the
 * registry (the first evidence against a validator slashes it, anything after is a duplicate),
 * unless a test sets `answer`.
 */
class TestBeacon {
  readonly received: VoteEvidence[] = [];
  answer: ((e: VoteEvidence) => XAck) | null = null;
  private readonly slashed = new Set<string>();
  constructor(readonly p2p: P2PNode) {}

  start(g: Genesis): Promise<void> {
    return this.p2p.handle(beaconTopics(g.chainId).protocol, { maxInboundStreams: 8, maxOutboundStreams: 8, maxRequestBytes: 1 << 20, timeoutMs: 5000 }, (req) => this.serve(req));
  }

  stop(g: Genesis): Promise<void> {
    return this.p2p.unhandle(beaconTopics(g.chainId).protocol);
  }

  private async *serve(req: Uint8Array): AsyncIterable<Uint8Array> {
    yield encodeXAck(this.onRequest(req));
  }

  private onRequest(req: Uint8Array): XAck {
    const r = decodeBeaconRequest(req);
    if (r.type !== 'evidence') return { ok: false, code: 'MALFORMED', message: 'evidence only' };
    this.received.push(r.evidence);
    if (this.answer) return this.answer(r.evidence);
    const v = formatAddress(r.evidence.first.body.validator);
    if (this.slashed.has(v)) return { ok: true, code: '', message: 'duplicate 0' };
    this.slashed.add(v);
    return { ok: true, code: '', message: 'slashed 10' };
  }
}

describe('node: evidence relay (POST /v1/evidence)', function () {
  this.timeout(60_000);
  const log = new Logger('json', 'error');
  let dir: string;
  let G: Genesis;
  let store: ChainStore;
  let chain: Chain;
  let metrics: Metrics;
  let nodeP2p: P2PNode;
  let beacon: TestBeacon;
  let xs: XShard;
  let server: Server;
  let url: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qnexus-evidence-'));
    const beaconKeyPath = join(dir, 'beacon.key');
    G = unitGenesis(vals, beaconKey, {
      chainId: CHAIN,
      slotMs: SLOT_MS,
      epochLength: EPOCH,
      genesisTime: Date.now() - 31.5 * SLOT_MS,
      beacon: { publicKey: beaconKey.publicKey, peerId: await peerIdFromKeyFile(beaconKeyPath) },
    });
    const mk = (keyPath: string) => createP2PNode({ peerKeyPath: keyPath, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], maxMessageBytes: 1 << 20, log: () => undefined });
    beacon = new TestBeacon(await mk(beaconKeyPath));
    await beacon.start(G);
    nodeP2p = await mk(join(dir, 'node.key'));
    await nodeP2p.dial(beacon.p2p.multiaddrs()[0]!);
  });

  after(async () => {
    await Promise.allSettled([nodeP2p?.stop(), beacon?.p2p.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    store = await ChainStore.open(join(dir, `db-${Math.random().toString(36).slice(2)}`));
    metrics = createMetrics();
    const verifier = new TxVerifier('ml-dsa-44', metrics);
    chain = await Chain.open(store, G, 0, verifier, log);
    const engine = { commitListeners: [], evidenceListeners: [], run: async <T>(f: () => T) => f() };
    xs = new XShard(chain, engine as unknown as Engine, new Mempool(chain, verifier), nodeP2p, {} as TxGossip, null, metrics, log);
    ({ server, url } = await startTestApi({ chain, verifier, metrics, log, xshard: xs }));
    beacon.received.length = 0;
    beacon.answer = null;
  });

  afterEach(async () => {
    xs.stop();
    await new Promise<void>((r) => server.close(() => r()));
    await store.close();
  });

  const post = async (e: VoteEvidence | unknown) => {
    const body = JSON.stringify({ evidence: typeof e === 'object' && e !== null && 'first' in e ? toHex(encodeEvidence(e as VoteEvidence)) : e });
    const r = await fetch(`${url}/v1/evidence`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    return { status: r.status, body: (await r.json()) as { result?: string; slashed?: string | null; error?: { code: string; message: string } } };
  };
  const forwarded = async () => (await metrics.evidenceForwarded.get()).values.reduce((n, v) => n + v.value, 0);

  it('refuses what it cannot verify with its code, and sends the beacon nothing (issue 12: the beacon would have banned us)', async () => {
    const refused = async (e: VoteEvidence, code: string, status: number, why: string) => {
      const r = await post(e);
      assert.equal(r.body.error?.code, code, `${why}: ${JSON.stringify(r.body)}`);
      assert.equal(r.status, status, why);
    };
    // The attack: "votes" of an unregistered validator in round 2,000,000,000.
    await refused(equivocation(impostor, { round: 2_000_000_000 }), 'EVIDENCE_INVALID', 400, 'a round far beyond the current slot');
    await refused(equivocation(vals[0]!, { round: 31 + 3 }), 'EVIDENCE_INVALID', 400, 'a round just beyond the lead');
    // Round 32 (epoch 1) is plausible in slot 31, but epoch 1 is not known here: nothing to check it against.
    await refused(equivocation(vals[0]!, { round: 32 }), 'EPOCH_UNKNOWN', 503, 'an epoch not announced yet');
    await refused(equivocation(impostor), 'EVIDENCE_INVALID', 400, 'not a committee member');
    await refused(equivocation(vals[0]!, { shard: 3 }), 'EVIDENCE_INVALID', 400, 'no such shard');
    const forged = equivocation(vals[1]!);
    forged.second.signature = forged.second.signature.slice();
    forged.second.signature[10]! ^= 1;
    await refused(forged, 'EVIDENCE_INVALID', 400, 'a bad signature');
    const v = vote(vals[1]!);
    await refused({ first: v, second: v }, 'EVIDENCE_INVALID', 400, 'the same vote twice');
    await refused({ first: vote(vals[1]!), second: vote(vals[2]!, { blockHash: new Uint8Array(32).fill(2) }) }, 'EVIDENCE_INVALID', 400, 'two validators');
    assert.equal((await post('zz')).body.error?.code, 'MALFORMED');
    assert.equal(beacon.received.length, 0);
    assert.equal(await forwarded(), 0, 'qnexus_staking_evidence_forwarded_total');
  });

  it('relays valid evidence once and answers repeats from what the beacon said', async () => {
    const e = equivocation(vals[0]!);
    const first = await post(e);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual(first.body, { result: 'slashed', validator: addrOf(vals[0]!), slashed: '10' });
    assert.equal(beacon.received.length, 1);
    assert.equal(evidenceKey(beacon.received[0]!), evidenceKey(e));
    // The same evidence again (even with the votes re-signed), or other evidence against the slashed
    // validator: what the beacon would answer now, a duplicate, from memory.
    const duplicate = { result: 'duplicate', validator: addrOf(vals[0]!), slashed: '0' };
    assert.deepEqual((await post(e)).body, duplicate);
    assert.deepEqual((await post(equivocation(vals[0]!))).body, duplicate);
    assert.deepEqual((await post(equivocation(vals[0]!, { height: 6 }))).body, duplicate);
    assert.equal(beacon.received.length, 1, 'asked once');
    // Concurrent submissions of new evidence share one request.
    const e1 = equivocation(vals[1]!);
    const both = await Promise.all([post(e1), post(e1)]);
    assert.deepEqual(both.map((r) => r.body.result), ['slashed', 'slashed'], 'both callers get the one answer');
    assert.equal(beacon.received.length, 2);
    assert.equal(await forwarded(), 2);
  });

  it('relays at a bounded rate, whatever clients send; unreachable and passing refusals are not remembered', async () => {
    // A withdrawn validator's stake cannot be slashed: the answer is remembered per evidence only.
    beacon.answer = () => ({ ok: false, code: 'EVIDENCE_EXPIRED', message: 'withdrawn' });
    const codes: string[] = [];
    for (let h = 10; h < 16; h++) codes.push((await post(equivocation(vals[2]!, { height: h }))).body.error!.code);
    assert.deepEqual(codes, ['EVIDENCE_EXPIRED', 'EVIDENCE_EXPIRED', 'EVIDENCE_EXPIRED', 'EVIDENCE_EXPIRED', 'NODE_BUSY', 'NODE_BUSY']);
    assert.equal(beacon.received.length, 4, 'four relays (the burst), then none until the budget refills');
    assert.equal((await post(equivocation(vals[2]!, { height: 10 }))).body.error?.code, 'EVIDENCE_EXPIRED', 'remembered, not relayed');
    assert.equal(beacon.received.length, 4);
  });

  it('reports an unreachable or unready beacon as UNAVAILABLE and asks again next time', async () => {
    const e = equivocation(vals[3]!);
    await beacon.stop(G);
    try {
      const r = await post(e);
      assert.equal(r.status, 503);
      assert.equal(r.body.error?.code, 'UNAVAILABLE');
    } finally {
      await beacon.start(G);
    }
    beacon.answer = () => ({ ok: false, code: 'UNAVAILABLE', message: 'the beacon is stopping' });
    assert.equal((await post(e)).body.error?.code, 'UNAVAILABLE');
    beacon.answer = null;
    assert.equal((await post(e)).body.result, 'slashed');
    assert.equal(beacon.received.length, 2, 'the first attempt never reached it');
  });
});
