import type { Command } from 'commander';
import { z } from 'zod';
import { GROUP, parseTaskId, queueStreams, TasukiError, type QueueStats, type Tasuki } from '../index.js';
import { table } from './format.js';
import { cliDuration, formatMs, names, parseCli, parseQueues } from './options.js';
import { registerInspectViews } from './inspect-views.js';
import { sourceOptions, withQueues, type AppSource } from './queues.js';

/** The consumer group every worker reads through (docs/architecture.md). */

/** A queue's counts, plus how many of its active tasks look abandoned. */
export interface QueueReport extends QueueStats {
  /**
   * Active tasks whose worker sent no heartbeat for `--claim-idle`: most likely held by a worker
   * that died. A live worker serving the queue takes them over.
   */
  stalled: number;
}

/**
 * Active tasks idle past `idleMs`. A live worker's heartbeat resets the idle time of the entries it
 * holds every third of claimIdle, so only a silent (most likely dead) worker's entries get this old.
 */
async function stalled(app: Tasuki, s: QueueStats, idleMs: number): Promise<number> {
  if (s.active === 0) return 0;
  const redis = await app.redis();
  let n = 0;
  // The queue's stream and its priority levels' (a level without a stream has no pending list).
  for (const stream of queueStreams(app.keys, s.queue)) {
    const rows = await redis
      .xpending(stream, GROUP, 'IDLE', idleMs, '-', '+', s.active)
      .catch((err: Error) => {
        if (/^NOGROUP\b/.test(err.message)) return [];
        throw err;
      });
    n += rows.length;
  }
  return n;
}

export function registerInspect(program: Command): void {
  const inspect = program.command('inspect').description('look at tasks and queues (read-only)');
  registerInspectViews(inspect);

  sourceOptions(
    inspect.command('task').description("a task's state, result or error, and latest progress, by id"),
  )
    .argument('<id>', 'task id, as enqueue returned it (e.g. 1732391234567-0@emails)')
    .action(async (id: string, o: AppSource) => {
      const { queue } = parseTaskId(id);
      await withQueues(o, [queue], async ({ app }) => {
        const info = await app.getTask(id);
        if (!info) {
          throw new TasukiError(
            'E_NOT_FOUND',
            `no task ${id}: never enqueued under prefix "${app.keys.space.prefix}", or its record expired (resultTtl)`,
          );
        }
        // The latest progress the handler reported (ctx.progress), when it reported any.
        const progress = await app.getProgress(id);
        process.stdout.write(JSON.stringify(progress ? { ...info, progress } : info, null, 2) + '\n');
      });
    });

  sourceOptions(inspect.command('queues').description('how many tasks each queue holds'))
    .option(
      '--queues <names>',
      "comma-separated queues (default: the app's, or every queue workers have served)",
    )
    .option(
      '--claim-idle <duration>',
      "the workers' claimIdle: active tasks idle this long count as stalled (held by a dead worker)",
      '30s',
    )
    .option('--json', 'print JSON')
    .action(async (o: AppSource & { queues?: string; claimIdle: string; json?: boolean }) => {
      const idleMs = parseCli(z.object({ '--claim-idle': cliDuration() }), { '--claim-idle': o.claimIdle })[
        '--claim-idle'
      ];
      const named = parseQueues(o.queues);
      if (named?.length === 0)
        throw new TasukiError('E_OPTIONS', 'invalid command line: --queues: no queue names');
      await withQueues(o, named, async ({ app, queues }) => {
        const reports: QueueReport[] = [];
        for (const q of queues) {
          const s = await app.queueStats(q);
          reports.push({ ...s, stalled: await stalled(app, s, idleMs) });
        }
        if (o.json) {
          process.stdout.write(JSON.stringify(reports, null, 2) + '\n');
          return;
        }
        if (queues.length === 0) {
          process.stderr.write(
            `no queues under prefix "${app.keys.space.prefix}": no worker has served one yet (pass --queues or --app)\n`,
          );
          return;
        }
        const rows = reports.map((r) => [r.queue, r.waiting, r.active, r.stalled, r.delayed, r.dead]);
        process.stdout.write(
          table(['QUEUE', 'WAITING', 'ACTIVE', 'STALLED', 'DELAYED', 'DEAD'], rows) + '\n',
        );
        const paused = reports.filter((r) => r.paused);
        if (paused.length) {
          process.stdout.write(
            `\npaused: ${names(paused.map((r) => r.queue))} (workers take no new task from them; tasuki queue resume)\n`,
          );
        }
        const held = reports.filter((r) => r.stalled > 0);
        if (held.length) {
          const n = held.reduce((a, r) => a + r.stalled, 0);
          process.stdout.write(
            `\nnote: STALLED counts the ${n} ACTIVE task${n > 1 ? 's' : ''} (in ${names(held.map((r) => r.queue))}) ` +
              `whose worker sent no heartbeat for ${formatMs(idleMs)} (--claim-idle): most likely it died. ` +
              `A live worker serving the queue takes them over.\n`,
          );
        }
      });
    });
}
