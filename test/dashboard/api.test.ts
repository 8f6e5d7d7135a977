import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { z } from 'zod';
import { Worker, type Tasuki } from '../../src/index.js';
import { createDashboard, serveDashboard } from '../../src/dashboard/index.js';
import { finished, runCli, spawnCli, waitForOutput } from '../support/cli.js';
import { newApp, useRedis } from '../support/redis.js';

const server = useRedis();

/**
 * Adds `n` tasks to a stream fast: raw RESP on one socket (the client library's per-command objects
 * made filling a million take 20-40 s), then a PING whose PONG says every XADD before it was done.
 */
async function fill(url: string, stream: string, n: number): Promise<void> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  const done = new Promise<void>((resolve, reject) => {
    let tail = '';
    socket.on('data', (d: Buffer) => {
      tail = (tail + d.toString('latin1')).slice(-64);
      if (tail.endsWith('+PONG\r\n')) resolve();
      if (/-ERR/.test(tail)) reject(new Error(tail));
    });
    socket.on('error', reject);
  });
  const bulk = (s: string): string => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
  const head = `*5\r\n${bulk('XADD')}${bulk(stream)}${bulk('*')}${bulk('m')}`;
  for (let i = 0; i < n;) {
    let chunk = '';
    for (let j = 0; j < 10_000 && i < n; j++, i++) chunk += head + bulk(`["job",{"i":${i}}]`);
    if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
  }
  socket.write('*1\r\n$4\r\nPING\r\n');
  await done;
  socket.destroy();
}

/** The CSRF token the page carries, for POSTs. */
async function csrfOf(request: (path: string) => Response | Promise<Response>): Promise<string> {
  const html = await (await request('/')).text();
  const token = /name="tasuki-csrf" content="([^"]+)"/.exec(html)?.[1];
  assert.ok(token, 'the page carries a CSRF token');
  return token;
}

function failing(app: Tasuki) {
  return app.task({
    name: 'boom',
    queue: 'q',
    schema: z.object({ n: z.number() }),
    handler: () => {
      throw new Error('kaput');
    },
  });
}

