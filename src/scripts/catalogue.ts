import { readFileSync } from 'node:fs';
import type { ChainableCommander } from 'ioredis';
import type { RedisConnection } from '../connection/redis.js';
import { LUA_TOKENS } from '../wire/fields.js';

/**
 * The typed catalogue of tasuki's Lua scripts. Each script is a fixed `.lua` file under
 * `src/scripts/lua/`, registered with ioredis (EVALSHA, falling back to EVAL on NOSCRIPT) and called
 * through a typed method here; data reaches a script only through KEYS and ARGV.
 */
export const LUA_DIR = new URL('../../src/scripts/lua/', import.meta.url);

/** Script names, each the base name of a `.lua` file, with the KEYS each one declares. */
export const SCRIPT_KEYS = {
  enqueue_unique: ['idempotency', 'stream', 'delayed', 'parked', 'level1', 'level2', 'level3', 'control'],
  enqueue_bulk: ['stream'],
  enqueue_levels: ['stream', 'level1', 'level2', 'level3', 'control'],
  schedule: ['delayed', 'parked'],
  promote: ['delayed', 'parked', 'stream', 'level1', 'level2', 'level3', 'control'],
  finish: ['stream', 'events', 'parked', 'delayed', 'dead', 'moves', 'results...'],
  record_outcomes: ['events', 'dead', 'delayed', 'purges', 'tickets', 'outbox', 'results...'],
  handback: ['stream', 'parked'],
  reclaim: ['stream', 'moves'],
  heartbeat: ['stream'],
  forget_consumers: ['stream'],
  release: ['stream'],
  dlq_retry: ['dead', 'parked', 'control', 'stream', 'level1', 'level2', 'level3', 'results...'],
  lookup: ['result', 'parked', 'delayed', 'stream', 'level1', 'level2', 'level3', 'tickets', 'purges'],
  lock_acquire: ['lock', 'fence'],
  lock_release: ['lock'],
  lock_extend: ['lock'],
  fence_set: ['value'],
  rate_limit: ['limits...'],
  beat_tick: ['tick', 'stream', 'fence'],
  schedule_cas: ['schedules'],
  keyspace_rewrite: ['value'],
  sequence_next: ['counter'],
  channel_publish: ['channel'],
  canvas_open: ['canvas', 'result'],
  canvas_start: ['member', 'stream', 'parked'],
  canvas_join: ['canvas'],
  canvas_close: ['canvas', 'result', 'events'],
  revoke: [
    'stream',
    'parked',
    'delayed',
    'result',
    'events',
    'control',
    'level1',
    'level2',
    'level3',
    'moves',
  ],
  pause: ['paused', 'control'],
  purge: ['stream', 'delayed', 'parked'],
  ticket_put: ['delayed', 'purges', 'tickets'],
  ticket_claim: ['delayed', 'purges', 'tickets'],
  revoke_ticket: ['tickets', 'delayed', 'purges', 'result', 'events', 'control'],
  purge_tickets: ['delayed', 'purges', 'tickets'],
} as const;

export type ScriptName = keyof typeof SCRIPT_KEYS;

/**
 * Lua source of a script, read from its file, with its `$NAME` tokens (wire field names, the consumer
 * group) replaced by their values from src/wire/fields.ts, the one place they are spelled.
 */
export function scriptSource(name: string): string {
  // Redis runs each script alone, so a helper several scripts share is pasted in where a script
  // says `-- @include <name>` (src/scripts/lua/lib/<name>.lua), before the tokens are replaced.
  const lua = readFileSync(new URL(`${name}.lua`, LUA_DIR), 'utf8').replace(
    /^-- @include (\w+)\b.*$/gm,
    (_line, lib: string) => readFileSync(new URL(`lib/${lib}.lua`, LUA_DIR), 'utf8').trimEnd(),
  );
  return lua.replace(/\$([A-Z_]+)/g, (token, key: string) => {
    const value = LUA_TOKENS[key];
    if (value === undefined) throw new Error(`script ${name}.lua uses unknown token ${token}`);
    return value;
  });
}

/** ioredis command name: versioned so two tasuki versions can share one Redis in a rolling deploy. */
function commandName(name: ScriptName): string {
  return `tasuki_v1_${name}`;
}

type ScriptFn = (...args: (string | number | Buffer)[]) => unknown;

