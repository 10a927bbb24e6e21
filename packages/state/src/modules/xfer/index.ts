import { bytesEqual, formatAddress, homeShard, toHex } from '@qnexus/crypto';
import {
  BEACON_SHARD,
  QnexusError,
  XDECISION_KIND,
  XPREPARE_KIND,
  XFER_MODULE_ID,
  encodeXferInfo,
  readXferInfo,
  xferInfoEqual,
  type TxEnvelope,
  type XferInfo,
  type XferRecord,
} from '@qnexus/types';
import type { ExecCtx, StateParams } from '../../ctx.js';
import { msg, type Module, type XferOpDef } from '../../module.js';
import { NATIVE_DENOM, bank, moduleAccount } from '../bank/keeper.js';
import { xfer } from './keeper.js';

export { xfer, xferRecordKey, XFER_RECORD_PREFIX, XFER_RETENTION_SLOTS, XFER_PRUNES_PER_BLOCK, type XferCounters, type XferOutcome, type XferPruneStats } from './keeper.js';

/**
 * xfer: the two-phase-commit engine every cross-shard operation goes
 * through. It owns the records (one per operation and side; a settled one is
 * pruned after a retention window and leaves a tombstone until replays of it
 * can no longer be valid, so replays are refused throughout), the generic escrow of `amount` of `denom`, the beacon's prepare
 * and decision entries, deadlines and the proofs the beacon checks (the
 * records are state entries). What an operation *does* comes from its op's
 * callbacks (XferOpDef), the way ibc-go's core owns packets and an app only
 * supplies OnRecv/OnAck/OnTimeout.
 */

/** Looks up an operation's definition: handed to the engine by the host, which knows every module. */
export type XferOpLookup = (module: number, op: number) => XferOpDef | undefined;

const ZERO_ADDRESS_HEX = '00'.repeat(20);
const EMPTY = new Uint8Array(0);

function opOf(ops: XferOpLookup, x: XferInfo): XferOpDef {
  const d = ops(x.module, x.op);
  if (!d) throw new QnexusError('TX_MALFORMED', `unknown cross-shard operation ${x.module}/${x.op}`);
  return d;
}

/** The operation's route fits its shards (the beacon is BEACON_SHARD, never a regular shard). */
function shardsFit(d: XferOpDef, x: XferInfo, p: StateParams): boolean {
  const isShard = (s: number) => s < p.shardCount;
  switch (d.route) {
    case 'shard-shard':
      return isShard(x.srcShard) && isShard(x.dstShard) && x.srcShard !== x.dstShard;
    case 'shard-beacon':
      return isShard(x.srcShard) && x.dstShard === BEACON_SHARD;
    case 'beacon-shard':
      return x.srcShard === BEACON_SHARD && isShard(x.dstShard);
  }
}

/**
 * Stateless shape of a system entry: signed by the beacon key, nonce and fee
 * 0, a known operation on shards that fit its route, a payload its op accepts,
 * and for this shard. A prepare is only ever asked of a shard destination.
 */
function checkSystemEntry(ops: XferOpLookup, prepare: boolean, x: XferInfo, env: TxEnvelope, p: StateParams): void {
  const b = env.tx.body;
  const what = prepare ? 'xprepare' : 'xdecision';
  // A keyless body names no key: never the beacon's (the host refuses it before this too).
  if (b.publicKey === undefined || toHex(b.publicKey) !== toHex(p.beaconPublicKey)) throw new QnexusError('XS_UNAUTHORIZED', `${what} entries must be signed by the genesis beacon key`);
  if (b.nonce !== 0n || b.fee !== 0n) throw new QnexusError('TX_MALFORMED', 'beacon entries carry nonce 0 and fee 0');
  const d = opOf(ops, x);
  if (prepare && d.route === 'shard-beacon') throw new QnexusError('TX_MALFORMED', `a ${d.name} transfer has the beacon as its destination: nothing to prepare on a shard`);
  if (!shardsFit(d, x, p)) throw new QnexusError('TX_MALFORMED', `${d.name} transfer shards ${x.srcShard} -> ${x.dstShard} are invalid`);
  if (!(d.checkPayload ? d.checkPayload(x, p) : x.payload.length === 0)) throw new QnexusError('TX_MALFORMED', `${d.name} transfer payload is malformed`);
  if (prepare ? x.dstShard !== p.shard : x.srcShard !== p.shard && x.dstShard !== p.shard) {
    throw new QnexusError('XS_WRONG_SHARD', `${what} for ${d.name} ${toHex(x.id).slice(0, 16)} is not for shard ${p.shard}`);
  }
}

