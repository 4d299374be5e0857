#!/usr/bin/env bash
# The test command: set up, lint, type-check, then every test tier this machine can run.
#   bash scripts/test.sh              unit + host + engine tiers (what CI runs; needs root)
#   bash scripts/test.sh -m 'not host and not engine'   any pytest arguments replace the tier choice
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check src tests deploys inventories benchmarks
.venv/bin/ruff format --check src tests deploys inventories benchmarks
.venv/bin/mypy
if [ "$#" -eq 0 ]; then
  set -- -m "not gpu" --durations=30
fi
exec .venv/bin/pytest "$@"
