#!/usr/bin/env bash
# The main job on the embedded default: boot a local sandbox host (a real Debian 12 with systemd,
# reached over SSH), deploy llama.cpp serving SmolLM2-135M on it, verify it, and show the smoke and
# throughput results. `--keep` leaves the sandbox running for `llmprov sandbox down` later;
# `--advise` runs `llmprov advise` (llama.cpp against vLLM on the CPU) on a sandbox host instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "${1:-}" = "--advise" ]; then
  # Variant: `llmprov advise` measures llama.cpp and vLLM (CPU) in turn on one sandbox host of
  # its own and recommends one; the report (JSON, Markdown, HTML) lands in ./advise-sandbox/.
  export LLMPROV_ADVISE_OUT="$PWD/advise-sandbox"
  exec .venv/bin/python -m pytest -m "host and engine" -p no:cacheprovider -s -q \
    tests/host/test_advise_host.py
fi
keep=0; [ "${1:-}" = "--keep" ] && keep=1
.venv/bin/llmprov sandbox up
if [ "$keep" = 0 ]; then trap '.venv/bin/llmprov sandbox down' EXIT; fi
.venv/bin/llmprov deploy inventories/sandbox.py -y
.venv/bin/llmprov verify inventories/sandbox.py