/** One call of a script: which script, its KEYS and ARGV, and the type of its reply. */
export interface ScriptCall<Reply> {
  readonly script: ScriptName;
  readonly keys: readonly string[];
  readonly args: readonly (string | number | Buffer)[];
  /** Phantom field carrying the reply type; never set. */
  readonly reply?: Reply;
}

function invoke(target: RedisConnection | ChainableCommander, c: ScriptCall<unknown>): unknown {
  const fn = (target as unknown as Record<string, ScriptFn>)[commandName(c.script)];
  if (typeof fn !== 'function') {
    throw new Error(`script ${c.script} is not registered on this connection; call registerScripts() first`);
  }
  return fn.call(target, c.keys.length, ...c.keys, ...c.args);
}

/** Runs a script call on a connection and resolves its reply. */
export function run<Reply>(redis: RedisConnection, c: ScriptCall<Reply>): Promise<Reply> {
  return invoke(redis, c) as Promise<Reply>;
}

/**
 * Adds a script call to a MULTI as a plain EVAL of its source; its reply comes with the others from
 * `exec()`. Not EVALSHA: inside a transaction a NOSCRIPT (the server's script cache emptied by
 * SCRIPT FLUSH, a failover or eviction) cannot fall back to EVAL, and the MULTI would run its other
 * commands and write part of what it was given. Used off the hot path only (mixed bulk enqueues).
 */
export function add(tx: ChainableCommander, c: ScriptCall<unknown>): void {
  tx.eval(sourceOf(c.script), c.keys.length, ...c.keys, ...c.args);
}

const sources = new Map<ScriptName, string>();

function sourceOf(name: ScriptName): string {
  let lua = sources.get(name);
  if (lua === undefined) {
    lua = scriptSource(name);
    sources.set(name, lua);
  }
  return lua;
}

/** Registers every script on a connection (once per connection; cheap to repeat). */
export function registerScripts(redis: RedisConnection): void {
  for (const name of Object.keys(SCRIPT_KEYS) as ScriptName[]) {
    if (typeof (redis as unknown as Record<string, unknown>)[commandName(name)] === 'function') continue;
    redis.defineCommand(commandName(name), { lua: sourceOf(name) });
  }
}

/**
 * The streams of a queue by priority level, `[stream, level1, level2, level3]` (from
 * `queueStreams` in src/keys/tasuki-keys.ts).
 */
export type LevelStreams = readonly string[];

/** Enqueue at most once per idempotency key. Reply: `[1, id]` created, `[0, id]` already there. */
export function enqueueUnique(
  k: { idempotency: string; streams: LevelStreams; delayed: string; parked: string; control: string },
  a: { ttlMs: number; message: string; due: number; id: string; level: number },
): ScriptCall<[number, string]> {
  const [stream, ...levels] = k.streams;
  return {
    script: 'enqueue_unique',
    keys: [k.idempotency, stream as string, k.delayed, k.parked, ...levels, k.control],
    args: [a.ttlMs, a.message, a.due, a.id, a.level],
  };
}

/**
 * Add tasks with priority levels to one queue in one atomic call, each to its level's stream (made
 * on first use). Reply: their entry references (`<entry id>p<level>` above level 0).
 */
export function enqueueLevels(
  k: { streams: LevelStreams; control: string },
  tasks: readonly { level: number; message: string }[],
): ScriptCall<string[]> {
  const args: (string | number)[] = [];
  for (const t of tasks) args.push(t.level, t.message);
  return { script: 'enqueue_levels', keys: [...k.streams, k.control], args };
}

/** Add many messages to one stream in one atomic call. Reply: their entry ids. */
export function enqueueBulk(k: { stream: string }, messages: readonly string[]): ScriptCall<string[]> {
  return { script: 'enqueue_bulk', keys: [k.stream], args: messages };
}

/** Park a message in the delayed set until `due`. */
export function schedule(
  k: { delayed: string; parked: string },
  a: { id: string; due: number; message: string },
): ScriptCall<number> {
  return { script: 'schedule', keys: [k.delayed, k.parked], args: [a.id, a.due, a.message] };
}

/** Move due delayed tasks to the stream. Reply: `[moved, next due ms or -1]`. */
export function promote(
  k: { delayed: string; parked: string; streams: LevelStreams; control: string },
  a: { now: number; limit: number },
): ScriptCall<[number, number]> {
  return {
    script: 'promote',
    keys: [k.delayed, k.parked, ...k.streams, k.control],
    args: [a.now, a.limit],
  };
}

