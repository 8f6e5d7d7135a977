/**
 * Schedules as the app declares them (`app.schedule(...)`) and as Redis stores them: one checked
 * definition, turned into the JSON every beat replica, the CLI and the dashboard read.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import {
  OptionsError,
  TaskArgsError,
  UnknownQueueError,
  UnknownTaskError,
  type FieldIssue,
} from '../errors.js';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import type { Logger } from '../log/logger.js';
import type { Task } from '../task/task.js';
import { validate, type InferInput, type StandardSchemaV1 } from '../task/schema.js';
import { toMs, type Duration } from '../util/duration.js';
import { parseOptions, quote } from '../util/options.js';
import { checkCron } from './cron.js';

/**
 * What becomes of ticks that were due while no beat ran (downtime, a failover longer than the grace):
 * `once` enqueues one task for the whole missed window (its tick is the latest missed one); `skip`
 * enqueues nothing for them. Never a burst of every missed tick.
 */
export type MisfirePolicy = 'once' | 'skip';

/** A schedule: which task, with which arguments, when. Exactly one of `cron`, `every`, `at`. */
export interface ScheduleDefinition<S extends StandardSchemaV1 = StandardSchemaV1, R = unknown> {
  /** Unique name of the schedule (1-100 of letters, digits, `_ . : -`). Ticks are keyed by it. */
  name: string;
  /** The task to enqueue at each tick: a task of the app, or its name. */
  task: Task<S, R> | string;
  /** Its arguments, checked against the task's schema when the schedule is defined. */
  args: InferInput<S>;
  /** Cron expression, 5 fields (minute precision) or 6 (seconds first). */
  cron?: string;
  /** IANA time zone of `cron` (default UTC), e.g. `Europe/Berlin`; DST as docs/beat.md says. */
  timezone?: string;
  /** A fixed interval (at least 100 ms); ticks fall on whole multiples of it since the Unix epoch. */
  every?: Duration;
  /** One time: the schedule fires once, then is marked done. */
  at?: Date | number | string;
  /** Queue for the task (default: the task's queue). */
  queue?: string;
  /** A tick's task that has not started this long after its tick is not run (default: never expires). */
  expires?: Duration;
  /** Ticks missed while no beat ran: `once` (default) or `skip`. */
  misfire?: MisfirePolicy;
  /** How late a tick may be and still count as on time (default 1 min). */
  misfireGrace?: Duration;
  /** Defined paused: stored, but no tick fires until resumed. */
  paused?: boolean;
}

/** How a schedule is kept in Redis (one JSON value per name in the `beat.schedules` hash). */
export interface StoredSchedule {
  name: string;
  task: string;
  args: unknown;
  queue: string;
  cron?: string;
  timezone?: string;
  every?: number;
  at?: number;
  expires?: number;
  misfire: MisfirePolicy;
  grace: number;
  paused: boolean;
  /** Ticks at or before this time (ms) never fire: when it was added, changed or resumed. */
  since: number;
  /** `app`: declared in the app module (reconciled at beat start); `api`: added at run time. */
  origin: 'app' | 'api';
  /** Hash of the app declaration it was last reconciled from (origin `app`). */
  declared?: string;
  /** `done`: a one-off that fired; `removed`: an app-declared schedule removed at run time. */
  state: 'active' | 'done' | 'removed';
  /** When (Redis time, ms) and by whom it was last written. */
  updatedAt: number;
  updatedBy: string;
}

/** What a schedule needs from its app: the tasks and queues to check it against. */
export interface ScheduleHost {
  readonly queues: readonly string[];
  readonly keys: TasukiKeys;
  readonly log: Logger;
  readonly payloadInlineLimit: number;
  getTaskDefinition(name: string): Task | undefined;
  taskNames(): string[];
}

/** The parts of a definition that describe the schedule itself (what its hash is taken over). */
export type ScheduleSpec = Pick<
  StoredSchedule,
  'name' | 'task' | 'args' | 'queue' | 'cron' | 'timezone' | 'every' | 'at' | 'expires' | 'misfire' | 'grace'
> & { paused: boolean };

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/;
const DEFAULT_GRACE_MS = 60_000;
const MIN_EVERY_MS = 100;

/** A whole number of ms of at least `min`, from a number or a duration string. */
function wholeMs(min: number, what: string): z.ZodType<number, unknown> {
  return z.unknown().transform((value, ctx) => {
    const ms = toMs(value);
    if (ms !== undefined && Number.isInteger(ms) && ms >= min) return ms;
    ctx.addIssue({ code: 'custom', message: `${quote(value)} is not ${what}` });
    return z.NEVER;
  });
}

const time = z.unknown().transform((value, ctx) => {
  const t = value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : value;
  if (typeof t === 'number' && Number.isFinite(t) && t >= 0) return Math.round(t);
  ctx.addIssue({
    code: 'custom',
    message: `${quote(value)} is not a time (a Date, ms since the epoch or ISO string)`,
  });
  return z.NEVER;
});

