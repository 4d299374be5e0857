"""`llmprov deploy`'s flow through pyinfra's API on @local: plan, confirm, execute, progress, JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llmprov.cli.main import main
from llmprov.cli.progress import LineProgress
from llmprov.core.config import HostConfig
from llmprov.deploy import engines
from llmprov.deploy.runner import PyinfraSession
from llmprov.inventory import load_inventory


def _inventory(tmp_path: Path, extra: str = "") -> Path:
    inv = tmp_path / "inv.py"
    data = {"engine": "llamacpp", "model": "hf://a/b/c.gguf"}
    inv.write_text(f"hosts = [('@local', {data!r})]\n{extra}")
    return inv


@pytest.fixture
def toy_deploy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The engine deploy replaced by one that creates a marker file: a change pyinfra can plan."""
    marker = tmp_path / "marker"

    def deploy(cfg: HostConfig) -> None:
        from pyinfra.operations import files

        files.file(name=f"Create {marker.name}", path=str(marker), present=True)

    monkeypatch.setattr(engines, "deploy_host", deploy)
    return marker


def test_dry_lists_the_planned_change_and_changes_nothing(
    tmp_path: Path, toy_deploy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deploy", str(_inventory(tmp_path)), "--dry"]) == 0
    out = capsys.readouterr().out
    assert "planned changes (dry run)" in out
    assert "@local ~ Create marker" in out
    assert not toy_deploy.exists()


def test_without_yes_and_without_a_terminal_nothing_runs(
    tmp_path: Path, toy_deploy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deploy", str(_inventory(tmp_path)), "--no-smoke"]) == 1
    captured = capsys.readouterr()
    # The plan is shown before the refusal: the user sees what would have changed.
    assert "@local ~ Create marker" in captured.out
    assert "pass -y" in captured.err
    assert not toy_deploy.exists()


def test_yes_executes_with_a_line_per_operation_when_not_a_terminal(
    tmp_path: Path, toy_deploy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deploy", str(_inventory(tmp_path)), "-y", "--no-smoke"]) == 0
    out = capsys.readouterr().out
    assert toy_deploy.exists()
    assert "@local: Create marker ..." in out
    assert "@local: Create marker: ok (" in out


def test_json_deploy_prints_one_object_with_the_operations(
    tmp_path: Path, toy_deploy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deploy", str(_inventory(tmp_path)), "-y", "--no-smoke", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema_version"] == 1 and doc["command"] == "deploy" and doc["ok"] is True
    ops = doc["hosts"]["@local"]["operations"]
    assert ops == [
        {"name": "Create marker", "would_change": True, "changed": True, "success": True}
    ]


def test_second_run_plans_no_change_and_needs_no_prompt(
    tmp_path: Path, toy_deploy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toy_deploy.touch()
    # No -y and no terminal: allowed, because nothing would change.
    assert main(["deploy", str(_inventory(tmp_path)), "--no-smoke"]) == 0
    assert "@local: no changes" in capsys.readouterr().out


def test_session_reports_progress_and_reads_host_files(tmp_path: Path, toy_deploy: Path) -> None:
    events: list[tuple[str, str, str]] = []

    class Recorder:
        def start(self, host: str, operation: str) -> None:
            events.append(("start", host, operation))

        def end(self, host: str, operation: str, ok: bool) -> None:
            events.append(("ok" if ok else "failed", host, operation))

        def output(self, host: str, line: str) -> None:
            events.append(("output", host, line))

    existing = tmp_path / "existing.txt"
    existing.write_text("one\ntwo\n")
    loaded = load_inventory(_inventory(tmp_path))
    session = PyinfraSession(loaded, engines.deploy_host, progress=Recorder())
    try:
        assert session.connect() == []
        plan = session.plan()
        assert [op.name for op in plan.results["@local"].planned] == ["Create marker"]
        assert events == []  # planning runs nothing
        assert session.file_contents("@local", str(existing)) == ["one", "two"]
        assert session.file_contents("@local", str(tmp_path / "absent")) is None
        session.execute()
    finally:
        session.close()
    assert events == [("start", "@local", "Create marker"), ("ok", "@local", "Create marker")]


def test_line_progress_prints_start_and_end(capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    p = LineProgress(sys.stdout)
    p.start("h1", "Build llama.cpp")
    p.end("h1", "Build llama.cpp", False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "h1: Build llama.cpp ..."
    assert lines[1].startswith("h1: Build llama.cpp: FAILED (") and lines[1].endswith("s)")


def _unreachable_inventory(tmp_path: Path) -> Path:
    inv = tmp_path / "inv.py"
    # Nothing listens on loopback port 1: the connection is refused at once.
    hosts: list[tuple[str, dict[str, Any]]] = [
        ("ghost", {"ssh_hostname": "127.0.0.1", "ssh_port": 1, "engine": "llamacpp"}),
        ("ghost-2", {"ssh_hostname": "127.0.0.1", "ssh_port": 1}),
        ("gpu", {"ssh_hostname": "127.0.0.1", "ssh_port": 1, "engine": "vllm"}),
    ]
    for _, data in hosts:
        data["model"] = "hf://a/b/c.gguf" if data.get("engine") != "vllm" else "hf://a/b"
    inv.write_text(f"hosts = {hosts!r}\n")
    return inv


def test_unreachable_hosts_get_one_line_each_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = _unreachable_inventory(tmp_path)
    assert main(["deploy", str(inv), "--engine", "llamacpp", "-y"]) == 1
    err = capsys.readouterr().err
    assert "ghost: unreachable: connection refused on 127.0.0.1:1" in err
    assert "ghost-2: unreachable: connection refused on 127.0.0.1:1" in err
    # The vllm host is left out, never contacted.
    assert "gpu: runs vllm, not llamacpp" in err
    assert "gpu: unreachable" not in err
    assert "Traceback" not in err and "known_hosts" not in err


def test_verify_unreachable_is_one_line_not_a_command_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = _unreachable_inventory(tmp_path)
    assert main(["verify", str(inv), "--limit", "ghost", "--json"]) == 1
    captured = capsys.readouterr()
    assert "ghost: unreachable: connection refused on 127.0.0.1:1" in captured.err
    assert "CommandResult" not in captured.out + captured.err
    doc = json.loads(captured.out)
    assert doc["schema_version"] == 1 and doc["ok"] is False
    assert doc["hosts"]["ghost"]["unreachable"].startswith("ghost: unreachable:")


def test_check_unreachable_through_ssh_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = _unreachable_inventory(tmp_path)
    # llamacpp listens on loopback by default: the check goes through an SSH tunnel, which fails.
    assert main(["check", str(inv), "--limit", "ghost", "--json"]) == 1
    captured = capsys.readouterr()
    assert "ghost: unreachable: connection refused on 127.0.0.1:1" in captured.err
    doc = json.loads(captured.out)
    assert doc["command"] == "check" and doc["hosts"]["ghost"]["ok"] is False


def test_diff_shows_files_to_upload_with_secrets_masked(
    tmp_path: Path, toy_deploy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "api-key.txt"
    key.write_text("sk-very-secret-value\n")
    inv = tmp_path / "inv.py"
    data = {
        "engine": "llamacpp",
        "model": "hf://a/b/c.gguf",
        "bind": "0.0.0.0",
        "api_key_file": str(key),
    }
    inv.write_text(f"hosts = [('@local', {data!r})]\n")
    assert main(["deploy", str(inv), "--dry", "--diff"]) == 0
    out = capsys.readouterr().out
    assert "sk-very-secret-value" not in out
    assert "+++ /etc/llmprov/llamacpp.env (to upload)" in out
    assert "********" in out


def test_verbose_shows_pyinfra_log_and_quiet_does_not(
    tmp_path: Path, toy_deploy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = str(_inventory(tmp_path))
    assert main(["deploy", inv, "--dry"]) == 0
    assert "Connected" not in capsys.readouterr().err
    assert main(["deploy", inv, "--dry", "-v"]) == 0
    assert "Connected" in capsys.readouterr().err
    # Back to quiet: -v in one run does not leak into the next.
    assert main(["deploy", inv, "--dry"]) == 0
    assert "Connected" not in capsys.readouterr().err


def test_a_failed_operation_shows_the_tail_of_its_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def deploy(cfg: HostConfig) -> None:
        from pyinfra.operations import server

        server.shell(name="Build thing", commands=["echo '[ 50%] step one'; echo step two; exit 3"])

    monkeypatch.setattr(engines, "deploy_host", deploy)
    assert main(["deploy", str(_inventory(tmp_path)), "-y", "--no-smoke"]) == 1
    out = capsys.readouterr().out
    assert "@local: Build thing: FAILED (" in out
    assert "@local:   [ 50%] step one\n@local:   step two" in out


def test_command_output_reaches_progress_as_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def deploy(cfg: HostConfig) -> None:
        from pyinfra.operations import server

        server.shell(name="Download", commands=["echo '10 MB of 98 MB'; echo '98 MB of 98 MB'"])

    monkeypatch.setattr(engines, "deploy_host", deploy)
    seen: list[str] = []

    class Steps:
        def start(self, host: str, operation: str) -> None: ...

        def end(self, host: str, operation: str, ok: bool) -> None: ...

        def output(self, host: str, line: str) -> None:
            seen.append(f"{host}|{line}")

    session = PyinfraSession(
        load_inventory(_inventory(tmp_path)), engines.deploy_host, progress=Steps()
    )
    try:
        session.connect()
        session.plan()
        session.execute()
    finally:
        session.close()
    assert seen == ["@local|10 MB of 98 MB", "@local|98 MB of 98 MB"]


def test_line_progress_shows_the_latest_step_of_a_long_operation() -> None:
    import io

    buf = io.StringIO()
    p = LineProgress(buf, every_s=0.0)
    p.start("h1", "Build llama.cpp")
    p.output("h1", "[ 45%] Building CXX object ggml.c.o")
    p.end("h1", "Build llama.cpp", True)
    lines = buf.getvalue().splitlines()
    assert lines[1].startswith("h1: Build llama.cpp (") and lines[1].endswith(
        "s): [ 45%] Building CXX object ggml.c.o"
    )
    assert len(lines) == 3  # no output tail after a success


def test_split_prefixed_reads_pyinfra_styled_prefixes() -> None:
    from llmprov.deploy.runner import split_prefixed

    assert split_prefixed("\x1b[0m[\x1b[1mgpu-1\x1b[0m]   Collecting vllm") == (
        "gpu-1",
        "Collecting vllm",
    )
    assert split_prefixed("no prefix here") is None


def test_host_key_notices_show_only_with_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    from pyinfra.connectors.sshuserclient.client import WarningPolicy

    from llmprov.deploy.runner import set_verbosity

    try:
        set_verbosity(0)
        WarningPolicy().missing_host_key(None, "10.0.0.5", None)
        assert "known_hosts" not in capsys.readouterr().err
        set_verbosity(1)
        WarningPolicy().missing_host_key(None, "10.0.0.5", None)
        assert "No host key for 10.0.0.5 found in known_hosts" in capsys.readouterr().err
    finally:
        set_verbosity(0)


def test_check_a_host_that_is_down_is_one_line_without_the_readiness_wait(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "key"
    key.write_text("k\n")
    inv = tmp_path / "inv.py"
    data = {
        # .invalid never resolves (RFC 6761): the host is down as far as the controller knows.
        "ssh_hostname": "no-such-host.invalid",
        "engine": "vllm",
        "model": "hf://a/b",
        "bind": "0.0.0.0",
        "api_key_file": str(key),
    }
    inv.write_text(f"hosts = [('far', {data!r})]\n")
    assert main(["check", str(inv), "--ready-timeout", "600"]) == 1
    err = capsys.readouterr().err
    assert "far: unreachable: host name not resolved on no-such-host.invalid:8000" in err


def test_verify_on_a_reachable_host_runs_its_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # This controller runs no engine: every check fails, but the host is reached, not "unreachable".
    assert main(["verify", str(_inventory(tmp_path)), "--json"]) == 1
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    host = doc["hosts"]["@local"]
    assert host["unreachable"] is None
    assert host["checks"][0]["name"] == "service user exists"
    assert "unreachable" not in captured.err
    assert "CommandResult" not in captured.out
