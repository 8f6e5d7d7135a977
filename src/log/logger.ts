import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';
import { TasukiError } from '../errors.js';

export type { Logger } from 'pino';

/** The levels `TASUKI_LOG_LEVEL` (or `createLogger({ level })`) may name, most severe first. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * JSON lines on stdout (what CloudWatch Logs and other collectors ingest); human-readable through
 * pino-pretty when stdout is a TTY and pino-pretty is installed (an optional peer dependency: without
 * it the output stays JSON lines). `TASUKI_LOG_LEVEL` sets the level (default `info`); a name that is
 * not a level throws a {@link TasukiError} `E_CONFIG` listing the valid ones.
 */
export function createLogger(options: { level?: string; pretty?: boolean; name?: string } = {}): Logger {
  const level = checkLevel(options.level, process.env.TASUKI_LOG_LEVEL);
  const pretty = (options.pretty ?? process.stdout.isTTY === true) ? prettyTarget() : undefined;
  return pino({
    name: options.name ?? 'tasuki',
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(pretty
      ? { transport: { target: pretty, options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } }
      : {}),
  });
}

/** A logger that writes nothing (for tests and benchmarks). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

function checkLevel(option: string | undefined, env: string | undefined): string {
  // An empty TASUKI_LOG_LEVEL (`TASUKI_LOG_LEVEL= cmd`) means "not set".
  const fromEnv = option === undefined && env !== undefined && env.trim() !== '';
  const given = option ?? (fromEnv ? env : undefined);
  if (given === undefined) return 'info';
  const level = given.trim().toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(level)) return level;
  const shown = given.length > 80 ? `${JSON.stringify(given.slice(0, 80))}…` : JSON.stringify(given);
  throw new TasukiError(
    'E_CONFIG',
    `${fromEnv ? 'TASUKI_LOG_LEVEL' : 'createLogger({ level })'} is ${shown}, which is not a log level: ` +
      `use one of ${LOG_LEVELS.join(', ')}${fromEnv ? ' (or unset it for info)' : ''}.`,
  );
}

/** Absolute path of pino-pretty when it can be loaded from here, else undefined (plain JSON lines). */
function prettyTarget(): string | undefined {
  try {
    return createRequire(import.meta.url).resolve('pino-pretty');
  } catch {
    return undefined;
  }
}
