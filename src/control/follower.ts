/**
 * A worker's side of control: it follows the control streams of its queues with a blocking XREAD on
 * a connection of its own, and tells the worker of pauses, resumes, revokes and cancels as they are
 * written — so a worker learns of them within a round trip, and no task pays a check for them.
 * When it starts (and after its connection was lost) it reads which queues are paused, and the
 * revokes and cancels of the last hour (a task it later takes over from a dead worker may be one).
 */
import type { RedisConnection } from '../connection/redis.js';
import { isCluster } from '../connection/redis.js';
import { groupBySlot, readAcrossSlots } from '../connection/slots.js';
import { CONTROL_MAX_LEN, queueStreams, type TasukiKeys } from '../keys/tasuki-keys.js';
import type { Logger } from '../log/logger.js';
import { Incident } from '../util/incident.js';
import { within } from '../util/within.js';
import { decodeControl, type ControlMessage } from '../wire/control.js';
import { CONTROL_FIELD, fieldValue } from '../wire/fields.js';
import { CONTROL_KEPT_MS, readPaused } from './control.js';

/** What the follower tells its worker. */
export interface ControlHost {
  /** A queue was paused (`true`) or resumed; also said once per paused queue at start. */
  pausedChanged(queue: string, paused: boolean): void;
  /** A task a worker had fetched was revoked or cancelled: `entry` is its delivery. */
  controlled(queue: string, entry: string, op: 'revoke' | 'cancel', by: string): void;
  /**
   * The queue has streams for these priority levels (above 0): at start for those that exist, then
   * as each is made (its first task). Said again after a reconnection; the host ignores repeats.
   */
  levelsFound(queue: string, levels: readonly number[]): void;
}

/** Pause after a failed read, ms. */
const RETRY_MS = 500;

