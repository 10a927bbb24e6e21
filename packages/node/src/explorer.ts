import { createHash } from 'node:crypto';
import { RawBody } from './http.js';

/**
 * The live explorer every node serves at `GET /explorer`: one self-contained page (inline CSS
 * and vanilla JS, nothing loaded from elsewhere) that polls this node's JSON API once a second
 * and renders what it gets with DOM nodes and textContent only (no innerHTML: nothing the API
 * returns is ever parsed as markup). The Content-Security-Policy allows exactly the inline
 * style and script below (by hash) and same-origin fetches.
 *
 * Stable `data-testid` attributes mark what the e2e test (test/explorer.e2e.test.ts) reads.
 */

const STYLE = String.raw`
:root { color-scheme: dark; --bg: #0f1419; --panel: #171e26; --line: #263240; --fg: #d8dee6; --dim: #8a97a6; --ok: #3fb950; --warn: #d29922; --bad: #f85149; --acc: #58a6ff; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; }
header { display: flex; align-items: center; gap: 16px; padding: 12px 20px; border-bottom: 1px solid var(--line); background: var(--panel); }
header h1 { font-size: 18px; margin: 0; font-weight: 600; }
header .sub { color: var(--dim); }
.live { margin-left: auto; display: inline-flex; align-items: center; gap: 6px; color: var(--dim); }
.live::before { content: ""; width: 9px; height: 9px; border-radius: 50%; background: var(--dim); }
.live.ok::before { background: var(--ok); }
.live.stale::before { background: var(--warn); }
.live.down::before { background: var(--bad); }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 16px; padding: 16px 20px; }
section { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; min-width: 0; overflow-x: auto; }
section.wide { grid-column: 1 / -1; }
h2 { font-size: 15px; margin: 0 0 8px; font-weight: 600; }
h2 small { color: var(--dim); font-weight: 400; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { color: var(--dim); font-weight: 500; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.dim { color: var(--dim); }
.empty { color: var(--dim); font-style: italic; }
dl { display: grid; grid-template-columns: max-content 1fr max-content 1fr; gap: 4px 14px; margin: 0; }
dt { color: var(--dim); }
dd { margin: 0; overflow-wrap: anywhere; }
.badge { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px; border: 1px solid var(--line); }
.b-committed, .b-active, .b-local, .b-yes { color: var(--ok); border-color: var(--ok); }
.b-escrowed, .b-prepared, .b-pending, .b-exiting, .b-beacon-snapshot { color: var(--warn); border-color: var(--warn); }
.b-aborted, .b-refused, .b-slashed, .b-unknown { color: var(--bad); border-color: var(--bad); }
.phase { display: inline-block; margin-right: 4px; padding: 0 6px; border-radius: 4px; background: #1f2a36; font-size: 12px; }
.committees { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 10px; }
.committee { border: 1px solid var(--line); border-radius: 4px; padding: 6px 10px; }
.committee h3 { font-size: 13px; margin: 0 0 4px; }
.committee ul { margin: 0; padding-left: 18px; }
.committee li { font-size: 12px; }
tr.mine td:first-child::after { content: " \2190 this node"; color: var(--acc); font-size: 12px; }
footer { padding: 0 20px 16px; color: var(--dim); }
#error { color: var(--bad); }
`;

