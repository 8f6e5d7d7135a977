/**
 * The deployment recipe in deploy/ (no Docker daemon here): the Dockerfile, the ECS task definitions
 * and services agree with each other and with the `tasuki` command they run; a Dockerfile linter runs
 * when one is installed. And `tasuki health`, which the container health checks call, against real
 * worker and beat processes.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { redisUrlFromEnv } from '../../src/index.js';
import { program } from '../../src/cli/main.js';
import { HEALTH_FILE_ENV } from '../../src/cli/health.js';
import { ROOT, runCli, spawnCli } from '../support/cli.js';
import { useRedis } from '../support/redis.js';
import { FIXTURE_APP, killAll, startBeat } from './support.js';

const server = useRedis();
after(killAll);

interface Container {
  name: string;
  command: string[];
  stopTimeout: number;
  environment: { name: string; value: string }[];
  secrets: { name: string; valueFrom: string }[];
  healthCheck: { command: string[]; interval: number; timeout: number; retries: number; startPeriod: number };
  logConfiguration: { logDriver: string; options: Record<string, string> };
}
interface TaskDefinition {
  family: string;
  requiresCompatibilities: string[];
  containerDefinitions: Container[];
}

const dockerfile = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8');
const read = <T>(f: string): T => JSON.parse(readFileSync(join(ROOT, 'deploy/ecs', f), 'utf8')) as T;
const worker = read<TaskDefinition>('worker.task-definition.json');
const beat = read<TaskDefinition>('beat.task-definition.json');
const services = read<{ services: { serviceName: string; taskDefinition: string; desiredCount: number }[] }>(
  'services.json',
);
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  bin: { tasuki: string };
};

/** An instruction's JSON array (exec form), e.g. ENTRYPOINT ["a", "b"]. */
function execForm(instruction: string): string[] {
  const m = new RegExp(`^${instruction}\\s+(\\[.*\\])\\s*$`, 'm').exec(dockerfile.replace(/\\\n\s*/g, ''));
  assert.ok(m, `the Dockerfile has ${instruction} in exec form`);
  return JSON.parse(m[1] as string) as string[];
}

/** The Dockerfile's ENV values. */
function dockerEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  const joined = dockerfile.replace(/\\\n\s*/g, ' ');
  for (const [, body] of joined.matchAll(/^ENV\s+(.*)$/gm)) {
    for (const [, k, v] of (body as string).matchAll(/(\w+)=(\S+)/g)) out[k as string] = v as string;
  }
  return out;
}

/** The `tasuki` entry in the image, as a path in this repository (node_modules/tasuki/ is the package). */
function entry(path: string): string {
  assert.ok(path.startsWith(`node_modules/${pkg.name}/`), `${path} runs the installed package`);
  return path.slice(`node_modules/${pkg.name}/`.length);
}

/** Checks a `tasuki` command line against the CLI: the command exists and takes every option given. */
function checkCommand(args: readonly string[]): Record<string, string> {
  const [name, ...rest] = args;
  const cmd = program().commands.find((c) => c.name() === name);
  assert.ok(cmd, `tasuki ${name} is a command`);
  const known = new Set(cmd.options.map((o) => o.long));
  const given: Record<string, string> = {};
  for (let i = 0; i < rest.length; i += 2) {
    const flag = rest[i] as string;
    assert.ok(known.has(flag), `tasuki ${name} takes ${flag}`);
    given[flag] = rest[i + 1] as string;
  }
  return given;
}

test('the Dockerfile: multi-stage, non-root, tini as PID 1, an entry point that exists in the package', () => {
  assert.ok((dockerfile.match(/^FROM /gm) ?? []).length >= 2, 'multi-stage');
  assert.match(dockerfile, /^FROM \S+ AS build$/m);
  const user = /^USER (\S+)$/m.exec(dockerfile)?.[1];
  assert.ok(user && user !== 'root' && user !== '0', `runs as ${user}, not root`);
  const ep = execForm('ENTRYPOINT');
  assert.deepEqual(ep.slice(0, 3), ['/usr/bin/tini', '--', 'node'], 'tini forwards signals to Node');
  assert.equal(entry(ep[3] as string), pkg.bin.tasuki);
  assert.ok(existsSync(join(ROOT, pkg.bin.tasuki)));
  assert.match(dockerfile, /apt-get install[^\n]*\btini\b/);
  // `COPY . .` must not bring the host's node_modules or dist into the build.
  const ignored = readFileSync(join(ROOT, 'deploy/Dockerfile.dockerignore'), 'utf8').split('\n');
  for (const p of ['node_modules', 'dist', '.git', '.env']) assert.ok(ignored.includes(p), `${p} is ignored`);
  const cmd = execForm('CMD');
  checkCommand(cmd);
  assert.equal(cmd[cmd.indexOf('--app') + 1], dockerEnv().APP_MODULE, 'CMD runs APP_MODULE');
  const hc = /^HEALTHCHECK .* CMD (\[.*\])$/m.exec(dockerfile.replace(/\\\n\s*/g, ''))?.[1];
  const health = JSON.parse(hc ?? '[]') as string[];
  assert.equal(entry(health[1] as string), pkg.bin.tasuki);
  checkCommand(health.slice(2));
});

