// noble ML-DSA verify rate: noble's own verify (nobleReferenceVerify: ml_dsaXX.verify, which
// re-expands the public key's matrix Â on every call) against CachedNobleVerifier (the noble
// backend's verify since issue 18: tr, Â and NTT(t1·2^d) cached per key), over a few keys that
// repeat, as a devnet's validators and busy accounts do.
//
// Per scheme: KEYS keys × MSGS messages signed once, then RUNS runs; each run verifies every
// signature once with each (order alternating between runs), the cached one with a fresh cache
// (so its KEYS misses are in the figure), and once with maxKeys 0 ("uncached": every verify
// expands its key, which separates the cache's share from the rest of the rewrite). Prints
// verify/s: median and min–max over the runs, and the median ratio cached ÷ noble. Every verify
// must be true (checked).
//
//   cd /work/main && npx tsc -b && flock /tmp/qnexus-heavy.lock node --import tsx bench/noble-verify.ts
//
// Options (environment): KEYS (8), MSGS (32), RUNS (5), SCHEMES (all, comma-separated).
import { CachedNobleVerifier, SCHEMES, backendAvailable, getBackend, nobleReferenceVerify, type SchemeName } from '@qnexus/crypto';

const KEYS = Number(process.env.KEYS ?? 8);
const MSGS = Number(process.env.MSGS ?? 32);
const RUNS = Number(process.env.RUNS ?? 5);
const schemes = (process.env.SCHEMES ? process.env.SCHEMES.split(',') : SCHEMES) as SchemeName[];

interface Signed {
  pk: Uint8Array;
  msg: Uint8Array;
  sig: Uint8Array;
}

function signAll(s: SchemeName): Signed[] {
  const noble = getBackend(s, 'noble');
  // pqclean signs the same FIPS 204 signatures much faster, when it is there.
  const signer = backendAvailable('pqclean') ? getBackend(s, 'pqclean') : noble;
  const out: Signed[] = [];
  for (let k = 0; k < KEYS; k++) {
    const kp = noble.keygen(new Uint8Array(32).fill(k + 1));
    for (let m = 0; m < MSGS; m++) {
      // A transaction-sized message: 150 bytes.
      const msg = new Uint8Array(150).map((_, i) => (i * 31 + k * 7 + m) & 0xff);
      out.push({ pk: kp.publicKey, msg, sig: signer.sign(kp.secretKey, msg) });
    }
  }
  // Interleave keys the way a block's transactions arrive: no two neighbours from one key in a row.
  return out.map((x, i) => ({ x, o: (i % MSGS) * KEYS + Math.floor(i / MSGS) })).sort((a, b) => a.o - b.o).map((e) => e.x);
}

function rate(items: Signed[], verify: (pk: Uint8Array, msg: Uint8Array, sig: Uint8Array) => boolean): number {
  const t0 = process.hrtime.bigint();
  let ok = 0;
  for (const { pk, msg, sig } of items) if (verify(pk, msg, sig)) ok++;
  const sec = Number(process.hrtime.bigint() - t0) / 1e9;
  if (ok !== items.length) throw new Error(`only ${ok} of ${items.length} signatures verified`);
  return items.length / sec;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (xs: number[]) => `${median(xs).toFixed(0)} /s (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`;

console.log(`noble verify, ${KEYS} keys × ${MSGS} messages, ${RUNS} runs (median, min–max); node ${process.version}`);
for (const s of schemes) {
  const items = signAll(s);
  const ref = (pk: Uint8Array, msg: Uint8Array, sig: Uint8Array) => nobleReferenceVerify(s, pk, msg, sig);
  // Warm-up: JIT both paths.
  rate(items.slice(0, 32), ref);
  rate(items.slice(0, 32), (pk, msg, sig) => new CachedNobleVerifier(s).verify(pk, msg, sig));
  const plain: number[] = [];
  const cached: number[] = [];
  const ratios: number[] = [];
  const nocache = new CachedNobleVerifier(s, { maxKeys: 0 });
  const uncached: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const v = new CachedNobleVerifier(s);
    const c = (pk: Uint8Array, msg: Uint8Array, sig: Uint8Array) => v.verify(pk, msg, sig);
    let p: number, q: number;
    if (r % 2 === 0) {
      p = rate(items, ref);
      q = rate(items, c);
    } else {
      q = rate(items, c);
      p = rate(items, ref);
    }
    uncached.push(rate(items, (pk, msg, sig) => nocache.verify(pk, msg, sig)));
    plain.push(p);
    cached.push(q);
    ratios.push(q / p);
  }
  console.log(`${s}: noble ${fmt(plain)}  cached ${fmt(cached)}  uncached ${fmt(uncached)}  ratio ${median(ratios).toFixed(2)}× (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`);
}