const SCRIPT = String.raw`
'use strict';
(() => {
  const POLL_MS = 1000;
  // Validators and committees change at epoch boundaries: fetched every few polls.
  const SLOW_EVERY = 5;
  const BEACON_SHARD = 0xffff;
  let polls = 0;
  let lastOk = 0;
  let localShard = null;

  const $ = (id) => document.getElementById(id);
  /** An element with attributes and children; strings become text nodes (never markup). */
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = String(v);
      else e.setAttribute(k, String(v));
    }
    for (const c of kids) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
    return e;
  }
  const td = (v, attrs) => el('td', attrs, v === null || v === undefined ? '\u2014' : v);
  const num = (v, attrs) => td(v, Object.assign({ class: 'num' }, attrs || {}));
  const short = (h, n) => (typeof h === 'string' && h.length > (n || 12) + 1 ? h.slice(0, n || 12) + '\u2026' : h);
  const shortAddr = (a) => (typeof a === 'string' && a.length > 16 ? a.slice(0, 10) + '\u2026' + a.slice(-4) : a);
  const badge = (text, testid) => el('span', { class: 'badge b-' + String(text).replace(/[^a-z-]/g, ''), 'data-testid': testid }, text);
  const shardName = (k) => (k === BEACON_SHARD ? 'beacon' : String(k));
  const emptyRow = (cols, text) => el('tr', null, el('td', { colspan: cols, class: 'empty' }, text));

  async function get(path) {
    const r = await fetch(path, { cache: 'no-store', headers: { accept: 'application/json' } });
    let body = null;
    try {
      body = await r.json();
    } catch (e) {
      throw new Error(path + ': HTTP ' + r.status + ' (not JSON)');
    }
    if (!r.ok) throw new Error(path + ': ' + ((body && body.error && body.error.code) || 'HTTP ' + r.status) + ' ' + ((body && body.error && body.error.message) || ''));
    return body;
  }

  function renderStatus(s) {
    localShard = s.shard;
    $('title-sub').textContent = s.chainId + ' \u00b7 shard ' + s.shard + ' \u00b7 ' + s.role;
    const rows = [
      ['Chain', s.chainId, 'chain'],
      ['Shard', s.shard, 'shard'],
      ['Role', s.role + (s.validator ? ' ' + s.validator : ''), 'role'],
      ['Peers', s.peers, 'peers'],
      ['Head height', s.height, 'height'],
      ['Finalized height', s.finalizedHeight, 'finalized'],
      ['Epoch', s.epoch, 'epoch'],
      ['Round / step', s.round + ' / ' + s.step, 'round'],
      ['Mempool', s.mempoolSize, 'mempool'],
      ['Syncing', s.syncing ? 'yes' : 'no', 'syncing'],
      ['Event-loop lag', s.eventLoopLagMs + ' ms' + (s.overloaded ? ' (overloaded)' : ''), 'lag'],
      ['Peer id', s.peerId, 'peer-id'],
    ];
    $('node-info').replaceChildren(...rows.flatMap(([k, v, id]) => [el('dt', null, k), el('dd', { 'data-testid': 'node-' + id, class: id === 'peer-id' || id === 'chain' ? 'mono' : null }, v)]));
  }

  function renderShards(r) {
    $('slot').textContent = 'slot ' + r.slot + ' \u00b7 epoch ' + r.epoch;
    $('shards-body').replaceChildren(
      ...r.shards.map((s) =>
        el(
          'tr',
          { 'data-testid': 'shard-row', 'data-shard': s.shard, class: s.source === 'local' ? 'mine' : null },
          td(s.shard),
          num(s.height, { 'data-testid': 'shard-height' }),
          num(s.finalizedHeight, { 'data-testid': 'shard-finalized' }),
          num(s.slot),
          num(s.round),
          td(short(s.blockHash, 12), { class: 'mono', title: s.blockHash }),
          num(s.slot === null ? null : Math.max(0, r.slot - s.slot)),
          el('td', null, badge(s.source, 'shard-source')),
        ),
      ),
    );
  }

  function renderBlocks(r) {
    const rows = r.blocks.map((b) =>
      el(
        'tr',
        { 'data-testid': 'block-row', 'data-height': b.height },
        num(b.height),
        td(short(b.hash, 16), { class: 'mono', title: b.hash }),
        num(b.slot),
        td(b.proposer ? shortAddr(b.proposer) : 'genesis', { class: 'mono', title: b.proposer }),
        num(b.txCount),
        el('td', null, badge(b.finalized ? 'yes' : 'no', 'block-finalized')),
        num(b.round),
        num(b.signers),
      ),
    );
    $('blocks-body').replaceChildren(...(rows.length ? rows : [emptyRow(8, 'no blocks yet')]));
  }

  function renderXfers(r) {
    const rows = r.xtransfers.map((x) =>
      el(
        'tr',
        { 'data-testid': 'xfer-row', 'data-id': x.id },
        td(short(x.id, 16), { class: 'mono', title: x.id, 'data-testid': 'xfer-id' }),
        td(x.kind),
        td(shardName(x.sourceShard) + ' \u2192 ' + shardName(x.destinationShard)),
        td(shortAddr(x.from), { class: 'mono', title: x.from }),
        td(shortAddr(x.to), { class: 'mono', title: x.to }),
        num(x.amount),
        el('td', null, badge(x.status, 'xfer-status')),
        el(
          'td',
          { 'data-testid': 'xfer-phases' },
          ...x.phases.map((p) => el('span', { class: 'phase' }, p.phase + (p.decision ? ' ' + p.decision : '') + (p.height !== undefined ? ' @' + p.height : ''))),
        ),
      ),
    );
    $('xfers-body').replaceChildren(...(rows.length ? rows : [emptyRow(8, 'no cross-shard transfers recorded on this shard yet')]));
  }

  function renderValidators(r) {
    const inCommittee = new Set((r.committee || []).map((m) => m.address));
    $('validators-source').textContent = '(' + r.source + ', epoch ' + r.epoch + ')';
    const rows = r.validators.map((v) => {
      const rate = v.lifetime && v.lifetime.rate !== null ? Math.round(v.lifetime.rate * 100) + '%' : null;
      return el(
        'tr',
        { 'data-testid': 'validator-row', 'data-address': v.address },
        td(v.address, { class: 'mono' }),
        el('td', null, badge(v.status)),
        num(v.stake),
        num(v.shard),
        el('td', null, inCommittee.has(v.address) ? badge('yes') : ''),
        num(rate),
        num(v.rewards),
      );
    });
    $('validators-body').replaceChildren(...(rows.length ? rows : [emptyRow(7, 'no validators known yet')]));
  }

  function renderCommittees(c) {
    $('committee-epoch').textContent = '(epoch ' + c.epoch + ', ' + c.source + ')';
    $('committees').replaceChildren(
      ...c.shards.map((s) =>
        el(
          'div',
          { class: 'committee', 'data-testid': 'committee-shard', 'data-shard': s.shard },
          el('h3', null, 'Shard ' + s.shard + (s.shard === localShard ? ' (this node)' : '') + ' \u00b7 ' + s.members.length + ' members \u00b7 stake ' + s.totalStake),
          el('ul', null, ...s.members.map((m) => el('li', { class: 'mono', 'data-testid': 'committee-member', 'data-address': m.address }, m.address + ' \u00b7 ' + m.stake))),
        ),
      ),
    );
  }

  const fast = [
    ['/v1/status', renderStatus],
    ['/v1/shards', renderShards],
    ['/v1/blocks?limit=15', renderBlocks],
    ['/v1/xtransfers?limit=20', renderXfers],
  ];
  const slow = [
    ['/v1/validators', renderValidators],
    ['/v1/committee', renderCommittees],
  ];

  async function poll() {
    const jobs = polls % SLOW_EVERY === 0 ? fast.concat(slow) : fast;
    polls++;
    const results = await Promise.allSettled(jobs.map(([path]) => get(path)));
    const errors = [];
    results.forEach((res, i) => {
      if (res.status === 'fulfilled') {
        try {
          jobs[i][1](res.value);
        } catch (e) {
          errors.push(jobs[i][0] + ': cannot render: ' + e.message);
        }
      } else {
        errors.push(res.reason && res.reason.message ? res.reason.message : String(res.reason));
      }
    });
    if (errors.length < results.length) lastOk = Date.now();
    $('error').textContent = errors.join(' \u00b7 ');
    const live = $('live');
    live.className = 'live ' + (errors.length === 0 ? 'ok' : errors.length < results.length ? 'stale' : 'down');
    live.textContent = errors.length === 0 ? 'live' : errors.length < results.length ? 'partial' : 'unreachable';
    $('updated').textContent = lastOk ? 'updated ' + new Date(lastOk).toLocaleTimeString() + ' \u00b7 poll #' + polls : 'no answer yet';
    document.body.setAttribute('data-polls', String(polls));
    setTimeout(poll, POLL_MS);
  }

  poll();
})();
`;

