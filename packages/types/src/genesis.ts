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
 * Staking economics (docs/ARCHITECTURE.md, "Staking"). Optional in the JSON
 * file (these defaults apply), always written out by `genesisToJson`.
 */
export interface GenesisStaking {
  /** Smallest amount a stake transaction may bond. */
  minStake: bigint;
  /** Epochs between leaving the committees and the funds returning home; slashable until then. */
  unbondingEpochs: number;
  /** Most validators that may join or leave the committees per epoch (the rest wait in a queue). */
  churnLimit: number;
  /** Fraction of a validator's stake taken by proven equivocation, in basis points (1/10,000). */
  slashBps: number;
  /** Fraction of each transaction fee that is burned, in basis points; the rest goes to the block's proposer. */
  feeBurnBps: number;
  /** New QFC minted per epoch for validators (by stake × participation), before halvings. */
  rewardPerEpoch: bigint;
  /** The per-epoch reward halves every this many epochs (0: never). */
  halvingEpochs: number;
}

/**
 * Retention window of settled cross-shard records, in slots (shards prune their records and the
 * beacon compacts its log by it; the state machine's `xferRetentionSlots` overrides it in tests).
 * A settled record stays this long after its decision, so every report and re-send of it is long
 * over: the beacon re-sends a decision every few slots (3) until a report proves it applied, and
 * each validator of the committee reports the applying block at once (and again whenever the
 * beacon re-sends an applied phase); 4096 slots (≈ 68 min at 1 s slots) leave room for a beacon
 * or shard outage of about an hour. The same window bounds replays: nothing is acted upon for a
 * transfer with no record once its deadline is more than a window behind (XS_EXPIRED), which is
 * also how long past its deadline a destination may take to hear of a prepare it never received.
 */
export const XFER_RETENTION_SLOTS = 4096;

export const DEFAULT_STAKING: GenesisStaking = {
  minStake: 1000n,
  unbondingEpochs: 2,
  churnLimit: 4,
  slashBps: 1000,
  feeBurnBps: 5000,
  rewardPerEpoch: 1000n,
  halvingEpochs: 100,
};

/** Reward minted for `epoch`: rewardPerEpoch halved every halvingEpochs epochs. */
export function epochIssuance(s: Pick<GenesisStaking, 'rewardPerEpoch' | 'halvingEpochs'>, epoch: number): bigint {
  if (s.halvingEpochs === 0) return s.rewardPerEpoch;
  const halvings = Math.floor(epoch / s.halvingEpochs);
  return halvings >= 64 ? 0n : s.rewardPerEpoch >> BigInt(halvings);
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
  staking: GenesisStaking;
  accounts: GenesisAccount[];
  /** Bonded from the start, active in epoch 0; each one's home (funding) account is its own address. */
  validators: GenesisValidator[];
  /**
   * The application modules (beyond the host's built-ins bank and xfer) every
   * process of this chain must run, by name and id: a node or beacon whose app
   * differs refuses to start, since its state roots would differ. Absent in
   * files written before modules existed: not checked.
   */
  modules?: GenesisModule[];
}

export interface GenesisModule {
  name: string;
  id: number;
  /** The module's genesis section (its `GenesisDef.parse` reads it); absent = the module's default. Canonical JSON in the hash. */
  genesis?: unknown;
}

/** Largest module genesis section, as canonical JSON. */
export const MAX_MODULE_GENESIS_BYTES = 1 << 20;

