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
#    never changed afterwards: edit it on the server.
# 3. the virtual environment venv/, built with DEPLOY_PYTHON (the Python of mod_wsgi,
#    /usr/bin/python3 on Debian) and refreshed from requirements.txt.
# 4. with DB_INIT=1 only: drop, create and seed the database of kiva.env's KIVA_DB,
#    with psql in one transaction (run on the target host). Never by default.
# 5. touch kiva.wsgi: mod_wsgi reloads the daemon processes at the next request.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${DEPLOY_TARGET:?DEPLOY_TARGET: a folder or user@host:folder}
python=${DEPLOY_PYTHON:-/usr/bin/python3}
ssh=${DEPLOY_SSH:-ssh}
db_init_files=${DB_INIT_FILES:-drop.sql create.sql data.sql}

# what production needs: every top-level module, the SQL of PostgreSQL, the configurations
files=(kiva.wsgi server.conf pg.conf app.conf requirements.txt queries.sql $db_init_files truncate.sql)

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
if [ -n "${APP_THROTTLE_SECONDS:-}" ]; then  # make check's deployment: a short throttling window
  on_target "grep -q '^APP_THROTTLE_SECONDS=' kiva.env || echo APP_THROTTLE_SECONDS=$(q "$APP_THROTTLE_SECONDS") >> kiva.env"
fi

echo "deploy: virtual environment venv with $python"
on_target "set -e
  want=\$($python -c 'import sys; print(sys.version_info[:2])')
  have=\$(venv/bin/python -c 'import sys; print(sys.version_info[:2])' 2>/dev/null || true)
  [ \"\$want\" = \"\$have\" ] || { rm -rf venv; $python -m venv venv; }
  venv/bin/pip install -q --disable-pip-version-check -r requirements.txt"

if [ "${DB_INIT:-0}" = 1 ]; then
  echo "deploy: database initialisation with $db_init_files"
  psql_files=""
  for f in $db_init_files; do psql_files+=" -f $f"; done
  on_target "psql -X -q -1 -v ON_ERROR_STOP=1 $psql_files \"\$(sed -n 's/^KIVA_DB=//p' kiva.env)\""
fi

on_target "touch kiva.wsgi"
echo "deploy: done, $target"
