import { fromHex, homeShard, isAddressString, isHex, parseAddress, toHex } from '@qnexus/crypto';
import { QnexusError, decodeBlock, openTx, slotAt } from '@qnexus/types';
import type { Chain } from './chain.js';
import type { Engine } from './engine.js';
import type { Mempool } from './mempool.js';
import { ACCOUNT_TXS_PER_ACCOUNT, ACTIVITY_BLOCKS, ExplorerIndex } from './explorer-index.js';
import { implement, parseListLimit, type JsonRoute, type Logger } from '@qnexus/runtime';
import { nodeRoutes as R } from '@qnexus/api';

/** What the explorer's routes read (a subset of the node API's context). */
export interface ExplorerContext {
  chain: Chain;
  engine: Engine;
  mempool: Mempool;
  log?: Logger;
}

/** The longest search query considered (an address is 42 characters, a hash 64, with 0x 66). */
export const MAX_SEARCH_QUERY = 130;

const indexes = new WeakMap<Engine, ExplorerIndex>();

/**
 * This node's explorer index, created on first use: fed by every commit from then on and
 * seeded once from the newest ACTIVITY_BLOCKS stored blocks (bounded work, in the background).
 * Created lazily so a node nobody browses pays nothing for it.
 */
export function explorerIndexOf(c: ExplorerContext): ExplorerIndex {
  let ix = indexes.get(c.engine);
  if (ix) return ix;
  const index = new ExplorerIndex();
  indexes.set(c.engine, index);
  c.engine.commitListeners.push((cand) => index.noteBlock(cand.block.header.height, cand.block.header.slot, cand.envs));
  void index
    .backfill(c.chain.headHeight, async (h) => {
      const raw = await c.chain.store.blockAtHeight(h);
      if (!raw) return undefined;
      const b = decodeBlock(raw);
      return { slot: b.header.slot, envs: b.txs.map((t) => openTx(t)) };
    })
    .catch((e: unknown) => c.log?.warn('explorer index: could not seed from the stored blocks', { error: (e as Error).message ?? String(e) }));
  return index;
}

/** One thing a search query names. */
interface SearchMatch {
  kind: 'account' | 'block' | 'tx' | 'xtransfer';
  id: string;
  /** What the page shows next to it (status, height, home shard). */
  label: string;
}

async function search(c: ExplorerContext, raw: string): Promise<{ query: string; shard: number; matches: SearchMatch[]; hint: string | null }> {
  const q = raw.trim().toLowerCase();
  const shard = c.chain.shard;
  const matches: SearchMatch[] = [];
  if (isAddressString(q)) {
    const home = homeShard(parseAddress(q), c.chain.genesis.shardCount);
    matches.push({ kind: 'account', id: q, label: home === shard ? 'account on this shard' : `account of shard ${home}` });
  } else if (/^[0-9]{1,15}$/.test(q)) {
    const h = Number(q);
    if (h <= c.chain.headHeight) matches.push({ kind: 'block', id: String(h), label: `block ${h}` });
  } else {
    const hex = q.startsWith('0x') ? q.slice(2) : q;
    if (isHex(hex, 32)) {
      const bytes = fromHex(hex);
      const [block, loc] = await Promise.all([c.chain.store.blockByHash(bytes), c.chain.store.txLocation(bytes)]);
      if (block) matches.push({ kind: 'block', id: hex, label: `block ${decodeBlock(block).header.height}` });
      if (loc) matches.push({ kind: 'tx', id: hex, label: `transaction in block ${loc.height}` });
      else if (c.mempool.get(hex)) matches.push({ kind: 'tx', id: hex, label: 'pending transaction' });
      const rec = c.chain.state.xfer(hex);
      if (rec) matches.push({ kind: 'xtransfer', id: hex, label: `cross-shard transfer (${rec.role} on this shard)` });
    }
  }
  let hint: string | null = null;
  if (!matches.length) {
    hint = /^(0x)?[0-9a-f]{64}$/.test(q)
      ? `no block, transaction or cross-shard transfer ${q} on shard ${shard} (a transaction of another shard is found on that shard's nodes)`
      : /^[0-9]{1,15}$/.test(q)
        ? `shard ${shard} has no block ${q} yet (head ${c.chain.headHeight})`
        : 'search for an address (qn…), a transaction hash, a block height or hash, or a cross-shard transfer id';
  }
  return { query: q, shard, matches, hint };
}

/**
 * The read-only routes the explorer page (explorer.ts) needs beyond the node's API: search,
 * an account's recent transactions, and the newest blocks' activity for the charts. Every one
 * is bounded: query lengths and list limits are checked before any lookup, and the index
 * behind them is capped (explorer-index.ts).
 */
export const explorerRoutes: JsonRoute<ExplorerContext>[] = [
  implement(R.search, async (c: ExplorerContext, { query: { q } }) => {
    if (q === undefined || q.trim() === '') throw new QnexusError('BAD_REQUEST', 'query parameter "q" is required');
    if (q.length > MAX_SEARCH_QUERY) throw new QnexusError('BAD_REQUEST', `query is longer than ${MAX_SEARCH_QUERY} characters`);
    explorerIndexOf(c);
    return await search(c, q);
  }),
  // The account's newest transactions this node has seen finalized (a bounded recent history, not a full one).
  implement(R.accountTxs, async (c: ExplorerContext, { params: { address: addr }, query }) => {
    if (!isAddressString(addr)) throw new QnexusError('BAD_REQUEST', 'address must be qn followed by 40 lowercase hex characters');
    const limit = parseListLimit(query.limit, ACCOUNT_TXS_PER_ACCOUNT, ACCOUNT_TXS_PER_ACCOUNT);
    const ix = explorerIndexOf(c);
    const home = homeShard(parseAddress(addr), c.chain.genesis.shardCount);
    return { address: addr, shard: c.chain.shard, homeShard: home, complete: false, txs: ix.accountTxs(addr, limit) };
  }),
  // The newest blocks' sizes, slots and finality times: what the explorer's charts draw.
  implement(R.activity, async (c: ExplorerContext, { query }) => {
    const limit = parseListLimit(query.limit, ACTIVITY_BLOCKS, ACTIVITY_BLOCKS);
    const g = c.chain.genesis;
    const now = Date.now();
    return {
      shard: c.chain.shard,
      slotMs: g.slotMs,
      genesisTime: g.genesisTime,
      now,
      slot: Math.max(0, slotAt(g, now)),
      headHeight: c.chain.headHeight,
      headHash: toHex(c.chain.headHash),
      blocks: explorerIndexOf(c).activity(limit),
    };
  }),
];
