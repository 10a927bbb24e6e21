import { InvalidArgumentError, type Command } from 'commander';
import { isAddressString } from '@qnexus/crypto';
import { QnexusClient, requestDrip, type DripResult } from '@qnexus/sdk';
import { NODE_OPTION_HELP, note, out, parseSeconds, resolveNode } from '../util.js';

interface FaucetOpts {
  node?: string;
  wait?: boolean;
  timeout: number;
  json?: boolean;
}

function parseAddressArg(v: string): string {
  if (!isAddressString(v)) throw new InvalidArgumentError('expected qn followed by 40 lowercase hex characters.');
  return v;
}

/** What the faucet's status query says about where it lives (null when the node does not serve it). */
async function faucetShard(client: QnexusClient): Promise<{ shard: number; drip: string } | null> {
  try {
    const s = await client.moduleQuery('faucet', 'status');
    return typeof s.shard === 'number' && typeof s.drip === 'string' ? { shard: s.shard, drip: s.drip } : null;
  } catch {
    return null;
  }
}

/**
 * `qnexus faucet <address> [--node url] [--wait]`: ask the chain's faucet for coins. A throwaway key
 * of the node's shard signs the feeless request (it needs no funds); a refusal prints its code
 * (FAUCET_COOLDOWN, FAUCET_CAP, FAUCET_BLOCK_LIMIT, FAUCET_EPOCH_BUDGET, FAUCET_EMPTY) and exits 1.
 */
export function faucetCommand(parent: Command): Command {
  return parent
    .command('faucet')
    .description("ask the devnet's faucet for coins for an address (any shard; the request is feeless, signed by a throwaway key)")
    .argument('<address>', 'the address to fund (qn…)', parseAddressArg)
    .option('--node <url>', `${NODE_OPTION_HELP}; default: a node of the address's home shard`)
    .option('--wait', 'wait until the request is final')
    .option('--timeout <s>', 'with --wait: give up after this many seconds', parseSeconds, 60)
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      [
        '',
        'Limits (genesis parameters of the faucet module): one drip per address per cooldown, a lifetime',
        'cap per address, a few drips per block and a share of the faucet per epoch; see',
        '`qnexus query faucet status` and `qnexus query faucet address <address>`.',
        '',
        'Examples:',
        '  npx qnexus faucet qn…',
        '  npx qnexus faucet qn… --wait --node http://127.0.0.1:7101',
      ].join('\n'),
    )
    .action(async (address: string, o: FaucetOpts) => {
      const target = await resolveNode(o, { address });
      const client = new QnexusClient(target.url, { nodes: target.others });
      const where = await faucetShard(client);
      const r: DripResult = await requestDrip(client, address, o.wait ? { until: 'final', timeoutMs: o.timeout * 1000 } : {});
      const cross = where !== null && where.shard !== r.shard;
      const summary = {
        address,
        request: r.hash,
        node: target.url,
        shard: r.shard,
        faucetShard: where?.shard ?? null,
        drip: where?.drip ?? null,
        status: r.tx ? r.tx.status : 'submitted',
      };
      if (o.json) {
        out(JSON.stringify(summary));
        return;
      }
      out(`requested ${where ? `${where.drip} ` : ''}for ${address}`);
      out(`request  ${r.hash} (shard ${r.shard}, ${summary.status})`);
      if (cross) note(`the faucet lives on shard ${where!.shard}: the drip reaches the address through the beacon's two-phase commit in a few slots (qnexus account ${address})`);
      else if (!o.wait) note(`check with: qnexus account ${address}`);
    });
}
