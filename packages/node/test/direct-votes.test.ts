// Votes sent directly by a peer are checked like gossiped ones: invalid ones are rejected (the p2p
// layer then penalises the sender, see packages/p2p/test/direct.test.ts), a valid one is delivered once.
import assert from 'node:assert/strict';
import { encodeVoteGossip, type SignedVote } from '@qnexus/types';
import type { P2PNode, Topics, ValidationResult } from '@qnexus/p2p';
import { Logger } from '@qnexus/runtime';
import { createMetrics } from '../src/metrics.js';
import { Engine } from '../src/engine.js';
import type { Chain } from '../src/chain.js';
import type { Mempool } from '../src/mempool.js';
import type { TxVerifier } from '../src/verifier.js';

describe('engine: votes sent directly', () => {
  const member = new Uint8Array(20).fill(7);
  const stranger = new Uint8Array(20).fill(9);
  const round = 100; // the current slot when a test starts
  const vote = (over: Partial<SignedVote['body']> = {}, signature = new Uint8Array(32).fill(1)): SignedVote => ({
    body: { chainId: 'test-chain', shard: 0, height: 11, round, step: 'prevote', blockHash: new Uint8Array(32).fill(3), validator: member, ...over },
    signature,
  });

  function engine(verify: (sig: Uint8Array) => boolean) {
    // The engine reads the slot off the wall clock: pin "now" to the middle of slot `round` when each
    // test builds its engine (not when the file loads: a whole suite runs for minutes after that).
    const genesis = { chainId: 'test-chain', genesisTime: Date.now() - round * 1000 - 500, slotMs: 1000, epochLength: 32 };
    const chain = {
      genesis,
      shard: 0,
      headHeight: 10,
      headSlot: round - 1,
      committeeFor: () => ({}),
      memberAt: (_e: number, address: string) => (address.includes('0707') ? { publicKey: new Uint8Array(8), stake: 1n } : undefined),
      epochs: { ensure: () => Promise.resolve(true) },
    } as unknown as Chain;
    const verifier = { verifyRawAsync: (_k: string, _pk: Uint8Array, _m: Uint8Array, sig: Uint8Array) => Promise.resolve(verify(sig)) } as unknown as TxVerifier;
    const p2p = { isTrusted: () => false } as unknown as P2PNode;
    const e = new Engine(chain, {} as Mempool, p2p, verifier, null, {} as Topics, createMetrics(), new Logger('json', 'error'));
    const delivered: Uint8Array[] = [];
    const internals = e as unknown as { deliverVote: (d: Uint8Array) => void; receiveDirectVote: (d: Uint8Array, from: string) => Promise<ValidationResult> };
    internals.deliverVote = (d) => delivered.push(d);
    return { receive: (d: Uint8Array) => internals.receiveDirectVote(d, 'peer-a'), delivered };
  }

  it('garbage, another chain, a non-member and a bad signature are rejected and not delivered', async () => {
    const e = engine((sig) => sig[0] === 1);
    assert.equal(await e.receive(new Uint8Array([1, 2, 3])), 'reject');
    assert.equal(await e.receive(encodeVoteGossip(vote({ chainId: 'other-chain' }))), 'reject');
    assert.equal(await e.receive(encodeVoteGossip(vote({ validator: stranger }))), 'reject');
    assert.equal(await e.receive(encodeVoteGossip(vote({}, new Uint8Array(32).fill(2)))), 'reject');
    assert.equal(e.delivered.length, 0);
  });

  it('a valid vote is delivered once: the same vote again, or re-sent with a counter, is ignored', async () => {
    const e = engine(() => true);
    const v = vote();
    assert.equal(await e.receive(encodeVoteGossip(v)), 'accept');
    assert.equal(await e.receive(encodeVoteGossip(v)), 'ignore');
    assert.equal(await e.receive(encodeVoteGossip(v, 3)), 'ignore');
    assert.equal(e.delivered.length, 1);
  });

  it('a vote for a round far from now is ignored without a signature check (not the sender\'s fault)', async () => {
    let checks = 0;
    const e = engine(() => {
      checks++;
      return true;
    });
    assert.equal(await e.receive(encodeVoteGossip(vote({ round: round + 50 }))), 'ignore');
    assert.equal(checks, 0);
  });
});
