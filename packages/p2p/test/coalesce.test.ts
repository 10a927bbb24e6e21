import assert from 'node:assert/strict';
import { Uint8ArrayList } from 'uint8arraylist';
import { coalesce } from '../src/coalesce.js';

/** A source that hands out frames the way yamux's pushable does: several in one turn, then a pause. */
function frames(groups: number[][], failAfter = false): AsyncIterable<Uint8Array | Uint8ArrayList> {
  return (async function* () {
    let n = 0;
    for (const g of groups) {
      for (const len of g) yield new Uint8Array(len).fill(n++ & 0xff);
      // The next group comes a few event-loop turns later.
      await new Promise((r) => setTimeout(r, 5));
    }
    if (failAfter) throw new Error('socket reset');
  })();
}

async function drain(src: AsyncIterable<Uint8Array | Uint8ArrayList>): Promise<{ chunks: number; bytes: Uint8Array }> {
  const all = new Uint8ArrayList();
  let chunks = 0;
  for await (const c of src) {
    chunks++;
    all.append(c);
  }
  return { chunks, bytes: all.subarray() };
}

describe('p2p: coalescing connection writes', () => {
  it('frames written in one turn go out as one chunk, in order, byte for byte', async () => {
    const groups = [[12, 300, 12, 300, 12], [12], [40, 40, 40, 40]];
    const expect = await drain(frames(groups));
    const got = await drain(coalesce(frames(groups)));
    assert.deepEqual(got.bytes, expect.bytes);
    assert.equal(expect.chunks, 10);
    // One chunk per group at most (the generator yields a group within one turn).
    assert.ok(got.chunks <= 3 && got.chunks >= 1, `got ${got.chunks} chunks`);
  });

  it('no chunk exceeds the cap unless a single frame does', async () => {
    const cap = 1000;
    const groups = [[400, 400, 400, 400, 400], [2500], [10, 990, 1]];
    const out: number[] = [];
    const all = new Uint8ArrayList();
    for await (const c of coalesce(frames(groups), cap)) {
      out.push(c.byteLength);
      all.append(c);
    }
    assert.deepEqual(all.subarray(), (await drain(frames(groups))).bytes);
    for (const n of out) assert.ok(n <= cap || n === 2500, `chunk of ${n}`);
    assert.ok(out.includes(2500));
  });

  it("the source's error arrives after what was queued before it", async () => {
    const seen: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const c of coalesce(frames([[5, 6], [7]], true))) seen.push(c.byteLength);
      })(),
      /socket reset/,
    );
    assert.equal(seen.reduce((a, b) => a + b, 0), 18);
  });

  it('an empty source ends at once', async () => {
    assert.deepEqual(await drain(coalesce(frames([]))), { chunks: 0, bytes: new Uint8Array(0) });
  });
});
