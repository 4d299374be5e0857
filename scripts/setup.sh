#!/usr/bin/env bash
# Set up this checkout on a fresh Debian 12 machine: system packages, a virtual environment, llmprov.
# Idempotent: a second run installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."

# cmake, ninja-build and build-essential build llama-quantize locally when no cached build fits.
# chromium renders the advise report in its browser test (tests/test_advise_browser.py).
DEBIAN_PACKAGES=(debootstrap systemd-container iptables systemd openssh-client iproute2 curl vagrant
  cmake ninja-build build-essential zstd chromium)
missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.llmprov-installed
pip_install() {
  local log
  log=$(mktemp)
  if ! .venv/bin/python -m pip install -q "$@" >"$log" 2>&1; then
    grep -v "^WARNING: Location" "$log" >&2 || true
    rm -f "$log"
    echo "setup: pip install $* failed" >&2
    exit 1
  fi
  rm -f "$log"
}
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  pip_install --upgrade pip
  # torch 2.13.0 (CPU) for `models convert` comes from this machine's local wheels (pip's find-links).
  pip_install -e '.[test,convert,chart,verify,hf]'
  .venv/bin/python -c "import llmprov, pyinfra, testinfra, torch, transformers"
  touch "$stamp"
fi
echo "setup: ready (.venv/bin/llmprov)"
