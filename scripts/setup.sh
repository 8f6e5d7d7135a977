#!/usr/bin/env bash
# Installs everything tasuki's dev command and tests need on a fresh Debian machine:
# redis-server (Debian package) and the npm packages, then builds dist/.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: redis-server not found; installing the Debian package redis-server" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    # The package may start a system service on 6379; tasuki never uses it.
  else
    echo "setup: redis-server is not installed. Install it with 'sudo apt-get install redis-server'" >&2
    echo "       (or set REDIS_URL to a Redis you already run), then run this again." >&2
    exit 1
  fi
fi

# PostgreSQL server binaries (initdb, postgres) for the tests of fenced locks and the Postgres stores:
# tests start a throw-away cluster on a free port (src/testing/postgres.ts), or use DATABASE_URL.
if [ -z "${DATABASE_URL:-}" ] && ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: PostgreSQL (initdb) not found; installing the Debian package postgresql" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    # The package may start a system cluster on 5432; tasuki's tests never use it.
  else
    echo "setup: PostgreSQL is not installed. Install it with 'sudo apt-get install postgresql'" >&2
    echo "       (or set DATABASE_URL to a database the tests may use), then run this again." >&2
    exit 1
  fi
fi

if [ -f package-lock.json ]; then
  # npm 11 can refuse its own lock file over optional platform packages (msgpackr-extract for other
  # systems); `npm install` honours the same lock then.
  npm ci --no-audit --no-fund --loglevel=error ||
    { echo "setup: npm ci refused the lock file; installing with npm install" >&2; npm install --no-audit --no-fund --loglevel=error; }
else
  npm install --no-audit --no-fund --loglevel=error
fi
npm run --silent build
