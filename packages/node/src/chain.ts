import { ADDRESS_BYTES, ZERO_HASH, bytesEqual, formatAddress, toHex } from '@qnexus/crypto';
import {
  QnexusError,
  blockHash,
  decodeXferRecord,
  encodeXferRecord,
  certificateVoteBody,
  decodeBlock,
  encodeBlock,
  encodeCertificate,
  genesisHash,
  headerSigningBytes,
  openTx,
  txRoot,
  voteSigningBytes,
  type Block,
  type BlockHeader,
  type Certificate,
  type Genesis,
  type TxEnvelope,
} from '@qnexus/types';
import {
  WorldState,
  checkCertificate,
  decodeAccount,
  decodeCounters,
  encodeAccount,
  encodeCounters,
  epochCommittees,
  executeApplicable,
  executeBlock,
  stateParams,
  type BlockExecution,
  type StateChanges,
  type StateParams,
} from '@qnexus/state';
import { epochSeed, proposerForSlot, type Committee } from '@qnexus/consensus';
import type { ChainStore } from '@qnexus/db';
import type { TxVerifier } from './verifier.js';
import type { Logger } from './log.js';

/**
 * A proposal must reach every validator and be checked well inside the propose
 * timeout, and it shares the publish window with votes. Measured here: 3 MiB
 * proposals (≈800 ML-DSA-44 transfers) missed the timeout round after round
 * under load and stalled finality; 1 MiB (≈270 transfers, about this machine's
 * whole signature ceiling per 1 s slot) keeps rounds short.
 */
export const MAX_BLOCK_WIRE_BYTES = 1024 * 1024;

export interface CommitteeMember {
  address: string;
  publicKey: Uint8Array;
  stake: bigint;
}

/**
 * A block as the consensus core sees it, with its decoded transactions and
 * (once validated against the current head) its execution result.
 */
export interface Candidate {
  block: Block;
  raw: Uint8Array;
  hash: Uint8Array;
  hashHex: string;
  envs: TxEnvelope[];
  exec?: { parentHex: string; result: BlockExecution };
}

/** A candidate from already-opened transactions (compact-proposal reconstruction: no re-decoding). */
export function candidateFromEnvs(header: BlockHeader, signature: Uint8Array, envs: TxEnvelope[]): Candidate {
  const block: Block = { header, signature, txs: envs.map((e) => e.raw) };
  const hash = blockHash(header);
  return { block, raw: encodeBlock(block), hash, hashHex: toHex(hash), envs };
}

export function candidateFromBlock(block: Block, raw: Uint8Array = encodeBlock(block)): Candidate {
  const hash = blockHash(block.header);
  return { block, raw, hash, hashHex: toHex(hash), envs: block.txs.map((t) => openTx(t)) };
}

/**
 * One shard's finalized chain: committed state in memory, blocks in LevelDB.
 * Validation is synchronous and deterministic given the head, which is what
 * lets the consensus core call it.
 */
export class Chain {
  readonly params: StateParams;
  readonly genesisHash: Uint8Array;
  readonly members: Map<string, CommitteeMember>;
  readonly committee: Committee;
  headHeight = 0;
  headHash: Uint8Array = ZERO_HASH;
  headSlot = 0;
  /** State root in the head block's header (the committed state only changes at commit). */
  headStateRoot: Uint8Array = ZERO_HASH;

  private constructor(
    readonly genesis: Genesis,
    readonly shard: number,
    readonly store: ChainStore,
    readonly state: WorldState,
    private readonly verifier: TxVerifier,
    private readonly log: Logger,
  ) {
    this.params = stateParams(genesis, shard);
    this.genesisHash = genesisHash(genesis);
    // The committee is assigned from the epoch seed (the beacon announces the same assignment, signed).
    this.committee = epochCommittees(genesis, 0)[shard]!;
    const keys = new Map(genesis.validators.map((v) => [v.address, v.publicKey]));
    this.members = new Map(this.committee.validators.map((v) => [v.address, { address: v.address, publicKey: keys.get(v.address)!, stake: v.stake }]));
  }

  static genesisBlock(g: Genesis, shard: number, stateRoot: Uint8Array): Block {
    const header: BlockHeader = {
      chainId: g.chainId,
      shard,
      height: 0,
      slot: 0,
      // Block 0's parent is the genesis file's hash: data dirs and peers of different genesis files never agree.
      parentHash: genesisHash(g),
      stateRoot,
      txRoot: ZERO_HASH,
      proposer: new Uint8Array(ADDRESS_BYTES),
      txCount: 0,
    };
    return { header, signature: new Uint8Array(0), txs: [] };
  }

