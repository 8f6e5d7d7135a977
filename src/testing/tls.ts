/** Throw-away TLS certificates for test servers: a CA and a server certificate for 127.0.0.1. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TlsFiles } from '../connection/embedded.js';
import { TasukiError } from '../errors.js';

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new TasukiError(
      'E_CONFIG',
      `openssl ${args[0]} failed: ${r.error?.message ?? r.stderr}. Install openssl to make test certificates.`,
    );
  }
}

/**
 * Makes a CA and a server certificate signed by it (for `127.0.0.1` and `localhost`, valid a day)
 * in a new temp dir, with the `openssl` command. Pass the files to `TestRedis`/`TestCluster` as
 * `tls`, and the CA to clients (`redisOptions: { tls: { ca } }`).
 */
export function makeTestCertificates(dir = mkdtempSync(join(tmpdir(), 'tasuki-tls-'))): TlsFiles {
  openssl(
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=tasuki test CA'].concat([
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
    ]),
    dir,
  );
  openssl(
    [
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=127.0.0.1',
      '-keyout',
      'server.key',
      '-out',
      'server.csr',
    ],
    dir,
  );
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '1',
    ].concat(['-extfile', 'san.ext', '-out', 'server.crt']),
    dir,
  );
  return { cert: join(dir, 'server.crt'), key: join(dir, 'server.key'), ca: join(dir, 'ca.crt') };
}
