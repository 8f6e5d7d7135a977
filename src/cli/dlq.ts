import type { Command } from 'commander';
import { z } from 'zod';
import {
  OptionsError,
  parseTaskId,
  TasukiError,
  type DeadLetter,
  type DeadLetterSelection,
  type Tasuki,
} from '../index.js';
import { deadLetterDetails, deadLetterLine } from './format.js';
import { cliInteger, names, parseCli } from './options.js';
import { sourceOptions, withQueues, type AppSource } from './queues.js';

interface Common extends AppSource {
  queue?: string;
  json?: boolean;
}

interface Selecting extends Common {
  id?: string[];
  all?: boolean;
}

function usage(path: string, message: string): OptionsError {
  return new OptionsError('command line', [{ path, message }]);
}

/**
 * The queue of each id: from the task id (`<local>@<queue>`), else --queue for a bare dead-letter
 * id. A task id naming another queue than --queue is a contradiction, not a guess.
 */
function queueOfIds(ids: readonly string[], queue: string | undefined): Map<string, string[]> {
  const byQueue = new Map<string, string[]>();
  for (const id of ids) {
    let q: string;
    if (id.includes('@')) {
      q = parseTaskId(id).queue;
      if (queue !== undefined && q !== queue) {
        throw usage('--id', `"${id}" is a task of queue "${q}", not of --queue "${queue}"; drop --queue`);
      }
    } else if (queue !== undefined) {
      q = queue;
    } else {
      throw usage(
        '--id',
        `"${id}" is a dead-letter id, which does not name its queue: give --queue too, or the task id (e.g. 1732391234567-0@emails)`,
      );
    }
    byQueue.set(q, [...(byQueue.get(q) ?? []), id]);
  }
  return byQueue;
}

function notFound(missing: readonly string[], done: string): TasukiError {
  return new TasukiError(
    'E_NOT_FOUND',
    `no dead letter ${names(missing)}${done}; see \`tasuki dlq list\` for the ones there are`,
  );
}

/** The ids of `wanted` (per queue) that have no dead letter. */
/**
 * Runs `each` on every queue the selection names (after checking every named id exists, so a typo
 * changes nothing), with the ids of that queue or `{ all: true }`.
 */
async function eachSelected(
  o: Selecting,
  verb: string,
  each: (app: Tasuki, queue: string, which: DeadLetterSelection) => Promise<void>,
): Promise<void> {
  const sel = selection(o);
  const named = 'ids' in sel ? [...sel.ids.keys()] : sel.queues;
  await withQueues(o, named, async ({ app, queues }) => {
    if ('ids' in sel) {
      const missing = await missingIds(app, sel.ids);
      if (missing.length) throw notFound(missing, `; nothing was ${verb}`);
    }
    for (const queue of queues) {
      const ids = 'ids' in sel ? sel.ids.get(queue) : undefined;
      await each(app, queue, ids ? { ids } : { all: true });
    }
  });
}

async function missingIds(app: Tasuki, wanted: Map<string, string[]>): Promise<string[]> {
  const missing: string[] = [];
  for (const [queue, ids] of wanted) {
    for (const id of ids) if (!(await app.deadLetters.get(queue, id))) missing.push(id);
  }
  return missing;
}

/**
 * What retry and purge apply to: some ids (grouped by queue), or every dead letter of --queue (of
 * every queue without it).
 */
function selection(o: Selecting): { ids: Map<string, string[]> } | { all: true; queues?: string[] } {
  if (o.all && o.id?.length) {
    throw usage('--all', 'give --id <task id>... or --all, not both: --all already means every dead letter');
  }
  if (o.all) return { all: true, ...(o.queue !== undefined ? { queues: [o.queue] } : {}) };
  if (o.id?.length) return { ids: queueOfIds(o.id, o.queue) };
  throw usage('--id', 'give --id <task id> (repeatable) or --all');
}

