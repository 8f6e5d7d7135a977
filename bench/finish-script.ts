/**
 * Redis time of `finish.lua` per task, with and without the queue's moves mark (fenced attempts:
 * with it, a batch newer than every take-over is recorded after one GET; without it, the worker's
 * pending list is read). The same batch each round against a throw-away redis-server, the two
 * cases interleaved, timed by `INFO commandstats`.
 *
 *   node --import tsx bench/finish-script.ts [--held 150] [--batch 100] [--rounds 300]
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { EmbeddedRedis } from '../src/connection/embedded.js';
import { tasukiKeys } from '../src/keys/tasuki-keys.js';
import * as scripts from '../src/scripts/catalogue.js';
import { GROUP } from '../src/wire/fields.js';

const { values } = parseArgs({
  options: {
    held: { type: 'string', default: '150' },
    batch: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '300' },
  },
});
const held = Number(values.held);
const batch = Math.min(held, Number(values.batch));
const rounds = Number(values.rounds);

const server = await EmbeddedRedis.start();
const redis = new Redis(server.port, '127.0.0.1');
scripts.registerScripts(redis);
const keys = tasukiKeys('bench');
const queue = 'q';
const k = {
  stream: keys.stream.key({ queue }),
  events: keys.events.key({ queue }),
  parked: keys.parked.key({ queue }),
  delayed: keys.delayed.key({ queue }),
  dead: keys.dead.key({ queue }),
  moves: keys.moves.key({ queue }),
};
const message = JSON.stringify(['noop', { i: 1 }]);
const record = JSON.stringify({
  state: 'succeeded',
  task: 'noop',
  attempt: 1,
  worker: 'bench-host:1234',
  startedAt: Date.now(),
  finishedAt: Date.now(),
  result: 42,
});

/** One round: `held` entries read by one consumer, `batch` of them finished; Redis µs of the call. */
async function round(marked: boolean): Promise<number> {
  await redis.del(...Object.values(k));
  const fill = redis.pipeline();
  for (let i = 0; i < held; i++) fill.xadd(k.stream, '*', 'm', message);
  fill.xgroup('CREATE', k.stream, GROUP, '0');
  if (marked) fill.set(k.moves, '0');
  await fill.exec();
  const read = (await redis.xreadgroup('GROUP', GROUP, 'c1', 'COUNT', held, 'STREAMS', k.stream, '>')) as [
    string,
    [string, string[]][],
  ][];
  const entries = read[0]![1].slice(0, batch).map(([entry]) => entry);
  const call = scripts.finish(k, {
    group: GROUP,
    ttlMs: 60_000,
    eventsMaxLen: 10_000,
    deadMaxLen: 10_000,
    deadMinId: '0',
    consumer: 'c1',
    tasks: entries.map((entry) => ({
      entry,
      id: entry,
      record,
      outcome: 'done' as const,
      parked: false,
      dropRecord: false,
      deliveries: 1,
    })),
    resultKey: (task) => keys.result.key({ queue, task }),
  });
  await redis.config('RESETSTAT');
  await scripts.run(redis, call);
  const stats = await redis.info('commandstats');
  return Number(/cmdstat_evalsha:calls=\d+,usec=(\d+)/.exec(stats)?.[1] ?? 0);
}

// Warm-up: loads the script (the first call is an EVAL).
await round(true);

const total = { marked: 0, unmarked: 0 };
for (let i = 0; i < rounds; i++) {
  total.marked += await round(true);
  total.unmarked += await round(false);
}
for (const [name, us] of Object.entries(total))
  console.log(
    `finish.lua, ${name.padEnd(8)} held ${held}, batch ${batch}: ${(us / rounds / batch).toFixed(2)} µs per task`,
  );
await redis.quit();
await server.stop();
