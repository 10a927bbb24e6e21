import { Worker } from 'node:worker_threads';
import { DEFAULT_BACKEND, resolveBackend, type BackendName, type SchemeName } from '@qnexus/crypto';
import type { SignRequest, VerifyRequest, VerifyWorkerData, WorkerResponse } from './verify-worker.js';

interface Item {
  publicKey: Uint8Array;
  message: Uint8Array;
  signature: Uint8Array;
  resolve: (ok: boolean) => void;
  reject: (e: Error) => void;
}

/** A sign job waiting for its worker. */
interface SignItem {
  message: Uint8Array;
  resolve: (signature: Uint8Array) => void;
  reject: (e: Error) => void;
}

/** Options of a VerifyPool beyond its scheme and size. */
export interface VerifyPoolOptions {
  /**
   * The validator's secret key: the workers then also sign (`sign`), so the event loop never
   * spends the ~5 ms of an ML-DSA signature. Handed to each worker once, at its start.
   */
  signingKey?: Uint8Array;
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
  /** Sign jobs handed to a worker, by request id. */
  private readonly signing = new Map<number, SignItem>();
  /** Sign jobs not yet handed to a worker: they go before every verify batch. */
  private signQueue: SignItem[] = [];
  private queue: Item[] = [];
  /** Consensus signatures: verified before anything in `queue`. */
  private urgent: Item[] = [];
  private scheduled = false;
  private nextId = 1;
  private closed = false;
  /** A worker's error (e.g. its backend failed to load): every later request fails with it. */
  private broken: Error | null = null;
  readonly backend: BackendName;
  /** Whether the workers hold a signing key (`sign` works). */
  readonly canSign: boolean;

  constructor(scheme: SchemeName, size: number, backend: BackendName = resolveBackend(DEFAULT_BACKEND), opts: VerifyPoolOptions = {}) {
    this.backend = backend;
    this.canSign = opts.signingKey !== undefined;
    const workerData: VerifyWorkerData = { scheme, backend, ...(opts.signingKey ? { secretKey: opts.signingKey } : {}) };
    for (let i = 0; i < Math.max(1, size); i++) {
      const w = new Worker(new URL('./verify-worker.js', import.meta.url), { workerData });
      const slot = { w, inflight: 0 };
      w.on('message', (m: WorkerResponse) => {
        slot.inflight--;
        if ('ok' in m) {
          const items = this.waiting.get(m.id);
          this.waiting.delete(m.id);
          items?.forEach((it, k) => it.resolve(m.ok[k] === true));
          this.completed += items?.length ?? 0;
        } else {
          this.completed++;
          const job = this.signing.get(m.id);
          this.signing.delete(m.id);
          if (job) {
            if ('signature' in m) job.resolve(new Uint8Array(m.signature));
            else job.reject(new Error(`sign job failed: ${m.error}`));
          }
        }
        this.flush();
      });
      w.on('error', (e) => this.failAll(e));
      // A worker gone without an error (killed, out of memory) would leave its jobs pending forever.
      w.on('exit', (code) => {
        if (!this.closed) this.failAll(new Error(`verify worker exited (code ${code})`));
      });
      w.unref();
      this.workers.push(slot);
    }
  }

  /** Jobs finished since start (verifications and signatures): admission control measures the drain rate with it. */
  completed = 0;

  /** Worker threads. */
  get size(): number {
    return this.workers.length;
  }

  /** Signatures queued or being verified (sign jobs included). */
  get backlog(): number {
    let n = this.queue.length + this.urgent.length + this.signQueue.length + this.signing.size;
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

  /**
   * Sign `message` with the pool's signing key on a worker (a consensus vote or proposal: ahead
   * of every verify batch still waiting here). Rejects when the pool has no key, is closed, or a
   * worker failed (the caller may then sign on its own thread).
   */
  sign(message: Uint8Array): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new Error('verify pool is closed'));
    if (this.broken) return Promise.reject(this.broken);
    if (!this.canSign) return Promise.reject(new Error('this verify pool has no signing key'));
    return new Promise((resolve, reject) => {
      this.signQueue.push({ message, resolve, reject });
      this.flush();
    });
  }

  private flush(): void {
    this.scheduled = false;
    if (this.broken) return this.failAll(this.broken);
    for (;;) {
      const slot = this.workers.reduce((a, b) => (b.inflight < a.inflight ? b : a));
      if (slot.inflight >= BATCHES_PER_WORKER) return;
      const job = this.signQueue.shift();
      if (job) {
        const id = this.nextId++;
        this.signing.set(id, job);
        slot.inflight++;
        const req: SignRequest = { kind: 'sign', id, message: job.message };
        slot.w.postMessage(req);
        continue;
      }
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
      const req: VerifyRequest = { kind: 'verify', id, data, lengths };
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
    for (const it of this.signQueue) it.reject(e);
    this.signQueue = [];
    for (const item of this.signing.values()) item.reject(e);
    this.signing.clear();
  }

  async close(): Promise<void> {
    this.closed = true;
    const closed = new Error('verify pool closed');
    for (const it of [...this.urgent, ...this.queue, ...this.signQueue]) it.reject(closed);
    this.queue = [];
    this.urgent = [];
    this.signQueue = [];
    await Promise.all(this.workers.map((s) => s.w.terminate()));
    // Jobs a worker had not answered when it was terminated never will be.
    for (const items of this.waiting.values()) for (const it of items) it.reject(closed);
    this.waiting.clear();
    for (const item of this.signing.values()) item.reject(closed);
    this.signing.clear();
  }
}
