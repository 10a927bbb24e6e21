// Property test: the per-denom supply identity and the bank's running totals
// hold after every block of a randomized two-shard run with every kind of
// transaction, beacon entries (prepares, commits, aborts, replays), fee rolls
// across epochs, and transactions that fail (and so must leave nothing).
import assert from 'node:assert/strict';
import { addressFromPublicKey, formatAddress, fromHex, generateKeyPair, homeShard, sha256, toHex, utf8, type KeyPair } from '@qnexus/crypto';
import { BEACON_SHARD, encodeTx, isSystemKind, makeGenesis, openTx, type TxBody, type TxEnvelope, type XferInfo, type XferRecord } from '@qnexus/types';
import { Branch, ExecCtx, MAX_RANGE, MODULE_IDS, WorldState, bank, moduleKey, releaseId, stateParams, type StateParams } from '@qnexus/state';
import { app, counters, kindOf, message, pendingFees, prng, xinfo, type Payload } from './helpers.js';

const CHAIN = 'qn-supply-test';
const MIN_FEE = 5n;
const INITIAL = 200_000n;
const TIMEOUT = 6;
const L = 4; // short epochs: many fee rolls
const SIG44 = new Uint8Array(2420); // the state machine does not verify signatures; only the length matters
const EMPTY = new Uint8Array(0);
/** A second denom in the genesis state, moved by transfers and xtransfers too: the identity is checked per denom. */
const TOKEN = 'tok/test';

const gen = (label: string) => generateKeyPair('ml-dsa-44', sha256(utf8(`supply-${label}`)));
const pool: KeyPair[] = Array.from({ length: 12 }, (_, i) => gen(`acct-${i}`));
const addrOf = (k: KeyPair) => addressFromPublicKey(k.publicKey);
const hexOf = (k: KeyPair) => toHex(addrOf(k));
const shardOf = (k: KeyPair) => homeShard(addrOf(k), 2);
const onShard = [0, 1].map((s) => pool.filter((k) => shardOf(k) === s));
const beacon = gen('beacon');
const validators = [gen('val-0'), gen('val-1'), gen('val-2')];

const G = makeGenesis({
  chainId: CHAIN,
  scheme: 'ml-dsa-44',
  genesisTime: 0,
  slotMs: 1000,
  epochLength: L,
  shardCount: 2,
  minFee: MIN_FEE,
  maxBlockTxs: 1000,
  xferTimeoutSlots: TIMEOUT,
  beacon: { publicKey: beacon.publicKey, peerId: '12D3KooWJWEKvSFbben74C7H4YtKjhPMTDxd7gP7zxWSUEeF27st' },
  accounts: pool.map((k) => ({ address: formatAddress(addrOf(k)), balance: INITIAL })),
  validators: validators.map((v) => ({ address: formatAddress(addrOf(v)), publicKey: v.publicKey, stake: 1000n })),
  staking: { feeBurnBps: 4000, minStake: 100n },
});
const P: StateParams[] = [stateParams(G, 0), stateParams(G, 1)];

function userTx(from: KeyPair, payload: Payload, nonce: bigint, fee: bigint): TxEnvelope {
  const body: TxBody = { chainId: CHAIN, nonce, fee, publicKey: from.publicKey, payload: message(payload) };
  return openTx(encodeTx({ body, signature: SIG44 }));
}

/** A beacon entry: the beacon's key, nonce and fee 0 (its signature is the node's to check, not the state machine's). */
function beaconTx(payload: Payload): TxEnvelope {
  const body: TxBody = { chainId: CHAIN, nonce: 0n, fee: 0n, publicKey: beacon.publicKey, payload: message(payload) };
  return openTx(encodeTx({ body, signature: SIG44 }));
}

/** The genesis state of a shard plus TOKEN balances for its accounts (booked as TOKEN's genesis supply). */
function genesisState(shard: number): WorldState {
  const s = app.genesisState(G, shard);
  const kv = new Branch(s.kv);
  const ctx = new ExecCtx(kv, P[shard]!, { height: 0, slot: 0, proposer: new Uint8Array(20) });
  onShard[shard]!.forEach((k, i) => bank.genesisCredit(ctx, addrOf(k), BigInt(1000 * (i + 1)), TOKEN));
  s.apply({ writes: kv.writes, xfers: new Map() });
  return s;
}

const BAL_PREFIX = toHex(moduleKey(MODULE_IDS.bank, new Uint8Array([0x62])));

/** Σ balances per denom, recomputed from every bank balance entry ('b' ‖ address(20) ‖ denom → u64). */
function balancesFromScratch(s: WorldState): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const [k, v] of s.kv.range(BAL_PREFIX, MAX_RANGE)) {
    const denom = new TextDecoder().decode(fromHex(k.slice(BAL_PREFIX.length + 40)));
    assert.equal(v.length, 8, `balance entry ${k} is a u64`);
    const amount = new DataView(v.buffer, v.byteOffset, 8).getBigUint64(0);
    assert.ok(amount > 0n, `a zero balance is no entry (${k})`);
    out.set(denom, (out.get(denom) ?? 0n) + amount);
  }
  return out;
}