/**
 * What happens to a finished attempt (see finish.lua); `defer` parks a task a rate limit holds back
 * until its slot, without a record (it did not run).
 */
export type FinishOutcome = 'done' | 'retry' | 'dead' | 'defer';

/** One finished attempt for {@link finish}. */
export interface FinishedTask {
  entry: string;
  id: string;
  record: string;
  outcome: FinishOutcome;
  /** The task id has a field in the parked hash that must go (it came from the delayed set). */
  parked: boolean;
  /** `done`, `retry`: store no record; it goes in the completion event instead (`storeResult: false`). */
  dropRecord: boolean;
  /** Retry: due time in ms. */
  due?: number | undefined;
  /** Retry: the message to park; dead: the dead letter. */
  payload?: string | undefined;
  /** The entry's delivery count when the worker claimed it: recorded only if it is still that. */
  deliveries: number;
  /** A canvas member's reference: a final outcome appends its continuation (see finish.lua). */
  canvas?: string | undefined;
}

/**
 * Batches whose records add up to at most this many characters carry them in their completion
 * event, so a waiter resolves without another read (low load, where latency matters). Bigger batches
 * (high load) only name their tasks, which keeps the capped completion stream small.
 */
export const INLINE_RECORDS_MAX = 1024;

/**
 * A finished task's outcome as finish.lua reads it: `done`, then `!` (store no record), then `+`
 * (parked), then `^<ref>` for a canvas member's final outcome (`done`, `dead`).
 */
function outcomeArg(t: FinishedTask): string {
  const drop = t.dropRecord && (t.outcome === 'done' || t.outcome === 'retry');
  if (t.canvas !== undefined && (t.outcome === 'done' || t.outcome === 'dead')) {
    return `${t.outcome}${drop ? '!' : ''}${t.parked ? '+' : ''}^${t.canvas}`;
  }
  if (!drop && !t.parked) return t.outcome;
  return `${t.outcome}${drop ? '!' : ''}${t.parked ? '+' : ''}`;
}

/**
 * Record finished attempts of one queue, ack and delete their entries — those still pending at the
 * delivery count the worker claimed them at (held by `consumer`, or by one that undid its take-over).
 * Reply: `[acknowledged, ...stale entry ids]`, the stale ones (taken over by another worker) left alone.
 */
export function finish(
  k: { stream: string; events: string; parked: string; delayed: string; dead: string; moves: string },
  a: {
    group: string;
    ttlMs: number;
    eventsMaxLen: number;
    deadMaxLen: number;
    deadMinId: string;
    /** The worker recording them (its consumer name). */
    consumer: string;
    tasks: readonly FinishedTask[];
    /** The result key of a task id (a function, so no per-task copy is made to carry it). */
    resultKey: (id: string) => string;
  },
): ScriptCall<[number, ...string[]]> {
  const keys = [k.stream, k.events, k.parked, k.delayed, k.dead, k.moves];
  let recordBytes = 0;
  for (const t of a.tasks) recordBytes += t.record.length;
  const inline = recordBytes <= INLINE_RECORDS_MAX ? '1' : '0';
  const args: (string | number)[] = [
    a.group,
    a.ttlMs,
    a.eventsMaxLen,
    a.deadMaxLen,
    a.deadMinId,
    inline,
    a.consumer,
    0,
  ];
  // The oldest entry's millisecond part, which finish.lua compares with the queue's moves mark.
  let oldest = Infinity;
  for (const t of a.tasks) {
    const ms = Number.parseInt(t.entry, 10);
    if (ms < oldest) oldest = ms;
    keys.push(a.resultKey(t.id));
    // The task id is sent empty when it is the entry id (most tasks): fewer bytes on the hot path.
    args.push(
      t.entry,
      t.id === t.entry ? '' : t.id,
      t.record,
      outcomeArg(t),
      t.due ?? 0,
      t.payload ?? '',
      t.deliveries,
    );
  }
  args[7] = oldest === Infinity ? 0 : oldest;
  return { script: 'finish', keys, args };
}

/** One finished attempt for {@link recordOutcomes}: a task on another broker (RabbitMQ). */
export interface RecordedOutcome {
  id: string;
  record: string;
  outcome: 'done' | 'retry' | 'dead';
  /** `done`, `retry`: store no record; it goes in the completion event instead. */
  dropRecord: boolean;
  /** Dead: the dead letter. */
  payload?: string | undefined;
  /** Retry: when it is due (ms). */
  due?: number | undefined;
}

