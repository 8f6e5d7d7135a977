// Rate strings and their compiled form (no Redis): what '100/s', '10/m', '5/10s' mean to the script.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileRateLimits, parseRate } from '../../src/limits/rate.js';

test('parseRate: <count>/<unit> and <count>/<n><unit>; anything else is not a rate', () => {
  assert.deepEqual(parseRate('100/s'), { count: 100, periodMs: 1000 });
  assert.deepEqual(parseRate('10/m'), { count: 10, periodMs: 60_000 });
  assert.deepEqual(parseRate('5/10s'), { count: 5, periodMs: 10_000 });
  assert.deepEqual(parseRate(' 2 / h '), { count: 2, periodMs: 3_600_000 });
  assert.deepEqual(parseRate('1/d'), { count: 1, periodMs: 86_400_000 });
  for (const bad of ['0/s', '10', '10/x', '1.5/s', '-1/s', '10/0s', '', 10, null, undefined]) {
    assert.equal(parseRate(bad), undefined, String(bad));
  }
});

test('compileRateLimits: interval and burst tolerance in µs; none without a rateLimit', () => {
  assert.equal(compileRateLimits(undefined), undefined);
  assert.deepEqual(compileRateLimits('10/s'), [
    { rate: '10/s', intervalUs: 100_000, toleranceUs: 0, key: undefined },
  ]);
  const key = (a: never) => String(a);
  const [third, burst] = compileRateLimits(['3/s', { rate: '10/m', burst: 5, key }]) ?? [];
  assert.equal(third?.intervalUs, 333_333);
  assert.deepEqual(burst, { rate: '10/m', intervalUs: 6_000_000, toleranceUs: 24_000_000, key });
});
