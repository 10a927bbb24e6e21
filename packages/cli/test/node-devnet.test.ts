import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encryptKeystore } from '@qnexus/crypto';
import { CliError, startDevnet } from '../src/index.js';
import { qnexus } from './helpers.js';

describe('cli: node (configuration errors, no node started)', function () {
  this.timeout(60_000);
  let dir: string;
  let genesis: string;
  let v0: string;
  let v65: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qnexus-cli-node-'));
    const k44 = await encryptKeystore('ml-dsa-44', 'pw', undefined, { scryptN: 1024 });
    const k65 = await encryptKeystore('ml-dsa-65', 'pw', undefined, { scryptN: 1024 });
    v0 = join(dir, 'v0.json');
    v65 = join(dir, 'v65.json');
    await writeFile(v0, JSON.stringify(k44.file));
    await writeFile(v65, JSON.stringify(k65.file));
    genesis = join(dir, 'genesis.json');
    const r = await qnexus(['genesis', '--out', genesis, '--chain-id', 'qnexus-test', '--genesis-time', '0', '--validator', v0]);
    assert.equal(r.code, 0, r.stderr);
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
