// Several shards in one process, with a simulated beacon driving the 2PC of every cross-shard
// operation: for the modules' randomized multi-shard tests (not a test file itself). Each slot every
// shard executes one block through the real state machine (begin hooks, transactions, end hooks,
// the supply identity of every denom and every module's invariants), and the beacon reads each
// block's new records and queues prepare and decision entries for the next slot, as the real
// coordinator does from proven reports. No signatures are checked (the state machine checks none).
import { addressFromPublicKey, generateKeyPair, schemeLengths, sha256, toHex, utf8 } from '@qnexus/crypto';
import { BEACON_SHARD, QnexusError, encodeTx, encodeXDecision, encodeXPrepare, openTx, type Genesis, type TxEnvelope, type TxMsg, type XferInfo } from '@qnexus/types';
import { WorldState, stateParams, type DenomTotals, type StateMachine, type StateParams } from '@qnexus/state';

interface Entry {
  info: XferInfo;
  /** The beacon's decision once taken (null: waiting for the destination's prepare). */
  decision: 'commit' | 'abort' | null;
  prepareSent: boolean;
  applied: { src: boolean; dst: boolean };
}

export interface StepOptions {
  /** The beacon aborts this transfer instead of asking its destination to prepare. */
  abortPrepare?: (x: XferInfo) => boolean;
  /** Hold this transfer's prepare for one more slot (asked again next slot): lets deadlines pass. */
  holdPrepare?: (x: XferInfo) => boolean;
}

export interface StepResult {
  /**
   * User transactions that did not take effect, with why: left out by the proposer (`charged`
   * false: the ante failed, nothing paid) or included with their message refused (`charged`
   * true: the fee was paid and the nonce used, nothing else written; host `applyInBlock`).
   */
  skipped: { shard: number; env: TxEnvelope; code: string; message: string; charged: boolean }[];
  /** Transactions included, per shard. */
  applied: TxEnvelope[][];
}

export class ShardSim {
  readonly app: StateMachine;
  readonly genesis: Genesis;
  readonly shardCount: number;
  readonly states: WorldState[];
  readonly params: StateParams[];
  readonly heights: number[];
  /** The slot of the last executed step (0 = genesis). */
  slot = 0;
  private readonly proposers: Uint8Array[];
  private readonly entries = new Map<string, Entry>();
  /** Beacon entries waiting for each shard's next block: prepares first, then decisions. */
  private readonly queue: { prepares: TxEnvelope[]; decisions: TxEnvelope[] }[];
  private readonly sig: Uint8Array;

  constructor(o: { app: StateMachine; genesis: Genesis; params?: (p: StateParams) => StateParams }) {
    this.app = o.app;
    this.genesis = o.genesis;
    this.shardCount = o.genesis.shardCount;
    this.states = Array.from({ length: this.shardCount }, (_, k) => o.app.genesisState(o.genesis, k));
    this.params = Array.from({ length: this.shardCount }, (_, k) => (o.params ? o.params(stateParams(o.genesis, k)) : stateParams(o.genesis, k)));
    this.heights = this.states.map(() => 0);
    this.proposers = Array.from({ length: this.shardCount }, (_, k) => addressFromPublicKey(generateKeyPair(o.genesis.scheme, sha256(utf8(`sim-proposer-${k}`))).publicKey));
    this.queue = this.states.map(() => ({ prepares: [], decisions: [] }));
    this.sig = new Uint8Array(schemeLengths(o.genesis.scheme).signature);
  }

  private system(m: TxMsg): TxEnvelope {
    return openTx(encodeTx({ body: { chainId: this.genesis.chainId, nonce: 0n, fee: 0n, publicKey: this.genesis.beacon.publicKey, payload: m }, signature: this.sig }));
  }

