// A node cut off from its shard keeps acknowledging transactions through its API; once the
// partition heals, those transactions become final without any client resubmitting them
// (issue 13: gossip publishes a transaction once, so before re-announcement they stayed unknown
// to the shard for good).
//
// The node under test runs in its own network namespace, joined to the host by two veth pairs:
// one for p2p (the partition takes its link down) and one for its HTTP API (never cut, so the
// test can submit while it is partitioned). The devnet's processes listen on the host end of
// the p2p pair as well as on 127.0.0.1. Needs root and `ip` (iproute2): without them the test
// skips with a notice, or fails when QNEXUS_REQUIRE_TOOLS=1 (CI).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BEACON_NAME } from '@qnexus/cli';
import { QnexusClient } from '@qnexus/sdk';
import { QNEXUS_BIN } from '../packages/cli/test/helpers.js';
import { freshAddressOn, shardNodes, sleep, startTestNet, transfer, waitFor, type TestNet } from './helpers.js';
import { ip, missingNetnsTool, must, removeNamespace } from './netns.js';

const NS = 'qnx-part';
/** p2p pair (host end, namespace end) and its addresses; the API pair likewise. */
const P2P = { host: 'qnxp-h', ns: 'qnxp-n', hostIp: '10.213.7.1', nsIp: '10.213.7.2' };
const API = { host: 'qnxa-h', ns: 'qnxa-n', hostIp: '10.213.8.1', nsIp: '10.213.8.2' };
const TXS = 5;

/** Remove the namespace (and anything a crashed run left in it) and any host end left behind. Safe when nothing exists. */
function teardownNetwork(): void {
  removeNamespace(NS);
  ip('link', 'del', P2P.host);
  ip('link', 'del', API.host);
}

function setupNetwork(): void {
  must('netns', 'add', NS);
  must('-n', NS, 'link', 'set', 'lo', 'up');
  for (const pair of [P2P, API]) {
    must('link', 'add', pair.host, 'type', 'veth', 'peer', 'name', pair.ns);
    must('link', 'set', pair.ns, 'netns', NS);
    must('addr', 'add', `${pair.hostIp}/30`, 'dev', pair.host);
    must('link', 'set', pair.host, 'up');
    must('-n', NS, 'addr', 'add', `${pair.nsIp}/30`, 'dev', pair.ns);
    must('-n', NS, 'link', 'set', pair.ns, 'up');
  }
}

/**
 * The devnet's command for its processes: the CLI as usual, plus a listen address on the host
 * end of the p2p pair (same port as its 127.0.0.1 one), so the namespaced node can reach them.
 */
function devnetCommand(): { command: string; args: string[] } {
  const script = `p=; prev=; for a in "$@"; do [ "$prev" = --p2p-port ] && p="$a"; prev="$a"; done; exec "$0" "$@" --listen "/ip4/${P2P.hostIp}/tcp/$p"`;
  return { command: '/bin/sh', args: ['-c', script, process.execPath, ...QNEXUS_BIN] };
}

