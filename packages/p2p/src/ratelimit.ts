/**
 * Per-client token buckets: the HTTP APIs (per remote IP) and the request/response
 * protocols' serving budgets (per peer, requests and response bytes).
 *
 * Each client has a bucket of `burst` tokens that refills
 * at `ratePerSec`; a request takes one token, and a request finding less than
 * one is refused with the time until one is back. Memory is bounded: a bucket
 * that has refilled completely is indistinguishable from a new one, so it is
 * dropped by a periodic sweep; and beyond `maxClients` buckets the least
 * recently used ones are dropped (which at worst hands those clients a fresh
 * burst: a flood from that many addresses is not something an API-level
 * limiter can stop anyway).
 */

export interface RateLimitOptions {
  /** Tokens added per second (sustained requests per second). */
  ratePerSec: number;
  /** Bucket size: requests a fresh (or idle) client may send at once. */
  burst: number;
  /** Hard cap on tracked clients (default 10 000). */
  maxClients?: number;
  /** How often full buckets are swept out (default 10 000 ms). */
  sweepMs?: number;
  /** Clock in ms (injected by tests; default Date.now). */
  now?: () => number;
}

export type RateDecision = { ok: true } | { ok: false; retryAfterMs: number };

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  readonly ratePerSec: number;
  readonly burst: number;
  private readonly maxClients: number;
  private readonly sweepMs: number;
  private readonly now: () => number;
  /** Insertion order = least recently used first (an access re-inserts). */
  private readonly buckets = new Map<string, Bucket>();
  private lastSweep: number;

  constructor(opts: RateLimitOptions) {
    if (!(opts.ratePerSec > 0) || !(opts.burst >= 1)) throw new RangeError('rate limit needs ratePerSec > 0 and burst >= 1');
    this.ratePerSec = opts.ratePerSec;
    this.burst = opts.burst;
    this.maxClients = opts.maxClients ?? 10_000;
    this.sweepMs = opts.sweepMs ?? 10_000;
    this.now = opts.now ?? Date.now;
    this.lastSweep = this.now();
  }

  /** Clients currently tracked. */
  get size(): number {
    return this.buckets.size;
  }

  /** Take `cost` tokens (default one) for `client`, if it has them. */
  take(client: string, cost = 1): RateDecision {
    const now = this.now();
    const tokens = this.current(client, now);
    if (tokens >= cost) {
      this.store(client, tokens - cost, now);
      return { ok: true };
    }
    this.store(client, tokens, now);
    return { ok: false, retryAfterMs: Math.max(1, Math.ceil(((cost - tokens) * 1000) / this.ratePerSec)) };
  }

  /** Tokens `client` has now (a full bucket for an unknown one). */
  available(client: string): number {
    const now = this.now();
    return this.current(client, now);
  }

  /**
   * Take `cost` tokens whatever the balance: work already done (bytes already sent) is paid
   * for, and a client in debt (at most one burst deep) waits for the refill.
   */
  charge(client: string, cost: number): void {
    const now = this.now();
    this.store(client, Math.max(-this.burst, this.current(client, now) - cost), now);
  }

  private current(client: string, now: number): number {
    if (now - this.lastSweep >= this.sweepMs) this.sweep(now);
    const b = this.buckets.get(client);
    return b ? this.refilled(b, now) : this.burst;
  }

  /** Record a balance; re-inserting keeps the map in least-recently-used order. */
  private store(client: string, tokens: number, now: number): void {
    this.buckets.delete(client);
    this.buckets.set(client, { tokens, at: now });
    this.evictOverflow();
  }

  private refilled(b: Bucket, now: number): number {
    // A clock step backwards adds nothing (never a negative refill).
    return Math.min(this.burst, b.tokens + (Math.max(0, now - b.at) * this.ratePerSec) / 1000);
  }

  /** Drop every bucket that is full again: forgetting it changes nothing. */
  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [client, b] of this.buckets) if (this.refilled(b, now) >= this.burst) this.buckets.delete(client);
  }

  private evictOverflow(): void {
    while (this.buckets.size > this.maxClients) {
      const oldest = this.buckets.keys().next().value;
      if (oldest === undefined) break;
      this.buckets.delete(oldest);
    }
  }
}
