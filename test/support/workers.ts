import type { ChildProcess } from 'node:child_process';
import type { TestRedis } from '../../src/testing/index.js';
import { finished, spawnCli, waitForOutput, type CliRun } from './cli.js';

/** A `tasuki worker` child process on the counting app. */
export interface WorkerProcess {
  child: ChildProcess;
  done: Promise<CliRun>;
}

/** Starts a worker process for test/fixtures/counting-app.ts and waits until it has started. */
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
  const done = finished(child, 120_000);
  await waitForOutput(child, /worker started|"level":[3-6]0/, 30_000).catch(async (err: unknown) => {
    child.kill('SIGKILL');
    throw new Error(`worker did not start: ${(err as Error).message}\n${(await done).stderr}`);
  });
  return { child, done };
}
