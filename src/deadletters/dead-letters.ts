/**
 * Dead letters: the tasks that failed for good, kept per queue (bounded by length and age) so people
 * can list, show, retry and purge them. The format on the wire is src/wire/dead-letter.ts.
 */
import type { Publisher } from '../broker/broker.js';
import type { RedisConnection } from '../connection/redis.js';
import { OptionsError, redisError, TasukiError, UnknownQueueError } from '../errors.js';
import { queueStreams, type TasukiKeys } from '../keys/tasuki-keys.js';
import type { PayloadStore } from '../payloads/store.js';
import * as scripts from '../scripts/catalogue.js';
import { parseDeadLetter, type StoredDeadLetter } from '../wire/dead-letter.js';
import { formatTaskId, parseTaskId } from '../wire/ids.js';
import { decodeMessage, reencodeMessage } from '../wire/message.js';

/** What the dead-letter tools need from their app (a `Tasuki` app is one). */
export interface DeadLetterHost {
  readonly queues: readonly string[];
  readonly keys: TasukiKeys;
  /** Where claim-checked arguments are: a purged dead letter's payload is deleted with it. */
  readonly payloadStore?: PayloadStore | undefined;
  redis(): Promise<RedisConnection>;
  /**
   * False when tasks travel on a broker other than Redis Streams (RabbitMQ): a retried dead letter
   * is then published through {@link publisher} instead of added to the queue's stream.
   */
  readonly brokerMintsIds?: boolean;
  publisher?(): Promise<Publisher>;
}

/** A task in a queue's dead letters: what the worker stored, with its ids spelled out. */
export interface DeadLetter extends Omit<StoredDeadLetter, 'id'> {
  /** Id of the dead-letter entry (its stream id); also accepted wherever a task id is. */
  deadId: string;
  /** The task's id. */
  taskId: string;
}

/** Which dead letters an operation applies to: some ids (task ids or dead ids), or all. */
export type DeadLetterSelection = { ids: readonly string[] } | { all: true };

/**
 * The dead letters of an app's queues: list, show, retry (put back as fresh tasks) and purge.
 * Each queue keeps at most `deadLetterMaxLen` (approximately) for at most `deadLetterRetention`.
 */
export class DeadLetters {
  constructor(private readonly app: DeadLetterHost) {}

  private key(queue: string): string {
    if (!this.app.queues.includes(queue)) throw new UnknownQueueError(queue, this.app.queues);
    return this.app.keys.dead.key({ queue });
  }

  private static parse(queue: string, deadId: string, fields: string[]): DeadLetter {
    const { letter: d, raw } = parseDeadLetter(fields);
    return {
      deadId,
      taskId: formatTaskId(d.id ?? deadId, queue),
      queue,
      task: d.task ?? '?',
      reason: d.reason ?? 'undecodable',
      error: d.error ?? { name: 'Error', message: 'unreadable dead letter' },
      attempts: d.attempts ?? 0,
      failedAt: d.failedAt ?? 0,
      message: d.message ?? raw,
    };
  }

  /** How many dead letters a queue holds. */
  async count(queue: string): Promise<number> {
    const key = this.key(queue);
    return typed(`count of dead letters of queue "${queue}"`, false, async () =>
      (await this.app.redis()).xlen(key),
    );
  }

