// Pure logic: no Redis.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toMs } from '../../src/util/duration.js';

test('toMs: numbers are milliseconds, as given', () => {
  assert.equal(toMs(0), 0);
  assert.equal(toMs(250), 250);
  assert.equal(toMs(1.5), 1.5);
});

test('toMs: every unit', () => {
  assert.equal(toMs('500ms'), 500);
  assert.equal(toMs('30s'), 30_000);
  assert.equal(toMs('5m'), 300_000);
  assert.equal(toMs('24h'), 86_400_000);
  assert.equal(toMs('7d'), 604_800_000);
  assert.equal(toMs('0s'), 0);
});

test('toMs: decimals are rounded to whole ms; surrounding blanks are ignored', () => {
  assert.equal(toMs('1.5s'), 1500);
  assert.equal(toMs('0.25m'), 15_000);
  assert.equal(toMs('2.5ms'), 3);
  assert.equal(toMs(' 10s '), 10_000);
});

test('toMs: anything else is undefined, never a throw', () => {
  for (const [i, bad] of [
    -1,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    '',
    '10',
    '10 s',
    '-5s',
    '5sec',
    '1e3ms',
    '.5s',
    's',
    '5S',
    'soon',
    null,
    undefined,
    true,
    {},
    [],
    10n,
  ].entries()) {
    assert.equal(toMs(bad), undefined, `bad value #${i} (${typeof bad})`);
  }
});
