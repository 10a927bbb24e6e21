// The faucet front's bounds: per client IP and for the node as a whole, both before any key is
// made or anything signed, and the request it signs is a feeless drip from a key of its own shard.
import assert from 'node:assert/strict';
import { addressFromPublicKey, formatAddress, generateKeyPair, homeShard, sha256, utf8 } from '@qnexus/crypto';
import { QnexusError, makeGenesis } from '@qnexus/types';
import { app } from '@qnexus/app';
import { FAUCET_IP_BURST, FAUCET_NODE_BURST, FaucetRequests } from '../src/faucet.js';
import type { Chain } from '../src/chain.js';

const key = (l: string) => generateKeyPair('ml-dsa-44', sha256(utf8(`faucet-front-${l}`)));
const genesis = makeGenesis({
  chainId: 'qn-faucet-front',
  scheme: 'ml-dsa-44',
  genesisTime: 0,
  slotMs: 1000,
  epochLength: 10,
  shardCount: 2,
  minFee: 1n,
  maxBlockTxs: 100,
  xferTimeoutSlots: 10,
  beacon: { publicKey: key('beacon').publicKey, peerId: '12D3KooWJWEKvSFbben74C7H4YtKjhPMTDxd7gP7zxWSUEeF27st' },
  accounts: [],
  validators: [0, 1].map((i) => ({ address: formatAddress(addressFromPublicKey(key(`v${i}`).publicKey)), publicKey: key(`v${i}`).publicKey, stake: 10n })),
});
// The front reads only the chain's genesis and shard.
const chain = { genesis, shard: 1 } as unknown as Chain;
const TO = formatAddress(addressFromPublicKey(key('to').publicKey));
const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof QnexusError, String(e));
    return e.code;
  }
  return 'ok';
};

describe('node: the faucet front (POST /v1/faucet/{address})', () => {
  it('signs a feeless drip request with a throwaway key of its own shard', () => {
    const env = new FaucetRequests(chain, app, () => false).build(TO, '10.0.0.1');
    assert.equal(env.tx.body.fee, 0n);
    assert.equal(env.tx.body.nonce, 0n);
    assert.equal(homeShard(env.from, 2), 1);
    assert.equal(app.kindName(env), 'faucet-drip');
  });

  it('refuses past its per-IP burst and past the node-wide burst (RATE_LIMITED), a bad address first (BAD_REQUEST)', () => {
    // A frozen clock: no bucket refills while the requests are signed, however slow the machine.
    const f = new FaucetRequests(chain, app, () => false, () => 1_000_000);
    assert.equal(code(() => f.build('qn12', '10.0.0.1')), 'BAD_REQUEST');
    for (let i = 0; i < FAUCET_IP_BURST; i++) assert.equal(code(() => f.build(TO, '10.0.0.1')), 'ok');
    assert.equal(code(() => f.build(TO, '10.0.0.1')), 'RATE_LIMITED');
    // Every other address within its own limit, until the node's burst is spent.
    const left = FAUCET_NODE_BURST - FAUCET_IP_BURST;
    for (let i = 0; i < left; i++) assert.equal(code(() => f.build(TO, `10.0.1.${i}`)), 'ok');
    assert.equal(code(() => f.build(TO, '10.0.2.1')), 'RATE_LIMITED');
  });
});
