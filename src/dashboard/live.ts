/**
 * The dashboard's live feed, shared by every open page: one app subscription (task events from all
 * workers, no polling of tasks) and one overview refresh — when events arrive (at most once a
 * second) and every few seconds for what events do not announce (enqueues) — however many pages
 * are open, and none while no page is. It also keeps the last five minutes of throughput and
 * latency, per second, for the charts.
 */
import type { TaskEvent } from '../events/event-map.js';
import type { TaskSubscription } from '../events/subscription.js';
import type { Overview } from './overview.js';

/** What the feed pushes to pages. */
export type LiveMessage =
  | { type: 'task'; event: PageEvent }
  | { type: 'overview'; overview: Overview; charts: ChartPoint[]; rates: Record<string, number> };

/** A task event as pages get it: no result (it may be megabytes), the error's name and message. */
export interface PageEvent {
  type: TaskEvent['type'];
  id: string;
  queue: string;
  task: string;
  attempt: number;
  worker: string;
  finishedAt: number;
  durationMs: number;
  error?: string;
}

/** One second of the charts. */
export interface ChartPoint {
  /** Second (ms since the epoch, a multiple of 1000). */
  t: number;
  succeeded: number;
  failed: number;
  /** Sum of run times and of waits (enqueue to start; from the id's time) of finished tasks, ms. */
  runMs: number;
  waitMs: number;
}

const CHART_SECONDS = 300;
const REFRESH_MS = 5000;
const EVENT_REFRESH_MS = 1000;

export interface LiveSource {
  subscribe(): TaskSubscription;
  overview(): Promise<Overview>;
}

export class LiveFeed {
  private readonly clients = new Set<(m: LiveMessage) => void>();
  private readonly points: ChartPoint[] = [];
  /** Finish times of the last minute's tasks, per queue (for the tasks-per-minute column). */
  private readonly recent = new Map<string, number[]>();
  private sub: TaskSubscription | undefined;
  private timer: NodeJS.Timeout | undefined;
  private refreshing = false;
  private lastRefresh = 0;
  private pendingRefresh: NodeJS.Timeout | undefined;
  private last: LiveMessage | undefined;

  constructor(private readonly source: LiveSource) {}

  /** Adds a page; it gets the last overview at once. Returns what removes it. */
  join(client: (m: LiveMessage) => void): () => void {
    this.clients.add(client);
    if (this.last) client(this.last);
    if (this.clients.size === 1) this.start();
    else void this.refresh();
    return () => {
      this.clients.delete(client);
      if (this.clients.size === 0) void this.stop();
    };
  }

  /** Tasks finished per queue in the last minute (as far as this server followed them). */
  rates(now = Date.now()): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [queue, times] of this.recent) {
      while (times.length && (times[0] as number) <= now - 60_000) times.shift();
      out[queue] = times.length;
    }
    return out;
  }

  /** The chart points of the last five minutes. */
  charts(): ChartPoint[] {
    const from = Math.floor(Date.now() / 1000) * 1000 - CHART_SECONDS * 1000;
    return this.points.filter((p) => p.t > from);
  }

  private start(): void {
    this.follow();
    this.timer = setInterval(() => void this.refresh(), REFRESH_MS);
    void this.refresh();
  }

  /** Subscribes; if Redis cannot be reached yet, tries again at the next refresh interval. */
  private follow(): void {
    const sub = this.source.subscribe();
    this.sub = sub;
    sub.on('task', (e) => this.onEvent(e));
    sub.ready.catch(() => {
      setTimeout(() => {
        if (this.sub !== sub || this.clients.size === 0) return;
        void sub.close();
        this.follow();
      }, REFRESH_MS).unref();
    });
  }

  private async stop(): Promise<void> {
    clearInterval(this.timer);
    clearTimeout(this.pendingRefresh);
    this.pendingRefresh = undefined;
    const sub = this.sub;
    this.sub = undefined;
    await sub?.close();
  }

  /** Stops the feed (the server closes). */
  async close(): Promise<void> {
    this.clients.clear();
    await this.stop();
  }

  private onEvent(e: TaskEvent): void {
    const durationMs = Math.max(0, e.finishedAt - e.startedAt);
    const second = Math.floor(e.finishedAt / 1000) * 1000;
    let point = this.points[this.points.length - 1];
    if (!point || point.t < second) {
      point = { t: second, succeeded: 0, failed: 0, runMs: 0, waitMs: 0 };
      this.points.push(point);
      if (this.points.length > CHART_SECONDS) this.points.shift();
    }
    if (point.t === second) {
      if (e.type === 'succeeded') point.succeeded++;
      else point.failed++;
      point.runMs += durationMs;
      const enqueued = Number(e.id.slice(0, e.id.indexOf('-')));
      point.waitMs += Math.max(0, e.startedAt - enqueued);
    }
    const times = this.recent.get(e.queue);
    if (times) times.push(e.finishedAt);
    else this.recent.set(e.queue, [e.finishedAt]);
    const event: PageEvent = {
      type: e.type,
      id: e.id,
      queue: e.queue,
      task: e.task,
      attempt: e.attempt,
      worker: e.worker,
      finishedAt: e.finishedAt,
      durationMs,
      ...('error' in e ? { error: `${e.error.name}: ${e.error.message}`.slice(0, 500) } : {}),
    };
    this.send({ type: 'task', event });
    this.refreshSoon();
  }

  /** An overview refresh within a second of an event, at most one a second. */
  private refreshSoon(): void {
    if (this.pendingRefresh) return;
    const wait = Math.max(0, this.lastRefresh + EVENT_REFRESH_MS - Date.now());
    this.pendingRefresh = setTimeout(() => {
      this.pendingRefresh = undefined;
      void this.refresh();
    }, wait);
  }

  private async refresh(): Promise<void> {
    if (this.refreshing || this.clients.size === 0) return;
    this.refreshing = true;
    this.lastRefresh = Date.now();
    try {
      const overview = await this.source.overview();
      this.last = { type: 'overview', overview, charts: this.charts(), rates: this.rates() };
      this.send(this.last);
    } catch {
      // Redis away: pages keep the last overview; the next refresh tries again.
    } finally {
      this.refreshing = false;
    }
  }

  private send(m: LiveMessage): void {
    for (const client of this.clients) client(m);
  }
}