test('API: overview, a task with its error and stack, dead letters retried and purged only by a confirmed POST with the CSRF header', async () => {
  const app = newApp(server(), { queues: ['q'] });
  const boom = failing(app);
  const ok = app.task({ name: 'ok', queue: 'q', schema: z.object({}), handler: () => 'fine' });
  const worker = new Worker(app);
  await worker.start();
  const dashboard = createDashboard(app);
  const request = (path: string, init?: RequestInit): Promise<Response> =>
    Promise.resolve(dashboard.hono.request(path, init));
  try {
    const dead = [await boom.enqueue({ n: 1 }), await boom.enqueue({ n: 2 })];
    for (const h of dead) await assert.rejects(h.result());
    assert.equal(await (await ok.enqueue({})).result(), 'fine');
    const overview = (await (await request('/api/overview')).json()) as {
      queues: { queue: string; dead: number; waiting: number }[];
      workers: { name: string; concurrency: number }[];
    };
    assert.deepEqual(
      overview.queues.map((q) => [q.queue, q.dead, q.waiting]),
      [['q', 2, 0]],
    );
    assert.equal(overview.workers[0]?.name, worker.name);
    assert.equal(overview.workers[0]?.concurrency, 10);

    const task = (await (await request(`/api/tasks/${dead[0]?.id}`)).json()) as {
      state: string;
      error: { message: string; stack: string };
      deadLetter: { reason: string };
    };
    assert.equal(task.state, 'failed');
    assert.equal(task.error.message, 'kaput');
    assert.match(task.error.stack, /kaput/);
    assert.equal(task.deadLetter.reason, 'max-attempts');
    assert.equal((await request('/api/tasks/1-0@q')).status, 404);
    // Without a token, only loopback names are answered (a rebound DNS name is not).
    const rebound = await request('http://evil.example:7890/api/overview');
    assert.equal(rebound.status, 403);
    assert.equal((await request('http://localhost:7890/api/overview')).status, 200);
    assert.equal((await request('/api/queues/nope/tasks')).status, 404);

    assert.deepEqual(await (await request('/api/queues/q')).json(), {
      queue: 'q',
      waiting: 0,
      active: 0,
      delayed: 0,
      dead: 2,
      lagMs: 0,
      paused: false,
    });
    const letters = (await (await request('/api/queues/q/dead')).json()) as {
      total: number;
      letters: { taskId: string }[];
    };
    assert.equal(letters.total, 2);
    const csrf = await csrfOf(request);
    const json = { 'content-type': 'application/json' };
    const body = JSON.stringify({ confirm: true, ids: [dead[0]?.id] });
    // No CSRF header: refused, nothing retried.
    const noCsrf = await request('/api/queues/q/dead/retry', { method: 'POST', headers: json, body });
    assert.equal(noCsrf.status, 403);
    // A cross-site form post is refused by the origin check.
    const crossSite = await request('/api/queues/q/dead/retry', {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        origin: 'https://evil.example',
        'x-tasuki-csrf': csrf,
      },
      body: 'confirm=true',
    });
    assert.equal(crossSite.status, 403);
    // Not confirmed: refused.
    const unconfirmed = await request('/api/queues/q/dead/retry', {
      method: 'POST',
      headers: { ...json, 'x-tasuki-csrf': csrf },
      body: JSON.stringify({ ids: [dead[0]?.id] }),
    });
    assert.equal(unconfirmed.status, 400);
    assert.match(((await unconfirmed.json()) as { error: { message: string } }).error.message, /confirm/);
    assert.equal(await app.deadLetters.count('q'), 2);
    const retried = await request('/api/queues/q/dead/retry', {
      method: 'POST',
      headers: { ...json, 'x-tasuki-csrf': csrf },
      body,
    });
    assert.equal(retried.status, 200);
    assert.deepEqual(await retried.json(), { retried: 1, skipped: 0 });
    const purged = await request('/api/queues/q/dead/purge', {
      method: 'POST',
      headers: { ...json, 'x-tasuki-csrf': csrf },
      body: JSON.stringify({ confirm: true, all: true }),
    });
    assert.equal(purged.status, 200);
    await assert.rejects(dead[0]?.result() ?? Promise.resolve(), /kaput/); // it ran again and failed again

    // Pause and resume a queue: confirmed POSTs with the CSRF header, like every action.
    const pauseNoCsrf = await request('/api/queues/q/pause', { method: 'POST', headers: json, body });
    assert.equal(pauseNoCsrf.status, 403);
    const pauseUnconfirmed = await request('/api/queues/q/pause', {
      method: 'POST',
      headers: { ...json, 'x-tasuki-csrf': csrf },
      body: '{}',
    });
    assert.equal(pauseUnconfirmed.status, 400);
    assert.equal((await app.queueStats('q')).paused, false);
    for (const [action, paused] of [
      ['pause', true],
      ['resume', false],
    ] as const) {
      const res = await request(`/api/queues/q/${action}`, {
        method: 'POST',
        headers: { ...json, 'x-tasuki-csrf': csrf },
        body: JSON.stringify({ confirm: true }),
      });
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { queue: 'q', paused, changed: true });
      assert.equal(((await (await request('/api/queues/q')).json()) as { paused: boolean }).paused, paused);
    }
    const unknownAction = await request('/api/queues/q/stop', {
      method: 'POST',
      headers: { ...json, 'x-tasuki-csrf': csrf },
      body,
    });
    assert.equal(unknownAction.status, 404);
  } finally {
    await dashboard.close();
    await worker.stop();
  }
});

test('API: a 5 MB result is cut on the task page, with the whole value behind its link', async () => {
  const app = newApp(server(), { queues: ['q'] });
  const big = app.task({
    name: 'big',
    queue: 'q',
    schema: z.object({}),
    handler: () => 'x'.repeat(5 * 1024 * 1024),
  });
  const worker = new Worker(app);
  await worker.start();
  const dashboard = createDashboard(app);
  try {
    const h = await big.enqueue({});
    await h.result();
    let t0 = performance.now();
    const res = await dashboard.hono.request(`/api/tasks/${h.id}`);
    const text = await res.text();
    const pageMs = performance.now() - t0;
    const view = JSON.parse(text) as { result: string; resultTruncated: boolean; resultChars: number };
    assert.equal(view.resultTruncated, true);
    assert.equal(view.resultChars, 5 * 1024 * 1024 + 2);
    assert.ok(text.length < 40_000, `the task page's JSON is small (${text.length} characters)`);
    t0 = performance.now();
    const full = await (await dashboard.hono.request(`/api/tasks/${h.id}/result`)).text();
    const fullMs = performance.now() - t0;
    assert.equal(JSON.parse(full), 'x'.repeat(5 * 1024 * 1024));
    console.log(
      `5 MB result: task page ${pageMs.toFixed(0)} ms (${text.length} B), full result ${fullMs.toFixed(0)} ms`,
    );
    assert.ok(pageMs < 2000, `task page in ${pageMs} ms`);
  } finally {
    await dashboard.close();
    await worker.stop();
  }
});