function assertSupply(s: WorldState, what: string): void {
  const totals = s.denomTotals();
  assert.deepEqual(totals.map((t) => t.denom).sort(), ['qfc', TOKEN].sort(), `${what}: denoms`);
  const scratch = balancesFromScratch(s);
  for (const t of totals) {
    assert.equal(t.balances + t.burned + t.escrow + t.exported - t.imported, t.genesis + t.minted, `${what}: supply identity of ${t.denom}`);
    assert.equal(scratch.get(t.denom) ?? 0n, t.balances, `${what}: Σ '${t.denom}' balances from scratch = running total`);
    for (const k of ['balances', 'burned', 'escrow', 'exported', 'imported', 'genesis', 'minted'] as const) assert.ok(t[k] >= 0n, `${what}: ${t.denom} ${k} >= 0`);
  }
  for (const d of scratch.keys()) assert.ok(totals.some((t) => t.denom === d), `${what}: ${d} has a supply record`);
  // the fee account holds exactly the proposers' pending tips
  assert.equal(counters(s).fees, pendingFees(s).reduce((a, [, v]) => a + v, 0n), `${what}: fees = Σ pending`);
}

describe('state: per-denom supply over randomized blocks', () => {
  it('after every block: balances + burned + escrow + exported − imported = genesis + minted per denom, and Σ balance entries = running total', function () {
    this.timeout(30_000);
    const rand = prng(0x51ee7);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const states = [genesisState(0), genesisState(1)];
    for (const [i, s] of states.entries()) assertSupply(s, `genesis of shard ${i}`);
    const heights = [0, 0];
    let slot = 0;
    /** Beacon entries waiting for delivery to each shard (in any order; some are replays). */
    const inbox: TxEnvelope[][] = [[], []];
    const delivered: TxEnvelope[][] = [[], []];
    const decided = new Set<string>();
    const seen = new Set<string>();
    let releases = 0;
    const count = { blocks: 0, applied: 0, skipped: 0, commits: 0, aborts: 0, feeRecords: 0, stakes: 0, xtransfers: 0, releases: 0 };

    const decide = (x: XferInfo, commit: boolean) => {
      const id = toHex(x.id);
      if (decided.has(id)) return;
      decided.add(id);
      if (commit) count.commits++;
      else count.aborts++;
      for (const sh of [x.srcShard, x.dstShard]) if (sh !== BEACON_SHARD) inbox[sh]!.push(beaconTx({ kind: 'xdecision', xfer: x, commit }));
    };

    /** What the beacon does on hearing of a record (as if proven to it). */
    const onRecord = (r: XferRecord) => {
      const x = r.info;
      const key = `${toHex(x.id)}/${r.role}/${r.prepare}/${r.decision}`;
      if (seen.has(key) || r.decision !== 'none') return;
      seen.add(key);
      if (r.role === 'source') {
        if (kindOf(x) === 'fees') count.feeRecords++;
        if (x.dstShard === BEACON_SHARD) decide(x, rand() < 0.7);
        else inbox[x.dstShard]!.push(beaconTx({ kind: 'xprepare', xfer: x }));
        // now and then the beacon gives up before the destination answers
        if (x.dstShard !== BEACON_SHARD && rand() < 0.1) decide(x, false);
      } else if (r.prepare !== 'none') {
        decide(x, r.prepare === 'accepted' && rand() < 0.8);
      }
    };

    /** Build a block on `shard` from the candidates (the proposer's path), check it, apply it, check the supply. */
    const run = (shard: number, txs: TxEnvelope[], what: string) => {
      const s = states[shard]!;
      heights[shard]!++;
      const ctx = { height: heights[shard]!, slot, proposer: addrOf(pick(validators)) };
      const res = app.executeApplicable(s, txs, P[shard]!, ctx);
      count.blocks++;
      count.applied += res.applied.length;
      count.skipped += res.skipped.length;
      // the block as built validates to the same root
      assert.deepEqual(app.executeBlock(s, res.applied, P[shard]!, ctx).stateRoot, res.exec.stateRoot, `${what}: replayed root`);
      s.apply(res.exec.changes);
      assert.deepEqual(s.root(), res.exec.stateRoot);
      for (const env of res.applied) if (isSystemKind(env.tx.body.payload.kind)) delivered[shard]!.push(env);
      assertSupply(s, `shard ${shard} after ${what} (height ${ctx.height}, slot ${slot})`);
      for (const r of res.exec.changes.xfers.values()) onRecord(r);
    };

    for (let b = 0; b < 30; b++) {
      const shard = rand() < 0.5 ? 0 : 1;
      const s = states[shard]!;
      if (rand() < 0.6) slot++;
      if (rand() < 0.1) slot += L; // skip an epoch now and then
      const nonces = new Map<string, bigint>();
      const nextNonce = (k: KeyPair) => {
        const n = nonces.get(hexOf(k)) ?? s.account(hexOf(k))?.nonce ?? 0n;
        nonces.set(hexOf(k), n + 1n);
        return n;
      };
      const txs: TxEnvelope[] = [];
      const n = Math.floor(rand() * 21);
      for (let i = 0; i < n; i++) {
        const from = pick(onShard[shard]!);
        const bal = s.account(hexOf(from))?.balance ?? 0n;
        const fee = MIN_FEE + BigInt(Math.floor(rand() * 20));
        const r = rand();
        // a fifth of the amounts are more than the sender has (the fee alone it can pay); a fifth of the sends move TOKEN
        const denom = rand() < 0.2 ? TOKEN : 'qfc';
        const held = denom === TOKEN ? s.balance(addrOf(from), TOKEN) : bal;
        const amount = rand() < 0.2 ? held + 1n : 1n + BigInt(Math.floor(rand() * (denom === TOKEN ? 300 : 3000)));
        if (r < 0.3) {
          let to = pick(onShard[shard]!);
          if (to === from) to = onShard[shard]!.find((k) => k !== from)!;
          txs.push(userTx(from, { kind: 'transfer', to: addrOf(to), amount, denom }, nextNonce(from), fee));
        } else if (r < 0.55) {
          txs.push(userTx(from, { kind: 'xtransfer', to: addrOf(pick(onShard[1 - shard]!)), amount, denom }, nextNonce(from), fee));
          count.xtransfers++;
        } else if (r < 0.65) {
          txs.push(userTx(from, { kind: 'stake', validatorPublicKey: pick(validators).publicKey, amount: 100n + amount, validatorSignature: SIG44 }, nextNonce(from), fee));
          count.stakes++;
        } else if (r < 0.7) {
          txs.push(userTx(from, { kind: 'unstake', validator: addrOf(pick(validators)) }, nextNonce(from), fee));
        } else if (r < 0.75) {
          // a nonce gap: skipped
          txs.push(userTx(from, { kind: 'transfer', to: addrOf(pick(onShard[1 - shard]!)), amount: 1n }, (s.account(hexOf(from))?.nonce ?? 0n) + 5n, fee));
        } else if (r < 0.8) {
          // the beacon releases funds to an account of this shard
          const v = addrOf(pick(validators));
          const info: XferInfo = xinfo({ kind: 'release', id: releaseId(CHAIN, v, releases++), srcShard: BEACON_SHARD, dstShard: shard, from: v, to: addrOf(pick(onShard[shard]!)), amount: 1n + BigInt(Math.floor(rand() * 5000)), deadlineSlot: slot + TIMEOUT, payload: EMPTY });
          inbox[shard]!.push(beaconTx({ kind: 'xprepare', xfer: info }));
          count.releases++;
        } else {
          // deliver beacon entries waiting for this shard, and replay an old one now and then
          const box = inbox[shard]!;
          if (box.length) txs.push(box.splice(Math.floor(rand() * box.length), 1)[0]!);
          if (delivered[shard]!.length && rand() < 0.3) txs.push(pick(delivered[shard]!));
        }
      }
      run(shard, txs, `block ${b}`);
    }
    // the beacon drains: every waiting entry is delivered (in random order), until nothing is left to decide
    for (let d = 0; d < 40 && (inbox[0]!.length || inbox[1]!.length); d++) {
      slot++;
      for (const shard of [0, 1]) {
        const box = inbox[shard]!;
        const txs = box.splice(0, box.length).sort(() => rand() - 0.5);
        if (txs.length) run(shard, txs, `drain ${d}`);
      }
    }
    assert.deepEqual([inbox[0]!.length, inbox[1]!.length], [0, 0], 'the drain ends');
    // everything decided on both sides: no escrow left; TOKEN never leaves the shards, so what one exported the other imported
    const tot = (denom: string) => states.map((st) => st.denomTotals().find((t) => t.denom === denom)!);
    for (const denom of ['qfc', TOKEN]) assert.deepEqual(tot(denom).map((t) => t.escrow), [0n, 0n], `${denom}: no escrow left`);
    const tok = tot(TOKEN);
    assert.equal(tok[0]!.exported + tok[1]!.exported, tok[0]!.imported + tok[1]!.imported, 'TOKEN exported = imported');
    assert.equal(tok.reduce((a, t) => a + t.balances, 0n), tok.reduce((a, t) => a + t.genesis, 0n), 'TOKEN conserved across the shards');
    if (process.env.QN_DEBUG) console.log(JSON.stringify(count));
    assert.ok(count.skipped > 10 && count.applied > 100, JSON.stringify(count));
    assert.ok(count.commits > 5 && count.aborts > 3 && count.feeRecords > 2, JSON.stringify(count));
    // TOKEN moved across shards too (committed cross-shard sends of it)
    assert.ok(states.some((st) => st.denomTotals().find((t) => t.denom === TOKEN)!.exported > 0n), 'some TOKEN was exported');
  });
});
