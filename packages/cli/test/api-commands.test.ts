import { strict as assert } from 'node:assert';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encryptKeystore, formatAddress, fromHex, getBackend } from '@qnexus/crypto';
import { openTx } from '@qnexus/types';
import { qnexus } from './helpers.js';

const TO = 'qn' + '33'.repeat(20);

const STATUS = {
  chainId: 'qnexus-test',
  shard: 0,
  genesisHash: 'ab'.repeat(32),
  version: '0.1.0',
  role: 'validator',
  validator: TO,
  peerId: '12D3KooWfake',
  peers: 4,
  height: 42,
  finalizedHeight: 41,
  round: 3,
  step: 'prevote',
  mempoolSize: 2,
  syncing: false,
};

/** A fake node: enough of the HTTP API for `status` and `tx transfer`. */
function fakeNode(): Promise<{ server: Server; url: string; received: { hash: string; nonce: bigint; amount: bigint; from: string }[] }> {
  const received: { hash: string; nonce: bigint; amount: bigint; from: string }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const url = req.url ?? '';
      if (url === '/v1/status') return send(200, STATUS);
      if (url.startsWith('/v1/accounts/')) return send(200, { address: url.slice(13), balance: '1000', nonce: '3', pendingNonce: '3', publicKey: null });
      if (req.method === 'POST' && url === '/v1/txs') {
        const env = openTx(fromHex((JSON.parse(Buffer.concat(chunks).toString()) as { tx: string }).tx));
        const body = env.tx.body;
        if (body.chainId !== 'qnexus-test') return send(400, { error: { code: 'TX_WRONG_CHAIN', message: `wrong chain ${body.chainId}` } });
        if (!getBackend('ml-dsa-44').verify(body.publicKey, env.signBytes, env.tx.signature)) return send(400, { error: { code: 'TX_BAD_SIGNATURE', message: 'bad signature' } });
        if (body.nonce < 3n) return send(409, { error: { code: 'TX_NONCE_STALE', message: `nonce ${body.nonce} already used; the account's next nonce is 3` } });
        received.push({ hash: env.hashHex, nonce: body.nonce, amount: body.payload.amount, from: env.fromStr });
        return send(202, { hash: env.hashHex, status: 'pending' });
      }
      if (url.startsWith('/v1/txs/')) {
        const tx = received.find((t) => t.hash === url.slice(8));
        if (!tx) return send(404, { error: { code: 'NOT_FOUND', message: 'unknown transaction' } });
        const common = { hash: tx.hash, from: tx.from, to: TO, amount: tx.amount.toString(), fee: '1', nonce: tx.nonce.toString() };
        if (tx.amount === 13n) return send(200, { ...common, status: 'pending', block: null, error: null });
        if (tx.amount === 666n) return send(200, { ...common, status: 'rejected', block: null, error: { code: 'TX_INSUFFICIENT_FUNDS', message: 'balance 1000 < 667' } });
        return send(200, { ...common, status: 'final', block: { height: 7, hash: 'cd'.repeat(32), index: 0 }, error: null });
      }
      send(404, { error: { code: 'NOT_FOUND', message: `no route ${url}` } });
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received })),
  );
}

describe('cli: status and tx transfer against a fake node', function () {
  this.timeout(60_000);
  let dir: string;
  let node: Awaited<ReturnType<typeof fakeNode>>;
  let keyPath: string;
  let from: string;
  const env = { P: 'pw' };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qnexus-cli-tx-'));
    node = await fakeNode();
    const { file, key } = await encryptKeystore('ml-dsa-44', 'pw', undefined, { scryptN: 1024 });
    keyPath = join(dir, 'sender.json');
    from = formatAddress(key.address);
    await writeFile(keyPath, JSON.stringify(file));
  });
  after(async () => {
    node.server.closeAllConnections();
    node.server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const transfer = (...extra: string[]) =>
    qnexus(['tx', 'transfer', '--keystore', keyPath, '--passphrase-env', 'P', '--to', TO, '--node', node.url, ...extra], { env });

  it('status prints a readable summary and --json the raw answer', async () => {
    const r = await qnexus(['status', '--node', node.url]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^chain\s+qnexus-test \(shard 0\)$/m);
    assert.match(r.stdout, /^height\s+42 \(finalized 41\)$/m);
    assert.match(r.stdout, /^peers\s+4$/m);
    assert.match(r.stdout, /^round\/step\s+3 \/ prevote$/m);
    assert.match(r.stdout, /^mempool\s+2 txs$/m);
    const j = await qnexus(['status', '--node', node.url, '--json']);
    assert.deepEqual(JSON.parse(j.stdout), STATUS);
    const viaEnv = await qnexus(['status'], { env: { QNEXUS_NODE: node.url } });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
  });

  it('status on an unreachable node fails with UNAVAILABLE', async () => {
    const r = await qnexus(['status', '--node', 'http://127.0.0.1:1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error \[UNAVAILABLE\]: cannot reach node/m);
  });

  it('signs with the keystore, uses the pending nonce and prints the hash', async () => {
    const r = await transfer('--amount', '5');
    assert.equal(r.code, 0, r.stderr);
    const last = node.received.at(-1)!;
    assert.equal(last.from, from);
    assert.equal(last.nonce, 3n);
    assert.equal(last.amount, 5n);
    assert.match(r.stdout, new RegExp(`^hash\\s+${last.hash}$`, 'm'));
    assert.match(r.stdout, /^status\s+pending$/m);
  });

  it('--wait waits for finality and prints the block', async () => {
    const r = await transfer('--amount', '6', '--nonce', '4', '--wait', '--json');
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as { hash: string; nonce: string; status: string; block: { height: number } };
    assert.equal(res.status, 'final');
    assert.equal(res.block.height, 7);
    assert.equal(res.nonce, '4');
    assert.equal(res.hash, node.received.at(-1)!.hash);
  });

  it('prints API errors with their code and exits 1', async () => {
    const stale = await transfer('--amount', '5', '--nonce', '1');
    assert.equal(stale.code, 1);
    assert.match(stale.stderr, /^error \[TX_NONCE_STALE\]: nonce 1 already used/m);
    const chain = await transfer('--amount', '5', '--chain-id', 'other-chain');
    assert.equal(chain.code, 1);
    assert.match(chain.stderr, /^error \[TX_WRONG_CHAIN\]/m);
    const rejected = await transfer('--amount', '666', '--wait');
    assert.equal(rejected.code, 1);
    assert.match(rejected.stderr, /^error \[TX_REJECTED\]: .*TX_INSUFFICIENT_FUNDS/m);
  });

  it('exits 3 when --wait times out', async () => {
    const r = await transfer('--amount', '13', '--wait', '--timeout', '0.5');
    assert.equal(r.code, 3);
    assert.match(r.stderr, /^error \[TIMEOUT\]: transaction [0-9a-f]{64} not final/m);
  });

  it('refuses a wrong passphrase and bad arguments before contacting the node', async () => {
    const n = node.received.length;
    const bad = await qnexus(['tx', 'transfer', '--keystore', keyPath, '--passphrase-env', 'P', '--to', TO, '--amount', '1', '--node', node.url], { env: { P: 'nope' } });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error \[KEYSTORE_BAD_PASSPHRASE\]/m);
    const amount = await transfer('--amount', '-3');
    assert.equal(amount.code, 2);
    const to = await qnexus(['tx', 'transfer', '--keystore', keyPath, '--to', 'qnNOPE', '--amount', '1']);
    assert.equal(to.code, 2);
    assert.match(to.stderr, /^error \[USAGE\]: option '--to <address>'/m);
    assert.equal(node.received.length, n);
  });
});
