import { CommanderError, Option, type Command } from 'commander';
import { z } from 'zod';
import {
  auditKeys,
  CATALOGUE_FORMATS,
  catalogueRows,
  connect,
  failingKinds,
  FINDING_KINDS,
  maskUrl,
  parseFailOn,
  redisUrlFromEnv,
  renderCatalogue,
  TasukiError,
  type AuditProgress,
  type AuditReport,
  type CatalogueFormat,
} from '../index.js';
import { formatBytes, formatDuration, textTable } from '../keys/catalogue.js';
import { exitWhenFlushed } from './exit.js';
import { keyspaceFor } from './keys-app.js';
import { registerKeysMigrate } from './keys-migrate.js';
import { cliInteger, parseCli } from './options.js';

/** Exit code of `keys audit` when it found something `--fail-on` names. */
export const EXIT_FINDINGS = 1;
/** Exit code of `keys audit` when Ctrl-C (or SIGTERM) stopped it; the partial report is printed. */
export const EXIT_INTERRUPTED = 130;

/** An integer option of at least `min`, parsed like every other CLI integer (src/util/options). */
function intOption(name: string, value: string, min: number): number {
  return parseCli(z.object({ [name]: cliInteger(min) }), { [name]: value })[name] as number;
}

/** A one-line progress bar on stderr, redrawn at most ten times a second. Only used on a TTY. */
export function progressBar(
  stream: Pick<NodeJS.WriteStream, 'write'>,
  clock: () => number = Date.now,
): {
  update(p: AuditProgress): void;
  done(): void;
} {
  let last = 0;
  return {
    update(p) {
      const now = clock();
      if (now - last < 100) return;
      last = now;
      const width = 24;
      let bar = '';
      if (p.totalKeys) {
        const frac = Math.min(1, p.scanned / p.totalKeys);
        const filled = Math.round(frac * width);
        bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.floor(frac * 100)}% `;
      }
      const of = p.totalKeys ? `/${p.totalKeys.toLocaleString('en')}` : '';
      stream.write(
        `\r\x1b[2Kscanning ${bar}${p.scanned.toLocaleString('en')}${of} keys, ${p.findings} findings`,
      );
    },
    done() {
      stream.write('\r\x1b[2K');
    },
  };
}

/**
 * The audit report as text tables: summary, findings (at most `perKind` of each kind; the JSON
 * has them all), unowned key families, oldest keys, totals per owner, notes.
 */
export function renderAuditTable(r: AuditReport, perKind = 20): string {
  const out: string[] = [];
  const of = r.totalKeys !== null ? ` of ${r.totalKeys} (DBSIZE at start)` : '';
  out.push(
    `Audited ${r.scanned} keys${of} in ${formatDuration(r.durationMs)}` +
      (r.complete ? '.' : ' — CANCELLED, partial report.'),
  );
  out.push('Findings: ' + FINDING_KINDS.map((k) => `${r.counts[k]} ${k}`).join(', '));
  out.push('');
  const shown = FINDING_KINDS.flatMap((k) => r.findings.filter((f) => f.kind === k).slice(0, perKind));
  if (shown.length) {
    out.push('FINDINGS');
    out.push(
      textTable(
        ['KIND', 'KEY', 'OWNER', 'TYPE', 'TTL', 'MEMORY', 'DETAIL'],
        shown.map((f) => [
          f.kind,
          f.key,
          f.owner ?? '-',
          f.type,
          f.ttlMs === null ? 'none' : formatDuration(f.ttlMs),
          f.bytes === null ? '?' : formatBytes(f.bytes),
          f.detail,
        ]),
        [11, 60, 20, 6, 10, 10, 60],
      ),
    );
    const more = FINDING_KINDS.map(
      (k) => [k, r.counts[k] - shown.filter((f) => f.kind === k).length] as const,
    )
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${n} ${k}`);
    if (more.length)
      out.push(`… and ${more.join(', ')} more (all are in --format json, up to --max-findings)\n`);
  }
  if (r.unownedFamilies.length) {
    out.push('UNOWNED KEY FAMILIES (who writes these?)');
    out.push(
      textTable(
        ['PATTERN', 'KEYS', 'MEMORY', 'EXAMPLE'],
        r.unownedFamilies.map((f) => [f.pattern, String(f.keys), formatBytes(f.bytes), f.example]),
        [60, 10, 10, 60],
      ),
    );
  }
  if (r.oldest.length) {
    out.push('OLDEST KEYS (age from tasuki value metadata, else idle time: a lower bound)');
    out.push(
      textTable(
        ['KEY', 'OWNER', 'AGE', 'BASIS', 'WRITER', 'WRITTEN AT'],
        r.oldest.map((o) => [
          o.key,
          o.owner ?? '(unowned)',
          (o.basis === 'idle' ? '>= ' : '') + formatDuration(o.ageMs),
          o.basis,
          o.writer ?? '-',
          o.createdAt === null ? '-' : new Date(o.createdAt).toISOString(),
        ]),
        [60, 20, 12, 8, 30, 24],
      ),
    );
  }
  if (r.declared.length) {
    out.push('PER DECLARATION (format versions from value metadata)');
    out.push(
      textTable(
        ['ID', 'OWNER', 'KEYS', 'MEMORY', 'NO TTL', 'VERSIONS'],
        r.declared.map((d) => [
          d.id,
          d.owner,
          String(d.keys),
          formatBytes(d.bytes),
          String(d.noTtl),
          Object.entries(d.versions)
            .map(([v, n]) => `v${v}: ${n}`)
            .join(', ') || '-',
        ]),
      ),
    );
  }
  if (r.owners.length) {
    out.push('PER OWNER');
    out.push(
      textTable(
        ['OWNER', 'KEYS', 'MEMORY'],
        r.owners.map((o) => [o.owner, String(o.keys), formatBytes(o.bytes)]),
      ),
    );
  }
  for (const n of r.notes) out.push(`note: ${n}`);
  return out.join('\n').replace(/\n*$/, '\n');
}

interface CatalogueOpts {
  app?: string;
  format: CatalogueFormat;
  prefix?: string;
}

interface AuditOpts {
  app?: string;
  url?: string;
  prefix?: string;
  count: string;
  paceMs: string;
  match?: string;
  format: 'table' | 'json';
  failOn?: string;
  limitOldest: string;
  maxKeyBytes: string;
  unownedMaxBytes: string;
  maxFindings: string;
  fullNames?: boolean;
  progress: boolean;
}

async function runAudit(opts: AuditOpts): Promise<void> {
  const failOn = opts.failOn !== undefined ? parseFailOn(opts.failOn) : [];
  const settings = {
    count: intOption('--count', opts.count, 1),
    paceMs: intOption('--pace-ms', opts.paceMs, 0),
    limitOldest: intOption('--limit-oldest', opts.limitOldest, 0),
    maxKeyBytes: intOption('--max-key-bytes', opts.maxKeyBytes, 1),
    unownedMaxBytes: intOption('--unowned-max-bytes', opts.unownedMaxBytes, 1),
    maxFindings: intOption('--max-findings', opts.maxFindings, 0),
  };
  const { space, app } = await keyspaceFor(opts);
  await app?.close();
  const url = opts.url ?? app?.redisUrl() ?? redisUrlFromEnv();
  if (!url) {
    throw new TasukiError(
      'E_CONFIG',
      'keys audit: no Redis URL: pass --url redis://host:6379 or set TASUKI_REDIS_URL or REDIS_URL',
    );
  }
  const redis = await connect({
    url,
    startAttempts: 3,
    clientName: 'tasuki-keys-audit',
    // No INFO ready check (one command fewer to grant a read-only ACL user); fail a command after
    // two reconnect attempts instead of waiting forever for a Redis that went away mid-audit.
    redisOptions: { enableReadyCheck: false, maxRetriesPerRequest: 2 },
  });
  const controller = new AbortController();
  const stop = (): void => {
    if (controller.signal.aborted) {
      // A second Ctrl-C: the user does not want to wait for the partial report.
      process.stderr.write('tasuki keys audit: stopped\n');
      void exitWhenFlushed(EXIT_INTERRUPTED);
      return;
    }
    process.stderr.write('\ntasuki keys audit: stopping…\n');
    controller.abort();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const bar = opts.progress && process.stderr.isTTY ? progressBar(process.stderr) : undefined;
  process.stderr.write(
    `tasuki keys audit: scanning ${maskUrl(url)} (COUNT ${settings.count}, pace ${settings.paceMs} ms, read-only); Ctrl-C stops and prints what was found\n`,
  );
  let report: AuditReport;
  try {
    report = await auditKeys(redis, space, {
      ...settings,
      ...(opts.match !== undefined ? { match: opts.match } : {}),
      fullNames: Boolean(opts.fullNames),
      signal: controller.signal,
      ...(bar ? { onProgress: (p: AuditProgress) => bar.update(p) } : {}),
    });
  } finally {
    bar?.done();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    redis.disconnect();
  }
  process.stdout.write(
    opts.format === 'json' ? JSON.stringify(report, null, 2) + '\n' : renderAuditTable(report),
  );
  if (!report.complete) {
    throw new CommanderError(EXIT_INTERRUPTED, 'tasuki.keys.interrupted', 'audit cancelled');
  }
  const failing = failingKinds(report, failOn);
  if (failing.length) {
    process.stderr.write(
      `tasuki keys audit: failing on ${failing.map((k) => `${k} (${report.counts[k]})`).join(', ')}\n`,
    );
    throw new CommanderError(EXIT_FINDINGS, 'tasuki.keys.findings', 'audit findings');
  }
}

/** Registers `tasuki keys catalogue` and `tasuki keys audit`. */
export function registerKeys(program: Command): void {
  const keys = program
    .command('keys')
    .description(
      'governed Redis keys: the catalogue of declared keys, an audit of a live Redis, and format migrations of app keyspaces',
    );

  keys
    .command('catalogue')
    .description("print every declared key: tasuki's own and, with --app, the app's")
    .option('--app <module>', "module that exports the tasuki app, to include the app's keys")
    .addOption(new Option('--format <format>', 'output format').choices(CATALOGUE_FORMATS).default('table'))
    .option('--prefix <prefix>', 'key prefix when no --app is given (default tsk)')
    .action(async (opts: CatalogueOpts) => {
      const { space, app } = await keyspaceFor(opts);
      await app?.close();
      process.stdout.write(renderCatalogue(catalogueRows(space), opts.format));
    });

  keys
    .command('audit')
    .description(
      'scan a live Redis (SCAN, read-only, paced) and report keys with no owner, no TTL, over budget or with oversized names',
    )
    .option('--app <module>', "module that exports the tasuki app, so the app's keys count as owned")
    .option('--url <url>', "Redis URL (default TASUKI_REDIS_URL, else REDIS_URL, else the app's)")
    .option('--prefix <prefix>', "tasuki's key prefix when no --app is given (default tsk)")
    .option('--count <n>', 'SCAN COUNT per batch (1-10000)', '200')
    .option('--pace-ms <ms>', 'pause between SCAN batches, to spare a busy Redis', '0')
    .option('--match <glob>', 'audit only keys matching this SCAN MATCH glob')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .option(
      '--fail-on <kinds>',
      `exit ${EXIT_FINDINGS} when any of these are found: ${FINDING_KINDS.join(', ')}, oversize (over-budget + long-name), any`,
    )
    .option('--limit-oldest <n>', 'how many of the oldest keys to list', '10')
    .option('--max-key-bytes <n>', 'key names longer than this are reported as long-name', '256')
    .option(
      '--unowned-max-bytes <n>',
      'memory budget of an undeclared key (MEMORY USAGE); larger ones are reported as over-budget',
      '1048576',
    )
    .option('--max-findings <n>', 'most findings listed (all are counted)', '1000')
    .option('--full-names', 'print long key names in full instead of shortened')
    .option('--no-progress', 'no progress bar (it is only drawn when stderr is a terminal)')
    .action(async (opts: AuditOpts) => runAudit(opts));

  registerKeysMigrate(keys);
}
