import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BEGIN, catalogueSection, docStatus, END, withSection } from '../../scripts/docs-keys.js';
import { catalogueRows } from '../../src/keys/catalogue.js';
import { tasukiKeys } from '../../src/keys/tasuki-keys.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

test('docs/keys.md and docs/architecture.md carry the current catalogue (run `npm run docs:keys`)', () => {
  const status = docStatus();
  const keys = status.find((s) => s.file === 'docs/keys.md');
  assert.equal(keys?.marked, true, `docs/keys.md needs the ${BEGIN} … ${END} markers`);
  for (const s of status) {
    assert.equal(s.stale, false, `${s.file} is stale: run npm run docs:keys`);
  }
  const text = readFileSync(join(ROOT, 'docs/keys.md'), 'utf8');
  for (const row of catalogueRows(tasukiKeys('tsk').space)) {
    assert.ok(text.includes('`' + row.pattern + '`'), `docs/keys.md lists ${row.pattern}`);
  }
});

test('the section is replaced between the markers and nothing else changes', () => {
  const doc = `# T\n\nbefore\n\n${BEGIN}\nold table\n${END}\n\nafter\n`;
  const next = withSection(doc, catalogueSection());
  assert.ok(next);
  assert.ok(next.startsWith('# T\n\nbefore\n\n' + BEGIN + '\n'));
  assert.ok(next.endsWith(END + '\n\nafter\n'));
  assert.ok(!next.includes('old table'));
  assert.equal(withSection(next, catalogueSection()), next, 'idempotent');
  assert.equal(withSection('# no markers\n', catalogueSection()), undefined);
  assert.equal(withSection(`${END}\n${BEGIN}\n`, catalogueSection()), undefined, 'markers out of order');
});

test('a stale copy is detected, and a file without markers is left alone', () => {
  const root = mkdtempSync(join(tmpdir(), 'tasuki-docs-'));
  try {
    mkdirSync(join(root, 'docs'));
    writeFileSync(join(root, 'docs/keys.md'), `# Keys\n\n${BEGIN}\n| stale |\n${END}\n`);
    writeFileSync(join(root, 'docs/architecture.md'), '# Architecture\n\nno markers yet\n');
    const [keys, arch] = docStatus(root);
    assert.deepEqual([keys?.marked, keys?.stale], [true, true]);
    assert.deepEqual([arch?.marked, arch?.stale], [false, false]);
    writeFileSync(join(root, 'docs/keys.md'), keys?.next ?? '');
    assert.equal(docStatus(root)[0]?.stale, false);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
