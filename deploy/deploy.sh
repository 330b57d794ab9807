#!/bin/bash
# Copy Kiva to its production folder and bring it up to date: `make deploy` runs it.
#
#   DEPLOY_TARGET=/srv/kiva/app deploy/deploy.sh        # a local folder
#   DEPLOY_TARGET=kiva@server:app deploy/deploy.sh      # a folder over SSH
#
# 1. rsync of exactly the files production needs (the app's modules and SQL, the
#    configurations, kiva.wsgi, requirements.txt): no tests, no databases, no venv;
#    files removed from the project are removed there too, nothing else is.
# 2. kiva.env, the deployed app's environment (KIVA_DB, APP_SECRET), is created when
#    missing (mode 600) from KIVA_DB and APP_SECRET (default: a random secret), and
#    never changed afterwards: edit it on the server. kiva-owner.env (mode 600, never
#    read by the app) holds KIVA_OWNER_DB, the schema owner's connection string, from
#    KIVA_OWNER_DB (default: KIVA_DB): only schema changes use it.
# 3. the virtual environment venv/, built with DEPLOY_PYTHON (the Python of mod_wsgi,
#    /usr/bin/python3 on Debian) and refreshed from requirements.txt.
# 4. with DB_INIT=1 only: drop and create the tables, as the owner, with psql in one
#    transaction (run on the target host): no user at all (create the first admin
#    with scripts/pass2csv.py and users-load.sql). DB_INIT=demo: the same, then the
#    course's demo data (data.sql: users with public passwords). Never by default.
# 5. touch kiva.wsgi: mod_wsgi reloads the daemon processes at the next request.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${DEPLOY_TARGET:?DEPLOY_TARGET: a folder or user@host:folder}
python=${DEPLOY_PYTHON:-/usr/bin/python3}
ssh=${DEPLOY_SSH:-ssh}
case "${DB_INIT:-0}" in
  0) db_init_files="" ;;
  1) db_init_files="drop.sql create.sql" ;;
  demo) db_init_files="drop.sql create.sql data.sql" ;;
  *) echo "DB_INIT=$DB_INIT: 1 (empty schema) or demo (with the demo users)" >&2; exit 2 ;;
esac

# what production needs: every top-level module, the SQL of PostgreSQL, the configurations
files=(kiva.wsgi server.conf pg.conf app.conf requirements.txt queries.sql drop.sql create.sql data.sql truncate.sql)

if [[ $target == *:* ]]; then
  host=${target%%:*} dir=${target#*:}
  on_target() { "$ssh" "$host" "cd $(printf %q "$dir") && $1"; }
  "$ssh" "$host" "mkdir -p $(printf %q "$dir")"
else
  dir=$target
  on_target() { (cd "$dir" && bash -c "$1"); }
  mkdir -p "$dir"
fi

echo "deploy: files to $target"
# each file by name at the top of the target, nothing else is sent nor deleted:
# --delete only removes there what matches these names and is gone here
filters=()
for f in "${files[@]}"; do filters+=(--include="/${f#./}"); done
rsync -rlt --chmod=D755,F644 --delete -e "$ssh" "${filters[@]}" --include='/*.py' --exclude='*' ./ "$target/"

q() { printf %q "$1"; }
echo "deploy: environment kiva.env"
on_target "[ -e kiva.env ] || (umask 077 && printf 'KIVA_DB=%s\nAPP_SECRET=%s\n' $(q "${KIVA_DB:?KIVA_DB: the libpq connection string of the production database}") $(q "${APP_SECRET:-$(head -c 30 /dev/urandom | base64 | tr -d '/+=')}") > kiva.env)"
on_target "[ -e kiva-owner.env ] || (umask 077 && printf 'KIVA_OWNER_DB=%s\n' $(q "${KIVA_OWNER_DB:-$KIVA_DB}") > kiva-owner.env)"
# make check's deployment: a short throttling window, a trusted proxy for the tests' addresses
for var in APP_THROTTLE_SECONDS APP_TRUSTED_PROXIES APP_THROTTLE_ADDRESS_FAILURES; do
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

if [ -n "$db_init_files" ]; then
  echo "deploy: database initialisation with $db_init_files, as the schema owner"
  psql_files=""
  for f in $db_init_files; do psql_files+=" -f $f"; done
  on_target "psql -X -q -1 -v ON_ERROR_STOP=1 $psql_files \"\$(sed -n 's/^KIVA_OWNER_DB=//p' kiva-owner.env)\""
fi

on_target "touch kiva.wsgi"
echo "deploy: done, $target"
