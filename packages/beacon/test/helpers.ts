// Shared fixtures for the @qnexus/beacon tests.
import { addressFromPublicKey, formatAddress, generateKeyPair, sha256, toHex, utf8, type KeyPair, type UnlockedKey } from '@qnexus/crypto';
import { makeGenesis, type Genesis, type GenesisStaking, type XferInfo, type XferRecord } from '@qnexus/types';
import type { CoordinatorAction, SystemTxSigner } from '../src/coordinator.js';

/** (module, op) of each cross-shard operation the beacon sees, by the name the API shows. */
export const OP = {
  transfer: { module: 1, op: 1 },
  stake: { module: 3, op: 1 },
  unstake: { module: 3, op: 2 },
  fees: { module: 3, op: 3 },
  release: { module: 3, op: 4 },
} as const;

export function info(n: number, over: Partial<XferInfo> = {}): XferInfo {
  return {
    ...OP.transfer,
    denom: 'qfc',
    id: sha256(utf8(`xfer-${n}`)),
    srcShard: 0,
    dstShard: 1,
    from: sha256(utf8(`from-${n}`)).subarray(0, 20),
    to: sha256(utf8(`to-${n}`)).subarray(0, 20),
    amount: 1000n + BigInt(n),
    deadlineSlot: 100,
    payload: new Uint8Array(0),
    ...over,
  };
}

export function sourceRecord(x: XferInfo, over: Partial<XferRecord> = {}): XferRecord {
  return { role: 'source', info: x, prepare: 'accepted', reason: '', decision: 'none', preparedHeight: 10, decidedHeight: 0, ...over };
}

export function destRecord(x: XferInfo, over: Partial<XferRecord> = {}): XferRecord {
  return { role: 'destination', info: x, prepare: 'accepted', reason: '', decision: 'none', preparedHeight: 20, decidedHeight: 0, ...over };
}

/** Deterministic stand-in for the beacon key: "P:<id>" / "C:<id>" / "A:<id>", counting calls. */
export class FakeSigner implements SystemTxSigner {
  calls = 0;
  prepare(x: XferInfo): Uint8Array {
    this.calls++;
    return utf8(`P:${toHex(x.id)}`);
  }
  decision(x: XferInfo, commit: boolean): Uint8Array {
    this.calls++;
    return utf8(`${commit ? 'C' : 'A'}:${toHex(x.id)}`);
  }
}

export const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Sends as "shard:P|C|A" strings, in order. */
export function sends(actions: CoordinatorAction[]): string[] {
  return actions.flatMap((a) => (a.type === 'send' ? [`${a.shard}:${text(a.raw)[0]}`] : []));
}

export function kinds(actions: CoordinatorAction[]): string[] {
  return actions.map((a) => a.type);
}

// ---------------------------------------------------------------- genesis fixtures

/** Deterministic ML-DSA-44 key number n. */
export function key(n: number): KeyPair {
  return generateKeyPair('ml-dsa-44', sha256(utf8(`beacon-test-key-${n}`)));
}

export function unlocked(k: KeyPair): UnlockedKey {
  return { ...k, address: addressFromPublicKey(k.publicKey), seed: new Uint8Array(32) };
}

export const addrOf = (k: KeyPair): string => formatAddress(addressFromPublicKey(k.publicKey));

/** A syntactically valid peer id for genesis files of tests that never start p2p. */
export const SOME_PEER_ID = '12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf';

export function testGenesis(opts: {
  validators: KeyPair[];
  beacon: KeyPair;
  beaconPeerId?: string;
  shardCount?: number;
  chainId?: string;
  genesisTime?: number;
  slotMs?: number;
  epochLength?: number;
  staking?: Partial<GenesisStaking>;
}): Genesis {
  return makeGenesis({
    chainId: opts.chainId ?? 'beacon-test',
    scheme: 'ml-dsa-44',
    genesisTime: opts.genesisTime ?? 0,
    slotMs: opts.slotMs ?? 1000,
    epochLength: opts.epochLength ?? 32,
    shardCount: opts.shardCount ?? 2,
    minFee: 1n,
    maxBlockTxs: 100,
    xferTimeoutSlots: 20,
    beacon: { publicKey: opts.beacon.publicKey, peerId: opts.beaconPeerId ?? SOME_PEER_ID },
    accounts: [],
    validators: opts.validators.map((k) => ({ address: addrOf(k), publicKey: k.publicKey, stake: 100n })),
    ...(opts.staking ? { staking: opts.staking } : {}),
  });
}
