import { ADDRESS_BYTES, ZERO_HASH, bytesEqual, formatAddress, schemeLengths, toHex, type SignatureBackend } from '@qnexus/crypto';
import {
  QnexusError,
  blockHash,
  certificateVoteBody,
  decodeBlock,
  encodeBlock,
  encodeCertificate,
  epochOf,
  genesisHash,
  headerSigningBytes,
  openTx,
  slotAt,
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
  changesOf,
  xfer,
  checkCertificate,
  checkCertificateShape,
  checkCertificateStructure,
  stateParams,
  type BlockExecution,
  type EpochShard,
  type StateChanges,
  type StateMachine,
  type StateOptions,
  type StateParams,
  type StateUpdate,
  type Writes,
} from '@qnexus/state';
import { isQuorum, proposerForSlot } from '@qnexus/consensus';
import { app } from '@qnexus/app';
import { STATE_FORMAT, type BlockCommit, type ChainStore } from '@qnexus/db';
import { EpochBook, type EpochBookOptions } from './epochs.js';
import type { TxVerifier } from './verifier.js';
import type { Logger } from '@qnexus/runtime';
import type { StateStats } from './metrics.js';

/**
 * A block must reach every validator and be checked and executed well inside
 * one round. Proposals are compact (tx ids), so what bounds a block is the
 * work and the fetches of transactions a voter lacks, not the proposal's
 * bytes. 2 MiB holds ≈ 830 keyless ML-DSA-44 transfers (≈ 550 carrying their
 * key). At 1 MiB (≈ 413) one block per 1 s slot capped two shards at ≈ 826
 * tx/s below what the CPUs carry: with 2 MiB the benchmark's sweep finalized
 * 1,036–1,124 tx/s on this 2-core host (docs/performance.md). Early on,
 * uncompact 3 MiB proposals missed the timeout round after round; a proposer
 * now halves its budget after failed rounds (Engine.blockByteBudget).
 */
export const MAX_BLOCK_WIRE_BYTES = 2 * 1024 * 1024;

/**
 * What `encodeBlock` writes for a block of this chain with no transactions: the
 * header (fixed size for a given chain id), the proposer's signature (fixed size
 * for the scheme) and the length prefixes. Each transaction then adds its bytes
 * plus a u32 length. Measured by encoding, so it cannot drift from the codec.
 */
export function emptyBlockBytes(g: Pick<Genesis, 'chainId' | 'scheme'>): number {
  const header: BlockHeader = {
    chainId: g.chainId,
    shard: 0,
    height: 0,
    slot: 0,
    parentHash: ZERO_HASH,
    stateRoot: ZERO_HASH,
    txRoot: ZERO_HASH,
    proposer: new Uint8Array(ADDRESS_BYTES),
    txCount: 0,
  };
  return encodeBlock({ header, signature: new Uint8Array(schemeLengths(g.scheme).signature), txs: [] }).length;
}

/**
 * How far ahead of our clock a peer's clock may be: a certificate's round (and
 * so a block's slot and height, a block per slot at most) is plausible up to
 * the slot our clock reaches this much later, never beyond.
 */
export const MAX_CLOCK_AHEAD_MS = 2_000;

/**
 * State versions kept behind the head by default: proofs of recent heights,
 * and snapshots served while a joining node downloads one (≈ 17 min of 1 s slots).
 */
export const DEFAULT_STATE_RETENTION = 1_000;
/** Fewest versions kept: a snapshot being served or a proof being built needs its version for a while. */
export const MIN_STATE_RETENTION = 16;
/** Pruning runs once this many more versions left the window. */
const PRUNE_EVERY = 16;

/** How a chain keeps its state: retention of old versions and cache bounds. */
export interface ChainStateOptions extends StateOptions {
  /** State versions kept behind the head (at least MIN_STATE_RETENTION). */
  retention?: number;
}

/** A committee member of one epoch on this shard. */
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
  /**
   * Set when the header's txRoot was already checked against these transactions' ids (a
   * compact proposal's ids, checked when it arrived, the transactions found by those ids):
   * validation does not hash a thousand leaves again.
   */
  txRootChecked?: true;
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
 * Signatures checked ahead of time (on the verify pool) that verified, each
 * remembered with its exact public key, message and signature bytes: `has`
 * answers true only for that same triple, so a verdict can stand in for
 * `verify(publicKey, message, signature)` and for nothing else. Whatever is
 * not here is verified again by the caller.
 */
