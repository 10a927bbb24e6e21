import { StateMachine, type Module } from '@qnexus/state';
import { stakingModule } from '@qnexus/module-staking';

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

/** The default app, shared by everything in one process (the host is stateless apart from its registries). */
export const app: StateMachine = createApp();

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
