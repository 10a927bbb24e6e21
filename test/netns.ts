// Network namespaces for tests that need distinct hosts (partition, joining from another
// machine): the `ip` calls, what a test needs to run them, and removal that is safe to repeat.
import { spawnSync } from 'node:child_process';

/** Run `ip …`; never throws (teardown calls it for things that may not exist). */
export function ip(...args: string[]): { ok: boolean; out: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}` };
}

/** Run `ip …` and throw with its output when it fails (setup). */
export function must(...args: string[]): void {
  const r = ip(...args);
  if (!r.ok) throw new Error(`ip ${args.join(' ')}: ${r.out.trim()}`);
}

/** What a namespace test may lack; null when it can run. */
export function missingNetnsTool(): string | null {
  if (process.platform !== 'linux') return 'Linux network namespaces';
  if (process.getuid?.() !== 0) return 'root (to create network namespaces)';
  const v = spawnSync('ip', ['-V'], { encoding: 'utf8' });
  if (v.error || v.status !== 0) return 'the ip command (iproute2)';
  return null;
}

/**
 * Kill what runs in a test's namespace (only that test's processes run there) and delete it;
 * its veth ends go with it. Safe when it does not exist.
 */
export function removeNamespace(ns: string): void {
  const pids = ip('netns', 'pids', ns);
  if (pids.ok) {
    for (const p of pids.out.split(/\s+/).filter((x) => /^\d+$/.test(x))) {
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  ip('netns', 'del', ns);
}
