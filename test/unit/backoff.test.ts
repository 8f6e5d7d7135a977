// Pure logic: no Redis. backoffDelay(policy, attempt, random) with the random source injected, so
// every bound is checked exactly instead of by sampling.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay, isRetryable, RetryLater } from '../../src/task/retry.js';

const low = (): number => 0;
const high = (): number => 0.999_999;
const mid = (): number => 0.5;

test('exponential without jitter doubles from delay: 1, 2, 4, 8... times delay', () => {
  const p = { type: 'exponential', delay: 100, jitter: false } as const;
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((n) => backoffDelay(p, n, mid)),
    [100, 200, 400, 800, 1600],
  );
});

test('exponential is capped at maxDelay (default 1 h), with and without jitter', () => {
  const p = { type: 'exponential', delay: 100, maxDelay: 1000, jitter: false } as const;
  assert.deepEqual(
    [4, 5, 6, 30].map((n) => backoffDelay(p, n, mid)),
    [800, 1000, 1000, 1000],
  );
  // With jitter the cap bounds the top of the range: [cap/2, cap].
  const j = { type: 'exponential', delay: 100, maxDelay: 1000 } as const;
  assert.equal(backoffDelay(j, 30, low), 500);
  assert.equal(backoffDelay(j, 30, high), 1000);
  // Default cap: one hour, however many attempts (no overflow to Infinity).
  assert.equal(backoffDelay({ type: 'exponential', jitter: false }, 100, mid), 3_600_000);
  assert.equal(backoffDelay({ type: 'exponential', jitter: false }, 5000, mid), 3_600_000);
});

test('exponential jitter (on by default) draws from [d/2, d] using the random source', () => {
  const p = { type: 'exponential', delay: 100 } as const;
  assert.equal(backoffDelay(p, 1, low), 50);
  assert.equal(backoffDelay(p, 1, mid), 75);
  assert.equal(backoffDelay(p, 1, high), 100);
  assert.equal(backoffDelay(p, 3, low), 200);
  assert.equal(backoffDelay(p, 3, high), 400);
  let calls = 0;
  backoffDelay(p, 2, () => (calls++, 0.25));
  assert.equal(calls, 1, 'the injected random is the one used');
});

test('no policy: exponential from 1 s with jitter', () => {
  assert.equal(backoffDelay(undefined, 1, low), 500);
  assert.equal(backoffDelay(undefined, 1, high), 1000);
  assert.equal(backoffDelay(undefined, 2, high), 2000);
  assert.equal(backoffDelay(undefined, 3, low), 2000);
});

test('fixed: the same delay every attempt, no jitter unless asked; never capped', () => {
  const p = { type: 'fixed', delay: 250 } as const;
  assert.deepEqual(
    [1, 2, 10].map((n) => backoffDelay(p, n, low)),
    [250, 250, 250],
  );
  assert.equal(backoffDelay(p, 10, high), 250, 'random is not consulted');
  const big = { type: 'fixed', delay: '2h' } as const;
  assert.equal(backoffDelay(big, 1, mid), 7_200_000, 'maxDelay applies to exponential only');
  const jittered = { type: 'fixed', delay: 1000, jitter: true } as const;
  assert.equal(backoffDelay(jittered, 1, low), 500);
  assert.equal(backoffDelay(jittered, 7, high), 1000);
});

test('durations as strings; attempt 0 or below counts as the first', () => {
  assert.equal(backoffDelay({ type: 'exponential', delay: '2s', jitter: false }, 2, mid), 4000);
  assert.equal(
    backoffDelay({ type: 'exponential', delay: '1s', maxDelay: '3s', jitter: false }, 9, mid),
    3000,
  );
  assert.equal(backoffDelay({ type: 'exponential', delay: 100, jitter: false }, 0, mid), 100);
  assert.equal(backoffDelay({ type: 'exponential', delay: 100, jitter: false }, -3, mid), 100);
});

test('delays are whole milliseconds', () => {
  const p = { type: 'exponential', delay: 3 } as const;
  for (const r of [0, 0.1, 0.33, 0.5, 0.77, 0.999]) {
    assert.ok(Number.isInteger(backoffDelay(p, 1, () => r)));
  }
});

test('isRetryable: default all; a list of classes; a predicate; RetryLater always', () => {
  class Transient extends Error {}
  assert.equal(isRetryable(undefined, new TypeError('x')), true);
  assert.equal(isRetryable([Transient], new Transient('x')), true);
  assert.equal(isRetryable([Transient], new TypeError('x')), false);
  assert.equal(isRetryable([Transient], new RetryLater('later')), true);
  assert.equal(
    isRetryable(() => false, new RetryLater('later')),
    true,
  );
  assert.equal(
    isRetryable((e) => e instanceof Error && e.message === 'again', new Error('again')),
    true,
  );
  assert.equal(
    isRetryable(() => false, new Error('x')),
    false,
  );
});

test('RetryLater carries its delay in ms', () => {
  assert.equal(new RetryLater('busy', { delay: '30s' }).delayMs, 30_000);
  assert.equal(new RetryLater('busy', { delay: 250 }).delayMs, 250);
  assert.equal(new RetryLater().delayMs, undefined);
  const cause = new Error('root');
  assert.equal(new RetryLater('busy', { cause }).cause, cause);
  assert.equal(new RetryLater().name, 'RetryLater');
});
