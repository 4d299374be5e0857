"""On a host with an NVIDIA GPU: the vLLM environment the deploy would build for it, and the probe.

Run with `pytest -m gpu tests/test_vllm_gpu.py`; skipped where nvidia-smi is absent.
"""

from __future__ import annotations

import importlib.util
import platform
import shutil
import subprocess
import sys

import pytest

from llmprov.core.config import MirrorSettings
from llmprov.core.gpu import (
    SMI_FALLBACK_FIELDS,
    ComputeCapUnsupported,
    GpuInfo,
    lowest_compute_capability,
    nvidia_smi_query_argv,
    parse_nvidia_smi_csv,
)
from llmprov.core.resolve import resolve
from llmprov.core.vllm_env import (
    PROBE_SCRIPT,
    VllmEnv,
    check_probe,
    install_torch_argv,
    parse_probe,
)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(shutil.which("nvidia-smi") is None, reason="nvidia-smi is not installed"),
]


def _gpus() -> list[GpuInfo]:
    def query(fields: tuple[str, ...] | None) -> list[str]:
        argv = nvidia_smi_query_argv() if fields is None else nvidia_smi_query_argv(fields)
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
        return (done.stdout + done.stderr).splitlines()

    try:
        return parse_nvidia_smi_csv(query(None))
    except ComputeCapUnsupported:
        return parse_nvidia_smi_csv(query(SMI_FALLBACK_FIELDS))


def _env() -> VllmEnv:
    gpus = _gpus()
    assert gpus and gpus[0].driver_version is not None
    res = resolve(
        gpus[0].driver_version,
        lowest_compute_capability(gpus),
        "linux",
        platform.machine(),
        None,
        cpu=False,
    )
    return VllmEnv(res, gpu_count=len(gpus))


def test_the_environment_for_this_gpu_installs_torch_of_the_resolved_cuda() -> None:
    env = _env()
    assert env.resolution.package == "vllm" and env.resolution.cuda is not None
    argv = install_torch_argv(env, MirrorSettings())
    assert argv[-1] == f"torch=={env.resolution.torch}+{env.resolution.variant}"
    assert f"https://download.pytorch.org/whl/{env.resolution.variant}" in argv
    assert env.path.endswith(f"{env.resolution.vllm}-{env.resolution.variant}")


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="no torch here")
def test_the_probe_counts_every_gpu_through_the_installed_torch() -> None:
    env = _env()
    argv = [sys.executable, "-c", PROBE_SCRIPT, "vllm"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    probe = parse_probe(done.stdout)
    if probe.get("torch_cuda") is None:
        # A GPU host whose torch is a CPU build is a broken setup, not a reason to skip.
        pytest.fail(f"nvidia-smi sees a GPU but the installed torch is a CPU build: {probe}")
    assert probe["device_count"] == env.gpu_count, probe
    faults = check_probe(probe, env)
    assert not any("GPU(s)" in f for f in faults), faults
