/**
 * Every script of the catalogue, run against a real 3 + 3 Redis Cluster with keys from the registry:
 * each call's KEYS hash to one slot (Redis Cluster refuses a script otherwise, CROSSSLOT), and
 * different queues land on different shards.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Cluster } from 'ioredis';
import { slotOf } from '../../src/connection/slots.js';
import { queueStreams, tasukiKeys } from '../../src/keys/tasuki-keys.js';
import * as scripts from '../../src/scripts/catalogue.js';
import { TestCluster } from '../../src/testing/index.js';
import { GROUP } from '../../src/wire/fields.js';
import { randomPrefix } from '../support/redis.js';

let cluster: TestCluster;
let redis: Cluster;
before(async () => {
  cluster = await TestCluster.start();
  redis = cluster.client();
  scripts.registerScripts(redis);
});
after(() => cluster?.close());

const called = new Set<string>();

/** Runs a call after checking that its keys share one slot. */
async function run<R>(c: scripts.ScriptCall<R>): Promise<R> {
  const slots = new Set(c.keys.map(slotOf));
  assert.ok(slots.size <= 1, `${c.script}: keys span ${slots.size} slots: ${c.keys.join(' ')}`);
  called.add(c.script);
  return scripts.run(redis, c);
}

test('queues spread over the shards: 12 queue names land on every master', async () => {
  const k = tasukiKeys('tsk');
  const masters = (await cluster.cluster.topology()).filter((n) => n.role === 'master');
  const owner = (slot: number): number | undefined =>
    masters.find((m) => m.slots.some(([lo, hi]) => slot >= lo && slot <= hi))?.port;
  const used = new Set(
    Array.from({ length: 12 }, (_, i) => owner(slotOf(k.stream.key({ queue: `queue-${i}` })))),
  );
  assert.equal(used.size, masters.length);
});

