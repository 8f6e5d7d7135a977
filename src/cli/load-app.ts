import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { TasukiError } from '../errors.js';
import { isTasukiApp, type Tasuki } from '../queue/app.js';

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
