// The litmus test of the application layer (issue 15): a module that exists only under
// test/fixtures/modules/note/ reaches a real multi-process devnet through one wiring line, the
// `--module` flag, and is driven only through the CLI binary's generic `tx`/`query` commands: its
// cross-shard op commits (the note lands in the recipient's inbox on the other shard, the amount
// moves) and aborts (the destination refuses it with the module's own code, the sender gets the
// escrow back and pays only the fee); the supply identity holds on both shards; and a node started
// on the same genesis without the module refuses to start (BAD_CONFIG); and state proofs of its nodes verify through
// the SDK and the CLI's --verify (issue 16). One small devnet for the file.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { installModules } from '@qnexus/app';
import { QnexusClient } from '@qnexus/sdk';
import { freshAddressOn, qnexusCli, startTestNet, supplyAcrossShards, waitFor, type TestNet } from './helpers.js';

const NOTE = fileURLToPath(new URL('./fixtures/modules/note/index.mjs', import.meta.url));

const qnexus = (args: string[], timeoutMs?: number) => qnexusCli(args, timeoutMs === undefined ? {} : { timeoutMs });

interface Inbox {
  address: string;
  count: string;
  notes: { from: string; amount: string; text: string }[];
}

describe('e2e: a module from a test fixture, loaded with --module and driven by the generic CLI', function () {
  this.timeout(240_000);
  let net: TestNet;
  let node0: string;
  let node1: string;
  let beacon: string;

  before(async () => {
    net = await startTestNet({ shards: 2, validators: 1, fullNodes: 0, accounts: 1, slotMs: 500, xferTimeoutSlots: 20, modules: [NOTE] });
    node0 = net.devnet.process('s0-validator-0').apiUrl;
    node1 = net.devnet.process('s1-validator-0').apiUrl;
    beacon = net.devnet.manifest.beacon.apiUrl;
    await net.devnet.client('s0-validator-0').waitForHeight(1, 60_000, { finalized: true });
    await net.devnet.client('s1-validator-0').waitForHeight(1, 60_000, { finalized: true });
  });
  after(async () => {
    await net?.cleanup();
    // startDevnet loaded the module into this process's app (to write the genesis): give it back plain.
    await installModules([]);
  });

  const query = async (node: string, ...words: string[]): Promise<unknown> => {
    const r = await qnexus(['query', '--module', NOTE, '--node', node, ...words]);
    assert.equal(r.code, 0, `query ${words.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout) as unknown;
  };
  const balance = async (node: string, address: string): Promise<bigint> => {
    const b = (await query(node, 'bank', 'balances', address)) as { balances: { denom: string; amount: string }[] };
    return BigInt(b.balances.find((x) => x.denom === 'qfc')?.amount ?? '0');
  };
  const inbox = async (address: string) => (await query(node1, 'note', 'inbox', address)) as Inbox;
  const send = (to: string, amount: string, text: string) =>
    qnexus([
      'tx', '--module', NOTE, 'note', 'send',
      '--to', to, '--amount', amount, '--text', text,
      '--keystore', sender().keystore, '--passphrase-file', net.devnet.passphraseFile,
      '--node', node0, '--beacon', beacon, '--wait', '--json',
    ]);
  const sender = () => net.devnet.manifest.accounts.find((a) => a.shard === 0)!;

  it('the processes run the module and serve its query; the genesis names it', async () => {
    const st = (await net.devnet.client('s1-validator-0').status()) as { modules: { name: string; id: number }[] };
    assert.deepEqual(st.modules.map((m) => `${m.name}#${m.id}`), ['bank#1', 'xfer#2', 'staking#3', 'token#4', 'faucet#5', 'amm#6', 'dex#7', 'note#200']);
    assert.deepEqual(net.devnet.genesis.modules, [
      { name: 'staking', id: 3 },
      { name: 'token', id: 4 },
      { name: 'faucet', id: 5 },
      { name: 'amm', id: 6 },
      { name: 'dex', id: 7 },
      { name: 'note', id: 200 },
    ]);
    const to = freshAddressOn(net, 1);
    assert.deepEqual(await inbox(to), { address: to, count: '0', notes: [] });
    // Only the home shard answers for an address (like /v1/accounts).
    const wrong = await qnexus(['query', '--module', NOTE, '--node', node0, 'note', 'inbox', to]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /error \[ACCOUNT_WRONG_SHARD\]/);
    // The built-in modules' queries through the same generic path.
    const bankWrong = await qnexus(['query', '--node', node0, 'bank', 'balances', to]);
    assert.equal(bankWrong.code, 1);
    assert.match(bankWrong.stderr, /error \[ACCOUNT_WRONG_SHARD\]/);
    const fees = (await query(node0, 'staking', 'pending-fees')) as { epoch: unknown; pending: unknown };
    assert.equal(typeof fees.epoch, 'number');
    assert.ok(Array.isArray(fees.pending));
  });

  it("tx note send commits across shards (inbox, balances); --text refuse aborts with NOTE_REFUSED and refunds all but the fee; supply holds", async () => {
    const from = sender().address;
    const to = freshAddressOn(net, 1, 77);
    const before = await balance(node0, from);

    const ok = await send(to, '5', 'hello');
    assert.equal(ok.code, 0, ok.stderr);
    const done = JSON.parse(ok.stdout) as { status: string; kind: string; hash: string };
    assert.equal(done.kind, 'note/send');
    assert.equal(done.status, 'committed');
    // The destination applies the commit on its own chain: poll its inbox (bounded).
    const box = await waitFor('the note in the inbox', () => inbox(to), (b) => b.notes.length === 1, 30_000);
    assert.deepEqual(box.notes, [{ from, amount: '5', text: 'hello' }]);
    assert.equal(await balance(node1, to), 5n);
    const afterOk = await balance(node0, from);
    assert.equal(afterOk, before - 5n - 1n, 'sender: amount + fee');

    const no = await send(to, '7', 'refuse');
    assert.equal(no.code, 1, no.stdout);
    assert.match(no.stderr, /error \[XFER_ABORTED\].*NOTE_REFUSED/);
    const aborted = JSON.parse(no.stdout) as { status: string; reason: string | null };
    assert.equal(aborted.status, 'aborted');
    assert.equal(aborted.reason, 'NOTE_REFUSED');
    assert.equal(await balance(node0, from), afterOk - 1n, 'sender refunded: only the fee is spent');
    assert.equal(await balance(node1, to), 5n, 'recipient unchanged');
    assert.deepEqual((await inbox(to)).notes, [{ from, amount: '5', text: 'hello' }]);

    const supply = await waitFor('the supply identity on both shards', () => supplyAcrossShards(net), (s) => s.globalOk, 30_000);
    assert.ok(supply.perShardOk && supply.globalOk, supply.problems.join('; '));
  });

  it('state proofs from a real node verify as a light client would: the SDK, `qnexus account --verify` and `qnexus query … --verify`', async () => {
    const from = sender().address;
    // Trusting only the genesis (and the beacon-signed committees past epoch 0, fetched from the node).
    const a = await new QnexusClient(node0, { genesis: net.devnet.genesis }).account(from, { verify: true });
    assert.ok(a.verified.height >= 1);
    assert.equal(a.verified.shard, 0);
    assert.equal(a.balance, a.verified.balance);
    assert.ok(BigInt(a.balance) > 0n, 'a funded account: proven present');
    const acc = await qnexus(['account', from, '--node', node0, '--verify', '--genesis', net.devnet.manifest.genesis]);
    assert.equal(acc.code, 0, acc.stderr);
    assert.match(acc.stdout, /^verified: proven at height \d+ of shard 0 /m);
    const bal = await qnexus(['query', '--node', node0, 'bank', 'balance', from, 'qfc', '--verify', '--genesis', net.devnet.manifest.genesis]);
    assert.equal(bal.code, 0, bal.stderr);
    assert.match(bal.stdout, /^verified: proven at height \d+ of shard 0 /m);
    const shown = JSON.parse(bal.stdout.slice(0, bal.stdout.lastIndexOf('\nverified:'))) as { amount: string };
    assert.ok(BigInt(shown.amount) > 0n);
    // A range query has no proof: refused before any node is asked.
    const range = await qnexus(['query', '--node', node0, 'bank', 'balances', from, '--verify', '--genesis', net.devnet.manifest.genesis]);
    assert.equal(range.code, 2);
    assert.match(range.stderr, /error \[USAGE\].*range/);
  });

  it('a node started on the same genesis without the module refuses to start (BAD_CONFIG)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qnexus-nomodule-'));
    try {
      const r = await qnexus(['node', '--data-dir', dir, '--genesis', net.devnet.manifest.genesis, '--shard', '0', '--p2p-port', '0', '--api-port', '0', '--log-format', 'json'], 60_000);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr + r.stdout, /BAD_CONFIG/);
      assert.match(r.stderr + r.stdout, /note/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
