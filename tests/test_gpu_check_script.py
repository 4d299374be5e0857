"""scripts/gpu-check.sh: shell-checked everywhere; run whole on a host with an NVIDIA GPU (`-m gpu`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gpu-check.sh"


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_the_script_passes_shellcheck() -> None:
    done = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout


def test_the_script_names_its_usage() -> None:
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "usage:" in done.stderr


@pytest.mark.gpu
@pytest.mark.skipif(shutil.which("nvidia-smi") is None, reason="nvidia-smi is not installed")
def test_the_gpu_check_passes_on_this_gpu() -> None:
    if not (REPO / ".gpucheck" / "src" / "llama.cpp.tar.gz").exists():
        pytest.fail("a GPU is here but .gpucheck/ is not: run `bash scripts/gpu-check.sh prepare`")
    done = subprocess.run(
        ["bash", str(SCRIPT), "run"], capture_output=True, text=True, timeout=600, check=False
    )
    print(done.stdout[-4000:])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "tokens/s" in done.stdout
