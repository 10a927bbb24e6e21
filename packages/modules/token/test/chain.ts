// A small chain for the token and faucet tests (not a test file itself): deterministic keys, a
// genesis with module sections and the faucet's account funded, signed-looking transactions (the
// state machine checks no signature), and one-shard block execution with the skipped codes.
import { addressFromPublicKey, formatAddress, generateKeyPair, homeShard, schemeLengths, sha256, utf8, type KeyPair } from '@qnexus/crypto';
import { encodeTx, makeGenesis, openTx, type Genesis, type TxEnvelope, type TxMsg, type XferInfo, encodeXPrepare, encodeXDecision } from '@qnexus/types';
import { WorldState, moduleAccount, stateParams, type BlockContext, type StateParams } from '@qnexus/state';
import { createApp } from '@qnexus/app';

export const app = createApp();
export const MIN_FEE = 5n;
const SIG = new Uint8Array(schemeLengths('ml-dsa-44').signature);

export interface ChainOptions {
  shardCount: number;
  /** Labels of accounts funded with `balance` each (default 1,000,000,000). */
  funded: readonly string[];
  balance?: bigint;
  /** The faucet module account's genesis balance (0: not funded). */
  faucetBalance?: bigint;
  modules?: { name: string; id: number; genesis?: unknown }[];
  epochLength?: number;
  xferTimeoutSlots?: number;
}

export function chain(chainId: string, o: ChainOptions) {
  const key = (label: string): KeyPair => generateKeyPair('ml-dsa-44', sha256(utf8(`${chainId}-${label}`)));
  const addrOf = (k: KeyPair) => addressFromPublicKey(k.publicKey);
  const shardOf = (k: KeyPair) => homeShard(addrOf(k), o.shardCount);
  const validators = Array.from({ length: o.shardCount }, (_, i) => key(`validator-${i}`));
  const beacon = key('beacon');
  const accounts = o.funded.map((label) => ({ address: formatAddress(addrOf(key(label))), balance: o.balance ?? 1_000_000_000n }));
  if (o.faucetBalance) accounts.push({ address: formatAddress(moduleAccount('faucet')), balance: o.faucetBalance });
  const G: Genesis = makeGenesis({
    chainId,
    scheme: 'ml-dsa-44',
    genesisTime: 0,
    slotMs: 1000,
    epochLength: o.epochLength ?? 16,
    shardCount: o.shardCount,
    minFee: MIN_FEE,
    maxBlockTxs: 200,
    xferTimeoutSlots: o.xferTimeoutSlots ?? 10,
    beacon: { publicKey: beacon.publicKey, peerId: '12D3KooWJWEKvSFbben74C7H4YtKjhPMTDxd7gP7zxWSUEeF27st' },
    accounts,
    validators: validators.map((v) => ({ address: formatAddress(addrOf(v)), publicKey: v.publicKey, stake: 10n })),
    ...(o.modules ? { modules: o.modules } : {}),
  });
  const P: StateParams[] = Array.from({ length: o.shardCount }, (_, k) => stateParams(G, k));
  const tx = (from: KeyPair, m: TxMsg, nonce: bigint, fee: bigint = MIN_FEE): TxEnvelope =>
    openTx(encodeTx({ body: { chainId, nonce, fee, publicKey: from.publicKey, payload: m }, signature: SIG }));
  const system = (m: TxMsg): TxEnvelope => openTx(encodeTx({ body: { chainId, nonce: 0n, fee: 0n, publicKey: beacon.publicKey, payload: m }, signature: SIG }));
  const prepare = (x: XferInfo) => system(encodeXPrepare(x));
  const decision = (x: XferInfo, commit: boolean) => system(encodeXDecision(x, commit));
  /** The first `n` labels `prefix0…` whose key lives on `shard`. */
  const labelsOn = (shard: number, n: number, prefix = 'u'): string[] => {
    const out: string[] = [];
    for (let i = 0; out.length < n && i < 10_000; i++) if (shardOf(key(`${prefix}${i}`)) === shard) out.push(`${prefix}${i}`);
    return out;
  };
  return { key, addrOf, shardOf, G, P, tx, system, prepare, decision, labelsOn, proposer: addrOf(validators[0]!) };
}

/** Labels of keys on each shard, computed before the genesis that funds them (the keys depend on the chain id only). */
export function labelsByShard(chainId: string, shardCount: number, perShard: number, prefix = 'u'): string[][] {
  const c = chain(chainId, { shardCount, funded: [] });
  return Array.from({ length: shardCount }, (_, s) => c.labelsOn(s, perShard, prefix));
}

/**
 * One block on one shard state (proposer side), applied; returns the codes of the transactions that
 * did not take effect, in block order (left out by the proposer, or included with their message
 * refused and only the fee charged, host `applyInBlock`), and the new cross-shard records.
 */
export function runBlock(s: WorldState, txs: readonly TxEnvelope[], p: StateParams, block: BlockContext) {
  const r = app.executeApplicable(s, txs, p, block);
  s.apply(r.exec.changes);
  const why = new Map<TxEnvelope, string>();
  for (const x of r.skipped) why.set(x.env, x.error.code);
  // Refused messages of included transactions (absent on a host that leaves every failing transaction out).
  const failed = (r.exec as { failed?: readonly { index: number; code: string }[] }).failed ?? [];
  for (const f of failed) why.set(r.applied[f.index]!, f.code);
  const skipped = txs.flatMap((env) => (why.has(env) ? [why.get(env)!] : []));
  return { skipped, applied: r.applied.length - failed.length, xfers: [...r.exec.changes.xfers.values()] };
}
