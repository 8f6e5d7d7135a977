/** Task ids: `<local>@<queue>`, so any process can find a task from its id alone. */
import { randomBytes } from 'node:crypto';
import { TasukiError } from '../errors.js';

/** Queue names: 1-64 letters, digits, `_`, `-` or `.`, starting with a letter or digit. */
export const QUEUE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * A task id is `<local>@<queue>`: the queue is part of the id, so any process can look a task up
 * from its id alone. `local` is the task's first stream entry id (`1732391234567-0`) for a task
 * that ran at once, or a generated `<ms>-d<random>` for a task that started delayed
 * (`<ms>-p<random>` for any task on RabbitMQ).
 */
export function formatTaskId(local: string, queue: string): string {
  return `${local}@${queue}`;
}

/** Splits a task id; throws `E_TASK_ID` when it is not one. */
export function parseTaskId(id: string): { local: string; queue: string } {
  const at = typeof id === 'string' ? id.lastIndexOf('@') : -1;
  const local = at > 0 ? id.slice(0, at) : '';
  const queue = at > 0 ? id.slice(at + 1) : '';
  if (!/^\d+-[0-9a-z]+$/.test(local) || !QUEUE_NAME.test(queue)) {
    throw new TasukiError(
      'E_TASK_ID',
      `"${String(id).slice(0, 100)}" is not a tasuki task id; ids look like "1732391234567-0@emails" (as returned by enqueue)`,
    );
  }
  return { local, queue };
}

/** Bits of an attempt's fence that count its deliveries (see {@link attemptFence}). */
const DELIVERY_BITS = 20n;
const DELIVERY_MAX = (1 << 20) - 1;

/**
 * The fencing token of an attempt: the time of its stream entry (ms; a retry, a promotion or a
 * hand-back is a newer entry) above the entry's delivery count (a take-over by another worker
 * counts one more). Rises with every attempt and take-over of a task; fits a PostgreSQL `bigint` for
 * entries made before the year 2248.
 */
export function attemptFence(entry: string, deliveries: number): bigint {
  const ms = Number(entry.slice(0, entry.indexOf('-')));
  const count = Math.min(Math.max(0, Math.trunc(deliveries)), DELIVERY_MAX);
  return (BigInt(Number.isSafeInteger(ms) && ms > 0 ? ms : 0) << DELIVERY_BITS) | BigInt(count);
}

/** A new local id for a task that starts in the delayed set. */
export function delayedLocalId(now: number): string {
  return `${now}-d${randomBytes(6).toString('hex')}`;
}

/**
 * A new local id for a task published at once on a broker that names no tasks itself (RabbitMQ):
 * `<ms>-p<random>`, carried in the message like a delayed task's.
 */
export function publishedLocalId(now: number): string {
  return `${now}-p${randomBytes(6).toString('hex')}`;
}

/**
 * The task id (local part) of a canvas member's continuation on a broker that names no tasks itself
 * (RabbitMQ): the member's own with `k` appended, so every continuation written for one member (its
 * outcome recorded again after a redelivery) carries the same id, and runs once (see
 * src/broker/rabbitmq-outbox.ts). On Redis Streams a continuation is named by its stream entry.
 */
export function continuationLocalId(member: string): string {
  return `${member}k`;
}
