import { bytesEqual, formatAddress, fromHex, getBackend, homeShard, isAddressString, isHex, parseAddress, toHex } from '@qnexus/crypto';
import {
  MAX_KEY_BYTES,
  MODULE_IDS,
  ProvenReader,
  StateView,
  bankAccountKeys,
  checkCertificate,
  checkEpochAnnouncement,
  genesisEpoch,
  moduleKey,
  queryProofKeys,
  runProven,
  stateParams,
  verifyStateProof,
  type EpochCommittees,
  type ProvenValue,
  type StateMachine,
} from '@qnexus/state';
import {
  QnexusError,
  decodeCertificate,
  decodeEpochAnnouncement,
  decodeHeader,
  epochOf,
  genesisHash,
  slotAt,
  type BlockHeader,
  type Certificate,
  type Genesis,
} from '@qnexus/types';
import { ApiError } from './errors.js';
import type { AccountInfo, StateProofInfo } from './types.js';

/**
 * A light client's checks of a proven answer (`?proof=true`): it trusts the genesis and what the
 * genesis beacon key signed, nothing a node says. In order:
 * 1. the committee of the certificate's round's epoch: the genesis assignment (epoch 0) or the
 *    beacon's signed announcement of that epoch, checked with the genesis beacon key
 *    (`checkEpochAnnouncement`; fetched from a node, which cannot forge it);
 * 2. the finality certificate over the header (`checkCertificate`: > 2/3 of that committee's
 *    stake, every signature valid);
 * 3. each entry against the header's state root (`verifyStateProof`), for exactly the keys the
 *    answer is derived from;
 * 4. the answer's fields equal what the proven values decode to (the same code the node reads
 *    them with), so a node lying in the JSON while proving honest values fails.
 * Failures: ApiError PROOF_INVALID naming the step; EPOCH_UNKNOWN when the committee of the
 * certificate's epoch cannot be obtained.
 */

type Verify = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean;

export interface ProofVerifyOptions {
  /**
   * The signed epoch announcement (its exact bytes) of an epoch after 0; the client's
   * `nodeCommittees(epoch)` answer carries it as `announcement.raw`. Needed only when the
   * certificate's round is past epoch 0; undefined (or a throw) makes the check fail with EPOCH_UNKNOWN.
   */
  announcement?: (epoch: number) => Promise<Uint8Array | undefined>;
  /** Signature check (default: the noble backend of the genesis scheme). */
  verify?: Verify;
  /** Refuse a proof of any other height (default: any finalized height). */
  height?: number;
  /** This client's clock (ms; default Date.now()): a certificate of a round no clock has reached is refused. */
  now?: number;
}

/** What a verified proof establishes: the certified block and the proven values, in the order of the keys asked. */
export interface VerifiedState {
  height: number;
  shard: number;
  header: BlockHeader;
  /** The epoch whose committee certified the block, and where that committee came from. */
  epoch: number;
  committeeSource: 'genesis' | 'beacon';
  entries: ProvenValue[];
}

/** Bounds on what a proof may carry before any hashing or decoding (every byte from a node is hostile). */
export const PROOF_LIMITS = {
  /** Hex characters of an encoded header (a few hundred bytes). */
  headerHex: 2 * 1024,
  /** Hex characters of an encoded certificate (a committee of ML-DSA-87 signatures stays far below). */
  certificateHex: 2 * 4 * 1024 * 1024,
  /** Hex characters of one trie node preimage (17 hashes, a skip of up to the longest key). */
  nodeHex: 2 * 4096,
  /** Hex characters of one proven value (an account's public key, a transfer record: a few KiB). */
  valueHex: 2 * 1024 * 1024,
  /** Slots a certificate's round may be ahead of this client's clock (clock skew), as nodes allow. */
  roundLeadSlots: 2,
} as const;

function invalid(step: string, message: string): never {
  throw new ApiError('PROOF_INVALID', `proof does not verify (${step}): ${message}`);
}

function hexField(v: unknown, max: number, what: string): Uint8Array {
  if (typeof v !== 'string' || v.length > max || !isHex(v)) invalid('shape', `${what} is not hex of at most ${max / 2} bytes`);
  return fromHex(v as string);
}

