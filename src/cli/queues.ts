/**
 * Which app and queues a read-or-repair command (`dlq`, `inspect`) acts on: the --app module's, or,
 * with only a Redis URL and key prefix, the queues that exist there. A queue name that is neither is
 * an error, never an empty answer: a typo must not look like "nothing there".
 */
import type { Command } from 'commander';
import { createLogger, tasuki, TasukiError, type Tasuki } from '../index.js';
import { loadApp } from './load-app.js';
import { names } from './options.js';

/** Where a command finds the app: an app module, or a Redis URL and key prefix. */
export interface AppSource {
  app?: string;
  url?: string;
  prefix: string;
}

/** The options every `dlq` and `inspect` command takes to find the app. */
export function sourceOptions(cmd: Command): Command {
  return cmd
    .option('--app <module>', 'module that exports the tasuki app (for its prefix and queues)')
    .option('--url <url>', 'Redis URL (default TASUKI_REDIS_URL, else REDIS_URL)')
    .option('--prefix <prefix>', 'key prefix when no --app is given', 'tsk');
}

function bareApp(o: AppSource, queues: readonly string[]): Tasuki {
  return tasuki({
    queues,
    prefix: o.prefix,
    logger: createLogger({ level: 'warn', pretty: false }),
    ...(o.url ? { redis: o.url } : {}),
  });
}

/** The app and the queues a command uses. With `queues.length === 0` there was nothing to find. */
export interface Target {
  app: Tasuki;
  queues: string[];
}

function unknownQueues(unknown: readonly string[], where: string): TasukiError {
  const s = unknown.length > 1 ? 's' : '';
  return new TasukiError('E_UNKNOWN_QUEUE', `unknown queue${s} ${names(unknown)}: ${where}`);
}

/**
 * Opens the app for `o` and checks the `named` queues (all of them when `undefined`): with --app
 * they must be the app's; without, a worker must have served them or they must hold keys.
 */
export async function openQueues(o: AppSource, named: readonly string[] | undefined): Promise<Target> {
  if (o.app) {
    const { app } = await loadApp(o.app);
    const unknown = (named ?? []).filter((q) => !app.queues.includes(q));
    if (unknown.length) {
      await app.close();
      throw unknownQueues(unknown, `the app in ${o.app} declares ${names(app.queues)}`);
    }
    return { app, queues: named ? [...named] : [...app.queues] };
  }
  const probe = bareApp(o, ['default']);
  let queues: string[];
  try {
    const redis = await probe.redis();
    const served = (await redis.smembers(probe.keys.queues.key({}))).sort();
    queues = named ? [...named] : served;
    const unknown: string[] = [];
    for (const queue of queues) {
      if (served.includes(queue)) continue;
      const k = probe.keys;
      const held = await redis.exists(
        k.stream.key({ queue }),
        k.delayed.key({ queue }),
        k.dead.key({ queue }),
      );
      if (held === 0) unknown.push(queue);
    }
    if (unknown.length) {
      throw unknownQueues(
        unknown,
        `no worker has served it and it holds no tasks under prefix "${o.prefix}" ` +
          `(queues there: ${names(served)}). Check the name, --prefix or --url, or pass --app`,
      );
    }
  } finally {
    await probe.close();
  }
  if (queues.length === 0) return { app: bareApp(o, ['default']), queues };
  return { app: bareApp(o, queues), queues };
}

/** Runs `fn` on the target and closes the app afterwards. */
export async function withQueues<T>(
  o: AppSource,
  named: readonly string[] | undefined,
  fn: (t: Target) => Promise<T>,
): Promise<T> {
  const target = await openQueues(o, named);
  try {
    return await fn(target);
  } finally {
    await target.app.close();
  }
}
