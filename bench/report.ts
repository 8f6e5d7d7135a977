import { TASUKI_SYSTEMS, type Row, type SystemName } from './config.js';

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Rows from samples keyed by scenario, then system. */
export function toRows(
  samples: ReadonlyMap<string, ReadonlyMap<SystemName, readonly number[]>>,
  units: ReadonlyMap<string, string>,
): Row[] {
  const rows: Row[] = [];
  for (const [scenario, bySystem] of samples) {
    for (const [system, xs] of bySystem) {
      if (xs.length === 0) continue;
      rows.push({
        scenario,
        system,
        median: round(median(xs)),
        min: round(Math.min(...xs)),
        max: round(Math.max(...xs)),
        unit: units.get(scenario) ?? '',
      });
    }
  }
  return rows;
}

function round(x: number): number {
  if (!Number.isFinite(x)) return x;
  const a = Math.abs(x);
  const digits = a >= 1000 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
  return Number(x.toFixed(digits));
}

function fmt(x: number): string {
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  return String(round(x));
}

/** Scenarios where a lower number is better. */
export function lowerIsBetter(scenario: string): boolean {
  return /^(latency|redis-|worker-cpu)/.test(scenario);
}

/** A Markdown table: median (min–max) per system and the ratio of each tasuki row to each peer. */
export function table(rows: readonly Row[], systems: readonly SystemName[]): string {
  const scenarios = [...new Set(rows.map((r) => r.scenario))];
  const ours = systems.filter((s) => TASUKI_SYSTEMS.includes(s));
  const peers = systems.filter((s) => !TASUKI_SYSTEMS.includes(s));
  const pairs = ours.flatMap((t) => peers.map((p) => [t, p] as const));
  const head = ['scenario', 'unit', ...systems, ...pairs.map(([t, p]) => `${t} / ${p}`)];
  const lines = [
    `| ${head.join(' | ')} |`,
    `| ${head.map((_, i) => (i < 2 ? '---' : '---:')).join(' | ')} |`,
  ];
  for (const scenario of scenarios) {
    const of = (s: SystemName): Row | undefined =>
      rows.find((r) => r.scenario === scenario && r.system === s);
    const unit =
      (rows.find((r) => r.scenario === scenario)?.unit ?? '') + (lowerIsBetter(scenario) ? ' ↓' : ' ↑');
    const cells = systems.map((s) => {
      const r = of(s);
      return r ? `${fmt(r.median)} (${fmt(r.min)}–${fmt(r.max)})` : '–';
    });
    const ratios = pairs.map(([ours, peer]) => {
      const t = of(ours);
      const r = of(peer);
      return t && r && r.median !== 0 ? `${(t.median / r.median).toFixed(2)}×` : '–';
    });
    lines.push(`| ${[scenario, unit, ...cells, ...ratios].join(' | ')} |`);
  }
  return lines.join('\n');
}

/**
 * tasuki on RabbitMQ against tasuki on Redis Streams, per scenario both ran: the ratio of medians
 * (above 1 is faster for jobs/s, slower for latencies).
 */
export function brokerRatios(rows: readonly Row[]): string[] {
  const out: string[] = [];
  for (const r of rows.filter((x) => x.system === 'tasuki-rabbitmq')) {
    const base = rows.find((x) => x.scenario === r.scenario && x.system === 'tasuki');
    if (!base || base.median === 0) continue;
    const ratio = r.median / base.median;
    out.push(
      `${r.scenario}: ${fmt(r.median)} ${r.unit} vs ${fmt(base.median)} = ${ratio.toFixed(2)}× (${lowerIsBetter(r.scenario) ? 'lower' : 'higher'} is better)`,
    );
  }
  return out;
}

/**
 * Issue 18's targets, checked against the medians of tasuki with everything on (`tasuki-full`; the
 * bare row when the full one was not run) and the best peer of the same run.
 */
export function targets(rows: readonly Row[]): string[] {
  const m = (scenario: string, system: SystemName): number | undefined =>
    rows.find((r) => r.scenario === scenario && r.system === system)?.median;
  const ours: SystemName = rows.some((r) => r.system === 'tasuki-full') ? 'tasuki-full' : 'tasuki';
  const out: string[] = [];
  const ratio = (scenario: string, peer: SystemName, want: number, higher: boolean): void => {
    const t = m(scenario, ours);
    const p = m(scenario, peer);
    if (t === undefined || p === undefined) return;
    const r = t / p;
    const ok = higher ? r >= want : r <= want;
    out.push(
      `${ok ? 'met    ' : 'NOT met'}  ${scenario}: ${ours} / ${peer} = ${r.toFixed(2)}× (target ${higher ? '≥' : '≤'} ${want}×)`,
    );
  };
  const abs = (scenario: string, max: number, note = ''): void => {
    const t = m(scenario, ours);
    if (t === undefined) return;
    out.push(`${t <= max ? 'met    ' : 'NOT met'}  ${scenario}: ${ours} ${fmt(t)} (target ≤ ${max})${note}`);
  };
  ratio('drain-c50', 'bullmq', 4, true);
  ratio('drain-c50', 'bee-queue', 3, true);
  ratio('drain-c1', 'bullmq', 3, true);
  ratio('drain-c1', 'bee-queue', 3, true);
  ratio('enqueue-bulk', 'bee-queue', 3, true);
  ratio('enqueue-single', 'bee-queue', 1.5, true);
  ratio('latency-p50', 'bee-queue', 1, false);
  ratio('latency-p99', 'bee-queue', 1, false);
  abs('redis-bytes-per-task-10B', 40);
  abs('redis-bytes-per-task-10KB', 300, ' (claim check)');
  abs('redis-bytes-per-task-1MB', 300, ' (claim check)');
  abs('redis-commands-per-task', 3);
  return out;
}
