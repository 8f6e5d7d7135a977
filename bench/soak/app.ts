/**
 * The app of the soak run (bench/soak.ts): one queue, one task that sleeps a few milliseconds so
 * tasks are in flight when a worker is stopped or killed. Loaded by `tasuki worker --app` in the
 * worker processes and by the soak itself to enqueue; Redis from TASUKI_REDIS_URL.
 */
import { z } from 'zod';
import { tasuki, type Duration } from 'tasuki';

// Results are kept for SOAK_RESULT_TTL (default 5m) so Redis memory reaches its plateau early in the run.
export const app = tasuki({
  queues: ['soak'],
  resultTtl: (process.env.SOAK_RESULT_TTL ?? '5m') as Duration,
});

export const work = app.task({
  name: 'soak.work',
  queue: 'soak',
  schema: z.object({ n: z.number().int(), ms: z.number().int().min(0).max(1000), pad: z.string() }),
  handler: async ({ n, ms }) => {
    if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
    return n;
  },
});
