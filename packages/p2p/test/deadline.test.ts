import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { deadlineSignal, withoutListenerCap } from '../src/index.js';

// A full collection on demand, without starting mocha with --expose-gc.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('deadlineSignal', () => {
  it('aborts at its deadline even after a full GC, with the signal held only by its listener', async () => {
    // The case AbortSignal.any([AbortSignal.timeout(ms), parent]) loses on Node 20: nothing but the
    // composite references the timeout signal, a GC collects it, and the composite never aborts.
    const parent = withoutListenerCap(new AbortController());
    let fired = 0;
    for (let i = 0; i < 50; i++) {
      const { signal } = deadlineSignal(100, parent.signal);
      signal.addEventListener('abort', () => fired++, { once: true });
    }
    await sleep(20);
    gc();
    await sleep(300);
    assert.equal(fired, 50);
  });

  it('its reason is a TimeoutError naming the deadline', async () => {
    const { signal } = deadlineSignal(10);
    await sleep(50);
    assert.ok(signal.aborted);
    assert.equal((signal.reason as DOMException).name, 'TimeoutError');
    assert.match((signal.reason as Error).message, /10 ms/);
  });

  it('follows its parent, with the parent’s reason, before the deadline', () => {
    const parent = new AbortController();
    const d = deadlineSignal(60_000, parent.signal);
    assert.equal(d.signal.aborted, false);
    const why = new Error('stopping');
    parent.abort(why);
    assert.equal(d.signal.aborted, true);
    assert.equal(d.signal.reason, why);
    d.clear();
  });

  it('is aborted at once when the parent already is', () => {
    const parent = new AbortController();
    parent.abort(new Error('gone'));
    const d = deadlineSignal(60_000, parent.signal);
    assert.equal(d.signal.aborted, true);
    d.clear();
  });

  it('clear() stops the deadline and detaches from the parent', async () => {
    const parent = new AbortController();
    const d = deadlineSignal(20, parent.signal);
    d.clear();
    await sleep(60);
    parent.abort();
    assert.equal(d.signal.aborted, false);
  });
});
