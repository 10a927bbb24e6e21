import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toHex } from '@qnexus/crypto';
import { QnexusError } from '@qnexus/types';
import { ConsensusCore, makeCommittee, type Action, type SignedState } from '@qnexus/consensus';
import {
  BACKUP_FORMAT,
  BackupError,
  ChainStore,
  LevelLockedError,
  digestLevel,
  openLevel,
  readBackupManifest,
  type BackupManifest,
  type SignerRecord,
} from '@qnexus/db';
import { CHAIN, GENESIS_HASH, blockBytes, commitFor, expectedState, hashOf } from './fixture.js';

let root: string;
let n = 0;
const fresh = (name = 'd') => join(root, `${name}-${n++}`);

before(() => {
  root = mkdtempSync(join(tmpdir(), 'qnexus-backup-test-'));
});
after(() => {
  rmSync(root, { recursive: true, force: true });
});

/** A store with the fixture chain committed through height H. */
async function chainStore(H: number): Promise<{ dir: string; store: ChainStore }> {
  const dir = fresh('src');
  const store = await ChainStore.open(dir);
  for (let h = 0; h <= H; h++) await store.commitBlock(commitFor(h));
  return { dir, store };
}

/** The restored/copied store holds exactly the fixture chain at its head H (no part of H + 1). */
async function assertChainAt(store: ChainStore, H: number): Promise<void> {
  assert.equal(await store.headHeight(), H);
  assert.deepEqual(new Uint8Array((await store.genesisHash())!), GENESIS_HASH);
  for (let h = 0; h <= H; h++) assert.deepEqual(new Uint8Array((await store.blockAtHeight(h))!), blockBytes(h), `block ${h}`);
  assert.equal(await store.hashAtHeight(H + 1), undefined, 'nothing of the next height');
  assert.equal(await store.blockByHash(hashOf(H + 1)), undefined, 'nothing of the next height');
  const st = await store.loadState();
  assert.deepEqual(st.map(([k, v]) => [k, toHex(v)]), expectedState(H));
}

/** Every file of a flat directory tree with its SHA-256 (to prove the backup is never modified). */
function treeDigest(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    out[p.slice(dir.length)] = createHash('sha256').update(readFileSync(p)).digest('hex');
  }
  return out;
}

const rejectsCode = (p: Promise<unknown>, code: string, re: RegExp) =>
  assert.rejects(p, (e: unknown) => {
    assert.equal((e as { code?: string }).code, code, String(e));
    assert.match((e as Error).message, re);
    return true;
  });

