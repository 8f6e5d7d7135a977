// Fault 10.4: `result()` is typed as the handler's return type, but the value went through JSON: a
// `Date` comes back as a string, a `Map` as `{}`, undefined properties are gone.
//
// Expected: `Jsonified<T>` (src/results/jsonified.ts) is the type of T after JSON; the type-level
// checks below run under `npm run typecheck` (`// @ts-expect-error` lines fail the type check if
// they stop being errors), and the runtime test shows a real result has exactly that shape.
// A task whose handler returns T gives `TaskHandle<Jsonified<T>>` handles, so `result()` says so.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { Worker, type TaskHandle } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import type { Jsonified } from '../../src/results/jsonified.js';
import { newApp, useRedis } from '../support/redis.js';

/** True when A and B are the same type (not merely assignable). */
type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
/** Compiles only when its type argument is `true`. */
function expectType<T extends true>(..._: T[]): void {}

// Primitives stay; JSON-less values go.
expectType<Equal<Jsonified<string>, string>>();
expectType<Equal<Jsonified<'a' | 1 | true | null>, 'a' | 1 | true | null>>();
expectType<Equal<Jsonified<undefined>, undefined>>();
expectType<Equal<Jsonified<void>, undefined>>();
expectType<Equal<Jsonified<() => void>, undefined>>();
expectType<Equal<Jsonified<bigint>, never>>();
expectType<Equal<Jsonified<unknown>, unknown>>();
// toJSON is respected.
expectType<Equal<Jsonified<Date>, string>>();
expectType<Equal<Jsonified<{ toJSON(): { v: number } }>, { v: number }>>();
// Collections without own enumerable data become {}.
expectType<Equal<Jsonified<Map<string, number>>, Record<string, never>>>();
expectType<Equal<Jsonified<Set<number>>, Record<string, never>>>();
expectType<Equal<Jsonified<Error>, Record<string, never>>>();
// Objects: undefined and function properties dropped, maybe-undefined ones optional, nested too.
expectType<
  Equal<
    Jsonified<{ at: Date; n: number; u: undefined; f: () => void; s?: string; m: string | undefined }>,
    { at: string; n: number; s?: string; m?: string }
  >
>();
expectType<Equal<Jsonified<{ deep: { when: Date[] } }>, { deep: { when: string[] } }>>();
expectType<Equal<Jsonified<Record<string, Date>>, Record<string, string>>>();
// Arrays and tuples: element by element; what JSON cannot hold becomes null.
expectType<Equal<Jsonified<Date[]>, string[]>>();
expectType<Equal<Jsonified<readonly [Date, undefined, number]>, [string, null, number]>>();
expectType<Equal<Jsonified<(number | undefined)[]>, (number | null)[]>>();

// Handles of a task say what result() really resolves; they stay covariant (a handle of a task
// returning numbers is a TaskHandle<unknown>).
declare function handlesOf<T>(handler: () => T): TaskHandle<Jsonified<T>>;
export function handleTypes(): void {
  const h = handlesOf(() => ({ at: new Date(), n: 1 }));
  expectType<Equal<Awaited<ReturnType<typeof h.result>>, { at: string; n: number }>>();
  const any: TaskHandle<unknown>[] = [h, handlesOf(() => 1)];
  void any;
}

// And what it rules out: the result is not a Date, and dropped properties are not there. (Type checks
// only: this function is never called.)
export function rulesOut(stored: Jsonified<{ at: Date; f: () => number; u: undefined }>): void {
  // @ts-expect-error a Date comes back as a string
  const at: Date = stored.at;
  void at;
  expectType<Equal<keyof typeof stored, 'at'>>(); // f and u are gone
}

const server = useRedis();

test('a result really has the shape Jsonified<R> says', async () => {
  const app = newApp(server());
  const when = new Date('2026-01-02T03:04:05.006Z');
  const handler = () => ({
    at: when,
    tags: new Set(['a']),
    byId: new Map([['x', 1]]),
    missing: undefined,
    fn: () => 1,
    list: [when, undefined, 2] as [Date, undefined, number],
    nested: { when },
  });
  const t = app.task({ name: 'shapes', schema: z.object({}), handler });
  const w = new Worker(app, { logger: silentLogger() });
  await w.start();
  const result = await (await t.enqueue({})).result({ timeout: '5s' });
  await w.stop();
  expectType<Equal<typeof result, Jsonified<ReturnType<typeof handler>>>>();
  const expected: typeof result = {
    at: '2026-01-02T03:04:05.006Z',
    tags: {},
    byId: {},
    list: ['2026-01-02T03:04:05.006Z', null, 2],
    nested: { when: '2026-01-02T03:04:05.006Z' },
  };
  assert.deepEqual(result, expected);
});
