import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256, toHex, utf8 } from '@qnexus/crypto';
import { QnexusError, Reader, Writer, decodeBlock, decodeCertificate, blockHash } from '@qnexus/types';
import { WorldState, changesOf } from '@qnexus/state';
import { ChainStore, STATE_FORMAT, type LockRecord, type SignerRecord } from '@qnexus/db';
import {
  GENESIS_HASH,
  TOTAL_KEY,
  TXS_PER_BLOCK,
  accountKey,
  accountValue,
  blockBytes,
  certificateBytes,
  commitFor,
  expectedState,
  hashOf,
  proposerKey,
  totalValue,
  txHash,
  xferKey,
  xferValueAt,
} from './fixture.js';
import { runWriter } from './child.js';

const WRITER = fileURLToPath(new URL('./crash-writer.ts', import.meta.url));

const same = (a: Uint8Array | undefined, b: Uint8Array, msg: string) => {
  assert.ok(a, `${msg}: missing`);
  assert.equal(Buffer.compare(a, b), 0, `${msg}: bytes differ`);
};

/** classic-level hands back Buffers; compare as plain Uint8Arrays. */
function plain<T>(x: T): T {
  if (x instanceof Uint8Array) return new Uint8Array(x) as T;
  if (Array.isArray(x)) return x.map(plain) as T;
  if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, plain(v)])) as T;
  return x;
}

let root: string;
let n = 0;
/** The blocks sublevel's key: u64 height ‖ hash (the store's blockKey). */
const bkey = (height: number, hash: Uint8Array) => new Writer(40).u64(height).fixed(hash, 32).finish();
const freshDir = () => join(root, `db-${n++}`);

before(() => {
  root = mkdtempSync(join(tmpdir(), 'qnexus-db-test-'));
});
after(() => {
  rmSync(root, { recursive: true, force: true });
});

/** Full consistency check of a store whose head must be H (fixture chain). */
async function assertConsistent(store: ChainStore, H: number, opts: { allTxs?: boolean } = {}): Promise<void> {
  assert.equal(await store.headHeight(), H);
  if (H < 0) {
    assert.equal(await store.genesisHash(), undefined);
    assert.deepEqual(await store.loadState(), []);
  } else {
    same(await store.genesisHash(), GENESIS_HASH, 'genesis hash');
  }
  for (let h = 0; h <= H; h++) {
    const hash = hashOf(h);
    same(await store.hashAtHeight(h), hash, `hash at ${h}`);
    const blk = await store.blockByHash(hash);
    same(blk, blockBytes(h), `block ${h} by hash`);
    same(await store.blockAtHeight(h), blockBytes(h), `block ${h} by height`);
    const cert = await store.certificate(h);
    if (h === 0) assert.equal(cert, undefined, 'no certificate at height 0');
    else same(cert, certificateBytes(h), `certificate ${h}`);
    const checkTxs = opts.allTxs || h >= H - 2 ? TXS_PER_BLOCK : 1;
    for (let i = 0; i < checkTxs; i++) {
      const j = opts.allTxs || h >= H - 2 ? i : h % TXS_PER_BLOCK;
      assert.deepEqual(await store.txLocation(txHash(h, j)), { height: h, index: j }, `tx ${h}/${j}`);
    }
  }
  // Nothing from the next height may be visible: no half-written block.
  const next = H + 1;
  assert.equal(await store.hashAtHeight(next), undefined, `hash at ${next}`);
  assert.equal(await store.blockAtHeight(next), undefined);
  assert.equal(await store.blockByHash(hashOf(next)), undefined, `block ${next} by hash`);
  assert.equal(await store.certificate(next), undefined, `certificate ${next}`);
  for (let i = 0; i < TXS_PER_BLOCK; i++) assert.equal(await store.txLocation(txHash(next, i)), undefined, `tx ${next}/${i}`);
  // State equals what the loop produces at H.
  const st = await store.loadState();
  if (H >= 0) assert.deepEqual(st.map(([k, v]) => [k, toHex(v)]), expectedState(H), `state at ${H}`);
}

