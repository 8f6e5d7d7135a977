/**
 * `tasuki inspect workers`, `inspect tasks <queue>` (paged lists of waiting, active or delayed
 * tasks) and `inspect top` (a live view for terminals): thin layers over `app.inspect`, with
 * `--json` for scripts.
 */
import type { Command } from 'commander';
import { z } from 'zod';
import { TasukiError, type Tasuki, type WorkerInfo } from '../index.js';
import { isoTime, table } from './format.js';
import { cliDuration, cliInteger, parseCli } from './options.js';
import { sourceOptions, withQueues, type AppSource } from './queues.js';

function workerRows(workers: readonly WorkerInfo[]): (string | number)[][] {
  return workers.map((w) => [
    w.name,
    w.alive ? 'yes' : 'no',
    w.queues.join(','),
    w.concurrency,
    w.inFlight,
    w.counts.succeeded ?? 0,
    w.counts.failed ?? 0,
    age(w.silentMs),
  ]);
}
const WORKER_HEADERS = [
  'WORKER',
  'ALIVE',
  'QUEUES',
  'CONCURRENCY',
  'RUNNING',
  'SUCCEEDED',
  'FAILED',
  'LAST SEEN',
];

export function registerInspectViews(inspect: Command): void {
  sourceOptions(
    inspect.command('workers').description('workers: alive, concurrency, running tasks, last heartbeat'),
  )
    .option('--json', 'print JSON')
    .action(async (o: AppSource & { json?: boolean }) => {
      await withQueues(o, undefined, async ({ app }) => {
        const workers = await app.inspect.workers();
        if (o.json) process.stdout.write(JSON.stringify(workers, null, 2) + '\n');
        else if (workers.length === 0)
          process.stderr.write('no workers have published a presence in the last hour\n');
        else process.stdout.write(table(WORKER_HEADERS, workerRows(workers)) + '\n');
      });
    });

  sourceOptions(inspect.command('tasks').description("a page of a queue's waiting, active or delayed tasks"))
    .argument('<queue>', 'queue name')
    .option('--state <state>', 'waiting, active or delayed', 'waiting')
    .option('--order <order>', 'oldest or newest first', 'oldest')
    .option('--limit <n>', 'tasks per page (1-1000)', '20')
    .option('--after <cursor>', 'the cursor printed after the previous page')
    .option('--json', 'print JSON: { tasks, next }')
    .action(
      async (
        queue: string,
        o: AppSource & { state: string; order: string; limit: string; after?: string; json?: boolean },
      ) => {
        const v = parseCli(
          z.object({
            '--state': z.enum(['waiting', 'active', 'delayed']),
            '--order': z.enum(['oldest', 'newest']),
            '--limit': cliInteger(1).pipe(z.number().max(1000)),
          }),
          { '--state': o.state, '--order': o.order, '--limit': o.limit },
        );
        await withQueues(o, [queue], async ({ app }) => {
          const page = await app.inspect.tasks(queue, {
            state: v['--state'],
            order: v['--order'],
            limit: v['--limit'],
            cursor: o.after,
          });
          if (o.json) {
            process.stdout.write(JSON.stringify(page, null, 2) + '\n');
            return;
          }
          const rows = page.tasks.map((t) => [
            t.id,
            t.task,
            t.attempt,
            isoTime(t.dueAt ?? t.enqueuedAt),
            t.worker ?? '-',
            t.claim ? `(payload store, ${t.claim.size} B)` : t.args,
          ]);
          process.stdout.write(
            table(['ID', 'TASK', 'ATTEMPT', t0(v['--state']), 'WORKER', 'ARGS'], rows) + '\n',
          );
          if (page.next) process.stdout.write(`\nmore: --after ${page.next}\n`);
        });
      },
    );

  sourceOptions(inspect.command('top').description('a live view of queues and workers (Ctrl-C to leave)'))
    .option(
      '--queues <names>',
      "comma-separated queues (default: the app's, or every queue workers have served)",
    )
    .option('--interval <duration>', 'time between refreshes', '1s')
    .option('--iterations <n>', 'stop after this many refreshes (default: until Ctrl-C)')
    .action(async (o: AppSource & { queues?: string; interval: string; iterations?: string }) => {
      const v = parseCli(
        z.object({ '--interval': cliDuration({ min: 100 }), '--iterations': cliInteger(1).optional() }),
        {
          '--interval': o.interval,
          '--iterations': o.iterations,
        },
      );
      const named = o.queues
        ?.split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      await withQueues(o, named, async ({ app, queues }) => {
        const stop = new AbortController();
        const onSigint = (): void => stop.abort();
        process.once('SIGINT', onSigint);
        try {
          for (
            let i = 0;
            !stop.signal.aborted && (v['--iterations'] === undefined || i < v['--iterations']);
            i++
          ) {
            if (i > 0) await sleep(v['--interval'], stop.signal);
            if (stop.signal.aborted) break;
            const screen = await topScreen(app, queues);
            // Clear the screen on a terminal; a pipe gets one frame after another.
            process.stdout.write(
              (process.stdout.isTTY ? '\x1b[H\x1b[2J' : i > 0 ? '\n' : '') + screen + '\n',
            );
          }
        } finally {
          process.off('SIGINT', onSigint);
        }
      });
    });
}

/** A duration for people: 0.4s, 12s, 5m, 3h. */
function age(ms: number): string {
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 120_000) return `${Math.round(ms / 1000)}s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)}m`;
  return `${Math.round(ms / 3_600_000)}h`;
}

function t0(state: string): string {
  return state === 'delayed' ? 'DUE' : 'ENQUEUED';
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
}

/** One frame of `inspect top`: queue counts and lag, then workers. */
async function topScreen(app: Tasuki, queues: readonly string[]): Promise<string> {
  if (queues.length === 0) throw new TasukiError('E_NOT_FOUND', 'no queues to watch: pass --queues or --app');
  const rows: (string | number)[][] = [];
  for (const q of queues) {
    const s = await app.queueStats(q);
    rows.push([q, s.waiting, s.active, s.delayed, s.dead, age(await app.inspect.lag(q))]);
  }
  const workers = await app.inspect.workers();
  return [
    `tasuki top  ${new Date().toISOString()}  prefix ${app.keys.space.prefix}`,
    '',
    table(['QUEUE', 'WAITING', 'ACTIVE', 'DELAYED', 'DEAD', 'LAG'], rows),
    '',
    workers.length ? table(WORKER_HEADERS, workerRows(workers)) : 'no workers',
  ].join('\n');
}
