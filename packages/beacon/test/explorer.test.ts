// The beacon's network page (GET /explorer) and what it polls (GET /v1/network): every shard's
// reported head and its lag, and the cross-shard flows summed over the newest transfers.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Coordinator } from '../src/coordinator.js';
import { BEACON_EXPLORER_CSP, BEACON_EXPLORER_HTML, networkJson } from '../src/explorer.js';
import type { ApiContext } from '../src/api.js';
import { Registry } from '../src/registry.js';
import type { BeaconService } from '../src/service.js';
import { FakeSigner, destRecord, info, key, sourceRecord, testGenesis } from './helpers.js';

describe('beacon: network page and GET /v1/network', () => {
  const g = testGenesis({ validators: [1, 2, 3, 4].map(key), beacon: key(9), genesisTime: Date.now() - 60_000, slotMs: 1000 });

  it('reports each shard head with its lag, unknown shards as null, and the flows by route and outcome', () => {
    const registry = new Registry(g);
    const coordinator = new Coordinator({ signer: new FakeSigner() });
    const c = { registry, coordinator, service: { slot: 50, epoch: 1 } as unknown as BeaconService } as unknown as ApiContext;
    let n = networkJson(c);
    assert.deepEqual(n.shards, [
      { shard: 0, height: null, slot: null, round: null, blockHash: null, lagSlots: null, lagMs: null },
      { shard: 1, height: null, slot: null, round: null, blockHash: null, lagSlots: null, lagMs: null },
    ]);
    assert.deepEqual(n.flows, []);
    registry.recordHead({ shard: 1, height: 40, blockHash: new Uint8Array(32).fill(3), slot: 47, round: 47 });
    // 0 → 1 committed (twice), 0 → 1 preparing, 1 → 0 refused by its destination: aborted.
    for (const k of [1, 2]) {
      const x = info(k);
      coordinator.onRecord(sourceRecord(x), 0, 12, 5);
      coordinator.onRecord(destRecord(x), 1, 21, 6);
    }
    coordinator.onRecord(sourceRecord(info(3)), 0, 13, 7);
    const back = info(4, { srcShard: 1, dstShard: 0 });
    coordinator.onRecord(sourceRecord(back), 1, 14, 8);
    coordinator.onRecord(destRecord(back, { prepare: 'refused', reason: 'test' }), 0, 15, 9);
    n = networkJson(c);
    assert.equal(n.slot, 50);
    assert.equal(n.slotMs, 1000);
    assert.equal(n.shards[0]!.height, null);
    const s1 = n.shards[1]!;
    assert.deepEqual({ ...s1, lagMs: null }, { shard: 1, height: 40, slot: 47, round: 47, blockHash: '03'.repeat(32), lagSlots: 3, lagMs: null });
    assert.ok(s1.lagMs! >= 0 && s1.lagMs! <= n.now - g.genesisTime);
    assert.equal(n.flowWindow, 4);
    assert.deepEqual(n.flows, [
      { sourceShard: 0, destinationShard: 1, transfers: 3, committed: 2, aborted: 0, preparing: 1, amount: String(1001n + 1002n) },
      { sourceShard: 1, destinationShard: 0, transfers: 1, committed: 0, aborted: 1, preparing: 0, amount: '0' },
    ]);
    assert.deepEqual(n.xtransfers, { total: 4, undecided: 1, committed: 2, aborted: 1, applied: 0 });
  });

  it('the page is self-contained: its inline style and script allowed by hash, no URL, no markup from data', () => {
    const html = BEACON_EXPLORER_HTML;
    const script = /<script>([\s\S]*)<\/script>/.exec(html)![1]!;
    const style = /<style>([\s\S]*)<\/style>/.exec(html)![1]!;
    const sha = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;
    assert.ok(BEACON_EXPLORER_CSP.includes(`script-src ${sha(script)}`));
    assert.ok(BEACON_EXPLORER_CSP.includes(`style-src ${sha(style)}`));
    assert.match(BEACON_EXPLORER_CSP, /default-src 'none'/);
    assert.doesNotMatch(BEACON_EXPLORER_CSP, /unsafe/);
    assert.doesNotMatch(html, /https?:\/\//);
    assert.doesNotMatch(html, /\bsrc=/);
    assert.doesNotMatch(script, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/);
    assert.ok(script.includes("'/v1/network'") && script.includes("'/v1/xtransfers?limit="));
  });
});
