import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { backendAvailable, formatAddress, homeShard, parseAddress, toHex, type BackendChoice } from '@qnexus/crypto';
import { peerIdFromKeyFile } from '@qnexus/p2p';
import { epochCommittees, moduleAccount } from '@qnexus/state';
import {
  API_PORT_OFFSET,
  BEACON_INDEX,
  CliError,
  DEVNET_DEFAULTS,
  assignDevnetValidators,
  devnetBeaconPorts,
  fillShards,
  planDevnet,
  prepareDevnet,
  type Devnet,
  type DevnetOptions,
} from '../src/index.js';

/**
 * A base port clear of a developer's devnet (7000+) and below Linux's ephemeral ports (32768+),
 * where another process's outgoing connection can take a port between the free-port check and
 * its use (CI saw port 46700 taken). The e2e clusters use the same range, but never at the same
 * time: mocha runs the unit and e2e suites one after the other.
 */
const randomBasePort = () => 20_000 + Math.floor(Math.random() * 63) * 200;

describe('cli: devnet layout (pure)', () => {
  it('plans one shard exactly as before: validator-<i>, full-<j>, ports base+i / base+100+i', () => {
    const plan = planDevnet({ shards: 1, validators: 4, fullNodes: 1, basePort: 7000 });
    assert.deepEqual(
      plan.map((p) => [p.name, p.role, p.shard, p.p2pPort, p.apiPort, p.keyFile]),
      [
        ['validator-0', 'validator', 0, 7000, 7100, 'validator-0.json'],
        ['validator-1', 'validator', 0, 7001, 7101, 'validator-1.json'],
        ['validator-2', 'validator', 0, 7002, 7102, 'validator-2.json'],
        ['validator-3', 'validator', 0, 7003, 7103, 'validator-3.json'],
        ['full-0', 'full', 0, 7004, 7104, null],
      ],
    );
  });

  it('plans several shards shard by shard with s<k>- names and unique ports', () => {
    const plan = planDevnet({ shards: 2, validators: 2, fullNodes: 1, basePort: 9000 });
    assert.deepEqual(
      plan.map((p) => [p.name, p.role, p.shard, p.index, p.p2pPort, p.apiPort, p.keyFile]),
      [
        ['s0-validator-0', 'validator', 0, 0, 9000, 9100, 's0-validator-0.json'],
        ['s0-validator-1', 'validator', 0, 1, 9001, 9101, 's0-validator-1.json'],
        ['s0-full-0', 'full', 0, 2, 9002, 9102, null],
        ['s1-validator-0', 'validator', 1, 3, 9003, 9103, 's1-validator-0.json'],
        ['s1-validator-1', 'validator', 1, 4, 9004, 9104, 's1-validator-1.json'],
        ['s1-full-0', 'full', 1, 5, 9005, 9105, null],
      ],
    );
    const big = planDevnet({ shards: 8, validators: 10, fullNodes: 2, basePort: 7000 });
    assert.equal(big.length, 96);
    const ports = big.flatMap((p) => [p.p2pPort, p.apiPort]);
    assert.equal(new Set(ports).size, ports.length);
    assert.equal(new Set(big.map((p) => p.name)).size, big.length);
    assert.ok(big.every((p) => p.apiPort - p.p2pPort === API_PORT_OFFSET && p.index < API_PORT_OFFSET));
  });

  it('puts the beacon on the last index, clear of every planned node', () => {
    assert.deepEqual(devnetBeaconPorts(7000), { index: BEACON_INDEX, p2pPort: 7099, apiPort: 7199 });
    const big = planDevnet({ shards: 3, validators: 33, fullNodes: 0, basePort: 7000 });
    assert.ok(big.every((p) => p.index < BEACON_INDEX));
  });

  it('names validators from the genesis committees: s<k>-validator-<i> is the i-th (by address) of shard k', () => {
    const plan = planDevnet({ shards: 2, validators: 2, fullNodes: 1, basePort: 7000 });
    const got = assignDevnetValidators(plan, [['qnb', 'qna'], ['qnd', 'qnc']]);
    assert.deepEqual([...got], [['s0-validator-0', 'qna'], ['s0-validator-1', 'qnb'], ['s1-validator-0', 'qnc'], ['s1-validator-1', 'qnd']]);
    assert.throws(() => assignDevnetValidators(plan, [['qna'], ['qnb', 'qnc', 'qnd']]), /assigns 1 validators to shard 0/);
  });

  it('fills every shard, dropping draws for full shards', () => {
    let n = 0;
    const got = fillShards(3, 2, () => n++, (x) => (x < 6 ? 0 : x % 3)); // shard 0 first gets far too many
    assert.deepEqual(got, [[0, 1], [7, 10], [8, 11]]);
    assert.deepEqual(fillShards(1, 3, () => 'k', () => 0), [['k', 'k', 'k']]);
    assert.deepEqual(fillShards(4, 0, () => assert.fail('no draw needed'), () => 0), [[], [], [], []]);
    assert.throws(() => fillShards(2, 1, () => 0, () => 0, 50), /could not fill/);
  });
});

