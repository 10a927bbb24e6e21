import { strict as assert } from 'node:assert';
import type { ValidatorInfo } from '@qnexus/sdk';
import { formatValidator } from '../src/commands/tx.js';

// A shard node that has no beacon snapshot yet answers from the committees: every registry-only
// field is null. The CLI prints those as '-' instead of failing on them.
describe('cli: validator output with and without the registry', () => {
  const base = {
    address: 'qn' + '11'.repeat(20),
    status: 'active',
    shard: 0,
    stake: '100',
    exitEpoch: null,
    withdrawableEpoch: null,
  };
  it("prints a committee-only answer (the node's, before a beacon snapshot) with '-' for what only the registry knows", () => {
    const v = { ...base, home: null, activationEpoch: null, rewards: null, slashed: null, participation: null, lifetime: null, publicKey: null } as unknown as ValidatorInfo;
    const text = formatValidator(v).join('\n');
    assert.match(text, /home\s+-/);
    assert.match(text, /rewards\s+-/);
    assert.match(text, /no beacon snapshot yet/);
  });
  it('prints the registry entry in full', () => {
    const v = {
      ...base,
      home: 'qn' + '22'.repeat(20),
      activationEpoch: 0,
      rewards: '7',
      slashed: '0',
      participation: { epoch: 3, signed: 9, blocks: 10, rate: 0.9 },
      lifetime: { signed: 30, blocks: 32, rate: 0.9375 },
      publicKey: 'ab',
    } as unknown as ValidatorInfo;
    const text = formatValidator(v).join('\n');
    assert.match(text, /epoch 3: 9\/10 \(90\.0%\); lifetime 30\/32 \(93\.8%\)/);
    assert.match(text, /rewards\s+7/);
  });
});
