/**
 * Chords under a SIGKILLed worker process, on a broker: members killed mid-run are taken over and
 * run again, continuations killed mid-run run again, and still each chord's callback runs exactly
 * once. Run by processes.test.ts (Redis Streams) and processes-rabbitmq.test.ts (RabbitMQ).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, test } from 'node:test';
import { chord, type AppOptions, type Tasuki } from '../../src/index.js';
import { canvasBookkeeping, part, total } from '../fixtures/canvas-app.js';
import { spawnCli, finished, waitForOutput } from '../support/cli.js';
import { randomPrefix, until } from '../support/redis.js';

/** Where the test runs: the Redis, the broker's environment for `tasuki worker`, and an app maker. */
export interface ChordServers {
  name: string;
  redisUrl(): string;
  redis(): { hlen(key: string): Promise<number>; hgetall(key: string): Promise<Record<string, string>> };
  env(): Record<string, string>;
  app(options: AppOptions): Tasuki;
}

export function chordsUnderKill(servers: ChordServers): void {
  const started: ChildProcess[] = [];
  after(() => {
    for (const child of started)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  function worker(prefix: string, queues: string) {
    const child = spawnCli(
      [
        'worker',
        '--app',
        'test/fixtures/canvas-app.ts',
        '--queues',
        queues,
        '--concurrency',
        '4',
        '--prefetch',
        '4',
        '--claim-idle',
        '1500ms',
      ],
      {
        REDIS_URL: servers.redisUrl(),
        TEST_PREFIX: prefix,
        TASUKI_LOG_LEVEL: 'info',
        TASK_DELAY_MS: '40',
        ...servers.env(),
      },
    );
    started.push(child);
    return { child, done: finished(child, 180_000) };
  }

  test(
    `${servers.name}: chords under a SIGKILLed worker: every callback runs exactly once`,
    { timeout: 300_000 },
    async () => {
      const prefix = randomPrefix();
      const app = servers.app({ prefix, queues: ['default', 'other'] });
      const { parts, callbacks } = canvasBookkeeping(prefix);
      // The producer's tasks: same names, schemas and queues as the workers' (handlers never run here).
      const p = app.task({ name: part.name, schema: part.definition.schema, handler: () => 0 });
      const t = app.task({
        name: total.name,
        queue: 'other',
        schema: total.definition.schema,
        handler: () => 0,
      });
      // The victim serves only the members' queue (members and their continuations), so a callback can
      // never be killed half-way: a callback counted twice could only be a chord that fired twice.
      const victim = worker(prefix, 'default');
      const others = [worker(prefix, 'default,other'), worker(prefix, 'default,other')];
      await Promise.all([victim, ...others].map((w) => waitForOutput(w.child, /worker started/, 90_000)));
      const CHORDS = 12;
      const SIZE = 10;
      const handles = [];
      for (let c = 0; c < CHORDS; c++) {
        const members = Array.from({ length: SIZE }, (_, j) => p.s({ i: c * 100 + j }));
        handles.push(await chord(members, t.s()).enqueue());
      }
      const redis = servers.redis();
      await until(
        async () => (await redis.hlen(parts.key({}))) >= 30,
        60_000,
        'a quarter of the members to run',
      );
      victim.child.kill('SIGKILL');
      await victim.done;
      const sums = await Promise.all(handles.map((h) => h.result({ timeout: '120s' })));
      const expected = Array.from({ length: CHORDS }, (_, c) => c * 100 * SIZE + (SIZE * (SIZE - 1)) / 2);
      assert.deepEqual(sums, expected);
      const ran = await redis.hgetall(callbacks.key({}));
      assert.deepEqual(
        ran,
        Object.fromEntries(expected.map((s) => [String(s), '1'])),
        'each callback ran exactly once',
      );
      const memberRuns = Object.values(await redis.hgetall(parts.key({}))).map(Number);
      assert.equal(memberRuns.length, CHORDS * SIZE, 'every member ran');
      const twice = memberRuns.filter((n) => n > 1).length;
      console.log(`members run twice (the killed worker held them): ${twice}`);
      assert.ok(twice <= 8, `${twice} members ran twice: more than the killed worker could hold`);
      for (const w of others) w.child.kill('SIGTERM');
      for (const w of others) assert.equal((await w.done).code, 0);
    },
  );
}
