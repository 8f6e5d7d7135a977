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

/**
 * `WAIT replicas timeoutMs` on the connection that wrote `key`: one server's connection, or on a
 * cluster the connection to the node serving `key` (a bare WAIT would reach any node, where this
 * client wrote nothing, and answer at once). Resolves how many replicas acknowledged.
 */
export async function waitForReplicas(
  redis: RedisConnection,
  key: string,
  replicas: number,
  timeoutMs: number,
): Promise<number> {
  if (!isCluster(redis)) return redis.wait(replicas, timeoutMs);
  // A pipeline goes to the node of its keys; the keyless WAIT rides with the EXISTS.
  const replies = await redis.pipeline().exists(key).wait(replicas, timeoutMs).exec();
  const [err, acked] = replies?.[1] ?? [new Error('WAIT got no reply'), 0];
  if (err) throw err;
  return Number(acked);
}

/** A cluster's answer that the key's slot is (being) served elsewhere: nothing was done. */
export function isRedirection(err: unknown): boolean {
  return err instanceof Error && /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN)\b/.test(err.message);
}

/**
 * Makes a cluster connection read the slot map again (after a redirection ioredis could not follow
 * itself, e.g. in a pipeline mixing a write and WAIT). No-op for one server.
 */
export async function refreshSlots(redis: RedisConnection): Promise<void> {
  if (!isCluster(redis)) return;
  await new Promise<void>((resolve) => redis.refreshSlotsCache(() => resolve()));
}
