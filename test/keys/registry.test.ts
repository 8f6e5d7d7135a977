import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Keyspace, keyPart, tasukiKeys, TasukiError, type KeySpec } from '../../src/index.js';
import { MAX_PART_LENGTH } from '../../src/keys/part.js';

const spec = (over: Partial<KeySpec> = {}): KeySpec => ({
  id: 'app.thing',
  pattern: 'thing:<id>',
  owner: 'billing',
  version: 1,
  type: 'string',
  ttlMs: 60_000,
  codec: 'json',
  maxBytes: 1024,
  purpose: 'A thing.',
  ...over,
});

const isKeyError = (pattern: RegExp) => (err: unknown) => {
  assert.ok(err instanceof TasukiError);
  assert.equal(err.code, 'E_KEY');
  assert.match(err.message, pattern);
  return true;
};

test('keyPart keeps short plain values as they are', () => {
  assert.equal(keyPart('emails'), 'emails');
  assert.equal(keyPart('1732391234567-0'), '1732391234567-0');
  assert.equal(keyPart('x'.repeat(MAX_PART_LENGTH)), 'x'.repeat(MAX_PART_LENGTH));
});

test('keyPart bounds long values to a short stable hash (the 10 KB key names of the incident)', () => {
  const raw = JSON.stringify({ upload: 'a'.repeat(10 * 1024) });
  const part = keyPart(raw);
  assert.match(part, /^#[A-Za-z0-9_-]{22}$/);
  assert.equal(keyPart(raw), part, 'same input, same part');
  assert.notEqual(keyPart(raw + 'b'), part, 'different input, different part');
  assert.match(keyPart('x'.repeat(MAX_PART_LENGTH + 1)), /^#/);
});

test('keyPart hashes values that would break a name or a hash tag', () => {
  for (const bad of ['a:b', 'a{b', 'a}b', 'a b', 'tab\there', 'new\nline', '']) {
    assert.match(keyPart(bad), /^#[A-Za-z0-9_-]{22}$/, JSON.stringify(bad));
  }
});

test('a pattern builds names with prefix and version, and every part goes through keyPart', () => {
  const space = new Keyspace('app');
  const def = space.define(spec({ pattern: '{u:<user>}:cart:<item>' }));
  assert.equal(def.key({ user: 'ada', item: 'i42' }), 'app:v1:{u:ada}:cart:i42');
  const long = def.key({ user: 'z'.repeat(10_000), item: 'i1' });
  assert.ok(Buffer.byteLength(long) < 64, `${long} is short`);
  assert.match(long, /^app:v1:\{u:#[A-Za-z0-9_-]{22}\}:cart:i1$/);
});

test('a missing pattern parameter is a clear E_KEY error', () => {
  const def = new Keyspace('app').define({ ...spec(), pattern: 'a:<x>:<y>' as const });
  assert.throws(
    // Typed callers cannot leave a parameter out; untyped (JS) callers get this error.
    () => def.key({ x: '1' } as unknown as Record<'x' | 'y', string>),
    isKeyError(/key "app.thing" needs parameter "y"/),
  );
});

test('errors quote bad input as a bounded prefix: key parts, prefixes, ids, numbers', () => {
  const def = new Keyspace('app').define({ ...spec(), pattern: 'a:<x>:<y>' as const });
  assert.throws(
    () => def.key({ x: '1' } as unknown as Record<'x' | 'y', string>),
    isKeyError(/^key "app\.thing" needs parameter "y" as a string; it is missing$/),
  );
  // A part that is not a string (an untyped caller passing the upload itself) is quoted, cut short.
  const upload = { data: 'A'.repeat(10 * 1024) };
  assert.throws(
    () => def.key({ x: '1', y: upload } as unknown as Record<'x' | 'y', string>),
    (err: unknown) => {
      assert.ok(err instanceof TasukiError);
      assert.equal(
        err.message,
        `key "app.thing" needs parameter "y" as a string; got {"data":"${'A'.repeat(71)}… (10251 characters)`,
      );
      return true;
    },
  );
  assert.throws(
    () => new Keyspace('p'.repeat(10_000)),
    isKeyError(/^key prefix "p{79}… \(10002 characters\) is invalid: use 1-32 letters/),
  );
  const space = new Keyspace('app');
  assert.throws(
    () => space.define(spec({ id: 'i'.repeat(10_000) })),
    (err: unknown) => {
      assert.ok(err instanceof TasukiError);
      assert.ok(err.message.length < 300, `${err.message.length} characters`);
      assert.match(
        err.message,
        /^key declaration "i{79}… \(10002 characters\) is invalid: id must be a word/,
      );
      return true;
    },
  );
  assert.throws(
    () => space.define(spec({ version: 1.5, ttlMs: -1, maxBytes: Number.NaN, pattern: 'a b' })),
    isKeyError(
      /^key declaration "app\.thing" is invalid: version must be an integer >= 1, not 1\.5; ttlMs must be a positive integer, not -1; maxBytes must be a positive integer, not NaN; pattern must be non-empty, without spaces, not "a b"$/,
    ),
  );
});

test('a declaration may set its own prefix', () => {
  const def = new Keyspace('app').define(spec({ prefix: 'legacy' }));
  assert.equal(def.key({ id: '7' }), 'legacy:v1:thing:7');
});

test('duplicate ids are rejected', () => {
  const space = new Keyspace('app');
  space.define(spec());
  assert.throws(
    () => space.define(spec({ pattern: 'other' })),
    isKeyError(/id "app.thing" is already declared/),
  );
});

test('a declaration needs exactly one of ttlMs and noTtlReason', () => {
  const space = new Keyspace('app');
  assert.throws(
    () => space.define(spec({ ttlMs: undefined })),
    isKeyError(/give exactly one of ttlMs and noTtlReason/),
  );
  assert.throws(
    () => space.define(spec({ noTtlReason: 'forever' })),
    isKeyError(/give exactly one of ttlMs and noTtlReason/),
  );
  assert.throws(
    () => space.define(spec({ ttlMs: undefined, noTtlReason: '   ' })),
    isKeyError(/give exactly one/),
  );
  assert.throws(() => space.define(spec({ ttlMs: 0 })), isKeyError(/ttlMs must be a positive integer/));
  space.define(spec({ ttlMs: undefined, noTtlReason: 'one per tenant, deleted with the tenant' }));
});

test('owner, version, budget, purpose and pattern are required', () => {
  const space = new Keyspace('app');
  assert.throws(() => space.define(spec({ owner: ' ' })), isKeyError(/owner is required/));
  assert.throws(() => space.define(spec({ version: 0 })), isKeyError(/version must be an integer >= 1/));
  assert.throws(() => space.define(spec({ maxBytes: 0 })), isKeyError(/maxBytes must be a positive integer/));
  assert.throws(() => space.define(spec({ purpose: '' })), isKeyError(/purpose is required/));
  assert.throws(() => space.define(spec({ pattern: 'a b' })), isKeyError(/pattern must be non-empty/));
  assert.throws(() => new Keyspace('bad:prefix'), isKeyError(/key prefix "bad:prefix" is invalid/));
});

test('match() finds the declaration of a live key name, and nothing for foreign names', () => {
  const k = tasukiKeys('tsk');
  const cart = k.space.define(spec({ id: 'app.cart', pattern: '{u:<user>}:cart' }));
  assert.equal(k.space.match('tsk:v1:{q:emails}:stream')?.spec.id, 'queue.stream');
  assert.equal(k.space.match('tsk:v1:{q:emails}:r:1732391234567-0')?.spec.id, 'task.result');
  assert.equal(
    k.space.match(k.idempotency.key({ queue: 'q', key: 'x'.repeat(500) }))?.spec.id,
    'task.idempotency',
  );
  assert.equal(k.space.match(cart.key({ user: 'ada' })), cart);
  assert.equal(k.space.match('tsk:v1:queues')?.spec.id, 'queues');
  for (const foreign of [
    'tsk:v2:{q:emails}:stream', // another version
    'other:v1:{q:emails}:stream', // another prefix
    'tsk:v1:{q:emails}:stream:extra', // longer
    'tsk:v1:{q:a:b}:stream', // a part that keyPart would have hashed
    'abc-first_task_at',
  ]) {
    assert.equal(k.space.match(foreign), undefined, foreign);
  }
});

test('every key of a queue shares one hash tag', () => {
  const k = tasukiKeys();
  const tags = [
    k.stream.key({ queue: 'emails' }),
    k.delayed.key({ queue: 'emails' }),
    k.parked.key({ queue: 'emails' }),
    k.events.key({ queue: 'emails' }),
    k.result.key({ queue: 'emails', task: '1-0' }),
    k.idempotency.key({ queue: 'emails', key: 'k' }),
  ].map((name) => /\{[^}]*\}/.exec(name)?.[0]);
  assert.deepEqual(new Set(tags), new Set(['{q:emails}']));
});
