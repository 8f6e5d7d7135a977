/**
 * One audit run for bench/audit.ts, in a process of its own so its peak memory is its own: audits
 * the Redis at --url with the key declarations the seeder used, then prints one JSON line (time,
 * peak RSS, keys, findings). `--module` audits with another copy of src/keys/audit.ts (e.g. an
 * older commit's) for a before/after comparison.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import type { auditKeys as AuditKeys } from '../src/keys/audit.js';
import { benchKeyspace } from './audit-keys.js';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    module: { type: 'string', default: '../src/keys/audit.js' },
    count: { type: 'string', default: '200' },
  },
});
const { auditKeys } = (await import(values.module)) as { auditKeys: typeof AuditKeys };
const redis = new Redis(values.url as string);
const started = performance.now();
const report = await auditKeys(redis, benchKeyspace(), { count: Number(values.count) });
const ms = performance.now() - started;
redis.disconnect();
process.stdout.write(
  JSON.stringify({
    ms: Math.round(ms),
    maxRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
    cpuMs: Math.round((process.cpuUsage().user + process.cpuUsage().system) / 1000),
    scanned: report.scanned,
    findings: Object.values(report.counts).reduce((a, b) => a + b, 0),
    owners: report.owners.length,
  }) + '\n',
);
