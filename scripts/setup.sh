#!/usr/bin/env bash
# Create .venv with the pinned Python dependencies and build the pinned tools.
# Idempotent: the venv is rebuilt only when pyproject.toml changes; tools only when missing
# or reporting another version.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
stamp=.venv/.pyproject.sha256
want=$(sha256sum pyproject.toml | cut -d' ' -f1)

if [[ ! -x .venv/bin/python ]]; then
  echo "[setup] creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "[setup] installing the pinned Python dependencies"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
  echo "$want" > "$stamp"
fi
exec .venv/bin/python -m lastack tools --quiet
