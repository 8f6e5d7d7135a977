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

/** One host of a cluster's seeds or a Sentinel list. */
export interface HostPort {
  host: string;
  port: number;
}

/**
 * Where a URL says Redis is: one server (`redis://`, `rediss://`), a Redis Cluster
 * (`redis+cluster://` / `rediss+cluster://` with one or more seed nodes, comma-separated), or a
 * primary found through Sentinel (`redis+sentinel://` / `rediss+sentinel://`, the sentinels
 * comma-separated, the path `/<master name>[/<db>]`). User and password are the ACL user's; `rediss`
 * turns TLS on (ElastiCache in-transit encryption).
 */
export type RedisTarget =
  | { kind: 'single'; url: string }
  | {
      kind: 'cluster';
      seeds: HostPort[];
      tls: boolean;
      username?: string | undefined;
      password?: string | undefined;
    }
  | {
      kind: 'sentinel';
      sentinels: HostPort[];
      name: string;
      db: number;
      tls: boolean;
      username?: string | undefined;
      password?: string | undefined;
    };

const MULTI_HOST = /^(rediss?)\+(cluster|sentinel):\/\/(?:([^@/]*)@)?([^/?#]*)(\/[^?#]*)?$/;

function badUrl(url: string, message: string): OptionsError {
  return new OptionsError('Redis URL', [{ path: 'url', message: `"${maskUrl(url)}" ${message}` }]);
}

function hostList(url: string, hosts: string): HostPort[] {
  const list = hosts.split(',').map((h) => h.trim());
  return list.map((h) => {
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(h);
    if (!m) throw badUrl(url, `has host "${h}"; expected host:port, comma-separated`);
    return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port: m[2] ? Number(m[2]) : 6379 };
  });
}

/** Reads a Redis URL (see {@link RedisTarget}); throws a clear `E_OPTIONS` error when it is not one. */
export function parseRedisUrl(url: string): RedisTarget {
  const m = MULTI_HOST.exec(url.trim());
  if (!m) {
    checkRedisUrl(url);
    return { kind: 'single', url };
  }
  const [, scheme, mode, auth, hosts, path] = m as unknown as [
    string,
    string,
    string,
    string | undefined,
    string,
    string | undefined,
  ];
  if (hosts === '') throw badUrl(url, 'names no host; expected host:port[,host:port...]');
  const [user, ...pass] = (auth ?? '').split(':');
  const creds = {
    ...(user ? { username: decodeURIComponent(user) } : {}),
    ...(pass.length ? { password: decodeURIComponent(pass.join(':')) } : {}),
  };
  const tls = scheme === 'rediss';
  if (mode === 'cluster') {
    if (path && path !== '/' && path !== '/0')
      throw badUrl(url, 'has a database; Redis Cluster has database 0 only, drop the path');
    return { kind: 'cluster', seeds: hostList(url, hosts), tls, ...creds };
  }
  const [name, db] = (path ?? '').replace(/^\//, '').split('/');
  if (!name)
    throw badUrl(url, 'names no master; expected redis+sentinel://host:port[,host:port]/<master name>[/db]');
  if (db !== undefined && db !== '' && !/^\d+$/.test(db))
    throw badUrl(url, `has database "${db}"; it must be a number`);
  return { kind: 'sentinel', sentinels: hostList(url, hosts), name, db: db ? Number(db) : 0, tls, ...creds };
}

/** Checks that `url` is a single-server Redis URL tasuki can use; throws a clear error otherwise. */
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
        message:
          `"${maskUrl(url)}" has scheme "${u.protocol}"; use redis:// (plain), rediss:// (TLS), ` +
          'redis+cluster:// (Redis Cluster) or redis+sentinel:// (Sentinel)',
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
