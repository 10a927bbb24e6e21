// Hostile peers and clients (issue 12): a test-only adversary (test/adversary/: a libp2p peer built
// from the stock modules, and plain HTTP clients from 127.0.0.2) attacks a real multi-process devnet,
// one attack class per `it`, each for a bounded window. For every class the test asserts what the
// issue requires of the nodes:
//   - the shard keeps finalizing: blocks finalized during the attack ≥ MIN_FINALITY_RATIO × those of
//     the same-length window just before it (a ratio measured in the test, not a wall-clock bound),
//     for the shard and for the attacked node itself;
//   - no devnet process dies;
//   - the attacked process's RSS stays under MAX_RSS_MB;
//   - a fresh honest libp2p identity from 127.0.0.1 can still connect to it and be served;
//   - the attacker is penalised (the node's log names its peer id), disconnected, or refused, before
//     the attack window ends;
//   - a genuine transaction submitted through the attacked node's API during the attack becomes final;
// plus each class's own checks (e.g. networkHeight not moved by far-future votes, the beacon banning
// no shard node over relayed evidence). Figures for the same attacks, before and after the fixes,
// come from `npm run bench:attacks` (bench/attacks.ts).
import assert from 'node:assert/strict';
import { ATTACKS } from './adversary/attacks.js';
import { runAttack, type AttackResult } from './adversary/run.js';
import { targetFromManifest, type Target } from './adversary/target.js';
import { startTestNet, type TestNet } from './helpers.js';

/** Baseline and attack window. 10 slots of 1 s: about 10 blocks each, enough for a ratio against 0.5. */
const WINDOW_MS = 10_000;
/**
 * During an attack the shard must finalize at least half of what it did in the window before.
 * Un-attacked, the ratio of two consecutive windows is 0.9–1.1 on this devnet (one block per 1 s
 * slot, an epoch boundary every 6 slots); the unfixed code fell to 0.25 under packed bad-signature
 * votes and stopped at the next epoch boundary after the evidence relay.
 */
const MIN_FINALITY_RATIO = 0.5;
/**
 * Peak RSS of the attacked node. An un-attacked node of this devnet uses 140–160 MB (measured with
 * the same sampler); 300 MB leaves it room to nearly double. The unfixed code went to 340 MB and
 * more under a subscription flood and a lying sync server in a window this short (620 and 858 MB
 * in the issue's longer runs).
 */
const MAX_RSS_MB = 300;
/** A genuine transaction submitted during the attack must be final this long after the attack ends. */
const TX_FINAL_TIMEOUT_MS = 20_000;

function failures(r: AttackResult): string[] {
  const f: string[] = [];
  if (r.dead.length) f.push(`devnet processes died: ${r.dead.join(', ')}`);
  if (r.finalityRatio === null) f.push(`the shard finalized nothing in the baseline window (${r.baseline.shardBlocks} blocks): no ratio`);
  else if (r.finalityRatio < MIN_FINALITY_RATIO) f.push(`shard finality ratio ${r.finalityRatio.toFixed(2)} (${r.during.shardBlocks} blocks during the attack, ${r.baseline.shardBlocks} before) < ${MIN_FINALITY_RATIO}`);
  if (r.victimFinalityRatio === null) f.push(`${r.victim}'s own finality ratio unknown (baseline ${r.baseline.victimBlocks}, during ${r.during.victimBlocks}: it did not answer /v1/status or finalized nothing)`);
  else if (r.victimFinalityRatio < MIN_FINALITY_RATIO) f.push(`${r.victim} finality ratio ${r.victimFinalityRatio.toFixed(2)} (${r.during.victimBlocks} during, ${r.baseline.victimBlocks} before) < ${MIN_FINALITY_RATIO}`);
  if (!(r.during.proc.peakRssMb < MAX_RSS_MB)) f.push(`${r.victim} peak RSS ${r.during.proc.peakRssMb.toFixed(0)} MB ≥ ${MAX_RSS_MB} MB (baseline window peak ${r.baseline.proc.peakRssMb.toFixed(0)} MB)`);
  if (!r.honestPeer.ok) f.push(`a fresh honest peer could not connect to ${r.victim}: ${r.honestPeer.detail}`);
  if (r.cutOff === null) f.push(`the attacker was never penalised, disconnected or refused during the attack${r.lateCutOff ? ` (only ${(r.lateCutOff.ms / 1000).toFixed(1)} s after it started: ${r.lateCutOff.detail})` : ''}`);
  if (!r.genuineTx.ok) f.push(`the genuine transaction did not become final: ${r.genuineTx.detail}`);
  for (const c of r.checks) if (!c.ok) f.push(`${c.name}: ${c.detail}`);
  return f;
}

function summary(r: AttackResult): string {
  const cut = r.cutOff ? `${(r.cutOff.ms / 1000).toFixed(1)} s (${r.cutOff.how}: ${r.cutOff.detail})` : 'never';
  return (
    `${r.attack} on ${r.victim}: finality ${r.finalityRatio?.toFixed(2) ?? '-'} (victim ${r.victimFinalityRatio?.toFixed(2) ?? '-'}), ` +
    `RSS ${r.baseline.proc.peakRssMb.toFixed(0)}→${r.during.proc.peakRssMb.toFixed(0)} MB, CPU ${r.baseline.proc.cpuSec.toFixed(1)}→${r.during.proc.cpuSec.toFixed(1)} s, ` +
    `cut off ${cut}; sent ${JSON.stringify(r.outcome.counts)}`
  );
}

describe('hostile peers and clients: no unauthenticated request may halt, freeze or bloat a node', function () {
  let net: TestNet;
  let target: Target;

  before(async function () {
    this.timeout(180_000);
    // One shard of 4 validators and a full node, plus the beacon: 6 processes, what 2 cores carry
    // with stable ratios. Epochs of 6 slots put an epoch boundary (committee announcement from the
    // beacon) inside every attack window.
    net = await startTestNet({ shards: 1, validators: 4, fullNodes: 1, accounts: 8, epochLength: 6 });
    target = targetFromManifest(net.devnet.manifest, net.accounts);
  });

  after(async function () {
    this.timeout(60_000);
    await net?.cleanup();
  });

  for (const cls of ATTACKS) {
    it(`${cls.name}: ${cls.summary}`, async function () {
      this.timeout(180_000);
      const r = await runAttack(target, cls, { windowMs: WINDOW_MS, txFinalTimeoutMs: TX_FINAL_TIMEOUT_MS });
      console.log(`      ${summary(r)}`);
      const f = failures(r);
      assert.ok(f.length === 0, `${cls.name}:\n  - ${f.join('\n  - ')}`);
    });
  }
});
