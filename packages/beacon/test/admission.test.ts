// Who may speak on the 2PC stream, and what counts as proven.
import assert from 'node:assert/strict';
import { toHex } from '@qnexus/crypto';
import { encodeBeaconRequest } from '@qnexus/types';
import { Admitter, type Admission } from '../src/admission.js';
import { Registry } from '../src/registry.js';
import { binding, certifiedBlock, hello, report } from './fixtures.js';
import { addrOf, destRecord, info, key, sourceRecord, testGenesis } from './helpers.js';

describe('beacon: 2PC admission', () => {
  const vals = [1, 2, 3, 4].map(key);
  const outsider = key(5);
  const g = testGenesis({ validators: vals, beacon: key(9) });
  const registry = new Registry(g);
  const shardOf = (k: (typeof vals)[number]) => registry.membership(0, addrOf(k))!.shard;
  const members = (s: number) => vals.filter((k) => shardOf(k) === s);
  const [a0, b0] = members(0) as [(typeof vals)[number], (typeof vals)[number]];
  const [a1, b1] = members(1) as [(typeof vals)[number], (typeof vals)[number]];
  let adm: Admitter;

  beforeEach(() => {
    adm = new Admitter(registry);
  });

  const refused = (r: Admission, code: string) => {
    assert.equal(r.ok, false, 'expected a refusal');
    if (!r.ok) assert.equal(r.code, code, r.message);
  };

  it('has two members per shard in this genesis', () => {
    assert.equal(members(0).length, 2);
    assert.equal(members(1).length, 2);
  });

  it('binds a committee member to the peer it speaks through', () => {
    const r = adm.admit(hello(g, a1, 1, 'peer-a1'), 'peer-a1', 0);
    assert.deepEqual(r, { ok: true, type: 'hello', validator: addrOf(a1), shard: 1 });
    assert.equal(registry.peerOf(addrOf(a1)), 'peer-a1');
    assert.deepEqual(registry.shardPeers(0, 1), ['peer-a1']);
    adm.admit(hello(g, a1, 1, 'peer-a1-new'), 'peer-a1-new', 0);
    assert.deepEqual(registry.shardPeers(0, 1), ['peer-a1-new'], 'the latest binding wins');
  });

  it('refuses everyone else with XS_UNAUTHORIZED, and garbage with MALFORMED', () => {
    refused(adm.admit(new Uint8Array([1, 2, 3]), 'p', 0), 'MALFORMED');
    refused(adm.admit(hello(g, outsider, 0, 'p'), 'p', 0), 'XS_UNAUTHORIZED');
    refused(adm.admit(hello(g, a0, 0, 'someone-else'), 'p', 0), 'XS_UNAUTHORIZED');
    refused(adm.admit(hello(g, a0, 1, 'p'), 'p', 0), 'XS_UNAUTHORIZED');
    refused(adm.admit(hello({ ...g, chainId: 'other' }, a0, 0, 'p'), 'p', 0), 'XS_UNAUTHORIZED');
    const forged = binding(g, a0, 0, 'p');
    forged.signature = forged.signature.slice();
    forged.signature[10]! ^= 1;
    refused(adm.admit(encodeBeaconRequest({ type: 'hello', binding: forged }), 'p', 0), 'XS_UNAUTHORIZED');
  });

  it('admits the hello of a member of any committee it has frozen around the epoch, and never holds a membership refusal against the peer', () => {
    // The validator's clock is an epoch behind ours (or it restarted across a boundary): a member of epoch 0 speaking in epoch 1.
    assert.equal(registry.frozenNext >= 1, true);
    const r = adm.admit(hello(g, a1, 1, 'peer-late'), 'peer-late', 1);
    assert.deepEqual(r, { ok: true, type: 'hello', validator: addrOf(a1), shard: 1 });
    // Far ahead of anything frozen (our clock ran ahead of our freezes): refused, but not as a fault.
    const far = adm.admit(hello(g, a1, 1, 'peer-far'), 'peer-far', registry.frozenNext + 3);
    refused(far, 'XS_UNAUTHORIZED');
    assert.equal(!far.ok && far.fault, false, 'an honest member is not penalised for our view of the epochs');
  });

  it('accepts a certified report and verifies each block and binding once', () => {
    const x = info(1);
    const block = certifiedBlock(g, 0, 7, 5, [sourceRecord(x)], [a0, b0]);
    const r = adm.admit(report(g, a0, 'pa', block, [toHex(x.id)]), 'pa', 0);
    assert.ok(r.ok && r.type === 'report', r.ok ? r.type : r.message);
    assert.equal(r.height, 7);
    assert.equal(r.records.length, 1);
    assert.equal(r.records[0]!.role, 'source');
    assert.equal(adm.verifications, 1 + 2, 'binding + two certificate votes');
    const second = report(g, b0, 'pb', block, [toHex(x.id)]);
    assert.ok(adm.admit(second, 'pb', 0).ok);
    assert.equal(adm.verifications, 3 + 1, 'the second reporter costs only its binding');
    assert.ok(adm.admit(second, 'pb', 0).ok);
    assert.equal(adm.verifications, 4, 'and nothing when it repeats itself');
    assert.equal(registry.peerOf(addrOf(b0)), 'pb', 'a report also binds its peer');
  });

  it('a certificate naming a block it verified before, with other votes, is verified again: forged votes are refused', () => {
    const x = info(5);
    const block = certifiedBlock(g, 0, 12, 5, [sourceRecord(x)], [a0, b0]);
    const bnd = binding(g, a0, 0, 'pa');
    const req = (certificate: typeof block.certificate) =>
      encodeBeaconRequest({ type: 'report', report: { binding: bnd, header: block.header, certificate, items: block.state.proveXfers([toHex(x.id)]) } });
    assert.ok(adm.admit(req(block.certificate), 'pa', 0).ok);
    const before = adm.verifications;
    // Same block, same height and round, but b0's vote replaced by bytes b0 never signed.
    const forged = structuredClone(block.certificate);
    forged.votes[1] = { ...forged.votes[1]!, signature: forged.votes[0]!.signature };
    const r = adm.admit(req(forged), 'pa', 0);
    refused(r, 'XS_BAD_PROOF');
    assert.ok(!r.ok && r.fault, 'a forged certificate is the sender\'s fault');
    assert.equal(adm.verifications, before + 1, 'only the vote not seen before was verified');
    // The genuine certificate still costs nothing.
    assert.ok(adm.admit(req(block.certificate), 'pa', 0).ok);
    assert.equal(adm.verifications, before + 1);
  });

  it('a certificate without a quorum, duplicate signers or non-members costs no signature check', () => {
    const x = info(6);
    const ids = [toHex(x.id)];
    const bnd = binding(g, a0, 0, 'pa');
    const req = (signers: (typeof vals)[number][]) => {
      const block = certifiedBlock(g, 0, 13, 5, [sourceRecord(x)], signers);
      return encodeBeaconRequest({ type: 'report', report: { binding: bnd, header: block.header, certificate: block.certificate, items: block.state.proveXfers(ids) } });
    };
    // The binding is verified once, first.
    assert.ok(adm.admit(encodeBeaconRequest({ type: 'hello', binding: bnd }), 'pa', 0).ok);
    const before = adm.verifications;
    refused(adm.admit(req([a0]), 'pa', 0), 'XS_BAD_PROOF');
    refused(adm.admit(req([a0, a0]), 'pa', 0), 'XS_BAD_PROOF');
    refused(adm.admit(req([a0, b0, outsider]), 'pa', 0), 'XS_BAD_PROOF');
    assert.equal(adm.verifications, before);
  });

  it('says which refusals are the sender\'s fault: not membership or an epoch not frozen yet (an honest view at a boundary)', () => {
    const fault = (r: Admission) => {
      assert.ok(!r.ok);
      return r.fault;
    };
    assert.equal(fault(adm.admit(new Uint8Array([1, 2, 3]), 'p', 0)), true, 'undecodable');
    assert.equal(fault(adm.admit(hello(g, a0, 0, 'someone-else'), 'p', 0)), true, 'a binding of another peer');
    const forged = binding(g, a0, 0, 'p');
    forged.signature = forged.signature.slice();
    forged.signature[10]! ^= 1;
    assert.equal(fault(adm.admit(encodeBeaconRequest({ type: 'hello', binding: forged }), 'p', 0)), true, 'a bad binding signature');
    assert.equal(fault(adm.admit(hello(g, outsider, 0, 'p'), 'p', 0)), false, 'not a member (of these epochs)');
    assert.equal(fault(adm.admit(hello(g, a0, 1, 'p'), 'p', 0)), false, 'a member of another shard');
    const late = certifiedBlock(g, 0, 7, 40, [], [a0, b0]);
    assert.equal(fault(adm.admit(report(g, a0, 'pa', late, []), 'pa', 0)), false, 'an epoch not frozen yet');
  });

  it('refuses reports that are not proven', () => {
    const x = info(2);
    const ids = [toHex(x.id)];
    // Half of the stake is no quorum.
    refused(adm.admit(report(g, a0, 'pa', certifiedBlock(g, 0, 7, 5, [sourceRecord(x)], [a0]), ids), 'pa', 0), 'XS_BAD_PROOF');
    // Votes from another shard's committee.
    refused(adm.admit(report(g, a0, 'pa', certifiedBlock(g, 0, 7, 5, [sourceRecord(x)], [a0, a1]), ids), 'pa', 0), 'XS_BAD_PROOF');
    // A record that is not in the certified state.
    const good = certifiedBlock(g, 0, 8, 5, [sourceRecord(x)], [a0, b0]);
    const other = certifiedBlock(g, 0, 8, 5, [sourceRecord(x), sourceRecord(info(3))], [a0, b0]);
    const req = encodeBeaconRequest({
      type: 'report',
      report: { binding: binding(g, a0, 0, 'pa'), header: good.header, certificate: good.certificate, items: other.state.proveXfers([toHex(info(3).id)]) },
    });
    refused(adm.admit(req, 'pa', 0), 'XS_BAD_PROOF');
    // A destination record in a source shard's block.
    const y = info(4);
    refused(adm.admit(report(g, a0, 'pa', certifiedBlock(g, 0, 9, 5, [destRecord(y)], [a0, b0]), [toHex(y.id)]), 'pa', 0), 'XS_BAD_PROOF');
    // A member of shard 0 reporting a block of shard 1.
    const s1 = certifiedBlock(g, 1, 9, 5, [destRecord(y)], [a1, b1]);
    const cross = encodeBeaconRequest({
      type: 'report',
      report: { binding: binding(g, a0, 0, 'pa'), header: s1.header, certificate: s1.certificate, items: s1.state.proveXfers([toHex(y.id)]) },
    });
    refused(adm.admit(cross, 'pa', 0), 'XS_UNAUTHORIZED');
  });

  it('checks a certificate against its round\'s frozen epoch (EPOCH_UNKNOWN otherwise) and admits empty reports', () => {
    const x = info(9);
    // Round 40 is in epoch 1 (L = 32), not frozen in this registry.
    const late = certifiedBlock(g, 0, 7, 40, [sourceRecord(x)], [a0, b0]);
    refused(adm.admit(report(g, a0, 'pa', late, [toHex(x.id)]), 'pa', 0), 'EPOCH_UNKNOWN');
    const empty = certifiedBlock(g, 0, 8, 6, [], [a0, b0]);
    const r = adm.admit(report(g, a0, 'pa', empty, []), 'pa', 0);
    assert.ok(r.ok && r.type === 'report');
    assert.equal(r.records.length, 0);
    assert.equal(r.round, 6);
    assert.deepEqual([...r.signers].sort(), [addrOf(a0), addrOf(b0)].sort());
  });

  it('passes evidence from anyone on to the registry', () => {
    const body = { chainId: g.chainId, shard: 0, height: 1, round: 1, step: 'prevote' as const, blockHash: null, validator: new Uint8Array(20) };
    const r = adm.admit(encodeBeaconRequest({ type: 'evidence', evidence: { first: { body, signature: new Uint8Array(4) }, second: { body, signature: new Uint8Array(4) } } }), 'anyone', 0);
    assert.ok(r.ok && r.type === 'evidence');
  });
});
