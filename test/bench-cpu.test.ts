// The benchmark's CPU-per-transaction arithmetic (bench/cpu.ts): /proc stat parsing, the GC
// metric, and the per-role division (own shard's transactions for shard nodes, all for the beacon).
import { strict as assert } from 'node:assert';
import { costPerTxByRole, parseGcSeconds, parseStatCpuSec, procCpu, type ProcCost } from '../bench/cpu.js';

describe('bench/cpu.ts', () => {
  it('reads utime + stime from a /proc stat line, even when the command name holds spaces and parentheses', () => {
    // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime …
    const line = '4242 (node (x) y) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 75 0 0 20 0 11 0 12345 0 0';
    assert.equal(parseStatCpuSec(line), 3.25);
    assert.equal(parseStatCpuSec('garbage'), null);
    assert.equal(parseStatCpuSec('1 (x) S 1 2'), null);
  });

  it('reads this process: its main thread is part of its total', () => {
    let x = 0;
    for (let i = 0; i < 2e6; i++) x += Math.sqrt(i);
    assert.ok(x > 0);
    const c = procCpu(process.pid);
    assert.ok(c, 'own /proc entry');
    assert.ok(c.mainSec !== null && c.mainSec <= c.totalSec + 0.011, `${c.mainSec} ≤ ${c.totalSec}`);
    assert.equal(procCpu(2 ** 22 + 7), null, 'a pid above pid_max is gone');
  });

  it('sums the GC histogram over its kinds, and says when it is absent', () => {
    const text = [
      '# HELP qnexus_nodejs_gc_duration_seconds Garbage collection duration by kind',
      '# TYPE qnexus_nodejs_gc_duration_seconds histogram',
      'qnexus_nodejs_gc_duration_seconds_bucket{le="0.001",kind="minor"} 10',
      'qnexus_nodejs_gc_duration_seconds_sum{kind="minor"} 0.25',
      'qnexus_nodejs_gc_duration_seconds_count{kind="minor"} 40',
      'qnexus_nodejs_gc_duration_seconds_sum{kind="major"} 1.5',
      'qnexus_nodejs_gc_duration_seconds_sum{kind="incremental"} 0.125',
      'other_gc_duration_seconds_sum{kind="major"} 99',
    ].join('\n');
    assert.equal(parseGcSeconds(text), 1.875);
    assert.equal(parseGcSeconds('qnexus_process_cpu_seconds_total 3\n'), null);
  });

  it('divides a shard node by its own shard, the beacon by every shard, and reports avg and max per role', () => {
    const procs: ProcCost[] = [
      { name: 's0v0', role: 'validator', shard: 0, cpuSec: 2, mainCpuSec: 1, gcSec: 0.1 },
      { name: 's0v1', role: 'validator', shard: 0, cpuSec: 4, mainCpuSec: 3, gcSec: 0.3 },
      { name: 's1v0', role: 'validator', shard: 1, cpuSec: 1, mainCpuSec: 0.5, gcSec: null },
      { name: 's1f0', role: 'full', shard: 1, cpuSec: 0.5, mainCpuSec: null, gcSec: 0.05 },
      { name: 'beacon', role: 'beacon', shard: null, cpuSec: 3, mainCpuSec: 1.5, gcSec: 0.2 },
    ];
    const r = costPerTxByRole(procs, [1000, 500]);
    assert.deepEqual(Object.keys(r), ['beacon', 'full', 'validator']);
    // validators: main 1/1000, 3/1000, 0.5/500 s per tx = 1, 3, 1 ms.
    assert.deepEqual(r.validator, { processes: 3, mainMsPerTx: { avg: 1.667, max: 3 }, totalMsPerTx: { avg: 2.667, max: 4 }, gcMsPerTx: { avg: 0.2, max: 0.3 } });
    assert.deepEqual(r.full, { processes: 1, mainMsPerTx: { avg: null, max: null }, totalMsPerTx: { avg: 1, max: 1 }, gcMsPerTx: { avg: 0.1, max: 0.1 } });
    assert.deepEqual(r.beacon, { processes: 1, mainMsPerTx: { avg: 1, max: 1 }, totalMsPerTx: { avg: 2, max: 2 }, gcMsPerTx: { avg: 0.133, max: 0.133 } });
    // A shard that finalized nothing has no per-tx figure (no division by zero).
    const idle = costPerTxByRole(procs.slice(0, 1), [0, 10]);
    assert.deepEqual(idle.validator!.mainMsPerTx, { avg: null, max: null });
  });
});
