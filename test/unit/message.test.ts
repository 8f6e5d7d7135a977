// Pure logic: no Redis. The message codec of the wire contract (src/wire/message.ts): what a queue
// entry carries, how it round-trips, and every way an entry can be poison.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TasukiError } from '../../src/errors.js';
import { CLAIM_MESSAGE_FIELD, MESSAGE_FIELD, MESSAGE_VERSION } from '../../src/wire/fields.js';
import { continuationLocalId, parseTaskId } from '../../src/wire/ids.js';
import {
  decodeMessage,
  encodeClaimMessage,
  encodeContinuation,
  encodeMessage,
  messageField,
  messageOf,
  NewerFormatError,
  PoisonMessageError,
  reencodeMessage,
  type TaskMessage,
} from '../../src/wire/message.js';

test('the wire format is pinned: version 1 in field "m", version 2 (claim check) in field "m2"', () => {
  // Changing these breaks every queue a running tasuki has written: a new format gets a new version.
  assert.equal(MESSAGE_VERSION, 2);
  assert.equal(MESSAGE_FIELD, 'm');
  assert.equal(CLAIM_MESSAGE_FIELD, 'm2');
});

const CLAIM = { ref: 'AAAAAAAAAAAAAAAAAAAAAA', sha256: 'a'.repeat(64), size: 10240 };

test('a claim-checked message (format 2) is a JSON object carrying the claim, never the arguments', () => {
  const raw = encodeClaimMessage('big.task', CLAIM);
  assert.equal(raw, `{"t":"big.task","p":{"ref":"${CLAIM.ref}","sha256":"${CLAIM.sha256}","size":10240}}`);
  assert.equal(messageField(raw), 'm2');
  assert.equal(messageField('["t",1]'), 'm');
  assert.deepEqual(decodeMessage(raw), {
    name: 'big.task',
    args: undefined,
    claim: CLAIM,
    id: undefined,
    attempt: 1,
    expiresAt: undefined,
    slot: undefined,
    storeResult: undefined,
    trace: undefined,
    canvas: undefined,
    priority: undefined,
  });
  const meta = encodeClaimMessage('big.task', CLAIM, { id: '1-d0a', attempt: 3, expiresAt: 5, slot: 7 });
  const m = decodeMessage(meta);
  // A rate-limit slot travels in a claim-checked message too (a held-back task keeps its claim).
  assert.deepEqual([m.id, m.attempt, m.expiresAt, m.slot, m.claim], ['1-d0a', 3, 5, 7, CLAIM]);
  // A retry or hand-back re-encodes the claim, not arguments.
  assert.equal(
    reencodeMessage(m, { id: '1-d0a', attempt: 4 }),
    encodeClaimMessage('big.task', CLAIM, { id: '1-d0a', attempt: 4 }),
  );
  assert.equal(messageOf(['m2', raw]), raw);
});

test('a claim that is not {ref, sha256, size} is poison: a ref is never a path', () => {
  for (const p of [
    { ...CLAIM, ref: '../../../../etc/passwd' },
    { ...CLAIM, ref: 'short' },
    { ...CLAIM, sha256: 'xyz' },
    { ...CLAIM, size: -1 },
    { ...CLAIM, size: '10' },
    null,
  ]) {
    assert.throws(() => decodeMessage(JSON.stringify({ t: 'x', p })), /claim "p" is not/);
  }
  assert.throws(() => decodeMessage('{"p":{}}'), /expected \{"t": name, "p": claim\}/);
});

test('encode: [name, args] with no meta for a plain task; meta only when needed', () => {
  assert.equal(encodeMessage('email.send', '{"to":"a@b.c"}'), '["email.send",{"to":"a@b.c"}]');
  assert.equal(encodeMessage('t', '[]', { attempt: 1 }), '["t",[]]', 'attempt 1 is the default: not written');
  assert.equal(
    encodeMessage('t', '{}', { id: '1-d0a', attempt: 3, expiresAt: 1_800_000_000_000 }),
    '["t",{},{"id":"1-d0a","n":3,"x":1800000000000}]',
  );
  assert.equal(encodeMessage('t', '1', { expiresAt: 5 }), '["t",1,{"x":5}]');
  assert.equal(
    encodeMessage('t', '1', { id: 'a', slot: 7 }),
    '["t",1,{"id":"a","s":7}]',
    'a reserved rate-limit slot',
  );
  assert.equal(encodeMessage('t', 'null', { id: 'x' }), '["t",null,{"id":"x"}]');
  assert.equal(
    encodeMessage('t', '{}', { id: undefined, attempt: undefined, expiresAt: undefined }),
    '["t",{}]',
  );
});

