// The SDK's DeFi builders are the modules' own: each builds the kind the app dispatches to that
// module's message, and the same bytes the generic client side builds from strings.
import assert from 'node:assert/strict';
import { formatAddress } from '@qnexus/crypto';
import { app } from '@qnexus/app';
import { ammSwapMsg, dexPlaceMsg, faucetDripMsg, poolIdOf, tokenMintMsg } from '@qnexus/sdk';

const to = new Uint8Array(20).fill(7);
const pool = poolIdOf(0, 'qfc', 'token/00aa11bb22cc33dd', 30);

describe('sdk: DeFi builders', () => {
  it('build the kinds the app dispatches to each module, with the generic client side’s bytes', () => {
    const cases: { m: { kind: number; msg: Uint8Array }; module: string; name: string; args: Record<string, string> }[] = [
      { m: faucetDripMsg({ to }), module: 'faucet', name: 'faucet-drip', args: { to: formatAddress(to) } },
      { m: tokenMintMsg({ denom: 'token/00aa11bb22cc33dd', to, amount: 5n }), module: 'token', name: 'token-mint', args: { denom: 'token/00aa11bb22cc33dd', to: formatAddress(to), amount: '5' } },
      {
        m: ammSwapMsg({ pool, denomIn: 'qfc', amountIn: 10n, minOut: 1n, deadline: 99n }),
        module: 'amm',
        name: 'amm-swap',
        args: { pool: Buffer.from(pool).toString('hex'), denomIn: 'qfc', amountIn: '10', minOut: '1', deadline: '99' },
      },
    ];
    for (const c of cases) {
      assert.equal(c.m.kind, app.msgByName(c.module, c.name)!.kind, c.name);
      assert.deepEqual(app.buildMsg(c.module, c.name, c.args), c.m, c.name);
    }
    assert.equal(typeof dexPlaceMsg, 'function');
  });
});
