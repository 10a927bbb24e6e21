// Shared by the state tests (not a test file itself: mocha only picks up *.test.ts).
import assert from 'node:assert/strict';
import { toHex } from '@qnexus/crypto';
import { QnexusError, type ErrorCode } from '@qnexus/types';
import { Branch, CommittedState, ExecCtx, NATIVE_DENOM, StateView, WorldState, bank, type BlockContext, type StateParams } from '@qnexus/state';

/**
 * Pending writes over a state, read through the keepers' views: what the old
 * tests called an overlay. `kv` is what applyTx takes; the reads are StateView's.
 */
export class Pending extends StateView {
  constructor(readonly kv: Branch) {
    super(kv);
  }

  /** Pending writes over a committed state, or a child of other pending writes. */
  static over(s: WorldState | Pending): Pending {
    return new Pending(s instanceof Pending ? s.kv.branch() : new Branch(s.kv));
  }
}

/** The write set of a branch as comparable data (key hex → value hex | null), in key order. */
export function snapshot(b: Branch | Pending): [string, string | null][] {
  const kv = b instanceof Pending ? b.kv : b;
  return [...kv.writes].map(([k, v]): [string, string | null] => [k, v ? toHex(v) : null]).sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
}

export function throwsCode(fn: () => unknown, code: ErrorCode, msg?: string): void {
  assert.throws(
    fn,
    (e: unknown) => {
      assert.ok(e instanceof QnexusError, `expected QnexusError, got ${String(e)}`);
      assert.equal(e.code, code, `${msg ?? ''}: ${e.message}`);
      return true;
    },
    msg,
  );
}

/** Seeded PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NO_BLOCK: BlockContext = { height: 0, slot: 0, proposer: new Uint8Array(20) };

/**
 * A state holding exactly these native balances, booked as genesis supply (so
 * every invariant holds), e.g. a balance close to u64 max that no genesis
 * file would allow.
 */
export function stateWith(credits: readonly [Uint8Array, bigint][], p: StateParams): WorldState {
  const kv = new Branch(new CommittedState());
  const ctx = new ExecCtx(kv, p, NO_BLOCK);
  for (const [addr, amount] of credits) bank.genesisCredit(ctx, addr, amount);
  bank.setSupply(ctx, NATIVE_DENOM, bank.supply(ctx));
  return WorldState.fromEntries([...kv.writes].map(([k, v]): [string, Uint8Array] => [k, v!]));
}

/** Every entry of a committed state, sorted by key (the persisted form). */
export function entriesOf(s: WorldState): [string, Uint8Array][] {
  return [...s.kv.all()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** Reads of a state as it would be after `writes` (a block's changes), without applying them. */
export function viewAfter(s: WorldState, writes: ReadonlyMap<string, Uint8Array | null>): Pending {
  const b = new Branch(s.kv);
  for (const [k, v] of writes) {
    if (v) b.set(k, v);
    else b.delete(k);
  }
  return new Pending(b);
}
