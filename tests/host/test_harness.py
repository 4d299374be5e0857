"""The sandbox harness on real hosts: systemd boots, pyinfra reaches them, teardown leaves nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from pyinfra.api import Config, Inventory, State
from pyinfra.api.connect import connect_all
from pyinfra.api.operation import add_op
from pyinfra.api.operations import run_ops
from pyinfra.operations import server

from llmprov.sandbox import Harness, SandboxHost, load_state, teardown
from llmprov.sandbox.harness import host_is_running, ssh_answers
from llmprov.sandbox.network import IP_FORWARD
from llmprov.sandbox.plan import iptables_argv

pytestmark = pytest.mark.host

REPO = Path(__file__).resolve().parents[2]


def pyinfra_state(hosts: list[SandboxHost]) -> State:
    inventory = Inventory(([h.inventory_entry() for h in hosts], {}))
    state = State(inventory, Config())
    connect_all(state)
    return state


def leftovers(harness_id: str, hosts: list[SandboxHost], work_dir: Path) -> list[str]:
    """Everything of these hosts and this harness that is still on the machine."""
    found: list[str] = []
    mounts = Path("/proc/self/mountinfo").read_text()
    found += [f"mount under {work_dir}" for line in mounts.splitlines() if str(work_dir) in line]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    found += [f"link ve-{h.name}" for h in hosts if f"ve-{h.name}@" in links]
    found += [f"cgroup {c}" for h in hosts for c in h.cgroups if c.exists()]
    found += [f"nspawn {h.nspawn_pid}" for h in hosts if host_is_running(h)]
    saved = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    found += [f"rule {line}" for line in saved.splitlines() if harness_id in line]
    if work_dir.exists():
        found.append(f"work dir {work_dir}")
    return found


def test_host_runs_systemd_as_pid_1_and_reaches_running(
    harness: Harness, sandbox_host: SandboxHost
) -> None:
    comm = harness.run(sandbox_host, ["cat", "/proc/1/comm"], check=True).stdout.strip()
    assert comm == "systemd"
    state = harness.run(sandbox_host, ["systemctl", "is-system-running"]).stdout.strip()
    assert state in ("running", "degraded")
    hostname = harness.run(sandbox_host, ["hostname"], check=True).stdout.strip()
    assert hostname == sandbox_host.name


def test_pyinfra_runs_an_operation_over_ssh(sandbox_host: SandboxHost) -> None:
    state = pyinfra_state([sandbox_host])
    host = state.inventory.get_host(sandbox_host.name)
    assert host.connected, "pyinfra could not connect over SSH"
    ops = add_op(state, server.shell, name="say hello", commands=["echo hello-from-$(hostname)"])
    run_ops(state)
    results = state.get_results_for_host(host)
    assert (results.success_ops, results.error_ops) == (1, 0)
    assert ops[host].stdout == f"hello-from-{sandbox_host.name}"


def test_four_hosts_boot_in_parallel_with_their_own_identity(
    harness: Harness, host_name: Callable[[], str]
) -> None:
    hosts = harness.boot_many([host_name() for _ in range(4)])
    try:
        assert len({h.address for h in hosts}) == 4
        assert all(ssh_answers(h.address) for h in hosts)
        ids = {harness.run(h, ["cat", "/etc/machine-id"], check=True).stdout for h in hosts}
        assert len(ids) == 4, "every clone of the base must get its own machine id"
        # Hosts reach each other over the sandbox network.
        ping = harness.run(hosts[0], ["python3", "-c", _tcp_probe(hosts[1].address, 22)])
        assert ping.stdout.startswith("SSH-"), ping.stderr
    finally:
        for host in hosts:
            harness.stop(host)


def test_host_reaches_the_debian_mirror_through_the_controller(
    harness: Harness, sandbox_host: SandboxHost
) -> None:
    result = harness.run(sandbox_host, ["apt-get", "update"], timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Err:" not in result.stdout


def test_host_fetches_from_a_directory_the_controller_serves(
    harness: Harness, sandbox_host: SandboxHost, tmp_path: Path
) -> None:
    (tmp_path / "wheel.txt").write_text("served")
    port = harness.serve_directory(tmp_path)
    url = f"http://{sandbox_host.gateway}:{port}/wheel.txt"
    code = (
        f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=10).read().decode())"
    )
    result = harness.run(sandbox_host, ["python3", "-c", code], check=True)
    assert result.stdout.strip() == "served"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/wheel.txt", timeout=5) as response:
        assert response.read() == b"served"


def test_stopped_host_leaves_no_link_mount_or_cgroup(
    harness: Harness, host_name: Callable[[], str]
) -> None:
    host = harness.boot(host_name())
    harness.stop(host)
    assert leftovers("-never-", [host], host.host_dir) == []
    assert host not in harness.hosts


@pytest.mark.parametrize("failure", [None, RuntimeError, KeyboardInterrupt])
def test_closing_removes_everything_even_when_the_block_fails(
    cache_dir: Path, host_name: Callable[[], str], failure: type[BaseException] | None
) -> None:
    ip_forward_before = IP_FORWARD.read_text()
    harness = Harness(cache_dir)
    hosts: list[SandboxHost] = []

    def use() -> None:
        with harness:
            hosts.append(harness.boot(host_name()))
            assert host_is_running(hosts[0])
            assert harness.rules
            for rule in harness.rules:
                assert subprocess.run(iptables_argv("check", rule)).returncode == 0, rule
            if failure is not None:
                raise failure("test failure inside the harness block")

    if failure is None:
        use()
    else:
        with pytest.raises(failure):
            use()
    assert leftovers(harness.harness_id, hosts, harness.work_dir) == []
    assert IP_FORWARD.read_text() == ip_forward_before


def test_interrupt_during_a_parallel_boot_leaves_nothing(
    cache_dir: Path, host_name: Callable[[], str]
) -> None:
    """Ctrl-C while hosts boot, as in `llmprov sandbox up`. It runs in a process of its own: once
    pyinfra's CLI module is imported (other tests do), gevent has replaced threads in this one."""
    names = [host_name() for _ in range(4)]
    script = (
        "import json, signal, sys, time\n"
        "from pathlib import Path\n"
        "from llmprov.sandbox import Harness\n"
        "def interrupt(signum, frame):\n"
        "    raise KeyboardInterrupt\n"
        "harness = Harness(Path(sys.argv[1]))\n"
        "signal.signal(signal.SIGALRM, interrupt)\n"
        "try:\n"
        "    with harness:\n"
        "        print(json.dumps([harness.harness_id, str(harness.work_dir)]), flush=True)\n"
        "        signal.setitimer(signal.ITIMER_REAL, 0.3)\n"
        "        harness.boot_many(sys.argv[2:])\n"
        "        time.sleep(30)\n"
        "except KeyboardInterrupt:\n"
        "    sys.exit(130)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(cache_dir), *names],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 130, proc.stdout + proc.stderr
    harness_id, work_dir = json.loads(proc.stdout.splitlines()[0])
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert not [n for n in names if f"ve-{n}@" in links]
    assert leftovers(harness_id, [], Path(work_dir)) == []


def test_detached_hosts_outlive_their_process_until_torn_down_from_state(
    cache_dir: Path, tmp_path: Path
) -> None:
    """What `llmprov sandbox up` and `down` do, with `up` in a process of its own."""
    state_dir = tmp_path / "sandbox"
    script = (
        "import argparse, sys\n"
        "from llmprov.cli import sandbox_cmd\n"
        "parser = argparse.ArgumentParser()\n"
        "sandbox_cmd.register(parser.add_subparsers(dest='command', required=True))\n"
        "args = parser.parse_args(sys.argv[1:])\n"
        "sys.exit(args.func(args))\n"
    )
    env = {**os.environ, "LLMPROV_CACHE": str(cache_dir)}

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", script, "sandbox", *argv, "--state-dir", str(state_dir)]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)

    prefix = f"u{os.getpid():x}x"
    up = cli("up", "--hosts", "2", "--prefix", prefix)
    assert up.returncode == 0, up.stderr
    state = load_state(state_dir / "state.json")
    try:
        assert [h.name for h in state.hosts] == [f"{prefix}1", f"{prefix}2"]
        assert all(host_is_running(h) and ssh_answers(h.address) for h in state.hosts)
        assert cli("up").returncode == 1, "a second `up` must refuse while hosts run"
        assert cli("status").returncode == 0

        pyinfra = str(Path(sys.executable).parent / "pyinfra")
        inventory_env = {**env, "LLMPROV_SANDBOX_STATE": str(state_dir / "state.json")}
        deploy = subprocess.run(
            [pyinfra, "-y", "inventories/sandbox.py", "exec", "--", "systemctl", "status"],
            capture_output=True,
            text=True,
            env=inventory_env,
            cwd=REPO,
            timeout=300,
        )
        assert deploy.returncode == 0, deploy.stdout + deploy.stderr

        down = cli("down")
        assert down.returncode == 0, down.stderr
        assert not (state_dir / "state.json").exists()
        assert leftovers(state.harness_id, state.hosts, state.work_dir) == []
    finally:
        if (state_dir / "state.json").exists():
            teardown(load_state(state_dir / "state.json"))


def _tcp_probe(address: str, port: int) -> str:
    return (
        f"import socket; s = socket.create_connection(({address!r}, {port}), timeout=5); "
        "print(s.recv(8).decode())"
    )
