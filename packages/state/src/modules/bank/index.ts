import { ADDRESS_BYTES, formatAddress, homeShard, isAddressString, parseAddress, toHex } from '@qnexus/crypto';
import { QnexusError, Writer, decodeWith, type Reader, type TxEnvelope, type TxMsg } from '@qnexus/types';
import { MODULE_IDS, type StateParams } from '../../ctx.js';
import { msg, type Module, type QueryDef } from '../../module.js';

const utf8Decode = (b: Uint8Array) => new TextDecoder().decode(b);
import type { XferKeeper } from '../xfer/index.js';
import { MAX_DENOM_BYTES, NATIVE_DENOM, bank } from './keeper.js';

export * from './keeper.js';

/** A value transfer: `amount` of `denom` to `to` (same shard: `transfer`; another shard: `xtransfer`, through 2PC). */
export interface SendMsg {
  to: Uint8Array;
  amount: bigint;
  denom: string;
}

/** bank's message types and its cross-shard op. */
export const BANK_MSG = { transfer: 1, xtransfer: 2 } as const;
export const BANK_XFER_OP = { transfer: 1 } as const;
export const BANK_KIND = { transfer: (MODULE_IDS.bank << 8) | BANK_MSG.transfer, xtransfer: (MODULE_IDS.bank << 8) | BANK_MSG.xtransfer } as const;

const sendCodec = {
  encode: (w: Writer, p: SendMsg) => void w.fixed(p.to, ADDRESS_BYTES).u64(p.amount).string(p.denom),
  decode: (r: Reader): SendMsg => ({ to: r.fixed(ADDRESS_BYTES, 'recipient'), amount: r.u64('amount'), denom: r.string(MAX_DENOM_BYTES, 'denom') }),
};

/** Client side: the message of a transfer (same shard) or an xtransfer (another shard). */
export function sendMsg(kind: 'transfer' | 'xtransfer', p: { to: Uint8Array; amount: bigint; denom?: string }): TxMsg {
  const w = new Writer(96);
  sendCodec.encode(w, { to: p.to, amount: p.amount, denom: p.denom ?? NATIVE_DENOM });
  return { kind: BANK_KIND[kind], msg: w.finish() };
}

function checkSend(kind: 'transfer' | 'xtransfer', p: SendMsg, env: TxEnvelope, params: StateParams, isModuleAccount: (a: Uint8Array) => boolean): void {
  if (p.amount === 0n) throw new QnexusError('TX_BAD_AMOUNT', 'transfer amount must be positive');
  if (p.denom !== NATIVE_DENOM && !/^[a-z][a-z0-9/._-]{1,63}$/.test(p.denom)) throw new QnexusError('BANK_BAD_DENOM', `invalid denom ${JSON.stringify(p.denom)}`);
  if (toHex(p.to) === toHex(env.from)) throw new QnexusError('TX_SELF_TRANSFER', 'sender and recipient are the same account');
  // A module's account holds what its books say (pools, locks, the faucet): value reaches it only through the module's messages.
  if (isModuleAccount(p.to)) throw new QnexusError('TX_BAD_RECIPIENT', `${formatAddress(p.to)} is a module account: it takes value only through its module's messages`);
  const to = homeShard(p.to, params.shardCount);
  if (kind === 'transfer' && to !== params.shard) {
    throw new QnexusError('TX_CROSS_SHARD', `recipient lives on shard ${to}; a plain transfer stays within shard ${params.shard} (use a cross-shard transfer: qnexus tx xtransfer)`);
  }
  if (kind === 'xtransfer' && to === params.shard) throw new QnexusError('TX_SAME_SHARD', `recipient lives on this shard (${params.shard}); use a plain transfer`);
}

