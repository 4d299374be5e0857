"""A serving cluster's rendered files: Ray's units and command lines, its firewall, the head's serve."""

from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from llmprov.cli.common import EXIT_OK
from llmprov.cli.main import main
from llmprov.core.cluster import (
    FIREWALL_RULES,
    FIREWALL_UNIT,
    RAY_UNIT,
    SERVE_DROPIN,
    RayPorts,
    plan_files,
)
from llmprov.core.config import HostConfig
from llmprov.inventory import load_inventory

GPU_CLUSTER = """
nodes = (
    [
        ("gpu-1", {"ssh_hostname": "10.0.0.11"}),
        ("gpu-2", {"ssh_hostname": "10.0.0.12"}),
        ("gpu-3", {"ssh_hostname": "10.0.0.13"}),
    ],
    {
        "engine": "vllm",
        "model": "hf://Qwen/Qwen2.5-72B-Instruct",
        "gpu": {"vendor": "nvidia", "count": 8, "driver_version": "580.65.06"},
        "vllm": {"version": "0.11.0", "max_model_len": 8192},
        "cluster": {"name": "qwen72", "head": "gpu-2"},
    },
)
"""


@pytest.fixture
def cluster(tmp_path: Path) -> dict[str, HostConfig]:
    path = tmp_path / "inventory.py"
    path.write_text(textwrap.dedent(GPU_CLUSTER))
    return load_inventory(path).hosts


def files_of(cfg: HostConfig) -> dict[str, str]:
    return {f.path: f.content for f in plan_files(cfg)}


def flags_of(argv: list[str]) -> dict[str, str]:
    return dict(itertools.pairwise(argv))


def exec_start(unit: str) -> list[str]:
    line = next(x for x in unit.splitlines() if x.startswith("ExecStart="))
    return shlex.split(line.removeprefix("ExecStart="))


def test_the_head_serves_with_gpus_per_node_by_nodes_on_ray(cluster: dict[str, HostConfig]) -> None:
    argv = exec_start(files_of(cluster["gpu-2"])["/etc/systemd/system/llmprov-vllm.service"])

    flags = flags_of(argv)
    assert flags["--tensor-parallel-size"] == "8"
    assert flags["--pipeline-parallel-size"] == "3"
    assert flags["--distributed-executor-backend"] == "ray"
    assert argv[:3] == [
        "/opt/llmprov/vllm/current/bin/python",
        "-m",
        "vllm.entrypoints.openai.api_server",
    ]


def test_the_head_runs_rays_head_and_workers_join_its_address(
    cluster: dict[str, HostConfig],
) -> None:
    head = exec_start(files_of(cluster["gpu-2"])[f"/etc/systemd/system/{RAY_UNIT}"])
    worker = exec_start(files_of(cluster["gpu-3"])[f"/etc/systemd/system/{RAY_UNIT}"])

    assert head[:6] == [
        "/opt/llmprov/vllm/current/bin/ray",
        "start",
        "--head",
        "--block",
        "--port",
        "6379",
    ]
    assert worker[:5] == [
        "/opt/llmprov/vllm/current/bin/ray", "start", "--address", "10.0.0.12:6379", "--block",
    ]  # fmt: skip
    for argv, ip in ((head, "10.0.0.12"), (worker, "10.0.0.13")):
        flags = flags_of(argv)
        assert flags["--node-ip-address"] == ip
        assert flags["--num-gpus"] == "8"
        assert "--disable-usage-stats" in argv
    assert "--include-dashboard" not in worker
    assert flags_of(head)["--include-dashboard"] == "false"


def test_every_port_ray_listens_on_is_pinned_inside_the_firewalled_ranges(
    cluster: dict[str, HostConfig],
) -> None:
    argv = exec_start(files_of(cluster["gpu-2"])[f"/etc/systemd/system/{RAY_UNIT}"])
    ports = RayPorts(6379)

    pinned = [int(v) for f, v in itertools.pairwise(argv) if f.endswith("-port")]
    assert len(pinned) == 10
    assert all(ports.covers(p) for p in pinned), pinned


