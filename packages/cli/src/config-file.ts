import { InvalidArgumentError, Option, type Command } from 'commander';
import { dirname, resolve } from 'node:path';
import { CliError, usageError } from './errors.js';
import { isListParser, out, readText } from './util.js';

/**
 * Configuration of the long-running processes (`qnexus node`, `qnexus beacon`) from three
 * layers besides the built-in defaults. Precedence, highest first:
 *
 *   command-line flag > QNEXUS_* environment variable > config file (--config) > default
 *
 * Every option `--foo-bar` of such a command is also read from `QNEXUS_FOO_BAR` and from the
 * key `fooBar` of the JSON config file. A preAction hook applies them, through the option's own
 * parser (and choices), to the options still at their default: first the environment, then the
 * file, so neither overrides a flag and the file does not override a variable. See
 * docs/configuration.md.
 *
 * (Commander's Option.env() only works on options created with it, before Command.addOption;
 * these options come from several modules, so the variables are applied here. Option.envVar is
 * still set, for the help's "env:" and for commander's own parse, which finds no listener.)
 */

export const ENV_PREFIX = 'QNEXUS_';
export const CONFIG_ENV = 'QNEXUS_CONFIG';

/** The options addConfigSupport adds. */
export interface ConfigOptions {
  config?: string;
  printConfig?: boolean;
}

/** Where a value came from, as --print-config reports it. */
export type ValueSource = 'flag' | 'env' | 'config' | 'default' | 'unset';

interface ConfigState {
  /** Options that must have a value (made non-mandatory for commander, checked after the file is read). */
  required: Option[];
  /** Attribute names of the options whose values are paths (relative ones in the file resolve against its directory). */
  paths: Set<string>;
  /** The config file read, as an absolute path. */
  file?: string;
}

const STATE = new WeakMap<Command, ConfigState>();

const NOT_CONFIGURABLE = new Set(['--config', '--print-config', '--help', '--version']);

/** The environment variable of an option: `--api-port` → `QNEXUS_API_PORT`. */
export function envVarName(opt: Option): string {
  return ENV_PREFIX + (opt.long ?? '').replace(/^--/, '').replace(/-/g, '_').toUpperCase();
}

/** The options a config file and the environment may set: the visible ones (not --config, --print-config, --help). */
export function configurableOptions(cmd: Command): Option[] {
  return cmd.options.filter((o) => o.long !== undefined && !o.hidden && !o.negate && !NOT_CONFIGURABLE.has(o.long));
}

/**
 * Give every visible option of `cmd` (call it after adding them) an environment variable and a
 * config-file key, add `--config <file>` and `--print-config`, and document the precedence in
 * the help. `paths`: attribute names of the options holding paths. Required options are
 * checked once the config file is applied (commander would check them before). A command's
 * action must call printEffectiveConfig (and stop) when `--print-config` is given.
 */
export function addConfigSupport(cmd: Command, opts: { paths: string[] }): Command {
  const state: ConfigState = { required: [], paths: new Set(opts.paths) };
  for (const o of configurableOptions(cmd)) {
    // Flags without a value are left out (what would QNEXUS_X=0 mean?).
    if ((o.required || o.optional) && o.envVar === undefined) o.env(envVarName(o));
    if (o.mandatory) {
      o.makeOptionMandatory(false);
      o.description += ' (required)';
      state.required.push(o);
    }
  }
  STATE.set(cmd, state);
  return cmd
    .addOption(new Option('--config <file>', 'JSON config file of option values (see Configuration below)').env(CONFIG_ENV))
    .option('--print-config', 'print the effective configuration and the source of each value (flag, env, config, default) as JSON, and exit')
    .addHelpText(
      'after',
      `
Configuration: each option can also be set by its environment variable (env: above) or in a
JSON config file (--config <file> or ${CONFIG_ENV}) whose keys are the options' camelCase names:
  {"dataDir": "data/n0", "apiPort": 8545, "bootstrap": ["/ip4/…/p2p/…"], "logFormat": "json"}
Precedence, highest first: flag > ${ENV_PREFIX}* environment variable > config file > default.
In the file, relative paths resolve against the file's directory and repeatable options take
an array; a flag or variable takes a comma- or space-separated list. A passphrase never goes
in the file: use passphraseFile or passphraseEnv. --print-config shows what applies and why;
docs/configuration.md has the details.`,
    )
    .hook('preAction', async (actionCmd) => {
      applyEnv(actionCmd);
      await applyConfigFile(actionCmd);
      checkRequired(actionCmd);
    });
}