/** A message to write to a queue's outbox, for the caller to publish to the broker (see rabbitmq-outbox.ts). */
export interface OutboxMessage {
  /** The task's id (local part), also in its message. */
  id: string;
  message: string;
  /** For {@link recordOutcomes}: the task whose outcome it follows (not written if that one is fenced out). */
  after?: string | undefined;
}

/**
 * Record finished attempts of one queue whose tasks travel on another broker: results, dead
 * letters and one completion event, nothing of the transport; each task's ticket fences it (a task
 * revoked or cancelled meanwhile is not recorded) and goes (a retry's says delayed); and write
 * `outbox` (canvas continuations) to the queue's outbox in the same step, except those of fenced-out
 * members. Reply: how many were fenced out, their ids, then the outbox entry id of each message
 * ("" for one not written).
 */
export function recordOutcomes(
  k: { events: string; dead: string; delayed: string; purges: string; tickets: string; outbox: string },
  a: {
    ttlMs: number;
    eventsMaxLen: number;
    deadMaxLen: number;
    deadMinId: string;
    tasks: readonly RecordedOutcome[];
    resultKey: (id: string) => string;
    outbox?: readonly OutboxMessage[] | undefined;
  },
): ScriptCall<[number, ...string[]]> {
  const keys = [k.events, k.dead, k.delayed, k.purges, k.tickets, k.outbox];
  let recordBytes = 0;
  for (const t of a.tasks) recordBytes += t.record.length;
  const args: (string | number)[] = [
    a.ttlMs,
    a.eventsMaxLen,
    a.deadMaxLen,
    a.deadMinId,
    recordBytes <= INLINE_RECORDS_MAX ? '1' : '0',
    a.tasks.length,
  ];
  for (const t of a.tasks) {
    keys.push(a.resultKey(t.id));
    const drop = t.dropRecord && t.outcome !== 'dead';
    args.push(t.id, t.record, drop ? `${t.outcome}!` : t.outcome, t.payload ?? '', t.due ?? '');
  }
  if (a.outbox) for (const m of a.outbox) args.push(m.after ?? '', m.id, m.message);
  return { script: 'record_outcomes', keys, args };
}

/** Give unstarted tasks back to the stream as new entries. Reply: how many went back. */
export function handback(
  k: { stream: string; parked: string },
  a: {
    group: string;
    consumer: string;
    /** The stream's priority level (0: the queue's own stream). */
    level: number;
    tasks: readonly { entry: string; id: string; message: string }[];
  },
): ScriptCall<number> {
  const args: (string | number)[] = [a.group, a.consumer, a.level];
  for (const t of a.tasks) args.push(t.entry, t.id, t.message);
  return { script: 'handback', keys: [k.stream, k.parked], args };
}

/** Reset the idle time of held entries. Reply: the entries no longer held. */
export function heartbeat(
  k: { stream: string },
  a: { group: string; consumer: string; entries: readonly string[] },
): ScriptCall<string[]> {
  return { script: 'heartbeat', keys: [k.stream], args: [a.group, a.consumer, ...a.entries] };
}

/** Entries taken over by {@link reclaim}: id, fields, delivery count. */
export type ReclaimReply = [string, string[], number][];

/** Take over entries idle longer than `idleMs` (their worker died). */
export function reclaim(
  k: { stream: string; moves: string },
  a: { group: string; consumer: string; idleMs: number; count: number },
): ScriptCall<ReclaimReply> {
  return { script: 'reclaim', keys: [k.stream, k.moves], args: [a.group, a.consumer, a.idleMs, a.count] };
}

/** Leave held entries for other workers at once, their delivery counts undone. Reply: how many. */
export function release(
  k: { stream: string },
  a: {
    group: string;
    consumer: string;
    idleMs: number;
    entries: readonly { entry: string; deliveries: number }[];
  },
): ScriptCall<number> {
  const args: (string | number)[] = [a.group, a.consumer, a.idleMs];
  for (const e of a.entries) args.push(e.entry, e.deliveries);
  return { script: 'release', keys: [k.stream], args };
}

