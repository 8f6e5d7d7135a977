/**
 * Priorities on a local 3 + 3 Redis Cluster: a queue's level streams share its slot, so its scripts
 * and its one XREADGROUP per slot group span one slot. A short leg of its own (beside suites.test.ts,
 * which is near the test runner's time limit): the tests of test/control/priorities.test.ts not
 * marked `skip: onCluster`.
 */
import { test } from 'node:test';
import { runClusterLeg } from '../support/cluster-leg.js';

test('the priority suite passes against a Redis Cluster', { timeout: 600_000 }, () =>
  runClusterLeg(['test/control/priorities.test.ts']),
);
