import { MODULE_IDS, type HostKeepers, type Module } from '@qnexus/state';

export const AMM_ID = MODULE_IDS.amm;

/** The amm module, given the host's keepers (skeleton: filled in by its implementation). */
export function ammModule(_k: HostKeepers): Module {
  return { name: 'amm', id: AMM_ID };
}