/** Remove consumers that hold nothing and were idle `idleMs` (only `only`, if given). Reply: their names. */
export function forgetConsumers(
  k: { stream: string },
  a: { group: string; idleMs: number; only: string },
): ScriptCall<string[]> {
  return { script: 'forget_consumers', keys: [k.stream], args: [a.group, a.idleMs, a.only] };
}

/** Put dead letters back on their queue. Reply: how many went back. */
export function dlqRetry(
  k: { dead: string; streams: LevelStreams; parked: string; control: string },
  a: { tasks: readonly { deadEntry: string; id: string; message: string; resultKey: string }[] },
): ScriptCall<number> {
  const keys = [k.dead, k.parked, k.control, ...k.streams];
  const args: string[] = [];
  for (const t of a.tasks) {
    keys.push(t.resultKey);
    args.push(t.deadEntry, t.id, t.message);
  }
  return { script: 'dlq_retry', keys, args };
}

export type LookupReply =
  | ['record', string]
  | ['delayed', string]
  | ['queued', string]
  | ['active', string, string, number]
  | ['unknown'];

/** Where a task is now (see lookup.lua). */
export function lookup(
  k: {
    result: string;
    parked: string;
    delayed: string;
    streams: LevelStreams;
    tickets: string;
    purges: string;
  },
  a: { id: string; group: string },
): ScriptCall<LookupReply> {
  return {
    script: 'lookup',
    keys: [k.result, k.parked, k.delayed, ...k.streams, k.tickets, k.purges],
    args: [a.id, a.group],
  };
}

/** Take a lock and issue its fencing token (see lock_acquire.lua). */
export type LockAcquireReply = [1, string] | [0, number];

/** Take a lock if free. Reply: `[1, token]` acquired, `[0, pttl]` held by someone else. */
export function lockAcquire(
  k: { lock: string; fence: string },
  a: { owner: string; ttlMs: number },
): ScriptCall<LockAcquireReply> {
  return { script: 'lock_acquire', keys: [k.lock, k.fence], args: [a.owner, a.ttlMs] };
}

/** Delete a lock if `owner` still holds it. Reply: 1 released, 0 not held by `owner`. */
export function lockRelease(k: { lock: string }, a: { owner: string }): ScriptCall<number> {
  return { script: 'lock_release', keys: [k.lock], args: [a.owner] };
}

/** Set (or add to) the TTL of a lock `owner` still holds. Reply: new TTL ms, 0 not held, -1 bad ms. */
export function lockExtend(
  k: { lock: string },
  a: { owner: string; ms: number; mode: 'replace' | 'add' },
): ScriptCall<number> {
  return { script: 'lock_extend', keys: [k.lock], args: [a.owner, a.ms, a.mode] };
}

/** Write a fenced value. Reply: `[1, token]` written, `[0, stored token]` stale token. */
export function fenceSet(
  k: { value: string },
  a: { token: string; value: string; ttlMs: number },
): ScriptCall<[0 | 1, string]> {
  return { script: 'fence_set', keys: [k.value], args: [a.token, a.value, a.ttlMs] };
}

/**
 * Reserve the next start slot of a task under its rate limits (see rate_limit.lua). Reply: ms to
 * wait before the slot (0: start now).
 */
export function rateLimit(
  k: { limits: readonly string[] },
  a: { limits: readonly { intervalUs: number; toleranceUs: number }[] },
): ScriptCall<number> {
  const args: number[] = [];
  for (const l of a.limits) args.push(l.intervalUs, l.toleranceUs);
  return { script: 'rate_limit', keys: k.limits, args };
}

/**
 * Claim tick `tick` of a schedule and enqueue `message` (see beat_tick.lua); `message` '' claims it
 * as skipped. With `outboxId` (the task's local id), `stream` is the queue's outbox and the task is
 * written there for the caller to publish. Reply: `[1, entry id]` enqueued (`[1, task id, outbox
 * entry id]` into the outbox), `[2, '']` skipped, `[0, last tick]` already claimed, `[-1, stored
 * fence]` a newer lease claimed the last tick.
 */
export function beatTick(
  k: { tick: string; stream: string; fence: string },
  a: { tick: number; fence: string; beat: string; ttlMs: number; message: string; outboxId?: string },
): ScriptCall<[1 | 2 | 0 | -1, string, string?]> {
  return {
    script: 'beat_tick',
    keys: [k.tick, k.stream, k.fence],
    args: [a.tick, a.fence, a.beat, a.ttlMs, a.message, a.outboxId ?? ''],
  };
}

