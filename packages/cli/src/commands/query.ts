import type { Command } from 'commander';
import { app } from '@qnexus/app';
import { isAddressString } from '@qnexus/crypto';
import type { StateMachine } from '@qnexus/state';
import { QnexusClient } from '@qnexus/sdk';
import { CliError } from '../errors.js';
import { NODE_OPTION_HELP, intParser, out, resolveNode, table } from '../util.js';
import { VERIFY_HELP, trustedGenesis, verifiedLine } from './account.js';

/** The queries of the app's modules, by module name. */
interface QueryInfo {
  name: string;
  summary: string;
  params: string[];
  /** Reads single keys only: `--verify` works. */
  provable: boolean;
}

function queriesByModule(sm: StateMachine): Map<string, QueryInfo[]> {
  const by = new Map<string, QueryInfo[]>();
  for (const { module, query } of sm.queries()) {
    by.set(module.name, [...(by.get(module.name) ?? []), { name: query.name, summary: query.summary, params: query.params, provable: query.proofKeys !== undefined }]);
  }
  return by;
}

function queryRow(module: string, q: QueryInfo): string[] {
  return [`${module} ${q.name}${q.params.map((p) => ` <${p}>`).join('')}`, `${q.summary}${q.provable ? ' [provable: --verify]' : ''}`];
}

function queryLines(module: string, qs: readonly QueryInfo[]): string[] {
  return table(qs.map((q) => queryRow(module, q)), '  ');
}

/**
 * Check a query's name and parameter count against the app's modules (a typo is caught here, not
 * as a node's NOT_FOUND) and give its path parameters in order.
 */
export function resolveModuleQuery(sm: StateMachine, module: string, name: string, params: readonly string[]): { params: string[]; provable: boolean } {
  const by = queriesByModule(sm);
  const qs = by.get(module);
  if (!qs) throw new CliError('QUERY_UNKNOWN', `no module ${JSON.stringify(module)} with queries; modules with queries: ${[...by.keys()].join(', ') || 'none'}`);
  const q = qs.find((x) => x.name === name);
  if (!q) throw new CliError('QUERY_UNKNOWN', `module ${module} has no query ${JSON.stringify(name)}; it has: ${qs.map((x) => x.name).join(', ')}`);
  if (params.length !== q.params.length) {
    throw new CliError('USAGE', `query ${module} ${name} takes ${q.params.length} parameter${q.params.length === 1 ? '' : 's'} (${q.params.map((p) => `<${p}>`).join(' ') || 'none'}), got ${params.length}`, 2);
  }
  return { params: [...params], provable: q.provable };
}

/**
 * `qnexus query [<module> [<name> [params…]]]`: a module query on a node, printed as JSON; fewer words list what there is.
 */
export function queryCommand(parent: Command, sm: StateMachine = app): Command {
  return parent
    .command('query')
    .description("run a module's query on a node (GET /v1/<module>/<name>/…) and print its JSON; without a name, list the module's queries")
    .argument('[module]', 'module name (without it: every module with queries)')
    .argument('[name]', 'query name (without it: the module\'s queries)')
    .argument('[params...]', 'the query\'s path parameters, in order')
    .option('--node <url>', `${NODE_OPTION_HELP}; for an address parameter, a node of its home shard`)
    .option('--module <file.js>', 'also load this app module (as the nodes do with --module); repeatable')
    .option('--verify', `${VERIFY_HELP.verify}; queries of single keys only (marked "provable" in the list)`)
    .option('--genesis <file>', VERIFY_HELP.genesis)
    .option('--height <n>', VERIFY_HELP.height, intParser(1))
    .addHelpText('after', '\nExamples:\n  qnexus query bank balances qn…\n  qnexus query bank balance qn… qfc --verify\n  qnexus query staking pending-fees\n  qnexus query --module note.mjs note inbox qn…')
    .action(async (module: string | undefined, name: string | undefined, params: string[], o: { node?: string; verify?: boolean; genesis?: string; height?: number }) => {
      const by = queriesByModule(sm);
      if (module === undefined) {
        for (const line of table([...by].flatMap(([m, qs]) => qs.map((q) => queryRow(m, q))), '  ')) out(line);
        return;
      }
      if (name === undefined) {
        const qs = by.get(module);
        if (!qs) throw new CliError('QUERY_UNKNOWN', `no module ${JSON.stringify(module)} with queries; modules with queries: ${[...by.keys()].join(', ') || 'none'}`);
        for (const line of queryLines(module, qs)) out(line);
        return;
      }
      const q = resolveModuleQuery(sm, module, name, params);
      // An address parameter picks a node of its home shard (only that shard holds the account).
      const address = q.params.find((p) => isAddressString(p));
      const target = await resolveNode(o, address !== undefined ? { address } : { role: 'any' });
      if (o.height !== undefined && !o.verify) throw new CliError('USAGE', '--height reads a proven state: add --verify', 2);
      if (!o.verify) {
        out(JSON.stringify(await new QnexusClient(target.url).moduleQuery(module, name, q.params), null, 2));
        return;
      }
      if (!q.provable) throw new CliError('USAGE', `query ${module} ${name} reads a range of keys: it has no proof (--verify works with queries of single keys)`, 2);
      const genesis = await trustedGenesis(o, target);
      const v = await new QnexusClient(target.url, { genesis }).verifiedQuery(sm, module, name, q.params, o.height !== undefined ? { height: o.height } : {});
      out(JSON.stringify(v.answer, null, 2));
      out(verifiedLine(v));
    });
}
