/**
 * Control of tasks and queues from any process: revoke a task that has not run, cancel one that
 * runs, pause and resume a queue, purge its waiting and delayed tasks. Each is one script call on the
 * queue's slot; workers learn of what concerns them from the queue's control stream, which they
 * follow with a blocking read (./follower.ts), so no task pays a check. See docs/control.md.
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import type { RedisConnection } from '../connection/redis.js';
import { CancelledError, redisError, RevokedError } from '../errors.js';
import type { WaitingTasks } from '../broker/broker.js';
import { CONTROL_MAX_LEN, TICKET_STALE_MS, queueStreams, type TasukiKeys } from '../keys/tasuki-keys.js';
import * as scripts from '../scripts/catalogue.js';
import type { ControlMessage } from '../wire/control.js';
import { GROUP } from '../wire/fields.js';
import { parseTaskId } from '../wire/ids.js';
import { decodeRecord, toStoredError, type TaskState } from '../wire/record.js';

/** Control entries older than this are trimmed (a worker that starts reads back this far). */
export const CONTROL_KEPT_MS = 60 * 60 * 1000;

/** Cap of the completion stream (as the broker's). */
const EVENTS_MAX_LEN = 10_000;

/** Tasks deleted per purge script call: bounds how long one call holds Redis. */
export const PURGE_BATCH = 500;

/** Who asks, by default: this host and process. */
export function defaultAsker(): string {
  return `${hostname()}:${process.pid}`;
}

/** The oldest control entry id kept, for XTRIM MINID. */
export function controlMinId(now = Date.now()): string {
  return `${Math.max(0, now - CONTROL_KEPT_MS)}-0`;
}

/** Options of a revoke, cancel, pause or resume. */
export interface ControlOptions {
  /** Who asks, as written in the task's record and the workers' logs (default `<host>:<pid>`). */
  by?: string;
}

/** The options schema: `by` is short text (it goes into records and logs). */
export const controlOptions = z.strictObject({
  by: z
    .string()
    .min(1, 'must be a short text saying who asks, e.g. "ops:alice"')
    .max(200, 'must be at most 200 characters')
    .optional(),
});

/** What a revoke or a cancel did. */
export interface ControlResult {
  /** The task id. */
  id: string;
  /**
   * `revoked`: it will never run (it was delayed, queued, or fetched and is taken from its worker);
   * `cancelled`: cancel of a task no worker held: it will never run; `cancelling`: a worker runs
   * it: its `ctx.signal` is aborted and the worker records it `cancelled` when the attempt ends;
   * `finished`: too late, it had finished (see `state`); `unknown`: no such task (never enqueued,
   * purged, or its record expired).
   */
  outcome: 'revoked' | 'cancelled' | 'cancelling' | 'finished' | 'unknown';
  /** Where the task was when asked. */
  was?: 'delayed' | 'queued' | 'fetched' | 'running';
  /** `fetched`, `running`: the worker that held it. */
  worker?: string;
  /** `finished`: the state it finished in. */
  state?: TaskState;
}

/**
 * Revokes (`revoke`) or cancels (`cancel`) one task, wherever it is, in one script call: on Redis
 * Streams through the queue's stream (revoke.lua); with `tickets` (RabbitMQ, where a message cannot
 * be taken out of its queue) through the task's ticket (revoke_ticket.lua).
 */
export async function controlTask(
  redis: RedisConnection,
  keys: TasukiKeys,
  resultTtlMs: number,
  id: string,
  op: 'revoke' | 'cancel',
  by: string,
  tickets = false,
): Promise<ControlResult> {
  const { local, queue } = parseTaskId(id);
  const error = op === 'revoke' ? new RevokedError(by) : new CancelledError(by);
  const stored = toStoredError(error);
  delete stored.stack; // where it was asked says nothing useful to the task's reader
  const now = Date.now();
  const args = {
    id: local,
    op,
    by,
    now,
    ttlMs: resultTtlMs,
    error: JSON.stringify(stored),
    eventsMaxLen: EVENTS_MAX_LEN,
    controlMaxLen: CONTROL_MAX_LEN,
    controlMinId: controlMinId(now),
  };
  const shared = {
    delayed: keys.delayed.key({ queue }),
    result: keys.result.key({ queue, task: local }),
    events: keys.events.key({ queue }),
    control: keys.control.key({ queue }),
  };
  let reply: scripts.RevokeReply;
  try {
    reply = await scripts.run(
      redis,
      tickets
        ? scripts.revokeTicket(
            {
              ...shared,
              tickets: keys.tickets.key({ queue }),
              purges: keys.purges.key({ queue }),
            },
            args,
          )
        : scripts.revoke(
            {
              ...shared,
              streams: queueStreams(keys, queue),
              parked: keys.parked.key({ queue }),
              moves: keys.moves.key({ queue }),
            },
            { ...args, group: GROUP },
          ),
    );
  } catch (err) {
    throw redisError(`${op} of task ${id}`, err);
  }
  const done = op === 'revoke' ? 'revoked' : 'cancelled';
  switch (reply[0]) {
    case 'delayed':
    case 'queued':
      return { id, outcome: done, was: reply[0] };
    case 'fetched':
      return { id, outcome: 'revoked', was: 'fetched', worker: reply[1] };
    case 'running':
      return { id, outcome: 'cancelling', was: 'running', worker: reply[1] };
    case 'finished':
      return { id, outcome: 'finished', state: decodeRecord(reply[1]).state };
    default:
      return { id, outcome: 'unknown' };
  }
}

