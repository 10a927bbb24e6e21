// Joining a devnet from another host, for real: `qnexus devnet --public-host <ip>` runs in one
// network namespace (host A), a full node in another (host B) knows only what the launcher
// printed for it (the join command) and a copy of the genesis file. The two namespaces meet
// only over a veth pair (10.213.9.1 — 10.213.9.2); each has its own loopback, so an address of
// 127.0.0.1 handed across would reach nothing (or the wrong process). Then the launcher is
// stopped the way `npm run devnet | tee log` plus a closed terminal stops it (its stdout reader
// gone, SIGHUP) and its manifest must say so.
//
// Needs root and `ip` (iproute2): without them the test skips with a notice, or fails when
// QNEXUS_REQUIRE_TOOLS=1 (CI).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DevnetManifest } from '@qnexus/cli';
import { unlockKeystoreFile } from '@qnexus/cli';
import { buildTransfer } from '@qnexus/sdk';
import { QNEXUS_BIN } from '../packages/cli/test/helpers.js';
import { sleep } from './helpers.js';
import { ip, missingNetnsTool, must, removeNamespace } from './netns.js';

const NS_A = 'qnx-jh-a';
const NS_B = 'qnx-jh-b';
const LINK = { a: 'qnxjh-a', b: 'qnxjh-b', ipA: '10.213.9.1', ipB: '10.213.9.2' };
const BASE_PORT = 7000;

/** Remove both namespaces (and this test's processes in them), and a host-side veth end left behind. */
function teardownNetwork(): void {
  for (const ns of [NS_A, NS_B]) removeNamespace(ns);
  ip('link', 'del', LINK.a);
}

function setupNetwork(): void {
  must('netns', 'add', NS_A);
  must('netns', 'add', NS_B);
  must('-n', NS_A, 'link', 'set', 'lo', 'up');
  must('-n', NS_B, 'link', 'set', 'lo', 'up');
  must('link', 'add', LINK.a, 'type', 'veth', 'peer', 'name', LINK.b);
  must('link', 'set', LINK.a, 'netns', NS_A);
  must('link', 'set', LINK.b, 'netns', NS_B);
  must('-n', NS_A, 'addr', 'add', `${LINK.ipA}/30`, 'dev', LINK.a);
  must('-n', NS_B, 'addr', 'add', `${LINK.ipB}/30`, 'dev', LINK.b);
  must('-n', NS_A, 'link', 'set', LINK.a, 'up');
  must('-n', NS_B, 'link', 'set', LINK.b, 'up');
}

interface NsAnswer {
  status: number;
  body: string;
}

// A tiny HTTP client run inside a namespace (this test process lives in neither).
const FETCH_SCRIPT = `
const [url, method, body, token] = process.argv.slice(1);
const headers = { 'content-type': 'application/json' };
if (token) headers.authorization = 'Bearer ' + token;
fetch(url, { method, body: body || undefined, headers, signal: AbortSignal.timeout(5000) })
  .then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() })))
  .catch((e) => process.stdout.write(JSON.stringify({ status: 0, body: String(e) })));`;

function nsFetch(ns: string, url: string, opts: { method?: string; body?: string; token?: string } = {}): Promise<NsAnswer> {
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', FETCH_SCRIPT, url, opts.method ?? 'GET', opts.body ?? '', opts.token ?? ''], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('close', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out) as NsAnswer);
      } catch {
        resolve({ status: 0, body: out });
      }
    });
  });
}

async function nsJson<T>(ns: string, url: string, opts: { method?: string; body?: string; token?: string } = {}): Promise<T | null> {
  const r = await nsFetch(ns, url, opts);
  return r.status >= 200 && r.status < 300 ? (JSON.parse(r.body) as T) : null;
}