  static async open(store: ChainStore, genesis: Genesis, shard: number, verifier: TxVerifier, log: Logger): Promise<Chain> {
    const head = await store.headHeight();
    const gh = genesisHash(genesis);
    let chain: Chain;
    if (head < 0) {
      const state = WorldState.fromGenesis(genesis, shard);
      chain = new Chain(genesis, shard, store, state, verifier, log);
      const block = Chain.genesisBlock(genesis, shard, state.root());
      const hash = blockHash(block.header);
      await store.commitBlock({
        height: 0,
        hash,
        block: encodeBlock(block),
        certificate: null,
        txHashes: [],
        accounts: new Map([...state.entries()].map(([k, a]) => [k, encodeAccount(a)])),
        xfers: new Map(),
        counters: encodeCounters(state.counters),
        genesisHash: gh,
      });
      chain.headHash = hash;
      chain.headStateRoot = block.header.stateRoot;
      log.info('initialized data dir from genesis', { genesisHash: toHex(gh), stateRoot: toHex(block.header.stateRoot) });
      return chain;
    }
    const stored = await store.genesisHash();
    if (!stored || !bytesEqual(stored, gh)) {
      throw new QnexusError('BAD_CONFIG', `data dir belongs to another chain (genesis ${stored ? toHex(stored) : 'unknown'}, expected ${toHex(gh)}); use a fresh --data-dir`);
    }
    const st = await store.loadState();
    const state = WorldState.fromEntries(
      st.accounts.map(([k, v]) => [k, decodeAccount(v)]),
      decodeCounters(st.counters),
      st.xfers.map(decodeXferRecord),
    );
    chain = new Chain(genesis, shard, store, state, verifier, log);
    const raw = await store.blockAtHeight(head);
    if (!raw) throw new QnexusError('INTERNAL', `store has head ${head} but no block at that height`);
    const block = decodeBlock(raw);
    chain.headHeight = head;
    chain.headHash = blockHash(block.header);
    chain.headSlot = block.header.slot;
    chain.headStateRoot = block.header.stateRoot;
    // The state and the head block were written in one batch; a mismatch means corruption, not a crash.
    if (!bytesEqual(state.root(), block.header.stateRoot)) {
      throw new QnexusError('INTERNAL', `state root on disk does not match block ${head}; the data dir is corrupted`);
    }
    log.info('loaded chain from data dir', { height: head, hash: toHex(chain.headHash), accounts: state.size });
    return chain;
  }

  private seedCache: { epoch: number; seed: Uint8Array } | null = null;

  /** Seed of an epoch's proposer schedule (the beacon announces the same seed). */
  epochSeed(epoch: number): Uint8Array {
    if (this.seedCache?.epoch !== epoch) this.seedCache = { epoch, seed: epochSeed(this.genesis.chainId, this.genesisHash, epoch) };
    return this.seedCache.seed;
  }

  proposerFor(slot: number): string {
    return proposerForSlot(this.committee, this.epochSeed(Math.floor(slot / this.genesis.epochLength)), slot);
  }

  /**
   * Check a candidate for height head+1 and cache its execution. Returns a
   * reason string when invalid. Signatures of the header/proposal are checked
   * at gossip time; tx signatures come from the verify-once cache.
   */
  validate(c: Candidate, height: number): string | null {
    const h = c.block.header;
    if (height !== this.headHeight + 1 || h.height !== height) return `height ${h.height} is not next (${this.headHeight + 1})`;
    if (h.chainId !== this.genesis.chainId || h.shard !== this.shard) return 'wrong chain or shard';
    if (!bytesEqual(h.parentHash, this.headHash)) return 'parent is not the finalized head';
    if (h.slot <= this.headSlot) return `slot ${h.slot} is not after the parent's slot ${this.headSlot}`;
    if (formatAddress(h.proposer) !== this.proposerFor(h.slot)) return 'proposer is not scheduled for the block slot';
    if (c.envs.length > this.genesis.maxBlockTxs) return 'too many transactions';
    if (c.raw.length > MAX_BLOCK_WIRE_BYTES) return 'block too large';
    const seen = new Set<string>();
    for (const env of c.envs) {
      if (seen.has(env.hashHex)) return `duplicate transaction ${env.hashHex}`;
      seen.add(env.hashHex);
    }
    if (!bytesEqual(h.txRoot, txRoot(c.envs.map((e) => e.hash)))) return 'tx root mismatch';
    const headHex = toHex(this.headHash);
    if (c.exec?.parentHex === headHex) return null;
    for (const env of c.envs) if (!this.verifier.verify(env)) return `bad signature on transaction ${env.hashHex}`;
    return this.execute(c, headHex);
  }

