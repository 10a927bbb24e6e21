import { renameSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from './log.js';

/**
 * Pieces every long-running process (shard node, beacon) shares: an ordered
 * shutdown list, the info file the devnet launcher waits for, the API URL.
 */

/** Replace `path` with `text` in one rename, so a reader never sees half a file. */
export function writeInfoFile(path: string, info: unknown): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(info, null, 2) + '\n');
  renameSync(tmp, path);
}

/** The URL an HTTP server listening on `host` serves (IPv6 hosts bracketed). */
export function serverUrl(host: string, server: Server): string {
  const port = (server.address() as AddressInfo).port;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

type Step = () => Promise<void> | void;

/**
 * Shutdown steps in reverse start order: each part registers its stop as it
 * starts (`add`), so a start that fails half-way undoes exactly what it did
 * (`abort`), and a running process stops once, logging but surviving errors (`stop`).
 */
export class Shutdown {
  private readonly steps: Step[] = [];
  private stopping: Promise<void> | null = null;

  constructor(private readonly log: Logger) {}

  /** Register a stop step; it runs before the steps registered earlier. */
  add(step: Step): void {
    this.steps.unshift(step);
  }

  /** Register a step that runs after all others (e.g. waiting for work the earlier steps ended). */
  addLast(step: Step): void {
    this.steps.push(step);
  }

  /** Closes an HTTP server and its keep-alive connections. */
  addServer(server: Server): void {
    this.add(
      () =>
        new Promise<void>((r) => {
          server.close(() => r());
          server.closeAllConnections();
        }),
    );
  }

  stop(what: string): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info(`stopping ${what}`);
      for (const f of this.steps) {
        try {
          await f();
        } catch (e) {
          this.log.warn('error during shutdown', { error: (e as Error).message });
        }
      }
    })();
    return this.stopping;
  }

  /** Undo a failed start without logging each step's error. */
  async abort(): Promise<void> {
    for (const f of this.steps) await Promise.resolve(f()).catch(() => undefined);
  }
}
