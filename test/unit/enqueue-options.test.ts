// Pure logic: no Redis. resolveOptions(opts, defaultQueue, queues, now, path) with `now` injected.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OptionsError, UnknownQueueError } from '../../src/errors.js';
import { resolveOptions, type EnqueueOptions } from '../../src/task/enqueue-options.js';

const NOW = 1_800_000_000_000;
const QUEUES = ['default', 'emails'] as const;
const resolve = (opts: EnqueueOptions | undefined, path = '') =>
  resolveOptions(opts, 'default', QUEUES, NOW, path);

function issues(opts: unknown, path = ''): Map<string, string> {
  try {
    resolve(opts as EnqueueOptions, path);
  } catch (err) {
    assert.ok(err instanceof OptionsError, String(err));
    assert.equal(err.code, 'E_OPTIONS');
    return new Map(err.issues.map((i) => [i.path, i.message]));
  }
  assert.fail(`expected an OptionsError for ${JSON.stringify(opts)}`);
}

test('no options: the default queue, due now, no expiry, no key', () => {
  const expected = {
    queue: 'default',
    due: 0,
    expiresAt: undefined,
    idempotencyKey: undefined,
    storeResult: undefined,
    priority: undefined,
  };
  assert.deepEqual(resolve(undefined), expected);
  assert.deepEqual(resolve({}), expected);
  assert.throws(() => resolveOptions(undefined, 'gone', QUEUES, NOW), UnknownQueueError);
});

test('priority: an integer 0..3, echoed when it is not', () => {
  for (const p of [0, 1, 2, 3]) assert.equal(resolve({ priority: p }).priority, p);
  for (const bad of [4, -1, 1.5, Number.NaN, '1', true]) {
    const message = issues({ priority: bad }).get('priority');
    assert.match(message ?? '', /is not a priority level: give an integer from 0 \(the default\) to 3/);
  }
  assert.match(issues({ priority: 7 }).get('priority') ?? '', /^7 is not/);
  assert.match(issues({ priority: '2' }).get('priority') ?? '', /^"2" is not/);
  assert.ok(issues({ priority: 9 }, 'items[3]').has('items[3].priority'), 'a bulk item names its index');
});

test('queue: one the app declares', () => {
  assert.equal(resolve({ queue: 'emails' }).queue, 'emails');
  assert.throws(
    () => resolve({ queue: 'nope' }),
    (err: unknown) =>
      err instanceof UnknownQueueError && err.queue === 'nope' && /"default", "emails"/.test(err.message),
  );
  assert.equal(issues({ queue: 5 }).get('queue'), 'must be a string');
});

test('delay: from now, in ms or as a duration string; zero means now', () => {
  assert.equal(resolve({ delay: 1500 }).due, NOW + 1500);
  assert.equal(resolve({ delay: '5m' }).due, NOW + 300_000);
  assert.equal(resolve({ delay: 0 }).due, 0);
  assert.equal(resolve({ delay: '0s' }).due, 0);
  assert.match(issues({ delay: 'soon' }).get('delay') ?? '', /^"soon" is not a duration/);
  assert.match(issues({ delay: -1 }).get('delay') ?? '', /^-1 is not a duration/);
});

test('eta: a Date or ms; in the past or now means now', () => {
  assert.equal(resolve({ eta: NOW + 10 }).due, NOW + 10);
  assert.equal(resolve({ eta: new Date(NOW + 60_000) }).due, NOW + 60_000);
  assert.equal(resolve({ eta: NOW }).due, 0);
  assert.equal(resolve({ eta: new Date(NOW - 1000) }).due, 0);
  for (const bad of ['tomorrow', Number.NaN, -5, new Date('not a date')]) {
    assert.equal(issues({ eta: bad }).get('eta'), 'must be a Date or a time in ms');
  }
  assert.equal(issues({ delay: 10, eta: NOW + 10 }).get('delay'), 'give delay or eta, not both');
});

test('expires / expiresAt: an absolute expiry in the future', () => {
  assert.equal(resolve({ expires: '1h' }).expiresAt, NOW + 3_600_000);
  assert.equal(resolve({ expiresAt: NOW + 5 }).expiresAt, NOW + 5);
  assert.equal(resolve({ expiresAt: new Date(NOW + 5) }).expiresAt, NOW + 5);
  assert.match(issues({ expires: 0 }).get('expires') ?? '', /^0 is not a positive duration/);
  assert.match(issues({ expires: 'x' }).get('expires') ?? '', /is not a positive duration/);
  assert.equal(issues({ expiresAt: NOW }).get('expiresAt'), 'is in the past');
  assert.equal(issues({ expiresAt: NOW - 1 }).get('expiresAt'), 'is in the past');
  assert.equal(issues({ expiresAt: 'later' }).get('expiresAt'), 'must be a Date or a time in ms');
  assert.equal(
    issues({ expires: 10, expiresAt: NOW + 10 }).get('expires'),
    'give expires or expiresAt, not both',
  );
});

test('an expiry at or before the due time could never run', () => {
  assert.match(
    issues({ delay: '10s', expires: '5s' }).get('expires') ?? '',
    /expires before the task is due/,
  );
  assert.match(issues({ delay: 1000, expires: 1000 }).get('expires') ?? '', /expires before the task is due/);
  assert.match(
    issues({ eta: NOW + 100, expiresAt: NOW + 100 }).get('expiresAt') ?? '',
    /expires before the task is due/,
  );
  assert.deepEqual(resolve({ delay: 1000, expires: 1001 }), {
    queue: 'default',
    due: NOW + 1000,
    expiresAt: NOW + 1001,
    idempotencyKey: undefined,
    storeResult: undefined,
    priority: undefined,
  });
  // An eta in the past runs now, so any future expiry is fine.
  assert.equal(resolve({ eta: NOW - 10, expiresAt: NOW + 1 }).expiresAt, NOW + 1);
});

test('idempotencyKey: a non-empty string of at most 4096 characters', () => {
  assert.equal(resolve({ idempotencyKey: 'order-42' }).idempotencyKey, 'order-42');
  assert.equal(resolve({ idempotencyKey: 'k'.repeat(4096) }).idempotencyKey?.length, 4096);
  for (const bad of ['', 'k'.repeat(4097), 42]) {
    assert.equal(
      issues({ idempotencyKey: bad }).get('idempotencyKey'),
      'must be a non-empty string of at most 4096 characters',
    );
  }
});

test('unknown options and non-objects are refused', () => {
  assert.match(issues({ dealy: 5 }).get('dealy') ?? '', /^unknown option; known: queue, delay, eta/);
  for (const bad of [null, [], 'fast', 5]) {
    assert.equal(issues(bad).get('(options)'), 'must be an object', JSON.stringify(bad));
  }
});

test('every bad field is reported at once, under the item path of a bulk enqueue', () => {
  const found = issues({ delay: 'x', expiresAt: 1, idempotencyKey: '', colour: 1 }, '[3]');
  assert.deepEqual([...found.keys()].sort(), [
    '[3].colour',
    '[3].delay',
    '[3].expiresAt',
    '[3].idempotencyKey',
  ]);
  assert.equal(issues(null, '[0]').get('[0].(options)'), 'must be an object');
});

test('bad fields are reported before an unknown queue', () => {
  assert.throws(() => resolve({ queue: 'nope', delay: 'x' } as unknown as EnqueueOptions), OptionsError);
});
