// /metrics on every process: promtool accepts it, and the key metrics move while the devnet runs.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { freshAddressOn, sleep, startTestNet, transfer, waitFor, type TestNet } from './helpers.js';

const REQUIRE_TOOLS = process.env.QNEXUS_REQUIRE_TOOLS === '1';
const HAVE_PROMTOOL = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;

/** Run `promtool check metrics` on a scrape; resolves to its exit code and output. */
function promtoolCheck(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    p.stdout.on('data', (d: Buffer) => (output += d.toString()));
    p.stderr.on('data', (d: Buffer) => (output += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, output }));
    p.stdin.end(text);
  });
}

type Samples = Map<string, number>;

/** Parse the text format into `name{labels}` → value (comments skipped). */
function parse(text: string): Samples {
  const out: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** Sum of the samples of a metric whose labels contain every `with` fragment. */
function sum(s: Samples, name: string, ...with_: string[]): number {
  let t = 0;
  for (const [k, v] of s) {
    const base = k.includes('{') ? k.slice(0, k.indexOf('{')) : k;
    if (base === name && with_.every((w) => k.includes(w))) t += v;
  }
  return t;
}

async function scrape(url: string): Promise<string> {
  const r = await fetch(`${url}/metrics`);
  assert.equal(r.status, 200, `${url}/metrics answered ${r.status}`);
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain/);
  return r.text();
}

describe('metrics: promtool accepts every /metrics; key metrics move (2 shards × 4 validators + beacon)', function () {
  let net: TestNet;

  before(async function () {
    this.timeout(120_000);
    if (!HAVE_PROMTOOL) {
      const msg = 'promtool is not installed (Debian package prometheus): the promtool checks of this suite are skipped';
      if (REQUIRE_TOOLS) throw new Error(`${msg}; QNEXUS_REQUIRE_TOOLS=1 requires it`);
      console.warn(`\n  !!!!!!!! ${msg} !!!!!!!!\n`);
    }
    net = await startTestNet({ shards: 2, validators: 4, fullNodes: 0, accounts: 2 });
  });

  after(async function () {
    this.timeout(60_000);
    await net?.cleanup();
  });

  it('every process serves /metrics that promtool accepts, and the key metrics move', async function () {
    this.timeout(90_000);
    const procs = net.devnet.manifest.processes;
    assert.ok(procs.some((p) => p.role === 'beacon'), 'the beacon is among the processes');
    const nodes = procs.filter((p) => p.role !== 'beacon');
    const beacon = procs.find((p) => p.role === 'beacon')!;

    // Wait until every shard finalizes, then take the first scrape.
    for (const p of nodes) await waitFor(`${p.name} finalizes`, () => net.devnet.client(p.name).status(), (s) => s.finalizedHeight >= 1, 30_000);
    const first = new Map<string, Samples>();
    for (const p of procs) first.set(p.name, parse(await scrape(p.apiUrl)));

    // A few transfers on every shard.
    let sent = 0;
    for (let k = 0; k < net.shardCount; k++) {
      const from = net.accountsByShard[k]![0]!;
      const c = net.devnet.client(nodes.find((p) => p.shard === k)!.name);
      const to = freshAddressOn(net, k, 200 + k);
      let nonce = BigInt((await c.account(from.address)).pendingNonce);
      for (let i = 0; i < 3; i++, nonce++) {
        await c.submitTx(transfer(net, from, to, 10n, nonce).raw);
        sent++;
      }
    }
    // A few slots.
    const slotMs = net.devnet.genesis.slotMs;
    await sleep(4 * slotMs);
    const txsOf = async (shard: number) => sum(parse(await scrape(nodes.find((p) => p.shard === shard)!.apiUrl)), 'qnexus_chain_finalized_txs_total');
    for (let k = 0; k < net.shardCount; k++) {
      const before = sum(first.get(nodes.find((p) => p.shard === k)!.name)!, 'qnexus_chain_finalized_txs_total');
      await waitFor(`shard ${k} finalizes the transfers`, () => txsOf(k), (n) => n >= before + 3, 30_000);
    }

    const texts = new Map<string, string>();
    for (const p of procs) texts.set(p.name, await scrape(p.apiUrl));

    // promtool on each process's output.
    if (HAVE_PROMTOOL) {
      for (const [name, text] of texts) {
        const r = await promtoolCheck(text);
        assert.equal(r.code, 0, `promtool check metrics on ${name}:\n${r.output}`);
        assert.equal(r.output.trim(), '', `promtool has remarks on ${name}:\n${r.output}`);
      }
    }

    for (const p of nodes) {
      const a = first.get(p.name)!;
      const b = parse(texts.get(p.name)!);
      const at = (s: Samples, n: string, ...w: string[]) => sum(s, n, ...w);
      assert.ok(at(b, 'qnexus_chain_finalized_height') > at(a, 'qnexus_chain_finalized_height'), `${p.name}: finalized height moves`);
      assert.ok(at(b, 'qnexus_chain_finalized_txs_total') >= at(a, 'qnexus_chain_finalized_txs_total') + 3, `${p.name}: finalized tx counter moves`);
      assert.ok(at(b, 'qnexus_p2p_gossip_messages_total', 'result="accept"') > at(a, 'qnexus_p2p_gossip_messages_total', 'result="accept"'), `${p.name}: gossip accepts move`);
      assert.ok(at(b, 'qnexus_p2p_peers') >= 3, `${p.name}: has peers`);
      assert.ok(at(b, 'qnexus_consensus_finality_lag_seconds_count') > at(a, 'qnexus_consensus_finality_lag_seconds_count'), `${p.name}: finality lag observed`);
      assert.ok(b.has('qnexus_chain_slots_missed_total'), `${p.name}: slots missed exported`);
      assert.ok(b.has('qnexus_sync_active'), `${p.name}: sync progress exported`);
      assert.ok(at(b, 'qnexus_process_cpu_seconds_total') > 0, `${p.name}: process metrics`);
    }
    // The transfers reached the other nodes of their shard from the node they were submitted to: straight
    // over its direct streams, or by gossip when it could not be sure of reaching every peer that way.
    for (let k = 0; k < net.shardCount; k++) {
      const shardNodes = nodes.filter((p) => p.shard === k).map((p) => parse(texts.get(p.name)!));
      const relayed = shardNodes.reduce((t, s) => t + sum(s, 'qnexus_mempool_admission_total', 'source="direct"', 'result="accepted"') + sum(s, 'qnexus_mempool_admission_total', 'source="gossip"', 'result="accepted"'), 0);
      assert.ok(relayed >= 3, `shard ${k}: transactions admitted from peers (${relayed})`);
      const batches = shardNodes.reduce((t, s) => t + sum(s, 'qnexus_tx_batches_sent_total'), 0);
      assert.ok(batches >= 1, `shard ${k}: the submitting node sent its batches (${batches})`);
    }
    const ba = first.get(beacon.name)!;
    const bb = parse(texts.get(beacon.name)!);
    assert.ok(sum(bb, 'qnexus_beacon_slot') > sum(ba, 'qnexus_beacon_slot'), 'beacon: slot moves');
    assert.ok(sum(bb, 'qnexus_beacon_p2p_peers') >= 1, 'beacon: has peers');
    assert.ok(sum(bb, 'qnexus_beacon_p2p_gossip_messages_total') >= sum(ba, 'qnexus_beacon_p2p_gossip_messages_total'), 'beacon: gossip counters exported');
    assert.ok(sum(bb, 'qnexus_process_resident_memory_bytes') > 0, 'beacon: process metrics');
    assert.ok(sent >= 3 * net.shardCount);
  });
});
