import { QnexusError } from '@qnexus/types';

/**
 * The AMM's pure arithmetic (Uniswap v2's, in bigint): every function rounds in the pool's favour
 * and refuses a result that would not fit a u64 amount (AMM_OVERFLOW). No state, no clock.
 */

export const U64_MAX = 0xffffffffffffffffn;
export const BPS = 10_000n;
/** Shares locked forever at a pool's first deposit (never minted to anyone): the pool can never be emptied. */
export const MINIMUM_LIQUIDITY = 1000n;
/** Fixed point of spot prices: quote units per base unit × 10^18. */
export const PRICE_ONE = 10n ** 18n;
/** The cumulative price wraps modulo 2^256, as Uniswap's accumulators wrap (a TWAP reader subtracts). */
export const CUM_MOD = 1n << 256n;

export function checkU64(v: bigint, what: string): bigint {
  if (v < 0n || v > U64_MAX) throw new QnexusError('AMM_OVERFLOW', `${what} (${v}) does not fit a u64 amount`);
  return v;
}

/** floor(√n) by Newton's method (exact for every non-negative bigint). */
export function isqrt(n: bigint): bigint {
  if (n < 0n) throw new RangeError('isqrt of a negative number');
  if (n < 2n) return n;
  let x = BigInt(Math.floor(Math.sqrt(Number(n))));
  // The float guess is close; a few Newton steps make it exact, then fix the last unit.
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) break;
    x = y;
  }
  while (x * x > n) x--;
  while ((x + 1n) * (x + 1n) <= n) x++;
  return x;
}

const ceilDiv = (a: bigint, b: bigint) => (a + b - 1n) / b;

/**
 * Uniswap v2's getInputPrice / getAmountOut: out = floor(in·(10⁴−f)·y / (x·10⁴ + in·(10⁴−f))).
 * The fee stays in the pool; the floor keeps the remainder in it too.
 */
export function amountOut(amountIn: bigint, reserveIn: bigint, reserveOut: bigint, feeBps: number): bigint {
  if (amountIn <= 0n || reserveIn <= 0n || reserveOut <= 0n) return 0n;
  const inWithFee = amountIn * (BPS - BigInt(feeBps));
  return (inWithFee * reserveOut) / (reserveIn * BPS + inWithFee);
}

/** The part of an input the fee takes (for statistics): floor(in·f/10⁴). */
export function feePart(amountIn: bigint, feeBps: number): bigint {
  return (amountIn * BigInt(feeBps)) / BPS;
}

/** First deposit: isqrt(a·b) shares in total, of which MINIMUM_LIQUIDITY are locked. */
export function initialShares(a: bigint, b: bigint): { total: bigint; toCreator: bigint } {
  const total = isqrt(a * b);
  if (total <= MINIMUM_LIQUIDITY) {
    throw new QnexusError('AMM_INSUFFICIENT_LIQUIDITY', `the first deposit gives isqrt(a·b) = ${total} shares; more than ${MINIMUM_LIQUIDITY} are needed (that many are locked forever)`);
  }
  return { total: checkU64(total, 'total shares'), toCreator: total - MINIMUM_LIQUIDITY };
}

/**
 * A later deposit of at most (maxA, maxB): the most shares s = min(⌊maxA·S/x⌋, ⌊maxB·S/y⌋) those
 * amounts can buy, and the least amounts that buy them, rounded up (⌈s·x/S⌉, ⌈s·y/S⌉ ≤ the
 * maxima). So s = min(⌊dA·S/x⌋, ⌊dB·S/y⌋) (Uniswap's rule) with nothing taken beyond the ratio.
 */
export function depositFor(maxA: bigint, maxB: bigint, x: bigint, y: bigint, S: bigint): { shares: bigint; a: bigint; b: bigint } {
  const sa = (maxA * S) / x;
  const sb = (maxB * S) / y;
  const shares = sa < sb ? sa : sb;
  if (shares === 0n) return { shares: 0n, a: 0n, b: 0n };
  return { shares, a: ceilDiv(shares * x, S), b: ceilDiv(shares * y, S) };
}

/** A withdrawal of s shares: ⌊s·x/S⌋ and ⌊s·y/S⌋ (the remainders stay in the pool). */
export function withdrawalFor(s: bigint, x: bigint, y: bigint, S: bigint): { a: bigint; b: bigint } {
  return { a: (s * x) / S, b: (s * y) / S };
}

/** Spot price, quote per base, in 1e18 fixed point (floor); 0 for an empty side. */
export function spotPrice(reserveBase: bigint, reserveQuote: bigint): bigint {
  return reserveBase === 0n ? 0n : (reserveQuote * PRICE_ONE) / reserveBase;
}
