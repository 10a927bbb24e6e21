import { sendMsg } from '@qnexus/state';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { QnexusError, encodeTx, openTx, txSigningBytes, type TxEnvelope } from '@qnexus/types';
import { addressFromPublicKey, generateKeyPair, getBackend, sha256, toHex } from '@qnexus/crypto';
import {
  AdmissionJournal,
  decodeAdmissionJournal,
  decodeMempoolJournal,
  encodeAdmissionJournal,
  encodeMempoolJournal,
  readAdmissionJournal,
  saveMempoolJournal,
  takeMempoolJournal,
} from '../src/mempool-journal.js';

/**
 * The journal stores and returns bytes; it never parses them. These stand-ins carry what it
 * reads of an envelope (the id and the wire bytes), so hundreds cost no signatures.
 */
function fake(i: number, len = 40 + (i % 13)): TxEnvelope {
  const raw = new Uint8Array(len).map((_, k) => (i * 31 + k * 7) & 0xff);
  return { hashHex: toHex(sha256(raw)), raw } as TxEnvelope;
}
const raws = (xs: readonly TxEnvelope[]) => xs.map((x) => x.raw);

describe('node: admission journal (file format)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qnexus-journal-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const txs = [1, 2, 3].map((i) => fake(i));

  it('round trips the records in order', () => {
    const d = decodeAdmissionJournal(encodeAdmissionJournal(raws(txs)));
    assert.deepEqual(d, { txs: raws(txs), tailBytes: 0 });
    assert.deepEqual(decodeAdmissionJournal(encodeAdmissionJournal([])), { txs: [], tailBytes: 0 });
  });

  it('a torn last record (a crash mid-write) is dropped; the records before it are kept and the file is not moved', () => {
    const path = join(dir, 'torn.journal');
    const full = encodeAdmissionJournal(raws(txs));
    for (const cut of [1, 8, 20]) {
      writeFileSync(path, full.subarray(0, full.length - cut));
      const got = readAdmissionJournal(path);
      assert.deepEqual(got.txs, raws(txs.slice(0, 2)), `cut ${cut}`);
      assert.equal(got.warning, undefined);
      assert.ok(got.tailBytes > 0);
      assert.ok(existsSync(path) && !existsSync(`${path}.corrupt`));
    }
  });

  it('a record failing its checksum keeps the good prefix and leaves a copy aside, with a warning', () => {
    const path = join(dir, 'flip.journal');
    const b = encodeAdmissionJournal(raws(txs));
    const second = 8 + 8 + txs[0]!.raw.length;
    b[second + 8 + 3]! ^= 0xff; // a payload byte of the second record
    writeFileSync(path, b);
    const got = readAdmissionJournal(path);
    assert.deepEqual(got.txs, raws(txs.slice(0, 1)));
    assert.match(got.warning ?? '', /checksum/);
    assert.equal(readFileSync(`${path}.corrupt`).length, b.length, 'the whole file kept for inspection');
  });

  it('an impossible record length counts as corruption, not as a torn tail', () => {
    const b = encodeAdmissionJournal(raws(txs));
    b.writeUInt32LE(0xffffffff, 8);
    const d = decodeAdmissionJournal(b);
    assert.equal(d.txs.length, 0);
    assert.match(d.corrupt ?? '', /claims/);
  });

  it('a foreign or empty file is moved aside and yields nothing; no file yields nothing', () => {
    const path = join(dir, 'foreign.journal');
    writeFileSync(path, 'not a journal at all');
    const got = readAdmissionJournal(path);
    assert.deepEqual(got.txs, []);
    assert.match(got.warning ?? '', /not an admission journal/);
    assert.ok(!existsSync(path) && existsSync(`${path}.corrupt`));
    assert.deepEqual(readAdmissionJournal(join(dir, 'absent.journal')), { txs: [], tailBytes: 0 });
  });
});

