/**
 * What the dashboard reads of the app — each read bounded whatever the queues hold (counts are
 * XLEN/ZCARD/XPENDING summaries; lists are pages) — and how a task is shown: its result cut to a
 * size a page can hold, with a link to the whole value.
 */
import type { Tasuki } from '../app/app.js';
import type { TaskInfo } from '../results/lookup.js';
import type { WorkerInfo } from '../inspect/workers.js';
import type { TaskMessageView } from '../inspect/message.js';
import type { DeadLetter } from '../deadletters/dead-letters.js';
import type { QueueStats } from '../results/stats.js';

/** A queue on the overview. */
export interface QueueRow {
  queue: string;
  waiting: number;
  active: number;
  delayed: number;
  dead: number;
  lagMs: number;
  /** Paused (`app.pause`): workers take no new task from it. */
  paused: boolean;
}

/** The overview page's data. */
export interface Overview {
  prefix: string;
  time: number;
  queues: QueueRow[];
  workers: WorkerInfo[];
  memory: { used: number; max: number; policy: string | undefined };
}

/** A queue's row from its counts and lag. */
export function queueRow(s: QueueStats, lagMs: number): QueueRow {
  return {
    queue: s.queue,
    waiting: s.waiting,
    active: s.active,
    delayed: s.delayed,
    dead: s.dead,
    lagMs,
    paused: s.paused,
  };
}

export async function overview(app: Tasuki): Promise<Overview> {
  const queues: QueueRow[] = [];
  for (const queue of app.queues) {
    const [s, lagMs] = await Promise.all([app.queueStats(queue), app.inspect.lag(queue)]);
    queues.push(queueRow(s, lagMs));
  }
  const [workers, memory] = await Promise.all([app.inspect.workers(), app.inspect.memory()]);
  return { prefix: app.keys.space.prefix, time: Date.now(), queues, workers, memory };
}

/** Results longer than this (JSON characters) are cut on the task page, with a link to the whole. */
export const RESULT_PREVIEW_CHARS = 16 * 1024;

/** A task as its page shows it. */
export interface TaskView extends Omit<TaskInfo, 'result' | 'resultClaim'> {
  /** The result's JSON, cut to {@link RESULT_PREVIEW_CHARS}. */
  result?: string;
  resultChars?: number;
  resultTruncated?: boolean;
  /** Arguments of a task still in Redis (waiting, delayed, running), or of a dead letter. */
  message?: TaskMessageView;
  deadLetter?: Omit<DeadLetter, 'message'>;
}

export async function taskView(app: Tasuki, id: string): Promise<TaskView | null> {
  const info = await app.getTask(id);
  if (!info) return null;
  const { result, resultClaim: _claim, ...rest } = info;
  const view: TaskView = { ...rest };
  if ('result' in info) {
    const json = JSON.stringify(result) ?? 'undefined';
    view.result = json.length > RESULT_PREVIEW_CHARS ? json.slice(0, RESULT_PREVIEW_CHARS) : json;
    view.resultChars = json.length;
    view.resultTruncated = json.length > RESULT_PREVIEW_CHARS;
  }
  if (info.state === 'failed') {
    const dead = await app.deadLetters.get(info.queue, id).catch(() => null);
    if (dead) {
      const { message: _raw, ...letter } = dead;
      view.deadLetter = letter;
    }
  } else if (info.state !== 'succeeded' && info.state !== 'expired') {
    const message = await app.inspect.message(id, RESULT_PREVIEW_CHARS);
    if (message) view.message = message;
  }
  return view;
}
