"""Sandbox host records, the state file, and the `llmprov sandbox` argument parser."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from llmprov.cli import sandbox_cmd
from llmprov.sandbox import SandboxError, SandboxHost, SandboxState, load_state, save_state
from llmprov.sandbox.plan import FirewallRule

HOST = SandboxHost(
    name="t1",
    address="10.231.1.2",
    gateway="10.231.1.1",
    ssh_key=Path("/c/ssh/id_ed25519"),
    leader=4321,
    nspawn_pid=4320,
    index=1,
    host_dir=Path("/c/runs/ab/t1"),
    cgroups=(Path("/sys/fs/cgroup/systemd/llmprov-t1"), Path("/sys/fs/cgroup/unified/llmprov-t1")),
)


def test_inventory_entry_is_a_pyinfra_ssh_host_as_root_with_the_harness_key() -> None:
    assert HOST.inventory_entry() == (
        "t1",
        {
            "ssh_hostname": "10.231.1.2",
            "ssh_user": "root",
            "ssh_key": "/c/ssh/id_ed25519",
            "ssh_known_hosts_file": "/dev/null",
            "ssh_strict_host_key_checking": "no",
        },
    )


def test_state_survives_a_round_trip_through_its_file(tmp_path: Path) -> None:
    state = SandboxState(
        harness_id="ab12cd34",
        work_dir=Path("/c/runs/ab"),
        owns_work_dir=True,
        hosts=[HOST],
        rules=[FirewallRule("nat", "POSTROUTING", ("-s", "10.231.0.0/16", "-j", "MASQUERADE"))],
    )
    path = tmp_path / "sandbox" / "state.json"
    save_state(state, path)
    assert load_state(path) == state
    assert json.loads(path.read_text())["hosts"][0]["address"] == "10.231.1.2"


def test_missing_state_says_no_sandbox_is_up(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="no sandbox is up"):
        load_state(tmp_path / "state.json")


def test_state_of_another_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"version": 99}))
    with pytest.raises(SandboxError, match="version"):
        load_state(path)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmprov")
    sandbox_cmd.register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_sandbox_up_takes_a_host_count_and_a_state_dir() -> None:
    args = _parser().parse_args(["sandbox", "up", "--hosts", "3", "--state-dir", "/s"])
    assert (args.hosts, args.state_dir) == (3, Path("/s"))
    assert sandbox_cmd._state_path(args) == Path("/s/state.json")


def test_sandbox_up_names_hosts_from_a_prefix_that_keeps_names_valid() -> None:
    assert _parser().parse_args(["sandbox", "up"]).prefix == "sbx"
    assert _parser().parse_args(["sandbox", "up", "--prefix", "lab"]).prefix == "lab"
    with pytest.raises(SystemExit):
        _parser().parse_args(["sandbox", "up", "--prefix", "much-too-long"])


@pytest.mark.parametrize("count", ["0", "255", "x"])
def test_sandbox_up_refuses_host_counts_outside_the_subnets(count: str) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["sandbox", "up", "--hosts", count])


def test_sandbox_state_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMPROV_SANDBOX_STATE", "/x/state.json")
    args = _parser().parse_args(["sandbox", "status"])
    assert sandbox_cmd._state_path(args) == Path("/x/state.json")


def test_sandbox_down_without_state_is_not_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _parser().parse_args(["sandbox", "down", "--state-dir", str(tmp_path)])
    assert args.func(args) == 0
    assert "no sandbox is up" in capsys.readouterr().out
