import { ADDRESS_BYTES, addressFromPublicKey, formatAddress, fromHex, isAddressString, parseAddress, schemeLengths, signingBytes, toHex } from '@qnexus/crypto';
import { BEACON_SHARD, MAX_PUBLIC_KEY_BYTES, MAX_SIGNATURE_BYTES, QnexusError, Writer, CODEC_VERSION, type Reader, type TxMsg, type XferInfo } from '@qnexus/types';
import { MODULE_IDS, NATIVE_DENOM, feesRecordId, msg, splitFee, type ExecCtx, type HostKeepers, type Module } from '@qnexus/state';
import { FEE_ACCOUNT, MAX_PENDING_PROPOSERS, fees } from './fees.js';

export { FEE_ACCOUNT, fees } from './fees.js';

/**
 * staking: bond stake to a validator key (the key consents by signature),
 * ask to leave, and the proposer fee roll. Stakes, exits and each epoch's
 * tips travel to the beacon through the 2PC engine as this module's ops; the
 * beacon's validator registry is the participant on the other side
 * (docs/staking.md). Releases (stake and rewards paid out after unbonding)
 * come back as the `release` op.
 */
export const STAKING_ID = MODULE_IDS.staking;
export const STAKING_MSG = { stake: 1, unstake: 2 } as const;
export const STAKING_KIND = { stake: (STAKING_ID << 8) | STAKING_MSG.stake, unstake: (STAKING_ID << 8) | STAKING_MSG.unstake } as const;
/** Cross-shard ops: what the beacon registry receives (stake, unstake, fees) and sends (release). */
export const STAKING_OP = { stake: 1, unstake: 2, fees: 3, release: 4 } as const;
export type StakingOpName = keyof typeof STAKING_OP;

/** The op's name of a record of this module, or null for another module's. */
export function stakingOpName(x: Pick<XferInfo, 'module' | 'op'>): StakingOpName | null {
  if (x.module !== STAKING_ID) return null;
  for (const [n, v] of Object.entries(STAKING_OP)) if (v === x.op) return n as StakingOpName;
  return null;
}

/**
 * Bond `amount` from the signer (the funding, "home" account) to the validator
 * key `validatorPublicKey`, which consents by signing
 * `stakeConsentSigningBytes(chainId, funder, validatorPublicKey)`, so nobody can
 * be made a validator (or have stake attributed to them) without their key.
 */
export interface StakeMsg {
  validatorPublicKey: Uint8Array;
  amount: bigint;
  validatorSignature: Uint8Array;
}

/** Ask the beacon to take `validator` out of the committees; signed by its home account or by the validator key. */
export interface UnstakeMsg {
  validator: Uint8Array;
}

/** The bytes a validator key signs to consent to being staked by `funder`. */
export function stakeConsentSigningBytes(chainId: string, funder: Uint8Array, validatorPublicKey: Uint8Array): Uint8Array {
  return signingBytes(chainId, 'stake', new Writer(validatorPublicKey.length + 64).u8(CODEC_VERSION).fixed(funder, ADDRESS_BYTES).bytes(validatorPublicKey).finish());
}

/** A proposer address parameter of a query; BAD_REQUEST when malformed. */
function proposerParam(address: string | undefined): Uint8Array {
  if (!isAddressString(address ?? '')) throw new QnexusError('BAD_REQUEST', 'proposer must be qn followed by 40 lowercase hex characters');
  return parseAddress(address!);
}

/** One codec per message, used by the module's definitions and the client builders alike. */
const stakeCodec = {
  encode: (w: Writer, p: StakeMsg) => void w.bytes(p.validatorPublicKey).u64(p.amount).bytes(p.validatorSignature),
  decode: (r: Reader): StakeMsg => ({
    validatorPublicKey: r.bytes(MAX_PUBLIC_KEY_BYTES, 'validator public key'),
    amount: r.u64('amount'),
    validatorSignature: r.bytes(MAX_SIGNATURE_BYTES, 'validator signature'),
  }),
};
const unstakeCodec = {
  encode: (w: Writer, p: UnstakeMsg) => void w.fixed(p.validator, ADDRESS_BYTES),
  decode: (r: Reader): UnstakeMsg => ({ validator: r.fixed(ADDRESS_BYTES, 'validator') }),
};

/** Client side: the message of a stake transaction. */
export function stakeMsg(m: StakeMsg): TxMsg {
  const w = new Writer(m.validatorPublicKey.length + m.validatorSignature.length + 32);
  stakeCodec.encode(w, m);
  return { kind: STAKING_KIND.stake, msg: w.finish() };
}

