import { InvalidArgumentError } from 'commander';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { isSchemeName, isValidChainId, type SchemeName } from '@qnexus/crypto';
import { CliError } from './errors.js';

export const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** commander parser: a decimal u64 as bigint. */
export function parseU64(value: string): bigint {
  if (!/^(0|[1-9][0-9]*)$/.test(value)) throw new InvalidArgumentError('expected a non-negative decimal integer.');
  const v = BigInt(value);
  if (v > U64_MAX) throw new InvalidArgumentError('exceeds the u64 maximum 18446744073709551615.');
  return v;
}

/** commander parser factory: a safe integer in [min, max]. */
export function intParser(min: number, max: number = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value: string) => {
    if (!/^-?[0-9]+$/.test(value)) throw new InvalidArgumentError('expected an integer.');
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer in [${min}, ${max}].`);
    return n;
  };
}

/** commander parser: a positive number of seconds (fractions allowed). */
export function parseSeconds(value: string): number {
  const n = Number(value);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(value) || !(n > 0)) throw new InvalidArgumentError('expected a positive number of seconds.');
  return n;
}

/** commander parser: `ml-dsa-44|65|87`, also accepting the bare `44|65|87`. */
export function parseScheme(value: string): SchemeName {
  const v = value.toLowerCase();
  const s = /^(44|65|87)$/.test(v) ? `ml-dsa-${v}` : v;
  if (!isSchemeName(s)) throw new InvalidArgumentError('expected ml-dsa-44, ml-dsa-65 or ml-dsa-87.');
  return s;
}

export function parseChainId(value: string): string {
  if (!isValidChainId(value)) throw new InvalidArgumentError('expected [a-z0-9][a-z0-9-]{0,63}.');
  return value;
}

/** commander parser for repeatable options. */
export function collect<T>(parse: (v: string) => T): (value: string, previous: T[] | undefined) => T[] {
  return (value, previous) => [...(previous ?? []), parse(value)];
}

const LIST_PARSERS = new WeakSet<object>();

/**
 * commander parser for repeatable list options: each use (and an environment variable) may
 * also hold several values separated by commas or whitespace; an empty value adds nothing.
 * Config files give such options a JSON array (see isListParser).
 */
export function collectList<T>(parse: (v: string) => T): (value: string, previous: T[] | undefined) => T[] {
  const f = (value: string, previous: T[] | undefined): T[] => [
    ...(previous ?? []),
    ...value
      .split(/[\s,]+/)
      .filter((v) => v !== '')
      .map(parse),
  ];
  LIST_PARSERS.add(f);
  return f;
}

/** Whether an option's parser came from collectList (the option takes a list). */
export function isListParser(f: unknown): boolean {
  return typeof f === 'function' && LIST_PARSERS.has(f);
}

export function parseMultiaddr(value: string): string {
  if (!value.startsWith('/') || value.includes(' ')) throw new InvalidArgumentError('expected a multiaddr such as /ip4/127.0.0.1/tcp/7000.');
  return value;
}

/** Read a text file with friendly errors naming what it is. */
export async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CliError('FILE_NOT_FOUND', `${what} ${path} does not exist`);
    if (code === 'EACCES' || code === 'EPERM') throw new CliError('PERMISSION_DENIED', `cannot read ${what} ${path}: permission denied`);
    if (code === 'EISDIR') throw new CliError('IS_A_DIRECTORY', `${what} ${path} is a directory`);
    throw e;
  }
}

/**
 * Write a new file, creating parent directories. Refuses to replace an
 * existing file unless `force` (code FILE_EXISTS).
 */
export async function writeNewFile(path: string, data: string, opts: { force?: boolean; mode?: number; what?: string } = {}): Promise<void> {
  await mkdir(dirname(resolve(path)), { recursive: true });
  try {
    await writeFile(path, data, { flag: opts.force ? 'w' : 'wx', mode: opts.mode ?? 0o644 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new CliError('FILE_EXISTS', `${opts.what ?? 'file'} ${path} already exists (pass --force to overwrite it)`);
    }
    throw e;
  }
  if (opts.mode !== undefined) await chmod(path, opts.mode);
}

/** Write a file atomically (temp file + rename). */
export async function writeFileAtomic(path: string, data: string, mode = 0o644): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data, { mode });
  await rename(tmp, path);
}

/** A path for display: relative to the cwd when it is below it. */
export function displayPath(p: string): string {
  const rel = relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : p;
}

export function out(line = ''): void {
  process.stdout.write(`${line}\n`);
}

export function note(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Left-aligned columns. */
export function table(rows: string[][], indent = ''): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => indent + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
}
