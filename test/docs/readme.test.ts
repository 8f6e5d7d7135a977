import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { finished, ROOT } from '../support/cli.js';
import { spawn } from 'node:child_process';
import { useRedis } from '../support/redis.js';

const server = useRedis();

test('README opens with the two set-up commands, and .ci/run runs the test one', () => {
  const readme = readFileSync(`${ROOT}/README.md`, 'utf8');
  const first = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  const commands = first
    .trim()
    .split('\n')
    .map((l) => l.replace(/#.*$/, '').trim());
  assert.deepEqual(commands, ['npm run setup && npm run dev', 'npm run setup && npm test']);
  assert.match(readFileSync(`${ROOT}/.ci/run`, 'utf8'), /^npm run setup && npm test$/m);
});

test('the README quick start is examples/quickstart.ts, and it runs', async () => {
  const readme = readFileSync(`${ROOT}/README.md`, 'utf8');
  const block = /## Quick start[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.equal(block, readFileSync(`${ROOT}/examples/quickstart.ts`, 'utf8'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/quickstart.ts'], {
    cwd: ROOT,
    env: { ...process.env, REDIS_URL: server().url, TASUKI_REDIS_URL: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const run = await finished(child);
  assert.equal(run.code, 0, run.stderr);
  assert.match(
    run.stdout,
    /@default \{ url: 'https:\/\/example\.com\/cat\.png', width: 320, bytes: 32000 \}/,
  );
  assert.match(run.stdout, /state: 'succeeded'/);
  assert.match(run.stdout, /"msg":"resizing"/);
});

test('the README keyspaces example is examples/keyspaces.ts (type-checked with the examples)', () => {
  const readme = readFileSync(`${ROOT}/README.md`, 'utf8');
  const block = /### Your app's keys[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.equal(block, readFileSync(`${ROOT}/examples/keyspaces.ts`, 'utf8'));
});
