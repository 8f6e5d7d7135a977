/**
 * Schedules as the app declares them (`app.schedule(...)`) and as Redis stores them: one checked
 * definition, turned into the JSON every beat replica, the CLI and the dashboard read.
 */
import { createHash } from 'node:crypto';
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
import { quote } from '../util/options.js';
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
const KNOWN = new Set([
  'name',
  'task',
  'args',
  'cron',
  'timezone',
  'every',
  'at',
  'queue',
  'expires',
  'misfire',
  'misfireGrace',
  'paused',
]);

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
  const issues: FieldIssue[] = [];
  for (const k of Object.keys(def)) if (!KNOWN.has(k)) issues.push({ path: k, message: 'unknown option' });
  if (typeof def.name !== 'string' || !NAME.test(def.name)) {
    issues.push({
      path: 'name',
      message: `${quote(def.name)} is not a schedule name (1-100 of letters, digits, "_", ".", ":", "-")`,
    });
  }
  const timing = ['cron', 'every', 'at'].filter(
    (k) => (def as unknown as Record<string, unknown>)[k] !== undefined,
  );
  if (timing.length !== 1) {
    issues.push({
      path: timing.length ? timing.join('+') : 'cron',
      message: `give exactly one of cron, every, at (got ${timing.length ? timing.join(', ') : 'none'})`,
    });
  }
  const spec: Partial<ScheduleSpec> = {};
  if (def.cron !== undefined) {
    const cron = checkCron(def.cron, def.timezone, issues);
    if (cron) Object.assign(spec, cron);
  } else if (def.timezone !== undefined) issues.push({ path: 'timezone', message: 'only goes with cron' });
  if (def.every !== undefined) {
    const ms = toMs(def.every);
    if (ms === undefined || ms < MIN_EVERY_MS || !Number.isInteger(ms)) {
      issues.push({
        path: 'every',
        message: `${quote(def.every)} is not a whole duration of at least 100 ms`,
      });
    } else spec.every = ms;
  }
  if (def.at !== undefined) {
    const t =
      def.at instanceof Date ? def.at.getTime() : typeof def.at === 'string' ? Date.parse(def.at) : def.at;
    if (typeof t !== 'number' || !Number.isFinite(t) || t < 0) {
      issues.push({
        path: 'at',
        message: `${quote(def.at)} is not a time (a Date, ms since the epoch or ISO string)`,
      });
    } else spec.at = Math.round(t);
  }
  optionalMs(def.expires, 'expires', issues, (ms) => (spec.expires = ms));
  spec.grace = DEFAULT_GRACE_MS;
  optionalMs(def.misfireGrace, 'misfireGrace', issues, (ms) => (spec.grace = ms));
  if (def.misfire !== undefined && def.misfire !== 'once' && def.misfire !== 'skip') {
    issues.push({
      path: 'misfire',
      message: `${quote(def.misfire)} is not a misfire policy ("once" or "skip")`,
    });
  }
  if (def.paused !== undefined && typeof def.paused !== 'boolean') {
    issues.push({ path: 'paused', message: `${quote(def.paused)} is not true or false` });
  }
  if (issues.length) throw new OptionsError(where, issues);

  const task = resolveTask(host, def.task);
  const queue = def.queue ?? task.queue;
  if (!host.queues.includes(queue))
    throw new UnknownQueueError(queue, host.queues, `${where} was not defined`);
  Object.assign(spec, {
    name: def.name,
    task: task.name,
    queue,
    misfire: def.misfire ?? 'once',
    paused: def.paused ?? false,
  });
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

function optionalMs(v: unknown, path: string, issues: FieldIssue[], set: (ms: number) => void): void {
  if (v === undefined) return;
  const ms = toMs(v);
  if (ms === undefined || ms <= 0) issues.push({ path, message: `${quote(v)} is not a positive duration` });
  else set(ms);
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
