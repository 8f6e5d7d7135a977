/** The README's beat section is examples/beat.ts (which `tsc` type-checks), and that module loads as an app. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ROOT } from '../support/cli.js';

test('the README beat example is examples/beat.ts', () => {
  const readme = readFileSync(`${ROOT}/README.md`, 'utf8');
  const block = /## Periodic tasks \(beat\)[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.equal(block, readFileSync(`${ROOT}/examples/beat.ts`, 'utf8'));
});

test('docs/beat.md states the failover figures bench/beat.ts measured, and README lists the beat docs', () => {
  const readme = readFileSync(`${ROOT}/README.md`, 'utf8');
  assert.match(readme, /\[docs\/beat\.md\]\(docs\/beat\.md\)/);
  assert.match(readme, /\[docs\/deploy-ecs\.md\]\(docs\/deploy-ecs\.md\)/);
  const doc = readFileSync(`${ROOT}/docs/beat.md`, 'utf8');
  assert.match(doc, /node --import tsx bench\/beat\.ts/);
  for (const part of [
    '## Schedules',
    '## The lease',
    '## Every tick once',
    '## Misfires',
    '## Time zones',
    '## Clock',
  ]) {
    assert.ok(doc.includes(part), `docs/beat.md has "${part}"`);
  }
});
