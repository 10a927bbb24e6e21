import { strict as assert } from 'node:assert';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as netCreateServer, type AddressInfo } from 'node:net';
import { addressFromPublicKey, bytesEqual, formatAddress, fromHex, generateKeyPair, getBackend, homeShard, parseAddress, toHex, SCHEMES } from '@qnexus/crypto';
import { QnexusError, openTx } from '@qnexus/types';
import { ApiError, QnexusClient, buildStake, buildTransfer, buildUnstake, buildXTransfer, signTx, transferAndWait, xtransferAndWait, type TxInfo } from '../src/index.js';
import { app } from '@qnexus/app';
import type { TxEnvelope } from '@qnexus/types';

/** The decoded message of a bank transfer (the SDK builds it through the bank module's client side). */
const msgOf = (env: TxEnvelope) => app.decode(env).p as { to: Uint8Array; amount: bigint };

const RECIPIENT = 'qn' + 'ab'.repeat(20);

describe('sdk: buildTransfer', () => {
  for (const scheme of SCHEMES) {
    it(`round-trips through openTx and verifies (${scheme})`, () => {
      const key = generateKeyPair(scheme);
      const built = buildTransfer({ key, chainId: 'qnexus-test', to: RECIPIENT, amount: 12345n, fee: 7n, nonce: 3n });
      const env = openTx(built.raw);
      assert.equal(env.hashHex, built.hash);
      assert.equal(env.fromStr, formatAddress(addressFromPublicKey(key.publicKey)));
      assert.equal(built.from, env.fromStr);
      const body = env.tx.body;
      assert.equal(body.chainId, 'qnexus-test');
      assert.equal(body.nonce, 3n);
      assert.equal(body.fee, 7n);
      assert.deepEqual(body.publicKey, key.publicKey);
      assert.equal(app.kindName(env), 'transfer');
      assert.equal(formatAddress(msgOf(env).to), RECIPIENT);
      assert.equal(msgOf(env).amount, 12345n);
      assert.equal(getBackend(scheme).verify(key.publicKey, env.signBytes, env.tx.signature), true);
      // a signature for another chain does not verify here
      const other = openTx(buildTransfer({ key, chainId: 'qnexus-other', to: RECIPIENT, amount: 12345n, fee: 7n, nonce: 3n }).raw);
      assert.equal(getBackend(scheme).verify(key.publicKey, env.signBytes, other.tx.signature), false);
    });
  }

  it('accepts u64 extremes and refuses out-of-range values and bad addresses', () => {
    const key = generateKeyPair('ml-dsa-44');
    const max = 0xffff_ffff_ffff_ffffn;
    const env = openTx(buildTransfer({ key, chainId: 'c', to: RECIPIENT, amount: max, fee: 0n, nonce: max }).raw);
    assert.equal(msgOf(env).amount, max);
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        assert.ok(e instanceof QnexusError);
        return e.code;
      }
      assert.fail('expected an error');
    };
    const base = { key, chainId: 'c', to: RECIPIENT, amount: 1n, fee: 1n, nonce: 0n };
    assert.equal(code(() => buildTransfer({ ...base, amount: max + 1n })), 'TX_BAD_AMOUNT');
    assert.equal(code(() => buildTransfer({ ...base, fee: -1n })), 'TX_BAD_AMOUNT');
    assert.equal(code(() => buildTransfer({ ...base, nonce: -1n })), 'TX_MALFORMED');
    assert.equal(code(() => buildTransfer({ ...base, to: 'qn1234' })), 'TX_MALFORMED');
    assert.equal(code(() => buildTransfer({ ...base, to: RECIPIENT.toUpperCase() })), 'TX_MALFORMED');
    assert.equal(code(() => buildTransfer({ ...base, chainId: 'Bad Chain' })), 'TX_MALFORMED');
  });
});

