// The CLI against a running devnet with no --node, --keystore flag or passphrase (issue 14 item 3):
// it reads the devnet's manifest (QNEXUS_DEVNET_DIR), sends a shard-1 account's transfer to a node
// of shard 1, unlocks the devnet's own key with the devnet's passphrase, finds the admin token of
// the node it asks, and asks the beacon for the registry. --json output is one JSON document on
// stdout. One small devnet (2 shards × 1 validator) for the whole file.
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { qnexusCli, startTestNet, type TestNet } from './helpers.js';

const qnexus = (args: string[], env: Record<string, string>, timeoutMs?: number) => qnexusCli(args, { env, ...(timeoutMs === undefined ? {} : { timeoutMs }) });

describe('e2e: CLI defaults from a running devnet', function () {
  this.timeout(240_000);
  let net: TestNet;
  let env: Record<string, string>;

  before(async () => {
    net = await startTestNet({ shards: 2, validators: 1, fullNodes: 0, accounts: 2 });
    // Nothing from the caller's environment may choose for the CLI.
    env = {
      ...Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('QNEXUS_')).map((k) => [k, ''])),
      QNEXUS_DEVNET_DIR: net.devnet.dir,
    };
    await net.devnet.client('s1-validator-0').waitForHeight(1, 60_000, { finalized: true });
  });
  after(async () => {
    await net?.cleanup();
  });

  it("tx transfer --wait --json with only --to and --amount: a node of the sender's shard, final, stdout one JSON document", async () => {
    const [from, to] = net.devnet.manifest.accounts.filter((a) => a.shard === 1);
    assert.ok(from && to, 'two shard-1 accounts');
    const r = await qnexus(['tx', 'transfer', '--to', to.address, '--amount', '7', '--wait', '--json'], { ...env, QNEXUS_KEYSTORE: from.keystore });
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { hash: string; status: string; from: string };
    assert.equal(j.status, 'final');
    assert.equal(j.from, from.address);
    // It went to shard 1 (shard 0 would have refused it as TX_WRONG_SHARD), where it is final.
    assert.equal((await net.devnet.client('s1-validator-0').txStatus(j.hash))?.status, 'final');
    assert.match(r.stderr, /is a key of the local devnet: using its passphrase file/);
  });

  it("admin peers finds the asked node's token in its data dir; validators ask the beacon", async () => {
    const peers = await qnexus(['admin', 'peers', '--json'], env);
    assert.equal(peers.code, 0, peers.stderr);
    assert.ok(Array.isArray((JSON.parse(peers.stdout) as { peers: unknown[] }).peers));
    const beacon = net.devnet.manifest.beacon;
    const viaBeacon = await qnexus(['admin', 'log-level', '--node', beacon.apiUrl, '--json'], env);
    assert.equal(viaBeacon.code, 0, viaBeacon.stderr);
    const v = await qnexus(['validators', '--json'], env);
    assert.equal(v.code, 0, v.stderr);
    assert.equal((JSON.parse(v.stdout) as { validators: unknown[] }).validators.length, 2);
  });

  it('a stopped devnet node: "no node reachable … is the devnet … running? its nodes of shard 0 are at …"', async () => {
    const a = net.devnet.manifest.accounts.find((x) => x.shard === 0)!;
    await net.devnet.kill('s0-validator-0');
    const r = await qnexus(['tx', 'transfer', '--to', a.address, '--amount', '1', '--keystore', a.keystore], env);
    assert.equal(r.code, 1);
    const url = net.devnet.process('s0-validator-0').apiUrl;
    assert.match(r.stderr, new RegExp(`^error \\[UNAVAILABLE\\]: no node reachable at ${url} \\(s0-validator-0\\) .*: is the devnet in ${join(net.devnet.dir).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} running`, 'm'));
    assert.match(r.stderr, new RegExp(`its nodes of shard 0 are at s0-validator-0 ${url} \\(stopped\\); its beacon is at ${net.devnet.manifest.beacon.apiUrl}$`, 'm'));
    // The shard-1 node is not offered for a shard-0 account.
    assert.ok(!r.stderr.includes(net.devnet.process('s1-validator-0').apiUrl), r.stderr);
    assert.equal(r.stdout, '');
  });
});
