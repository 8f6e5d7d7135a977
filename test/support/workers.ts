import type { ChildProcess } from 'node:child_process';
import { after } from 'node:test';
import type { TestRedis } from '../../src/testing/index.js';
import { finished, spawnCli, waitForOutput, type CliRun } from './cli.js';

/** A `tasuki worker` child process on the counting app. */
export interface WorkerProcess {
  child: ChildProcess;
  done: Promise<CliRun>;
}

/** Every worker process this file started, so none outlives it. */
const started = new Set<ChildProcess>();

after(() => {
  // A test that failed half-way (say, one of three workers did not start) leaves the others running;
  // once this file's process exits they would go on reconnecting to a Redis that is gone.
  for (const child of started) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

/**
 * Starts a worker process for test/fixtures/counting-app.ts and waits until it has started. The wait
 * is long (90 s) because it only bounds a failure: a loaded machine compiling the sources with tsx
 * in several processes at once took over 30 s.
 */
export async function startWorker(
  redis: TestRedis,
  prefix: string,
  args: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<WorkerProcess> {
  const child = spawnCli(['worker', '--app', 'test/fixtures/counting-app.ts', ...args], {
    REDIS_URL: redis.url,
    TEST_PREFIX: prefix,
    TASUKI_LOG_LEVEL: 'info',
    ...env,
  });
  started.add(child);
  const done = finished(child, 180_000);
  await waitForOutput(child, /worker started|"level":[3-6]0/, 90_000).catch(async (err: unknown) => {
    child.kill('SIGKILL');
    throw new Error(`worker did not start: ${(err as Error).message}\n${(await done).stderr}`);
  });
  return { child, done };
}
