// The rate sweep as a self-contained SVG (no dependencies, no scripts): finalized tx/s and
// submit→final latency (slots, log scale) against offered tx/s.

export interface SweepPoint {
  offered: number;
  finalized: number | null;
  p50Slots: number | null;
  p95Slots: number | null;
  p99Slots: number | null;
}

export interface SweepPlot {
  title: string;
  subtitle: string;
  points: SweepPoint[];
  /** Horizontal reference lines on the throughput panel (e.g. the signature ceiling). */
  refs?: { label: string; y: number }[];
  /** Variants measured at one fixed offered rate: drawn as labelled dots on the throughput panel. */
  marks?: { label: string; offered: number; finalized: number }[];
  /** Single measurements outside the sweep (e.g. half the saturation rate): p50 as labelled dots on the latency panel. */
  latencyMarks?: { label: string; offered: number; p50Slots: number }[];
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2).replace(/\.?0+$/, ''));

/** Round `max` up to a 1/2/5 × 10^k value and return ticks from 0. */
function ticks(max: number, n = 5): number[] {
  const raw = Math.max(max, 1e-9) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = 0; v <= max + step * 0.999; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

const COLORS = { finalized: '#1f77b4', ideal: '#999', p50: '#2ca02c', p95: '#ff7f0e', p99: '#d62728', ref: '#9467bd', mark: '#8c564b' };

export function sweepSvg(p: SweepPlot): string {
  const W = 1000;
  const H = 420;
  const panelW = 400;
  const panelH = 290;
  const top = 80;
  const lefts = [70, 70 + panelW + 90];
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${esc(p.title)}</text>`);
  out.push(`<text x="${W / 2}" y="44" text-anchor="middle" fill="#555">${esc(p.subtitle)}</text>`);

  const pts = p.points.filter((q) => Number.isFinite(q.offered));
  const maxX = Math.max(1, ...pts.map((q) => q.offered), ...(p.marks ?? []).map((m) => m.offered));
  const xt = ticks(maxX);
  const xMax = xt[xt.length - 1]!;

  // ---- panel 1: throughput
  {
    const x0 = lefts[0]!;
    const maxY = Math.max(1, ...pts.map((q) => q.finalized ?? 0), ...(p.refs ?? []).map((r) => r.y), ...(p.marks ?? []).map((m) => m.finalized), maxX);
    const yt = ticks(maxY);
    const yMax = yt[yt.length - 1]!;
    const X = (v: number) => x0 + (v / xMax) * panelW;
    const Y = (v: number) => top + panelH - (v / yMax) * panelH;
    out.push(axes(x0, top, panelW, panelH, xt.map((v) => [X(v), fmt(v)]), yt.map((v) => [Y(v), fmt(v)]), 'offered tx/s', 'finalized tx/s'));
    out.push(`<line x1="${X(0)}" y1="${Y(0)}" x2="${X(Math.min(xMax, yMax))}" y2="${Y(Math.min(xMax, yMax))}" stroke="${COLORS.ideal}" stroke-dasharray="4 4"/>`);
    for (const r of p.refs ?? []) {
      out.push(`<line x1="${x0}" y1="${Y(r.y)}" x2="${x0 + panelW}" y2="${Y(r.y)}" stroke="${COLORS.ref}" stroke-dasharray="6 3"/>`);
      out.push(`<text x="${x0 + panelW - 4}" y="${Y(r.y) - 4}" text-anchor="end" fill="${COLORS.ref}">${esc(r.label)}</text>`);
    }
    const line = pts.filter((q) => q.finalized !== null).map((q) => [X(q.offered), Y(q.finalized!)] as const);
    out.push(polyline(line, COLORS.finalized));
    for (const m of p.marks ?? []) {
      out.push(`<circle cx="${X(m.offered)}" cy="${Y(m.finalized)}" r="4" fill="none" stroke="${COLORS.mark}" stroke-width="2"/>`);
      out.push(`<text x="${X(m.offered) + 6}" y="${Y(m.finalized) + 4}" fill="${COLORS.mark}" font-size="10">${esc(m.label)}</text>`);
    }
    out.push(legend(x0 + 8, top + 8, [
      ['finalized tx/s (sweep)', COLORS.finalized, false],
      ['finalized = offered', COLORS.ideal, true],
    ]));
  }

  // ---- panel 2: latency, log scale
  {
    const x0 = lefts[1]!;
    const vals = [...pts.flatMap((q) => [q.p50Slots, q.p95Slots, q.p99Slots]), ...(p.latencyMarks ?? []).map((m) => m.p50Slots)].filter((v): v is number => v !== null && v > 0);
    const lo = Math.max(0.1, Math.min(1, ...vals));
    const hi = Math.max(10, ...vals);
    const decades: number[] = [];
    for (let d = 10 ** Math.floor(Math.log10(lo)); d <= hi * 1.0001; d *= 10) decades.push(d);
    const lmin = Math.log10(decades[0]!);
    const lmax = Math.log10(Math.max(decades[decades.length - 1]!, hi));
    const X = (v: number) => x0 + (v / xMax) * panelW;
    const Y = (v: number) => top + panelH - ((Math.log10(Math.max(v, decades[0]!)) - lmin) / Math.max(1e-9, lmax - lmin)) * panelH;
    out.push(axes(x0, top, panelW, panelH, xt.map((v) => [X(v), fmt(v)]), decades.map((v) => [Y(v), fmt(v)]), 'offered tx/s', 'submit→final (slots, log)'));
    for (const [key, color] of [['p50Slots', COLORS.p50], ['p95Slots', COLORS.p95], ['p99Slots', COLORS.p99]] as const) {
      out.push(polyline(pts.filter((q) => q[key] !== null).map((q) => [X(q.offered), Y(q[key]!)] as const), color));
    }
    for (const m of p.latencyMarks ?? []) {
      out.push(`<circle cx="${X(m.offered)}" cy="${Y(m.p50Slots)}" r="4" fill="none" stroke="${COLORS.mark}" stroke-width="2"/>`);
      out.push(`<text x="${X(m.offered) + 6}" y="${Y(m.p50Slots) + 4}" fill="${COLORS.mark}" font-size="10">${esc(m.label)} p50</text>`);
    }
    out.push(`<line x1="${x0}" y1="${Y(2)}" x2="${x0 + panelW}" y2="${Y(2)}" stroke="${COLORS.ref}" stroke-dasharray="6 3"/>`);
    out.push(`<text x="${x0 + panelW - 4}" y="${Y(2) - 4}" text-anchor="end" fill="${COLORS.ref}">2 slots</text>`);
    out.push(legend(x0 + 8, top + 8, [
      ['p50', COLORS.p50, false],
      ['p95', COLORS.p95, false],
      ['p99', COLORS.p99, false],
    ]));
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function axes(x0: number, y0: number, w: number, h: number, xt: [number, string][], yt: [number, string][], xl: string, yl: string): string {
  const o: string[] = [`<rect x="${x0}" y="${y0}" width="${w}" height="${h}" fill="none" stroke="#333"/>`];
  for (const [x, s] of xt) {
    o.push(`<line x1="${x}" y1="${y0}" x2="${x}" y2="${y0 + h}" stroke="#eee"/>`);
    o.push(`<text x="${x}" y="${y0 + h + 16}" text-anchor="middle">${esc(s)}</text>`);
  }
  for (const [y, s] of yt) {
    o.push(`<line x1="${x0}" y1="${y}" x2="${x0 + w}" y2="${y}" stroke="#eee"/>`);
    o.push(`<text x="${x0 - 6}" y="${y + 4}" text-anchor="end">${esc(s)}</text>`);
  }
  o.push(`<text x="${x0 + w / 2}" y="${y0 + h + 36}" text-anchor="middle">${esc(xl)}</text>`);
  o.push(`<text transform="translate(${x0 - 48},${y0 + h / 2}) rotate(-90)" text-anchor="middle">${esc(yl)}</text>`);
  return o.join('\n');
}

function polyline(pts: (readonly [number, number])[], color: string): string {
  if (pts.length === 0) return '';
  const d = pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
  return `<polyline points="${d}" fill="none" stroke="${color}" stroke-width="2"/>\n` + pts.map(([x, y]) => `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="3" fill="${color}"/>`).join('\n');
}

function legend(x: number, y: number, items: [string, string, boolean][]): string {
  return items
    .map(([label, color, dashed], i) => {
      const yy = y + i * 16;
      return `<line x1="${x}" y1="${yy + 6}" x2="${x + 18}" y2="${yy + 6}" stroke="${color}" stroke-width="2"${dashed ? ' stroke-dasharray="4 4"' : ''}/><text x="${x + 24}" y="${yy + 10}">${esc(label)}</text>`;
    })
    .join('\n');
}
