/**
 * The key audit at production size (issue 15, point 8): seeds N keys (default 1,000,000) in a
 * throw-away redis-server, then times `redis-cli --memkeys` (which also sizes every key) and
 * `tasuki keys audit` on the same Redis, and prints both with the audit's peak memory.
 *
 *   node --import tsx bench/audit.ts [--keys 1000000] [--count 200] [--reps 1] [--before path/to/audit.ts]
 *                                    [--cpu-prof DIR]
 *
 * The keys: 50 % app keyspace values (msgpack in an envelope, TTL), 20 % task results (TTL), 10 %
 * a legacy app's keys without TTL or owner (hashes and strings), 20 % undeclared cache-like keys
 * with a TTL. `--before` also audits with another copy of the audit module, for before/after.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { EmbeddedRedis } from '../src/connection/embedded.js';
import { BENCH_PREFIX, benchDeclarations } from './audit-keys.js';

const { values: argv } = parseArgs({
  options: {
    keys: { type: 'string', default: '1000000' },
    count: { type: 'string', default: '200' },
    before: { type: 'string' },
    reps: { type: 'string', default: '1' },
    'cpu-prof': { type: 'string' },
  },
});
const N = Number(argv.keys);

async function seed(redis: Redis): Promise<void> {
  const { profiles } = benchDeclarations();
  const format = (profiles as unknown as { format: { encode(k: string, v: unknown): Promise<Buffer> } })
    .format;
  const value = await format.encode('x', { name: 'Ada Lovelace', plan: 'pro' });
  const record = JSON.stringify({
    state: 'succeeded',
    task: 'image.resize',
    attempt: 1,
    worker: 'host-1:1234',
    startedAt: Date.now() - 2000,
    finishedAt: Date.now() - 1000,
    result: { url: 'https://example.com/cat.png', width: 320 },
  });
  const BATCH = 10_000;
  for (let from = 0; from < N; from += BATCH) {
    const p = redis.pipeline();
    for (let i = from; i < Math.min(N, from + BATCH); i++) {
      const kind = i % 10;
      if (kind < 5) p.set(profiles.key(`u${i}`), value, 'PX', 86_400_000);
      else if (kind < 7) p.set(`${BENCH_PREFIX}:v1:{q:default}:r:${i}-0@default`, record, 'PX', 86_400_000);
      else if (kind === 7) p.hset(`legacy:session:${i}`, 'user', String(i), 'csrf', 'x'.repeat(32));
      else if (kind === 8) p.set(`legacy:flag:${i}`, '1');
      else p.set(`views:cache:page:${i}`, 'x'.repeat(100), 'PX', 3_600_000);
    }
    await p.exec();
  }
}

/** One run of a tool: wall time, its own CPU and redis-server's CPU (INFO cpu), in ms. */
interface AuditRun {
  ms: number;
  maxRssMB: number;
  scanned: number;
  cpuMs: number;
  redisCpuMs: number;
}

/** redis-server's CPU time so far (user + system), in ms. */
async function redisCpuMs(url: string): Promise<number> {
  const r = new Redis(url);
  const info = await r.info('cpu');
  r.disconnect();
  const field = (name: string): number => Number(new RegExp(`${name}:([0-9.]+)`).exec(info)?.[1] ?? 0);
  return (field('used_cpu_user') + field('used_cpu_sys')) * 1000;
}

