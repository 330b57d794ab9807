#!/bin/bash
# Copy Kiva to its production folder and bring it up to date: `make deploy` runs it.
#
#   DEPLOY_TARGET=/srv/kiva/app deploy/deploy.sh        # a local folder
#   DEPLOY_TARGET=kiva@server:app deploy/deploy.sh      # a folder over SSH
#
# 1. rsync of the schema's files first (production/migrate.py, migrations/, drop.sql, data.sql,
#    requirements.txt): the running code uses none of them.
# 2. kiva.env, the deployed app's environment (KIVA_DB, APP_SECRET), is created when
#    missing (mode 600) from KIVA_DB and APP_SECRET (default: a random secret), and
#    never changed afterwards: edit it on the server. kiva-owner.env (mode 600, never
#    read by the app) holds KIVA_OWNER_DB, the schema owner's connection string, from
#    KIVA_OWNER_DB (default: KIVA_DB): only schema changes use it.
# 3. the virtual environment venv/, built with DEPLOY_PYTHON (the Python of mod_wsgi,
#    /usr/bin/python3 on Debian) and refreshed from requirements.txt.
# 4. the database, on the target host, with the schema owner's connection string
#    (kiva-owner.env's KIVA_OWNER_DB): the pending migrations are applied
#    (production/migrate.py, one transaction each), and the deployment stops here, the running
#    code untouched, unless the database reached the version the new code expects.
#    DB_INIT=1 first drops everything (the only way to drop): a new schema, no user;
#    DB_INIT=demo also loads data.sql's demo users. Never by default.
# 5. rsync of exactly the files production needs (the app's modules and SQL, the
#    configurations, kiva.wsgi): no tests, no databases, no venv; files removed from
#    the project are removed there too, nothing else is.
# 6. touch kiva.wsgi: mod_wsgi reloads the daemon processes at the next request.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${DEPLOY_TARGET:?DEPLOY_TARGET: a folder or user@host:folder}
python=${DEPLOY_PYTHON:-/usr/bin/python3}
ssh=${DEPLOY_SSH:-ssh}
db_init=${DB_INIT:-0}
case "$db_init" in 0|1|demo) ;; *) echo "DB_INIT=$db_init: 1 (drop, no user) or demo (drop, demo users)" >&2; exit 2 ;; esac

# what the schema needs, sent before the code, and what production needs
schema_files=(production/__init__.py production/migrate.py migrations/ drop.sql data.sql requirements.txt)
files=(kiva.wsgi server.conf pg.conf app.conf queries.sql truncate.sql production/ "${schema_files[@]}")

