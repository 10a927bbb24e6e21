import { sendMsg } from '@qnexus/state';
// Admission over the real HTTP API of a real node (in-process, one shard, no peers): a 202 is on disk before it is
// sent and survives a crash; load is shed by capacity (a full mempool, with Retry-After), not by one slow window;
// an unknown hash is TX_UNKNOWN.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressFromPublicKey, formatAddress, generateKeyPair, getBackend, toHex, type KeyPair } from '@qnexus/crypto';
import { encodeTx, openTx, txSigningBytes, type Genesis, type TxEnvelope } from '@qnexus/types';
import { MEMPOOL_MIN_BACKLOG, MEMPOOL_RATE_ALPHA, startNode } from '../src/node.js';
import type { NodeConfig, RunningNode } from '../src/config.js';
import { ADMISSION_JOURNAL_FILE, encodeJournalRecord, readAdmissionJournal } from '../src/mempool-journal.js';
import { LoadMonitor } from '../src/load.js';
import { embeddedNodeConfig, unitGenesis } from './helpers.js';

const noble = getBackend('ml-dsa-44');
const vals: KeyPair[] = [1, 2, 3, 4].map((i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(i)));
const beaconKey = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(70));
const users = [51, 52, 53, 54, 55].map((i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(i)));
const other = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(60));
/** Senders of the backlog test: 9 × 58 nonces (past the floor of 512 by two), within each account's nonce window (64). */
const crowd = [80, 81, 82, 83, 84, 85, 86, 87, 88].map((i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(i)));
const addrOf = (k: KeyPair) => formatAddress(addressFromPublicKey(k.publicKey));

function transfer(g: Genesis, from: KeyPair, nonce: bigint, amount = 10n): TxEnvelope {
  const body = { chainId: g.chainId, nonce, fee: 1n, publicKey: from.publicKey, payload: sendMsg('transfer', { to: addressFromPublicKey(other.publicKey), amount: amount }) };
  return openTx(encodeTx({ body, signature: noble.sign(from.secretKey, txSigningBytes(body)) }));
}

async function submit(url: string, env: TxEnvelope): Promise<{ status: number; code?: string; message?: string; retryAfter: string | null }> {
  const res = await fetch(`${url}/v1/txs`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: env.raw });
  const j = (await res.json()) as { error?: { code: string; message: string } };
  return { status: res.status, ...(j.error ? { code: j.error.code, message: j.error.message } : {}), retryAfter: res.headers.get('retry-after') };
}

async function txStatus(url: string, hash: string): Promise<{ status: number; body: { status?: string; error?: { code: string } } }> {
  const res = await fetch(`${url}/v1/txs/${hash}`);
  return { status: res.status, body: (await res.json()) as { status?: string; error?: { code: string } } };
}

