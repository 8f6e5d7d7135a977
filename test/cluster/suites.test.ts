/**
 * The cluster leg: suites written for one server run again against a local 3 + 3 Redis Cluster
 * (`TASUKI_TEST_CLUSTER=1` makes test/support/redis.ts start a cluster instead of a server). A
 * representative subset — the core worker path, results, enqueue, reliability, locks, the claim check and beat — keeps
 * `npm test` within a few minutes more; docs/cluster.md says what runs where.
 */
import { test } from 'node:test';
import { runClusterLeg } from '../support/cluster-leg.js';

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

test('the core, reliability and lock suites pass against a Redis Cluster', { timeout: 900_000 }, () =>
  runClusterLeg(CLUSTER_SUITES),
);
