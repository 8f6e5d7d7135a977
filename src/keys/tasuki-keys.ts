import type { KeyDef } from './registry.js';
import { Keyspace } from './registry.js';
import { MAX_PRIORITY } from '../wire/priority.js';

export const DAY_MS = 24 * 60 * 60 * 1000;

/** Default TTL of a lock (`ttl` option of `Lock`), also the catalogue TTL of `lock.owner`. */
export const DEFAULT_LOCK_TTL_MS = 30_000;

/** The owner name tasuki's own keys carry in the catalogue. */
export const TASUKI_OWNER = 'tasuki';

/** tasuki's own keys, declared in one place. All keys of a queue share the hash tag `{q:<queue>}`. */
export interface TasukiKeys {
  readonly space: Keyspace;
  readonly queues: KeyDef<'queues'>;
  readonly workers: KeyDef<'workers'>;
  readonly stream: KeyDef<'{q:<queue>}:stream'>;
  readonly moves: KeyDef<'{q:<queue>}:moves'>;
  readonly levelStream: KeyDef<'{q:<queue>}:stream:p<level>'>;
  readonly delayed: KeyDef<'{q:<queue>}:delayed'>;
  readonly parked: KeyDef<'{q:<queue>}:parked'>;
  readonly events: KeyDef<'{q:<queue>}:events'>;
  readonly result: KeyDef<'{q:<queue>}:r:<task>'>;
  readonly idempotency: KeyDef<'{q:<queue>}:idem:<key>'>;
  readonly dead: KeyDef<'{q:<queue>}:dead'>;
  readonly lock: KeyDef<'{lock:<name>}'>;
  readonly lockFence: KeyDef<'{lock:<name>}:fence'>;
  readonly rateLimit: KeyDef<'{rl:<task>}:<limit>:<key>'>;
  readonly channel: KeyDef<'{ch:<channel>}'>;
  readonly schedules: KeyDef<'beat:schedules'>;
  readonly tick: KeyDef<'{q:<queue>}:tick:<schedule>'>;
  readonly beatFence: KeyDef<'{q:<queue>}:beat-fence'>;
  readonly progress: KeyDef<'{q:<queue>}:progress:<task>'>;
  readonly canvas: KeyDef<'{q:<queue>}:canvas:<canvas>'>;
  readonly canvasMember: KeyDef<'{q:<queue>}:cvm:<task>'>;
  readonly control: KeyDef<'{q:<queue>}:control'>;
  readonly paused: KeyDef<'{q:<queue>}:paused'>;
  readonly outbox: KeyDef<'{q:<queue>}:outbox'>;
  readonly outboxOnce: KeyDef<'{q:<queue>}:once:<task>'>;
  readonly tickets: KeyDef<'{q:<queue>}:tickets'>;
  readonly purges: KeyDef<'{q:<queue>}:purges'>;
}

/**
 * Delayed tasks (RabbitMQ) this long past their due time are forgotten by the queue's delayed set:
 * their messages were lost outside tasuki (see ticket_put.lua).
 */
export const TICKET_STALE_MS = 7 * DAY_MS;

/** Approximate cap of each queue's control stream (revokes, cancels, pauses, new levels). */
export { CONTROL_MAX_LEN } from '../wire/fields.js';

/**
 * The streams of a queue by priority level: index 0 is the queue's stream, index n the stream of
 * level n (src/wire/priority.ts). Scripts that may add a task to any level get them all, in this
 * order, so they pick the stream without building a key.
 */
export function queueStreams(keys: TasukiKeys, queue: string): string[] {
  const out = [keys.stream.key({ queue })];
  for (let level = 1; level <= MAX_PRIORITY; level++)
    out.push(keys.levelStream.key({ queue, level: String(level) }));
  return out;
}

