// Fenced attempts (issue 14, point 6): each attempt carries a fencing token issued when it is
// claimed; a worker presumed dead (paused, cut off) that finishes late has a stale token — its
// fenced writes are refused and its outcome is not recorded over the live attempt's.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { z } from 'zod';
import { fencedGet, parseTaskId } from '../../src/index.js';
import { RedisStreamsBroker } from '../../src/broker/redis-streams.js';
import type { Settlement } from '../../src/broker/broker.js';
import { attemptFence } from '../../src/wire/ids.js';
import { fenced, reportKey } from '../faults/fixtures/fault-app.js';
import { runLines, scratch, startFaultWorker } from '../faults/support.js';
import { newApp, randomPrefix, until, useRedis } from '../support/redis.js';

const server = useRedis();

/** The `result` of the record stored under a task's result key. */
async function storedResult(
  redis: ReturnType<ReturnType<typeof server>['client']>,
  key: string,
): Promise<unknown> {
  return (JSON.parse((await redis.get(key)) as string) as { result: unknown }).result;
}

function settlement(entry: string, deliveries: number): Settlement {
  const record = JSON.stringify({
    state: 'succeeded',
    task: 't',
    attempt: 1,
    worker: 'w',
    result: deliveries,
  });
  return { entry, id: entry, record, outcome: 'done', parked: false, dropRecord: false, deliveries };
}

/** An app with a task `t` on queue "default", and a Redis Streams broker on it, prepared. */
async function brokerSetup() {
  const app = newApp(server());
  const t = app.task({ name: 't', schema: z.object({}), handler: () => null });
  const redis = server().client();
  const broker = new RedisStreamsBroker({
    redis: server().client(),
    blocking: server().client(),
    keys: app.keys,
    resultTtlMs: 60_000,
    deadLetterMaxLen: 100,
    deadLetterRetentionMs: 60_000,
  });
  await broker.prepare(['default']);
  return { app, t, redis, broker };
}

test('finish records an entry only at the delivery count it was claimed at; a take-over fences the first holder out', async () => {
  const { app, t, redis, broker } = await brokerSetup();
  const stream = app.keys.stream.key({ queue: 'default' });
  const resultOf = (entry: string): string => app.keys.result.key({ queue: 'default', task: entry });

  // A takes the task; B takes it over (A presumed dead): its delivery count is 2 now.
  const { id } = await t.enqueue({});
  const [a] = await broker.fetch(['default'], 'A', 1, 100);
  assert.equal(a?.entry, parseTaskId(id).local);
  assert.equal(a?.deliveries, 1);
  const [b] = await broker.reclaim('default', 'B', 0, 10);
  assert.equal(b?.deliveries, 2);

  // A finishes late: fenced out, nothing written, the entry still B's.
  assert.deepEqual(await broker.settle('default', 'A', [settlement(a.entry, 1)]), [a.entry]);
  assert.equal(await redis.exists(resultOf(a.entry)), 0);
  const pending = (await redis.xpending(stream, 'tasuki', '-', '+', 10)) as [
    string,
    string,
    number,
    number,
  ][];
  assert.deepEqual(
    pending.map(([entry, owner, , count]) => [entry, owner, count]),
    [[a.entry, 'B', 2]],
  );

  // B's outcome is recorded.
  assert.deepEqual(await broker.settle('default', 'B', [settlement(a.entry, 2)]), []);
  assert.equal(await storedResult(redis, resultOf(a.entry)), 2);
  assert.equal(await redis.xlen(stream), 0);
  // And A, later still, finds nothing to record.
  assert.deepEqual(await broker.settle('default', 'A', [settlement(a.entry, 1)]), [a.entry]);
  assert.equal(await storedResult(redis, resultOf(a.entry)), 2);

  // A take-over undone (released again at the count it had, as a reclaim that spanned a lost
  // connection is): the first holder's outcome stands.
  await t.enqueue({});
  const [c] = await broker.fetch(['default'], 'A', 1, 100);
  const [taken] = await broker.reclaim('default', 'B', 0, 10);
  assert.equal(taken?.deliveries, 2);
  assert.equal(await broker.release('default', 'B', 0, [taken]), 1);
  assert.deepEqual(await broker.settle('default', 'A', [settlement(c!.entry, 1)]), []);
  assert.equal(await storedResult(redis, resultOf(c!.entry)), 1);
  await broker.close();
});

