import { toHex } from '@qnexus/crypto';
import { BEACON_SHARD } from '@qnexus/types';
// The node's explorer kit (style, client library, CSP page wrapper), so both pages share one
// library, and RawBody, so the beacon's API server (startJsonApi) serves the page as is.
import { BASE_STYLE, CLIENT_LIB, SVG_ANCHOR, explorerDocument, explorerResponse, type RawBody } from '@qnexus/runtime';
import { entryStatus } from './coordinator.js';
import type { ApiContext } from './api.js';

/** How many of the newest transfers `GET /v1/network` sums into its cross-shard flows. */
export const NETWORK_FLOW_WINDOW = 500;

/** One route of cross-shard value: source → destination shard (BEACON_SHARD for stake, unstake and fees; releases come from it). */
export interface FlowJson {
  sourceShard: number;
  destinationShard: number;
  transfers: number;
  committed: number;
  aborted: number;
  preparing: number;
  /** Sum of the committed transfers' amounts (decimal). */
  amount: string;
}

/**
 * `GET /v1/network`: the network as the beacon sees it, for its explorer page: every shard's
 * newest certified head reported to it and how far behind the current slot that head is, and the
 * flows between shards over the newest NETWORK_FLOW_WINDOW transfers. Bounded work per request.
 */
export function networkJson(c: ApiContext) {
  const g = c.registry.genesis;
  const now = Date.now();
  const slot = c.service.slot;
  const heads = new Map(c.registry.heads().map((h) => [h.shard, h]));
  const shards = Array.from({ length: g.shardCount }, (_, shard) => {
    const h = heads.get(shard);
    if (!h) return { shard, height: null, slot: null, round: null, blockHash: null, lagSlots: null, lagMs: null };
    return {
      shard,
      height: h.height,
      slot: h.slot,
      round: h.round,
      blockHash: toHex(h.blockHash),
      // How old the newest head the beacon holds is: finality lag plus the report's delay.
      lagSlots: Math.max(0, slot - h.slot),
      lagMs: Math.max(0, now - (g.genesisTime + h.slot * g.slotMs)),
    };
  });
  const flows = new Map<string, FlowJson & { sum: bigint }>();
  const recent = c.coordinator.recent(NETWORK_FLOW_WINDOW);
  for (const e of recent) {
    const key = `${e.info.srcShard}>${e.info.dstShard}`;
    let f = flows.get(key);
    if (!f) flows.set(key, (f = { sourceShard: e.info.srcShard, destinationShard: e.info.dstShard, transfers: 0, committed: 0, aborted: 0, preparing: 0, amount: '0', sum: 0n }));
    f.transfers++;
    const st = entryStatus(e);
    if (st === 'committed') {
      f.committed++;
      f.sum += e.info.amount;
    } else if (st === 'aborted') f.aborted++;
    else f.preparing++;
  }
  return {
    chainId: g.chainId,
    shardCount: g.shardCount,
    beaconShard: BEACON_SHARD,
    slotMs: g.slotMs,
    genesisTime: g.genesisTime,
    now,
    slot,
    epoch: c.service.epoch,
    shards,
    xtransfers: c.coordinator.counts(),
    flowWindow: recent.length,
    flows: [...flows.values()]
      .map(({ sum, ...f }) => ({ ...f, amount: sum.toString() }))
      .sort((a, b) => a.sourceShard - b.sourceShard || a.destinationShard - b.destinationShard),
  };
}

const STYLE = BASE_STYLE;

