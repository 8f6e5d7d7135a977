// Pure logic: no Redis. The shared option checker (zod schemas, durations, bounded quotes).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { OptionsError } from '../../src/errors.js';
import { duration, integer, parseOptions, quote } from '../../src/util/options.js';

test('quote: JSON for values, a marker for what JSON cannot show', () => {
  assert.equal(quote('soon'), '"soon"');
  assert.equal(quote('say "hi"\n'), '"say \\"hi\\"\\n"');
  assert.equal(quote(42), '42');
  assert.equal(quote(null), 'null');
  assert.equal(quote(undefined), 'undefined');
  assert.equal(quote(true), 'true');
  assert.equal(quote(10n), '10n');
  assert.equal(
    quote(() => 1),
    'a function',
  );
  assert.equal(quote({ a: [1, 'x'] }), '{"a":[1,"x"]}');
  assert.equal(quote(Number.NaN), 'NaN', 'not null, as JSON would spell it');
  assert.equal(quote(Number.NEGATIVE_INFINITY), '-Infinity');
  assert.equal(quote(Symbol('s')), 'Symbol(s)');
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  assert.equal(quote(circular), '[object Object]');
  assert.equal(quote({ big: 1n }), '[object Object]', 'JSON.stringify throws on BigInt inside');
});

test('quote: a bounded prefix of long values, saying how long they were', () => {
  const long = 'x'.repeat(20_000);
  const q = quote(long);
  assert.equal(q, `"${'x'.repeat(79)}… (20002 characters)`);
  assert.ok(q.length < 120);
  assert.equal(quote('x'.repeat(78)), `"${'x'.repeat(78)}"`, '80 characters with the quotes: kept whole');
  assert.equal(quote('abcdef', 3), '"ab… (8 characters)');
  assert.equal(quote([1, 2, 3], 100), '[1,2,3]');
});

const schema = z
  .object({
    ttl: duration().default(30_000),
    wait: duration({ min: 0 }).optional(),
    count: integer(1).default(10),
    name: z.string().optional(),
    nested: z.strictObject({ depth: integer(0) }).optional(),
  })
  .strict();

test('parseOptions: defaults applied and durations parsed to ms', () => {
  assert.deepEqual(parseOptions(schema, {}, 'test options'), { ttl: 30_000, count: 10 });
  assert.deepEqual(parseOptions(schema, undefined, 'test options'), { ttl: 30_000, count: 10 });
  assert.deepEqual(parseOptions(schema, { ttl: '5m', wait: 0, count: 3, name: 'n' }, 'test options'), {
    ttl: 300_000,
    wait: 0,
    count: 3,
    name: 'n',
  });
  assert.equal(parseOptions(schema, { ttl: 1500 }, 'x').ttl, 1500);
});

function issuesOf(input: unknown, code?: 'E_OPTIONS'): { err: OptionsError; issues: Map<string, string> } {
  try {
    parseOptions(schema, input, 'test options', code);
  } catch (err) {
    assert.ok(err instanceof OptionsError);
    return { err, issues: new Map(err.issues.map((i) => [i.path, i.message])) };
  }
  assert.fail('expected an OptionsError');
}

test('parseOptions: every bad field at once, each quoting its bad value', () => {
  const { err, issues } = issuesOf({ ttl: 'soon', wait: -1, count: 2.5, name: 7, colour: 'red' });
  assert.equal(err.code, 'E_CONFIG', 'default code');
  assert.match(issues.get('ttl') ?? '', /^"soon" is not a positive duration \(ms as a number, or a string/);
  assert.match(issues.get('wait') ?? '', /^-1 is not a duration \(/);
  assert.equal(issues.get('count'), '2.5 is not an integer >= 1');
  assert.match(issues.get('name') ?? '', /expected string.*\(got 7\)$/i);
  assert.equal(issues.get('colour'), 'unknown option');
  assert.match(err.message, /^invalid test options: /);
  for (const path of ['ttl', 'wait', 'count', 'name', 'colour'])
    assert.match(err.message, new RegExp(`${path}: `));
});

test('parseOptions: zero is not a positive duration; min 0 allows it', () => {
  assert.match(issuesOf({ ttl: 0 }).issues.get('ttl') ?? '', /^0 is not a positive duration/);
  assert.equal(parseOptions(schema, { wait: '0ms' }, 'x').wait, 0);
});

test('parseOptions: nested fields get dotted paths; the code can be chosen', () => {
  const { err, issues } = issuesOf({ nested: { depth: -1, extra: 1 } }, 'E_OPTIONS');
  assert.equal(err.code, 'E_OPTIONS');
  assert.equal(issues.get('nested.depth'), '-1 is not an integer >= 0');
  assert.equal(issues.get('nested.extra'), 'unknown option');
});

test('parseOptions: a huge bad value is quoted as a bounded prefix', () => {
  const { err } = issuesOf({ ttl: 'x'.repeat(25_000) });
  assert.ok(err.message.length < 400, `message of ${err.message.length} characters`);
  assert.match(err.message, /\(25002 characters\)/);
});

test('parseOptions: input that is not an object', () => {
  const { issues } = issuesOf('fast');
  assert.match(issues.get('') ?? '', /\(got "fast"\)$/);
});

test('an error with many issues lists the first ten and says how many more; all stay in issues', () => {
  const issues = Array.from({ length: 30 }, (_, i) => ({
    path: `[${i}]`,
    message: 'expected { args, options? }',
  }));
  const err = new OptionsError('enqueue options', issues);
  assert.match(err.message, /^invalid enqueue options: \[0\]: expected/);
  assert.match(err.message, /\[9\]: expected \{ args, options\? \}; and 20 more \(see the error's issues\)$/);
  assert.doesNotMatch(err.message, /\[10\]/);
  assert.equal(err.issues.length, 30);
});