/** `redis-cli --memkeys` on the Redis at `port`, timed, with its CPU read by /usr/bin/time. */
async function memkeysRun(url: string, port: number): Promise<AuditRun> {
  const cpuFile = `${tmpdir()}/tasuki-bench-memkeys-${process.pid}.time`;
  const redis0 = await redisCpuMs(url);
  const t1 = performance.now();
  const run = spawnSync(
    '/usr/bin/time',
    ['-f', '%U %S %M', '-o', cpuFile, 'redis-cli', '-p', String(port), '--memkeys'],
    {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  const ms = performance.now() - t1;
  if (run.status !== 0) throw new Error(`redis-cli --memkeys failed: ${run.stderr}`);
  const [user, sys, maxRssKB] = readFileSync(cpuFile, 'utf8').trim().split(/\s+/).map(Number);
  rmSync(cpuFile, { force: true });
  return {
    ms,
    maxRssMB: Math.round((maxRssKB ?? 0) / 1024),
    scanned: 0,
    cpuMs: ((user ?? 0) + (sys ?? 0)) * 1000,
    redisCpuMs: (await redisCpuMs(url)) - redis0,
  };
}

async function auditRun(url: string, module?: string): Promise<AuditRun> {
  const redis0 = await redisCpuMs(url);
  const run = await auditChild(url, module);
  return { ...run, redisCpuMs: (await redisCpuMs(url)) - redis0 };
}

function auditChild(url: string, module?: string): Promise<AuditRun> {
  const prof = argv['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${argv['cpu-prof']}`] : [];
  const args = [...prof, '--import', 'tsx', 'bench/audit-child.ts', '--url', url, '--count', argv.count];
  if (module) args.push('--module', module);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('close', (code) =>
      code === 0 ? resolve(JSON.parse(out) as AuditRun) : reject(new Error(`audit child exited ${code}`)),
    );
  });
}

const server = await EmbeddedRedis.start();
try {
  const redis = new Redis(server.port, '127.0.0.1');
  const t0 = performance.now();
  await seed(redis);
  const dbsize = await redis.dbsize();
  const info = await redis.info('memory');
  redis.disconnect();
  const used = /used_memory_human:(\S+)/.exec(info)?.[1];
  console.log(
    `seeded ${dbsize.toLocaleString('en')} keys in ${((performance.now() - t0) / 1000).toFixed(1)} s (used_memory ${used})`,
  );
  // Repetitions alternate the two tools, so a busy machine slows both alike; medians are printed.
  const memkeysRuns: AuditRun[] = [];
  const audits: AuditRun[] = [];
  const line = (r: AuditRun): string =>
    `${(r.ms / 1000).toFixed(1)} s (CPU: itself ${(r.cpuMs / 1000).toFixed(1)} s, redis-server ${(r.redisCpuMs / 1000).toFixed(1)} s)`;
  for (let rep = 0; rep < Number(argv.reps); rep++) {
    const memkeys = await memkeysRun(server.url, server.port);
    memkeysRuns.push(memkeys);
    const audit = await auditRun(server.url);
    audits.push(audit);
    console.log(`  rep ${rep + 1}: redis-cli --memkeys ${line(memkeys)}; tasuki keys audit ${line(audit)}`);
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const medianRun = (runs: AuditRun[]): AuditRun => ({
    ms: median(runs.map((r) => r.ms)),
    cpuMs: median(runs.map((r) => r.cpuMs)),
    redisCpuMs: median(runs.map((r) => r.redisCpuMs)),
    maxRssMB: Math.max(...runs.map((r) => r.maxRssMB)),
    scanned: runs[0]?.scanned ?? 0,
  });
  const memkeys = medianRun(memkeysRuns);
  const audit = medianRun(audits);
  const before = argv.before ? await auditRun(server.url, argv.before) : undefined;
  const version = execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).trim().split(' ')[2];
  console.log(`redis-server ${version}; ${dbsize.toLocaleString('en')} keys; SCAN COUNT ${argv.count}`);
  console.log(`medians of ${argv.reps}:`);
  console.log(`redis-cli --memkeys      ${line(memkeys)}, peak RSS ${memkeys.maxRssMB} MB`);
  console.log(
    `tasuki keys audit        ${line(audit)}, peak RSS ${audit.maxRssMB} MB (${audit.scanned.toLocaleString('en')} keys)`,
  );
  console.log(
    `audit / memkeys          ${(audit.ms / memkeys.ms).toFixed(2)}x the time, ${(audit.redisCpuMs / memkeys.redisCpuMs).toFixed(2)}x redis-server's CPU`,
  );
  if (before) console.log(`audit (--before module)  ${line(before)}, peak RSS ${before.maxRssMB} MB`);
} finally {
  await server.destroy();
}
