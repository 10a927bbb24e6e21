import { SCHEMES, generateKeyPairOnShard, isAddressString, parseAddress, randomSeed, type SchemeName } from '@qnexus/crypto';
import { QnexusError, type TxMsg } from '@qnexus/types';
import { FAUCET_KIND, faucetDripMsg } from '@qnexus/module-faucet';
import { ApiError } from './errors.js';
import type { QnexusClient } from './client.js';
import { signTx, type SigningKey } from './tx.js';
import type { TxInfo } from './types.js';

/** The faucet module's drip request kind (id 5, message 1). */
export const FAUCET_DRIP_KIND = FAUCET_KIND.drip;

/** The message of a drip request for `to` (`qn…`). Throws TX_MALFORMED for a bad address. */
export function faucetDripPayload(to: string): TxMsg {
  if (!isAddressString(to)) throw new QnexusError('TX_MALFORMED', `invalid address ${JSON.stringify(to)}: expected qn followed by 40 lowercase hex characters`);
  return faucetDripMsg({ to: parseAddress(to) });
}

export interface RequestDripOptions {
  /** The chain's signature scheme (default: the client's genesis scheme, else ml-dsa-44; on TX_WRONG_SCHEME the others are tried). */
  scheme?: SchemeName;
  /** Default: from the node's `/v1/status`. */
  chainId?: string;
  /** The node's shard and the shard count (default: from `/v1/shards`). */
  shard?: number;
  shardCount?: number;
  /** Most throwaway keys generated to find one of the node's shard (default 64 × shardCount). */
  maxKeys?: number;
  /** Wait until the request is included or final (default: do not wait). */
  until?: 'included' | 'final';
  timeoutMs?: number;
  /** Seeds of the throwaway keys (default: random); tests pass a deterministic one. */
  seed?: () => Uint8Array;
}

export interface DripResult {
  /** The request's transaction hash (on another shard than the faucet's: also its xcall id). */
  hash: string;
  /** The throwaway key's address that signed it (it holds nothing; nonce 0, fee 0). */
  from: string;
  /** The shard of the node it was submitted to. */
  shard: number;
  /** With `until`: the transaction as the node reports it then. */
  tx?: TxInfo;
}

/**
 * Ask the faucet for a drip to `address`: generate a throwaway key whose address lives on the
 * shard of the node `client` talks to (fresh keys until one does; bounded), sign the feeless drip
 * request with it (fee 0, nonce 0) and submit it. The faucet's limits answer refusals with their
 * codes (ApiError FAUCET_COOLDOWN, FAUCET_CAP, FAUCET_BLOCK_LIMIT, FAUCET_EPOCH_BUDGET, FAUCET_EMPTY),
 * at submission or, with `until`, as TX_REJECTED. On a node of another shard than the faucet's,
 * the drip reaches the address through the beacon's two-phase commit a few slots later.
 */
export async function requestDrip(client: QnexusClient, address: string, opts: RequestDripOptions = {}): Promise<DripResult> {
  const payload = faucetDripPayload(address);
  const chainId = opts.chainId ?? (await client.status()).chainId;
  let shard = opts.shard;
  let shardCount = opts.shardCount;
  if (shard === undefined || shardCount === undefined) {
    const sh = await client.shards();
    shard ??= sh.shard;
    shardCount ??= sh.shardCount;
  }
  const first = opts.scheme ?? client.genesis?.scheme ?? 'ml-dsa-44';
  const schemes = [first, ...SCHEMES.filter((s) => s !== first && opts.scheme === undefined)];
  const maxKeys = opts.maxKeys ?? 64 * Math.max(1, shardCount);
  for (const scheme of schemes) {
    const key = throwawayKey(scheme, shard, shardCount, maxKeys, opts.seed ?? randomSeed);
    const built = signTx({ key, chainId, fee: 0n, nonce: 0n }, payload);
    try {
      await client.submitTx(built.raw);
    } catch (e) {
      // Only a chain of another scheme makes the next one worth trying.
      if (e instanceof ApiError && e.code === 'TX_WRONG_SCHEME' && scheme !== schemes[schemes.length - 1]) continue;
      throw e;
    }
    const result: DripResult = { hash: built.hash, from: built.from, shard };
    if (opts.until) {
      const w: { until: 'included' | 'final'; timeoutMs?: number } = { until: opts.until };
      if (opts.timeoutMs !== undefined) w.timeoutMs = opts.timeoutMs;
      result.tx = await client.waitForTx(built.hash, w);
    }
    return result;
  }
  throw new QnexusError('TX_WRONG_SCHEME', 'the node accepted none of the ML-DSA schemes');
}

/** A fresh key of `scheme` whose address lives on `shard` (of `shardCount`); INTERNAL after `maxKeys` tries. */
export function throwawayKey(scheme: SchemeName, shard: number, shardCount: number, maxKeys: number, seed: () => Uint8Array = randomSeed): SigningKey {
  const k = generateKeyPairOnShard(scheme, shard, shardCount, maxKeys, seed);
  if (!k) throw new QnexusError('INTERNAL', `no key of shard ${shard} of ${shardCount} in ${maxKeys} tries`);
  return { publicKey: k.publicKey, secretKey: k.secretKey, scheme };
}
