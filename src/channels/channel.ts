/**
 * Channels: application publish/subscribe on Redis Streams instead of Pub/Sub. On Redis Cluster a
 * classic PUBLISH is copied to every shard (the LINE case in docs/cluster.md); a channel is one
 * stream, so one slot and one shard: publishing costs the same at 3 shards or 30. Each subscriber
 * reads with its own cursor (and can resume from the last id it saw after a reconnect); a consumer
 * group shares the messages out among workers. Every message is checked against the channel's schema.
 */
import { randomBytes } from 'node:crypto';
import { duplicateConnection, type RedisConnection } from '../connection/redis.js';
import { OptionsError, TasukiError } from '../errors.js';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import * as scripts from '../scripts/catalogue.js';
import { validate, type InferInput, type InferOutput, type StandardSchemaV1 } from '../task/schema.js';
import { toMs, type Duration } from '../util/duration.js';
import { CHANNEL_FIELD, fieldValue } from '../wire/fields.js';

/** What a channel needs from its app (a `Tasuki` app is one). */
export interface ChannelHost {
  readonly keys: TasukiKeys;
  /** The app's command connection. */
  redis(): Promise<RedisConnection>;
}

/** A channel's definition. */
export interface ChannelOptions<S extends StandardSchemaV1> {
  /** The channel's name: letters, digits, `.`, `_`, `-`, `:` (at most 100). */
  name: string;
  /** Schema of its messages (any Standard Schema: zod, valibot...), checked at publish and at read. */
  schema: S;
  /** About how many messages are kept (default 10,000). */
  maxLen?: number;
  /** How long messages are kept at most (default `1h`). */
  maxAge?: Duration;
}

/** One message read from a channel. */
export interface ChannelMessage<T> {
  /** Its stream entry id: resume after it with `from`. */
  id: string;
  data: T;
}

/** How to subscribe. */
export interface SubscribeOptions {
  /** Where to start: `'$'` new messages only (default), `'0'` everything kept, or an entry id to resume after. */
  from?: string;
  /** Ends the subscription. */
  signal?: AbortSignal;
  /** Called with a message that does not match the schema (it is skipped). Default: ignored. */
  onInvalid?: (id: string, raw: string, reason: string) => void;
}

/** How to consume as part of a consumer group. */
export interface ConsumeOptions extends SubscribeOptions {
  /** This consumer's name in the group (default random). */
  consumer?: string;
}

const NAME = /^[A-Za-z0-9._:-]{1,100}$/;
const BLOCK_MS = 1000;

/** A running subscription: its cursor, and how to end it. */
export class Subscription {
  /** Id of the last message handled: pass it as `from` to resume after a reconnect or restart. */
  lastId: string;
  /** Resolves when the subscription ended (closed, aborted, or its handler threw: then rejects). */
  readonly done: Promise<void>;
  private stopped = false;
  private conn: RedisConnection | undefined;

  /** @internal */
  constructor(from: string, loop: (sub: Subscription) => Promise<void>) {
    this.lastId = from;
    this.done = loop(this).finally(() => this.conn?.disconnect());
  }

  /** @internal */
  get closed(): boolean {
    return this.stopped;
  }

  /** @internal The subscription's own blocking connection. */
  connection(open: () => RedisConnection): RedisConnection {
    return (this.conn ??= open());
  }

  /** Ends the subscription (a read in progress is cut) and waits for it. */
  async close(): Promise<void> {
    this.stopped = true;
    this.conn?.disconnect();
    await this.done.catch(() => undefined);
  }
}

type ReadReply = [string, [string, string[]][]][] | null;

/** A typed channel on one Redis stream. */
export class Channel<S extends StandardSchemaV1> {
  readonly name: string;
  readonly key: string;
  private readonly maxLen: number;
  private readonly maxAgeMs: number;

  constructor(
    private readonly host: ChannelHost,
    private readonly options: ChannelOptions<S>,
  ) {
    const issues = [];
    if (typeof options.name !== 'string' || !NAME.test(options.name))
      issues.push({ path: 'name', message: `"${String(options.name)}" must match ${String(NAME)}` });
    const maxLen = options.maxLen ?? 10_000;
    if (!Number.isInteger(maxLen) || maxLen < 1)
      issues.push({ path: 'maxLen', message: 'must be an integer >= 1' });
    const maxAge = toMs(options.maxAge ?? '1h');
    if (maxAge === undefined || maxAge <= 0)
      issues.push({ path: 'maxAge', message: 'must be a positive duration' });
    if (typeof options.schema?.['~standard']?.validate !== 'function')
      issues.push({ path: 'schema', message: 'must be a Standard Schema (zod, valibot, arktype...)' });
    if (issues.length) throw new OptionsError(`channel "${String(options.name)}" options`, issues);
    this.name = options.name;
    this.key = host.keys.channel.key({ channel: options.name });
    this.maxLen = maxLen;
    this.maxAgeMs = maxAge as number;
  }

