// Operations against real node processes: the admin API's bearer token lives in each data dir;
// the launcher's supervisor restarts what dies, and `qnexus devnet status|restart|logs` work
// against the running devnet (this test process is its launcher).
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError, QnexusClient } from '@qnexus/sdk';
import { BEACON_NAME } from '@qnexus/cli';
import { qnexus } from '../packages/cli/test/helpers.js';
import { freshAddressOn, startTestNet, transfer, waitFor, type TestNet } from './helpers.js';

describe('operations: admin API auth, supervisor and devnet commands on a running devnet', function () {
  let net: TestNet;
  // `qnexus devnet restart` asks the launcher with SIGUSR2 (as the devnet command serves it).
  const onRestartRequest = () => void net?.devnet.serveRestartRequests();

  before(async function () {
    this.timeout(120_000);
    net = await startTestNet({ shards: 1, validators: 4, fullNodes: 0, supervise: { initialDelayMs: 500 } });
    process.on('SIGUSR2', onRestartRequest);
  });

  after(async function () {
    this.timeout(60_000);
    process.off('SIGUSR2', onRestartRequest);
    await net?.cleanup();
  });

  it('401 without the token, 200 with the one in the data dir (SDK and CLI), on a node and the beacon', async function () {
    this.timeout(30_000);
    for (const name of ['validator-0', BEACON_NAME]) {
      const p = net.devnet.process(name);
      const tokenPath = join(p.dataDir, 'admin.token');
      const token = readFileSync(tokenPath, 'utf8').trim();
      assert.match(token, /^[0-9a-f]{64}$/);

      const anon = await fetch(`${p.apiUrl}/v1/admin/peers`);
      assert.equal(anon.status, 401, name);
      assert.equal(((await anon.json()) as { error: { code: string } }).error.code, 'UNAUTHORIZED');
      assert.match(anon.headers.get('www-authenticate') ?? '', /^Bearer/);
      await assert.rejects(new QnexusClient(p.apiUrl, { adminToken: 'ab'.repeat(32) }).adminLogLevel(), (e: unknown) => e instanceof ApiError && e.code === 'UNAUTHORIZED' && e.status === 401);

      const admin = new QnexusClient(p.apiUrl, { adminToken: token });
      const peers = await waitFor(`${name}'s peers`, () => admin.adminPeers(), (r) => r.count >= 1, 10_000);
      assert.ok(peers.peers.every((x) => x.addrs.length > 0), JSON.stringify(peers));
      assert.deepEqual(await admin.adminLogLevel(), { level: 'info' });

      // The CLI reads the same file from --data-dir.
      const cli = await qnexus(['admin', 'peers', '--node', p.apiUrl, '--data-dir', p.dataDir, '--json']);
      assert.equal(cli.code, 0, cli.stderr);
      assert.ok((JSON.parse(cli.stdout) as { count: number }).count >= 1);
      const wrong = join(net.devnet.dir, `${name}-wrong.token`);
      writeFileSync(wrong, 'cd'.repeat(32));
      const denied = await qnexus(['admin', 'log-level', 'debug', '--node', p.apiUrl, '--token-file', wrong]);
      assert.equal(denied.code, 1);
      assert.match(denied.stderr, /UNAUTHORIZED/);
      assert.deepEqual(await admin.adminLogLevel(), { level: 'info' }, 'the refused change did not happen');
    }
  });

  /** SIGKILL a process behind the launcher's back; resolves once the supervisor's new one answers. */
  async function killAndAwaitRestart(name: string): Promise<number> {
    const p = net.devnet.process(name);
    const old = p.pid!;
    process.kill(old, 'SIGKILL');
    await waitFor(`${name} restarted`, async () => (p.pid !== null && p.pid !== old && net.devnet.isRunning(name) ? p.pid : null), (pid) => pid !== null, 60_000);
    const c = net.devnet.client(name);
    await waitFor(`${name} answers again`, () => (name === BEACON_NAME ? c.beaconStatus() : c.status()).then(() => true).catch(() => false), (ok) => ok, 30_000);
    return p.pid!;
  }

  it('the supervisor restarts a SIGKILLed validator and the beacon; the chain resumes; devnet status, restart and logs work', async function () {
    this.timeout(180_000);
    const d = net.devnet;
    const v0 = d.client('validator-0');
    await killAndAwaitRestart('validator-2');
    await killAndAwaitRestart(BEACON_NAME);
    assert.equal(d.process('validator-2').restarts, 1);
    assert.equal(d.process(BEACON_NAME).restarts, 1);
    assert.equal(d.process('validator-2').state, 'running');

    // The chain goes on, the restarted validator with it, and a transfer made now becomes final.
    const h = (await v0.status()).finalizedHeight;
    await waitFor('validator-2 finalizes past the height before', () => d.client('validator-2').status(), (s) => s.finalizedHeight >= h + 3, 60_000);
    const from = net.accountsByShard[0]![0]!;
    const tx = transfer(net, from, freshAddressOn(net, 0, 201), 4242n, 0n);
    await d.client('validator-2').submitTx(tx.raw);
    assert.equal((await v0.waitForTx(tx.hash, { timeoutMs: 60_000 })).status, 'final');

    // devnet status (another process, reading the manifest): every process alive, with its height and restarts.
    const st = await qnexus(['devnet', 'status', '--dir', d.dir, '--json']);
    assert.equal(st.code, 0, st.stderr);
    const status = JSON.parse(st.stdout) as { running: boolean; processes: { name: string; alive: boolean; pid: number; height: number | null; restarts: number }[] };
    assert.equal(status.running, true);
    const byName = new Map(status.processes.map((p) => [p.name, p]));
    assert.deepEqual([...byName.keys()].sort(), [BEACON_NAME, 'validator-0', 'validator-1', 'validator-2', 'validator-3']);
    for (const p of byName.values()) {
      assert.equal(p.alive, true, p.name);
      assert.equal(p.pid, d.process(p.name).pid, p.name);
      assert.ok(typeof p.height === 'number' && p.height >= 0, `${p.name}: ${JSON.stringify(p)}`);
    }
    assert.equal(byName.get('validator-2')!.restarts, 1);
    assert.equal(byName.get(BEACON_NAME)!.restarts, 1);

    // devnet restart: the launcher restarts it on request; the command returns once the new process answers.
    const before = d.process('validator-1').pid;
    const rs = await qnexus(['devnet', 'restart', 'validator-1', '--dir', d.dir], { timeoutMs: 120_000 });
    assert.equal(rs.code, 0, rs.stderr);
    assert.notEqual(d.process('validator-1').pid, before);
    assert.match(rs.stdout, new RegExp(`validator-1 restarted: pid ${d.process('validator-1').pid}`));
    const unknown = await qnexus(['devnet', 'restart', 'validator-9', '--dir', d.dir]);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /DEVNET_UNKNOWN_NODE/);

    // devnet logs: the last lines of its log file.
    const lg = await qnexus(['devnet', 'logs', 'validator-0', '-n', '3', '--dir', d.dir]);
    assert.equal(lg.code, 0, lg.stderr);
    const lines = lg.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 3);
    for (const l of lines) assert.ok((JSON.parse(l) as { msg?: string }).msg !== undefined, l);
  });
});
