/**
 * The cluster leg: suites written for one server run again against a local 3 + 3 Redis Cluster
 * (`TASUKI_TEST_CLUSTER=1` makes test/support/redis.ts start a cluster instead of a server). A
 * representative subset — the core worker path, results, enqueue, reliability, locks, the claim check and beat — keeps
 * `npm test` within a few minutes more; docs/cluster.md says what runs where.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';

/** Suites that run on the cluster too; each file starts its own cluster. */
export const CLUSTER_SUITES = [
  'test/worker/worker.test.ts',
  'test/worker/claims.test.ts',
  'test/results/results.test.ts',
  'test/queue/enqueue.test.ts',
  'test/reliability/crash.test.ts',
  'test/reliability/retries.test.ts',
  'test/reliability/shutdown.test.ts',
  'test/lock/lock.test.ts',
  'test/lock/app-locks.test.ts',
  'test/payloads/claim-check.test.ts',
  'test/payloads/results.test.ts',
  'test/beat/schedules.test.ts',
  'test/beat/processes.test.ts',
];

test('the core, reliability and lock suites pass against a Redis Cluster', { timeout: 900_000 }, async () => {
  // A test file runs with NODE_TEST_CONTEXT set; a nested runner that sees it reports to its parent
  // in the runner's own protocol instead of running and printing TAP: it must not see it.
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=600000', ...CLUSTER_SUITES],
    { env: { ...env, TASUKI_TEST_CLUSTER: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  const summary = out.split('\n').filter((l) => /^# (tests|pass|fail|skipped|duration_ms)/.test(l));
  process.stdout.write(`cluster leg: ${summary.join(', ')}\n`);
  assert.ok(
    summary.some((l) => /^# pass [1-9]/.test(l)),
    `the cluster leg ran no test:\n${out.slice(-5000)}`,
  );
  assert.equal(code, 0, `the cluster leg failed:\n${out.slice(-20_000)}`);
});