/** The generic client: `--to qn… --amount N [--denom d]`. */
const sendClient = {
  args: [
    { name: 'to', help: 'recipient address (qn…)' },
    { name: 'amount', help: 'amount in base units' },
    { name: 'denom', help: `denomination (default ${NATIVE_DENOM})`, optional: true },
  ],
  build: (a: Readonly<Record<string, string>>): SendMsg => {
    if (!isAddressString(a.to ?? '')) throw new QnexusError('TX_MALFORMED', `invalid recipient ${JSON.stringify(a.to)}: expected qn followed by 40 lowercase hex characters`);
    if (!/^[0-9]{1,20}$/.test(a.amount ?? '') || BigInt(a.amount!) > 0xffffffffffffffffn) throw new QnexusError('TX_BAD_AMOUNT', `invalid amount ${JSON.stringify(a.amount)}`);
    return { to: parseAddress(a.to!), amount: BigInt(a.amount!), denom: a.denom ?? NATIVE_DENOM };
  },
};

const sendJson = (p: SendMsg, env?: TxEnvelope) => ({
  ...(env ? { from: env.fromStr } : {}),
  to: formatAddress(p.to),
  amount: p.amount.toString(),
  ...(p.denom !== NATIVE_DENOM ? { denom: p.denom } : {}),
});

/** The bank module: sends within a shard and across shards (its `transfer` op moves value and nothing else). */
export function bankModule(x: XferKeeper, isModuleAccount: (a: Uint8Array) => boolean = () => false): Module {
  return {
    name: 'bank',
    id: MODULE_IDS.bank,
    msgs: [
      msg<SendMsg>({
        type: BANK_MSG.transfer,
        name: 'transfer',
        ...sendCodec,
        validate: (p, env, params) => checkSend('transfer', p, env, params, isModuleAccount),
        spend: (p) => (p.denom === NATIVE_DENOM ? p.amount : 0n),
        client: sendClient,
        handle: ({ ctx, env }, p) => bank.send(ctx, env.from, p.to, p.amount, p.denom),
        json: (p) => sendJson(p),
      }),
      msg<SendMsg>({
        type: BANK_MSG.xtransfer,
        name: 'xtransfer',
        ...sendCodec,
        validate: (p, env, params) => checkSend('xtransfer', p, env, params, isModuleAccount),
        spend: (p) => (p.denom === NATIVE_DENOM ? p.amount : 0n),
        client: sendClient,
        xferPreview: (p, _env, params) => ({ kind: 'transfer', to: p.to, amount: p.amount, dstShard: homeShard(p.to, params.shardCount) }),
        handle({ ctx, env }, p) {
          const info = x.infoFor(ctx, env, { module: MODULE_IDS.bank, op: BANK_XFER_OP.transfer, denom: p.denom, dstShard: homeShard(p.to, ctx.params.shardCount), to: p.to, amount: p.amount });
          x.open(ctx, info, env.from);
        },
        json: (p) => sendJson(p),
      }),
    ],
    xfers: [{ op: BANK_XFER_OP.transfer, name: 'transfer', route: 'shard-shard' }],
    errors: { BANK_BAD_DENOM: 400, BANK_NOT_DENOM_OWNER: 403 },
    queries: [balancesQuery, balanceQuery],
  };
}

/** Denoms one balances answer lists at most (key order): a bound on the query's work, far above any real account's. */
export const MAX_BALANCES_DENOMS = 256;

const utf8Encode = (t: string) => new TextEncoder().encode(t);
const keyOf = (tag: number, addr: Uint8Array, tail: Uint8Array = new Uint8Array(0)) => {
  const k = new Uint8Array(1 + addr.length + tail.length);
  k[0] = tag;
  k.set(addr, 1);
  k.set(tail, 1 + addr.length);
  return k;
};

/**
 * The bank keys (module-relative) an account's API answer is derived from (`StateView.account`):
 * its record 'a' ‖ address (nonce), its key 'k' ‖ address and its native balance 'b' ‖ address ‖ denom.
 * What `GET /v1/accounts/{address}?proof=true` proves, in this order.
 */
