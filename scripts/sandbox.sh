#!/usr/bin/env bash
# The main job on the embedded default: boot a local sandbox host (a real Debian 12 with systemd,
# reached over SSH), deploy llama.cpp serving SmolLM2-135M on it, verify it, and show the smoke and
# throughput results. `--keep` leaves the sandbox running for `llmprov sandbox down` later.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
keep=0; [ "${1:-}" = "--keep" ] && keep=1
.venv/bin/llmprov sandbox up
if [ "$keep" = 0 ]; then trap '.venv/bin/llmprov sandbox down' EXIT; fi
.venv/bin/llmprov deploy inventories/sandbox.py -y
.venv/bin/llmprov verify inventories/sandbox.py
