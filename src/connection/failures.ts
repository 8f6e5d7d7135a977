/**
 * What kind of failure an ioredis error is. Three kinds matter to callers: Redis is unreachable for
 * now (the connection is down and reconnecting: wait or try again), Redis refused the credentials
 * (retrying does not help), or Redis answered with an error (a refusal such as OOM or WRONGTYPE).
 */

/** Redis replies that mean "busy for now, ask again": loading its data after a restart, a script running... */
const TRANSIENT_REPLY = /^(LOADING|BUSY|TRYAGAIN|MASTERDOWN|CLUSTERDOWN)\b/;

/** Socket errors of a connection that is down. */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * True when `err` says the connection is down rather than that Redis refused something: a command
 * that ran out of reconnect attempts (MaxRetriesPerRequestError), was aborted by a closing
 * connection, or met a socket error; or a reply saying Redis is busy for now (LOADING...).
 */
export function isUnreachable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'MaxRetriesPerRequestError' || err.name === 'AbortError') return true;
  if (err.message === 'Connection is closed.') return true;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && SOCKET_CODES.has(code)) return true;
  return TRANSIENT_REPLY.test(err.message);
}

/** True when Redis refused the credentials: wrong password or user (WRONGPASS), or none given (NOAUTH). */
export function isAuthFailure(err: unknown): boolean {
  return err instanceof Error && /\b(WRONGPASS|NOAUTH)\b|invalid (username-)?password/i.test(err.message);
}

/** True when Redis refused a command because it is at maxmemory (`OOM command not allowed...`), also inside a script or MULTI. */
export function isOomReply(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.message.startsWith('OOM') || /\bOOM command not allowed\b/.test(err.message)) return true;
  return err.cause !== undefined && err.cause !== err && isOomReply(err.cause);
}
