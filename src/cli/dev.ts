import { resolve } from 'node:path';
import type { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import { EmbeddedRedis } from '../connection/embedded.js';
import { maskUrl, redisUrlFromEnv } from '../connection/url.js';
import { Worker } from '../worker/worker.js';
import { loadApp } from './load-app.js';
import { parsePositiveInt, stopOnSignals } from './worker.js';

/** The example app `tasuki dev` runs when no --app is given. */
export const EXAMPLE_APP = resolve(fileURLToPath(new URL('../../examples/app.ts', import.meta.url)));

export function registerDev(program: Command): void {
  program
    .command('dev')
    .description(
      "run an app for development: a local redis-server (when no REDIS_URL is set), a worker, and the app's demo",
    )
    .option('--app <module>', 'module that exports the tasuki app', EXAMPLE_APP)
    .option('--concurrency <n>', 'tasks run at once', '10')
    .option('--keep', 'keep running after the demo until Ctrl-C')
    .action(async (opts: { app: string; concurrency: string; keep?: boolean }) => {
      let embedded: EmbeddedRedis | undefined;
      if (!redisUrlFromEnv()) {
        embedded = await EmbeddedRedis.start();
        process.env.TASUKI_REDIS_URL = embedded.url;
        console.error(`tasuki dev: started redis-server (pid ${embedded.pid}) at ${embedded.url}`);
      } else {
        console.error(`tasuki dev: using Redis at ${maskUrl(redisUrlFromEnv() as string)}`);
      }
      try {
        const { app, demo } = await loadApp(opts.app);
        const worker = new Worker(app, { concurrency: parsePositiveInt('--concurrency', opts.concurrency) });
        await worker.start();
        if (demo && !opts.keep) {
          await demo(app);
          await worker.stop();
        } else {
          if (demo) await demo(app);
          console.error('tasuki dev: worker running; Ctrl-C to stop');
          await stopOnSignals(() => worker.stop());
        }
        await app.close();
      } finally {
        await embedded?.destroy();
      }
    });
}
