// Committees, stake thresholds, proposer selection and certificate checks.
import { concatBytes, sha256 } from '@qnexus/crypto';
import type { Committee, Validator, Vote } from './types.js';

/** Plain code-unit string order; every node must sort addresses the same way. */
export function compareAddress(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Build a committee: validators sorted by address (ascending), stakes summed.
 * Throws on duplicate addresses and on non-positive stakes, which would otherwise
 * silently skew quorum arithmetic.
 */
export function makeCommittee(validators: readonly Validator[]): Committee {
  const sorted = [...validators].map((v) => ({ address: v.address, stake: v.stake })).sort((a, b) => compareAddress(a.address, b.address));
  let total = 0n;
  for (let i = 0; i < sorted.length; i++) {
    const v = sorted[i]!;
    if (v.stake <= 0n) throw new RangeError(`validator ${v.address} has non-positive stake`);
    if (i > 0 && sorted[i - 1]!.address === v.address) throw new RangeError(`duplicate validator ${v.address}`);
    total += v.stake;
  }
  return { validators: sorted, totalStake: total };
}

/** Quorum ("2f+1"): strictly more than 2/3 of the total stake. */
export function isQuorum(stake: bigint, total: bigint): boolean {
  return 3n * stake > 2n * total;
}

/** "f+1": strictly more than 1/3 of the total stake, so at least one honest validator is included. */
export function exceedsOneThird(stake: bigint, total: bigint): boolean {
  return 3n * stake > total;
}

/** Stake of `address` in `committee`, or undefined if it is not a member. */
export function stakeOf(committee: Committee, address: string): bigint | undefined {
  for (const v of committee.validators) if (v.address === address) return v.stake;
  return undefined;
}

function u64be(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`slot must be a non-negative safe integer, got ${n}`);
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

/**
 * Stake-weighted deterministic proposer of `slot`:
 * x = BigInt(first 16 bytes of sha256(seed || u64be(slot))) mod totalStake, then walk the
 * validators sorted by address and pick the first whose cumulative stake exceeds x.
 * Each validator is chosen with probability stake/totalStake (up to a 2^-128 bias).
 */
export function proposerForSlot(committee: Committee, seed: Uint8Array, slot: number): string {
  const validators = [...committee.validators].sort((a, b) => compareAddress(a.address, b.address));
  let total = 0n;
  for (const v of validators) total += v.stake;
  if (validators.length === 0 || total <= 0n) throw new RangeError('committee has no stake');
  const digest = sha256(concatBytes(seed, u64be(slot)));
  let x = 0n;
  for (let i = 0; i < 16; i++) x = (x << 8n) | BigInt(digest[i]!);
  x %= total;
  let cumulative = 0n;
  for (const v of validators) {
    cumulative += v.stake;
    if (cumulative > x) return v.address;
  }
  // Unreachable: cumulative ends at total > x.
  throw new Error('proposerForSlot: unreachable');
}

export type CertificateCheck = { ok: true; stake: bigint } | { ok: false; reason: string };

/**
 * Structural check of a commit certificate (signatures are NOT checked here: the caller
 * verifies each precommit's signature). Requires precommits for exactly
 * (height, round, blockHash) from distinct committee members with > 2/3 of the stake.
 */
export function checkCommitCertificate(
  committee: Committee,
  height: number,
  round: number,
  blockHash: string,
  precommits: readonly Vote[],
): CertificateCheck {
  const seen = new Set<string>();
  let stake = 0n;
  for (const v of precommits) {
    if (v.step !== 'precommit' || v.height !== height || v.round !== round || v.blockHash !== blockHash) {
      return { ok: false, reason: `vote of ${v.validator} is not a precommit for this block/round` };
    }
    if (seen.has(v.validator)) return { ok: false, reason: `duplicate precommit from ${v.validator}` };
    seen.add(v.validator);
    const s = stakeOf(committee, v.validator);
    if (s === undefined) return { ok: false, reason: `${v.validator} is not in the committee` };
    stake += s;
  }
  if (!isQuorum(stake, committee.totalStake)) return { ok: false, reason: 'precommits do not reach a > 2/3 quorum' };
  return { ok: true, stake };
}

/**
 * Seed of an epoch: drives the proposer schedule and committee assignment.
 * Derived from the genesis hash so every process computes it alone; the beacon
 * announces it (signed) and shard nodes check the announcement against it.
 */
export function epochSeed(chainId: string, genesisHash: Uint8Array, epoch: number): Uint8Array {
  return sha256(concatBytes(new TextEncoder().encode(`qnexus/${chainId}/epoch-seed`), genesisHash, u64be(epoch)));
}

/**
 * Deterministic, stake-balanced assignment of validators to shard committees.
 * Validators are ordered by stake (largest first), ties broken by
 * sha256(seed || address) so the seed decides who lands where among equals;
 * each goes to the shard with the least stake so far (then fewest members,
 * then lowest index). With equal stakes and n·S validators every shard gets n.
 * Returns one committee per shard; throws if a shard would be empty.
 */
export function assignCommittees(validators: readonly Validator[], shardCount: number, seed: Uint8Array): Committee[] {
  if (!Number.isSafeInteger(shardCount) || shardCount < 1) throw new RangeError('shardCount must be a positive integer');
  const tie = (a: string) => sha256(concatBytes(seed, new TextEncoder().encode(a)));
  const order = validators
    .map((v) => ({ v, t: Buffer.from(tie(v.address)).toString('hex') }))
    .sort((a, b) => (a.v.stake > b.v.stake ? -1 : a.v.stake < b.v.stake ? 1 : a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
  const buckets: Validator[][] = Array.from({ length: shardCount }, () => []);
  const stakes: bigint[] = Array.from({ length: shardCount }, () => 0n);
  for (const { v } of order) {
    let best = 0;
    for (let k = 1; k < shardCount; k++) {
      if (stakes[k]! < stakes[best]! || (stakes[k] === stakes[best] && buckets[k]!.length < buckets[best]!.length)) best = k;
    }
    buckets[best]!.push(v);
    stakes[best]! += v.stake;
  }
  return buckets.map((b, k) => {
    if (b.length === 0) throw new RangeError(`shard ${k} would have an empty committee (${validators.length} validators for ${shardCount} shards)`);
    return makeCommittee(b);
  });
}