/** Client side: the message of an unstake transaction. */
export function unstakeMsg(m: UnstakeMsg): TxMsg {
  const w = new Writer(24);
  unstakeCodec.encode(w, m);
  return { kind: STAKING_KIND.unstake, msg: w.finish() };
}

/** What the staking module needs from the host (Cosmos' expected keepers). */
export type StakingKeepers = Pick<HostKeepers, 'bank' | 'xfer'>;

export function stakingModule(k: StakingKeepers): Module {
  const open = (ctx: ExecCtx, x: XferInfo, payer: Uint8Array) => k.xfer.open(ctx, x, payer);
  return {
    name: 'staking',
    id: STAKING_ID,
    accounts: ['staking/fees'],
    msgs: [
      msg<StakeMsg>({
        type: STAKING_MSG.stake,
        name: 'stake',
        ...stakeCodec,
        validate(p, _env, params) {
          if (p.amount < params.minStake) throw new QnexusError('STAKE_TOO_LOW', `stake ${p.amount} is below the minimum ${params.minStake}`);
          const len = schemeLengths(params.scheme);
          if (p.validatorPublicKey.length !== len.publicKey || p.validatorSignature.length !== len.signature) {
            throw new QnexusError('TX_WRONG_SCHEME', `the validator key and its consent signature must be ${params.scheme} (${len.publicKey} B, ${len.signature} B)`);
          }
        },
        signatures: (p, env) => [
          {
            label: 'stake-consent',
            publicKey: p.validatorPublicKey,
            message: stakeConsentSigningBytes(env.tx.body.chainId, env.from, p.validatorPublicKey),
            signature: p.validatorSignature,
            code: 'STAKE_BAD_CONSENT',
          },
        ],
        spend: (p) => p.amount,
        handle({ ctx, env }, p) {
          const to = addressFromPublicKey(p.validatorPublicKey);
          open(ctx, k.xfer.infoFor(ctx, env, { module: STAKING_ID, op: STAKING_OP.stake, denom: NATIVE_DENOM, dstShard: BEACON_SHARD, to, amount: p.amount, payload: p.validatorPublicKey }), env.from);
        },
        xferPreview: (p) => ({ kind: 'stake', to: addressFromPublicKey(p.validatorPublicKey), amount: p.amount, dstShard: BEACON_SHARD }),
        json(p) {
          // The signer funds (and is the home of) the validator; `to` names the validator too (the record's recipient).
          const validator = formatAddress(addressFromPublicKey(p.validatorPublicKey));
          return { to: validator, validator, validatorPublicKey: toHex(p.validatorPublicKey), amount: p.amount.toString() };
        },
      }),
      msg<UnstakeMsg>({
        type: STAKING_MSG.unstake,
        name: 'unstake',
        ...unstakeCodec,
        client: {
          args: [{ name: 'validator', help: 'the validator to take out (qn…)' }],
          build: (a) => {
            if (!isAddressString(a.validator ?? '')) throw new QnexusError('TX_MALFORMED', `invalid validator ${JSON.stringify(a.validator)}`);
            return { validator: parseAddress(a.validator!) };
          },
        },
        handle({ ctx, env }, p) {
          open(ctx, k.xfer.infoFor(ctx, env, { module: STAKING_ID, op: STAKING_OP.unstake, denom: NATIVE_DENOM, dstShard: BEACON_SHARD, to: p.validator, amount: 0n }), env.from);
        },
        xferPreview: (p) => ({ kind: 'unstake', to: p.validator, amount: 0n, dstShard: BEACON_SHARD }),
        json: (p) => ({ to: formatAddress(p.validator), validator: formatAddress(p.validator), amount: '0' }),
      }),
    ],
    xfers: [
      {
        op: STAKING_OP.stake,
        name: 'stake',
        route: 'shard-beacon',
        // The payload is the validator's public key, whose address is the record's recipient.
        checkPayload: (x, params) => x.payload.length === schemeLengths(params.scheme).publicKey && x.denom === NATIVE_DENOM,
      },
      { op: STAKING_OP.unstake, name: 'unstake', route: 'shard-beacon', checkPayload: (x) => x.payload.length === 0 && x.amount === 0n },
      {
        op: STAKING_OP.fees,
        name: 'fees',
        route: 'shard-beacon',
        // An aborted roll goes back into the proposer's pending tips: sent again at the next epoch change.
        refundTo: () => FEE_ACCOUNT,
        settleSource(ctx, x, commit) {
          if (commit) return;
          const who = toHex(x.from);
          fees.setPending(ctx, who, fees.pending(ctx, who) + x.amount);
        },
      },
      { op: STAKING_OP.release, name: 'release', route: 'beacon-shard' },
    ],
    errors: {},
    queries: [
      {
        name: 'pending-fees',
        summary: "Proposers' tips this shard holds for the beacon (sent at the next epoch change), and the epoch they accrued in",
        params: [],
        response: {
          type: 'object',
          title: 'StakingPendingFees',
          additionalProperties: false,
          required: ['epoch', 'pending'],
          properties: {
            epoch: { type: 'integer', minimum: 0 },
            pending: {
              type: 'array',
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['proposer', 'amount'],
                properties: { proposer: { type: 'string', pattern: '^qn[0-9a-f]{40}$' }, amount: { type: 'string', pattern: '^[0-9]+$' } },
              },
            },
          },
        },
        // Bounded by MAX_PENDING_PROPOSERS (the roll's own bound): one entry per proposer that earned tips this epoch.
        run: ({ store }) => {
          const reads = { store: () => store };
          return {
            epoch: fees.epoch(reads),
            pending: fees.allPending(reads).map(([hex, amount]) => ({ proposer: formatAddress(fromHex(hex)), amount: amount.toString() })),
          };
        },
      },
      {
        name: 'pending-fee',
        summary: "One proposer's tips this shard holds for the beacon, and the epoch they accrued in; provable with ?proof=true",
        params: ['proposer'],
        response: {
          type: 'object',
          title: 'StakingPendingFee',
          additionalProperties: false,
          required: ['proposer', 'epoch', 'amount'],
          properties: {
            proposer: { type: 'string', pattern: '^qn[0-9a-f]{40}$' },
            epoch: { type: 'integer', minimum: 0 },
            amount: { type: 'string', pattern: '^[0-9]+$' },
          },
        },
        // Two keys, so the answer is provable: the proposer's pending tips and the fee epoch.
        proofKeys: ({ proposer }) => fees.proofKeys(proposerParam(proposer)),
        run: ({ store }, { proposer }) => {
          const hex = toHex(proposerParam(proposer));
          const reads = { store: () => store };
          return { proposer, epoch: fees.epoch(reads), amount: fees.pending(reads, hex).toString() };
        },
      },
    ],
    /** Every fee: `feeBurnBps` of it is burned, the rest is the block proposer's tip, held in the fee account until the roll. */
    onFee(ctx, fee) {
      const { burn, tip } = splitFee(fee, ctx.params.feeBurnBps);
      k.bank.burnFees(ctx, burn);
      if (tip > 0n) {
        k.bank.credit(ctx, FEE_ACCOUNT, tip);
        const who = toHex(ctx.block.proposer);
        fees.setPending(ctx, who, fees.pending(ctx, who) + tip);
      }
      return 0n;
    },
    /**
     * The fee roll: at the first block of an epoch later than the one the
     * pending tips accrued in, each proposer's tips become one `fees` record to
     * the beacon (escrowed from the fee account), in address order; then the
     * fee epoch moves to this block's epoch. A no-op within an epoch.
     */
    beginBlock(ctx) {
      const p = ctx.params;
      const epoch = Math.floor(ctx.block.slot / p.epochLength);
      const feeEpoch = fees.epoch(ctx);
      if (epoch <= feeEpoch) return;
      for (const [addrHex, amount] of fees.allPending(ctx)) {
        const addr = fromHex(addrHex);
        const info: XferInfo = {
          module: STAKING_ID,
          op: STAKING_OP.fees,
          denom: NATIVE_DENOM,
          // Unique: feeEpoch strictly increases with every roll, so (epoch, proposer) names one record.
          id: feesRecordId(p.chainId, p.shard, feeEpoch, addr),
          srcShard: p.shard,
          dstShard: BEACON_SHARD,
          from: addr,
          to: addr,
          amount,
          deadlineSlot: ctx.block.slot + p.xferTimeoutSlots,
          payload: new Uint8Array(0),
        };
        fees.setPending(ctx, addrHex, 0n);
        open(ctx, info, FEE_ACCOUNT);
      }
      fees.setEpoch(ctx, epoch);
    },
    invariants(ctx) {
      let owed = 0n;
      const pending = fees.allPending(ctx);
      if (pending.length >= MAX_PENDING_PROPOSERS) return;
      for (const [, v] of pending) owed += v;
      const held = fees.held(ctx);
      if (held !== owed) throw new Error(`fee account holds ${held}, proposers are owed ${owed}`);
    },
  };
}
