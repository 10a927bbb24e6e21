import { genesisModules } from '@qnexus/app';
import { addressFromPublicKey, formatAddress, fromHex, isAddressString, schemeLengths, toHex, type KeystoreFile, type SchemeName } from '@qnexus/crypto';
import { epochCommittees } from '@qnexus/state';
import {
  QnexusError,
  genesisHash,
  genesisToJson,
  makeGenesis,
  parseGenesis,
  type Genesis,
  type GenesisAccount,
  type GenesisStaking,
  type GenesisValidator,
} from '@qnexus/types';
import { InvalidArgumentError } from 'commander';
import { parseU64, readText } from './util.js';

export const DEFAULT_VALIDATOR_STAKE = 1_000_000n;

/** Default `--xfer-timeout-slots`: slots after the source block within which a cross-shard transfer must be decided. */
export const DEFAULT_XFER_TIMEOUT_SLOTS = 20;

/** `--validator <keystore.json>[:stake]` as given on the command line. */
export interface ValidatorSpec {
  keystore: string;
  stake?: bigint;
}

/**
 * commander parser for `--validator`. A numeric `:stake` suffix is split off the right. A
 * second numeric suffix (the former `:shard`) is refused: shard committees are assigned
 * from the genesis, not configured.
 */
export function parseValidatorSpec(value: string): ValidatorSpec {
  const parts = value.split(':');
  const nums: string[] = [];
  while (parts.length > 1 && nums.length < 2 && /^[0-9]+$/.test(parts[parts.length - 1]!)) nums.unshift(parts.pop()!);
  if (nums.length === 2) {
    throw new InvalidArgumentError(
      `expected <keystore.json>[:stake], got a shard too: validators no longer name a shard (the genesis assigns each validator's shard committee; \`qnexus genesis\` prints them).`,
    );
  }
  const keystore = parts.join(':');
  if (keystore.length === 0) throw new InvalidArgumentError('expected <keystore.json>[:stake].');
  const spec: ValidatorSpec = { keystore };
  if (nums.length === 1) spec.stake = parseU64(nums[0]!);
  return spec;
}

/** commander parser for `--account <address>:<balance>`. */
export function parseAccountSpec(value: string): GenesisAccount {
  const i = value.lastIndexOf(':');
  if (i < 0) throw new InvalidArgumentError('expected <address>:<balance>.');
  const address = value.slice(0, i);
  if (!isAddressString(address)) throw new InvalidArgumentError(`${JSON.stringify(address)} is not an address (qn followed by 40 lowercase hex characters).`);
  return { address, balance: parseU64(value.slice(i + 1)) };
}

/** base58btc libp2p peer id, as the genesis accepts it. */
const PEER_ID_RE = /^[1-9A-HJ-NP-Za-km-z]{46,60}$/;

/** commander parser for `--beacon-peer-id`. */
export function parsePeerId(value: string): string {
  if (!PEER_ID_RE.test(value)) throw new InvalidArgumentError('expected a base58 libp2p peer id such as 12D3KooW….');
  return value;
}

/** The beacon as given to buildGenesis: its ML-DSA public key (from a keystore or as hex) and libp2p peer id. */
export interface BeaconSpec {
  publicKey: Uint8Array;
  scheme?: SchemeName;
  peerId: string;
  /** Where the key came from, for error messages (keystore path or "--beacon-public-key"). */
  source: string;
}

/** The chain parameters of a Genesis, with validators given as (public parts of) keystores. */
export type GenesisParams = Omit<Genesis, 'validators' | 'beacon' | 'staking'> & {
  /** Staking parameters; unset ones take DEFAULT_STAKING. */
  staking?: Partial<GenesisStaking>;
  /** Public parts of validator keystores with their stake. */
  validators: { keystore: KeystoreFile; source: string; stake: bigint }[];
  beacon: BeaconSpec;
};

function bad(msg: string): never {
  throw new QnexusError('BAD_GENESIS', msg);
}

