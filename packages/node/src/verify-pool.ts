import { Worker } from 'node:worker_threads';
import { DEFAULT_BACKEND, type BackendName, type SchemeName } from '@qnexus/crypto';
import type { VerifyRequest, VerifyWorkerData } from './verify-worker.js';

interface Item {
  publicKey: Uint8Array;
  message: Uint8Array;
  signature: Uint8Array;
  resolve: (ok: boolean) => void;
  reject: (e: Error) => void;
}

const MAX_BATCH = 32;

/**
 * ML-DSA verification on worker threads, so bursts of transaction signatures
 * never sit in the main event loop ahead of slot ticks, proposals and votes.
 * Requests are batched (one message per up to 32 signatures) and sent to the
 * worker with the fewest outstanding requests. Each worker loads `backend` itself
 * (by name, through workerData): give the main thread's TxVerifier the same one.
 */
export class VerifyPool {
  private readonly workers: { w: Worker; inflight: number }[] = [];
  private readonly waiting = new Map<number, Item[]>();
  private queue: Item[] = [];
  private scheduled = false;
  private nextId = 1;
  private closed = false;
  /** A worker's error (e.g. its backend failed to load): every later request fails with it. */
  private broken: Error | null = null;
  readonly backend: BackendName;

  constructor(scheme: SchemeName, size: number, backend: BackendName = DEFAULT_BACKEND) {
    this.backend = backend;
    const workerData: VerifyWorkerData = { scheme, backend };
    for (let i = 0; i < Math.max(1, size); i++) {
      const w = new Worker(new URL('./verify-worker.js', import.meta.url), { workerData });
      const slot = { w, inflight: 0 };
      w.on('message', (m: { id: number; ok: boolean[] }) => {
        slot.inflight--;
        const items = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        items?.forEach((it, k) => it.resolve(m.ok[k] === true));
      });
      w.on('error', (e) => this.failAll(e));
      w.unref();
      this.workers.push(slot);
    }
  }

  /** Worker threads. */
  get size(): number {
    return this.workers.length;
  }

  /** Signatures queued or being verified. */
  get backlog(): number {
    let n = this.queue.length;
    for (const items of this.waiting.values()) n += items.length;
    return n;
  }

  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
    if (this.closed) return Promise.reject(new Error('verify pool is closed'));
    if (this.broken) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => {
      this.queue.push({ publicKey, message, signature, resolve, reject });
      if (this.queue.length >= MAX_BATCH * this.workers.length) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    if (this.broken) return this.failAll(this.broken);
    while (this.queue.length) {
      const items = this.queue.splice(0, MAX_BATCH);
      const slot = this.workers.reduce((a, b) => (b.inflight < a.inflight ? b : a));
      const id = this.nextId++;
      this.waiting.set(id, items);
      slot.inflight++;
      // One buffer per batch, transferred: a copy here instead of a structured clone of 3 arrays per item.
      let n = 0;
      const lengths: number[] = [];
      for (const it of items) {
        n += it.publicKey.length + it.message.length + it.signature.length;
        lengths.push(it.publicKey.length, it.message.length, it.signature.length);
      }
      const data = new Uint8Array(n);
      let o = 0;
      for (const it of items) {
        data.set(it.publicKey, o);
        o += it.publicKey.length;
        data.set(it.message, o);
        o += it.message.length;
        data.set(it.signature, o);
        o += it.signature.length;
      }
      const req: VerifyRequest = { id, data, lengths };
      slot.w.postMessage(req, [data.buffer]);
    }
  }

  private failAll(e: Error): void {
    this.broken ??= e;
    for (const it of this.queue) it.reject(e);
    this.queue = [];
    for (const items of this.waiting.values()) for (const it of items) it.reject(e);
    this.waiting.clear();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const it of this.queue) it.reject(new Error('verify pool closed'));
    this.queue = [];
    await Promise.all(this.workers.map((s) => s.w.terminate()));
  }
}
