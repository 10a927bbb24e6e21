import { strict as assert } from 'node:assert';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decryptKeystore, parseKeystore } from '@qnexus/crypto';
import { qnexus } from './helpers.js';

const FAST = ['--scrypt-n', '1024'];

describe('cli: keys', function () {
  this.timeout(60_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qnexus-cli-keys-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keys new, then keys show --decrypt with the right and a wrong passphrase', async () => {
    const file = join(dir, 'k.json');
    const created = await qnexus(['keys', 'new', '--out', file, '--passphrase-env', 'QN_PASS', ...FAST], { env: { QN_PASS: 'correct horse' } });
    assert.equal(created.code, 0, created.stderr);
    const address = /^address\s+(qn[0-9a-f]{40})$/m.exec(created.stdout)?.[1];
    assert.ok(address, created.stdout);
    assert.match(created.stdout, /^scheme\s+ml-dsa-44$/m);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const ks = parseKeystore(JSON.parse(await readFile(file, 'utf8')));
    assert.equal(ks.address, address);
    assert.equal(ks.crypto.kdfparams.N, 1024);
    // the file really decrypts with that passphrase
    await decryptKeystore(ks, 'correct horse');

    const shown = await qnexus(['keys', 'show', file]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, new RegExp(`^address\\s+${address}$`, 'm'));
    assert.match(shown.stdout, new RegExp(`^public key\\s+${ks.publicKey}$`, 'm'));

    const ok = await qnexus(['keys', 'show', file, '--decrypt', '--passphrase-env', 'QN_PASS'], { env: { QN_PASS: 'correct horse' } });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^passphrase\s+ok/m);

    const bad = await qnexus(['keys', 'show', file, '--decrypt', '--passphrase-env', 'QN_PASS'], { env: { QN_PASS: 'wrong horse' } });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error \[KEYSTORE_BAD_PASSPHRASE\]: /m);
    assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(bad.stdout, '');

    const json = await qnexus(['keys', 'show', file, '--json']);
    assert.deepEqual(Object.keys(JSON.parse(json.stdout) as object).sort(), ['address', 'homeShard', 'kdf', 'publicKey', 'scheme', 'shardCount', 'shardCountFrom']);
  });

  it('reads --passphrase-file (ignoring one trailing newline) and supports other schemes', async () => {
    const pass = join(dir, 'pass');
    await writeFile(pass, 'file secret\n');
    const file = join(dir, 'k65.json');
    const r = await qnexus(['keys', 'new', '--out', file, '--scheme', '65', '--passphrase-file', pass, ...FAST]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^scheme\s+ml-dsa-65$/m);
    await decryptKeystore(JSON.parse(await readFile(file, 'utf8')), 'file secret');
    const ok = await qnexus(['keys', 'show', file, '--decrypt', '--passphrase-file', pass]);
    assert.equal(ok.code, 0, ok.stderr);
  });

  it('refuses to overwrite without --force', async () => {
    const file = join(dir, 'once.json');
    const env = { env: { P: 'x' } };
    assert.equal((await qnexus(['keys', 'new', '--out', file, '--passphrase-env', 'P', ...FAST], env)).code, 0);
    const before = await readFile(file, 'utf8');
    const again = await qnexus(['keys', 'new', '--out', file, '--passphrase-env', 'P', ...FAST], env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^error \[FILE_EXISTS\]: .*--force/m);
    assert.equal(await readFile(file, 'utf8'), before);
    const forced = await qnexus(['keys', 'new', '--out', file, '--passphrase-env', 'P', '--force', ...FAST], env);
    assert.equal(forced.code, 0, forced.stderr);
    assert.notEqual(await readFile(file, 'utf8'), before);
  });

  it('usage errors exit 2: no passphrase source without a terminal, unset variable, bad scheme, unknown option', async () => {
    const file = join(dir, 'never.json');
    const noSource = await qnexus(['keys', 'new', '--out', file]);
    assert.equal(noSource.code, 2);
    assert.match(noSource.stderr, /^error \[USAGE\]: no passphrase given and stdin is not a terminal/m);
    const unset = await qnexus(['keys', 'new', '--out', file, '--passphrase-env', 'QNEXUS_TEST_UNSET_VAR']);
    assert.equal(unset.code, 2);
    assert.match(unset.stderr, /QNEXUS_TEST_UNSET_VAR/);
    const scheme = await qnexus(['keys', 'new', '--out', file, '--scheme', 'ml-dsa-99', '--passphrase-env', 'P'], { env: { P: 'x' } });
    assert.equal(scheme.code, 2);
    assert.match(scheme.stderr, /^error \[USAGE\]: option '--scheme <scheme>' argument 'ml-dsa-99' is invalid/m);
    const unknown = await qnexus(['keys', 'new', '--out', file, '--bogus']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^error \[USAGE\]: unknown option '--bogus'/m);
    const empty = await qnexus(['keys', 'new', '--out', file, '--passphrase-env', 'P'], { env: { P: '' } });
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /empty passphrase/);
  });

  it('reports missing and malformed keystores with codes', async () => {
    const missing = await qnexus(['keys', 'show', join(dir, 'nope.json')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error \[FILE_NOT_FOUND\]: /m);
    const junk = join(dir, 'junk.json');
    await writeFile(junk, '{"version": 1}');
    const malformed = await qnexus(['keys', 'show', junk]);
    assert.equal(malformed.code, 1);
    assert.match(malformed.stderr, /^error \[KEYSTORE_MALFORMED\]: /m);
  });

  it('every command prints its help with exit 0', async () => {
    for (const cmd of [[], ['keys'], ['keys', 'new'], ['keys', 'show'], ['genesis'], ['node'], ['status'], ['tx'], ['tx', 'transfer'], ['devnet']]) {
      const r = await qnexus([...cmd, '--help']);
      assert.equal(r.code, 0, `${cmd.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /^Usage: qnexus/m);
      assert.equal(r.stderr, '');
    }
    const version = await qnexus(['--version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+/);
  });

  it('keys new --help hides the advanced scrypt option', async () => {
    const r = await qnexus(['keys', 'new', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--passphrase-env <VAR>/);
    assert.doesNotMatch(r.stdout, /--scrypt-n/, 'advanced option is hidden');
  });
});
