import type { Command } from 'commander';
import { noSuchDeadLetter, type DeadLetter, type DeadLetterSelection } from '../deadletters/dead-letters.js';
import { OptionsError } from '../errors.js';
import type { Tasuki } from '../app/app.js';
import { appFor } from './load-app.js';

interface Common {
  queue: string;
  app?: string;
  url?: string;
  prefix: string;
  json?: boolean;
}

function selection(o: { id?: string[]; all?: boolean }): DeadLetterSelection {
  if (o.all && o.id?.length) {
    throw new OptionsError('command line', [{ path: '--all', message: 'give --id or --all, not both' }]);
  }
  if (o.all) return { all: true };
  if (o.id?.length) return { ids: o.id };
  throw new OptionsError('command line', [
    { path: '--id', message: 'give --id <task id> (repeatable) or --all' },
  ]);
}

function line(d: DeadLetter): string {
  return `${d.taskId}  ${d.task}  ${d.reason}  attempts=${d.attempts}  ${new Date(d.failedAt).toISOString()}  ${d.error.name}: ${d.error.message}`;
}

function common(cmd: Command): Command {
  return cmd
    .requiredOption('--queue <name>', 'queue whose dead letters to use')
    .option('--app <module>', 'module that exports the tasuki app (for its prefix and queues)')
    .option('--url <url>', 'Redis URL (default TASUKI_REDIS_URL, else REDIS_URL)')
    .option('--prefix <prefix>', 'key prefix when no --app is given', 'tsk')
    .option('--json', 'print JSON');
}

async function withApp(o: Common, fn: (app: Tasuki) => Promise<void>): Promise<void> {
  const app = await appFor(o, [o.queue]);
  try {
    await fn(app);
  } finally {
    await app.close();
  }
}

export function registerDlq(program: Command): void {
  const dlq = program.command('dlq').description('inspect and act on dead letters');

  common(dlq.command('list').description('list dead letters, oldest first'))
    .option('--limit <n>', 'most to list', '100')
    .action((o: Common & { limit: string }) =>
      withApp(o, async (app) => {
        const limit = Number(o.limit);
        const list = await app.deadLetters.list(o.queue, { limit });
        if (o.json) console.log(JSON.stringify(list, null, 2));
        else {
          for (const d of list) console.log(line(d));
          console.error(
            `${list.length} of ${await app.deadLetters.count(o.queue)} dead letters in "${o.queue}"`,
          );
        }
      }),
    );

  common(dlq.command('show').description('show one dead letter in full'))
    .requiredOption('--id <id>', 'task id or dead-letter id')
    .action((o: Common & { id: string }) =>
      withApp(o, async (app) => {
        const d = await app.deadLetters.get(o.queue, o.id);
        if (!d) throw noSuchDeadLetter(o.queue, o.id);
        console.log(JSON.stringify(d, null, 2));
      }),
    );

  common(dlq.command('retry').description('put dead letters back on the queue as fresh tasks'))
    .option('--id <id...>', 'task ids or dead-letter ids')
    .option('--all', 'every dead letter of the queue')
    .action((o: Common & { id?: string[]; all?: boolean }) =>
      withApp(o, async (app) => {
        const r = await app.deadLetters.retry(o.queue, selection(o));
        if (o.id?.length && r.retried + r.skipped === 0) throw noSuchDeadLetter(o.queue, o.id.join(', '));
        console.log(o.json ? JSON.stringify(r) : `retried ${r.retried}, skipped ${r.skipped} (undecodable)`);
      }),
    );

  common(dlq.command('purge').description('delete dead letters for good'))
    .option('--id <id...>', 'task ids or dead-letter ids')
    .option('--all', 'every dead letter of the queue')
    .action((o: Common & { id?: string[]; all?: boolean }) =>
      withApp(o, async (app) => {
        const n = await app.deadLetters.purge(o.queue, selection(o));
        console.log(o.json ? JSON.stringify({ purged: n }) : `purged ${n}`);
      }),
    );
}