const roundTrips: [string, unknown, Omit<TaskMessage, 'name' | 'args'>][] = [
  ['plain', { a: 1, b: [true, null, 'x'] }, {}],
  ['quote"and\\backslash', 'a "string" arg', {}],
  ['unicode.タスク', { emoji: '🚀', sep: '\u2028\u2029', nul: '\u0000' }, {}],
  ['numbers', [0, -1, 1.5, 1e21, Number.MAX_SAFE_INTEGER], {}],
  ['null-args', null, {}],
  ['delayed', { n: 1 }, { id: '1795464427052-d0a1b2c3d4e5f' }],
  ['retry', { n: 1 }, { id: '1732391234567-0', attempt: 4 }],
  ['expiring', {}, { expiresAt: 1_800_000_000_123 }],
  ['all', { deep: { deeper: { deepest: [1, [2, [3]]] } } }, { id: '5-0', attempt: 2, expiresAt: 9 }],
  ['rate-limited', { c: 'x' }, { id: '5-0', slot: 1_800_000_000_456 }],
  ['no-result', { n: 1 }, { storeResult: false }],
  ['result-kept', { n: 1 }, { id: '5-0', storeResult: true }],
  ['priority', { n: 1 }, { priority: 3 }],
  ['retried-priority', { n: 1 }, { id: '5-0p2', attempt: 2, priority: 2 }],
  [
    'canvas-member',
    { n: 1 },
    { id: '1795464427052-c0a1b2c3d4e5fn3', canvas: '1795464427052-c0a1b2c3d4e5f@emails:3' },
  ],
];

test("a continuation on RabbitMQ: the task tasuki.canvas with the member's reference and record, under an id derived from the member's", () => {
  const member = '1795464427052-c0a1b2c3d4e5fn3';
  const id = continuationLocalId(member);
  assert.equal(parseTaskId(`${id}@emails`).local, id, 'a valid task id');
  assert.notEqual(id, member);
  const record = '{"state":"succeeded","task":"t","attempt":1,"result":[1,"two"]}';
  const msg = decodeMessage(encodeContinuation('1795464427052-c0a1b2c3d4e5f@emails:3', record, id));
  assert.equal(msg.name, 'tasuki.canvas');
  assert.equal(msg.id, id);
  assert.deepEqual(msg.args, { c: '1795464427052-c0a1b2c3d4e5f@emails:3', r: JSON.parse(record) as unknown });
});

test('meta c (canvas member) must be a canvas reference, which needs no JSON escape', () => {
  assert.throws(() => decodeMessage('["t",{},{"c":"x\\"y"}]'), /meta\.c \(canvas member\)/);
  assert.throws(() => decodeMessage('["t",{},{"c":7}]'), /meta\.c/);
  assert.equal(encodeMessage('t', '{}', { canvas: '1-cab@q:0' }), '["t",{},{"c":"1-cab@q:0"}]');
});

test('meta l (priority level): written last, above 0 only; 1-3 else poison; kept by reencode', () => {
  assert.equal(encodeMessage('t', '{}', { priority: 0 }), '["t",{}]', 'level 0 writes nothing');
  assert.equal(encodeMessage('t', '{}', { id: '1-d0', priority: 3 }), '["t",{},{"id":"1-d0","l":3}]');
  assert.throws(() => decodeMessage('["t",{},{"l":4}]'), /meta\.l \(priority level\)/);
  assert.throws(() => decodeMessage('["t",{},{"l":1.5}]'), /meta\.l/);
  const m = decodeMessage(encodeMessage('t', '{}', { priority: 2 }));
  assert.equal(m.priority, 2);
  assert.equal(reencodeMessage(m, { id: '9-0', attempt: 2 }), '["t",{},{"id":"9-0","n":2,"l":2}]');
  const claim = { ref: 'abcdefghijklmnop', sha256: 'a'.repeat(64), size: 3 };
  const claimed = decodeMessage(encodeClaimMessage('t', claim, { priority: 1 }));
  assert.equal(claimed.priority, 1, 'format 2 carries it beside its claim "p"');
  assert.deepEqual(claimed.claim, claim);
});

