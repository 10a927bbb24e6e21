import { MODULE_IDS, type HostKeepers, type Module } from '@qnexus/state';

export const FAUCET_ID = MODULE_IDS.faucet;

/** The faucet module, given the host's keepers (skeleton: filled in by its implementation). */
export function faucetModule(_k: HostKeepers): Module {
  return { name: 'faucet', id: FAUCET_ID };
}
