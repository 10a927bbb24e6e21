// The 2PC log on a real LevelDB: entries survive close/reopen, decisions are durable before they are sent.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toHex } from '@qnexus/crypto';
import { QnexusError } from '@qnexus/types';
import { Coordinator, type XferEntry } from '../src/coordinator.js';
import { ActionRunner } from '../src/service.js';
import { BeaconStore, decodeEntry, encodeEntry } from '../src/store.js';
import { FakeSigner, destRecord, info, key, sourceRecord, testGenesis, text } from './helpers.js';

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
});
