/**
 * A least-recently-used map bounded by an estimate of the bytes it holds
 * (the caller says what each entry weighs). Map keeps insertion order, so a
 * hit is re-inserted at the end and eviction takes from the front.
 */
export class ByteLru<K, V> {
  private readonly map = new Map<K, { v: V; w: number }>();
  private held = 0;

  constructor(readonly maxBytes: number) {}

  get bytes(): number {
    return this.held;
  }

  get size(): number {
    return this.map.size;
  }

  get(k: K): V | undefined {
    const e = this.map.get(k);
    if (!e) return undefined;
    this.map.delete(k);
    this.map.set(k, e);
    return e.v;
  }

  has(k: K): boolean {
    return this.map.has(k);
  }

  set(k: K, v: V, weight: number): void {
    const old = this.map.get(k);
    if (old) {
      this.held -= old.w;
      this.map.delete(k);
    }
    if (weight > this.maxBytes) return;
    this.map.set(k, { v, w: weight });
    this.held += weight;
    while (this.held > this.maxBytes) {
      const first = this.map.keys().next();
      if (first.done) break;
      this.held -= this.map.get(first.value)!.w;
      this.map.delete(first.value);
    }
  }

  delete(k: K): void {
    const old = this.map.get(k);
    if (!old) return;
    this.held -= old.w;
    this.map.delete(k);
  }

  clear(): void {
    this.map.clear();
    this.held = 0;
  }
}
