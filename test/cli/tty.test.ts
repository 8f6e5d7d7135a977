import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { CLI, cliEnv, ROOT } from '../support/cli.js';

const hasScript = spawnSync('script', ['--version']).status === 0;
// eslint-disable-next-line no-control-regex -- ANSI colour codes start with ESC
const COLOURS = /\u001b\[[0-9;]*m/g;

test(
  'logs are human-readable on a TTY and JSON lines otherwise',
  { skip: !hasScript && 'no `script` command' },
  () => {
    const env = cliEnv();
    // `script` runs the command (the CLI from the sources) on a pseudo-terminal.
    const command = [process.execPath, ...CLI, 'dev'].map((a) => `'${a}'`).join(' ');
    const tty = execFileSync('script', ['-qec', command, '/dev/null'], {
      cwd: ROOT,
      env,
      encoding: 'utf8',
    }).replace(COLOURS, '');
    assert.match(tty, /INFO \(tasuki\/\d+\): task succeeded/);
    assert.match(tty, /taskId: "\d+-\d+@default"/);
    assert.doesNotMatch(tty, /"msg":"task succeeded"/);
    const piped = execFileSync(process.execPath, [...CLI, 'dev'], { cwd: ROOT, env, encoding: 'utf8' });
    assert.match(piped, /\{"level":30,"time":"[^"]+","pid":\d+,"name":"tasuki".*"msg":"task succeeded"\}/);
  },
);
