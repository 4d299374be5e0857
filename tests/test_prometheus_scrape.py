"""`llmprov render --prometheus`: a scrape job list that accounts for every host of the inventory."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmprov.cli.common import EXIT_OK
from llmprov.cli.main import main
from llmprov.core.render.prometheus import CREDENTIALS_DIR, plan_scrape
from llmprov.inventory import load_inventory

REPO = Path(__file__).resolve().parents[1]

FLEET = """
gpu = (
    [("gpu-1", {"ssh_hostname": "10.0.0.11", "bind": "0.0.0.0"}),
     ("gpu-2", {"ssh_hostname": "10.0.0.12", "bind": "10.0.0.12"})],
    {"engine": "vllm", "model": "hf://Qwen/Qwen2.5-0.5B-Instruct", "api_key_file": "key.txt"},
)
edge = [
    ("edge-1", {"engine": "llamacpp", "bind": "0.0.0.0", "port": 9090, "api_key_file": "key.txt",
                "model": "hf://bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf"}),
    ("edge-2", {"engine": "llamacpp", "ssh_hostname": "edge2.lan",
                "model": "hf://bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf"}),
]
office = [("mini", {"engine": "ollama", "model": "ollama://llama3.2:3b"})]
big = (
    [("big-1", {"ssh_hostname": "10.0.1.1"}), ("big-2", {"ssh_hostname": "10.0.1.2"})],
    {"engine": "vllm", "model": "hf://Qwen/Qwen2.5-72B-Instruct",
     "gpu": {"vendor": "nvidia", "count": 8, "driver_version": "580.65.06"},
     "vllm": {"version": "0.11.0"}, "cluster": {"name": "qwen72", "head": "big-1"}},
)
"""


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    (tmp_path / "key.txt").write_text("sk-test-prom\n")
    path = tmp_path / "inventory.py"
    path.write_text(textwrap.dedent(FLEET))
    return path


def render(inventory: Path, out: Path, *extra: str) -> Path:
    assert main(["render", str(inventory), "--out", str(out), "--prometheus", *extra]) == EXIT_OK
    return Path(extra[0]) if extra else out / "_prometheus" / "prometheus.yml"


def targets(config: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """host -> (job, target) from a parsed prometheus.yml."""
    out: dict[str, tuple[str, str]] = {}
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            (target,) = static["targets"]
            out[static["labels"]["llmprov_host"]] = (job["job_name"], target)
    return out


def unscraped(text: str) -> dict[str, str]:
    return dict(re.findall(r"^# Not scraped: (\S+): (.*)\.$", text, flags=re.MULTILINE))


def test_every_host_is_a_target_or_named_with_the_reason_it_has_none(
    inventory: Path, tmp_path: Path
) -> None:
    path = render(inventory, tmp_path / "out")
    text = path.read_text()

    found, skipped = targets(yaml.safe_load(text)), unscraped(text)
    hosts = set(load_inventory(inventory).hosts)
    assert set(found) | set(skipped) == hosts
    assert not set(found) & set(skipped)
    assert set(found) == {"gpu-1", "gpu-2", "edge-1", "edge-2", "big-1"}
    assert skipped == {
        "mini": "ollama has no metrics endpoint of its own",
        "big-2": "a worker of cluster qwen72; its head serves",
    }


def test_targets_are_where_prometheus_reaches_each_server(inventory: Path, tmp_path: Path) -> None:
    found = targets(yaml.safe_load(render(inventory, tmp_path / "out").read_text()))

    assert found["gpu-1"] == ("llmprov-vllm", "10.0.0.11:8000")  # all interfaces: the SSH address
    assert found["gpu-2"] == ("llmprov-vllm", "10.0.0.12:8000")  # its bind address
    assert found["edge-2"] == ("llmprov-llamacpp", "edge2.lan:8080")
    assert found["big-1"] == ("llmprov-vllm", "10.0.1.1:8000")


def test_llama_servers_api_key_guards_metrics_so_each_keyed_host_gets_its_own_job(
    inventory: Path, tmp_path: Path
) -> None:
    config = yaml.safe_load(render(inventory, tmp_path / "out").read_text())
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}

    keyed = jobs["llmprov-llamacpp-edge-1"]
    assert keyed["authorization"] == {
        "type": "Bearer",
        "credentials_file": f"{CREDENTIALS_DIR}/edge-1.key",
    }
    assert [s["targets"] for s in keyed["static_configs"]] == [["edge-1:9090"]]
    # vLLM's key guards /v1 only: its job needs none.
    assert "authorization" not in jobs["llmprov-vllm"]
    assert "sk-test-prom" not in (tmp_path / "out" / "_prometheus" / "prometheus.yml").read_text()


def test_a_loopback_server_is_listed_with_a_note_that_prometheus_cannot_reach_it(
    inventory: Path, tmp_path: Path
) -> None:
    text = render(inventory, tmp_path / "out").read_text()

    assert "# edge-2 listens on loopback only" in text
    assert "# gpu-1 listens on loopback only" not in text


def test_prometheus_writes_to_the_file_named(inventory: Path, tmp_path: Path) -> None:
    path = render(inventory, tmp_path / "out", str(tmp_path / "scrape.yml"))

    assert path.is_file()
    assert not (tmp_path / "out" / "_prometheus").exists()


def test_the_client_inventory_lists_every_host(tmp_path: Path) -> None:
    inventory = REPO / "inventories" / "client.py"
    text = render(inventory, tmp_path / "out").read_text()

    found, skipped = targets(yaml.safe_load(text)), unscraped(text)
    assert set(found) | set(skipped) == set(load_inventory(inventory).hosts)


def test_labels_name_the_engine_model_and_cluster(inventory: Path) -> None:
    loaded = load_inventory(inventory)
    plan = plan_scrape(loaded.hosts, loaded.host_data)

    (big,) = [t for job in plan.jobs for t in job.targets if t.host == "big-1"]
    assert (big.engine, big.model, big.cluster) == ("vllm", "qwen2.5-72b-instruct", "qwen72")
