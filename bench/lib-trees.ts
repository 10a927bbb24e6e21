// What the before/after benchmarks (bench/attacks.ts, bench/faults.ts) share: the git trees they
// compare (this checkout, and a baseline revision built in a temporary worktree) and one cleanup
// list that runs at the end, on SIGINT/SIGTERM and (for the worktree) on any exit, so an
// interrupted run leaves no devnet and no worktree behind.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface Tree {
  /** `before` (the baseline) or `after` (this checkout). */
  label: string;
  root: string;
  rev: string;
}

export function git(cwd: string, ...a: string[]): string {
  return execFileSync('git', a, { cwd, encoding: 'utf8' }).trim();
}

/** Things to undo, last registered first. */
export class Cleanups {
  private readonly list: (() => Promise<void> | void)[] = [];

  add(c: () => Promise<void> | void): void {
    this.list.push(c);
  }

  remove(c: () => Promise<void> | void): void {
    const i = this.list.indexOf(c);
    if (i >= 0) this.list.splice(i, 1);
  }

  async run(): Promise<void> {
    for (const c of this.list.splice(0).reverse()) {
      try {
        await c();
      } catch (e) {
        console.error(`cleanup failed: ${(e as Error).message}`);
      }
    }
  }

  /** SIGINT / SIGTERM run the cleanups, then exit 130. */
  onSignals(what: string): void {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.once(sig, () => {
        console.error(`\n${sig}: ${what}…`);
        void this.run().then(() => process.exit(130));
      });
    }
  }
}

/** This checkout, labelled `after`; `+dirty` when tracked files have uncommitted changes. */
export function currentTree(root: string): Tree {
  return { label: 'after', root, rev: `${git(root, 'rev-parse', '--short', 'HEAD')}${git(root, 'status', '--porcelain', '--untracked-files=no') ? '+dirty' : ''}` };
}

/** An already built checkout used as the baseline (no worktree). */
export function baselineTreeFromDir(dir: string): Tree {
  const root = resolve(dir);
  let rev = 'unknown';
  try {
    rev = git(root, 'rev-parse', '--short', 'HEAD');
  } catch {
    // an exported tree without .git
  }
  return { label: 'before', root, rev };
}

/** Check out and build `rev` in a temporary worktree of `root`; registered for removal. */
export function buildBaseline(root: string, rev: string, cleanups: Cleanups): Tree {
  const dir = mkdtempSync(join(tmpdir(), 'qnexus-baseline-'));
  rmSync(dir, { recursive: true, force: true });
  console.log(`baseline ${rev}: git worktree add ${dir}`);
  git(root, 'worktree', 'add', '--detach', dir, rev);
  let removed = false;
  const remove = () => {
    if (removed) return;
    removed = true;
    console.log(`removing worktree ${dir}`);
    try {
      git(root, 'worktree', 'remove', '--force', dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      git(root, 'worktree', 'prune');
    }
  };
  cleanups.add(remove);
  // Synchronous, so it also runs when an uncaught error ends the process.
  process.once('exit', remove);
  console.log('baseline: npm ci');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] });
  console.log('baseline: npm run build');
  execFileSync('npm', ['run', 'build'], { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] });
  return { label: 'before', root: dir, rev: git(dir, 'rev-parse', '--short', 'HEAD') };
}

/**
 * A workspace package of a tree, from that tree's own dist/ (`pkg` = the folder under packages/,
 * e.g. `state`, `modules/staking`): so each tree runs, signs and encodes with its own code.
 */
/** The parts of a tree's crypto package every bench calls (the same shape in the trees compared). */
export interface SigningKey {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
  scheme: string;
  backend?: string;
}
export interface TreeCrypto {
  generateKeyPair(scheme: string, seed: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array };
  addressFromPublicKey(pk: Uint8Array): Uint8Array;
  formatAddress(a: Uint8Array): string;
  backendAvailable(name: string): boolean;
}
/** The SDK's transfer builder, as the benches call it. */
export interface TreeSdk {
  buildTransfer(p: { key: SigningKey; chainId: string; to: string; amount: bigint; fee: bigint; nonce: bigint }): { raw: Uint8Array; hash: string };
}
/** A block's execution context (height, slot, proposer). */
export interface BlockCtx {
  height: number;
  slot: number;
  proposer: Uint8Array;
}

export async function importFromTree<T>(tree: Tree, pkg: string): Promise<T> {
  return importFileFromTree<T>(tree, pkg, 'index.js');
}

/**
 * One compiled file of a tree's package (`file` relative to its dist/, e.g. `chain.js` of `node`): for
 * the internals a bench drives directly that the package's index does not export (the node's Chain).
 */
export async function importFileFromTree<T>(tree: Tree, pkg: string, file: string): Promise<T> {
  return (await import(pathToFileURL(join(tree.root, 'packages', pkg, 'dist', file)).href)) as T;
}

/** A markdown-ish aligned table (the last column is not padded). */
export function table(rows: string[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]!))).join('  ')).join('\n');
}

// ---------------------------------------------------------------- HTTP (the same client code for both trees)

/** An HTTP answer as the benches read it: status, parsed JSON (or the text), Retry-After. */
export interface Answer {
  status: number;
  body: unknown;
  retryAfter: string | null;
}

export async function http(url: string, init: { method?: string; body?: Uint8Array; timeoutMs?: number } = {}): Promise<Answer> {
  const res = await fetch(url, {
    method: init.method ?? 'GET',
    headers: init.body ? { 'content-type': 'application/octet-stream', accept: 'application/json' } : { accept: 'application/json' },
    body: init.body,
    signal: AbortSignal.timeout(init.timeoutMs ?? 10_000),
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  return { status: res.status, body, retryAfter: res.headers.get('retry-after') };
}

/** GET a JSON answer; null on any error or non-200 (the benches poll and move on). */
export async function getJson<T>(url: string, timeoutMs = 5000): Promise<T | null> {
  try {
    const a = await http(url, { timeoutMs });
    return a.status === 200 ? (a.body as T) : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- a tree's devnet

/**
 * Start a devnet in a fresh temporary directory, retrying on PORT_IN_USE (a stopped devnet's ports
 * may linger in TIME_WAIT) with the next port range from `basePort()`, at most 3 tries. `stop` stops
 * it and removes the directory (unless `keepDir`); it is registered with `cleanups` until `close`.
 */
export async function startTreeDevnet<D extends { stop(): Promise<void> }>(o: {
  prefix: string;
  basePort: () => number;
  start: (dir: string, basePort: number) => Promise<D>;
  cleanups: Cleanups;
  keepDir?: boolean;
}): Promise<{ devnet: D; close: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), o.prefix));
  let devnet: D | undefined;
  for (let attempt = 0; !devnet; attempt++) {
    try {
      devnet = await o.start(join(dir, 'devnet'), o.basePort());
    } catch (e) {
      if (attempt >= 2 || !/PORT_IN_USE/.test(String((e as { code?: string }).code ?? e))) {
        rmSync(dir, { recursive: true, force: true });
        throw e;
      }
    }
  }
  const d = devnet;
  const stop = async () => {
    await d.stop();
    if (o.keepDir) console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  };
  o.cleanups.add(stop);
  return {
    devnet: d,
    close: async () => {
      o.cleanups.remove(stop);
      await stop();
    },
  };
}

