import { app } from '@qnexus/app';
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

const BEACON_STATUS = {
  chainId: 'qnexus-test',
  genesisHash: 'ab'.repeat(32),
  version: '0.1.0',
  role: 'beacon',
  peerId: '12D3KooWbeacon',
  peers: 8,
  slot: 120,
  epoch: 3,
  xtransfers: { total: 5, undecided: 1, committed: 3, aborted: 1, applied: 4 },
};

interface Received {
  hash: string;
  kind: string;
  nonce: bigint;
  amount: bigint;
  from: string;
}

/**
 * A fake node: enough of the HTTP API for `status`, `tx transfer` and `tx xtransfer`; under
 * `/beacon` it also answers as the beacon. Amounts pick behaviours: transfer 77 is refused as
 * cross-shard, xtransfer 78 as same-shard; xtransfer 100 commits, 101 aborts, 102 never decides.
 */
function fakeNode(): Promise<{ server: Server; url: string; received: Received[] }> {
  const received: Received[] = [];
  const xfer = (tx: Received, beacon: boolean) => {
    const common = { id: tx.hash, from: tx.from, to: TO, amount: tx.amount.toString(), sourceShard: 0, destinationShard: 1, deadlineSlot: 60 };
    const decision = tx.amount === 100n ? 'commit' : tx.amount === 101n ? 'abort' : null;
    const status = decision === 'commit' ? 'committed' : decision === 'abort' ? 'aborted' : beacon ? 'preparing' : 'escrowed';
    if (beacon) {
      return {
        ...common,
        status,
        decision,
        done: decision !== null,
        phases: [
          { phase: 'source-prepared', shard: 0, height: 7 },
          ...(decision === 'abort' ? [{ phase: 'destination-refused', shard: 1, height: 5, reason: 'XS_DEADLINE_PASSED' }, { phase: 'decided', decision, slot: 61, reason: 'deadline' }] : []),
        ],
      };
    }
    return {
      ...common,
      role: 'source',
      status,
      decision,
      phases: [{ phase: 'source-prepared', shard: 0, height: 7 }, ...(decision ? [{ phase: 'source-applied', shard: 0, height: 9, decision }] : [])],
    };
  };
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
      if (url === '/beacon/v1/status') return send(200, BEACON_STATUS);
      if (url.startsWith('/v1/accounts/')) return send(200, { address: url.slice(13), balance: '1000', nonce: '3', pendingNonce: '3', publicKey: null });
      if (req.method === 'POST' && url === '/v1/txs') {
        const env = openTx(fromHex((JSON.parse(Buffer.concat(chunks).toString()) as { tx: string }).tx));
        const body = env.tx.body;
        if (body.chainId !== 'qnexus-test') return send(400, { error: { code: 'TX_WRONG_CHAIN', message: `wrong chain ${body.chainId}` } });
        // This node reports no registered key (publicKey null above): the CLI must carry it.
        if (!env.publicKey) return send(422, { error: { code: 'TX_KEY_UNKNOWN', message: 'send the public key with the account’s first transaction' } });
        if (!getBackend('ml-dsa-44').verify(env.publicKey, env.signBytes, env.tx.signature)) return send(400, { error: { code: 'TX_BAD_SIGNATURE', message: 'bad signature' } });
        if (body.nonce < 3n) return send(409, { error: { code: 'TX_NONCE_STALE', message: `nonce ${body.nonce} already used; the account's next nonce is 3` } });
        const kind = app.kindName(env);
        if (kind !== 'transfer' && kind !== 'xtransfer') return send(400, { error: { code: 'TX_UNKNOWN_KIND', message: kind } });
        const p = { kind, ...(app.decode(env).p as { amount: bigint }) };
        if (p.kind === 'transfer' && p.amount === 77n) return send(400, { error: { code: 'TX_CROSS_SHARD', message: 'recipient lives on shard 1' } });
        if (p.kind === 'xtransfer' && p.amount === 78n) return send(400, { error: { code: 'TX_SAME_SHARD', message: 'recipient lives on this shard (0)' } });
        received.push({ hash: env.hashHex, kind: p.kind, nonce: body.nonce, amount: p.amount, from: env.fromStr });
        return send(202, { hash: env.hashHex, status: 'pending' });
      }
      const xm = /^(\/beacon)?\/v1\/xtransfers\/([0-9a-f]{64})$/.exec(url);
      if (xm) {
        const tx = received.find((t) => t.hash === xm[2] && t.kind === 'xtransfer');
        if (!tx) return send(404, { error: { code: 'XS_UNKNOWN_TRANSFER', message: `no cross-shard transfer ${xm[2]}` } });
        return send(200, xfer(tx, xm[1] !== undefined));
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

  it('status on the beacon prints its slot, epoch and transfer counts', async () => {
    const r = await qnexus(['status', '--node', `${node.url}/beacon`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^chain\s+qnexus-test \(beacon\)$/m);
    assert.match(r.stdout, /^slot\s+120 \(epoch 3\)$/m);
    assert.match(r.stdout, /^xtransfers\s+5 \(1 undecided, 3 committed, 1 aborted; 4 applied on both shards\)$/m);
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

  const xtransfer = (...extra: string[]) =>
    qnexus(['tx', 'xtransfer', '--keystore', keyPath, '--passphrase-env', 'P', '--to', TO, '--node', node.url, ...extra], { env });

  it('tx xtransfer signs an xtransfer and prints its id', async () => {
    const r = await xtransfer('--amount', '100');
    assert.equal(r.code, 0, r.stderr);
    const last = node.received.at(-1)!;
    assert.equal(last.kind, 'xtransfer');
    assert.equal(last.amount, 100n);
    assert.match(r.stdout, new RegExp(`^id\\s+${last.hash}$`, 'm'));
    assert.match(r.stdout, /^status\s+pending$/m);
  });

  it('tx xtransfer --wait follows the transfer to its decision: committed exits 0', async () => {
    const r = await xtransfer('--amount', '100', '--wait');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^tx\s+final in block 7/m);
    assert.match(r.stdout, /^  source-applied\s+shard 0\s+height 9\s+commit$/m);
    assert.match(r.stdout, /^status\s+committed$/m);
    const j = await xtransfer('--amount', '100', '--wait', '--json');
    assert.equal(j.code, 0, j.stderr);
    const res = JSON.parse(j.stdout) as { id: string; status: string; decision: string; xtransfer: { role: string } };
    assert.equal(res.status, 'committed');
    assert.equal(res.decision, 'commit');
    assert.equal(res.xtransfer.role, 'source');
    assert.equal(res.id, node.received.at(-1)!.hash);
  });

  it('tx xtransfer --wait: aborted exits 1 with the beacon’s reason; undecided times out with 3', async () => {
    const aborted = await xtransfer('--amount', '101', '--wait', '--beacon', `${node.url}/beacon`);
    assert.equal(aborted.code, 1);
    assert.match(aborted.stdout, /^status\s+aborted$/m);
    assert.match(aborted.stderr, /^error \[XFER_ABORTED\]: cross-shard transfer [0-9a-f]{64} was aborted: deadline \(the amount was refunded/m);
    const noBeacon = await xtransfer('--amount', '101', '--wait');
    assert.equal(noBeacon.code, 1);
    assert.match(noBeacon.stderr, /^error \[XFER_ABORTED\]: .*pass --beacon <url> to ask the beacon/m);
    const viaEnv = await qnexus(['tx', 'xtransfer', '--keystore', keyPath, '--passphrase-env', 'P', '--to', TO, '--node', node.url, '--amount', '101', '--wait'], {
      env: { ...env, QNEXUS_BEACON: `${node.url}/beacon` },
    });
    assert.match(viaEnv.stderr, /was aborted: deadline/);
    const slow = await xtransfer('--amount', '102', '--wait', '--timeout', '0.8');
    assert.equal(slow.code, 3);
    assert.match(slow.stderr, /^error \[TIMEOUT\]: cross-shard transfer [0-9a-f]{64} not applied/m);
  });

  it('hints at the other transfer kind when the node refuses the recipient’s shard', async () => {
    const cross = await transfer('--amount', '77');
    assert.equal(cross.code, 1);
    assert.match(cross.stderr, /^error \[TX_CROSS_SHARD\]: recipient lives on shard 1\nhint: .*qnexus tx xtransfer/m);
    const same = await xtransfer('--amount', '78');
    assert.equal(same.code, 1);
    assert.match(same.stderr, /^error \[TX_SAME_SHARD\]: .*\nhint: .*qnexus tx transfer/m);
  });

  it('tx xstatus shows a node’s or the beacon’s record', async () => {
    const id = node.received.filter((t) => t.kind === 'xtransfer' && t.amount === 101n).at(-1)!.hash;
    const n = await qnexus(['tx', 'xstatus', id, '--node', node.url]);
    assert.equal(n.code, 0, n.stderr);
    assert.match(n.stdout, /^view\s+source shard$/m);
    assert.match(n.stdout, /^status\s+aborted$/m);
    const b = await qnexus(['tx', 'xstatus', id, '--node', `${node.url}/beacon`]);
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stdout, /^view\s+beacon \(applied on both shards\)$/m);
    assert.match(b.stdout, /^  decided\s+beacon\s+slot 61\s+abort: deadline$/m);
    assert.match(b.stdout, /^status\s+aborted \(deadline\)$/m);
    const unknown = await qnexus(['tx', 'xstatus', 'ab'.repeat(32), '--node', node.url]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^error \[XS_UNKNOWN_TRANSFER\]/m);
    const bad = await qnexus(['tx', 'xstatus', 'nope', '--node', node.url]);
    assert.equal(bad.code, 2);
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
