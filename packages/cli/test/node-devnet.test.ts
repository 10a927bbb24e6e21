import { strict as assert } from 'node:assert';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encryptKeystore } from '@qnexus/crypto';
import { peerIdFromKeyFile } from '@qnexus/p2p';
import { epochCommittees } from '@qnexus/state';
import { parseGenesis } from '@qnexus/types';
import { CliError, startDevnet } from '../src/index.js';
import { qnexus } from './helpers.js';

async function writeKeystore(path: string, scheme: 'ml-dsa-44' | 'ml-dsa-65' = 'ml-dsa-44'): Promise<string> {
  const k = await encryptKeystore(scheme, 'pw', undefined, { scryptN: 1024 });
  await writeFile(path, JSON.stringify(k.file));
  return k.file.address;
}

describe('cli: node and beacon (configuration errors, nothing started)', function () {
  this.timeout(60_000);
  let dir: string;
  let genesis: string;
  let genesis2: string;
  let v0: string;
  let v65: string;
  let beaconKey: string;
  let beaconDir: string;
  const v2: string[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qnexus-cli-node-'));
    v0 = join(dir, 'v0.json');
    v65 = join(dir, 'v65.json');
    beaconKey = join(dir, 'beacon.json');
    beaconDir = join(dir, 'beacon');
    await writeKeystore(v0);
    await writeKeystore(v65, 'ml-dsa-65');
    await writeKeystore(beaconKey);
    genesis = join(dir, 'genesis.json');
    const beacon = ['--beacon', beaconKey, '--beacon-peer-key', join(beaconDir, 'peer.key')];
    const r = await qnexus(['genesis', '--out', genesis, '--chain-id', 'qnexus-test', '--genesis-time', '0', '--validator', v0, ...beacon]);
    assert.equal(r.code, 0, r.stderr);
    // Two shards, one validator each.
    for (const n of ['a', 'b']) {
      const path = join(dir, `v2-${n}.json`);
      await writeKeystore(path);
      v2.push(path);
    }
    genesis2 = join(dir, 'genesis2.json');
    const r2 = await qnexus(['genesis', '--out', genesis2, '--chain-id', 'qnexus-test', '--genesis-time', '0', '--shard-count', '2', ...v2.flatMap((v) => ['--validator', v]), ...beacon]);
    assert.equal(r2.code, 0, r2.stderr);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const node = (...args: string[]) => qnexus(['node', '--data-dir', join(dir, 'data'), '--api-port', '0', '--p2p-port', '0', ...args], { env: { P: 'pw', BAD: 'nope' } });

  it('reports a missing or invalid genesis', async () => {
    const missing = await node('--genesis', join(dir, 'missing.json'));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error \[FILE_NOT_FOUND\]: genesis file/m);
    const junk = join(dir, 'junk.json');
    await writeFile(junk, '{"chainId": "x"}');
    const invalid = await node('--genesis', junk);
    assert.equal(invalid.code, 1);
    assert.match(invalid.stderr, /^error \[BAD_GENESIS\]: /m);
  });

  it('reports a bad shard, a wrong passphrase, a scheme mismatch and misplaced options', async () => {
    const shard = await node('--genesis', genesis, '--shard', '1');
    assert.equal(shard.code, 1);
    assert.match(shard.stderr, /^error \[BAD_CONFIG\]: --shard 1 does not exist/m);
    const pass = await node('--genesis', genesis, '--validator', v0, '--passphrase-env', 'BAD');
    assert.equal(pass.code, 1);
    assert.match(pass.stderr, /^error \[KEYSTORE_BAD_PASSPHRASE\]/m);
    const scheme = await node('--genesis', genesis, '--validator', v65, '--passphrase-env', 'P');
    assert.equal(scheme.code, 1);
    assert.match(scheme.stderr, /^error \[BAD_CONFIG\]: validator keystore .* is ml-dsa-65 but the chain uses ml-dsa-44/m);
    const misplaced = await node('--genesis', genesis, '--passphrase-env', 'P');
    assert.equal(misplaced.code, 2);
    const noTty = await node('--genesis', genesis, '--validator', v0);
    assert.equal(noTty.code, 2);
    assert.match(noTty.stderr, /^error \[USAGE\]: no passphrase given/m);
    const format = await node('--genesis', genesis, '--log-format', 'xml');
    assert.equal(format.code, 2);
  });

  it('refuses a validator on a shard the genesis committees do not assign it', async () => {
    const g = parseGenesis(JSON.parse(await readFile(genesis2, 'utf8')));
    const [c0] = epochCommittees(g, 0);
    const addressOf = (path: string) => (JSON.parse(readFileSync(path, 'utf8')) as { address: string }).address;
    const onShard0 = v2.find((path) => c0!.validators.some((v) => v.address === addressOf(path)))!;
    const wrong = await node('--genesis', genesis2, '--validator', onShard0, '--passphrase-env', 'P', '--shard', '1');
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /^error \[BAD_CONFIG\]: validator qn[0-9a-f]{40} serves shard 0 \(the genesis committees\), not --shard 1/m);
  });

  const beacon = (...args: string[]) => qnexus(['beacon', '--api-port', '0', '--p2p-port', '0', '--genesis', genesis, ...args], { env: { P: 'pw', BAD: 'nope' } });

  it('beacon: refuses a data dir without the genesis libp2p key, another key, a wrong passphrase or missing options', async () => {
    const missing = await beacon('--data-dir', join(dir, 'elsewhere'), '--key', beaconKey, '--passphrase-env', 'P');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error \[BAD_CONFIG\]: .*peer\.key does not exist: the beacon must run with the libp2p key whose peer id the genesis names/m);
    assert.equal(existsSync(join(dir, 'elsewhere', 'peer.key')), false, 'no key is created');
    const otherDir = join(dir, 'other');
    await peerIdFromKeyFile(join(otherDir, 'peer.key'));
    const other = await beacon('--data-dir', otherDir, '--key', beaconKey, '--passphrase-env', 'P');
    assert.equal(other.code, 1);
    assert.match(other.stderr, /^error \[BAD_CONFIG\]: .*peer\.key is peer \S+, but the genesis beacon is peer/m);
    const notBeacon = await beacon('--data-dir', beaconDir, '--key', v0, '--passphrase-env', 'P');
    assert.equal(notBeacon.code, 1);
    assert.match(notBeacon.stderr, /^error \[BAD_CONFIG\]: beacon keystore .*v0\.json .* does not hold the genesis beacon key/m);
    const pass = await beacon('--data-dir', beaconDir, '--key', beaconKey, '--passphrase-env', 'BAD');
    assert.equal(pass.code, 1);
    assert.match(pass.stderr, /^error \[KEYSTORE_BAD_PASSPHRASE\]/m);
    const noTty = await beacon('--data-dir', beaconDir, '--key', beaconKey);
    assert.equal(noTty.code, 2);
    assert.match(noTty.stderr, /^error \[USAGE\]: no passphrase given/m);
    const noKey = await beacon('--data-dir', beaconDir);
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /^error \[USAGE\]: required option '--key/m);
    const scheme = await beacon('--data-dir', beaconDir, '--key', v65, '--passphrase-env', 'P');
    assert.equal(scheme.code, 1);
    assert.match(scheme.stderr, /^error \[BAD_CONFIG\]: beacon keystore .* is ml-dsa-65 but the chain uses ml-dsa-44/m);
  });
});