test('the ECS task definitions: worker and beat run the image as tasuki commands, with matching names, grace and health', () => {
  const env = dockerEnv();
  assert.ok(env[HEALTH_FILE_ENV], `the image sets ${HEALTH_FILE_ENV}`);
  for (const def of [worker, beat]) {
    assert.deepEqual(def.requiresCompatibilities, ['FARGATE']);
    const [c] = def.containerDefinitions;
    assert.ok(c);
    const opts = checkCommand(c.command);
    assert.equal(opts['--app'], env.APP_MODULE, `${c.name} runs the image's app module`);
    const vars = new Map(c.environment.map((e) => [e.name, e.value]));
    assert.equal(
      vars.get(HEALTH_FILE_ENV) ?? env[HEALTH_FILE_ENV],
      env[HEALTH_FILE_ENV],
      'one heartbeat file',
    );
    const secret = c.secrets.find((s) => s.name.includes('REDIS'));
    assert.ok(
      secret && redisUrlFromEnv({ [secret.name]: 'redis://x' }) === 'redis://x',
      'tasuki reads the Redis URL it is given',
    );
    const hc = c.healthCheck.command;
    assert.equal(hc[0], 'CMD');
    assert.equal(entry(hc[2] as string), pkg.bin.tasuki);
    const health = checkCommand(hc.slice(3));
    // The beacon writes every 5 s (the beat: every min(5 s, --refresh)); max-age must allow a few misses.
    assert.ok(
      Number.parseInt(health['--max-age'] as string, 10) >= 15,
      'max-age well above the write interval',
    );
    assert.ok(c.healthCheck.timeout < c.healthCheck.interval);
    assert.equal(c.logConfiguration.logDriver, 'awslogs');
    for (const k of ['awslogs-group', 'awslogs-region', 'awslogs-stream-prefix'])
      assert.ok(c.logConfiguration.options[k], k);
    assert.ok(c.stopTimeout <= 120, 'Fargate allows at most 120 s');
  }
  // ECS sends SIGTERM, waits stopTimeout, then SIGKILLs: the worker's grace must end before that.
  const [w] = worker.containerDefinitions;
  const graceS = Number.parseInt(checkCommand(w!.command)['--grace'] ?? '25s', 10);
  assert.ok(
    w!.stopTimeout >= graceS + 5,
    `stopTimeout ${w!.stopTimeout} s leaves the ${graceS} s grace room to hand back`,
  );
  assert.equal(w!.command[0], 'worker');
  assert.equal(beat.containerDefinitions[0]?.command[0], 'beat');
  // Separate services; two beats so one stands by (any number may run: docs/beat.md).
  const byFamily = new Map(services.services.map((s) => [s.taskDefinition, s]));
  assert.ok(byFamily.get(worker.family) && byFamily.get(beat.family));
  assert.ok((byFamily.get(beat.family)?.desiredCount ?? 0) >= 2);
});

test('a Dockerfile linter passes (dockerfilelint, when installed; hadolint is not installable here)', (t) => {
  const candidates = [
    process.env.DOCKERFILELINT,
    join(ROOT, 'node_modules/.bin/dockerfilelint'),
    'dockerfilelint',
  ];
  const bin = candidates.find((c) => c && spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0);
  if (!bin) {
    t.skip('no dockerfilelint: `npm install --no-save dockerfilelint` or set DOCKERFILELINT to run it');
    return;
  }
  const out = execFileSync(bin, [join(ROOT, 'deploy/Dockerfile')], { encoding: 'utf8' });
  assert.match(out, /Issues: None found/);
});

test('tasuki health: 0 while the beat or worker heartbeat is fresh, 1 when missing or stale', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tasuki-health-'));
  try {
    const file = join(dir, 'health.json');
    const missing = await runCli(['health', '--file', file]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /unhealthy: no readable heartbeat/);
    const none = await runCli(['health'], { [HEALTH_FILE_ENV]: '' });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /TASUKI_HEALTH_FILE/);

    const b = startBeat('health', {
      TASUKI_REDIS_URL: server().url,
      PREFIX: 'health',
      [HEALTH_FILE_ENV]: file,
    });
    await b.logged('lease taken: this beat is active');
    const deadline = Date.now() + 10_000;
    while (!existsSync(file)) {
      assert.ok(Date.now() < deadline, 'the beat writes its heartbeat file');
      await new Promise((r) => setTimeout(r, 20));
    }
    const ok = await runCli(['health', '--file', file, '--max-age', '5s']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^healthy: beat pid \d+, active, heartbeat/);
    b.child.kill('SIGKILL');
    await b.exited;
    writeFileSync(file, JSON.stringify({ role: 'beat', pid: 1, at: Date.now() - 60_000 }));
    const stale = await runCli(['health', '--file', file, '--max-age', '30s']);
    assert.equal(stale.code, 1);
    assert.match(stale.stderr, /beat heartbeat .* is (1m|6\ds) old \(more than 30s\)/);

    rmSync(file);
    const w = spawnCli(['worker', '--app', FIXTURE_APP, '--health-file', file], {
      TASUKI_REDIS_URL: server().url,
      PREFIX: 'health',
    });
    try {
      while (!existsSync(file)) {
        assert.ok(Date.now() < deadline + 10_000, 'the worker writes its heartbeat file');
        await new Promise((r) => setTimeout(r, 20));
      }
      const wok = await runCli(['health', '--file', file]);
      assert.equal(wok.code, 0, wok.stderr);
      assert.match(wok.stdout, /^healthy: worker pid/);
    } finally {
      w.kill('SIGKILL');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
