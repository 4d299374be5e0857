"""Host tests that need a local artifact fail under CI=true when it is missing, and skip elsewhere."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

HERE = Path(__file__).parent


def wheels_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("host_wheels", HERE / "host" / "wheels.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_missing_torch_wheel_fails_under_ci(tmp_path: Path) -> None:
    wheels = wheels_module()
    with pytest.raises(pytest.fail.Exception, match="CI runs this test, it does not skip it"):
        wheels.torch_wheels({"CI": "true", "LLMPROV_TEST_WHEELS": str(tmp_path)})


def test_a_missing_torch_wheel_skips_outside_ci(tmp_path: Path) -> None:
    wheels = wheels_module()
    with pytest.raises(pytest.skip.Exception, match=r"torch-2\.13\.0\+cpu"):
        wheels.torch_wheels({"LLMPROV_TEST_WHEELS": str(tmp_path)})


def test_a_present_torch_wheel_is_served_from_its_folder(tmp_path: Path) -> None:
    (tmp_path / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"")
    assert (
        wheels_module().torch_wheels({"CI": "true", "LLMPROV_TEST_WHEELS": str(tmp_path)})
        == tmp_path
    )
