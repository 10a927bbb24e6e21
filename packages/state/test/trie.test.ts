import assert from 'node:assert/strict';
import { fromHex, hashConcat, sha256, toHex } from '@qnexus/crypto';
import { QnexusError, Reader, Writer, decodeWith } from '@qnexus/types';
import {
  MAX_KEY_BYTES,
  MAX_PROOF_NODES,
  MAX_PROOF_NODE_BYTES,
  MemoryTrieDB,
  MerkleTrie,
  decodeStateProof,
  encodeStateProof,
  leafHash,
  verifyStateProof,
  type StateProof,
  type TrieUpdate,
} from '../src/trie.js';
import { decodeNode, nodeKey, refOffset, readU64 } from '../src/trie-node.js';
import { commitTrie, prng } from './helpers.js';

type Model = Map<string, Uint8Array>;

/** The root straight from the spec's canonical form, independent of the trie's code. */
function specRoot(model: Model): Uint8Array {
  const keys = [...model.keys()].sort();
  const lcp = (a: string, b: string) => {
    let i = 0;
    while (i < a.length && i < b.length && a[i] === b[i]) i++;
    return i;
  };
  const hashOf = (S: string, ks: string[], root: boolean): Uint8Array => {
    if (!root && ks.length === 1) return leafHash(fromHex(ks[0]!), model.get(ks[0]!)!);
    const P = root ? '' : ks[0]!.slice(0, lcp(ks[0]!, ks[ks.length - 1]!));
    const K = P.slice(S.length);
    const hashes: Uint8Array[] = [];
    let bitmap = 0;
    let i = 0;
    if (ks[0] === P) {
      bitmap |= 1 << 16;
      hashes.push(leafHash(fromHex(P), model.get(P)!));
      i++;
    }
    for (let n = 0; n < 16; n++) {
      const c = n.toString(16);
      const sub = ks.slice(i).filter((k) => k[P.length] === c);
      if (!sub.length) continue;
      bitmap |= 1 << n;
      hashes.push(hashOf(P + c, sub, false));
    }
    const w = new Writer().u8(1).u16(K.length);
    const packed = fromHex(K.length % 2 ? K + '0' : K);
    w.fixed(packed, packed.length).u32(bitmap).u64(ks.length);
    return hashConcat(w.finish(), ...hashes);
  };
  return hashOf('', keys, true);
}

/** Names of every node reachable from the roots of `versions` (what the DB must hold, no more). */
function reachable(db: MemoryTrieDB, versions: number[]): Set<string> {
  const seen = new Set<string>();
  const walk = (path: string, end: boolean, v: number) => {
    const k = toHex(nodeKey(path, end, v));
    if (seen.has(k)) return;
    const b = db.map.get(k);
    assert.ok(b, `node ${path}${end ? '!' : ''}@${v} is missing`);
    seen.add(k);
    const n = decodeNode(b);
    if (n.leaf) return;
    const P = path + n.skip;
    for (let s = 0; s <= 16; s++) {
      if (!((n.bitmap >>> s) & 1)) continue;
      const cv = readU64(n.bytes, refOffset(n, s) + 32);
      if (s === 16) walk(P, true, cv);
      else walk(P + s.toString(16), false, cv);
    }
  };
  for (const v of versions) walk('', false, v);
  return seen;
}

function expectCode(code: string, f: () => unknown): void {
  assert.throws(f, (e: unknown) => e instanceof QnexusError && e.code === code);
}

/** Keys that share long prefixes and are prefixes of one another. */
function keyGen(rnd: () => number): () => string {
  const bases = ['', '01', '0161', '0162', '03', '0365', '0365' + '00'.repeat(20), 'ff'.repeat(9), '0161' + 'ab'.repeat(15)];
  const byte = () => Math.floor(rnd() * 256).toString(16).padStart(2, '0');
  return () => {
    let k = bases[Math.floor(rnd() * bases.length)]!;
    const extra = Math.floor(rnd() * 4);
    for (let i = 0; i < extra; i++) k += rnd() < 0.3 ? '00' : byte();
    return k || '00';
  };
}

