/**
 * The frequent batch auction of one market in one block, as a pure function (no state): the
 * orders in, the uniform clearing price and each order's fill out.
 *
 * Rule (Injective's): the clearing price maximises the matched volume. V(p) = min(D(p), S(p)) with
 * D(p) = Σ buy quantity with limit ≥ p and S(p) = Σ sell quantity with limit ≤ p. D falls and S
 * rises with p, so V is unimodal and its maximisers form one contiguous price range [lo, hi] whose
 * ends are limit prices of the batch. The price is its midpoint rounded down to the tick (lo and hi
 * are on the tick, so p* = lo + ⌊(hi − lo) / 2 / tick⌋ · tick): deterministic and inside the
 * crossing range, so every fill has buy limit ≥ p* ≥ sell limit.
 *
 * Allocation: the short side at p* fills completely; the long side's volume goes by priority
 * (price, then the hash of the order id: the caller's order). With price priority and maximal
 * volume, what is left can never cross: a left-over buy at b ≥ a left-over sell's s > p* would make
 * V(s) > V(p*).
 */

/** An order as the auction sees it: `key` identifies it, the lists come in priority order. */
export interface BatchOrder {
  key: string;
  price: bigint;
  qty: bigint;
}

export interface Clearing {
  price: bigint;
  volume: bigint;
  /** Fill per order key (only orders that fill, each > 0). */
  fills: Map<string, bigint>;
}

/**
 * Clear a batch: `buys` by price descending then tie-break, `sells` by price ascending then
 * tie-break, every price a positive multiple of `tick`. Null when nothing crosses.
 */
export function clearBatch(buys: readonly BatchOrder[], sells: readonly BatchOrder[], tick: bigint): Clearing | null {
  if (buys.length === 0 || sells.length === 0) return null;
  if (buys[0]!.price < sells[0]!.price) return null;
  const prices = [...new Set([...buys.map((o) => o.price), ...sells.map((o) => o.price)])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  // D(p) over ascending prices: walk buys from the lowest limit up; S(p): sells from the lowest.
  const demand = new Map<bigint, bigint>();
  const supply = new Map<bigint, bigint>();
  {
    let d = buys.reduce((t, o) => t + o.qty, 0n);
    let i = buys.length - 1; // buys descending: the lowest limit is last
    for (const p of prices) {
      while (i >= 0 && buys[i]!.price < p) d -= buys[i--]!.qty;
      demand.set(p, d);
    }
    let s = 0n;
    let j = 0;
    for (const p of prices) {
      while (j < sells.length && sells[j]!.price <= p) s += sells[j++]!.qty;
      supply.set(p, s);
    }
  }
  let best = 0n;
  let lo = -1n;
  let hi = -1n;
  for (const p of prices) {
    const v = demand.get(p)! < supply.get(p)! ? demand.get(p)! : supply.get(p)!;
    if (v > best) {
      best = v;
      lo = p;
      hi = p;
    } else if (v === best && v > 0n) hi = p;
  }
  if (best === 0n) return null;
  const price = lo + ((hi - lo) / tick / 2n) * tick;
  const fills = new Map<string, bigint>();
  const allocate = (side: readonly BatchOrder[], eligible: (o: BatchOrder) => boolean) => {
    let left = best;
    for (const o of side) {
      if (left === 0n || !eligible(o)) break;
      const q = o.qty < left ? o.qty : left;
      if (q > 0n) fills.set(o.key, (fills.get(o.key) ?? 0n) + q);
      left -= q;
    }
    if (left !== 0n) throw new Error('auction: the volume does not fit its side (a bug)');
  };
  allocate(buys, (o) => o.price >= price);
  allocate(sells, (o) => o.price <= price);
  return { price, volume: best, fills };
}
