// docker-compose.yml, checked without a Docker engine: `docker-compose config` validates it, and
// its topology runs as plain processes on 127.0.0.1 from the configuration its `init` service
// generates (the same command), with the node services' own commands (only container hostnames
// → 127.0.0.1, ports → distinct free ones, volumes → directories). Both shards must finalize.
import { strict as assert } from 'node:assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiError, QnexusClient } from '@qnexus/sdk';
import { randomBasePort, sleep } from './helpers.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');
const BIN = join(ROOT, 'packages/cli/dist/bin.js');
const REQUIRE_TOOLS = process.env.QNEXUS_REQUIRE_TOOLS === '1';
// js-yaml comes with mocha (the test runner); a YAML parser only to read the compose file.
const yaml = createRequire(import.meta.url)('js-yaml') as { load(text: string): unknown };

type Volume = string | { type?: string; source?: string; target: string };
interface ComposeService {
  image?: string;
  command?: string[] | string;
  volumes?: Volume[];
  ports?: (string | { published: number | string; target: number | string; host_ip?: string })[];
  environment?: Record<string, string | null> | string[];
  restart?: string;
  healthcheck?: { test?: string[] | string };
  depends_on?: string[] | Record<string, { condition?: string }>;
}
interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}
interface TopologyProcess {
  name: string;
  role: 'beacon' | 'validator' | 'full';
  shard: number | null;
  peerId: string;
  p2pPort: number;
  apiPort: number;
  multiaddr: string;
  peerKey: string;
  keystore: string | null;
}
interface Topology {
  hostMode: string;
  chainId: string;
  genesisHash: string;
  shardCount: number;
  processes: TopologyProcess[];
}

function toolAvailable(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.error === undefined && r.status === 0;
}

/** A missing external tool: skip loudly, or fail when CI requires the tools. */
function missingTool(ctx: Mocha.Context, tool: string, pkg: string): never {
  const msg = `${tool} is not installed (Debian package ${pkg})`;
  if (REQUIRE_TOOLS) assert.fail(`${msg}, and QNEXUS_REQUIRE_TOOLS=1 requires it`);
  console.warn(`\n  !!!!!!!! SKIPPED: ${msg}; install it to run this check (CI sets QNEXUS_REQUIRE_TOOLS=1) !!!!!!!!\n`);
  ctx.skip();
}

/** `docker-compose config` output (validated, merged) if docker-compose is installed, else the file as written. */
function loadCompose(hasCompose: boolean, env: Record<string, string> = {}): ComposeFile {
  const text = hasCompose
    ? spawnSync('docker-compose', ['-f', COMPOSE_FILE, 'config'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, QNEXUS_BIND: '', QNEXUS_PUBLIC_HOST: '', ...env } }).stdout
    : readFileSync(COMPOSE_FILE, 'utf8');
  const c = yaml.load(text) as ComposeFile;
  assert.ok(c && typeof c.services === 'object', 'docker-compose.yml has services');
  return c;
}

/** A service's published ports: `[host_ip:]published:target[/proto]` strings (a `${VAR:-default}` as written reads as its default) or objects. */
function publishedPorts(s: ComposeService): { hostIp: string; published: number; target: number }[] {
  return (s.ports ?? []).map((p) => {
    if (typeof p !== 'string') return { hostIp: p.host_ip ?? '0.0.0.0', published: Number(p.published), target: Number(p.target) };
    const parts = p.replace(/\$\{\w+:-([^}]*)\}/g, '$1').replace(/\/\w+$/, '').split(':');
    const target = Number(parts.pop());
    const published = Number(parts.pop());
    return { hostIp: parts.length > 0 ? parts.join(':') : '0.0.0.0', published, target };
  });
}

function environmentOf(s: ComposeService): Record<string, string> {
  const e = s.environment ?? {};
  if (Array.isArray(e)) return Object.fromEntries(e.map((kv) => [kv.split('=')[0]!, kv.slice(kv.indexOf('=') + 1)]));
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, v ?? '']));
}

