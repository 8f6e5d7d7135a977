/**
 * The canvas suites on a local 3 + 3 Redis Cluster: members on queues of different slots, chords
 * under a SIGKILLed worker process. A leg of its own (beside suites.test.ts), so each stays within
 * the test runner's time limit on a loaded machine.
 */
import { test } from 'node:test';
import { runClusterLeg } from '../support/cluster-leg.js';

test('the canvas suites pass against a Redis Cluster', { timeout: 900_000 }, () =>
  runClusterLeg(['test/canvas/canvas.test.ts', 'test/canvas/processes.test.ts']),
);
