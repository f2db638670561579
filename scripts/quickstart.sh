#!/usr/bin/env bash
# Install, then run the quickstart cascade (sft -> math GRPO -> code GRPO -> MOPD) on the CPU and
# print its report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${CASCADE_VENV:-.venv}"
RUN_DIR="${RUN_DIR:-runs/quickstart}"
"$VENV/bin/cascade" run configs/quickstart.yaml --run-dir "$RUN_DIR"
"$VENV/bin/cascade" report "$RUN_DIR"