def test_only_the_serving_head_gets_vllms_unit_and_its_ray_drop_in(
    cluster: dict[str, HostConfig],
) -> None:
    head, worker = files_of(cluster["gpu-2"]), files_of(cluster["gpu-1"])

    assert "/etc/systemd/system/llmprov-vllm.service" in head
    assert "/etc/systemd/system/llmprov-vllm.service" not in worker
    assert SERVE_DROPIN not in worker
    dropin = head[SERVE_DROPIN]
    assert 'Environment="RAY_ADDRESS=10.0.0.12:6379"' in dropin
    assert f"Requires={RAY_UNIT}" in dropin and f"After={RAY_UNIT}" in dropin
    # Workers get the engine's environment too: vLLM's workers run inside Ray's processes.
    assert "/etc/llmprov/vllm.env" in worker
    assert "EnvironmentFile=/etc/llmprov/vllm.env" in worker[f"/etc/systemd/system/{RAY_UNIT}"]


def test_the_firewall_admits_every_node_to_rays_ports_and_nothing_else(
    cluster: dict[str, HostConfig],
) -> None:
    rules = files_of(cluster["gpu-1"])[FIREWALL_RULES]

    assert "elements = { 10.0.0.12, 10.0.0.11, 10.0.0.13 }" in rules
    assert "elements = { 6379-6386, 10002-10199 }" in rules
    assert "policy accept;" in rules
    assert "tcp dport @ray_ports ip saddr @peers4 accept" in rules
    assert "tcp dport @ray_ports counter reject with tcp reset" in rules
    # Nothing in the table names SSH or any port outside Ray's sets.
    assert "22" not in rules.replace("10.0.0.", "")
    unit = files_of(cluster["gpu-1"])[f"/etc/systemd/system/{FIREWALL_UNIT}"]
    assert f"ExecStart=/usr/sbin/nft -f {FIREWALL_RULES}" in unit
    assert f"RequiredBy={RAY_UNIT}" in unit and f"Before={RAY_UNIT}" in unit


@pytest.mark.skipif(
    shutil.which("nft") is None or os.geteuid() != 0, reason="needs nft and root (nft -c)"
)
def test_the_rendered_rule_set_passes_nfts_own_check(
    cluster: dict[str, HostConfig], tmp_path: Path
) -> None:
    rules = tmp_path / "ray.nft"
    rules.write_text(files_of(cluster["gpu-3"])[FIREWALL_RULES])

    # --check parses and validates against the kernel without committing anything.
    result = subprocess.run(["nft", "--check", "-f", str(rules)], capture_output=True, text=True)

    assert result.returncode == 0, result.stderr


def test_an_ipv6_node_gets_an_ipv6_peer_set(tmp_path: Path) -> None:
    path = tmp_path / "inventory.py"
    path.write_text(textwrap.dedent(GPU_CLUSTER).replace('"10.0.0.13"', '"fd00::13"'))
    cfg = load_inventory(path).hosts["gpu-3"]
    rules = files_of(cfg)[FIREWALL_RULES]
    ray = exec_start(files_of(cfg)[f"/etc/systemd/system/{RAY_UNIT}"])

    assert "type ipv6_addr" in rules and "elements = { fd00::13 }" in rules
    assert "tcp dport @ray_ports ip6 saddr @peers6 accept" in rules
    assert flags_of(ray)["--node-ip-address"] == "fd00::13"