const SCRIPT = CLIENT_LIB + String.raw`
(() => {
  const POLL_MS = 1000;
  const XFERS_EVERY = 2;
  /** Samples the charts keep (one a poll). */
  const KEEP = 120;
  let polls = 0;
  let lastOk = 0;
  let beaconShard = 0xffff;
  const samples = [];
  const shardName = (k) => (k === beaconShard ? 'beacon' : 'shard ' + k);

  function renderNetwork(r) {
    beaconShard = r.beaconShard;
    $('title-sub').textContent = r.chainId + ' \u00b7 beacon \u00b7 ' + r.shardCount + ' shards';
    $('slot').textContent = 'slot ' + r.slot + ' \u00b7 epoch ' + r.epoch;
    $('net-shards-body').replaceChildren(...r.shards.map((s) => el('tr', { 'data-testid': 'net-shard-row', 'data-shard': s.shard },
      td('shard ' + s.shard),
      num(s.height, { 'data-testid': 'net-shard-height' }),
      num(s.slot),
      num(s.round),
      td(short(s.blockHash, 16), { class: 'mono', title: s.blockHash }),
      num(s.lagSlots, { 'data-testid': 'net-shard-lag' }),
      num(s.lagMs === null ? null : fmtNum(s.lagMs / 1000, 1)),
      td('/explorer on any node of shard ' + s.shard, { class: 'dim' }),
    )));
    const x = r.xtransfers;
    $('net-counts').replaceChildren(...[['Transfers logged', x.total, 'net-total'], ['Preparing', x.undecided, 'net-undecided'], ['Committed', x.committed, 'net-committed'], ['Aborted', x.aborted, 'net-aborted'], ['Applied everywhere', x.applied, 'net-applied']]
      .flatMap(([k, v, id]) => [el('dt', null, k), el('dd', { 'data-testid': id }, String(v))]));
    $('flows-sub').textContent = 'the newest ' + r.flowWindow + ' transfers';
    $('flows-body').replaceChildren(...(r.flows.length ? r.flows.map((f) => el('tr', { 'data-testid': 'flow-row', 'data-route': f.sourceShard + '>' + f.destinationShard },
      td(shardName(f.sourceShard) + ' \u2192 ' + shardName(f.destinationShard)),
      num(f.transfers), num(f.committed), num(f.aborted), num(f.preparing), num(f.amount),
    )) : [emptyRow(6, 'no cross-shard transfers yet')]));
    samples.push({ at: r.now, shards: r.shards, total: x.total });
    if (samples.length > KEEP) samples.shift();
    drawCharts(r.shardCount);
  }

  function drawCharts(shardCount) {
    const ids = Array.from({ length: shardCount }, (_, k) => k);
    const lag = ids.map((k) => ({ name: 'shard ' + k, values: samples.map((s) => (s.shards[k].lagMs === null ? null : s.shards[k].lagMs / 1000)) }));
    // Seconds a block over the last ~10 samples: elapsed time over heights gained.
    const W = 10;
    const bt = ids.map((k) => ({ name: 'shard ' + k, values: samples.map((s, i) => {
      const p = samples[Math.max(0, i - W)];
      if (p === s || s.shards[k].height === null || p.shards[k].height === null) return null;
      const dh = s.shards[k].height - p.shards[k].height;
      return dh > 0 ? (s.at - p.at) / 1000 / dh : null;
    }) }));
    const rate = [{ name: 'transfers/s', values: samples.map((s, i) => {
      const p = samples[Math.max(0, i - 5)];
      return p === s ? null : ((s.total - p.total) * 1000) / Math.max(1, s.at - p.at);
    }) }];
    drawChart($('chart-net-lag'), lag, 's', 1);
    drawChart($('chart-net-blocktime'), bt, 's', 2);
    drawChart($('chart-net-xfers'), rate, '/s', 2);
  }

  function renderXfers(r) {
    $('net-xfers-body').replaceChildren(...(r.xtransfers.length ? r.xtransfers.map((x) => el('tr', { 'data-testid': 'net-xfer-row', 'data-id': x.id },
      td(short(x.id, 16), { class: 'mono', title: x.id }),
      td(x.kind),
      td(shardName(x.sourceShard) + ' \u2192 ' + shardName(x.destinationShard)),
      td(shortAddr(x.from), { class: 'mono', title: x.from }),
      td(shortAddr(x.to), { class: 'mono', title: x.to }),
      num(x.amount),
      el('td', null, badge(x.status)),
      el('td', null, ...x.phases.map((p) => el('span', { class: 'phase' }, p.phase + (p.decision ? ' ' + p.decision : '') + (p.height !== undefined ? ' @' + p.height : '')))),
    )) : [emptyRow(8, 'no cross-shard transfers yet')]));
  }

  async function poll() {
    const jobs = [['/v1/network', renderNetwork]];
    if (polls % XFERS_EVERY === 0) jobs.push(['/v1/xtransfers?limit=20', renderXfers]);
    polls++;
    const results = await Promise.allSettled(jobs.map(([p]) => get(p)));
    const errors = [];
    results.forEach((res, i) => {
      if (res.status === 'fulfilled') {
        try { jobs[i][1](res.value); } catch (e) { errors.push(jobs[i][0] + ': cannot render: ' + e.message); }
      } else errors.push(res.reason && res.reason.message ? res.reason.message : String(res.reason));
    });
    if (errors.length < results.length) lastOk = Date.now();
    $('error').textContent = errors.join(' \u00b7 ');
    setLive(errors.length, results.length, polls, lastOk);
    setTimeout(poll, POLL_MS);
  }

  const charts = $('net-charts');
  const boxes = [chartBox('Head lag', 'chart-net-lag', 'slot start \u2192 newest head the beacon holds'), chartBox('Block time', 'chart-net-blocktime', 'seconds a block, last ~10 s'), chartBox('Cross-shard transfers / s', 'chart-net-xfers', 'logged by the beacon')];
  boxes[0].id = 'chart-net-lag';
  boxes[1].id = 'chart-net-blocktime';
  boxes[2].id = 'chart-net-xfers';
  charts.replaceChildren(...boxes);
  poll();
})();
`;

