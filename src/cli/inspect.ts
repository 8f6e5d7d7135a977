import type { Command } from 'commander';
import { TasukiError } from '../errors.js';
import { parseTaskId } from '../wire/ids.js';
import { appFor, type AppSource } from './load-app.js';
import { parseQueues } from './worker.js';

function source(cmd: Command): Command {
  return cmd
    .option('--app <module>', 'module that exports the tasuki app (for its prefix and queues)')
    .option('--url <url>', 'Redis URL (default TASUKI_REDIS_URL, else REDIS_URL)')
    .option('--prefix <prefix>', 'key prefix when no --app is given', 'tsk');
}

export function registerInspect(program: Command): void {
  const inspect = program.command('inspect').description('look at tasks and queues (read-only)');

  source(inspect.command('task').description("a task's state, result or error, by id"))
    .argument('<id>', 'task id, as enqueue returned it (e.g. 1732391234567-0@emails)')
    .action(async (id: string, o: AppSource) => {
      const { queue } = parseTaskId(id);
      const app = await appFor(o, [queue]);
      try {
        const info = await app.getTask(id);
        if (!info) {
          throw new TasukiError(
            'E_NOT_FOUND',
            `no task ${id}: never enqueued under prefix "${app.keys.space.prefix}", or its record expired (resultTtl)`,
          );
        }
        console.log(JSON.stringify(info, null, 2));
      } finally {
        await app.close();
      }
    });

  source(inspect.command('queues').description('how many tasks each queue holds'))
    .option(
      '--queues <names>',
      "comma-separated queues (default: the app's, or every queue workers have served)",
    )
    .option('--json', 'print JSON')
    .action(async (o: AppSource & { queues?: string; json?: boolean }) => {
      let queues = parseQueues(o.queues);
      const probe = await appFor(o, queues ?? ['default']);
      if (!queues) {
        const known = await (await probe.redis()).smembers(probe.keys.queues.key({}));
        queues = o.app ? [...probe.queues] : known.sort();
      }
      await probe.close();
      if (queues.length === 0) {
        console.error('no queues found: no worker has served one under this prefix yet');
        return;
      }
      const app = await appFor(o, queues);
      try {
        const stats = await Promise.all(queues.map((q) => app.queueStats(q)));
        if (o.json) console.log(JSON.stringify(stats, null, 2));
        else {
          console.log(['queue', 'waiting', 'active', 'delayed', 'dead'].join('\t'));
          for (const s of stats) console.log([s.queue, s.waiting, s.active, s.delayed, s.dead].join('\t'));
        }
      } finally {
        await app.close();
      }
    });
}
