/**
 * Pages of a queue's waiting, active or delayed tasks, newest or oldest first. Every read is bounded
 * by the page size, never by the queue's length: waiting tasks are the stream entries after the
 * consumer group's last delivered id (XRANGE/XREVRANGE with COUNT), active ones the pending list
 * (XPENDING with COUNT), delayed ones the delayed set by rank (ZRANGE with LIMIT).
 */
import type { RedisConnection } from '../connection/redis.js';
import { redisError } from '../errors.js';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import { GROUP } from '../wire/fields.js';
import { decodeMessage, messageOf, type PayloadClaim } from '../wire/message.js';

/** Which tasks of a queue to list. */
export type ListedState = 'waiting' | 'active' | 'delayed';

export interface ListOptions {
  state: ListedState;
  /** `oldest` first (default) or `newest` first. */
  order?: 'oldest' | 'newest';
  /** Tasks per page (1-1000, default 50). */
  limit?: number;
  /** The `next` of the previous page. */
  cursor?: string | undefined;
}

/** One task in a listing: what it is, not its whole arguments. */
export interface ListedTask {
  id: string;
  queue: string;
  state: ListedState;
  /** Task name (`?` when its message cannot be read). */
  task: string;
  attempt: number;
  /** When it was enqueued or last handed back (from its entry id), ms. */
  enqueuedAt: number;
  /** Delayed: when it is due, ms. */
  dueAt?: number;
  /** Active: the worker (consumer) holding it, how long since its last heartbeat, deliveries. */
  worker?: string;
  idleMs?: number;
  deliveries?: number;
  /** The arguments' JSON, cut to 200 characters; `argsBytes` is its whole length. */
  args: string;
  argsBytes: number;
  /** Claim-checked arguments: where they are in the payload store. */
  claim?: PayloadClaim;
}

/** A page of tasks and the cursor of the next one (absent on the last page). */
export interface TaskPage {
  tasks: ListedTask[];
  next?: string;
}

const PREVIEW = 200;

export async function listTasks(
  redis: RedisConnection,
  keys: TasukiKeys,
  queue: string,
  o: ListOptions,
): Promise<TaskPage> {
  const limit = Math.min(1000, Math.max(1, Math.floor(o.limit ?? 50)));
  const newest = o.order === 'newest';
  try {
    if (o.state === 'delayed') return await delayed(redis, keys, queue, limit, newest, o.cursor);
    if (o.state === 'active') return await active(redis, keys, queue, limit, newest, o.cursor);
    return await waiting(redis, keys, queue, limit, newest, o.cursor);
  } catch (err) {
    throw redisError(`listing ${o.state} tasks of queue "${queue}"`, err, { wrote: false });
  }
}

/** The consumer group's last delivered id ("0-0" before any worker served the queue). */
async function lastDelivered(redis: RedisConnection, stream: string): Promise<string> {
  if (!(await redis.exists(stream))) return '0-0';
  for (const g of (await redis.xinfo('GROUPS', stream)) as unknown[][]) {
    if (g[g.indexOf('name') + 1] === GROUP) return String(g[g.indexOf('last-delivered-id') + 1]);
  }
  return '0-0';
}

async function waiting(
  redis: RedisConnection,
  keys: TasukiKeys,
  queue: string,
  limit: number,
  newest: boolean,
  cursor: string | undefined,
): Promise<TaskPage> {
  const stream = keys.stream.key({ queue });
  const floor = `(${await lastDelivered(redis, stream)}`;
  const entries = newest
    ? await redis.xrevrange(stream, cursor ? `(${cursor}` : '+', floor, 'COUNT', limit)
    : await redis.xrange(stream, cursor ? `(${cursor}` : floor, '+', 'COUNT', limit);
  const tasks = entries.map(([entry, fields]) => listed(queue, 'waiting', entry, safeMessageOf(fields)));
  return pageOf(tasks, entries, limit);
}