const BODY = String.raw`<header>
<h1>Quantum Nexus network</h1>
<span class="sub" id="title-sub">connecting&hellip;</span>
<span class="sub" id="slot" data-testid="slot"></span>
<span id="live" class="live" data-testid="live">connecting</span>
</header>
<main id="view" data-testid="network-view">
<section class="wide"><h2>Shards <small>each shard's newest certified head reported to the beacon</small></h2>
<table data-testid="net-shards-table"><thead><tr><th>Shard</th><th class="num">Head</th><th class="num">Slot</th><th class="num">Round</th><th>Block</th><th class="num">Slots behind</th><th class="num">Lag (s)</th><th>Explorer</th></tr></thead><tbody id="net-shards-body"></tbody></table>
<p class="note">Each shard node serves its own explorer (blocks, transactions, accounts, search) at <span class="mono">/explorer</span> on its API port; the beacon does not know the nodes' API addresses.</p></section>
<section class="wide"><h2>Live</h2><div id="net-charts" class="charts" data-testid="net-charts"></div></section>
<section><h2>Cross-shard transfers</h2><dl id="net-counts" data-testid="net-counts"></dl></section>
<section><h2>Flows <small id="flows-sub"></small></h2>
<table data-testid="flows-table"><thead><tr><th>Route</th><th class="num">Transfers</th><th class="num">Committed</th><th class="num">Aborted</th><th class="num">Preparing</th><th class="num">Value committed</th></tr></thead><tbody id="flows-body"></tbody></table></section>
<section class="wide"><h2>Recent transfers <small>as the beacon coordinates them</small></h2>
<table data-testid="net-xfers-table"><thead><tr><th>Id</th><th>Kind</th><th>Route</th><th>From</th><th>To</th><th class="num">Amount</th><th>Status</th><th>Phases</th></tr></thead><tbody id="net-xfers-body"></tbody></table></section>
</main>
<footer><span id="updated" data-testid="updated">no answer yet</span> <span id="error" data-testid="error"></span></footer>
${SVG_ANCHOR}`;

const DOC = explorerDocument('Quantum Nexus network', STYLE, SCRIPT, BODY);
export const BEACON_EXPLORER_HTML = DOC.html;
export const BEACON_EXPLORER_CSP = DOC.csp;

/** `GET /explorer` on the beacon: the network page with its security headers. */
export function beaconExplorerPage(): RawBody {
  return explorerResponse(DOC);
}
