// Pure logic: no Redis.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TasukiError } from '../../src/errors.js';
import { delayedLocalId, formatTaskId, parseTaskId, QUEUE_NAME } from '../../src/wire/ids.js';

test('formatTaskId and parseTaskId round-trip stream ids and delayed ids', () => {
  for (const [local, queue] of [
    ['1732391234567-0', 'emails'],
    ['1732391234567-42', 'default'],
    ['1795464427052-d0a1b2c3d4e5f', 'q.with_all-chars'],
    ['0-1', 'A'],
  ] as const) {
    const id = formatTaskId(local, queue);
    assert.equal(id, `${local}@${queue}`);
    assert.deepEqual(parseTaskId(id), { local, queue });
  }
});

test('a delayed local id starts with the time it was made and parses as a task id', () => {
  const a = delayedLocalId(1795464427052);
  assert.match(a, /^1795464427052-d[0-9a-f]{12}$/);
  assert.notEqual(delayedLocalId(1), delayedLocalId(1), 'random part');
  assert.deepEqual(parseTaskId(`${a}@default`), { local: a, queue: 'default' });
});

test('parseTaskId rejects what is not a task id with E_TASK_ID, quoting it', () => {
  for (const bad of [
    'garbage',
    '',
    '@default',
    '1-0@',
    '1-0',
    '1-0@a b',
    '1-0@-lead',
    `1-0@${'q'.repeat(65)}`,
    'abc-0@default',
    '1-@default',
    '-0@default',
    '1-0-0@default',
    '1-A@default',
    '1-0@default\n',
  ]) {
    assert.throws(
      () => parseTaskId(bad),
      (err: unknown) => {
        assert.ok(err instanceof TasukiError, bad);
        assert.equal(err.code, 'E_TASK_ID');
        assert.ok(err.message.startsWith(`"${bad.slice(0, 100)}" is not a tasuki task id`), err.message);
        assert.match(err.message, /ids look like "1732391234567-0@emails"/);
        return true;
      },
    );
  }
});

test('parseTaskId splits at the last @ and quotes at most 100 characters of a bad id', () => {
  assert.throws(() => parseTaskId('1-0@x@default'), /is not a tasuki task id/);
  const long = `${'9'.repeat(500)}@no such queue`;
  assert.throws(
    () => parseTaskId(long),
    (err: unknown) => (err as Error).message.startsWith(`"${'9'.repeat(100)}" is not`),
  );
  assert.throws(() => parseTaskId(42 as never), /"42" is not a tasuki task id/);
  assert.throws(() => parseTaskId(undefined as never), /"undefined" is not a tasuki task id/);
});

test('queue names: 1-64 of letters, digits, _ . -, starting with a letter or digit', () => {
  for (const ok of ['a', 'default', 'Q1', '9lives', 'a.b_c-d', 'x'.repeat(64)]) assert.match(ok, QUEUE_NAME);
  for (const bad of ['', '.a', '_a', '-a', 'a b', 'a:b', 'a{b}', 'a@b', 'x'.repeat(65)]) {
    assert.doesNotMatch(bad, QUEUE_NAME);
  }
});
