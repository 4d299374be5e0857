"""`llmprov deploy INV --engine E` on a mixed inventory: only E's hosts are validated and touched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmprov.cache import cache_root, demo_model
from llmprov.sandbox import Harness, SandboxHost

pytestmark = [pytest.mark.host]

UNIT = "/etc/systemd/system/llmprov-llamacpp.service"


def _llmprov() -> str:
    """The console entry point installed beside this Python, as a user runs it."""
    path = Path(sys.executable).parent / "llmprov"
    assert path.exists(), f"no llmprov console script at {path}"
    return str(path)


def test_engine_selects_the_reachable_linux_host_and_leaves_the_others_out(
    harness: Harness, sandbox_host: SandboxHost, tmp_path: Path
) -> None:
    name, data = sandbox_host.inventory_entry()
    data.update(
        engine="llamacpp", model=f"file://{demo_model(cache_root())}", served_model_name="smollm2"
    )
    # Hosts of other engines and OSes, none reachable (nothing listens on loopback port 1). The
    # vLLM one even lacks a model: left out by --engine, it must not be validated either.
    unreachable = "{'ssh_hostname': '127.0.0.1', 'ssh_port': 1}"
    inventory = tmp_path / "mixed.py"
    inventory.write_text(
        f"linux = [({name!r}, {data!r})]\n"
        f"gpus = [('gpu-1', {{**{unreachable}, 'engine': 'vllm'}})]\n"
        f"macs = [('mac-1', {{**{unreachable}, 'os': 'macos', 'arch': 'aarch64', "
        "'engine': 'ollama', 'model': 'ollama://llama3.2:3b'})]\n"
        "windows = [('@winrm/win-1', {'winrm_hostname': '127.0.0.1', 'winrm_port': 1, "
        "'os': 'windows', 'engine': 'ollama', 'model': 'ollama://llama3.2:3b'})]\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [
            _llmprov(),
            "deploy",
            str(inventory),
            "--engine",
            "llamacpp",
            "-y",
            "--no-bench",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["schema_version"] == 1 and doc["ok"] is True
    assert list(doc["hosts"]) == [name]
    assert doc["left_out"] == {
        "gpu-1": "runs vllm, not llamacpp",
        "mac-1": "runs ollama, not llamacpp",
        "@winrm/win-1": "runs ollama, not llamacpp",
    }
    assert any(op["changed"] for op in doc["hosts"][name]["operations"])
    smoke = doc["hosts"][name]["checks"]
    assert smoke["ok"] is True and all(step["ok"] for step in smoke["smoke"]), smoke
    # The others were never contacted: no unreachable line, no host-key notice either.
    assert "unreachable" not in out.stderr
    assert "known_hosts" not in out.stderr
    assert "gpu-1: runs vllm, not llamacpp" in out.stderr
    assert harness.run(sandbox_host, ["test", "-e", UNIT]).returncode == 0

    # The same selection for check and verify; the deployed server answers.
    check = subprocess.run(
        [_llmprov(), "check", str(inventory), "--engine", "llamacpp", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert list(json.loads(check.stdout)["hosts"]) == [name]
    verify = subprocess.run(
        [_llmprov(), "verify", str(inventory), "--engine", "llamacpp", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    verified = json.loads(verify.stdout)
    assert list(verified["hosts"]) == [name] and verified["hosts"][name]["unreachable"] is None

    # Deployed once, a second plan uploads nothing and installs nothing: no file differs.
    again = subprocess.run(
        [_llmprov(), "deploy", str(inventory), "--engine", "llamacpp", "--dry", "--diff"],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=1800,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    planned = [line for line in again.stdout.splitlines() if line.strip().startswith(f"{name} ~")]
    assert not any("Upload" in line or "User " in line for line in planned), planned
    assert "--- " not in again.stdout  # no file differs
