// Cancel of an isolated handler (issue 14, point 2 with point 5): a CPU-bound handler in a thread or
// a child process never looks at its signal, so a cancel ends the isolate; the task is cancelled.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TaskFailedError, Worker } from '../../src/index.js';
import { defineIsolated, QUEUES } from '../isolation/fixtures/isolated-app.js';
import { alive } from '../support/cli.js';
import { newApp, until, useRedis } from '../support/redis.js';

const server = useRedis();

for (const kind of ['thread', 'process'] as const) {
  test(`${kind}: cancel ends a CPU-bound isolated handler; the task ends cancelled and the next runs`, async () => {
    const app = newApp(server(), { queues: QUEUES });
    const tasks = defineIsolated(app, kind);
    const worker = new Worker(app, { concurrency: 2 });
    await worker.start();
    try {
      const spin = await tasks.spin.enqueue({ ms: 120_000 });
      let where: { pid: number } | undefined;
      for await (const p of app.followProgress(spin.id, { blockMs: 200 })) {
        where = p.value as { pid: number };
        break;
      }
      const started = Date.now();
      assert.equal((await spin.cancel()).outcome, 'cancelling');
      await assert.rejects(spin.result({ timeout: '20s' }), (err: unknown) => {
        assert.ok(err instanceof TaskFailedError);
        assert.equal(err.remote.code, 'E_CANCELLED');
        return true;
      });
      assert.ok(Date.now() - started < 20_000);
      assert.equal((await app.getTask(spin.id))?.state, 'cancelled');
      if (kind === 'process') await until(() => !alive(where!.pid), 10_000, 'the isolate process to end');
      // The pool starts a new isolate for the next attempt.
      const echo = await tasks.echo.enqueue({ text: 'after' });
      assert.equal(((await echo.result({ timeout: '30s' })) as { text: string }).text, 'after');
      assert.equal(worker.counts.cancelled, 1);
    } finally {
      await worker.stop();
    }
  });
}
