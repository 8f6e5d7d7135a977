import { CommanderError, type Command } from 'commander';
import { z } from 'zod';
import { connect, maskUrl, redisUrlFromEnv, TasukiError } from '../index.js';
import { migrateKeys, type MigrateReport } from '../keys/migrate.js';
import { exitWhenFlushed } from './exit.js';
import { keyspaceFor } from './keys-app.js';
import { cliInteger, parseCli } from './options.js';

/** Exit code of `keys migrate` when some values could not be migrated. */
export const EXIT_MIGRATE_FAILURES = 1;
/** Exit code of `keys migrate` when it stopped before the end (Ctrl-C or --limit); resume with --cursor. */
export const EXIT_MIGRATE_PARTIAL = 3;

interface MigrateOpts {
  app?: string;
  url?: string;
  keyspace: string;
  to: string;
  apply?: boolean;
  count: string;
  paceMs: string;
  cursor: string;
  limit?: string;
  format: 'text' | 'json';
}

function summary(r: MigrateReport): string {
  const versions = Object.entries(r.byVersion)
    .map(([v, n]) => `v${v}: ${n}`)
    .join(', ');
  const lines = [
    `${r.applied ? 'Migrated' : 'Dry run (nothing written; add --apply to rewrite)'}: keyspace ${r.keyspace} to v${r.to}`,
    `scanned ${r.scanned} values: ${r.older} older${versions ? ` (${versions})` : ''}, ${r.current} current or newer, ${r.unenveloped} without envelope`,
  ];
  if (r.applied)
    lines.push(`rewritten ${r.migrated}, changed by another writer meanwhile ${r.changed} (left alone)`);
  if (r.failed) {
    lines.push(`cannot migrate ${r.failed}:`);
    for (const f of r.failures) lines.push(`  ${f.key}: ${f.error}`);
  }
  lines.push(
    r.complete ? 'complete: SCAN went all the way round' : `stopped early: resume with --cursor ${r.cursor}`,
  );
  return lines.join('\n') + '\n';
}

async function runMigrate(opts: MigrateOpts): Promise<void> {
  const n = (name: string, value: string, min: number): number =>
    parseCli(z.object({ [name]: cliInteger(min) }), { [name]: value })[name] as number;
  const to = n('--to', opts.to, 1);
  const count = n('--count', opts.count, 1);
  const paceMs = n('--pace-ms', opts.paceMs, 0);
  const limit = opts.limit !== undefined ? n('--limit', opts.limit, 1) : undefined;
  if (!/^\d+$/.test(opts.cursor)) {
    throw new TasukiError(
      'E_OPTIONS',
      `--cursor "${opts.cursor}" is not a SCAN cursor (digits, as a previous run printed)`,
    );
  }
  if (!opts.app) {
    throw new TasukiError(
      'E_CONFIG',
      'keys migrate needs --app <module>: the migrations are code the app declares',
    );
  }
  const { space, app } = await keyspaceFor(opts);
  const def = space.get(opts.keyspace);
  if (!def?.spec.format) {
    const known = space
      .list()
      .filter((d) => d.spec.format)
      .map((d) => `"${d.spec.id}"`);
    await app?.close();
    throw new TasukiError(
      'E_OPTIONS',
      `--keyspace "${opts.keyspace}" is not a keyspace of the app; it declares ${known.length ? known.join(', ') : 'none (defineKeyspace)'}`,
    );
  }
  const url = opts.url ?? app?.redisUrl() ?? redisUrlFromEnv();
  await app?.close();
  if (!url)
    throw new TasukiError(
      'E_CONFIG',
      'keys migrate: no Redis URL: pass --url or set TASUKI_REDIS_URL or REDIS_URL',
    );
  const redis = await connect({ url, startAttempts: 3, clientName: 'tasuki-keys-migrate' });
  const controller = new AbortController();
  const stop = (): void => {
    if (controller.signal.aborted) return void exitWhenFlushed(130);
    process.stderr.write('\ntasuki keys migrate: stopping after this batch…\n');
    controller.abort();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.stderr.write(
    `tasuki keys migrate: ${opts.apply ? 'rewriting' : 'dry run on'} ${maskUrl(url)}, MATCH ${def.glob()} (COUNT ${count}, pace ${paceMs} ms)\n`,
  );
  let report: MigrateReport;
  try {
    report = await migrateKeys(redis, def, {
      to,
      apply: Boolean(opts.apply),
      count,
      paceMs,
      cursor: opts.cursor,
      signal: controller.signal,
      ...(limit !== undefined ? { limit } : {}),
    });
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    redis.disconnect();
  }
  process.stdout.write(opts.format === 'json' ? JSON.stringify(report, null, 2) + '\n' : summary(report));
  if (!report.complete)
    throw new CommanderError(EXIT_MIGRATE_PARTIAL, 'tasuki.keys.partial', 'stopped early');
  if (report.failed)
    throw new CommanderError(EXIT_MIGRATE_FAILURES, 'tasuki.keys.failures', 'migration failures');
}

/** Registers `tasuki keys migrate`. */
export function registerKeysMigrate(keys: Command): void {
  keys
    .command('migrate')
    .description(
      "rewrite an app keyspace's values at older format versions through its migrations (SCAN, paced, resumable; a dry run unless --apply)",
    )
    .requiredOption('--keyspace <name>', 'the keyspace (its defineKeyspace name)')
    .requiredOption('--to <version>', "the format version to migrate to (the keyspace's declared version)")
    .option('--app <module>', 'module that exports the tasuki app declaring the keyspace (required)')
    .option('--url <url>', "Redis URL (default TASUKI_REDIS_URL, else REDIS_URL, else the app's)")
    .option('--apply', 'write the migrated values (without it: a dry run that only counts)')
    .option('--count <n>', 'SCAN COUNT per batch', '200')
    .option('--pace-ms <ms>', 'pause between batches, to spare a busy Redis', '0')
    .option('--cursor <cursor>', 'SCAN cursor to resume from (printed by a run that stopped early)', '0')
    .option('--limit <n>', 'stop after about this many values (at the end of a batch), printing the cursor')
    .option('--format <format>', 'text or json', 'text')
    .action(async (opts: MigrateOpts) => runMigrate(opts));
}
