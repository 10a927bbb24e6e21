import assert from 'node:assert/strict';
import { Logger } from '@qnexus/runtime';
import { SnapshotReporter, SyncReporter, formatBytes, formatDuration, formatProgressLine, formatRate, formatSnapshotLine, progressFields, snapshotStats, syncStats } from '../src/sync-progress.js';

/** A writable that keeps what is written. */
function sink(isTTY: boolean, columns = 120) {
  const chunks: string[] = [];
  return {
    isTTY,
    columns,
    chunks,
    write(s: string): boolean {
      chunks.push(s);
      return true;
    },
  };
}

describe('sync progress: rate, ETA and formatting', () => {
  it('computes blocks/s, ETA and fraction from a sample', () => {
    const st = syncStats({ start: 100, height: 600, target: 1100, elapsedMs: 5_000 });
    assert.equal(st.blocksPerSec, 100);
    assert.equal(st.etaSec, 5);
    assert.equal(st.fraction, 0.5);
  });

  it('has no ETA before any block (rate unknown), and 0 once at the target', () => {
    assert.equal(syncStats({ start: 10, height: 10, target: 20, elapsedMs: 0 }).etaSec, null);
    assert.equal(syncStats({ start: 10, height: 10, target: 20, elapsedMs: 3_000 }).etaSec, null);
    const done = syncStats({ start: 10, height: 20, target: 20, elapsedMs: 2_000 });
    assert.equal(done.etaSec, 0);
    assert.equal(done.fraction, 1);
    assert.equal(done.blocksPerSec, 5);
    // Past the target (consensus finalized more meanwhile) stays clamped.
    assert.equal(syncStats({ start: 10, height: 25, target: 20, elapsedMs: 1_000 }).fraction, 1);
    // Nothing to do at all.
    assert.equal(syncStats({ start: 20, height: 20, target: 20, elapsedMs: 0 }).fraction, 1);
  });

  it('formats durations and rates', () => {
    assert.equal(formatDuration(null), '?');
    assert.equal(formatDuration(0), '0s');
    assert.equal(formatDuration(42.4), '42s');
    assert.equal(formatDuration(187), '3m07s');
    assert.equal(formatDuration(7500), '2h05m');
    assert.equal(formatRate(1.234), '1.2');
    assert.equal(formatRate(123.6), '124');
  });

  it('draws a bar with height/target, rate and ETA', () => {
    const line = formatProgressLine(syncStats({ start: 0, height: 500, target: 1000, elapsedMs: 4_000 }), 10);
    assert.equal(line, 'sync [#####-----]  50% 500/1000  125 blocks/s  ETA 4s');
    assert.deepEqual(progressFields(syncStats({ start: 0, height: 1, target: 4, elapsedMs: 3_000 })), { height: 1, target: 4, blocksPerSec: 0.3, etaSec: 9 });
  });

  it('on a TTY redraws one line in place and clears it at the end', () => {
    let now = 0;
    const out = sink(true);
    const logOut = sink(false);
    const r = new SyncReporter(new Logger('json', 'info', {}, logOut as unknown as NodeJS.WritableStream), 0, 100, { out, now: () => now });
    for (let h = 1; h <= 100; h++) {
      now += 50;
      r.update(h);
    }
    r.finish(100, true);
    const bars = out.chunks.filter((c) => c.includes('sync ['));
    assert.ok(bars.length >= 10 && bars.length <= 60, `throttled redraws: ${bars.length}`);
    assert.ok(bars.every((c) => c.startsWith('\r\x1b[2K') && !c.includes('\n')));
    assert.equal(out.chunks.at(-1), '\r\x1b[2K');
    // Only the done line is logged.
    const lines = logOut.chunks.map((l) => JSON.parse(l) as { msg: string; height: number; blocks: number });
    assert.deepEqual(lines.map((l) => l.msg), ['sync done']);
    assert.equal(lines[0]!.blocks, 100);
  });

  it('off a TTY logs a structured line every 2 s and a done line', () => {
    let now = 0;
    const out = sink(false);
    const logOut = sink(false);
    const r = new SyncReporter(new Logger('json', 'info', {}, logOut as unknown as NodeJS.WritableStream), 0, 1000, { out, now: () => now });
    for (let h = 1; h <= 1000; h++) {
      now += 10; // 100 blocks/s, 10 s in all
      r.update(h);
    }
    r.finish(1000, true);
    assert.equal(out.chunks.length, 0, 'nothing drawn off a TTY');
    const lines = logOut.chunks.map((l) => JSON.parse(l) as { msg: string; height: number; target: number; blocksPerSec: number; etaSec: number | null });
    const progress = lines.filter((l) => l.msg === 'sync progress');
    assert.ok(progress.length >= 5 && progress.length <= 6, `every 2 s: ${progress.length}`);
    const mid = progress[2]!;
    assert.equal(mid.target, 1000);
    assert.equal(mid.blocksPerSec, 100);
    assert.equal(mid.etaSec, Math.ceil((1000 - mid.height) / 100));
    assert.equal(lines.at(-1)!.msg, 'sync done');
  });

  it('snapshot: entries/s, bytes/s, ETA and fraction of the certified total; sizes in binary units', () => {
    const st = snapshotStats({ height: 1200, entries: 5_000, total: 20_000, bytes: 3 * 1024 * 1024, elapsedMs: 10_000 });
    assert.equal(st.entriesPerSec, 500);
    assert.equal(st.etaSec, 30);
    assert.equal(st.fraction, 0.25);
    assert.equal(Math.round(st.bytesPerSec), Math.round((3 * 1024 * 1024) / 10));
    // An empty state is done at once; before the first entry the rate, hence the ETA, is unknown.
    assert.equal(snapshotStats({ height: 5, entries: 0, total: 0, bytes: 0, elapsedMs: 0 }).etaSec, 0);
    assert.equal(snapshotStats({ height: 5, entries: 0, total: 10, bytes: 0, elapsedMs: 1_000 }).etaSec, null);
    assert.deepEqual([formatBytes(512), formatBytes(3.5 * 1024), formatBytes(12 * 1024 * 1024), formatBytes(3 * 1024 ** 3)], ['512 B', '3.5 KiB', '12 MiB', '3.0 GiB']);
    assert.equal(formatSnapshotLine(st, 4), 'snapshot @1200 [#---]  25% 5000/20000 entries  3.0 MiB  500 entries/s  ETA 30s');
  });

  it('snapshot: redraws in place on a TTY, logs `snapshot progress` lines off one, and one outcome line', () => {
    let now = 0;
    const tty = sink(true);
    const ttyLog = sink(false);
    const a = new SnapshotReporter(new Logger('json', 'info', {}, ttyLog as unknown as NodeJS.WritableStream), 7, { out: tty, now: () => now });
    for (let e = 1; e <= 100; e++) {
      now += 50;
      a.update(e, 100, e * 100);
    }
    a.finish(true);
    assert.ok(tty.chunks.filter((c) => c.includes('snapshot @7 [')).length >= 10);
    assert.equal(tty.chunks.at(-1), '\r\x1b[2K');
    assert.deepEqual(ttyLog.chunks.map((l) => (JSON.parse(l) as { msg: string }).msg), ['snapshot done']);

    now = 0;
    const out = sink(false);
    const logOut = sink(false);
    const b = new SnapshotReporter(new Logger('json', 'info', {}, logOut as unknown as NodeJS.WritableStream), 9, { out, now: () => now });
    for (let e = 1; e <= 1000; e++) {
      now += 10;
      b.update(e, 2000, e * 64);
    }
    b.finish(false, 'no peer left');
    assert.equal(out.chunks.length, 0);
    const lines = logOut.chunks.map((l) => JSON.parse(l) as { msg: string; entries: number; total: number; reason?: string });
    assert.ok(lines.filter((l) => l.msg === 'snapshot progress').length >= 5);
    assert.equal(lines.at(-1)!.msg, 'snapshot stopped');
    assert.equal(lines.at(-1)!.reason, 'no peer left');
    assert.equal(lines.at(-1)!.total, 2000);
  });
});