test('every script in the catalogue runs on the cluster (each call one slot)', async () => {
  const k = tasukiKeys(randomPrefix());
  for (const queue of ['emails', 'images', 'reports']) {
    const q = {
      stream: k.stream.key({ queue }),
      delayed: k.delayed.key({ queue }),
      parked: k.parked.key({ queue }),
      events: k.events.key({ queue }),
      dead: k.dead.key({ queue }),
      moves: k.moves.key({ queue }),
      outbox: k.outbox.key({ queue }),
      streams: queueStreams(k, queue),
      control: k.control.key({ queue }),
    };
    await redis.xgroup('CREATE', q.stream, GROUP, '0', 'MKSTREAM');
    const msg = JSON.stringify(['t', { n: 1 }]);
    const ids = await run(scripts.enqueueBulk({ stream: q.stream }, [msg, msg, msg, msg]));
    assert.equal(ids.length, 4);
    await run(
      scripts.enqueueUnique(
        { idempotency: k.idempotency.key({ queue, key: 'k1' }), ...q },
        { ttlMs: 60_000, message: msg, due: 0, id: '', level: 0 },
      ),
    );
    // A task of priority level 2: its stream and group made, its entry reference returned.
    const high = JSON.stringify(['t', { n: 2 }, { l: 2 }]);
    const [ref] = await run(scripts.enqueueLevels(q, [{ level: 2, message: high }]));
    assert.match(ref as string, /^\d+-\d+p2$/);
    assert.equal(await redis.xlen(k.levelStream.key({ queue, level: '2' })), 1);
    await run(scripts.schedule(q, { id: '1-d1', due: Date.now() - 1, message: msg }));
    const promoted = await run(scripts.promote(q, { now: Date.now(), limit: 10 }));
    assert.equal(promoted[0], 1);
    const read = (await redis.xreadgroup('GROUP', GROUP, 'c1', 'COUNT', 10, 'STREAMS', q.stream, '>')) as [
      string,
      [string, string[]][],
    ][];
    const entries = read[0]![1].map(([id]) => id);
    assert.equal(entries.length, 6);
    const [a, b, c, d, e] = entries as [string, string, string, string, string];
    assert.deepEqual(await run(scripts.heartbeat(q, { group: GROUP, consumer: 'c1', entries: [a] })), []);
    await run(
      scripts.release(q, {
        group: GROUP,
        consumer: 'c1',
        idleMs: 60_000,
        entries: [{ entry: e, deliveries: 0 }],
      }),
    );
    const taken = await run(scripts.reclaim(q, { group: GROUP, consumer: 'c2', idleMs: 60_000, count: 1 }));
    assert.ok(taken.length <= 1, 'at most the released entry');
    await run(
      scripts.handback(q, {
        group: GROUP,
        consumer: 'c1',
        level: 0,
        tasks: [{ entry: d, id: d, message: msg }],
      }),
    );
    const record = JSON.stringify({ state: 'succeeded', task: 't', attempt: 1, result: 1 });
    const letter = JSON.stringify({ id: `${c}@${queue}`, queue, task: 't', reason: 'error', message: msg });
    const acked = await run(
      scripts.finish(q, {
        group: GROUP,
        consumer: 'c1',
        ttlMs: 60_000,
        eventsMaxLen: 100,
        deadMaxLen: 100,
        deadMinId: '0-0',
        tasks: [
          { entry: a, id: a, record, outcome: 'done', parked: false, dropRecord: false, deliveries: 1 },
          {
            entry: b,
            id: b,
            record,
            outcome: 'retry',
            parked: false,
            dropRecord: false,
            due: 1,
            payload: msg,
            deliveries: 1,
          },
          {
            entry: c,
            id: c,
            record,
            outcome: 'dead',
            parked: false,
            dropRecord: false,
            payload: letter,
            deliveries: 1,
          },
        ],
        resultKey: (task) => k.result.key({ queue, task }),
      }),
    );
    assert.deepEqual(acked, [3], 'three acknowledged, none fenced out');
    // The outcomes of tasks on another broker (RabbitMQ): results, a dead letter, a retry, one event,
    // and a canvas continuation written to the queue's outbox.
    const [fenced, outboxed] = await run(
      scripts.recordOutcomes(
        { ...q, purges: k.purges.key({ queue }), tickets: k.tickets.key({ queue }) },
        {
          ttlMs: 60_000,
          eventsMaxLen: 100,
          deadMaxLen: 100,
          deadMinId: '0-0',
          tasks: [
            { id: '1-pa', record, outcome: 'done', dropRecord: false },
            { id: '1-pb', record, outcome: 'dead', dropRecord: false, payload: letter },
            { id: '1-pc', record, outcome: 'retry', dropRecord: false, due: Date.now() + 60_000 },
          ],
          resultKey: (task) => k.result.key({ queue, task }),
          outbox: [{ id: '1-pbk', message: msg, after: '1-pb' }],
        },
      ),
    );
    assert.equal(fenced, 0, 'all recorded, none fenced by a ticket');
    assert.equal(await redis.xlen(q.outbox), 1);
    assert.equal(await redis.xdel(q.outbox, outboxed as string), 1);
    await redis.xtrim(q.dead, 'MAXLEN', 1);
    const dead = (await redis.xrange(q.dead, '-', '+')) as [string, string[]][];
    assert.equal(dead.length, 1);
    await run(
      scripts.dlqRetry(q, {
        tasks: [{ deadEntry: dead[0]![0], id: c, message: msg, resultKey: k.result.key({ queue, task: c }) }],
      }),
    );
    const found = await run(
      scripts.lookup(
        {
          result: k.result.key({ queue, task: a }),
          tickets: k.tickets.key({ queue }),
          purges: k.purges.key({ queue }),
          ...q,
        },
        { id: a, group: GROUP },
      ),
    );
    assert.equal(found[0], 'record');
    await run(scripts.forgetConsumers(q, { group: GROUP, idleMs: 0, only: 'nobody' }));
    const tick = await run(
      scripts.beatTick(
        {
          tick: k.tick.key({ queue, schedule: 'nightly' }),
          stream: q.stream,
          fence: k.beatFence.key({ queue }),
        },
        { tick: Date.now(), fence: '1', beat: 'b1', ttlMs: 60_000, message: msg },
      ),
    );
    assert.equal(tick[0], 1);
  }
  // Control (revoke, pause, purge): each call on one queue's slot.
  for (const queue of ['emails', 'images']) {
    const stream = k.stream.key({ queue });
    const q = {
      stream,
      streams: queueStreams(k, queue),
      delayed: k.delayed.key({ queue }),
      parked: k.parked.key({ queue }),
      moves: k.moves.key({ queue }),
    };
    const [first] = await run(scripts.enqueueBulk({ stream }, [JSON.stringify(['t', {}])]));
    const revoked = await run(
      scripts.revoke(
        {
          ...q,
          result: k.result.key({ queue, task: first as string }),
          events: k.events.key({ queue }),
          control: k.control.key({ queue }),
        },
        {
          id: first as string,
          group: GROUP,
          op: 'revoke',
          by: 'test',
          now: Date.now(),
          ttlMs: 60_000,
          error: '{"name":"RevokedError","message":"revoked","code":"E_REVOKED"}',
          eventsMaxLen: 100,
          controlMaxLen: 100,
          controlMinId: '0-0',
        },
      ),
    );
    assert.deepEqual(revoked, ['queued']);
    const control = { paused: k.paused.key({ queue }), control: k.control.key({ queue }) };
    const message = JSON.stringify({ op: 'pause', by: 'test', at: 1 });
    const pause = { op: 'pause', value: '{}', message, maxLen: 100, minId: '0-0' } as const;
    assert.equal(await run(scripts.pause(control, pause)), 1);
    assert.equal(await run(scripts.pause(control, { ...pause, op: 'resume' })), 1);
    const purged = await run(scripts.purge(q, { group: GROUP, what: 'delayed', after: '-', count: 100 }));
    assert.ok(purged[0] >= 0);
    assert.equal(await redis.zcard(q.delayed), 0);
    // Tickets (RabbitMQ broker): put, claim, revoke, purge, each on the queue's slot.
    const tq = { delayed: q.delayed, purges: k.purges.key({ queue }), tickets: k.tickets.key({ queue }) };
    const tasks = [
      { id: '1-pa', name: 't', due: 0 },
      { id: '1-pb', name: 't', due: Date.now() + 60_000 },
    ];
    assert.equal(await run(scripts.ticketPut(tq, { now: Date.now(), staleMs: 60_000, tasks })), 2);
    assert.deepEqual(await run(scripts.ticketClaim(tq, { worker: 'w1', ids: ['1-pa'] })), ['']);
    const revokedTicket = await run(
      scripts.revokeTicket(
        {
          ...tq,
          result: k.result.key({ queue, task: '1-pb' }),
          events: k.events.key({ queue }),
          control: k.control.key({ queue }),
        },
        {
          id: '1-pb',
          op: 'revoke',
          by: 'test',
          now: Date.now(),
          ttlMs: 60_000,
          error: '{"name":"RevokedError","message":"revoked","code":"E_REVOKED"}',
          eventsMaxLen: 100,
          controlMaxLen: 100,
          controlMinId: '0-0',
        },
      ),
    );
    assert.deepEqual(revokedTicket, ['delayed']);
    assert.deepEqual(await run(scripts.purgeTickets(tq, { oldest: 0, cursor: '', count: 100 })), [0, '']);
  }
  const lock = { lock: k.lock.key({ name: 'report' }), fence: k.lockFence.key({ name: 'report' }) };
  const got = await run(scripts.lockAcquire(lock, { owner: 'o1', ttlMs: 10_000 }));
  assert.equal(got[0], 1);
  assert.ok((await run(scripts.lockExtend(lock, { owner: 'o1', ms: 20_000, mode: 'replace' }))) > 0);
  assert.equal(await run(scripts.lockRelease(lock, { owner: 'o1' })), 1);
  const written = await run(
    scripts.fenceSet({ value: `${lock.lock}:value` }, { token: '5', value: 'v', ttlMs: 0 }),
  );
  assert.equal(written[0], 1);
  const limits = [0, 1].map((i) => k.rateLimit.key({ task: 'email.send', limit: String(i), key: '' }));
  assert.equal(
    await run(
      scripts.rateLimit(
        { limits },
        {
          limits: [
            { intervalUs: 1000, toleranceUs: 0 },
            { intervalUs: 1000, toleranceUs: 0 },
          ],
        },
      ),
    ),
    0,
  );
  assert.equal(
    await run(
      scripts.scheduleCas({ schedules: k.schedules.key({}) }, { name: 'nightly', expected: '', value: '{}' }),
    ),
    1,
  );
  // App keyspace and sequence scripts take one key each: any key is one slot.
  const appKey = k.lock.key({ name: 'app-value' });
  await redis.set(appKey, 'v1');
  assert.equal(
    await run(
      scripts.keyspaceRewrite(
        { value: appKey },
        { expected: Buffer.from('v1'), value: Buffer.from('v2'), ttlMs: 60_000 },
      ),
    ),
    1,
  );
  const next = await run(
    scripts.sequenceNext({ counter: k.lockFence.key({ name: 'ids' }) }, { n: 3, floor: 'none', aheadUs: 0 }),
  );
  assert.deepEqual(next, [1, '3']);
  const published = await run(
    scripts.channelPublish(
      { channel: k.channel.key({ channel: 'news' }) },
      { maxLen: 100, minId: '0-0', messages: ['{"a":1}', '{"a":2}'] },
    ),
  );
  assert.equal(published.length, 2);
  // Canvas scripts: the canvas's state, record and events in its home queue's slot; a member's
  // marker with its own queue's stream and parked hash (another slot).
  const home = 'emails';
  const canvas = {
    canvas: k.canvas.key({ queue: home, canvas: '1-cab' }),
    result: k.result.key({ queue: home, task: '1-cab' }),
  };
  assert.equal(await run(scripts.canvasOpen(canvas, { ttlMs: 60_000, definition: '{}', record: '{}' })), 1);
  const member = {
    member: k.canvasMember.key({ queue: 'images', task: '1-cabn1' }),
    stream: k.stream.key({ queue: 'images' }),
    parked: k.parked.key({ queue: 'images' }),
  };
  const start = { ttlMs: 60_000, message: JSON.stringify(['t', {}, { id: '1-cabn1' }]), id: '1-cabn1' };
  assert.equal(await run(scripts.canvasStart(member, start)), 1);
  assert.equal(await run(scripts.canvasStart(member, start)), 0);
  // On RabbitMQ the member goes to its queue's outbox instead (same slot).
  const outboxed = {
    ...member,
    member: k.canvasMember.key({ queue: 'images', task: '1-cabn2' }),
    stream: k.outbox.key({ queue: 'images' }),
  };
  const second = { ...start, id: '1-cabn2', outbox: true };
  assert.match(String(await run(scripts.canvasStart(outboxed, second))), /^\d+-\d+$/);
  assert.equal(await run(scripts.canvasStart(outboxed, second)), 0);
  const join = { ttlMs: 60_000, group: 0, member: 0, value: '5', size: 1 };
  assert.deepEqual(await run(scripts.canvasJoin(canvas, join)), [1, '5']);
  const close = {
    ttlMs: 60_000,
    outcome: 'ok' as const,
    record: '{}',
    id: '1-cab',
    eventsMaxLen: 100,
    failure: '',
  };
  const events = { ...canvas, events: k.events.key({ queue: home }) };
  assert.equal(await run(scripts.canvasClose(events, close)), 1);
  assert.equal(await run(scripts.canvasClose(events, close)), 0);
  assert.deepEqual([...called].sort(), Object.keys(scripts.SCRIPT_KEYS).sort());
});