function stateOf(cmd: Command): ConfigState {
  const s = STATE.get(cmd);
  if (!s) throw new Error(`addConfigSupport was not called on ${cmd.name()}`);
  return s;
}

/** Whether an option is still at its default (or unset): neither a flag nor a variable set it. */
function atDefault(cmd: Command, key: string): boolean {
  const source = cmd.getOptionValueSource(key);
  return source === undefined || source === 'default';
}

/** Set the options still at their default from their QNEXUS_* variables (an empty variable counts as unset). */
export function applyEnv(cmd: Command): void {
  for (const o of configurableOptions(cmd)) {
    const name = o.envVar;
    const text = name === undefined ? undefined : process.env[name];
    if (name === undefined || text === undefined || text === '') continue;
    const key = o.attributeName();
    if (!atDefault(cmd, key)) continue;
    let value: unknown = text;
    if (o.parseArg) {
      try {
        // Like a flag, a list variable replaces the default rather than adding to it.
        value = o.parseArg(text, isListParser(o.parseArg) ? undefined : cmd.getOptionValue(key));
      } catch (e) {
        if (!(e instanceof InvalidArgumentError)) throw e;
        // Commander's wording for a bad variable.
        throw usageError(`option '${o.flags}' value '${text}' from env '${name}' is invalid. ${e.message}`);
      }
    }
    cmd.setOptionValueWithSource(key, value, 'env');
  }
}

/** Read the --config file (if any) and set the options still at their default from it. */
export async function applyConfigFile(cmd: Command): Promise<void> {
  const state = stateOf(cmd);
  const given = cmd.getOptionValue('config') as string | undefined;
  if (given === undefined || (given === '' && cmd.getOptionValueSource('config') === 'env')) return;
  const file = resolve(given);
  state.file = file;
  const values = await readConfigFile(cmd, file, given);
  // A flag ('cli') or an environment variable ('env') wins over the file.
  for (const [key, value] of values) if (atDefault(cmd, key)) cmd.setOptionValueWithSource(key, value, 'config');
}

/** Parse and validate a whole config file (every key, even those a flag overrides). */
async function readConfigFile(cmd: Command, file: string, shown: string): Promise<Map<string, unknown>> {
  const text = await readText(file, 'config file');
  const bad = (message: string) => new CliError('BAD_CONFIG', `config file ${shown}: ${message}`);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw bad(`not valid JSON (${(e as Error).message})`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw bad('expected a JSON object of option values, such as {"dataDir": "data/n0", "apiPort": 8545}');
  }
  const options = new Map(configurableOptions(cmd).map((o) => [o.attributeName(), o]));
  const { paths } = stateOf(cmd);
  const values = new Map<string, unknown>();
  for (const [key, raw] of Object.entries(data as Record<string, unknown>)) {
    const opt = options.get(key);
    if (!opt) {
      if (/^pass(phrase|word)$/i.test(key)) {
        throw bad(`"${key}": a passphrase never goes in the config file; give "passphraseFile" (a file holding it) or "passphraseEnv" (the name of an environment variable holding it)`);
      }
      const camel = key.replace(/[-_]+([a-z0-9])/g, (_, c: string) => c.toUpperCase());
      const hint = camel !== key && options.has(camel) ? ` (keys are camelCase: "${camel}")` : '';
      throw bad(`unknown key "${key}"${hint}; valid keys: ${[...options.keys()].join(', ')}`);
    }
    let value = configValue(opt, raw, shown, key);
    if (paths.has(key) && typeof value === 'string') value = resolve(dirname(file), value);
    // A repeatable path option (--module): each of its paths, the same way.
    else if (paths.has(key) && Array.isArray(value)) value = value.map((v: unknown) => (typeof v === 'string' ? resolve(dirname(file), v) : v));
    values.set(key, value);
  }
  return values;
}

