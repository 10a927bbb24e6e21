// ACCOUNT_WRONG_SHARD: the error's details reach the caller, and a client that knows other nodes
// asks one of the account's home shard instead (one hop, and only a node that serves that shard).
import { strict as assert } from 'node:assert';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiError, QnexusClient } from '../src/index.js';

const ADDR = 'qn' + '42'.repeat(20);

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** A node of `shard` that holds `ADDR` when `home` is its shard, else answers as the real API does. */
function node(shard: number, home: number, opts: { claimHome?: number } = {}): Handler {
  return (req, res) => {
    if (req.url === '/v1/status') return json(res, 200, { shard, chainId: 'c', role: 'full' });
    if (req.url === `/v1/accounts/${ADDR}`) {
      if (shard !== home) {
        return json(res, 400, { error: { code: 'ACCOUNT_WRONG_SHARD', message: `${ADDR} lives on shard ${home}`, homeShard: home, shard, nested: { ignored: true } } });
      }
      return json(res, 200, { address: ADDR, shard, homeShard: opts.claimHome ?? home, balance: '77', nonce: '0', pendingNonce: '0', publicKey: null });
    }
    json(res, 404, { error: { code: 'NOT_FOUND', message: 'no route' } });
  };
}

async function serve(h: Handler): Promise<{ url: string; server: Server; hits: () => number }> {
  let hits = 0;
  const server = createServer((req, res) => {
    hits++;
    h(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, hits: () => hits };
}

describe('sdk: ACCOUNT_WRONG_SHARD', () => {
  const servers: Server[] = [];
  const start = async (h: Handler) => {
    const s = await serve(h);
    servers.push(s.server);
    return s;
  };
  after(() => {
    for (const s of servers) {
      s.closeAllConnections();
      s.close();
    }
  });

  it('carries the home shard in details; scalar fields only', async () => {
    const a = await start(node(0, 1));
    const e = await new QnexusClient(a.url).account(ADDR).then(
      () => assert.fail('expected an error'),
      (x: unknown) => x,
    );
    assert.ok(e instanceof ApiError);
    assert.equal(e.code, 'ACCOUNT_WRONG_SHARD');
    assert.equal(e.status, 400);
    assert.deepEqual(e.details, { homeShard: 1, shard: 0 });
  });

  it('follows it to a node of the home shard, skipping unreachable and other-shard nodes', async () => {
    const a = await start(node(0, 1));
    const other0 = await start(node(0, 1));
    const b = await start(node(1, 1));
    const dead = await start(node(1, 1));
    dead.server.close();
    const c = new QnexusClient(a.url, { nodes: [a.url, dead.url, other0.url, b.url] });
    const acct = await c.account(ADDR);
    assert.equal(acct.balance, '77');
    assert.equal(acct.homeShard, 1);
    assert.equal(other0.hits(), 1, 'the shard-0 node was asked only its status');
  });

  it('does not follow without other nodes, nor when none serves the home shard', async () => {
    const a = await start(node(0, 1));
    const other0 = await start(node(0, 1));
    const e = await new QnexusClient(a.url, { nodes: [other0.url] }).account(ADDR).then(
      () => assert.fail('expected an error'),
      (x: unknown) => x,
    );
    assert.ok(e instanceof ApiError && e.code === 'ACCOUNT_WRONG_SHARD');
    assert.match(e.message, /none of the other nodes known to this client/);
  });

  it('refuses an answer that names another home shard than the one followed', async () => {
    const a = await start(node(0, 1));
    const liar = await start(node(1, 1, { claimHome: 0 }));
    const e = await new QnexusClient(a.url, { nodes: [liar.url] }).account(ADDR).then(
      () => assert.fail('expected an error'),
      (x: unknown) => x,
    );
    assert.ok(e instanceof ApiError && e.code === 'BAD_RESPONSE', String(e));
  });
});
