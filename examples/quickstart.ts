import { z } from 'zod';
import { tasuki, Worker } from 'tasuki';

// Redis comes from TASUKI_REDIS_URL or REDIS_URL (or pass { redis: 'redis://...' }).
const app = tasuki({ queues: ['default'] });

const resize = app.task({
  name: 'image.resize',
  schema: z.object({ url: z.url(), width: z.number().int().positive() }),
  maxAttempts: 3,
  handler: ({ url, width }, ctx) => {
    ctx.log.info({ url, width }, 'resizing');
    return { url, width, bytes: width * 100 };
  },
});

// Usually a separate process: `tasuki worker --app ./app.ts --concurrency 4`.
const worker = new Worker(app, { concurrency: 4 });
await worker.start();

const handle = await resize.enqueue({ url: 'https://example.com/cat.png', width: 320 });
console.log(handle.id, await handle.result({ timeout: '10s' }));
console.log(await app.getTask(handle.id)); // state, result, attempt, worker, timestamps

await worker.stop();
await app.close();