if [[ $target == *:* ]]; then
  host=${target%%:*} dir=${target#*:}
  on_target() { "$ssh" "$host" "cd $(printf %q "$dir") && $1"; }
  "$ssh" "$host" "mkdir -p $(printf %q "$dir")"
else
  dir=$target
  on_target() { (cd "$dir" && bash -c "$1"); }
  mkdir -p "$dir"
fi

send() {  # FILE…: each file (or folder/) by its path in the project, nothing else is sent
  # nor deleted: --delete only removes there what matches these names and is gone here
  local filters=()
  for f in "$@"; do
    [[ ${f%/} == */* ]] && filters+=(--include="/${f%%/*}/")  # the folder of production/migrate.py
    filters+=(--include="/${f#./}"); [[ $f == */ ]] && filters+=(--include="/${f#./}**")
  done
  rsync -rlt --chmod=D755,F644 --delete -e "$ssh" "${filters[@]}" --exclude='*' ./ "$target/"
}

echo "deploy: the schema's files to $target"
send "${schema_files[@]}"

q() { printf %q "$1"; }
# the command that writes its input to FILE (0600) unless FILE exists; it reads its input
# either way: a writer whose reader quit would die of SIGPIPE (a redeploy failed so, 141)
keep_or_write() { echo "if [ -e $1 ]; then cat >/dev/null; else (umask 077 && cat > $1); fi"; }
echo "deploy: environment kiva.env"
# the secrets go through stdin, never on a command line (ps shows those to every account)
printf 'KIVA_DB=%s\nAPP_SECRET=%s\n' "${KIVA_DB:?KIVA_DB: the libpq connection string of the production database}" \
  "${APP_SECRET:-$(head -c 30 /dev/urandom | base64 | tr -d '/+=')}" |
  on_target "$(keep_or_write kiva.env)"
printf 'KIVA_OWNER_DB=%s\n' "${KIVA_OWNER_DB:-$KIVA_DB}" | on_target "$(keep_or_write kiva-owner.env)"
# make check's deployment: a short throttling window, a trusted proxy for the tests' addresses,
# the hashing limits out of the suite's way
# one server: each process keeps the user rows behind tokens, exact through the host's shared
# generation (production/localcache.py); deploy/cluster.sh and ha.sh take it out (several hosts
# share Redis instead); KIVA_LOCAL_CACHE=0 leaves it off
KIVA_LOCAL_CACHE=${KIVA_LOCAL_CACHE:-1}
for var in KIVA_THROTTLE_SECONDS KIVA_TRUSTED_PROXIES KIVA_THROTTLE_ADDRESS_FAILURES KIVA_HASH_LIMIT KIVA_HASH_SLOTS \
  KIVA_LOCAL_CACHE; do
  if [ -n "${!var:-}" ]; then
    on_target "grep -q '^$var=' kiva.env || echo $var=$(q "${!var}") >> kiva.env"
  fi
done

echo "deploy: virtual environment venv with $python"
on_target "set -e
  want=\$($python -c 'import sys; print(sys.version_info[:2])')
  have=\$(venv/bin/python -c 'import sys; print(sys.version_info[:2])' 2>/dev/null || true)
  [ \"\$want\" = \"\$have\" ] || { rm -rf venv; $python -m venv venv; }
  venv/bin/pip install -q --disable-pip-version-check -r requirements.txt"

# the schema owner's connection (migrations, DB_INIT), else the app's
owner_db='"$(sed -n "s/^KIVA_OWNER_DB=//p" kiva-owner.env 2>/dev/null)"'
# (given to migrate through its environment, never on its command line: CONN "-")
migrate="KIVA_MIGRATE_DB=\"\${owner:-\$(sed -n 's/^KIVA_DB=//p' kiva.env)}\" venv/bin/python -m production.migrate -"
expected=$(on_target "venv/bin/python -m production.migrate expected")
case "$db_init" in
  1) echo "deploy: database dropped and created anew (schema version $expected), no user"
     on_target "owner=$owner_db; $migrate init" >/dev/null ;;
  demo) echo "deploy: database dropped and created anew (schema version $expected), demo users"
     on_target "owner=$owner_db; $migrate init data.sql" >/dev/null ;;
esac
echo "deploy: database migrations"
reached=$(on_target "owner=$owner_db; $migrate upgrade") ||
  { echo "deploy: a migration failed: the database stays at its version, the running code is unchanged" >&2; exit 1; }
if [ "$reached" -lt "$expected" ]; then
  echo "deploy: the database is at schema version $reached, the new code needs $expected: not deployed" >&2
  exit 1
fi
echo "deploy: database at schema version $reached"

echo "deploy: files to $target"
send "${files[@]}" '*.py'
if [ "$db_init" != 0 ]; then
  # the shared cache (KIVA_REDIS in kiva.env, if any) forgets the old database's users
  # (docs/shared-cache.md); not flushed, its entries are trusted 30 s more at most
  # kiva.env is VARIABLE=value lines read literally (kiva.wsgi), not shell: a value holds
  # spaces (KIVA_DB's "host=… dbname=…", "10 per minute"), so each line is exported whole
  on_target "while IFS= read -r line; do case \$line in ''|'#'*) ;; *) export \"\$line\" ;; esac; done < kiva.env
    venv/bin/python -m production.usercache flush" ||
    echo "deploy: WARNING: the shared cache was not flushed" >&2
fi

on_target "touch kiva.wsgi"
echo "deploy: done, $target"
