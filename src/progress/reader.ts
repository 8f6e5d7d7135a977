/**
 * Reading progress from any process: the latest report (one XREVRANGE), or every report as it
 * comes (XREAD BLOCK on a connection of the follower's own, ended when the task has finished).
 */
import type { RedisConnection } from '../connection/redis.js';
import { redisError } from '../errors.js';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import { parseTaskId } from '../wire/ids.js';
import { TERMINAL_STATES, type TaskState } from '../wire/record.js';
import type { Progress } from './value.js';

/** Options of {@link followProgress}. */
export interface FollowProgressOptions {
  /** Stops following (the iterator ends) when aborted. */
  signal?: AbortSignal;
  /**
   * How long one blocking read waits before the task's state is checked again, ms (default 1000).
   * It bounds how late the iterator ends after a task finished without a final report.
   */
  blockMs?: number;
}

/** What following needs from the app (a `Tasuki` app is one). */
export interface ProgressSource {
  readonly keys: TasukiKeys;
  /** A new connection of the follower's own (blocking reads hold it). */
  connectRedis(clientName: string): Promise<RedisConnection>;
  getTask(id: string): Promise<{ state: TaskState } | null>;
}

type Entry = [id: string, fields: string[]];

/** One stream entry as a report, and whether it repeats the previous one or ends its attempt. */
function parseEntry([id, fields]: Entry): { progress: Progress; repeat: boolean; end: boolean } {
  const get = (name: string): string | undefined => {
    for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
    return undefined;
  };
  const json = get('v');
  return {
    progress: {
      value: json === undefined ? null : (JSON.parse(json) as unknown),
      attempt: Number(get('n') ?? 1),
      at: Number(id.slice(0, id.indexOf('-'))),
    },
    repeat: get('r') === '1',
    end: get('e') === '1',
  };
}

function progressKey(keys: TasukiKeys, id: string): string {
  const { local, queue } = parseTaskId(id);
  return keys.progress.key({ queue, task: local });
}

/** The latest progress of a task, or `null` when it reported none (or its reports expired). */
export async function readProgress(
  redis: RedisConnection,
  keys: TasukiKeys,
  id: string,
): Promise<Progress | null> {
  const key = progressKey(keys, id);
  let rows: Entry[];
  try {
    rows = await redis.xrevrange(key, '+', '-', 'COUNT', 1);
  } catch (err) {
    throw redisError(`reading the progress of task ${id}`, err, { wrote: false });
  }
  const row = rows[0];
  return row ? parseEntry(row).progress : null;
}

/**
 * Every progress report of a task, oldest first: those kept so far (up to the last 100), then new
 * ones as they are written. Ends once the task has finished (succeeded, failed, expired; a retry
 * goes on with its next attempt's reports), when it is unknown, or when `signal` aborts.
 */
export async function* followProgress(
  source: ProgressSource,
  id: string,
  opts: FollowProgressOptions = {},
): AsyncGenerator<Progress, void, undefined> {
  const key = progressKey(source.keys, id);
  const blockMs = opts.blockMs ?? 1000;
  const signal = opts.signal;
  if (signal?.aborted) return;
  const redis = await source.connectRedis('tasuki:progress-follow');
  const stop = (): void => redis.disconnect();
  signal?.addEventListener('abort', stop, { once: true });
  const over = async (): Promise<boolean> => {
    const info = await source.getTask(id);
    return info === null || TERMINAL_STATES.has(info.state);
  };
  try {
    let last = '0-0';
    for (;;) {
      let reply: [string, Entry[]][] | null;
      try {
        reply = await redis.xread('COUNT', 100, 'BLOCK', blockMs, 'STREAMS', key, last);
      } catch (err) {
        if (signal?.aborted) return;
        throw redisError(`following the progress of task ${id}`, err, { wrote: false });
      }
      let ended = reply === null;
      for (const entry of reply?.[0]?.[1] ?? []) {
        last = entry[0];
        const { progress, repeat, end } = parseEntry(entry);
        if (!repeat) yield progress;
        if (signal?.aborted) return;
        ended ||= end;
      }
      if (ended && (await over())) return;
    }
  } finally {
    signal?.removeEventListener('abort', stop);
    redis.disconnect();
  }
}
