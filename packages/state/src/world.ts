import { fromHex } from '@qnexus/crypto';
import { decodeXferRecord, type ReportItem, type XferRecord } from '@qnexus/types';
import { bank } from './modules/bank/keeper.js';
import { XFER_RECORD_PREFIX, xfer, xferRecordKey } from './modules/xfer/keeper.js';
import { Branch, MAX_RANGE, MemoryStorage, ModuleStore, TrieState, type KVReader, type KeyHex, type StateOptions, type StateStorage, type StateUpdate, type Writes } from './store.js';
import { verifyStateProof, type StateProof } from './trie.js';

/** An account as the API shows it: the native balance and the bank's account record. */
export interface Account {
  balance: bigint;
  nonce: bigint;
  publicKey: Uint8Array | null;
}

/** One denom's supply identity: balances + burned + escrow + exported − imported = genesis + minted. */
export interface DenomTotals {
  denom: string;
  balances: bigint;
  genesis: bigint;
  minted: bigint;
  burned: bigint;
  escrow: bigint;
  exported: bigint;
  imported: bigint;
}

/** Reads of the built-in modules over any KV reader (the committed state or a branch). */
export class StateView {
  protected readonly r: Branch;
  constructor(kv: KVReader) {
    // A branch that is never written: reads pass through to `kv`.
    this.r = kv instanceof Branch ? kv : new Branch(kv);
  }
  private readonly stores: (ModuleStore | undefined)[] = [];
  store(id: number): ModuleStore {
    return (this.stores[id] ??= new ModuleStore(this.r, id));
  }
  account(addrHex: string): Account | undefined {
    const addr = fromHex(addrHex);
    const a = bank.auth(this, addr);
    if (!a) return undefined;
    return { balance: bank.balance(this, addr), nonce: a.nonce, publicKey: a.publicKey };
  }
  /** The public key registered for an address (written once, by its first transaction), or null. */
  publicKey(addr: Uint8Array): Uint8Array | null {
    return bank.publicKey(this, addr);
  }
  balance(addr: Uint8Array, denom?: string): bigint {
    return bank.balance(this, addr, denom);
  }
  xfer(idHex: string): XferRecord | undefined {
    return xfer.record(this, idHex);
  }
  get burned(): bigint {
    return bank.supply(this).burned;
  }
  /** Supply identity terms of every denom with a supply record. */
  denomTotals(): DenomTotals[] {
    return bank.denoms(this, 10_000).map((denom) => ({ denom, balances: bank.totalBalances(this, denom), ...bank.supply(this, denom), ...xfer.counters(this, denom) }));
  }
  /** Number of account records. */
  get size(): number {
    return Number(bank.accountCount(this));
  }
}

/** Writes of a block, with the transfer records it touched (decoded once, for reports and metrics). */
export interface StateChanges {
  writes: Writes;
  xfers: Map<string, XferRecord>;
}

export function changesOf(writes: Writes): StateChanges {
  const xfers = new Map<string, XferRecord>();
  for (const [k, v] of writes) if (v && k.startsWith(XFER_RECORD_PREFIX)) xfers.set(k.slice(XFER_RECORD_PREFIX.length), decodeXferRecord(v));
  return { writes, xfers };
}

export interface BlockExecution {
  changes: StateChanges;
  stateRoot: Uint8Array;
  /** Included transactions whose message was refused (fee charged, nothing else written), by index in the block. */
  failed: readonly { index: number; code: string; message: string }[];
}

/** The committed state of one shard: the key-value entries with their commitment, and the built-ins' reads. */
export class WorldState extends StateView {
  private constructor(readonly kv: TrieState) {
    super(kv);
  }

  /** An empty state in memory (tests, genesis, tools). */
  static memory(opts?: StateOptions): WorldState {
    return new WorldState(new TrieState(new MemoryStorage(), -1, opts));
  }

  /** The state stored in `storage` at `version` (-1: empty). */
  static open(storage: StateStorage, version: number, opts?: StateOptions): WorldState {
    return new WorldState(new TrieState(storage, version, opts));
  }

  /** A state in memory holding `entries` (as version 0). */
  static fromEntries(entries: Iterable<[KeyHex, Uint8Array]>): WorldState {
    const s = WorldState.memory();
    s.kv.apply(new Map(entries), 0);
    return s;
  }

  /** The committed version (block height). */
  get version(): number {
    return this.kv.version;
  }

  /** Commit a block's changes as `version` (default: the next); the returned update goes into the block's batch, then `flushed`. */
  apply(ch: StateChanges, version?: number): StateUpdate {
    return this.kv.apply(ch.writes, version);
  }

  flushed(u: StateUpdate): void {
    this.kv.flushed(u);
  }

  rootWith(ch?: StateChanges): Uint8Array {
    return this.kv.rootWith(ch?.writes);
  }

  root(): Uint8Array {
    return this.kv.root();
  }

  /** Proofs against the root of `version` (default: the committed one; STATE_PRUNED once it is no longer kept). */
  prove(keys: readonly Uint8Array[], version?: number): StateProof[] {
    return this.kv.prove(keys, version);
  }

  /** Snapshot items of a subtree of a kept version (see MerkleTrie.exportSubtree). */
  exportSubtree(version: number, path: string, maxItems: number, maxBytes: number): Uint8Array[] {
    return this.kv.exportSubtree(version, path, maxItems, maxBytes);
  }

  xferRecords(): XferRecord[] {
    return xfer.records(this, MAX_RANGE);
  }

  /** Proofs of transfer records against `root()`, for the beacon. Unknown ids are skipped. */
  proveXfers(idHexes: readonly string[]): ReportItem[] {
    const known = idHexes.filter((id) => this.kv.get(XFER_RECORD_PREFIX + id) !== undefined);
    return this.kv.prove(known.map((id) => xferRecordKey(fromHex(id)))).map((p) => ({ record: p.value!, proof: p.nodes }));
  }
}

/** Check a transfer record's proof against a (certified) state root; returns the record or null. */
export function verifyXferProof(stateRoot: Uint8Array, item: ReportItem): XferRecord | null {
  let rec: XferRecord;
  try {
    rec = decodeXferRecord(item.record);
  } catch {
    return null;
  }
  return verifyStateProof(stateRoot, { key: xferRecordKey(rec.info.id), value: item.record, nodes: item.proof }) ? rec : null;
}
