import { createHash } from 'node:crypto';

/** Longest user-supplied key part kept as it is; longer parts are replaced by their hash. */
export const MAX_PART_LENGTH = 64;

const UNSAFE = /[{}:\s]/;

/**
 * Makes a user-supplied value safe to put in a key name: short, plain values are kept; long values
 * or values with `{`, `}`, `:` or whitespace become `#` + 22 chars of their SHA-256. No key name can
 * then carry a payload (the 10 KB keys of the incident) or break a hash tag.
 */
export function keyPart(value: string): string {
  if (value.length > 0 && value.length <= MAX_PART_LENGTH && !UNSAFE.test(value)) return value;
  return '#' + createHash('sha256').update(value).digest('base64url').slice(0, 22);
}
