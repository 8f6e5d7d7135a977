import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { TasukiError } from '../index.js';
import { quote } from '../util/options.js';
import { registerBeat } from './beat.js';
import { registerControl } from './control.js';
import { registerDashboard } from './dashboard.js';
import { registerDev } from './dev.js';
import { registerDlq } from './dlq.js';
import { exitWhenFlushed, ignoreClosedPipes } from './exit.js';
import { registerInspect } from './inspect.js';
import { registerHealth } from './health.js';
import { registerKeys } from './keys.js';
import { registerPayloads } from './payloads.js';
import { isTasukiError } from './load-app.js';
import { registerSchedule } from './schedule.js';
import { registerWorker } from './worker.js';

/** Exit code of bad input: a usage error, or a tasuki error (bad option, unknown queue, not found...). */
export const EXIT_ERROR = 2;
/** Exit code of an unexpected error (a bug): the stack is printed. */
export const EXIT_BUG = 1;

/** Levels `TASUKI_LOG_LEVEL` may name (pino's). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** The package's version, from its package.json (two levels up from src/cli and dist/cli alike). */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version?: string;
  };
  return pkg.version ?? 'unknown';
}

/**
 * Checks `TASUKI_LOG_LEVEL` before any logger is made, so a bad level is one clear line instead of
 * a stack from the logging library. Empty means unset; case and spaces do not matter.
 */
export function checkLogLevel(env: NodeJS.ProcessEnv = process.env): void {
  const given = env.TASUKI_LOG_LEVEL;
  if (given === undefined) return;
  const level = given.trim().toLowerCase();
  if (level === '') {
    delete env.TASUKI_LOG_LEVEL;
    return;
  }
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new TasukiError(
      'E_CONFIG',
      `TASUKI_LOG_LEVEL=${quote(given)} is not a log level; use one of ${LOG_LEVELS.join(', ')} (or unset it for info)`,
    );
  }
  env.TASUKI_LOG_LEVEL = level;
}

/** Builds the `tasuki` command line. Each part registers its own subcommands. */
export function program(): Command {
  const p = new Command('tasuki')
    .description('distributed tasks on Redis: workers, results, locks and governed keys')
    .version(version(), '-V, --version', 'print the version')
    .exitOverride()
    .showHelpAfterError()
    .hook('preAction', () => checkLogLevel());
  registerWorker(p);
  registerBeat(p);
  registerSchedule(p);
  registerHealth(p);
  registerDev(p);
  registerDlq(p);
  registerControl(p);
  registerInspect(p);
  registerDashboard(p);
  registerKeys(p);
  registerPayloads(p);
  return p;
}

/** Runs the CLI; resolves the exit code. Errors print one clear line, not a stack. */
export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // A usage error (unknown option, missing required option, bad choice) exits 2 like any other
      // bad input; help and --version exit 0; `keys audit` sets its own codes (1 findings, 130), and
      // `health` exits 1 when unhealthy.
      return err.code.startsWith('commander.') && err.exitCode !== 0 ? EXIT_ERROR : err.exitCode;
    }
    if (isTasukiError(err)) {
      process.stderr.write(`tasuki: ${err.message.replace(/\s*\n\s*/g, ' ')}\n`);
      return EXIT_ERROR;
    }
    throw err;
  }
}

/**
 * The `tasuki` executable: runs the command, then exits once stdout and stderr are flushed (so
 * output read through a pipe arrives whole), even if a command left a timer or connection open.
 */
export async function run(argv: string[]): Promise<never> {
  ignoreClosedPipes();
  let code: number;
  try {
    code = await main(argv);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    code = EXIT_BUG;
  }
  return exitWhenFlushed(code);
}
