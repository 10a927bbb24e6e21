import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { StateMachine, type Module } from '@qnexus/state';
import { QnexusError, type Genesis, type GenesisModule } from '@qnexus/types';
import { stakingModule } from '@qnexus/module-staking';
import { tokenModule } from '@qnexus/module-token';
import { faucetModule } from '@qnexus/module-faucet';
import { ammModule } from '@qnexus/module-amm';
import { dexModule } from '@qnexus/module-dex';

/**
 * The application: the only place that lists the modules and wires their
 * keepers. The node and the beacon see modules only through it (a CI check,
 * scripts/check-deps.mjs, fails otherwise). Adding a module = its folder
 * under packages/modules/ plus one line in `wire` below.
 *
 * Module ids are part of the chain's state keys and message kinds: never
 * reuse or renumber one (bank 1, xfer 2 are the host's built-ins).
 */
export function wire(k: ConstructorParameters<typeof StateMachine>[0] extends (k: infer K) => unknown ? K : never): Module[] {
  return [
    stakingModule(k), // id 3
    tokenModule(k), // id 4
    faucetModule(k), // id 5
    ammModule(k), // id 6
    dexModule(k), // id 7
  ];
}

/**
 * The app's state machine. `extra` wires more modules after the listed ones:
 * for a test fixture or an embedding, never for a chain's real modules
 * (those belong in `wire`).
 */
export function createApp(extra: (k: Parameters<typeof wire>[0]) => Module[] = () => []): StateMachine {
  return new StateMachine((k) => [...wire(k), ...extra(k)]);
}

/**
 * The app, shared by everything in one process (the host is stateless apart from its registries).
 * An exported `let`: `installModules` replaces it before the process starts, and every importer
 * reads the live binding, so the node and the beacon run the installed modules without knowing them.
 */
export let app: StateMachine = createApp();

/** A module file's default export: the module, given the host's keepers (what `wire` gets). */
export type ModuleFactory = (k: Parameters<typeof wire>[0]) => Module;

/** The files `installModules` loaded, in order (for the start log and a devnet's manifest). */
export let installedModuleFiles: readonly string[] = [];

/**
 * Load modules under development into this process (`qnexus node|beacon|devnet --module <file.js>`):
 * each file is an ES module whose default export is `(keepers) => Module`; the app is rebuilt with
 * them after the listed ones. Call it before the process starts (a chain's state machine must not
 * change under a running node). Throws BAD_CONFIG for a file that cannot be loaded or whose default
 * export is not a factory, and whatever the host throws for a clash (a taken id or name).
 */
export async function installModules(files: readonly string[]): Promise<StateMachine> {
  const factories: ModuleFactory[] = [];
  for (const f of files) {
    const abs = resolve(f);
    let loaded: { default?: unknown };
    try {
      loaded = (await import(pathToFileURL(abs).href)) as { default?: unknown };
    } catch (e) {
      throw new QnexusError('BAD_CONFIG', `--module ${f}: cannot load ${abs}: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (typeof loaded.default !== 'function') throw new QnexusError('BAD_CONFIG', `--module ${f}: its default export must be a function (keepers) => Module`);
    factories.push(loaded.default as ModuleFactory);
  }
  let next: StateMachine;
  try {
    next = createApp((k) => factories.map((make) => make(k)));
  } catch (e) {
    throw new QnexusError('BAD_CONFIG', `--module: ${e instanceof Error ? e.message : String(e)}`);
  }
  app = next;
  installedModuleFiles = files.map((f) => resolve(f));
  return app;
}

export {
  STAKING_ID,
  STAKING_KIND,
  STAKING_OP,
  FEE_ACCOUNT,
  stakeConsentSigningBytes,
  stakeMsg,
  stakingOpName,
  unstakeMsg,
  type StakeMsg,
  type StakingOpName,
  type UnstakeMsg,
} from '@qnexus/module-staking';

/** The modules a genesis file should name for `sm` (every module beyond the host's built-ins), by id. */
export function genesisModules(sm: StateMachine = app): GenesisModule[] {
  return sm.modules.filter((m) => m.id > 2).map((m) => ({ name: m.name, id: m.id }));
}

/**
 * Refuse to run a chain whose genesis names other modules than this process's
 * app: its state roots would differ from the other nodes' at the first
 * module-specific transaction (or at genesis). Files without `modules` are
 * not checked.
 */
export function checkGenesisModules(g: Genesis, sm: StateMachine = app): void {
  if (!g.modules) return;
  // Every section parses now, not at the first block.
  for (const m of sm.modules) sm.moduleGenesis(g, m);
  const want = g.modules.map((m) => `${m.name}#${m.id}`).join(', ');
  const have = genesisModules(sm).map((m) => `${m.name}#${m.id}`).join(', ');
  if (want !== have) {
    throw new QnexusError('BAD_CONFIG', `the genesis file names modules [${want}], this process runs [${have}]: start it with the same modules (qnexus node --module …) as the chain`);
  }
}
