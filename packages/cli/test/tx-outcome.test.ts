// A submission whose answer is lost: the CLI asks the nodes by hash, resends the same signed bytes, and never signs a
// different transaction with a nonce an earlier one may still hold (the outbox next to the keystore). Busy nodes are
// retried after their Retry-After.
import { strict as assert } from 'node:assert';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encryptKeystore, fromHex } from '@qnexus/crypto';
import { openTx } from '@qnexus/types';
import { qnexus } from './helpers.js';

const TO = 'qn' + '33'.repeat(20);
const STATUS = { chainId: 'qnexus-test', shard: 0, genesisHash: 'ab'.repeat(32), version: '0.1.0', role: 'full', validator: null, peerId: 'x', peers: 1, height: 1, finalizedHeight: 1, round: 0, step: 'propose', mempoolSize: 0, syncing: false };

/** What the fake node does with the next POST /v1/txs. */
type PostMode = 'ok' | 'admit-then-drop' | 'drop' | 'busy';

interface FakeNode {
  server: Server;
  url: string;
  /** Every POST received: the transaction's hash and nonce, and when. */
  posts: { hash: string; nonce: bigint; at: number }[];
  /** Transactions this node holds as pending. */
  pending: Map<string, bigint>;
  /** Of those, the ones it reports final. */
  final: Set<string>;
  /** Modes for the next POSTs, in order; then 'ok'. */
  modes: PostMode[];
}

/** Account nonce 3; pendingNonce counts this node's contiguous pending transactions from 3. */
function fakeNode(): Promise<FakeNode> {
  const node = { posts: [], pending: new Map(), final: new Set(), modes: [] } as unknown as FakeNode;
  node.server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify(body));
      };
      const url = req.url ?? '';
      if (url === '/v1/status') return send(200, STATUS);
      if (url.startsWith('/v1/accounts/')) {
        let n = 3n;
        const nonces = new Set(node.pending.values());
        while (nonces.has(n)) n++;
        return send(200, { address: url.slice(13), balance: '1000', nonce: '3', pendingNonce: n.toString(), publicKey: null });
      }
      if (req.method === 'POST' && url === '/v1/txs') {
        const env = openTx(fromHex((JSON.parse(Buffer.concat(chunks).toString()) as { tx: string }).tx));
        node.posts.push({ hash: env.hashHex, nonce: env.tx.body.nonce, at: Date.now() });
        const mode = node.modes.shift() ?? 'ok';
        if (mode === 'busy') return send(503, { error: { code: 'NODE_BUSY', message: 'busy' } }, { 'retry-after': '1' });
        if (mode !== 'drop') node.pending.set(env.hashHex, env.tx.body.nonce);
        // The answer is lost: the connection is reset after the node did (or did not) admit it.
        if (mode === 'drop' || mode === 'admit-then-drop') return req.socket.destroy();
        return send(202, { hash: env.hashHex, status: 'pending' });
      }
      if (url.startsWith('/v1/txs/')) {
        const hash = url.slice(8);
        const nonce = node.pending.get(hash);
        if (nonce === undefined) return send(404, { error: { code: 'TX_UNKNOWN', message: 'not known to this node' } });
        return send(200, { hash, from: 'qn' + '00'.repeat(20), to: TO, amount: '1', fee: '1', nonce: nonce.toString(), ...(node.final.has(hash) ? { status: 'final', block: { height: 2, hash: 'cd'.repeat(32), index: 0 } } : { status: 'pending', block: null }), error: null });
      }
      send(404, { error: { code: 'NOT_FOUND', message: `no route ${url}` } });
    });
  });
  return new Promise((resolve) =>
    node.server.listen(0, '127.0.0.1', () => {
      node.url = `http://127.0.0.1:${(node.server.address() as AddressInfo).port}`;
      resolve(node);
    }),
  );
}

