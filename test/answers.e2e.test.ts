// Honest answers (issue 14, items 4 and 5): an account asked of the wrong shard names its home
// shard (and the SDK follows it), `tx transfer --wait` survives the death of the node it waits
// on, and a node says when it last heard from the beacon. One small two-shard devnet.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { BEACON_NAME } from '@qnexus/cli';
import { ApiError, QnexusClient, findTx } from '@qnexus/sdk';
import { freshAddressOn, sleep, startTestNet, transfer, type TestNet } from './helpers.js';

const CLI = join(process.cwd(), 'packages/cli/dist/bin.js');

interface Run {
  code: Promise<number | null>;
  stdout: () => string;
  stderr: () => string;
  kill: () => void;
}

/** The CLI as a child process whose output can be watched while it runs. */
function runCli(args: string[], env: Record<string, string>): Run {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const code = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  return { code, stdout: () => out, stderr: () => err, kill: () => child.kill('SIGKILL') };
}

/** Poll until `ok` holds; every wait is bounded. */
async function until(what: string, ok: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

describe('honest answers (e2e)', function () {
  this.timeout(240_000);
  let net: TestNet;

  before(async function () {
    this.timeout(180_000);
    net = await startTestNet({ shards: 2, validators: 3, fullNodes: 1, accounts: 2 });
    await net.devnet.client('s0-validator-0').waitForHeight(1, 60_000, { finalized: true });
    await net.devnet.client('s1-validator-0').waitForHeight(1, 60_000, { finalized: true });
  });

  after(async function () {
    this.timeout(60_000);
    await net?.cleanup();
  });

  it('an account asked of the wrong shard answers ACCOUNT_WRONG_SHARD naming its home shard, and the SDK follows it', async () => {
    const s0 = net.devnet.client('s0-validator-0');
    const a1 = net.accountsByShard[1]![0]!;
    const res = await fetch(`${s0.baseUrl}/v1/accounts/${a1.address}`);
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { code: string; message: string; homeShard: number; shard: number } };
    assert.equal(body.error.code, 'ACCOUNT_WRONG_SHARD');
    assert.equal(body.error.homeShard, 1);
    assert.equal(body.error.shard, 0);
    assert.match(body.error.message, /lives on shard 1/);

    // The home shard answers, and says so.
    const home = await net.devnet.client('s1-validator-0').account(a1.address);
    assert.equal(home.homeShard, 1);
    assert.equal(home.shard, 1);
    assert.equal(home.balance, net.devnet.manifest.accounts.find((a) => a.address === a1.address)!.balance);

    // A client that knows no other node reports the error with the home shard…
    const alone = await s0.account(a1.address).then(
      () => assert.fail('expected ACCOUNT_WRONG_SHARD'),
      (e: unknown) => e,
    );
    assert.ok(alone instanceof ApiError && alone.code === 'ACCOUNT_WRONG_SHARD', String(alone));
    assert.equal((alone as ApiError).details.homeShard, 1);
    // …one that knows the devnet's nodes asks a node of shard 1 instead.
    const all = net.devnet.manifest.processes.filter((p) => p.shard !== null).map((p) => p.apiUrl);
    const following = new QnexusClient(s0.baseUrl, { nodes: all });
    const followed = await following.account(a1.address);
    assert.equal(followed.balance, home.balance);
    assert.equal(followed.homeShard, 1);
    // An address of the node's own shard is answered there, unfunded or not.
    const empty = await s0.account(freshAddressOn(net, 0));
    assert.equal(empty.balance, '0');
    assert.equal(empty.homeShard, 0);
  });

  it('tx transfer --wait follows the transaction on another node when its node is SIGKILLed, and exits 0 once final there', async () => {
    const from = net.accountsByShard[0]![0]!;
    const keystore = net.devnet.manifest.accounts.find((a) => a.address === from.address)!.keystore;
    const target = net.devnet.client('s0-full-0');
    const other = net.devnet.client('s0-validator-1');
    const next = BigInt((await other.account(from.address)).pendingNonce);
    // Nonce next+1 cannot be final before nonce `next` is: the wait is still under way when its node dies.
    const run = runCli(
      ['tx', 'transfer', '--keystore', keystore, '--passphrase-file', net.devnet.passphraseFile, '--to', freshAddressOn(net, 0, 77), '--amount', '42', '--nonce', String(next + 1n), '--node', target.baseUrl, '--wait', '--timeout', '90'],
      { QNEXUS_DEVNET_DIR: net.devnet.dir },
    );
    try {
      await until('the submission', () => /^hash\s+[0-9a-f]{64}$/m.test(run.stdout()), 60_000);
      const hash = /^hash\s+([0-9a-f]{64})$/m.exec(run.stdout())![1]!;
      // Gossiped: another node of the shard holds it (pending behind the nonce gap).
      await until('gossip to another node', async () => (await findTx([other], hash).catch(() => null))?.tx.status === 'pending', 30_000);
      await until('a progress line', () => /"event":"wait"/.test(run.stderr()), 30_000);
      await net.devnet.kill('s0-full-0', 'SIGKILL');
      await until('the failover', () => /"failover":"[^"]*unreachable: now asking/.test(run.stderr()), 30_000);
      // Fill the gap: both become final on the running nodes.
      const gap = transfer(net, from, freshAddressOn(net, 0, 78), 1n, next);
      await other.submitTx(gap.raw);
      const code = await Promise.race([run.code, sleep(100_000).then(() => 'hung' as const)]);
      assert.equal(code, 0, `exit code; stderr:\n${run.stderr()}`);
      assert.match(run.stdout(), /^status\s+final in block \d+/m);
      assert.ok((await other.tx(hash)).status === 'final');
    } finally {
      run.kill();
    }
  });

  it('a node reports its beacon link, and `qnexus status` names an unreachable beacon', async () => {
    const c = net.devnet.client('s0-validator-0');
    const before = (await c.status()).beacon!;
    assert.ok(before, 'the node reports its beacon link');
    assert.equal(before.reachable, true);
    assert.equal(before.committeeKnown, true);
    assert.ok(before.lastHeardAt !== null && before.committeesKnownThrough >= 0);

    await net.devnet.kill(BEACON_NAME, 'SIGKILL');
    // 12 slots without a beacon snapshot (one every 4 slots) make it unreachable.
    await until('the beacon to read unreachable', async () => (await c.status()).beacon?.reachable === false, 60_000);
    const after = (await c.status()).beacon!;
    assert.ok(after.lastHeardAt !== null && after.lastSnapshotSlot! >= before.lastSnapshotSlot!, 'it remembers when it last heard');
    assert.ok(after.silentMs !== null && after.silentMs >= 12 * net.devnet.genesis.slotMs);
    const run = runCli(['status', '--node', c.baseUrl], {});
    assert.equal(await run.code, 0, run.stderr());
    assert.match(run.stdout(), /beacon unreachable since \S+ \(\d+ (s|min)[^\n]*: (shards keep finalizing through epoch \d+|the committee of epoch \d+ is unknown)/);
  });
});
