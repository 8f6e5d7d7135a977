#!/usr/bin/env bash
# Installs what tasuki needs on a fresh Debian machine.
#
# scripts/setup.sh (npm run setup): redis-server (Debian package) and the npm packages (npm ci),
# then builds dist/. Enough for `npm run dev`.
#
# scripts/setup.sh --postgres (npm run setup:postgres, which `npm test` runs first as its pretest):
# the PostgreSQL server binaries (initdb, postgres) for the tests of fenced locks and the Postgres
# stores, unless DATABASE_URL is set; the MariaDB server binaries (mariadb-install-db, mariadbd)
# for the MySQL/MariaDB tests (fenced rows, deadlock retry, sequences), unless MYSQL_URL is set;
# rabbitmq-server for the RabbitMQ broker's tests (a throw-away node per test file); and
# Debian's chromium for the dashboard's browser tests (driven by playwright-core, which downloads no
# browser), unless CHROMIUM_PATH is set. Nothing else.
#
# scripts/setup.sh --browser: chromium only.
#
# Debian packages come from apt-get when we are root; otherwise the script says what to install
# and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=app
case "${1:-}" in
  '') ;;
  --postgres) mode=postgres ;;
  --browser) mode=browser ;;
  *)
    echo "usage: scripts/setup.sh [--postgres | --browser]" >&2
    exit 2
    ;;
esac

apt_updated=
# apt_install PACKAGE WHAT: installs a Debian package as root, or explains and exits.
apt_install() {
  local package=$1 what=$2 hint=$3
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: $what not found; installing the Debian package $package" >&2
    if [ -z "$apt_updated" ]; then
      apt-get update -qq
      apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
  else
    echo "setup: $what is not installed. Install it with 'sudo apt-get install $package'" >&2
    echo "       ($hint), then run this again." >&2
    exit 1
  fi
}

# install_chromium: Debian's chromium for the browser tests. When it cannot be installed (not root,
# no apt-get, no network) the browser tests skip and say so; nothing else depends on it.
install_chromium() {
  if [ -n "${CHROMIUM_PATH:-}" ] || command -v chromium >/dev/null 2>&1 ||
    command -v chromium-browser >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: chromium not found; installing the Debian package chromium (browser tests)" >&2
    if [ -z "$apt_updated" ]; then
      apt-get update -qq || true
      apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null ||
      echo "setup: could not install chromium; the dashboard's browser tests will skip" >&2
  else
    echo "setup: chromium is not installed; the dashboard's browser tests will skip" >&2
    echo "       (install it with 'sudo apt-get install chromium', or set CHROMIUM_PATH)" >&2
  fi
}

if [ "$mode" = browser ]; then
  install_chromium
  exit 0
fi

if [ "$mode" = postgres ]; then
  install_chromium
  # Tests start a throw-away cluster on a free port (src/testing/postgres.ts), or use DATABASE_URL.
  # The package may also start a system cluster on 5432; tasuki's tests never use it.
  if [ -z "${DATABASE_URL:-}" ] && ! command -v initdb >/dev/null 2>&1 &&
    ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt_install postgresql 'PostgreSQL (initdb)' 'or set DATABASE_URL to a database the tests may use'
  fi
  # Tests start a throw-away MariaDB in a temp dir on a free port (src/testing/mariadb.ts), or use
  # MYSQL_URL. The package may also start a system server on 3306; tasuki's tests never use it.
  if [ -z "${MYSQL_URL:-}" ] && ! command -v mariadbd >/dev/null 2>&1 && ! command -v mysqld >/dev/null 2>&1 &&
    ! [ -x /usr/sbin/mariadbd ] && ! [ -x /usr/sbin/mysqld ]; then
    apt_install mariadb-server 'MariaDB (mariadbd)' 'or set MYSQL_URL to a database server the tests may use'
  fi
  # The RabbitMQ broker's tests start a throw-away node in a temp dir with its own ports and epmd
  # (src/testing/rabbitmq.ts). The package may also start a system node on 5672; tasuki's tests
  # never use it.
  if ! command -v rabbitmq-server >/dev/null 2>&1 && ! [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] &&
    ! [ -x /usr/sbin/rabbitmq-server ]; then
    apt_install rabbitmq-server 'RabbitMQ (rabbitmq-server)' 'the RabbitMQ broker tests need it'
  fi
  exit 0
fi

if ! command -v redis-server >/dev/null 2>&1; then
  # The package may start a system service on 6379; tasuki never uses it.
  apt_install redis-server redis-server 'or set REDIS_URL to a Redis you already run'
fi

# The cluster tests join nodes with redis-cli (Debian's redis-tools, which redis-server brings along)
# and make TLS certificates with openssl: installed when we can, else only said.
for tool in redis-cli:redis-tools openssl:openssl; do
  if ! command -v "${tool%%:*}" >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
      apt_install "${tool#*:}" "${tool%%:*}" 'needed by the cluster tests'
    else
      echo "setup: ${tool%%:*} is not installed; the cluster tests need it ('sudo apt-get install ${tool#*:}')" >&2
    fi
  fi
done

# The lock file holds every platform's optional packages, so `npm ci` takes it as it is.
npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
