#!/bin/sh
# A Celery worker for some kinds of work (config/queues.py): deploy/worker.sh sending
#   deploy/worker.sh default,reports     WORKER_CONCURRENCY=4 deploy/worker.sh models
# Run from the code's directory, with the deployment's environment (deploy/env.example).
set -eu
kinds=${1:-default,sending,models,reports}
py=${PYTHON:-.venv/bin/python}
queues=$("$py" -m config.queues "$kinds")
exec "$py" -m celery -A config worker -Q "$queues" -n "$(echo "$kinds" | tr , -)@$(hostname)" \
  --concurrency="${WORKER_CONCURRENCY:-2}" --loglevel="${LOG_LEVEL:-INFO}"
