/**
 * `npm run bench`: tasuki, BullMQ and bee-queue against one throw-away redis-server, scenarios of
 * issue 3, systems and repetitions interleaved; `tasuki-rabbitmq` (tasuki with its tasks on a
 * throw-away RabbitMQ node, results on the same Redis) on the enqueue, drain and latency scenarios,
 * as ratios against tasuki on Redis Streams. Prints a table of medians and writes the rows to
 * `bench/results/latest.json` (or `--out`). `--smoke` runs tiny counts once (for CI).
 *
 *   npm run bench -- [--reps 3] [--smoke] [--out file.json] [--systems tasuki,bullmq]
 *                    [--scenarios drain-c50,latency-p99] [--no-ceiling] [--cpu-prof DIR]
 *                    [--slowlog-us 1000]
 *
 * `--cpu-prof DIR` writes a CPU profile of every worker child to DIR (summarise them with
 * `node --import tsx bench/profile-summary.ts DIR`); profile the producer side with
 * `node --cpu-prof --import tsx bench/run.ts ...`. `--slowlog-us N` records Redis's SLOWLOG (commands
 * slower than N µs) per measurement in the details file.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { EmbeddedRedis } from '../src/connection/embedded.js';
import { ceiling } from './ceiling.js';
import { TestRabbitMq } from '../src/testing/rabbitmq.js';
import {
  CEILING_PIPELINE,
  FULL,
  ON_RABBITMQ,
  RABBITMQ_SCENARIOS,
  SCENARIOS,
  SMOKE,
  SYSTEMS,
  type Row,
  type ScenarioName,
  type SystemName,
} from './config.js';
import { Stats } from './redis-info.js';
import { brokerRatios, table, targets, toRows } from './report.js';
import * as s from './scenarios.js';
import { loadSystem } from './systems/system.js';
import { RABBITMQ_URL_ENV } from './systems/tasuki.js';
import { childNodeFlags } from './worker-process.js';

const { values: argv } = parseArgs({
  options: {
    reps: { type: 'string' },
    smoke: { type: 'boolean', default: false },
    out: { type: 'string' },
    systems: { type: 'string' },
    scenarios: { type: 'string' },
    'no-ceiling': { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    'slowlog-us': { type: 'string' },
  },
});

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const sizes = argv.smoke ? SMOKE : FULL;
const reps = Number(argv.reps ?? (argv.smoke ? 1 : 3));
if (!Number.isInteger(reps) || reps < 1 || reps > 20)
  throw new Error(`--reps must be 1..20, got ${argv.reps}`);
const out = resolve(argv.out ?? `${ROOT}/bench/results/latest.json`);
const systems = pick(argv.systems, SYSTEMS, '--systems');
const wanted = new Set(pick(argv.scenarios, SCENARIOS, '--scenarios'));
if (argv['cpu-prof'])
  childNodeFlags.push(
    '--cpu-prof',
    '--cpu-prof-interval',
    '100',
    '--cpu-prof-dir',
    resolve(argv['cpu-prof']),
  );

function pick<T extends string>(arg: string | undefined, all: readonly T[], flag: string): T[] {
  if (arg === undefined) return [...all];
  const list = arg.split(',').map((x) => x.trim());
  for (const x of list)
    if (!all.includes(x as T)) throw new Error(`${flag}: unknown "${x}"; one of ${all.join(', ')}`);
  return list as T[];
}

const UNITS: Record<ScenarioName, string> = {
  'enqueue-single': 'jobs/s',
  'enqueue-bulk': 'jobs/s',
  'drain-c1': 'jobs/s',
  'drain-c50': 'jobs/s',
  'latency-p50': 'ms',
  'latency-p99': 'ms',
  'redis-bytes-per-task-10B': 'bytes',
  'redis-bytes-per-task-10KB': 'bytes',
  'redis-bytes-per-task-1MB': 'bytes',
  'enqueue-bulk-10KB': 'jobs/s',
  'drain-c50-10KB': 'jobs/s',
  'redis-commands-per-task': 'commands',
  'redis-cpu-us-per-task': 'µs',
};

/** Extra rows beside issue 3's scenarios. */
const EXTRA_UNITS = { 'worker-cpu-us-per-task': 'µs' } as const;
type Extra = keyof typeof EXTRA_UNITS;
type Measured = Partial<Record<ScenarioName | Extra, number>>;

