#!/usr/bin/env bash
# The main job: install, migrate, load demo data, create an admin login, then run the web
# server, a Celery worker and beat until Ctrl-C, which stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p var
# A secret key of this machine's own, made once and kept in var/ (never committed).
if [ -z "${SECRET_KEY:-}" ]; then
  [ -s var/secret_key ] || .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(50))' > var/secret_key
  export SECRET_KEY=$(cat var/secret_key)
fi
export DEBUG=${DEBUG:-false}
export ALLOWED_HOSTS=${ALLOWED_HOSTS:-127.0.0.1,localhost}
PORT=${PORT:-8000}
export SITE_URL=${SITE_URL:-http://127.0.0.1:$PORT}
PY=.venv/bin/python

$PY manage.py migrate --no-input -v0
$PY manage.py collectstatic --no-input -v0
$PY manage.py load_demo --if-empty --customers "${DEMO_CUSTOMERS:-20000}"
$PY manage.py ensure_admin

pids=()
stopping=
stop() {
  stopping=1
  trap - INT TERM EXIT
  echo; echo "==> stopping the web server, worker and beat"
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  echo "==> stopped"
}
trap stop INT TERM EXIT
$PY -m celery -A config worker --loglevel=INFO --concurrency=2 --without-gossip --without-mingle > var/worker.log 2>&1 &
pids+=($!)
$PY -m celery -A config beat --loglevel=INFO --pidfile= --schedule=var/celerybeat-schedule > var/beat.log 2>&1 &
pids+=($!)
# gunicorn, as in production: a request past WEB_TIMEOUT seconds loses its worker rather
# than holding it forever.
.venv/bin/gunicorn config.wsgi --bind "127.0.0.1:$PORT" --workers "${WEB_WORKERS:-3}" \
  --timeout "${WEB_TIMEOUT:-30}" --access-logfile - > var/web.log 2>&1 &
pids+=($!)
echo "==> offerlab is running at http://127.0.0.1:$PORT/  (worker, beat and web logs in var/; Ctrl-C stops)"
wait -n "${pids[@]}" || true
# Reached on Ctrl-C too (the trap has run by then): only an unasked-for exit is news.
if [ -z "$stopping" ]; then
  echo "==> one of the processes stopped by itself; its log says why: var/web.log, var/worker.log, var/beat.log" >&2
  exit 1
fi
