// Where a loaded round's time goes, from a devnet's debug logs. `npm run bench -- --log-level debug`
// keeps its devnet directories and names them at the end (the sweep's is <dir>/main); a devnet of
// `qnexus devnet --log-level debug --log-format json` works too:
//
//   node --import tsx bench/round-timings.ts <devnet dir> [--shard 0] [--min-txs 150]
//
// For every height a validator finalized with more than --min-txs transactions (the loaded part of
// a run), the times of its stages from the start of the height's deciding round's slot: proposal
// sent (proposer) or assembled (others), our prevote and precommit, and the commit; then how often
// the commit spilled past its slot's end and the gaps between consecutive deciding rounds (a gap of
// 2 is one slot without a block). Offline: reads the logs and genesis.json, touches nothing.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { logLinesSince } from '../test/adversary/measure.js';
import { pct } from './lib.js';

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: { shard: { type: 'string', default: '0' }, 'min-txs': { type: 'string', default: '150' } },
});
const dir = positionals[0];
if (!dir) {
  console.error('usage: node --import tsx bench/round-timings.ts <devnet dir> [--shard 0] [--min-txs 150]');
  process.exit(2);
}
const genesis = JSON.parse(readFileSync(join(dir, 'genesis.json'), 'utf8')) as { genesisTime: number; slotMs: number };
const minTxs = Number(args['min-txs']);
const slotMs = genesis.slotMs;
const slotStart = (round: number) => genesis.genesisTime + round * slotMs;

const fmt = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? `${pct(s, 50).toFixed(0)} / ${pct(s, 90).toFixed(0)}` : '–';
};

interface Rec { t: string; msg: string; height?: number; round?: number; txs?: number; step?: string; block?: string }
const logs = readdirSync(join(dir, 'logs')).filter((f) => f.startsWith(`s${args.shard}-validator-`) && f.endsWith('.log')).sort();
if (logs.length === 0) {
  console.error(`no s${args.shard}-validator-*.log in ${join(dir, 'logs')}`);
  process.exit(1);
}
console.log(`stage times from the deciding round's slot start, ms (p50 / p90); blocks with > ${minTxs} txs; ${slotMs} ms slots`);
for (const file of logs) {
  const at = new Map<string, Record<string, number>>(); // `${height}/${round}` → stage → ms since epoch
  const commits: { height: number; round: number; t: number }[] = [];
  for (const line of logLinesSince(join(dir, 'logs', file), 0)) {
    const r = line as unknown as Rec;
    const t = Date.parse(r.t);
    const key = `${r.height}/${r.round}`;
    const stage = r.msg === 'proposing' ? 'proposal' : r.msg === 'proposal received' ? 'proposal' : r.msg === 'voted' && r.block !== 'nil' ? r.step! : null;
    if (stage) at.set(key, { ...at.get(key), [stage]: t });
    if (r.msg === 'finalized block' && (r.txs ?? 0) > minTxs) commits.push({ height: r.height!, round: r.round!, t });
  }
  const stages: Record<string, number[]> = { proposal: [], prevote: [], precommit: [], commit: [] };
  let spilled = 0;
  for (const c of commits) {
    const s = at.get(`${c.height}/${c.round}`) ?? {};
    for (const k of ['proposal', 'prevote', 'precommit'] as const) if (s[k] !== undefined) stages[k]!.push(s[k]! - slotStart(c.round));
    stages.commit!.push(c.t - slotStart(c.round));
    if (c.t > slotStart(c.round + 1)) spilled++;
  }
  const gaps = new Map<number, number>();
  for (let i = 1; i < commits.length; i++) {
    if (commits[i]!.height !== commits[i - 1]!.height + 1) continue;
    const g = commits[i]!.round - commits[i - 1]!.round;
    gaps.set(g, (gaps.get(g) ?? 0) + 1);
  }
  console.log(
    `${file.replace(/\.log$/, '')}: ${commits.length} heights; ` +
      Object.entries(stages).map(([k, v]) => `${k} ${fmt(v)}`).join(', ') +
      `; commits past their slot ${spilled}; round gaps ${[...gaps].sort(([a], [b]) => a - b).map(([g, n]) => `${g}:${n}`).join(' ')}`,
  );
}