export function bankAccountKeys(addr: Uint8Array): Uint8Array[] {
  return [keyOf(0x61, addr), keyOf(0x6b, addr), keyOf(0x62, addr, utf8Encode(NATIVE_DENOM))];
}

/** An address parameter of a query: well formed, and of this shard (another shard holds nothing of it). */
function homeAddress(address: string | undefined, params: StateParams): Uint8Array {
  if (!isAddressString(address ?? '')) throw new QnexusError('BAD_REQUEST', 'address must be qn followed by 40 lowercase hex characters');
  const addr = parseAddress(address!);
  const home = homeShard(addr, params.shardCount);
  if (home !== params.shard) {
    throw new QnexusError('ACCOUNT_WRONG_SHARD', `${address} lives on shard ${home}; this node serves shard ${params.shard}: ask a node of shard ${home}`, { homeShard: home, shard: params.shard });
  }
  return addr;
}

/** `GET /v1/bank/balances/{address}`: every denom an address holds, on its home shard (another shard holds nothing of it). */
const balancesQuery: QueryDef = {
  name: 'balances',
  summary: 'Every denom an address holds (on its home shard), in denom order',
  params: ['address'],
  response: {
    type: 'object',
    title: 'BankBalances',
    additionalProperties: false,
    required: ['address', 'balances'],
    properties: {
      address: { type: 'string', pattern: '^qn[0-9a-f]{40}$' },
      balances: {
        type: 'array',
        maxItems: MAX_BALANCES_DENOMS,
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['denom', 'amount'],
          properties: { denom: { type: 'string' }, amount: { type: 'string', pattern: '^[0-9]+$' } },
        },
      },
    },
  },
  // A range of keys: no proof (an absent denom cannot be shown absent key by key); `balance` proves one denom.
  run({ store, params }, { address }) {
    const addr = homeAddress(address, params);
    const prefix = keyOf(0x62, addr);
    const balances = store.range(prefix, MAX_BALANCES_DENOMS).map(([k, v]) => ({
      denom: utf8Decode(k.subarray(prefix.length)),
      amount: decodeWith(v, 'balance', (r) => r.u64('balance')).toString(),
    }));
    return { address, balances };
  },
};

/** The key of one balance, 'b' ‖ address ‖ utf8 denom; BAD_REQUEST for a malformed address or denom. */
function balanceKey(address: string | undefined, denom: string | undefined): Uint8Array {
  if (!isAddressString(address ?? '')) throw new QnexusError('BAD_REQUEST', 'address must be qn followed by 40 lowercase hex characters');
  if (denom !== NATIVE_DENOM && !/^[a-z][a-z0-9/._-]{1,63}$/.test(denom ?? '')) throw new QnexusError('BANK_BAD_DENOM', `invalid denom ${JSON.stringify(denom)}`);
  return keyOf(0x62, parseAddress(address!), utf8Encode(denom!));
}

/** `GET /v1/bank/balance/{address}/{denom}`: one balance, provable (`?proof=true`): it reads one key. */
const balanceQuery: QueryDef = {
  name: 'balance',
  summary: "An address's balance of one denom (on its home shard); provable with ?proof=true",
  params: ['address', 'denom'],
  response: {
    type: 'object',
    title: 'BankBalance',
    additionalProperties: false,
    required: ['address', 'denom', 'amount'],
    properties: {
      address: { type: 'string', pattern: '^qn[0-9a-f]{40}$' },
      denom: { type: 'string' },
      amount: { type: 'string', pattern: '^[0-9]+$' },
    },
  },
  proofKeys: ({ address, denom }) => [balanceKey(address, denom)],
  run({ store, params }, { address, denom }) {
    const key = balanceKey(address, denom);
    homeAddress(address, params);
    const v = store.get(key);
    return { address, denom, amount: (v ? decodeWith(v, 'balance', (r) => r.u64('balance')) : 0n).toString() };
  },
};