export class ControlFollower {
  private running = false;
  private loop: Promise<void> | undefined;
  /** Last entry read per control stream. */
  private readonly cursors = new Map<string, string>();
  private readonly queueOf = new Map<string, string>();
  private readonly paused = new Set<string>();
  /** Recent revokes and cancels by queue and entry, so a take-over of one is not run (bounded). */
  private readonly recent = new Map<string, Map<string, { op: 'revoke' | 'cancel'; at: number }>>();
  private readonly groups: string[][];
  private readonly incident: Incident;
  private turn = 0;
  private resync = true;

  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: TasukiKeys,
    private readonly queues: readonly string[],
    private readonly host: ControlHost,
    log: Logger,
    private readonly blockMs: number,
  ) {
    const streams = queues.map((queue) => {
      const key = keys.control.key({ queue });
      this.queueOf.set(key, queue);
      return key;
    });
    this.groups = isCluster(redis) ? groupBySlot(streams, (s) => s) : [streams];
    this.incident = new Incident(log, 'following the control streams');
    for (const q of queues) this.recent.set(q, new Map());
  }

  /**
   * Reads which queues are paused and the control entries kept (the last hour), then follows the
   * streams. Resolves once the worker knows its queues' pauses, so it fetches from none of them.
   */
  async start(): Promise<void> {
    if (this.running) return;
    // The cursors first: a change written after them is read live (again, if the state read below
    // already has it: pauses and resumes are idempotent and come in order).
    for (const stream of this.queueOf.keys()) {
      const last = (await this.redis.xrevrange(stream, '+', '-', 'COUNT', 1))[0]?.[0];
      this.cursors.set(stream, last ?? '0-0');
    }
    await this.sync();
    await this.readBack();
    this.running = true;
    this.loop = this.run();
  }

  /** A revoke or cancel seen lately for this delivery (a Map lookup; nothing allocated). */
  recentOp(queue: string, entry: string): 'revoke' | 'cancel' | undefined {
    return this.recent.get(queue)?.get(entry)?.op;
  }

  /**
   * True while a queue is paused or something was revoked or cancelled lately: only then does the
   * worker look at a delivery before it starts (one boolean read per task otherwise).
   */
  engaged = false;

  private engage(): void {
    let recent = false;
    for (const m of this.recent.values()) if (m.size > 0) recent = true;
    this.engaged = this.paused.size > 0 || recent;
  }

  isPaused(queue: string): boolean {
    return this.paused.has(queue);
  }

  /** Queues paused now. */
  pausedQueues(): string[] {
    return [...this.paused];
  }

  /**
   * The pause state from the paused keys (the truth; the stream only announces changes), and the
   * priority levels each queue has streams for (a level made while the connection was down, or
   * more than an hour ago, is found here).
   */
  private async sync(): Promise<void> {
    const infos = await readPaused(this.redis, this.keys, this.queues);
    this.queues.forEach((queue, i) => this.setPaused(queue, infos[i] !== undefined));
    for (const queue of this.queues) {
      // One pipeline per queue: its streams share its slot. A few commands at start only.
      const [, ...levels] = queueStreams(this.keys, queue);
      const pipe = this.redis.pipeline();
      for (const key of levels) pipe.exists(key);
      const replies = (await pipe.exec()) ?? [];
      const found: number[] = [];
      replies.forEach(([err, n], i) => {
        if (err) throw err;
        if (Number(n) === 1) found.push(i + 1);
      });
      if (found.length) this.host.levelsFound(queue, found);
    }
    this.resync = false;
  }

  private setPaused(queue: string, paused: boolean): void {
    if (paused === this.paused.has(queue)) return;
    if (paused) this.paused.add(queue);
    else this.paused.delete(queue);
    this.engage();
    this.host.pausedChanged(queue, paused);
  }

  /** The revokes and cancels kept (the last hour, bounded by the stream cap) up to the cursors. */
  private async readBack(): Promise<void> {
    const from = `${Math.max(0, Date.now() - CONTROL_KEPT_MS)}-0`;
    for (const [stream, queue] of this.queueOf) {
      const to = this.cursors.get(stream) ?? '0-0';
      if (to === '0-0') continue;
      const entries = await this.redis.xrange(stream, from, to, 'COUNT', CONTROL_MAX_LEN * 2);
      for (const [id, fields] of entries) this.apply(queue, id, fieldValue(fields, CONTROL_FIELD), false);
    }
  }

  /**
   * Forgets revokes and cancels older than the hour kept (oldest first: entries come in stream
   * order), so a worker looks at its deliveries only while there are recent ones.
   */
  private prune(): void {
    if (!this.engaged) return;
    const oldest = Date.now() - CONTROL_KEPT_MS;
    for (const seen of this.recent.values()) {
      for (const [entry, { at }] of seen) {
        if (at >= oldest) break;
        seen.delete(entry);
      }
    }
    this.engage();
  }

  private apply(queue: string, id: string, raw: string | undefined, live: boolean): void {
    const m: ControlMessage | undefined = decodeControl(raw);
    if (!m) return;
    if (m.op === 'pause' || m.op === 'resume') {
      if (live) this.setPaused(queue, m.op === 'pause');
      return;
    }
    if (m.op === 'levels') {
      if (live && typeof m.l === 'number') this.host.levelsFound(queue, [m.l]);
      return;
    }
    if (m.e === undefined) return;
    const seen = this.recent.get(queue);
    if (seen) {
      seen.set(m.e, { op: m.op, at: Number(id.slice(0, id.indexOf('-'))) });
      if (seen.size > CONTROL_MAX_LEN * 2) seen.delete(seen.keys().next().value as string);
      this.engaged = true;
    }
    if (live) this.host.controlled(queue, m.e, m.op, m.by);
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        if (this.resync) await this.sync();
        // One server (or one slot): one blocking read; else turns over the slots (see slots.ts).
        const replies =
          this.groups.length === 1
            ? await this.read(this.groups[0] as string[], this.blockMs)
            : await readAcrossSlots(this.groups, this.turn++, 1, this.blockMs, (streams, _n, block) =>
                this.read(streams, block),
              );
        this.incident.ok();
        for (const [stream, entries] of replies) {
          const queue = this.queueOf.get(stream) as string;
          for (const [id, fields] of entries) {
            this.cursors.set(stream, id);
            this.apply(queue, id, fieldValue(fields, CONTROL_FIELD), true);
          }
        }
        this.prune();
      } catch (err) {
        if (!this.running) return;
        this.incident.fail(err);
        // A pause written while the connection was down is in the stream too, but read the truth.
        this.resync = true;
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    }
  }

  /** One XREAD over control streams of one slot (or one server); `block` undefined: no BLOCK. */
  private async read(
    streams: readonly string[],
    block: number | undefined,
  ): Promise<[string, [string, string[]][]][]> {
    const ids = streams.map((s) => this.cursors.get(s) ?? '0-0');
    const args: (string | number)[] = block === undefined ? [] : ['BLOCK', block];
    const reply = await this.redis.xread(...(args as ['BLOCK', number]), 'STREAMS', ...streams, ...ids);
    return reply ?? [];
  }

  /** Stops following: the connection is closed (which ends a blocking read at once). */
  async stop(): Promise<void> {
    if (!this.running) {
      this.redis.disconnect();
      return;
    }
    this.running = false;
    this.redis.disconnect();
    // With Redis away a command of the loop may never settle (the connection was reconnecting): its
    // end is not waited for past a second; the loop sees `running` false whenever it resumes.
    await within(this.loop ?? Promise.resolve(), 1000, 'control follower').catch(() => undefined);
  }
}
