"""`llmprov verify` reads the state record: it must name the version `current` points at."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from llmprov.checks.host_verify import verify_host
from llmprov.core.upgrade import STATE_PATH, Deployed, EngineState, render_state
from llmprov.core.validate import ControllerFiles, validate_host

CURRENT = "/opt/llmprov/llamacpp/current"


class FakeHost:
    """The testinfra calls the record check makes; every other check fails on AttributeError."""

    def __init__(self, files: dict[str, Any]) -> None:
        self.files = files

    def file(self, path: str) -> Any:
        return self.files.get(path, SimpleNamespace(exists=False, is_symlink=False))


def record_check(tmp_path: Path, files: dict[str, Any]) -> tuple[bool, str]:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    io = ControllerFiles(read=lambda p: Path(p).read_text(), exists=lambda p: Path(p).exists())
    cfg = validate_host("h1", {"engine": "llamacpp", "model": f"file://{model}"}, io)
    assert not isinstance(cfg, list)
    (check,) = [c for c in verify_host(cfg, FakeHost(files)) if c.name.startswith("state record")]
    return check.ok, check.detail


def state_file(key: str) -> Any:
    d = Deployed("llamacpp", "0.3.36", key, "file:///m.gguf", None, "2026-01-01T00:00:00+00:00")
    text = render_state({"llamacpp": EngineState(d)})
    return SimpleNamespace(exists=True, content_string=text)


def link(key: str) -> Any:
    return SimpleNamespace(exists=True, is_symlink=True, linked_to=f"/opt/llmprov/llamacpp/{key}")


def test_the_record_naming_the_linked_version_passes(tmp_path: Path) -> None:
    ok, detail = record_check(tmp_path, {STATE_PATH: state_file("k1"), CURRENT: link("k1")})
    assert ok and "0.3.36 (k1)" in detail


def test_a_record_naming_another_version_fails(tmp_path: Path) -> None:
    ok, detail = record_check(tmp_path, {STATE_PATH: state_file("k1"), CURRENT: link("k2")})
    assert not ok and "-> k2" in detail


def test_a_missing_record_fails(tmp_path: Path) -> None:
    ok, detail = record_check(tmp_path, {CURRENT: link("k1")})
    assert not ok and "missing" in detail
