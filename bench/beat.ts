/**
 * Beat benchmark: tick lateness (tick time → the task in the queue, on Redis's clock) over a run of
 * per-second ticks, and the failover gap after SIGKILL of the active beat. Two `tasuki beat`
 * processes on a throw-away redis-server.
 *
 *   node --import tsx bench/beat.ts [--seconds 30] [--lease 10s] [--standby-interval 1s]
 *
 * Lateness is the stream entry id's time (Redis's clock when the task was written) minus the tick.
 * The failover gap is from the SIGKILL (Redis's clock) to the first task the standby enqueued.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { EmbeddedRedis } from '../src/connection/embedded.js';
import { tasukiKeys } from '../src/index.js';
import { EXPIRES_MS } from './beat/app.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '30' },
    lease: { type: 'string', default: '10s' },
    'standby-interval': { type: 'string', default: '1s' },
  },
});
const seconds = Number(values.seconds);
const APP = fileURLToPath(new URL('./beat/app.ts', import.meta.url));
const CLI = fileURLToPath(new URL('./beat/cli.ts', import.meta.url));
const prefix = 'bench';
const stream = tasukiKeys(prefix).stream.key({ queue: 'default' });

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

interface Beat {
  child: ChildProcess;
  leading: boolean;
  exited: Promise<unknown>;
}

function startBeat(url: string): Beat {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      CLI,
      'beat',
      '--app',
      APP,
      '--lease',
      values.lease,
      '--standby-interval',
      values['standby-interval'],
    ],
    {
      env: { ...process.env, TASUKI_REDIS_URL: url, PREFIX: prefix, TASUKI_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const beat: Beat = { child, leading: false, exited: once(child, 'exit') };
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (line.includes('lease taken')) beat.leading = true;
  });
  return beat;
}

async function redisMs(r: Redis): Promise<number> {
  const [s, us] = await r.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

async function untilLen(r: Redis, n: number): Promise<void> {
  while ((await r.xlen(stream)) < n) await new Promise((res) => setTimeout(res, 20));
}

const server = await EmbeddedRedis.start();
const redis = new Redis(server.port, '127.0.0.1');
const beats = [startBeat(server.url), startBeat(server.url)];
try {
  await untilLen(redis, 1);
  const startLen = await redis.xlen(stream);
  await untilLen(redis, startLen + seconds);
  const leader = beats.find((b) => b.leading);
  if (!leader) throw new Error('no beat leads');
  const killedAt = await redisMs(redis);
  leader.child.kill('SIGKILL');
  await leader.exited;
  const lenAtKill = await redis.xlen(stream);
  await untilLen(redis, lenAtKill + 3);
  const entries = await redis.xrange(stream, '-', '+');
  const rows = entries.map(([id, fields]) => {
    const meta = (JSON.parse(fields[1] as string) as [string, unknown, { x: number }])[2];
    const tick = meta.x - EXPIRES_MS;
    return { tick, written: Number(id.split('-')[0]), late: Number(id.split('-')[0]) - tick };
  });
  const steady = rows
    .filter((r) => r.written < killedAt)
    .map((r) => r.late)
    .sort((a, b) => a - b);
  const firstAfter = rows.find((r) => r.written > killedAt);
  const lastBefore = rows.filter((r) => r.written <= killedAt).at(-1);
  const ticks = rows.map((r) => r.tick);
  const duplicates = ticks.length - new Set(ticks).size;
  const report = {
    ticks: rows.length,
    duplicates,
    latenessMs: { p50: percentile(steady, 50), p99: percentile(steady, 99), max: steady.at(-1) },
    failover: {
      lease: values.lease,
      standbyInterval: values['standby-interval'],
      gapMs: firstAfter ? firstAfter.written - killedAt : NaN,
      missedTicks: firstAfter && lastBefore ? (firstAfter.tick - lastBefore.tick) / 1000 - 1 : NaN,
    },
  };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  process.stdout.write(
    `| beat | per-second ticks: lateness p50 ${report.latenessMs.p50} ms, p99 ${report.latenessMs.p99} ms (${steady.length} ticks) ` +
      `| failover after SIGKILL (lease ${values.lease}, standby ${values['standby-interval']}): first task ${report.failover.gapMs} ms after the kill, ` +
      `${report.failover.missedTicks} ticks missed | duplicates ${duplicates} |\n`,
  );
} finally {
  for (const b of beats) if (b.child.exitCode === null) b.child.kill('SIGTERM');
  await Promise.all(beats.map((b) => b.exited));
  redis.disconnect();
  await server.destroy();
}
