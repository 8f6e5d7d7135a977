/** `tasuki schedule` end to end: the errors a user can make, each one clear line with exit 2, and the changes. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from '../support/cli.js';
import { randomPrefix, useRedis } from '../support/redis.js';
import { FIXTURE_APP } from './support.js';

const server = useRedis();

test('tasuki schedule: bad schedules are refused with what was wrong; add, list, pause, run, remove', async () => {
  const env = { TASUKI_REDIS_URL: server().url, PREFIX: randomPrefix() };
  const cli = (...args: string[]) => runCli(['schedule', ...args, '--app', FIXTURE_APP], env);
  const refused = async (args: string[], message: RegExp): Promise<void> => {
    const r = await cli(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line, no stack');
  };
  await refused(
    ['add', 'x', '--task', 'ping', '--args', '{"from":"a"}', '--cron', '61 * * * *'],
    /cron: "61 \* \* \* \*" is not a valid cron expression/,
  );
  await refused(
    ['add', 'x', '--task', 'ping', '--args', '{"from":"a"}', '--cron', '0 3 * * *', '--timezone', 'Tokyo'],
    /not an IANA time zone/,
  );
  await refused(
    ['add', 'x', '--task', 'nope', '--every', '1s'],
    /unknown task "nope": the app defines "ping"/,
  );
  await refused(['add', 'x', '--task', 'ping', '--args', '{"from":3}', '--every', '1s'], /args\.from/);
  await refused(
    ['add', 'x', '--task', 'ping', '--args', 'nope', '--every', '1s'],
    /--args "nope" is not JSON/,
  );
  await refused(['add', 'x', '--task', 'ping', '--args', '{"from":"a"}'], /exactly one of cron, every, at/);
  await refused(
    ['add', 'x', '--task', 'ping', '--args', '{"from":"a"}', '--every', '1s', '--queue', 'nope'],
    /unknown queue "nope"/,
  );
  await refused(['pause', 'x'], /no schedule named "x"/);

  const added = await cli(
    'add',
    'x',
    '--task',
    'ping',
    '--args',
    '{"from":"cli"}',
    '--cron',
    '0 3 * * *',
    '--timezone',
    'Asia/Tokyo',
  );
  assert.equal(added.code, 0, added.stderr);
  assert.match(added.stdout, /schedule "x" saved: task "ping" on queue "default"/);
  const list = JSON.parse((await cli('list', '--json')).stdout) as {
    name: string;
    nextTick: number;
    timezone: string;
  }[];
  const x = list.find((s) => s.name === 'x');
  assert.equal(x?.timezone, 'Asia/Tokyo');
  assert.equal(new Date(x?.nextTick ?? 0).getUTCHours(), 18, '03:00 in Tokyo is 18:00 UTC');
  assert.equal((await cli('pause', 'x')).code, 0);
  assert.match(
    (await cli('list')).stdout,
    /^x\s+ping\s+default\s+cron 0 3 \* \* \* \(Asia\/Tokyo\)\s+paused/m,
  );
  const ran = await cli('run', 'x');
  assert.equal(ran.code, 0, ran.stderr);
  assert.match(ran.stdout, /^\d+-\d+@default\n$/);
  assert.equal((await cli('remove', 'x')).code, 0);
  await refused(['remove', 'x'], /no schedule named "x"/);
});
