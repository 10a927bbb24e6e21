// The 2PC log on a real LevelDB: entries survive close/reopen, decisions are durable before they are sent.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressFromPublicKey, sha256, toHex, utf8 } from '@qnexus/crypto';
import { BEACON_SHARD, QnexusError, encodeEpochAnnouncement, type XferInfo } from '@qnexus/types';
import { Registry } from '../src/registry.js';
import { Coordinator, type XferEntry } from '../src/coordinator.js';
import { ActionRunner } from '../src/service.js';
import { BeaconStore, decodeEntry, encodeEntry } from '../src/store.js';
import { FakeSigner, addrOf, destRecord, info, key, sourceRecord, testGenesis, text, OP } from './helpers.js';

/** A registry's full state as comparable JSON (Maps, Sets, bytes and bigints spelled out). */
function stateJson(r: Registry): string {
  return JSON.stringify(r.state(), (_k, v: unknown) => {
    if (typeof v === 'bigint') return `${v}n`;
    if (v instanceof Uint8Array) return toHex(v);
    if (v instanceof Map) return [...v].sort(([a], [b]) => (String(a) < String(b) ? -1 : 1));
    if (v instanceof Set) return [...v].sort();
    return v;
  });
}

const isCode = (code: string) => (e: unknown) => e instanceof QnexusError && e.code === code;