describe('db: ChainStore', () => {
  it('an empty store has no head, genesis, state or signer records', async () => {
    const store = await ChainStore.open(freshDir());
    try {
      assert.equal(await store.headHeight(), -1);
      assert.equal(await store.genesisHash(), undefined);
      assert.equal(await store.blockAtHeight(0), undefined);
      assert.equal(await store.hashAtHeight(0), undefined);
      assert.equal(await store.blockByHash(hashOf(0)), undefined);
      assert.equal(await store.certificate(1), undefined);
      assert.equal(await store.txLocation(txHash(0, 0)), undefined);
      assert.deepEqual(await store.loadState(), []);
      assert.equal(await store.stateFormat(), 0, 'no layout recorded before the genesis block');
      assert.deepEqual(plain(await store.loadSigner()), { last: null, lock: null });
      assert.deepEqual(await store.loadAnnouncements(), new Map());
    } finally {
      await store.close();
    }
  });

  it('certifiedRange reads consecutive (block, certificate) pairs and stops at the first height not written', async () => {
    const store = await ChainStore.open(freshDir());
    try {
      for (let h = 0; h <= 9; h++) await store.commitBlock(commitFor(h));
      const rows = await store.certifiedRange(3, 7);
      assert.deepEqual(rows.map((r) => r.height), [3, 4, 5, 6, 7]);
      for (const r of rows) {
        same(r.block, (await store.blockAtHeight(r.height))!, `block ${r.height}`);
        same(r.certificate, (await store.certificate(r.height))!, `certificate ${r.height}`);
      }
      assert.deepEqual((await store.certifiedRange(8, 20)).map((r) => r.height), [8, 9], 'stops at the head');
      assert.deepEqual(await store.certifiedRange(10, 20), [], 'nothing past the head');
      assert.deepEqual(await store.certifiedRange(5, 4), [], 'empty range');
      // Height 0 has no certificate: a range starting there yields nothing rather than skipping it.
      assert.deepEqual(await store.certifiedRange(0, 5), []);
    } finally {
      await store.close();
    }
  });

  it('commitBlock then reopen: head, blocks, certificates, tx index and state persist', async () => {
    const dir = freshDir();
    let store = await ChainStore.open(dir);
    for (let h = 0; h <= 7; h++) await store.commitBlock(commitFor(h));
    await assertConsistent(store, 7, { allTxs: true });
    await store.close();

    store = await ChainStore.open(dir);
    try {
      await assertConsistent(store, 7, { allTxs: true });
      // decoded objects are what was committed
      const b = decodeBlock((await store.blockAtHeight(5))!);
      assert.equal(b.header.height, 5);
      same(blockHash(b.header), hashOf(5), 'decoded block hash');
      same(b.header.parentHash, hashOf(4), 'parent link');
      const c = decodeCertificate((await store.certificate(5))!);
      assert.equal(c.height, 5);
      same(c.blockHash, hashOf(5), 'certificate block hash');
      // the state holds the latest write of each key, in key order
      const st = new Map((await store.loadState()).map(([k, v]) => [k, new Uint8Array(v)]));
      assert.deepEqual(st.get(accountKey(0)), accountValue(0, 7));
      assert.deepEqual(st.get(TOTAL_KEY), totalValue(7));
      // records: the last write of each id (7 % 4 = 3 at height 7, 0 at 4, 1 at 5, 2 at 6)
      assert.deepEqual(st.get(xferKey(3)), xferValueAt(3, 7));
      assert.deepEqual(st.get(xferKey(2)), xferValueAt(2, 6));
      assert.equal(st.get(xferKey(3))!.length, 1400);
      const keys = [...st.keys()];
      assert.deepEqual(keys, [...keys].sort());
      assert.equal(await store.stateFormat(), STATE_FORMAT);
      // continuing after reopen works
      await store.commitBlock(commitFor(8));
      await assertConsistent(store, 8);
    } finally {
      await store.close();
    }
  });

  it("the tx index keeps why a block refused an included transaction's message (fee charged), and nothing for the others", async () => {
    const dir = freshDir();
    const store = await ChainStore.open(dir);
    try {
      for (let h = 0; h <= 1; h++) await store.commitBlock(commitFor(h));
      await store.commitBlock({ ...commitFor(2), txFailures: [{ index: 1, code: 'AMM_DEADLINE', message: 'deadline slot 9 has passed' }] });
      assert.deepEqual(await store.txLocation(txHash(2, 0)), { height: 2, index: 0 });
      assert.deepEqual(await store.txLocation(txHash(2, 1)), { height: 2, index: 1, error: { code: 'AMM_DEADLINE', message: 'deadline slot 9 has passed' } });
    } finally {
      await store.close();
    }
  });

  it('writes: added, overwritten, deleted, kept when untouched, written again after a deletion; the trie reopened at the head has the root of the same entries rebuilt in memory', async () => {
    const dir = freshDir();
    const k = (n: number) => toHex(new Uint8Array([1 + (n % 3), 0x10, ...sha256(utf8(`k-${n}`)).slice(0, n % 5)]));
    const val = (n: number, h: number) => utf8(`value ${n} at ${h}`.repeat(1 + (n % 4)));
    const w0 = new Map<string, Uint8Array | null>([0, 1, 2, 3, 4, 5].map((n) => [k(n), val(n, 0)]));
    // height 1 overwrites 1, deletes 2 and 3, adds 6, deletes a key never written (a no-op), leaves 0, 4, 5 alone
    const w1 = new Map<string, Uint8Array | null>([
      [k(1), val(1, 1)],
      [k(2), null],
      [k(3), null],
      [k(6), val(6, 1)],
      [k(99), null],
    ]);
    // height 2 writes 2 again
    const w2 = new Map<string, Uint8Array | null>([[k(2), val(2, 2)]]);
    let store = await ChainStore.open(dir);
    const state = WorldState.open(store.stateReads(), -1);
    for (const [h, writes] of [w0, w1, w2].entries()) {
      const u = state.apply(changesOf(writes), h);
      await store.commitBlock({ ...commitFor(h), writes: u.writes, trie: u.trie });
      state.flushed(u);
    }
    const root = state.root();
    await store.close();

    store = await ChainStore.open(dir);
    try {
      const st = await store.loadState();
      const want = [0, 1, 2, 4, 5, 6].map((n): [string, string] => [k(n), toHex(n === 1 ? val(1, 1) : n === 6 ? val(6, 1) : n === 2 ? val(2, 2) : val(n, 0))]);
      assert.deepEqual(st.map(([kk, v]) => [kk, toHex(v)]), want.sort((a, b) => (a[0] < b[0] ? -1 : 1)));
      // the node's reload path: the trie at the head, read from disk, has the root of the same entries built in memory
      const reopened = WorldState.open(store.stateReads(), 2);
      assert.deepEqual(reopened.root(), root);
      assert.deepEqual(WorldState.fromEntries(st.map(([kk, v]) => [kk, new Uint8Array(v)])).root(), root);
      assert.equal(reopened.kv.count, 6);
      for (const [kk, v] of want) assert.equal(toHex(reopened.kv.get(kk)!), v);
      assert.equal(reopened.kv.get(k(3)), undefined);
      // older versions are still there (nothing pruned yet): version 0 had key 3
      assert.ok(reopened.kv.getAt(k(3), 0));
      // without the deletions the root would differ: they reached the disk
      assert.notDeepEqual(WorldState.fromEntries([...st.map(([kk, v]): [string, Uint8Array] => [kk, new Uint8Array(v)]), [k(3), val(3, 0)]]).root(), root);
    } finally {
      await store.close();
    }
  });

  it('deletions persist across reopen; an entry written again after its deletion is back', async () => {
    const dir = freshDir();
    let store = await ChainStore.open(dir);
    for (let h = 0; h <= 9; h++) await store.commitBlock(commitFor(h));
    await store.close();
    store = await ChainStore.open(dir);
    try {
      const keysOf = async () => new Map((await store.loadState()).map(([kk, v]) => [kk, toHex(v)]));
      let st = await keysOf();
      // height 8 deleted proposer 2's entry; proposers 0 and 1 hold what heights 9 and 7 wrote
      assert.equal(st.get(proposerKey(2)), undefined);
      assert.deepEqual([st.get(proposerKey(0)), st.get(proposerKey(1))], [toHex(new Writer().u64(90n).finish()), toHex(new Writer().u64(70n).finish())]);
      await store.commitBlock(commitFor(10)); // proposer 1 writes again
      st = await keysOf();
      assert.equal(st.get(proposerKey(1)), toHex(new Writer().u64(100n).finish()));
      await store.commitBlock(commitFor(11)); // proposer 2 comes back
      assert.equal((await keysOf()).get(proposerKey(2)), toHex(new Writer().u64(110n).finish()));
      await store.commitBlock(commitFor(12)); // 12 % 4 = 0: proposer 0's entry is deleted
      st = await keysOf();
      assert.ok(!st.has(proposerKey(0)));
      assert.deepEqual([...st], expectedState(12));
    } finally {
      await store.close();
    }
  });

  it('epoch announcements: put (synced), overwrite, load by epoch across reopen, independent of the chain data', async () => {
    const dir = freshDir();
    const raw = (e: number, n: number) => new Uint8Array(3000 + e).fill((e * 7 + n) & 0xff);
    let store = await ChainStore.open(dir);
    await store.putAnnouncement(0, raw(0, 0));
    await store.putAnnouncement(2, raw(2, 0));
    await store.putAnnouncement(1, raw(1, 0));
    await store.putAnnouncement(2, raw(2, 1)); // the caller decides what to keep; the store overwrites
    await store.putAnnouncement(Number.MAX_SAFE_INTEGER, raw(3, 0));
    assert.equal(await store.headHeight(), -1, 'announcements do not touch the chain');
    await store.close();
    store = await ChainStore.open(dir);
    try {
      const m = await store.loadAnnouncements();
      assert.deepEqual([...m.keys()], [0, 1, 2, Number.MAX_SAFE_INTEGER], 'in epoch order');
      same(m.get(0), raw(0, 0), 'epoch 0');
      same(m.get(1), raw(1, 0), 'epoch 1');
      same(m.get(2), raw(2, 1), 'epoch 2 (overwritten)');
      same(m.get(Number.MAX_SAFE_INTEGER), raw(3, 0), 'large epoch');
      // chain commits leave them alone
      await store.commitBlock(commitFor(0));
      assert.equal((await store.loadAnnouncements()).size, 4);
      assert.deepEqual((await store.loadState()).map(([kk, v]) => [kk, toHex(v)]), expectedState(0));
    } finally {
      await store.close();
    }
  });

  it('genesisHash is stored only by the height-0 commit and survives later commits', async () => {
    const dir = freshDir();
    let store = await ChainStore.open(dir);
    // a commit without genesisHash does not write one
    const c0 = commitFor(0);
    delete c0.genesisHash;
    await store.commitBlock(c0);
    assert.equal(await store.genesisHash(), undefined);
    assert.equal(await store.stateFormat(), 0);
    await store.close();

    const dir2 = freshDir();
    store = await ChainStore.open(dir2);
    await store.commitBlock(commitFor(0));
    same(await store.genesisHash(), GENESIS_HASH, 'after height 0');
    await store.commitBlock(commitFor(1));
    await store.commitBlock(commitFor(2));
    same(await store.genesisHash(), GENESIS_HASH, 'after later heights');
    await store.close();
    store = await ChainStore.open(dir2);
    same(await store.genesisHash(), GENESIS_HASH, 'after reopen');
    assert.equal(await store.stateFormat(), STATE_FORMAT, 'the layout version is written with the genesis hash');
    await store.close();
  });

  it('saveSigner/loadSigner round trip, including locks with and without block bytes, across reopen', async () => {
    const dir = freshDir();
    let store = await ChainStore.open(dir);
    const h1 = sha256(utf8('h1'));
    const h2 = sha256(utf8('h2'));

    const last1: SignerRecord = { height: 5, round: 2, step: 1, blockHash: h1 };
    await store.saveSigner(last1, null);
    assert.deepEqual(plain(await store.loadSigner()), { last: last1, lock: null });

    const lastNil: SignerRecord = { height: 5, round: 3, step: 2, blockHash: null };
    const lockNoBlock: LockRecord = { height: 5, round: 3, blockHash: h2, block: null, pol: [] };
    await store.saveSigner(lastNil, lockNoBlock);
    assert.deepEqual(plain(await store.loadSigner()), { last: lastNil, lock: lockNoBlock });

    const big = new Uint8Array(300_000).map((_, i) => (i * 31) & 0xff);
    const last2: SignerRecord = { height: Number.MAX_SAFE_INTEGER, round: 9, step: 0, blockHash: h1 };
    // With its proof of lock: the prevotes that justified it, kept as encoded (opaque here).
    const lockWithBlock: LockRecord = { height: 6, round: 0, blockHash: h1, block: big, pol: [utf8('prevote-of-a'), utf8('prevote-of-b'), new Uint8Array(2500).fill(7)] };
    await store.saveSigner(last2, lockWithBlock);
    assert.deepEqual(plain(await store.loadSigner()), { last: last2, lock: lockWithBlock });
    await store.close();

    store = await ChainStore.open(dir);
    try {
      assert.deepEqual(plain(await store.loadSigner()), { last: last2, lock: lockWithBlock });
      // signer records are independent of the chain data
      assert.equal(await store.headHeight(), -1);
      // A lock record written before the proof of lock was kept (it ends after the block) reads with none.
      const raw = { signer: (store as unknown as { signer: { put(k: Uint8Array, v: Uint8Array): Promise<void> } }).signer };
      const old = new Writer(64).u64(7).u64(1).fixed(h2, 32).bytes(new Uint8Array(0)).finish();
      await raw.signer.put(utf8('lock'), old);
      assert.deepEqual(plain((await store.loadSigner()).lock), { height: 7, round: 1, blockHash: h2, block: null, pol: [] });
    } finally {
      await store.close();
    }
  });

  it("a lock's block is stored once, hidden until finalized, kept by its commit without a second write, deleted when another block is finalized at its height", async () => {
    const dir = freshDir();
    let store = await ChainStore.open(dir);
    /** Puts into the blocks sublevel ('b'), counted through the store's LevelDB handle. */
    let blockPuts = 0;
    const spy = (s: ChainStore) => {
      const db = (s as unknown as { db: { batch(): { put(k: unknown, v: unknown, o?: { sublevel?: { prefix: string } }): unknown } } }).db;
      const batch = db.batch.bind(db);
      db.batch = () => {
        const b = batch();
        const put = b.put.bind(b);
        b.put = (k, v, o) => {
          if (o?.sublevel?.prefix === '!b!') blockPuts++;
          return put(k, v, o);
        };
        return b;
      };
    };
    spy(store);
    try {
      for (let h = 0; h <= 2; h++) await store.commitBlock(commitFor(h));
      blockPuts = 0;
      // Locked on height 3's block: stored by the lock (synced), not yet a finalized block.
      const c3 = commitFor(3);
      const lock3: LockRecord = { height: 3, round: 0, blockHash: c3.hash, block: c3.block, pol: [] };
      await store.saveSigner({ height: 3, round: 0, step: 2, blockHash: c3.hash }, lock3);
      assert.equal(blockPuts, 1);
      assert.equal(await store.blockByHash(c3.hash), undefined, 'a locked block is not finalized');
      same((await store.loadSigner()).lock?.block ?? undefined, c3.block, 'the lock reads its block back');
      // Signing again under the same lock names the block without writing it again.
      await store.saveSigner({ height: 3, round: 1, step: 1, blockHash: c3.hash }, lock3);
      assert.equal(blockPuts, 1);
      // Its commit (the same bytes) does not write the block a second time, and it becomes a finalized block.
      await store.commitBlock(c3);
      assert.equal(blockPuts, 1);
      await assertConsistent(store, 3, { allTxs: true });

      // Locked on a block of height 4 that is not the one finalized there: deleted by that commit.
      const other = blockBytes(40);
      const otherHash = sha256(utf8('a block of height 4 that is not finalized'));
      await store.saveSigner({ height: 4, round: 0, step: 2, blockHash: otherHash }, { height: 4, round: 0, blockHash: otherHash, block: other, pol: [] });
      await store.close();

      // Across a restart the lock still reads its block, and it is still not a finalized block.
      store = await ChainStore.open(dir);
      spy(store);
      same((await store.loadSigner()).lock?.block ?? undefined, other, 'the lock block after reopen');
      assert.equal(await store.blockByHash(otherHash), undefined);
      const raw = (store as unknown as { blocks: { get(k: Uint8Array): Promise<Uint8Array | undefined> } }).blocks;
      assert.ok(await raw.get(bkey(4, otherHash)), 'stored under its height and hash');
      await store.commitBlock(commitFor(4));
      assert.equal(await raw.get(bkey(4, otherHash)), undefined, 'deleted by the commit of another block at its height');
      await assertConsistent(store, 4);

      // A lock record left from a height finalized before a crash, its block still stored (as
      // if the commit's write had not known it was pending): the next open deletes it.
      const stray = sha256(utf8('stray'));
      await store.saveSigner({ height: 5, round: 0, step: 2, blockHash: stray }, { height: 5, round: 0, blockHash: stray, block: blockBytes(50), pol: [] });
      await store.commitBlock(commitFor(5));
      assert.equal(await raw.get(bkey(5, stray)), undefined, 'deleted by the commit');
      await (raw as unknown as { put(k: Uint8Array, v: Uint8Array): Promise<void> }).put(bkey(5, stray), blockBytes(50));
      await store.close();
      store = await ChainStore.open(dir);
      const reopened = (store as unknown as { blocks: { get(k: Uint8Array): Promise<Uint8Array | undefined> } }).blocks;
      assert.equal(await reopened.get(bkey(5, stray)), undefined, 'deleted at open');
      same(await store.blockByHash(hashOf(5)), blockBytes(5), 'the finalized block of that height stays');
      await assertConsistent(store, 5);
    } finally {
      await store.close().catch(() => undefined);
    }
  });

  it('upgrades a data dir of format 3 (blocks keyed by hash) in place, and resumes an interrupted upgrade', async () => {
    const dir = freshDir();
    const N = 40;
    type Raw = { db: { batch(ops: unknown[]): Promise<void>; sublevel(n: string, o: object): RawSub } };
    type RawSub = { iterator(): AsyncIterable<[Uint8Array, Uint8Array]>; get(k: Uint8Array): Promise<Uint8Array | undefined> };
    const subOf = (s: ChainStore, name: string) => (s as unknown as Raw).db.sublevel(name, { keyEncoding: 'view', valueEncoding: 'view' });
    let store = await ChainStore.open(dir);
    const lockC = commitFor(N + 1);
    try {
      for (let h = 0; h <= N; h++) await store.commitBlock(commitFor(h));
      // A lock above the head: its block is stored, not finalized.
      await store.saveSigner({ height: N + 1, round: 0, step: 2, blockHash: lockC.hash }, { height: N + 1, round: 0, blockHash: lockC.hash, block: lockC.block, pol: [] });
      // Lay the blocks out as format 3 did (by hash, no hash → height index), except heights
      // 0..9, left as an interrupted upgrade leaves them (moved, format still 3).
      const b = subOf(store, 'b');
      const i = subOf(store, 'i');
      const ops: unknown[] = [];
      for await (const [k, v] of b.iterator()) {
        if (new Reader(k).u64n() < 10) continue;
        ops.push({ type: 'del', sublevel: b, key: k }, { type: 'put', sublevel: b, key: k.slice(8), value: v });
      }
      for await (const [k] of i.iterator()) ops.push({ type: 'del', sublevel: i, key: k });
      ops.push({ type: 'put', sublevel: subOf(store, 'm'), key: utf8('format'), value: new Writer(8).u64(3).finish() });
      await (store as unknown as Raw).db.batch(ops);
      await store.close();

      // Offline tools open it as it is.
      store = await ChainStore.open(dir);
      assert.equal(await store.stateFormat(), 3);
      assert.equal(await store.blockByHash(hashOf(20)), undefined, 'a format 3 block is not where this layout reads it');
      await store.close();

      const progress: { done: number; total: number; moved: number }[] = [];
      store = await ChainStore.open(dir, { upgrade: { onProgress: (p) => progress.push(p) } });
      assert.equal(await store.stateFormat(), STATE_FORMAT);
      assert.deepEqual(progress.at(-1), { done: N + 1, total: N + 1, moved: N + 1 - 10 + 1 }, 'every height indexed; the 31 finalized blocks left and the lock block moved');
      for (let h = 0; h <= N; h++) {
        same(await store.blockByHash(hashOf(h)), blockBytes(h), `block ${h} by hash`);
        same(await store.blockAtHeight(h), blockBytes(h), `block ${h} by height`);
      }
      assert.deepEqual(
        (await store.certifiedRange(1, N)).map((r) => r.height),
        Array.from({ length: N }, (_, k) => k + 1),
      );
      for await (const [k] of subOf(store, 'b').iterator()) assert.equal(k.length, 40, 'no block left under a hash key');
      same((await store.loadSigner()).lock?.block ?? undefined, lockC.block, "the lock's block");
      assert.equal(await store.blockByHash(lockC.hash), undefined, 'still not finalized');
      await store.commitBlock(lockC);
      same(await store.blockByHash(lockC.hash), lockC.block, 'finalized by its commit');
      await assertConsistent(store, N + 1);
      await store.close();

      // Opening an upgraded data dir again changes nothing.
      progress.length = 0;
      store = await ChainStore.open(dir, { upgrade: { onProgress: (p) => progress.push(p) } });
      assert.deepEqual(progress, []);
      await assertConsistent(store, N + 1);
    } finally {
      await store.close().catch(() => undefined);
    }
  });

  it('an upgrade of a data dir with no heights below its base (a snapshot) reports every height covered at the end', async () => {
    const dir = freshDir();
    type Raw = { db: { batch(ops: unknown[]): Promise<void>; sublevel(n: string, o: object): { iterator(): AsyncIterable<[Uint8Array, Uint8Array]> } } };
    const subOf = (s: ChainStore, name: string) => (s as unknown as Raw).db.sublevel(name, { keyEncoding: 'view', valueEncoding: 'view' });
    let store = await ChainStore.open(dir);
    try {
      for (let h = 0; h <= 30; h++) await store.commitBlock(commitFor(h));
      // Format 3, and heights 1..19 gone (blocks and their height entries), as below a snapshot's base.
      const ops: unknown[] = [];
      const b = subOf(store, 'b');
      const hs = subOf(store, 'h');
      for await (const [k, v] of b.iterator()) {
        const height = new Reader(k).u64n();
        ops.push({ type: 'del', sublevel: b, key: k });
        if (height === 0 || height >= 20) ops.push({ type: 'put', sublevel: b, key: k.slice(8), value: v });
      }
      for await (const [k] of hs.iterator()) if (new Reader(k).u64n() >= 1 && new Reader(k).u64n() < 20) ops.push({ type: 'del', sublevel: hs, key: k });
      ops.push({ type: 'put', sublevel: subOf(store, 'm'), key: utf8('format'), value: new Writer(8).u64(3).finish() });
      await (store as unknown as Raw).db.batch(ops);
      await store.close();
      const progress: { done: number; total: number; moved: number }[] = [];
      store = await ChainStore.open(dir, { upgrade: { onProgress: (p) => progress.push(p) } });
      assert.deepEqual(progress.at(-1), { done: 31, total: 31, moved: 12 });
      same(await store.blockAtHeight(25), blockBytes(25), 'block 25');
    } finally {
      await store.close().catch(() => undefined);
    }
  });

  it('keys blocks by height: the blocks sublevel iterates in height order, whatever the hashes', async () => {
    const store = await ChainStore.open(freshDir());
    try {
      for (let h = 0; h <= 30; h++) await store.commitBlock(commitFor(h));
      const heights: number[] = [];
      const b = (store as unknown as { db: { sublevel(n: string, o: object): { keys(): AsyncIterable<Uint8Array> } } }).db.sublevel('b', { keyEncoding: 'view', valueEncoding: 'view' });
      for await (const k of b.keys()) heights.push(new Reader(k).u64n());
      assert.deepEqual(heights, Array.from({ length: 31 }, (_, k) => k));
      // The hashes themselves are not in order: with hash keys the iteration order would differ.
      const byHash = [...Array(31).keys()].sort((x, y) => toHex(hashOf(x)).localeCompare(toHex(hashOf(y))));
      assert.notDeepEqual(byHash, heights);
    } finally {
      await store.close();
    }
  });

  it('opening the same data dir twice fails with UNAVAILABLE naming the dir', async () => {
    const dir = freshDir();
    const store = await ChainStore.open(dir);
    try {
      // from another process (checked first: see the pending test below)
      const out = await runWriter(WRITER, ['open', dir]);
      const res = JSON.parse(out.lines[0]!) as { ok: boolean; qnexus: boolean; code: string; message: string };
      assert.equal(res.ok, false, 'a second process must not open a data dir in use');
      assert.equal(res.qnexus, true);
      assert.equal(res.code, 'UNAVAILABLE');
      assert.ok(res.message.includes(dir), res.message);
      // and from this process
      await assert.rejects(ChainStore.open(dir), (e: unknown) => {
        assert.ok(e instanceof QnexusError, String(e));
        assert.equal(e.code, 'UNAVAILABLE');
        assert.equal(e.httpStatus, 503);
        assert.ok(e.message.includes(dir), e.message);
        return true;
      });
      // the first handle still works
      await store.commitBlock(commitFor(0));
      assert.equal(await store.headHeight(), 0);
    } finally {
      await store.close();
    }
    // once closed, the dir can be opened again
    const again = await ChainStore.open(dir);
    assert.equal(await again.headHeight(), 0);
    await again.close();
  });

  it('a failed in-process second open does not release the lock for other processes', async () => {
    const dir = freshDir();
    const store = await ChainStore.open(dir);
    try {
      await assert.rejects(ChainStore.open(dir), QnexusError);
      const out = await runWriter(WRITER, ['open', dir]);
      const res = JSON.parse(out.lines[0]!) as { ok: boolean; code: string };
      assert.equal(res.ok, false, 'another process opened a data dir that is still in use');
      assert.equal(res.code, 'UNAVAILABLE');
    } finally {
      await store.close();
    }
  });
});