def test_llmprov_render_writes_each_nodes_files(
    cluster: dict[str, HostConfig], tmp_path: Path
) -> None:
    inv = tmp_path / "inventory.py"
    inv.write_text(textwrap.dedent(GPU_CLUSTER))
    out = tmp_path / "out"

    assert main(["render", str(inv), "--out", str(out)]) == EXIT_OK

    head = sorted(
        p.relative_to(out / "gpu-2").as_posix() for p in (out / "gpu-2").rglob("*") if p.is_file()
    )
    worker = sorted(
        p.relative_to(out / "gpu-3").as_posix() for p in (out / "gpu-3").rglob("*") if p.is_file()
    )
    assert head == [
        "etc/llmprov/ray-firewall.nft",
        "etc/llmprov/vllm.env",
        "etc/systemd/system/llmprov-ray-firewall.service",
        "etc/systemd/system/llmprov-ray.service",
        "etc/systemd/system/llmprov-vllm.service",
        "etc/systemd/system/llmprov-vllm.service.d/ray-cluster.conf",
    ]
    assert worker == [
        "etc/llmprov/ray-firewall.nft",
        "etc/llmprov/vllm.env",
        "etc/systemd/system/llmprov-ray-firewall.service",
        "etc/systemd/system/llmprov-ray.service",
    ]
    assert (out / "gpu-3/etc/llmprov/vllm.env").stat().st_mode & 0o777 == 0o600


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not found")
def test_every_cluster_unit_passes_verify_and_scores_at_most_2_5(
    cluster: dict[str, HostConfig], tmp_path: Path
) -> None:
    assert SYSTEMD_ANALYZE is not None
    env = {**os.environ, "SYSTEMD_COLORS": "0", "SYSTEMD_LOG_COLOR": "0", "SYSTEMD_PAGER": "cat"}
    system = next(p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")))
    checked = []
    for name in ("gpu-1", "gpu-2"):
        root = tmp_path / name
        shutil.copytree(
            system, root / "usr/lib/systemd/system", symlinks=True, copy_function=os.link
        )
        units = []
        for path, text in files_of(cluster[name]).items():
            target = root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            if path.endswith(".service"):
                units.append(Path(path).name)
                line = next(x for x in text.splitlines() if x.startswith("ExecStart="))
                binary = root / shlex.split(line.removeprefix("ExecStart="))[0].lstrip("/")
                binary.parent.mkdir(parents=True, exist_ok=True)
                binary.write_text("#!/bin/sh\n")
                binary.chmod(0o755)
        for unit in units:
            run = [SYSTEMD_ANALYZE, f"--root={root}", "--man=no"]
            verify = subprocess.run(
                [*run[:1], "verify", *run[1:], unit], capture_output=True, text=True, env=env
            )
            assert (verify.returncode, verify.stdout, verify.stderr) == (0, "", ""), unit
            security = subprocess.run(
                [
                    SYSTEMD_ANALYZE,
                    "security",
                    "--offline=true",
                    f"--root={root}",
                    "--no-pager",
                    unit,
                ],
                capture_output=True,
                text=True,
                env=env,
            )
            found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", security.stdout)
            assert found, security.stdout + security.stderr
            assert float(found.group(1)) <= 2.5, f"{name}: {unit}: {found.group(1)}"
            checked.append(unit)
    assert "llmprov-ray-firewall.service" in checked and "llmprov-ray.service" in checked


def test_a_keyless_serving_head_admits_only_allow_from_to_its_port(tmp_path: Path) -> None:
    path = tmp_path / "inventory.py"
    text = textwrap.dedent(GPU_CLUSTER).replace(
        '"cluster": {"name": "qwen72", "head": "gpu-2"},',
        '"cluster": {"name": "qwen72", "head": "gpu-2"}, "bind": "0.0.0.0",'
        ' "expose_unauthenticated": True, "allow_from": ["192.168.0.0/16", "fd00::/8"],',
    )
    path.write_text(text)
    hosts = load_inventory(path).hosts
    head = files_of(hosts["gpu-2"])[FIREWALL_RULES]
    assert "elements = { 192.168.0.0/16 }" in head and "elements = { fd00::/8 }" in head
    assert "tcp dport 8000 ip saddr @serve_from4 accept" in head
    assert head.index("@serve_from6 accept") < head.index("tcp dport 8000 counter reject")
    # A worker serves nothing: its table guards Ray's ports only.
    assert "serve_from" not in files_of(hosts["gpu-1"])[FIREWALL_RULES]
    if shutil.which("nft") and os.geteuid() == 0:
        rules = tmp_path / "head.nft"
        rules.write_text(head)
        check = subprocess.run(["nft", "--check", "-f", str(rules)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