/** One value of the file through the option's own parser (and choices), as a flag would be. */
function configValue(opt: Option, raw: unknown, file: string, key: string): unknown {
  const bad = (message: string) => new CliError('BAD_CONFIG', `config file ${file}: ${message}`);
  if (!opt.required && !opt.optional) {
    if (typeof raw !== 'boolean') throw bad(`"${key}" (${opt.flags}) takes true or false`);
    return raw;
  }
  const list = isListParser(opt.parseArg);
  const items = Array.isArray(raw) ? raw : [raw];
  if (Array.isArray(raw) && !list) throw bad(`"${key}" (${opt.flags}) takes one value, not an array`);
  let value: unknown = undefined;
  for (const item of items) {
    if (typeof item !== 'string' && !(typeof item === 'number' && Number.isFinite(item))) {
      throw bad(`"${key}" (${opt.flags}) takes ${list ? 'an array of strings' : 'a string or a number'}, not ${JSON.stringify(item)}`);
    }
    const text = String(item);
    if (!opt.parseArg) {
      value = text;
      continue;
    }
    try {
      value = opt.parseArg(text, value);
    } catch (e) {
      if (!(e instanceof InvalidArgumentError)) throw e;
      // The same wording as commander's for a flag or an environment variable.
      throw new CliError('BAD_CONFIG', `option '${opt.flags}' value '${text}' from config file '${file}' (key "${key}") is invalid. ${e.message}`);
    }
  }
  return list && value === undefined ? [] : value;
}

/** The required options, wherever their values come from. */
function checkRequired(cmd: Command): void {
  for (const o of stateOf(cmd).required) {
    if (cmd.getOptionValue(o.attributeName()) === undefined) {
      throw usageError(`required option '${o.flags}' not specified (give the flag, ${envVarName(o)} or "${o.attributeName()}" in the config file)`);
    }
  }
}

export interface EffectiveConfig {
  command: string;
  /** The config file read (absolute), or null. */
  configFile: string | null;
  /** Every option with a value; a valid config file as is. */
  values: Record<string, unknown>;
  /** Where each option's value comes from ('unset': no value, the process decides). */
  sources: Record<string, ValueSource>;
}

/** The effective configuration of a command after parsing (and applyConfigFile). */
export function effectiveConfig(cmd: Command): EffectiveConfig {
  const values: Record<string, unknown> = {};
  const sources: Record<string, ValueSource> = {};
  for (const o of configurableOptions(cmd)) {
    const key = o.attributeName();
    const value: unknown = cmd.getOptionValue(key);
    if (value === undefined) {
      sources[key] = 'unset';
      continue;
    }
    values[key] = value;
    const source = cmd.getOptionValueSource(key);
    sources[key] = source === 'cli' ? 'flag' : source === 'env' ? 'env' : source === 'config' ? 'config' : 'default';
  }
  return { command: cmd.name(), configFile: stateOf(cmd).file ?? null, values, sources };
}

/** `--print-config`: the effective configuration as JSON on stdout. (No option holds a passphrase itself.) */
export function printEffectiveConfig(cmd: Command): void {
  out(JSON.stringify(effectiveConfig(cmd), null, 2));
}

/**
 * `env` without the QNEXUS_* variables that would configure a node or beacon (every one but
 * QNEXUS_DEBUG): for a launcher (qnexus devnet) whose child processes must follow its flags only.
 */
export function withoutConfigEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith(ENV_PREFIX) || k === 'QNEXUS_DEBUG'));
}
