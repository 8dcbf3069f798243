#!/usr/bin/env bash
# Creates .venv and installs the pinned requirements when they changed. Sourced by run/test.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "offerlab needs Python 3.11 or newer (found: $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing requirements"
  # (grep drops the "Location ... is ignored" noise some pip configurations print)
  .venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | { grep -v "WARNING: Location" || true; }
  .venv/bin/python -m pip install --quiet -r requirements.txt 2>&1 | { grep -v "WARNING: Location" || true; }
  echo "$want" > "$stamp"
fi
