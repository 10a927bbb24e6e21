// A real beacon (in-process) serves /v1/openapi.json: valid OpenAPI 3.1, exactly the routes its server routes (read
// from the running server), and its answers, read through the SDK where it has a method, match their schemas exactly.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { peerIdFromKeyFile } from '@qnexus/p2p';
import { beacon as B, schemas, ErrorBody, type AnyRouteDef } from '@qnexus/api';
import { runningApis } from '@qnexus/runtime';
import { QnexusClient } from '@qnexus/sdk';
import { startBeacon, type RunningBeacon } from '../src/index.js';
import { assertMatches, assertRoutesDocumented, assertValidOpenApi, call, fetchOpenApi, servedAt } from '../../api/test/check.js';
import { addrOf, key, testGenesis, unlocked } from './helpers.js';

describe('beacon: /v1/openapi.json and its answers against their definitions', function () {
  this.timeout(60_000);
  let dir: string;
  let beacon: RunningBeacon;
  let url: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qnexus-beacon-openapi-'));
    const dataDir = join(dir, 'beacon');
    const beaconKey = key(9);
    const beaconPeerId = await peerIdFromKeyFile(join(dataDir, 'peer.key'));
    const genesis = testGenesis({ validators: [1, 2, 3, 4].map(key), beacon: beaconKey, beaconPeerId, genesisTime: Date.now() });
    beacon = await startBeacon({
      dataDir,
      genesis,
      beaconKey: unlocked(beaconKey),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: [],
      apiHost: '127.0.0.1',
      apiPort: 0,
      logFormat: 'json',
      logLevel: 'error',
    });
    url = beacon.info.apiUrl;
  });
  after(async () => {
    await beacon?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the served document is valid OpenAPI 3.1 and has exactly the routes the server routes', async () => {
    const doc = await fetchOpenApi(url);
    assert.equal(doc.info.title, 'Quantum Nexus beacon API');
    await assertValidOpenApi(doc);
    const served = servedAt(url, runningApis);
    assert.ok(served.some((d) => d.id === 'network'), 'the beacon routes its own routes, not the node\'s');
    assert.ok(!served.some((d) => d.path === '/v1/txs'), 'and not the node\'s');
    await assertRoutesDocumented(url, doc, served);
  });

  it('status, validators, supply, committees, transfers and the network view match their schemas exactly', async () => {
    const client = new QnexusClient(url);
    assertMatches(B.BeaconStatus, await client.beaconStatus(), 'GET /v1/status');
    assertMatches(B.BeaconValidators, await client.beaconValidators(), 'GET /v1/validators');
    assertMatches(schemas.StakingTotals, await client.beaconSupply(), 'GET /v1/supply');
    assertMatches(B.BeaconCommittees, await client.committees(), 'GET /v1/committees');
    assertMatches(B.BeaconXTransferList, await client.beaconXTransfers(5), 'GET /v1/xtransfers');
    const get = async (def: AnyRouteDef, path: string) => assertMatches(def.response, await call(url, def, path), `GET ${path}`);
    await get(B.validator, `/v1/validators/${addrOf(key(1))}`);
    await get(B.committees, '/v1/committee?epoch=0');
    await get(B.network, '/v1/network');
    const err = await call(url, B.xtransfer, `/v1/xtransfers/${'00'.repeat(32)}`, { expect: 404 });
    assertMatches(ErrorBody, err, 'an unknown transfer');
  });
});