export class VerifiedSignatures {
  private readonly bySig = new Map<string, { publicKey: Uint8Array; message: Uint8Array; signature: Uint8Array }[]>();

  private static key(signature: Uint8Array): string {
    return toHex(signature.subarray(0, 32));
  }

  /** Record a triple that verified. The arrays are kept as they are: pass the very copies that were verified. */
  add(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): void {
    const k = VerifiedSignatures.key(signature);
    const e = { publicKey, message, signature };
    const list = this.bySig.get(k);
    if (list) list.push(e);
    else this.bySig.set(k, [e]);
  }

  has(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    const list = this.bySig.get(VerifiedSignatures.key(signature));
    return list !== undefined && list.some((e) => bytesEqual(e.signature, signature) && bytesEqual(e.publicKey, publicKey) && bytesEqual(e.message, message));
  }

  get size(): number {
    let n = 0;
    for (const l of this.bySig.values()) n += l.length;
    return n;
  }

  /** Set by `preverifyCertified`: the signers whose votes verified hold more than 2/3 of the stake (the block is certified). */
  quorum = false;
}

/** What sync passes to `importCertified` from its parallel pre-verification. */
export interface ImportOptions {
  /** The block's candidate (transactions already opened), built from this very `block` and `raw`. */
  candidate?: Candidate;
  /** Certificate vote signatures that verified on the pool (see `preverifyCertified`). */
  verified?: VerifiedSignatures;
  /** The certificate's wire bytes (`cert` decoded from them): stored as they are instead of re-encoding `cert`. */
  certificateBytes?: Uint8Array;
  /** Leave the block's write pending until `flush()` (or the next commit that is not deferred), which writes it in one batch with its neighbours. */
  defer?: boolean;
}

/**
 * One shard's finalized chain: committed state in memory, blocks in LevelDB.
 * Validation is synchronous and deterministic given the head, which is what
 * lets the consensus core call it.
 */
export class Chain {
  readonly params: StateParams;
  readonly genesisHash: Uint8Array;
  headHeight = 0;
  headHash: Uint8Array = ZERO_HASH;
  headSlot = 0;
  /** State root in the head block's header (the committed state only changes at commit). */
  headStateRoot: Uint8Array = ZERO_HASH;
  /** First height whose block and state this node holds: 0, or the height of the snapshot it started from. */
  baseHeight = 0;
  /** State versions (heights) kept behind the head for proofs and snapshots; older ones are pruned. */
  readonly retention: number;
  /** emptyBlockBytes of this chain, computed at the first build. */
  private emptyBlockSize: number | undefined;
  /** The application (modules) this chain executes; one per process. */
  readonly app: StateMachine = app;

  /** The process's signature backend (the verifier's): what XShard and the registry view sign and verify with. */
  get backend(): SignatureBackend {
    return this.verifier.backend;
  }

