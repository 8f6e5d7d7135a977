/** Quoting bad input in error messages: a bounded prefix, never the whole value. */

/** Longest part of a bad value quoted in an error message. */
const QUOTE_MAX = 80;

/**
 * A value as it should appear in an error message: JSON where possible, cut to a bounded prefix, so
 * a 20 KB bad input gives a short message (and never a 25 KB one).
 */
export function quote(value: unknown, max = QUOTE_MAX): string {
  let text: string;
  if (typeof value === 'string') text = JSON.stringify(value);
  else if (typeof value === 'bigint') text = `${value}n`;
  else if (typeof value === 'number')
    text = String(value); // NaN and Infinity too, which JSON spells null
  else if (typeof value === 'function') text = 'a function';
  else if (value === undefined) text = 'undefined';
  else {
    try {
      text = JSON.stringify(value) ?? (typeof value === 'symbol' ? value.toString() : 'undefined');
    } catch {
      text = Object.prototype.toString.call(value);
    }
  }
  if (text.length <= max) return text;
  return `${text.slice(0, max)}… (${text.length} characters)`;
}