test('API: pages stay fast with 1,000,000 waiting tasks (no read grows with the queue)', async () => {
  const app = newApp(server(), { queues: ['big'] });
  app.task({ name: 'job', queue: 'big', schema: z.object({ i: z.number() }), handler: () => 0 });
  const redis = await app.redis();
  const stream = app.keys.stream.key({ queue: 'big' });
  const N = 1_000_000;
  const fillStart = performance.now();
  await fill(server().url, stream, N);
  const fillMs = performance.now() - fillStart;
  assert.equal(await redis.xlen(stream), N);
  await redis.xgroup('CREATE', stream, 'tasuki', '0', 'MKSTREAM');
  const dashboard = createDashboard(app);
  const timed = async (path: string): Promise<[number, unknown]> => {
    const t0 = performance.now();
    const res = await dashboard.hono.request(path);
    const body: unknown = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    return [performance.now() - t0, body];
  };
  try {
    const [overviewMs, o] = await timed('/api/overview');
    assert.equal((o as { queues: { waiting: number }[] }).queues[0]?.waiting, N);
    const [oldestMs, oldest] = await timed('/api/queues/big/tasks?state=waiting&limit=50');
    const p = oldest as { tasks: { args: string }[]; next: string };
    assert.equal(p.tasks[0]?.args, '{"i":0}');
    const [nextMs] = await timed(`/api/queues/big/tasks?state=waiting&limit=50&cursor=${p.next}`);
    const [newestMs, newest] = await timed('/api/queues/big/tasks?state=waiting&order=newest&limit=50');
    assert.equal((newest as { tasks: { args: string }[] }).tasks[0]?.args, `{"i":${N - 1}}`);
    const [activeMs] = await timed('/api/queues/big/tasks?state=active');
    const [deadMs] = await timed('/api/queues/big/dead');
    const figures = { fillMs, overviewMs, oldestMs, nextMs, newestMs, activeMs, deadMs };
    console.log(
      `1,000,000 waiting: ${JSON.stringify(figures, (_k, v: unknown) => (typeof v === 'number' ? Math.round(v) : v))}`,
    );
    for (const [k, ms] of Object.entries(figures)) if (k !== 'fillMs') assert.ok(ms < 1000, `${k}: ${ms} ms`);
  } finally {
    await dashboard.close();
    await redis.del(stream);
  }
});

test('a dashboard off loopback needs a token; without it a request is refused (401), with it served', async () => {
  const app = newApp(server(), { queues: ['q'] });
  await assert.rejects(serveDashboard(app, { host: '0.0.0.0', port: 0 }), {
    code: 'E_CONFIG',
    message: /without a token/,
  });
  const served = await serveDashboard(app, { host: '0.0.0.0', port: 0, token: 's3cret' });
  try {
    const port = new URL(served.url).port;
    const base = `http://127.0.0.1:${port}`;
    const anonymous = await fetch(`${base}/api/overview`);
    assert.equal(anonymous.status, 401);
    assert.match(((await anonymous.json()) as { error: { message: string } }).error.message, /token/);
    assert.equal((await fetch(`${base}/`)).status, 401);
    assert.equal(
      (await fetch(`${base}/api/overview`, { headers: { authorization: 'Bearer wrong' } })).status,
      401,
    );
    assert.equal(
      (await fetch(`${base}/api/overview`, { headers: { authorization: 'Bearer s3cret' } })).status,
      200,
    );
    const login = await fetch(`${base}/?token=s3cret`, { redirect: 'manual' });
    assert.equal(login.status, 302);
    const cookie = login.headers.get('set-cookie') ?? '';
    assert.match(cookie, /tasuki_token=s3cret; .*HttpOnly.*SameSite=Strict/i);
    const page = await fetch(`${base}/`, { headers: { cookie: cookie.split(';')[0] as string } });
    assert.equal(page.status, 200);
  } finally {
    await served.close();
  }
  const cli = await runCli(
    [
      'dashboard',
      '--url',
      server().url,
      '--queues',
      'q',
      '--prefix',
      app.keys.space.prefix,
      '--host',
      '0.0.0.0',
    ],
    {},
  );
  assert.equal(cli.code, 2);
  assert.match(cli.stderr, /without a token: set --token/);
});

