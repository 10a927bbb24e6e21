/**
 * The DeFi modules' client side: their typed message builders (each returns a `TxMsg` to sign with
 * `signTx`), and typed reads of their queries through a node (`GET /v1/<module>/<query>/…`). The
 * answers' types state the fields the modules' query schemas promise (each module's README lists
 * them all); the node is untrusted, so numbers stay decimal strings, parsed where they are used.
 */
import type { QnexusClient } from './client.js';

export {
  tokenCreateMsg,
  tokenMintMsg,
  tokenBurnMsg,
  tokenDenom,
  tokenIdFor,
  tokenIdOf,
  tokenHomeShard,
  type TokenCreateMsg,
  type TokenMintMsg,
  type TokenBurnMsg,
} from '@qnexus/module-token';
export { faucetDripMsg, faucetShard, type FaucetDripMsg } from '@qnexus/module-faucet';
export { ammCreateMsg, ammAddMsg, ammRemoveMsg, ammSwapMsg, ammCommitFeeMsg, ammApplyFeeMsg, poolIdOf, lpDenom, FEE_TIERS } from '@qnexus/module-amm';
export { dexCreateMarketMsg, dexPlaceMsg, dexCancelMsg, dexBatchCancelMsg, dexPauseMsg, dexResumeMsg, dexOrderId, dexMarketId } from '@qnexus/module-dex';

/** `GET /v1/token/info/{id}` (on the token's home shard). */
export interface TokenInfo {
  id: string;
  denom: string;
  symbol: string;
  decimals: number;
  maxSupply: string;
  mintAuthority: string;
  creator: string;
  homeShard: number;
  minted: string;
}

/** `GET /v1/amm/pools/{id}` (on the pool's shard). Prices are quote per base, 1e18 fixed point. */
export interface AmmPool {
  id: string;
  shard: number;
  base: string;
  quote: string;
  lpDenom: string;
  reserveBase: string;
  reserveQuote: string;
  totalShares: string;
  feeBps: number;
  admin: string;
  pendingFee: { feeBps: number; committedSlot: string } | null;
  spotPrice: string;
  cumulativePrice: string;
  volume24h: { base: string; quote: string };
  fees24h: { base: string; quote: string };
  prices: { slot: string; price: string }[];
}

/** `GET /v1/amm/quote/{pool}/{denomIn}/{amountIn}`: the output at the current reserves. */
export interface AmmQuote {
  pool: string;
  amountIn: string;
  denomOut: string;
  amountOut: string;
  feeBps: number;
  spotPrice: string;
}

/** `GET /v1/dex/markets/{id}` (on the market's shard). */
export interface DexMarket {
  id: string;
  shard: number;
  base: string;
  quote: string;
  tickSize: string;
  lotSize: string;
  minNotional: string;
  admin: string;
  paused: boolean;
  lastPrice: string;
  trades: string;
  openOrders: number;
}

/** `GET /v1/dex/book/{id}`: aggregated price levels, best first. */
export interface DexBook {
  market: string;
  bids: { price: string; quantity: string; orders: number }[];
  asks: { price: string; quantity: string; orders: number }[];
  lastPrice: string;
}

/** `GET /v1/dex/trades/{id}`: the newest clearing events first. */
export interface DexTrades {
  market: string;
  trades: { seq: string; price: string; quantity: string; height: string }[];
}

const read = <T>(c: QnexusClient, module: string, name: string, params: string[]) => c.moduleQuery(module, name, params) as Promise<unknown> as Promise<T>;

export const tokenInfo = (c: QnexusClient, id: string): Promise<TokenInfo> => read(c, 'token', 'info', [id]);
export const ammPool = (c: QnexusClient, id: string): Promise<AmmPool> => read(c, 'amm', 'pools', [id]);
/** `denomIn` is `base`, `quote` or the denom itself (sent percent-encoded: denoms hold `/`). */
export const ammQuote = (c: QnexusClient, pool: string, denomIn: string, amountIn: bigint): Promise<AmmQuote> => read(c, 'amm', 'quote', [pool, denomIn, amountIn.toString()]);
export const dexMarket = (c: QnexusClient, id: string): Promise<DexMarket> => read(c, 'dex', 'markets', [id]);
export const dexBook = (c: QnexusClient, id: string): Promise<DexBook> => read(c, 'dex', 'book', [id]);
export const dexTrades = (c: QnexusClient, id: string): Promise<DexTrades> => read(c, 'dex', 'trades', [id]);
