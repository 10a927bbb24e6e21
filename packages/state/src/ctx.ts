import type { SchemeName } from '@qnexus/crypto';
import type { Genesis } from '@qnexus/types';
import { Branch, ModuleStore } from './store.js';

/** Chain parameters the state machine reads; fixed by the genesis file and the shard. */
export interface StateParams {
  chainId: string;
  scheme: SchemeName;
  minFee: bigint;
  /** The shard this state belongs to, and how many there are (home shard of an address = f(address)). */
  shard: number;
  shardCount: number;
  /** Only entries signed with this key may prepare or decide cross-shard transfers. */
  beaconPublicKey: Uint8Array;
  xferTimeoutSlots: number;
  /** Slots per epoch: pending proposer fees are sent to the beacon once per epoch. */
  epochLength: number;
  /** Smallest amount one stake transaction may bond (genesis `staking.minStake`). */
  minStake: bigint;
  /** Fraction of every fee burned, in basis points; the rest is the block proposer's tip. */
  feeBurnBps: number;
  /** Σ weight of a block's transactions (a plain transfer weighs 1): genesis `maxBlockTxs`. */
  maxBlockWeight: number;
  /**
   * Settled cross-shard records are pruned this many slots after their decision (and past their
   * deadline), and replays refused until that long past the deadline: the chain constant
   * XFER_RETENTION_SLOTS (@qnexus/types) when absent (every chain today; set by tests for short windows).
   */
  xferRetentionSlots?: number;
  /** Most prune steps (a record, or a tombstone) the xfer module's end-block hook takes: max(256, 2 × maxBlockWeight) when absent. */
  xferPrunesPerBlock?: number;
}

export function stateParams(g: Genesis, shard: number): StateParams {
  return {
    chainId: g.chainId,
    scheme: g.scheme,
    minFee: g.minFee,
    shard,
    shardCount: g.shardCount,
    beaconPublicKey: g.beacon.publicKey,
    xferTimeoutSlots: g.xferTimeoutSlots,
    epochLength: g.epochLength,
    minStake: g.staking.minStake,
    feeBurnBps: g.staking.feeBurnBps,
    maxBlockWeight: g.maxBlockTxs,
  };
}

/** Where in the chain a transaction executes: part of the deterministic input (deadlines, record heights, fee recipient). */
export interface BlockContext {
  height: number;
  slot: number;
  /** 20-byte address of the block's proposer: it earns the non-burned part of every fee in the block. */
  proposer: Uint8Array;
}

/** Module ids: the first byte of every state key. Built-ins first; a module's id never changes once a chain runs. */
export const MODULE_IDS = { bank: 1, xfer: 2, staking: 3, token: 4, faucet: 5, amm: 6, dex: 7 } as const;

/**
 * What a keeper runs against: the branch the current transaction (or block
 * hook) writes to, the chain parameters and the block. Keepers take the
 * context on every call, so the same keeper serves every branch.
 */
export class ExecCtx {
  constructor(
    readonly kv: Branch,
    readonly params: StateParams,
    readonly block: BlockContext,
  ) {}

  private readonly stores: (ModuleStore | undefined)[] = [];

  /** The module's store on this context's branch (one object per module and context). */
  store(moduleId: number): ModuleStore {
    return (this.stores[moduleId] ??= new ModuleStore(this.kv, moduleId));
  }

  /** The same block on a child branch (a transaction's). */
  child(): ExecCtx {
    return new ExecCtx(this.kv.branch(), this.params, this.block);
  }
}
