#!/usr/bin/env bash
# GPU check for a lent machine (NVIDIA GPU, CUDA with nvcc, CMake, its own PyTorch, no internet,
# no vLLM), in under 8 minutes: GPU facts on the real driver, the vLLM resolver for them, the
# environment probe against the machine's own torch, then llama.cpp's llama-server built with
# CUDA for this GPU's architecture only, serving the SmolLM2 GGUF with every layer on the GPU.
#
#   bash scripts/gpu-check.sh prepare      here, with internet: fills .gpucheck/ (in .gitignore)
#   bash scripts/gpu-check.sh run          there: reads .gpucheck/, prints facts and tokens/s
#
# What travels to a lent machine is capped at 64 MiB, and the GGUF alone is 94 MiB, so prepare
# splits it in two parts and the run is two calls on one warm machine (a carried path stays there
# until the machine goes back); each call's load stays near 60 MiB with the 1.5 MiB tree:
#   run(carry=[".gpucheck/src", ".gpucheck/gguf.1"], command="true")                  # 59 MiB
#   run(carry=[".gpucheck/wheels", ".gpucheck/gguf.2"],
#       command="bash scripts/gpu-check.sh run", timeout_s=540)                        # 56 MiB
# Exit status: 0 when every step passed; 1 at the first failing step, named on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

CHECK=.gpucheck
LLAMA_PYPI_VERSION=0.3.36
PORT=18089
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }
fail() { printf 'gpu-check: %s\n' "$1" >&2; exit 1; }

