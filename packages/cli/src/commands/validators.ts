import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { isAddressString } from '@qnexus/crypto';
import { QnexusClient, type ValidatorInfo } from '@qnexus/sdk';
import { usageError } from '../errors.js';
import { BEACON_NODE_OPTION_HELP, out, resolveNode, table } from '../util.js';
import { formatValidator } from './tx.js';

/** One line per validator: the registry at a glance. */
function validatorRows(vs: readonly ValidatorInfo[]): string[] {
  const rate = (r: number | null) => (r === null ? '-' : `${(r * 100).toFixed(0)}%`);
  return table([
    ['address', 'status', 'shard', 'stake', 'rewards', 'slashed', 'votes'],
    ...vs.map((v) => [v.address, v.status, v.shard === null ? '-' : String(v.shard), v.stake, v.rewards ?? '-', v.slashed ?? '-', rate(v.participation?.rate ?? null)]),
  ]);
}

export function validatorsCommand(parent: Command): Command {
  parent
    .command('validators')
    .description("the validator registry (stake, status, shard, rewards, participation) as the beacon or a node's latest beacon snapshot shows it")
    .argument('[address]', 'one validator (qn…)')
    .option('--node <url>', `${BEACON_NODE_OPTION_HELP}; a shard node or the beacon`)
    .option('--json', 'print the raw answer')
    .action(async (address: string | undefined, o: { node?: string; json?: boolean }) => {
      if (address !== undefined && !isAddressString(address)) throw usageError(`invalid validator address ${JSON.stringify(address)}: expected qn followed by 40 lowercase hex characters`);
      // The beacon holds the current registry; a shard node only its latest snapshot.
      const client = new QnexusClient((await resolveNode(o, { role: 'beacon' })).url);
      if (address !== undefined) {
        const v = await client.validator(address);
        if (o.json) out(JSON.stringify(v, null, 2));
        else for (const line of formatValidator(v)) out(line);
        return;
      }
      const r = await client.validators();
      if (o.json) {
        out(JSON.stringify(r, null, 2));
        return;
      }
      out(`epoch ${r.epoch} (slot ${r.slot})${r.totals ? `; held by the beacon ${r.totals.held}, minted ${r.totals.minted}, slashed ${r.totals.slashed}` : ''}`);
      for (const line of validatorRows(r.validators)) out(line);
    });

  const evidence = parent.command('evidence').description('equivocation evidence');
  evidence
    .command('submit')
    .description('submit two conflicting signed votes (hex of the canonical evidence encoding, as GET /v1/evidence lists it) for slashing')
    .argument('<file|hex>', 'a file holding the hex, or the hex itself')
    .option('--node <url>', `${BEACON_NODE_OPTION_HELP}; a node of the validator's shard, or the beacon`)
    .option('--json', 'print the raw answer')
    .action(async (arg: string, o: { node?: string; json?: boolean }) => {
      const hex = /^[0-9a-fA-F]+$/.test(arg) ? arg : (await readFile(arg, 'utf8')).trim();
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length % 2 !== 0) throw usageError('evidence must be hex');
      const r = await new QnexusClient((await resolveNode(o, { role: 'beacon' })).url).submitEvidence(hex.toLowerCase());
      if (o.json) out(JSON.stringify(r));
      else out(r.result === 'slashed' ? `slashed ${r.validator}: ${r.slashed} taken, ejected from the next committees` : `already known: ${r.validator} was slashed for this before`);
    });
  return parent;
}
