// Shard heads: a verified report names its block, the registry keeps each shard's newest, and snapshots carry them.
import assert from 'node:assert/strict';
import { bytesEqual } from '@qnexus/crypto';
import { blockHash, decodeRegistrySnapshot, encodeRegistrySnapshot } from '@qnexus/types';
import { Admitter } from '../src/admission.js';
import { Registry } from '../src/registry.js';
import { certifiedBlock, report } from './fixtures.js';
import { addrOf, key, testGenesis } from './helpers.js';

describe('beacon: shard heads', () => {
  const vals = [1, 2, 3, 4].map(key);
  const g = testGenesis({ validators: vals, beacon: key(9) });
  const members = (r: Registry, s: number) => vals.filter((k) => r.membership(0, addrOf(k))!.shard === s);
  const h32 = (n: number) => new Uint8Array(32).fill(n);

  it('an admitted report carries its block hash and slot (also when the certificate was checked before)', () => {
    const registry = new Registry(g);
    const adm = new Admitter(registry);
    const [a0, b0] = members(registry, 0);
    const block = certifiedBlock(g, 0, 12, 7, [], [a0!, b0!]);
    for (const reporter of [a0!, b0!]) {
      const r = adm.admit(report(g, reporter, `peer-${addrOf(reporter)}`, block, []), `peer-${addrOf(reporter)}`, 0);
      assert.ok(r.ok && r.type === 'report', JSON.stringify(r));
      assert.ok(bytesEqual(r.blockHash, blockHash(block.header)));
      assert.equal(r.slot, 7);
      assert.equal(r.height, 12);
    }
    assert.equal(adm.verifications, 2 + 2, 'two bindings, one certificate of two votes');
  });

  it('keeps the newest head per shard, ignores older and unknown shards, and puts them in snapshots in shard order', () => {
    const r = new Registry(g);
    assert.deepEqual(r.snapshot(5).heads, []);
    assert.equal(r.recordHead({ shard: 1, height: 10, blockHash: h32(1), slot: 20, round: 20 }), true);
    assert.equal(r.recordHead({ shard: 0, height: 4, blockHash: h32(2), slot: 8, round: 9 }), true);
    assert.equal(r.recordHead({ shard: 1, height: 9, blockHash: h32(3), slot: 19, round: 19 }), false, 'older');
    assert.equal(r.recordHead({ shard: 1, height: 10, blockHash: h32(4), slot: 21, round: 21 }), false, 'same height');
    assert.equal(r.recordHead({ shard: g.shardCount, height: 50, blockHash: h32(5), slot: 30, round: 30 }), false, 'no such shard');
    assert.equal(r.recordHead({ shard: 0, height: 5, blockHash: h32(6), slot: 10, round: 10 }), true);
    const snap = r.snapshot(40);
    assert.deepEqual(snap.heads, [
      { shard: 0, height: 5, blockHash: h32(6), slot: 10, round: 10 },
      { shard: 1, height: 10, blockHash: h32(1), slot: 20, round: 20 },
    ]);
    // Signed and gossiped as they are.
    const e = encodeRegistrySnapshot({ body: snap, signature: new Uint8Array(4) });
    assert.deepEqual(decodeRegistrySnapshot(e).body.heads, snap.heads);
  });
});