function checkReads(t: MerkleTrie, model: Model, rnd: () => number, version?: number): void {
  const sorted = [...model.keys()].sort();
  for (const k of sorted) assert.deepEqual(t.get(k, version), model.get(k), `get ${k}`);
  for (const k of ['', '00', '0161ff', '0365' + '00'.repeat(19), 'ff'.repeat(10)]) {
    if (!model.has(k)) assert.equal(t.get(k, version), undefined);
  }
  const prefixes = ['', '0', '01', '016', '0161', '0162', '03', '0365', '0365' + '00'.repeat(20), 'f', 'ff'.repeat(9), '7'];
  for (let i = 0; i < 6; i++) {
    const k = sorted[Math.floor(rnd() * sorted.length)];
    if (k) prefixes.push(k.slice(0, Math.floor(rnd() * (k.length + 1))));
  }
  for (const p of prefixes) {
    const want = sorted.filter((k) => k.startsWith(p));
    for (const limit of [0, 1, 3, 1000]) {
      const got = t.range(p, limit, version);
      assert.deepEqual(
        got.map(([k]) => k),
        want.slice(0, limit),
        `range ${p} ${limit}`,
      );
      for (const [k, v] of got) assert.deepEqual(v, model.get(k));
    }
  }
}

describe('MerkleTrie', () => {
  it('hashes per the spec: leaf, empty root', () => {
    const key = fromHex('0161aa');
    const value = fromHex('0102030405060708');
    const w = new Writer().u8(0).u32(3);
    assert.deepEqual(leafHash(key, value), hashConcat(w.finish(), key, sha256(value)));
    const t = new MerkleTrie(new MemoryTrieDB(), -1);
    assert.deepEqual(t.root(), sha256(new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])));
    assert.deepEqual(t.root(), specRoot(new Map()));
    assert.equal(t.count, 0);
    assert.equal(t.get('01'), undefined);
    assert.deepEqual(t.range('', 10), []);
  });

  for (const [seed, cacheBytes] of [
    [1, undefined],
    [2, undefined],
    [3, 3000],
  ] as const) {
    it(`randomized writes match a map model, version after version (seed ${seed}${cacheBytes ? ', tiny cache' : ''})`, () => {
      const rnd = prng(seed);
      const key = keyGen(rnd);
      const db = new MemoryTrieDB();
      const opts = cacheBytes ? { cacheBytes } : {};
      let t = new MerkleTrie(db, -1, opts);
      const model: Model = new Map();
      const history: { model: Model; root: Uint8Array }[] = [];
      const stale: Uint8Array[][] = [];
      let pending: TrieUpdate | null = null;
      for (let v = 0; v < 40; v++) {
        const writes = new Map<string, Uint8Array | null>();
        const n = 1 + Math.floor(rnd() * (v % 7 === 0 ? 60 : 12));
        const present = [...model.keys()];
        for (let i = 0; i < n; i++) {
          const r = rnd();
          if (r < 0.25 && present.length) writes.set(present[Math.floor(rnd() * present.length)]!, null);
          else if (r < 0.3) writes.set(key(), null); // maybe absent
          else if (r < 0.4 && present.length) {
            const k = present[Math.floor(rnd() * present.length)]!;
            writes.set(k, model.get(k)!); // unchanged value
          } else writes.set(key(), fromHex(Math.floor(rnd() * 1e9).toString(16).padStart(8, '0') + (rnd() < 0.2 ? '' : 'ab')));
        }
        if (v === 20) writes.clear(); // an empty block still writes a root
        const u = t.update(writes, v);
        for (const [k, val] of writes) {
          if (val) model.set(k, val);
          else model.delete(k);
        }
        t.apply(u);
        // The batch lands one version late: the trie must read applied nodes from memory meanwhile.
        if (pending) {
          db.apply(pending);
          t.flushed(pending);
        }
        pending = u;
        stale.push(u.stale);
        assert.equal(u.dels.length, 0);
        assert.equal(t.version, v);
        assert.equal(t.count, model.size);
        assert.deepEqual(t.root(), specRoot(model));
        assert.deepEqual(u.root, t.root());
        history.push({ model: new Map(model), root: t.root() });
        checkReads(t, model, rnd);
        if (v % 5 === 4) {
          db.apply(pending);
          t.flushed(pending);
          pending = null;
          const again = new MerkleTrie(db, v, opts);
          assert.deepEqual(again.root(), t.root());
          assert.equal(again.count, model.size);
          checkReads(again, model, rnd);
          t = again;
        }
      }
      if (pending) {
        db.apply(pending);
        t.flushed(pending);
      }
      // Every old version is still whole.
      for (let v = 0; v < history.length; v += 3) {
        assert.deepEqual(t.rootAt(v), history[v]!.root);
        checkReads(t, history[v]!.model, rnd, v);
      }
      // Nothing leaks: the DB holds exactly what the versions reach.
      const all = reachable(
        db,
        history.map((_, v) => v),
      );
      assert.equal(all.size, db.size);
      // Prune as the node does: delete the stale lists of versions <= 25.
      for (let v = 0; v <= 25; v++) for (const k of stale[v]!) db.del(k);
      const fresh = new MerkleTrie(db, 39, opts);
      for (const r of [t, fresh]) {
        expectCode('STATE_PRUNED', () => r.rootAt(24));
        expectCode('STATE_PRUNED', () => r.get('01', 3));
        expectCode('STATE_PRUNED', () => r.range('', 10, 24));
        for (const v of [25, 30, 39]) {
          assert.deepEqual(r.rootAt(v), history[v]!.root);
          checkReads(r, history[v]!.model, rnd, v);
        }
      }
      // What is left is exactly versions 25..39.
      assert.equal(reachable(db, history.map((_, v) => v).slice(25)).size, db.size);
    });
  }

  it('builds a genesis in chunks at version 0: replaced nodes of the same version are deleted, not stale', () => {
    const rnd = prng(7);
    const key = keyGen(rnd);
    const db = new MemoryTrieDB();
    const t = new MerkleTrie(db, -1);
    const model: Model = new Map();
    let dels = 0;
    for (let c = 0; c < 8; c++) {
      const writes = new Map<string, Uint8Array | null>();
      for (let i = 0; i < 50; i++) writes.set(key() + (i % 3 ? toHex(new Uint8Array([c, i])) : ''), new Uint8Array([c, i, 1]));
      if (c === 5) for (const k of [...model.keys()].slice(0, 20)) writes.set(k, null);
      const u = t.update(writes, 0);
      for (const [k, val] of writes) {
        if (val) model.set(k, val);
        else model.delete(k);
      }
      assert.equal(u.stale.length, 0);
      const putNames = new Set(u.puts.map(([k]) => toHex(k)));
      for (const k of u.dels) assert.ok(!putNames.has(toHex(k)), 'a deleted node is also put');
      dels += u.dels.length;
      t.apply(u);
      if (c % 2) {
        db.apply(u);
        t.flushed(u);
      } else db.apply(u); // flushed() comes later or never: still correct
      assert.deepEqual(t.root(), specRoot(model));
      checkReads(t, model, rnd);
    }
    assert.ok(dels > 0, 'no node ever moved');
    assert.equal(reachable(db, [0]).size, db.size);
    const again = new MerkleTrie(db, 0);
    assert.deepEqual(again.root(), specRoot(model));
    // Version 1 on top: version 0's replaced nodes become stale.
    const u1 = t.update(new Map([[[...model.keys()][3]!, new Uint8Array([9])]]), 1);
    assert.ok(u1.stale.length >= 2);
    assert.equal(u1.dels.length, 0);
    t.apply(u1);
    // An update computed on another base version cannot be installed.
    expectCode('INTERNAL', () => again.apply(t.update(new Map(), 2)));
  });

  it('a split whose writes delete every key of the node it moves down drops that node', () => {
    // '0161aa01' and '0161aa02' share a node at '0' (skip '161aa0'); inserting '0162' splits it inside the
    // skip while the same update deletes both of its keys.
    const db = new MemoryTrieDB();
    const t = new MerkleTrie(db, -1);
    const model: Model = new Map([
      ['0161aa01', new Uint8Array([1])],
      ['0161aa02', new Uint8Array([2])],
      ['ff', new Uint8Array([3])],
    ]);
    const u0 = t.update(new Map(model), 0);
    t.apply(u0);
    db.apply(u0);
    const w = new Map<string, Uint8Array | null>([
      ['0161aa01', null],
      ['0161aa02', null],
      ['0162', new Uint8Array([4])],
    ]);
    const u1 = t.update(w, 1);
    t.apply(u1);
    db.apply(u1);
    model.delete('0161aa01');
    model.delete('0161aa02');
    model.set('0162', new Uint8Array([4]));
    assert.deepEqual(t.root(), specRoot(model));
    assert.equal(t.count, 2);
    assert.deepEqual(t.range('01', 10), [['0162', new Uint8Array([4])]]);
    assert.equal(reachable(db, [1]).size + u1.stale.length, db.size);
  });

  it('writes that change nothing cost nothing but the new root', () => {
    const db = new MemoryTrieDB();
    const t = new MerkleTrie(db, -1);
    const w = new Map<string, Uint8Array | null>();
    for (let i = 0; i < 300; i++) w.set('0161' + toHex(sha256(new Uint8Array([i]))).slice(0, 40), new Uint8Array([i]));
    const u0 = t.update(w, 0);
    t.apply(u0);
    db.apply(u0);
    const same = new Map<string, Uint8Array | null>([...w].slice(0, 50).map(([k, v]) => [k, new Uint8Array(v!)]));
    same.set('0161' + '00'.repeat(20), null); // absent
    same.set('02', null);
    const u1 = t.update(same, 1);
    assert.equal(u1.puts.length, 1);
    assert.equal(u1.stale.length, 1);
    assert.deepEqual(u1.root, t.root());
  });

  it('the node cache drops the nodes a version replaces: it holds the newest version, not every block', () => {
    const db = new MemoryTrieDB();
    const t = new MerkleTrie(db, -1);
    const keys: string[] = [];
    for (let i = 0; i < 400; i++) keys.push('0161' + toHex(sha256(new Uint8Array([i, i >> 8]))).slice(0, 40));
    commitTrie(t, db, new Map(keys.map((k, i) => [k, new Uint8Array([i & 255, 1])])), 0);
    const readAll = () => keys.forEach((k) => assert.ok(t.get(k)));
    readAll(); // every node of the newest version is cached
    const full = t.cachedBytes;
    assert.ok(full > 0);
    // Blocks that rewrite some balances, each followed by reads of every key (as execution does).
    for (let v = 1; v <= 60; v++) {
      const w = new Map<string, Uint8Array | null>();
      for (let j = 0; j < 40; j++) w.set(keys[(v * 41 + j * 7) % keys.length]!, new Uint8Array([v & 255, j, 2]));
      commitTrie(t, db, w, v);
      readAll();
    }
    // The same keys, one byte longer values, one version's nodes: about what one version held, not 60.
    assert.ok(t.cachedBytes < full * 1.2, `cache holds ${t.cachedBytes} bytes after 60 versions, ${full} after one`);
    // Older versions stay readable from storage.
    assert.equal(t.get(keys[41]!, 0)?.[1], 1);
    assert.equal(t.get(keys[41]!, 1)?.[2], 2);
  });

  it('refuses over-long and non-hex keys, and versions below the committed one', () => {
    const t = new MerkleTrie(new MemoryTrieDB(), -1);
    assert.throws(() => t.update(new Map([['00'.repeat(MAX_KEY_BYTES + 1), new Uint8Array(1)]]), 0), RangeError);
    assert.throws(() => t.update(new Map([['0G', new Uint8Array(1)]]), 0), RangeError);
    assert.throws(() => t.update(new Map([['012', new Uint8Array(1)]]), 0), RangeError);
    const u = t.update(new Map([['00'.repeat(MAX_KEY_BYTES), new Uint8Array(1)]]), 3);
    t.apply(u);
    assert.throws(() => t.update(new Map(), 2), RangeError);
    assert.deepEqual(t.get('00'.repeat(MAX_KEY_BYTES)), new Uint8Array(1));
    expectCode('NOT_FOUND', () => t.rootAt(4));
  });

  describe('proofs', () => {
    /** A trie with history: versions 0..9 of random writes; the models and roots of each. */
    function history(seed: number) {
      const rnd = prng(seed);
      const key = keyGen(rnd);
      const db = new MemoryTrieDB();
      const t = new MerkleTrie(db, -1);
      const model: Model = new Map();
      const versions: { model: Model; root: Uint8Array }[] = [];
      for (let v = 0; v < 10; v++) {
        const w = new Map<string, Uint8Array | null>();
        const present = [...model.keys()];
        for (let i = 0; i < 40; i++) {
          if (rnd() < 0.2 && present.length) w.set(present[Math.floor(rnd() * present.length)]!, null);
          else w.set(key(), new Uint8Array([v, i, Math.floor(rnd() * 256)]));
        }
        commitTrie(t, db, w, v, model);
        versions.push({ model: new Map(model), root: t.root() });
      }
      return { t, rnd, versions, key };
    }

    const roundTrip = (p: StateProof): StateProof => decodeWith(encodeStateProof(new Writer(), p).finish(), 'proof', decodeStateProof);

    it('presence and absence proofs verify, at the head and at older versions, and survive encoding', () => {
      const { t, versions, key } = history(11);
      let absent = 0;
      let viaLeaf = 0;
      for (const v of [9, 4, 0]) {
        const { model, root } = versions[v]!;
        const probes = [...model.keys()];
        for (const k of [...model.keys()].slice(0, 30)) probes.push(k + '00', k.slice(0, -2), k.slice(0, -1) + (k.endsWith('f') ? '0' : 'f'));
        for (let i = 0; i < 40; i++) probes.push(key());
        for (const k of probes) {
          if (k.length % 2) continue;
          const p = t.prove(fromHex(k), v);
          assert.deepEqual(p.value, model.get(k) ?? null, `value of ${k}`);
          assert.ok(verifyStateProof(root, p), `proof of ${k} at ${v}`);
          const q = roundTrip(p);
          assert.deepEqual(q, p);
          assert.ok(verifyStateProof(root, q));
          if (!p.value) {
            absent++;
            if (p.nodes[p.nodes.length - 1]![0] === 0) viaLeaf++;
          }
        }
      }
      assert.ok(absent > 50 && viaLeaf > 5, `absence cases exercised (${absent}, ${viaLeaf} ending in a leaf)`);
      // The empty trie proves every key absent.
      const empty = new MerkleTrie(new MemoryTrieDB(), -1);
      const p = empty.prove(fromHex('0161'));
      assert.ok(verifyStateProof(empty.root(), p));
      assert.ok(!verifyStateProof(empty.root(), { ...p, value: new Uint8Array(1) }));
    });

    it('tampered proofs fail: a flipped byte in any node, another value, key or root, nodes dropped or added', () => {
      const { t, versions, rnd } = history(12);
      const { model, root } = versions[9]!;
      const other = versions[8]!.root;
      const keys = [...model.keys()];
      const probes = keys.slice(0, 25).concat(keys.slice(0, 25).map((k) => k + 'ee'));
      for (const k of probes) {
        const p = t.prove(fromHex(k));
        assert.ok(verifyStateProof(root, p));
        if (!bytesEq(root, other)) assert.ok(!verifyStateProof(other, p), 'another root');
        for (let n = 0; n < p.nodes.length; n++) {
          const nb = p.nodes[n]!;
          for (const at of [0, 1, Math.floor(rnd() * nb.length), nb.length - 1]) {
            const bad = new Uint8Array(nb);
            bad[at]! ^= 1 << Math.floor(rnd() * 8);
            const nodes = p.nodes.slice();
            nodes[n] = bad;
            assert.ok(!verifyStateProof(root, { ...p, nodes }), `flipped byte ${at} of node ${n} of ${k}`);
          }
          const dropped = p.nodes.filter((_, i) => i !== n);
          assert.ok(!verifyStateProof(root, { ...p, nodes: dropped }), `node ${n} dropped`);
        }
        assert.ok(!verifyStateProof(root, { ...p, nodes: [...p.nodes, p.nodes[p.nodes.length - 1]!] }), 'node added');
        assert.ok(!verifyStateProof(root, { ...p, nodes: [...p.nodes, t.prove(fromHex(keys[0]!)).nodes[0]!] }), 'root added');
        if (p.value) {
          const v2 = new Uint8Array(p.value);
          v2[0]! ^= 1;
          assert.ok(!verifyStateProof(root, { ...p, value: v2 }), 'another value');
          assert.ok(!verifyStateProof(root, { ...p, value: null }), 'present claimed absent');
          for (const k2 of keys.slice(30, 40)) assert.ok(!verifyStateProof(root, { ...p, key: fromHex(k2) }), 'another key');
        } else {
          assert.ok(!verifyStateProof(root, { ...p, value: new Uint8Array([1]) }), 'absent claimed present');
          // An absence proof never covers a present key.
          for (const k2 of keys.slice(0, 40)) assert.ok(!verifyStateProof(root, { ...p, key: fromHex(k2) }), 'present key proved absent');
        }
      }
    });

    it('decoding is bounded and rejects malformed input', () => {
      const { t } = history(13);
      const p = t.prove(fromHex('0161'));
      const bytes = encodeStateProof(new Writer(), p).finish();
      for (let cut = 0; cut < bytes.length; cut += Math.max(1, bytes.length >> 4)) {
        expectCode('MALFORMED', () => decodeWith(bytes.subarray(0, cut), 'proof', decodeStateProof));
      }
      const tooMany = new Writer().bytes(new Uint8Array(2)).u8(0).u32(MAX_PROOF_NODES + 1).finish();
      expectCode('MALFORMED', () => decodeStateProof(new Reader(tooMany)));
      const tooBig = new Writer().bytes(new Uint8Array(2)).u8(0).u32(1).u32(MAX_PROOF_NODE_BYTES + 1).finish();
      expectCode('MALFORMED', () => decodeStateProof(new Reader(tooBig)));
      const badFlag = new Writer().bytes(new Uint8Array(2)).u8(2).finish();
      expectCode('MALFORMED', () => decodeStateProof(new Reader(badFlag)));
      const longKey = new Writer().bytes(new Uint8Array(MAX_KEY_BYTES + 1)).finish();
      expectCode('MALFORMED', () => decodeStateProof(new Reader(longKey)));
      assert.ok(!verifyStateProof(t.root(), { key: fromHex('01'), value: null, nodes: [] }));
    });
  });
});

function bytesEq(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}