test('live feed: the event stream pushes the overview and each task event', async () => {
  const app = newApp(server(), { queues: ['q'] });
  const t = app.task({ name: 'ok', queue: 'q', schema: z.object({}), handler: () => 1 });
  const served = await serveDashboard(app, { port: 0 });
  const worker = new Worker(app);
  await worker.start();
  const abort = new AbortController();
  try {
    const res = await fetch(`${served.url}api/events`, { signal: abort.signal });
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    const until = async (pattern: RegExp): Promise<void> => {
      while (!pattern.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${pattern}: ${text}`);
        text += new TextDecoder().decode(value);
      }
    };
    await until(/event: overview/);
    const h = await t.enqueue({});
    await until(new RegExp(`event: task\\ndata: .*"id":"${h.id}"`));
    assert.match(text, /"type":"succeeded"/);
  } finally {
    abort.abort();
    await worker.stop();
    await served.close();
  }
});

test('tasuki dashboard serves until SIGTERM, printing where', async () => {
  const app = newApp(server(), { queues: ['q'] });
  const t = app.task({ name: 't', queue: 'q', schema: z.object({}), handler: () => 0 });
  await t.enqueue({}); // the queue exists (without --app, a queue must hold keys or have been served)
  const child = spawnCli([
    'dashboard',
    '--url',
    server().url,
    '--prefix',
    app.keys.space.prefix,
    '--queues',
    'q',
    '--port',
    '0',
  ]);
  const done = finished(child, 90_000);
  const out = await waitForOutput(child, /tasuki dashboard on (http:\/\/127\.0\.0\.1:\d+\/)/, 60_000).catch(
    async (err: unknown) => {
      child.kill('SIGKILL');
      throw new Error(`${(err as Error).message}\n${(await done).stderr}`);
    },
  );
  const url = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1] as string;
  const res = await fetch(`${url}api/overview`);
  assert.equal(res.status, 200);
  assert.deepEqual(
    ((await res.json()) as { queues: { queue: string }[] }).queues.map((q) => q.queue),
    ['q'],
  );
  child.kill('SIGTERM');
  assert.equal((await done).code, 0);
});

test('API: locks held, Redis memory and the key audit by owner', async () => {
  const app = newApp(server(), { queues: ['q'] });
  const t = app.task({ name: 't', queue: 'q', schema: z.object({}), handler: () => 0 });
  await t.enqueue({});
  const dashboard = createDashboard(app);
  const lock = await (await app.locks({ ttl: '20s' })).acquire('nightly-report');
  try {
    const locks = (await (await dashboard.hono.request('/api/locks')).json()) as {
      locks: { name: string; fence: string; ttlMs: number; owner: string }[];
    };
    assert.deepEqual(
      locks.locks.map((l) => [l.name, l.fence]),
      [['nightly-report', String(lock.token)]],
    );
    assert.ok((locks.locks[0]?.ttlMs ?? 0) > 10_000);
    const plain = (await (await dashboard.hono.request('/api/memory')).json()) as {
      memory: { used: number };
      audit?: unknown;
    };
    assert.ok(plain.memory.used > 0);
    assert.equal(plain.audit, undefined, 'the audit runs only on request');
    const audited = (await (await dashboard.hono.request('/api/memory?audit=1')).json()) as {
      audit: { complete: boolean; owners: { owner: string; keys: number }[] };
    };
    assert.equal(audited.audit.complete, true);
    const owners = new Map(audited.audit.owners.map((o) => [o.owner, o.keys]));
    assert.ok((owners.get('tasuki/queue') ?? 0) >= 1, JSON.stringify(audited.audit.owners));
    assert.ok((owners.get('tasuki/lock') ?? 0) >= 1, JSON.stringify(audited.audit.owners));
  } finally {
    await lock.release();
    await dashboard.close();
  }
});

test('API: schedules listed, paused, resumed and run now, each a confirmed POST', async () => {
  const app = newApp(server(), { queues: ['q'] });
  app.task({
    name: 'report',
    queue: 'q',
    schema: z.object({ day: z.string() }),
    handler: () => 0,
  });
  await app.schedules.add({ name: 'nightly', task: 'report', args: { day: 'today' }, every: '1h' });
  const dashboard = createDashboard(app);
  const request = (path: string, init?: RequestInit): Promise<Response> =>
    Promise.resolve(dashboard.hono.request(path, init));
  try {
    const csrf = await csrfOf(request);
    const headers = { 'content-type': 'application/json', 'x-tasuki-csrf': csrf };
    const list = (await (await request('/api/schedules')).json()) as {
      schedules: { name: string; task: string; paused: boolean; every: number }[];
    };
    assert.deepEqual(
      list.schedules.map((s) => [s.name, s.task, s.paused, s.every]),
      [['nightly', 'report', false, 3_600_000]],
    );
    const unconfirmed = await request('/api/schedules/nightly/pause', {
      method: 'POST',
      headers,
      body: '{}',
    });
    assert.equal(unconfirmed.status, 400);
    const body = JSON.stringify({ confirm: true });
    assert.equal(
      (await request('/api/schedules/nightly/pause', { method: 'POST', headers, body })).status,
      200,
    );
    assert.equal((await app.schedules.list())[0]?.paused, true);
    assert.equal(
      (await request('/api/schedules/nightly/resume', { method: 'POST', headers, body })).status,
      200,
    );
    assert.equal((await app.schedules.list())[0]?.paused, false);
    const run = (await (
      await request('/api/schedules/nightly/run', { method: 'POST', headers, body })
    ).json()) as {
      taskId: string;
    };
    assert.equal((await app.getTask(run.taskId))?.state, 'queued');
    assert.equal((await request('/api/schedules/nope/pause', { method: 'POST', headers, body })).status, 404);
  } finally {
    await dashboard.close();
  }
});