  private execute(c: Candidate, headHex: string): string | null {
    let result: BlockExecution;
    try {
      result = executeBlock(this.state, c.envs, this.params, { height: c.block.header.height, slot: c.block.header.slot });
    } catch (e) {
      return (e as Error).message;
    }
    if (!bytesEqual(result.stateRoot, c.block.header.stateRoot)) return 'state root mismatch';
    c.exec = { parentHex: headHex, result };
    return null;
  }

  /** Build and sign a block on the head from mempool candidates, skipping any that no longer apply. */
  build(slot: number, txs: TxEnvelope[], proposer: Uint8Array, sign: (bytes: Uint8Array) => Uint8Array): Candidate {
    const picked: TxEnvelope[] = [];
    let bytes = 1024;
    for (const env of txs) {
      if (picked.length >= this.genesis.maxBlockTxs || bytes + env.raw.length + 4 > MAX_BLOCK_WIRE_BYTES) break;
      picked.push(env);
      bytes += env.raw.length + 4;
    }
    // Drop transactions that fail against the current head (e.g. a racing spend).
    const result = executeApplicable(this.state, picked, this.params, { height: this.headHeight + 1, slot });
    const header: BlockHeader = {
      chainId: this.genesis.chainId,
      shard: this.shard,
      height: this.headHeight + 1,
      slot,
      parentHash: this.headHash,
      stateRoot: result.exec.stateRoot,
      txRoot: txRoot(result.applied.map((e) => e.hash)),
      proposer,
      txCount: result.applied.length,
    };
    const block: Block = { header, signature: sign(headerSigningBytes(header)), txs: result.applied.map((e) => e.raw) };
    const raw = encodeBlock(block);
    const hash = blockHash(header);
    const c: Candidate = { block, raw, hash, hashHex: toHex(hash), envs: result.applied };
    c.exec = { parentHex: toHex(this.headHash), result: result.exec };
    return c;
  }

  /** Verify a finality certificate for a header against this shard's committee (BAD_CERTIFICATE otherwise). */
  verifyCertificate(cert: Certificate, header: BlockHeader): void {
    checkCertificate(cert, header, (a) => this.members.get(a), this.committee.totalStake, (pk, msg, sig) => this.verifier.verifyRaw('certificate', pk, msg, sig));
  }

  /**
   * Finalize a validated candidate: update memory first (so the next height
   * builds on it), then write block, certificate, state and indices in one batch.
   */
  async commit(c: Candidate, cert: Certificate): Promise<StateChanges> {
    const headHex = toHex(this.headHash);
    if (!c.exec || c.exec.parentHex !== headHex) {
      const why = this.validate(c, this.headHeight + 1);
      if (why) throw new QnexusError('BAD_BLOCK', `refusing to commit block ${c.block.header.height}: ${why}`);
    }
    const changes = c.exec!.result.changes;
    this.state.apply(changes);
    this.headHeight = c.block.header.height;
    this.headHash = c.hash;
    this.headSlot = c.block.header.slot;
    this.headStateRoot = c.block.header.stateRoot;
    await this.store.commitBlock({
      height: c.block.header.height,
      hash: c.hash,
      block: c.raw,
      certificate: encodeCertificate(cert),
      txHashes: c.envs.map((e) => e.hash),
      accounts: new Map([...changes.accounts].map(([k, a]) => [k, encodeAccount(a)])),
      xfers: new Map([...changes.xfers].map(([k, x]) => [k, encodeXferRecord(x)])),
      counters: encodeCounters(changes.counters),
    });
    return changes;
  }

  /**
   * Import a block fetched by sync. The certificate (> 2/3 of stake attests the
   * block was valid) is verified first; transactions are re-executed without
   * re-verifying their signatures, and the resulting state root must match.
   */
  async importCertified(block: Block, raw: Uint8Array, cert: Certificate): Promise<{ candidate: Candidate; changes: StateChanges }> {
    const h = block.header;
    if (h.height !== this.headHeight + 1) throw new QnexusError('BAD_BLOCK', `sync block ${h.height} is not next (${this.headHeight + 1})`);
    if (h.chainId !== this.genesis.chainId || h.shard !== this.shard) throw new QnexusError('BAD_BLOCK', 'sync block is for another chain or shard');
    if (!bytesEqual(h.parentHash, this.headHash)) throw new QnexusError('BAD_BLOCK', 'sync block does not extend our head');
    this.verifyCertificate(cert, h);
    const c = candidateFromBlock(block, raw);
    if (!bytesEqual(h.txRoot, txRoot(c.envs.map((e) => e.hash)))) throw new QnexusError('BAD_BLOCK', 'sync block tx root mismatch');
    const why = this.execute(c, toHex(this.headHash));
    if (why) throw new QnexusError('BAD_BLOCK', `certified block ${h.height} does not execute: ${why}`);
    const changes = await this.commit(c, cert);
    return { candidate: c, changes };
  }
}