/** Why a destination refuses a credit, or null to accept. Deterministic in (state, entry, block). */
function refusal(ctx: ExecCtx, d: XferOpDef, x: XferInfo, isModuleAccount: (a: Uint8Array) => boolean): string | null {
  const p = ctx.params;
  if (d.toModule !== undefined) {
    if (!bytesEqual(x.to, moduleAccount(d.toModule))) return 'TX_BAD_RECIPIENT';
  } else if (homeShard(x.to, p.shardCount) !== p.shard) return 'XS_WRONG_SHARD';
  // Only an xcall of the module itself credits a module account (its books must keep matching its balance).
  else if (isModuleAccount(x.to)) return 'TX_BAD_RECIPIENT';
  // The all-zero address is reserved (nobody holds its key): crediting it would destroy value silently.
  if (toHex(x.to) === ZERO_ADDRESS_HEX) return 'TX_BAD_RECIPIENT';
  if (!bank.canCredit(ctx, x.to, x.amount, x.denom)) return 'TX_BAD_AMOUNT';
  if (ctx.block.slot > x.deadlineSlot) return 'XS_DEADLINE_PASSED';
  return d.prepare ? d.prepare(ctx, x) : null;
}

/** The engine's operations, for modules that start cross-shard operations (handed to them at wiring). */
export interface XferKeeper {
  /**
   * Start an operation on this shard (the source): escrow `amount` of `denom`
   * from `payer` under a new source record. Throws XS_DUPLICATE for a known id.
   */
  open(ctx: ExecCtx, info: XferInfo, payer: Uint8Array): void;
  /** An operation's id, destination and deadline filled in for a transaction of this block. */
  infoFor(ctx: ExecCtx, env: TxEnvelope, o: { module: number; op: number; denom: string; dstShard: number; to: Uint8Array; amount: bigint; payload?: Uint8Array }): XferInfo;
}

/** The engine's keeper, over the op definitions the host knows (so `open` runs the op's `lock`). */
export function xferKeeperOf(ops: XferOpLookup): XferKeeper {
  return {
    open(ctx, info, payer) {
      if (xfer.record(ctx, toHex(info.id))) throw new QnexusError('XS_DUPLICATE', 'transfer already recorded');
      const d = opOf(ops, info);
      if (info.amount > 0n) bank.debit(ctx, payer, info.amount, info.denom);
      xfer.add(ctx, 'escrow', info.amount, info.denom);
      d.lock?.(ctx, info);
      xfer.setRecord(ctx, { role: 'source', info, prepare: 'accepted', reason: '', decision: 'none', preparedHeight: ctx.block.height, decidedHeight: 0 });
    },
    infoFor: infoFor,
  };
}

function infoFor(ctx: ExecCtx, env: TxEnvelope, o: Parameters<XferKeeper['infoFor']>[2]): XferInfo {
  return {
    module: o.module,
    op: o.op,
    denom: o.denom,
    id: env.hash,
    srcShard: ctx.params.shard,
    dstShard: o.dstShard,
    from: env.from,
    to: o.to,
    amount: o.amount,
    deadlineSlot: ctx.block.slot + ctx.params.xferTimeoutSlots,
    payload: o.payload ?? EMPTY,
  };
}


interface PrepareMsg {
  xfer: XferInfo;
}
interface DecisionMsg {
  xfer: XferInfo;
  commit: boolean;
}