/** Declares tasuki's keys in a new keyspace with the given prefix. */
export function tasukiKeys(prefix = 'tsk'): TasukiKeys {
  const space = new Keyspace(prefix);
  return {
    space,
    queues: space.define({
      id: 'queues',
      pattern: 'queues',
      owner: `${TASUKI_OWNER}/worker`,
      version: 1,
      type: 'set',
      noTtlReason: 'names of the queues workers have served; a few short members, read by inspection tools',
      codec: 'text members',
      maxBytes: 64 * 1024,
      purpose: 'Which queues exist, so tools can list them without SCAN.',
    }),
    workers: space.define({
      id: 'workers',
      pattern: 'workers',
      owner: `${TASUKI_OWNER}/worker`,
      version: 1,
      type: 'hash',
      noTtlReason:
        'one field per live worker, rewritten every 5 s; a worker deletes its own field when it stops, and readers delete fields silent for an hour (crashed workers)',
      codec:
        'hash: field = worker name, value = JSON presence (queues, concurrency, in flight, counts, times)',
      maxBytes: 1024 * 1024,
      purpose: 'Which workers are alive and what they do, for inspect and the dashboard.',
    }),
    stream: space.define({
      id: 'queue.stream',
      pattern: '{q:<queue>}:stream',
      owner: `${TASUKI_OWNER}/queue`,
      version: 1,
      type: 'stream',
      noTtlReason:
        'lives as long as its queue; each entry is deleted when its task finishes, so it holds only waiting and running tasks',
      codec: 'stream entry: field m = JSON message',
      maxBytes: 512 * 1024 * 1024,
      purpose: 'Tasks ready to run, read by workers through the consumer group "tasuki".',
    }),
    moves: space.define({
      id: 'queue.moves',
      pattern: '{q:<queue>}:moves',
      owner: `${TASUKI_OWNER}/queue`,
      version: 1,
      type: 'string',
      noTtlReason:
        'lives as long as its queue (made with its consumer group); one number, rewritten only when a held task is taken from its worker',
      codec:
        'string: the highest millisecond part of a stream entry id taken from the worker holding it ("0": none yet)',
      maxBytes: 128,
      purpose:
        "Fenced attempts: finish checks a batch against its worker's pending list only when an entry is no newer than the last take-over.",
    }),
    levelStream: space.define({
      id: 'queue.level',
      pattern: '{q:<queue>}:stream:p<level>',
      owner: `${TASUKI_OWNER}/queue`,
      version: 1,
      type: 'stream',
      noTtlReason:
        'a priority level of its queue (1-3), made with its consumer group by the first task of that level; lives as long as its queue, each entry deleted when its task finishes',
      codec: 'stream entry: field m = JSON message (its meta l = the level)',
      maxBytes: 512 * 1024 * 1024,
      purpose:
        'Tasks of one priority level above 0, ready to run: workers read it in the same XREADGROUP as the queue, higher levels first.',
    }),
    delayed: space.define({
      id: 'queue.delayed',
      pattern: '{q:<queue>}:delayed',
      owner: `${TASUKI_OWNER}/queue`,
      version: 1,
      type: 'zset',
      noTtlReason:
        'lives as long as its queue; members leave when workers promote them to the stream (RabbitMQ: when a worker fetches the task, or a purge)',
      codec: 'zset: member = task id, score = due time (ms)',
      maxBytes: 256 * 1024 * 1024,
      purpose:
        'Due times of delayed tasks and retries; workers promote due ones. On RabbitMQ (delays in its TTL queues) it only counts and names them, for queue stats, purge and lookup.',
    }),
    parked: space.define({
      id: 'queue.parked',
      pattern: '{q:<queue>}:parked',
      owner: `${TASUKI_OWNER}/queue`,
      version: 1,
      type: 'hash',
      noTtlReason: 'lives as long as its queue; a field is removed when its task finishes',
      codec: 'hash: field = task id, value = JSON message (delayed) or "=<entry id>" (promoted)',
      maxBytes: 512 * 1024 * 1024,
      purpose: 'Messages of delayed tasks, and where promoted ones sit in the stream, for lookup by id.',
    }),
    events: space.define({
      id: 'queue.events',
      pattern: '{q:<queue>}:events',
      owner: `${TASUKI_OWNER}/results`,
      version: 1,
      type: 'stream',
      noTtlReason: 'capped by XADD MAXLEN ~10000 on every write, so its size is bounded',
      codec: 'stream entry: field f = space-separated task ids that finished',
      maxBytes: 16 * 1024 * 1024,
      purpose: 'Completion events; result waiters block on it (XREAD) instead of polling or Pub/Sub.',
    }),
    result: space.define({
      id: 'task.result',
      pattern: '{q:<queue>}:r:<task>',
      owner: `${TASUKI_OWNER}/results`,
      version: 1,
      type: 'string',
      ttlMs: DAY_MS,
      codec: 'JSON task record (state, result or error, attempts, worker, timestamps)',
      maxBytes: 1024 * 1024,
      purpose: "A task's state and result or error; TTL set by the app's resultTtl (default 24 h).",
    }),
    channel: space.define({
      id: 'channel',
      pattern: '{ch:<channel>}',
      owner: `${TASUKI_OWNER}/channels`,
      version: 1,
      type: 'stream',
      noTtlReason:
        "bounded instead: every publish trims it to the channel's maxLen (XADD MAXLEN ~, default 10000) and maxAge (XTRIM MINID ~, default 1 h)",
      codec: 'stream entry: field c = JSON message of the channel (checked against its schema)',
      maxBytes: 64 * 1024 * 1024,
      purpose:
        "A channel's messages (app channels, and tasuki.<queue>: task lifecycle events): subscribers read with their own cursor, groups share the work.",
    }),
    dead: space.define({
      id: 'queue.dead',
      pattern: '{q:<queue>}:dead',
      owner: `${TASUKI_OWNER}/worker`,
      version: 1,
      type: 'stream',
      noTtlReason:
        "bounded instead: XADD MAXLEN ~ the app's deadLetterMaxLen (10000) and XTRIM MINID ~ its deadLetterRetention (7 d)",
      codec:
        'stream entry: field d = JSON dead letter (task id, name, reason, error, attempts, times, message)',
      maxBytes: 64 * 1024 * 1024,
      purpose: 'Tasks that failed their last attempt or could not run at all, for inspection and retry.',
    }),
    idempotency: space.define({
      id: 'task.idempotency',
      pattern: '{q:<queue>}:idem:<key>',
      owner: `${TASUKI_OWNER}/queue`,
      version: 1,
      type: 'string',
      ttlMs: DAY_MS,
      codec: 'text: task id',
      maxBytes: 256,
      purpose: 'Maps an idempotency key to the task it created, so a repeat enqueue returns that task.',
    }),
    lock: space.define({
      id: 'lock.owner',
      pattern: '{lock:<name>}',
      owner: `${TASUKI_OWNER}/lock`,
      version: 1,
      type: 'string',
      ttlMs: DEFAULT_LOCK_TTL_MS,
      codec: 'text: random owner token of the current holder',
      maxBytes: 256,
      purpose:
        "A held lock; its TTL is the lock's ttl option (default 30 s), renewed by extend/auto-renew, deleted on release.",
    }),
    lockFence: space.define({
      id: 'lock.fence',
      pattern: '{lock:<name>}:fence',
      owner: `${TASUKI_OWNER}/lock`,
      version: 1,
      type: 'string',
      noTtlReason:
        'the last fencing token issued for the lock name; one small integer per name, kept so tokens keep rising (losing it is survivable: tokens are floored by the server clock)',
      codec: 'integer',
      maxBytes: 128,
      purpose:
        'Fencing-token counter of a lock name; lock_acquire raises it on every successful acquisition.',
    }),
    rateLimit: space.define({
      id: 'task.rate-limit',
      // <limit> is the limit's index in the task's rateLimit list; <key> is "-" for a limit of the
      // whole task, else the value of the limit's key function (hashed when long, like every part).
      pattern: '{rl:<task>}:<limit>:<key>',
      owner: `${TASUKI_OWNER}/limits`,
      version: 1,
      type: 'string',
      // Set on every write to the time until the stored arrival time passes (then the key means
      // nothing): about one interval of the rate, longer only while tasks wait for reserved slots.
      ttlMs: 60 * 60 * 1000,
      codec: 'integer: theoretical arrival time (GCRA), µs on the Redis clock',
      maxBytes: 256,
      purpose:
        'GCRA state of one rate limit of a task (per key value for keyed limits): one integer, whatever the traffic; expires when its arrival time passes.',
    }),
    schedules: space.define({
      id: 'beat.schedules',
      pattern: 'beat:schedules',
      owner: `${TASUKI_OWNER}/beat`,
      version: 1,
      type: 'hash',
      noTtlReason:
        'the schedules themselves: live until removed (`tasuki schedule remove`); one small JSON value per schedule',
      codec:
        'hash: field = schedule name, value = JSON schedule (task, args, timing, paused, since, who wrote it and when)',
      maxBytes: 4 * 1024 * 1024,
      purpose: 'Every periodic schedule, read by each beat replica, the CLI and the dashboard.',
    }),
    tick: space.define({
      id: 'beat.tick',
      // In the queue's hash tag: beat_tick.lua claims the tick and writes the task in one slot.
      pattern: '{q:<queue>}:tick:<schedule>',
      owner: `${TASUKI_OWNER}/beat`,
      version: 1,
      type: 'hash',
      // Set on every write to a week, or two periods of the schedule when longer (see docs/beat.md).
      ttlMs: 7 * DAY_MS,
      codec:
        'hash: t = last claimed tick (ms), f = fencing token, b = beat id, at = written (Redis ms), id = task id',
      maxBytes: 512,
      purpose:
        'The last tick of a schedule claimed on this queue: beat_tick.lua enqueues a tick only when it is later, so no tick runs twice.',
    }),
    beatFence: space.define({
      id: 'beat.fence',
      // In the queue's hash tag, so beat_tick.lua can compare a claim's lease token with it.
      pattern: '{q:<queue>}:beat-fence',
      owner: `${TASUKI_OWNER}/beat`,
      version: 1,
      type: 'hash',
      // Written by each new active beat, with this TTL (the tick records' fence check covers its absence).
      ttlMs: 7 * DAY_MS,
      codec: 'hash: fence = lease token of the latest active beat on this queue, v = its beat id',
      maxBytes: 256,
      purpose:
        'The newest beat lease seen on this queue: a claim with an older token (a paused ex-leader waking up) is refused.',
    }),
    progress: space.define({
      id: 'task.progress',
      // In the queue's hash tag; <task> is the task id's local part (a stream id, never user data).
      pattern: '{q:<queue>}:progress:<task>',
      owner: `${TASUKI_OWNER}/progress`,
      version: 1,
      type: 'stream',
      // Set on every write to the app's result TTL, so it goes with the task's record.
      ttlMs: DAY_MS,
      codec:
        "stream entry: v = JSON progress value (at most 1 KiB), n = attempt; e = 1 on an attempt's last entry (r = 1: it repeats the previous value)",
      // XADD MAXLEN 100 on every write: at most 100 entries of at most ~1.1 KiB.
      maxBytes: 128 * 1024,
      purpose:
        "A task's progress reports (ctx.progress), throttled and capped: the latest is read with XREVRANGE COUNT 1, followers block on it with XREAD.",
    }),
    canvas: space.define({
      id: 'canvas.state',
      pattern: '{q:<queue>}:canvas:<canvas>',
      owner: `${TASUKI_OWNER}/canvas`,
      version: 1,
      type: 'hash',
      ttlMs: DAY_MS,
      codec:
        'hash: d = JSON definition (nodes: task, queue, bound args, parent), v<group>:<i> = JSON result of a group member, n<group> = members joined, x = JSON failure (member id, task, error), z = 1 once finished',
      maxBytes: 4 * 1024 * 1024,
      purpose:
        "A canvas (chain, group, chord): its shape and its groups' joined results, in the slot of its home queue (its first task's); TTL: the app's resultTtl, renewed on each join.",
    }),
    canvasMember: space.define({
      id: 'canvas.member',
      pattern: '{q:<queue>}:cvm:<task>',
      owner: `${TASUKI_OWNER}/canvas`,
      version: 1,
      type: 'string',
      ttlMs: DAY_MS,
      codec: 'text: the stream entry id the canvas member was added as (on RabbitMQ: its outbox entry id)',
      maxBytes: 128,
      purpose:
        "Marks a canvas member as enqueued, so a continuation that runs twice (a reclaimed worker) never enqueues it twice; TTL: the app's resultTtl.",
    }),
    control: space.define({
      id: 'queue.control',
      pattern: '{q:<queue>}:control',
      owner: `${TASUKI_OWNER}/control`,
      version: 1,
      type: 'stream',
      noTtlReason:
        'bounded instead: every write trims it to about 1000 entries (XADD MAXLEN ~) and to the last hour (XTRIM MINID ~)',
      codec:
        'stream entry: field k = JSON control message (op revoke, cancel, pause or resume; task id and entry; who; when)',
      maxBytes: 1024 * 1024,
      purpose:
        "Revokes, cancels and pauses of a queue's tasks, for its workers: each follows it with a blocking XREAD, so no task pays a check.",
    }),
    paused: space.define({
      id: 'queue.paused',
      pattern: '{q:<queue>}:paused',
      owner: `${TASUKI_OWNER}/control`,
      version: 1,
      type: 'string',
      noTtlReason: 'the pause of a queue lasts until someone resumes it; one small value per paused queue',
      codec: 'JSON: who paused the queue (by) and when (since, ms)',
      maxBytes: 512,
      purpose:
        'Present while a queue is paused: workers read it when they start, then follow the control stream.',
    }),
    outbox: space.define({
      id: 'queue.outbox',
      // In the queue's hash tag: the script that records an outcome, claims a tick or starts a
      // canvas member writes the task it makes here in the same atomic step.
      pattern: '{q:<queue>}:outbox',
      owner: `${TASUKI_OWNER}/queue`,
      version: 1,
      type: 'stream',
      noTtlReason:
        'lives as long as its queue; each entry is deleted as soon as its message is published to the broker (at once, or relayed by a worker after claimIdle when its writer died first)',
      codec: 'stream entry: field i = task id (local part), field m = the task message to publish',
      maxBytes: 64 * 1024 * 1024,
      purpose:
        'RabbitMQ broker only: tasks made on Redis (canvas members and continuations, beat ticks) waiting to be published to RabbitMQ, so a crash between the Redis step and the publish loses none.',
    }),
    outboxOnce: space.define({
      id: 'queue.outbox-once',
      pattern: '{q:<queue>}:once:<task>',
      owner: `${TASUKI_OWNER}/queue`,
      version: 1,
      type: 'string',
      // Set to the app's result TTL: a copy published later than that would run again.
      ttlMs: DAY_MS,
      codec:
        'text: the copy tag of the first delivered copy of the task (its outbox entry id, plus a relay mark)',
      maxBytes: 128,
      purpose:
        'RabbitMQ broker only: which published copy of a task from the outbox runs; a second copy (published again by a relay after a crash) is dropped, so the task runs and is recorded once.',
    }),
    tickets: space.define({
      id: 'queue.tickets',
      // In the queue's hash tag: one field per task that waits on RabbitMQ or runs from it.
      pattern: '{q:<queue>}:tickets',
      owner: `${TASUKI_OWNER}/control`,
      version: 1,
      type: 'hash',
      noTtlReason:
        "lives as long as its queue; a task's field is written before its publish and deleted when its outcome is recorded (or it is dropped as revoked or purged), so it holds only tasks on RabbitMQ; a purge sweeps those whose messages it deleted",
      codec:
        'hash: field = task id, value = "state|purge generation|due ms|attempt|worker|task name" (state queued, delayed, active, cancelling, revoked, cancelled), then for a cancel of a running task "|" JSON {b: who, x: error}',
      maxBytes: 512 * 1024 * 1024,
      purpose:
        'RabbitMQ broker only: where each task that is not on Redis is (waiting, delayed, running, and on which worker), so revoke, cancel, purge and getTask work as on Redis Streams; read and written per batch (one HMGET, one HSET) by the worker that fetches tasks.',
    }),
    purges: space.define({
      id: 'queue.purges',
      pattern: '{q:<queue>}:purges',
      owner: `${TASUKI_OWNER}/control`,
      version: 1,
      type: 'string',
      noTtlReason:
        'one small integer per queue ever purged on RabbitMQ: a ticket stamped with an older generation belongs to a purged task (it must outlive every ticket)',
      codec: 'integer: purge generation, raised by each purge',
      maxBytes: 128,
      purpose:
        'RabbitMQ broker only: purges of a queue; a task published before the last one (in a delay level, or pushed to a worker and not started) is dropped, not run.',
    }),
  };
}
