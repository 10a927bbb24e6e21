import { MODULE_IDS, type HostKeepers, type Module } from '@qnexus/state';

export const TOKEN_ID = MODULE_IDS.token;

/** The token module, given the host's keepers (skeleton: filled in by its implementation). */
export function tokenModule(_k: HostKeepers): Module {
  return { name: 'token', id: TOKEN_ID };
}
