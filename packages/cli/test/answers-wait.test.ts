// `--wait` that informs (progress on stderr, failover to another node of the shard, no false
// "not final"), and `qnexus status` naming an unreachable beacon as the cause of an unknown committee.
import { strict as assert } from 'node:assert';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { QnexusClient, type StatusInfo, type TxInfo } from '@qnexus/sdk';
import { ShardNodes, WaitProgress, waitTxFinal, type WaitContext } from '../src/wait.js';
import { formatStatus } from '../src/commands/status.js';

const HASH = 'ab'.repeat(32);

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function txInfo(status: TxInfo['status']): TxInfo {
  return {
    hash: HASH,
    kind: 'transfer',
    from: 'qn' + '11'.repeat(20),
    to: 'qn' + '22'.repeat(20),
    amount: '1',
    fee: '1',
    nonce: '0',
    raw: '',
    status,
    block: status === 'final' ? { height: 9, hash: 'cd'.repeat(32), index: 0 } : null,
    error: null,
  } as TxInfo;
}

/** A node that reports HASH with `status` (and nothing else of use). */
async function fakeNode(status: () => TxInfo['status']): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    if (req.url === `/v1/txs/${HASH}`) return json(res, 200, txInfo(status()));
    json(res, 404, { error: { code: 'NOT_FOUND', message: 'no route' } });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** A URL nothing listens on (a node that was SIGKILLed). */
async function deadUrl(): Promise<string> {
  const n = await fakeNode(() => 'pending');
  n.server.close();
  await new Promise((r) => n.server.once('close', r));
  return n.url;
}

function ctx(first: string, others: string[], timeoutMs: number, lines: string[]): WaitContext {
  const startedAt = Date.now();
  return {
    nodes: new ShardNodes(new QnexusClient(first, { timeoutMs: 2000 }), others),
    progress: new WaitProgress(false, (s) => lines.push(s)),
    startedAt,
    deadline: startedAt + timeoutMs,
  };
}

describe('cli: --wait failover and progress', () => {
  const servers: Server[] = [];
  after(() => {
    for (const s of servers) {
      s.closeAllConnections();
      s.close();
    }
  });

  it('a dead node: the other nodes are asked, and final on one of them is final', async () => {
    const alive = await fakeNode(() => 'final');
    servers.push(alive.server);
    const lines: string[] = [];
    const tx = await waitTxFinal(ctx(await deadUrl(), [alive.url], 10_000, lines), HASH);
    assert.equal(tx.status, 'final');
    assert.equal(tx.block?.height, 9);
  });

  it('follows the next node after a failover and reports it as a JSON line', async () => {
    let n = 0;
    // Pending for a few polls, then final: the wait must keep following this node.
    const alive = await fakeNode(() => (++n > 3 ? 'final' : 'pending'));
    servers.push(alive.server);
    const lines: string[] = [];
    const dead = await deadUrl();
    const tx = await waitTxFinal(ctx(dead, [alive.url], 20_000, lines), HASH);
    assert.equal(tx.status, 'final');
    const events = lines.map((l) => JSON.parse(l) as { event: string; node: string; failover?: string; status: string });
    assert.ok(events.every((e) => e.event === 'wait'));
    const fo = events.find((e) => e.failover !== undefined);
    assert.ok(fo, `a failover line: ${lines.join('')}`);
    assert.match(fo.failover!, new RegExp(`${dead.replace(/[.:/]/g, '\\$&')} unreachable: now asking ${alive.url.replace(/[.:/]/g, '\\$&')}`));
    assert.equal(fo.node, alive.url);
  });

  it('never says "not final" when the node is unreachable at the deadline: NODE_UNREACHABLE, checked N other nodes', async () => {
    const lines: string[] = [];
    // The node asked and the only other one are both gone: the outcome is unknown, not "not final".
    const w = ctx(await deadUrl(), [await deadUrl()], 1_200, lines);
    const e = await waitTxFinal(w, HASH).then(
      () => assert.fail('expected an error'),
      (x: unknown) => x as { code: string; message: string; exitCode: number },
    );
    assert.equal(e.code, 'NODE_UNREACHABLE');
    assert.equal(e.exitCode, 3);
    assert.match(e.message, /^node unreachable; the transaction may still be final: checked 0 other nodes \(1 more did not answer\)/);
  });

  it('progress: a TTY gets one live line rewritten in place; a pipe gets a JSON line per change', () => {
    const tty: string[] = [];
    const p = new WaitProgress(true, (s) => tty.push(s));
    p.update({ stage: 'xtransfer', status: 'prepared', node: 'http://n', height: 12, slot: 40, deadlineSlot: 55, elapsedS: 3 });
    p.done();
    assert.equal(tty[0], '\r\x1b[2Ktransfer prepared · height 12 · slot 40 / deadline 55 · node http://n · 3 s');
    assert.equal(tty[1], '\r\x1b[2K', 'the live line is cleared before the result');
    const pipe: string[] = [];
    const q = new WaitProgress(false, (s) => pipe.push(s));
    const st = { stage: 'tx' as const, status: 'pending', node: 'http://n', height: 1, slot: 2, deadlineSlot: null, elapsedS: 0.5 };
    q.update(st);
    q.update({ ...st, height: 2 });
    q.update({ ...st, status: 'included' });
    assert.equal(pipe.length, 2, 'an unchanged state is not repeated within the heartbeat');
    assert.ok(pipe.every((l) => l.endsWith('\n')));
    assert.equal((JSON.parse(pipe[1]!) as { status: string }).status, 'included');
  });
});