/** The xfer module: the beacon's prepare and decision entries, on the op lookup the host builds from every module. */
export function xferModule(ops: XferOpLookup, isModuleAccount: (a: Uint8Array) => boolean = () => false): Module {
  const entryJson = (x: XferInfo) => ({
    from: formatAddress(x.from),
    to: formatAddress(x.to),
    amount: x.amount.toString(),
    transfer: toHex(x.id),
    transferKind: ops(x.module, x.op)?.name ?? `${x.module}/${x.op}`,
  });
  return {
    name: 'xfer',
    id: XFER_MODULE_ID,
    msgs: [
      msg<PrepareMsg>({
        type: XPREPARE_KIND & 0xff,
        name: 'xprepare',
        encode: (w, p) => void encodeXferInfo(w, p.xfer),
        decode: (r) => ({ xfer: readXferInfo(r) }),
        validate: (p, env, params) => checkSystemEntry(ops, true, p.xfer, env, params),
        json: (p) => entryJson(p.xfer),
        handle({ ctx }, { xfer: x }) {
          const id = toHex(x.id);
          const rec = xfer.record(ctx, id);
          if (rec) throw new QnexusError(rec.decision !== 'none' ? 'XS_ALREADY_DECIDED' : 'XS_DUPLICATE', `transfer ${id.slice(0, 16)} is already ${rec.decision !== 'none' ? 'decided' : 'prepared'} here`);
          // A pruned or long-expired transfer is not prepared (not even refused) again.
          xfer.refuseForgotten(ctx, x);
          // A refusal is an outcome, not an error: it is recorded (and proven to the beacon) like an acceptance.
          const probe = ctx.child();
          let why: string | null;
          try {
            why = refusal(probe, opOf(ops, x), x, isModuleAccount);
            if (!why) probe.kv.commit();
          } catch (e) {
            if (!(e instanceof QnexusError)) throw e;
            why = e.code;
          }
          xfer.setRecord(ctx, { role: 'destination', info: x, prepare: why ? 'refused' : 'accepted', reason: why ?? '', decision: 'none', preparedHeight: ctx.block.height, decidedHeight: 0 });
        },
      }),
      msg<DecisionMsg>({
        type: XDECISION_KIND & 0xff,
        name: 'xdecision',
        encode: (w, p) => void encodeXferInfo(w, p.xfer).u8(p.commit ? 1 : 0),
        decode: (r) => {
          const x = readXferInfo(r);
          const c = r.u8('decision');
          if (c > 1) throw new QnexusError('MALFORMED', `bad decision flag ${c}`);
          return { xfer: x, commit: c === 1 };
        },
        validate: (p, env, params) => checkSystemEntry(ops, false, p.xfer, env, params),
        json: (p) => ({ ...entryJson(p.xfer), decision: p.commit ? 'commit' : 'abort' }),
        handle({ ctx }, { xfer: x, commit }) {
          const p = ctx.params;
          const d = opOf(ops, x);
          const id = toHex(x.id);
          const rec = xfer.record(ctx, id);
          if (rec && !xferInfoEqual(rec.info, x)) throw new QnexusError('XS_MISMATCH', `decision for ${id.slice(0, 16)} disagrees with the recorded transfer`);
          if (rec && rec.decision !== 'none') throw new QnexusError('XS_ALREADY_DECIDED', `transfer ${id.slice(0, 16)} was already decided (${rec.decision})`);
          // Without a record: not a pruned transfer's replay (which would otherwise create an aborted one).
          if (!rec) xfer.refuseForgotten(ctx, x);
          if (x.srcShard === p.shard) {
            if (!rec || rec.role !== 'source') throw new QnexusError('XS_UNKNOWN_TRANSFER', `no escrow for transfer ${id.slice(0, 16)}`);
            xfer.add(ctx, 'escrow', -x.amount, x.denom);
            if (commit) xfer.add(ctx, 'exported', x.amount, x.denom);
            else if (x.amount > 0n) bank.credit(ctx, d.refundTo ? d.refundTo(x) : x.from, x.amount, x.denom);
            d.settleSource?.(ctx, x, commit);
          } else if (commit) {
            if (!rec || rec.prepare !== 'accepted') throw new QnexusError('XS_NOT_PREPARED', `commit for transfer ${id.slice(0, 16)} that this shard did not accept`);
            bank.credit(ctx, x.to, x.amount, x.denom);
            xfer.add(ctx, 'imported', x.amount, x.denom);
            // A denom first seen here by import gets its supply record, so its identity is checked
            // (and listed by /v1/supply) on this shard too.
            if (x.denom !== NATIVE_DENOM && !bank.hasSupply(ctx, x.denom)) bank.setSupply(ctx, x.denom, { genesis: 0n, minted: 0n, burned: 0n });
            d.settleDestination?.(ctx, x, true);
          } else if (rec && rec.prepare === 'accepted') {
            d.settleDestination?.(ctx, x, false);
          }
          const base: XferRecord = rec ?? { role: 'destination', info: x, prepare: 'none', reason: '', decision: 'none', preparedHeight: 0, decidedHeight: 0 };
          xfer.setRecord(ctx, { ...base, decision: commit ? 'commit' : 'abort', decidedHeight: ctx.block.height });
          // Settled here (the source's escrow with it): pruned once nothing can need the record again.
          xfer.schedulePrune(ctx, x);
        },
      }),
    ],
    // Pruning is consensus state: the same records go in the same block on every node.
    endBlock(ctx) {
      xfer.prune(ctx);
    },
  };
}
