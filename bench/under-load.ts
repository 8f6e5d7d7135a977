/**
 * `npm run bench:load` (issue 18, point 3): `npm run bench` twice — once as it is, once with a CPU
 * hog (`yes > /dev/null`) busy on one core — and the ratios tasuki / each peer of the two runs side
 * by side, with how much of its quiet figure each system kept under load. tasuki should lose its
 * lead more slowly than the peers, not faster.
 *
 *   npm run bench:load -- [--reps 3] [--smoke] [--systems ...] [--scenarios ...] [--hogs 1]
 *                         [--out bench/results/under-load.json]
 *
 * Other flags are passed to bench/run.ts as they are. The hog is a child process stopped by PID.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { TASUKI_SYSTEMS, type Row, type SystemName } from './config.js';
import { lowerIsBetter } from './report.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const { values: argv, tokens } = parseArgs({
  options: {
    hogs: { type: 'string', default: '1' },
    out: { type: 'string', default: 'bench/results/under-load.json' },
  },
  strict: false,
  tokens: true,
});
// Everything but this script's own flags goes to bench/run.ts.
const passOn: string[] = [];
for (const t of tokens) {
  if (t.kind === 'option' && (t.name === 'hogs' || t.name === 'out')) continue;
  if (t.kind === 'option') passOn.push(t.rawName, ...(t.value !== undefined ? [t.value] : []));
  else if (t.kind === 'positional') passOn.push(t.value);
}
const hogs = Number(argv.hogs);
const dir = mkdtempSync(join(tmpdir(), 'tasuki-bench-load-'));

function bench(label: string, file: string): Row[] {
  process.stderr.write(`\n== ${label} ==\n`);
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...passOn, '--out', file], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (run.status !== 0) throw new Error(`bench/run.ts (${label}) exited with ${run.status}`);
  return JSON.parse(readFileSync(file, 'utf8')) as Row[];
}

const quiet = bench('quiet', join(dir, 'quiet.json'));
const hogProcesses = Array.from({ length: hogs }, () => spawn('yes', [], { stdio: 'ignore' }));
let loaded: Row[];
try {
  loaded = bench(`with ${hogs} CPU hog${hogs === 1 ? '' : 's'} (yes > /dev/null)`, join(dir, 'loaded.json'));
} finally {
  for (const h of hogProcesses) h.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}

const value = (rows: Row[], scenario: string, system: string): number | undefined =>
  rows.find((r) => r.scenario === scenario && r.system === system)?.median;
const scenarios = [...new Set(quiet.map((r) => r.scenario))];
const present = [...new Set(quiet.map((r) => r.system))];
const ours = present.filter((s) => TASUKI_SYSTEMS.includes(s));
const peers = present.filter((s) => !TASUKI_SYSTEMS.includes(s));
const fmt = (x: number | undefined, digits = 2): string =>
  x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits);

interface Comparison {
  scenario: string;
  tasuki: SystemName;
  peer: string;
  quietRatio: number;
  loadedRatio: number;
  /** Loaded / quiet of tasuki's own figure, and of the peer's (better-is-higher, so ≤ 1 is a loss). */
  tasukiKept: number;
  peerKept: number;
}
const comparisons: Comparison[] = [];
for (const scenario of scenarios) {
  const lower = lowerIsBetter(scenario);
  for (const [tasuki, peer] of ours.flatMap((t) => peers.map((p) => [t, p] as const))) {
    const tq = value(quiet, scenario, tasuki);
    const tl = value(loaded, scenario, tasuki);
    const pq = value(quiet, scenario, peer);
    const pl = value(loaded, scenario, peer);
    if (tq === undefined || tl === undefined || pq === undefined || pl === undefined) continue;
    // Ratios and "kept" are oriented so that higher is better for tasuki.
    const ratio = (t: number, p: number): number => (lower ? p / t : t / p);
    const kept = (q: number, l: number): number => (lower ? q / l : l / q);
    comparisons.push({
      scenario,
      tasuki,
      peer,
      quietRatio: ratio(tq, pq),
      loadedRatio: ratio(tl, pl),
      tasukiKept: kept(tq, tl),
      peerKept: kept(pq, pl),
    });
  }
}

const lines = [
  '',
  `tasuki's lead, quiet and with ${hogs} CPU hog${hogs === 1 ? '' : 's'} (higher is better for tasuki in every column;`,
  'for latency and cost rows the ratio is peer / tasuki). "kept": loaded figure / quiet figure, as a fraction.',
  '',
  '| scenario | tasuki | peer | lead quiet | lead loaded | tasuki kept | peer kept | tasuki loses its lead |',
  '| --- | --- | --- | ---: | ---: | ---: | ---: | --- |',
  ...comparisons.map(
    (c) =>
      `| ${c.scenario} | ${c.tasuki} | ${c.peer} | ${fmt(c.quietRatio)}× | ${fmt(c.loadedRatio)}× | ${fmt(c.tasukiKept)} | ${fmt(c.peerKept)} | ` +
      `${c.loadedRatio >= c.quietRatio * 0.95 ? 'no (within 5 %)' : 'faster than the peer'} |`,
  ),
];
process.stdout.write(`${lines.join('\n')}\n`);
writeFileSync(argv.out as string, `${JSON.stringify({ hogs, quiet, loaded, comparisons }, null, 2)}\n`);
process.stderr.write(`wrote ${String(argv.out)}\n`);
