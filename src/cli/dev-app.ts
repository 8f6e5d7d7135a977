/**
 * The app `tasuki dev` runs when no --app is given: two tasks, and a demo that enqueues them and
 * waits for their results. It lives in the package (compiled to dist/cli/dev-app.js), so
 * `npx tasuki dev` works from an installed package, with no TypeScript loader.
 */
import { z } from 'zod';
import { tasuki, TaskFailedError, type Tasuki } from '../index.js';

export const app = tasuki({ queues: ['default', 'emails'] });

/** Adds two numbers: the smallest useful task. */
export const add = app.task({
  name: 'math.add',
  schema: z.object({ a: z.number(), b: z.number() }),
  handler: ({ a, b }) => a + b,
});

/** Pretends to send an email; refuses addresses at example.invalid to show a failure. */
export const sendEmail = app.task({
  name: 'email.send',
  queue: 'emails',
  schema: z.object({ to: z.email(), subject: z.string().min(1) }),
  handler: async ({ to, subject }, ctx) => {
    if (to.endsWith('@example.invalid')) throw new Error(`mailbox ${to} does not exist`);
    await new Promise((r) => setTimeout(r, 20));
    ctx.log.info({ to }, 'email sent');
    return { delivered: true, subject };
  },
});

/** Enqueues a few tasks and prints their results; `tasuki dev` runs this, then exits. */
export async function demo(a: Tasuki = app): Promise<void> {
  const sum = await add.enqueue({ a: 2, b: 3 });
  console.log(`enqueued ${sum.id}; result:`, await sum.result({ timeout: '10s' }));

  const mails = await sendEmail.enqueueMany([
    { args: { to: 'ada@example.com', subject: 'hello' } },
    { args: { to: 'bob@example.com', subject: 'hi' }, options: { delay: '200ms' } },
  ]);
  for (const m of mails) console.log(`${m.id}:`, await m.result({ timeout: '10s' }));

  const bad = await sendEmail.enqueue({ to: 'nobody@example.invalid', subject: 'lost' });
  try {
    await bad.result({ timeout: '10s' });
  } catch (err) {
    if (!(err instanceof TaskFailedError)) throw err;
    console.log(`${bad.id} failed as expected: ${err.remote.message}`);
  }
  console.log('state of the first task:', (await a.getTask(sum.id))?.state);
}
