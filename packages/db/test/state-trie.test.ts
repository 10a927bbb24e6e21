// The node's state on disk: the Merkle trie's nodes and the flat values in
// LevelDB, written with each block's batch. Crash atomicity with a real trie
// (SIGKILL of a writer child), pruning of old versions, and snapshots written
// into a fresh store from another store's exported subtrees.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromHex, sha256, toHex, utf8 } from '@qnexus/crypto';
import { QnexusError } from '@qnexus/types';
import { MAX_RANGE, WorldState, changesOf, verifyStateProof } from '@qnexus/state';
import { ChainStore } from '@qnexus/db';
import { commitFor, trieModelAt, trieWritesAt } from './fixture.js';
import { runWriter } from './child.js';

const TRIE_WRITER = fileURLToPath(new URL('./trie-writer.ts', import.meta.url));

let root: string;
let n = 0;
const freshDir = () => join(root, `trie-${n++}`);
before(() => {
  root = mkdtempSync(join(tmpdir(), 'qnexus-trie-db-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

const sorted = (m: Map<string, Uint8Array>) => [...m].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([k, v]): [string, string] => [k, toHex(v)]);
const flip = (b: Uint8Array, i: number) => b.map((x, j) => (j === i ? x ^ 1 : x));

/** The stored state at head H is exactly the model's: values, ranges, the root of a rebuild from scratch, proofs. */
function assertStateIs(store: ChainStore, H: number, ctx: string): void {
  const model = trieModelAt(H);
  const s = WorldState.open(store.stateReads(), H);
  assert.equal(toHex(s.root()), toHex(WorldState.fromEntries(model).root()), `${ctx}: root = a from-scratch rebuild`);
  assert.deepEqual(s.kv.range('', MAX_RANGE).map(([k, v]) => [k, toHex(v)]), sorted(model), `${ctx}: entries`);
  for (const [k, v] of model) assert.equal(toHex(s.kv.get(k)!), toHex(v), `${ctx}: get ${k}`);
  const present = [...model.keys()].slice(0, 20).map(fromHex);
  const absent = [sha256(utf8('absent-1')), fromHex([...model.keys()][0]! + '00'), new Uint8Array([1, 0x61])];
  for (const p of s.prove([...present, ...absent])) {
    assert.ok(verifyStateProof(s.root(), p), `${ctx}: proof of ${toHex(p.key)} (${p.value ? 'present' : 'absent'})`);
    const last = p.nodes.length - 1;
    assert.equal(verifyStateProof(s.root(), { ...p, nodes: p.nodes.map((x, i) => (i === last ? flip(x, x.length - 1) : x)) }), false, `${ctx}: tampered proof`);
  }
}

describe('db: the state trie on disk', function () {
  this.timeout(60_000);

  it('after each SIGKILL during commits, the store reopens at some head H whose trie is exactly the state of H', async () => {
    const dir = freshDir();
    let prev = -1;
    const delays = [250, 60, 130, 400];
    for (const [iter, delay] of delays.entries()) {
      const run = await runWriter(TRIE_WRITER, [dir], delay);
      assert.equal(run.signal, 'SIGKILL', `child should have been killed (code ${run.code}): ${run.stderr}`);
      assert.equal(run.lines[0], `ready ${prev + 1}`, run.stderr);
      const acked = run.lines.filter((l) => l.startsWith('committed ')).map((l) => Number(l.slice(10)));
      const last = acked.length ? acked[acked.length - 1]! : prev;
      const store = await ChainStore.open(dir);
      try {
        const H = await store.headHeight();
        assert.ok(H === last || H === last + 1, `iteration ${iter}: head ${H}, last acknowledged ${last}`);
        // (killed before its first commit: nothing at all was written)
        if (H >= 0) assertStateIs(store, H, `iteration ${iter}, head ${H}`);
        else assert.equal((await store.countTrie()).nodes, 0);
        prev = H;
      } finally {
        await store.close();
      }
    }
    assert.ok(prev >= 5, `the writer made progress (head ${prev})`);
  });

  it('pruning deletes what only versions before the window read: those versions are gone, later ones whole', async () => {
    const store = await ChainStore.open(freshDir());
    try {
      const s = WorldState.open(store.stateReads(), -1);
      for (let h = 0; h <= 30; h++) {
        const u = s.apply(changesOf(trieWritesAt(h)), h);
        await store.commitBlock({ ...commitFor(h), writes: u.writes, trie: u.trie });
        s.flushed(u);
      }
      const before = await store.countTrie();
      const oldRoot = s.kv.rootAt(10);
      const pruned = await store.pruneStale(20);
      const after = await store.countTrie();
      assert.ok(pruned > 0 && after.nodes === before.nodes - pruned, `pruned ${pruned} of ${before.nodes} nodes`);
      assert.ok(after.stale < before.stale);
      // a fresh view (no cache) of the same store: versions 0..19 are gone, 20..30 read in full
      const view = WorldState.open(store.stateReads(), 30);
      for (const v of [0, 10, 19]) {
        assert.throws(() => view.kv.rootAt(v), (e: unknown) => e instanceof QnexusError && e.code === 'STATE_PRUNED', `version ${v}`);
        assert.throws(() => view.prove([fromHex([...trieModelAt(v).keys()][0]!)], v), (e: unknown) => e instanceof QnexusError && e.code === 'STATE_PRUNED');
      }
      assert.ok(oldRoot.length === 32);
      for (const v of [20, 25, 30]) {
        const model = trieModelAt(v);
        assert.equal(toHex(view.kv.rootAt(v)), toHex(WorldState.fromEntries(model).root()), `version ${v} root`);
        for (const [k, val] of [...model].slice(0, 50)) assert.equal(toHex(view.kv.getAt(k, v)!), toHex(val), `version ${v}: ${k}`);
        const [k0] = model.keys();
        assert.ok(verifyStateProof(view.kv.rootAt(v), view.prove([fromHex(k0!)], v)[0]!));
      }
      assert.equal(await store.pruneStale(20), 0, 'pruning again finds nothing');
    } finally {
      await store.close();
    }
  });
});
