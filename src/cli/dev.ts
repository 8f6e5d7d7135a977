import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { EmbeddedRedis, maskUrl, redisUrlFromEnv, Worker } from '../index.js';
import { appModulePath, loadApp, type AppModule } from './load-app.js';
import { cliInteger, parseCli } from './options.js';
import { stopOnSignals } from './signals.js';

/** The built-in example app (src/cli/dev-app.ts), part of the package so `npx tasuki dev` works. */
async function exampleApp(): Promise<AppModule> {
  const { app, demo } = await import('./dev-app.js');
  return { app, demo };
}

/** Grace and claimIdle of the dev worker (the worker's defaults), for the shutdown messages. */
const GRACE_MS = 25_000;
const CLAIM_IDLE_MS = 30_000;

export function registerDev(program: Command): void {
  program
    .command('dev')
    .description(
      "run an app for development: a local redis-server (when no REDIS_URL is set), a worker, and the app's demo",
    )
    .option('--app <module>', 'module that exports the tasuki app (default: the built-in example app)')
    .option('--concurrency <n>', 'tasks run at once', '10')
    .option('--keep', 'keep running after the demo until Ctrl-C')
    .action(async (opts: { app?: string; concurrency: string; keep?: boolean }) => {
      const concurrency = parseCli(z.object({ '--concurrency': cliInteger(1) }), {
        '--concurrency': opts.concurrency,
      })['--concurrency'];
      // A missing module is reported before a redis-server is started for nothing.
      if (opts.app !== undefined) appModulePath(opts.app);
      let embedded: EmbeddedRedis | undefined;
      const url = redisUrlFromEnv();
      if (!url) {
        embedded = await EmbeddedRedis.start();
        process.env.TASUKI_REDIS_URL = embedded.url;
        process.stderr.write(`tasuki dev: started redis-server (pid ${embedded.pid}) at ${embedded.url}\n`);
      } else {
        process.stderr.write(`tasuki dev: using Redis at ${maskUrl(url)}\n`);
      }
      // Big arguments go to a payload store (a claim check); in dev, a temp directory, unless set.
      let payloadDir: string | undefined;
      if (!process.env.TASUKI_PAYLOAD_STORE) {
        payloadDir = mkdtempSync(join(tmpdir(), 'tasuki-payloads-'));
        process.env.TASUKI_PAYLOAD_STORE = payloadDir;
      }
      try {
        const { app, demo } = opts.app !== undefined ? await loadApp(opts.app) : await exampleApp();
        try {
          const worker = new Worker(app, { concurrency, grace: GRACE_MS, claimIdle: CLAIM_IDLE_MS });
          await worker.start();
          try {
            if (demo) await demo(app);
            if (!demo || opts.keep) {
              // Handlers first, then the line: a reader may send Ctrl-C the moment it sees it.
              const stopped = stopOnSignals({
                log: app.log,
                graceMs: GRACE_MS,
                claimIdleMs: CLAIM_IDLE_MS,
                stop: () => worker.stop(),
              });
              process.stderr.write('tasuki dev: worker running; Ctrl-C to stop\n');
              await stopped;
            }
          } finally {
            await worker.stop();
          }
        } finally {
          await app.close();
        }
      } finally {
        if (payloadDir) rmSync(payloadDir, { recursive: true, force: true });
        if (embedded) {
          const pid = embedded.pid;
          await embedded.destroy();
          process.stderr.write(`tasuki dev: stopped redis-server (pid ${pid})\n`);
        }
      }
    });
}
