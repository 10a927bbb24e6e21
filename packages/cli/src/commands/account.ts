import type { Command } from 'commander';
import { QnexusClient, type VerifiedState } from '@qnexus/sdk';
import type { Genesis } from '@qnexus/types';
import { CliError } from '../errors.js';
import { loadGenesisFile } from '../genesis.js';
import { NODE_OPTION_HELP, intParser, out, resolveNode, type NodeTarget } from '../util.js';

/** Help of the options every proven read takes (`account`, `query`). */
export const VERIFY_HELP = {
  verify: "ask for a state proof and check it as a light client (trusting only the genesis and the beacon's signed committees); exit 1 with PROOF_INVALID when it does not verify",
  genesis: "the chain's genesis file --verify trusts (default: the local devnet's)",
  height: 'with --verify: the finalized height to read and prove at (default: the head)',
} as const;

/** The genesis a verified read trusts: --genesis, else the local devnet's (the file the nodes were started with). */
export async function trustedGenesis(o: { genesis?: string }, target: NodeTarget): Promise<Genesis> {
  const file = o.genesis ?? target.devnet?.manifest.genesis;
  if (file === undefined) throw new CliError('USAGE', "--verify needs the chain's genesis: pass --genesis <file> (no local devnet to take it from)", 2);
  return loadGenesisFile(file);
}

/** The line a verified read ends with: what was checked, and at which height. */
export function verifiedLine(v: VerifiedState): string {
  const committee = v.committeeSource === 'genesis' ? 'the genesis committee (epoch 0)' : `the committee of epoch ${v.epoch} (the beacon's signed announcement)`;
  return `verified: proven at height ${v.height} of shard ${v.shard} (state root ${Buffer.from(v.header.stateRoot).toString('hex')}; certificate checked against ${committee})`;
}

/** `qnexus account <address> [--verify]`: an account's balance, nonces and key from a node of its home shard, as JSON. */
export function accountCommand(parent: Command): Command {
  return parent
    .command('account')
    .description("print an account (balance, nonce, pending nonce, public key) from a node of its home shard as JSON; --verify: proven and checked")
    .argument('<address>', 'the account (qn…)')
    .option('--node <url>', `${NODE_OPTION_HELP}; default: a node of the account's home shard`)
    .option('--verify', VERIFY_HELP.verify)
    .option('--genesis <file>', VERIFY_HELP.genesis)
    .option('--height <n>', VERIFY_HELP.height, intParser(1))
    .addHelpText('after', '\nExamples:\n  qnexus account qn…\n  qnexus account qn… --verify --genesis genesis.json')
    .action(async (address: string, o: { node?: string; verify?: boolean; genesis?: string; height?: number }) => {
      if (o.height !== undefined && !o.verify) throw new CliError('USAGE', '--height reads a proven state: add --verify', 2);
      const target = await resolveNode(o, { address });
      if (!o.verify) {
        out(JSON.stringify(await new QnexusClient(target.url, { nodes: target.others }).account(address), null, 2));
        return;
      }
      const genesis = await trustedGenesis(o, target);
      const a = await new QnexusClient(target.url, { nodes: target.others, genesis }).account(address, { verify: true, ...(o.height !== undefined ? { height: o.height } : {}) });
      const { proof: _proof, verified, ...fields } = a;
      out(JSON.stringify(fields, null, 2));
      out(verifiedLine(verified));
    });
}