  /** The oldest dead letters of a queue first, at most `limit` (default 100), from `after` on. */
  async list(queue: string, opts: { limit?: number; after?: string } = {}): Promise<DeadLetter[]> {
    const key = this.key(queue);
    const limit = opts.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1) {
      throw new OptionsError('dead-letter list options', [
        { path: 'limit', message: 'must be an integer >= 1' },
      ]);
    }
    const start = opts.after ? `(${opts.after}` : '-';
    const entries = await typed(`listing dead letters of queue "${queue}"`, false, async () =>
      (await this.app.redis()).xrange(key, start, '+', 'COUNT', limit),
    );
    return entries.map(([id, fields]) => DeadLetters.parse(queue, id, fields));
  }

  /** One dead letter by task id or dead id; `null` when there is none. */
  async get(queue: string, id: string): Promise<DeadLetter | null> {
    return (await this.find(queue, [id]))[0] ?? null;
  }

  /** The dead letters matching the selection, scanning the (bounded) dead-letter stream once. */
  private find(queue: string, ids: readonly string[] | 'all'): Promise<DeadLetter[]> {
    const key = this.key(queue);
    return typed(`reading dead letters of queue "${queue}"`, false, () => this.scan(queue, key, ids));
  }

  private async scan(queue: string, key: string, ids: readonly string[] | 'all'): Promise<DeadLetter[]> {
    const redis: RedisConnection = await this.app.redis();
    // A task id (`<local>@<queue>`) names a task; a bare id is a dead-letter id or a task's local
    // id. The two kinds are matched apart: a dead letter's stream id can equal another task's
    // local id (both are XADD ids, made in the same millisecond on one server).
    const byTask =
      ids === 'all'
        ? undefined
        : new Set(ids.filter((i) => i.includes('@')).map((i) => parseTaskId(i).local));
    const bare = ids === 'all' ? undefined : new Set(ids.filter((i) => !i.includes('@')));
    const out: DeadLetter[] = [];
    let start = '-';
    for (;;) {
      const page = await redis.xrange(key, start, '+', 'COUNT', 1000);
      for (const [id, fields] of page) {
        const d = DeadLetters.parse(queue, id, fields);
        const local = parseTaskId(d.taskId).local;
        if (!byTask || !bare || byTask.has(local) || bare.has(id) || bare.has(local)) out.push(d);
      }
      if (page.length < 1000) return out;
      start = `(${page[page.length - 1]?.[0]}`;
    }
  }

  private static selection(sel: DeadLetterSelection): readonly string[] | 'all' {
    if ('all' in sel && sel.all) return 'all';
    const ids: unknown = 'ids' in sel ? sel.ids : undefined;
    if (Array.isArray(ids) && ids.length > 0 && ids.every((i) => typeof i === 'string')) return ids;
    throw new OptionsError('dead-letter selection', [
      { path: 'ids', message: 'give some ids, or { all: true }' },
    ]);
  }

  /**
   * Puts dead letters back on their queue as fresh tasks (attempt 1, same task id, no expiry).
   * Resolves how many went back; undecodable messages cannot be retried and are counted in `skipped`.
   */
  async retry(queue: string, sel: DeadLetterSelection): Promise<{ retried: number; skipped: number }> {
    const letters = await this.find(queue, DeadLetters.selection(sel));
    const tasks: { deadEntry: string; id: string; message: string; resultKey: string }[] = [];
    let skipped = 0;
    for (const d of letters) {
      try {
        const m = decodeMessage(d.message);
        const local = parseTaskId(d.taskId).local;
        tasks.push({
          deadEntry: d.deadId,
          id: local,
          message: reencodeMessage(m, { id: local, storeResult: m.storeResult, canvas: m.canvas }),
          resultKey: this.app.keys.result.key({ queue, task: local }),
        });
      } catch {
        skipped++;
      }
    }
    let retried = 0;
    const k = this.app.keys;
    const redis = await this.app.redis();
    if (this.app.brokerMintsIds === false && this.app.publisher) {
      return { retried: await this.republish(redis, queue, tasks), skipped };
    }
    for (let i = 0; i < tasks.length; i += 200) {
      retried += await typed(
        `retry of dead letters of queue "${queue}" (${retried} put back before this)`,
        undefined,
        () =>
          scripts.run(
            redis,
            scripts.dlqRetry(
              {
                dead: k.dead.key({ queue }),
                streams: queueStreams(k, queue),
                parked: k.parked.key({ queue }),
                control: k.control.key({ queue }),
              },
              { tasks: tasks.slice(i, i + 200) },
            ),
          ),
      );
    }
    return { retried, skipped };
  }

  /**
   * {@link retry} on a broker other than Redis Streams: each dead letter is taken (XDEL: only one
   * caller gets it), its old record deleted, and its message published again; a publish that fails
   * puts the dead letter back and rejects.
   */
  private async republish(
    redis: RedisConnection,
    queue: string,
    tasks: readonly { deadEntry: string; id: string; message: string; resultKey: string }[],
  ): Promise<number> {
    const publisher = await (this.app.publisher as () => Promise<Publisher>)();
    const key = this.key(queue);
    const what = `retry of dead letters of queue "${queue}"`;
    let retried = 0;
    for (const t of tasks) {
      const [letter] = await typed(what, undefined, () => redis.xrange(key, t.deadEntry, t.deadEntry));
      const taken = await typed(what, undefined, () => redis.xdel(key, t.deadEntry));
      if (taken !== 1 || !letter) continue;
      await redis.del(t.resultKey).catch(() => undefined);
      const decoded = decodeMessage(t.message);
      const task = decoded.name;
      try {
        await publisher.publish({
          queue,
          task,
          message: t.message,
          claimed: t.message.startsWith('{'),
          due: 0,
          localId: t.id,
          idempotencyKey: undefined,
          priority: decoded.priority ?? 0,
        });
      } catch (err) {
        await redis.xadd(key, '*', ...letter[1]).catch(() => undefined);
        throw new TasukiError(
          'E_BROKER',
          `${what}: ${retried} put back; publishing task ${t.id} failed (${(err as Error).message}), its dead letter is kept. Try again.`,
          { cause: err },
        );
      }
      retried++;
    }
    return retried;
  }

  /**
   * Deletes dead letters for good, and the payloads of claim-checked ones (best effort: one the
   * store could not delete expires by its TTL). Resolves how many dead letters were deleted.
   */
  async purge(queue: string, sel: DeadLetterSelection): Promise<number> {
    const which = DeadLetters.selection(sel);
    const key = this.key(queue);
    const redis = await this.app.redis();
    const what = `purge of dead letters of queue "${queue}"`;
    const store = this.app.payloadStore;
    if (which === 'all' && !store) {
      return typed(what, undefined, async () => {
        const n = await redis.xlen(key);
        await redis.del(key);
        return n;
      });
    }
    const letters = await this.find(queue, which);
    if (letters.length === 0) return 0;
    const purged = await typed(what, undefined, () => redis.xdel(key, ...letters.map((d) => d.deadId)));
    if (store) {
      const refs = letters.flatMap((d) => {
        const ref = claimRef(d.message);
        return ref === undefined ? [] : [ref];
      });
      if (refs.length) await store.delete(refs).catch(() => undefined);
    }
    return purged;
  }
}

/** The payload ref of a claim-checked message, if it is one. */
function claimRef(message: string): string | undefined {
  try {
    return decodeMessage(message).claim?.ref;
  } catch {
    return undefined;
  }
}

/** Runs a Redis call; a failure becomes a typed `E_REDIS` error saying what was being done. */
async function typed<T>(what: string, wrote: false | undefined, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw redisError(what, err, wrote === false ? { wrote } : {});
  }
}

/** Thrown by the CLI when a dead letter asked for does not exist. */
export function noSuchDeadLetter(queue: string, id: string): TasukiError {
  return new TasukiError(
    'E_NOT_FOUND',
    `no dead letter "${id}" in queue "${queue}"; see \`tasuki dlq list --queue ${queue}\``,
  );
}