/** JSON with object keys sorted at every level: one text per value, so it can be hashed. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  const t = JSON.stringify(v);
  if (t === undefined) throw new QnexusError('BAD_GENESIS', `a module genesis section holds a value JSON cannot carry (${typeof v})`);
  return t;
}

export interface GenesisStakingJson {
  minStake: string;
  unbondingEpochs: number;
  churnLimit: number;
  slashBps: number;
  feeBurnBps: number;
  rewardPerEpoch: string;
  halvingEpochs: number;
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
  staking?: GenesisStakingJson;
  accounts: { address: string; balance: string }[];
  validators: { address: string; publicKey: string; stake: string }[];
  modules?: { name: string; id: number; genesis?: unknown }[];
}

const GENESIS_KEYS = ['chainId', 'scheme', 'genesisTime', 'slotMs', 'epochLength', 'shardCount', 'minFee', 'maxBlockTxs', 'xferTimeoutSlots', 'beacon', 'staking', 'accounts', 'validators', 'modules'];
const STAKING_KEYS = ['minStake', 'unbondingEpochs', 'churnLimit', 'slashBps', 'feeBurnBps', 'rewardPerEpoch', 'halvingEpochs'];
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
  let staking: GenesisStaking = { ...DEFAULT_STAKING };
  if (g.staking !== undefined) {
    if (typeof g.staking !== 'object' || g.staking === null || Array.isArray(g.staking)) fail('staking must be an object');
    const st = g.staking as Record<string, unknown>;
    onlyKeys(st, STAKING_KEYS, 'staking');
    const d = DEFAULT_STAKING;
    staking = {
      minStake: st.minStake === undefined ? d.minStake : amount(st.minStake, 'staking.minStake'),
      unbondingEpochs: st.unbondingEpochs === undefined ? d.unbondingEpochs : int(st.unbondingEpochs, 'staking.unbondingEpochs', 0, 1_000_000),
      churnLimit: st.churnLimit === undefined ? d.churnLimit : int(st.churnLimit, 'staking.churnLimit', 1, 1024),
      slashBps: st.slashBps === undefined ? d.slashBps : int(st.slashBps, 'staking.slashBps', 0, 10_000),
      feeBurnBps: st.feeBurnBps === undefined ? d.feeBurnBps : int(st.feeBurnBps, 'staking.feeBurnBps', 0, 10_000),
      rewardPerEpoch: st.rewardPerEpoch === undefined ? d.rewardPerEpoch : amount(st.rewardPerEpoch, 'staking.rewardPerEpoch'),
      halvingEpochs: st.halvingEpochs === undefined ? d.halvingEpochs : int(st.halvingEpochs, 'staking.halvingEpochs', 0, 1_000_000),
    };
    if (staking.minStake === 0n) fail('staking.minStake must be positive');
  }
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
    staking,
    accounts,
    validators,
    ...(g.modules === undefined ? {} : { modules: parseModules(g.modules) }),
  };
}

function parseModules(v: unknown): GenesisModule[] {
  if (!Array.isArray(v) || v.length > 255) throw new QnexusError('BAD_GENESIS', 'modules must be a list of at most 255 { name, id }');
  const out = v.map((m, i) => {
    if (typeof m !== 'object' || m === null) throw new QnexusError('BAD_GENESIS', `modules[${i}] must be { name, id }`);
    const { name, id, genesis } = m as { name?: unknown; id?: unknown; genesis?: unknown };
    if (typeof name !== 'string' || !/^[a-z][a-z0-9]{1,31}$/.test(name)) throw new QnexusError('BAD_GENESIS', `modules[${i}].name ${JSON.stringify(name)} is invalid`);
    if (!Number.isInteger(id) || (id as number) < 3 || (id as number) > 255) throw new QnexusError('BAD_GENESIS', `modules[${i}].id must be an integer in 3..255 (1 and 2 are the host's)`);
    if (Object.keys(m).some((k) => k !== 'name' && k !== 'id' && k !== 'genesis')) throw new QnexusError('BAD_GENESIS', `modules[${i}] has unknown fields`);
    if (genesis === undefined) return { name, id: id as number };
    if (canonicalJson(genesis).length > MAX_MODULE_GENESIS_BYTES) throw new QnexusError('BAD_GENESIS', `modules[${i}].genesis is over ${MAX_MODULE_GENESIS_BYTES} bytes`);
    return { name, id: id as number, genesis };
  });
  for (let i = 1; i < out.length; i++) if (out[i - 1]!.id >= out[i]!.id) throw new QnexusError('BAD_GENESIS', 'modules must be sorted by id without duplicates');
  if (new Set(out.map((m) => m.name)).size !== out.length) throw new QnexusError('BAD_GENESIS', 'module names must be unique');
  return out;
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
    staking: {
      minStake: g.staking.minStake.toString(),
      unbondingEpochs: g.staking.unbondingEpochs,
      churnLimit: g.staking.churnLimit,
      slashBps: g.staking.slashBps,
      feeBurnBps: g.staking.feeBurnBps,
      rewardPerEpoch: g.staking.rewardPerEpoch.toString(),
      halvingEpochs: g.staking.halvingEpochs,
    },
    accounts: g.accounts.map((a) => ({ address: a.address, balance: a.balance.toString() })),
    validators: g.validators.map((v) => ({ address: v.address, publicKey: Buffer.from(v.publicKey).toString('hex'), stake: v.stake.toString() })),
    ...(g.modules ? { modules: g.modules.map((m) => ({ name: m.name, id: m.id, ...(m.genesis === undefined ? {} : { genesis: m.genesis }) })) } : {}),
  };
}

/** Build a genesis with canonical ordering from unsorted inputs (used by `qnexus genesis` and the devnet). */
export function makeGenesis(
  input: Omit<Genesis, 'accounts' | 'validators' | 'staking'> & { accounts: GenesisAccount[]; validators: GenesisValidator[]; staking?: Partial<GenesisStaking> },
): Genesis {
  // Unset (or explicitly undefined) fields take the defaults.
  const given = Object.fromEntries(Object.entries(input.staking ?? {}).filter(([, v]) => v !== undefined));
  const staking: GenesisStaking = { ...DEFAULT_STAKING, ...given };
  const accounts = [...input.accounts].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  const validators = [...input.validators].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  // Round-trip through the validator so a bad input fails here, not at node start.
  return parseGenesis(genesisToJson({ ...input, staking, accounts, validators }));
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
    .u64(g.staking.minStake)
    .u32(g.staking.unbondingEpochs)
    .u32(g.staking.churnLimit)
    .u32(g.staking.slashBps)
    .u32(g.staking.feeBurnBps)
    .u64(g.staking.rewardPerEpoch)
    .u32(g.staking.halvingEpochs)
    .u32(g.accounts.length);
  for (const a of g.accounts) w.fixed(parseAddress(a.address), 20).u64(a.balance);
  w.u32(g.validators.length);
  for (const v of g.validators) w.bytes(v.publicKey).u64(v.stake);
  // Absent (unchecked) and an empty list are different chains.
  if (g.modules) {
    w.u8(1).u32(g.modules.length);
    for (const m of g.modules) w.string(m.name).u8(m.id).bytes(new TextEncoder().encode(m.genesis === undefined ? '' : canonicalJson(m.genesis)));
  } else w.u8(0);
  return w.finish();
}

export function genesisHash(g: Genesis): Uint8Array {
  return sha256(encodeGenesis(g));
}

/** Stake bonded at genesis (the genesis validators'). */
export function genesisStake(g: Genesis): bigint {
  let s = 0n;
  for (const v of g.validators) s += v.stake;
  return s;
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