test('decode(encode(m)) gives m back, for any JSON arguments and every meta', () => {
  for (const [name, args, meta] of roundTrips) {
    const raw = encodeMessage(name, JSON.stringify(args), meta);
    assert.deepEqual((JSON.parse(raw) as unknown[])[0], name, 'the raw message is JSON');
    assert.deepEqual(
      decodeMessage(raw),
      {
        name,
        args,
        id: meta.id,
        attempt: meta.attempt ?? 1,
        expiresAt: meta.expiresAt,
        slot: meta.slot,
        storeResult: meta.storeResult,
        trace: meta.trace,
        canvas: meta.canvas,
        priority: meta.priority,
      },
      name,
    );
  }
});

test('reencodeMessage keeps name and arguments and replaces the meta', () => {
  const first = decodeMessage(encodeMessage('t', '{"n":[1,2]}', { expiresAt: 77 }));
  const retry = reencodeMessage(first, { id: '9-0', attempt: 2, expiresAt: first.expiresAt });
  assert.deepEqual(decodeMessage(retry), {
    name: 't',
    args: { n: [1, 2] },
    id: '9-0',
    attempt: 2,
    expiresAt: 77,
    slot: undefined,
    storeResult: undefined,
    trace: undefined,
    canvas: undefined,
    priority: undefined,
  });
  assert.equal(reencodeMessage(first, {}), '["t",{"n":[1,2]}]');
});

test('decode: meta may be absent or null; unknown meta fields are ignored', () => {
  assert.deepEqual(decodeMessage('["t",{}]'), {
    name: 't',
    args: {},
    id: undefined,
    attempt: 1,
    expiresAt: undefined,
    slot: undefined,
    storeResult: undefined,
    trace: undefined,
    canvas: undefined,
    priority: undefined,
  });
  assert.deepEqual(decodeMessage('["t",{},null]'), {
    name: 't',
    args: {},
    id: undefined,
    attempt: 1,
    expiresAt: undefined,
    slot: undefined,
    storeResult: undefined,
    trace: undefined,
    canvas: undefined,
    priority: undefined,
  });
  assert.deepEqual(decodeMessage('["t",{},{"future":1,"n":2}]').attempt, 2);
  assert.equal(decodeMessage('  ["t" , 1 ]\n').args, 1, 'JSON whitespace is fine');
});

/** Asserts `raw` is refused as poison with a message matching `why`. */
function poison(raw: string | undefined, why: RegExp): void {
  assert.throws(
    () => decodeMessage(raw),
    (err: unknown) => {
      assert.ok(err instanceof PoisonMessageError, `${String(raw)}: ${String(err)}`);
      assert.ok(err instanceof TasukiError);
      assert.equal(err.code, 'E_POISON');
      assert.equal(err.name, 'PoisonMessageError');
      assert.match(err.message, /^undecodable message: /);
      assert.match(err.message, why, String(raw));
      return true;
    },
  );
}

test('poison: no message field', () => {
  poison(undefined, /stream entry has no field "m"/);
});