async function waitFor<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await get();
    if (ok(last)) return last;
    await sleep(500);
  }
  throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)?.slice(0, 500)}`);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('joining a --public-host devnet from another host (two network namespaces)', function () {
  let home: string | undefined;
  let launcher: ChildProcess | undefined;
  let launcherExit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  let joiner: ChildProcess | undefined;
  let joinerExit: Promise<unknown> = Promise.resolve();

  before(function () {
    const missing = missingNetnsTool();
    if (missing === null) return;
    if (process.env.QNEXUS_REQUIRE_TOOLS === '1') throw new Error(`the join-across-hosts test needs ${missing} (QNEXUS_REQUIRE_TOOLS=1)`);
    console.log(`      (skipped: the join-across-hosts test needs ${missing})`);
    this.skip();
  });

  after(async function () {
    this.timeout(60_000);
    try {
      for (const [c, exit] of [[joiner, joinerExit], [launcher, launcherExit]] as const) {
        if (c && c.exitCode === null && c.signalCode === null) {
          c.kill('SIGKILL');
          await exit;
        }
      }
    } finally {
      teardownNetwork(); // also the launcher's children, should it have been SIGKILLed
      if (home && !process.env.QNEXUS_KEEP_TEST_DIRS) rmSync(home, { recursive: true, force: true });
      else if (home) console.log(`kept ${home}`);
    }
  });

  it('a node on host B joins with the printed command only: it syncs, follows gossip, and dials nothing on 127.0.0.1; the manifest survives a hang-up', async function () {
    this.timeout(240_000);
    teardownNetwork(); // whatever a crashed earlier run left
    setupNetwork();
    home = mkdtempSync(join(tmpdir(), 'qnexus-join-hosts-'));
    const dir = join(home, 'devnet');

    // Host A: the README's command with --public-host.
    const launcherLog = join(home, 'launcher.err');
    launcher = spawn(
      'ip',
      ['netns', 'exec', NS_A, process.execPath, ...QNEXUS_BIN, 'devnet', '--dir', dir, '--shards', '1', '--validators', '4', '--full-nodes', '0', '--accounts', '2', '--base-port', String(BASE_PORT), '--log-format', 'json', '--public-host', LINK.ipA],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    launcher.stderr!.pipe(createWriteStream(launcherLog));
    launcherExit = new Promise((r) => launcher!.once('exit', (code, signal) => r({ code, signal })));
    let summary = '';
    launcher.stdout!.setEncoding('utf8').on('data', (d: string) => (summary += d));
    const printed = await Promise.race([
      (async () => {
        for (let i = 0; i < 240 && !/Ctrl-C stops/.test(summary); i++) await sleep(500);
        return /Ctrl-C stops/.test(summary);
      })(),
      launcherExit.then(() => false),
    ]);
    assert.ok(printed, `the launcher printed no summary; stdout:\n${summary}\nstderr:\n${existsSync(launcherLog) ? readFileSync(launcherLog, 'utf8') : ''}`);

    // What host B's operator copies from the summary: where the genesis is, and the node command.
    const scp = /^\s*scp (\S+):(\S+) genesis\.json/m.exec(summary);
    assert.ok(scp, `no genesis copy line in:\n${summary}`);
    assert.equal(scp[1], LINK.ipA);
    const cmdLine = /^\s*npx qnexus (node .*)$/m.exec(summary);
    assert.ok(cmdLine, `no join command in:\n${summary}`);
    const joinArgs = cmdLine[1]!.trim().split(/\s+/);
    assert.ok(!joinArgs.some((a) => a.includes('127.0.0.1')), `the join command names a loopback address: ${cmdLine[1]}`);
    assert.ok(joinArgs.filter((a) => a.startsWith(`/ip4/${LINK.ipA}/tcp/`)).length >= 5, 'the beacon and the 4 validators, at the public host');

    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as DevnetManifest;
    assert.equal(manifest.publicHost, LINK.ipA);
    const v0 = manifest.processes.find((p) => p.name === 'validator-0')!;
    const devnetApi = `http://${LINK.ipA}:${v0.apiPort}`;
    // The devnet's APIs listen on every interface: host B reaches them at the public host.
    const atJoin = await waitFor('the devnet reached height 2', () => nsJson<{ height: number }>(NS_B, `${devnetApi}/v1/status`), (s) => (s?.height ?? 0) >= 2, 60_000);

    // Host B: the printed command, run where the copied genesis.json is, plus its own --public-host as the summary suggests.
    const hostB = join(home, 'host-b');
    rmSync(hostB, { recursive: true, force: true });
    mkdirSync(hostB, { recursive: true });
    copyFileSync(scp[2]!, join(hostB, 'genesis.json'));
    const joinerLog = join(home, 'joiner.log');
    joiner = spawn('ip', ['netns', 'exec', NS_B, process.execPath, ...QNEXUS_BIN, ...joinArgs, '--public-host', LINK.ipB, '--log-format', 'json'], { cwd: hostB, stdio: ['ignore', 'pipe', 'pipe'] });
    const jl = createWriteStream(joinerLog);
    joiner.stdout!.pipe(jl);
    joiner.stderr!.pipe(jl);
    joinerExit = new Promise((r) => joiner!.once('exit', r));
    const dataDirFlag = joinArgs[joinArgs.indexOf('--data-dir') + 1]!;
    // Its API (the node's default port, on host B's own loopback), from the info file it writes once started.
    const info = await waitFor('the joiner started', async () => {
      try {
        return JSON.parse(readFileSync(join(hostB, dataDirFlag, 'node-info.json'), 'utf8')) as { apiUrl: string };
      } catch {
        return null;
      }
    }, (i) => i !== null, 60_000);
    const joinerApi = info!.apiUrl;

    // It syncs past the devnet's height at join time, then keeps following.
    const h0 = atJoin!.height;
    const first = await waitFor('the joiner synced past the height at join time', () => nsJson<{ height: number }>(NS_B, `${joinerApi}/v1/status`), (s) => (s?.height ?? 0) > h0, 90_000);
    await waitFor('the joiner follows new blocks', () => nsJson<{ height: number }>(NS_B, `${joinerApi}/v1/status`), (s) => (s?.height ?? 0) >= first!.height + 2, 60_000);

    // A transaction submitted on host A becomes visible (final) on host B.
    const pass = readFileSync(manifest.passphraseFile, 'utf8').trim();
    const [a0, a1] = manifest.accounts;
    const { key } = await unlockKeystoreFile(a0!.keystore, pass);
    const tx = buildTransfer({ key: { publicKey: key.publicKey, secretKey: key.secretKey, scheme: key.scheme }, chainId: manifest.chainId, to: a1!.address, amount: 777n, fee: 1n, nonce: 0n });
    const raw = Buffer.from(tx.raw).toString('hex');
    const sub = await nsFetch(NS_A, `http://127.0.0.1:${v0.apiPort}/v1/txs`, { method: 'POST', body: JSON.stringify({ tx: raw }) });
    assert.ok(sub.status === 202 || sub.status === 200, `submit: ${sub.status} ${sub.body}`);
    await waitFor('the transfer is final on the joiner', () => nsJson<{ status: string }>(NS_B, `${joinerApi}/v1/txs/${tx.hash}`), (t) => t?.status === 'final', 90_000);

    // Its peers are the devnet's processes at the public host, and nothing else.
    const token = readFileSync(join(hostB, dataDirFlag, 'admin.token'), 'utf8').trim();
    const peers = await nsJson<{ peers: { peerId: string; addrs: string[] }[] }>(NS_B, `${joinerApi}/v1/admin/peers`, { token });
    assert.ok(peers && peers.peers.length >= 3, JSON.stringify(peers));
    const addrs = peers.peers.flatMap((p) => p.addrs);
    assert.ok(addrs.length > 0 && addrs.every((a) => a.startsWith(`/ip4/${LINK.ipA}/`)), `peer addresses: ${addrs.join(' ')}`);
    const joinerLogText = readFileSync(joinerLog, 'utf8');
    assert.ok(!/\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p/.test(joinerLogText), 'the joiner never logged a loopback multiaddr of a peer');

    // The hang-up: the stdout reader goes away (the tee of `npm run devnet | tee log`), then
    // SIGHUP. The launcher must stop every process and leave a manifest that says so.
    const pids = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as DevnetManifest;
    const childPids = pids.processes.map((p) => p.pid).filter((p): p is number => p !== null);
    assert.equal(childPids.length, 5);
    launcher.stdout!.destroy();
    launcher.kill('SIGHUP');
    const ended = await Promise.race([launcherExit, sleep(60_000).then(() => null)]);
    assert.ok(ended, 'the launcher exited after SIGHUP');
    const after = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as DevnetManifest;
    assert.equal(after.launcherPid, null);
    assert.deepEqual(after.processes.map((p) => [p.name, p.state, p.pid]), after.processes.map((p) => [p.name, 'stopped', null]));
    assert.deepEqual(childPids.filter(pidAlive), [], 'no devnet process is left running');
  });
});