describe('db: backup and restore', () => {
  it('a backup taken while blocks keep being committed is one consistent head, described by its manifest', async () => {
    const { store } = await chainStore(20);
    const target = join(fresh('bk'), 'nested', 'backup');
    let next = 21;
    let writing = true;
    // Commit concurrently with the copy (small batches: many interleavings).
    const writer = (async () => {
      while (writing && next < 400) await store.commitBlock(commitFor(next++));
    })();
    await new Promise((r) => setTimeout(r, 5));
    const r = await store.backup(target, { batchBytes: 4096 });
    writing = false;
    await writer;
    const m = r.manifest;
    assert.equal(r.dir, target);
    assert.equal(m.format, BACKUP_FORMAT);
    assert.equal(m.kind, 'node');
    assert.equal(m.chainId, CHAIN);
    assert.equal(m.shard, 0);
    assert.equal(m.genesisHash, toHex(GENESIS_HASH));
    assert.equal(m.epoch, null);
    assert.ok(m.height! >= 20, `height ${m.height}`);
    assert.ok(next - 1 > m.height!, `the store kept committing during the copy (head ${next - 1}, snapshot ${m.height})`);
    assert.ok(m.excludes.some((x) => x.startsWith('peer.key')) && m.excludes.some((x) => x.startsWith('admin.token')));
    assert.deepEqual(JSON.parse(readFileSync(join(target, 'backup.json'), 'utf8')), m);
    assert.deepEqual(await readBackupManifest(target), m);
    // Complete and atomic: only the final directory, no partial sibling left.
    assert.deepEqual(readdirSync(join(target, '..')), ['backup']);
    assert.deepEqual(readdirSync(target).sort(), ['backup.json', 'db']);
    await store.close();

    // The copy is the chain at exactly the manifest's height, and its digest is the manifest's.
    const copy = await openLevel(join(target, 'db'), 'test');
    try {
      const d = await digestLevel(copy.db);
      assert.deepEqual(d, { keys: m.keys, bytes: m.bytes, sha256: m.sha256 });
    } finally {
      await copy.close();
    }
    const restoredDir = join(fresh('data'), 'db');
    const before = treeDigest(target);
    const rr = await ChainStore.restoreBackup(target, restoredDir);
    assert.deepEqual(rr.manifest, m);
    assert.deepEqual(treeDigest(target), before, 'the backup is not modified by a restore');
    const restored = await ChainStore.open(restoredDir);
    try {
      await assertChainAt(restored, m.height!);
    } finally {
      await restored.close();
    }
  });

  it('refuses relative, non-empty, file and in-database targets (BAD_REQUEST, BACKUP_EXISTS); an empty directory is fine', async () => {
    const { dir, store } = await chainStore(2);
    try {
      await rejectsCode(store.backup('relative/dir'), 'BAD_REQUEST', /absolute path/);
      const full = fresh('full');
      mkdirSync(full);
      writeFileSync(join(full, 'x'), 'x');
      await rejectsCode(store.backup(full), 'BACKUP_EXISTS', /already exists and is not empty/);
      await rejectsCode(store.backup(join(full, 'x')), 'BAD_REQUEST', /not a directory/);
      await rejectsCode(store.backup(join(dir, 'inside')), 'BAD_REQUEST', /inside the database/);
      assert.deepEqual(readdirSync(full), ['x'], 'nothing written next to a refused target');
      const empty = fresh('empty');
      mkdirSync(empty);
      const r = await store.backup(empty);
      assert.equal(r.manifest.height, 2);
      await assert.rejects(store.backup(empty), (e: unknown) => e instanceof QnexusError && e.code === 'BACKUP_EXISTS', 'a backup never overwrites another');
    } finally {
      await store.close();
    }
  });

  it('a failed backup leaves nothing behind (an empty store has nothing to back up)', async () => {
    const dir = fresh('empty-src');
    const store = await ChainStore.open(dir);
    const parent = fresh('p');
    try {
      await rejectsCode(store.backup(join(parent, 'b')), 'BAD_REQUEST', /no chain/);
      assert.deepEqual(readdirSync(parent), []);
    } finally {
      await store.close();
    }
  });

  it('restore refuses a non-backup, another format, a tampered copy and an existing database', async () => {
    const { store } = await chainStore(5);
    const target = fresh('bk');
    const { manifest } = await store.backup(target);
    await store.close();

    await rejectsCode(ChainStore.restoreBackup(fresh('nothing'), join(fresh('x'), 'db')), 'NOT_A_BACKUP', /no backup\.json/);
    const occupied = join(fresh('data'), 'db');
    mkdirSync(occupied, { recursive: true });
    writeFileSync(join(occupied, 'CURRENT'), 'x');
    await rejectsCode(ChainStore.restoreBackup(target, occupied), 'DB_EXISTS', /never overwrites/);

    const edit = (f: (m: BackupManifest) => object) => writeFileSync(join(target, 'backup.json'), JSON.stringify(f(manifest)));
    edit((m) => ({ ...m, format: 99 }));
    await rejectsCode(readBackupManifest(target), 'BACKUP_UNSUPPORTED', /format 99/);
    edit((m) => ({ ...m, keys: m.keys + 1 }));
    const dest = join(fresh('data'), 'db');
    await rejectsCode(ChainStore.restoreBackup(target, dest), 'BACKUP_CORRUPT', /does not match its manifest/);
    assert.deepEqual(readdirSync(join(dest, '..')), [], 'nothing left of a refused restore');
    edit((m) => ({ ...m, height: 4 }));
    await rejectsCode(ChainStore.restoreBackup(target, dest), 'BACKUP_CORRUPT', /height 5, its manifest says 4/);
    edit((m) => m);
    assert.equal((await ChainStore.restoreBackup(target, dest)).manifest.height, 5);
    assert.ok(new BackupError('DB_EXISTS', 'x') instanceof Error);
  });

  it('an open in another handle is refused with LevelLockedError (code UNAVAILABLE)', async () => {
    const { dir, store } = await chainStore(0);
    try {
      await assert.rejects(ChainStore.open(dir), (e: unknown) => e instanceof LevelLockedError && e.code === 'UNAVAILABLE');
    } finally {
      await store.close();
    }
  });
});

