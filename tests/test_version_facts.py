"""The facts an upgrade decides on, their commands run for real on a folder here."""

from __future__ import annotations

import subprocess
from pathlib import Path

from llmprov.core.upgrade import InstallState
from llmprov.facts.versions import InstalledVersions, StateRecord


def run(command: str) -> list[str]:
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


def version(
    root: Path, key: str, binary: str = "bin/llama-server", marker: str | None = None
) -> None:
    program = root / key / binary
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    if marker:
        (root / key / marker).write_text("ok\n")


def test_only_complete_version_folders_count_and_current_is_read(tmp_path: Path) -> None:
    root = tmp_path / "llamacpp"
    version(root, "0.3.36-aaa")
    version(root, "0.3.36-bbb")
    version(root, "0.3.36-ccc.partial")  # an unpack that did not finish
    (root / "src").mkdir()  # sources and caches beside the versions
    (root / "cache").mkdir()
    (root / "0.3.36-ddd" / "bin").mkdir(parents=True)  # a build without its server
    (root / "current").symlink_to(root / "0.3.36-bbb")
    fact = InstalledVersions()
    state = fact.process(run(fact.command(str(root), "bin/llama-server")))
    assert state == InstallState(("0.3.36-aaa", "0.3.36-bbb"), "0.3.36-bbb")


def test_a_marker_written_last_is_required_where_given(tmp_path: Path) -> None:
    root = tmp_path / "vllm"
    version(root, "0.32.0-cpu", "bin/python", marker=".llmprov-ok")
    version(root, "0.31.0-cpu", "bin/python")  # built, never checked
    fact = InstalledVersions()
    state = fact.process(run(fact.command(str(root), "bin/python", ".llmprov-ok")))
    assert state == InstallState(("0.32.0-cpu",), None)


def test_a_missing_root_is_no_versions(tmp_path: Path) -> None:
    fact = InstalledVersions()
    assert run(fact.command(str(tmp_path / "none"), "bin/ollama")) == []


def test_the_state_record_is_read_whole_or_is_none(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    fact = StateRecord()
    assert run(fact.command(str(path))) == []
    path.write_text('{\n  "schema": 1\n}\n')
    assert fact.process(run(fact.command(str(path)))) == '{\n  "schema": 1\n}'
