/**
 * The connection type every part receives: one Redis server (also a primary found through Sentinel)
 * or a Redis Cluster. Both are ioredis clients with the same commands; the few places that differ
 * (blocking reads over several queues, CLIENT UNBLOCK, INFO, WAIT) ask {@link isCluster}.
 */
import type { Cluster, Redis } from 'ioredis';

/** A connection to Redis: a single server (`Redis`) or a Redis Cluster (`Cluster`). */
export type RedisConnection = Redis | Cluster;

/** True when the connection is to a Redis Cluster. */
export function isCluster(redis: RedisConnection): redis is Cluster {
  return redis.isCluster;
}

/**
 * The nodes a command about the whole server must visit: every master of a cluster, else the one
 * server (INFO memory, CONFIG GET...).
 */
export function masters(redis: RedisConnection): Redis[] {
  return isCluster(redis) ? redis.nodes('master') : [redis];
}

/** Settings of a connection opened beside another (a blocking reader). */
export interface DuplicateSettings {
  connectionName: string;
  enableAutoPipelining?: boolean;
  maxRetriesPerRequest?: number | null;
}

/** A new connection to the same Redis (server or cluster) with the same settings but these. */
export function duplicateConnection(redis: RedisConnection, settings: DuplicateSettings): RedisConnection {
  if (!isCluster(redis)) return redis.duplicate(settings);
  const { enableAutoPipelining, ...node } = settings;
  return redis.duplicate(undefined, {
    ...(enableAutoPipelining !== undefined ? { enableAutoPipelining } : {}),
    redisOptions: { ...redis.options.redisOptions, ...node },
  });
}