describe('db: a restored validator data dir and the signer floor', () => {
  const committee = makeCommittee(['a', 'b', 'c', 'd'].map((address) => ({ address, stake: 1n })));
  type B = { height: number; round: number };
  const app = {
    hashBlock: (b: B) => `${b.height}/${b.round}`,
    validateBlock: () => true,
    buildBlock: (height: number, round: number) => ({ height, round }),
  };
  const signed = (acts: Action<B>[]) => acts.filter((a) => a.type === 'broadcastVote' || a.type === 'broadcastProposal');

  function core(height: number, lastSigned: SignedState | null, minSignRound: number) {
    // 'a' proposes every round: any round it may sign in shows a proposal and a prevote.
    return new ConsensusCore<B>({ app, schedule: { committee: () => committee, proposer: () => 'a' }, self: 'a', height, lastSigned, minSignRound });
  }

  it('restored: older signer records, floor armed at the first start only, and the core refuses to sign below it', async () => {
    const { store } = await chainStore(5);
    const rec = (height: number, round: number): SignerRecord => ({ height, round, step: 2, blockHash: null });
    await store.saveSigner(rec(6, 50), null);
    const target = fresh('bk');
    await store.backup(target);
    // The original keeps signing after the backup: height 6 round 60, height 7 round 70.
    await store.saveSigner(rec(7, 70), null);
    await store.close();

    const dbDir = join(fresh('data'), 'db');
    await ChainStore.restoreBackup(target, dbDir, () => 1_700_000_000_000);
    let s = await ChainStore.open(dbDir);
    const { last } = await s.loadSigner();
    assert.deepEqual({ ...last, blockHash: null }, rec(6, 50), 'the restored record is the older one');
    assert.equal(await s.signerFloor(), null, 'not armed before the first start');
    // First start at slot 99: the floor is the next slot.
    assert.deepEqual(await s.armSignerFloor(100), { floor: 100, armed: true, restoredAt: 1_700_000_000_000 });
    await s.close();
    s = await ChainStore.open(dbDir);
    // Later starts keep the floor and do not move it.
    assert.deepEqual(await s.armSignerFloor(500), { floor: 100, armed: false, restoredAt: null });
    assert.equal(await s.signerFloor(), 100);
    await s.close();

    // The restored validator at height 6 (its head is 5), with what its db says.
    const lastSigned: SignedState = { height: 6, round: 50, step: 'precommit' };
    // Without the floor it would sign in round 60 again, where the original already signed (equivocation).
    assert.equal(signed(core(6, lastSigned, 0).handle({ type: 'slot', slot: 60 })).length, 2, 'the hazard the floor removes');
    const c = core(6, lastSigned, 100);
    for (const slot of [60, 70, 99]) assert.deepEqual(signed(c.handle({ type: 'slot', slot })), [], `nothing signed in round ${slot}`);
    const acts = c.handle({ type: 'slot', slot: 100 });
    assert.deepEqual(
      signed(acts).map((a) => a.type),
      ['broadcastProposal', 'broadcastVote'],
      'signs from the floor on',
    );
    // A store that never was restored has no floor and never gets one.
    const plain = await chainStore(1);
    assert.deepEqual(await plain.store.armSignerFloor(100), { floor: null, armed: false, restoredAt: null });
    assert.equal(await plain.store.signerFloor(), null);
    await plain.store.close();
  });
});
