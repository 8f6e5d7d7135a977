/** How CLI commands print things for people (`--json` prints the library's objects instead). */
import type { DeadLetter } from '../index.js';

/** Columns padded to their widest cell; numbers right-aligned. */
export function table(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cells = [headers, ...rows].map((r) => r.map(String));
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'));
  return cells
    .map((r) =>
      r
        .map((c, i) => (numeric[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** A time in ms as ISO 8601 (UTC); `-` when unknown. */
export function isoTime(ms: number | undefined): string {
  return ms ? new Date(ms).toISOString() : '-';
}

/** One dead letter on one line (`dlq list`). */
export function deadLetterLine(d: DeadLetter): string {
  const message = d.error.message.split('\n')[0] ?? '';
  return `${d.taskId}  ${d.task}  ${d.reason}  attempts=${d.attempts}  ${isoTime(d.failedAt)}  ${d.error.name}: ${message}`;
}

/** One dead letter in full (`dlq show`): ISO times, and the stack with its real line breaks. */
export function deadLetterDetails(d: DeadLetter): string {
  // Values line up after the label; a value's further lines are indented as far.
  const field = (name: string, value: string | number): string =>
    `${`${name}:`.padEnd(11)}${String(value).replace(/\n/g, `\n${' '.repeat(11)}`)}`;
  const out = [
    field('task id', d.taskId),
    field('dead id', d.deadId),
    field('task', d.task),
    field('queue', d.queue),
    field('reason', d.reason),
    field('attempts', d.attempts),
    field('failed at', isoTime(d.failedAt)),
    field('error', `${d.error.name}: ${d.error.message}`),
  ];
  if (d.error.code) out.push(field('code', d.error.code));
  if (d.error.stack) {
    out.push('stack:');
    for (const line of d.error.stack.split('\n')) out.push(`  ${line}`);
  }
  out.push(field('message', d.message));
  return out.join('\n');
}
