/** The keys the audit benchmark seeds and declares: tasuki's own plus one app keyspace and a cache. */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Keyspace } from '../src/keys/registry.js';
import { tasukiKeys } from '../src/keys/tasuki-keys.js';
import { defineKeyspace } from '../src/keyspaces/define.js';
import type { AppKeyspace } from '../src/keyspaces/keyspace.js';

export const BENCH_PREFIX = 'bench';

const noRedis = (): Promise<Redis> => Promise.reject(new Error('the benchmark declares keys only'));

/** tasuki's keys under the bench prefix, plus the app keyspace `user.profile`. */
export function benchDeclarations(): {
  space: Keyspace;
  profiles: AppKeyspace<{ name: string; plan: string }>;
} {
  const space = tasukiKeys(BENCH_PREFIX).space;
  const host = { keyspace: space, redis: noRedis, locks: () => Promise.reject(new Error('no locks')) };
  const profiles = defineKeyspace(host, {
    owner: 'accounts',
    name: 'user.profile',
    version: 2,
    ttl: '1d',
    codec: 'msgpack',
    schema: z.object({ name: z.string(), plan: z.string() }),
    migrations: { 1: (v) => ({ ...(v as object), plan: 'free' }) },
    writer: 'bench-seeder',
  });
  return { space, profiles };
}

/** The registry the audit checks keys against. */
export function benchKeyspace(): Keyspace {
  return benchDeclarations().space;
}