test('the moves mark: a batch newer than every take-over settles without reading the pending list; one with an older entry is checked', async () => {
  const { app, t, redis, broker } = await brokerSetup();
  const moves = app.keys.moves.key({ queue: 'default' });
  const resultOf = (entry: string): string => app.keys.result.key({ queue: 'default', task: entry });
  /** XPENDING calls Redis ran during `fn` (from INFO commandstats). */
  const pendingReads = async (fn: () => Promise<unknown>): Promise<number> => {
    await redis.config('RESETSTAT');
    await fn();
    const line = /cmdstat_xpending:calls=(\d+)/.exec(await redis.info('commandstats'));
    return Number(line?.[1] ?? 0);
  };
  assert.equal(await redis.get(moves), '0');

  // Nothing ever taken over: no pending list read.
  await t.enqueue({});
  const [a] = await broker.fetch(['default'], 'A', 1, 100);
  assert.equal(await pendingReads(() => broker.settle('default', 'A', [settlement(a!.entry, 1)])), 0);
  assert.equal(await storedResult(redis, resultOf(a!.entry)), 1);

  // A take-over raises the mark to the entry's time: the old holder is checked, and fenced out.
  await t.enqueue({});
  const [b] = await broker.fetch(['default'], 'A', 1, 100);
  const [taken] = await broker.reclaim('default', 'B', 0, 10);
  assert.equal(taken?.entry, b!.entry);
  assert.equal(await redis.get(moves), b!.entry.split('-')[0]);
  let stale: string[] = [];
  assert.equal(
    await pendingReads(async () => (stale = await broker.settle('default', 'A', [settlement(b!.entry, 1)]))),
    2, // A's pending list, then the entry's holder (not A)
  );
  assert.deepEqual(stale, [b!.entry]);
  assert.equal(await redis.exists(resultOf(b!.entry)), 0);

  // A newer entry, alone, is not; with the old one in its batch, the batch is.
  await until(() => Date.now() > Number(b!.entry.split('-')[0]));
  await t.enqueue({});
  const [c] = await broker.fetch(['default'], 'A', 1, 100);
  assert.ok(Number(c!.entry.split('-')[0]) > Number(b!.entry.split('-')[0]));
  await t.enqueue({});
  const [d] = await broker.fetch(['default'], 'B', 1, 100);
  assert.equal(await pendingReads(() => broker.settle('default', 'A', [settlement(c!.entry, 1)])), 0);
  assert.equal(
    await pendingReads(
      async () =>
        (stale = await broker.settle('default', 'B', [settlement(b!.entry, 2), settlement(d!.entry, 1)])),
    ),
    1,
  );
  assert.deepEqual(stale, []);
  assert.equal(await storedResult(redis, resultOf(b!.entry)), 2);
  assert.equal(await storedResult(redis, resultOf(d!.entry)), 1);

  // A revoke that takes a fetched task from its worker raises the mark too.
  await until(() => Date.now() > Number(d!.entry.split('-')[0]));
  const { id } = await t.enqueue({});
  const [e] = await broker.fetch(['default'], 'A', 1, 100);
  assert.equal((await app.revoke(id)).was, 'fetched');
  assert.equal(await redis.get(moves), e!.entry.split('-')[0]);
  assert.deepEqual(await broker.settle('default', 'A', [settlement(e!.entry, 1)]), [e!.entry]);

  // No mark (a group made before it existed, a flush of the key): every batch is checked.
  await redis.del(moves);
  await until(() => Date.now() > Number(e!.entry.split('-')[0]));
  await t.enqueue({});
  const [f] = await broker.fetch(['default'], 'A', 1, 100);
  assert.equal(await pendingReads(() => broker.settle('default', 'A', [settlement(f!.entry, 1)])), 1);
  assert.equal(await storedResult(redis, resultOf(f!.entry)), 1);
  // The next worker to start marks it again, at the newest entry: only newer ones skip the check.
  await broker.prepare(['default']);
  assert.equal(await redis.get(moves), f!.entry.split('-')[0]);
  await broker.close();
});