describe('node: admission (journal before the 202, shedding by capacity)', function () {
  this.timeout(120_000);
  let dir: string;
  let g: Genesis;
  const running: RunningNode[] = [];
  const start = async (name: string, over: Partial<NodeConfig> = {}) => {
    const n = await startNode(embeddedNodeConfig(join(dir, name), g, { verifyWorkers: 0, ...over }));
    running.push(n);
    return n;
  };
  const stop = async (n: RunningNode) => {
    running.splice(running.indexOf(n), 1);
    await n.stop();
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'qnexus-admission-'));
    g = unitGenesis(vals, beaconKey, { chainId: 'admission-test', genesisTime: Date.now(), accounts: [...users, ...crowd].map((u) => ({ address: addrOf(u), balance: 1_000_000n })) });
  });
  after(async () => {
    for (const n of running.splice(0)) await n.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every 202 is in the journal on disk when it is sent; concurrent ones share fsyncs; a crash loses none of them', async () => {
    const node = await start('crash');
    const txs = Array.from({ length: 24 }, (_, i) => transfer(g, users[0]!, BigInt(i)));
    const answers = await Promise.all(txs.map((t) => submit(node.info.apiUrl, t)));
    assert.deepEqual(answers.map((a) => a.status), txs.map(() => 202));
    const path = join(dir, 'crash', ADMISSION_JOURNAL_FILE);
    // What a SIGKILL right now would leave: every acknowledged transaction is in the file.
    const atCrash = readFileSync(path);
    const journaled = new Set(readAdmissionJournal(path).txs.map((r) => toHex(r)));
    for (const t of txs) assert.ok(journaled.has(toHex(t.raw)), `tx ${t.hashHex} acknowledged but not journaled`);
    const metrics = await (await fetch(`${node.info.apiUrl}/metrics`)).text();
    const fsyncs = Number(/^qnexus_admission_journal_fsyncs_total (\d+)/m.exec(metrics)?.[1]);
    // open() takes 2 (file + directory); the 24 admissions must have shared the rest.
    assert.ok(fsyncs - 2 < txs.length, `${fsyncs} fsyncs for ${txs.length} admissions`);
    assert.match(metrics, /^qnexus_admission_journal_group_entries_sum 24$/m);
    await stop(node);
    // Simulate the crash: the file as it was before the clean stop, plus a torn record and a forged transaction.
    const forged = transfer(g, users[1]!, 0n);
    const sig = forged.tx.signature.slice();
    sig[5]! ^= 1;
    writeFileSync(path, atCrash);
    appendFileSync(path, encodeJournalRecord(encodeTx({ body: forged.tx.body, signature: sig })));
    appendFileSync(path, encodeJournalRecord(transfer(g, users[1]!, 1n).raw).subarray(0, 30));
    const again = await start('crash');
    for (const t of txs) assert.equal((await txStatus(again.info.apiUrl, t.hashHex)).body.status, 'pending', `tx ${t.hashHex} lost by the crash`);
    assert.equal((await txStatus(again.info.apiUrl, forged.hashHex)).body.error?.code, 'TX_UNKNOWN', 'an invalid record is dropped at re-admission');
    // Restarted with the re-admitted set only; new admissions are journaled after it.
    assert.equal(readAdmissionJournal(path).txs.length, txs.length);
    await stop(again);
  });

  it('an unknown hash is 404 TX_UNKNOWN (not admitted here, or not gossiped here yet)', async () => {
    const node = await start('unknown');
    const r = await txStatus(node.info.apiUrl, 'ab'.repeat(32));
    assert.equal(r.status, 404);
    assert.equal(r.body.error?.code, 'TX_UNKNOWN');
    await stop(node);
  });

  it('a full mempool answers 503 MEMPOOL_FULL with Retry-After', async () => {
    const node = await start('full', { mempoolMaxTxs: 2 });
    const url = node.info.apiUrl;
    assert.equal((await submit(url, transfer(g, users[2]!, 0n))).status, 202);
    assert.equal((await submit(url, transfer(g, users[2]!, 1n))).status, 202);
    const r = await submit(url, transfer(g, users[2]!, 2n));
    assert.deepEqual([r.status, r.code], [503, 'MEMPOOL_FULL']);
    assert.ok(r.retryAfter !== null && Number(r.retryAfter) >= 1, `Retry-After: ${r.retryAfter}`);
    await stop(node);
  });

  it('a mempool full by bytes answers 503 MEMPOOL_FULL too, before checking the signature', async () => {
    const maxBytes = 16 * 1024; // the smallest allowed: one transaction of the largest size
    const node = await start('full-bytes', { mempoolMaxBytes: maxBytes });
    const url = node.info.apiUrl;
    const txs = Array.from({ length: 12 }, (_, i) => transfer(g, users[4]!, BigInt(i)));
    // As many as fit whole, counted from their encodings.
    let fit = 0;
    for (let used = 0; fit < txs.length && used + txs[fit]!.raw.length <= maxBytes; fit++) used += txs[fit]!.raw.length;
    assert.ok(fit >= 1 && fit < txs.length, `${fit} of ${txs.length} fit`);
    for (const t of txs.slice(0, fit)) assert.equal((await submit(url, t)).status, 202);
    const r = await submit(url, txs[fit]!);
    assert.deepEqual([r.status, r.code], [503, 'MEMPOOL_FULL']);
    const verifies = (m: string): number => Number(/^qnexus_crypto_verify_total\{kind="tx"\} (\d+)/m.exec(m)?.[1] ?? 0);
    const before = verifies(await (await fetch(`${url}/metrics`)).text());
    assert.equal((await submit(url, txs[fit + 1]!)).code, 'MEMPOOL_FULL');
    assert.equal(verifies(await (await fetch(`${url}/metrics`)).text()), before, 'a full pool refuses before any signature work');
    await stop(node);
  });

  it('a lag blip alone does not refuse submissions', async () => {
    const node = await start('blip');
    const url = node.info.apiUrl;
    const txs = [0n, 1n, 2n].map((n) => transfer(g, users[3]!, n));
    for (const t of txs) {
      // Hold the event loop for 400 ms (four times the 1 s slot's old budget of 100 ms), then submit at once:
      // the monitor's window closes on that lag before the request is read.
      const until = Date.now() + 400;
      while (Date.now() < until) {
        /* busy: a blip of lag */
      }
      const r = await submit(url, t);
      assert.equal(r.status, 202, `refused after a blip: ${r.code}`);
    }
    await stop(node);
  });

  it('a mempool holding more than the chain drains in a few slots sheds NODE_BUSY (here nothing finalizes: past the floor of 512)', async () => {
    const node = await start('backlog', { apiRateLimit: 0 });
    const url = node.info.apiUrl;
    const txs = crowd.flatMap((k) => Array.from({ length: 58 }, (_, n) => transfer(g, k, BigInt(n))));
    // The floor is the backlog never shed for: a pool holding it still takes one more.
    const first = txs.slice(0, MEMPOOL_MIN_BACKLOG + 1);
    for (let i = 0; i < first.length; i += 16) {
      const answers = await Promise.all(first.slice(i, i + 16).map((t) => submit(url, t)));
      for (const a of answers) assert.equal(a.status, 202, `refused below the floor: ${a.code}`);
    }
    // The monitor reads the pool on each request: one more is past the backlog allowed.
    const r = await submit(url, txs[MEMPOOL_MIN_BACKLOG + 1]!);
    assert.equal(r.status, 503);
    assert.equal(r.code, 'NODE_BUSY');
    assert.equal(r.retryAfter, '1');
    assert.match(r.message ?? '', /transaction backlog: 513 waiting/);
    await stop(node);
  });

  it('the load monitor: a sustained lag or a full queue sheds, one slow window does not', () => {
    const m = new LoadMonitor(100, 60_000, 4);
    try {
      m.observe(900, 2000);
      assert.equal(m.overloaded, false, 'one slow window');
      m.observe(10, 50);
      for (let i = 0; i < 3; i++) m.observe(150, 300);
      assert.equal(m.overloaded, false, 'three windows in a row are not yet sustained');
      m.observe(150, 300);
      assert.match(m.reason ?? '', /4 windows in a row/);
      m.observe(20, 40);
      assert.equal(m.overloaded, false);
      let full = false;
      m.addSignal('signature verification backlog full', () => full);
      assert.equal(m.overloaded, false);
      full = true;
      assert.equal(m.reason, 'signature verification backlog full');
    } finally {
      m.stop();
    }
  });

  it('the load monitor: a verify queue sheds by how long its backlog takes to drain, not by its length', () => {
    const m = new LoadMonitor(100, 60_000, 4);
    try {
      let backlog = 0;
      let completed = 0;
      let t = 0;
      m.addQueue('signature verification backlog', { backlog: () => backlog, completed: () => completed, maxDrainMs: 500, minItems: 256 }, t);
      // Before any rate is known the floor is the rule.
      backlog = 256;
      assert.equal(m.overloaded, false);
      backlog = 257;
      assert.match(m.reason ?? '', /^signature verification backlog: 257 waiting, more than 500 ms of work at the measured not measured yet/);
      // Idle windows measure nothing: the rate stays unknown.
      backlog = 0;
      m.sampleQueues((t += 250));
      assert.equal(m.queueLimit('signature verification backlog'), 256);
      // A busy window in which the workers finished 2,500 checks: 10,000/s, so half a second is 5,000 checks.
      backlog = 3000;
      m.sampleQueues((t += 250));
      completed += 2500;
      m.sampleQueues((t += 250));
      assert.equal(m.queueLimit('signature verification backlog'), 5000);
      backlog = 4000;
      assert.equal(m.overloaded, false, 'a burst of 4,000 is 0.4 s of work at this rate: carried, not shed');
      backlog = 5001;
      assert.match(m.reason ?? '', /5001 waiting, more than 500 ms of work at the measured 10000\/s/);
      // The workers slow down (the host gives them less CPU): the limit follows, averaged.
      completed += 250;
      m.sampleQueues((t += 250));
      const slower = m.queueLimit('signature verification backlog')!;
      assert.ok(slower < 5000 && slower > 256, `limit ${slower}`);
      assert.equal(m.overloaded, true);
    } finally {
      m.stop();
    }
  });

  it('the load monitor: a queue drained in bursts (a block a slot) keeps a steady limit with a small alpha', () => {
    const m = new LoadMonitor(100, 60_000, 4);
    try {
      let completed = 0;
      let t = 0;
      const q = { backlog: () => 1000, completed: () => completed, maxDrainMs: 4000, minItems: 512 };
      m.addQueue('bursty', { ...q, alpha: MEMPOOL_RATE_ALPHA }, t);
      m.addQueue('default', q, t);
      // 300 transactions finalized once a second (one window in four), for a minute.
      const seen = { bursty: [] as number[], default: [] as number[] };
      for (let w = 1; w <= 240; w++) {
        if (w % 4 === 0) completed += 300;
        m.sampleQueues((t += 250));
        if (w > 120) for (const k of ['bursty', 'default'] as const) seen[k].push(m.queueLimit(k)!);
      }
      assert.throws(() => m.addQueue('no weight', { ...q, alpha: 0 }), RangeError);
      // The mean is 300/s, so 4 s of it is 1,200.
      const spread = (xs: number[]) => [Math.min(...xs), Math.max(...xs)];
      const [lo, hi] = spread(seen.bursty);
      assert.ok(lo >= 1000 && hi <= 1400, `bursty limit ${lo}..${hi}`);
      const [dlo, dhi] = spread(seen.default);
      assert.ok(dlo < 800 && dhi > 1800, `the default weight swings: ${dlo}..${dhi}`);
    } finally {
      m.stop();
    }
  });

  it('--admission-journal false: the 202 comes without a journal write (for measuring its cost)', async () => {
    const node = await start('off', { admissionJournal: false });
    const t = transfer(g, users[3]!, 10n, 1n);
    // Nonce 10 is within the gap window: admitted as pending.
    assert.equal((await submit(node.info.apiUrl, t)).status, 202);
    assert.equal(readAdmissionJournal(join(dir, 'off', ADMISSION_JOURNAL_FILE)).txs.length, 0);
    const metrics = await (await fetch(`${node.info.apiUrl}/metrics`)).text();
    assert.match(metrics, /^qnexus_admission_journal_group_entries_count 0$/m);
    // A clean stop still saves the mempool for the next start.
    await stop(node);
    assert.equal(readAdmissionJournal(join(dir, 'off', ADMISSION_JOURNAL_FILE)).txs.length, 1);
  });
});
