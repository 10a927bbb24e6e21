import { fromHex, isAddressString, toHex, type KeystoreFile } from '@qnexus/crypto';
import {
  QnexusError,
  genesisHash,
  genesisToJson,
  makeGenesis,
  parseGenesis,
  type Genesis,
  type GenesisAccount,
  type GenesisValidator,
} from '@qnexus/types';
import { InvalidArgumentError } from 'commander';
import { parseU64, readText } from './util.js';

export const DEFAULT_VALIDATOR_STAKE = 1_000_000n;

/** `--validator <keystore.json>[:stake[:shard]]` as given on the command line. */
export interface ValidatorSpec {
  keystore: string;
  stake?: bigint;
  shard?: number;
}

/** commander parser for `--validator`. Numeric `:stake` and `:shard` suffixes are split off the right. */
export function parseValidatorSpec(value: string): ValidatorSpec {
  const parts = value.split(':');
  const nums: string[] = [];
  while (parts.length > 1 && nums.length < 2 && /^[0-9]+$/.test(parts[parts.length - 1]!)) nums.unshift(parts.pop()!);
  const keystore = parts.join(':');
  if (keystore.length === 0) throw new InvalidArgumentError('expected <keystore.json>[:stake[:shard]].');
  const spec: ValidatorSpec = { keystore };
  if (nums.length >= 1) spec.stake = parseU64(nums[0]!);
  if (nums.length === 2) {
    const shard = Number(nums[1]);
    if (!Number.isSafeInteger(shard) || shard > 63) throw new InvalidArgumentError('shard must be in [0, 63].');
    spec.shard = shard;
  }
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

/** The chain parameters of a Genesis, with validators given as (public parts of) keystores. */
export type GenesisParams = Omit<Genesis, 'validators'> & {
  /** Public parts of validator keystores with their stake and shard. */
  validators: { keystore: KeystoreFile; source: string; stake: bigint; shard: number }[];
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
    if (v.shard >= p.shardCount) bad(`validator ${v.source} is assigned shard ${v.shard} but --shard-count is ${p.shardCount}`);
    return { address: ks.address, publicKey: fromHex(ks.publicKey), stake: v.stake, shard: v.shard };
  });
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
    accounts: p.accounts,
    validators,
  });
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
