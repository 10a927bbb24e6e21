import { sendMsg } from '@qnexus/state';
// The block builder counts exactly what encodeBlock writes: packed to the wire cap with the
// largest header (a 64-byte chain id) and the largest transfers, for every signature scheme,
// the block stays within the cap and validates; one more transaction would not fit.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SCHEMES, addressFromPublicKey, formatAddress, generateKeyPair, getBackend, type KeyPair, type SchemeName } from '@qnexus/crypto';
import { MAX_CHAIN_ID_BYTES, encodeTx, openTx, txSigningBytes, type TxEnvelope } from '@qnexus/types';
import { ChainStore } from '@qnexus/db';
import { Chain, MAX_BLOCK_WIRE_BYTES, emptyBlockBytes } from '../src/chain.js';
import { Logger } from '@qnexus/runtime';
import { createMetrics } from '../src/metrics.js';
import { TxVerifier } from '../src/verifier.js';
import { unitGenesis } from './helpers.js';

const CHAIN_ID = 'c'.repeat(MAX_CHAIN_ID_BYTES);

describe('node: block builder size budget', function () {
  this.timeout(120_000);
  const log = new Logger('json', 'error');

  for (const scheme of SCHEMES) {
    it(`${scheme}: packs to the ${MAX_BLOCK_WIRE_BYTES / 1024 / 1024} MiB wire cap exactly, and the block validates`, async () => {
      const b = getBackend(scheme as SchemeName);
      const key = (n: number): KeyPair => generateKeyPair(scheme as SchemeName, new Uint8Array(32).fill(n));
      const vals = [1, 2, 3, 4].map(key);
      const user = key(50);
      const to = addressFromPublicKey(key(60).publicKey);
      const g = unitGenesis(vals, key(70), {
        chainId: CHAIN_ID,
        scheme: scheme as SchemeName,
        maxBlockTxs: 10_000,
        accounts: [{ address: formatAddress(addressFromPublicKey(user.publicKey)), balance: 10n ** 15n }],
      });
      const dir = mkdtempSync(join(tmpdir(), 'qnexus-blocksize-'));
      const store = await ChainStore.open(dir);
      try {
        const chain = await Chain.open(store, g, 0, new TxVerifier(scheme as SchemeName, createMetrics()), log);
        // Every transfer carries its signer's public key and a full signature of the scheme.
        const tx = (nonce: bigint): TxEnvelope => {
          const body = { chainId: CHAIN_ID, nonce, fee: 1n, publicKey: user.publicKey, payload: sendMsg('transfer', { to: to, amount: 1n }) };
          return openTx(encodeTx({ body, signature: b.sign(user.secretKey, txSigningBytes(body)) }));
        };
        const one = tx(0n);
        const perTx = one.raw.length + 4;
        const fit = Math.floor((MAX_BLOCK_WIRE_BYTES - emptyBlockBytes(g)) / perTx);
        const txs = [one, ...Array.from({ length: fit + 5 }, (_, i) => tx(BigInt(i + 1)))];

        const slot = 1;
        const proposer = vals.find((v) => formatAddress(addressFromPublicKey(v.publicKey)) === chain.proposerFor(slot))!;
        const c = chain.build(slot, txs, addressFromPublicKey(proposer.publicKey), (m) => b.sign(proposer.secretKey, m));
        assert.equal(c.envs.length, fit, 'as many as fit, no fewer');
        assert.ok(c.raw.length <= MAX_BLOCK_WIRE_BYTES, `${c.raw.length} bytes`);
        assert.ok(c.raw.length + perTx > MAX_BLOCK_WIRE_BYTES, 'one more would exceed the cap');
        assert.equal(c.raw.length, emptyBlockBytes(g) + fit * perTx, 'the budget is what encodeBlock wrote');
        assert.equal(chain.validate(c, 1), null);

        // A proposer backing off after failed rounds builds within a smaller budget, exactly too.
        const small = chain.build(slot, txs, addressFromPublicKey(proposer.publicKey), (m) => b.sign(proposer.secretKey, m), 64 * 1024);
        const fitSmall = Math.floor((64 * 1024 - emptyBlockBytes(g)) / perTx);
        assert.equal(small.envs.length, fitSmall);
        assert.ok(small.raw.length <= 64 * 1024 && small.raw.length + perTx > 64 * 1024);
      } finally {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
