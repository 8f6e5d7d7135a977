/**
 * Who may use the dashboard, and proof that a mutating request comes from its own page.
 *
 * - Token: when one is set (required off loopback), every request carries it — as
 *   `Authorization: Bearer <token>`, or in the `tasuki_token` cookie the page gets by opening
 *   `/?token=<token>` once (HttpOnly, SameSite=Strict). Anything else is 401.
 * - CSRF: every POST must come from the dashboard's origin (Hono's `csrf` middleware checks Origin
 *   and Sec-Fetch-Site) and carry the `x-tasuki-csrf` header with this server's random CSRF token
 *   (served in the page): a custom header a cross-site form cannot send, and a cross-site script
 *   cannot without a CORS preflight this server never answers.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import { csrf } from 'hono/csrf';
import { TasukiError } from '../errors.js';

export const TOKEN_COOKIE = 'tasuki_token';
export const CSRF_HEADER = 'x-tasuki-csrf';

/** A new random secret (CSRF tokens; generated dashboard tokens). */
export function newSecret(): string {
  return randomBytes(24).toString('base64url');
}

function same(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Requires `token` (when set) on every request; `/?token=` sets the cookie and redirects. Without a
 * token (loopback only) it requires a loopback `Host` header instead: a web page whose own name
 * was pointed at 127.0.0.1 (DNS rebinding) must not read the API.
 */
export function requireToken(token: string | undefined): MiddlewareHandler {
  return async (c, next) => {
    if (token === undefined) {
      // The request URL's host is the Host header's (as @hono/node-server builds it).
      const host = new URL(c.req.url).hostname;
      if (isLoopback(host)) return next();
      return c.json(
        {
          error: {
            code: 'E_AUTH',
            message: `this dashboard has no token, so it answers only requests to a loopback name (Host was ${JSON.stringify(host.slice(0, 100))}); open it as http://127.0.0.1:<port>/ or give it a token`,
          },
        },
        403,
      );
    }
    const bearer = /^Bearer (.+)$/.exec(c.req.header('authorization') ?? '')?.[1];
    if (same(bearer, token) || same(getCookie(c, TOKEN_COOKIE), token)) return next();
    const given = c.req.query('token');
    if (c.req.method === 'GET' && same(given, token)) {
      setCookie(c, TOKEN_COOKIE, token, { httpOnly: true, sameSite: 'Strict', path: '/' });
      const url = new URL(c.req.url);
      url.searchParams.delete('token');
      return c.redirect(url.pathname + url.search);
    }
    return c.json(
      {
        error: {
          code: 'E_AUTH',
          message:
            'this dashboard needs its token: open /?token=<token> once, or send "Authorization: Bearer <token>"',
        },
      },
      401,
    );
  };
}

/** Origin check (Hono) plus the per-server CSRF token in a custom header, on every POST. */
export function requireCsrf(csrfToken: string): MiddlewareHandler[] {
  return [
    csrf(),
    async (c, next) => {
      if (c.req.method !== 'POST') return next();
      if (same(c.req.header(CSRF_HEADER), csrfToken)) return next();
      return c.json(
        {
          error: {
            code: 'E_CSRF',
            message: `a POST must come from the dashboard's page, with its ${CSRF_HEADER} header; reload the page`,
          },
        },
        403,
      );
    },
  ];
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Throws `E_CONFIG` for a binding other machines can reach without a token. */
export function checkBinding(host: string, token: string | undefined): void {
  if (isLoopback(host) || token) return;
  throw new TasukiError(
    'E_CONFIG',
    `the dashboard would listen on ${host}, which other machines can reach, without a token: ` +
      'set --token (or TASUKI_DASHBOARD_TOKEN), or listen on 127.0.0.1 and use an SSH tunnel',
  );
}
