import { sendMsg } from '@qnexus/state';
// The explorer: its page (CSP, no external resources) and the list endpoints it polls
// (GET /v1/blocks, /v1/xtransfers, /v1/shards): limits, unknown parameters, newest-first order.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressFromPublicKey, formatAddress, generateKeyPair, getBackend, homeShard, toHex, type KeyPair } from '@qnexus/crypto';
import {
  certificateVoteBody,
  encodeRegistrySnapshot,
  encodeTx,
  openTx,
  registrySnapshotSigningBytes,
  voteSigningBytes,
  txSigningBytes,
  type Certificate,
  type Genesis,
  type RegistrySnapshot,
  type TxBody,
  type TxEnvelope,
  type XferRecord,
} from '@qnexus/types';
import { ChainStore } from '@qnexus/db';
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, type ApiContext } from '../src/api.js';
import { Chain, type Candidate } from '../src/chain.js';
import { EXPLORER_CSP, EXPLORER_HTML } from '../src/explorer.js';
import { ExplorerIndex, RecentXfers } from '../src/explorer-index.js';
import type { Engine } from '../src/engine.js';
import { Logger } from '@qnexus/runtime';
import { createMetrics } from '../src/metrics.js';
import { RegistryView } from '../src/registry-view.js';
import { TxVerifier } from '../src/verifier.js';
import { startTestApi, unitGenesis } from './helpers.js';

const CHAIN = 'unit-explorer';
const b = getBackend('ml-dsa-44');
const vals: KeyPair[] = [1, 2, 3, 4].map((i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(i)));
const beaconKey = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(70));
const users: KeyPair[] = Array.from({ length: 12 }, (_, i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(100 + i)));
const addrOf = (k: KeyPair) => formatAddress(addressFromPublicKey(k.publicKey));
const rawAddr = (k: KeyPair) => addressFromPublicKey(k.publicKey);
const onShard = (s: number) => users.filter((k) => homeShard(rawAddr(k), 2) === s);

const G: Genesis = unitGenesis(vals, beaconKey, { chainId: CHAIN, shardCount: 2, xferTimeoutSlots: 16, accounts: users.map((k) => ({ address: addrOf(k), balance: 1_000_000n })) });

function userTx(kind: 'transfer' | 'xtransfer', from: KeyPair, to: KeyPair, amount: bigint, nonce: bigint): TxEnvelope {
  const body: TxBody = { chainId: CHAIN, nonce, fee: 1n, publicKey: from.publicKey, payload: sendMsg(kind, { to: rawAddr(to), amount }) };
  return openTx(encodeTx({ body, signature: b.sign(from.secretKey, txSigningBytes(body)) }));
}

function keyFor(address: string): KeyPair {
  const k = vals.find((v) => addrOf(v) === address);
  if (!k) throw new Error(`no key for ${address}`);
  return k;
}

/** The engine as the API reads it, with the commit listeners the explorer's index subscribes to. */
function engineStub(): Engine {
  return { evidence: [], included: new Map(), newestKnownHeight: 0, core: { round: 0, step: 'propose' }, commitListeners: [] } as unknown as Engine;
}

