// The verify pool's urgent lane: a consensus signature does not wait behind a backlog of transaction checks.
import assert from 'node:assert/strict';
import type { Worker } from 'node:worker_threads';
import { generateKeyPair, getBackend } from '@qnexus/crypto';
// The workers load verify-worker.js next to the pool's module: use the built one (see verifier.test.ts).
import { VerifyPool } from '../dist/verify-pool.js';

describe('node: verify pool', function () {
  this.timeout(60_000);
  const kp = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(9));
  const msg = new TextEncoder().encode('m');
  const sig = getBackend('ml-dsa-44').sign(kp.secretKey, msg);

  it('an urgent check overtakes every non-urgent one still waiting on the main thread', async () => {
    const pool = new VerifyPool('ml-dsa-44', 1);
    try {
      const order: string[] = [];
      const backlog = Array.from({ length: 400 }, (_, i) => pool.verify(kp.publicKey, msg, sig).then((ok) => { assert.ok(ok); order.push(`tx${i}`); }));
      // Let the first batches reach the worker, then ask for a vote's check.
      await new Promise((r) => setImmediate(r));
      const vote = pool.verify(kp.publicKey, msg, sig, true).then((ok) => { assert.ok(ok); order.push('vote'); });
      const forged = pool.verify(kp.publicKey, msg, sig.map((b, i) => (i === 0 ? b ^ 1 : b)), true);
      await Promise.all([...backlog, vote]);
      assert.equal(await forged, false);
      // At most the batches already handed to the worker (2 × 32) finish before it.
      const at = order.indexOf('vote');
      assert.ok(at >= 0 && at <= 64, `the urgent check finished after ${at} of 400 waiting ones`);
    } finally {
      await pool.close();
    }
  });

  describe('sign jobs', () => {
    it('signs with the key the workers were given at start: the signature verifies, a forged one does not', async () => {
      const pool = new VerifyPool('ml-dsa-44', 2, 'noble', { signingKey: kp.secretKey });
      try {
        assert.equal(pool.canSign, true);
        const msgs = Array.from({ length: 5 }, (_, i) => new TextEncoder().encode(`vote ${i}`));
        const sigs = await Promise.all(msgs.map((m) => pool.sign(m)));
        const b = getBackend('ml-dsa-44', 'noble');
        sigs.forEach((s, i) => {
          assert.ok(b.verify(kp.publicKey, msgs[i]!, s), `signature ${i} verifies`);
          assert.equal(b.verify(kp.publicKey, msgs[(i + 1) % msgs.length]!, s), false, 'bound to its own message');
        });
        // And the pool's own verify lane agrees.
        assert.equal(await pool.verify(kp.publicKey, msgs[0]!, sigs[0]!, true), true);
      } finally {
        await pool.close();
      }
    });

    it('a sign job goes ahead of verify batches waiting on the main thread', async () => {
      const pool = new VerifyPool('ml-dsa-44', 1, 'noble', { signingKey: kp.secretKey });
      try {
        const order: string[] = [];
        const backlog = Array.from({ length: 200 }, (_, i) => pool.verify(kp.publicKey, msg, sig).then(() => order.push(`tx${i}`)));
        await new Promise((r) => setImmediate(r));
        const signed = pool.sign(msg).then((s) => { order.push('sign'); return s; });
        await Promise.all([...backlog, signed]);
        const at = order.indexOf('sign');
        assert.ok(at >= 0 && at <= 64, `the sign job finished after ${at} of 200 waiting checks`);
      } finally {
        await pool.close();
      }
    });

    it('a pool without a key refuses sign jobs', async () => {
      const pool = new VerifyPool('ml-dsa-44', 1, 'noble');
      try {
        assert.equal(pool.canSign, false);
        await assert.rejects(pool.sign(msg), /no signing key/);
      } finally {
        await pool.close();
      }
    });

    it('a worker that dies fails every pending sign job (and later ones) instead of leaving them hanging', async () => {
      const pool = new VerifyPool('ml-dsa-44', 1, 'noble', { signingKey: kp.secretKey });
      try {
        const jobs = Array.from({ length: 6 }, () => pool.sign(msg).then(() => 'signed', (e: Error) => e.message));
        const check = pool.verify(kp.publicKey, msg, sig, true).then(() => 'verified', (e: Error) => e.message);
        // Kill the worker before it answers anything (it is still loading its module).
        void (pool as unknown as { workers: { w: Worker }[] }).workers[0]!.w.terminate();
        const results = await Promise.all([...jobs, check]);
        for (const r of results) assert.match(r, /verify worker exited/);
        await assert.rejects(pool.sign(msg), /verify worker exited/);
      } finally {
        await pool.close();
      }
    });

    it('a key the backend cannot sign with fails the job, not the pool', async () => {
      const pool = new VerifyPool('ml-dsa-44', 1, 'noble', { signingKey: new Uint8Array(7) });
      try {
        await assert.rejects(pool.sign(msg), /sign job failed/);
        assert.equal(await pool.verify(kp.publicKey, msg, sig), true);
      } finally {
        await pool.close();
      }
    });
  });
});
