/**
 * Summarises `.cpuprofile` files (from `node --cpu-prof` or `npm run bench -- --cpu-prof DIR`):
 * self time by function and by package, so "where does the time go" has numbers.
 *
 *   node --import tsx bench/profile-summary.ts DIR_OR_FILE... [--top 25] [--from worker/runner]
 *
 * `--from S` counts only samples from the first one whose function lives in a file matching S on
 * (skips start-up: module loading, connecting).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({
  options: { top: { type: 'string', default: '25' }, from: { type: 'string' } },
  allowPositionals: true,
});

function files(paths: string[]): string[] {
  return paths.flatMap((p) =>
    statSync(p).isDirectory()
      ? readdirSync(p)
          .filter((f) => f.endsWith('.cpuprofile'))
          .map((f) => join(p, f))
      : [p],
  );
}

/** Where a function lives: a package name, `tasuki:<file>`, `node:<module>` or `(native)`. */
function place(url: string): string {
  if (!url) return '(native/vm)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1] as string;
  if (url.startsWith('node:')) return url;
  const src = /\/(src|bench)\/(.+)$/.exec(url);
  return src ? `tasuki:${src[1]}/${src[2]}` : url;
}

for (const file of files(positionals)) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  const from = values.from;
  let counting = from === undefined;
  p.samples.forEach((id, i) => {
    counting ||= from !== undefined && (byId.get(id)?.callFrame.url ?? '').includes(from);
    if (counting) self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  });
  let total = 0;
  const fn = new Map<string, number>();
  const pkg = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    total += us;
    const f = n.callFrame;
    if (f.functionName === '(idle)' || f.functionName === '(program)') {
      fn.set(f.functionName, (fn.get(f.functionName) ?? 0) + us);
      continue;
    }
    const where = place(f.url);
    const key = `${f.functionName || '(anonymous)'}  ${where}:${f.lineNumber + 1}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    pkg.set(where, (pkg.get(where) ?? 0) + us);
  }
  const top = Number(values.top);
  const pct = (us: number): string => `${((100 * us) / total).toFixed(1).padStart(5)} %`;
  console.log(`\n${file}: ${(total / 1000).toFixed(0)} ms sampled`);
  console.log('  by place (self time):');
  for (const [k, us] of [...pkg].sort((a, b) => b[1] - a[1]).slice(0, top))
    console.log(`    ${pct(us)}  ${k}`);
  console.log('  by function (self time):');
  for (const [k, us] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top))
    console.log(`    ${pct(us)}  ${k}`);
}