describe('cli: status names an unreachable beacon', () => {
  const base: StatusInfo = {
    chainId: 'c',
    shard: 0,
    genesisHash: 'ab'.repeat(32),
    version: '0.1.0',
    role: 'validator',
    validator: 'qn' + '11'.repeat(20),
    peerId: 'p',
    peers: 3,
    height: 10,
    finalizedHeight: 10,
    round: 10,
    step: 'propose',
    mempoolSize: 0,
    syncing: false,
    epoch: 4,
    committee: { inCommittee: false, assignedShard: null },
    cryptoBackend: 'noble',
  };
  const beacon = { peerId: 'b', connected: false, reachable: false, lastSnapshotSlot: 120, lastHeardAt: '2026-12-06T02:00:00.000Z', silentMs: 65_000, committeeKnown: false, committeesKnownThrough: 3, finalizesThroughSlot: 127 };

  it('an unknown committee with the beacon silent blames the beacon, not "pending activation"', () => {
    const text = formatStatus({ ...base, beacon }).join('\n');
    assert.doesNotMatch(text, /pending activation/);
    assert.match(text, /committee of epoch 4 unknown here: beacon unreachable since 2026-12-06T02:00:00.000Z \(1 min 5 s\): the committee of epoch 4 is unknown: shards stopped after epoch 3 \(slot 127\)/);
  });

  it('a known committee with the beacon silent says how long the shards keep going', () => {
    const text = formatStatus({ ...base, committee: { inCommittee: true, assignedShard: 0 }, beacon: { ...beacon, committeeKnown: true, committeesKnownThrough: 5, finalizesThroughSlot: 191 } }).join('\n');
    assert.match(text, /^beacon\s+beacon unreachable since 2026-12-06T02:00:00.000Z \(1 min 5 s\): shards keep finalizing through epoch 5 \(slot 191\), then stop until it is back$/m);
  });

  it('not a member while the committee is known: pending activation, or unbonding', () => {
    const text = formatStatus({ ...base, beacon: { ...beacon, reachable: true, committeeKnown: true, silentMs: 1000 } }).join('\n');
    assert.match(text, /not in a committee in epoch 4 \(pending activation, or unbonding\)/);
  });

  it('a node that started moments ago and has no snapshot yet is not told the beacon is unreachable', () => {
    const text = formatStatus({ ...base, beacon: { ...beacon, reachable: true, committeeKnown: true, lastSnapshotSlot: null, lastHeardAt: null, silentMs: null } }).join('\n');
    assert.match(text, /^beacon\s+no snapshot heard yet/m);
    assert.doesNotMatch(text, /unreachable/);
  });
});
