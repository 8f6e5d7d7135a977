import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * JSON lines on stdout (what CloudWatch Logs and other collectors ingest); human-readable through
 * pino-pretty when stdout is a TTY. `TASUKI_LOG_LEVEL` sets the level (default `info`).
 */
export function createLogger(options: { level?: string; pretty?: boolean; name?: string } = {}): Logger {
  const level = options.level ?? process.env.TASUKI_LOG_LEVEL ?? 'info';
  const pretty = options.pretty ?? process.stdout.isTTY === true;
  return pino({
    name: options.name ?? 'tasuki',
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(pretty
      ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } }
      : {}),
  });
}

/** A logger that writes nothing (for tests and benchmarks). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
