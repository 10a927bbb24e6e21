import {
  addressFromPublicKey,
  formatAddress,
  fromHex,
  homeShard,
  isAddressString,
  isHex,
  isSchemeName,
  isValidChainId,
  parseAddress,
  schemeLengths,
  sha256,
  type SchemeName,
} from '@qnexus/crypto';
import { QnexusError } from './errors.js';
import { Writer } from './codec.js';

export interface GenesisAccount {
  address: string;
  balance: bigint;
}

/**
 * A validator of the genesis registry. Which shard committee it serves is not
 * fixed here: the beacon assigns it per epoch from the epoch seed (see
 * `assignCommittees` in @qnexus/consensus).
 */
export interface GenesisValidator {
  address: string;
  publicKey: Uint8Array;
  stake: bigint;
}

/** The beacon: coordinator of cross-shard transfers and announcer of epochs. */
export interface GenesisBeacon {
  /** ML-DSA key that signs epoch announcements, prepare requests and decisions. */
  publicKey: Uint8Array;
  /** Its libp2p peer id: shard validators send 2PC messages to this peer only. */
  peerId: string;
}

/**
 * Chain parameters and initial state. The JSON file is canonical (sorted
 * lists, amounts as decimal strings) and its identity is `genesisHash`, the
 * SHA-256 of the binary encoding below, which every node logs and the API reports.
 */
export interface Genesis {
  chainId: string;
  scheme: SchemeName;
  /** Unix ms at which slot 0 starts. */
  genesisTime: number;
  slotMs: number;
  epochLength: number;
  shardCount: number;
  /** Smallest fee a transaction may pay. Fees are burned (see docs/ARCHITECTURE.md). */
  minFee: bigint;
  /** Most transactions a proposer puts into one block. */
  maxBlockTxs: number;
  /** Slots after the source block within which a cross-shard transfer must be decided; past it the beacon aborts. */
  xferTimeoutSlots: number;
  beacon: GenesisBeacon;
  accounts: GenesisAccount[];
  validators: GenesisValidator[];
}

export interface GenesisJson {
  chainId: string;
  scheme: string;
  genesisTime: number;
  slotMs: number;
  epochLength: number;
  shardCount: number;
  minFee: string;
  maxBlockTxs: number;
  xferTimeoutSlots: number;
  beacon: { publicKey: string; peerId: string };
  accounts: { address: string; balance: string }[];
  validators: { address: string; publicKey: string; stake: string }[];
}

const GENESIS_KEYS = ['chainId', 'scheme', 'genesisTime', 'slotMs', 'epochLength', 'shardCount', 'minFee', 'maxBlockTxs', 'xferTimeoutSlots', 'beacon', 'accounts', 'validators'];
/** base58btc libp2p peer ids (Ed25519 "12D3Koo…", RSA/secp "Qm…"/"16U…"). */
const PEER_ID_RE = /^[1-9A-HJ-NP-Za-km-z]{46,60}$/;

function fail(msg: string): never {
  throw new QnexusError('BAD_GENESIS', `invalid genesis: ${msg}`);
}

function amount(v: unknown, what: string): bigint {
  if (typeof v !== 'string' || !/^(0|[1-9][0-9]{0,19})$/.test(v)) fail(`${what} must be a decimal string`);
  const b = BigInt(v as string);
  if (b > 0xffffffffffffffffn) fail(`${what} exceeds u64`);
  return b;
}

function int(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) fail(`${what} must be an integer in [${min}, ${max}]`);
  return v as number;
}

function onlyKeys(o: Record<string, unknown>, keys: string[], what: string): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) fail(`unknown field ${what}.${k}`);
}