describe('cli: devnet launcher pre-flight checks (no node started)', function () {
  this.timeout(60_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qnexus-cli-devnet-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function code(p: Promise<unknown>): Promise<string> {
    try {
      await p;
    } catch (e) {
      assert.ok(e instanceof CliError, String(e));
      return e.code;
    }
    assert.fail('expected startDevnet to fail');
  }

  it('never deletes or fills a directory that is not a devnet', async () => {
    const precious = join(dir, 'precious');
    await mkdir(precious);
    await writeFile(join(precious, 'thesis.tex'), 'do not lose me');
    assert.equal(await code(startDevnet({ dir: precious, basePort: 41000 })), 'DEVNET_NOT_A_DEVNET');
    assert.equal(await code(startDevnet({ dir: precious, basePort: 41000, reset: true })), 'DEVNET_NOT_A_DEVNET');
    assert.equal(await readFile(join(precious, 'thesis.tex'), 'utf8'), 'do not lose me');
  });

  it('fails with PORT_IN_USE before creating anything', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const target = join(dir, 'ports');
      // the API port of node 0 is base+100: block it
      assert.equal(await code(startDevnet({ dir: target, basePort: port - 100, validators: 1, fullNodes: 0 })), 'PORT_IN_USE');
      assert.equal(existsSync(target), false);
    } finally {
      blocker.close();
    }
  });

  it('validates options', async () => {
    assert.equal(await code(startDevnet({ dir: join(dir, 'x'), validators: 0 })), 'USAGE');
    assert.equal(await code(startDevnet({ dir: join(dir, 'x'), chainId: 'Bad Id' })), 'USAGE');
    assert.equal(await code(startDevnet({ dir: join(dir, 'x'), validators: 60, fullNodes: 60 })), 'USAGE');
  });
});
