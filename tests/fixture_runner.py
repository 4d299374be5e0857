"""Running a deploy through pyinfra's real API against its `@fake` host, with canned fact answers.

The one runner the plan and fixture tests share (Ollama's, compose's, model placement's, vLLM's and
the upgrade protocol's): State, operations and execution are pyinfra's own; only fact answers are
canned. Two ways to can them: `CannedFacts`, strict, from a JSON case (a fact the case does not
list fails with the key it needs, and every fact's arguments are checked against the real fact's
`command()` signature; llmprov's own facts are given as command output lines so their parsers
run); and `loose_facts`, for plan tests that state only the facts they are about.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from pyinfra.api import Config, Inventory, State
from pyinfra.api import host as pyinfra_host
from pyinfra.api.command import FileUploadCommand, FunctionCommand, StringCommand
from pyinfra.api.connect import connect_all
from pyinfra.api.deploy import add_deploy
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.operations import run_ops
from pyinfra.context import ctx_state

HOST = "@fake/host"
# Uploads larger than this are pinned by sha256 only (units are covered by the golden files).
INLINE_UPLOAD_CHARS = 2500

GetFact = Callable[..., Any]


def fact_name(cls: type) -> str:
    module = cls.__module__.removeprefix("pyinfra.facts.").removeprefix("llmprov.facts.")
    prefix = "llmprov." if cls.__module__.startswith("llmprov.") else ""
    return f"{prefix}{module}.{cls.__name__}"


def kwargs_key(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(kwargs.items()))


class CannedFacts:
    """Answers fact requests from a case, strictly; `placeholder` may rewrite an answer first."""

    def __init__(
        self,
        facts: dict[str, Any],
        placeholder: Callable[[Any, dict[str, Any]], Any] | None = None,
    ) -> None:
        self.facts = facts
        self.placeholder = placeholder
        self.asked: set[str] = set()

    def __call__(
        self, state: Any, host: Any, cls: type, args: Any = None, kwargs: Any = None
    ) -> Any:
        kwargs = dict(kwargs or {})
        fact = cls()
        inspect.signature(fact.command).bind(*(args or ()), **kwargs)  # the real signature
        name = fact_name(cls)
        key = kwargs_key(kwargs)
        if name not in self.facts:
            raise LookupError(f"case lacks fact <<{name}||{key}>>")
        value = self.facts[name]
        if key:
            if not isinstance(value, dict) or key not in value:
                raise LookupError(f"case lacks fact <<{name}||{key}>>")
            value = value[key]
        self.asked.add(f"{name} {key}".strip())
        if self.placeholder is not None:
            value = self.placeholder(value, kwargs)
        if name.startswith("llmprov."):
            lines = list(value)
            return fact.process(lines) if lines else fact.default()
        return value


def loose_facts(
    answers: dict[tuple[str, str], Any],
    asked: list[str] | None = None,
    which: Callable[[str], str | None] = lambda cmd: f"/usr/bin/{cmd}",
) -> GetFact:
    """Answers keyed by (fact class name, its path or command argument); others read as absent."""

    def get_fact(state: Any, host: Any, cls: type, args: Any = None, kwargs: Any = None) -> Any:
        kwargs = dict(kwargs or {})
        arg = str(kwargs.get("path", kwargs.get("command", "")))
        if asked is not None:
            asked.append(f"{cls.__name__} {arg}".strip())
        if (cls.__name__, arg) in answers:
            return answers[(cls.__name__, arg)]
        if cls.__name__ == "Which":
            return which(arg)
        if cls.__name__ in ("DebPackages", "Users", "Groups"):
            return {}
        simple = {
            "Arch": "x86_64",
            "Os": "Linux",
            "LinuxName": "Debian",
            "Home": "/root",
            "TmpDir": "/tmp",
        }
        if cls.__name__ in simple:
            return simple[cls.__name__]
        fact = cls()
        return fact.default() if hasattr(fact, "default") else None

    return get_fact


def describe(command: Any, inline_chars: int | None = INLINE_UPLOAD_CHARS) -> Any:
    """A command as a case records it; `inline_chars=None` keeps an upload's whole text."""
    if isinstance(command, StringCommand):
        return command.get_raw_value()
    if isinstance(command, FileUploadCommand):
        src = command.src
        if isinstance(src, StringIO):
            text = src.getvalue()
            if inline_chars is None:
                return {"upload": command.dest, "text": text}
            entry: dict[str, Any] = {"upload": command.dest}
            if len(text) <= inline_chars:
                entry["content"] = text.splitlines()
            else:
                entry["sha256"] = hashlib.sha256(text.encode()).hexdigest()
            return entry
        return {"upload": command.dest, "src": Path(str(src)).name}
    if isinstance(command, FunctionCommand):
        return {"function": getattr(command.function, "__name__", repr(command.function))}
    return repr(command)


@dataclass
class Op:
    name: str
    commands: list[Any]
    sudo: bool = False


@dataclass
class Plan:
    """What a deploy did on the fake host: operations that ran commands, its notes, the outcome."""

    ops: list[Op] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failed: bool = False
    # The facts the deploy asked for, as "Class arg", when the caller collects them.
    asked: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [op.name for op in self.ops]

    def commands(self, prefix: str) -> list[Any]:
        found = [op.commands for op in self.ops if op.name.startswith(prefix)]
        assert len(found) == 1, (prefix, self.names)
        return found[0]

    def as_case(self) -> dict[str, Any]:
        """The `expected` part of a JSON case."""
        operations = []
        for op in self.ops:
            entry: dict[str, Any] = {"name": op.name}
            if op.sudo:
                entry["sudo"] = True
            entry["commands"] = op.commands
            operations.append(entry)
        return {"operations": operations, "noops": self.notes, "failed": self.failed}


def run_deploy(
    func: Callable[[], Any],
    monkeypatch: pytest.MonkeyPatch,
    get_fact: GetFact,
    host_name: str = HOST,
    inline_chars: int | None = INLINE_UPLOAD_CHARS,
) -> Plan:
    """Add `func` as the deploy of one fake host, run it, and return what it did.

    An exception while the deploy adds its operations propagates (a refusal before any operation);
    a failing operation marks the plan failed.
    """
    monkeypatch.setattr(pyinfra_host, "get_fact", get_fact)
    plan = Plan()

    def noop(self: Any, text: str) -> None:
        # The deploy's own notes, not those of pyinfra's operations (logged again on execution).
        if not self.in_op:
            plan.notes.append(text)

    monkeypatch.setattr(pyinfra_host.Host, "noop", noop)
    inventory = Inventory(([(host_name, {"fake_delay": 0, "fake_delay_jitter": 0})], {}))
    state = State(inventory, Config())
    with ctx_state.use(state):
        connect_all(state)
    add_deploy(state, func)
    # "No hosts remaining!" when the one host fails, which the plan reports as failed.
    with contextlib.suppress(PyinfraError):
        run_ops(state)
    host = inventory.get_host(host_name)
    for op_hash in state.get_op_order():
        data = state.ops[host].get(op_hash)
        if data is None:
            continue
        commands = data.operation_meta._commands or []
        if commands:
            name = ", ".join(sorted(state.get_op_meta(op_hash).names))
            described = [describe(c, inline_chars) for c in commands]
            plan.ops.append(Op(name, described, bool(data.global_arguments.get("_sudo"))))
    plan.failed = host in state.failed_hosts
    return plan
