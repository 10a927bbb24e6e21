// The generic `qnexus tx <module> <msg>` and `qnexus query <module> <name>` commands, built from the
// app's modules (and --module files) through their client sides: their help, and every argument
// error caught before a key is unlocked or a node asked — each with its code and a non-zero exit.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFile } from 'node:fs/promises';
import { installModules } from '@qnexus/app';
import { devnetJoinArgs, prepareDevnet } from '../src/devnet.js';
import { CliError } from '../src/errors.js';
import { clientModuleFiles } from '../src/program.js';
import { moduleMsgArgs } from '../src/commands/tx.js';
import { qnexus } from './helpers.js';

const randomBasePort = () => 20_000 + Math.floor(Math.random() * 126) * 100;

const NOTE = fileURLToPath(new URL('../../../test/fixtures/modules/note/index.mjs', import.meta.url));
const TO = `qn${'ab'.repeat(20)}`;
// No such file: an argument error must be reported before the keystore is read.
const KEYSTORE = join(tmpdir(), 'qnexus-no-such-keystore.json');

describe('cli: generic tx <module> <msg> and query <module> <name>', function () {
  this.timeout(60_000);

  it('tx lists the app modules as subcommands; a --module file adds its messages with their arguments', async () => {
    const plain = await qnexus(['tx', '--help']);
    assert.equal(plain.code, 0);
    assert.match(plain.stdout, /\bbank\b.*transfer, xtransfer/);
    assert.doesNotMatch(plain.stdout, /\bnote\b/);
    const r = await qnexus(['tx', '--module', NOTE, 'note', '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /note send {2}--to <v> --amount <v> --text <v>/);
    const send = await qnexus(['tx', 'note', 'send', '--module', NOTE, '--help']);
    assert.equal(send.code, 0, send.stderr);
    for (const opt of ['--to', '--amount', '--text', '--keystore', '--fee', '--wait', '--node']) assert.ok(send.stdout.includes(opt), opt);
  });

  it('an unknown module or message is a usage error (exit 2)', async () => {
    const mod = await qnexus(['tx', 'nope', 'send']);
    assert.equal(mod.code, 2);
    assert.match(mod.stderr, /error \[USAGE\]: unknown command 'nope'/);
    const m = await qnexus(['tx', '--module', NOTE, 'note', 'shout', '--to', TO]);
    assert.equal(m.code, 2);
    assert.match(m.stderr, /error \[USAGE\]: unknown command 'shout'/);
  });

  it("a missing argument is a usage error; a bad one is the module's typed error (exit 1), before the keystore is read", async () => {
    const missing = await qnexus(['tx', '--module', NOTE, 'note', 'send', '--amount', '5', '--text', 'hi', '--keystore', KEYSTORE]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /error \[USAGE\]: tx note send: missing --to/);
    for (const [args, code] of [
      [['--to', TO, '--amount', 'abc', '--text', 'hi'], 'TX_BAD_AMOUNT'],
      [['--to', TO, '--amount', '0', '--text', 'hi'], 'TX_BAD_AMOUNT'],
      [['--to', TO, '--amount', '18446744073709551616', '--text', 'hi'], 'TX_BAD_AMOUNT'],
      [['--to', 'qnXYZ', '--amount', '5', '--text', 'hi'], 'TX_MALFORMED'],
      [['--to', TO, '--amount', '5', '--text', 'x'.repeat(65)], 'NOTE_TEXT_TOO_LONG'],
    ] as const) {
      const r = await qnexus(['tx', '--module', NOTE, 'note', 'send', ...args, '--keystore', KEYSTORE]);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`error \\[${code}\\]`), args.join(' '));
      assert.doesNotMatch(r.stderr, /keystore/i, 'failed on the argument, not on the keystore');
    }
    // A built-in module through the same path.
    const bank = await qnexus(['tx', 'bank', 'transfer', '--to', TO, '--amount', '-1', '--keystore', KEYSTORE]);
    assert.equal(bank.code, 1);
    assert.match(bank.stderr, /error \[TX_BAD_AMOUNT\]/);
  });

  it('query lists the queries; an unknown module or query and a wrong parameter count are refused without a node', async () => {
    const all = await qnexus(['query', '--module', NOTE]);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /bank balances <address>/);
    assert.match(all.stdout, /staking pending-fees/);
    assert.match(all.stdout, /note inbox <address>/);
    const one = await qnexus(['query', 'bank']);
    assert.equal(one.code, 0);
    assert.match(one.stdout, /bank balances <address>/);
    assert.doesNotMatch(one.stdout, /pending-fees/);
    const unknown = await qnexus(['query', 'note', 'inbox', TO]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /error \[QUERY_UNKNOWN\]: no module "note"/);
    const q = await qnexus(['query', 'bank', 'nope']);
    assert.equal(q.code, 1);
    assert.match(q.stderr, /error \[QUERY_UNKNOWN\]: module bank has no query "nope"; it has: balances/);
    const count = await qnexus(['query', 'bank', 'balances']);
    assert.equal(count.code, 2);
    assert.match(count.stderr, /error \[USAGE\]: query bank balances takes 1 parameter/);
  });

  it('a --module file that is not a module factory, or clashes with the app, is BAD_CONFIG', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qnexus-module-'));
    try {
      const notFn = join(dir, 'not-fn.mjs');
      writeFileSync(notFn, 'export default { name: "x", id: 201 };\n');
      const clash = join(dir, 'clash.mjs');
      writeFileSync(clash, 'export default () => ({ name: "clash", id: 3 });\n');
      for (const [file, why] of [
        [notFn, /default export must be a function/],
        [clash, /id 3 is taken/],
        [join(dir, 'missing.mjs'), /cannot load/],
      ] as const) {
        const r = await qnexus(['query', '--module', file]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /error \[BAD_CONFIG\]/);
        assert.match(r.stderr, why);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('clientModuleFiles reads --module of tx/query only (flag or QNEXUS_MODULE); moduleMsgArgs maps dashed names and skips absent optional ones', () => {
    assert.deepEqual(clientModuleFiles(['tx', 'note', 'send', '--module', 'a.mjs', '--module=b.mjs,c.mjs']), ['a.mjs', 'b.mjs', 'c.mjs']);
    assert.deepEqual(clientModuleFiles(['node', '--module', 'a.mjs']), []);
    assert.deepEqual(clientModuleFiles(['query', '--', '--module', 'a.mjs']), []);
    assert.deepEqual(moduleMsgArgs([{ name: 'max-price' }, { name: 'memo', optional: true }], { maxPrice: '7' }, 'x'), { 'max-price': '7' });
    assert.throws(() => moduleMsgArgs([{ name: 'to' }], {}, 'tx note send'), /missing --to/);
  });

  it('node --module comes from a config file (paths against its directory, a list) or QNEXUS_MODULE, like the other options', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qnexus-module-config-'));
    try {
      const cfg = join(dir, 'node.json');
      writeFileSync(cfg, JSON.stringify({ dataDir: 'd', genesis: 'g.json', module: ['mods/a.mjs', 'b.mjs'] }));
      const r = await qnexus(['node', '--config', cfg, '--print-config']);
      assert.equal(r.code, 0, r.stderr);
      const printed = JSON.parse(r.stdout) as { values: { module: string[] }; sources: { module: string } };
      assert.deepEqual(printed.values.module, [join(dir, 'mods/a.mjs'), join(dir, 'b.mjs')]);
      assert.equal(printed.sources.module, 'config');
      const e = await qnexus(['node', '--data-dir', 'd', '--genesis', 'g.json', '--print-config'], { env: { QNEXUS_MODULE: 'x.mjs,y.mjs' } });
      assert.equal(e.code, 0, e.stderr);
      const fromEnv = JSON.parse(e.stdout) as { values: { module: string[] }; sources: { module: string } };
      assert.deepEqual(fromEnv.values.module, ['x.mjs', 'y.mjs']);
      assert.equal(fromEnv.sources.module, 'env');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('devnet --module: the genesis names the module, every process gets --module, and a resumed devnet keeps it from the manifest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qnexus-devnet-module-'));
    // Prints its arguments and exits: what the launcher would run, without running a node.
    const echoNode = { command: process.execPath, args: ['-e', 'console.log(JSON.stringify(process.argv.slice(1)))'] };
    const loggedArgs = async (logFile: string): Promise<string[]> => JSON.parse((await readFile(logFile, 'utf8')).trim().split('\n').pop()!) as string[];
    const failsToStart = (p: Promise<unknown>) => assert.rejects(p, (e: unknown) => e instanceof CliError && e.code === 'DEVNET_START_FAILED');
    try {
      const o = { dir: join(dir, 'd'), basePort: randomBasePort(), scryptN: 1024, shards: 2, validators: 1, fullNodes: 0, accounts: 0, nodeCommand: echoNode, modules: [NOTE] };
      const d = await prepareDevnet(o);
      assert.deepEqual(d.manifest.modules, [NOTE]);
      assert.deepEqual(d.genesis.modules, [{ name: 'staking', id: 3 }, { name: 'token', id: 4 }, { name: 'faucet', id: 5 }, { name: 'amm', id: 6 }, { name: 'dex', id: 7 }, { name: 'note', id: 200 }]);
      for (const name of ['s0-validator-0', 'beacon']) {
        await failsToStart(d.restart(name));
        const args = await loggedArgs(d.process(name).logFile);
        assert.equal(args[args.indexOf('--module') + 1], NOTE, name);
      }
      await d.stop();
      const r = await prepareDevnet({ dir: o.dir, nodeCommand: echoNode });
      assert.equal(r.resumed, true);
      await failsToStart(r.restart('s1-validator-0'));
      const args = await loggedArgs(r.process('s1-validator-0').logFile);
      assert.equal(args[args.indexOf('--module') + 1], NOTE);
      await r.stop();
      // A machine joining a public devnet is told to run the module too (the file copied beside the genesis).
      const join1 = devnetJoinArgs({ ...r.manifest, publicHost: '203.0.113.7' }, 1);
      assert.equal(join1[join1.indexOf('--module') + 1], 'index.mjs');
    } finally {
      // The launcher installed the module into this process's app: give the other tests the plain app back.
      await installModules([]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
