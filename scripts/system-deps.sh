#!/bin/bash
# The Debian packages make check needs, in one list: make check runs this first.
# As root, installs the missing ones (apt-get); otherwise prints the exact command
# to run and fails, so that a fresh machine needs nothing typed before make check.
#
#   scripts/system-deps.sh          # install what is missing (root), or say what
#   scripts/system-deps.sh --list   # the list, one package a line
set -euo pipefail

packages=(
  # the private PostgreSQL clusters (scripts/pg.sh) and psql; runuser (util-linux) runs
  # them as the postgres account when make check runs as root
  postgresql postgresql-client util-linux
  # the venv, and the Python mod_wsgi is built for
  python3 python3-venv
  # make deploy and the end-to-end checks: rsync, Apache httpd + mod_wsgi (Debian's)
  rsync apache2 libapache2-mod-wsgi-py3
  # the logs' rotation (rotatelogs)
  apache2-utils
  # test-apache: the TLS template checked with a throw-away certificate
  openssl
  # the load balancer, connection pooler, shared cache, metrics, browser and backup checks
  haproxy pgbouncer redis-server prometheus chromium chromium-driver pgbackrest
  # make test-ha: the failover engine and its consensus store
  patroni etcd-server etcd-client
  # make bench's load generator
  wrk
)

if [ "${1:-}" = --list ]; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi

if ! command -v dpkg-query >/dev/null; then
  echo "system-deps: not a Debian system: install the equivalents of ${packages[*]}" >&2
  exit 0
fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${db:Status-Abbrev}' "$package" 2>/dev/null | grep -q '^ii' || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

command=(apt-get install -y "${missing[@]}")
if [ "$(id -u)" != 0 ]; then
  echo "system-deps: missing Debian packages; as root, run:" >&2
  echo "  apt-get update && ${command[*]}" >&2
  exit 1
fi
echo "system-deps: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${command[@]}" -qq >/dev/null
