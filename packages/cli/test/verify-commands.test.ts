// `qnexus account` and `qnexus query … --verify`: which queries are provable, and the invocations refused before any
// node is asked or any genesis read (each with its code and exit status 2).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { qnexus } from './helpers.js';

const TO = `qn${'ab'.repeat(20)}`;
// Nothing listens there: a command that got as far as asking would fail UNAVAILABLE, not USAGE.
const NODE = 'http://127.0.0.1:9';

describe('cli: account and query --verify', function () {
  this.timeout(60_000);
  let dir: string;
  let env: Record<string, string>;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'qnexus-verify-cli-'));
    // No local devnet: no genesis to fall back on.
    env = { QNEXUS_DEVNET_DIR: dir };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the query list marks the provable queries (single keys), not the range ones', async () => {
    const r = await qnexus(['query'], { env, cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /bank balance <address> <denom> +.*\[provable: --verify\]/);
    assert.match(r.stdout, /staking pending-fee <proposer> +.*\[provable: --verify\]/);
    assert.doesNotMatch(r.stdout.split('\n').find((l) => /bank balances </.test(l)) ?? '', /provable/);
  });

  it('refused without a node: --verify on a range query, --height without --verify, --verify without a genesis', async () => {
    const range = await qnexus(['query', 'bank', 'balances', TO, '--verify', '--node', NODE], { env, cwd: dir });
    assert.equal(range.code, 2, range.stderr);
    assert.match(range.stderr, /error \[USAGE\]: query bank balances reads a range of keys/);
    for (const args of [
      ['account', TO, '--height', '3', '--node', NODE],
      ['query', 'bank', 'balance', TO, 'qfc', '--height', '3', '--node', NODE],
    ]) {
      const r = await qnexus(args, { env, cwd: dir });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /error \[USAGE\]: --height reads a proven state: add --verify/);
    }
    const noGenesis = await qnexus(['account', TO, '--verify', '--node', NODE], { env, cwd: dir });
    assert.equal(noGenesis.code, 2, noGenesis.stderr);
    assert.match(noGenesis.stderr, /error \[USAGE\]: --verify needs the chain's genesis: pass --genesis <file>/);
    // Without --verify it does ask the node (and there is none).
    const plain = await qnexus(['account', TO, '--node', NODE], { env, cwd: dir });
    assert.equal(plain.code, 1);
    assert.match(plain.stderr, /error \[UNAVAILABLE\]/);
  });
});