prepare() {
    local py=${PYTHON:-python3}
    mkdir -p "$CHECK/src" "$CHECK/wheels"
    # The pinned llama-cpp-python sdist (sha256 checked by llmprov.cache), its vendored llama.cpp
    # without the model vocabularies, docs and tests a server build does not read: 11 MB.
    local sdist
    sdist=$("$py" - "$LLAMA_PYPI_VERSION" <<'EOF'
import sys
from llmprov.cache import cache_root, fetch_pypi_sdist
from llmprov.core.llamacpp_build import PYPI_SDISTS
version = sys.argv[1]
print(fetch_pypi_sdist("llama-cpp-python", version, f"llama_cpp_python-{version}.tar.gz",
                       PYPI_SDISTS[version][1], cache_root()))
EOF
)
    local tmp
    tmp=$(mktemp -d)
    tar -xzf "$sdist" -C "$tmp"
    tar -C "$tmp/llama_cpp_python-$LLAMA_PYPI_VERSION/vendor" -czf "$CHECK/src/llama.cpp.tar.gz" \
        --exclude=llama.cpp/models --exclude=llama.cpp/docs --exclude=llama.cpp/tests \
        --exclude=llama.cpp/benches --exclude=llama.cpp/media --exclude=llama.cpp/gguf-py llama.cpp
    rm -rf "$tmp"
    # The demo GGUF (pinned by sha256 in llmprov.cache), in two parts under the carry limit.
    local gguf
    gguf=$("$py" -c 'from llmprov.cache import cache_root, demo_model; print(demo_model(cache_root()))')
    rm -f "$CHECK"/gguf.*
    split -b 48M -d -a 1 "$gguf" "$CHECK/gguf.part"
    mkdir -p "$CHECK/gguf.1" "$CHECK/gguf.2"
    mv "$CHECK/gguf.part0" "$CHECK/gguf.1/part0"
    mv "$CHECK/gguf.part1" "$CHECK/gguf.2/part1"
    sha256sum "$gguf" | awk '{print $1}' >"$CHECK/gguf.1/sha256"
    # What llmprov's core needs beyond the standard library, for the machine's python (x86_64).
    local v
    for v in 3.10 3.11 3.12 3.13; do
        "$py" -m pip download --quiet --only-binary=:all: --platform manylinux_2_17_x86_64 \
            --python-version "$v" -d "$CHECK/wheels" packaging pydantic
    done
    du -sh "$CHECK"/*
}

python_deps() {
    # The machine's own python with its own torch; llmprov's core from src/, and packaging and
    # pydantic from the carried wheels when that python lacks them (no internet there).
    PY=${PYTHON:-$(command -v python3 || command -v python)}
    if ! "$PY" -c 'import packaging.version, pydantic' 2>/dev/null; then
        "$PY" -m pip install --quiet --no-index --find-links "$CHECK/wheels" \
            --target "$CHECK/site" packaging pydantic || fail "cannot install the carried wheels"
        export PYTHONPATH="$PYTHONPATH:$PWD/$CHECK/site"
    fi
}

gpu_facts_and_resolution() {
    step "GPU facts on the real driver, and the vLLM matrix's answer for them"
    nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv || true
    "$PY" - >"$CHECK/facts.json" <<'EOF'
import json, platform, subprocess
from pathlib import Path
from llmprov.core.gpu import (SMI_FALLBACK_FIELDS, ComputeCapUnsupported, detect_driver_version,
    lowest_compute_capability, nvidia_smi_query_argv, parse_glibc_version, parse_nvidia_smi_csv)
from llmprov.core.resolve import NoCompatibleBuild, resolve

def smi(fields=None):
    argv = nvidia_smi_query_argv() if fields is None else nvidia_smi_query_argv(fields)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return (done.stdout + done.stderr).splitlines()

def read(path):
    p = Path(path)
    return p.read_text() if p.is_file() else None

try:
    gpus = parse_nvidia_smi_csv(smi())
except ComputeCapUnsupported:
    gpus = parse_nvidia_smi_csv(smi(SMI_FALLBACK_FIELDS))
driver = detect_driver_version(sys_module=read("/sys/module/nvidia/version"),
    proc_version=read("/proc/driver/nvidia/version"), nvidia_smi=smi(("driver_version",)))
glibc_out = subprocess.run(["getconf", "GNU_LIBC_VERSION"], capture_output=True, text=True).stdout
glibc = parse_glibc_version(glibc_out)
cc = lowest_compute_capability(gpus)
out = {"gpus": [g.as_dict() for g in gpus], "driver": None if driver is None else str(driver.version),
       "driver_source": None if driver is None else driver.source, "glibc": glibc,
       "arch": platform.machine(), "compute_capability": None if cc is None else f"{cc[0]}.{cc[1]}"}
try:
    r = resolve(None if driver is None else driver.version, cc, "linux", platform.machine(), None,
                False, glibc)
    out["resolution"] = {"fits": True, **r.as_dict()}
except NoCompatibleBuild as exc:
    out["resolution"] = {"fits": False, "reason": str(exc)}
print(json.dumps(out, indent=1))
EOF
    cat "$CHECK/facts.json"
    "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["gpus"] and d["resolution"]["fits"] else 1)' \
        "$CHECK/facts.json" || fail "no GPU reported, or the matrix has no build for it"
}

env_probe() {
    step "the environment probe against this machine's torch (vLLM is not installed here)"
    "$PY" - "$CHECK/facts.json" <<'EOF'
import json, subprocess, sys
from llmprov.core.resolve import Resolution
from llmprov.core.vllm_env import PROBE_SCRIPT, VllmEnv, check_probe, parse_probe
facts = json.load(open(sys.argv[1]))
fields = {k: v for k, v in facts["resolution"].items() if k != "fits"}
env = VllmEnv(Resolution(**fields), gpu_count=len(facts["gpus"]))
done = subprocess.run([sys.executable, "-c", PROBE_SCRIPT, "vllm"], capture_output=True, text=True,
                      timeout=300)
probe = parse_probe(done.stdout)
print(json.dumps(probe, indent=1))
faults = check_probe(probe, env)
print("faults against the resolved environment (a machine with its own torch and no vLLM "
      "has some by design):")
for fault in faults:
    print("  -", fault)
if probe.get("torch_cuda") is None:
    sys.exit("torch here is a CPU build: a GPU machine must have CUDA torch")
if probe.get("device_count") != env.gpu_count:
    sys.exit(f"torch sees {probe.get('device_count')} GPU(s), nvidia-smi {env.gpu_count}")
print(f"torch {probe.get('torch')} (CUDA {probe['torch_cuda']}) sees {probe['device_count']} GPU(s); "
      f"the matrix would install torch {env.resolution.torch}+{env.resolution.variant}")
EOF
}

build_llama_server() {
    step "build llama-server with CUDA for this GPU only"
    local cc arch work=$CHECK/build
    cc=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["compute_capability"])' "$CHECK/facts.json")
    arch=${cc/./}
    command -v nvcc >/dev/null || fail "nvcc is not on PATH"
    nvcc --version | tail -n 2
    rm -rf "$work"
    mkdir -p "$work"
    tar -xzf "$CHECK/src/llama.cpp.tar.gz" -C "$work"
    local gen=()
    command -v ninja >/dev/null && gen=(-G Ninja)
    cmake -S "$work/llama.cpp" -B "$work/out" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
        -DGGML_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$arch" -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
        -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_USE_PREBUILT_UI=OFF >"$work/configure.log" 2>&1 ||
        { tail -n 30 "$work/configure.log"; fail "cmake configure failed"; }
    timeout 330 cmake --build "$work/out" --target llama-server -j "$(nproc)" >"$work/build.log" 2>&1 ||
        { tail -n 30 "$work/build.log"; fail "llama-server build failed (or ran past 330 s)"; }
    "$work/out/bin/llama-server" --version 2>&1 | head -n 3
}

serve_and_measure() {
    step "serve SmolLM2 with -ngl 99 and measure"
    local gguf=$CHECK/SmolLM2-135M-Instruct.Q4_1.gguf
    [ -f "$CHECK/gguf.2/part1" ] || fail "$CHECK/gguf.2/part1 is missing: carry it (see the header)"
    cat "$CHECK/gguf.1/part0" "$CHECK/gguf.2/part1" >"$gguf"
    [ "$(sha256sum "$gguf" | awk '{print $1}')" = "$(cat "$CHECK/gguf.1/sha256")" ] ||
        fail "the reassembled GGUF does not match its sha256"
    "$CHECK/build/out/bin/llama-server" -m "$gguf" -ngl 99 --host 127.0.0.1 --port "$PORT" \
        -c 2048 >"$CHECK/server.log" 2>&1 &
    local server=$!
    trap 'kill "$server" 2>/dev/null || true' EXIT
    "$PY" - "$PORT" <<'EOF' || { tail -n 40 "$CHECK/server.log"; fail "serving failed"; }
import json, sys, time, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
deadline = time.monotonic() + 120
while True:
    try:
        with urllib.request.urlopen(base + "/health", timeout=5) as r:
            if r.status == 200:
                break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit("llama-server was not healthy within 120 s")
    time.sleep(1)
body = {"prompt": "Write a short story about a lighthouse keeper.", "n_predict": 256,
        "temperature": 0, "ignore_eos": True, "cache_prompt": False}
rates = []
for _ in range(3):
    req = urllib.request.Request(base + "/completion", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        t = json.load(r)["timings"]
    rates.append(t["predicted_per_second"])
    print(f"prompt {t['prompt_per_second']:.0f} tokens/s; generation {t['predicted_n']} tokens "
          f"at {t['predicted_per_second']:.1f} tokens/s")
rates.sort()
print(f"SmolLM2-135M Q4_1, -ngl 99, single stream, median of 3: {rates[1]:.1f} tokens/s")
EOF
    grep -E "offloaded|CUDA0|compute capability" "$CHECK/server.log" | head -n 6 || true
}

case "${1:-}" in
    prepare) prepare ;;
    run)
        python_deps
        gpu_facts_and_resolution
        env_probe
        build_llama_server
        serve_and_measure
        step "done"
        ;;
    *) echo "usage: $0 prepare|run" >&2; exit 2 ;;
esac