  /** Publishes messages (checked against the schema first; nothing is sent if one is bad). Resolves their ids. */
  async publish(...messages: InferInput<S>[]): Promise<string[]> {
    const encoded: string[] = [];
    for (const [i, m] of messages.entries()) {
      const checked = await validate(this.options.schema, m);
      if (!checked.ok) {
        throw new TasukiError(
          'E_OPTIONS',
          `message ${i} for channel "${this.name}" does not match its schema: ` +
            checked.issues.map((x) => `${x.path || '(root)'} ${x.message}`).join('; '),
        );
      }
      encoded.push(JSON.stringify(m));
    }
    if (encoded.length === 0) return [];
    const redis = await this.host.redis();
    const minId = `${Math.max(0, Date.now() - this.maxAgeMs)}-0`;
    return scripts.run(
      redis,
      scripts.channelPublish({ channel: this.key }, { maxLen: this.maxLen, minId, messages: encoded }),
    );
  }

  /**
   * Fan-out: `handler` sees every message from `from` on, in order, with this subscriber's own cursor
   * (one blocking connection per subscription). A handler that throws ends the subscription
   * (`done` rejects) with `lastId` at the message before, so a resume sees the failed one again.
   */
  subscribe(
    handler: (message: ChannelMessage<InferOutput<S>>) => void | Promise<void>,
    options: SubscribeOptions = {},
  ): Subscription {
    return new Subscription(options.from ?? '$', async (sub) => {
      const redis = await this.host.redis();
      const conn = sub.connection(() => this.blocking(redis, 'tasuki:channel'));
      if (sub.lastId === '$') {
        // '$' resolved once, so nothing published between two reads is missed.
        const last = (await conn.xrevrange(this.key, '+', '-', 'COUNT', 1)) as [string, string[]][];
        sub.lastId = last[0]?.[0] ?? '0-0';
      }
      while (!sub.closed && !options.signal?.aborted) {
        const reply = (await this.read(sub, () =>
          conn.xread('COUNT', 100, 'BLOCK', BLOCK_MS, 'STREAMS', this.key, sub.lastId),
        )) as ReadReply;
        for (const [id, fields] of reply?.[0]?.[1] ?? []) {
          await this.handle(id, fields, handler, options);
          sub.lastId = id;
        }
      }
    });
  }

  /**
   * Work sharing: the members of consumer group `group` share the messages, each handled by one of
   * them and acknowledged (XACK) once `handler` resolves. A message whose handler threw stays pending
   * in the group (XPENDING shows it) and the consumer goes on.
   */
  consume(
    group: string,
    handler: (message: ChannelMessage<InferOutput<S>>) => void | Promise<void>,
    options: ConsumeOptions = {},
  ): Subscription {
    const consumer = options.consumer ?? `c-${randomBytes(4).toString('hex')}`;
    return new Subscription(options.from ?? '$', async (sub) => {
      const redis = await this.host.redis();
      try {
        await redis.xgroup('CREATE', this.key, group, sub.lastId, 'MKSTREAM');
      } catch (err) {
        if (!(err instanceof Error && err.message.includes('BUSYGROUP'))) throw err;
      }
      const conn = sub.connection(() => this.blocking(redis, 'tasuki:channel-group'));
      while (!sub.closed && !options.signal?.aborted) {
        const reply = (await this.read(sub, () =>
          conn.xreadgroup(
            'GROUP',
            group,
            consumer,
            'COUNT',
            100,
            'BLOCK',
            BLOCK_MS,
            'STREAMS',
            this.key,
            '>',
          ),
        )) as ReadReply;
        for (const [id, fields] of reply?.[0]?.[1] ?? []) {
          try {
            await this.handle(id, fields, handler, options);
            await redis.xack(this.key, group, id);
          } catch {
            // Left pending for this group: visible in XPENDING, claimable by another consumer.
          }
          sub.lastId = id;
        }
      }
    });
  }

  /** One read; a read cut by close() or the signal ends quietly, other failures are retried. */
  private async read(sub: Subscription, read: () => Promise<unknown>): Promise<unknown> {
    try {
      return await read();
    } catch (err) {
      if (sub.closed) return null;
      if (err instanceof Error && /NOGROUP|WRONGTYPE/.test(err.message)) throw err;
      await new Promise((r) => setTimeout(r, 200)); // Redis away: the connection reconnects
      return null;
    }
  }

  private async handle(
    id: string,
    fields: string[],
    handler: (message: ChannelMessage<InferOutput<S>>) => void | Promise<void>,
    options: SubscribeOptions,
  ): Promise<void> {
    const raw = fieldValue(fields, CHANNEL_FIELD) ?? '';
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      options.onInvalid?.(id, raw, 'not JSON');
      return;
    }
    const checked = await validate(this.options.schema, value);
    if (!checked.ok) {
      options.onInvalid?.(
        id,
        raw,
        checked.issues.map((x) => `${x.path || '(root)'} ${x.message}`).join('; '),
      );
      return;
    }
    await handler({ id, data: checked.value });
  }

  private blocking(redis: RedisConnection, name: string): RedisConnection {
    const conn = duplicateConnection(redis, {
      connectionName: name,
      enableAutoPipelining: false,
      maxRetriesPerRequest: null,
    });
    conn.on('error', () => undefined); // the reads see the outage
    return conn;
  }
}