export function parseGenesis(json: unknown): Genesis {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('not a JSON object');
  const g = json as Record<string, unknown>;
  onlyKeys(g, GENESIS_KEYS, 'genesis');
  if (typeof g.chainId !== 'string' || !isValidChainId(g.chainId)) fail('chainId must match [a-z0-9][a-z0-9-]{0,63}');
  if (typeof g.scheme !== 'string' || !isSchemeName(g.scheme)) fail('scheme must be ml-dsa-44, ml-dsa-65 or ml-dsa-87');
  const scheme = g.scheme as SchemeName;
  const shardCount = int(g.shardCount, 'shardCount', 1, 64);
  if (!Array.isArray(g.accounts)) fail('accounts must be an array');
  if (!Array.isArray(g.validators) || g.validators.length === 0) fail('validators must be a non-empty array');
  const pkLen = schemeLengths(scheme).publicKey;
  const accounts: GenesisAccount[] = (g.accounts as unknown[]).map((a, i) => {
    if (typeof a !== 'object' || a === null) fail(`accounts[${i}] must be an object`);
    const o = a as Record<string, unknown>;
    onlyKeys(o, ['address', 'balance'], `accounts[${i}]`);
    if (typeof o.address !== 'string' || !isAddressString(o.address)) fail(`accounts[${i}].address is not a qn… address`);
    return { address: o.address as string, balance: amount(o.balance, `accounts[${i}].balance`) };
  });
  const validators: GenesisValidator[] = (g.validators as unknown[]).map((v, i) => {
    if (typeof v !== 'object' || v === null) fail(`validators[${i}] must be an object`);
    const o = v as Record<string, unknown>;
    onlyKeys(o, ['address', 'publicKey', 'stake'], `validators[${i}]`);
    if (typeof o.publicKey !== 'string' || !isHex(o.publicKey, pkLen) || o.publicKey !== o.publicKey.toLowerCase()) {
      fail(`validators[${i}].publicKey must be ${pkLen} bytes of lowercase hex for ${scheme}`);
    }
    const publicKey = fromHex(o.publicKey as string);
    const address = formatAddress(addressFromPublicKey(publicKey));
    if (o.address !== address) fail(`validators[${i}].address does not match its public key (expected ${address})`);
    const stake = amount(o.stake, `validators[${i}].stake`);
    if (stake === 0n) fail(`validators[${i}].stake must be positive`);
    return { address, publicKey, stake };
  });
  if (typeof g.beacon !== 'object' || g.beacon === null || Array.isArray(g.beacon)) fail('beacon must be an object { publicKey, peerId }');
  const b = g.beacon as Record<string, unknown>;
  onlyKeys(b, ['publicKey', 'peerId'], 'beacon');
  if (typeof b.publicKey !== 'string' || !isHex(b.publicKey, pkLen) || b.publicKey !== b.publicKey.toLowerCase()) fail(`beacon.publicKey must be ${pkLen} bytes of lowercase hex for ${scheme}`);
  if (typeof b.peerId !== 'string' || !PEER_ID_RE.test(b.peerId)) fail('beacon.peerId must be a base58 libp2p peer id');
  if (validators.length < shardCount) fail(`${validators.length} validators cannot fill ${shardCount} shard committees`);
  const sortedUnique = (xs: string[], what: string) => {
    for (let i = 1; i < xs.length; i++) if (xs[i - 1]! >= xs[i]!) fail(`${what} must be sorted by address without duplicates`);
  };
  sortedUnique(accounts.map((a) => a.address), 'accounts');
  sortedUnique(validators.map((v) => v.address), 'validators');
  let supply = 0n;
  for (const a of accounts) supply += a.balance;
  if (supply > 0xffffffffffffffffn) fail('total supply exceeds u64');
  return {
    chainId: g.chainId as string,
    scheme,
    genesisTime: int(g.genesisTime, 'genesisTime', 0, 8.64e15),
    slotMs: int(g.slotMs, 'slotMs', 50, 600_000),
    epochLength: int(g.epochLength, 'epochLength', 1, 1_000_000),
    shardCount,
    minFee: amount(g.minFee, 'minFee'),
    maxBlockTxs: int(g.maxBlockTxs, 'maxBlockTxs', 1, 10_000),
    xferTimeoutSlots: int(g.xferTimeoutSlots, 'xferTimeoutSlots', 2, 1_000_000),
    beacon: { publicKey: fromHex(b.publicKey as string), peerId: b.peerId as string },
    accounts,
    validators,
  };
}

export function genesisToJson(g: Genesis): GenesisJson {
  return {
    chainId: g.chainId,
    scheme: g.scheme,
    genesisTime: g.genesisTime,
    slotMs: g.slotMs,
    epochLength: g.epochLength,
    shardCount: g.shardCount,
    minFee: g.minFee.toString(),
    maxBlockTxs: g.maxBlockTxs,
    xferTimeoutSlots: g.xferTimeoutSlots,
    beacon: { publicKey: Buffer.from(g.beacon.publicKey).toString('hex'), peerId: g.beacon.peerId },
    accounts: g.accounts.map((a) => ({ address: a.address, balance: a.balance.toString() })),
    validators: g.validators.map((v) => ({ address: v.address, publicKey: Buffer.from(v.publicKey).toString('hex'), stake: v.stake.toString() })),
  };
}

/** Build a genesis with canonical ordering from unsorted inputs (used by `qnexus genesis` and the devnet). */
export function makeGenesis(input: Omit<Genesis, 'accounts' | 'validators'> & { accounts: GenesisAccount[]; validators: GenesisValidator[] }): Genesis {
  const accounts = [...input.accounts].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  const validators = [...input.validators].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  // Round-trip through the validator so a bad input fails here, not at node start.
  return parseGenesis(genesisToJson({ ...input, accounts, validators }));
}

export function encodeGenesis(g: Genesis): Uint8Array {
  const w = new Writer(4096)
    .u8(1)
    .string(g.chainId)
    .string(g.scheme)
    .u64(g.genesisTime)
    .u64(g.slotMs)
    .u64(g.epochLength)
    .u32(g.shardCount)
    .u64(g.minFee)
    .u32(g.maxBlockTxs)
    .u64(g.xferTimeoutSlots)
    .bytes(g.beacon.publicKey)
    .string(g.beacon.peerId)
    .u32(g.accounts.length);
  for (const a of g.accounts) w.fixed(parseAddress(a.address), 20).u64(a.balance);
  w.u32(g.validators.length);
  for (const v of g.validators) w.bytes(v.publicKey).u64(v.stake);
  return w.finish();
}

export function genesisHash(g: Genesis): Uint8Array {
  return sha256(encodeGenesis(g));
}

/** Total genesis balance, of one shard's home accounts when `shard` is given. */
export function genesisSupply(g: Genesis, shard?: number): bigint {
  let s = 0n;
  for (const a of g.accounts) if (shard === undefined || homeShard(parseAddress(a.address), g.shardCount) === shard) s += a.balance;
  return s;
}

export function slotAt(g: Pick<Genesis, 'genesisTime' | 'slotMs'>, nowMs: number): number {
  return nowMs < g.genesisTime ? -1 : Math.floor((nowMs - g.genesisTime) / g.slotMs);
}

export function epochOf(g: Pick<Genesis, 'epochLength'>, slot: number): number {
  return Math.floor(slot / g.epochLength);
}