describe('beacon: store', () => {
  let dir: string;
  let store: BeaconStore;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qnexus-beacon-store-'));
    store = await BeaconStore.open(join(dir, 'db'));
  });
  afterEach(async () => {
    await store.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('encodes every field of a log entry', () => {
    const c = new Coordinator({ signer: new FakeSigner() });
    const x = info(1);
    c.onRecord(sourceRecord(x), 0, 12, 5);
    const fresh = decodeEntry(encodeEntry(c.get(toHex(x.id))!));
    assert.equal(fresh.decision, null);
    assert.equal(fresh.destination, null);
    assert.equal(fresh.decisionTx, null);
    c.onRecord(destRecord(x, { prepare: 'refused', reason: 'TX_BAD_RECIPIENT' }), 1, 21, 6);
    c.onRecord(sourceRecord(x, { decision: 'abort', decidedHeight: 30 }), 0, 31, 7);
    c.onRecord(destRecord(x, { prepare: 'refused', reason: 'TX_BAD_RECIPIENT', decision: 'abort', decidedHeight: 44 }), 1, 44, 8);
    const e = c.get(toHex(x.id))!;
    const back = decodeEntry(encodeEntry(e));
    assert.deepEqual({ ...back, sent: null }, { ...e, sent: null });
  });

  it('keeps the log across close and reopen', async () => {
    const signer = new FakeSigner();
    const c = new Coordinator({ signer });
    const runner = new ActionRunner(store, () => undefined);
    const a = info(1);
    const b = info(2);
    await runner.run(c.onRecord(sourceRecord(a), 0, 12, 5));
    await runner.run(c.onRecord(destRecord(a), 1, 21, 6));
    await runner.run(c.onRecord(sourceRecord(b), 0, 13, 7));
    await store.close();

    store = await BeaconStore.open(join(dir, 'db'));
    const loaded = await store.loadEntries();
    assert.equal(loaded.length, 2);
    const restored = new Coordinator({ signer }, loaded);
    for (const x of [a, b]) {
      const id = toHex(x.id);
      assert.deepEqual(encodeEntry(restored.get(id)!), encodeEntry(c.get(id)!), `entry ${id.slice(0, 8)} round-trips`);
    }
    assert.equal(restored.get(toHex(a.id))!.decision!.outcome, 'commit');
    assert.equal(text(restored.get(toHex(a.id))!.decisionTx!), `C:${toHex(a.id)}`, 'the signed decision is kept, not re-signed');
    assert.deepEqual(restored.counts(), { total: 2, undecided: 1, committed: 1, aborted: 0, applied: 0 });
  });

  it('makes a decision durable before it is handed to the network', async () => {
    const c = new Coordinator({ signer: new FakeSigner() });
    const x = info(3);
    const id = toHex(x.id);
    let writes = 0;
    const seenAtSend: Promise<XferEntry | undefined>[] = [];
    const sent: string[] = [];
    const runner = new ActionRunner(
      {
        putEntries: async (es) => {
          await new Promise((r) => setTimeout(r, 20)); // a slow disk
          await store.putEntries(es);
          writes++;
        },
      },
      (shard, raw) => {
        sent.push(`${shard}:${text(raw)[0]}@${writes}`);
        seenAtSend.push(store.getEntry(id));
      },
    );
    await runner.run(c.onRecord(sourceRecord(x), 0, 12, 5));
    await runner.run(c.onRecord(destRecord(x), 1, 21, 6));
    assert.deepEqual(sent, ['1:P@1', '0:C@2', '1:C@2'], 'each send follows the write of its event');
    const atDecisionSend = await seenAtSend[1]!;
    assert.equal(atDecisionSend?.decision?.outcome, 'commit', 'the decision was on disk when it was sent');
    assert.ok(atDecisionSend?.decisionTx);
  });

  it('binds the data dir to one genesis', async () => {
    const g = testGenesis({ validators: [key(1), key(2)], beacon: key(9) });
    await store.initGenesis(g);
    await store.initGenesis(g); // same chain: fine
    const other = testGenesis({ validators: [key(1), key(2)], beacon: key(9), chainId: 'other-chain' });
    await assert.rejects(store.initGenesis(other), isCode('BAD_CONFIG'));
  });

  it('records an epoch assignment once and refuses a second open of the same dir', async () => {
    assert.equal(await store.putEpochIfAbsent(3, new Uint8Array([1])), true);
    assert.equal(await store.putEpochIfAbsent(3, new Uint8Array([2])), false);
    assert.deepEqual(await store.epochAnnouncement(3), new Uint8Array([1]));
    await assert.rejects(BeaconStore.open(join(dir, 'db')), isCode('UNAVAILABLE'));
  });

  it('restores the staking registry exactly, and it continues identically', async () => {
    const vals = [1, 2, 3, 4].map(key);
    const g = testGenesis({ validators: vals, beacon: key(9), epochLength: 8, staking: { churnLimit: 1, unbondingEpochs: 1 } });
    await store.initGenesis(g);
    const r = new Registry(g);
    const c = new Coordinator({ signer: new FakeSigner(), participants: new Map([[3, r]]) });
    // What the service does: registry changes (with the frozen epochs' signed bytes) go with the log entries.
    const runner = new ActionRunner(store, () => undefined, () => undefined, () => {
      if (!r.changed) return undefined;
      const changes = r.takeChanges();
      const announcements = new Map(changes.frozen.map((fe) => [fe.epoch, encodeEpochAnnouncement({ body: r.announcement(fe.epoch, 0), signature: new Uint8Array([fe.epoch]) })]));
      return { changes, announcements };
    });
    const nv = key(20);
    const funder = sha256(utf8('funder')).subarray(0, 20);
    const stake = (n: number, k = nv): XferInfo => ({ ...OP.stake, denom: 'qfc', id: sha256(utf8(`s${n}`)), srcShard: 0, dstShard: BEACON_SHARD, from: funder, to: addressFromPublicKey(k.publicKey), amount: 300n, deadlineSlot: 99, payload: k.publicKey });
    const steps = async (reg: Registry, co: Coordinator, run: ActionRunner, from: number, to: number) => {
      for (let slot = from; slot < to; slot++) {
        const actions = co.tick(slot);
        for (const x of reg.onSlot(slot).releases) actions.push(...co.startRelease(x, slot));
        if (slot === 1) actions.push(...co.onRecord(sourceRecord(stake(1)), 0, 10, slot));
        if (slot === 2) actions.push(...co.onRecord(sourceRecord(stake(2, key(21))), 0, 11, slot));
        if (slot === 3) {
          const u: XferInfo = { ...stake(3, vals[0]!), ...OP.unstake, denom: 'qfc', from: addressFromPublicKey(vals[0]!.publicKey), amount: 0n, payload: new Uint8Array(0) };
          actions.push(...co.onRecord(sourceRecord(u), 0, 12, slot));
        }
        const fe = reg.epoch(Math.floor(slot / 8));
        if (fe) reg.recordParticipation(slot % 2, slot, slot, fe.shards[slot % 2]!.committee.validators.map((m) => m.address));
        await run.run(actions);
      }
    };
    await steps(r, c, runner, 0, 21);
    assert.equal(r.validator(addrOf(nv))!.status, 'active');
    assert.ok(r.totals().minted > 0n);
    assert.ok(r.frozenEpochs().length >= 3);
    await store.close();

    store = await BeaconStore.open(join(dir, 'db'));
    const loaded = await store.loadRegistry();
    assert.ok(loaded);
    const r2 = new Registry(g, loaded);
    assert.equal(stateJson(r2), stateJson(r), 'identical registry state after restart');
    assert.deepEqual(await store.epochAnnouncement(1), encodeEpochAnnouncement({ body: r.announcement(1, 0), signature: new Uint8Array([1]) }), 'the stored announcement bytes');
    const c2 = new Coordinator({ signer: new FakeSigner(), participants: new Map([[3, r2]]) }, await store.loadEntries());
    const runner2 = new ActionRunner(store, () => undefined, () => undefined, () => {
      if (!r2.changed) return undefined;
      const changes = r2.takeChanges();
      return { changes, announcements: new Map(changes.frozen.map((fe) => [fe.epoch, encodeEpochAnnouncement({ body: r2.announcement(fe.epoch, 0), signature: new Uint8Array([fe.epoch]) })])) };
    });
    // Both continue with the same inputs and stay identical.
    const mem = new Registry(g, r.state());
    await steps(r2, c2, runner2, 21, 40);
    const c3 = new Coordinator({ signer: new FakeSigner(), participants: new Map([[3, mem]]) }, c.recent(100).map((e) => structuredClone(e)));
    await steps(mem, c3, new ActionRunner({ putEntries: async () => undefined }, () => undefined, () => undefined, () => (mem.takeChanges(), undefined)), 21, 40);
    assert.equal(stateJson(r2), stateJson(mem));
  });
});
