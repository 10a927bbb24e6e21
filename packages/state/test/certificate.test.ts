// checkCertificate (shard sync imports, the beacon's 2PC reports): every structural check runs before the first signature
// check, so a certificate that is wrong in shape costs no verification, however many votes it carries.
import assert from 'node:assert/strict';
import { formatAddress } from '@qnexus/crypto';
import { QnexusError, blockHash, type BlockHeader, type Certificate } from '@qnexus/types';
import { checkCertificate, checkCertificateShape, checkCertificateStructure, type CertificateLimits, type CertifyingMember } from '../src/index.js';

const header: BlockHeader = {
  chainId: 'unit',
  shard: 0,
  height: 7,
  slot: 10,
  parentHash: new Uint8Array(32).fill(1),
  stateRoot: new Uint8Array(32).fill(2),
  txRoot: new Uint8Array(32).fill(3),
  proposer: new Uint8Array(20).fill(4),
  txCount: 0,
};
const hash = blockHash(header);
/** Four members of stake 100 (addresses 0x11…, 0x12…, …); signatures are one byte naming their signer. */
const addrs = [0x11, 0x12, 0x13, 0x14].map((i) => new Uint8Array(20).fill(i));
const members = new Map<string, CertifyingMember>(addrs.map((a, i) => [formatAddress(a), { publicKey: new Uint8Array([i]), stake: 100n }]));
const outsider = new Uint8Array(20).fill(0x99);
const vote = (a: Uint8Array, sig = a[0]!) => ({ validator: a, signature: new Uint8Array([sig]) });
const good = (over: Partial<Certificate> = {}): Certificate => ({ height: 7, round: 12, blockHash: hash, votes: addrs.slice(0, 3).map((a) => vote(a)), ...over });

/** Runs checkCertificate with a verifier that counts its calls and accepts a signature naming its signer. */
function check(cert: Certificate, limits: CertificateLimits = {}): { calls: number; error: QnexusError | null } {
  let calls = 0;
  const verify = (pk: Uint8Array, _msg: Uint8Array, sig: Uint8Array) => {
    calls++;
    return sig[0] === addrs[pk[0]!]![0];
  };
  try {
    checkCertificate(cert, header, (a) => members.get(a), 400n, verify, hash, limits);
    return { calls, error: null };
  } catch (e) {
    assert.ok(e instanceof QnexusError && e.code === 'BAD_CERTIFICATE', String(e));
    return { calls, error: e };
  }
}

describe('state: checkCertificate', () => {
  it('accepts > 2/3 of the stake from distinct members, verifying each signature once', () => {
    assert.deepEqual(check(good()), { calls: 3, error: null });
    assert.deepEqual(check(good({ votes: addrs.map((a) => vote(a)) }), { committeeSize: 4, maxRound: 12 }), { calls: 4, error: null });
  });

  const shapes: [string, Certificate, CertificateLimits, RegExp][] = [
    ['another height', good({ height: 8 }), {}, /height 8/],
    ['another block', good({ blockHash: new Uint8Array(32) }), {}, /different block/],
    ['a round before the block slot', good({ round: 9 }), {}, /precedes/],
    ['a round beyond the current slot', good({ round: 13 }), { maxRound: 12 }, /beyond the current slot 12/],
    ['more votes than the committee has members', good({ votes: Array.from({ length: 1024 }, () => vote(addrs[0]!)) }), { committeeSize: 4 }, /1024 votes; the committee has 4/],
    ['1,024 copies of one vote (no committee size given)', good({ votes: Array.from({ length: 1024 }, () => vote(addrs[0]!)) }), {}, /duplicate/],
    ['a duplicate signer', good({ votes: [vote(addrs[0]!), vote(addrs[1]!), vote(addrs[0]!)] }), {}, /duplicate/],
    ['a non-member', good({ votes: [vote(addrs[0]!), vote(addrs[1]!), vote(outsider, 0x11)] }), {}, /non-member/],
    ['no quorum', good({ votes: addrs.slice(0, 2).map((a) => vote(a)) }), {}, /more than 2\/3/],
  ];
  for (const [what, cert, limits, re] of shapes) {
    it(`refuses ${what} before verifying any signature`, () => {
      const { calls, error } = check(cert, limits);
      assert.match(error?.message ?? 'accepted', re);
      assert.equal(calls, 0);
      assert.throws(() => checkCertificateStructure(cert, header, (a) => members.get(a), 400n, hash, limits), re);
    });
  }

  it('refuses a bad signature once the structure holds, stopping at it', () => {
    const { calls, error } = check(good({ votes: [vote(addrs[0]!), vote(addrs[1]!, 0), vote(addrs[2]!)] }));
    assert.match(error!.message, /bad signature from/);
    assert.equal(calls, 2);
  });

  it('shape needs no committee: duplicates, rounds and the block are checked, membership and quorum are not', () => {
    checkCertificateShape(good({ votes: [vote(outsider)] }), header, hash, { maxRound: 12 });
    assert.throws(() => checkCertificateShape(good({ votes: [vote(outsider), vote(outsider)] }), header), /duplicate/);
    assert.throws(() => checkCertificateShape(good(), header, hash, { maxRound: 11 }), /beyond the current slot/);
  });

  it('structure returns the signers with their members, in vote order', () => {
    const signers = checkCertificateStructure(good(), header, (a) => members.get(a), 400n);
    assert.deepEqual(signers.map((s) => [s.address, s.member.publicKey[0]]), addrs.slice(0, 3).map((a, i) => [formatAddress(a), i]));
  });
});
