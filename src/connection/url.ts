import { OptionsError } from '../errors.js';

/** The Redis URL tasuki uses when none is given: `TASUKI_REDIS_URL`, else `REDIS_URL`, else none. */
export function redisUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const url of [env.TASUKI_REDIS_URL, env.REDIS_URL]) {
    if (url !== undefined && url.trim() !== '') return url.trim();
  }
  return undefined;
}

/** The URL with its password replaced by `***`, safe to log and to put in error messages. */
export function maskUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
  }
}

/** Checks that `url` is a Redis URL tasuki can use; throws a clear error otherwise. */
export function checkRedisUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new OptionsError('Redis URL', [
      {
        path: 'url',
        message: `"${maskUrl(url)}" is not a URL; expected redis://[user:password@]host:port[/db]`,
      },
    ]);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new OptionsError('Redis URL', [
      {
        path: 'url',
        message: `"${maskUrl(url)}" has scheme "${u.protocol}"; use redis:// (plain) or rediss:// (TLS)`,
      },
    ]);
  }
  const db = u.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) {
    throw new OptionsError('Redis URL', [
      { path: 'url', message: `"${maskUrl(url)}" has database "${db}"; the path must be a database number` },
    ]);
  }
  return u;
}
