"""Real nvidia-smi through the parser and the resolver, on a host with an NVIDIA GPU."""

# Run with `pytest -m gpu tests/test_gpu_real.py`; skipped where nvidia-smi is absent.

from __future__ import annotations

import importlib.util
import platform
import shutil
import subprocess
from pathlib import Path

import pytest

from llmprov.core.gpu import (
    SMI_FALLBACK_FIELDS,
    ComputeCapUnsupported,
    GpuInfo,
    detect_driver_version,
    lowest_compute_capability,
    nvidia_smi_query_argv,
    parse_nvidia_smi_csv,
)
from llmprov.core.resolve import NoCompatibleBuild, resolve

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(shutil.which("nvidia-smi") is None, reason="nvidia-smi is not installed"),
]


def _query(fields: tuple[str, ...] | None = None) -> list[str]:
    argv = nvidia_smi_query_argv() if fields is None else nvidia_smi_query_argv(fields)
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    return (done.stdout + done.stderr).splitlines()


def _gpus() -> list[GpuInfo]:
    try:
        return parse_nvidia_smi_csv(_query())
    except ComputeCapUnsupported:
        return parse_nvidia_smi_csv(_query(SMI_FALLBACK_FIELDS))


def _read(path: str) -> str | None:
    file = Path(path)
    return file.read_text() if file.is_file() else None


def test_real_nvidia_smi_parses_and_agrees_with_proc() -> None:
    gpus = _gpus()
    assert gpus, "nvidia-smi is installed but reported no GPU"
    for gpu in gpus:
        assert gpu.name and gpu.driver_version is not None
    detected = detect_driver_version(
        sys_module=_read("/sys/module/nvidia/version"),
        proc_version=_read("/proc/driver/nvidia/version"),
        nvidia_smi=_query(("driver_version",)),
    )
    assert detected is not None
    assert detected.version == gpus[0].driver_version, detected


def test_real_host_resolves_and_torch_matches_the_cuda_family() -> None:
    gpus = _gpus()
    try:
        resolution = resolve(
            driver=gpus[0].driver_version,
            compute_capability=lowest_compute_capability(gpus),
            os="linux",
            arch=platform.machine(),
            requested_vllm=None,
            cpu=False,
        )
    except NoCompatibleBuild as exc:
        pytest.fail(f"a host with a working GPU got no build: {exc}")
    assert resolution.cuda is not None
    print(f"\n{gpus[0].name}: {resolution.as_dict()}")
    if importlib.util.find_spec("torch") is None:
        return
    import torch

    if torch.version.cuda is None:
        # A GPU host whose torch is a CPU build is a broken setup, not a reason to skip.
        pytest.fail("nvidia-smi sees a GPU but the installed torch is a CPU build")
    installed_major = torch.version.cuda.split(".")[0]
    assert installed_major == resolution.cuda.split(".")[0], (
        f"installed torch is CUDA {torch.version.cuda}, the matrix chose {resolution.cuda}: "
        "a vLLM wheel of the chosen family would not load next to it"
    )