/** Build a canonical genesis (sorted lists). Throws QnexusError BAD_GENESIS with a message naming the culprit. */
export function buildGenesis(p: GenesisParams): Genesis {
  if (p.validators.length === 0) bad('at least one --validator is required');
  const seenV = new Map<string, string>();
  const validators: GenesisValidator[] = p.validators.map((v) => {
    const ks = v.keystore;
    if (ks.scheme !== p.scheme) bad(`validator keystore ${v.source} is ${ks.scheme} but the genesis scheme is ${p.scheme} (see --scheme)`);
    const prev = seenV.get(ks.address);
    if (prev !== undefined) bad(`validator ${ks.address} is listed twice (${prev} and ${v.source})`);
    seenV.set(ks.address, v.source);
    if (v.stake === 0n) bad(`validator ${v.source} has zero stake`);
    return { address: ks.address, publicKey: fromHex(ks.publicKey), stake: v.stake };
  });
  if (validators.length < p.shardCount) {
    bad(`${validators.length} validator${validators.length === 1 ? '' : 's'} cannot fill ${p.shardCount} shard committees: give at least one --validator per shard (--shard-count ${p.shardCount})`);
  }
  const b = p.beacon;
  if (b.scheme !== undefined && b.scheme !== p.scheme) bad(`beacon key ${b.source} is ${b.scheme} but the genesis scheme is ${p.scheme} (see --scheme)`);
  const pkLen = schemeLengths(p.scheme).publicKey;
  if (b.publicKey.length !== pkLen) bad(`beacon public key (${b.source}) has ${b.publicKey.length} bytes; a ${p.scheme} public key has ${pkLen}`);
  const beaconAddress = formatAddress(addressFromPublicKey(b.publicKey));
  const alsoValidator = seenV.get(beaconAddress);
  if (alsoValidator !== undefined) bad(`the beacon key (${b.source}) is also a validator key (${alsoValidator}, ${beaconAddress}): give the beacon a key of its own`);
  if (!PEER_ID_RE.test(b.peerId)) bad(`beacon peer id ${JSON.stringify(b.peerId)} is not a base58 libp2p peer id`);
  if (!Number.isSafeInteger(p.xferTimeoutSlots) || p.xferTimeoutSlots < 2) bad(`the cross-shard transfer timeout must be at least 2 slots, got ${p.xferTimeoutSlots}`);
  const seenA = new Set<string>();
  for (const a of p.accounts) {
    if (seenA.has(a.address)) bad(`account ${a.address} is listed twice`);
    seenA.add(a.address);
  }
  let supply = 0n;
  for (const a of p.accounts) supply += a.balance;
  if (supply > 0xffff_ffff_ffff_ffffn) bad(`the account balances add up to ${supply}, more than the u64 maximum`);
  return makeGenesis({
    chainId: p.chainId,
    scheme: p.scheme,
    genesisTime: p.genesisTime,
    slotMs: p.slotMs,
    epochLength: p.epochLength,
    shardCount: p.shardCount,
    minFee: p.minFee,
    maxBlockTxs: p.maxBlockTxs,
    xferTimeoutSlots: p.xferTimeoutSlots,
    beacon: { publicKey: b.publicKey, peerId: b.peerId },
    ...(p.staking ? { staking: p.staking } : {}),
    accounts: p.accounts,
    validators,
    // The modules this CLI's app runs: every process of the chain must run the same (checked at start).
    modules: genesisModules(),
  });
}

/**
 * The shard committee of every genesis validator (epoch 0; assignments are sticky), as
 * `epochCommittees` computes it: index = shard, validators sorted by address.
 */
export function genesisCommittees(g: Genesis): { shard: number; validators: { address: string; stake: bigint }[]; totalStake: bigint }[] {
  return epochCommittees(g, 0).map((c, shard) => ({ shard, validators: c.validators.map((v) => ({ address: v.address, stake: v.stake })), totalStake: c.totalStake }));
}

/** The shard a validator serves according to the genesis committees, or undefined if it is not a genesis validator. */
export function assignedShard(g: Genesis, address: string): number | undefined {
  const committees = epochCommittees(g, 0);
  for (let k = 0; k < committees.length; k++) if (committees[k]!.validators.some((v) => v.address === address)) return k;
  return undefined;
}

/** The canonical file text: 2-space JSON with a trailing newline. */
export function genesisFileText(g: Genesis): string {
  return `${JSON.stringify(genesisToJson(g), null, 2)}\n`;
}

export function genesisHashHex(g: Genesis): string {
  return toHex(genesisHash(g));
}

/** Read and validate a genesis file. Throws QnexusError BAD_GENESIS. */
export async function loadGenesisFile(path: string): Promise<Genesis> {
  const text = await readText(path, 'genesis file');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new QnexusError('BAD_GENESIS', `genesis file ${path} is not valid JSON: ${(e as Error).message}`);
  }
  try {
    return parseGenesis(json);
  } catch (e) {
    if (e instanceof QnexusError) throw new QnexusError(e.code, `${path}: ${e.message}`);
    throw e;
  }
}
