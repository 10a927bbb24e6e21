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
 * Batches handed to one worker at a time. The rest wait here, where an urgent check (a
 * consensus vote or proposal) can still go ahead of them; with one batch being verified and
 * one waiting, a worker never idles between batches.
 */
const BATCHES_PER_WORKER = 2;

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
  /** Consensus signatures: verified before anything in `queue`. */
  private urgent: Item[] = [];
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
        this.flush();
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
    let n = this.queue.length + this.urgent.length;
    for (const items of this.waiting.values()) n += items.length;
    return n;
  }

  /**
   * Verify on a worker. `urgent` checks (consensus messages) are batched ahead of every
   * non-urgent one still waiting here, so a backlog of transaction signatures delays a vote by
   * at most the batches already on the workers.
   */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array, urgent = false): Promise<boolean> {
    if (this.closed) return Promise.reject(new Error('verify pool is closed'));
    if (this.broken) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => {
      (urgent ? this.urgent : this.queue).push({ publicKey, message, signature, resolve, reject });
      if (this.queue.length + this.urgent.length >= MAX_BATCH * this.workers.length) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    if (this.broken) return this.failAll(this.broken);
    for (;;) {
      const slot = this.workers.reduce((a, b) => (b.inflight < a.inflight ? b : a));
      if (slot.inflight >= BATCHES_PER_WORKER) return;
      const items = this.urgent.splice(0, MAX_BATCH);
      if (items.length < MAX_BATCH) items.push(...this.queue.splice(0, MAX_BATCH - items.length));
      if (items.length === 0) return;
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
    for (const it of [...this.urgent, ...this.queue]) it.reject(e);
    this.queue = [];
    this.urgent = [];
    for (const items of this.waiting.values()) for (const it of items) it.reject(e);
    this.waiting.clear();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const it of [...this.urgent, ...this.queue]) it.reject(new Error('verify pool closed'));
    this.queue = [];
    this.urgent = [];
    await Promise.all(this.workers.map((s) => s.w.terminate()));
  }
}
