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

import hashlib
import importlib
import inspect
import json
import os
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from pyinfra.api import Config, Inventory, State
from pyinfra.api import host as pyinfra_host
from pyinfra.api.command import FileUploadCommand, FunctionCommand, StringCommand
from pyinfra.api.connect import connect_all
from pyinfra.api.deploy import add_deploy
from pyinfra.api.operations import run_ops
from pyinfra.context import ctx_state

from llmprov.core.config import HostConfig
from llmprov.core.validate import ControllerFiles, validate_host
from llmprov.deploy import ollama as ollama_linux
from llmprov.deploy.engines import DEPLOYS

FIXTURES = Path(__file__).parent / "fixtures" / "ollama"
UPDATE = os.environ.get("LLMPROV_UPDATE_FIXTURES") == "1"
HOST = "@fake/ollama-host"
# Uploads larger than this are pinned by sha256 only (units are covered by the golden files).
INLINE_UPLOAD_CHARS = 2500


def fact_name(cls: type) -> str:
    module = cls.__module__.removeprefix("pyinfra.facts.").removeprefix("llmprov.facts.")
    prefix = "llmprov." if cls.__module__.startswith("llmprov.") else ""
    return f"{prefix}{module}.{cls.__name__}"


def kwargs_key(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(kwargs.items()))


class CannedFacts:
    """Answers fact requests from a case, and remembers which were asked."""

    def __init__(self, facts: dict[str, Any]) -> None:
        self.facts = facts
        self.asked: set[str] = set()

    def __call__(
        self, state: Any, host: Any, cls: type, args: Any = None, kwargs: Any = None
    ) -> Any:
        kwargs = dict(kwargs or {})
        fact = cls()
        inspect.signature(fact.command).bind(*(args or ()), **kwargs)  # the real signature
        name = fact_name(cls)
        if name not in self.facts:
            raise LookupError(f"case lacks fact <<{name}||{kwargs_key(kwargs)}>>")
        value = self.facts[name]
        key = kwargs_key(kwargs)
        if key:
            if not isinstance(value, dict) or key not in value:
                raise LookupError(f"case lacks fact <<{name}||{key}>>")
            value = value[key]
        self.asked.add(f"{name} {key}".strip())
        if name.startswith("llmprov."):
            lines = list(value)
            return fact.process(lines) if lines else fact.default()
        return value


def describe(command: Any) -> Any:
    if isinstance(command, StringCommand):
        return command.get_raw_value()
    if isinstance(command, FileUploadCommand):
        src = command.src
        if isinstance(src, StringIO):
            text = src.getvalue()
            entry: dict[str, Any] = {"upload": command.dest}
            if len(text) <= INLINE_UPLOAD_CHARS:
                entry["content"] = text.splitlines()
            else:
                entry["sha256"] = hashlib.sha256(text.encode()).hexdigest()
            return entry
        return {"upload": command.dest, "src": Path(str(src)).name}
    if isinstance(command, FunctionCommand):
        return {"function": getattr(command.function, "__name__", repr(command.function))}
    return repr(command)


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
    canned = CannedFacts(case["facts"])
    monkeypatch.setattr(pyinfra_host, "get_fact", canned)
    fetched = case.get("controller_fetches", {})

    def fetch_text(url: str) -> str:
        if url not in fetched:
            raise KeyError(f"case lacks controller fetch {url!r}")
        return str(fetched[url])

    monkeypatch.setattr(ollama_linux, "fetch_text", fetch_text)
    noops: list[str] = []

    def noop(self: Any, text: str) -> None:
        # The deploy's own notes, not those of pyinfra's operations (logged again on execution).
        if not self.in_op:
            noops.append(text)

    monkeypatch.setattr(pyinfra_host.Host, "noop", noop)

    inventory = Inventory(([(HOST, {"fake_delay": 0, "fake_delay_jitter": 0})], {}))
    state = State(inventory, Config())
    with ctx_state.use(state):
        connect_all(state)
    func = deploy_function(cfg)
    add_deploy(state, lambda: func(cfg))
    run_ops(state)
    host = inventory.get_host(HOST)
    operations = []
    for op_hash in state.get_op_order():
        data = state.ops[host].get(op_hash)
        if data is None:
            continue
        commands = data.operation_meta._commands or []
        if commands:
            name = ", ".join(sorted(state.get_op_meta(op_hash).names))
            entry: dict[str, Any] = {"name": name}
            if data.global_arguments.get("_sudo"):
                entry["sudo"] = True
            entry["commands"] = [describe(c) for c in commands]
            operations.append(entry)
    return {"operations": operations, "noops": noops, "failed": host in state.failed_hosts}


def cases() -> Iterator[Any]:
    for path in sorted(FIXTURES.glob("*/*.json")):
        yield pytest.param(path, id=f"{path.parent.name}/{path.stem}")


@pytest.mark.parametrize("path", list(cases()))
def test_deploy_matches_fixture(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = json.loads(path.read_text())
    got = run_case(case, monkeypatch)
    if UPDATE:
        case["expected"] = got
        path.write_text(json.dumps(case, indent=2, ensure_ascii=False) + "\n")
        return
    assert got == case["expected"]


def test_every_os_has_install_upgrade_and_settings_cases() -> None:
    names = {(p.parent.name, p.stem.split("-", 1)[0]) for p in FIXTURES.glob("*/*.json")}
    for os_name in ("linux", "macos", "windows"):
        for kind in ("install", "upgrade", "settings"):
            assert (os_name, kind) in names, f"no {kind} case for {os_name}"
