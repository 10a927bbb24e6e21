import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createP2PNode, type LogFn, type P2PNode, type P2POptions } from '../src/index.js';

/** Collects nodes and temp dirs so every test tears down what it started, even on failure. */
export class Harness {
  private readonly nodes: P2PNode[] = [];
  private dir: string | undefined;
  readonly logs: Array<{ level: string; msg: string; fields?: Record<string, unknown> }> = [];

  readonly log: LogFn = (level, msg, fields) => {
    this.logs.push({ level, msg, fields });
    if (process.env.P2P_TEST_LOG !== undefined) console.log(`[${level}] ${msg}`, fields ?? '');
  };

  async tmp(): Promise<string> {
    this.dir ??= await mkdtemp(join(tmpdir(), 'qnexus-p2p-'));
    return this.dir;
  }

  async node(name: string, opts: Partial<P2POptions> = {}): Promise<P2PNode> {
    const dir = await this.tmp();
    const node = await createP2PNode({
      peerKeyPath: join(dir, `${name}.key`),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: [],
      maxMessageBytes: 1024 * 1024,
      log: this.log,
      ...opts,
    });
    this.nodes.push(node);
    return node;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.nodes.splice(0).map((n) => n.stop()));
    if (this.dir !== undefined) await rm(this.dir, { recursive: true, force: true });
    this.dir = undefined;
  }
}

/** Poll `cond` until true; throws with `what` after `timeoutMs`. */
export async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A TCP port that was free a moment ago (bind to 0, read, release). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') { reject(new Error('no port')); return; }
      srv.close(() => { resolve(addr.port); });
    });
  });
}

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array): string => new TextDecoder().decode(b);