/** Measurements, in run order; each yields one or more scenarios. */
const GROUPS: { scenarios: ScenarioName[]; run: (ctx: s.Ctx) => Promise<Measured> }[] = [
  { scenarios: ['enqueue-single'], run: async (c) => ({ 'enqueue-single': await s.enqueueSingle(c) }) },
  { scenarios: ['enqueue-bulk'], run: async (c) => ({ 'enqueue-bulk': await s.enqueueBulk(c) }) },
  { scenarios: ['drain-c1'], run: async (c) => ({ 'drain-c1': await s.drainC1(c) }) },
  {
    scenarios: ['drain-c50', 'redis-cpu-us-per-task'],
    // Not an issue-3 scenario; an extra row, since CPU per task is steadier than jobs/s here.
    run: async (c) => {
      const r = await s.drainC50(c);
      return {
        'drain-c50': r.jobsPerSec,
        'redis-cpu-us-per-task': r.cpuUsPerTask,
        'worker-cpu-us-per-task': r.workerCpuUsPerTask,
      };
    },
  },
  {
    scenarios: ['latency-p50', 'latency-p99'],
    run: async (c) => {
      const r = await s.latency(c);
      return { 'latency-p50': r.p50, 'latency-p99': r.p99 };
    },
  },
  {
    scenarios: ['redis-bytes-per-task-10B'],
    run: async (c) => ({ 'redis-bytes-per-task-10B': await s.bytesPerTask(c, 0, c.sizes.bytesTasks10B) }),
  },
  {
    scenarios: ['redis-bytes-per-task-10KB'],
    run: async (c) => ({
      'redis-bytes-per-task-10KB': await s.bytesPerTask(c, 10 * 1024, c.sizes.bytesTasks10KB),
    }),
  },
  {
    scenarios: ['redis-bytes-per-task-1MB'],
    run: async (c) => ({
      'redis-bytes-per-task-1MB': await s.bytesPerTask(c, 1024 * 1024, c.sizes.bytesTasks1MB),
    }),
  },
  {
    scenarios: ['enqueue-bulk-10KB'],
    run: async (c) => ({ 'enqueue-bulk-10KB': await s.enqueueBulk(c, 10 * 1024) }),
  },
  { scenarios: ['drain-c50-10KB'], run: async (c) => ({ 'drain-c50-10KB': await s.drainC50Big(c) }) },
  {
    scenarios: ['redis-commands-per-task'],
    run: async (c) => {
      const r = await s.commandsPerTask(c);
      commandMix.set(c.system.name, r.byCommand);
      return { 'redis-commands-per-task': r.perTask };
    },
  },
];

const samples = new Map<string, Map<SystemName, number[]>>();
const units = new Map<string, string>([...Object.entries(UNITS), ...Object.entries(EXTRA_UNITS)]);
const commandMix = new Map<SystemName, Record<string, number>>();
const failures: string[] = [];
/** With `--slowlog-us N`: Redis SLOWLOG per measurement (commands slower than N µs). */
const slow: Record<string, { count: number; maxUs: number; top: string[] }> = {};

function note(scenario: string, system: SystemName, value: number): void {
  let bySystem = samples.get(scenario);
  if (!bySystem) samples.set(scenario, (bySystem = new Map<SystemName, number[]>()));
  let xs = bySystem.get(system);
  if (!xs) bySystem.set(system, (xs = []));
  xs.push(value);
}

/** The commit measured (`TASUKI_BENCH_COMMIT` when run from an exported tree without .git). */
function commit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: 'pipe',
    }).trim();
  } catch {
    return process.env.TASUKI_BENCH_COMMIT ?? 'unknown';
  }
}

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

