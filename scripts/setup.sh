#!/usr/bin/env bash
# Create (or reuse) the project venv and install cascade-plugins with the embedded host and dev tools.
# torch is pinned here only: the package itself accepts the torch NeMo RL brings.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${CASCADE_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "torch==2.13.0"
"$VENV/bin/python" -m pip install --quiet -e ".[local,dev]"
echo "cascade-plugins installed in $VENV" >&2
