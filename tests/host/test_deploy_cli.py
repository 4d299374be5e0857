"""`llmprov deploy --dry` on a real host: the planned operations are shown and nothing changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmprov.cache import cache_root, demo_model
from llmprov.cli.main import main
from llmprov.sandbox import Harness, SandboxHost

pytestmark = [pytest.mark.host]


def test_dry_run_lists_planned_changes_and_changes_nothing(
    harness: Harness,
    sandbox_host: SandboxHost,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name, data = sandbox_host.inventory_entry()
    data.update(
        engine="llamacpp", model=f"file://{demo_model(cache_root())}", served_model_name="smollm2"
    )
    inventory = tmp_path / "inv.py"
    inventory.write_text(f"hosts = [({name!r}, {data!r})]\n")

    assert main(["deploy", str(inventory), "--dry"]) == 0
    out = capsys.readouterr().out
    assert "planned changes (dry run)" in out
    planned = [line for line in out.splitlines() if line.strip().startswith(f"{name} ~")]
    assert any("Upload /etc/systemd/system/llmprov-llamacpp.service" in line for line in planned)
    assert any("User llamacpp" in line for line in planned)

    unit = harness.run(sandbox_host, ["test", "-e", "/etc/systemd/system/llmprov-llamacpp.service"])
    user = harness.run(sandbox_host, ["id", "llamacpp"])
    assert unit.returncode != 0 and user.returncode != 0, "a dry run must not change the host"


def test_unreachable_host_fails_the_deploy_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = demo_model(cache_root())
    inventory = tmp_path / "inv.py"
    # Nothing listens on loopback port 1: the connection is refused at once.
    data = {
        "ssh_hostname": "127.0.0.1",
        "ssh_port": 1,
        "engine": "llamacpp",
        "model": f"file://{model}",
    }
    inventory.write_text(f"hosts = [('ghost', {data!r})]\n")
    assert main(["deploy", str(inventory), "-y"]) == 1
    assert "no host could be reached" in capsys.readouterr().err
