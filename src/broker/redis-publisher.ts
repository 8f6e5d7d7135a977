/**
 * Publishing on Redis Streams: one command per task — a plain XADD (auto-pipelined with other
 * enqueues), the `schedule` script for a delayed task, `enqueue_unique` with an idempotency key —
 * and one `enqueue_bulk` script call (or one MULTI) per queue for a bulk enqueue. With
 * `enqueueReplicas`, each write is followed by WAIT in the same pipeline.
 */
import type { ChainableCommander } from 'ioredis';
import { isRedirection, refreshSlots, type RedisConnection } from '../connection/redis.js';
import { execTransaction } from '../connection/transaction.js';
import { redisError, TasukiError } from '../errors.js';
import { queueStreams, type TasukiKeys } from '../keys/tasuki-keys.js';
import * as scripts from '../scripts/catalogue.js';
import { CLAIM_MESSAGE_FIELD, MESSAGE_FIELD } from '../wire/fields.js';
import type { Publication, Published, Publisher } from './broker.js';

/** What the Redis Streams publisher needs. */
export interface RedisPublisherSettings {
  /** The app's command connection (auto-pipelined). */
  redis: RedisConnection;
  keys: TasukiKeys;
  idempotencyTtlMs: number;
  /** Replicas that must acknowledge each write, and how long to wait for them; `undefined`: none. */
  replicas: { count: number; timeoutMs: number } | undefined;
}

/** A task that runs at once with no idempotency key: a plain XADD (above level 0, enqueue_levels). */
function isPlain(p: Publication): boolean {
  return p.localId === undefined && p.idempotencyKey === undefined;
}

export class RedisStreamsPublisher implements Publisher {
  readonly mintsIds = true;
  /** Scripts write straight to the queue's stream: no outbox. */
  readonly outbox = undefined;
  private readonly redis: RedisConnection;
  private readonly keys: TasukiKeys;

  constructor(private readonly settings: RedisPublisherSettings) {
    this.redis = settings.redis;
    this.keys = settings.keys;
  }

  /** The one command that writes a task: a script call, or a plain XADD. */
  private command(p: Publication): scripts.ScriptCall<unknown> | { stream: string; message: string } {
    const k = this.keys;
    const queue = p.queue;
    if (p.idempotencyKey !== undefined) {
      return scripts.enqueueUnique(
        {
          idempotency: k.idempotency.key({ queue, key: p.idempotencyKey }),
          streams: queueStreams(k, queue),
          delayed: k.delayed.key({ queue }),
          parked: k.parked.key({ queue }),
          control: k.control.key({ queue }),
        },
        {
          ttlMs: this.settings.idempotencyTtlMs,
          message: p.message,
          due: p.due,
          id: p.localId ?? '',
          level: p.priority,
        },
      );
    }
    if (p.localId !== undefined) {
      return scripts.schedule(
        { delayed: k.delayed.key({ queue }), parked: k.parked.key({ queue }) },
        { id: p.localId, due: p.due, message: p.message },
      );
    }
    // A level above 0: its level's stream, made with its group on first use (one script call).
    if (p.priority > 0) return this.levels(queue, [p]);
    return { stream: k.stream.key({ queue }), message: p.message };
  }

  /** One enqueue_levels call for tasks that run at once, each on its priority level's stream. */
  private levels(queue: string, items: readonly Publication[]): scripts.ScriptCall<string[]> {
    const k = this.keys;
    return scripts.enqueueLevels(
      { streams: queueStreams(k, queue), control: k.control.key({ queue }) },
      items.map((p) => ({ level: p.priority, message: p.message })),
    );
  }

  /** Adds the command for one task to a MULTI or pipeline. */
  private write(tx: ChainableCommander, p: Publication): void {
    const c = this.command(p);
    if ('script' in c) scripts.add(tx, c);
    else tx.xadd(c.stream, '*', p.claimed ? CLAIM_MESSAGE_FIELD : MESSAGE_FIELD, c.message);
  }

  publish(p: Publication): Promise<string> {
    const sent = this.send(p);
    // A task that runs at once is named by its entry id, the XADD's reply: its promise is returned
    // as it is (no extra promise per task on the hot path).
    const local = p.localId;
    if (local !== undefined) return sent.then(() => local);
    // Above level 0 the reply is enqueue_levels': the entry references, here one.
    return p.priority > 0 ? sent.then((ids) => (ids as string[])[0] as string) : (sent as Promise<string>);
  }