describe('sdk: keyless signing (the sender named by address)', () => {
  it('keyless: true puts the 20-byte address in the body instead of the key; the same key verifies it', () => {
    const key = generateKeyPair('ml-dsa-44');
    const p = { key, chainId: 'qnexus-test', to: RECIPIENT, amount: 5n, fee: 1n, nonce: 2n };
    const keyed = buildTransfer(p);
    const keyless = buildTransfer({ ...p, keyless: true });
    assert.equal(keyed.keyless, false);
    assert.equal(keyless.keyless, true);
    const env = openTx(keyless.raw);
    assert.equal(env.publicKey, null);
    const body = env.tx.body;
    assert.ok(body.publicKey === undefined && bytesEqual(body.address, addressFromPublicKey(key.publicKey)));
    assert.equal(env.fromStr, keyed.from);
    assert.equal(keyless.from, keyed.from);
    assert.equal(env.hashHex, keyless.hash);
    assert.notEqual(keyless.hash, keyed.hash, 'two forms, two transactions');
    assert.equal(getBackend('ml-dsa-44').verify(key.publicKey, env.signBytes, env.tx.signature), true);
    assert.equal(keyed.raw.length - keyless.raw.length, 1312 - 20);
    assert.deepEqual(openTx(keyed.raw).publicKey, key.publicKey, 'the default carries the key');
  });

  it('every builder takes the option: xtransfer, stake (the consent signature is unchanged), unstake, generic signTx', () => {
    const key = generateKeyPair('ml-dsa-44');
    const common = { key, chainId: 'qnexus-test', fee: 1n, nonce: 1n, keyless: true };
    const built = [
      buildXTransfer({ ...common, to: RECIPIENT, amount: 5n }),
      buildStake({ ...common, amount: 10n }),
      buildUnstake({ ...common, validator: RECIPIENT }),
      signTx(common, { kind: 0x0101, msg: new Uint8Array(28) }),
    ];
    for (const b of built) {
      const env = openTx(b.raw);
      assert.equal(env.publicKey, null);
      assert.equal(env.fromStr, formatAddress(addressFromPublicKey(key.publicKey)));
      assert.equal(getBackend('ml-dsa-44').verify(key.publicKey, env.signBytes, env.tx.signature), true);
    }
    assert.equal(app.signatures(openTx(built[1]!.raw)).length, 1, "the stake's consent signature is still carried");
  });
});

describe('sdk: buildXTransfer', () => {
  it('signs an xtransfer that round-trips through openTx and verifies', () => {
    const key = generateKeyPair('ml-dsa-44');
    const built = buildXTransfer({ key, chainId: 'qnexus-test', to: RECIPIENT, amount: 55n, fee: 2n, nonce: 1n });
    const env = openTx(built.raw);
    assert.equal(env.hashHex, built.hash);
    assert.equal(app.kindName(env), 'xtransfer');
    assert.equal(formatAddress(msgOf(env).to), RECIPIENT);
    assert.equal(msgOf(env).amount, 55n);
    assert.equal(getBackend('ml-dsa-44').verify(key.publicKey, env.signBytes, env.tx.signature), true);
    // not the same transaction as a plain transfer with the same fields
    assert.notEqual(buildTransfer({ key, chainId: 'qnexus-test', to: RECIPIENT, amount: 55n, fee: 2n, nonce: 1n }).hash, built.hash);
  });

  it('with shardCount refuses a recipient on the sender’s shard (TX_SAME_SHARD)', () => {
    const key = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(9));
    const src = homeShard(addressFromPublicKey(key.publicKey), 4);
    const addr = (b: number) => 'qn' + b.toString(16).padStart(2, '0').repeat(20);
    const same = [...Array(256).keys()].map(addr).find((a) => homeShard(parseAddress(a), 4) === src)!;
    const other = [...Array(256).keys()].map(addr).find((a) => homeShard(parseAddress(a), 4) !== src)!;
    assert.throws(() => buildXTransfer({ key, chainId: 'c', to: same, amount: 1n, fee: 1n, nonce: 0n, shardCount: 4 }), (e: unknown) => e instanceof QnexusError && e.code === 'TX_SAME_SHARD');
    assert.equal(app.kindName(openTx(buildXTransfer({ key, chainId: 'c', to: other, amount: 1n, fee: 1n, nonce: 0n, shardCount: 4 }).raw)), 'xtransfer');
    assert.throws(() => buildXTransfer({ key, chainId: 'c', to: 'qn12', amount: 1n, fee: 1n, nonce: 0n }), (e: unknown) => e instanceof QnexusError && e.code === 'TX_MALFORMED');
  });
});