async function main(): Promise<number> {
  const started = performance.now();
  const loadBefore = loadavg().map((x) => Number(x.toFixed(2)));
  const slowUs = argv['slowlog-us'] === undefined ? undefined : Number(argv['slowlog-us']);
  const redis = await EmbeddedRedis.start(
    slowUs === undefined
      ? {}
      : { args: ['--slowlog-log-slower-than', String(slowUs), '--slowlog-max-len', '1024'] },
  );
  const stats = await Stats.open(redis.port);
  // A maxmemory, as production has, so tasuki-full's memory guard samples and admits (the 1 MB
  // scenarios stay far below it); noeviction, as every queue here requires.
  await stats.client.config('SET', 'maxmemory', '4gb');
  await stats.client.config('SET', 'maxmemory-policy', 'noeviction');
  // tasuki-rabbitmq: one throw-away RabbitMQ node for the run (its worker children inherit the URL).
  const rabbit = systems.includes(ON_RABBITMQ) ? await TestRabbitMq.start() : undefined;
  if (rabbit) process.env[RABBITMQ_URL_ENV] = rabbit.url;
  // tasuki's payload store (the claim check) for this run; removed at the end.
  const payloadDir = mkdtempSync(join(tmpdir(), 'tasuki-bench-payloads-'));
  const loaded = await Promise.all(systems.map((n) => loadSystem(n)));
  // Scenario order is fixed (the server's state is reset between measurements); the order of systems
  // rotates with each measurement and repetition so no system always goes first.
  let turn = 0;
  let seq = 0;
  try {
    const groups = GROUPS.filter((g) => g.scenarios.some((x) => wanted.has(x)));
    for (let rep = 1; rep <= reps; rep++) {
      for (const g of groups) {
        const order = loaded.map((_, i) => loaded[(i + turn) % loaded.length]);
        turn++;
        for (const system of order) {
          if (!system) continue;
          if (system.name === ON_RABBITMQ && !g.scenarios.some((x) => RABBITMQ_SCENARIOS.has(x))) continue;
          const t0 = performance.now();
          const ctx: s.Ctx = {
            system,
            stats,
            port: redis.port,
            sizes,
            queue: (w) => `bench-${w}-${++seq}`,
            payloadDir,
          };
          try {
            if (slowUs !== undefined) await stats.client.slowlog('RESET');
            const r = await g.run(ctx);
            if (slowUs !== undefined) slow[`${system.name} ${g.scenarios[0]}`] = await stats.slowlog();
            for (const [k, v] of Object.entries(r)) {
              if (wanted.has(k as ScenarioName) || k in EXTRA_UNITS) note(k, system.name, v);
            }
            const shown = Object.entries(r).map(([k, v]) => `${k}=${v.toFixed(1)}`);
            log(
              `rep ${rep} ${system.name.padEnd(9)} ${shown.join(' ')} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
            );
          } catch (err) {
            const msg = `rep ${rep} ${system.name} ${g.scenarios.join('+')}: ${err instanceof Error ? err.message : String(err)}`;
            failures.push(msg);
            log(`FAILED ${msg}`);
          }
        }
      }
      if (!argv['no-ceiling'] && systems.includes('tasuki')) {
        try {
          const c = await ceiling(stats, redis.port, sizes.ceilingRequests);
          for (const [k, v] of c.values) {
            note(k, 'tasuki', v.value);
            units.set(k, v.unit);
          }
          log(
            `rep ${rep} ceiling   ${[...c.values].map(([k, v]) => `${k}=${Math.round(v.value)}`).join(' ')}`,
          );
        } catch (err) {
          failures.push(`ceiling: ${err instanceof Error ? err.message : String(err)}`);
          log(`FAILED ceiling: ${String(err)}`);
        }
      }
    }
  } finally {
    await stats.close().catch(() => undefined);
    await redis.destroy();
    await rabbit?.close();
    rmSync(payloadDir, { recursive: true, force: true });
  }
  const rows: Row[] = toRows(samples, units);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(rows, null, 2)}\n`);
  const details = {
    date: new Date().toISOString(),
    mode: argv.smoke ? 'smoke' : 'full',
    commit: commit(),
    reps,
    sizes,
    node: process.version,
    redis: execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).trim(),
    cpus: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`,
    seconds: Math.round((performance.now() - started) / 1000),
    // A shared machine: the 1/5/15-minute load averages say how much else ran.
    loadavg: { before: loadBefore, after: loadavg().map((x) => Number(x.toFixed(2))) },
    commandsPerTaskByCommand: Object.fromEntries(commandMix),
    ...(slowUs !== undefined ? { slowlog: { thresholdUs: slowUs, byMeasurement: slow } } : {}),
    failures,
  };
  writeFileSync(out.replace(/\.json$/, '') + '.details.json', `${JSON.stringify(details, null, 2)}\n`);
  const main = rows.filter((r) => !r.scenario.startsWith('ceiling-'));
  const ceil = rows.filter((r) => r.scenario.startsWith('ceiling-'));
  console.log(
    `\nMedians of ${reps} repetition(s), min–max in brackets; ↑ higher is better, ↓ lower is better.\n`,
  );
  console.log(table(main, systems));
  if (ceil.length) {
    console.log(
      `\nCeiling: redis-benchmark, 50 clients, tasuki's per-task command mix (XADD; XREADGROUP COUNT b; finish for b tasks).\n`,
    );
    console.log(table(ceil, ['tasuki']));
    const best = (prefix: string): number =>
      Math.max(...ceil.filter((r) => r.scenario.startsWith(prefix)).map((r) => r.median));
    const of = (scenario: string): number | undefined =>
      main.find((r) => r.scenario === scenario && r.system === 'tasuki')?.median;
    const share = (scenario: string, prefix: string): void => {
      const v = of(scenario);
      const c = best(prefix);
      if (v !== undefined && Number.isFinite(c))
        console.log(
          `tasuki ${scenario} is ${((100 * v) / c).toFixed(0)} % of the ${prefix}* ceiling (best of P1/P${CEILING_PIPELINE}).`,
        );
    };
    console.log('');
    share('enqueue-single', 'ceiling-xadd-');
    share('enqueue-bulk', 'ceiling-xadd-');
    share('drain-c50', 'ceiling-drain-');
  }
  const b = brokerRatios(main);
  if (b.length)
    console.log(`\ntasuki on RabbitMQ / tasuki on Redis Streams:\n${b.map((x) => `  ${x}`).join('\n')}`);
  const t = targets(main);
  if (t.length)
    console.log(
      `\nIssue 18 targets (tasuki with everything on against each peer):\n${t.map((x) => `  ${x}`).join('\n')}`,
    );
  for (const [system, mix] of commandMix) {
    const top = Object.entries(mix)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v.toFixed(2)}`);
    console.log(`\n${system} commands per task: ${top.join(', ')}`);
  }
  console.log(
    `\nWrote ${out} (${Math.round((performance.now() - started) / 1000)} s; load average ${loadBefore[0]} before, ${loadavg()[0]?.toFixed(2)} after, on ${cpus().length} cores).`,
  );
  if (failures.length) console.log(`\n${failures.length} measurement(s) failed:\n${failures.join('\n')}`);
  return failures.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
