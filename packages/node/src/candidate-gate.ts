import { toHex, sha256 } from '@qnexus/crypto';

/** How many candidates of one slot (e.g. one validator's prevote of a height and round) are worth a signature check. */
export interface GateLimits {
  /** Distinct bodies that verified: an honest one, plus one conflicting (evidence of equivocation). */
  verified: number;
  /** Checks running at once. */
  inFlight: number;
  /** Failed checks after which only trusted peers' copies are still checked. */
  failures: number;
}

export const VOTE_GATE_LIMITS: GateLimits = { verified: 2, inFlight: 2, failures: 4 };
const MAX_SLOTS = 65_536;

interface Slot {
  height: number;
  verified: Set<string>;
  /** In-flight checks by body and signature digest: a copy with the same signature shares the verdict. */
  pending: Map<string, Promise<boolean>>;
  failures: number;
}

export type GateVerdict = 'accept' | 'reject' | 'ignore';

/**
 * Bounds the signature checks a signed consensus message can cost: per slot (a validator's
 * vote of a height, round and step, or a round's proposal) at most a few candidates are
 * checked, whatever peers send. Honest traffic needs one per slot (two for an equivocation,
 * which is evidence); a forged signature costs its sender its score (the caller rejects it),
 * and after a few failures on a slot only trusted peers (the committees, whose copies are the
 * ones that matter) get theirs checked, so forgeries sent ahead of the real vote cannot censor
 * it. A verdict is keyed by the body *and* the signature digest: a forged copy in flight never
 * decides a genuine one's fate. Memory: slots of heights below the finalized head are pruned.
 */
export class CandidateGate {
  private readonly slots = new Map<string, Slot>();

  constructor(private readonly limits: GateLimits = VOTE_GATE_LIMITS) {}

  get size(): number {
    return this.slots.size;
  }

  /**
   * Check `signature` over `body` for the slot `key` (at `height`) with `verify`, unless the
   * slot has had its share. 'ignore' means not checked (nothing learnt, no fault proven).
   */
  async check(key: string, height: number, body: Uint8Array, signature: Uint8Array, trusted: boolean, verify: () => Promise<boolean>): Promise<GateVerdict> {
    let slot = this.slots.get(key);
    if (slot === undefined) {
      // Callers bound heights and rounds; this only caps what a long stall could accumulate.
      if (this.slots.size >= MAX_SLOTS) this.slots.clear();
      this.slots.set(key, (slot = { height, verified: new Set(), pending: new Map(), failures: 0 }));
    }
    const bodyKey = toHex(sha256(body));
    if (slot.verified.has(bodyKey)) return 'ignore';
    const sigKey = `${bodyKey}/${toHex(sha256(signature))}`;
    const running = slot.pending.get(sigKey);
    if (running !== undefined) return (await running) ? 'ignore' : 'reject';
    if (slot.verified.size >= this.limits.verified || slot.pending.size >= this.limits.inFlight) return 'ignore';
    if (slot.failures >= this.limits.failures && !trusted) return 'ignore';
    const p = verify().catch(() => false);
    slot.pending.set(sigKey, p);
    const ok = await p;
    slot.pending.delete(sigKey);
    if (ok) slot.verified.add(bodyKey);
    else slot.failures++;
    return ok ? 'accept' : 'reject';
  }

  /** Forget slots of heights below `height` (called as the chain advances). */
  prune(height: number): void {
    for (const [k, s] of this.slots) if (s.height < height) this.slots.delete(k);
  }
}