function commandOf(name: string, s: ComposeService): string[] {
  assert.ok(Array.isArray(s.command), `service ${name}: command must be a list (exec form)`);
  return s.command.map(String);
}

function mounts(s: ComposeService): { source: string; target: string }[] {
  return (s.volumes ?? []).map((v) => {
    if (typeof v === 'string') {
      const [source, target] = v.split(':');
      return { source: source!, target: target! };
    }
    return { source: v.source ?? '', target: v.target };
  });
}

const flag = (args: string[], name: string): string | undefined => {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
};

describe('docker-compose devnet (no Docker engine: validated, then run as plain processes)', function () {
  const hasCompose = toolAvailable('docker-compose', ['version']);
  const children = new Map<string, ChildProcess>();
  let tmp = '';

  after(async function () {
    this.timeout(60_000);
    await Promise.all(
      [...children.values()].map(
        (c) =>
          new Promise<void>((res) => {
            if (c.exitCode !== null || c.signalCode !== null) return res();
            const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
            c.once('exit', () => {
              clearTimeout(t);
              res();
            });
            c.kill('SIGTERM');
          }),
      ),
    );
    if (tmp === '') return;
    if (process.env.QNEXUS_KEEP_TEST_DIRS) console.log(`kept ${tmp}`);
    else rmSync(tmp, { recursive: true, force: true });
  });

  it('docker-compose config validates docker-compose.yml (and promtool devnet/prometheus.yml)', function () {
    if (!hasCompose) missingTool(this, 'docker-compose', 'docker-compose');
    const r = spawnSync('docker-compose', ['-f', COMPOSE_FILE, 'config'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, `docker-compose config failed:\n${r.stderr}`);
    const c = yaml.load(r.stdout) as ComposeFile;
    const names = Object.keys(c.services).sort();
    const expected = ['beacon', 'init', 'prometheus'];
    for (const k of [0, 1]) expected.push(`s${k}-full-0`, ...[0, 1, 2, 3].map((i) => `s${k}-validator-${i}`));
    assert.deepEqual(names, expected.sort());
    // Every node has its own named volume, a published API port and a /v1/status healthcheck.
    for (const [name, s] of Object.entries(c.services)) {
      if (name === 'init' || name === 'prometheus') continue;
      const own = mounts(s).find((m) => m.target === '/data');
      assert.ok(own && c.volumes && own.source in c.volumes, `${name} keeps /data in a named volume`);
      assert.ok((s.ports ?? []).length > 0, `${name} publishes its API port`);
      assert.match(JSON.stringify(s.healthcheck?.test ?? ''), /\/v1\/status/, `${name} has a /v1/status healthcheck`);
      assert.equal(s.restart, 'unless-stopped', `${name} restarts unless stopped`);
      assert.ok('QNEXUS_PUBLIC_HOST' in environmentOf(s), `${name} takes QNEXUS_PUBLIC_HOST`);
    }
    // By default nothing is published beyond this host's loopback.
    for (const [name, s] of Object.entries(c.services)) {
      for (const p of publishedPorts(s)) assert.equal(p.hostIp, '127.0.0.1', `${name} publishes ${p.published} on 127.0.0.1 only`);
    }
    // Hosting for other machines: QNEXUS_BIND publishes on every interface, QNEXUS_PUBLIC_HOST reaches every process.
    const hosted = loadCompose(true, { QNEXUS_BIND: '0.0.0.0', QNEXUS_PUBLIC_HOST: '203.0.113.7' });
    for (const [name, s] of Object.entries(hosted.services)) {
      if (name === 'init') continue;
      for (const p of publishedPorts(s)) assert.equal(p.hostIp, '0.0.0.0', `${name} with QNEXUS_BIND=0.0.0.0`);
      if (name !== 'prometheus') assert.equal(environmentOf(s).QNEXUS_PUBLIC_HOST, '203.0.113.7', name);
    }
    if (!toolAvailable('promtool', ['--version'])) missingTool(this, 'promtool', 'prometheus');
    const p = spawnSync('promtool', ['check', 'config', join(ROOT, 'devnet/prometheus.yml')], { encoding: 'utf8' });
    assert.equal(p.status, 0, `promtool check config failed:\n${p.stdout}${p.stderr}`);
  });

  it("the compose topology's generated config boots as plain processes and finalizes on both shards", async function () {
    this.timeout(300_000);
    if (!hasCompose) console.warn('  (docker-compose not installed: reading docker-compose.yml as written instead of its `docker-compose config` form)');
    assert.ok(existsSync(BIN), `${BIN} is missing: build first (npx tsc -b)`);
    const compose = loadCompose(hasCompose);
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    assert.match(dockerfile, /^ENTRYPOINT \["node", "\/app\/packages\/cli\/dist\/bin\.js"\]$/m, 'the image runs the qnexus CLI (a command is qnexus arguments)');
    tmp = mkdtempSync(join(tmpdir(), 'qnexus-compose-'));
    mkdirSync(join(tmp, 'logs'));

    // Named volumes → directories; a path inside a mount target → the same path in its directory.
    const mapPath = (s: ComposeService, arg: string): string => {
      for (const m of mounts(s).sort((a, b) => b.target.length - a.target.length)) {
        if (arg === m.target || arg.startsWith(`${m.target}/`)) {
          const base = m.source.startsWith('.') || isAbsolute(m.source) ? resolve(ROOT, m.source) : join(tmp, 'volumes', m.source);
          return base + arg.slice(m.target.length);
        }
      }
      return arg;
    };

    // 1. The init service's command, as it runs in its container (paths → volume dirs), with
    //    addresses for this machine: 127.0.0.1 and a free port range.
    const init = compose.services.init;
    assert.ok(init, 'docker-compose.yml has an init service');
    const initCmd = commandOf('init', init);
    assert.deepEqual(initCmd.slice(0, 2), ['devnet', 'init']);
    assert.equal(flag(initCmd, '--host-mode'), 'compose');
    const composeBase = Number(flag(initCmd, '--base-port') ?? 7000);
    const outDir = mapPath(init, flag(initCmd, '--dir')!);
    let localBase = 0;
    for (let attempt = 0; attempt < 4 && localBase === 0; attempt++) {
      const base = randomBasePort();
      rmSync(outDir, { recursive: true, force: true });
      mkdirSync(outDir, { recursive: true });
      const r = spawnSync(process.execPath, [BIN, ...initCmd.map((a) => mapPath(init, a)), '--host-mode', 'local', '--base-port', String(base)], { encoding: 'utf8', timeout: 120_000 });
      if (r.status === 0) localBase = base;
      else if (!/PORT_IN_USE/.test(r.stderr)) assert.fail(`init failed (${r.status}):\n${r.stdout}${r.stderr}`);
    }
    assert.ok(localBase > 0, 'found a free port range');
    const topologyPath = join(outDir, 'topology.json');
    const topo = JSON.parse(readFileSync(topologyPath, 'utf8')) as Topology;
    assert.equal(topo.hostMode, 'local');
    assert.equal(topo.shardCount, 2);
    const local = (port: number) => port - composeBase + localBase;

    // 2. The node services: exactly the topology's processes, with the generator's ports.
    const nodeServices = Object.entries(compose.services).filter(([, s]) => {
      const c = Array.isArray(s.command) ? s.command[0] : undefined;
      return c === 'node' || c === 'beacon';
    });
    assert.deepEqual(nodeServices.map(([n]) => n).sort(), topo.processes.map((p) => p.name).sort(), 'compose node services = topology processes');
    const prom = yaml.load(readFileSync(join(ROOT, 'devnet/prometheus.yml'), 'utf8')) as { scrape_configs: { static_configs: { targets: string[] }[] }[] };
    const scraped = new Set(prom.scrape_configs.flatMap((j) => j.static_configs.flatMap((sc) => sc.targets)));
    assert.ok(mounts(compose.services.prometheus!).some((m) => m.target === '/etc/prometheus/prometheus.yml' && resolve(ROOT, m.source) === join(ROOT, 'devnet/prometheus.yml')));

    interface Planned {
      name: string;
      t: TopologyProcess;
      args: string[];
      dataDir: string;
      deps: string[];
    }
    const planned: Planned[] = [];
    for (const [name, s] of nodeServices) {
      const t = topo.processes.find((p) => p.name === name)!;
      const cP2p = t.p2pPort - localBase + composeBase;
      const cApi = t.apiPort - localBase + composeBase;
      assert.ok(scraped.has(`${name}:${cApi}`), `prometheus scrapes ${name}:${cApi}`);
      const ports = publishedPorts(s);
      for (const port of [cApi, cP2p]) {
        assert.ok(ports.some((p) => p.published === port && p.target === port && p.hostIp === '127.0.0.1'), `${name} publishes port ${port} on 127.0.0.1: ${JSON.stringify(s.ports)}`);
      }
      assert.match(JSON.stringify(s.healthcheck?.test ?? ''), new RegExp(`127\\.0\\.0\\.1:${cApi}/v1/status`), `${name} healthcheck`);
      const cmd = commandOf(name, s);
      const args: string[] = [];
      const seen = new Set<string>();
      for (let i = 0; i < cmd.length; i++) {
        const a = cmd[i]!;
        const v = cmd[i + 1];
        const take = (x: string) => {
          args.push(a, x);
          seen.add(a);
          i++;
        };
        if (a === '--listen') {
          assert.equal(v, `/ip4/0.0.0.0/tcp/${cP2p}`, `${name} --listen`);
          take(`/ip4/127.0.0.1/tcp/${local(cP2p)}`);
        } else if (a === '--announce') {
          assert.equal(v, `/dns4/${name}/tcp/${cP2p}`, `${name} announces its container address`);
          take(`/ip4/127.0.0.1/tcp/${local(cP2p)}`);
        } else if (a === '--api-host') {
          assert.equal(v, '0.0.0.0');
          take('127.0.0.1');
        } else if (a === '--api-port') {
          assert.equal(v, String(cApi), `${name} --api-port`);
          take(String(t.apiPort));
        } else if (a === '--peer-key') {
          assert.equal(mapPath(s, v!), join(outDir, t.peerKey), `${name} --peer-key is the key init made for it`);
          take(mapPath(s, v!));
        } else if (a === '--validator' || a === '--key') {
          assert.equal(mapPath(s, v!), join(outDir, t.keystore!), `${name} ${a}`);
          take(mapPath(s, v!));
        } else if (a === '--shard') {
          assert.equal(v, String(t.shard), `${name} --shard`);
          take(v);
        } else if (a === '--bootstrap-file') {
          assert.equal(mapPath(s, v!), topologyPath);
          take(mapPath(s, v!));
        } else if (a === '--bootstrap') {
          assert.fail(`${name}: --bootstrap in docker-compose.yml cannot know init's peer ids; use --bootstrap-file`);
        } else {
          args.push(mapPath(s, a));
        }
      }
      for (const f of ['--listen', '--announce', '--api-host', '--api-port', '--peer-key', '--bootstrap-file']) assert.ok(seen.has(f), `${name} has ${f}`);
      if (t.role === 'validator') assert.ok(seen.has('--validator'), `${name} is a validator`);
      const dataDir = mapPath(s, flag(cmd, '--data-dir')!);
      const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
      planned.push({ name, t, args, dataDir, deps: deps.filter((d) => d !== 'init') });
    }

    // 3. Start them as compose would: a service once the services it depends on are healthy.
    const client = (p: Planned) => new QnexusClient(`http://127.0.0.1:${p.t.apiPort}`, { timeoutMs: 5000 });
    const healthy = new Set<string>();
    const waitHealthy = async (p: Planned) => {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const c = children.get(p.name)!;
        if (c.exitCode !== null) assert.fail(`${p.name} exited (${c.exitCode}); log ${join(tmp, 'logs', `${p.name}.log`)}:\n${readFileSync(join(tmp, 'logs', `${p.name}.log`), 'utf8').slice(-3000)}`);
        try {
          const s = p.t.role === 'beacon' ? await client(p).beaconStatus() : await client(p).status();
          assert.equal(s.peerId, p.t.peerId, `${p.name} runs with the identity init made`);
          assert.equal(s.chainId, topo.chainId);
          healthy.add(p.name);
          return;
        } catch (e) {
          if (!(e instanceof ApiError)) throw e;
        }
        if (Date.now() > deadline) assert.fail(`${p.name} did not answer /v1/status within 60 s`);
        await sleep(250);
      }
    };
    const pending = [...planned];
    while (pending.length > 0) {
      const ready = pending.filter((p) => p.deps.every((d) => healthy.has(d)));
      assert.ok(ready.length > 0, `unsatisfiable depends_on: ${pending.map((p) => p.name).join(', ')}`);
      for (const p of ready) {
        pending.splice(pending.indexOf(p), 1);
        const fd = openSync(join(tmp, 'logs', `${p.name}.log`), 'a');
        children.set(p.name, spawn(process.execPath, [BIN, ...p.args], { stdio: ['ignore', fd, fd] }));
        closeSync(fd);
      }
      await Promise.all(ready.map(waitHealthy));
    }

    // 4. Both shards finalize: every node's finalized height grows by 3+ blocks, and they agree.
    const nodes = planned.filter((p) => p.t.role !== 'beacon');
    const start = new Map<string, number>();
    for (const p of nodes) start.set(p.name, (await client(p).status().catch(() => ({ finalizedHeight: 0 }))).finalizedHeight);
    const deadline = Date.now() + 150_000;
    let last = '';
    for (;;) {
      // A busy machine may make a node slow to answer: that is a "not yet", the deadline bounds it.
      const got = await Promise.all(nodes.map(async (p) => ({ p, s: await client(p).status().catch((e: unknown) => (e instanceof ApiError ? null : Promise.reject(e))) })));
      last = got.map(({ p, s }) => `${p.name}: ${s ? `finalized ${s.finalizedHeight} (height ${s.height}, peers ${s.peers})` : 'no answer'}`).join('; ');
      const st = got.flatMap(({ p, s }) => (s ? [{ p, s }] : []));
      if (st.length === nodes.length && st.every(({ p, s }) => s.finalizedHeight >= Math.max(3, start.get(p.name)! + 3))) {
        for (const k of [0, 1]) {
          const shard = st.filter(({ p }) => p.t.shard === k);
          assert.equal(shard.length, 5, `shard ${k} has 4 validators and a full node`);
          for (const { s } of shard) assert.equal(s.shard, k);
          // The same finalized block at a height every node of the shard has.
          const h = Math.min(...shard.map(({ s }) => s.finalizedHeight));
          const hashes = await Promise.all(shard.map(({ p }) => client(p).block(h).then((b) => b.hash)));
          assert.equal(new Set(hashes).size, 1, `shard ${k} agrees on block ${h}`);
        }
        break;
      }
      if (Date.now() > deadline) assert.fail(`both shards did not finalize within 150 s: ${last}`);
      await sleep(1000);
    }

    // 5. Announced addresses are the ones given (containers: /dns4/<service>), the beacon is up,
    //    and every process serves /metrics for Prometheus.
    for (const p of planned) {
      const info = JSON.parse(readFileSync(join(p.dataDir, 'node-info.json'), 'utf8')) as { multiaddrs: string[] };
      assert.ok(info.multiaddrs.some((m) => m.startsWith(`/ip4/127.0.0.1/tcp/${p.t.p2pPort}`)), `${p.name} announces ${info.multiaddrs.join(' ')}`);
      const r = await fetch(`http://127.0.0.1:${p.t.apiPort}/metrics`);
      assert.equal(r.status, 200, `${p.name} /metrics`);
      assert.match(await r.text(), /^# (HELP|TYPE) /m);
    }
    const beacon = planned.find((p) => p.t.role === 'beacon')!;
    const bs = await client(beacon).beaconStatus();
    assert.ok(bs.peers >= 1 && bs.slot >= 0, `beacon: ${JSON.stringify(bs)}`);
  });
});