/** The committees of `epoch`: the genesis's, or the beacon's signed announcement checked with the genesis beacon key. */
async function committeesOf(g: Genesis, gHash: Uint8Array, epoch: number, opts: ProofVerifyOptions, verify: Verify): Promise<EpochCommittees> {
  if (epoch === 0) return genesisEpoch(g, gHash);
  let raw: Uint8Array | undefined;
  try {
    raw = await opts.announcement?.(epoch);
  } catch (e) {
    throw new ApiError('EPOCH_UNKNOWN', `the committee of epoch ${epoch} could not be obtained: ${(e as Error).message}`, 0, { cause: e });
  }
  if (!raw) throw new ApiError('EPOCH_UNKNOWN', `the committee of epoch ${epoch} could not be obtained (no signed announcement of it)`);
  let ec: EpochCommittees;
  try {
    ec = checkEpochAnnouncement(decodeEpochAnnouncement(raw), g, gHash, verify);
  } catch (e) {
    invalid('epoch announcement', `the announcement given for epoch ${epoch} does not verify with the genesis beacon key: ${(e as Error).message}`);
  }
  if (ec.epoch !== epoch) invalid('epoch announcement', `the announcement given for epoch ${epoch} is epoch ${ec.epoch}'s`);
  return ec;
}

/**
 * Verify a proof (`proof` of an answer) for exactly `keys` (full state keys, in order) on shard
 * `shard`: committee, certificate, then each entry against the certified state root. Returns the
 * proven values; throws ApiError PROOF_INVALID or EPOCH_UNKNOWN.
 */
export async function verifyStateAnswer(g: Genesis, proof: StateProofInfo | undefined, keys: readonly Uint8Array[], shard: number | undefined, opts: ProofVerifyOptions = {}): Promise<VerifiedState> {
  if (typeof proof !== 'object' || proof === null) invalid('shape', 'the answer carries no proof (ask with proof=true)');
  const p = proof as StateProofInfo;
  const verify = opts.verify ?? ((pk, m, s) => getBackend(g.scheme).verify(pk, m, s));
  // Shape and bounds first: nothing is hashed or decoded beyond what the keys asked can need.
  if (!Array.isArray(p.entries) || p.entries.length !== keys.length) invalid('shape', `${Array.isArray(p.entries) ? p.entries.length : 'no'} entries for ${keys.length} keys`);
  const entries = p.entries.map((e, i) => {
    const key = keys[i]!;
    // A key of n bytes is at most 2n nibbles deep in the trie: one node per nibble and the root.
    const maxNodes = 2 * key.length + 1;
    if (typeof e !== 'object' || e === null || !Array.isArray(e.nodes) || e.nodes.length > maxNodes) invalid('shape', `entry ${i} is malformed or carries more than ${maxNodes} nodes`);
    const k = hexField(e.key, 2 * MAX_KEY_BYTES, `entry ${i}'s key`);
    if (!bytesEqual(k, key)) invalid('keys', `entry ${i} proves key ${toHex(k)}, not ${toHex(key)} (another account or another key)`);
    const value = e.value === null ? null : hexField(e.value, PROOF_LIMITS.valueHex, `entry ${i}'s value`);
    return { key, value, nodes: e.nodes.map((n, j) => hexField(n, PROOF_LIMITS.nodeHex, `entry ${i}'s node ${j}`)) };
  });
  let header: BlockHeader;
  let cert: Certificate;
  try {
    header = decodeHeader(hexField(p.header, PROOF_LIMITS.headerHex, 'header'));
  } catch (e) {
    if (e instanceof ApiError) throw e;
    invalid('header', `not a block header: ${(e as Error).message}`);
  }
  try {
    cert = decodeCertificate(hexField(p.certificate, PROOF_LIMITS.certificateHex, 'certificate'));
  } catch (e) {
    if (e instanceof ApiError) throw e;
    invalid('certificate', `not a finality certificate: ${(e as Error).message}`);
  }
  if (header.chainId !== g.chainId) invalid('header', `the block is of chain ${JSON.stringify(header.chainId)}, not ${JSON.stringify(g.chainId)}`);
  if (shard !== undefined && header.shard !== shard) invalid('header', `the block is of shard ${header.shard}, not ${shard}`);
  if (header.shard >= g.shardCount) invalid('header', `the block is of shard ${header.shard}; the chain has ${g.shardCount}`);
  if (header.height !== p.height) invalid('header', `the block is at height ${header.height}, the proof says ${p.height}`);
  if (opts.height !== undefined && header.height !== opts.height) invalid('header', `the block is at height ${header.height}, not the ${opts.height} asked`);
  const gHash = genesisHash(g);
  const epoch = epochOf(g, cert.round);
  const ec = await committeesOf(g, gHash, epoch, opts, verify);
  const sh = ec.shards[header.shard];
  if (!sh) invalid('certificate', `epoch ${epoch} has no committee for shard ${header.shard}`);
  try {
    const maxRound = slotAt(g, opts.now ?? Date.now()) + PROOF_LIMITS.roundLeadSlots;
    checkCertificate(cert, header, (a) => sh.members.get(a), sh.committee.totalStake, verify, undefined, { committeeSize: sh.members.size, maxRound });
  } catch (e) {
    if (e instanceof QnexusError) invalid('certificate', `${e.message} (committee of epoch ${epoch})`);
    throw e;
  }
  entries.forEach((e, i) => {
    if (!verifyStateProof(header.stateRoot, e)) invalid('state proof', `entry ${i} (key ${toHex(e.key)}) does not verify against the state root of block ${header.height}`);
  });
  return { height: header.height, shard: header.shard, header, epoch, committeeSource: epoch === 0 ? 'genesis' : 'beacon', entries: entries.map(({ key, value }) => ({ key, value })) };
}

