/**
 * Read-only views of an app's queues for tools — `tasuki inspect`, the dashboard, an app's own admin
 * page: counts, lag, pages of tasks, workers, locks. Each read is bounded (page sizes, COUNT), so
 * it stays fast on a queue of millions.
 */
import type { RedisConnection } from '../connection/redis.js';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import { parseMemoryInfo, type MemoryInfo } from '../limits/memory-guard.js';
import { queueLag } from '../results/lag.js';
import { listLocks, type HeldLock } from './locks.js';
import { taskMessage, type TaskMessageView } from './message.js';
import { listTasks, type ListOptions, type TaskPage } from './tasks.js';
import { listWorkers, type WorkerInfo } from './workers.js';

export type { HeldLock } from './locks.js';
export type { TaskMessageView } from './message.js';
export type { ListOptions, ListedState, ListedTask, TaskPage } from './tasks.js';
export type { WorkerInfo } from './workers.js';

/** What the inspector reads through (a `Tasuki` app is one). */
export interface InspectHost {
  readonly keys: TasukiKeys;
  redis(): Promise<RedisConnection>;
  /** Throws `E_UNKNOWN_QUEUE` for a queue the app does not declare. */
  checkQueue(queue: string): void;
}

export class Inspector {
  constructor(private readonly host: InspectHost) {}

  /** A page of a queue's waiting, active or delayed tasks. */
  async tasks(queue: string, options: ListOptions): Promise<TaskPage> {
    this.host.checkQueue(queue);
    return listTasks(await this.host.redis(), this.host.keys, queue, options);
  }

  /**
   * A waiting, delayed or running task's message (arguments cut to `maxBytes`, or their claim
   * check); `undefined` once it finished.
   */
  async message(id: string, maxBytes?: number): Promise<TaskMessageView | undefined> {
    return taskMessage(await this.host.redis(), this.host.keys, id, maxBytes);
  }

  /** How long the oldest task no worker has taken yet has waited, ms (0: none waits). */
  async lag(queue: string): Promise<number> {
    this.host.checkQueue(queue);
    return queueLag(await this.host.redis(), this.host.keys, queue);
  }

  /** Workers that published a presence (alive or silent for less than an hour). */
  async workers(): Promise<WorkerInfo[]> {
    return listWorkers(await this.host.redis(), this.host.keys);
  }

  /** Locks held now (at most `limit`; `more` says some were left out). */
  async locks(limit?: number): Promise<{ locks: HeldLock[]; more: boolean }> {
    return listLocks(await this.host.redis(), this.host.keys, limit);
  }

  /** Redis's memory (INFO memory). */
  async memory(): Promise<MemoryInfo> {
    return parseMemoryInfo(await (await this.host.redis()).info('memory'));
  }
}
