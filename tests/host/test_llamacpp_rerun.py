"""llama.cpp re-runs on a real host: one command when nothing changed, and each drift still repaired."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pyinfra.api.host import Host

from llmprov.cache import cache_root, demo_model
from llmprov.core.config import HostConfig
from llmprov.core.render.plan import plan_host
from llmprov.core.snapshot import parse_snapshot, snapshot_command
from llmprov.deploy.engines import deploy_host
from llmprov.deploy.llamacpp import rerun_request
from llmprov.deploy.runner import HostResult, run_pyinfra
from llmprov.inventory import LoadedInventory, load_inventory
from llmprov.sandbox import Harness, SandboxHost

pytestmark = [pytest.mark.host, pytest.mark.engine]

UNIT = "llmprov-llamacpp.service"
ENV = "/etc/llmprov/llamacpp.env"


@contextmanager
def counted() -> Iterator[list[str]]:
    """Every command pyinfra sends to a host (facts and operations): one SSH round trip each."""
    sent: list[str] = []
    real = Host.run_shell_command

    def run(host: Host, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(args[0] if args else kwargs.get("command")))
        return real(host, *args, **kwargs)

    Host.run_shell_command = run  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        Host.run_shell_command = real  # type: ignore[method-assign]


def rerun(loaded: LoadedInventory, name: str) -> tuple[HostResult, list[str]]:
    with counted() as sent:
        result = run_pyinfra(loaded, deploy_host).results[name]
    assert result.ok, result
    return result, sent


def changed(result: HostResult) -> list[str]:
    return [op.name for op in result.changed]


def test_a_noop_rerun_is_one_command_and_each_drift_is_still_repaired(
    harness: Harness, sandbox_host: SandboxHost, tmp_path: Path
) -> None:
    name, data = sandbox_host.inventory_entry()
    data.update(
        engine="llamacpp",
        model=f"file://{demo_model(cache_root())}",
        served_model_name="smollm2",
        llamacpp={"parallel": 2, "ctx_size": 2048, "threads": 2},
    )
    inventory = tmp_path / "inv.py"
    inventory.write_text(f"hosts = [({name!r}, {data!r})]\n")
    loaded = load_inventory(inventory)
    cfg: HostConfig = loaded.hosts[name]
    first = run_pyinfra(loaded, deploy_host).results[name]
    assert first.ok and first.changed, first

    # What the snapshot reads on the deployed host vouches for every folder, file, user and unit.
    request = rerun_request(cfg, plan_host(cfg))
    out = harness.run(sandbox_host, ["sh", "-c", snapshot_command(request)], check=True).stdout
    snap = parse_snapshot(out.splitlines())
    assert all(snap.dir_ok(p) for p in request.paths if not p.endswith((".env", ".service")))
    for f in plan_host(cfg):
        assert snap.paths[f.path].sha256 is not None, f.path
    assert snap.unit_ok(UNIT) and snap.group_ok(cfg.service_user)
    assert {name for name, _ in request.sections} <= set(snap.sections)

    result, sent = rerun(loaded, name)
    assert result.ops == []  # not even an operation that would skip itself
    assert len(sent) == 1, sent

    # A folder's mode and the environment file's content drift: both are put back, and restarted.
    harness.run(sandbox_host, ["chmod", "755", "/etc/llmprov"], check=True)
    harness.run(sandbox_host, ["sh", "-c", f"echo DRIFT=1 >> {ENV}"], check=True)
    result, _ = rerun(loaded, name)
    assert "Settings folder" in changed(result)
    assert f"Upload {ENV}" in changed(result)
    assert f"Run {UNIT}" in changed(result)
    mode = harness.run(sandbox_host, ["stat", "-c", "%a", "/etc/llmprov"], check=True)
    assert mode.stdout.strip() == "700"
    assert "DRIFT" not in harness.run(sandbox_host, ["cat", ENV], check=True).stdout

    # The unit stopped, alone: started again.
    harness.run(sandbox_host, ["systemctl", "stop", UNIT], check=True)
    result, _ = rerun(loaded, name)
    assert changed(result) == [f"Run {UNIT}"]
    state = harness.run(sandbox_host, ["systemctl", "is-active", UNIT])
    assert state.stdout.strip() == "active"

    # The service user's shell changed: set back.
    harness.run(sandbox_host, ["usermod", "-s", "/bin/sh", cfg.service_user], check=True)
    result, _ = rerun(loaded, name)
    assert changed(result) == [f"User {cfg.service_user}"]

    result, sent = rerun(loaded, name)
    assert changed(result) == [] and len(sent) == 1, sent
