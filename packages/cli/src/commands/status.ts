import type { Command } from 'commander';
import { QnexusClient, type BeaconStatusInfo, type StatusInfo } from '@qnexus/sdk';
import { out, table } from '../util.js';

export const DEFAULT_NODE = 'http://127.0.0.1:8545';

/** `--node` default: $QNEXUS_NODE or http://127.0.0.1:8545. */
export function defaultNodeUrl(): string {
  return process.env.QNEXUS_NODE || DEFAULT_NODE;
}

export function nodeOptionHelp(): string {
  return `node HTTP API URL (default: $QNEXUS_NODE or ${DEFAULT_NODE})`;
}

export function formatStatus(s: StatusInfo): string[] {
  return table([
    ['chain', `${s.chainId} (shard ${s.shard})`],
    ['genesis', s.genesisHash],
    ['version', s.version],
    ['role', s.role === 'validator' ? `validator ${s.validator ?? ''}`.trimEnd() : 'full node'],
    ...(s.committee
      ? [
          [
            'committee',
            s.committee.inCommittee
              ? `member of shard ${s.shard}'s committee in epoch ${s.epoch}`
              : s.committee.assignedShard !== null
                ? `assigned to shard ${s.committee.assignedShard} in epoch ${s.epoch}: restart this node with --shard ${s.committee.assignedShard}`
                : `not in a committee in epoch ${s.epoch} (pending activation, or unbonding): following the chain`,
          ],
        ]
      : []),
    ['peer id', s.peerId],
    ['peers', String(s.peers)],
    ['height', `${s.height} (finalized ${s.finalizedHeight})`],
    ['round/step', `${s.round} / ${s.step}`],
    ['mempool', `${s.mempoolSize} tx${s.mempoolSize === 1 ? '' : 's'}`],
    ['syncing', s.syncing ? 'yes' : 'no'],
    // Older nodes do not report it.
    ...(s.cryptoBackend ? [['crypto', `ML-DSA by ${s.cryptoBackend}`]] : []),
  ]);
}

export function formatBeaconStatus(s: BeaconStatusInfo): string[] {
  const x = s.xtransfers;
  return table([
    ['chain', `${s.chainId} (beacon)`],
    ['genesis', s.genesisHash],
    ['version', s.version],
    ['peer id', s.peerId],
    ['peers', String(s.peers)],
    ['slot', `${s.slot} (epoch ${s.epoch})`],
    ['xtransfers', x ? `${x.total} (${x.undecided} undecided, ${x.committed} committed, ${x.aborted} aborted; ${x.applied} applied on both shards)` : '-'],
    ...(s.cryptoBackend ? [['crypto', `ML-DSA by ${s.cryptoBackend}`]] : []),
  ]);
}

export function statusCommand(parent: Command): Command {
  return parent
    .command('status')
    .description("print a node's view of the chain: height, finality, peers, consensus round and mempool (or the beacon's: slot, epoch, cross-shard transfers)")
    .option('--node <url>', `${nodeOptionHelp()}; a shard node or the beacon`)
    .option('--json', 'print the raw /v1/status answer')
    .action(async (o: { node?: string; json?: boolean }) => {
      const client = new QnexusClient(o.node ?? defaultNodeUrl());
      const s = await client.status();
      if (o.json) out(JSON.stringify(s, null, 2));
      else if ((s as { role: string }).role === 'beacon') for (const line of formatBeaconStatus(s as unknown as BeaconStatusInfo)) out(line);
      else for (const line of formatStatus(s)) out(line);
    });
}