/** A paused queue: who paused it and when. */
export interface PauseInfo {
  by: string;
  /** When it was paused (ms). */
  since: number;
}

/** Pauses or resumes a queue for every worker; resolves false when it already was so. */
export async function setPaused(
  redis: RedisConnection,
  keys: TasukiKeys,
  queue: string,
  paused: boolean,
  by: string,
): Promise<boolean> {
  const now = Date.now();
  const message: ControlMessage = { op: paused ? 'pause' : 'resume', by, at: now };
  const info: PauseInfo = { by, since: now };
  try {
    const changed = await scripts.run(
      redis,
      scripts.pause(
        { paused: keys.paused.key({ queue }), control: keys.control.key({ queue }) },
        {
          op: message.op as 'pause' | 'resume',
          value: JSON.stringify(info),
          message: JSON.stringify(message),
          maxLen: CONTROL_MAX_LEN,
          minId: controlMinId(now),
        },
      ),
    );
    return changed === 1;
  } catch (err) {
    throw redisError(`${paused ? 'pausing' : 'resuming'} queue "${queue}"`, err);
  }
}

/** The pause of each queue, `undefined` for those not paused (one GET per queue, pipelined). */
export async function readPaused(
  redis: RedisConnection,
  keys: TasukiKeys,
  queues: readonly string[],
): Promise<(PauseInfo | undefined)[]> {
  try {
    const values = await Promise.all(queues.map((queue) => redis.get(keys.paused.key({ queue }))));
    return values.map((v) => (v === null ? undefined : decodePause(v)));
  } catch (err) {
    throw redisError('reading which queues are paused', err, { wrote: false });
  }
}

function decodePause(raw: string): PauseInfo {
  try {
    const v = JSON.parse(raw) as Partial<PauseInfo>;
    return { by: String(v.by ?? '?'), since: Number(v.since ?? 0) };
  } catch {
    return { by: '?', since: 0 };
  }
}

/** How many tasks a purge deleted. */
export interface PurgeResult {
  queue: string;
  /** Tasks that waited in the queue for a worker. */
  waiting: number;
  /** Delayed tasks and retries waiting for their time. */
  delayed: number;
}

/**
 * Purges a queue whose tasks wait on a broker that keeps them (RabbitMQ): the broker purges its
 * queue, then one script call raises the queue's purge generation, so every task published before
 * that no worker had taken — in a delay level, or pushed to a worker and not started — is dropped
 * when a worker fetches it (and is unknown to lookups and revokes meanwhile).
 */
export async function purgeBrokerQueue(
  redis: RedisConnection,
  keys: TasukiKeys,
  waiting: WaitingTasks,
  queue: string,
): Promise<PurgeResult> {
  const out: PurgeResult = { queue, waiting: await waiting.purge(queue), delayed: 0 };
  const k = {
    delayed: keys.delayed.key({ queue }),
    purges: keys.purges.key({ queue }),
    tickets: keys.tickets.key({ queue }),
  };
  try {
    // The first call purges; the next ones sweep the tickets of the deleted tasks, a page each.
    for (let cursor = ''; ;) {
      const [delayed, next] = await scripts.run(
        redis,
        scripts.purgeTickets(k, { oldest: Date.now() - TICKET_STALE_MS, cursor, count: PURGE_BATCH }),
      );
      out.delayed += delayed;
      if (next === '') break;
      cursor = next;
    }
  } catch (err) {
    throw redisError(
      `purging queue "${queue}" (RabbitMQ purged ${out.waiting} waiting tasks; its delayed tasks were not purged: try again)`,
      err,
    );
  }
  return out;
}

/**
 * Deletes a queue's waiting and delayed tasks, in batches of {@link PURGE_BATCH} (each one script
 * call, so Redis is never held long); tasks workers hold run on. Delayed first, so a task promoted
 * meanwhile is caught in the stream.
 */
export async function purgeQueue(
  redis: RedisConnection,
  keys: TasukiKeys,
  queue: string,
): Promise<PurgeResult> {
  const delayed = keys.delayed.key({ queue });
  const parked = keys.parked.key({ queue });
  const [stream] = queueStreams(keys, queue);
  const k = { stream: stream as string, delayed, parked };
  const out: PurgeResult = { queue, waiting: 0, delayed: 0 };
  try {
    for (;;) {
      const [n, next] = await scripts.run(
        redis,
        scripts.purge(k, { group: GROUP, what: 'delayed', after: '-', count: PURGE_BATCH }),
      );
      out.delayed += n;
      if (next === '') break;
    }
    // The queue's stream and each of its priority levels' (an absent one has nothing to purge).
    for (const level of queueStreams(keys, queue)) {
      for (let after = '-'; ;) {
        const [n, next] = await scripts.run(
          redis,
          scripts.purge(
            { stream: level, delayed, parked },
            { group: GROUP, what: 'waiting', after, count: PURGE_BATCH },
          ),
        );
        out.waiting += n;
        if (next === '') break;
        after = next;
      }
    }
  } catch (err) {
    throw redisError(
      `purging queue "${queue}" (${out.waiting + out.delayed} tasks were deleted before it failed)`,
      err,
    );
  }
  return out;
}