describe('a partitioned node’s acknowledged transactions become final after the heal (network namespace)', function () {
  let net: TestNet | undefined;
  let home: string | undefined;
  let child: ChildProcess | undefined;
  let exited: Promise<unknown> = Promise.resolve();
  let logFile = '';

  before(function () {
    const missing = missingNetnsTool();
    if (missing === null) return;
    if (process.env.QNEXUS_REQUIRE_TOOLS === '1') throw new Error(`partition test needs ${missing} (QNEXUS_REQUIRE_TOOLS=1)`);
    console.log(`      (skipped: the partition test needs ${missing})`);
    this.skip();
  });

  after(async function () {
    this.timeout(60_000);
    try {
      if (child && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      await net?.cleanup();
    } finally {
      teardownNetwork();
      if (home) rmSync(home, { recursive: true, force: true });
    }
  });

  it('accepts transactions while cut off, and they become final once it rejoins, without resubmission', async function () {
    this.timeout(240_000);
    // Whatever a crashed earlier run left behind goes first.
    teardownNetwork();
    setupNetwork();
    net = await startTestNet({ shards: 1, validators: 4, fullNodes: 0, nodeCommand: devnetCommand() });
    const n = net;
    const validators = shardNodes(n, 0);
    const hostAddr = (name: string) => {
      const p = n.devnet.process(name);
      return p.multiaddr.replace('/ip4/127.0.0.1/', `/ip4/${P2P.hostIp}/`);
    };

    // The node under test: a full node of shard 0 inside the namespace, bootstrapped from the validators and the beacon.
    home = mkdtempSync(join(tmpdir(), 'qnexus-partition-'));
    const dataDir = join(home, 'data');
    mkdirSync(dataDir);
    logFile = join(home, 'node.log');
    const apiPort = 18_545;
    const args = [
      'netns', 'exec', NS, process.execPath, ...QNEXUS_BIN, 'node',
      '--shard', '0',
      '--data-dir', dataDir,
      '--genesis', join(n.devnet.dir, 'genesis.json'),
      '--listen', `/ip4/${P2P.nsIp}/tcp/17000`,
      '--api-host', API.nsIp,
      '--api-port', String(apiPort),
      '--log-format', 'json',
    ];
    for (const name of [...validators, BEACON_NAME]) args.push('--bootstrap', hostAddr(name));
    child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = createWriteStream(logFile);
    child.stdout!.pipe(out);
    child.stderr!.pipe(out);
    exited = new Promise((r) => child!.once('exit', r));

    const api = new QnexusClient(`http://${API.nsIp}:${apiPort}`);
    await waitFor('the namespaced node answers', () => api.status().catch(() => null), (s) => s !== null, 60_000, 500);
    const admin = new QnexusClient(api.baseUrl, { adminToken: readFileSync(join(dataDir, 'admin.token'), 'utf8').trim() });
    const v0 = n.devnet.client(validators[0]!);
    const headNow = (await v0.status()).finalizedHeight;
    await waitFor('it synced', () => api.status(), (s) => s.finalizedHeight >= headNow, 60_000, 500);
    const validatorPeers = new Set(validators.map((v) => n.devnet.process(v).peerId));
    await waitFor('it is connected to the validators', () => admin.adminPeers(), (p) => p.peers.filter((x) => validatorPeers.has(x.peerId)).length >= 3, 60_000, 500);
    const me = (JSON.parse(readFileSync(join(dataDir, 'node-info.json'), 'utf8')) as { peerId: string }).peerId;

    // Partition: the p2p link goes down, and both sides drop their connections (a live TCP
    // connection would otherwise just deliver the queued gossip once the link is back).
    must('link', 'set', P2P.host, 'down');
    for (const p of (await admin.adminPeers()).peers) await admin.adminDisconnect(p.peerId).catch(() => undefined);
    for (const v of validators) {
      const c = new QnexusClient(n.devnet.client(v).baseUrl, { adminToken: readFileSync(join(n.devnet.process(v).dataDir, 'admin.token'), 'utf8').trim() });
      await c.adminDisconnect(me).catch(() => undefined);
    }
    await waitFor('it has no peers', () => admin.adminPeers(), (p) => p.peers.length === 0, 30_000, 250);

    // Acknowledged while cut off.
    const from = n.accountsByShard[0]![0]!;
    const to = freshAddressOn(n, 0, 211);
    const txs = Array.from({ length: TXS }, (_, i) => transfer(n, from, to, 10n + BigInt(i), BigInt(i)));
    for (const tx of txs) assert.equal((await api.submitTx(tx.raw)).status, 'pending');
    await sleep(2_000);
    for (const tx of txs) await assert.rejects(v0.tx(tx.hash), 'the validators cannot know it during the partition');
    assert.equal((await admin.adminPeers()).peers.length, 0, 'still partitioned');

    // Heal. Nobody resubmits: the transactions must reach the shard on their own.
    must('link', 'set', P2P.host, 'up');
    for (const tx of txs) {
      const done = await v0.waitForTx(tx.hash, { timeoutMs: 90_000 });
      assert.equal(done.status, 'final');
    }
    assert.equal((await v0.account(to)).balance, String(txs.reduce((a, _t, i) => a + 10n + BigInt(i), 0n)));
    await waitFor('the healed node has them final too', () => Promise.all(txs.map((t) => api.tx(t.hash))), (r) => r.every((x) => x.status === 'final'), 60_000, 500);
  });
});