/** Set (or delete, `value` '') one schedule if it is still `expected` ('' absent). Reply: 1 written, 0 changed. */
export function scheduleCas(
  k: { schedules: string },
  a: { name: string; expected: string; value: string },
): ScriptCall<0 | 1> {
  return { script: 'schedule_cas', keys: [k.schedules], args: [a.name, a.expected, a.value] };
}

/**
 * Replace an app keyspace value by its migrated form if it is unchanged since it was read. Reply:
 * 1 rewritten, 0 changed or gone meanwhile (nothing done).
 */
export function keyspaceRewrite(
  k: { value: string },
  a: { expected: Buffer; value: Buffer; ttlMs: number },
): ScriptCall<number> {
  return { script: 'keyspace_rewrite', keys: [k.value], args: [a.expected, a.value, a.ttlMs] };
}

/**
 * Allocate `n` ids of a sequence. Reply: `[1, last]` allocated (ids last-n+1..last), `[0, waitUs]`
 * the counter is too far ahead of the clock (see sequence_next.lua).
 */
export function sequenceNext(
  k: { counter: string },
  a: { n: number; floor: 'clock' | 'none'; aheadUs: number },
): ScriptCall<[0 | 1, string]> {
  return { script: 'sequence_next', keys: [k.counter], args: [a.n, a.floor, a.aheadUs] };
}

/** Publish messages to a channel and trim it by length and age. Reply: the new entries' ids. */
export function channelPublish(
  k: { channel: string },
  a: { maxLen: number; minId: string; messages: readonly string[] },
): ScriptCall<string[]> {
  return { script: 'channel_publish', keys: [k.channel], args: [a.maxLen, a.minId, ...a.messages] };
}

/** Store a new canvas's definition and its pending record (see canvas_open.lua). Reply: 1. */
export function canvasOpen(
  k: { canvas: string; result: string },
  a: { ttlMs: number; definition: string; record: string },
): ScriptCall<number> {
  return { script: 'canvas_open', keys: [k.canvas, k.result], args: [a.ttlMs, a.definition, a.record] };
}

/**
 * Enqueue a canvas member at most once under its task id: into its queue's stream, or with `outbox`
 * into its queue's outbox (`stream` is then the outbox's key). Reply: 1 enqueued now (the stream),
 * its outbox entry id (written to the outbox now), 0 already.
 */
export function canvasStart(
  k: { member: string; stream: string; parked: string },
  a: { ttlMs: number; message: string; id: string; outbox?: boolean },
): ScriptCall<number | string> {
  return {
    script: 'canvas_start',
    keys: [k.member, k.stream, k.parked],
    args: [a.ttlMs, a.message, a.id, a.outbox ? '1' : ''],
  };
}

/**
 * Record a group member's result once. Reply: `[-1]` the canvas failed, `[0]` members missing,
 * `[1, ...values]` every member's result (JSON) in order.
 */
export function canvasJoin(
  k: { canvas: string },
  a: { ttlMs: number; group: number; member: number; value: string; size: number },
): ScriptCall<[-1 | 0 | 1, ...string[]]> {
  return { script: 'canvas_join', keys: [k.canvas], args: [a.ttlMs, a.group, a.member, a.value, a.size] };
}

/** Record how a canvas ended, once. Reply: 1 ended now, 0 it had ended already. */
export function canvasClose(
  k: { canvas: string; result: string; events: string },
  a: {
    ttlMs: number;
    outcome: 'ok' | 'failed';
    record: string;
    id: string;
    eventsMaxLen: number;
    failure: string;
  },
): ScriptCall<number> {
  return {
    script: 'canvas_close',
    keys: [k.canvas, k.result, k.events],
    args: [a.ttlMs, a.outcome, a.record, a.id, a.eventsMaxLen, a.failure],
  };
}

export type RevokeReply =
  ['delayed'] | ['queued'] | ['fetched', string] | ['running', string] | ['finished', string] | ['unknown'];

/** What a revoke or cancel passes to revoke.lua and revoke_ticket.lua alike. */
export interface RevokeArgs {
  id: string;
  op: 'revoke' | 'cancel';
  by: string;
  now: number;
  ttlMs: number;
  error: string;
  eventsMaxLen: number;
  controlMaxLen: number;
  controlMinId: string;
}

