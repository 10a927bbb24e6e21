import { strict as assert } from 'node:assert';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encryptKeystore, toHex, type SchemeName } from '@qnexus/crypto';
import { peerIdFromKeyFile } from '@qnexus/p2p';
import { epochCommittees } from '@qnexus/state';
import { parseGenesis } from '@qnexus/types';
import { parseAccountSpec, parseValidatorSpec } from '../src/genesis.js';
import { qnexus } from './helpers.js';

async function keystore(dir: string, name: string, scheme: SchemeName = 'ml-dsa-44'): Promise<{ path: string; address: string }> {
  const { file } = await encryptKeystore(scheme, 'pw', undefined, { scryptN: 1024 });
  const path = join(dir, name);
  await writeFile(path, JSON.stringify(file));
  return { path, address: file.address };
}

const ACC_A = 'qn' + '11'.repeat(20);
/** A syntactically valid Ed25519 libp2p peer id. */
const PEER = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA';
const ACC_B = 'qn' + '22'.repeat(20);

describe('cli: genesis', function () {
  this.timeout(60_000);
  let dir: string;
  let v0: { path: string; address: string };
  let v1: { path: string; address: string };
  let v2: { path: string; address: string };
  let v65: { path: string; address: string };
  let beacon: { path: string; address: string };
  let beacon65: { path: string; address: string };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qnexus-cli-genesis-'));
    v0 = await keystore(dir, 'v0.json');
    v1 = await keystore(dir, 'v1.json');
    v2 = await keystore(dir, 'v2.json');
    v65 = await keystore(dir, 'v65.json', 'ml-dsa-65');
    beacon = await keystore(dir, 'beacon.json');
    beacon65 = await keystore(dir, 'beacon65.json', 'ml-dsa-65');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const beaconArgs = () => ['--beacon', beacon.path, '--beacon-peer-id', PEER];
  const base = ['--chain-id', 'qnexus-test', '--genesis-time', '1767225600000'];
  const withBeacon = () => [...base, ...beaconArgs()];

  it('is deterministic: same flags give a byte-identical file, in any flag order', async () => {
    const a = join(dir, 'a.json');
    const b = join(dir, 'b.json');
    const r1 = await qnexus(['genesis', '--out', a, ...withBeacon(), '--validator', v0.path, '--validator', `${v1.path}:2000000`, '--account', `${ACC_A}:5`, '--account', `${ACC_B}:7`]);
    assert.equal(r1.code, 0, r1.stderr);
    const r2 = await qnexus(['genesis', '--account', `${ACC_B}:7`, ...beaconArgs(), '--validator', `${v1.path}:2000000`, '--out', b, '--account', `${ACC_A}:5`, '--validator', v0.path, ...base]);
    assert.equal(r2.code, 0, r2.stderr);
    const bytesA = await readFile(a);
    assert.deepEqual(bytesA, await readFile(b));
    assert.equal(r1.stdout, r2.stdout.replace(b, a));
    const text = bytesA.toString('utf8');
    assert.ok(text.endsWith('}\n') && !text.endsWith('\n\n'));
    assert.ok(text.startsWith('{\n  "chainId": "qnexus-test",\n'));

    const g = parseGenesis(JSON.parse(text));
    assert.equal(g.chainId, 'qnexus-test');
    assert.equal(g.genesisTime, 1767225600000);
    assert.equal(g.slotMs, 1000);
    assert.equal(g.epochLength, 32);
    assert.equal(g.minFee, 1n);
    assert.equal(g.maxBlockTxs, 2000);
    assert.equal(g.shardCount, 1);
    assert.equal(g.xferTimeoutSlots, 20);
    assert.equal(g.beacon.peerId, PEER);
    assert.equal(toHex(g.beacon.publicKey), JSON.parse(await readFile(beacon.path, 'utf8')).publicKey);
    const stakes = Object.fromEntries(g.validators.map((v) => [v.address, v.stake]));
    assert.deepEqual(stakes, { [v0.address]: 1_000_000n, [v1.address]: 2_000_000n });
    assert.deepEqual(g.accounts.map((x) => [x.address, x.balance]), [[ACC_A, 5n], [ACC_B, 7n]]);
    const hash = /^genesis hash\s+([0-9a-f]{64})$/m.exec(r1.stdout)?.[1];
    assert.ok(hash, r1.stdout);
  });

  it('a different validator set or parameter gives a different file', async () => {
    const files: string[] = [];
    const variants = [
      ['--validator', v0.path, '--validator', v1.path],
      ['--validator', v0.path, '--validator', v2.path],
      ['--validator', v0.path, '--validator', `${v1.path}:999`],
      ['--validator', v0.path, '--validator', v1.path, '--slot-ms', '500'],
      ['--validator', v0.path, '--validator', v1.path, '--shard-count', '2'],
      ['--validator', v0.path, '--validator', v1.path, '--xfer-timeout-slots', '30'],
      ['--validator', v0.path, '--validator', v1.path, '--beacon-peer-id', '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SB'],
    ];
    for (const [i, v] of variants.entries()) {
      const out = join(dir, `variant-${i}.json`);
      const extra = v.includes('--beacon-peer-id') ? ['--beacon', beacon.path] : beaconArgs();
      const r = await qnexus(['genesis', '--out', out, ...base, ...extra, ...v]);
      assert.equal(r.code, 0, r.stderr);
      files.push(await readFile(out, 'utf8'));
    }
    assert.equal(new Set(files).size, files.length);
    assert.equal(parseGenesis(JSON.parse(files[5]!)).xferTimeoutSlots, 30);
  });

  it('assigns the shard committees and prints them', async () => {
    const out = join(dir, 'committees.json');
    const vs = [v0, v1, v2, await keystore(dir, 'v3.json')];
    const r = await qnexus(['genesis', '--out', out, ...withBeacon(), '--shard-count', '2', ...vs.flatMap((v) => ['--validator', v.path])]);
    assert.equal(r.code, 0, r.stderr);
    const g = parseGenesis(JSON.parse(await readFile(out, 'utf8')));
    const committees = epochCommittees(g, 0);
    assert.deepEqual(committees.map((c) => c.validators.length), [2, 2]);
    for (const [k, c] of committees.entries()) {
      for (const v of c.validators) assert.match(r.stdout, new RegExp(`^  shard ${k}  ${v.address}  1000000  `, 'm'));
    }
    const j = await qnexus(['genesis', '--out', out, '--force', '--json', ...withBeacon(), '--shard-count', '2', ...vs.flatMap((v) => ['--validator', v.path])]);
    assert.deepEqual(
      (JSON.parse(j.stdout) as { committees: { validators: string[] }[] }).committees.map((c) => c.validators),
      committees.map((c) => c.validators.map((v) => v.address)),
    );
  });

  it('takes the beacon as a keystore or a public key, and its peer id from a libp2p key file', async () => {
    const a = join(dir, 'beacon-a.json');
    const b = join(dir, 'beacon-b.json');
    const peerKey = join(dir, 'beacon-data', 'peer.key');
    const r1 = await qnexus(['genesis', '--out', a, ...base, '--validator', v0.path, '--beacon', beacon.path, '--beacon-peer-key', peerKey]);
    assert.equal(r1.code, 0, r1.stderr);
    assert.match(r1.stderr, /created the beacon's libp2p key/);
    const peerId = await peerIdFromKeyFile(peerKey);
    const pk = JSON.parse(await readFile(beacon.path, 'utf8')).publicKey as string;
    const r2 = await qnexus(['genesis', '--out', b, ...base, '--validator', v0.path, '--beacon-public-key', pk, '--beacon-peer-id', peerId]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(await readFile(a), await readFile(b));
    assert.equal(parseGenesis(JSON.parse(await readFile(a, 'utf8'))).beacon.peerId, peerId);
  });

  it('refuses a missing, doubled, mismatched or reused beacon', async () => {
    const out = join(dir, 'beacon-bad.json');
    const run = (...args: string[]) => qnexus(['genesis', '--out', out, ...base, '--validator', v0.path, ...args]);
    const none = await run();
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^error \[USAGE\]: the genesis needs the beacon/m);
    const noPeer = await run('--beacon', beacon.path);
    assert.equal(noPeer.code, 2);
    assert.match(noPeer.stderr, /^error \[USAGE\]: the genesis needs the beacon's libp2p peer id/m);
    const both = await run('--beacon', beacon.path, '--beacon-public-key', 'ab', '--beacon-peer-id', PEER);
    assert.equal(both.code, 2);
    const badPeer = await run('--beacon', beacon.path, '--beacon-peer-id', 'not-a-peer-id');
    assert.equal(badPeer.code, 2);
    const scheme = await run('--beacon', beacon65.path, '--beacon-peer-id', PEER);
    assert.equal(scheme.code, 1);
    assert.match(scheme.stderr, /^error \[BAD_GENESIS\]: beacon key .*beacon65\.json is ml-dsa-65 but the genesis scheme is ml-dsa-44/m);
    const shortKey = await run('--beacon-public-key', 'abcd', '--beacon-peer-id', PEER);
    assert.equal(shortKey.code, 1);
    assert.match(shortKey.stderr, /^error \[BAD_GENESIS\]: beacon public key .* has 2 bytes/m);
    const reused = await run('--beacon', v0.path, '--beacon-peer-id', PEER);
    assert.equal(reused.code, 1);
    assert.match(reused.stderr, /^error \[BAD_GENESIS\]: the beacon key .* is also a validator key/m);
    const timeout = await run(...beaconArgs(), '--xfer-timeout-slots', '1');
    assert.equal(timeout.code, 2);
    const fewValidators = await run(...beaconArgs(), '--shard-count', '2');
    assert.equal(fewValidators.code, 1);
    assert.match(fewValidators.stderr, /^error \[BAD_GENESIS\]: 1 validator cannot fill 2 shard committees/m);
  });

  it('refuses a keystore whose scheme differs from --scheme', async () => {
    const out = join(dir, 'mixed.json');
    const r = await qnexus(['genesis', '--out', out, ...withBeacon(), '--validator', v0.path, '--validator', v65.path]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error \[BAD_GENESIS\]: validator keystore .*v65\.json is ml-dsa-65 but the genesis scheme is ml-dsa-44/m);
    const ok = await qnexus(['genesis', '--out', out, ...base, '--beacon', beacon65.path, '--beacon-peer-id', PEER, '--scheme', 'ml-dsa-65', '--validator', v65.path]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(parseGenesis(JSON.parse(await readFile(out, 'utf8'))).scheme, 'ml-dsa-65');
  });

  it('refuses duplicates, overwrites without --force and bad specs', async () => {
    const out = join(dir, 'dup.json');
    const dupV = await qnexus(['genesis', '--out', out, ...withBeacon(), '--validator', v0.path, '--validator', `${v0.path}:5`]);
    assert.equal(dupV.code, 1);
    assert.match(dupV.stderr, /^error \[BAD_GENESIS\]: validator .* is listed twice/m);
    const dupA = await qnexus(['genesis', '--out', out, ...withBeacon(), '--validator', v0.path, '--account', `${ACC_A}:1`, '--account', `${ACC_A}:2`]);
    assert.equal(dupA.code, 1);
    assert.match(dupA.stderr, /^error \[BAD_GENESIS\]: account .* is listed twice/m);
    const exists = await qnexus(['genesis', '--out', join(dir, 'variant-0.json'), ...withBeacon(), '--validator', v0.path]);
    assert.equal(exists.code, 1);
    assert.match(exists.stderr, /^error \[FILE_EXISTS\]/m);
    const noValidator = await qnexus(['genesis', '--out', out, ...withBeacon()]);
    assert.equal(noValidator.code, 2);
    assert.match(noValidator.stderr, /^error \[USAGE\]: required option '--validator/m);
    const badAccount = await qnexus(['genesis', '--out', out, ...withBeacon(), '--validator', v0.path, '--account', 'qnXYZ:5']);
    assert.equal(badAccount.code, 2);
    const badChain = await qnexus(['genesis', '--out', out, '--chain-id', 'Not Valid', '--validator', v0.path, ...beaconArgs()]);
    assert.equal(badChain.code, 2);
    const withShard = await qnexus(['genesis', '--out', out, ...withBeacon(), '--validator', `${v0.path}:5:1`]);
    assert.equal(withShard.code, 2);
    assert.match(withShard.stderr, /validators no longer name a shard/);
  });

  it('uses the current time rounded down to the second when --genesis-time is omitted, and says so', async () => {
    const out = join(dir, 'now.json');
    const before = Date.now();
    const r = await qnexus(['genesis', '--out', out, '--chain-id', 'qnexus-test', '--validator', v0.path, ...beaconArgs()]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /no --genesis-time given/);
    const g = parseGenesis(JSON.parse(await readFile(out, 'utf8')));
    assert.equal(g.genesisTime % 1000, 0);
    assert.ok(g.genesisTime >= Math.floor(before / 1000) * 1000 && g.genesisTime <= Date.now());
  });

  it('parses --validator and --account specs', () => {
    assert.deepEqual(parseValidatorSpec('k.json'), { keystore: 'k.json' });
    assert.deepEqual(parseValidatorSpec('k.json:5'), { keystore: 'k.json', stake: 5n });
    assert.throws(() => parseValidatorSpec('k.json:5:1'), /no longer name a shard/);
    assert.deepEqual(parseValidatorSpec('C:/keys/k.json:5'), { keystore: 'C:/keys/k.json', stake: 5n });
    assert.throws(() => parseValidatorSpec(':5'));
    assert.deepEqual(parseAccountSpec(`${ACC_A}:18446744073709551615`), { address: ACC_A, balance: 18446744073709551615n });
    assert.throws(() => parseAccountSpec(`${ACC_A}:18446744073709551616`));
    assert.throws(() => parseAccountSpec(`${ACC_A}`));
    assert.throws(() => parseAccountSpec(`${ACC_A}:-1`));
  });
});
