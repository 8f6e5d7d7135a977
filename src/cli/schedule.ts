import type { Command } from 'commander';
import { TasukiError, type ScheduleDefinition, type ScheduleInfo, type Tasuki } from '../index.js';
import { quote } from '../util/options.js';
import { isoTime, table } from './format.js';
import { loadApp } from './load-app.js';
import { formatMs } from './options.js';

interface AppOpt {
  app: string;
}

interface AddOpts extends AppOpt {
  task: string;
  args: string;
  cron?: string;
  timezone?: string;
  every?: string;
  at?: string;
  queue?: string;
  expires?: string;
  misfire?: string;
  misfireGrace?: string;
  paused?: boolean;
}

/** Loads the app, runs `fn`, closes the app. */
async function withApp<T>(path: string, fn: (app: Tasuki) => Promise<T>): Promise<T> {
  const { app } = await loadApp(path);
  try {
    return await fn(app);
  } finally {
    await app.close();
  }
}

function timing(s: ScheduleInfo): string {
  if (s.cron !== undefined) return `cron ${s.cron}${s.timezone ? ` (${s.timezone})` : ''}`;
  if (s.every !== undefined) return `every ${formatMs(s.every)}`;
  return `at ${isoTime(s.at)}`;
}

function status(s: ScheduleInfo): string {
  return s.state !== 'active' ? s.state : s.paused ? 'paused' : 'active';
}

function parseArgs(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new TasukiError(
      'E_OPTIONS',
      `--args ${quote(text)} is not JSON (${(err as Error).message}); e.g. --args '{"days":7}'`,
    );
  }
}

export function registerSchedule(program: Command): void {
  const schedule = program
    .command('schedule')
    .description('list and change the periodic schedules beat runs');
  const appOption = (c: Command): Command =>
    c.requiredOption('--app <module>', 'module that exports the tasuki app (.js, or .ts with tsx installed)');

  appOption(schedule.command('list').description('the schedules, with their last and next ticks'))
    .option('--json', 'print JSON')
    .option('--all', 'include removed schedules (kept so the app module does not bring them back)')
    .action(async (o: AppOpt & { json?: boolean; all?: boolean }) => {
      const list = await withApp(o.app, (app) => app.schedules.list({ all: o.all === true }));
      if (o.json) {
        process.stdout.write(JSON.stringify(list, null, 2) + '\n');
        return;
      }
      const rows = list.map((s) => [
        s.name,
        s.task,
        s.queue,
        timing(s),
        status(s),
        isoTime(s.lastTick),
        isoTime(s.nextTick),
      ]);
      process.stdout.write(
        (rows.length
          ? table(['name', 'task', 'queue', 'when', 'state', 'last tick', 'next tick'], rows)
          : 'no schedules') + '\n',
      );
    });

  appOption(
    schedule.command('add').description('add a schedule, or replace the one of that name, at run time'),
  )
    .argument('<name>', 'schedule name')
    .requiredOption('--task <name>', 'task to enqueue at each tick')
    .option('--args <json>', 'its arguments as JSON', '{}')
    .option('--cron <expr>', 'cron expression, 5 fields or 6 (seconds first)')
    .option('--timezone <tz>', 'IANA time zone of --cron (default UTC)')
    .option('--every <duration>', 'fixed interval, e.g. 30s')
    .option('--at <time>', 'one time, ISO 8601')
    .option('--queue <name>', "queue (default: the task's)")
    .option('--expires <duration>', "a tick's task not started this long after its tick is not run")
    .option('--misfire <policy>', 'ticks missed while no beat ran: once or skip', 'once')
    .option('--misfire-grace <duration>', 'how late a tick may be and still count as on time', '1m')
    .option('--paused', 'add it paused')
    .action(async (name: string, o: AddOpts) => {
      const def: Record<string, unknown> = { name, task: o.task, args: parseArgs(o.args) };
      const opt = (k: string, v: unknown): void => {
        if (v !== undefined) def[k] = v;
      };
      opt('cron', o.cron);
      opt('timezone', o.timezone);
      opt('every', o.every === undefined ? undefined : /^\d+$/.test(o.every) ? Number(o.every) : o.every);
      opt('at', o.at);
      opt('queue', o.queue);
      opt('expires', o.expires);
      opt('misfire', o.misfire);
      opt('misfireGrace', o.misfireGrace);
      opt('paused', o.paused);
      const s = await withApp(o.app, (app) => app.schedules.add(def as unknown as ScheduleDefinition));
      process.stdout.write(
        `schedule ${quote(s.name)} saved: task ${quote(s.task)} on queue ${quote(s.queue)}${s.paused ? ' (paused)' : ''}\n`,
      );
    });

  appOption(schedule.command('remove').description('remove a schedule'))
    .argument('<name>', 'schedule name')
    .action(async (name: string, o: AppOpt) => {
      const found = await withApp(o.app, (app) => app.schedules.remove(name));
      if (!found)
        throw new TasukiError(
          'E_NOT_FOUND',
          `no schedule named ${quote(name)}; \`tasuki schedule list\` shows the schedules`,
        );
      process.stdout.write(`schedule ${quote(name)} removed\n`);
    });

  for (const [verb, what] of [
    ['pause', 'no tick fires until it is resumed'],
    ['resume', 'ticks that fell while it was paused do not fire'],
  ] as const) {
    appOption(schedule.command(verb).description(`${verb} a schedule: ${what}`))
      .argument('<name>', 'schedule name')
      .action(async (name: string, o: AppOpt) => {
        await withApp(o.app, (app) => app.schedules[verb](name));
        process.stdout.write(`schedule ${quote(name)} ${verb}d\n`);
      });
  }

  appOption(schedule.command('run').description("enqueue a schedule's task now (its ticks are not affected)"))
    .argument('<name>', 'schedule name')
    .action(async (name: string, o: AppOpt) => {
      const handle = await withApp(o.app, (app) => app.schedules.run(name));
      process.stdout.write(`${handle.id}\n`);
    });
}
