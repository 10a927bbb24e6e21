import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { encryptKeystore } from '@qnexus/crypto';
import { DEFAULT_EMPTY_BLOCK_INTERVAL as NODE_DEFAULT_EMPTY_BLOCK_INTERVAL } from '@qnexus/node';
import { DEFAULT_EMPTY_BLOCK_INTERVAL } from '../src/commands/node.js';
import { QNEXUS_BIN, qnexus, type CliResult } from './helpers.js';

/** Every QNEXUS_* variable of the test's own environment blanked (an empty variable counts as unset). */
const CLEAN_ENV: Record<string, string> = Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('QNEXUS_')).map((k) => [k, '']));

interface Printed {
  command: string;
  configFile: string | null;
  values: Record<string, unknown>;
  sources: Record<string, string>;
}

async function writeKeystore(path: string): Promise<void> {
  const k = await encryptKeystore('ml-dsa-44', 'pw', undefined, { scryptN: 1024 });
  await writeFile(path, JSON.stringify(k.file));
}

/** A free TCP port in 20000–32599 (below Linux's ephemeral range, like the e2e tests' ports). */
async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_600);
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

describe('cli: configuration from file, environment and flags', function () {
  this.timeout(60_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qnexus-cli-config-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  let n = 0;
  /** Write a config file (in its own subdirectory) and return its path. */
  async function configFile(content: unknown): Promise<string> {
    const sub = join(dir, `c${n++}`);
    await mkdir(sub, { recursive: true });
    const path = join(sub, 'qnexus.json');
    await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
    return path;
  }

  const run = (args: string[], env: Record<string, string> = {}, cwd?: string): Promise<CliResult> =>
    qnexus(args, { env: { ...CLEAN_ENV, ...env }, ...(cwd ? { cwd } : {}) });

  async function printed(args: string[], env: Record<string, string> = {}, cwd?: string): Promise<Printed> {
    const r = await run([...args, '--print-config'], env, cwd);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Printed;
  }

  const REQUIRED = ['--data-dir', '/tmp/qn-data', '--genesis', '/tmp/qn-genesis.json'];

  it('precedence: flag > QNEXUS_* variable > config file > default', async () => {
    const file = await configFile({ apiPort: 9001, logLevel: 'warn', apiHost: '0.0.0.0' });
    const d = await printed(['node', ...REQUIRED]);
    assert.equal(d.configFile, null);
    assert.deepEqual([d.values.apiPort, d.sources.apiPort], [8545, 'default']);
    assert.deepEqual([d.values.logLevel, d.sources.logLevel], ['info', 'default']);
    assert.equal(d.sources.shard, 'unset');
    assert.equal('shard' in d.values, false);

    const c = await printed(['node', ...REQUIRED, '--config', file]);
    assert.equal(c.configFile, file);
    assert.deepEqual([c.values.apiPort, c.sources.apiPort], [9001, 'config']);
    assert.deepEqual([c.values.logLevel, c.sources.logLevel], ['warn', 'config']);
    assert.deepEqual([c.values.dataDir, c.sources.dataDir], ['/tmp/qn-data', 'flag']);

    const e = await printed(['node', ...REQUIRED, '--config', file], { QNEXUS_API_PORT: '9002', QNEXUS_LOG_LEVEL: 'error' });
    assert.deepEqual([e.values.apiPort, e.sources.apiPort], [9002, 'env']);
    assert.deepEqual([e.values.logLevel, e.sources.logLevel], ['error', 'env']);
    assert.deepEqual([e.values.apiHost, e.sources.apiHost], ['0.0.0.0', 'config']);

    const f = await printed(['node', ...REQUIRED, '--config', file, '--api-port', '9003'], { QNEXUS_API_PORT: '9002' });
    assert.deepEqual([f.values.apiPort, f.sources.apiPort], [9003, 'flag']);
    // The environment beats the default without a file too, and the flag beats it.
    const envOnly = await printed(['node', ...REQUIRED], { QNEXUS_LOG_FORMAT: 'json' });
    assert.deepEqual([envOnly.values.logFormat, envOnly.sources.logFormat], ['json', 'env']);
    const flagOverEnv = await printed(['node', ...REQUIRED, '--log-format', 'pretty'], { QNEXUS_LOG_FORMAT: 'json' });
    assert.deepEqual([flagOverEnv.values.logFormat, flagOverEnv.sources.logFormat], ['pretty', 'flag']);
    // QNEXUS_CONFIG names the file; --config beats it; an empty variable counts as unset.
    const viaEnv = await printed(['node', ...REQUIRED], { QNEXUS_CONFIG: file, QNEXUS_API_PORT: '' });
    assert.deepEqual([viaEnv.configFile, viaEnv.values.apiPort, viaEnv.sources.apiPort], [file, 9001, 'config']);
    const other = await configFile({ apiPort: 9004 });
    const both = await printed(['node', ...REQUIRED, '--config', other], { QNEXUS_CONFIG: file });
    assert.deepEqual([both.configFile, both.values.apiPort, both.values.logLevel], [other, 9004, 'info']);
  });

  it('repeatable options: an array in the file, a comma- or space-separated list in a variable or flag; a higher layer replaces the list', async () => {
    const a = '/ip4/127.0.0.1/tcp/7001/p2p/12D3KooWA';
    const b = '/ip4/127.0.0.1/tcp/7002/p2p/12D3KooWB';
    const c = '/dns4/s0-validator-1/tcp/7003/p2p/12D3KooWC';
    const file = await configFile({ bootstrap: [a, b], listen: ['/ip4/0.0.0.0/tcp/7000'], announce: c });
    const fromFile = await printed(['node', ...REQUIRED, '--config', file]);
    assert.deepEqual(fromFile.values.bootstrap, [a, b]);
    assert.deepEqual(fromFile.values.listen, ['/ip4/0.0.0.0/tcp/7000']);
    assert.deepEqual(fromFile.values.announce, [c], 'a single string is a list of one');
    const fromEnv = await printed(['node', ...REQUIRED, '--config', file], { QNEXUS_BOOTSTRAP: ` ${c}, ${b}\n${a} ` });
    assert.deepEqual([fromEnv.values.bootstrap, fromEnv.sources.bootstrap], [[c, b, a], 'env']);
    const fromFlags = await printed(['node', ...REQUIRED, '--config', file, '--bootstrap', `${b},${c}`, '--bootstrap', a], { QNEXUS_BOOTSTRAP: c });
    assert.deepEqual([fromFlags.values.bootstrap, fromFlags.sources.bootstrap], [[b, c, a], 'flag']);
    // Every element goes through the flag's parser.
    const bad = await run(['node', ...REQUIRED, '--config', await configFile({ bootstrap: [a, 'not-a-multiaddr'] })]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error \[BAD_CONFIG\]: option '--bootstrap <multiaddr>' value 'not-a-multiaddr' from config file '.*' \(key "bootstrap"\) is invalid\. expected a multiaddr/m);
    const badEnv = await run(['node', ...REQUIRED], { QNEXUS_BOOTSTRAP: `${a},nope` });
    assert.equal(badEnv.code, 2);
    assert.match(badEnv.stderr, /^error \[USAGE\]: option '--bootstrap <multiaddr>' value '.*nope' from env 'QNEXUS_BOOTSTRAP' is invalid\. expected a multiaddr/m);
    // A list only where the option is repeatable.
    const notList = await run(['node', ...REQUIRED, '--config', await configFile({ shard: [0, 1] })]);
    assert.equal(notList.code, 1);
    assert.match(notList.stderr, /^error \[BAD_CONFIG\]: config file .*: "shard" \(--shard <n>\) takes one value, not an array$/m);
  });

  it('rejects unknown keys (naming them and the valid ones), a passphrase, and a file that is not a JSON object', async () => {
    const unknown = await run(['node', ...REQUIRED, '--config', await configFile({ apiPort: 1, rpcPort: 2 })]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^error \[BAD_CONFIG\]: config file .*qnexus\.json: unknown key "rpcPort"; valid keys: dataDir, genesis, shard, validator, listen, .*apiPort, .*logFormat, logLevel, cryptoBackend, verifyWorkers, verifyCacheSize, txGossipBatch, txGossipFlushMs, emptyBlockInterval, admissionJournal, sync, snapshotThreshold, stateRetention, stateCacheMb, passphraseEnv, passphraseFile$/m);
    const kebab = await run(['node', ...REQUIRED, '--config', await configFile({ 'data-dir': 'x' })]);
    assert.equal(kebab.code, 1);
    assert.match(kebab.stderr, /unknown key "data-dir" \(keys are camelCase: "dataDir"\)/);
    for (const key of ['printConfig', 'config', 'stopOnStdinClose', 'help']) {
      const r = await run(['node', ...REQUIRED, '--config', await configFile({ [key]: true })]);
      assert.equal(r.code, 1, key);
      assert.match(r.stderr, new RegExp(`unknown key "${key}"`));
    }
    const pass = await run(['node', ...REQUIRED, '--config', await configFile({ validator: 'v.json', passphrase: 'hunter2' })]);
    assert.equal(pass.code, 1);
    assert.match(pass.stderr, /^error \[BAD_CONFIG\]: config file .*: "passphrase": a passphrase never goes in the config file; give "passphraseFile" .* or "passphraseEnv"/m);
    assert.doesNotMatch(pass.stderr + pass.stdout, /hunter2/);
    const notJson = await run(['node', ...REQUIRED, '--config', await configFile('{"apiPort": 1,}')]);
    assert.equal(notJson.code, 1);
    assert.match(notJson.stderr, /^error \[BAD_CONFIG\]: config file .*: not valid JSON/m);
    const array = await run(['node', ...REQUIRED, '--config', await configFile([{ apiPort: 1 }])]);
    assert.equal(array.code, 1);
    assert.match(array.stderr, /^error \[BAD_CONFIG\]: config file .*: expected a JSON object of option values/m);
    const missing = await run(['node', ...REQUIRED, '--config', join(dir, 'missing.json')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error \[FILE_NOT_FOUND\]: config file .*missing\.json does not exist/m);
    const wrongType = await run(['node', ...REQUIRED, '--config', await configFile({ apiHost: true })]);
    assert.equal(wrongType.code, 1);
    assert.match(wrongType.stderr, /"apiHost" \(--api-host <host>\) takes a string or a number, not true/);
  });

  it('checks a value in the file with the flag’s parser and says the same', async () => {
    const reason = (stderr: string) => /is invalid\. (.*)$/m.exec(stderr)?.[1];
    for (const [flag, key, value] of [
      ['--api-port', 'apiPort', 70000],
      ['--log-format', 'logFormat', 'xml'],
      ['--shard', 'shard', -1],
      ['--api-rate-limit', 'apiRateLimit', 1.5],
      ['--crypto-backend', 'cryptoBackend', 'openssl'],
      ['--verify-workers', 'verifyWorkers', -1],
      ['--verify-workers', 'verifyWorkers', 257],
      ['--verify-cache-size', 'verifyCacheSize', 1.5],
      ['--verify-cache-size', 'verifyCacheSize', 'many'],
      ['--tx-gossip-batch', 'txGossipBatch', 0],
      ['--tx-gossip-batch', 'txGossipBatch', 65],
      ['--tx-gossip-flush-ms', 'txGossipFlushMs', -1],
      ['--tx-gossip-flush-ms', 'txGossipFlushMs', 10_001],
      ['--empty-block-interval', 'emptyBlockInterval', 0],
      ['--empty-block-interval', 'emptyBlockInterval', 1_001],
      ['--api-max-connections', 'apiMaxConnections', 0],
      ['--api-max-connections-per-ip', 'apiMaxConnectionsPerIp', 1.5],
      ['--api-headers-timeout-ms', 'apiHeadersTimeoutMs', 99],
      ['--api-request-timeout-ms', 'apiRequestTimeoutMs', 3_600_001],
    ] as const) {
      // The three layers are independent processes: started together (each is mostly node's start-up).
      const [viaFlag, viaFile, viaEnv] = await Promise.all([
        run(['node', ...REQUIRED, flag, String(value)]),
        configFile({ [key]: value }).then((f) => run(['node', ...REQUIRED, '--config', f])),
        run(['node', ...REQUIRED], { [`QNEXUS_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`]: String(value) }),
      ]);
      assert.equal(viaFlag.code, 2, viaFlag.stderr);
      assert.equal(viaFile.code, 1, viaFile.stderr);
      assert.match(viaFile.stderr, new RegExp(`^error \\[BAD_CONFIG\\]: option '${flag} <[^>]+>' value '${String(value).replace('.', '\\.')}' from config file '.*qnexus\\.json' \\(key "${key}"\\) is invalid\\. `, 'm'));
      assert.ok(reason(viaFlag.stderr), viaFlag.stderr);
      assert.equal(reason(viaFile.stderr), reason(viaFlag.stderr));
      assert.equal(viaEnv.code, 2, viaEnv.stderr);
      assert.equal(reason(viaEnv.stderr), reason(viaFlag.stderr));
    }
    // Even a value a flag overrides is checked: the file is wrong either way.
    const overridden = await run(['node', ...REQUIRED, '--api-port', '1', '--config', await configFile({ apiPort: 'x' })]);
    assert.equal(overridden.code, 1);
    assert.match(overridden.stderr, /is invalid\. expected an integer\.$/m);
  });

  it('crypto backend and verification knobs: defaults, every layer, and the node-only ones only on the node', async () => {
    const d = await printed(['node', ...REQUIRED]);
    assert.deepEqual([d.values.cryptoBackend, d.sources.cryptoBackend], ['auto', 'default']);
    assert.deepEqual([d.values.txGossipBatch, d.sources.txGossipBatch], [64, 'default']);
    // Unset: the node picks (workers by core count, the cache's built-in capacity).
    assert.deepEqual([d.sources.verifyWorkers, d.sources.verifyCacheSize], ['unset', 'unset']);
    const file = await configFile({ cryptoBackend: 'pqclean', verifyWorkers: 0, verifyCacheSize: 0, txGossipBatch: 1 });
    const c = await printed(['node', ...REQUIRED, '--config', file]);
    assert.deepEqual(
      [c.values.cryptoBackend, c.values.verifyWorkers, c.values.verifyCacheSize, c.values.txGossipBatch],
      ['pqclean', 0, 0, 1],
    );
    assert.deepEqual([c.sources.cryptoBackend, c.sources.verifyWorkers, c.sources.verifyCacheSize, c.sources.txGossipBatch], ['config', 'config', 'config', 'config']);
    const e = await printed(['node', ...REQUIRED, '--config', file, '--verify-workers', '3'], { QNEXUS_CRYPTO_BACKEND: 'noble', QNEXUS_TX_GOSSIP_BATCH: '16', QNEXUS_VERIFY_CACHE_SIZE: '5000' });
    assert.deepEqual([e.values.cryptoBackend, e.sources.cryptoBackend], ['noble', 'env']);
    assert.deepEqual([e.values.txGossipBatch, e.sources.txGossipBatch], [16, 'env']);
    assert.deepEqual([e.values.verifyCacheSize, e.sources.verifyCacheSize], [5000, 'env']);
    assert.deepEqual([e.values.verifyWorkers, e.sources.verifyWorkers], [3, 'flag']);
    // The beacon takes --crypto-backend (shared option) but not the node's verification knobs.
    const b = await printed(['beacon', ...REQUIRED, '--key', 'beacon.json', '--crypto-backend', 'pqclean']);
    assert.deepEqual([b.values.cryptoBackend, b.sources.cryptoBackend], ['pqclean', 'flag']);
    assert.equal('verifyWorkers' in b.sources, false);
    const badKey = await run(['beacon', ...REQUIRED, '--key', 'beacon.json', '--config', await configFile({ verifyWorkers: 2 })]);
    assert.equal(badKey.code, 1);
    assert.match(badKey.stderr, /unknown key "verifyWorkers"/);
    for (const cmd of ['node', 'beacon']) {
      const h = await run([cmd, '--help']);
      assert.match(h.stdout, /--crypto-backend <name>[\s\S]*choices: "auto",\s+"noble",\s+"pqclean",\s+default:\s+"auto",\s+env:\s+QNEXUS_CRYPTO_BACKEND\)/, cmd);
    }
    assert.match((await run(['node', '--help'])).stdout, /QNEXUS_VERIFY_WORKERS[\s\S]*QNEXUS_VERIFY_CACHE_SIZE[\s\S]*QNEXUS_TX_GOSSIP_BATCH/);
  });

  it('API server limits: unset by default (the process decides), every layer, on the node and the beacon', async () => {
    const keys = ['apiMaxConnections', 'apiMaxConnectionsPerIp', 'apiHeadersTimeoutMs', 'apiRequestTimeoutMs'];
    const d = await printed(['node', ...REQUIRED]);
    assert.deepEqual(keys.map((k) => d.sources[k]), ['unset', 'unset', 'unset', 'unset']);
    const file = await configFile({ apiMaxConnections: 100, apiMaxConnectionsPerIp: 10, apiHeadersTimeoutMs: 2000, apiRequestTimeoutMs: 4000 });
    for (const cmd of [['node', ...REQUIRED], ['beacon', ...REQUIRED, '--key', 'beacon.json']]) {
      const c = await printed([...cmd, '--config', file, '--api-max-connections-per-ip', '20'], { QNEXUS_API_HEADERS_TIMEOUT_MS: '3000' });
      assert.deepEqual(keys.map((k) => c.values[k]), [100, 20, 3000, 4000], cmd[0]);
      assert.deepEqual(keys.map((k) => c.sources[k]), ['config', 'flag', 'env', 'config'], cmd[0]);
    }
    const h = await run(['beacon', '--help']);
    assert.match(h.stdout, /QNEXUS_API_MAX_CONNECTIONS\)[\s\S]*QNEXUS_API_MAX_CONNECTIONS_PER_IP\)[\s\S]*QNEXUS_API_HEADERS_TIMEOUT_MS\)[\s\S]*QNEXUS_API_REQUEST_TIMEOUT_MS\)/);
  });

  it('--crypto-backend pqclean where pqclean cannot load: CRYPTO_BACKEND_UNAVAILABLE, exit 1, no fallback', async () => {
    // Hide the package from require() in the child, whether or not it is installed here.
    const hook = join(dir, 'hide-pqclean.cjs');
    await writeFile(
      hook,
      `const M = require('node:module'); const load = M._load;
M._load = function (req, ...a) { if (req === 'pqclean') { const e = new Error("Cannot find module 'pqclean'"); e.code = 'MODULE_NOT_FOUND'; throw e; } return load.call(this, req, ...a); };\n`,
    );
    const env = { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${hook}`.trim() };
    const expect = (r: CliResult, what: string) => {
      assert.equal(r.code, 1, `${what}: ${r.stderr}`);
      assert.match(r.stderr, /^error \[CRYPTO_BACKEND_UNAVAILABLE\]: --crypto-backend pqclean: the optional package pqclean is not installed/m, `${what}: ${r.stderr}`);
    };
    expect(await run(['node', ...REQUIRED, '--crypto-backend', 'pqclean'], env), 'node flag');
    expect(await run(['node', ...REQUIRED], { ...env, QNEXUS_CRYPTO_BACKEND: 'pqclean' }), 'node env');
    expect(await run(['beacon', ...REQUIRED, '--key', 'beacon.json', '--config', await configFile({ cryptoBackend: 'pqclean' })], env), 'beacon config file');
    expect(await run(['devnet', '--dir', join(dir, 'devnet-pq'), '--crypto-backend', 'pqclean'], env), 'devnet');
    assert.equal(existsSync(join(dir, 'devnet-pq')), false, 'the devnet created nothing');
    // noble needs nothing optional: it gets past the backend check (to the missing genesis).
    const noble = await run(['node', ...REQUIRED, '--crypto-backend', 'noble'], env);
    assert.match(noble.stderr, /^error \[FILE_NOT_FOUND\]: genesis/m);
  });

  it('resolves relative paths in the file against its directory (flags and variables: against the working directory)', async () => {
    const file = await configFile({ dataDir: 'data/n0', genesis: '../genesis.json', peerKey: './keys/peer.key', passphraseFile: 'pass', bootstrapFile: '/abs/topology.json', validator: 'v0.json', apiHost: 'localhost' });
    const base = join(file, '..');
    const p = await printed(['node', '--config', file], {}, dir);
    assert.equal(p.values.dataDir, join(base, 'data/n0'));
    assert.equal(p.values.genesis, join(dir, 'genesis.json'));
    assert.equal(p.values.peerKey, join(base, 'keys/peer.key'));
    assert.equal(p.values.passphraseFile, join(base, 'pass'));
    assert.equal(p.values.validator, join(base, 'v0.json'));
    assert.equal(p.values.bootstrapFile, '/abs/topology.json');
    assert.equal(p.values.apiHost, 'localhost', 'not a path');
    // A relative --config is found from the working directory; its paths still resolve against its own directory.
    const rel = await printed(['node', '--config', relative(dir, file)], { QNEXUS_GENESIS: 'g.json' }, dir);
    assert.equal(rel.configFile, file);
    assert.equal(rel.values.dataDir, join(base, 'data/n0'));
    assert.deepEqual([rel.values.genesis, rel.sources.genesis], ['g.json', 'env']);
    const beacon = await printed(['beacon', '--config', await configFile({ key: 'beacon.json', dataDir: 'b', genesis: 'g.json' })]);
    assert.equal(beacon.values.key, join(dir, `c${n - 1}`, 'beacon.json'));
    assert.equal(beacon.values.apiPort, 8546);
  });

  it('required options may come from the environment or the file; missing ones are usage errors naming all three ways', async () => {
    const file = await configFile({ genesis: 'genesis.json' });
    const ok = await printed(['node', '--config', file], { QNEXUS_DATA_DIR: '/srv/qn' });
    assert.deepEqual([ok.sources.dataDir, ok.sources.genesis], ['env', 'config']);
    const none = await run(['node', '--config', file]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^error \[USAGE\]: required option '--data-dir <dir>' not specified \(give the flag, QNEXUS_DATA_DIR or "dataDir" in the config file\)$/m);
    const noKey = await run(['beacon', '--data-dir', 'b', '--genesis', 'g.json']);
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /^error \[USAGE\]: required option '--key <keystore>' not specified/m);
    const key = await printed(['beacon', '--data-dir', 'b', '--genesis', 'g.json'], { QNEXUS_KEY: 'beacon.json' });
    assert.deepEqual([key.values.key, key.sources.key], ['beacon.json', 'env']);
  });

  it('documents the variables and the precedence in the help', async () => {
    for (const cmd of ['node', 'beacon']) {
      const r = await run([cmd, '--help']);
      assert.equal(r.code, 0);
      for (const v of ['QNEXUS_DATA_DIR', 'QNEXUS_GENESIS', 'QNEXUS_API_PORT', 'QNEXUS_BOOTSTRAP', 'QNEXUS_LOG_FORMAT', 'QNEXUS_LOG_LEVEL', 'QNEXUS_CONFIG', 'QNEXUS_PASSPHRASE_FILE']) {
        assert.match(r.stdout, new RegExp(`env:\\s+${v}\\)`), `${cmd}: ${v}`);
      }
      assert.match(r.stdout, /Precedence, highest first: flag > QNEXUS_\* environment variable > config file > default/);
      assert.doesNotMatch(r.stdout, /QNEXUS_STOP_ON_STDIN_CLOSE|QNEXUS_PRINT_CONFIG/);
    }
    assert.match((await run(['node', '--help'])).stdout, /QNEXUS_SHARD[\s\S]*QNEXUS_VALIDATOR/);
  });

  describe('a node run from a config file and the environment only', function () {
    this.timeout(120_000);
    let genesisDir: string;
    before(async () => {
      // A two-shard genesis (one validator per shard); the node runs shard 1 as a full node.
      genesisDir = join(dir, 'chain');
      await mkdir(genesisDir, { recursive: true });
      const beaconKey = join(genesisDir, 'beacon.json');
      await writeKeystore(beaconKey);
      const validators: string[] = [];
      for (const name of ['a', 'b']) {
        const path = join(genesisDir, `v-${name}.json`);
        await writeKeystore(path);
        validators.push('--validator', path);
      }
      const r = await run([
        'genesis', '--out', join(genesisDir, 'genesis.json'), '--chain-id', 'qnexus-config-test', '--genesis-time', '0', '--shard-count', '2',
        ...validators, '--beacon', beaconKey, '--beacon-peer-key', join(genesisDir, 'beacon-peer.key'),
      ]);
      assert.equal(r.code, 0, r.stderr);
    });

    it('refuses a headers timeout above the request timeout (BAD_CONFIG, exit 1) before starting anything', async () => {
      const data = join(dir, 'timeouts');
      const r = await run(['node', '--data-dir', data, '--genesis', join(genesisDir, 'genesis.json'), '--api-headers-timeout-ms', '20000']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^error \[BAD_CONFIG\]: --api-headers-timeout-ms 20000 exceeds --api-request-timeout-ms 10000/m);
      assert.equal(existsSync(data), false, 'nothing was created');
      const ok = await run(['node', '--data-dir', data, '--genesis', join(genesisDir, 'genesis.json'), '--api-headers-timeout-ms', '20000', '--api-request-timeout-ms', '20000', '--print-config']);
      assert.equal(ok.code, 0, ok.stderr);
    });

    it('serves its API on the port of QNEXUS_API_PORT and runs the shard of the file, then stops on SIGTERM', async () => {
      const apiPort = await freePort();
      let p2pPort = await freePort();
      while (p2pPort === apiPort) p2pPort = await freePort();
      const file = join(genesisDir, 'node.json');
      await writeFile(file, JSON.stringify({ dataDir: 'data/n1', genesis: 'genesis.json', shard: 1, p2pPort, apiPort: 1, logLevel: 'warn' }));
      const env = { ...process.env, ...CLEAN_ENV, QNEXUS_API_PORT: String(apiPort), QNEXUS_LOG_FORMAT: 'json' };
      const child = spawn(process.execPath, [...QNEXUS_BIN, 'node', '--config', file], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
      let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
      void exited.then((e) => (exit = e));
      try {
        let status: { chainId: string; shard: number; role: string } | undefined;
        const deadline = Date.now() + 60_000;
        while (!status && !exit && Date.now() < deadline) {
          try {
            const res = await fetch(`http://127.0.0.1:${apiPort}/v1/status`);
            if (res.ok) status = (await res.json()) as typeof status;
          } catch {
            await new Promise((r) => setTimeout(r, 200));
          }
        }
        assert.ok(status, `no /v1/status on port ${apiPort} (exit: ${JSON.stringify(exit)}): ${output}`);
        assert.equal(status.chainId, 'qnexus-config-test');
        assert.equal(status.shard, 1);
        assert.equal(status.role, 'full');
        assert.ok(existsSync(join(genesisDir, 'data/n1', 'peer.key')), 'the data dir resolved against the config file');
        assert.ok(existsSync(join(genesisDir, 'data/n1', 'node-info.json')));
      } finally {
        if (!exit) child.kill('SIGTERM');
      }
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const e = await exited;
      clearTimeout(timer);
      assert.deepEqual(e, { code: 0, signal: null }, output);
      // JSON logs (QNEXUS_LOG_FORMAT) at warn level (the file): no pretty lines.
      for (const line of output.split('\n').filter((l) => l.trim() !== '')) assert.doesNotThrow(() => JSON.parse(line), line);
    });
  });
});

describe('cli: defaults mirrored from the node package (which the CLI loads lazily)', () => {
  it('--empty-block-interval says the default the node applies', () => {
    assert.equal(DEFAULT_EMPTY_BLOCK_INTERVAL, NODE_DEFAULT_EMPTY_BLOCK_INTERVAL);
  });
});