test('attempt fences rise with every take-over and every new attempt (a newer entry)', () => {
  assert.ok(attemptFence('1700000000000-0', 2) > attemptFence('1700000000000-0', 1));
  assert.ok(attemptFence('1700000000001-0', 1) > attemptFence('1700000000000-0', 50));
  // Fits a PostgreSQL bigint for entry ids until the year 2248 (ms < 2^43): here, 2100.
  assert.ok(attemptFence('4102444800000-0', 1_000_000) < 2n ** 63n);
});

test('a worker SIGSTOPped mid-task past claimIdle: the task runs on another worker; the zombie, woken, writes nothing and records nothing', async () => {
  const prefix = randomPrefix();
  const app = newApp(server(), { prefix });
  const producer = app.task({ name: fenced.name, schema: fenced.definition.schema, handler: () => 0 });
  const { runs, gate } = scratch();
  const args = ['--claim-idle', '1s', '--concurrency', '1'];
  const a = await startFaultWorker(server(), prefix, runs, args);
  const h = await producer.enqueue({ gate: gate('1') });
  await until(() => runLines(runs).length === 1, 10_000, 'worker A to start the task');
  const aPid = a.child.pid as number;
  assert.deepEqual(runLines(runs), [`start fenced ${aPid}`]);

  a.child.kill('SIGSTOP'); // its heartbeat thread stops too: after claimIdle it looks dead
  const b = await startFaultWorker(server(), prefix, runs, args);
  const bPid = b.child.pid as number;
  await until(() => runLines(runs).includes(`start fenced ${bPid}`), 20_000, 'worker B to take it over');
  writeFileSync(gate('1'), '');
  assert.equal(await h.result({ timeout: '20s' }), bPid);

  a.child.kill('SIGCONT'); // the zombie wakes, finds the gate open and finishes its attempt
  await until(
    () => runLines(runs).some((l) => l.endsWith(` ${aPid}`) && l.startsWith('fenced-')),
    20_000,
    'A to write',
  );
  for (const w of [a, b]) w.child.kill('SIGTERM');
  const [ra, rb] = await Promise.all([a.done, b.done]);
  assert.equal(ra.code, 0, ra.stderr);
  assert.equal(rb.code, 0, rb.stderr);

  const lines = runLines(runs);
  console.log(`runs:\n${lines.join('\n')}`);
  assert.ok(lines.includes(`fenced-ok ${bPid}`), 'B wrote its report');
  assert.ok(lines.includes(`fenced-stale ${aPid}`), "A's late fenced write was refused (StaleTokenError)");
  // The report holds B's write; the task's record shows one success, B's.
  assert.equal((await fencedGet(server().client(), reportKey(prefix).key({})))?.value, String(bPid));
  const info = await app.getTask(h.id);
  assert.equal(info?.state, 'succeeded');
  assert.equal(info?.result, bPid);
  assert.match(info?.worker ?? '', new RegExp(`:${bPid}:`));
  // A did not record its outcome: it found it had lost the task, or its finish was fenced out.
  assert.match(
    ra.stdout,
    /lost the claim on a task|discarded the outcome of a task another worker took over/,
  );
  assert.equal(
    await server()
      .client()
      .xlen(app.keys.stream.key({ queue: 'default' })),
    0,
  );
});
