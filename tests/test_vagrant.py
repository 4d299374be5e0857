"""The Vagrantfile loads in real Vagrant, and inventories/vagrant.py reads the same list of machines."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from llmprov.inventory import load_inventory

ROOT = Path(__file__).resolve().parents[1]
MACHINES = json.loads((ROOT / "inventories" / "machines.json").read_text())["machines"]


@pytest.mark.skipif(
    shutil.which("vagrant") is None,
    reason="vagrant is not installed (scripts/setup.sh installs it)",
)
def test_vagrantfile_validates_with_every_machine() -> None:
    # Debian's vagrant lacks the winrm gem that loading a Windows machine's communicator needs;
    # tests/stubs/ruby gives it the few names it refers to (no WinRM connection is ever made).
    env = {
        **os.environ,
        "RUBYLIB": str(ROOT / "tests" / "stubs" / "ruby"),
        "VAGRANT_CHECKPOINT_DISABLE": "1",
    }
    proc = subprocess.run(
        ["vagrant", "validate", "--ignore-provider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Vagrantfile validated successfully" in proc.stdout
    for m in MACHINES:
        assert f"==> {m['name']}:" in proc.stdout


def test_vagrant_inventory_has_the_same_machines_and_validates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No VM is up here: `vagrant ssh-config` fails or is absent, and the inventory falls back to the IPs.
    monkeypatch.setenv("PATH", "/nonexistent")
    loaded = load_inventory(ROOT / "inventories" / "vagrant.py")
    assert list(loaded.hosts) == [m["name"] for m in MACHINES]
    for m in MACHINES:
        cfg = loaded.hosts[m["name"]]
        assert cfg.os == m["os"] and cfg.engine == m["engine"]
        data = loaded.host_data[m["name"]]
        assert m["ip"] in (data.get("ssh_hostname"), data.get("winrm_hostname"))
