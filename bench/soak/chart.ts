/**
 * The soak run's chart: three panels over time (memory, latency, throughput and backlog) as one
 * SVG file, with the worker stops and kills marked. Written by hand — a few polylines — rather than
 * with a charting library, so the bench needs no browser or canvas to draw it.
 */
import { writeFileSync } from 'node:fs';

/** One sample of the soak, every `--sample`. */
export interface SoakSample {
  /** Seconds since the start. */
  t: number;
  redisMB: number;
  /** Mean RSS of the worker processes. */
  workerMB: number;
  /** Latency (enqueue to completion) percentiles of the tasks completed in this sample, ms. */
  p50: number;
  p99: number;
  enqueuedPerSec: number;
  completedPerSec: number;
  /** Waiting, active and delayed tasks. */
  backlog: number;
}

/** A worker stopped (SIGTERM) or killed (SIGKILL) at `t` seconds. */
export interface SoakMark {
  t: number;
  label: 'stop' | 'kill';
}

/** The `q` quantile (0..1) of `xs` (nearest rank); 0 for none. */
export function percentile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return 0;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

interface Series {
  name: string;
  color: string;
  values: number[];
}

const WIDTH = 900;
const PANEL = 170;
const LEFT = 60;
const RIGHT = 20;
const TOP = 40;
const GAP = 40;

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** One panel: series over time, a y axis from 0 to the largest value, a legend. */
function panel(
  index: number,
  title: string,
  unit: string,
  times: number[],
  series: Series[],
  span: number,
  /** The y axis ends here (values above are drawn at the top), else at the largest value. */
  cap?: number,
): string {
  const y0 = TOP + index * (PANEL + GAP);
  const max = (cap ?? Math.max(1e-9, ...series.flatMap((s) => s.values))) * 1.1;
  const x = (t: number): number => LEFT + (t / span) * (WIDTH - LEFT - RIGHT);
  const y = (v: number): number => y0 + PANEL - (Math.min(v, max) / max) * PANEL;
  const out = [
    `<text x="${LEFT}" y="${y0 - 8}" font-weight="bold">${escape(title)}</text>`,
    `<rect x="${LEFT}" y="${y0}" width="${WIDTH - LEFT - RIGHT}" height="${PANEL}" fill="none" stroke="#999"/>`,
  ];
  for (const frac of [0, 0.5, 1]) {
    const v = (max / 1.1) * frac;
    out.push(
      `<text x="${LEFT - 6}" y="${y(v) + 4}" text-anchor="end" font-size="11">${v < 10 ? v.toFixed(1) : v.toFixed(0)} ${escape(unit)}</text>`,
    );
  }
  series.forEach((s, i) => {
    const points = s.values.map((v, j) => `${x(times[j] ?? 0).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="1.5" points="${points}"/>`);
    out.push(
      `<text x="${WIDTH - RIGHT - 8}" y="${y0 + 16 + i * 14}" text-anchor="end" font-size="12" fill="${s.color}">${escape(s.name)}</text>`,
    );
  });
  return out.join('\n');
}

/** Writes the chart of a soak run to `path`. */
export function writeSoakChart(
  path: string,
  samples: readonly SoakSample[],
  marks: readonly SoakMark[],
  summary: {
    minutes: number;
    rate: number;
    workers: number;
    enqueued: number;
    completed: number;
    lost: number;
    duplicates: number;
  },
): void {
  const times = samples.map((s) => s.t);
  const span = Math.max(1, ...times);
  const height = TOP + 3 * (PANEL + GAP) + 10;
  const x = (t: number): number => LEFT + (t / span) * (WIDTH - LEFT - RIGHT);
  const after = samples.filter((s) => s.t >= 60);
  const latencyCap = Math.max(1e-9, ...(after.length ? after : samples).map((s) => s.p99));
  const startMax = Math.max(0, ...samples.filter((s) => s.t < 60).map((s) => s.p99));
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${LEFT}" y="18">tasuki soak: ${summary.minutes} min at ${summary.rate} tasks/s, ${summary.workers} workers; ` +
      `${summary.enqueued.toLocaleString('en')} enqueued, ${summary.completed.toLocaleString('en')} completed, ` +
      `${summary.lost} lost, ${summary.duplicates} recorded twice</text>`,
    panel(
      0,
      'Memory',
      'MB',
      times,
      [
        { name: 'Redis used_memory', color: '#c0392b', values: samples.map((s) => s.redisMB) },
        { name: 'worker RSS (mean)', color: '#2471a3', values: samples.map((s) => s.workerMB) },
      ],
      span,
    ),
    panel(
      1,
      'Latency, enqueue to completion' +
        (startMax > latencyCap
          ? ` (axis cut at the largest p99 after the first minute; while the workers started: ${Math.round(startMax)} ms)`
          : ''),
      'ms',
      times,
      [
        { name: 'p99', color: '#c0392b', values: samples.map((s) => s.p99) },
        { name: 'p50', color: '#2471a3', values: samples.map((s) => s.p50) },
      ],
      span,
      latencyCap,
    ),
    panel(
      2,
      'Tasks',
      '/s',
      times,
      [
        { name: 'enqueued per s', color: '#2471a3', values: samples.map((s) => s.enqueuedPerSec) },
        { name: 'completed per s', color: '#27ae60', values: samples.map((s) => s.completedPerSec) },
        { name: 'backlog (tasks)', color: '#7f8c8d', values: samples.map((s) => s.backlog) },
      ],
      span,
    ),
  ];
  for (const m of marks) {
    const color = m.label === 'kill' ? '#c0392b' : '#7f8c8d';
    parts.push(
      `<line x1="${x(m.t).toFixed(1)}" x2="${x(m.t).toFixed(1)}" y1="${TOP}" y2="${height - 10 - GAP}" stroke="${color}" stroke-dasharray="3,3" opacity="0.6"/>`,
    );
  }
  parts.push(
    `<text x="${LEFT}" y="${height - 6}" font-size="11">minutes 0 to ${(span / 60).toFixed(0)}; dashed lines: a worker stopped (grey, SIGTERM) or killed (red, SIGKILL)</text>`,
    '</svg>',
  );
  writeFileSync(path, parts.join('\n') + '\n');
}
