import type { Command } from 'commander';
import { QnexusClient, type BeaconStatusInfo, type StatusInfo } from '@qnexus/sdk';
import { NODE_OPTION_HELP, out, resolveNode, table } from '../util.js';


/** "12 s", "4 min 5 s", "2 h 3 min": how long the beacon has been silent. */
function duration(ms: number): string {
  const t = Math.floor(ms / 1000);
  if (t < 60) return `${t} s`;
  if (t < 3600) return `${Math.floor(t / 60)} min ${t % 60} s`;
  return `${Math.floor(t / 3600)} h ${Math.floor((t % 3600) / 60)} min`;
}

/** The node's beacon link as one line, or null for an older node that does not report it. */
export function beaconLine(s: StatusInfo): string | null {
  const b = s.beacon;
  if (!b) return null;
  const since = b.lastHeardAt === null ? 'not heard since this node started' : `unreachable since ${b.lastHeardAt} (${duration(b.silentMs ?? 0)})`;
  if (!b.reachable) {
    // What keeps going and for how long: the committees already announced cover the shards until their epoch ends.
    const tail = b.committeeKnown
      ? `shards keep finalizing through epoch ${b.committeesKnownThrough} (slot ${b.finalizesThroughSlot}), then stop until it is back`
      : `the committee of epoch ${s.epoch} is unknown: shards stopped after epoch ${b.committeesKnownThrough} (slot ${b.finalizesThroughSlot}) until it is back`;
    return `beacon ${since}${b.connected ? ' (connected, but silent)' : ''}: ${tail}`;
  }
  if (!b.committeeKnown) return `reachable, but epoch ${s.epoch}'s committee has not arrived yet (committees known through epoch ${b.committeesKnownThrough})`;
  if (b.lastSnapshotSlot === null) return `no snapshot heard yet (the node started moments ago; the beacon signs one every 4 slots); committees known through epoch ${b.committeesKnownThrough}`;
  return `reachable (last snapshot at slot ${b.lastSnapshotSlot}); committees known through epoch ${b.committeesKnownThrough}`;
}

/** Why a validator is in no committee this epoch: an unknown committee (beacon) is not the same as not being a member. */
function noCommitteeText(s: StatusInfo): string {
  const b = s.beacon;
  if (b && !b.committeeKnown) {
    const cause = b.reachable ? "the beacon's announcement has not arrived yet" : beaconLine(s)!;
    return `committee of epoch ${s.epoch} unknown here: ${cause}`;
  }
  return `not in a committee in epoch ${s.epoch} (pending activation, or unbonding): following the chain`;
}

export function formatStatus(s: StatusInfo): string[] {
  const beacon = beaconLine(s);
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
                : noCommitteeText(s),
          ],
        ]
      : []),
    ...(beacon !== null ? [['beacon', beacon]] : []),
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
    .option('--node <url>', `${NODE_OPTION_HELP}; a shard node or the beacon`)
    .option('--json', 'print the raw /v1/status answer')
    .action(async (o: { node?: string; json?: boolean }) => {
      const client = new QnexusClient((await resolveNode(o, { role: 'any' })).url);
      const s = await client.status();
      if (o.json) out(JSON.stringify(s, null, 2));
      else if ((s as { role: string }).role === 'beacon') for (const line of formatBeaconStatus(s as unknown as BeaconStatusInfo)) out(line);
      else for (const line of formatStatus(s)) out(line);
    });
}
