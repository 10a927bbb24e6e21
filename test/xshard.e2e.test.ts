// Cross-shard transfers by two-phase commit through the beacon, on a real
// devnet: 1 beacon + 2 shards × 4 validators, every one its own OS process.
import assert from 'node:assert/strict';
import { createP2PNode, type P2PNode } from '@qnexus/p2p';
import { fromHex, generateKeyPair, getBackend, homeShard, parseAddress } from '@qnexus/crypto';
import {
  beaconTopics,
  decodeXAck,
  encodeBeaconRequest,
  encodeTx,
  encodeTxBatch,
  peerBindingSigningBytes,
  shardXProtocol,
  txSigningBytes,
  type TxBody,
  type XAck, encodeXDecision } from '@qnexus/types';
import { ApiError, type QnexusClient } from '@qnexus/sdk';
import {
  beaconClient,
  freshAddressOn,
  pool,
  shardClient,
  shardNodes,
  signXTransfer,
  sleep,
  startTestNet,
  supplyAcrossShards,
  waitAllFinalized,
  waitFor,
  waitXferDone,
  type TestAccount,
  type TestNet,
  type XferDone,
} from './helpers.js';

const SLOT_MS = 1000;
/**
 * Short enough that a stalled destination aborts within the test, long enough for a healthy
 * round trip of the last of 200 transfers sent at once on a loaded 2-core CI host (at 20 slots
 * CI once saw one of them reach its destination after the deadline and abort, correctly; at
 * 30 slots it happened again on a host with 4–13 % CPU steal and a benchmark running beside it).
 */
const TIMEOUT_SLOTS = 45;

interface Sent {
  id: string;
  from: TestAccount;
  to: string;
  amount: bigint;
  fee: bigint;
}

/**
 * Sign transfers from each account with consecutive nonces and submit them, in order, to one
 * node of the sender's shard: the nonce is read from the node that receives the transactions,
 * so a peer lagging a block behind cannot hand out a used nonce.
 */
async function sendMany(net: TestNet, plan: { from: TestAccount; to: string; amount: bigint }[]): Promise<Sent[]> {
  const bySender = new Map<string, { from: TestAccount; to: string; amount: bigint; i: number }[]>();
  plan.forEach((p, i) => bySender.set(p.from.address, [...(bySender.get(p.from.address) ?? []), { ...p, i }]));
  const out: Sent[] = new Array(plan.length);
  await pool([...bySender.values()], 16, async (list, j) => {
    const nodes = shardNodes(net, list[0]!.from.shard, { running: true });
    const c = net.devnet.client(nodes[j % nodes.length]!);
    let nonce = BigInt((await c.account(list[0]!.from.address)).pendingNonce);
    for (const p of list) {
      const tx = signXTransfer(net, p.from, p.to, p.amount, nonce++);
      await c.submitTx(tx.raw, { binary: true });
      out[p.i] = { id: tx.hash, from: p.from, to: p.to, amount: p.amount, fee: 1n };
    }
  });
  return out;
}

async function balances(net: TestNet, addrs: { address: string; shard: number }[]): Promise<Map<string, bigint>> {
  const out = new Map<string, bigint>();
  for (const a of addrs) out.set(a.address, BigInt((await shardClient(net, a.shard).account(a.address)).balance));
  return out;
}

/** What every balance must be after the transfers settle with the decisions the network reports. */
function expectedBalances(before: Map<string, bigint>, sent: Sent[], done: XferDone[]): Map<string, bigint> {
  const exp = new Map(before);
  const decision = new Map(done.map((d) => [d.id, d.decision]));
  for (const s of sent) {
    exp.set(s.from.address, exp.get(s.from.address)! - s.fee - (decision.get(s.id) === 'commit' ? s.amount : 0n));
    if (decision.get(s.id) === 'commit') exp.set(s.to, (exp.get(s.to) ?? 0n) + s.amount);
  }
  return exp;
}

async function assertBalances(net: TestNet, exp: Map<string, bigint>): Promise<void> {
  const who = [...exp.keys()].map((address) => ({ address, shard: homeShard(parseAddress(address), net.shardCount) }));
  const got = await balances(net, who);
  for (const [a, v] of exp) assert.equal(got.get(a), v, `balance of ${a}`);
}