describe('node: admission journal (appends, group commit, compaction)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qnexus-journal-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const fresh = async (over: { maxEntries?: number; registry?: Registry } = {}) => {
    const j = new AdmissionJournal(join(dir, `j${n++}.journal`), { maxEntries: over.maxEntries ?? 10_000, ...(over.registry ? { registry: over.registry } : {}) });
    await j.open([]);
    return j;
  };

  it('an append resolves once its record is in the file; appending an entry again writes nothing', async () => {
    const j = await fresh();
    const t = fake(1);
    await j.append(t);
    assert.deepEqual(readAdmissionJournal(j.path).txs, [t.raw], 'on disk when the promise resolves');
    const before = j.stats.records;
    await j.append(t);
    assert.equal(j.stats.records, before);
    await j.close([]);
  });

  it('admissions of one event-loop turn share one durable write: 200 appends, one write, all durable, metrics count them', async () => {
    const registry = new Registry();
    const j = await fresh({ registry });
    const base = j.stats.fsyncs;
    const txs = Array.from({ length: 200 }, (_, i) => fake(100 + i));
    await Promise.all(txs.map((t) => j.append(t)));
    const fsyncs = j.stats.fsyncs - base;
    // All 200 came in one turn of the event loop: they share the first group's single durable write.
    assert.equal(fsyncs, 1, `200 admissions in one turn took ${fsyncs} durable writes`);
    assert.equal(j.stats.groups, 1);
    assert.equal(j.stats.records, 200);
    assert.deepEqual(new Set(readAdmissionJournal(j.path).txs.map((r) => toHex(r))), new Set(txs.map((t) => toHex(t.raw))));
    const text = await registry.metrics();
    assert.match(text, /qnexus_admission_journal_fsyncs_total \d+/);
    assert.match(text, /qnexus_admission_journal_group_entries_sum 200/);
    assert.match(text, new RegExp(`qnexus_admission_journal_bytes ${statSync(j.path).size}`));
    await j.close([]);
  });

  it('removed entries die; once the dead outnumber the live the file is rewritten with the live set only', async () => {
    const j = await fresh();
    const txs = Array.from({ length: 400 }, (_, i) => fake(1000 + i));
    await Promise.all(txs.map((t) => j.append(t)));
    const big = statSync(j.path).size;
    const compactions = j.stats.compactions;
    for (const t of txs.slice(0, 390)) j.remove(t.hashHex);
    await j.idle();
    assert.equal(j.stats.compactions, compactions + 1);
    assert.deepEqual(readAdmissionJournal(j.path).txs, raws(txs.slice(390)));
    assert.ok(statSync(j.path).size < big / 10);
    // Appends after a compaction go to the new file.
    const late = fake(5000);
    await j.append(late);
    assert.deepEqual(readAdmissionJournal(j.path).txs, [...raws(txs.slice(390)), late.raw]);
    assert.equal(j.size, 11);
    await j.close([]);
  });

  it('a few dead records do not trigger a rewrite', async () => {
    const j = await fresh();
    const txs = Array.from({ length: 20 }, (_, i) => fake(7000 + i));
    await Promise.all(txs.map((t) => j.append(t)));
    const c = j.stats.compactions;
    for (const t of txs) j.remove(t.hashHex);
    await j.idle();
    assert.equal(j.stats.compactions, c);
    await j.close([]);
  });

  it('bounded like the mempool: past maxEntries an append is refused MEMPOOL_FULL', async () => {
    const j = await fresh({ maxEntries: 2 });
    await j.append(fake(1));
    await j.append(fake(2));
    await assert.rejects(j.append(fake(3)), (e: unknown) => e instanceof QnexusError && e.code === 'MEMPOOL_FULL');
    j.remove(fake(1).hashHex);
    await j.append(fake(3));
    await j.close([]);
  });

  it('a clean stop writes the snapshot it is given; later appends are refused; a journal never opened is left alone', async () => {
    const j = await fresh();
    await j.append(fake(1));
    await j.close([fake(8), fake(9)]);
    assert.deepEqual(readAdmissionJournal(j.path).txs, [fake(8).raw, fake(9).raw]);
    await assert.rejects(j.append(fake(10)), (e: unknown) => e instanceof QnexusError && e.code === 'UNAVAILABLE');
    // A start that failed before re-admission must not wipe the previous run's journal.
    const again = new AdmissionJournal(j.path, { maxEntries: 10 });
    await again.close([]);
    assert.equal(readAdmissionJournal(j.path).txs.length, 2);
  });

  it('open starts a fresh file holding what start-up re-admitted', async () => {
    const path = join(dir, 'reopen.journal');
    writeFileSync(path, encodeAdmissionJournal(raws([fake(1), fake(2), fake(3)])));
    truncateSync(path, statSync(path).size - 5); // torn tail from a crash
    const j = new AdmissionJournal(path, { maxEntries: 10 });
    await j.open([fake(2)]);
    await j.append(fake(4));
    const got = readAdmissionJournal(path);
    assert.deepEqual(got.txs, [fake(2).raw, fake(4).raw]);
    assert.equal(got.tailBytes, 0, 'the torn tail is gone, so later appends are readable');
    await j.close([]);
  });
});

describe('node: mempool journal of earlier versions (clean stop only)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qnexus-journal-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const key = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(7));
  const to = addressFromPublicKey(generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(8)).publicKey);
  const txs = [0n, 1n].map((nonce) => {
    const body = { chainId: 'journal-test', nonce, fee: 1n, publicKey: key.publicKey, payload: sendMsg('transfer', { to: to, amount: 5n }) };
    return openTx(encodeTx({ body, signature: getBackend('ml-dsa-44').sign(key.secretKey, txSigningBytes(body)) }));
  });

  it('is read once and removed; a malformed one is moved aside', () => {
    assert.deepEqual(decodeMempoolJournal(encodeMempoolJournal(raws(txs))), raws(txs));
    const path = join(dir, 'mempool.journal');
    assert.equal(saveMempoolJournal(path, txs), 2);
    assert.deepEqual(takeMempoolJournal(path), { txs: raws(txs) });
    assert.ok(!existsSync(path));
    writeFileSync(path, 'junk');
    assert.deepEqual(takeMempoolJournal(path).txs, []);
    assert.ok(existsSync(`${path}.corrupt`));
  });
});
