// Shared fixtures for the consensus tests: a toy block type, app, schedules and message builders.
import { sha256, toHex } from '@qnexus/crypto';
import { makeCommittee } from '../src/index.js';
import type { Action, Committee, ConsensusApp, Proposal, Schedule, Step, Vote } from '../src/index.js';

export interface TestBlock {
  height: number;
  round: number;
  proposer: string;
  payload: string;
}

const enc = new TextEncoder();

export function hashTestBlock(b: TestBlock): string {
  return toHex(sha256(enc.encode(`${b.height}|${b.round}|${b.proposer}|${b.payload}`)));
}

/** validateBlock: right height and not explicitly marked bad. */
export function testApp(self = 'builder'): ConsensusApp<TestBlock> {
  return {
    hashBlock: hashTestBlock,
    validateBlock: (b, height) => b.height === height && b.payload !== 'bad',
    buildBlock: (height, round) => ({ height, round, proposer: self, payload: `built-by-${self}` }),
  };
}

export function block(height: number, round: number, proposer: string, payload = 'p'): TestBlock {
  return { height, round, proposer, payload };
}

/** Round-robin over the committee sorted by address: proposer(r) = validators[r mod n]. */
export function roundRobin(committee: Committee): Schedule {
  return {
    committee: () => committee,
    proposer: (r) => committee.validators[r % committee.validators.length]!.address,
  };
}

export function equalCommittee(names: string[]): Committee {
  return makeCommittee(names.map((address) => ({ address, stake: 1n })));
}

export function sig(v: Omit<Vote, 'signature'>): Uint8Array {
  return enc.encode(`sig:${v.validator}:${v.height}:${v.round}:${v.step}:${v.blockHash ?? 'nil'}`);
}

export function vote(height: number, round: number, step: Step, blockHash: string | null, validator: string): Vote {
  const v = { height, round, step, blockHash, validator };
  return { ...v, signature: sig(v) };
}

export function proposal(b: TestBlock, validRound = -1, proposer = b.proposer, round = b.round, height = b.height): Proposal<TestBlock> {
  return { height, round, validRound, blockHash: hashTestBlock(b), block: b, proposer, signature: enc.encode(`psig:${proposer}`) };
}

export function ofType<T extends Action<TestBlock>['type']>(actions: Action<TestBlock>[], type: T): Extract<Action<TestBlock>, { type: T }>[] {
  return actions.filter((a): a is Extract<Action<TestBlock>, { type: T }> => a.type === type);
}

/** Seeded PRNG (mulberry32): all randomness of the tests lives here, never in the core. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