type Handler = (req: IncomingMessage, body: Buffer, res: ServerResponse) => void;

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function startServer(handler: Handler): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handler(req, Buffer.concat(chunks), res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}` };
}

async function apiError(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ApiError, `expected ApiError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected the call to fail');
}

const STATUS = {
  chainId: 'qnexus-test',
  shard: 0,
  genesisHash: '00'.repeat(32),
  version: '0.1.0',
  role: 'validator',
  validator: RECIPIENT,
  peerId: '12D3KooWtest',
  peers: 3,
  height: 10,
  finalizedHeight: 9,
  round: 0,
  step: 'propose',
  mempoolSize: 0,
  syncing: false,
};

function txInfo(hash: string, status: TxInfo['status'], extra: Partial<TxInfo> = {}): TxInfo {
  return { hash, kind: 'transfer', raw: '00', status, from: RECIPIENT, to: RECIPIENT, amount: '1', fee: '1', nonce: '0', block: null, error: null, ...extra };
}

describe('sdk: QnexusClient against a local HTTP server', () => {
  let server: Server;
  let url: string;
  let height = 10;
  const txPolls = new Map<string, number>();
  const xPolls = new Map<string, number>();
  const xfer = (id: string, status: string, decision: string | null) => ({
    id, from: RECIPIENT, to: RECIPIENT, amount: '9', sourceShard: 0, destinationShard: 1, deadlineSlot: 30, role: 'source', status, decision, phases: [],
  });
  let lastSubmit: { contentType: string | undefined; body: Buffer } | undefined;
  /** Accounts whose key the mock node has registered (address → key hex), as `GET /v1/accounts` reports it. */
  const registered = new Map<string, string>();

  before(async () => {
    ({ server, url } = await startServer((req, body, res) => {
      const path = req.url ?? '';
      if (req.method === 'GET' && path === '/v1/status') return json(res, 200, { ...STATUS, height: height++ });
      if (req.method === 'GET' && path === '/v1/validators') return json(res, 200, { validators: [] });
      if (req.method === 'GET' && path === '/v1/blocks/latest') return json(res, 200, { hash: 'aa', height: 5 });
      if (req.method === 'GET' && path === '/v1/blocks/999') return json(res, 404, { error: { code: 'NOT_FOUND', message: 'no block at height 999' } });
      if (req.method === 'GET' && path === '/v1/blocks/gateway') {
        res.writeHead(502, { 'content-type': 'text/html' });
        return res.end('<html>bad gateway</html>');
      }
      if (req.method === 'GET' && path === '/v1/blocks/slow') return void setTimeout(() => json(res, 200, {}), 2000);
      if (req.method === 'GET' && path.startsWith('/v1/accounts/')) {
        if (path.endsWith('/garbage')) return res.end('this is not json');
        const address = path.slice(13);
        return json(res, 200, { address, balance: '100', nonce: '4', pendingNonce: '5', publicKey: registered.get(address) ?? null });
      }
      if (req.method === 'GET' && path.startsWith('/v1/txs/')) {
        const hash = path.slice(8);
        const n = (txPolls.get(hash) ?? 0) + 1;
        txPolls.set(hash, n);
        if (hash === 'rejected') return json(res, 200, txInfo(hash, n < 2 ? 'pending' : 'rejected', n < 2 ? {} : { error: { code: 'TX_NONCE_STALE', message: 'nonce 0 already used' } }));
        if (hash === 'stuck') return json(res, 200, txInfo(hash, 'pending'));
        if (hash === 'unknown') return json(res, 404, { error: { code: 'NOT_FOUND', message: 'unknown transaction' } });
        // anything else: not found, then pending, included, final
        if (n === 1) return json(res, 404, { error: { code: 'NOT_FOUND', message: 'unknown transaction' } });
        if (n === 2) return json(res, 200, txInfo(hash, 'pending'));
        const block = { height: 7, hash: 'bb'.repeat(32), index: 0 };
        return json(res, 200, txInfo(hash, n === 3 ? 'included' : 'final', { block }));
      }
      const xm = /^(\/beacon)?\/v1\/xtransfers\/([^/]+)$/.exec(path);
      if (req.method === 'GET' && xm) {
        const id = xm[2]!;
        const key = `${xm[1] ?? ''}${id}`;
        const n = (xPolls.get(key) ?? 0) + 1;
        xPolls.set(key, n);
        if (id === 'stuck') return json(res, 200, xfer(id, 'escrowed', null));
        if (n === 1) return json(res, 404, { error: { code: 'XS_UNKNOWN_TRANSFER', message: `no cross-shard transfer ${id}` } });
        if (xm[1]) {
          // the beacon: preparing, decided (not applied everywhere), done
          const { role: _r, ...common } = xfer(id, n === 2 ? 'preparing' : 'aborted', n === 2 ? null : 'abort');
          return json(res, 200, { ...common, done: n >= 4 });
        }
        return json(res, 200, n === 2 ? xfer(id, 'escrowed', null) : xfer(id, 'committed', 'commit'));
      }
      if (req.method === 'GET' && path === '/beacon/v1/xtransfers?limit=2') return json(res, 200, { xtransfers: [] });
      if (req.method === 'POST' && path === '/v1/txs') {
        lastSubmit = { contentType: req.headers['content-type'], body };
        let raw: Uint8Array;
        if (req.headers['content-type'] === 'application/octet-stream') raw = new Uint8Array(body);
        else raw = fromHex((JSON.parse(body.toString()) as { tx: string }).tx);
        const env = openTx(raw);
        if (env.tx.body.fee === 0n) return json(res, 400, { error: { code: 'TX_FEE_TOO_LOW', message: 'fee 0 is below the minimum 1' } });
        const known = registered.get(env.fromStr);
        const pk = env.publicKey ?? (known ? fromHex(known) : null);
        if (!pk) return json(res, 422, { error: { code: 'TX_KEY_UNKNOWN', message: 'send the public key with the account’s first transaction' } });
        if (!getBackend('ml-dsa-44').verify(pk, env.signBytes, env.tx.signature)) {
          return json(res, 400, { error: { code: 'TX_BAD_SIGNATURE', message: 'bad signature' } });
        }
        return json(res, 202, { hash: env.hashHex, status: 'pending' });
      }
      json(res, 404, { error: { code: 'NOT_FOUND', message: `no route ${req.method} ${path}` } });
    }));
  });

  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('returns typed answers', async () => {
    const c = new QnexusClient(url + '/');
    assert.equal(c.baseUrl, url);
    const s = await c.status();
    assert.equal(s.chainId, 'qnexus-test');
    assert.equal(s.role, 'validator');
    assert.deepEqual(await c.validators(), { validators: [] });
    assert.equal((await c.block('latest')).height, 5);
    const a = await c.account(RECIPIENT);
    assert.equal(a.pendingNonce, '5');
  });

  it('maps error envelopes to ApiError with code and status', async () => {
    const c = new QnexusClient(url);
    const e = await apiError(c.block(999));
    assert.equal(e.code, 'NOT_FOUND');
    assert.equal(e.status, 404);
    assert.equal(e.message, 'no block at height 999');
    const e2 = await apiError(c.tx('unknown'));
    assert.equal(e2.code, 'NOT_FOUND');
  });

  it('maps non-envelope and non-JSON answers', async () => {
    const c = new QnexusClient(url);
    const e = await apiError(c.block('gateway'));
    assert.equal(e.code, 'HTTP_502');
    assert.equal(e.status, 502);
    const e2 = await apiError(c.account('garbage'));
    assert.equal(e2.code, 'BAD_RESPONSE');
    const e3 = await apiError(c.block(-1));
    assert.equal(e3.code, 'BAD_REQUEST');
  });

  it('maps timeouts and refused connections to UNAVAILABLE', async () => {
    const slow = new QnexusClient(url, { timeoutMs: 200 });
    const e = await apiError(slow.block('slow'));
    assert.equal(e.code, 'UNAVAILABLE');
    assert.equal(e.status, 0);
    assert.match(e.message, /200 ms/);
    // a port nobody listens on
    const tmp = await startServer(() => undefined);
    const deadUrl = tmp.url;
    await new Promise<void>((resolve) => tmp.server.close(() => resolve()));
    const e2 = await apiError(new QnexusClient(deadUrl).status());
    assert.equal(e2.code, 'UNAVAILABLE');
    assert.match(e2.message, /ECONNREFUSED/);
  });

  it('resends a GET once on a new connection when a kept-alive one is reset before any answer; never a POST, nor on a fresh connection', async () => {
    // A raw server: it answers the first request on each connection and keeps the connection
    // open; a second request on the same connection is reset unanswered, as when a server closes
    // an idle connection just as a request goes out on it.
    const seen: number[] = [];
    let conns = 0;
    const status = JSON.stringify({ height: 7 });
    const answer = `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${status.length}\r\nconnection: keep-alive\r\n\r\n${status}`;
    const raw = netCreateServer((sock) => {
      const id = ++conns;
      let requests = 0;
      sock.on('data', (d: Buffer) => {
        for (const _ of d.toString('latin1').matchAll(/\r\n\r\n/g)) {
          seen.push(id);
          if (++requests === 1) sock.write(answer);
          else sock.resetAndDestroy();
        }
      });
      sock.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    try {
      const u = `http://127.0.0.1:${(raw.address() as AddressInfo).port}`;
      const c = new QnexusClient(u);
      await c.status();
      const r = await c.status();
      assert.equal(r.height, 7);
      // the second request went out on connection 1, was reset, and was answered on connection 2
      assert.deepEqual(seen, [1, 1, 2]);
      // a POST reset the same way is not resent: the server may have acted on it
      const e0 = await apiError(c.submitTx(new Uint8Array([1, 2, 3]), { binary: true }));
      assert.equal(e0.code, 'UNAVAILABLE');
      assert.deepEqual(seen, [1, 1, 2, 2]);
      // a reset on a fresh connection is not resent: the server may have acted on the request
      const fresh = netCreateServer((sock) => {
        sock.on('data', () => sock.resetAndDestroy());
        sock.on('error', () => undefined);
      });
      await new Promise<void>((resolve) => fresh.listen(0, '127.0.0.1', resolve));
      try {
        const e = await apiError(new QnexusClient(`http://127.0.0.1:${(fresh.address() as AddressInfo).port}`).status());
        assert.equal(e.code, 'UNAVAILABLE');
        assert.match(e.message, /ECONNRESET/);
      } finally {
        fresh.close();
      }
    } finally {
      raw.close();
    }
  });

  it('refuses an unusable base URL', () => {
    assert.throws(() => new QnexusClient('localhost:8545'), (e: unknown) => e instanceof ApiError && e.code === 'BAD_CONFIG');
    assert.throws(() => new QnexusClient('not a url'), (e: unknown) => e instanceof ApiError && e.code === 'BAD_CONFIG');
  });

  it('submits JSON and binary bodies and maps admission errors', async () => {
    const c = new QnexusClient(url);
    const key = generateKeyPair('ml-dsa-44');
    const tx = buildTransfer({ key, chainId: 'qnexus-test', to: RECIPIENT, amount: 5n, fee: 1n, nonce: 0n });
    const r = await c.submitTx(tx.raw);
    assert.deepEqual(r, { hash: tx.hash, status: 'pending' });
    assert.equal(lastSubmit?.contentType, 'application/json');
    assert.deepEqual(JSON.parse(lastSubmit!.body.toString()), { tx: toHex(tx.raw) });
    const r2 = await c.submitTx(tx.raw, { binary: true });
    assert.equal(r2.hash, tx.hash);
    assert.equal(lastSubmit?.contentType, 'application/octet-stream');
    assert.deepEqual(new Uint8Array(lastSubmit!.body), tx.raw);

    const cheap = buildTransfer({ key, chainId: 'qnexus-test', to: RECIPIENT, amount: 5n, fee: 0n, nonce: 0n });
    const e = await apiError(c.submitTx(cheap.raw));
    assert.equal(e.code, 'TX_FEE_TOO_LOW');
    assert.equal(e.status, 400);
    // corrupt the last signature byte
    const bad = Uint8Array.from(tx.raw);
    bad[bad.length - 1]! ^= 1;
    const e2 = await apiError(c.submitTx(bad, { binary: true }));
    assert.equal(e2.code, 'TX_BAD_SIGNATURE');
  });

  it('waitForTx follows not-found → pending → included → final', async () => {
    const c = new QnexusClient(url);
    const inc = await c.waitForTx('t-included', { until: 'included', pollMs: 10, timeoutMs: 5000 });
    assert.equal(inc.status, 'included');
    assert.equal(txPolls.get('t-included'), 3);
    const fin = await c.waitForTx('t-final', { pollMs: 10, timeoutMs: 5000 });
    assert.equal(fin.status, 'final');
    assert.equal(fin.block?.height, 7);
    assert.equal(txPolls.get('t-final'), 4);
  });

  it('waitForTx throws TX_REJECTED and TIMEOUT', async () => {
    const c = new QnexusClient(url);
    const e = await apiError(c.waitForTx('rejected', { pollMs: 10, timeoutMs: 5000 }));
    assert.equal(e.code, 'TX_REJECTED');
    assert.equal(e.tx?.error?.code, 'TX_NONCE_STALE');
    assert.match(e.message, /TX_NONCE_STALE/);
    const t0 = Date.now();
    const e2 = await apiError(c.waitForTx('stuck', { pollMs: 20, timeoutMs: 200 }));
    assert.equal(e2.code, 'TIMEOUT');
    assert.match(e2.message, /status pending/);
    assert.ok(Date.now() - t0 < 2000);
  });

  it('waitForHeight polls status', async () => {
    const c = new QnexusClient(url);
    const s = await c.waitForHeight(height + 3, 5000, { pollMs: 10 });
    assert.ok(s.height >= height - 1);
    const e = await apiError(c.waitForHeight(1e9, 100, { pollMs: 10 }));
    assert.equal(e.code, 'TIMEOUT');
  });

  it('waitForXTransfer follows unknown → escrowed → committed on a node; TIMEOUT when undecided', async () => {
    const c = new QnexusClient(url);
    const x = await c.waitForXTransfer('x-node', { pollMs: 10, timeoutMs: 5000 });
    assert.equal(x.status, 'committed');
    assert.equal(x.decision, 'commit');
    assert.equal(xPolls.get('x-node'), 3);
    const prepared = await c.waitForXTransfer('x-prep', { until: 'prepared', pollMs: 10, timeoutMs: 5000 });
    assert.equal(prepared.status, 'escrowed');
    assert.equal(xPolls.get('x-prep'), 2);
    const e = await apiError(c.waitForXTransfer('stuck', { pollMs: 10, timeoutMs: 150 }));
    assert.equal(e.code, 'TIMEOUT');
    assert.match(e.message, /status escrowed/);
  });

  it('waitForBeaconXTransfer: decided once logged, applied once done', async () => {
    const b = new QnexusClient(`${url}/beacon`);
    const decided = await b.waitForBeaconXTransfer('x-b1', { until: 'decided', pollMs: 10, timeoutMs: 5000 });
    assert.equal(decided.status, 'aborted');
    assert.equal(decided.done, false);
    assert.equal(xPolls.get('/beaconx-b1'), 3);
    const applied = await b.waitForBeaconXTransfer('x-b2', { pollMs: 10, timeoutMs: 5000 });
    assert.equal(applied.done, true);
    assert.equal(xPolls.get('/beaconx-b2'), 4);
    assert.deepEqual(await b.beaconXTransfers(2), { xtransfers: [] });
    assert.equal((await apiError(b.beaconXTransfers(0))).code, 'BAD_REQUEST');
  });

  it('xtransferAndWait submits an xtransfer, waits for finality, then for the decision on the source', async () => {
    const c = new QnexusClient(url);
    const key = generateKeyPair('ml-dsa-44');
    const r = await xtransferAndWait(c, { key, to: RECIPIENT, amount: 9n, pollMs: 10, timeoutMs: 5000 });
    assert.equal(r.nonce, 5n);
    assert.equal(r.tx.status, 'final');
    assert.equal(r.xfer.status, 'committed');
    const env = openTx(fromHex((JSON.parse(lastSubmit!.body.toString()) as { tx: string }).tx));
    assert.equal(env.hashHex, r.id);
    assert.equal(app.kindName(env), 'xtransfer');
  });

  it('transferAndWait fetches chain id and nonce, submits and waits', async () => {
    const c = new QnexusClient(url);
    const key = generateKeyPair('ml-dsa-44');
    const r = await transferAndWait(c, { key, to: RECIPIENT, amount: 9n, pollMs: 10, timeoutMs: 5000 });
    assert.equal(r.nonce, 5n);
    assert.equal(r.tx.status, 'final');
    const env = openTx(fromHex((JSON.parse(lastSubmit!.body.toString()) as { tx: string }).tx));
    assert.equal(env.hashHex, r.hash);
    assert.equal(env.tx.body.chainId, 'qnexus-test');
    assert.equal(env.tx.body.nonce, 5n);
    assert.equal(env.tx.body.fee, 1n);
    assert.deepEqual(env.publicKey, key.publicKey, 'the node reports no registered key: the key is carried');
  });

  it('transferAndWait omits the key once the node reports it registered (unless told otherwise)', async () => {
    const c = new QnexusClient(url);
    const key = generateKeyPair('ml-dsa-44');
    const from = formatAddress(addressFromPublicKey(key.publicKey));
    registered.set(from, toHex(key.publicKey));
    const lastEnv = () => openTx(fromHex((JSON.parse(lastSubmit!.body.toString()) as { tx: string }).tx));
    const r = await transferAndWait(c, { key, to: RECIPIENT, amount: 9n, pollMs: 10, timeoutMs: 5000 });
    const env = lastEnv();
    assert.equal(env.hashHex, r.hash);
    assert.equal(env.publicKey, null);
    assert.equal(env.fromStr, from);
    // an explicit keyless: false carries it anyway; keyless: true with a given nonce needs no account read
    await transferAndWait(c, { key, to: RECIPIENT, amount: 9n, pollMs: 10, timeoutMs: 5000, keyless: false });
    assert.deepEqual(lastEnv().publicKey, key.publicKey);
    const r3 = await xtransferAndWait(c, { key, to: RECIPIENT, amount: 9n, nonce: 8n, keyless: true, pollMs: 10, timeoutMs: 5000 });
    assert.equal(r3.nonce, 8n);
    assert.equal(lastEnv().publicKey, null);
    // the mock node, like a real one, refuses a keyless transaction of an account it has no key for
    registered.delete(from);
    assert.equal((await apiError(transferAndWait(c, { key, to: RECIPIENT, amount: 9n, keyless: true, pollMs: 10, timeoutMs: 5000 }))).code, 'TX_KEY_UNKNOWN');
  });
});
