/**
 * Runs test suites written for one server again against a local 3 + 3 Redis Cluster
 * (`TASUKI_TEST_CLUSTER=1` makes test/support/redis.ts start a cluster instead of a server), as a
 * child test runner; fails unless they ran and passed.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

export async function runClusterLeg(suites: readonly string[]): Promise<void> {
  // A test file runs with NODE_TEST_CONTEXT set; a nested runner that sees it reports to its parent
  // in the runner's own protocol instead of running and printing TAP: it must not see it.
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=600000', ...suites],
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
}
