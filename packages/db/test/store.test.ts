import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256, toHex, utf8 } from '@qnexus/crypto';
import { QnexusError, Writer, decodeBlock, decodeCertificate, blockHash, decodeXferRecord, encodeXferRecord, type XferRecord } from '@qnexus/types';
import { WorldState, decodeAccount, decodeCounters, encodeAccount, encodeCounters, type Account, type Counters } from '@qnexus/state';
import { ChainStore, type LockRecord, type SignerRecord } from '@qnexus/db';
import {
  GENESIS_HASH,
  TXS_PER_BLOCK,
  accountHex,
  blockBytes,
  burnedAt,
  certificateBytes,
  commitFor,
  countersAt,
  xferIdHex,
  xferRecordAt,
  expectedState,
  hashOf,
  proposerHex,
  txHash,
} from './fixture.js';

const WRITER = fileURLToPath(new URL('./crash-writer.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

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
    assert.deepEqual(await store.loadState(), { accounts: [], xfers: [], pendingFees: [], counters: undefined });
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
  if (H >= 0) {
    const exp = expectedState(H);
    assert.deepEqual(
      st.accounts.map(([k, v]) => [k, toHex(v)]),
      exp.accounts,
      `state at ${H}`,
    );
    assert.deepEqual(st.xfers.map((x) => toHex(x)), exp.xfers, `transfer records at ${H}`);
    assert.deepEqual(st.pendingFees, exp.pendingFees, `pending fees at ${H}`);
    assert.deepEqual(decodeCounters(st.counters), exp.counters, `counters at ${H}`);
  }
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
      assert.deepEqual(await store.loadState(), { accounts: [], xfers: [], pendingFees: [], counters: undefined });
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
      // state decodes and reflects the latest write for each account
      const st = await store.loadState();
      const acc0 = st.accounts.find(([k]) => k === accountHex(0));
      assert.ok(acc0);
      assert.deepEqual(plain(decodeAccount(acc0[1])), { balance: 7n, nonce: 7n, publicKey: null });
      assert.equal(decodeCounters(st.counters).burned, burnedAt(7));
      assert.deepEqual(decodeCounters(st.counters), countersAt(7));
      // transfer records decode to what was written last for each id (7 % 4 = 3 at height 7, 0 at 4, 1 at 5, 2 at 6)
      const recs = new Map(st.xfers.map((b) => { const r = decodeXferRecord(b); return [toHex(r.info.id), r] as const; }));
      assert.equal(recs.size, 4);
      assert.deepEqual(plain(recs.get(xferIdHex(3))), xferRecordAt(3, 7));
      assert.deepEqual(plain(recs.get(xferIdHex(2))), xferRecordAt(2, 6));
      assert.equal(recs.get(xferIdHex(2))!.decision, 'commit');
      // accounts are returned in address order
      const keys = st.accounts.map(([k]) => k);
      assert.deepEqual(keys, [...keys].sort());
      // continuing after reopen works
      await store.commitBlock(commitFor(8));
      await assertConsistent(store, 8);
    } finally {
      await store.close();
    }
  });

  it('transfer records and counters: added, overwritten, kept when untouched; a state rebuilt from loadState has the same root', async () => {
    const dir = freshDir();
    const acct = (n: number): [string, Account] => [toHex(sha256(utf8(`acct-${n}`)).slice(0, 20)), { balance: BigInt(1000 * n), nonce: BigInt(n), publicKey: null }];
    const rec = (n: number, over: Partial<XferRecord> = {}): XferRecord => ({ ...xferRecordAt(n, 1), ...over });
    const c1: Counters = { burned: 10n, escrow: 300n, exported: 0n, imported: 0n, fees: 40n, feeEpoch: 0 };
    const c2: Counters = { burned: 12n, escrow: 100n, exported: 200n, imported: 55n, fees: 7n, feeEpoch: 3 };
    const px = (n: number) => toHex(sha256(utf8(`proposer-${n}`)).slice(0, 20));
    const base = commitFor(0);
    let store = await ChainStore.open(dir);
    await store.commitBlock({
      ...base,
      accounts: new Map([acct(1), acct(2)].map(([k, a]) => [k, encodeAccount(a)])),
      xfers: new Map([rec(0), rec(1)].map((r) => [toHex(r.info.id), encodeXferRecord(r)])),
      pendingFees: new Map([
        [px(1), 30n],
        [px(2), 10n],
      ]),
      counters: encodeCounters(c1),
    });
    // height 1 decides record 1, adds record 2, leaves record 0 alone
    const decided = rec(1, { decision: 'abort', decidedHeight: 1 });
    await store.commitBlock({
      ...commitFor(1),
      accounts: new Map(),
      xfers: new Map([decided, rec(2, { prepare: 'refused', reason: 'XS_DEADLINE_PASSED' })].map((r) => [toHex(r.info.id), encodeXferRecord(r)])),
      // proposer 1's fees were sent (deleted), proposer 2 earned more, proposer 3 is new
      pendingFees: new Map([
        [px(1), 0n],
        [px(2), 3n],
        [px(3), 4n],
      ]),
      counters: encodeCounters(c2),
    });
    await store.close();

    store = await ChainStore.open(dir);
    try {
      const st = await store.loadState();
      assert.deepEqual(decodeCounters(st.counters), c2, 'the latest counters');
      assert.deepEqual(st.pendingFees, [[px(2), 3n], [px(3), 4n]].sort((a, b) => (a[0]! < b[0]! ? -1 : 1)), 'pending fees: updated, added, deleted at 0');
      const recs = st.xfers.map((b) => plain(decodeXferRecord(b)));
      const byId = new Map(recs.map((r) => [toHex(r.info.id), r]));
      assert.equal(byId.size, 3);
      assert.deepEqual(byId.get(xferIdHex(0)), rec(0), 'untouched record kept');
      assert.deepEqual(byId.get(xferIdHex(1)), decided, 'record overwritten by the later commit');
      assert.equal(byId.get(xferIdHex(2))!.reason, 'XS_DEADLINE_PASSED');
      // records come back in id order
      const ids = recs.map((r) => toHex(r.info.id));
      assert.deepEqual(ids, [...ids].sort());
      // the node's reload path: the same entries give the same state root
      const expected = WorldState.fromEntries(
        [acct(1), acct(2)],
        c2,
        [rec(0), decided, rec(2, { prepare: 'refused', reason: 'XS_DEADLINE_PASSED' })],
        [
          [px(3), 4n],
          [px(2), 3n],
        ],
      );
      const reloaded = WorldState.fromEntries(
        st.accounts.map(([k, v]) => [k, decodeAccount(v)]),
        decodeCounters(st.counters),
        st.xfers.map(decodeXferRecord),
        st.pendingFees,
      );
      assert.deepEqual(reloaded.root(), expected.root());
      assert.equal(reloaded.counters.imported, 55n);
      assert.equal(reloaded.pendingFee(px(2)), 3n);
      assert.equal(reloaded.pendingFee(px(1)), 0n);
      // without the pending fees the root differs: the node must load them
      assert.notDeepEqual(
        WorldState.fromEntries(st.accounts.map(([k, v]) => [k, decodeAccount(v)]), decodeCounters(st.counters), st.xfers.map(decodeXferRecord)).root(),
        expected.root(),
      );
    } finally {
      await store.close();
    }
  });

  it('pending fees: a state rebuilt after reopen holds exactly the committed entries, through sends (0) and re-earning', async () => {
    const dir = freshDir();
    let store = await ChainStore.open(dir);
    for (let h = 0; h <= 9; h++) await store.commitBlock(commitFor(h));
    await store.close();
    store = await ChainStore.open(dir);
    try {
      const st = await store.loadState();
      const exp = expectedState(9);
      assert.deepEqual(st.pendingFees, exp.pendingFees);
      // height 8 sent proposer 2's fees (deleted); proposers 0 and 1 hold what heights 9 and 7 wrote
      assert.deepEqual(new Map(st.pendingFees), new Map([[proposerHex(0), 90n], [proposerHex(1), 70n]]));
      await store.commitBlock(commitFor(10)); // proposer 1 earns again
      assert.deepEqual(new Map((await store.loadState()).pendingFees).get(proposerHex(1)), 100n);
      await store.commitBlock(commitFor(11));
      await store.commitBlock(commitFor(12)); // 12 % 4 = 0: proposer 0's entry is deleted
      const st12 = await store.loadState();
      assert.deepEqual(st12.pendingFees, expectedState(12).pendingFees);
      assert.ok(!st12.pendingFees.some(([k]) => k === proposerHex(0)));
      assert.equal(decodeCounters(st12.counters).feeEpoch, 3);
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
      assert.deepEqual((await store.loadState()).pendingFees, []);
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

  it('opening the same data dir twice fails with UNAVAILABLE naming the dir', async () => {
    const dir = freshDir();
    const store = await ChainStore.open(dir);
    try {
      // from another process (checked first: see the pending test below)
      const out = await runWriter(['open', dir]);
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
      const out = await runWriter(['open', dir]);
      const res = JSON.parse(out.lines[0]!) as { ok: boolean; code: string };
      assert.equal(res.ok, false, 'another process opened a data dir that is still in use');
      assert.equal(res.code, 'UNAVAILABLE');
    } finally {
      await store.close();
    }
  });
});

// ------------------------------------------------------------------ crash atomicity

interface WriterRun {
  lines: string[];
  signal: NodeJS.Signals | null;
  code: number | null;
  stderr: string;
}

/** Run the writer child; if killAfterReadyMs is set, SIGKILL it that long after it reports ready. */
function runWriter(args: string[], killAfterReadyMs?: number): Promise<WriterRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let buf = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    const guard = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        if (line.startsWith('ready') && killAfterReadyMs !== undefined && !timer) {
          timer = setTimeout(() => child.kill('SIGKILL'), killAfterReadyMs);
        }
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      if (timer) clearTimeout(timer);
      resolve({ lines, signal, code, stderr });
    });
  });
}

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
      const run = await runWriter(['commit', dir], delay);
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
