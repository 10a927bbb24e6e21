// A real shard node (in-process, one validator that finalizes alone) serves /v1/openapi.json: the document is valid
// OpenAPI 3.1, it lists exactly the routes the server routes (read from the running server, not a list kept here),
// and the node's answers, read through the SDK, match their route's schema exactly (a field the server sends
// without its definition fails).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressFromPublicKey, formatAddress, generateKeyPair, type KeyPair } from '@qnexus/crypto';
import { front, node as N, ErrorBody, type AnyRouteDef, type OpenApiDocument } from '@qnexus/api';
import { ADMIN_TOKEN_FILE, runningApis } from '@qnexus/runtime';
import { QnexusClient, transferAndWait, type StatusInfo } from '@qnexus/sdk';
import { startNode } from '../src/node.js';
import type { RunningNode } from '../src/config.js';
import { assertMatches, assertRoutesDocumented, assertValidOpenApi, call, fetchOpenApi, servedAt } from '../../api/test/check.js';
import { embeddedNodeConfig, unitGenesis } from './helpers.js';

const validator = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(31));
const beaconKey = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(70));
const [alice, bob] = [41, 42].map((i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(i))) as [KeyPair, KeyPair];
const addrOf = (k: KeyPair) => formatAddress(addressFromPublicKey(k.publicKey));

describe('node: /v1/openapi.json and the answers of a real node against their definitions', function () {
  this.timeout(120_000);
  let dir: string;
  let n: RunningNode;
  let url: string;
  let doc: OpenApiDocument;
  let token: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qnexus-openapi-'));
    const g = unitGenesis([validator], beaconKey, {
      chainId: 'openapi-test',
      genesisTime: Date.now(),
      accounts: [alice, bob].map((k) => ({ address: addrOf(k), balance: 1_000_000n })),
    });
    n = await startNode(
      embeddedNodeConfig(join(dir, 'n'), g, {
        validatorKey: { ...validator, address: addressFromPublicKey(validator.publicKey), seed: new Uint8Array(32) },
        verifyWorkers: 0,
      }),
    );
    url = n.info.apiUrl;
    token = readFileSync(join(dir, 'n', ADMIN_TOKEN_FILE), 'utf8').trim();
    doc = await fetchOpenApi(url);
  });
  after(async () => {
    await n?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the served document is valid OpenAPI 3.1 and has exactly the routes the server routes (admin ones included)', async () => {
    assert.equal(doc.openapi, '3.1.0');
    assert.equal(doc.info.title, 'Quantum Nexus shard node API');
    await assertValidOpenApi(doc);
    const served = servedAt(url, runningApis);
    assert.ok(served.some((d) => d.admin), 'a node with an admin token serves the admin routes');
    await assertRoutesDocumented(url, doc, served, token);
  });

  it('/v1/status read through the SDK is exactly the server\'s definition (networkHeight, eventLoopLagMs, overloaded, stateRoot included)', async () => {
    const client = new QnexusClient(url);
    const s: StatusInfo = await client.status();
    assertMatches(N.NodeStatus, s, 'GET /v1/status');
    // The fields the hand-written StatusInfo used to lack are typed now, and present.
    const { networkHeight, eventLoopLagMs, overloaded, stateRoot } = s;
    assert.equal(typeof networkHeight, 'number');
    assert.equal(typeof eventLoopLagMs, 'number');
    assert.equal(typeof overloaded, 'boolean');
    assert.match(stateRoot, /^[0-9a-f]{64}$/);
    assert.equal(s.role, 'validator');
  });

  it('blocks, a final transfer, accounts, supply, validators, committees, lists and explorer routes match their schemas', async () => {
    const client = new QnexusClient(url);
    await client.waitForHeight(1, 60_000, { finalized: true });
    const sent = await transferAndWait(client, { key: { ...alice, scheme: 'ml-dsa-44' }, to: addrOf(bob), amount: 5n, timeoutMs: 60_000 });
    assertMatches(N.Tx, sent.tx, 'GET /v1/txs/{hash} (final)');
    assert.equal(sent.tx.status, 'final');
    const final = sent.tx.block!.height;
    const get = async (def: AnyRouteDef, path: string) => {
      const body = await call(url, def, path);
      assertMatches(def.response, body, `GET ${path}`);
      return body;
    };
    const latest = (await get(N.block, '/v1/blocks/latest')) as { certificate: unknown };
    assert.notEqual(latest.certificate, null, 'a finalized block carries its certificate');
    await get(N.block, `/v1/blocks/${final}`);
    await get(N.block, '/v1/blocks/0');
    await get(N.blocks, '/v1/blocks?limit=5');
    await get(N.account, `/v1/accounts/${addrOf(alice)}`);
    await get(N.accountTxs, `/v1/accounts/${addrOf(alice)}/txs`);
    await get(N.supply, '/v1/supply');
    await get(N.validators, '/v1/validators');
    await get(N.validator, `/v1/validators/${addrOf(validator)}`);
    await get(N.committees, '/v1/committees');
    await get(N.committees, '/v1/committee?epoch=0');
    await get(N.shards, '/v1/shards');
    await get(N.xtransfers, '/v1/xtransfers');
    await get(N.evidence, '/v1/evidence');
    await get(N.search, `/v1/search?q=${sent.hash}`);
    await get(N.activity, '/v1/activity?limit=10');
    // Admin answers (bearer token).
    const auth = { headers: { authorization: `Bearer ${token}` } };
    assertMatches(front.adminPeers.response, await call(url, front.adminPeers, '/v1/admin/peers', auth), 'GET /v1/admin/peers');
    assertMatches(front.adminLogLevel.response, await call(url, front.adminLogLevel, '/v1/admin/log-level', auth), 'GET /v1/admin/log-level');
  });

  it('errors keep their envelope: { error: { code, message } } with the code\'s status', async () => {
    for (const [path, status, code] of [
      ['/v1/blocks/nope', 400, 'BAD_REQUEST'],
      [`/v1/txs/${'00'.repeat(32)}`, 404, 'TX_UNKNOWN'],
      ['/v1/shards?x=1', 400, 'BAD_REQUEST'],
      ['/v1/nothing', 404, 'NOT_FOUND'],
    ] as const) {
      const body = (await call(url, N.status, path, { expect: status })) as { error: { code: string } };
      assertMatches(ErrorBody, body, `${path} error`);
      assert.equal(body.error.code, code, path);
    }
  });
});
