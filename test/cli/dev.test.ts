import assert from 'node:assert/strict';
import { test } from 'node:test';
import { alive, finished, jsonLines, runCli, spawnCli, waitForOutput } from '../support/cli.js';

/** True while a process with this pid exists. */
test('tasuki dev runs the built-in example app on its own redis-server and exits cleanly', async () => {
  const run = await runCli(['dev'], {}, 90_000);
  assert.equal(run.code, 0, run.stderr + run.stdout);
  const pid = Number(/started redis-server \(pid (\d+)\)/.exec(run.stderr)?.[1]);
  assert.ok(pid > 0, run.stderr);
  assert.match(run.stderr, new RegExp(`stopped redis-server \\(pid ${pid}\\)\\n$`));
  assert.equal(alive(pid), false);
  assert.match(run.stdout, /^enqueued \d+-\d+@default; result: 5$/m);
  assert.match(run.stdout, /failed as expected: mailbox nobody@example\.invalid does not exist/);
  assert.match(run.stdout, /^state of the first task: succeeded$/m);
  assert.equal(jsonLines(run.stdout).filter((l) => l.msg === 'task succeeded').length, 3);
});

test('tasuki dev --app with a missing module fails before starting a redis-server', async () => {
  const run = await runCli(['dev', '--app', 'no/such/app.ts']);
  assert.equal(run.code, 2);
  assert.match(
    run.stderr,
    /^tasuki: app module "no\/such\/app\.ts" not found \(resolved to .+\); pass --app <file>\n$/,
  );
  assert.doesNotMatch(run.stderr, /redis-server/);
});

test('tasuki dev --keep runs the demo, keeps the worker until Ctrl-C, then stops it and its redis-server', async () => {
  const child = spawnCli(['dev', '--keep']);
  const done = finished(child, 90_000);
  const seen = await waitForOutput(child, /worker running; Ctrl-C to stop/, 60_000);
  assert.match(seen, /state of the first task: succeeded/);
  const pid = Number(/started redis-server \(pid (\d+)\)/.exec(seen)?.[1]);
  assert.ok(alive(pid), 'redis-server runs while dev keeps running');
  child.kill('SIGINT');
  const run = await done;
  assert.equal(run.code, 0, run.stderr);
  const stopping = jsonLines(run.stdout).find((l) => l.signal === 'SIGINT');
  assert.equal(stopping?.graceMs, 25_000);
  assert.match(run.stderr, new RegExp(`stopped redis-server \\(pid ${pid}\\)\\n$`));
  assert.equal(alive(pid), false);
});
