// npm run bench:attacks -- [--baseline <git-rev>] [--classes a,b,…] [--window 12] [--fresh true|false]
//                          [--base-port 24000] [--out bench/results]
//
// Runs every attack class of issue 12 (test/adversary/attacks.ts) against a devnet of this tree
// (1 shard: 4 validators + 1 full node, and the beacon; epochs of 6 slots) and prints, per class:
// the shard's finality during the attack as a ratio of the same window just before, peak RSS and
// CPU seconds of the attacked process (baseline window → attack window), when and how the attacker
// was cut off, whether a fresh honest peer could connect, and whether a genuine transaction
// submitted during the attack became final. Writes bench/results/attacks-<time>.json.
//
// --baseline <rev>: also builds that revision in a git worktree (npm ci, npm run build; removed
// afterwards, even on failure) and runs the same attacks against devnets started from it, class by
// class alternating with this tree, so before and after figures come from one run on one machine.
// Every devnet runs the CLI of its tree (node <tree>/packages/cli/dist/bin.js devnet …); the
// attacks and measurements are this tree's.
//
// --baseline-tree <dir>: use an already built checkout as the baseline instead (no worktree).
// --current false: run only the baseline.
//
// --fresh true (default): a new devnet per class and tree, so one attack's lasting damage (a ban,
// memory never returned) cannot spoil the next class's figures. --fresh false: one devnet per tree.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ATTACKS, attackByName, type AttackClass } from '../test/adversary/attacks.js';
import { runAttack, type AttackResult } from '../test/adversary/run.js';
import { spawnDevnet, type SpawnedDevnet } from '../test/adversary/spawn.js';
import { baselineTreeFromDir, buildBaseline, Cleanups, currentTree, table, type Tree } from './lib-trees.js';

const { values: args } = parseArgs({
  options: {
    baseline: { type: 'string' },
    'baseline-tree': { type: 'string' },
    current: { type: 'string', default: 'true' },
    classes: { type: 'string' },
    window: { type: 'string', default: '12' },
    fresh: { type: 'string', default: 'true' },
    'base-port': { type: 'string', default: '24000' },
    out: { type: 'string', default: 'bench/results' },
  },
});

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const windowMs = Number(args.window) * 1000;
const basePort = Number(args['base-port']);
const fresh = args.fresh !== 'false';
if (!(windowMs >= 2000) || !(basePort > 1024 && basePort < 32_000)) throw new Error('--window must be ≥ 2 (seconds) and --base-port in 1025..31999');
const classes: AttackClass<unknown>[] = args.classes ? args.classes.split(',').map((c) => attackByName(c.trim())) : ATTACKS;

const cleanups = new Cleanups();
cleanups.onSignals('stopping devnets and removing the baseline worktree');

