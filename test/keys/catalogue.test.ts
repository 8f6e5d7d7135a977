import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Keyspace, tasukiKeys } from '../../src/index.js';
import { progressBar } from '../../src/cli/keys.js';
import {
  catalogueMarkdown,
  catalogueRows,
  formatBytes,
  formatDuration,
  renderCatalogue,
  textTable,
  wrap,
} from '../../src/keys/catalogue.js';

function space(): Keyspace {
  const k = tasukiKeys('acme');
  k.space.define({
    id: 'billing.invoice',
    pattern: 'invoice:<id>',
    owner: 'billing',
    version: 3,
    type: 'hash',
    ttlMs: 90 * 60 * 1000,
    codec: 'hash: a | b',
    maxBytes: 1536,
    purpose: 'An invoice being drafted.',
    prefix: 'bill',
  });
  return k.space;
}

test('one row per declaration, in declaration order, with the full pattern', () => {
  const rows = catalogueRows(space());
  const own = tasukiKeys()
    .space.list()
    .map((d) => d.spec.id);
  assert.deepEqual(
    rows.map((r) => r.id),
    [...own, 'billing.invoice'],
  );
  assert.ok(own.includes('queue.stream') && own.includes('task.result'));
  const invoice = rows.at(-1);
  assert.deepEqual(invoice, {
    id: 'billing.invoice',
    pattern: 'bill:v3:invoice:<id>',
    owner: 'billing',
    version: 3,
    type: 'hash',
    ttlMs: 5_400_000,
    noTtlReason: null,
    codec: 'hash: a | b',
    maxBytes: 1536,
    purpose: 'An invoice being drafted.',
  });
  // The same keyspace passed twice is listed once.
  const s = space();
  assert.equal(catalogueRows([s, s]).length, catalogueRows(s).length);
});

test('JSON: one object per key, fields in catalogue order, TTL in ms or null with the reason', () => {
  const json = renderCatalogue(catalogueRows(space()), 'json');
  assert.ok(json.startsWith('[\n  {\n    "id": "queues",\n    "pattern": "acme:v1:queues",\n'), json);
  assert.ok(
    json.endsWith(
      [
        '  {',
        '    "id": "billing.invoice",',
        '    "pattern": "bill:v3:invoice:<id>",',
        '    "owner": "billing",',
        '    "version": 3,',
        '    "type": "hash",',
        '    "ttlMs": 5400000,',
        '    "noTtlReason": null,',
        '    "codec": "hash: a | b",',
        '    "maxBytes": 1536,',
        '    "purpose": "An invoice being drafted."',
        '  }',
        ']',
        '',
      ].join('\n'),
    ),
  );
  const parsed = JSON.parse(json) as Record<string, unknown>[];
  assert.deepEqual(
    parsed.find((r) => r['id'] === 'queue.stream'),
    {
      id: 'queue.stream',
      pattern: 'acme:v1:{q:<queue>}:stream',
      owner: 'tasuki/queue',
      version: 1,
      type: 'stream',
      ttlMs: null,
      noTtlReason:
        'lives as long as its queue; each entry is deleted when its task finishes, so it holds only waiting and running tasks',
      codec: 'stream entry: field m = JSON message',
      maxBytes: 536_870_912,
      purpose: 'Tasks ready to run, read by workers through the consumer group "tasuki".',
    },
  );
  assert.deepEqual(
    parsed.find((r) => r['id'] === 'task.result'),
    {
      id: 'task.result',
      pattern: 'acme:v1:{q:<queue>}:r:<task>',
      owner: 'tasuki/results',
      version: 1,
      type: 'string',
      ttlMs: 86_400_000,
      noTtlReason: null,
      codec: 'JSON task record (state, result or error, attempts, worker, timestamps)',
      maxBytes: 1_048_576,
      purpose: "A task's state and result or error; TTL set by the app's resultTtl (default 24 h).",
    },
  );
});

test('Markdown: patterns in code spans, pipes escaped, TTL or the reason for none', () => {
  const md = catalogueMarkdown(catalogueRows(space()));
  const lines = md.trimEnd().split('\n');
  assert.equal(lines[0], '| Key | Owner | Version | Type | TTL | Codec | Budget | Purpose |');
  assert.equal(
    lines.at(-1),
    '| `bill:v3:invoice:<id>` | billing | 3 | hash | 1h 30m | hash: a \\| b | 1.5 KiB | An invoice being drafted. |',
  );
  assert.match(
    md,
    /\| `acme:v1:\{q:<queue>\}:stream` \| tasuki\/queue \| 1 \| stream \| none — lives as long as its queue/,
  );
  for (const l of lines) assert.equal(l.split(/(?<!\\)\|/).length, 10, l);
});

test('table: aligned columns, long cells wrapped', () => {
  const t = renderCatalogue(catalogueRows(space()), 'table');
  const lines = t.split('\n');
  assert.match(lines[0] ?? '', /^KEY +OWNER +V +TYPE +TTL +CODEC +BUDGET +PURPOSE$/);
  const col = (lines[0] ?? '').indexOf('OWNER');
  assert.equal(lines.find((l) => l.startsWith('bill:v3:invoice:<id>'))?.indexOf('billing'), col);
  for (const l of lines) assert.ok(l.length < 260, `line of ${l.length}`);
  assert.match(t, /none: lives as long as its queue; +stream entry[^\n]*\n +each entry is deleted/);
});

test('text helpers', () => {
  assert.deepEqual(wrap('aaa bbb ccc', 7), ['aaa bbb', 'ccc']);
  assert.deepEqual(wrap('abcdefghij', 4), ['abcd', 'efgh', 'ij']);
  assert.equal(textTable(['A', 'B'], [['x', 'yy']]), 'A  B\n-  --\nx  yy\n');
  assert.equal(formatDuration(250), '250ms');
  assert.equal(formatDuration(86_400_000), '1d');
  assert.equal(formatDuration(90_061_000), '1d 1h');
  assert.equal(formatBytes(256), '256 B');
  assert.equal(formatBytes(64 * 1024), '64 KiB');
  assert.equal(formatBytes(1.5 * 1024 * 1024), '1.5 MiB');
});

test('progress bar: percentage when the total is known, throttled, cleared at the end', () => {
  const out: string[] = [];
  let now = 1_000_000;
  const bar = progressBar({ write: (s: string) => out.push(s) > 0 }, () => now);
  bar.update({ scanned: 50, totalKeys: 200, findings: 3 });
  now += 99;
  bar.update({ scanned: 60, totalKeys: 200, findings: 3 }); // within 100 ms: skipped
  now += 1;
  bar.update({ scanned: 100, totalKeys: 200, findings: 4 }); // 100 ms after the first: drawn
  bar.done();
  assert.equal(out.length, 3);
  assert.equal(out[0], `\r\x1b[2Kscanning [${'#'.repeat(6)}${'.'.repeat(18)}] 25% 50/200 keys, 3 findings`);
  assert.equal(out[1], `\r\x1b[2Kscanning [${'#'.repeat(12)}${'.'.repeat(12)}] 50% 100/200 keys, 4 findings`);
  assert.equal(out[2], '\r\x1b[2K');
});