/** Poll the per-shard supply identity while `work` runs; every sample must hold. */
async function watchingSupply<T>(net: TestNet, work: () => Promise<T>): Promise<{ result: T; samples: number }> {
  let stop = false;
  let samples = 0;
  const problems: string[] = [];
  const watcher = (async () => {
    while (!stop) {
      try {
        const s = await supplyAcrossShards(net);
        samples++;
        if (!s.perShardOk) problems.push(...s.problems);
      } catch {
        // a node restarting: skip this sample
      }
      await sleep(300);
    }
  })();
  try {
    const result = await work();
    return { result, samples };
  } finally {
    stop = true;
    await watcher;
    assert.deepEqual(problems, [], 'supply identity must hold at every sampled finalized point');
  }
}

async function rawTxOfKind(c: QnexusClient, height: number, kind: string, id: string): Promise<Uint8Array> {
  const b = await c.block(height);
  for (const h of b.txs) {
    const t = (await c.tx(h)) as unknown as { kind: string; transfer?: string; raw: string };
    if (t.kind === kind && t.transfer === id) return fromHex(t.raw);
  }
  throw new Error(`no ${kind} for ${id} in block ${height}`);
}

async function ask(p2p: P2PNode, peer: string, protocol: string, req: Uint8Array): Promise<XAck> {
  let ack: XAck | null = null;
  for await (const f of p2p.request(peer, protocol, req, { timeoutMs: 10_000, maxResponseFrameBytes: 4096, maxFrames: 1 })) ack = decodeXAck(f);
  if (!ack) throw new Error('no answer');
  return ack;
}

async function expectCode(p: Promise<unknown>, codes: string[]): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof ApiError && codes.includes(e.code));
}

