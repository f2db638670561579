#!/usr/bin/env bash
# Install everything the tests need, then lint and run the whole suite (unit + integration, which
# skips with a reason when no NeMo RL checkout is configured).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${CASCADE_VENV:-.venv}"
"$VENV/bin/ruff" check .
"$VENV/bin/python" -m pytest "$@"
