"""`from llmprov.deploys import vllm; vllm.deploy(model=..., port=...)` in a user's pyinfra run."""

from __future__ import annotations

import runpy
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from pyinfra.api.config import Config
from pyinfra.api.connect import connect_all
from pyinfra.api.deploy import add_deploy
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.state import State
from pyinfra.context import ctx_state

from llmprov.core.config import HostConfig
from llmprov.deploy import engines
from llmprov.inventory import load_pyinfra_inventory

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[HostConfig]:
    configs: list[HostConfig] = []
    monkeypatch.setattr(engines, "deploy_host", configs.append)
    return configs


def _run(tmp_path: Path, data: dict[str, object], user_deploy: object) -> State:
    inv = tmp_path / "inv.py"
    inv.write_text(f"hosts = [('@local', {data!r})]\n")
    inventory = load_pyinfra_inventory(inv)
    state = State(check_for_changes=True)
    state.init(inventory, Config())
    state.cwd = str(tmp_path)
    with ctx_state.use(state):
        connect_all(state)
    add_deploy(state, user_deploy)
    return state


@pytest.mark.parametrize("engine", ["vllm", "ollama", "llamacpp"])
def test_importing_outside_a_pyinfra_run_is_fine_and_calling_says_why_not(engine: str) -> None:
    # A fresh interpreter: other tests in this process leave pyinfra's context set.
    code = (
        f"from llmprov.deploys import {engine}\n"
        "from pyinfra.api.exceptions import PyinfraError\n"
        "try:\n"
        f"    {engine}.deploy(port=9000)\n"
        "except PyinfraError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "adds operations to a pyinfra run" in out.stdout, out.stderr


def test_keyword_settings_win_over_host_data_and_are_validated(
    tmp_path: Path, seen: list[HostConfig]
) -> None:
    from llmprov.deploys import vllm

    def user_deploy() -> None:
        vllm.deploy(model="hf://HuggingFaceTB/SmolLM2-135M-Instruct@main", port=8123)

    _run(tmp_path, {"engine": "ollama", "port": 1234}, user_deploy)
    assert len(seen) == 1
    cfg = seen[0]
    assert (cfg.engine, cfg.port, cfg.model_ref.raw) == (
        "vllm",
        8123,
        "hf://HuggingFaceTB/SmolLM2-135M-Instruct@main",
    )


def test_a_bad_setting_names_host_and_field(tmp_path: Path, seen: list[HostConfig]) -> None:
    from llmprov.deploys import llamacpp

    errors: list[str] = []

    def user_deploy() -> None:
        try:
            llamacpp.deploy(model="hf://a/b/c.gguf", port="not a port")
        except PyinfraError as exc:
            errors.append(str(exc))

    _run(tmp_path, {}, user_deploy)
    assert seen == []
    assert len(errors) == 1 and "@local: port:" in errors[0]


def test_top_level_entry_files_are_thin_wrappers(
    tmp_path: Path, seen: list[HostConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    def user_deploy() -> None:
        runpy.run_path(str(ROOT / "deploys" / "llamacpp.py"))

    _run(tmp_path, {"model": "hf://a/b/c.gguf"}, user_deploy)
    assert [c.engine for c in seen] == ["llamacpp"]


def test_the_wheel_carries_the_deploys_package(tmp_path: Path) -> None:
    pytest.importorskip("hatchling")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("llmprov-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for engine in ("vllm", "ollama", "llamacpp"):
        assert f"llmprov/deploys/{engine}.py" in names
