import { createHash } from 'node:crypto';
import { RawBody } from './http.js';

/**
 * What the node's explorer (explorer.ts) and the beacon's network page (beacon explorer.ts)
 * share: the base style, a small client library (DOM building with textContent only, JSON
 * fetches, hash links, SVG line charts) and the CSP-strict page wrapper. Each page is one
 * self-contained HTML document: its inline style and script are allowed by hash, it may fetch
 * from its own origin only, and nothing is loaded from anywhere else.
 */

export const BASE_STYLE = String.raw`
:root { color-scheme: dark; --bg: #0f1419; --panel: #171e26; --line: #263240; --fg: #d8dee6; --dim: #8a97a6; --ok: #3fb950; --warn: #d29922; --bad: #f85149; --acc: #58a6ff; }
* { box-sizing: border-box; }
html, body { max-width: 100%; }
body { margin: 0; background: var(--bg); color: var(--fg); font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; }
a { color: var(--acc); text-decoration: none; }
a:hover { text-decoration: underline; }
header { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 16px; padding: 12px 20px; border-bottom: 1px solid var(--line); background: var(--panel); }
header h1 { font-size: 18px; margin: 0; font-weight: 600; }
header h1 a { color: var(--fg); }
header .sub { color: var(--dim); min-width: 0; overflow-wrap: anywhere; }
form.search { display: flex; gap: 6px; flex: 1 1 260px; min-width: 0; max-width: 640px; }
form.search input { flex: 1 1 auto; min-width: 0; background: var(--bg); color: var(--fg); border: 1px solid var(--line); border-radius: 4px; padding: 5px 8px; font: inherit; }
form.search button, .btn { background: #1f2a36; color: var(--fg); border: 1px solid var(--line); border-radius: 4px; padding: 5px 10px; font: inherit; cursor: pointer; }
.btn[disabled] { color: var(--dim); cursor: not-allowed; }
.live { margin-left: auto; display: inline-flex; align-items: center; gap: 6px; color: var(--dim); }
.live::before { content: ""; width: 9px; height: 9px; border-radius: 50%; background: var(--dim); }
.live.ok::before { background: var(--ok); }
.live.stale::before { background: var(--warn); }
.live.down::before { background: var(--bad); }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(520px, 100%), 1fr)); gap: 16px; padding: 16px 20px; }
section { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; min-width: 0; overflow-x: auto; }
section.wide { grid-column: 1 / -1; }
h2 { font-size: 15px; margin: 0 0 8px; font-weight: 600; overflow-wrap: anywhere; }
h2 small { color: var(--dim); font-weight: 400; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { color: var(--dim); font-weight: 500; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.dim { color: var(--dim); }
.empty { color: var(--dim); font-style: italic; }
dl { display: grid; grid-template-columns: max-content minmax(0, 1fr) max-content minmax(0, 1fr); gap: 4px 14px; margin: 0; }
dl.single { grid-template-columns: max-content minmax(0, 1fr); }
dt { color: var(--dim); }
dd { margin: 0; overflow-wrap: anywhere; min-width: 0; }
.badge { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px; border: 1px solid var(--line); }
.b-committed, .b-active, .b-local, .b-yes, .b-final, .b-commit, .b-in { color: var(--ok); border-color: var(--ok); }
.b-escrowed, .b-prepared, .b-pending, .b-included, .b-exiting, .b-beacon-snapshot, .b-undecided, .b-self { color: var(--warn); border-color: var(--warn); }
.b-aborted, .b-refused, .b-slashed, .b-unknown, .b-rejected, .b-abort, .b-out { color: var(--bad); border-color: var(--bad); }
.phase { display: inline-block; margin-right: 4px; padding: 0 6px; border-radius: 4px; background: #1f2a36; font-size: 12px; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(260px, 100%), 1fr)); gap: 12px; }
.chart { min-width: 0; }
.chart h3 { font-size: 13px; margin: 0 0 4px; font-weight: 500; }
.chart h3 .val { color: var(--acc); margin-left: 6px; }
.chart svg { display: block; width: 100%; height: 90px; background: var(--bg); border: 1px solid var(--line); border-radius: 4px; }
.chart .axis { display: flex; justify-content: space-between; color: var(--dim); font-size: 11px; }
.chart polyline { fill: none; stroke-width: 1.5; vector-effect: non-scaling-stroke; }
.chart .s0 { stroke: var(--acc); } .chart .s1 { stroke: var(--ok); } .chart .s2 { stroke: var(--warn); } .chart .s3 { stroke: #d2a8ff; }
.legend span { margin-right: 10px; font-size: 11px; }
.legend .k0 { color: var(--acc); } .legend .k1 { color: var(--ok); } .legend .k2 { color: var(--warn); } .legend .k3 { color: #d2a8ff; }
.note { color: var(--dim); font-size: 12px; margin: 6px 0 0; overflow-wrap: anywhere; }
ul.matches { margin: 0; padding-left: 18px; }
svg.ns { position: absolute; width: 0; height: 0; overflow: hidden; }
footer { padding: 0 20px 16px; color: var(--dim); overflow-wrap: anywhere; }
#error { color: var(--bad); }
@media (max-width: 640px) {
  header { padding: 10px 12px; }
  main { padding: 10px 8px; gap: 10px; }
  section { padding: 10px; }
  dl { grid-template-columns: max-content minmax(0, 1fr); }
  .live { margin-left: 0; }
}
`;

