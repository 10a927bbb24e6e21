// The key-value store under the state machine: branches (writes over a reader,
// committed into the parent or dropped), range reads over merged layers, and
// the commitment (counted root over sorted entries, proofs of present and
// absent keys).
import assert from 'node:assert/strict';
import { fromHex, sha256, toHex, utf8 } from '@qnexus/crypto';
import { QnexusError, countedRoot } from '@qnexus/types';
import { Branch, CommittedState, MAX_RANGE, entryLeaf, verifyStateProof, type StateProof } from '@qnexus/state';
import { prng, snapshot } from './helpers.js';

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
  function base(): CommittedState {
    return CommittedState.fromEntries([
      ['0101', v('a')],
      ['0102', v('b')],
      ['0201', v('c')],
    ]);
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
      const committed = new CommittedState();
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

// ------------------------------------------------------------------ commitment

/** Random entries: keys of 1 to 6 bytes (prefixes of each other now and then), values of 0 to 40 bytes. */
function randomEntries(rand: () => number, n: number): Map<string, Uint8Array> {
  const m = new Map<string, Uint8Array>();
  while (m.size < n) {
    const len = 1 + Math.floor(rand() * 6);
    let k = toHex(Uint8Array.from({ length: len }, () => Math.floor(rand() * 256)));
    // now and then a key that extends an existing one: '01' < '0100' < '02'
    if (m.size && rand() < 0.2) k = [...m.keys()][Math.floor(rand() * m.size)]! + '00';
    m.set(k, Uint8Array.from({ length: Math.floor(rand() * 41) }, () => Math.floor(rand() * 256)));
  }
  return m;
}

/** The root as specified: counted tree over entryLeaf(key, value) of every entry, sorted by key. */
function specRoot(m: ReadonlyMap<string, Uint8Array>): Uint8Array {
  return countedRoot([...m.keys()].sort(hexCmp).map((k) => entryLeaf(fromHex(k), m.get(k)!)));
}

const flip = (b: Uint8Array, i = 0) => b.map((x, j) => (j === i ? x ^ 1 : x));

/** Absent keys worth proving: before the first, between neighbours, after the last. */
function absentKeys(sorted: readonly string[]): string[] {
  const out = new Set<string>();
  out.add('00'.repeat(8)); // before anything but an all-zero key
  for (const k of sorted) out.add(k + '00'); // just after k: before its successor unless that is k ‖ 00
  for (const k of sorted) if (!k.endsWith('00')) out.add(k.slice(0, -2) + (parseInt(k.slice(-2), 16) - 1).toString(16).padStart(2, '0') + 'ff');
  out.add('ff'.repeat(8)); // after anything but all-ones keys
  return [...out].filter((k) => !sorted.includes(k));
}

describe('store: state root and proofs', () => {
  it('the root is the counted root over the sorted entry leaves, whatever the insertion order; the empty root is countedRoot([])', () => {
    const rand = prng(11);
    for (const n of [0, 1, 2, 3, 7, 16, 33]) {
      const m = randomEntries(rand, n);
      const s = CommittedState.fromEntries(m);
      assert.deepEqual(s.root(), specRoot(m), `n=${n}`);
      const shuffled = [...m].map((e) => [rand(), e] as const).sort((a, b) => a[0] - b[0]).map((x) => x[1]);
      assert.deepEqual(CommittedState.fromEntries(shuffled).root(), s.root(), `n=${n} shuffled`);
    }
    assert.deepEqual(new CommittedState().root(), countedRoot([]));
    assert.equal(new CommittedState().root().length, 32);
    // the leaf count is bound: one entry whose leaf equals the empty tree's inner root cannot collide, and n differs from n+1
    assert.notDeepEqual(CommittedState.fromEntries([['00', new Uint8Array(0)]]).root(), new CommittedState().root());
  });

  it('the root changes with any value byte, any key byte, a removed or an added entry (even an empty value)', () => {
    const rand = prng(12);
    const m = randomEntries(rand, 9);
    const root = toHex(specRoot(m));
    const seen = new Set([root]);
    let variants = 0;
    for (const [k, x] of m) {
      const changed = new Map(m);
      changed.set(k, x.length ? flip(x) : new Uint8Array([0]));
      seen.add(toHex(CommittedState.fromEntries(changed).root()));
      const rekeyed = new Map(m);
      rekeyed.delete(k);
      let k2 = toHex(flip(fromHex(k), fromHex(k).length - 1));
      if (m.has(k2)) k2 = k + 'ab';
      rekeyed.set(k2, x);
      seen.add(toHex(CommittedState.fromEntries(rekeyed).root()));
      const removed = new Map(m);
      removed.delete(k);
      seen.add(toHex(CommittedState.fromEntries(removed).root()));
      variants += 3;
    }
    seen.add(toHex(CommittedState.fromEntries([...m, ['abcdef', new Uint8Array(0)]]).root()));
    variants++;
    assert.equal(seen.size, variants + 1);
  });

  it('rootWith(writes) equals the root after apply(writes), without mutating; deleting an absent key is a no-op', () => {
    const rand = prng(13);
    for (let round = 0; round < 20; round++) {
      const m = randomEntries(rand, Math.floor(rand() * 12));
      const s = CommittedState.fromEntries(m);
      const before = s.root();
      const writes = new Map<string, Uint8Array | null>();
      const after = new Map(m);
      for (const [k, x] of randomEntries(rand, 1 + Math.floor(rand() * 6))) {
        writes.set(k, x);
        after.set(k, x);
      }
      for (const k of m.keys()) {
        if (rand() < 0.3) {
          writes.set(k, null);
          after.delete(k);
        }
      }
      writes.set('fe'.repeat(9), null); // absent
      const predicted = s.rootWith(writes);
      assert.deepEqual(s.root(), before, 'rootWith does not mutate');
      assert.deepEqual(predicted, specRoot(after));
      s.apply(writes);
      assert.deepEqual(s.root(), predicted);
      assert.equal(s.size, after.size);
    }
  });

  it('proofs of present keys and of absent keys (before the first, between, after the last) verify, for states of 0 to 40 entries', () => {
    const rand = prng(14);
    let present = 0;
    let absent = 0;
    for (const n of [0, 1, 2, 3, 4, 5, 8, 13, 21, 40]) {
      const m = randomEntries(rand, n);
      const s = CommittedState.fromEntries(m);
      const root = s.root();
      const sorted = [...m.keys()].sort(hexCmp);
      const keys = [...sorted, ...absentKeys(sorted)];
      const proofs = s.prove(keys.map(fromHex));
      assert.equal(proofs.length, keys.length);
      proofs.forEach((p, i) => {
        const k = keys[i]!;
        assert.equal(toHex(p.key), k);
        assert.ok(verifyStateProof(root, p), `n=${n}: proof of ${k} verifies`);
        if (m.has(k)) {
          assert.deepEqual(p.value, m.get(k));
          assert.equal(p.entries.length, 1);
          assert.equal(p.entries[0]!.proof.index, sorted.indexOf(k));
          assert.equal(p.entries[0]!.proof.count, n);
          present++;
        } else {
          assert.equal(p.value, null);
          // the neighbours around where k would sit
          const at = sorted.findIndex((x) => x > k);
          const expect = n === 0 ? [] : at === 0 ? [sorted[0]] : at === -1 ? [sorted[n - 1]] : [sorted[at - 1], sorted[at]];
          assert.deepEqual(p.entries.map((e) => toHex(e.key)), expect, `n=${n}: neighbours of ${k}`);
          absent++;
        }
      });
    }
    assert.ok(present > 80 && absent > 80, `${present} present, ${absent} absent`);
  });

  it('a proof fails with one flipped byte (value, key, sibling), a moved index or count, against another root, or for another key', () => {
    const rand = prng(15);
    const m = randomEntries(rand, 13);
    const s = CommittedState.fromEntries(m);
    const root = s.root();
    const other = CommittedState.fromEntries([...m, ['0badc0de', v('x')]]).root();
    const sorted = [...m.keys()].sort(hexCmp);
    const bad = (p: StateProof, what: string) => assert.equal(verifyStateProof(root, p), false, what);
    for (const k of sorted) {
      const [p] = s.prove([fromHex(k)]);
      const e = p!.entries[0]!;
      const withEntry = (over: Partial<typeof e>, value = p!.value): StateProof => ({ ...p!, value, entries: [{ ...e, ...over }] });
      assert.ok(verifyStateProof(root, p!));
      assert.equal(verifyStateProof(other, p!), false, 'another root');
      if (e.value.length) {
        const fv = flip(e.value);
        bad(withEntry({ value: fv }), 'flipped value in the entry');
        bad(withEntry({}, fv), 'flipped claimed value');
        bad(withEntry({ value: fv }, fv), 'flipped value in both');
      }
      bad(withEntry({ value: new Uint8Array([...e.value, 0]) }, new Uint8Array([...e.value, 0])), 'longer value');
      const fk = flip(e.key, e.key.length - 1);
      bad({ ...withEntry({ key: fk }), key: fk }, 'flipped key (entry and claim)');
      bad({ ...p!, key: fk }, 'proof of k presented for another key');
      for (let j = 0; j < e.proof.siblings.length; j++) {
        const siblings = e.proof.siblings.map((x, i) => (i === j ? flip(x, 31) : x));
        bad(withEntry({ proof: { ...e.proof, siblings } }), `flipped sibling ${j}`);
      }
      bad(withEntry({ proof: { ...e.proof, siblings: e.proof.siblings.slice(1) } }), 'a sibling short');
      bad(withEntry({ proof: { ...e.proof, siblings: [...e.proof.siblings, e.proof.siblings[0] ?? root] } }), 'a sibling too many');
      for (const index of [e.proof.index - 1, e.proof.index + 1, e.proof.index ^ 1]) {
        if (index !== e.proof.index) bad(withEntry({ proof: { ...e.proof, index } }), `index ${e.proof.index} -> ${index}`);
      }
      for (const count of [e.proof.count - 1, e.proof.count + 1, 2 * e.proof.count]) bad(withEntry({ proof: { ...e.proof, count } }), `count -> ${count}`);
      // a present key cannot be passed off as absent with its own entry
      bad({ ...p!, value: null }, 'present key claimed absent');
      // another present key's proof for this key
      const next = sorted[(sorted.indexOf(k) + 1) % sorted.length]!;
      const [q] = s.prove([fromHex(next)]);
      bad({ ...q!, key: fromHex(k) }, 'another key’s entry');
      bad({ ...q!, key: fromHex(k), value: p!.value }, 'another key’s entry with this value');
    }
  });

  it('an absent-key proof fails with a neighbour dropped, non-adjacent neighbours, a key that is present, or tampered neighbours', () => {
    const rand = prng(16);
    const m = randomEntries(rand, 10);
    const s = CommittedState.fromEntries(m);
    const root = s.root();
    const sorted = [...m.keys()].sort(hexCmp);
    const proofOf = (k: string) => s.prove([fromHex(k)])[0]!;
    const entryAt = (i: number) => proofOf(sorted[i]!).entries[0]!;
    const bad = (p: StateProof, what: string) => assert.equal(verifyStateProof(root, p), false, what);
    let between = 0;
    for (const k of absentKeys(sorted)) {
      const p = proofOf(k);
      assert.ok(verifyStateProof(root, p), k);
      if (p.entries.length === 2) {
        between++;
        bad({ ...p, entries: [p.entries[0]!] }, `${k}: upper neighbour dropped`);
        bad({ ...p, entries: [p.entries[1]!] }, `${k}: lower neighbour dropped`);
        bad({ ...p, entries: [p.entries[1]!, p.entries[0]!] }, `${k}: neighbours swapped`);
        const lo = p.entries[0]!.proof.index;
        // a gap: the entry before the lower neighbour with the upper one (both real, not adjacent)
        if (lo > 0) bad({ ...p, entries: [entryAt(lo - 1), p.entries[1]!] }, `${k}: neighbours not adjacent`);
        bad({ ...p, entries: [p.entries[0]!, { ...p.entries[1]!, value: new Uint8Array([...p.entries[1]!.value, 1]) }] }, `${k}: tampered upper value`);
        // the same adjacent pair for a key outside the gap
        bad({ ...p, key: fromHex(sorted[lo]!) }, `${k}: pair presented for the lower key itself`);
      } else {
        assert.equal(p.entries.length, 1);
        const e = p.entries[0]!;
        // an end entry used for a key on the wrong side of it
        if (e.proof.index === 0) bad({ ...p, key: fromHex('ff'.repeat(9)) }, `${k}: first entry for a key after it`);
        else bad({ ...p, key: fromHex('00') }, `${k}: last entry for a key before it`);
        bad({ ...p, entries: [] }, `${k}: no neighbours in a non-empty state`);
        bad({ ...p, entries: [{ ...e, proof: { ...e.proof, siblings: e.proof.siblings.map((x, i) => (i === 0 ? flip(x) : x)) } }] }, `${k}: flipped sibling`);
      }
      assert.equal(verifyStateProof(CommittedState.fromEntries([...m, [k, v('now here')]]).root(), p), false, `${k}: after the key was added`);
    }
    assert.ok(between >= 5);
    // a key that is present: no pair of entries proves it absent
    const k = sorted[4]!;
    bad({ key: fromHex(k), value: null, entries: [entryAt(3), entryAt(5)] }, 'present key between two real entries');
    bad({ key: fromHex(k), value: null, entries: [entryAt(3), entryAt(4)] }, 'present key as the upper neighbour');
    // the empty state: no entries is a valid absence proof only against the empty root
    const empty = new CommittedState().prove([fromHex('01')])[0]!;
    assert.deepEqual(empty.entries, []);
    assert.ok(verifyStateProof(countedRoot([]), empty));
    assert.equal(verifyStateProof(root, empty), false);
    // a one-entry state: the key before and after
    const one = CommittedState.fromEntries([['5555', v('only')]]);
    for (const key of ['55', '5554ff', '555500', '56']) {
      const p = one.prove([fromHex(key)])[0]!;
      assert.ok(verifyStateProof(one.root(), p), key);
      assert.equal(p.entries.length, 1);
    }
    assert.ok(verifyStateProof(one.root(), one.prove([fromHex('5555')])[0]!));
    assert.equal(verifyStateProof(one.root(), { ...one.prove([fromHex('55')])[0]!, key: fromHex('5555') }), false, 'the entry itself is not absent');
  });

  it('prove answers several keys at once, in the order asked, repeats included; a value is the entry as stored', () => {
    const m = new Map([
      ['01', v('one')],
      ['02', v('two')],
      ['03', v('')],
    ]);
    const s = CommittedState.fromEntries(m);
    const asked = ['03', '00', '02', '03', '0201', '04'];
    const ps = s.prove(asked.map(fromHex));
    assert.deepEqual(ps.map((p) => toHex(p.key)), asked);
    assert.deepEqual(ps.map((p) => (p.value ? toHex(p.value) : null)), ['', null, toHex(v('two')), '', null, null]);
    for (const p of ps) assert.ok(verifyStateProof(s.root(), p));
    // an empty value is present, not absent
    assert.equal(verifyStateProof(s.root(), { ...ps[0]!, value: null }), false);
    assert.deepEqual(sha256(ps[0]!.value!), sha256(new Uint8Array(0)));
  });
});
