import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { Locks, fencedGet, fencedSet, fencedUpsert, tasukiKeys } from '../../src/index.js';
import { TestPostgres } from '../../src/testing/postgres.js';
import { randomPrefix, until, useRedis } from '../support/redis.js';

const server = useRedis();
let db: TestPostgres;
let pool: pg.Pool;
before(async () => {
  db = await TestPostgres.start();
  pool = db.pool();
});
after(async () => {
  await db.close();
});

interface Fixture {
  child: ChildProcess;
  lines: AsyncIterator<string, undefined>;
  exited: Promise<unknown>;
}

const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Runs test/lock/fixtures/<name>.ts in its own Node process with `env`. */
function fixture(name: string, env: Record<string, string>): Fixture {
  const file = fileURLToPath(new URL(`./fixtures/${name}.ts`, import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', file], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const exited = once(child, 'exit');
  return { child, exited, lines: createInterface({ input: child.stdout })[Symbol.asyncIterator]() };
}

async function nextJson(f: Fixture): Promise<Record<string, unknown>> {
  const next = await f.lines.next();
  assert.ok(next.done !== true, 'fixture ended without output');
  return JSON.parse(next.value) as Record<string, unknown>;
}

test('contention across processes: mutual exclusion, and tokens rise in the order the resource saw them', async () => {
  const table = `counter_${process.pid}`;
  await pool.query(`CREATE TABLE ${table} (id int PRIMARY KEY, n int NOT NULL, fence bigint)`);
  await pool.query(
    `CREATE TABLE ${table}_log (seq bigserial PRIMARY KEY, token bigint NOT NULL, pid int NOT NULL)`,
  );
  const processes = 4;
  const iterations = 15;
  const env = {
    REDIS_URL: server().url,
    DATABASE_URL: db.url,
    PREFIX: randomPrefix(),
    LOCK: 'shared-counter',
    ITERATIONS: String(iterations),
    TABLE: table,
    PROCESSES: String(processes),
  };
  const contenders = Array.from({ length: processes }, () => fixture('contender', env));
  const outputs = await Promise.all(contenders.map((c) => nextJson(c)));
  const codes = await Promise.all(contenders.map((c) => c.exited));
  assert.deepEqual(
    codes.map((c) => (c as [number])[0]),
    Array(processes).fill(0),
  );
  const total = processes * iterations;

  // The counter was read and written with no SQL lock: any overlap would lose an increment.
  const counter = await pool.query<{ n: number }>(`SELECT n FROM ${table} WHERE id = 1`);
  assert.equal(counter.rows[0]?.n, total);

  // Critical sections, on the machine-wide monotonic clock, never overlap.
  type Section = { token: string; wait: string; enter: string; exit: string };
  const sections = (outputs as unknown as Section[][])
    .flatMap((list, proc) =>
      list.map((s) => ({
        proc,
        token: BigInt(s.token),
        wait: BigInt(s.wait),
        enter: BigInt(s.enter),
        exit: BigInt(s.exit),
      })),
    )
    .sort((a, b) => (a.enter < b.enter ? -1 : 1));
  assert.equal(sections.length, total);
  for (let i = 1; i < sections.length; i++) {
    assert.ok(sections[i]!.enter >= sections[i - 1]!.exit, `section ${i} starts after section ${i - 1} ends`);
    assert.ok(sections[i]!.token > sections[i - 1]!.token, 'and carries a greater token');
  }

  // The fenced resource saw strictly increasing tokens, one write per acquisition, from every process.
  const log = await pool.query<{ token: string; pid: number }>(
    `SELECT token, pid FROM ${table}_log ORDER BY seq`,
  );
  assert.equal(log.rows.length, total);
  for (let i = 1; i < log.rows.length; i++) {
    assert.ok(
      BigInt(log.rows[i]!.token) > BigInt(log.rows[i - 1]!.token),
      `log row ${i} has a greater token`,
    );
  }
  assert.equal(new Set(log.rows.map((r) => r.pid)).size, processes);
  // And they did contend: acquisitions waited while another process held the lock.
  const waited = sections.filter((s) =>
    sections.some((t) => t.proc !== s.proc && t.enter < s.enter && t.exit > s.wait),
  );
  assert.ok(waited.length >= processes - 1, `${waited.length} acquisitions waited for another process`);
});

test('the pause: A is SIGSTOPped past its TTL, B acquires and writes, A resumes and its writes are rejected', async () => {
  const table = `doc_${process.pid}`;
  await pool.query(`CREATE TABLE ${table} (id int PRIMARY KEY, body text, fence bigint)`);
  const prefix = randomPrefix();
  const keys = tasukiKeys(prefix);
  const valueKey = `${prefix}:v1:doc`;
  const redis = server().client();
  const goFile = join(mkdtempSync(join(tmpdir(), 'tasuki-pause-')), 'go');
  const a = fixture('pauser', {
    REDIS_URL: server().url,
    DATABASE_URL: db.url,
    PREFIX: prefix,
    LOCK: 'doc',
    // Long enough for A to acquire and then check it still holds the lock on a loaded machine (200 ms
    // was not); the test waits for the expiry below, so a longer ttl costs only that wait.
    TTL_MS: '1000',
    GO_FILE: goFile,
    TABLE: table,
    VALUE_KEY: valueKey,
  });
  const acquired = await nextJson(a);
  assert.equal(acquired.event, 'acquired');
  const tokenA = BigInt(acquired.token as string);
  assert.equal((await nextJson(a)).event, 'checked');
  a.child.kill('SIGSTOP'); // "GC pause": A believes it holds the lock
  try {
    // A's lock expires in Redis while A is stopped.
    await until(
      async () => (await redis.exists(keys.lock.key({ name: 'doc' }))) === 0,
      10_000, // a give-up bound: the lock expires ttl (1 s) after A took it
      "A's lock to expire",
    );
    const locks = new Locks(redis, keys);
    const b = await locks.acquire('doc', { blocking: false });
    const tokenB = b.token;
    assert.ok(tokenB > tokenA, `B's token ${b.token} > A's ${tokenA}`);
    await fencedUpsert(pool, { table, key: { id: 1 }, values: { body: 'B' }, token: b.token });
    await fencedSet(redis, valueKey, b.token, 'B');
    await b.release();

    writeFileSync(goFile, '');
    a.child.kill('SIGCONT');
    const done = await nextJson(a);
    assert.deepEqual(done, {
      event: 'done',
      token: tokenA.toString(),
      postgres: 'stale',
      redis: 'stale',
      signalAborted: true,
      release: 'lost',
    });
    assert.equal(((await a.exited) as [number])[0], 0);
    const row = await pool.query<{ body: string; fence: string }>(
      `SELECT body, fence FROM ${table} WHERE id = 1`,
    );
    assert.deepEqual(row.rows[0], { body: 'B', fence: tokenB.toString() });
    assert.deepEqual(await fencedGet(redis, valueKey), { value: 'B', token: tokenB });
  } finally {
    writeFileSync(goFile, '');
    a.child.kill('SIGCONT');
    rmSync(dirname(goFile), { recursive: true, force: true });
  }
});