  async publishUnique(p: Publication): Promise<{ local: string; created: boolean }> {
    const [created, local] = (await this.send(p)) as [number, string];
    return { local, created: created === 1 };
  }

  /**
   * Writes one task: its script, or a plain XADD to the field of its message format (a plain
   * command, so that concurrent enqueues share one write through auto-pipelining).
   */
  private send(p: Publication): Promise<unknown> {
    const replicas = this.settings.replicas;
    if (replicas && replicas.count > 0) return this.sendReplicated(p, replicas);
    const c = this.command(p);
    return 'script' in c
      ? scripts.run(this.redis, c)
      : this.redis.xadd(c.stream, '*', p.claimed ? CLAIM_MESSAGE_FIELD : MESSAGE_FIELD, c.message);
  }

  /**
   * {@link send} followed by `WAIT` in one pipeline (on a cluster it goes to the queue's node, as
   * its key decides): resolves once `count` replicas have the task, else `E_REPLICAS`.
   */
  private async sendReplicated(
    p: Publication,
    replicas: { count: number; timeoutMs: number },
  ): Promise<unknown> {
    const redis = this.redis;
    const what = `enqueue of task "${p.task}"`;
    // A redirection (failover, slot migration) means nothing was written: ask the cluster where the
    // slot is now and send again. ioredis follows redirections of single commands itself, not of a
    // pipeline holding a write and WAIT.
    for (let attempt = 1; ; attempt++) {
      const tx = redis.pipeline();
      this.write(tx, p);
      tx.wait(replicas.count, replicas.timeoutMs);
      let replies: [Error | null, unknown][] | null;
      try {
        replies = await tx.exec();
      } catch (err) {
        throw redisError(what, err);
      }
      const [writeErr, reply] = replies?.[0] ?? [new Error('no reply'), undefined];
      if (writeErr) {
        if (attempt < 10 && isRedirection(writeErr)) {
          await refreshSlots(redis);
          await new Promise((r) => setTimeout(r, 50 * attempt));
          continue;
        }
        throw redisError(what, writeErr);
      }
      // Written: from here on an error must not say otherwise (a failover can cut the WAIT short).
      const [waitErr, acked] = replies?.[1] ?? [new Error('no reply to WAIT'), 0];
      if (waitErr || Number(acked) < replicas.count) {
        const why = waitErr
          ? `WAIT failed (${waitErr.message})`
          : `only ${String(acked)} of ${replicas.count} replica(s) acknowledged it within ${replicas.timeoutMs} ms`;
        throw new TasukiError(
          'E_REPLICAS',
          `${what}: the primary has it but ${why}; it may run, or be lost if the primary fails now. ` +
            'Check the replicas (INFO replication) or lower the app option enqueueReplicas.',
          waitErr ? { cause: waitErr } : undefined,
        );
      }
      return reply;
    }
  }

  /**
   * Tasks that run at once go in one enqueue_bulk script call (one command for all of them);
   * delayed or idempotent ones keep their own script, all in one MULTI when there are any.
   */
  async publishMany(queue: string, items: readonly Publication[]): Promise<Published[]> {
    const plain: number[] = [];
    const other: number[] = [];
    items.forEach((p, i) => (isPlain(p) ? plain : other).push(i));
    // Any task above level 0 among them: all of them in one enqueue_levels call instead.
    const bulk = plain.some((i) => (items[i] as Publication).priority > 0)
      ? this.levels(
          queue,
          plain.map((i) => items[i] as Publication),
        )
      : scripts.enqueueBulk(
          { stream: this.keys.stream.key({ queue }) },
          plain.map((i) => (items[i] as Publication).message),
        );
    let ids: string[] = [];
    let replies: unknown[] = [];
    if (other.length === 0) {
      ids = await scripts.run(this.redis, bulk);
    } else {
      const tx = this.redis.multi();
      if (plain.length) scripts.add(tx, bulk);
      for (const i of other) this.write(tx, items[i] as Publication);
      replies = await execTransaction(tx, `bulk enqueue of task "${items[0]?.task ?? '?'}"`);
      if (plain.length) ids = replies.shift() as string[];
    }
    const out = new Array<Published>(items.length);
    plain.forEach((i, j) => (out[i] = ids[j] as string));
    other.forEach((i, j) => {
      const p = items[i] as Publication;
      if (p.idempotencyKey !== undefined) {
        const [created, local] = replies[j] as [number, string];
        out[i] = { local, created: created === 1 };
      } else {
        out[i] = p.localId as string;
      }
    });
    return out;
  }
}