  /** One slot: every shard executes a block of the due beacon entries then `txs[shard]`; the beacon reads the blocks. */
  step(txs: Readonly<Record<number, readonly TxEnvelope[]>> = {}, o: StepOptions = {}): StepResult {
    this.slot++;
    const result: StepResult = { skipped: [], applied: [] };
    for (let k = 0; k < this.shardCount; k++) {
      const q = this.queue[k]!;
      const system = [...q.prepares, ...q.decisions];
      q.prepares = [];
      q.decisions = [];
      const block = { height: this.heights[k]! + 1, slot: this.slot, proposer: this.proposers[k]! };
      const r = this.app.executeApplicable(this.states[k]!, [...system, ...(txs[k] ?? [])], this.params[k]!, block);
      for (const s of r.skipped) {
        // A beacon entry the shard will not take is a bug in the simulated beacon or in the module's op.
        if (system.includes(s.env)) throw new Error(`shard ${k} refused a beacon entry at slot ${this.slot}: ${s.error.code}: ${s.error.message}`);
        result.skipped.push({ shard: k, env: s.env, code: s.error.code, message: s.error.message, charged: false });
      }
      for (const f of r.exec.failed) {
        const env = r.applied[f.index]!;
        if (system.includes(env)) throw new Error(`shard ${k} refused a beacon entry at slot ${this.slot}: ${f.code}: ${f.message}`);
        result.skipped.push({ shard: k, env, code: f.code, message: f.message, charged: true });
      }
      this.states[k]!.apply(r.exec.changes);
      this.heights[k] = block.height;
      result.applied.push(r.applied);
      for (const rec of r.exec.changes.xfers.values()) this.observe(k, rec.role, rec.info, rec.prepare, rec.decision);
    }
    this.dispatch(o);
    return result;
  }

  private observe(shard: number, role: 'source' | 'destination', info: XferInfo, prepare: string, decision: string): void {
    const id = toHex(info.id);
    let e = this.entries.get(id);
    if (!e) {
      if (role !== 'source') throw new Error(`shard ${shard} reported a destination record of ${id.slice(0, 16)} before its source`);
      e = { info, decision: null, prepareSent: false, applied: { src: false, dst: info.dstShard === BEACON_SHARD } };
      if (info.srcShard === BEACON_SHARD) throw new Error('the simulator does not originate beacon transfers');
      this.entries.set(id, e);
    }
    if (decision !== 'none') {
      if (role === 'source') e.applied.src = true;
      else e.applied.dst = true;
      return;
    }
    if (role === 'destination' && e.decision === null && prepare !== 'none') this.decide(e, prepare === 'accepted' ? 'commit' : 'abort');
  }

  private decide(e: Entry, outcome: 'commit' | 'abort'): void {
    e.decision = outcome;
    const d = this.system(encodeXDecision(e.info, outcome === 'commit'));
    if (!e.applied.src) this.queue[e.info.srcShard]!.decisions.push(d);
    if (e.info.dstShard !== BEACON_SHARD && !e.applied.dst) this.queue[e.info.dstShard]!.decisions.push(d);
  }

  /** Prepares (or beacon-side decisions) for every transfer whose source is known and that is not decided yet. */
  private dispatch(o: StepOptions): void {
    for (const e of this.entries.values()) {
      if (e.decision !== null || e.prepareSent) continue;
      if (e.info.dstShard === BEACON_SHARD) {
        // The beacon is the destination (stake, unstake, fees): it accepts what a shard proved.
        this.decide(e, 'commit');
      } else if (o.abortPrepare?.(e.info)) {
        this.decide(e, 'abort');
      } else if (!o.holdPrepare?.(e.info)) {
        e.prepareSent = true;
        this.queue[e.info.dstShard]!.prepares.push(this.system(encodeXPrepare(e.info)));
      }
    }
  }

  /** Transfers not yet applied on both sides. */
  inFlight(): number {
    let n = 0;
    for (const e of this.entries.values()) if (!e.applied.src || !e.applied.dst) n++;
    return n;
  }

  /** Empty slots until nothing is in flight; throws if something still is after `maxSlots`. */
  settle(maxSlots = 50, o: StepOptions = {}): void {
    for (let i = 0; i < maxSlots && this.inFlight() > 0; i++) this.step({}, o);
    if (this.inFlight() > 0) throw new QnexusError('INTERNAL', `${this.inFlight()} transfers still in flight after ${maxSlots} slots`);
  }

  /** Σ committed amounts of `denom` that left the shards for the beacon (stakes, unstakes, fee rolls): exported, never imported by a shard. */
  toBeacon(denom: string): bigint {
    let n = 0n;
    for (const e of this.entries.values()) if (e.info.dstShard === BEACON_SHARD && e.decision === 'commit' && e.info.denom === denom) n += e.info.amount;
    return n;
  }

  /** Each term of a denom's supply identity summed over the shards (escrow is what is in flight). */
  globalSupply(denom: string): Omit<DenomTotals, 'denom'> {
    const sum: Omit<DenomTotals, 'denom'> = { balances: 0n, genesis: 0n, minted: 0n, burned: 0n, escrow: 0n, exported: 0n, imported: 0n };
    for (const s of this.states) {
      const t = s.denomTotals().find((x) => x.denom === denom);
      if (!t) continue;
      for (const k of Object.keys(sum) as (keyof typeof sum)[]) sum[k] += t[k];
    }
    return sum;
  }
}
