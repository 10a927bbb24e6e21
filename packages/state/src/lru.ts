/**
 * A cache bounded by an estimate of the bytes it holds (the caller says what
 * each entry weighs), with CLOCK eviction: a hit only flags its entry, and
 * eviction walks entries in insertion order, giving a flagged one a second
 * chance (re-inserted unflagged) — no reordering on the read path, which the
 * state reads thousands of times a block.
 */
export class ByteCache<K, V> {
  private readonly map = new Map<K, { v: V; w: number; hot: boolean }>();
  private held = 0;

  constructor(readonly maxBytes: number) {}

  /** The estimated bytes held now. */
  get bytes(): number {
    return this.held;
  }

  get(k: K): V | undefined {
    const e = this.map.get(k);
    if (!e) return undefined;
    e.hot = true;
    return e.v;
  }

  set(k: K, v: V, weight: number): void {
    if (this.maxBytes <= 0) return;
    this.delete(k);
    if (weight > this.maxBytes) return;
    this.map.set(k, { v, w: weight, hot: false });
    this.held += weight;
    if (this.held <= this.maxBytes) return;
    // Evict to 90 % of the bound, each entry passed over at most twice.
    const target = this.maxBytes * 0.9;
    let budget = 2 * this.map.size;
    for (const [key, e] of this.map) {
      if (this.held <= target || budget-- <= 0) break;
      this.map.delete(key);
      if (e.hot && key !== k) {
        e.hot = false;
        this.map.set(key, e);
      } else this.held -= e.w;
    }
  }

  delete(k: K): void {
    const e = this.map.get(k);
    if (!e) return;
    this.held -= e.w;
    this.map.delete(k);
  }

  clear(): void {
    this.map.clear();
    this.held = 0;
  }
}