/** Canonical JSON (object keys sorted), to compare an answer with what the proven values give. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x,
  );
}

/** A verified account: the fields the state holds, as proven, and the height they are proven at. */
export interface VerifiedAccount extends VerifiedState {
  address: string;
  balance: string;
  nonce: string;
  publicKey: string | null;
}

/**
 * Verify `GET /v1/accounts/{address}?proof=true`: the proof (see {@link verifyStateAnswer}) for the
 * account's bank keys on its home shard, then balance, nonce and public key must be what the proven
 * values decode to (`pendingNonce` is the node's mempool view: not proven).
 */
export async function verifyAccountProof(g: Genesis, answer: AccountInfo, opts: ProofVerifyOptions = {}): Promise<VerifiedAccount> {
  if (!isAddressString(answer.address)) invalid('shape', `address ${JSON.stringify(answer.address)} is malformed`);
  const addr = parseAddress(answer.address);
  const keys = bankAccountKeys(addr).map((k) => moduleKey(MODULE_IDS.bank, k));
  const v = await verifyStateAnswer(g, answer.proof, keys, homeShard(addr, g.shardCount), opts);
  const a = new StateView(new ProvenReader(v.entries)).account(toHex(addr));
  const proven = { balance: (a?.balance ?? 0n).toString(), nonce: (a?.nonce ?? 0n).toString(), publicKey: a?.publicKey ? toHex(a.publicKey) : null };
  for (const f of ['balance', 'nonce', 'publicKey'] as const) {
    if (answer[f] !== proven[f]) invalid('answer', `${f} ${JSON.stringify(answer[f])} is not the proven ${JSON.stringify(proven[f])}`);
  }
  return { ...v, address: formatAddress(addr), ...proven };
}

/** A verified module query: its answer (without `proof`), equal to what the proven values give. */
export interface VerifiedQuery extends VerifiedState {
  answer: Record<string, unknown>;
}

/**
 * Verify a module query's proven answer (`GET /v1/<module>/<name>/…?proof=true`) with the app's
 * own query definition (`sm`, the client's copy of the modules): the proof for exactly the keys the
 * query names for these parameters, on `shard`, then the answer must equal the query run over
 * the proven values. A query without `proofKeys` cannot be verified (BAD_REQUEST).
 */
export async function verifyQueryProof(
  g: Genesis,
  sm: StateMachine,
  /** `shard`: the shard the answer must be of (default: the one its certified block is of). */
  q: { module: string; name: string; params: readonly string[]; shard?: number },
  answer: Record<string, unknown>,
  opts: ProofVerifyOptions = {},
): Promise<VerifiedQuery> {
  const m = sm.module(q.module);
  const def = m?.queries?.find((x) => x.name === q.name);
  if (!m || !def) throw new ApiError('QUERY_UNKNOWN', `no query ${q.module}/${q.name} in this app`);
  if (q.params.length !== def.params.length) throw new ApiError('BAD_REQUEST', `query ${q.module}/${q.name} takes ${def.params.length} parameters`);
  const args = Object.fromEntries(def.params.map((name, i) => [name, q.params[i]!]));
  let keys: Uint8Array[];
  try {
    keys = queryProofKeys(m, def, args);
  } catch (e) {
    if (e instanceof QnexusError) throw new ApiError(e.code, e.message);
    throw e;
  }
  const { proof, ...rest } = answer;
  const v = await verifyStateAnswer(g, proof as StateProofInfo | undefined, keys, q.shard, opts);
  let expected: unknown;
  try {
    expected = JSON.parse(JSON.stringify(runProven(m, def, stateParams(g, v.shard), args, v.entries)));
  } catch (e) {
    invalid('answer', `the query over the proven values fails: ${(e as Error).message}`);
  }
  if (canonical(rest) !== canonical(expected)) invalid('answer', `the answer ${canonical(rest)} is not what the proven values give, ${canonical(expected)}`);
  return { ...v, answer: rest };
}