const BODY = String.raw`<header>
<h1>Quantum Nexus explorer</h1>
<span class="sub" id="title-sub">connecting&hellip;</span>
<span class="sub" id="slot" data-testid="slot"></span>
<span id="live" class="live" data-testid="live">connecting</span>
</header>
<main>
<section aria-labelledby="h-node"><h2 id="h-node">This node</h2><dl id="node-info" data-testid="node-info"></dl></section>
<section aria-labelledby="h-shards"><h2 id="h-shards">Shards <small>this one from its chain, the others from the beacon's signed snapshot</small></h2>
<table data-testid="shards-table"><thead><tr><th>Shard</th><th class="num">Height</th><th class="num">Finalized</th><th class="num">Slot</th><th class="num">Round</th><th>Block</th><th class="num">Slots behind</th><th>Source</th></tr></thead><tbody id="shards-body"></tbody></table></section>
<section class="wide" aria-labelledby="h-xfers"><h2 id="h-xfers">Recent cross-shard transfers <small>this shard's records, newest first</small></h2>
<table data-testid="xfers-table"><thead><tr><th>Id</th><th>Kind</th><th>Route</th><th>From</th><th>To</th><th class="num">Amount</th><th>Status</th><th>Phases</th></tr></thead><tbody id="xfers-body"></tbody></table></section>
<section aria-labelledby="h-blocks"><h2 id="h-blocks">Recent blocks <small>this shard, newest first</small></h2>
<table data-testid="blocks-table"><thead><tr><th class="num">Height</th><th>Hash</th><th class="num">Slot</th><th>Proposer</th><th class="num">Txs</th><th>Final</th><th class="num">Cert. round</th><th class="num">Signers</th></tr></thead><tbody id="blocks-body"></tbody></table></section>
<section aria-labelledby="h-committees"><h2 id="h-committees">Committees <small id="committee-epoch"></small></h2><div id="committees" class="committees" data-testid="committees"></div></section>
<section class="wide" aria-labelledby="h-validators"><h2 id="h-validators">Validators <small id="validators-source"></small></h2>
<table data-testid="validators-table"><thead><tr><th>Address</th><th>Status</th><th class="num">Stake</th><th class="num">Shard</th><th>In this shard's committee</th><th class="num">Participation</th><th class="num">Rewards</th></tr></thead><tbody id="validators-body"></tbody></table></section>
</main>
<footer><span id="updated" data-testid="updated">no answer yet</span> <span id="error" data-testid="error"></span></footer>`;

const hash = (s: string) => `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`;

/** The page's HTML (served as is). */
export const EXPLORER_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Quantum Nexus explorer</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
${BODY}
<script>${SCRIPT}</script>
</body>
</html>
`;

/** Only this page's own inline style and script run; it may fetch from its origin and nothing else. */
export const EXPLORER_CSP = [
  "default-src 'none'",
  `script-src ${hash(SCRIPT)}`,
  `style-src ${hash(STYLE)}`,
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** `GET /explorer`: the page with its security headers. */
export function explorerPage(): RawBody {
  return new RawBody('text/html; charset=utf-8', EXPLORER_HTML, {
    'content-security-policy': EXPLORER_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-cache',
  });
}
