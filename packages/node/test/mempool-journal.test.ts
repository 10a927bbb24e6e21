import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeTx, openTx, txSigningBytes } from '@qnexus/types';
import { addressFromPublicKey, generateKeyPair, getBackend } from '@qnexus/crypto';
import { decodeMempoolJournal, encodeMempoolJournal, saveMempoolJournal, takeMempoolJournal } from '../src/mempool-journal.js';

describe('node: mempool journal', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qnexus-journal-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const key = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(7));
  const to = addressFromPublicKey(generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(8)).publicKey);
  const txs = [0n, 1n, 2n].map((nonce) => {
    const body = { chainId: 'journal-test', nonce, fee: 1n, publicKey: key.publicKey, payload: { kind: 'transfer' as const, to, amount: 5n } };
    return openTx(encodeTx({ body, signature: getBackend('ml-dsa-44').sign(key.secretKey, txSigningBytes(body)) }));
  });

  it('round trips the raw transactions in order; save → take removes the file', () => {
    assert.deepEqual(decodeMempoolJournal(encodeMempoolJournal(txs.map((t) => t.raw))), txs.map((t) => t.raw));
    const path = join(dir, 'a.journal');
    assert.equal(saveMempoolJournal(path, txs), 3);
    const got = takeMempoolJournal(path);
    assert.deepEqual(got, { txs: txs.map((t) => t.raw) });
    assert.ok(!existsSync(path), 'read once');
    assert.deepEqual(takeMempoolJournal(path), { txs: [] }, 'no journal: nothing to restore');
  });

  it('an empty mempool leaves no file; a stale one is removed', () => {
    const path = join(dir, 'b.journal');
    writeFileSync(path, 'old');
    assert.equal(saveMempoolJournal(path, []), 0);
    assert.ok(!existsSync(path));
  });

  it('a truncated or foreign file is moved aside and yields nothing', () => {
    const path = join(dir, 'c.journal');
    const good = encodeMempoolJournal(txs.map((t) => t.raw));
    writeFileSync(path, good.subarray(0, good.length - 10));
    const got = takeMempoolJournal(path);
    assert.equal(got.txs.length, 0);
    assert.match(got.error ?? '', /truncated/);
    assert.ok(existsSync(`${path}.corrupt`) && !existsSync(path));
    assert.throws(() => decodeMempoolJournal(new TextEncoder().encode('not a journal at all')), /not a mempool journal/);
    assert.equal(readFileSync(`${path}.corrupt`).length, good.length - 10, 'kept for inspection');
  });
});