/** A page read from a stream or its pending list: full, it goes on after its last entry id. */
function pageOf(
  tasks: TaskPage['tasks'],
  rows: readonly (readonly [string, ...unknown[]])[],
  limit: number,
): TaskPage {
  const last = rows[rows.length - 1];
  return rows.length === limit && last ? { tasks, next: last[0] } : { tasks };
}

async function active(
  redis: RedisConnection,
  keys: TasukiKeys,
  queue: string,
  limit: number,
  newest: boolean,
  cursor: string | undefined,
): Promise<TaskPage> {
  const stream = keys.stream.key({ queue });
  // The pending list has no reverse read; it holds what workers hold (their concurrency and
  // prefetch), so the newest-first page reads up to 1000 and keeps the last ones.
  const pending = async (from: string, count: number): Promise<[string, string, number, number][]> =>
    (await redis.xpending(stream, GROUP, from, '+', count).catch((err: Error) => {
      if (/^NOGROUP\b/.test(err.message)) return [];
      throw err;
    })) as [string, string, number, number][];
  let rows: [string, string, number, number][];
  if (newest) {
    rows = (await pending('-', 1000)).reverse();
    if (cursor) rows = rows.filter((r) => compareIds(r[0], cursor) < 0);
    rows = rows.slice(0, limit);
  } else {
    rows = await pending(cursor ? `(${cursor}` : '-', limit);
  }
  const pipe = redis.pipeline();
  for (const [entry] of rows) pipe.xrange(stream, entry, entry);
  const found = (await pipe.exec()) ?? [];
  const tasks = rows.map(([entry, consumer, idle, deliveries], i) => {
    const got = found[i]?.[1] as [string, string[]][] | undefined;
    const fields = got?.[0]?.[1];
    return {
      ...listed(queue, 'active', entry, fields ? safeMessageOf(fields) : undefined),
      worker: consumer,
      idleMs: Number(idle),
      deliveries: Number(deliveries),
    };
  });
  return pageOf(tasks, rows, limit);
}

async function delayed(
  redis: RedisConnection,
  keys: TasukiKeys,
  queue: string,
  limit: number,
  newest: boolean,
  cursor: string | undefined,
): Promise<TaskPage> {
  const offset = cursor ? Math.max(0, Number.parseInt(cursor, 10) || 0) : 0;
  const key = keys.delayed.key({ queue });
  const flat = newest
    ? await redis.zrevrange(key, offset, offset + limit - 1, 'WITHSCORES')
    : await redis.zrange(key, offset, offset + limit - 1, 'WITHSCORES');
  const ids: string[] = [];
  const dues: number[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    ids.push(flat[i] as string);
    dues.push(Number(flat[i + 1]));
  }
  const raws = ids.length ? await redis.hmget(keys.parked.key({ queue }), ...ids) : [];
  const tasks = ids.map((id, i) => ({
    ...listed(queue, 'delayed', id, raws[i]?.startsWith('=') ? undefined : (raws[i] ?? undefined)),
    dueAt: dues[i] as number,
  }));
  return ids.length === limit ? { tasks, next: String(offset + limit) } : { tasks };
}

function safeMessageOf(fields: readonly string[]): string | undefined {
  try {
    return messageOf(fields);
  } catch {
    return undefined;
  }
}

function listed(queue: string, state: ListedState, entry: string, raw: string | undefined): ListedTask {
  let task = '?';
  let attempt = 1;
  let args = '';
  let claim: PayloadClaim | undefined;
  let local = entry;
  try {
    const m = decodeMessage(raw);
    task = m.name;
    attempt = m.attempt ?? 1;
    local = m.id ?? entry;
    claim = m.claim;
    args = m.claim ? '' : JSON.stringify(m.args);
  } catch {
    args = raw === undefined ? '' : raw;
  }
  return {
    id: `${local}@${queue}`,
    queue,
    state,
    task,
    attempt,
    enqueuedAt: Number(entry.slice(0, entry.indexOf('-'))),
    args: args.length > PREVIEW ? `${args.slice(0, PREVIEW)}…` : args,
    argsBytes: Buffer.byteLength(args),
    ...(claim ? { claim } : {}),
  };
}

function compareIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am - bm || as - bs;
}
