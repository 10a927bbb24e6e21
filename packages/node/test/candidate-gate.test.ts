// The gate in front of vote and proposal signature checks: a few candidates per slot, verdicts bound to the signature.
import assert from 'node:assert/strict';
import { CandidateGate } from '../src/candidate-gate.js';

const enc = (s: string) => new TextEncoder().encode(s);

/** A verifier that accepts exactly the signature "good", resolving when the test releases it. */
function verifier() {
  const waiting: (() => void)[] = [];
  let calls = 0;
  return {
    get calls() {
      return calls;
    },
    verify(sig: string, hold = false): () => Promise<boolean> {
      return () => {
        calls++;
        if (!hold) return Promise.resolve(sig === 'good');
        return new Promise((r) => waiting.push(() => r(sig === 'good')));
      };
    },
    release(): void {
      for (const f of waiting.splice(0)) f();
    },
  };
}

describe('node: candidate gate (vote and proposal signature checks)', () => {
  it('checks a body once; re-sends of a verified body are ignored without a check', async () => {
    const g = new CandidateGate();
    const v = verifier();
    assert.equal(await g.check('v/5/9/1', 5, enc('body'), enc('good'), false, v.verify('good')), 'accept');
    assert.equal(await g.check('v/5/9/1', 5, enc('body'), enc('good'), false, v.verify('good')), 'ignore');
    assert.equal(await g.check('v/5/9/1', 5, enc('body'), enc('other signature bytes'), false, v.verify('good')), 'ignore');
    assert.equal(v.calls, 1);
  });

  it('admits an honest vote and one conflicting vote (evidence), nothing more for the slot', async () => {
    const g = new CandidateGate();
    const v = verifier();
    assert.equal(await g.check('k', 1, enc('block-a'), enc('good'), false, v.verify('good')), 'accept');
    assert.equal(await g.check('k', 1, enc('block-b'), enc('good'), false, v.verify('good')), 'accept');
    assert.equal(await g.check('k', 1, enc('nil'), enc('good'), false, v.verify('good')), 'ignore');
    assert.equal(v.calls, 2);
  });

  it('a forged copy in flight does not decide the genuine one (keyed by signature too)', async () => {
    const g = new CandidateGate();
    const v = verifier();
    const forged = g.check('k', 1, enc('body'), enc('forged'), false, v.verify('forged', true));
    const genuine = g.check('k', 1, enc('body'), enc('good'), false, v.verify('good', true));
    v.release();
    assert.equal(await forged, 'reject');
    assert.equal(await genuine, 'accept');
  });

  it('identical copies in flight share one check', async () => {
    const g = new CandidateGate();
    const v = verifier();
    const a = g.check('k', 1, enc('body'), enc('good'), false, v.verify('good', true));
    const b = g.check('k', 1, enc('body'), enc('good'), false, v.verify('good', true));
    v.release();
    assert.deepEqual(await Promise.all([a, b]), ['accept', 'ignore']);
    assert.equal(v.calls, 1);
  });

  it('bounds checks in flight, and after a few failures only trusted peers get theirs checked', async () => {
    const g = new CandidateGate({ verified: 2, inFlight: 2, failures: 3 });
    const v = verifier();
    const running = [0, 1].map((i) => g.check('k', 1, enc('body'), enc(`forged-${i}`), false, v.verify('x', true)));
    assert.equal(await g.check('k', 1, enc('body'), enc('forged-2'), false, v.verify('x')), 'ignore', 'two already in flight');
    v.release();
    assert.deepEqual(await Promise.all(running), ['reject', 'reject']);
    assert.equal(await g.check('k', 1, enc('body'), enc('forged-3'), false, v.verify('x')), 'reject');
    // Three failures: an untrusted peer's copy (even the genuine one) is no longer checked, a trusted peer's is.
    assert.equal(await g.check('k', 1, enc('body'), enc('good'), false, v.verify('good')), 'ignore');
    assert.equal(await g.check('k', 1, enc('body'), enc('good'), true, v.verify('good')), 'accept');
    assert.equal(v.calls, 4);
  });

  it('prunes slots below the finalized height', async () => {
    const g = new CandidateGate();
    const v = verifier();
    await g.check('a', 3, enc('x'), enc('good'), false, v.verify('good'));
    await g.check('b', 4, enc('x'), enc('good'), false, v.verify('good'));
    g.prune(4);
    assert.equal(g.size, 1);
    // Slot 'a' is forgotten (checked anew), slot 'b' still knows its body.
    assert.equal(await g.check('b', 4, enc('x'), enc('good'), false, v.verify('good')), 'ignore');
    assert.equal(v.calls, 2);
    assert.equal(await g.check('a', 3, enc('x'), enc('good'), false, v.verify('good')), 'accept');
    assert.equal(v.calls, 3);
  });
});
