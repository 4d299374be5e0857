"""`llmprov verify` reads the state record: it must name the version `current` points at."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from llmprov.checks.host_verify import verify_host
from llmprov.core.upgrade import (
    MAC_STATE_PATH,
    STATE_PATH,
    WINDOWS_STATE_PATH,
    Deployed,
    EngineState,
    record_names,
    render_state,
    state_path,
)
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
    assert not ok and "serving k2" in detail


def test_a_missing_record_fails(tmp_path: Path) -> None:
    ok, detail = record_check(tmp_path, {CURRENT: link("k1")})
    assert not ok and "missing" in detail


class FakeRun:
    """`host.run` of a compose host: `docker ps` names the running container's image."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.commands: list[str] = []

    def __call__(self, command: str) -> Any:
        self.commands.append(command)
        return SimpleNamespace(stdout=f"{self.image}\n", stderr="", rc=0)


def check_for(tmp_path: Path, data: dict[str, Any], host: Any) -> tuple[bool, str]:
    io = ControllerFiles(read=lambda p: "", exists=lambda p: False)
    cfg = validate_host("h1", {"model": "ollama://smollm2:135m", **data}, io)
    assert not isinstance(cfg, list), [str(e) for e in cfg]
    (check,) = [c for c in verify_host(cfg, host) if c.name.startswith("state record")]
    return check.ok, check.detail


def ollama_record(key: str) -> Any:
    d = Deployed(
        "ollama", "0.12.6", key, "ollama://smollm2:135m", None, "2026-01-01T00:00:00+00:00"
    )
    return SimpleNamespace(exists=True, content_string=render_state({"ollama": EngineState(d)}))


def test_a_compose_record_must_name_the_running_image(tmp_path: Path) -> None:
    data = {"engine": "ollama", "runtime": "compose"}
    host = FakeHost({STATE_PATH: ollama_record("ollama/ollama:0.12.6")})
    host.run = FakeRun("ollama/ollama:0.12.6")  # type: ignore[attr-defined]
    ok, detail = check_for(tmp_path, data, host)
    assert ok and "serving ollama/ollama:0.12.6" in detail
    ran = host.run.commands  # type: ignore[attr-defined]
    assert any("label=com.docker.compose.project=llmprov-ollama" in c for c in ran), ran
    host.run = FakeRun("ollama/ollama:0.12.3")  # type: ignore[attr-defined]
    ok, detail = check_for(tmp_path, data, host)
    assert not ok and "serving ollama/ollama:0.12.3" in detail


def test_a_mac_record_lives_under_the_install_root_and_names_the_linked_folder(
    tmp_path: Path,
) -> None:
    data = {"engine": "ollama", "os": "macos", "ollama": {"install_method": "app"}}
    mac_link = SimpleNamespace(exists=True, is_symlink=True, linked_to="/opt/llmprov/ollama/0.12.6")
    files = {MAC_STATE_PATH: ollama_record("0.12.6"), "/opt/llmprov/ollama/current": mac_link}
    ok, detail = check_for(tmp_path, data, FakeHost(files))
    assert ok, detail
    # The Linux path is not where a Mac keeps it.
    ok, detail = check_for(
        tmp_path,
        data,
        FakeHost(
            {
                STATE_PATH: files[MAC_STATE_PATH],
                **{k: v for k, v in files.items() if k != MAC_STATE_PATH},
            }
        ),
    )
    assert not ok and detail == f"{MAC_STATE_PATH} missing"


def test_state_paths_per_os() -> None:
    assert state_path("linux") == "/etc/llmprov/state.json"
    assert state_path("macos") == MAC_STATE_PATH == "/opt/llmprov/state.json"
    assert state_path("windows") == WINDOWS_STATE_PATH == "C:/ProgramData/llmprov/state.json"


def test_an_unreadable_record_fails_naming_its_path() -> None:
    ok, detail = record_names("{not json", MAC_STATE_PATH, "ollama", "0.12.6")
    assert not ok and detail.startswith(f"{MAC_STATE_PATH} is not JSON")
