#!/usr/bin/env bash
# The whole test suite. DATABASE_URL and CELERY_BROKER_URL choose PostgreSQL and Redis;
# unset, it runs on SQLite and the embedded broker. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export SECRET_KEY=${SECRET_KEY:-test-only-secret-key}
exec .venv/bin/python -m pytest "$@"