// ------------------------------------------------------------------ crash atomicity

describe('db: crash atomicity (SIGKILL during commitBlock loop)', function () {
  this.timeout(60_000);

  it('after each kill the store reopens consistent at some head H with the exact state for H', async () => {
    const dir = freshDir();
    let prevHead = -1;
    const seed0 = Date.now() & 0x7fffffff;
    let seed = seed0;
    const rand = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const heads: number[] = [];
    for (let iter = 0; iter < 5; iter++) {
      const delay = 30 + Math.floor(rand() * 300);
      const run = await runWriter(WRITER, ['commit', dir], delay);
      assert.equal(run.signal, 'SIGKILL', `child should have been killed (code ${run.code}): ${run.stderr}`);
      assert.equal(run.lines[0], `ready ${prevHead + 1}`, run.stderr);
      const reported = run.lines.filter((l) => l.startsWith('committed ')).map((l) => Number(l.slice(10)));
      // reported heights are consecutive from where the last run stopped
      reported.forEach((h, i) => assert.equal(h, prevHead + 1 + i));
      const lastReported = reported.length ? reported[reported.length - 1]! : prevHead;

      const store = await ChainStore.open(dir);
      try {
        const H = await store.headHeight();
        const ctx = `iteration ${iter}, kill delay ${delay}ms, prng seed ${seed0}`;
        // every acknowledged commit is durable; at most the one in flight may also have landed
        assert.ok(H === lastReported || H === lastReported + 1, `head ${H}, last acknowledged ${lastReported} (${ctx})`);
        await assertConsistent(store, H).catch((e: Error) => {
          e.message = `${ctx}: ${e.message}`;
          throw e;
        });
        heads.push(H);
        if (process.env.QN_DEBUG) console.log(`${ctx}: acked ${lastReported}, head ${H}`);
        prevHead = H;
      } finally {
        await store.close();
      }
    }
    assert.ok(prevHead >= 5, `the writer made progress (heads ${heads.join(',')})`);
  });
});