describe('node: explorer page and list endpoints', () => {
  const log = new Logger('json', 'error');
  const metrics = createMetrics();
  const verifier = new TxVerifier('ml-dsa-44', metrics);
  const [s0a, s0b] = onShard(0) as [KeyPair, KeyPair];
  const [s1a] = onShard(1) as [KeyPair];
  let dir: string;
  let store: ChainStore;
  let chain: Chain;
  let registry: RegistryView;
  let server: Server;
  let url: string;
  /** Transfer ids in the order of the blocks that recorded them: x1 in block 1, x2 and x3 in block 3. */
  const ids: string[] = [];
  const recent = new RecentXfers();
  let ctx: ApiContext;

  function build(slot: number, txs: TxEnvelope[]): Candidate {
    const proposer = keyFor(chain.proposerFor(slot)!);
    return chain.build(slot, txs, rawAddr(proposer), (m) => b.sign(proposer.secretKey, m));
  }

  function certify(c: Candidate): Certificate {
    const cert: Certificate = { height: c.block.header.height, round: c.block.header.slot + 1, blockHash: c.hash, votes: [] };
    for (const m of chain.committeeFor(0)!.committee.validators) {
      const k = keyFor(m.address);
      cert.votes.push({ validator: rawAddr(k), signature: b.sign(k.secretKey, voteSigningBytes(certificateVoteBody(cert, CHAIN, chain.shard, rawAddr(k)))) });
    }
    return cert;
  }

  async function commit(slot: number, txs: TxEnvelope[]): Promise<void> {
    const c = build(slot, txs);
    const changes = await chain.commit(c, certify(c));
    recent.note(changes.xfers.values());
  }

  before(async function () {
    this.timeout(30_000);
    dir = mkdtempSync(join(tmpdir(), 'qnexus-explorer-'));
    store = await ChainStore.open(dir);
    chain = await Chain.open(store, G, 0, verifier, log);
    const x1 = userTx('xtransfer', s0a, s1a, 10n, 0n);
    const x2 = userTx('xtransfer', s0a, s1a, 20n, 1n);
    const x3 = userTx('xtransfer', s0b, s1a, 30n, 0n);
    await commit(1, [x1]);
    await commit(2, []);
    await commit(4, [x2, x3]);
    await commit(5, []);
    ids.push(x1.hashHex, x2.hashHex, x3.hashHex);
    registry = new RegistryView(G, metrics, log);
    // The explorer's index subscribes to the engine's commits (explorer-routes.ts): the stub has their list.
    ({ server, url, ctx } = await startTestApi({ chain, verifier, metrics, log, xshard: { registry } }, { engine: engineStub() }));
  });

  after(async () => {
    await new Promise<void>((r) => server?.close(() => r()));
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const get = async (path: string) => {
    const r = await fetch(url + path);
    return { status: r.status, body: (await r.json()) as Record<string, any> };
  };
  const badRequest = async (path: string, re: RegExp) => {
    const r = await get(path);
    assert.equal(r.status, 400, `${path}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.code, 'BAD_REQUEST', path);
    assert.match(r.body.error.message, re, path);
  };

  it('GET /explorer (and /explorer/) serves the self-contained page: HTML, CSP by hash, nosniff, nothing external', async () => {
    for (const path of ['/explorer', '/explorer/']) {
      const r = await fetch(url + path);
      assert.equal(r.status, 200, path);
      assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
      const csp = r.headers.get('content-security-policy') ?? '';
      assert.equal(csp, EXPLORER_CSP);
      const html = await r.text();
      assert.equal(html, EXPLORER_HTML);
      assert.match(html, /^<!doctype html>/);
      // The one inline script and style are allowed by their hashes, nothing else.
      const script = /<script>([\s\S]*)<\/script>/.exec(html)![1]!;
      const style = /<style>([\s\S]*)<\/style>/.exec(html)![1]!;
      const sha = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;
      assert.match(csp, new RegExp(`script-src ${sha(script).replace(/[+/]/g, '\\$&')}(;|$)`));
      assert.match(csp, new RegExp(`style-src ${sha(style).replace(/[+/]/g, '\\$&')}(;|$)`));
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /connect-src 'self'/);
      assert.doesNotMatch(csp, /unsafe/);
      // No CDN, no external resource, no markup built from data.
      assert.doesNotMatch(html, /https?:\/\//);
      assert.doesNotMatch(html, /\bsrc=/);
      assert.doesNotMatch(script, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/);
      // The views are built by the script: their test ids are in it.
      for (const id of ['shards-table', 'blocks-table', 'xfers-table', 'validators-table', 'committees', 'node-info', 'chart-tps', 'chart-blocktime', 'chart-lag']) assert.ok(script.includes(`'${id}'`), id);
      assert.ok(html.includes('data-testid="search-input"'));
      for (const api of ['/v1/status', '/v1/shards', '/v1/blocks?limit=', '/v1/xtransfers?limit=', '/v1/validators', '/v1/committee', '/v1/activity', '/v1/search?q=']) assert.ok(script.includes(`'${api}`), api);
    }
    const post = await fetch(`${url}/explorer`, { method: 'POST' });
    assert.equal(post.status, 405);
  });

  it('GET /v1/blocks: newest first, default limit, bounded limit; every block final with its certificate round', async () => {
    const all = await get('/v1/blocks');
    assert.equal(all.status, 200);
    assert.equal(all.body.shard, 0);
    assert.equal(all.body.headHeight, 4);
    // Fewer blocks than the default limit: all of them, genesis last.
    assert.ok(DEFAULT_LIST_LIMIT > 5);
    assert.deepEqual(all.body.blocks.map((x: { height: number }) => x.height), [4, 3, 2, 1, 0]);
    const [b4] = all.body.blocks;
    const latest = (await get('/v1/blocks/latest')).body;
    assert.deepEqual(b4, {
      height: 4,
      hash: latest.hash,
      slot: 5,
      proposer: latest.proposer,
      txCount: 0,
      finalized: true,
      round: 6,
      signers: 2,
    });
    assert.equal(all.body.blocks[1].txCount, 2);
    assert.deepEqual(all.body.blocks[4], { height: 0, hash: (await get('/v1/blocks/0')).body.hash, slot: 0, proposer: null, txCount: 0, finalized: true, round: null, signers: 0 });
    assert.deepEqual((await get('/v1/blocks?limit=2')).body.blocks.map((x: { height: number }) => x.height), [4, 3]);
    assert.deepEqual((await get('/v1/blocks?limit=1')).body.blocks.map((x: { height: number }) => x.height), [4]);
    assert.equal((await get(`/v1/blocks?limit=${MAX_LIST_LIMIT}`)).body.blocks.length, 5);
    for (const bad of ['0', '101', '-1', '1.5', 'abc', '', '0x10', '1e2', '0100']) await badRequest(`/v1/blocks?limit=${encodeURIComponent(bad)}`, /limit must be an integer in \[1, 100\]/);
    await badRequest('/v1/blocks?limit=2&limit=3', /given more than once/);
    await badRequest('/v1/blocks?offset=2', /unknown query parameter "offset"; expected only "limit"/);
    // The single-block route is unchanged.
    assert.equal((await get('/v1/blocks/1')).body.height, 1);
  });

  it('GET /v1/xtransfers: newest first by recording height, with phases; the same from the commit-fed index and from the start-up seed', async () => {
    for (const index of [RecentXfers.fromRecords(chain.state.xferRecords()), recent]) {
      ctx.recentXfers = index;
      const r = await get('/v1/xtransfers');
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.shard, 0);
      const got = r.body.xtransfers as { id: string; kind: string; status: string; role: string; amount: string; phases: { phase: string; height: number }[] }[];
      assert.deepEqual(got.map((x) => x.id).slice(2), [ids[0]], 'block 1 last');
      assert.deepEqual(new Set(got.slice(0, 2).map((x) => x.id)), new Set([ids[1], ids[2]]), 'block 3 first');
      for (const x of got) {
        assert.equal(x.kind, 'transfer');
        assert.equal(x.role, 'source');
        assert.equal(x.status, 'escrowed');
        assert.deepEqual(x.phases.map((p) => p.phase), ['source-prepared']);
        // Exactly what GET /v1/xtransfers/{id} says.
        assert.deepEqual(x, (await get(`/v1/xtransfers/${x.id}`)).body);
      }
      assert.equal(got[2]!.amount, '10');
      assert.equal((await get('/v1/xtransfers?limit=1')).body.xtransfers.length, 1);
      await badRequest('/v1/xtransfers?limit=0', /limit must be an integer in \[1, 100\]/);
      await badRequest('/v1/xtransfers?limit=1000', /limit must be an integer/);
      await badRequest('/v1/xtransfers?status=open', /unknown query parameter "status"/);
    }
    // The single-transfer route is unchanged.
    assert.equal((await get(`/v1/xtransfers/${ids[0]}`)).body.id, ids[0]);
  });

  it('GET /v1/shards: this shard from its chain, the others unknown until a beacon snapshot reports them', async () => {
    const before = await get('/v1/shards');
    assert.equal(before.status, 200);
    assert.equal(before.body.shardCount, 2);
    assert.equal(before.body.snapshotSlot, null);
    assert.equal(typeof before.body.slot, 'number');
    assert.deepEqual(before.body.shards, [
      { shard: 0, height: 4, finalizedHeight: 4, blockHash: toHex(chain.headHash), slot: 5, round: 6, source: 'local' },
      { shard: 1, height: null, finalizedHeight: null, blockHash: null, slot: null, round: null, source: 'unknown' },
    ]);
    const body: RegistrySnapshot = {
      chainId: CHAIN,
      slot: 50,
      epoch: 1,
      validators: [],
      totals: { genesisStake: 0n, stakedIn: 0n, feesIn: 0n, minted: 0n, slashed: 0n, released: 0n, held: 0n },
      heads: [
        { shard: 0, height: 2, blockHash: new Uint8Array(32).fill(7), slot: 2, round: 2 },
        { shard: 1, height: 42, blockHash: new Uint8Array(32).fill(9), slot: 48, round: 49 },
      ],
      peers: [],
    };
    assert.equal(registry.validate(encodeRegistrySnapshot({ body, signature: b.sign(beaconKey.secretKey, registrySnapshotSigningBytes(body)) })), 'accept');
    const after = await get('/v1/shards');
    assert.equal(after.body.snapshotSlot, 50);
    assert.deepEqual(after.body.shards, [
      // Our own shard never comes from the beacon (its report lags our chain).
      { shard: 0, height: 4, finalizedHeight: 4, blockHash: toHex(chain.headHash), slot: 5, round: 6, source: 'local' },
      { shard: 1, height: 42, finalizedHeight: 42, blockHash: '09'.repeat(32), slot: 48, round: 49, source: 'beacon-snapshot' },
    ]);
    await badRequest('/v1/shards?limit=1', /unknown query parameter "limit"; this endpoint takes none/);
  });

  it('GET /v1/search: an address, a block height or hash, a transaction hash that is also a transfer id; bounded and strict', async () => {
    const search = async (q: string) => {
      const r = await get(`/v1/search?q=${encodeURIComponent(q)}`);
      assert.equal(r.status, 200, `${q}: ${JSON.stringify(r.body)}`);
      return r.body as { query: string; shard: number; matches: { kind: string; id: string; label: string }[]; hint: string | null };
    };
    assert.deepEqual((await search(addrOf(s0a))).matches, [{ kind: 'account', id: addrOf(s0a), label: 'account on this shard' }]);
    assert.deepEqual((await search(addrOf(s1a))).matches, [{ kind: 'account', id: addrOf(s1a), label: 'account of shard 1' }]);
    assert.deepEqual((await search('3')).matches, [{ kind: 'block', id: '3', label: 'block 3' }]);
    const none = await search('99');
    assert.deepEqual(none.matches, []);
    assert.match(none.hint!, /shard 0 has no block 99 yet \(head 4\)/);
    // An xtransfer's id is its transaction's hash: both are found; upper case and 0x are accepted.
    for (const q of [ids[0]!, `0x${ids[0]!.toUpperCase()}`, `  ${ids[0]}  `]) {
      const r = await search(q);
      assert.deepEqual(r.matches.map((m) => [m.kind, m.id]), [['tx', ids[0]], ['xtransfer', ids[0]]], q);
      assert.equal(r.matches[0]!.label, 'transaction in block 1');
    }
    const b3 = (await get('/v1/blocks/3')).body.hash as string;
    assert.deepEqual((await search(b3)).matches, [{ kind: 'block', id: b3, label: 'block 3' }]);
    const unknown = await search('ab'.repeat(32));
    assert.deepEqual(unknown.matches, []);
    assert.match(unknown.hint!, /no block, transaction or cross-shard transfer/);
    assert.match((await search('hello')).hint!, /search for an address/);
    await badRequest('/v1/search', /"q" is required/);
    await badRequest('/v1/search?q=', /"q" is required/);
    await badRequest(`/v1/search?q=${'a'.repeat(131)}`, /longer than 130 characters/);
    await badRequest('/v1/search?q=1&q=2', /given more than once/);
    await badRequest('/v1/search?q=1&limit=2', /unknown query parameter "limit"/);
  });

  it('GET /v1/accounts/{address}/txs and /v1/activity: seeded from the stored blocks, then fed by every commit; bounded', async function () {
    this.timeout(20_000);
    // The index was started by the first explorer request; its seed reads the stored blocks in the background.
    const deadline = Date.now() + 10_000;
    let act = (await get('/v1/activity')).body;
    while (act.blocks.length < 4 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      act = (await get('/v1/activity')).body;
    }
    assert.equal(act.slotMs, G.slotMs);
    assert.equal(act.genesisTime, G.genesisTime);
    assert.deepEqual(act.blocks, [
      { height: 1, slot: 1, txCount: 1, finalizedAt: null },
      { height: 2, slot: 2, txCount: 0, finalizedAt: null },
      { height: 3, slot: 4, txCount: 2, finalizedAt: null },
      { height: 4, slot: 5, txCount: 0, finalizedAt: null },
    ]);
    const txsOf = async (k: KeyPair, q = '') => {
      const r = await get(`/v1/accounts/${addrOf(k)}/txs${q}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body as { homeShard: number; complete: boolean; txs: { hash: string; height: number; index: number; kind: string; direction: string }[] };
    };
    const a = await txsOf(s0a);
    assert.equal(a.homeShard, 0);
    assert.equal(a.complete, false);
    assert.deepEqual(a.txs, [
      { hash: ids[1], height: 3, index: 0, kind: 'xtransfer', direction: 'out' },
      { hash: ids[0], height: 1, index: 0, kind: 'xtransfer', direction: 'out' },
    ]);
    const r1 = await txsOf(s1a);
    assert.equal(r1.homeShard, 1);
    assert.deepEqual(r1.txs.map((t) => [t.hash, t.direction]), [[ids[2], 'in'], [ids[1], 'in'], [ids[0], 'in']]);
    assert.deepEqual((await txsOf(s1a, '?limit=1')).txs.map((t) => t.hash), [ids[2]]);
    assert.deepEqual((await txsOf(users.find((k) => !onShard(0).slice(0, 2).includes(k) && k !== s1a)!)).txs, []);

    // A block committed now: the listener the index registered sees it, with the time it was finalized.
    const t = userTx('transfer', s0b, s0a, 5n, 1n);
    const c = build(6, [t]);
    const cert = certify(c);
    const changes = await chain.commit(c, cert);
    const listeners = (ctx.engine as unknown as { commitListeners: ((c: Candidate, cert: Certificate, ch: typeof changes) => void)[] }).commitListeners;
    assert.equal(listeners.length, 1, 'one index per engine');
    const before = Date.now();
    for (const l of listeners) l(c, cert, changes);
    assert.deepEqual((await txsOf(s0a)).txs[0], { hash: t.hashHex, height: 5, index: 0, kind: 'transfer', direction: 'in' });
    assert.deepEqual((await txsOf(s0b)).txs.map((x) => [x.hash, x.direction]), [[t.hashHex, 'out'], [ids[2], 'out']]);
    const last = (await get('/v1/activity?limit=1')).body.blocks;
    assert.equal(last.length, 1);
    assert.equal(last[0].height, 5);
    assert.ok(last[0].finalizedAt >= before);

    await badRequest(`/v1/accounts/${addrOf(s0a)}/txs?limit=26`, /limit must be an integer in \[1, 25\]/);
    await badRequest('/v1/accounts/qnXYZ/txs', /address must be qn/);
    await badRequest('/v1/activity?limit=241', /limit must be an integer in \[1, 240\]/);
    await badRequest('/v1/activity?from=1', /unknown query parameter "from"/);
  });
});

describe('node: RecentXfers (the explorer index of transfer records)', () => {
  const rec = (n: number, preparedHeight: number, decidedHeight = 0): XferRecord => ({
    role: 'source',
    info: { module: 1, op: 1, denom: 'qfc', id: new Uint8Array(32).fill(n), srcShard: 0, dstShard: 1, from: new Uint8Array(20), to: new Uint8Array(20).fill(1), amount: 1n, deadlineSlot: 9, payload: new Uint8Array(0) },
    prepare: preparedHeight ? 'accepted' : 'none',
    reason: '',
    decision: decidedHeight ? 'commit' : 'none',
    preparedHeight,
    decidedHeight,
  });
  const id = (n: number) => toHex(new Uint8Array(32).fill(n));

  it('keeps the newest `max` by recording height (ties: later first), and a known id keeps its place', () => {
    const r = new RecentXfers(3);
    r.note([rec(1, 5), rec(2, 6)]);
    r.note([rec(3, 6)]);
    assert.deepEqual(r.ids(), [id(3), id(2), id(1)]);
    // A decision on #1 changes nothing in the order.
    r.note([rec(1, 5, 9)]);
    assert.deepEqual(r.ids(), [id(3), id(2), id(1)]);
    // A newer one pushes out the oldest; one older than everything kept does not get in.
    r.note([rec(4, 7)]);
    assert.deepEqual(r.ids(), [id(4), id(3), id(2)]);
    r.note([rec(5, 0, 3)]);
    assert.deepEqual(r.ids(), [id(4), id(3), id(2)]);
    assert.equal(r.size, 3);
    assert.deepEqual(r.ids(2), [id(4), id(3)]);
  });

  it('fromRecords seeds the newest `max` from the state in one sort', () => {
    const r = RecentXfers.fromRecords([rec(1, 4), rec(2, 9), rec(3, 0, 7), rec(4, 1), rec(5, 8)], 3);
    assert.deepEqual(r.ids(), [id(2), id(5), id(3)]);
    assert.throws(() => new RecentXfers(0), RangeError);
  });
});

describe('node: ExplorerIndex (recent transactions per account, block activity)', () => {
  const [u0, u1, u2] = users as [KeyPair, KeyPair, KeyPair];
  const tx = (from: KeyPair, to: KeyPair, nonce: bigint) => userTx('transfer', from, to, 1n, nonce);

  it('keeps at most perAccount transactions per account and forgets the least recently active account first', () => {
    const ix = new ExplorerIndex(2, 2, 3);
    ix.noteBlock(1, 1, [tx(u0, u1, 0n)], 1000);
    ix.noteBlock(2, 2, [tx(u0, u1, 1n), tx(u0, u1, 2n)], 2000);
    assert.deepEqual(ix.accountTxs(addrOf(u0)).map((t) => [t.height, t.index]), [[2, 1], [2, 0]]);
    assert.equal(ix.accountCount, 2);
    // u2 is new and the index is full: u0 (active in block 2, before u1 in that block's order) goes.
    ix.noteBlock(3, 3, [tx(u2, u1, 0n)], 3000);
    assert.equal(ix.accountCount, 2);
    assert.deepEqual(ix.accountTxs(addrOf(u0)), []);
    assert.deepEqual(ix.accountTxs(addrOf(u2)).map((t) => t.direction), ['out']);
    // An old height (already noted) is ignored; the activity keeps the newest maxBlocks.
    ix.noteBlock(2, 2, [tx(u2, u1, 5n)]);
    ix.noteBlock(4, 5, [], 4000);
    assert.deepEqual(ix.activity().map((b) => b.height), [2, 3, 4]);
    assert.deepEqual(ix.activity(1), [{ height: 4, slot: 5, txCount: 0, finalizedAt: 4000 }]);
    const self = new ExplorerIndex();
    self.noteBlock(1, 1, [tx(u0, u0, 0n)]);
    assert.deepEqual(self.accountTxs(addrOf(u0)).map((t) => t.direction), ['self']);
    assert.throws(() => new ExplorerIndex(0), RangeError);
  });

  it('backfill puts stored blocks behind what commits noted, bounded by maxBlocks', async () => {
    const ix = new ExplorerIndex(3, 10, 4);
    const stored = new Map<number, TxEnvelope[]>([1, 2, 3, 4, 5, 6].map((h) => [h, [tx(u0, u1, BigInt(h))]]));
    // Block 7 was committed while the seed was still to run.
    const t7 = tx(u0, u2, 7n);
    ix.noteBlock(7, 7, [t7], 7000);
    const asked: number[] = [];
    await ix.backfill(7, async (h) => {
      asked.push(h);
      return stored.has(h) ? { slot: h, envs: stored.get(h)! } : undefined;
    });
    // maxBlocks 4: heights 6, 5, 4 (7 is known), newest first, nothing older read.
    assert.deepEqual(asked, [6, 5, 4]);
    assert.deepEqual(ix.activity().map((b) => [b.height, b.finalizedAt]), [[4, null], [5, null], [6, null], [7, 7000]]);
    assert.deepEqual(ix.accountTxs(addrOf(u0)).map((t) => t.height), [7, 6, 5]);
    assert.deepEqual(ix.accountTxs(addrOf(u1)).map((t) => t.height), [6, 5, 4]);
    assert.deepEqual(ix.accountTxs(addrOf(u2)).map((t) => t.hash), [t7.hashHex]);
  });

  it('backfill does not count twice a block a commit noted while it ran', async () => {
    const ix = new ExplorerIndex();
    const t5 = tx(u0, u1, 5n);
    // The head was 5 when the seed started; block 5's commit listener ran during the seed's first read.
    await ix.backfill(5, async (h) => {
      if (h === 5) ix.noteBlock(5, 5, [t5], 5000);
      return { slot: h, envs: h === 5 ? [t5] : [] };
    });
    assert.deepEqual(ix.activity().map((b) => [b.height, b.finalizedAt]), [[1, null], [2, null], [3, null], [4, null], [5, 5000]]);
    assert.deepEqual(ix.accountTxs(addrOf(u0)).map((t) => t.hash), [t5.hashHex]);
  });
});

describe('node: explorer DeFi views and faucet button (issue 17)', () => {
  const script = /<script>([\s\S]*)<\/script>/.exec(EXPLORER_HTML)![1]!;
  const body = /<body>([\s\S]*)<script>/.exec(EXPLORER_HTML)![1]!;

  it('the header links to the pools and markets views and carries a working faucet form', () => {
    assert.match(body, /<a href="#\/pools" data-testid="nav-pools">Pools<\/a>/);
    assert.match(body, /<a href="#\/markets" data-testid="nav-markets">Markets<\/a>/);
    // The faucet button is enabled now, and opens a form with an address field and a status line.
    const button = /<button[^>]*data-testid="faucet"[^>]*>([^<]*)<\/button>/.exec(body);
    assert.ok(button, 'faucet button');
    assert.doesNotMatch(button[0], /disabled/);
    assert.equal(button[1], 'Faucet');
    for (const id of ['faucet-panel', 'faucet-form', 'faucet-address', 'faucet-submit', 'faucet-status', 'faucet-terms']) assert.ok(body.includes(`data-testid="${id}"`), id);
    // The panel starts hidden; the status is announced politely when it changes.
    assert.match(body, /id="faucet-panel"[^>]*hidden>/);
    assert.match(body, /data-testid="faucet-status" role="status" aria-live="polite"/);
    // The form never navigates (CSP form-action 'none'): its submit is handled by the script, as a POST.
    assert.match(EXPLORER_CSP, /form-action 'none'/);
    assert.match(script, /\$\('faucet-form'\)\.addEventListener\('submit', async \(ev\) => \{\s*ev\.preventDefault\(\);/);
    assert.ok(script.includes("method: 'POST'"));
    assert.ok(script.includes("post('/v1/faucet/' + encodeURIComponent(a))"));
  });

  it('the pool and market views read the module queries and mark what the e2e test reads', () => {
    for (const r of ["case 'pools'", "case 'pool'", "case 'markets'", "case 'market'"]) assert.ok(script.includes(r), r);
    for (const api of ['/v1/amm/list', '/v1/amm/pools/', '/v1/dex/list', '/v1/dex/markets/', '/v1/dex/book/', '/v1/dex/trades/', '/v1/txs/', '/v1/faucet/status']) assert.ok(script.includes(`'${api}'`), api);
    for (const id of ['pools-table', 'pool-row', 'pool-reserves', 'pool-chart', 'pool-twap', 'markets-table', 'market-row', 'market-depth', 'depth-row', 'market-trades', 'trade-row', 'market-last-price', 'market-paused', 'account-balances', 'balance-row', 'faucet-tx-link', 'faucet-error-code']) {
      assert.ok(script.includes(`'${id}'`), id);
    }
    // Bars are SVG rects (inline style attributes would break the CSP); still no markup from data.
    assert.doesNotMatch(script, /setAttribute\('style'|\.style\./);
    assert.doesNotMatch(script, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/);
    assert.doesNotMatch(EXPLORER_HTML, /https?:\/\//);
  });
});
