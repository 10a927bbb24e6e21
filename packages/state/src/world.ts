import { fromHex } from '@qnexus/crypto';
import { decodeXferRecord, verifyCountedProof, type ReportItem, type XferRecord } from '@qnexus/types';
import { bank } from './modules/bank/keeper.js';
import { XFER_RECORD_PREFIX, xfer, xferRecordKey } from './modules/xfer/keeper.js';
import { Branch, CommittedState, MAX_RANGE, ModuleStore, entryLeaf, type KVReader, type KeyHex, type StateProof, type Writes } from './store.js';

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
}

/** The committed state of one shard: the key-value entries with their commitment, and the built-ins' reads. */
export class WorldState extends StateView {
  private constructor(readonly kv: CommittedState) {
    super(kv);
  }

  static fromEntries(entries: Iterable<[KeyHex, Uint8Array]>): WorldState {
    return new WorldState(CommittedState.fromEntries(entries));
  }

  apply(ch: StateChanges): void {
    this.kv.apply(ch.writes);
  }

  rootWith(ch?: StateChanges): Uint8Array {
    return this.kv.rootWith(ch?.writes);
  }

  root(): Uint8Array {
    return this.kv.root();
  }

  prove(keys: readonly Uint8Array[]): StateProof[] {
    return this.kv.prove(keys);
  }

  xferRecords(): XferRecord[] {
    return xfer.records(this, MAX_RANGE);
  }

  /** Inclusion proofs of transfer records against `root()`, for the beacon. Unknown ids are skipped. */
  proveXfers(idHexes: readonly string[]): ReportItem[] {
    const known = idHexes.filter((id) => this.kv.get(XFER_RECORD_PREFIX + id) !== undefined);
    return this.kv.prove(known.map((id) => xferRecordKey(fromHex(id)))).map((p) => ({ record: p.value!, proof: p.entries[0]!.proof }));
  }
}

/** Check a transfer record's inclusion proof against a (certified) state root; returns the record or null. */
export function verifyXferProof(stateRoot: Uint8Array, item: ReportItem): XferRecord | null {
  let rec: XferRecord;
  try {
    rec = decodeXferRecord(item.record);
  } catch {
    return null;
  }
  return verifyCountedProof(entryLeaf(xferRecordKey(rec.info.id), item.record), item.proof, stateRoot) ? rec : null;
}
