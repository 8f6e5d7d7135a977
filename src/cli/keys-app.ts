import { OptionsError, tasukiKeys, type Keyspace, type Tasuki } from '../index.js';
import { loadApp } from './load-app.js';

/** The keyspace to use: the app's (with --app) or tasuki's own under a prefix (default `tsk`). */
export async function keyspaceFor(opts: {
  app?: string;
  prefix?: string;
}): Promise<{ space: Keyspace; app?: Tasuki }> {
  if (!opts.app) return { space: tasukiKeys(opts.prefix ?? 'tsk').space };
  const { app } = await loadApp(opts.app);
  if (opts.prefix !== undefined && opts.prefix !== app.keyspace.prefix) {
    throw new OptionsError('command line', [
      {
        path: '--prefix',
        message: `"${opts.prefix}" differs from the app's prefix "${app.keyspace.prefix}"; with --app the app's prefix is used, so drop --prefix`,
      },
    ]);
  }
  return { space: app.keyspace, app };
}
