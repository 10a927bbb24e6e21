// Bytes on the wire between the devnet's processes, from the kernel's own per-socket TCP
// counters (`ss -tinp`: tcp_info bytes_acked / bytes_received), so nothing in the nodes has to
// count. Only established sockets owned by the devnet's pids with a libp2p port at one end are
// summed; HTTP API traffic (the bench's submissions and polling) is left out. On loopback every
// byte one process sends another receives, so `sent` alone is the traffic.
import { execFileSync } from 'node:child_process';

export interface WireSnapshot {
  /** Per socket (local→peer): bytes sent so far. */
  sockets: Map<string, number>;
  ok: boolean;
}

export function wireSnapshot(pids: number[], p2pPorts: Set<number>): WireSnapshot {
  const sockets = new Map<string, number>();
  let text: string;
  try {
    text = execFileSync('ss', ['-tinpH', 'state', 'established'], { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return { sockets, ok: false };
  }
  const want = new Set(pids);
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const head = lines[i]!;
    if (!head || /^\s/.test(head)) continue;
    const info = lines[i + 1] && /^\s/.test(lines[i + 1]!) ? lines[i + 1]! : '';
    const m = /^\S+\s+\S+\s+(\S+):(\d+)\s+(\S+):(\d+)\s+users:\(\("[^"]*",pid=(\d+)/.exec(head);
    if (!m) continue;
    const [, la, lp, pa, pp, pid] = m;
    if (!want.has(Number(pid))) continue;
    if (!p2pPorts.has(Number(lp)) && !p2pPorts.has(Number(pp))) continue;
    const sent = /bytes_acked:(\d+)/.exec(info) ?? /bytes_sent:(\d+)/.exec(info);
    sockets.set(`${pid} ${la}:${lp}>${pa}:${pp}`, sent ? Number(sent[1]) : 0);
  }
  return { sockets, ok: true };
}

/**
 * Bytes sent between `a` and `b` on sockets alive at both snapshots, plus the bytes of sockets
 * opened meanwhile (counted from 0). Sockets closed meanwhile are lost (libp2p keeps its
 * connections open, so in practice none are).
 */
export function wireDelta(a: WireSnapshot, b: WireSnapshot): { bytes: number; sockets: number; ok: boolean } {
  let bytes = 0;
  for (const [k, v] of b.sockets) bytes += Math.max(0, v - (a.sockets.get(k) ?? 0));
  return { bytes, sockets: b.sockets.size, ok: a.ok && b.ok };
}
