/**
 * The dashboard's JSON API: the library's own calls (`app.queueStats`, `app.inspect`,
 * `app.getTask`, `app.deadLetters`), each read bounded by a page size. Mutations are POSTs with a
 * `{ "confirm": true }` body (the page asks first); the CSRF checks run before them (auth.ts).
 */
import { Hono, type Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { Tasuki } from '../app/app.js';
import { TasukiError } from '../errors.js';
import { auditKeys } from '../keys/audit.js';
import type { LiveFeed, LiveMessage } from './live.js';
import { overview, queueRow, taskView } from './overview.js';

function clamp(value: string | undefined, fallback: number, max: number): number {
  const n = Number.parseInt(value ?? '', 10);
  return Number.isFinite(n) && n >= 1 ? Math.min(n, max) : fallback;
}

/** A library error as an HTTP answer: the error's code and message, with a fitting status. */
export function errorResponse(c: Context, err: unknown): Response {
  if (err instanceof TasukiError) {
    const status =
      err.code === 'E_NOT_FOUND' || err.code === 'E_UNKNOWN_QUEUE'
        ? 404
        : err.code === 'E_REDIS' || err.code === 'E_CONNECTION'
          ? 503
          : 400;
    return c.json({ error: { code: err.code, message: err.message } }, status);
  }
  return c.json({ error: { code: 'E_INTERNAL', message: String(err) } }, 500);
}

/** Reads a POST's JSON body and checks its confirmation. */
async function confirmed(c: Context): Promise<{ ids?: string[]; all?: boolean }> {
  const body = (await c.req.json().catch(() => ({}))) as { confirm?: unknown; ids?: unknown; all?: unknown };
  if (body.confirm !== true) {
    throw new TasukiError('E_OPTIONS', 'not done: send { "confirm": true } to confirm this action');
  }
  const ids = Array.isArray(body.ids)
    ? body.ids.filter((x): x is string => typeof x === 'string')
    : undefined;
  if (!ids?.length && body.all !== true) {
    throw new TasukiError('E_OPTIONS', 'say which dead letters: { "ids": [...] } or { "all": true }');
  }
  return ids?.length ? { ids } : { all: true };
}

export function api(app: Tasuki, live: LiveFeed): Hono {
  const r = new Hono();
  r.onError((err, c) => errorResponse(c, err));

  r.get('/overview', async (c) =>
    c.json({ ...(await overview(app)), charts: live.charts(), rates: live.rates() }),
  );

  r.get('/queues/:queue', async (c) => {
    const queue = c.req.param('queue');
    app.checkQueue(queue);
    const [s, lagMs] = await Promise.all([app.queueStats(queue), app.inspect.lag(queue)]);
    return c.json(queueRow(s, lagMs));
  });

  // Pause or resume a queue for every worker (app.pause / app.resume), after the page's confirmation.
  r.post('/queues/:queue/:action{pause|resume}', async (c) => {
    const queue = c.req.param('queue');
    app.checkQueue(queue);
    const body = (await c.req.json().catch(() => ({}))) as { confirm?: unknown };
    if (body.confirm !== true) {
      throw new TasukiError('E_OPTIONS', 'not done: send { "confirm": true } to confirm this action');
    }
    const by = 'dashboard';
    const changed =
      c.req.param('action') === 'pause' ? await app.pause(queue, { by }) : await app.resume(queue, { by });
    return c.json({ queue, paused: (await app.queueStats(queue)).paused, changed });
  });

  r.get('/queues/:queue/tasks', async (c) => {
    const state = c.req.query('state') ?? 'waiting';
    if (state !== 'waiting' && state !== 'active' && state !== 'delayed') {
      throw new TasukiError('E_OPTIONS', `state "${state.slice(0, 20)}": use waiting, active or delayed`);
    }
    const page = await app.inspect.tasks(c.req.param('queue'), {
      state,
      order: c.req.query('order') === 'newest' ? 'newest' : 'oldest',
      limit: clamp(c.req.query('limit'), 50, 500),
      cursor: c.req.query('cursor') || undefined,
    });
    return c.json(page);
  });

  r.get('/tasks/:id', async (c) => {
    const view = await taskView(app, c.req.param('id'));
    if (!view)
      throw new TasukiError(
        'E_NOT_FOUND',
        `no task ${c.req.param('id')} (never enqueued, or its record expired)`,
      );
    return c.json(view);
  });

  r.get('/tasks/:id/result', async (c) => {
    const info = await app.getTask(c.req.param('id'));
    if (!info || !('result' in info))
      throw new TasukiError('E_NOT_FOUND', `task ${c.req.param('id')} has no result`);
    return c.body(JSON.stringify(info.result, null, 2), 200, {
      'content-type': 'application/json; charset=utf-8',
    });
  });

  r.get('/queues/:queue/dead', async (c) => {
    const queue = c.req.param('queue');
    app.checkQueue(queue);
    const limit = clamp(c.req.query('limit'), 50, 500);
    const letters = await app.deadLetters.list(queue, {
      limit,
      ...(c.req.query('after') ? { after: c.req.query('after') } : {}),
    });
    const last = letters[letters.length - 1];
    return c.json({
      total: await app.deadLetters.count(queue),
      letters: letters.map(({ message: _m, ...rest }) => rest),
      ...(letters.length === limit && last ? { next: last.deadId } : {}),
    });
  });

  r.post('/queues/:queue/dead/retry', async (c) => {
    const queue = c.req.param('queue');
    app.checkQueue(queue);
    const sel = await confirmed(c);
    return c.json(await app.deadLetters.retry(queue, sel.ids ? { ids: sel.ids } : { all: true }));
  });

  r.post('/queues/:queue/dead/purge', async (c) => {
    const queue = c.req.param('queue');
    app.checkQueue(queue);
    const sel = await confirmed(c);
    return c.json({ purged: await app.deadLetters.purge(queue, sel.ids ? { ids: sel.ids } : { all: true }) });
  });

  r.get('/schedules', async (c) => c.json({ schedules: await app.schedules.list() }));

  r.post('/schedules/:name/:action', async (c) => {
    const name = c.req.param('name');
    const action = c.req.param('action');
    const body = (await c.req.json().catch(() => ({}))) as { confirm?: unknown };
    if (body.confirm !== true) {
      throw new TasukiError('E_OPTIONS', 'not done: send { "confirm": true } to confirm this action');
    }
    if (action === 'pause') return c.json({ schedule: await app.schedules.pause(name) });
    if (action === 'resume') return c.json({ schedule: await app.schedules.resume(name) });
    if (action === 'run') return c.json({ taskId: (await app.schedules.run(name)).id });
    throw new TasukiError(
      'E_NOT_FOUND',
      `no action "${action.slice(0, 20)}" on schedules: use pause, resume or run`,
    );
  });

  r.get('/locks', async (c) => c.json(await app.inspect.locks(clamp(c.req.query('limit'), 200, 1000))));

  r.get('/memory', async (c) => {
    const memory = await app.inspect.memory();
    if (c.req.query('audit') !== '1') return c.json({ memory });
    // A SCAN of every key: on demand only, and cut short after ten seconds (complete: false).
    // Its own connection, as `tasuki keys audit` has: its raw SCAN calls do not mix with the
    // app connection's auto-pipelining.
    const redis = await app.connectRedis('tasuki:dashboard-audit');
    const report = await auditKeys(redis, app.keyspace, {
      count: 1000,
      maxFindings: 20,
      signal: AbortSignal.timeout(10_000),
    }).finally(() => redis.disconnect());
    const { complete, scanned, totalKeys, owners, counts, findings } = report;
    return c.json({ memory, audit: { complete, scanned, totalKeys, owners, counts, findings } });
  });

  r.get('/events', (c) =>
    streamSSE(c, async (stream) => {
      const queue: LiveMessage[] = [];
      let wake: (() => void) | undefined;
      const leave = live.join((m) => {
        queue.push(m);
        // A page that cannot keep up loses the oldest messages, not the server its memory.
        if (queue.length > 1000) queue.shift();
        wake?.();
      });
      stream.onAbort(() => wake?.());
      try {
        while (!stream.aborted && !stream.closed) {
          const m = queue.shift();
          if (m) await stream.writeSSE({ event: m.type, data: JSON.stringify(m) });
          else await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      } finally {
        leave();
      }
    }),
  );
  return r;
}