  private constructor(
    readonly genesis: Genesis,
    readonly shard: number,
    readonly store: ChainStore,
    readonly state: WorldState,
    /**
     * Verified committees per epoch (genesis for epoch 0, beacon announcements
     * after). The committee of a round, its proposer and the check of a
     * certificate all come from the epoch of that round.
     */
    readonly epochs: EpochBook,
    private readonly verifier: TxVerifier,
    stateOpts: ChainStateOptions = {},
  ) {
    this.params = stateParams(genesis, shard);
    // Keyless transactions are checked against the key registered in the head state: the parent
    // of the block being validated, and the state admission runs against.
    verifier.keys = (address) => this.state.publicKey(address);
    this.retention = Math.max(MIN_STATE_RETENTION, stateOpts.retention ?? DEFAULT_STATE_RETENTION);
    this.genesisHash = genesisHash(genesis);
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

  /**
   * Open the chain of `shard` in `store` (initialising it from genesis when
   * empty) with its epoch book (stored announcements re-verified). The book's
   * network side is started separately (`chain.epochs.start(p2p)`).
   */
  static async open(
    store: ChainStore,
    genesis: Genesis,
    shard: number,
    verifier: TxVerifier,
    log: Logger,
    epochOpts: EpochBookOptions = {},
    stateOpts: ChainStateOptions = {},
  ): Promise<Chain> {
    const head = await store.headHeight();
    const gh = genesisHash(genesis);
    const epochs = await EpochBook.open(genesis, gh, store, log, { backend: verifier.backend, ...epochOpts });
    if (head < 0) {
      const state = await Chain.writeGenesis(store, genesis, shard, log, stateOpts);
      const chain = new Chain(genesis, shard, store, state, epochs, verifier, stateOpts);
      chain.headHash = (await store.hashAtHeight(0))!;
      chain.headStateRoot = state.root();
      return chain;
    }
    const stored = await store.genesisHash();
    if (!stored || !bytesEqual(stored, gh)) {
      throw new QnexusError('BAD_CONFIG', `data dir belongs to another chain (genesis ${stored ? toHex(stored) : 'unknown'}, expected ${toHex(gh)}); use a fresh --data-dir`);
    }
    const format = await store.stateFormat();
    if (format !== STATE_FORMAT) {
      throw new QnexusError(
        'BAD_CONFIG',
        `data dir holds state format ${format}; this node writes format ${STATE_FORMAT} (blocks keyed by height under a versioned Merkle trie state): start it again with --reset, or use a fresh --data-dir`,
      );
    }
    const interrupted = await store.snapshotInProgress();
    if (interrupted) {
      // A snapshot was being written over the genesis state when the process stopped: the state on disk is
      // partial. Start again from the genesis state (the node then decides again how to sync).
      if (head !== 0) throw new QnexusError('INTERNAL', `data dir has head ${head} and an unfinished state snapshot; it is corrupted`);
      log.warn('an unfinished state snapshot was found: starting again from the genesis state', { snapshotHeight: interrupted.height });
      await Chain.writeGenesis(store, genesis, shard, log, stateOpts);
    }
    const state = WorldState.open(store.stateReads(), head, stateOpts);
    const chain = new Chain(genesis, shard, store, state, epochs, verifier, stateOpts);
    chain.baseHeight = await store.baseHeight();
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
    log.info('loaded chain from data dir', { height: head, hash: toHex(chain.headHash), accounts: state.size, baseHeight: chain.baseHeight });
    return chain;
  }

  /**
   * Initialise an empty data dir: the genesis state of `shard`, then any
   * `extra` chunks of writes (tools and benches that load a big state; each
   * chunk is computed against the state written so far), all as version 0,
   * each chunk in its own batch; then block 0 over the resulting root with the
   * genesis hash and state format, in one synced batch. Until that last batch
   * the data dir has no head, and a restart initialises it again.
   */
  static async writeGenesis(
    store: ChainStore,
    genesis: Genesis,
    shard: number,
    log: Logger,
    stateOpts: StateOptions = {},
    extra?: (state: WorldState) => Iterable<Writes>,
  ): Promise<WorldState> {
    await store.clearState();
    const state = WorldState.open(store.stateReads(), -1, stateOpts);
    const write = async (writes: Writes) => {
      const u = state.apply(changesOf(writes), 0);
      await store.writeState(u.writes, u.trie);
      state.flushed(u);
    };
    await write(app.genesisWrites(genesis, shard));
    if (extra) for (const chunk of extra(state)) await write(chunk);
    const block = Chain.genesisBlock(genesis, shard, state.root());
    await store.commitBlock({
      height: 0,
      hash: blockHash(block.header),
      block: encodeBlock(block),
      certificate: null,
      txHashes: [],
      writes: new Map(),
      trie: { version: 0, puts: [], dels: [], stale: [] },
      genesisHash: genesisHash(genesis),
    });
    log.info('initialized data dir from genesis', { genesisHash: toHex(genesisHash(genesis)), stateRoot: toHex(block.header.stateRoot), entries: state.kv.count });
    return state;
  }

  // ------------------------------------------------------------------ state snapshots

  /**
   * Drop the state on disk and mark a snapshot of `height` (state root `root`)
   * as being written: only from the genesis head, before anything else runs
   * on this chain. Until `adoptSnapshot`, the chain must not execute blocks;
   * after a crash, `open` finds the mark and starts again from genesis.
   */
  async resetForSnapshot(height: number, root: Uint8Array): Promise<void> {
    if (this.headHeight !== 0 || this.unflushed.length) throw new QnexusError('INTERNAL', `a snapshot can only replace the genesis state (head is ${this.headHeight})`);
    await this.writing;
    await this.store.clearState({ height, root });
  }

  /**
   * After every part of a verified snapshot is written: its block and
   * certificate (checked here against the committee of its round) become head
   * and base in one synced batch, and the state is read from the snapshot's
   * version on. The caller checked that the snapshot's root is the header's.
   * `verified`: the certificate's vote signatures the caller verified (preverifyCertificate).
   */
  async adoptSnapshot(c: Candidate, cert: Certificate, certBytes: Uint8Array, verified?: VerifiedSignatures): Promise<void> {
    const h = c.block.header;
    if (h.chainId !== this.genesis.chainId || h.shard !== this.shard) throw new QnexusError('BAD_BLOCK', 'snapshot block is for another chain or shard');
    // The structure is checked again; vote signatures already verified (`verified`, from the offer's check) are not.
    this.verifyCertificate(cert, h, verified, c.hash);
    const marked = await this.store.snapshotInProgress();
    if (!marked || marked.height !== h.height || !bytesEqual(marked.root, h.stateRoot)) throw new QnexusError('INTERNAL', `no snapshot of height ${h.height} is being written`);
    await this.store.finishSnapshot({ height: h.height, hash: c.hash, block: c.raw, certificate: certBytes, txHashes: c.envs.map((e) => e.hash) });
    this.state.kv.reopen(h.height);
    if (!bytesEqual(this.state.root(), h.stateRoot)) throw new QnexusError('INTERNAL', `snapshot state root does not match block ${h.height}`);
    this.headHeight = h.height;
    this.headHash = c.hash;
    this.headSlot = h.slot;
    this.headStateRoot = h.stateRoot;
    this.baseHeight = h.height;
    this.proposerCache.clear();
  }

  // ------------------------------------------------------------------ committees per epoch

  /** Epoch of a slot (= round). */
  epochOf(slot: number): number {
    return epochOf(this.genesis, slot);
  }

  /**
   * The latest round a certificate can carry now: the wall-clock slot, with
   * MAX_CLOCK_AHEAD_MS for peers whose clocks run ahead (-1 before genesis).
   * Heights are bounded by it too: each block's slot is after its parent's.
   */
  latestPlausibleRound(nowMs: number = Date.now()): number {
    return slotAt(this.genesis, nowMs + MAX_CLOCK_AHEAD_MS);
  }

  /** Epoch of the wall-clock slot (0 before genesis time). */
  currentEpoch(nowMs: number = Date.now()): number {
    return epochOf(this.genesis, Math.max(0, slotAt(this.genesis, nowMs)));
  }

  /** This shard's committee (and members' keys and stakes) in an epoch; undefined while the epoch is unknown. */
  committeeFor(epoch: number): EpochShard | undefined {
    return this.epochs.get(epoch)?.shards[this.shard];
  }

  /** The committee that runs a round: that of the round's epoch. */
  committeeAtRound(round: number): EpochShard | undefined {
    return this.committeeFor(this.epochOf(round));
  }

  /** A member of this shard's committee in an epoch, or undefined (not a member, or epoch unknown). */
  memberAt(epoch: number, address: string): CommitteeMember | undefined {
    const m = this.committeeFor(epoch)?.members.get(address);
    return m ? { address, publicKey: m.publicKey, stake: m.stake } : undefined;
  }

  /** Shard whose committee holds `address` in an epoch (any shard), or undefined. */
  shardOfMember(epoch: number, address: string): number | undefined {
    const shards = this.epochs.get(epoch)?.shards;
    if (!shards) return undefined;
    const k = shards.findIndex((s) => s.members.has(address));
    return k < 0 ? undefined : k;
  }

  private proposerCache = new Map<number, string>();

  /**
   * Scheduled proposer of a round: stake-weighted from the committee and seed
   * of the round's epoch. Undefined while that epoch's committee is unknown.
   */
  proposerFor(round: number): string | undefined {
    const hit = this.proposerCache.get(round);
    if (hit !== undefined) return hit;
    const epoch = this.epochs.get(this.epochOf(round));
    const shard = epoch?.shards[this.shard];
    if (!epoch || !shard) return undefined;
    const p = proposerForSlot(shard.committee, epoch.seed, round);
    // Committees of a known epoch never change, so the answer is final (bounded: recent rounds only).
    if (this.proposerCache.size >= 4096) this.proposerCache.clear();
    this.proposerCache.set(round, p);
    return p;
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
    const scheduled = this.proposerFor(h.slot);
    if (scheduled === undefined) return `committee of epoch ${this.epochOf(h.slot)} is unknown`;
    if (formatAddress(h.proposer) !== scheduled) return 'proposer is not scheduled for the block slot';
    if (c.envs.length > this.genesis.maxBlockTxs) return 'too many transactions';
    if (c.raw.length > MAX_BLOCK_WIRE_BYTES) return 'block too large';
    const seen = new Set<string>();
    for (const env of c.envs) {
      if (seen.has(env.hashHex)) return `duplicate transaction ${env.hashHex}`;
      seen.add(env.hashHex);
    }
    if (!c.txRootChecked && !bytesEqual(h.txRoot, txRoot(c.envs.map((e) => e.hash)))) return 'tx root mismatch';
    const headHex = toHex(this.headHash);
    if (c.exec?.parentHex === headHex) return null;
    for (const env of c.envs) {
      const v = this.verifier.check(env);
      if (v === 'TX_KEY_UNKNOWN') return `transaction ${env.hashHex} names its sender by address, and the parent state registers no key for it`;
      if (v !== 'ok') return `bad signature on transaction ${env.hashHex}`;
    }
    return this.execute(c, headHex);
  }

  private execute(c: Candidate, headHex: string): string | null {
    let result: BlockExecution;
    try {
      const h = c.block.header;
      result = this.app.executeBlock(this.state, c.envs, this.params, { height: h.height, slot: h.slot, proposer: h.proposer });
    } catch (e) {
      return (e as Error).message;
    }
    if (!bytesEqual(result.stateRoot, c.block.header.stateRoot)) return 'state root mismatch';
    c.exec = { parentHex: headHex, result };
    return null;
  }

  /**
   * Build and sign a block on the head from mempool candidates, skipping any that no longer
   * apply, within `maxBytes` of wire encoding (at most the protocol cap). With `emptyOk` false,
   * null instead of a block in which no transaction applied (nothing is signed then).
   */
  build(slot: number, txs: TxEnvelope[], proposer: Uint8Array, sign: (bytes: Uint8Array) => Uint8Array, maxBytes?: number, emptyOk?: true): Candidate;
  build(slot: number, txs: TxEnvelope[], proposer: Uint8Array, sign: (bytes: Uint8Array) => Uint8Array, maxBytes: number | undefined, emptyOk: boolean): Candidate | null;
  build(slot: number, txs: TxEnvelope[], proposer: Uint8Array, sign: (bytes: Uint8Array) => Uint8Array, maxBytes = MAX_BLOCK_WIRE_BYTES, emptyOk = true): Candidate | null {
    const cap = Math.min(maxBytes, MAX_BLOCK_WIRE_BYTES);
    const picked: TxEnvelope[] = [];
    // Exactly what encodeBlock will write (a block over the cap is one every node refuses, us included).
    let bytes = (this.emptyBlockSize ??= emptyBlockBytes(this.genesis));
    for (const env of txs) {
      if (picked.length >= this.genesis.maxBlockTxs || bytes + env.raw.length + 4 > cap) break;
      picked.push(env);
      bytes += env.raw.length + 4;
    }
    // Drop transactions that fail against the current head (e.g. a racing spend).
    const result = this.app.executeApplicable(this.state, picked, this.params, { height: this.headHeight + 1, slot, proposer });
    if (result.applied.length === 0 && !emptyOk) return null;
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
    const c: Candidate = { block, raw, hash, hashHex: toHex(hash), envs: result.applied, txRootChecked: true };
    c.exec = { parentHex: toHex(this.headHash), result: result.exec };
    return c;
  }

  /**
   * Verify a finality certificate for a header against this shard's committee
   * in the epoch of the certificate's round (the committee that ran that round).
   * Throws EPOCH_UNKNOWN while that epoch's committees are unknown (fetch them
   * with `epochs.ensure`), BAD_CERTIFICATE when the certificate is invalid (a
   * round beyond the current slot included: no committee is waited for there).
   */
  verifyCertificate(cert: Certificate, header: BlockHeader, verified?: VerifiedSignatures, headerHash?: Uint8Array): void {
    const maxRound = this.latestPlausibleRound();
    // A round no clock has reached yet is a lie, not an epoch to wait for.
    if (cert.round > maxRound) throw new QnexusError('BAD_CERTIFICATE', `certificate round ${cert.round} is beyond the current slot ${maxRound}`);
    const epoch = this.epochOf(cert.round);
    const committee = this.committeeFor(epoch);
    if (!committee) throw new QnexusError('EPOCH_UNKNOWN', `committee of epoch ${epoch} (round ${cert.round}) is not known yet`);
    // Every structural check (height, block hash, round up to the current slot, vote count, membership,
    // duplicates, quorum) runs here, on this committee, before any signature; a vote signature counts as
    // checked only if this exact (key, message, signature) verified.
    checkCertificate(
      cert,
      header,
      (a) => committee.members.get(a),
      committee.committee.totalStake,
      (pk, msg, sig) => verified?.has(pk, msg, sig) === true || this.verifier.verifyRaw('certificate', pk, msg, sig),
      headerHash,
      { committeeSize: committee.members.size, maxRound },
    );
  }

  /**
   * The checks sync runs on a certified block as it arrives, before any
   * signature work and without the parent (the caller checks the link): chain
   * and shard, size, transaction count and root (the block hash covers the
   * root, not the transactions), a slot and certificate round up to the
   * current slot, and the certificate's structure — against the committee of
   * its round's epoch when that is known (vote count, membership, duplicates,
   * quorum), otherwise what needs none (`checkCertificateShape`; the rest is
   * checked by `preverifyCertified` before it verifies anything).
   * Throws BAD_BLOCK or BAD_CERTIFICATE.
   */
  precheckCertified(c: Candidate, cert: Certificate, maxRound: number = this.latestPlausibleRound()): void {
    const h = c.block.header;
    const bad = (m: string): never => {
      throw new QnexusError('BAD_BLOCK', `sync block ${h.height}: ${m}`);
    };
    if (h.chainId !== this.genesis.chainId || h.shard !== this.shard) bad('for another chain or shard');
    if (c.raw.length > MAX_BLOCK_WIRE_BYTES) bad(`${c.raw.length} bytes, more than ${MAX_BLOCK_WIRE_BYTES}`);
    if (c.envs.length > this.genesis.maxBlockTxs) bad(`${c.envs.length} transactions, more than ${this.genesis.maxBlockTxs}`);
    if (h.slot > maxRound) bad(`slot ${h.slot} is beyond the current slot ${maxRound}`);
    if (!bytesEqual(h.txRoot, txRoot(c.envs.map((e) => e.hash)))) bad('tx root mismatch');
    const committee = this.committeeAtRound(cert.round);
    if (committee) {
      checkCertificateStructure(cert, h, (a) => committee.members.get(a), committee.committee.totalStake, c.hash, { committeeSize: committee.members.size, maxRound });
      return;
    }
    checkCertificateShape(cert, h, c.hash, { maxRound });
  }

  /**
   * Sync's parallel pre-verification of a certified block, ahead of its serial
   * import: the certificate's vote signatures and the transactions' signatures
   * are verified on the verify pool. A certificate refused by its structure
   * (`checkCertificateStructure` against the committee of its round's epoch:
   * too many votes, a non-member, a duplicate signer, no quorum, a round
   * beyond the current slot) is refused here, BAD_CERTIFICATE, before any
   * signature is verified; EPOCH_UNKNOWN while that committee is unknown.
   * Otherwise it decides nothing: the vote signatures that verified are
   * returned, bound to their exact bytes, for `importCertified` (with
   * `quorum` set when they carry more than 2/3 of the stake); good
   * transactions land in the verify-once cache, where the import's own
   * signature check finds them. Whatever did not verify here is verified again
   * (and refused) by the import.
   */
  async preverifyCertified(c: Candidate, cert: Certificate): Promise<VerifiedSignatures> {
    // The certificate's structure is checked (and may throw) before any signature work starts.
    const votes = this.certificateChecks(cert, c.block.header, c.hash);
    const txs = c.envs.map((env) => this.verifier.checkAsync(env).catch(() => undefined));
    const [verified] = await Promise.all([votes, ...txs]);
    return verified;
  }

  /**
   * The certificate part of `preverifyCertified` (what a snapshot's block needs: its transactions
   * are not executed): see certificateChecks.
   */
  async preverifyCertificate(cert: Certificate, h: BlockHeader, hash: Uint8Array): Promise<VerifiedSignatures> {
    return this.certificateChecks(cert, h, hash);
  }

  /**
   * Check a certificate's structure against the committee of its round's epoch now (throws
   * BAD_CERTIFICATE or EPOCH_UNKNOWN before any signature is verified), then verify every vote
   * signature on the verify pool; the promise holds those that verified (with `quorum`), for
   * `verifyCertificate` to take without verifying them again.
   */
  private certificateChecks(cert: Certificate, h: BlockHeader, hash: Uint8Array): Promise<VerifiedSignatures> {
    const maxRound = this.latestPlausibleRound();
    if (cert.round > maxRound) throw new QnexusError('BAD_CERTIFICATE', `certificate round ${cert.round} is beyond the current slot ${maxRound}`);
    const epoch = this.epochOf(cert.round);
    const committee = this.committeeFor(epoch);
    if (!committee) throw new QnexusError('EPOCH_UNKNOWN', `committee of epoch ${epoch} (round ${cert.round}) is not known yet`);
    const total = committee.committee.totalStake;
    const signers = checkCertificateStructure(cert, h, (a) => committee.members.get(a), total, hash, { committeeSize: committee.members.size, maxRound });
    const verified = new VerifiedSignatures();
    let stake = 0n;
    const checks = signers.map((s) => {
      // Private copies: the verdict is recorded for exactly the bytes that were verified.
      const pk = s.member.publicKey.slice();
      const sig = s.vote.signature.slice();
      const msg = voteSigningBytes(certificateVoteBody(cert, h.chainId, h.shard, s.vote.validator));
      return this.verifier.verifyRawAsync('certificate', pk, msg, sig).then(
        (ok) => {
          if (!ok) return;
          verified.add(pk, msg, sig);
          stake += s.member.stake;
        },
        () => undefined,
      );
    });
    return Promise.all(checks).then(() => {
      verified.quorum = isQuorum(stake, total);
      return verified;
    });
  }

  /** Block writes kept for one batch with the next ones (sync imports: see `ImportOptions.defer`). */
  private unflushed: BlockCommit[] = [];
  /** The state updates of `unflushed`, handed back to the state once their batch is on disk. */
  private unflushedState: StateUpdate[] = [];
  private writing: Promise<void> = Promise.resolve();

  /**
   * Finalize a validated candidate: update memory first (so the next height
   * builds on it), then write block, certificate, state and indices in one
   * batch — with any deferred blocks before it, so the disk always holds a
   * prefix of the chain, each block whole. With `defer` the write waits for
   * `flush()` or the next commit.
   */
  async commit(c: Candidate, cert: Certificate, opts: { defer?: boolean; certificateBytes?: Uint8Array } = {}): Promise<StateChanges> {
    const headHex = toHex(this.headHash);
    if (!c.exec || c.exec.parentHex !== headHex) {
      const why = this.validate(c, this.headHeight + 1);
      if (why) throw new QnexusError('BAD_BLOCK', `refusing to commit block ${c.block.header.height}: ${why}`);
    }
    const changes = c.exec!.result.changes;
    const update = this.state.apply(changes, c.block.header.height);
    this.headHeight = c.block.header.height;
    this.headHash = c.hash;
    this.headSlot = c.block.header.slot;
    this.headStateRoot = c.block.header.stateRoot;
    this.unflushed.push({
      height: c.block.header.height,
      hash: c.hash,
      block: c.raw,
      // The codec is canonical (fixed-width fields, no trailing bytes): decoded wire bytes re-encode to themselves.
      certificate: opts.certificateBytes ?? encodeCertificate(cert),
      txHashes: c.envs.map((e) => e.hash),
      txFailures: c.exec!.result.failed,
      writes: update.writes,
      trie: update.trie,
    });
    this.unflushedState.push(update);
    if (!opts.defer) await this.flush();
    return changes;
  }

  /** Blocks committed in memory whose write is still deferred. */
  get unflushedBlocks(): number {
    return this.unflushed.length;
  }

  /**
   * Write the deferred block commits as one synced batch (atomic: after a crash
   * the store holds all of them or none, on top of the blocks before them).
   * Batches are written one at a time, in commit order; blocks deferred while a
   * batch is being written go together in the next one (group commit), which
   * is what the returned promise waits for. A failed write fails every later
   * one without writing it: the disk stays a prefix of the chain.
   */
  flush(): Promise<void> {
    if (this.writeFailed) return Promise.reject(this.writeFailed);
    if (!this.unflushed.length) return this.writing;
    if (!this.nextWrite) {
      const w = this.writing.then(() => {
        this.nextWrite = null;
        const blocks = this.unflushed;
        const updates = this.unflushedState;
        this.unflushed = [];
        this.unflushedState = [];
        if (this.writeFailed) throw this.writeFailed;
        if (!blocks.length) return undefined;
        return this.store.commitBlocks(blocks).then(() => {
          for (const u of updates) this.state.flushed(u);
          this.maybePrune();
        });
      });
      w.catch((e: unknown) => {
        this.writeFailed ??= e instanceof Error ? e : new Error(String(e));
      });
      this.nextWrite = w;
      this.writing = w.catch(() => undefined);
    }
    return this.nextWrite;
  }

  private pruning = false;
  /** Version up to which stale trie nodes were pruned. */
  private prunedThrough = -1;

  /**
   * Delete the trie nodes no kept version reads (versions older than
   * `retention` behind the head), in the background, one run at a time, every
   * PRUNE_EVERY heights.
   */
  private maybePrune(): void {
    const through = this.headHeight - this.retention;
    if (this.pruning || through < this.prunedThrough + PRUNE_EVERY) return;
    this.pruning = true;
    this.store
      .pruneStale(through)
      .then((n) => {
        this.prunedThrough = through;
        this.prunedNodes += n;
      })
      .catch(() => undefined)
      .finally(() => {
        this.pruning = false;
      });
  }

  /** Trie nodes deleted by pruning since start (metrics). */
  prunedNodes = 0;

  /** The state figures the metrics show. */
  stateStats(): StateStats {
    const x = xfer.pruneStats(this.state);
    return {
      entries: this.state.kv.count,
      baseHeight: this.baseHeight,
      oldestVersion: Math.max(this.baseHeight, this.headHeight - this.retention),
      prunedNodes: this.prunedNodes,
      xferRecordsPruned: Number(x.pruned),
      xferTombstones: Number(x.tombstones),
    };
  }

  /** The batch write that will take the blocks deferred now (see `flush`). */
  private nextWrite: Promise<void> | null = null;
  /** The first failed block write: later ones are refused. */
  private writeFailed: Error | null = null;

  /**
   * Import a block fetched by sync. The certificate (> 2/3 of stake attests the
   * block was valid) is verified first, then every transaction's signature (a
   * tx id, hence the block hash, does not cover it; normally a hit in the
   * verify-once cache, filled by `preverifyCertified`); the transactions are
   * re-executed and the resulting state root must match.
   */
  async importCertified(block: Block, raw: Uint8Array, cert: Certificate, opts: ImportOptions = {}): Promise<{ candidate: Candidate; changes: StateChanges }> {
    const h = block.header;
    if (h.height !== this.headHeight + 1) throw new QnexusError('BAD_BLOCK', `sync block ${h.height} is not next (${this.headHeight + 1})`);
    if (h.chainId !== this.genesis.chainId || h.shard !== this.shard) throw new QnexusError('BAD_BLOCK', 'sync block is for another chain or shard');
    if (!bytesEqual(h.parentHash, this.headHash)) throw new QnexusError('BAD_BLOCK', 'sync block does not extend our head');
    const c = opts.candidate?.block === block && opts.candidate.raw === raw ? opts.candidate : candidateFromBlock(block, raw);
    this.verifyCertificate(cert, h, opts.verified, c.hash);
    if (!bytesEqual(h.txRoot, txRoot(c.envs.map((e) => e.hash)))) throw new QnexusError('BAD_BLOCK', 'sync block tx root mismatch');
    for (const env of c.envs) {
      const v = this.verifier.check(env);
      if (v === 'TX_KEY_UNKNOWN') throw new QnexusError('BAD_BLOCK', `certified block ${h.height} carries keyless transaction ${env.hashHex} whose sender has no key registered in the parent state`);
      if (v !== 'ok') throw new QnexusError('BAD_BLOCK', `certified block ${h.height} carries a bad signature on transaction ${env.hashHex}`);
    }
    const why = this.execute(c, toHex(this.headHash));
    if (why) throw new QnexusError('BAD_BLOCK', `certified block ${h.height} does not execute: ${why}`);
    const changes = await this.commit(c, cert, { defer: opts.defer, certificateBytes: opts.certificateBytes });
    return { candidate: c, changes };
  }
}
