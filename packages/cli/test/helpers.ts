import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));
const DIST = fileURLToPath(new URL('../dist/', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** The built bin when every dist file is newer than its source (fast), else the source through tsx. */
function binCommand(): string[] {
  const fresh =
    !process.env.QNEXUS_TEST_FROM_SOURCE &&
    sources(SRC).every((src) => {
      const js = join(DIST, relative(SRC, src)).replace(/\.ts$/, '.js');
      return existsSync(js) && statSync(js).mtimeMs >= statSync(src).mtimeMs;
    });
  return fresh ? [join(DIST, 'bin.js')] : ['--import', import.meta.resolve('tsx'), join(SRC, 'bin.ts')];
}

/** Node arguments that run the qnexus CLI: `spawn(process.execPath, [...QNEXUS_BIN, ...args])`. */
export const QNEXUS_BIN: readonly string[] = binCommand();

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the qnexus CLI as a real process; stdin is a pipe, so not a TTY. */
export function qnexus(args: string[], opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...QNEXUS_BIN, ...args], {
      cwd: opts.cwd ?? process.cwd(),
      env: { ...process.env, QNEXUS_NODE: '', QNEXUS_DEBUG: '', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