/**
 * The client library every page's script starts with. Nothing the APIs return is parsed as
 * markup: `el` builds nodes and sets text; links are built from hash routes, never from
 * returned URLs.
 */
export const CLIENT_LIB = String.raw`
'use strict';
const $ = (id) => document.getElementById(id);
// The SVG namespace, read from the empty <svg> every page carries (SVG_ANCHOR): the page names no URL at all.
const SVGNS = $('svg-ns').namespaceURI;
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
const emptyRow = (cols, text) => el('tr', null, el('td', { colspan: cols, class: 'empty' }, text));
/** A link to one of this page's views ('#/<kind>/<id>'); ids are encoded, so nothing in them can change the route. */
const link = (kind, id, text, attrs) => el('a', Object.assign({ href: '#/' + kind + '/' + encodeURIComponent(String(id)) }, attrs || {}), text === undefined ? String(id) : text);
const fmtNum = (v, d) => (v === null || v === undefined || !isFinite(v) ? '\u2014' : Number(v).toFixed(d === undefined ? 1 : d));

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}
async function get(path) {
  const r = await fetch(path, { cache: 'no-store', headers: { accept: 'application/json' } });
  let body = null;
  try {
    body = await r.json();
  } catch (e) {
    throw new ApiError(r.status, 'HTTP_' + r.status, path + ': HTTP ' + r.status + ' (not JSON)');
  }
  if (!r.ok) {
    const code = (body && body.error && body.error.code) || 'HTTP_' + r.status;
    throw new ApiError(r.status, code, ((body && body.error && body.error.message) || path + ': ' + code));
  }
  return body;
}

/**
 * A line chart (hand-drawn SVG, no library): one polyline per series of numbers, scaled to
 * the largest value; the container gets data-points (the longest series' length) for tests.
 */
function drawChart(box, series, unit, digits) {
  const W = 300, H = 90, PAD = 4;
  const all = series.flatMap((s) => s.values).filter((v) => v !== null && isFinite(v));
  const max = all.length ? Math.max(...all) * 1.1 || 1 : 1;
  const svg = document.createElementNS(SVGNS, 'svg');
  svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('role', 'img');
  let longest = 0;
  series.forEach((s, k) => {
    const pts = [];
    const n = s.values.length;
    longest = Math.max(longest, n);
    s.values.forEach((v, i) => {
      if (v === null || !isFinite(v)) return;
      const x = n <= 1 ? W / 2 : (i / (n - 1)) * W;
      const y = H - PAD - (v / max) * (H - 2 * PAD);
      pts.push(x.toFixed(1) + ',' + y.toFixed(1));
    });
    const pl = document.createElementNS(SVGNS, 'polyline');
    pl.setAttribute('class', 's' + (k % 4));
    pl.setAttribute('points', pts.join(' '));
    svg.append(pl);
  });
  const last = series.length === 1 ? series[0].values.filter((v) => v !== null && isFinite(v)).slice(-1)[0] : undefined;
  box.querySelector('.val').textContent = last === undefined ? '' : fmtNum(last, digits) + ' ' + unit;
  box.querySelector('.svgwrap').replaceChildren(svg);
  box.querySelector('.max').textContent = 'max ' + fmtNum(all.length ? Math.max(...all) : null, digits) + ' ' + unit;
  const legend = box.querySelector('.legend');
  if (legend) legend.replaceChildren(...series.map((s, k) => el('span', { class: 'k' + (k % 4) }, s.name)));
  box.setAttribute('data-points', String(longest));
}
/** The empty frame drawChart fills. */
function chartBox(title, testid, span) {
  return el('div', { class: 'chart', 'data-testid': testid, 'data-points': '0' },
    el('h3', null, title, el('span', { class: 'val' })),
    el('div', { class: 'svgwrap' }),
    el('div', { class: 'axis' }, el('span', null, span), el('span', { class: 'max' })),
    el('div', { class: 'legend' }));
}
function setLive(errors, total, polls, lastOk) {
  const live = $('live');
  live.className = 'live ' + (errors === 0 ? 'ok' : errors < total ? 'stale' : 'down');
  live.textContent = errors === 0 ? 'live' : errors < total ? 'partial' : 'unreachable';
  $('updated').textContent = lastOk ? 'updated ' + new Date(lastOk).toLocaleTimeString() + ' \u00b7 poll #' + polls : 'no answer yet';
  document.body.setAttribute('data-polls', String(polls));
}
`;

/** An empty inline <svg> whose namespace the client library reads (every page body includes it). */
export const SVG_ANCHOR = '<svg id="svg-ns" class="ns" width="0" height="0" aria-hidden="true" focusable="false"></svg>';

const hash = (s: string) => `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`;

/** One self-contained page: its HTML and the CSP that allows exactly its inline style and script. */
export interface ExplorerDocument {
  html: string;
  csp: string;
}

export function explorerDocument(title: string, style: string, script: string, body: string): ExplorerDocument {
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="icon" href="data:,">
<style>${style}</style>
</head>
<body>
${body}
<script>${script}</script>
</body>
</html>
`;
  const csp = [
    "default-src 'none'",
    `script-src ${hash(script)}`,
    `style-src ${hash(style)}`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return { html, csp };
}

/** The page as a route's answer, with its security headers. */
export function explorerResponse(doc: ExplorerDocument): RawBody {
  return new RawBody('text/html; charset=utf-8', doc.html, {
    'content-security-policy': doc.csp,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-cache',
  });
}