/** The ARGV both revoke scripts take after the task id (and revoke.lua's group). */
function revokeTail(a: RevokeArgs): (string | number)[] {
  return [a.op, a.by, a.now, a.ttlMs, a.error, a.eventsMaxLen, a.controlMaxLen, a.controlMinId];
}

/** Revoke or cancel a task wherever it is (see revoke.lua). */
export function revoke(
  k: {
    streams: LevelStreams;
    parked: string;
    delayed: string;
    result: string;
    events: string;
    control: string;
    moves: string;
  },
  a: RevokeArgs & { group: string },
): ScriptCall<RevokeReply> {
  const [stream, ...levels] = k.streams;
  return {
    script: 'revoke',
    keys: [stream as string, k.parked, k.delayed, k.result, k.events, k.control, ...levels, k.moves],
    args: [a.id, a.group, ...revokeTail(a)],
  };
}

/** Pause or resume a queue and tell its workers. Reply: 1 changed, 0 already so. */
export function pause(
  k: { paused: string; control: string },
  a: { op: 'pause' | 'resume'; value: string; message: string; maxLen: number; minId: string },
): ScriptCall<number> {
  return {
    script: 'pause',
    keys: [k.paused, k.control],
    args: [a.op, a.value, a.message, a.maxLen, a.minId],
  };
}

/** Delete one batch of a queue's waiting or delayed tasks. Reply: `[deleted, next]` (`""`: done). */
export function purge(
  k: { stream: string; delayed: string; parked: string },
  a: { group: string; what: 'waiting' | 'delayed'; after: string; count: number },
): ScriptCall<[number, string]> {
  return {
    script: 'purge',
    keys: [k.stream, k.delayed, k.parked],
    args: [a.group, a.what, a.after, a.count],
  };
}

/** One task whose ticket {@link ticketPut} writes. */
export interface TicketOf {
  id: string;
  /** The task's name; `""` keeps the name the ticket has. */
  name: string;
  /** When it is due (ms); 0: at once. */
  due: number;
}

/**
 * Write the tickets of tasks published to RabbitMQ or put back on it (see ticket_put.lua); a
 * ticket a revoke or cancel marked stays as it is. Reply: how many were written.
 */
export function ticketPut(
  k: { delayed: string; purges: string; tickets: string },
  a: { now: number; staleMs: number; tasks: readonly TicketOf[] },
): ScriptCall<number> {
  const args: (string | number)[] = [a.now, a.now - a.staleMs];
  for (const t of a.tasks) args.push(t.id, t.name, t.due);
  return { script: 'ticket_put', keys: [k.delayed, k.purges, k.tickets], args };
}

/**
 * What {@link ticketClaim} says of each task: run it (`""`), or not and why; a ticket's value
 * (`"cancelling|..."`): cancelled while it ran on a worker that died, to be recorded cancelled.
 */
export type ClaimVerdict = '' | 'revoked' | 'cancelled' | 'purged' | `cancelling|${string}`;

/** A worker claims a fetched batch's tasks (see ticket_claim.lua). Reply: one verdict per id. */
export function ticketClaim(
  k: { delayed: string; purges: string; tickets: string },
  a: { worker: string; ids: readonly string[] },
): ScriptCall<ClaimVerdict[]> {
  return { script: 'ticket_claim', keys: [k.delayed, k.purges, k.tickets], args: [a.worker, ...a.ids] };
}

/** Revoke or cancel a task that waits on RabbitMQ or runs from it (see revoke_ticket.lua). */
export function revokeTicket(
  k: { tickets: string; delayed: string; purges: string; result: string; events: string; control: string },
  a: RevokeArgs,
): ScriptCall<RevokeReply> {
  return {
    script: 'revoke_ticket',
    keys: [k.tickets, k.delayed, k.purges, k.result, k.events, k.control],
    args: [a.id, ...revokeTail(a)],
  };
}

/**
 * The Redis half of a purge on RabbitMQ, one page at a time (see purge_tickets.lua). Reply: delayed
 * tasks purged (first call), and the next call's cursor (`""`: done).
 */
export function purgeTickets(
  k: { delayed: string; purges: string; tickets: string },
  a: { oldest: number; cursor: string; count: number },
): ScriptCall<[number, string]> {
  return {
    script: 'purge_tickets',
    keys: [k.delayed, k.purges, k.tickets],
    args: [a.oldest, a.cursor, a.count],
  };
}
