/**
 * `tasuki revoke`, `tasuki cancel` and `tasuki queue pause|resume|purge|status`: control of tasks
 * and queues from a terminal or a script (`--json`), over the app's library calls
 * (src/control/). A purge asks for confirmation on a terminal and refuses without one unless --yes.
 */
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { parseTaskId, TasukiError, type ControlResult, type Tasuki } from '../index.js';
import { withQueues, sourceOptions, type AppSource } from './queues.js';

interface Common extends AppSource {
  json?: boolean;
  by?: string;
}

function write(o: { json?: boolean }, json: unknown, text: string): void {
  process.stdout.write((o.json ? JSON.stringify(json, null, 2) : text) + '\n');
}

function resultLine(r: ControlResult): string {
  switch (r.outcome) {
    case 'revoked':
    case 'cancelled':
      return `${r.id}: ${r.outcome} (it was ${r.was}${r.worker ? ` by worker ${r.worker}` : ''}; it will not run)`;
    case 'cancelling':
      return `${r.id}: cancelling (running on worker ${r.worker}; its signal is aborted and it ends cancelled)`;
    case 'finished':
      return `${r.id}: already finished (${r.state}); nothing done`;
    default:
      return `${r.id}: unknown (never enqueued, purged, or its record expired); nothing done`;
  }
}

/** Revokes or cancels each id, in the order given; exits 2 when any id was unknown. */
async function controlIds(op: 'revoke' | 'cancel', ids: string[], o: Common): Promise<void> {
  const queues = [...new Set(ids.map((id) => parseTaskId(id).queue))];
  const results = await withQueues(o, queues, async ({ app }) => {
    const out: ControlResult[] = [];
    for (const id of ids) out.push(await (op === 'revoke' ? app.revoke(id, by(o)) : app.cancel(id, by(o))));
    return out;
  });
  write(o, results, results.map(resultLine).join('\n'));
  const unknown = results.filter((r) => r.outcome === 'unknown');
  if (unknown.length) {
    throw new TasukiError(
      'E_NOT_FOUND',
      `${unknown.length} of ${results.length} task ids are unknown: ${unknown.map((r) => r.id).join(', ')}`,
    );
  }
}

function by(o: Common): { by?: string } {
  return o.by === undefined ? {} : { by: o.by };
}

function common(cmd: Command): Command {
  return sourceOptions(cmd)
    .option('--by <who>', 'who asks, written in task records and worker logs (default <host>:<pid>)')
    .option('--json', 'print JSON');
}

/**
 * Asks on the terminal; resolves true when the answer is the queue's name. Without a terminal (a
 * script, a pipe), refuses: a purge deletes tasks for good, so a script must say --yes.
 */
async function confirm(app: Tasuki, queue: string): Promise<boolean> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw new TasukiError(
      'E_OPTIONS',
      `refusing to purge queue "${queue}" without confirmation: there is no terminal to ask on. ` +
        'Pass --yes to purge without asking (in scripts)',
    );
  }
  const s = await app.queueStats(queue);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(
      `This deletes ${s.waiting} waiting and ${s.delayed} delayed tasks of queue "${queue}" for good ` +
        `(${s.active} running ones are kept). Type the queue's name to confirm: `,
    );
    return answer.trim() === queue;
  } finally {
    rl.close();
  }
}

export function registerControl(program: Command): void {
  common(program.command('revoke'))
    .description(
      'revoke tasks: they never run (delayed, queued, or fetched by a worker not running them yet)',
    )
    .argument('<id...>', 'task ids (<local>@<queue>)')
    .action((ids: string[], o: Common) => controlIds('revoke', ids, o));

  common(program.command('cancel'))
    .description(
      "cancel tasks: a running one's ctx.signal aborts and it ends cancelled; one not started never runs",
    )
    .argument('<id...>', 'task ids (<local>@<queue>)')
    .action((ids: string[], o: Common) => controlIds('cancel', ids, o));

  const queue = program
    .command('queue')
    .description('pause, resume, purge a queue; see whether it is paused');

  for (const op of ['pause', 'resume'] as const) {
    common(queue.command(op))
      .description(
        op === 'pause'
          ? 'pause queues: workers take no new task from them (running ones finish); enqueues go on'
          : 'resume paused queues',
      )
      .argument('<queue...>', 'queue names')
      .action(async (names: string[], o: Common) => {
        const changed = await withQueues(o, names, async ({ app }) => {
          const out: { queue: string; changed: boolean }[] = [];
          for (const q of names) out.push({ queue: q, changed: await app[op](q, by(o)) });
          return out;
        });
        const done = op === 'pause' ? 'paused' : 'resumed';
        write(
          o,
          changed.map((c) => ({ queue: c.queue, [done]: c.changed })),
          changed
            .map(
              (c) =>
                `${c.queue}: ${c.changed ? done : `was ${op === 'pause' ? 'paused' : 'not paused'} already`}`,
            )
            .join('\n'),
        );
      });
  }

  sourceOptions(queue.command('status'))
    .description('whether queues are paused, and what they hold')
    .argument('[queue...]', 'queue names (default: every queue)')
    .option('--json', 'print JSON')
    .action(async (names: string[], o: Common) => {
      const rows = await withQueues(o, names.length ? names : undefined, async ({ app, queues }) =>
        Promise.all(
          queues.map(async (q) => ({
            ...(await app.queueStats(q)),
            pausedBy: (await app.pausedInfo(q)) ?? undefined,
          })),
        ),
      );
      write(
        o,
        rows,
        rows
          .map(
            (r) =>
              `${r.queue}: ${r.paused ? `paused by ${r.pausedBy?.by} since ${new Date(r.pausedBy?.since ?? 0).toISOString()}` : 'running'}; ` +
              `${r.waiting} waiting, ${r.active} active, ${r.delayed} delayed, ${r.dead} dead`,
          )
          .join('\n'),
      );
    });

  sourceOptions(queue.command('purge'))
    .description('delete the waiting and delayed tasks of a queue for good (running ones are kept)')
    .argument('<queue>', 'queue name')
    .option('--yes', 'do not ask for confirmation (needed without a terminal)')
    .option('--json', 'print JSON')
    .action(async (name: string, o: Common & { yes?: boolean }) => {
      const result = await withQueues(o, [name], async ({ app }) => {
        if (!o.yes && !(await confirm(app, name))) return undefined;
        return app.purge(name);
      });
      if (!result) {
        process.stderr.write('not confirmed; nothing was purged\n');
        throw new TasukiError('E_OPTIONS', `purge of queue "${name}" was not confirmed; nothing was deleted`);
      }
      write(o, result, `${name}: purged ${result.waiting} waiting and ${result.delayed} delayed tasks`);
    });
}