async function metricValue(c: QnexusClient, name: string, label: string): Promise<number> {
  const text = await (await fetch(`${c.baseUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name) && line.includes(label)) sum += Number(line.split(' ').pop());
  return sum;
}

describe('cross-shard transfers: 2 shards × 4 validators + beacon (real processes)', function () {
  let net: TestNet;
  const all: Sent[] = [];

  before(async function () {
    this.timeout(180_000);
    net = await startTestNet({ shards: 2, validators: 4, fullNodes: 0, accounts: 8, slotMs: SLOT_MS, xferTimeoutSlots: TIMEOUT_SLOTS });
    for (let k = 0; k < 2; k++) await waitAllFinalized(net, shardNodes(net, k), 2, 90_000);
  });

  after(async function () {
    this.timeout(60_000);
    await net?.cleanup();
  });

  it('200 transfers in both directions all commit; balances and the supply identity hold throughout', async function () {
    this.timeout(400_000);
    const [s0, s1] = net.accountsByShard as [TestAccount[], TestAccount[]];
    const plan: { from: TestAccount; to: string; amount: bigint }[] = [];
    for (let i = 0; i < 200; i++) {
      const fromShard = i % 2 === 0 ? s0 : s1;
      const toShard = i % 2 === 0 ? s1 : s0;
      plan.push({ from: fromShard[(i >> 1) % fromShard.length]!, to: toShard[(i * 7) % toShard.length]!.address, amount: 1000n + BigInt(i) });
    }
    const before = await balances(net, net.accounts);
    const { result: done, samples } = await watchingSupply(net, async () => {
      const sent = await sendMany(net, plan);
      all.push(...sent);
      return { sent, done: await pool(sent, 32, (s) => waitXferDone(net, s.id, 300_000)) };
    });
    assert.ok(samples >= 3, `sampled the supply ${samples} times`);
    assert.equal(done.done.length, 200);
    for (const d of done.done) assert.equal(d.decision, 'commit', `transfer ${d.id}: ${JSON.stringify(d.beacon.phases)}`);
    // The beacon's history and the shards' records agree on heights.
    const d0 = done.done[0]!;
    assert.deepEqual(
      d0.beacon.phases.map((p) => p.phase),
      ['source-prepared', 'destination-prepared', 'decided', 'source-applied', 'destination-applied'],
    );
    await assertBalances(net, expectedBalances(before, done.sent, done.done));
    const s = await waitFor('settled supply', () => supplyAcrossShards(net), (x) => x.globalOk, 30_000);
    assert.equal(s.sum.escrow, 0n);
    // Settled: everything exported went to another shard (imported there) or to the beacon (proposer fees).
    assert.ok(s.sum.imported > 0n && s.settled);
  });

  it('a forged decision, replayed entries and outsiders are rejected; the honest flow is unaffected', async function () {
    this.timeout(180_000);
    const sample = all.find((s) => s.from.shard === 0)!;
    const src = shardClient(net, 0);
    const dst = shardClient(net, 1);
    const rec = await dst.xtransfer(sample.id);
    const prepH = rec.phases.find((p) => p.phase === 'destination-prepared')!.height;
    const decH = rec.phases.find((p) => p.phase === 'destination-applied')!.height;
    // Replays of the real, beacon-signed entries: refused by state, nothing changes.
    const decision = await rawTxOfKind(dst, decH, 'xdecision', sample.id);
    const prepare = await rawTxOfKind(dst, prepH, 'xprepare', sample.id);
    const toBefore = BigInt((await dst.account(sample.to)).balance);
    await expectCode(dst.submitTx(decision, { binary: true }), ['XS_ALREADY_DECIDED']);
    await expectCode(src.submitTx(decision, { binary: true }), ['XS_ALREADY_DECIDED']);
    await expectCode(dst.submitTx(prepare, { binary: true }), ['XS_ALREADY_DECIDED', 'XS_DUPLICATE']);

    // A forged COMMIT crediting an attacker: signed by another key, with or without the beacon's public key in it.
    const attacker = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(77));
    const victim = freshAddressOn(net, 1, 91);
    const forgedBody = (publicKey: Uint8Array): TxBody => ({
      chainId: net.chainId,
      nonce: 0n,
      fee: 0n,
      publicKey,
      payload: encodeXDecision(
        { module: 1, op: 1, denom: 'qfc', id: new Uint8Array(32).fill(9), srcShard: 0, dstShard: 1, from: parseAddress(sample.from.address), to: parseAddress(victim), amount: 1_000_000n, deadlineSlot: 1e9, payload: new Uint8Array(0) },
        true,
      ),
    });
    const forge = (pk: Uint8Array) => {
      const body = forgedBody(pk);
      return encodeTx({ body, signature: getBackend('ml-dsa-44').sign(attacker.secretKey, txSigningBytes(body)) });
    };
    const beaconPk = net.devnet.genesis.beacon.publicKey;
    await expectCode(dst.submitTx(forge(beaconPk), { binary: true }), ['XS_UNAUTHORIZED']);
    await expectCode(dst.submitTx(forge(attacker.publicKey), { binary: true }), ['XS_UNAUTHORIZED']);

    // The same over the 2PC streams, from a foreign libp2p peer.
    const outsider = await createP2PNode({
      peerKeyPath: `${net.devnet.dir}/outsider.key`,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: [],
      maxMessageBytes: 1 << 20,
      log: () => undefined,
    });
    try {
      const dstNode = net.devnet.manifest.processes.find((p) => p.shard === 1 && p.role === 'validator')!;
      const beacon = net.devnet.manifest.beacon!;
      await outsider.dial(dstNode.multiaddrs![0]!);
      await outsider.dial(beacon.multiaddrs![0]!);
      const ack = await ask(outsider, dstNode.peerId!, shardXProtocol(net.chainId, 1), encodeTxBatch([forge(beaconPk)]));
      assert.equal(ack.ok, false);
      assert.equal(ack.code, 'XS_UNAUTHORIZED');
      // An outsider's own key is not in any committee.
      const binding = { chainId: net.chainId, shard: 0, publicKey: attacker.publicKey, peerId: outsider.peerId };
      const hello = encodeBeaconRequest({ type: 'hello', binding: { binding, signature: getBackend('ml-dsa-44').sign(attacker.secretKey, peerBindingSigningBytes(binding)) } });
      const a1 = await ask(outsider, beacon.peerId!, beaconTopics(net.chainId).protocol, hello);
      assert.deepEqual([a1.ok, a1.code], [false, 'XS_UNAUTHORIZED']);
      // A committee member's key bound to another peer id: replaying its binding from here does not work.
      const member = net.devnet.genesis.validators[0]!;
      const stolen = { chainId: net.chainId, shard: 0, publicKey: member.publicKey, peerId: dstNode.peerId! };
      const a2 = await ask(outsider, beacon.peerId!, beaconTopics(net.chainId).protocol, encodeBeaconRequest({ type: 'hello', binding: { binding: stolen, signature: new Uint8Array(2420) } }));
      assert.deepEqual([a2.ok, a2.code], [false, 'XS_UNAUTHORIZED']);
    } finally {
      await outsider.stop();
    }
    assert.equal(BigInt((await dst.account(victim)).balance), 0n, 'the forged commit credited nothing');
    assert.equal(BigInt((await dst.account(sample.to)).balance), toBefore, 'replays changed nothing');
    assert.ok((await metricValue(beaconClient(net), 'qnexus_beacon_2pc_rejected_total', 'XS_UNAUTHORIZED')) >= 2);
    assert.ok((await metricValue(net.devnet.client(net.devnet.manifest.processes.find((p) => p.shard === 1 && p.role === 'validator')!.name), 'qnexus_xshard_beacon_entries_total', 'XS_UNAUTHORIZED')) >= 1);

    // Honest traffic still flows.
    const [ok] = await sendMany(net, [{ from: net.accountsByShard[1]![0]!, to: net.accountsByShard[0]![1]!.address, amount: 5n }]);
    assert.equal((await waitXferDone(net, ok!.id, 60_000)).decision, 'commit');
    all.push(ok!);
  });

  it('beacon SIGKILLed with transfers in flight, restarted: it catches up within 10 s, each transfer ends once, and none both sides prepared in time aborts', async function () {
    this.timeout(300_000);
    const [s0, s1] = net.accountsByShard as [TestAccount[], TestAccount[]];
    const mk = (n: number, salt: number) =>
      Array.from({ length: n }, (_, i) => (i % 2 === 0 ? { from: s0[i % s0.length]!, to: s1[(i + salt) % s1.length]!.address } : { from: s1[i % s1.length]!, to: s0[(i + salt) % s0.length]!.address })).map((p, i) => ({ ...p, amount: 500n + BigInt(i) }));
    const people = net.accounts;
    const before = await balances(net, people);
    const { result } = await watchingSupply(net, async () => {
      const a = await sendMany(net, mk(20, 1));
      let b: Sent[] = [];
      await net.devnet.kill('beacon', 'SIGKILL');
      try {
        // While the beacon is down, transfers are escrowed (prepared) and none can be decided.
        b = await sendMany(net, mk(20, 3));
        const escrowed = await pool(b, 8, (s) => shardClient(net, s.from.shard).waitForXTransfer(s.id, { until: 'prepared', timeoutMs: 60_000 }));
        for (const x of escrowed) {
          assert.equal(x.status, 'escrowed');
          assert.equal(x.decision, null);
        }
        await sleep(3 * SLOT_MS);
      } finally {
        await net.devnet.restart('beacon');
      }
      // Transfers keep flowing while the restarted beacon catches up with everything that
      // happened while it was down (every open record is re-reported to it at once).
      const flowing = sendMany(net, mk(20, 5));
      // Its lag behind the wall clock: within 10 s of its start (its API is up once restart()
      // returns), its newest durable tick is at most one slot behind, and was processed less
      // than a slot late (group commit: ticks never queue behind 2PC traffic).
      const beacon = beaconClient(net);
      const startedAt = Date.now();
      const late: string[] = [];
      let samples = 0;
      while (Date.now() - startedAt < 25_000) {
        const st = await beacon.beaconStatus().catch(() => null);
        const t = Date.now() - startedAt;
        if (st && t >= 10_000) {
          samples++;
          if (st.processedSlot < st.slot - 1 || st.slotLagMs >= SLOT_MS) late.push(`${(t / 1000).toFixed(1)} s: slot ${st.slot}, processed ${st.processedSlot}, lag ${st.slotLagMs} ms`);
        }
        await sleep(500);
      }
      assert.ok(samples >= 10, `only ${samples} status samples`);
      assert.deepEqual(late, [], 'the beacon lagged by a slot or more 10 s after its restart');
      const sent = [...a, ...b, ...(await flowing)];
      return { sent, done: await pool(sent, 16, (s) => waitXferDone(net, s.id, 180_000)) };
    });
    // Every transfer reached a decision applied on both sides; balances say each was applied once.
    assert.equal(result.done.length, 60);
    // The deadline rule: whatever crashed, a transfer whose destination prepared commits.
    const beacon = beaconClient(net);
    for (const s of result.sent) {
      const b = await beacon.beaconXTransfer(s.id);
      if (b.phases.some((p) => p.phase === 'destination-prepared')) assert.equal(b.decision, 'commit', `transfer ${s.id} aborted although its destination prepared`);
      else assert.equal(b.decision, 'abort');
    }
    await assertBalances(net, expectedBalances(before, result.sent, result.done));
    all.push(...result.sent);
    await waitFor('settled supply', () => supplyAcrossShards(net), (x) => x.globalOk, 30_000);
  });

  it('destination loses 2 of 4 validators: nothing is decided until it recovers, then its late refusal aborts them (refunded)', async function () {
    this.timeout(400_000);
    const [s0, s1] = net.accountsByShard as [TestAccount[], TestAccount[]];
    const down = shardNodes(net, 1).slice(0, 2);
    const before = await balances(net, net.accounts);
    const { result } = await watchingSupply(net, async () => {
      for (const n of down) await net.devnet.kill(n, 'SIGKILL');
      let restarted = false;
      const restart = async () => {
        if (!restarted) for (const n of down) await net.devnet.restart(n);
        restarted = true;
      };
      try {
        const sent = await sendMany(
          net,
          Array.from({ length: 10 }, (_, i) => ({ from: s0[i % s0.length]!, to: s1[(i + 2) % s1.length]!.address, amount: 700n + BigInt(i) })),
        );
        // The deadline rule: the outcome is the destination's finalized answer, and a shard
        // without quorum finalizes none, so past every deadline the beacon has decided nothing
        // (it never presumes an abort from its own clock) and the amounts stay escrowed.
        const escrowed = await pool(sent, 8, (s) => shardClient(net, 0).waitForXTransfer(s.id, { until: 'prepared', timeoutMs: 60_000 }));
        const lastDeadline = Math.max(...escrowed.map((x) => x.deadlineSlot!));
        const beacon = beaconClient(net);
        await waitFor('every deadline to pass', async () => (await beacon.beaconStatus()).slot, (slot) => slot > lastDeadline + 2, (TIMEOUT_SLOTS + 30) * SLOT_MS);
        for (const s of sent) {
          const b = await beacon.beaconXTransfer(s.id);
          assert.equal(b.decision, null, `transfer ${s.id} decided while its destination had no quorum`);
          assert.equal(b.outcomeFinal, false);
          assert.equal((await shardClient(net, 0).xtransfer(s.id)).status, 'escrowed');
        }
        for (const s of sent) assert.equal(BigInt((await shardClient(net, 1).account(s.to)).balance), before.get(s.to), 'no credit without a commit');
        await restart();
        // Recovered, its first blocks are past the deadlines: they record refusals, which abort.
        const done = await pool(sent, 8, (s) => waitXferDone(net, s.id, 180_000));
        for (const d of done) assert.equal(d.decision, 'abort');
        for (const s of sent) {
          const b = await beacon.beaconXTransfer(s.id);
          assert.equal(b.phases.find((p) => p.phase === 'destination-refused')?.reason, 'XS_DEADLINE_PASSED');
          assert.equal(b.outcomeFinal, true);
          assert.equal((await shardClient(net, 1).xtransfer(s.id)).outcome, 'abort');
        }
        // Recovered: new transfers to the shard commit again.
        const again = await sendMany(net, [{ from: s0[0]!, to: s1[1]!.address, amount: 42n }]);
        const againDone = await waitXferDone(net, again[0]!.id, 120_000);
        assert.equal(againDone.decision, 'commit');
        return { sent: [...sent, ...again], done: [...done, againDone] };
      } finally {
        await restart();
      }
    });
    await assertBalances(net, expectedBalances(before, result.sent, result.done));
    await waitFor('settled supply', () => supplyAcrossShards(net), (x) => x.globalOk, 30_000);
  });
});
