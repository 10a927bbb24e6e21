// The benchmark's smoke run: every phase of `npm run bench` on a tiny devnet for a few seconds.
// It asserts only that the run completes and writes a well-formed result file and plot; speed
// is measured by `npm run bench`, never asserted in a test.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBasePort } from './helpers.js';

const run = promisify(execFile);

describe('npm run bench -- --smoke', function () {
  this.timeout(300_000);
  let out: string;
  before(() => {
    out = mkdtempSync(join(tmpdir(), 'qnexus-bench-smoke-'));
  });
  after(() => rmSync(out, { recursive: true, force: true }));

  it('runs every phase on a tiny devnet and writes a well-formed JSON result and SVG plot', async () => {
    // The bench uses base … base + 599 (main devnet, then variants at +200 / +400).
    const base = Math.min(randomBasePort(), 32_000);
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'bench/bench.ts', '--smoke', '--out', out, '--base-port', String(base)], {
      maxBuffer: 16 << 20,
      timeout: 280_000,
    });
    const files = readdirSync(out);
    const json = files.filter((f) => /^bench-.*\.json$/.test(f));
    const svg = files.filter((f) => /^bench-.*\.svg$/.test(f));
    assert.equal(json.length, 1, `one result file, got ${files.join(', ')}`);
    assert.equal(svg.length, 1, `one plot, got ${files.join(', ')}`);
    assert.match(stdout, /wrote .*bench-.*\.json/);

    const r = JSON.parse(readFileSync(join(out, json[0]!), 'utf8')) as Record<string, any>;
    assert.equal(r.benchVersion, 3);
    assert.equal(r.smoke, true);
    assert.equal(r.plot, svg[0]);
    const pos = (v: unknown, what: string) => assert.ok(typeof v === 'number' && Number.isFinite(v) && v > 0, `${what}: ${JSON.stringify(v)}`);
    pos(r.crypto.verifyPerSecPerCore, 'verify/s');
    pos(r.crypto.signPerSecPerCore, 'sign/s');
    pos(r.ceilingTxPerSec, 'ceiling');
    // The crypto ceiling over several keys and messages, with its spread.
    assert.ok(r.crypto.keys >= 2 && r.crypto.messages >= 2);
    for (const k of ['verifySpread', 'signSpread']) {
      const sp = r.crypto[k];
      pos(sp.min, `${k} min`);
      assert.ok(sp.min <= sp.median && sp.median <= sp.max, `${k}: ${JSON.stringify(sp)}`);
    }
    assert.equal(r.crypto.verifyPerSecPerCore, r.crypto.verifySpread.median);
    // --crypto-backend defaults to auto, resolved to a concrete backend the devnet ran.
    assert.equal(r.config.backendRequested, 'auto');
    assert.ok(['noble', 'pqclean'].includes(r.config.backend), r.config.backend);
    assert.deepEqual(Object.keys(r.config).sort(), ['accountsPerShard', 'backend', 'backendRequested', 'fullNodes', 'phaseDurationSec', 'scheme', 'shards', 'slotMs', 'stepDurationSec', 'validators', 'variantDurationSec']);

    // The sweep: every step offered load, some of it finalized, with latencies, per-process CPU/RSS and wire bytes.
    assert.ok(Array.isArray(r.sweep.steps) && r.sweep.steps.length >= 1);
    for (const st of [...r.sweep.steps, r.sweep.halfSaturation, r.sweep.thirdSaturation]) {
      pos(st.offeredTxPerSec, 'offered');
      // Load shedding as clients see it: the share of submissions refused at their first attempt.
      assert.ok(st.firstAttemptRefusedShare >= 0 && st.firstAttemptRefusedShare <= 1, `${st.name}: refused share`);
      assert.ok(st.finalized > 0, `${st.name}: nothing finalized`);
      assert.equal(st.finalized + st.notFinalized, st.accepted);
      pos(st.finalizedTxPerSec, 'finalized tx/s');
      for (const p of ['p50', 'p95', 'p99']) {
        pos(st.latencyMs[p], `${st.name} ${p} ms`);
        pos(st.latencySlots[p], `${st.name} ${p} slots`);
      }
      assert.ok(st.latencyMs.p50 <= st.latencyMs.p95 && st.latencyMs.p95 <= st.latencyMs.p99);
      assert.equal(st.wire.ok, true, 'ss read the sockets');
      pos(st.wire.bytesPerFinalizedTx, 'wire bytes per tx');
      // The beacon and the 2 × 1 validators, each with CPU and peak RSS.
      assert.equal(st.processes.length, 3);
      for (const p of st.processes) {
        assert.ok(typeof p.cpuPercent === 'number' && p.cpuPercent >= 0, `${p.name} cpu`);
        pos(p.peakRssMb, `${p.name} rss`);
      }
    }
    pos(r.sweep.saturationTxPerSec, 'saturation');
    assert.ok(Array.isArray(r.sweep.lowered));

    // The issue-18 summary: one row per sweep step (plus half / third saturation), CPU per
    // finalized tx per role from /proc (main thread within total), GC from /metrics, the load
    // generator's CPU, refusals by code, wire bytes; the idle devnet's cores before the load.
    const sm = r.summary;
    assert.equal(typeof sm.countingRule, 'string');
    pos(sm.idleCores, 'idle cores');
    assert.ok(sm.idleMainThreadCores > 0 && sm.idleMainThreadCores <= sm.idleCores + 0.01, 'idle main threads within total');
    assert.deepEqual(Object.keys(sm.idleCoresByRole).sort(), ['beacon', 'validator']);
    assert.equal(sm.gcAvailable, true, 'the nodes export qnexus_nodejs_gc_duration_seconds');
    assert.equal(sm.steps.length, r.sweep.steps.length);
    assert.equal(sm.extra.length, 2);
    assert.equal(sm.hardhatBestTxPerSec, null, 'no Hardhat without --with-hardhat');
    assert.equal(r.hardhat, null);
    for (const row of [...sm.steps, ...sm.extra]) {
      assert.equal(row.hardhatTxPerSec, null);
      assert.equal(row.oursOverHardhat, null);
      pos(row.finalizedTxPerSec, `${row.step} finalized`);
      assert.deepEqual(Object.keys(row.cpuPerTxByRole).sort(), ['beacon', 'validator']);
      const v = row.cpuPerTxByRole.validator;
      assert.equal(v.processes, 2);
      pos(v.totalMsPerTx.avg, `${row.step} validator total ms/tx`);
      pos(v.mainMsPerTx.max, `${row.step} validator main ms/tx`);
      assert.ok(v.mainMsPerTx.avg <= v.mainMsPerTx.max && v.totalMsPerTx.avg <= v.totalMsPerTx.max);
      assert.ok(v.gcMsPerTx.avg !== null && v.gcMsPerTx.avg >= 0, `${row.step} GC`);
      pos(row.cpuPerTxByRole.beacon.totalMsPerTx.avg, `${row.step} beacon total ms/tx`);
      pos(row.loadGenerator.cpuSec, `${row.step} load generator CPU`);
      assert.ok(row.loadGenerator.mainThreadCpuSec !== null && row.loadGenerator.mainThreadCpuSec <= row.loadGenerator.cpuSec + 0.011);
      assert.ok(typeof row.refusals.busy === 'object' && typeof row.refusals.rejected === 'object');
      pos(row.wireBytesPerTx, `${row.step} wire B/tx`);
    }
    for (const st of r.sweep.steps) for (const p of st.processes) assert.ok(p.mainThreadCpuSec !== null && p.mainThreadCpuSec <= p.cpuSec + 0.011, `${p.name}: main within total`);
    for (const k of ['validatorMainThreadMsPerTxAtSaturation', 'idleDevnetCores', 'oursOverHardhatAtSaturation']) assert.ok(k in r.targets, k);
    // The idle figure is the default devnet's, started on its own: 2 × (4 validators + 1 full) + beacon.
    assert.equal(r.idleDevnet.processes, 11);
    assert.deepEqual(r.idleDevnet.topology, { shards: 2, validators: 4, fullNodes: 1, slotMs: 1000 });
    pos(r.idleDevnet.cores, 'idle devnet cores');
    assert.ok(r.idleDevnet.mainThreadCores <= r.idleDevnet.cores + 0.011);
    assert.deepEqual(Object.keys(r.idleDevnet.coresByRole).sort(), ['beacon', 'full', 'validator']);
    assert.equal(r.targets.idleDevnetCores.value, r.idleDevnet.cores);
    assert.match(stdout, /summary \(issue 18\)/);

    // Cross-shard: the transfers were credited, and each shard's supply identity holds. (Escrow
    // need not be 0: proposers' fee tips leave for the beacon once per epoch through escrow.)
    assert.equal(r.xshard.length, 1);
    const x = r.xshard[0];
    assert.equal(x.xfer.credited, x.xfer.accepted);
    assert.deepEqual(x.xfer.beacon.byStatus, { committed: x.xfer.accepted });
    assert.equal(x.supply.length, 2);
    for (const s of x.supply) assert.equal(s.total, s.genesisSupply);

    // Sync and the variant.
    assert.equal(r.sync.caughtUp, true);
    pos(r.sync.targetHeight, 'sync target');
    assert.equal(r.variants.length, 1);
    assert.equal(r.variants[0].variant, 'baseline');
    assert.ok(r.variants[0].finalized > 0);

    // Every target is reported with its value and goal.
    for (const k of ['intraFinalizedOverCeiling', 'p50SlotsAtHalfSaturation', 'firstAttemptRefusedAtThirdSaturation', 'maxNodePeakRssMb', 'syncBlocksPerSec', 'nativeOverJsFinalized']) {
      assert.ok(k in r.targets, k);
      assert.equal(typeof r.targets[k].target, 'number');
    }

    const plot = readFileSync(join(out, svg[0]!), 'utf8');
    assert.match(plot, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(plot, /<\/svg>\n$/);
    assert.ok((plot.match(/<polyline /g) ?? []).length >= 4, 'throughput and three latency lines');
  });
});