test('poison: not JSON, quoting at most 80 characters of it', () => {
  for (const raw of ['{not json', '', '\u0000\u0001 not json', '["t",{}', "['t',{}]", 'undefined']) {
    poison(raw, /not JSON: /);
  }
  assert.throws(
    () => decodeMessage(`[${'x'.repeat(5000)}`),
    (err: unknown) =>
      (err as Error).message === `undecodable message: not JSON: ${JSON.stringify(`[${'x'.repeat(79)}`)}`,
  );
});

test('poison: JSON that is not [name, args, meta?] (nor a claim-checked object)', () => {
  poison('{}', /expected \{"t": name, "p": claim\}, got "\{\}"/);
  for (const raw of [
    '"t"',
    '42',
    'null',
    'true',
    '[]',
    '["t"]',
    '["t",{},{},1]',
    '[1,{}]',
    '[null,{}]',
    '[["t"],{}]',
  ]) {
    poison(raw, /expected \[name, args, meta\?\], got /);
  }
  poison(`["t",{},{},${'1,'.repeat(100)}1]`, /got "\[\\"t\\",\{\},\{\},1,1,1/);
});

test('poison: meta that is not an object', () => {
  for (const raw of ['["t",{},1]', '["t",{},"m"]', '["t",{},[]]', '["t",{},[1]]', '["t",{},true]']) {
    poison(raw, /meta is not an object/);
  }
});

test('poison: each meta field of the wrong type', () => {
  for (const id of ['1', 'null', '{}', '[]', 'true'])
    poison(`["t",{},{"id":${id}}]`, /meta\.id is not a string/);
  for (const n of ['0', '-1', '1.5', '"2"', 'null', '[]', '1e400']) {
    poison(`["t",{},{"n":${n}}]`, /meta\.n \(attempt\) is not a positive integer/);
  }
  for (const x of ['"123"', 'null', '{}', 'true'])
    poison(`["t",{},{"x":${x}}]`, /meta\.x \(expiry\) is not a number/);
  for (const slot of ['"123"', 'null', '{}', 'true'])
    poison(`["t",{},{"s":${slot}}]`, /meta\.s \(rate-limit slot\) is not a number/);
  for (const r of ['2', '"1"', 'true', 'null'])
    poison(`["t",{},{"r":${r}}]`, /meta\.r \(store the result\) is not 0 or 1/);
});

test('messageOf: the field of this version, wherever it is among the fields', () => {
  assert.equal(messageOf(['m', '["t",{}]']), '["t",{}]');
  assert.equal(messageOf(['trace', 'abc', 'm', '["t",1]', 'other', 'x']), '["t",1]');
  // An entry written for several formats during a rolling deploy: this version reads one it knows.
  assert.equal(messageOf(['m3', '<v3>', 'm', '<v1>']), '<v1>');
  assert.equal(messageOf(['m3', '<v3>', 'm2', '<v2>']), '<v2>');
});

test('messageOf: only a newer format is NewerFormatError naming the newest version; none at all is poison', () => {
  for (const [fields, version] of [
    [['m3', 'x'], 3],
    [['m4', 'x', 'm3', 'y'], 4],
    [['a', 'b', 'm10', 'x'], 10],
  ] as const) {
    assert.throws(
      () => messageOf(fields),
      (err: unknown) => {
        assert.ok(err instanceof NewerFormatError);
        assert.equal(err.version, version);
        assert.equal(err.code, 'E_POISON');
        assert.match(
          err.message,
          new RegExp(`message format ${version} is newer than this worker knows \\(2\\)`),
        );
        return true;
      },
    );
  }
  for (const fields of [[], ['x', 'y'], ['m1', 'x'], ['m0', 'x'], ['M', 'x'], ['m3x', 'x'], ['m']]) {
    assert.throws(
      () => messageOf(fields),
      (err: unknown) =>
        err instanceof PoisonMessageError &&
        !(err instanceof NewerFormatError) &&
        /stream entry has no field "m"/.test(err.message),
      JSON.stringify(fields),
    );
  }
});

test('trace context: meta "tp" (child) or "tl" (link) and "ts", in both formats; kept by a re-encode', () => {
  const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  const child = encodeMessage('t', '{}', { trace: { traceparent: tp, tracestate: 'k=v' } });
  assert.equal(child, `["t",{},{"tp":"${tp}","ts":"k=v"}]`);
  assert.deepEqual(decodeMessage(child).trace, { traceparent: tp, tracestate: 'k=v', link: undefined });
  const linked = encodeMessage('t', '{}', { trace: { traceparent: tp, link: true } });
  assert.equal(linked, `["t",{},{"tl":"${tp}"}]`);
  assert.deepEqual(decodeMessage(linked).trace, { traceparent: tp, tracestate: undefined, link: true });
  // A retry (or hand-back) re-encodes with new meta: the trace context stays with the task.
  const retry = reencodeMessage(decodeMessage(linked), { id: '9-0', attempt: 2 });
  assert.equal(retry, `["t",{},{"id":"9-0","n":2,"tl":"${tp}"}]`);
  const claimed = encodeClaimMessage('big.task', CLAIM, { trace: { traceparent: tp } });
  assert.deepEqual(decodeMessage(claimed).trace, { traceparent: tp, tracestate: undefined, link: undefined });
  const again = decodeMessage(reencodeMessage(decodeMessage(claimed), { attempt: 3 }));
  assert.equal(again.trace?.traceparent, tp);
  assert.equal(again.claim?.ref, CLAIM.ref);
  // Untraced: not a byte of it.
  assert.equal(encodeMessage('t', '{}'), '["t",{}]');
  assert.equal(decodeMessage('["t",{}]').trace, undefined);
});

test('poison: trace meta that is not a string; a malformed traceparent string is left to the tracer', () => {
  for (const key of ['tp', 'tl', 'ts']) {
    for (const v of ['1', 'null', '{}', '[]']) poison(`["t",{},{"${key}":${v}}]`, /trace context/);
  }
  assert.equal(decodeMessage('["t",{},{"tp":"garbage"}]').trace?.traceparent, 'garbage');
});
