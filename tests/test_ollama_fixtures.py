"""The Ollama deploys, case by case, as pyinfra's own operation tests do it: canned facts in, exact
commands out. One JSON file per case under tests/fixtures/ollama/<os>/.

A case holds the host data (llmprov keys), the facts the host would report, the text the controller
would fetch (the release's sha256sum.txt), and what the deploy must do: every operation that runs a
command, with its exact commands, every upload with its content, and the noop notes. The deploy
runs through pyinfra's real API (State, operations, execution) against its `@fake` connector; only
fact answers are canned. A fact the case does not list fails the test with the key it needs, and
every fact's arguments are checked against the real fact's `command()` signature.

Facts from pyinfra are given as pyinfra returns them; llmprov's own facts are given as the command
output lines, which their real `process()` turns into values, so the parsers are exercised too.

`LLMPROV_UPDATE_FIXTURES=1 .venv/bin/pytest tests/test_ollama_fixtures.py` rewrites the expected
part of every case from what the deploy did; read the diff before keeping it.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixture_runner import CannedFacts, run_deploy
from structured import parse_case_output

from llmprov.core.config import HostConfig
from llmprov.core.validate import ControllerFiles, validate_host
from llmprov.deploy import ollama as ollama_linux
from llmprov.deploy import upgrade
from llmprov.deploy.engines import DEPLOYS

FIXTURES = Path(__file__).parent / "fixtures" / "ollama"
UPDATE = os.environ.get("LLMPROV_UPDATE_FIXTURES") == "1"
HOST = "@fake/ollama-host"
# When a deploy's state record says it happened.
RECORD_TIME = "2026-01-01T00:00:00+00:00"


def deploy_function(cfg: HostConfig) -> Any:
    module, _, func = DEPLOYS[(cfg.engine, cfg.os, cfg.runtime)].partition(":")
    return getattr(importlib.import_module(module), func)


def run_case(case: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    files_dir = FIXTURES / "files"
    result = validate_host(
        HOST,
        case["host_data"],
        ControllerFiles(
            read=lambda p: (files_dir / p).read_text(), exists=lambda p: (files_dir / p).exists()
        ),
        base_dir=str(files_dir),
    )
    assert not isinstance(result, list), [str(e) for e in result]
    cfg = result
    fetched = case.get("controller_fetches", {})

    def fetch_text(url: str) -> str:
        if url not in fetched:
            raise KeyError(f"case lacks controller fetch {url!r}")
        return str(fetched[url])

    monkeypatch.setattr(ollama_linux, "fetch_text", fetch_text)
    monkeypatch.setattr(upgrade, "now", lambda: RECORD_TIME)
    func = deploy_function(cfg)
    plan = run_deploy(lambda: func(cfg), monkeypatch, CannedFacts(case["facts"]), HOST)
    return plan.as_case()


def cases() -> Iterator[Any]:
    for path in sorted(FIXTURES.glob("*/*.json")):
        yield pytest.param(path, id=f"{path.parent.name}/{path.stem}")


@pytest.mark.parametrize("path", list(cases()))
def test_deploy_matches_fixture(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = json.loads(path.read_text())
    got = run_case(case, monkeypatch)
    # What is compared as text must be a document its reader takes: plists, WinSW XML, PowerShell.
    parse_case_output(got, windows=path.parent.name == "windows")
    if UPDATE:
        case["expected"] = got
        path.write_text(json.dumps(case, indent=2, ensure_ascii=False) + "\n")
        return
    assert got == case["expected"]


def test_the_cases_hold_plists_winsw_definitions_and_powershell_to_parse() -> None:
    suffixes: set[str] = set()
    for path in FIXTURES.glob("*/*.json"):
        for op in json.loads(path.read_text())["expected"]["operations"]:
            for command in op["commands"]:
                if isinstance(command, dict) and "content" in command:
                    suffixes.add(Path(command["upload"]).suffix)
    assert {".plist", ".xml", ".ps1"} <= suffixes


def test_every_os_has_install_upgrade_and_settings_cases() -> None:
    names = {(p.parent.name, p.stem.split("-", 1)[0]) for p in FIXTURES.glob("*/*.json")}
    for os_name in ("linux", "macos", "windows"):
        for kind in ("install", "upgrade", "settings"):
            assert (os_name, kind) in names, f"no {kind} case for {os_name}"
