import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { TasukiError } from '../errors.js';
import { isTasukiApp, tasuki, type Tasuki } from '../app/app.js';
import { createLogger } from '../log/logger.js';

/** What an app module may export besides the app. */
export interface AppModule {
  app: Tasuki;
  /** Optional demo run by `tasuki dev`: enqueue tasks and wait for their results. */
  demo?: (app: Tasuki) => Promise<void>;
}

/**
 * Imports the module that defines the app (`.js`, or `.ts` through tsx) and finds the app in its
 * `app` or default export.
 */
export async function loadApp(path: string): Promise<AppModule> {
  const file = resolve(path);
  if (!existsSync(file)) {
    throw new TasukiError(
      'E_CONFIG',
      `app module "${path}" not found (resolved to ${file}); pass --app <file>`,
    );
  }
  if (/\.[cm]?ts$/.test(file)) {
    const { register } = await import('tsx/esm/api');
    register();
  }
  const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  const app = mod.app ?? mod.default;
  if (!isTasukiApp(app)) {
    throw new TasukiError(
      'E_CONFIG',
      `app module "${path}" exports no tasuki app: export it as \`export const app = tasuki({...})\` or as the default export`,
    );
  }
  const demo = mod.demo;
  return { app, ...(typeof demo === 'function' ? { demo: demo as AppModule['demo'] } : {}) };
}

/** Where a CLI command finds the app: an app module, or a Redis URL and key prefix. */
export interface AppSource {
  app?: string;
  url?: string;
  prefix: string;
}

/**
 * The app a CLI command acts on: the --app module, or a bare app for --url/--prefix and the given
 * queues (commands that only read or move tasks need no task definitions).
 */
export async function appFor(o: AppSource, queues: readonly string[]): Promise<Tasuki> {
  if (o.app) return (await loadApp(o.app)).app;
  return tasuki({
    queues,
    prefix: o.prefix,
    logger: createLogger({ level: 'warn', pretty: false }),
    ...(o.url ? { redis: o.url } : {}),
  });
}
