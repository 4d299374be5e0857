"""llama.cpp on a real sandbox host: build (or cached build), serve SmolLM2, smoke, re-run changes nothing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from llmprov.cache import binary_cache_dir_name, cache_root, demo_model
from llmprov.checks.after_deploy import prove
from llmprov.checks.host_verify import connect_testinfra, verify_host
from llmprov.cli.main import main
from llmprov.deploy.engines import deploy_host
from llmprov.deploy.runner import run_pyinfra
from llmprov.inventory import load_inventory
from llmprov.sandbox import Harness, SandboxHost

pytestmark = [pytest.mark.host, pytest.mark.engine]


def write_inventory(path: Path, host: SandboxHost, model: Path, **extra: object) -> Path:
    name, data = host.inventory_entry()
    data = {
        **data,
        "engine": "llamacpp",
        "model": f"file://{model}",
        "served_model_name": "smollm2",
        "llamacpp": {"parallel": 2, "ctx_size": 2048, "threads": 2},
        **extra,
    }
    path.write_text(f"hosts = [({name!r}, {data!r})]\n")
    return path


def test_llamacpp_deploys_serves_and_reruns_without_change(
    harness: Harness,
    sandbox_host: SandboxHost,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = demo_model(cache_root())
    inventory = write_inventory(tmp_path / "inv.py", sandbox_host, model)
    loaded = load_inventory(inventory)

    first = run_pyinfra(loaded, deploy_host)
    result = first.results[sandbox_host.name]
    assert result.ok, result
    assert result.changed, "a fresh host must change"
    # The build is kept on the controller, keyed by version and flags, for the next host.
    assert list((cache_root() / binary_cache_dir_name()).glob("0.3.36-*.tar.gz"))

    cfg = loaded.hosts[sandbox_host.name]
    proof = prove(cfg, loaded.host_data[sandbox_host.name], run_bench=False, ready_timeout_s=60)
    assert proof.smoke is not None and proof.smoke.ok, proof.smoke

    started = time.monotonic()
    second = run_pyinfra(loaded, deploy_host).results[sandbox_host.name]
    assert second.ok, second
    assert [op.name for op in second.changed] == [], "a re-run must change nothing"
    assert not any("Build llama.cpp" in op.name for op in second.ops), "a re-run must not rebuild"
    assert time.monotonic() - started < 60

    name, data = sandbox_host.inventory_entry()
    checks = verify_host(cfg, connect_testinfra(name, data))
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]

    # The same through the command line, then a stopped service fails `verify` with its table.
    assert main(["check", str(inventory)]) == 0
    assert main(["verify", str(inventory)]) == 0
    harness.run(sandbox_host, ["systemctl", "stop", "llmprov-llamacpp.service"], check=True)
    capsys.readouterr()
    assert main(["verify", str(inventory)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "llmprov-llamacpp.service" in out