function common(cmd: Command, queueHelp: string): Command {
  return sourceOptions(cmd).option('--queue <name>', queueHelp).option('--json', 'print JSON');
}

export function registerDlq(program: Command): void {
  const dlq = program.command('dlq').description('inspect and act on dead letters');

  common(dlq.command('list'), 'list only this queue (default: every queue)')
    .description('list dead letters, oldest first')
    .option('--limit <n>', 'most to list', '100')
    .action(async (o: Common & { limit: string }) => {
      const limit = parseCli(z.object({ '--limit': cliInteger(1) }), { '--limit': o.limit })['--limit'];
      await withQueues(o, o.queue === undefined ? undefined : [o.queue], async ({ app, queues }) => {
        const lists = await Promise.all(queues.map((q) => app.deadLetters.list(q, { limit })));
        // Dead ids are stream ids (`<ms>-<seq>`): sort them as numbers to merge queues oldest first.
        const key = (d: DeadLetter): [number, number] => {
          const [ms, seq] = d.deadId.split('-').map(Number);
          return [ms ?? 0, seq ?? 0];
        };
        const list = lists
          .flat()
          .sort((a, b) => key(a)[0] - key(b)[0] || key(a)[1] - key(b)[1])
          .slice(0, limit);
        if (o.json) {
          process.stdout.write(JSON.stringify(list, null, 2) + '\n');
          return;
        }
        for (const d of list) process.stdout.write(deadLetterLine(d) + '\n');
        const total = (await Promise.all(queues.map((q) => app.deadLetters.count(q)))).reduce(
          (a, b) => a + b,
          0,
        );
        const where = queues.length ? `in ${names(queues)}` : '(no queues found)';
        process.stderr.write(`${list.length} of ${total} dead letters ${where}\n`);
      });
    });

  common(dlq.command('show'), 'queue of a bare dead-letter id (a task id names its queue)')
    .description('show one dead letter in full')
    .requiredOption('--id <id>', 'task id (e.g. 1732391234567-0@emails), or dead-letter id with --queue')
    .action(async (o: Common & { id: string }) => {
      const [[queue, ids]] = [...queueOfIds([o.id], o.queue)] as [[string, string[]]];
      await withQueues(o, [queue], async ({ app }) => {
        const d = await app.deadLetters.get(queue, ids[0] as string);
        if (!d) throw notFound([o.id], ` in queue "${queue}"`);
        process.stdout.write((o.json ? JSON.stringify(d, null, 2) : deadLetterDetails(d)) + '\n');
      });
    });

  common(
    dlq.command('retry'),
    'queue for --all or for bare dead-letter ids (default with --all: every queue)',
  )
    .description('put dead letters back on their queue as fresh tasks (attempt 1, same task id)')
    .option('--id <id...>', 'task ids (or dead-letter ids with --queue)')
    .option('--all', 'every dead letter (of --queue, or of every queue)')
    .action(async (o: Selecting) => {
      let retried = 0;
      let skipped = 0;
      await eachSelected(o, 'retried', async (app, queue, which) => {
        const r = await app.deadLetters.retry(queue, which);
        retried += r.retried;
        skipped += r.skipped;
      });
      process.stdout.write(
        (o.json
          ? JSON.stringify({ retried, skipped })
          : `retried ${retried}, skipped ${skipped} (undecodable)`) + '\n',
      );
    });

  common(
    dlq.command('purge'),
    'queue for --all or for bare dead-letter ids (default with --all: every queue)',
  )
    .description('delete dead letters for good')
    .option('--id <id...>', 'task ids (or dead-letter ids with --queue)')
    .option('--all', 'every dead letter (of --queue, or of every queue)')
    .action(async (o: Selecting) => {
      let purged = 0;
      await eachSelected(o, 'purged', async (app, queue, which) => {
        purged += await app.deadLetters.purge(queue, which);
      });
      process.stdout.write((o.json ? JSON.stringify({ purged }) : `purged ${purged}`) + '\n');
    });
}