describe('cli: devnet directory (prepareDevnet, no node started)', function () {
  this.timeout(120_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qnexus-cli-devnet-plan-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const base = (sub: string): DevnetOptions => ({ dir: join(dir, sub), basePort: randomBasePort(), scryptN: 1024 });
  // A stand-in for `qnexus node`: prints its arguments (into the node's log) and exits.
  const echoNode = { command: process.execPath, args: ['-e', 'console.log(JSON.stringify(process.argv.slice(1)))'] };
  const loggedArgs = async (logFile: string): Promise<string[]> => JSON.parse((await readFile(logFile, 'utf8')).trim().split('\n').pop()!) as string[];
  const argOf = (args: string[], flag: string) => args[args.indexOf(flag) + 1];

  async function failsToStart(p: Promise<unknown>): Promise<void> {
    await assert.rejects(p, (e: unknown) => e instanceof CliError && e.code === 'DEVNET_START_FAILED');
  }

  it('one shard: the same names, key files, ports as always, plus the beacon', async () => {
    const o = { ...base('one'), shards: 1 };
    const d = await prepareDevnet(o);
    assert.equal(d.resumed, false);
    assert.equal(d.genesis.shardCount, 1);
    assert.equal(d.genesis.xferTimeoutSlots, 20);
    const [beacon, ...nodes] = d.manifest.processes;
    assert.deepEqual(
      nodes.map((p) => [p.name, p.role, p.shard, p.p2pPort, p.apiPort]),
      planDevnet({ shards: 1, validators: 4, fullNodes: 1, basePort: o.basePort! }).map((p) => [p.name, p.role, p.shard, p.p2pPort, p.apiPort]),
    );
    // The beacon: its own data dir holding its keystore and the libp2p key the genesis names.
    assert.deepEqual([beacon!.name, beacon!.role, beacon!.shard, beacon!.p2pPort, beacon!.apiPort], ['beacon', 'beacon', null, o.basePort! + 99, o.basePort! + 199]);
    assert.equal(beacon!.dataDir, join(o.dir!, 'nodes', 'beacon'));
    assert.equal(beacon!.peerId, d.genesis.beacon.peerId);
    assert.equal(await peerIdFromKeyFile(join(beacon!.dataDir, 'peer.key')), d.genesis.beacon.peerId);
    assert.equal(toHex(d.genesis.beacon.publicKey), JSON.parse(await readFile(beacon!.keystore!, 'utf8')).publicKey);
    assert.ok(beacon!.keystore!.startsWith(beacon!.dataDir));
    assert.equal(beacon!.multiaddr, `/ip4/127.0.0.1/tcp/${o.basePort! + 99}/p2p/${beacon!.peerId}`);
    assert.deepEqual(beacon!.multiaddrs, [beacon!.multiaddr]);
    assert.equal(d.manifest.beacon, beacon, 'manifest.beacon is the beacon entry');
    assert.ok(nodes.every((p) => p.multiaddrs.length === 1 && p.multiaddrs[0] === p.multiaddr));
    assert.equal(JSON.parse(await readFile(d.manifestPath, 'utf8')).beacon.name, 'beacon');
    assert.deepEqual(
      d.manifest.processes.filter((p) => p.role === 'validator').map((p) => basename(p.keystore!)),
      ['validator-0.json', 'validator-1.json', 'validator-2.json', 'validator-3.json'],
    );
    assert.deepEqual(
      d.manifest.accounts.map((a) => [basename(a.keystore), a.shard]),
      [['account-0.json', 0], ['account-1.json', 0], ['account-2.json', 0], ['account-3.json', 0]],
    );
    assert.equal(d.genesis.validators.length, 4);
    assert.deepEqual(
      nodes.filter((p) => p.role === 'validator').map((p) => p.validator),
      epochCommittees(d.genesis, 0)[0]!.validators.map((v) => v.address),
    );
    // The genesis funds the manifest's accounts and the faucet's module account (no keystore: nobody holds its key).
    const faucet = formatAddress(moduleAccount('faucet'));
    assert.deepEqual(d.genesis.accounts.map((a) => a.address).sort(), [...d.manifest.accounts.map((a) => a.address), faucet].sort());
    assert.equal(d.genesis.accounts.find((a) => a.address === faucet)?.balance, DEVNET_DEFAULTS.faucetBalance);
  });

  it('S=2, V=2, A=3: committee shards, account home shards, names, unique ports, --shard per node', async () => {
    const o = { ...base('two'), shards: 2, validators: 2, fullNodes: 1, accounts: 3, xferTimeoutSlots: 7, nodeCommand: echoNode };
    const d: Devnet = await prepareDevnet(o);
    const g = d.genesis;
    assert.equal(g.shardCount, 2);
    assert.equal(g.xferTimeoutSlots, 7);
    const m = d.manifest;
    assert.deepEqual(
      m.processes.map((p) => [p.name, p.role, p.shard]),
      [
        ['beacon', 'beacon', null],
        ['s0-validator-0', 'validator', 0],
        ['s0-validator-1', 'validator', 0],
        ['s0-full-0', 'full', 0],
        ['s1-validator-0', 'validator', 1],
        ['s1-validator-1', 'validator', 1],
        ['s1-full-0', 'full', 1],
      ],
    );
    const ports = m.processes.flatMap((p) => [p.p2pPort, p.apiPort]);
    assert.equal(new Set(ports).size, ports.length);
    assert.deepEqual(
      m.processes.map((p) => p.p2pPort - o.basePort!),
      [99, 0, 1, 2, 3, 4, 5],
    );

    // Genesis validators: 2 per shard; s<k>-validator-<i> holds the key of the i-th member of shard k's committee.
    assert.equal(g.validators.length, 4);
    const committees = epochCommittees(g, 0);
    for (const p of m.processes.filter((x) => x.role === 'validator')) {
      const i = Number(p.name.split('-').pop());
      assert.equal(p.validator, committees[p.shard!]!.validators[i]!.address, p.name);
      assert.equal(basename(p.keystore!), `${p.name}.json`);
      assert.equal(JSON.parse(await readFile(p.keystore!, 'utf8')).address, p.validator);
    }

    // Accounts: 3 per shard, each living on its home shard.
    assert.equal(m.accounts.length, 6);
    for (const a of m.accounts) assert.equal(homeShard(parseAddress(a.address), 2), a.shard, a.address);
    assert.deepEqual(
      m.accounts.map((a) => [basename(a.keystore), a.shard]),
      [
        ['s0-account-0.json', 0],
        ['s0-account-1.json', 0],
        ['s0-account-2.json', 0],
        ['s1-account-0.json', 1],
        ['s1-account-1.json', 1],
        ['s1-account-2.json', 1],
      ],
    );
    assert.ok(m.accounts.every((a) => existsSync(a.keystore)));
    assert.deepEqual(g.accounts.map((a) => a.address).sort(), [...m.accounts.map((a) => a.address), formatAddress(moduleAccount('faucet'))].sort());

    // The manifest on disk says the same.
    const onDisk = JSON.parse(await readFile(d.manifestPath, 'utf8'));
    assert.deepEqual(onDisk.accounts.map((a: { shard: number }) => a.shard), [0, 0, 0, 1, 1, 1]);

    // Each node runs with --shard <its shard> and bootstraps from the beacon and its shard's other nodes.
    await failsToStart(d.restart('s1-validator-1'));
    const args = await loggedArgs(d.process('s1-validator-1').logFile);
    assert.equal(args[0], 'node');
    assert.equal(argOf(args, '--shard'), '1');
    assert.equal(argOf(args, '--p2p-port'), String(o.basePort! + 4));
    const boots = (a: string[]) => a.flatMap((x, i) => (x === '--bootstrap' ? [a[i + 1]!] : []));
    const addr = (n: string) => d.process(n).multiaddr;
    assert.deepEqual(boots(args).sort(), [addr('beacon'), addr('s1-validator-0'), addr('s1-full-0')].sort());
    // The beacon: `qnexus beacon` with its key, ports, and every validator to dial.
    await failsToStart(d.restart('beacon'));
    const bargs = await loggedArgs(d.process('beacon').logFile);
    assert.equal(bargs[0], 'beacon');
    assert.equal(argOf(bargs, '--key'), d.process('beacon').keystore);
    assert.equal(argOf(bargs, '--data-dir'), d.process('beacon').dataDir);
    assert.equal(argOf(bargs, '--p2p-port'), String(o.basePort! + 99));
    assert.equal(argOf(bargs, '--api-port'), String(o.basePort! + 199));
    assert.equal(argOf(bargs, '--passphrase-file'), d.passphraseFile);
    assert.deepEqual(boots(bargs).sort(), ['s0-validator-0', 's0-validator-1', 's1-validator-0', 's1-validator-1'].map(addr).sort());
    await failsToStart(d.restart('s0-full-0'));
    assert.equal(argOf(await loggedArgs(d.process('s0-full-0').logFile), '--shard'), '0');

    // addNode: shard 1 gets s1-full-1 on the next free index; the default shard is 0.
    await failsToStart(d.addNode({ role: 'full', shard: 1 }));
    const added = d.process('s1-full-1');
    assert.equal(added.shard, 1);
    assert.equal(added.p2pPort, o.basePort! + 6);
    const addedArgs = await loggedArgs(added.logFile);
    assert.equal(argOf(addedArgs, '--shard'), '1');
    assert.deepEqual(boots(addedArgs).sort(), [addr('beacon'), addr('s1-validator-0'), addr('s1-validator-1'), addr('s1-full-0')].sort());
    await failsToStart(d.addNode({ role: 'full' }));
    assert.equal(d.process('s0-full-1').shard, 0);
    await assert.rejects(d.addNode({ role: 'full', shard: 2 }), (e: unknown) => e instanceof CliError && e.code === 'USAGE');
    await d.stop();

    // Resuming ignores the creation options: same shards, nodes, ports and accounts.
    const r = await prepareDevnet({ dir: o.dir, basePort: 7000, shards: 1, validators: 1, accounts: 0 });
    assert.equal(r.resumed, true);
    assert.equal(r.genesis.shardCount, 2);
    assert.equal(r.genesisHash, d.genesisHash);
    assert.equal(r.manifest.beacon, r.manifest.processes[0], 'resumed: manifest.beacon is the beacon entry');
    assert.deepEqual(
      r.manifest.processes.map((p) => [p.name, p.shard, p.p2pPort, p.apiPort]),
      d.manifest.processes.map((p) => [p.name, p.shard, p.p2pPort, p.apiPort]),
    );
    assert.deepEqual(r.manifest.accounts, d.manifest.accounts);
  });

  it('--crypto-backend goes to every node and the beacon when given, and only then (resuming takes it again)', async () => {
    const pq = backendAvailable('pqclean') ? 'pqclean' : 'noble';
    const o: DevnetOptions = { ...base('backend'), shards: 1, validators: 1, fullNodes: 1, accounts: 0, nodeCommand: echoNode, cryptoBackend: pq };
    const d = await prepareDevnet(o);
    for (const name of ['validator-0', 'full-0', 'beacon']) {
      await failsToStart(d.restart(name));
      assert.equal(argOf(await loggedArgs(d.process(name).logFile), '--crypto-backend'), pq, name);
    }
    await d.stop();
    // Not a manifest setting: a resumed devnet without the option passes no flag (the processes' default, or QNEXUS_CRYPTO_BACKEND of `env`).
    const r = await prepareDevnet({ dir: o.dir, nodeCommand: echoNode });
    assert.equal(r.resumed, true);
    for (const name of ['validator-0', 'beacon']) {
      await failsToStart(r.restart(name));
      assert.equal((await loggedArgs(r.process(name).logFile)).includes('--crypto-backend'), false, name);
    }
    await r.stop();
    await assert.rejects(prepareDevnet({ ...base('bad-backend'), cryptoBackend: 'bogus' as BackendChoice }), (e: unknown) => e instanceof CliError && e.code === 'USAGE');
    assert.equal(existsSync(join(dir, 'bad-backend')), false);
  });

  it('validates --shards and the total node count', async () => {
    const usage = (o: DevnetOptions) => assert.rejects(prepareDevnet({ ...base('bad'), ...o }), (e: unknown) => e instanceof CliError && e.code === 'USAGE');
    await usage({ shards: 0 });
    await usage({ shards: 9 });
    await usage({ shards: 8, validators: 12, fullNodes: 1 }); // 104 nodes
    await usage({ shards: 1, validators: 100, fullNodes: 0 }); // 100 nodes + the beacon
    await usage({ xferTimeoutSlots: 1 });
    assert.equal(existsSync(join(dir, 'bad')), false);
  });
});
