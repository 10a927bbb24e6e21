import { MODULE_IDS, type HostKeepers, type Module } from '@qnexus/state';

export const DEX_ID = MODULE_IDS.dex;

/** The dex module, given the host's keepers (skeleton: filled in by its implementation). */
export function dexModule(_k: HostKeepers): Module {
  return { name: 'dex', id: DEX_ID };
}