/** The shape of a definition, in one schema (the task and its arguments are checked against the app after it). */
const definitionSchema = z
  .object({
    name: z.unknown().superRefine((v, ctx) => {
      if (typeof v !== 'string' || !NAME.test(v)) {
        ctx.addIssue({
          code: 'custom',
          message: `${quote(v)} is not a schedule name (1-100 of letters, digits, "_", ".", ":", "-")`,
        });
      }
    }),
    task: z.unknown(),
    args: z.unknown(),
    cron: z.unknown().optional(),
    timezone: z.unknown().optional(),
    every: wholeMs(MIN_EVERY_MS, 'a whole duration of at least 100 ms').optional(),
    at: time.optional(),
    queue: z.string().optional(),
    expires: wholeMs(1, 'a positive duration').optional(),
    misfire: z.enum(['once', 'skip']).default('once'),
    misfireGrace: wholeMs(1, 'a positive duration').default(DEFAULT_GRACE_MS),
    paused: z.boolean().default(false),
  })
  .strict()
  .superRefine((o, ctx) => {
    const timing = (['cron', 'every', 'at'] as const).filter((k) => o[k] !== undefined);
    if (timing.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: [timing.length ? timing.join('+') : 'cron'],
        message: `give exactly one of cron, every, at (got ${timing.length ? timing.join(', ') : 'none'})`,
      });
    }
    if (o.cron === undefined) {
      if (o.timezone !== undefined)
        ctx.addIssue({ code: 'custom', path: ['timezone'], message: 'only goes with cron' });
      return;
    }
    const issues: FieldIssue[] = [];
    checkCron(o.cron, o.timezone, issues);
    for (const i of issues) ctx.addIssue({ code: 'custom', path: [i.path], message: i.message });
  });

/**
 * Checks a definition against the app and turns it into its stored form (without the run-time fields).
 * Throws `E_UNKNOWN_TASK`, `E_UNKNOWN_QUEUE`, `E_TASK_ARGS` or `E_OPTIONS` naming what was wrong.
 * Synchronous unless the task's schema is asynchronous.
 */
export function checkSchedule(
  host: ScheduleHost,
  def: ScheduleDefinition,
): ScheduleSpec | Promise<ScheduleSpec> {
  const where = `schedule ${quote((def as { name?: unknown } | null)?.name ?? '(no name)')}`;
  if (typeof def !== 'object' || def === null) {
    throw new OptionsError(where, [{ path: '', message: 'a schedule definition is an object' }]);
  }
  const o = parseOptions(definitionSchema, def, where, 'E_OPTIONS');
  const spec: Partial<ScheduleSpec> = { grace: o.misfireGrace };
  if (o.cron !== undefined) {
    spec.cron = (o.cron as string).trim();
    if (o.timezone !== undefined) spec.timezone = o.timezone as string;
  }
  if (o.every !== undefined) spec.every = o.every;
  if (o.at !== undefined) spec.at = o.at;
  if (o.expires !== undefined) spec.expires = o.expires;

  const task = resolveTask(host, def.task);
  const queue = def.queue ?? task.queue;
  if (!host.queues.includes(queue))
    throw new UnknownQueueError(queue, host.queues, `${where} was not defined`);
  Object.assign(spec, { name: def.name, task: task.name, queue, misfire: o.misfire, paused: o.paused });
  const finish = (ok: boolean, problems: FieldIssue[]): ScheduleSpec => {
    if (!ok)
      throw new TaskArgsError(
        task.name,
        problems.map((p) => ({ ...p, path: ['args', p.path].filter(Boolean).join('.') })),
      );
    spec.args = jsonArgs(host, task.name, def.args);
    return spec as ScheduleSpec;
  };
  const checked = validate(task.definition.schema, def.args);
  return checked instanceof Promise
    ? checked.then((c) => finish(c.ok, c.ok ? [] : c.issues))
    : finish(checked.ok, checked.ok ? [] : checked.issues);
}

function resolveTask(host: ScheduleHost, task: unknown): Task {
  const name = typeof task === 'string' ? task : (task as { name?: unknown } | null)?.name;
  const found = typeof name === 'string' ? host.getTaskDefinition(name) : undefined;
  if (!found) throw new UnknownTaskError(String(name), host.taskNames());
  if (typeof task !== 'string' && task !== found) {
    throw new OptionsError('schedule', [
      {
        path: 'task',
        message: `task ${quote(name)} is a task of another app; pass this app's task or its name`,
      },
    ]);
  }
  return found;
}

/** The arguments as JSON (kept inline in Redis: a schedule's arguments are never claim-checked). */
function jsonArgs(host: ScheduleHost, task: string, args: unknown): unknown {
  let json: string | undefined;
  try {
    json = JSON.stringify(args);
  } catch (err) {
    throw new TaskArgsError(task, [
      { path: 'args', message: `not JSON-serialisable: ${(err as Error).message}` },
    ]);
  }
  if (json === undefined) throw new TaskArgsError(task, [{ path: 'args', message: 'not JSON-serialisable' }]);
  if (Buffer.byteLength(json) > host.payloadInlineLimit) {
    throw new TaskArgsError(task, [
      {
        path: 'args',
        message: `${Buffer.byteLength(json)} bytes of JSON is over the inline limit (${host.payloadInlineLimit}); a schedule's arguments stay in Redis, so pass an id instead of the data`,
      },
    ]);
  }
  return JSON.parse(json) as unknown;
}

/** A stable hash of a spec: tells whether the app's declaration changed since it was reconciled. */
export function specHash(spec: ScheduleSpec): string {
  const ordered = Object.fromEntries(Object.entries(spec).sort(([a], [b]) => (a < b ? -1 : 1)));
  return createHash('sha256').update(JSON.stringify(ordered)).digest('base64url').slice(0, 22);
}

/** Parses a stored value; `undefined` for one this version cannot read (logged by the caller). */
export function parseStored(raw: string): StoredSchedule | undefined {
  try {
    const s = JSON.parse(raw) as StoredSchedule;
    if (typeof s.name !== 'string' || typeof s.task !== 'string' || typeof s.since !== 'number')
      return undefined;
    return s;
  } catch {
    return undefined;
  }
}
