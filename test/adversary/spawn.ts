// A devnet started from any checkout of the repository by running that tree's own CLI
// (`node <tree>/packages/cli/dist/bin.js devnet …`), so the measurement script can attack the code
// of two git revisions the same way. What the CLI writes (<dir>/manifest.json, logs/<name>.log) is
// all the adversary reads; the devnet is stopped with SIGINT, as a user stops it.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { unlockKeystoreFile } from '@qnexus/cli';
import { targetFromManifest, type FundedAccount, type ManifestLike, type Target } from './target.js';

export interface SpawnDevnetOptions {
  /** Root of the checkout whose CLI runs the devnet (built: packages/cli/dist/bin.js). */
  tree: string;
  dir: string;
  basePort: number;
  validators?: number;
  fullNodes?: number;
  accounts?: number;
  epochLength?: number;
  slotMs?: number;
  /** How long the whole start may take. Default 120 s. */
  timeoutMs?: number;
}

export interface SpawnedDevnet {
  target: Target;
  dir: string;
  /** SIGINT to the launcher (it stops every node), SIGKILL to whatever is left after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
}

interface SpawnManifest extends ManifestLike {
  accounts: { address: string; keystore: string; shard: number }[];
  passphraseFile: string;
}

export async function spawnDevnet(o: SpawnDevnetOptions): Promise<SpawnedDevnet> {
  const bin = join(o.tree, 'packages/cli/dist/bin.js');
  if (!existsSync(bin)) throw new Error(`${bin} does not exist: build that tree first`);
  const args = [
    bin, 'devnet', '--dir', o.dir, '--base-port', String(o.basePort), '--reset',
    '--shards', '1', '--validators', String(o.validators ?? 4), '--full-nodes', String(o.fullNodes ?? 1),
    '--accounts', String(o.accounts ?? 8), '--epoch-length', String(o.epochLength ?? 6), '--slot-ms', String(o.slotMs ?? 1000),
    '--log-format', 'json',
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: o.tree });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  // If this process dies (an uncaught error), the launcher must not outlive it: SIGINT makes it
  // stop every node (they also stop by themselves once the launcher is gone).
  const onExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
  };
  process.once('exit', onExit);
  const stop = async (timeoutMs = 30_000) => {
    await stopLauncher(child, exited, timeoutMs);
    process.off('exit', onExit);
  };
  try {
    const deadline = Date.now() + (o.timeoutMs ?? 120_000);
    // The launcher prints its summary once every process answers /v1/status.
    while (!out.includes('Ctrl-C stops every process')) {
      if (child.exitCode !== null) throw new Error(`devnet launcher exited (${child.exitCode}):\n${out.slice(-3000)}`);
      if (Date.now() > deadline) throw new Error(`devnet did not start within ${(o.timeoutMs ?? 120_000) / 1000} s:\n${out.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const m = JSON.parse(readFileSync(join(o.dir, 'manifest.json'), 'utf8')) as SpawnManifest;
    const pass = readFileSync(m.passphraseFile, 'utf8').trim();
    const accounts: FundedAccount[] = [];
    for (const a of m.accounts) {
      const { key } = await unlockKeystoreFile(a.keystore, pass);
      accounts.push({ address: a.address, shard: a.shard, key: { publicKey: key.publicKey, secretKey: key.secretKey, scheme: key.scheme } });
    }
    return { target: targetFromManifest(m, accounts), dir: o.dir, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

async function stopLauncher(child: ChildProcess, exited: Promise<number | null>, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGINT');
  const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(t);
}
