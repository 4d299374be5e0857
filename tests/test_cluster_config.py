"""Serving clusters in an inventory: the `cluster:` group marker validated, and resolved per node.

The faults are a small corpus in the style of tests/corpus: an inventory as a user writes it and the
lines `llmprov validate` must print. Every fault is found before any host is contacted.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from llmprov.cli.common import EXIT_BAD_INPUT
from llmprov.cli.main import main
from llmprov.core.config import ClusterMember
from llmprov.inventory import InventoryError, load_inventory

GROUP = """
nodes = (
    [
        ("gpu-1", {{"ssh_hostname": "10.0.0.11"{h1}}}),
        ("gpu-2", {{"ssh_hostname": "10.0.0.12"{h2}}}),
    ],
    {{
        "engine": "vllm",
        "model": "hf://Qwen/Qwen2.5-7B-Instruct",
        "gpu": {{"vendor": "nvidia", "count": 4, "driver_version": "580.65.06"}},
        "vllm": {{"version": "0.11.0"{vllm}}},
        "cluster": {{"name": "qwen", "head": "gpu-1"{cluster}}},
        {extra}
    }},
)
"""


def inventory(
    tmp_path: Path,
    h1: str = "",
    h2: str = "",
    vllm: str = "",
    cluster: str = "",
    extra: str = "",
    text: str | None = None,
) -> Path:
    path = tmp_path / "inventory.py"
    body = text or GROUP.format(h1=h1, h2=h2, vllm=vllm, cluster=cluster, extra=extra)
    path.write_text(textwrap.dedent(body))
    return path


def members(path: Path, **kw: Any) -> dict[str, ClusterMember]:
    loaded = load_inventory(path, **kw)
    return {n: c.cluster for n, c in loaded.hosts.items() if c.cluster is not None}


# ---------------------------------------------------------------- resolved


def test_a_group_marked_as_a_cluster_gets_a_head_and_workers_with_their_addresses(
    tmp_path: Path,
) -> None:
    got = members(inventory(tmp_path))

    assert got["gpu-1"].role == "head" and got["gpu-2"].role == "worker"
    assert got["gpu-2"].head_address == "10.0.0.11"
    assert got["gpu-2"].address == "10.0.0.12"
    assert got["gpu-1"].peers == ("10.0.0.11", "10.0.0.12")
    assert (got["gpu-1"].nodes, got["gpu-1"].gpus_per_node) == (2, 4)


def test_parallel_sizes_default_to_gpus_per_node_and_nodes(tmp_path: Path) -> None:
    head = members(inventory(tmp_path))["gpu-1"]

    assert (head.tensor_parallel_size, head.pipeline_parallel_size) == (4, 2)


@pytest.mark.parametrize(
    ("vllm", "sizes"),
    [
        (', "pipeline_parallel_size": 1', (4, 1)),
        (', "tensor_parallel_size": 2', (2, 2)),
        (', "tensor_parallel_size": 2, "pipeline_parallel_size": 4', (2, 4)),
    ],
)
def test_parallel_sizes_the_inventory_sets_win(
    tmp_path: Path, vllm: str, sizes: tuple[int, int]
) -> None:
    head = members(inventory(tmp_path, vllm=vllm))["gpu-1"]

    assert (head.tensor_parallel_size, head.pipeline_parallel_size) == sizes


def test_an_address_in_cluster_addresses_wins_over_ssh_hostname(tmp_path: Path) -> None:
    path = inventory(
        tmp_path,
        h2=', "ssh_hostname": "gpu2.example.net"',
        cluster=', "addresses": {"gpu-2": "192.168.7.2"}',
    )
    got = members(path)

    assert got["gpu-2"].address == "192.168.7.2"
    assert got["gpu-1"].peers == ("10.0.0.11", "192.168.7.2")


def test_a_cpu_cluster_that_serves_nothing_is_valid(tmp_path: Path) -> None:
    text = """
    nodes = (
        [("a", {"ssh_hostname": "10.0.0.1"}), ("b", {"ssh_hostname": "10.0.0.2"})],
        {"engine": "vllm", "model": "hf://HuggingFaceTB/SmolLM2-135M-Instruct",
         "vllm": {"version": "0.32.0"},
         "cluster": {"name": "smol", "head": "b", "serve": False}},
    )
    """
    got = members(inventory(tmp_path, text=text))

    assert got["b"].role == "head" and got["a"].head_address == "10.0.0.2"
    assert got["a"].gpus_per_node == 0 and not got["a"].serve


def test_hosts_outside_any_cluster_are_left_as_they_were(tmp_path: Path) -> None:
    text = GROUP.format(h1="", h2="", vllm="", cluster="", extra="") + (
        'solo = [("gpu-9", {"engine": "vllm", "model": "hf://Qwen/Qwen2.5-0.5B-Instruct"})]\n'
    )
    loaded = load_inventory(inventory(tmp_path, text=text))

    assert loaded.hosts["gpu-9"].cluster is None
    assert loaded.hosts["gpu-1"].cluster is not None


# ---------------------------------------------------------------- faults (corpus style)

FAULTS: list[tuple[str, dict[str, str], list[str]]] = [
    (
        "gpu_counts_disagree",
        {"h2": ', "gpu": {"vendor": "nvidia", "count": 2, "driver_version": "580.65.06"}'},
        [
            "gpu-2: gpu.count: is 2 (nvidia) but 4 (nvidia) on the head gpu-1; every node of "
            "cluster 'qwen' needs the same GPUs (tensor parallel size = GPUs per node)"
        ],
    ),
    (
        "vllm_versions_disagree",
        {"h2": ', "vllm": {"version": "0.11.1"}'},
        [
            "gpu-2: vllm.version: is 0.11.1 but 0.11.0 on the head gpu-1; every node of cluster "
            "'qwen' must run the same vLLM"
        ],
    ),
    (
        "vllm_version_unpinned",
        {"h1": ', "vllm": {}', "h2": ', "vllm": {}'},
        [
            f"{h}: vllm.version: required on a node of cluster 'qwen': every node must run the "
            "same vLLM (pin it in the cluster's group data)"
            for h in ("gpu-1", "gpu-2")
        ],
    ),
    (
        "head_not_a_node",
        {
            "h1": ', "cluster": {"name": "qwen", "head": "gpu-9"}',
            "h2": ', "cluster": {"name": "qwen", "head": "gpu-9"}',
        },
        ["gpu-1: cluster.head: 'gpu-9' is not a host of cluster 'qwen' (its hosts: gpu-1, gpu-2)"],
    ),
    (
        "cluster_settings_differ",
        {"h2": ', "cluster": {"name": "qwen", "head": "gpu-1", "ray_port": 7000}'},
        [
            "gpu-2: cluster: differs from gpu-1's settings for cluster 'qwen'; set cluster once, "
            "in the group's data"
        ],
    ),
    (
        "no_ip_address",
        {"h2": ', "ssh_hostname": "gpu2.example.net"'},
        [
            "gpu-2: cluster.addresses: no IP address for gpu-2 (ssh_hostname 'gpu2.example.net' "
            "is not one); add gpu-2: <IP> to cluster.addresses: Ray and its firewall rules need one"
        ],
    ),
    (
        "loopback_address",
        {"h2": ', "ssh_hostname": "127.0.0.1"'},
        [
            "gpu-2: cluster.addresses: 127.0.0.1 cannot be reached from the other nodes; give "
            "gpu-2's address on the cluster's network in cluster.addresses"
        ],
    ),
    (
        "addresses_names_a_stranger",
        {"cluster": ', "addresses": {"gpu-7": "10.0.0.17"}'},
        ["gpu-1: cluster.addresses: names 'gpu-7', which is not a host of 'qwen'"],
    ),
    (
        "parallel_sizes_need_more_gpus",
        {"vllm": ', "pipeline_parallel_size": 4'},
        [
            "gpu-1: vllm.pipeline_parallel_size: tensor parallel 4 x pipeline parallel 4 needs 16 "
            "GPUs; cluster 'qwen' has 2 node(s) x 4"
        ],
    ),
    (
        "ray_port_takes_ssh_port",
        {"h2": ', "ssh_port": 6381'},
        ["gpu-2: cluster.ray_port: Ray's ports would take the SSH port 6381"],
    ),
    (
        "ray_port_takes_serving_port",
        {"extra": '"port": 6380,'},
        [
            f"{h}: cluster.ray_port: Ray's ports would take the serving port 6380"
            for h in ("gpu-1", "gpu-2")
        ],
    ),
    (
        "executor_in_extra_args",
        {"vllm": ', "extra_args": ["--distributed-executor-backend=mp"]'},
        [
            f"{h}: vllm.extra_args: --distributed-executor-backend is set by llmprov on a cluster "
            "node; remove it"
            for h in ("gpu-1", "gpu-2")
        ],
    ),
    (
        "old_ray",
        {"cluster": ', "ray_version": "2.40.0"'},
        [
            f"{h}: cluster.ray_version: vLLM's Ray executor needs Ray >= 2.43.0, got '2.40.0'"
            for h in ("gpu-1", "gpu-2")
        ],
    ),
    (
        "unknown_cluster_key",
        {"cluster": ', "heads": 2'},
        [
            f"{h}: cluster.heads: unknown cluster setting; did you mean 'head'?"
            for h in ("gpu-1", "gpu-2")
        ],
    ),
    (
        "name_not_a_dns_label",
        {
            "h1": ', "cluster": {"name": "Qwen_7B", "head": "gpu-1"}',
            "h2": ', "cluster": {"name": "Qwen_7B", "head": "gpu-1"}',
        },
        [
            f"{h}: cluster.name: must be a DNS label (a-z, 0-9, -), got 'Qwen_7B'"
            for h in ("gpu-1", "gpu-2")
        ],
    ),
    (
        "bad_address",
        {"cluster": ', "addresses": {"gpu-2": "10.0.0.300"}'},
        [
            f"{h}: cluster.addresses.gpu-2: must be an IP address, got '10.0.0.300'"
            for h in ("gpu-1", "gpu-2")
        ],
    ),
]


def _validate_lines(path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    code = main(["validate", str(path)])
    err = capsys.readouterr().err.splitlines()
    assert code == EXIT_BAD_INPUT, err
    start = next(i for i, line in enumerate(err) if "problem(s) in the inventory" in line)
    return err[start + 1 :]


@pytest.mark.parametrize(("case", "parts", "expected"), FAULTS, ids=[f[0] for f in FAULTS])
def test_a_faulty_cluster_is_reported_field_by_field_before_any_host_is_touched(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_connections: list[str],
    case: str,
    parts: dict[str, str],
    expected: list[str],
) -> None:
    lines = _validate_lines(inventory(tmp_path, **parts), capsys)

    assert lines == expected
    assert no_connections == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            """
            nodes = (
                [("a", {"ssh_hostname": "10.0.0.1"}), ("b", {"ssh_hostname": "10.0.0.2"})],
                {"engine": "vllm", "model": "hf://HuggingFaceTB/SmolLM2-135M-Instruct",
                 "vllm": {"version": "0.32.0"}, "cluster": {"name": "smol", "head": "a"}},
            )
            """,
            [
                "a: cluster.serve: vLLM's CPU build has no Ray executor ('current platform cpu "
                "does not support ray'); give the nodes GPUs, or set cluster.serve: false to form "
                "the Ray cluster only"
            ],
        ),
        (
            """
            hosts = [("a", {"ssh_hostname": "10.0.0.1", "engine": "vllm",
                            "model": "hf://HuggingFaceTB/SmolLM2-135M-Instruct",
                            "vllm": {"version": "0.32.0"},
                            "cluster": {"name": "smol", "head": "a", "serve": False}})]
            """,
            [
                "a: cluster.name: only this host is in cluster 'smol'; a serving cluster needs "
                "two or more (remove cluster to serve from one host)"
            ],
        ),
        (
            """
            nodes = (
                [("a", {"ssh_hostname": "10.0.0.1"}), ("b", {"ssh_hostname": "10.0.0.2"})],
                {"engine": "llamacpp", "model": "hf://bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf",
                 "cluster": {"name": "smol", "head": "a", "serve": False}},
            )
            """,
            [
                f"{h}: cluster: only vllm hosts form a serving cluster, not llamacpp"
                for h in ("a", "b")
            ],
        ),
    ],
    ids=["cpu_cluster_cannot_serve", "one_host_is_no_cluster", "not_vllm"],
)
def test_cluster_faults_beyond_the_gpu_group(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_connections: list[str],
    text: str,
    expected: list[str],
) -> None:
    assert _validate_lines(inventory(tmp_path, text=text), capsys) == expected
    assert no_connections == []


def test_a_limit_that_splits_a_cluster_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InventoryError) as caught:
        load_inventory(inventory(tmp_path), limit=["gpu-2"])

    assert [str(e) for e in caught.value.errors] == [
        "gpu-2: cluster: cluster 'qwen' is deployed whole; --limit leaves out gpu-1"
    ]


def test_a_limit_to_hosts_outside_the_cluster_does_not_check_it(tmp_path: Path) -> None:
    text = GROUP.format(h1=', "vllm": {}', h2="", vllm="", cluster="", extra="") + (
        'solo = [("gpu-9", {"engine": "vllm", "model": "hf://Qwen/Qwen2.5-0.5B-Instruct"})]\n'
    )
    loaded = load_inventory(inventory(tmp_path, text=text), limit=["gpu-9"])

    assert list(loaded.hosts) == ["gpu-9"]
