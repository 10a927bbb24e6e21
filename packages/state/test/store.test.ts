// The key-value store under the state machine: branches (writes over a reader,
// committed into the parent or dropped) and range reads over merged layers on
// top of the committed state (the trie: its root, proofs and versions are
// tested in trie.test.ts).
import assert from 'node:assert/strict';
import { toHex, utf8 } from '@qnexus/crypto';
import { QnexusError } from '@qnexus/types';
import { Branch, MAX_RANGE, MemoryTrieDB, MerkleTrie, TrieState, WorldState } from '@qnexus/state';
import { commitTrie, prng, snapshot } from './helpers.js';

const hexCmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const v = (s: string) => utf8(s);

/** What `range(prefix, limit)` must return over a plain map of the visible entries. */
function modelRange(m: ReadonlyMap<string, Uint8Array>, prefix: string, limit: number): [string, string][] {
  return [...m]
    .filter(([k]) => k.startsWith(prefix))
    .sort((a, b) => hexCmp(a[0], b[0]))
    .slice(0, limit)
    .map(([k, x]) => [k, toHex(x)]);
}

const shown = (xs: [string, Uint8Array][]) => xs.map(([k, x]): [string, string] => [k, toHex(x)]);

describe('store: branches', () => {
  function base(): TrieState {
    return WorldState.fromEntries([
      ['0101', v('a')],
      ['0102', v('b')],
      ['0201', v('c')],
    ]).kv;
  }

  it('a dropped branch leaves nothing behind: the parent reads, ranges and write set are unchanged', () => {
    const parent = new Branch(base());
    parent.set('0103', v('p'));
    parent.delete('0102');
    const before = { writes: snapshot(parent), range: shown(parent.range('', 100)), gets: ['0101', '0102', '0103', '0201', '0202'].map((k) => parent.get(k)) };
    const child = parent.branch();
    child.set('0101', v('changed'));
    child.set('0102', v('revived'));
    child.set('0202', v('new'));
    child.delete('0103');
    child.delete('0201');
    // the child sees its own writes over the parent's
    assert.deepEqual(shown(child.range('', 100)), [
      ['0101', toHex(v('changed'))],
      ['0102', toHex(v('revived'))],
      ['0202', toHex(v('new'))],
    ]);
    // a grandchild committed into the child does not reach the parent either
    const grand = child.branch();
    grand.set('0301', v('deep'));
    grand.commit();
    assert.deepEqual(child.get('0301'), v('deep'));
    // drop the child: nothing of it is visible from the parent
    assert.deepEqual(snapshot(parent), before.writes);
    assert.deepEqual(shown(parent.range('', 100)), before.range);
    assert.deepEqual(['0101', '0102', '0103', '0201', '0202'].map((k) => parent.get(k)), before.gets);
    assert.equal(parent.get('0301'), undefined);
  });

  it('nested commit folds a grandchild into the child and the child into the parent, deletions included', () => {
    const committed = base();
    const parent = new Branch(committed);
    const child = parent.branch();
    const grand = child.branch();
    grand.set('0104', v('g'));
    grand.delete('0101');
    child.set('0105', v('c'));
    grand.commit();
    assert.deepEqual(snapshot(grand), [], 'a committed branch is empty');
    assert.equal(parent.get('0104'), undefined, 'not in the parent before the child commits');
    child.commit();
    assert.deepEqual(parent.get('0104'), v('g'));
    assert.deepEqual(parent.get('0105'), v('c'));
    assert.equal(parent.get('0101'), undefined, 'the deletion reached the parent');
    assert.deepEqual(snapshot(parent), [
      ['0101', null],
      ['0104', toHex(v('g'))],
      ['0105', toHex(v('c'))],
    ]);
    // the committed state itself only changes by apply()
    assert.deepEqual(committed.get('0101'), v('a'));
    assert.equal(committed.get('0104'), undefined);
    // a branch straight over the committed state has no parent branch to commit into
    assert.throws(
      () => parent.commit(),
      (e: unknown) => e instanceof QnexusError && e.code === 'INTERNAL',
    );
    committed.apply(parent.writes);
    assert.deepEqual(shown(committed.range('01', 10)), [
      ['0102', toHex(v('b'))],
      ['0104', toHex(v('g'))],
      ['0105', toHex(v('c'))],
    ]);
    assert.equal(committed.size, 4);
  });

  it('a later write of the same key wins, in a branch and across a commit', () => {
    const parent = new Branch(base());
    parent.set('0101', v('x'));
    parent.delete('0101');
    assert.equal(parent.get('0101'), undefined);
    const child = parent.branch();
    child.set('0101', v('y'));
    child.commit();
    assert.deepEqual(parent.get('0101'), v('y'));
    assert.deepEqual(shown(parent.range('0101', 5)), [['0101', toHex(v('y'))]]);
  });

  it('range limits are checked: negative, fractional or above MAX_RANGE is a RangeError; 0 gives nothing', () => {
    const b = new Branch(base());
    b.set('0109', v('z'));
    for (const r of [base(), b]) {
      for (const bad of [-1, 1.5, MAX_RANGE + 1, Number.NaN]) assert.throws(() => r.range('', bad), RangeError, String(bad));
      assert.deepEqual(r.range('', 0), []);
      assert.equal(r.range('', MAX_RANGE).length, r === b ? 4 : 3);
    }
  });

  it('range and get over three layers (committed, branch, child) agree with a plain map, for random writes, deletions, prefixes and limits', () => {
    const rand = prng(0x5eed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    // a small key space with shared prefixes (1 to 3 bytes), so writes, deletions and prefixes collide often
    const bytes = ['00', '01', '7f', 'ff'];
    const keys: string[] = [];
    for (const a of bytes) {
      keys.push(a);
      for (const b of bytes) {
        keys.push(a + b);
        for (const c of bytes.slice(0, 2)) keys.push(a + b + c);
      }
    }
    const prefixes = ['', ...bytes, ...bytes.flatMap((a) => bytes.map((b) => a + b))];
    let checks = 0;
    for (let round = 0; round < 60; round++) {
      const model = new Map<string, Uint8Array>();
      const committed = TrieState.memory();
      const init = new Map<string, Uint8Array>();
      for (const k of keys) if (rand() < 0.4) init.set(k, v(`c${round}-${k}`));
      committed.apply(init);
      for (const [k, x] of init) model.set(k, x);
      const layers: Branch[] = [new Branch(committed)];
      layers.push(layers[0]!.branch());
      // random writes on both branch layers; the model follows the top layer's view
      const models = [new Map(model)];
      for (const [i, b] of layers.entries()) {
        const m = new Map(models[i]!);
        const n = Math.floor(rand() * 25);
        for (let j = 0; j < n; j++) {
          const k = pick(keys);
          if (rand() < 0.4) {
            b.delete(k);
            m.delete(k);
          } else {
            const x = v(`w${round}-${i}-${j}`);
            b.set(k, x);
            m.set(k, x);
          }
        }
        models.push(m);
      }
      const check = (b: Branch, m: Map<string, Uint8Array>, what: string) => {
        for (const k of keys) assert.deepEqual(b.get(k), m.get(k), `${what}: get ${k}`);
        for (let q = 0; q < 12; q++) {
          const prefix = pick(prefixes);
          const limit = rand() < 0.2 ? MAX_RANGE : Math.floor(rand() * 8);
          assert.deepEqual(shown(b.range(prefix, limit)), modelRange(m, prefix, limit), `${what}: round ${round}, range('${prefix}', ${limit})`);
          checks++;
        }
      };
      check(layers[0]!, models[1]!, 'branch');
      check(layers[1]!, models[2]!, 'child');
      // fold the child in: the branch now shows what the child showed
      layers[1]!.commit();
      check(layers[0]!, models[2]!, 'after commit');
      // and the committed state after apply holds exactly that
      committed.apply(layers[0]!.writes);
      assert.deepEqual(shown(committed.range('', MAX_RANGE)), modelRange(models[2]!, '', MAX_RANGE), `committed after apply, round ${round}`);
      assert.equal(committed.size, models[2]!.size);
    }
    assert.ok(checks >= 60 * 36);
  });
});

describe('store: committed trie regressions', () => {
  it('writes that insert beside a node (splitting its skip) while deleting every key under it leave none of those keys', () => {
    const s = TrieState.memory();
    s.apply(new Map([['7f0000', v('a')], ['7f0001', v('b')], ['ff', v('c')]]));
    // 7f7f and 7fff split the node at 7f000 (skip 'f000'); the same block deletes both of its keys
    s.apply(new Map<string, Uint8Array | null>([['7f0000', null], ['7f0001', null], ['7f7f', v('d')], ['7fff', v('e')]]));
    assert.deepEqual(s.range('', MAX_RANGE).map(([k]) => k), ['7f7f', '7fff', 'ff']);
    assert.equal(s.count, 3);
    assert.deepEqual(s.root(), WorldState.fromEntries([['7f7f', v('d')], ['7fff', v('e')], ['ff', v('c')]]).root());
  });
});

describe('store: the trie update told the committed values', () => {
  it('gives the same root and nodes with a right prior, a wrong one or none (a wrong prior only costs a read)', () => {
    const rand = prng(0x9a1);
    const base = new Map<string, Uint8Array>();
    for (let i = 0; i < 300; i++) base.set('01' + toHex(utf8(`k${i}`)), v(`v${i}`));
    const writes = new Map<string, Uint8Array | null>();
    for (const k of base.keys()) if (rand() < 0.3) writes.set(k, rand() < 0.2 ? null : v(`w${k}`));
    for (let i = 0; i < 20; i++) writes.set('01' + toHex(utf8(`new${i}`)), v(`n${i}`));
    const results = (['none', 'right', 'wrong', 'absent'] as const).map((mode) => {
      const db = new MemoryTrieDB();
      const t = new MerkleTrie(db, -1);
      commitTrie(t, db, base, 0);
      const prior = mode === 'none' ? undefined : (k: string) => (mode === 'right' ? base.get(k) : mode === 'wrong' ? v('lie') : undefined);
      const u = t.update(writes, 1, prior);
      return { root: toHex(u.root), puts: u.puts.map(([k, x]) => toHex(k) + toHex(x)).sort(), stale: u.stale.map((k) => toHex(k)).sort() };
    });
    for (const r of results.slice(1)) assert.deepEqual(r, results[0]);
  });
});
