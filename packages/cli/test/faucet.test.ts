// `requestDrip` (SDK) and `qnexus faucet` (CLI) against a stand-in node: the request they submit is
// the faucet module's own drip message, feeless, nonce 0, signed by a throwaway key of the node's
// shard; a refusal comes back with the faucet's code (and exit 1 from the CLI).
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fromHex, homeShard } from '@qnexus/crypto';
import { openTx, type TxEnvelope } from '@qnexus/types';
import { ApiError, FAUCET_DRIP_KIND, QnexusClient, faucetDripPayload, requestDrip } from '@qnexus/sdk';
import { FAUCET_KIND, faucetDripMsg } from '@qnexus/module-faucet';
import { app } from '@qnexus/app';
import { qnexus } from './helpers.js';

const TO = `qn${'ab'.repeat(20)}`;

/** A node of shard 1 of 2 that answers what requestDrip asks, and refuses submissions while `refuse` is set. */
function fakeNode() {
  const submitted: TxEnvelope[] = [];
  const state = { refuse: null as string | null };
  const server: Server = createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    let data = '';
    req.on('data', (d: Buffer) => (data += d.toString()));
    req.on('end', () => {
      if (req.method === 'GET' && req.url === '/v1/status') return send(200, { chainId: 'qn-fake', shard: 1 });
      if (req.method === 'GET' && req.url === '/v1/shards') return send(200, { shard: 1, shardCount: 2 });
      if (req.method === 'GET' && req.url === '/v1/faucet/status') return send(200, { shard: 0, drip: '10000000' });
      if (req.method === 'POST' && req.url === '/v1/txs') {
        if (state.refuse) return send(429, { error: { code: state.refuse, message: 'refused by the faucet' } });
        const env = openTx(fromHex((JSON.parse(data) as { tx: string }).tx));
        submitted.push(env);
        return send(202, { hash: env.hashHex, status: 'pending' });
      }
      send(404, { error: { code: 'NOT_FOUND', message: req.url ?? '' } });
    });
  });
  return { server, submitted, state };
}

describe('faucet: SDK requestDrip and the qnexus faucet command', function () {
  this.timeout(60_000);
  let node: ReturnType<typeof fakeNode>;
  let url = '';
  before(async () => {
    node = fakeNode();
    await new Promise<void>((r) => node.server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(node.server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => node.server.close(() => r())));
  beforeEach(() => {
    node.submitted.length = 0;
    node.state.refuse = null;
  });

  it("the SDK's drip payload is the module's message", () => {
    assert.equal(FAUCET_DRIP_KIND, FAUCET_KIND.drip);
    assert.deepEqual(faucetDripPayload(TO), faucetDripMsg({ to: fromHex('ab'.repeat(20)) }));
    assert.throws(() => faucetDripPayload('qn12'), /invalid address/);
  });

  it('submits a feeless drip request signed by a fresh key of the node’s shard', async () => {
    const r = await requestDrip(new QnexusClient(url), TO);
    assert.equal(node.submitted.length, 1);
    const env = node.submitted[0]!;
    assert.equal(r.hash, env.hashHex);
    assert.equal(r.shard, 1);
    assert.equal(homeShard(env.from, 2), 1);
    assert.equal(env.tx.body.fee, 0n);
    assert.equal(env.tx.body.nonce, 0n);
    assert.equal(env.tx.body.chainId, 'qn-fake');
    assert.equal(app.decode(env).def.name, 'faucet-drip');
    // Another request is signed by another throwaway key.
    await requestDrip(new QnexusClient(url), TO);
    assert.notEqual(node.submitted[1]!.fromStr, env.fromStr);
  });

  it("a refusal comes back with the faucet's code", async () => {
    node.state.refuse = 'FAUCET_COOLDOWN';
    await assert.rejects(requestDrip(new QnexusClient(url), TO), (e: unknown) => e instanceof ApiError && e.code === 'FAUCET_COOLDOWN' && e.status === 429);
  });

  it('qnexus faucet prints the request and where the drip comes from; a refusal exits 1 with its code', async () => {
    const ok = await qnexus(['faucet', TO, '--node', url]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /requested 10000000 for qn(ab){20}/);
    assert.match(ok.stdout, new RegExp(`request +${node.submitted[0]!.hashHex} \\(shard 1, submitted\\)`));
    assert.match(ok.stderr, /the faucet lives on shard 0/);
    const json = await qnexus(['faucet', TO, '--node', url, '--json']);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(Object.keys(JSON.parse(json.stdout) as object), ['address', 'request', 'node', 'shard', 'faucetShard', 'drip', 'status']);
    node.state.refuse = 'FAUCET_CAP';
    const no = await qnexus(['faucet', TO, '--node', url]);
    assert.equal(no.code, 1);
    assert.match(no.stderr, /error \[FAUCET_CAP\]/);
    const bad = await qnexus(['faucet', 'qn12', '--node', url]);
    assert.equal(bad.code, 2);
  });
});