describe('cli: a submission whose outcome is unknown', function () {
  this.timeout(120_000);
  let dir: string;
  let a: FakeNode;
  let b: FakeNode;
  let n = 0;
  const env = { P: 'pw' };
  /** A fresh keystore per test: each has its own outbox. */
  const newKey = async () => {
    const { file } = await encryptKeystore('ml-dsa-44', 'pw', undefined, { scryptN: 1024 });
    const path = join(dir, `k${n++}.json`);
    await writeFile(path, JSON.stringify(file));
    return path;
  };
  const transfer = (key: string, amount: number, ...extra: string[]) =>
    qnexus(['tx', 'transfer', '--keystore', key, '--passphrase-env', 'P', '--to', TO, '--amount', String(amount), '--node', a.url, ...extra], { env });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qnexus-cli-outcome-'));
    [a, b] = await Promise.all([fakeNode(), fakeNode()]);
  });
  beforeEach(() => {
    for (const x of [a, b]) {
      x.posts.length = 0;
      x.pending.clear();
      x.final.clear();
      x.modes.length = 0;
    }
  });
  after(async () => {
    for (const x of [a, b]) {
      x.server.closeAllConnections();
      x.server.close();
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('the node admitted it and the answer was lost: asked by hash, it is pending; nothing is sent twice', async () => {
    const key = await newKey();
    a.modes.push('admit-then-drop');
    const r = await transfer(key, 10);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(a.posts.length, 1);
    assert.match(r.stderr, new RegExp(`reports transaction ${a.posts[0]!.hash} pending`));
    assert.match(r.stdout, new RegExp(`^hash\\s+${a.posts[0]!.hash}$`, 'm'));
  });

  it('the node did not admit it: the same signed bytes are sent again (same hash, same nonce)', async () => {
    const key = await newKey();
    a.modes.push('drop');
    const r = await transfer(key, 10);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(a.posts.length, 2);
    assert.equal(a.posts[1]!.hash, a.posts[0]!.hash);
    assert.match(r.stderr, /resubmitting the same signed bytes/);
  });

  it('never answered: TX_OUTCOME_UNKNOWN; the next command refuses its nonce for another transaction, a re-run resubmits it', async () => {
    const key = await newKey();
    a.modes.push('drop', 'drop', 'drop');
    const lost = await transfer(key, 10);
    assert.equal(lost.code, 1);
    assert.match(lost.stderr, /TX_OUTCOME_UNKNOWN/);
    const hash = a.posts[0]!.hash;
    assert.ok(a.posts.every((p) => p.hash === hash), 'only the one signed transaction was ever sent');
    assert.match(await readFile(`${key}.pending.json`, 'utf8'), new RegExp(hash));

    // A different transaction: the node hands out nonce 3 again (it never saw the first), so the CLI refuses to sign it.
    a.posts.length = 0;
    const other = await transfer(key, 11);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /NONCE_IN_DOUBT/);
    assert.match(other.stderr, new RegExp(`earlier transaction ${hash} with nonce 3`));
    assert.equal(a.posts.length, 0, 'nothing was sent');

    // The same command again: the same transaction (same hash), resubmitted; once final it would leave the outbox.
    const again = await transfer(key, 10);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(a.posts.map((p) => p.hash), [hash]);

    // Now pending on the node: the next transaction takes the next nonce.
    const next = await transfer(key, 12);
    assert.equal(next.code, 0, next.stderr);
    assert.equal(a.posts[1]!.nonce, 4n);
  });

  it('pending on another node of the shard (--check-node) only: its nonce is skipped, not reused', async () => {
    const key = await newKey();
    a.modes.push('drop', 'drop', 'drop');
    assert.equal((await transfer(key, 10)).code, 1);
    const hash = a.posts[0]!.hash;
    // Gossip delivered it to node b, not (yet) to a.
    b.pending.set(hash, 3n);
    const r = await transfer(key, 11, '--check-node', b.url);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(a.posts.at(-1)!.nonce, 4n, "a's pendingNonce said 3, but b holds nonce 3");
    const s = await qnexus(['tx', 'status', hash, '--node', a.url, '--check-node', b.url]);
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /^status\s+pending$/m);
    assert.match(s.stdout, new RegExp(`^node\\s+${b.url}$`, 'm'));
    const none = await qnexus(['tx', 'status', 'ef'.repeat(32), '--node', a.url, '--check-node', b.url]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /TX_UNKNOWN/);
  });

  it('records leave the outbox once final, or once their nonce went to another final transaction', async () => {
    const key = await newKey();
    assert.equal((await transfer(key, 10)).code, 0);
    const first = a.posts[0]!.hash;
    const outbox = async () => (JSON.parse(await readFile(`${key}.pending.json`, 'utf8')) as { pending: { hash: string }[] }).pending.map((p) => p.hash);
    assert.deepEqual(await outbox(), [first], 'pending: remembered');
    a.final.add(first);
    // Unknown everywhere, but nonce 2 is below the account nonce 3: it can never apply.
    await writeFile(`${key}.pending.json`, JSON.stringify({ version: 1, pending: [{ hash: 'aa'.repeat(32), nonce: '2', node: a.url, at: 'then' }, { hash: first, nonce: '3', node: a.url, at: 'then' }] }));
    assert.equal((await transfer(key, 11)).code, 0);
    assert.deepEqual(await outbox(), [a.posts[1]!.hash]);
  });

  it('a busy node (503 with Retry-After) is retried after the time it asks for', async () => {
    const key = await newKey();
    a.modes.push('busy');
    const r = await transfer(key, 10);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(a.posts.length, 2);
    assert.ok(a.posts[1]!.at - a.posts[0]!.at >= 950, `retried after ${a.posts[1]!.at - a.posts[0]!.at} ms, Retry-After said 1 s`);
  });
});