let portSlot = 0;
async function startDevnet(tree: Tree): Promise<SpawnedDevnet> {
  const dir = mkdtempSync(join(tmpdir(), `qnexus-attacks-${tree.label}-`));
  let d: SpawnedDevnet | undefined;
  // Each devnet gets its own 200-port range (a stopped node's ports may linger in TIME_WAIT); a
  // range someone else took meanwhile (other test clusters pick random ones) is skipped.
  for (let attempt = 0; !d; attempt++) {
    const port = basePort + (portSlot++ % 20) * 200;
    try {
      d = await spawnDevnet({ tree: tree.root, dir, basePort: port, epochLength: 6, accounts: 8 });
    } catch (e) {
      if (attempt >= 2 || !/PORT_IN_USE/.test(String(e))) {
        rmSync(dir, { recursive: true, force: true });
        throw e;
      }
    }
  }
  const started = d;
  const stop = async () => {
    await started.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  cleanups.add(stop);
  return {
    ...started,
    stop: async () => {
      cleanups.remove(stop);
      await stop();
    },
  };
}

interface Row {
  tree: string;
  rev: string;
  result?: AttackResult;
  error?: string;
}

const fmt = {
  ratio: (r: number | null | undefined) => (r === null || r === undefined ? '-' : r.toFixed(2)),
  mb: (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '-'),
  s: (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-'),
};

function cells(r: Row): string[] {
  const x = r.result;
  if (!x) return [r.tree, '-', '-', '-', '-', '-', '-', '-', `error: ${r.error ?? '?'}`];
  const failed = x.checks.filter((c) => !c.ok).map((c) => c.name);
  return [
    r.tree,
    `${fmt.ratio(x.finalityRatio)} (${x.during.shardBlocks}/${x.baseline.shardBlocks})`,
    fmt.ratio(x.victimFinalityRatio),
    `${fmt.mb(x.baseline.proc.peakRssMb)}→${fmt.mb(x.during.proc.peakRssMb)}`,
    `${fmt.s(x.baseline.proc.cpuSec)}→${fmt.s(x.during.proc.cpuSec)}`,
    x.cutOff ? `${(x.cutOff.ms / 1000).toFixed(1)} s ${x.cutOff.how}` : x.lateCutOff ? `late (${(x.lateCutOff.ms / 1000).toFixed(1)} s)` : 'never',
    x.honestPeer.ok ? 'yes' : 'NO',
    x.genuineTx.ok ? 'yes' : 'NO',
    [x.dead.length ? `DIED: ${x.dead.join(',')}` : '', failed.length ? `failed: ${failed.join('; ')}` : ''].filter(Boolean).join(' ') || 'ok',
  ];
}

const HEADER = ['tree', 'finality ratio (blocks)', 'victim ratio', 'peak RSS MB', 'CPU s', 'cut off', 'honest peer', 'genuine tx final', 'notes'];

async function main(): Promise<void> {
  const current = currentTree(ROOT);
  const trees: Tree[] = [];
  if (args['baseline-tree']) trees.push(baselineTreeFromDir(args['baseline-tree']));
  else if (args.baseline) trees.push(buildBaseline(ROOT, args.baseline, cleanups));
  if (args.current !== 'false') trees.push(current);
  if (trees.length === 0) throw new Error('nothing to run: --current false needs --baseline or --baseline-tree');
  const byClass = new Map<string, Row[]>(classes.map((c) => [c.name, []]));
  const shared = new Map<string, SpawnedDevnet>();
  const t0 = Date.now();
  for (const [i, cls] of classes.entries()) {
    for (const tree of trees) {
      console.log(`\n[${i + 1}/${classes.length}] ${cls.name} on ${tree.label} (${tree.rev}): ${cls.summary}`);
      let d = shared.get(tree.label);
      try {
        if (!d) {
          d = await startDevnet(tree);
          if (!fresh) shared.set(tree.label, d);
        }
        const result = await runAttack(d.target, cls, { windowMs, log: (m) => console.log(`  ${m}`) });
        byClass.get(cls.name)!.push({ tree: tree.label, rev: tree.rev, result });
        console.log(table([HEADER, cells({ tree: tree.label, rev: tree.rev, result })]));
        for (const c of result.checks) console.log(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`);
        console.log(`  counts: ${JSON.stringify(result.outcome.counts)}`);
        const cut = result.cutOff ?? result.lateCutOff;
        if (cut) console.log(`  cut-off: ${cut.detail}`);
        if (!result.honestPeer.ok) console.log(`  honest peer: ${result.honestPeer.detail}`);
        if (!result.genuineTx.ok) console.log(`  genuine tx: ${result.genuineTx.detail}`);
      } catch (e) {
        console.log(`  error: ${(e as Error).stack ?? String(e)}`);
        byClass.get(cls.name)!.push({ tree: tree.label, rev: tree.rev, error: (e as Error).message.split('\n')[0]! });
        if (!fresh && d) {
          await d.stop();
          shared.delete(tree.label);
        }
      } finally {
        if (fresh && d) await d.stop();
      }
    }
  }
  for (const d of shared.values()) await d.stop();

  console.log(`\nattacks: window ${windowMs / 1000} s, ${fresh ? 'a fresh devnet per class' : 'one devnet per tree'}, ${((Date.now() - t0) / 60_000).toFixed(1)} min; ${trees.map((t) => `${t.label} = ${t.rev}`).join(', ')}`);
  for (const [name, rows] of byClass) {
    console.log(`\n${name}: ${attackByName(name).summary}`);
    console.log(table([HEADER, ...rows.map(cells)]));
  }
  mkdirSync(resolve(ROOT, args.out!), { recursive: true });
  const file = join(resolve(ROOT, args.out!), `attacks-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ windowMs, fresh, trees: trees.map((t) => ({ label: t.label, rev: t.rev })), classes: Object.fromEntries(byClass) }, null, 2));
  console.log(`\nwrote ${file}`);
}

try {
  await main();
} finally {
  await cleanups.run();
}
