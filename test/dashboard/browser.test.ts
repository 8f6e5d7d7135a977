/**
 * The dashboard end to end in headless Chromium (Debian's `chromium`, driven by playwright-core; no
 * browser download): load the page, see a task appear and complete, open it, retry a dead letter.
 * Screenshots go to test/artefacts/dashboard/ (kept, not committed).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { z } from 'zod';
import { Worker } from '../../src/index.js';
import { serveDashboard } from '../../src/dashboard/index.js';
import { newApp, until, useRedis } from '../support/redis.js';

const CHROMIUM =
  process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const ARTEFACTS = fileURLToPath(new URL('../artefacts/dashboard/', import.meta.url));

const server = useRedis();

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTEFACTS, { recursive: true });
  await page.screenshot({ path: `${ARTEFACTS}${name}.png`, fullPage: true });
}

test(
  'in Chromium: a task appears and completes, its page shows its result, a dead letter is retried, a schedule is paused',
  {
    skip: CHROMIUM
      ? false
      : "no Chromium: `bash scripts/setup.sh --browser` installs Debian's chromium (or set CHROMIUM_PATH)",
  },
  async () => {
    const app = newApp(server(), { queues: ['q'] });
    const hello = app.task({
      name: 'hello',
      queue: 'q',
      schema: z.object({ who: z.string() }),
      handler: ({ who }) => `hello ${who}`,
    });
    let fail = true;
    const flaky = app.task({
      name: 'flaky',
      queue: 'q',
      schema: z.object({}),
      handler: () => {
        if (fail) throw new Error('flaky failed this time');
        return 'ok now';
      },
    });
    const served = await serveDashboard(app, { port: 0 });
    const worker = new Worker(app);
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('dialog', (d) => void d.accept());

      // Load the page: the queue is listed and the feed is live.
      await page.goto(served.url);
      await page.waitForSelector('#queues tr[data-queue="q"]');
      await page.waitForSelector('#status:has-text("live")');

      // A task appears on its queue's page while no worker runs...
      const h = await hello.enqueue({ who: 'browser' });
      await page.goto(`${served.url}#/queue/q`);
      await page.waitForSelector(`#tasks tr[data-id="${h.id}"]`, { timeout: 20_000 });
      assert.match(
        (await page.textContent(`#tasks tr[data-id="${h.id}"]`)) ?? '',
        /hello.*\{"who":"browser"\}/,
      );
      await shot(page, 'queue-waiting');

      // ...and completes once a worker starts: the live feed shows it.
      await page.goto(served.url);
      await page.waitForSelector('#status:has-text("live")');
      await worker.start();
      await page.waitForSelector(`#feed tr[data-event="succeeded"][data-id="${h.id}"]`, { timeout: 20_000 });
      await shot(page, 'overview');

      // Its page shows the result.
      await page.click(`#feed tr[data-id="${h.id}"] a`);
      await page.waitForSelector('#state:has-text("succeeded")');
      assert.equal(await page.textContent('#result'), '"hello browser"');
      await shot(page, 'task');

      // A dead letter, retried from the queue page (after a confirmation), runs again and succeeds.
      const d = await flaky.enqueue({});
      await assert.rejects(d.result());
      await page.goto(`${served.url}#/queue/q`);
      await page.waitForSelector(`#dead tr[data-dead="${d.id}"]`, { timeout: 20_000 });
      await shot(page, 'dead-letters');
      fail = false;
      await page.click(`#dead tr[data-dead="${d.id}"] button:has-text("Retry")`);
      await page.waitForSelector('#flash:has-text("retried 1")');
      assert.equal(await d.result(), 'ok now');
      await page.waitForSelector(`#dead tr[data-dead="${d.id}"]`, { state: 'detached', timeout: 20_000 });

      // The workers page and the key audit by owner render.
      await page.goto(`${served.url}#/workers`);
      await page.waitForSelector(`#workers tr[data-worker="${worker.name}"]`);
      await shot(page, 'workers');
      // A schedule is paused from its page (after a confirmation).
      await app.schedules.add({ name: 'greet', task: 'hello', args: { who: 'beat' }, every: '1h' });
      await page.goto(`${served.url}#/schedules`);
      await page.click('#schedules tr[data-schedule="greet"] button:has-text("Pause")');
      await page.waitForSelector('#schedules tr[data-schedule="greet"] td:has-text("paused")');
      assert.equal((await app.schedules.list())[0]?.paused, true);
      await shot(page, 'schedules');
      // A queue is paused from the overview (after a confirmation): the worker takes nothing from it
      // until it is resumed there.
      await page.goto(served.url);
      await page.click('#queues tr[data-queue="q"] button:has-text("Pause")');
      await page.waitForSelector('#queues tr[data-queue="q"] td:has-text("paused")');
      assert.equal((await app.queueStats('q')).paused, true);
      await until(() => worker.paused.includes('q'), 10_000, 'the worker to hear of the pause');
      const held = await hello.enqueue({ who: 'after the pause' });
      await shot(page, 'queue-paused');
      assert.equal((await app.getTask(held.id))?.state, 'queued');
      await page.click('#queues tr[data-queue="q"] button:has-text("Resume")');
      await page.waitForSelector('#queues tr[data-queue="q"] td:has-text("running")');
      assert.equal(await held.result({ timeout: '20s' }), 'hello after the pause');
      await page.goto(`${served.url}#/memory`);
      await page.click('#run-audit');
      await page.waitForSelector('#owners td:has-text("tasuki/queue")');
      await shot(page, 'memory');
      assert.deepEqual(errors, [], 'no script errors on the page');
    } finally {
      await browser?.close();
      await worker.stop();
      await served.close();
    }
  },
);
