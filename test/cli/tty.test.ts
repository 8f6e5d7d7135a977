import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { ROOT } from '../support/cli.js';

const hasScript = spawnSync('script', ['--version']).status === 0;
// eslint-disable-next-line no-control-regex -- ANSI colour codes start with ESC
const COLOURS = /\u001b\[[0-9;]*m/g;

test(
  'logs are human-readable on a TTY and JSON lines otherwise',
  { skip: !hasScript && 'no `script` command' },
  () => {
    const env = { ...process.env, REDIS_URL: '', TASUKI_REDIS_URL: '', TASUKI_LOG_LEVEL: 'info' };
    // `script` runs the command on a pseudo-terminal.
    const tty = execFileSync('script', ['-qec', 'node bin/tasuki.js dev', '/dev/null'], {
      cwd: ROOT,
      env,
      encoding: 'utf8',
    }).replace(COLOURS, '');
    assert.match(tty, /INFO \(tasuki\/\d+\): task succeeded/);
    assert.match(tty, /taskId: "\d+-\d+@default"/);
    assert.doesNotMatch(tty, /"msg":"task succeeded"/);
    const piped = execFileSync(process.execPath, ['bin/tasuki.js', 'dev'], {
      cwd: ROOT,
      env,
      encoding: 'utf8',
    });
    assert.match(piped, /\{"level":30,"time":"[^"]+","pid":\d+,"name":"tasuki".*"msg":"task succeeded"\}/);
  },
);
