// The verify pool's urgent lane: a consensus signature does not wait behind a backlog of transaction checks.
import assert from 'node:assert/strict';
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
});
