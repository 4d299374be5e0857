"""What a host runs and what it keeps: the /etc/llmprov/state.json record, rollback and pruning.

Pure: the deploys read the file through a fact and upload what these functions render. The record
holds, per engine, the deployed version (its folder key under /opt/llmprov/<engine>, the model and
its digest, when) and the versions it replaced, most recent first, which `llmprov rollback` goes
back to and which pruning keeps.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from llmprov.core.layout import ENV_DIR, INSTALL_ROOT

STATE_PATH = f"{ENV_DIR}/state.json"
# macOS: llmprov keeps everything of its own under its install root (/etc is /private/etc, the
# system's). Windows: ProgramData/llmprov, the machine-wide data folder the Ollama deploy already
# makes (Program Files is for programs, and a service's data does not belong there).
MAC_STATE_PATH = f"{INSTALL_ROOT}/state.json"
WINDOWS_STATE_PATH = "C:/ProgramData/llmprov/state.json"
STATE_SCHEMA = 1
# What a deploy records when the link pointed at a version no record names (an older llmprov).
UNRECORDED = "unrecorded"


class StateError(ValueError):
    """state.json cannot be read as llmprov wrote it; the message says what is wrong."""


@dataclass(frozen=True)
class InstallState:
    """Installed versions (folders that finished unpacking) and the one `current` points at."""

    installed: tuple[str, ...]
    current: str | None

    def has(self, key: str) -> bool:
        return key in self.installed


def parse_install_state(lines: Iterable[str]) -> InstallState:
    """Output of the install-state fact: `installed KEY` lines and one `current TARGET` line."""
    installed: list[str] = []
    current: str | None = None
    for line in lines:
        word, _, value = line.strip().partition(" ")
        value = value.strip().replace("\\", "/").rstrip("/")
        if word == "installed" and value:
            installed.append(value)
        elif word == "current" and value:
            current = value.rsplit("/", 1)[-1]
    return InstallState(tuple(sorted(set(installed))), current)


@dataclass(frozen=True)
class Deployed:
    """One deployed version of an engine: what `current` pointed at, with what model, since when."""

    engine: str
    version: str
    key: str
    model: str
    model_digest: str | None
    time: str

    def same_as(self, other: Deployed) -> bool:
        """The same deploy apart from when it happened: a re-run that changes nothing."""
        return replace(self, time="") == replace(other, time="")


@dataclass(frozen=True)
class EngineState:
    current: Deployed | None
    previous: tuple[Deployed, ...] = ()

    def keys(self) -> list[str]:
        """Folder keys this record still needs: the current one, then the kept earlier ones."""
        found = [self.current.key] if self.current else []
        return found + [d.key for d in self.previous if d.key not in found]


State = Mapping[str, EngineState]


def _deployed(data: Any, where: str) -> Deployed:
    if not isinstance(data, dict):
        raise StateError(f"{where}: expected an object, got {type(data).__name__}")
    try:
        return Deployed(
            engine=str(data["engine"]),
            version=str(data["version"]),
            key=str(data["key"]),
            model=str(data["model"]),
            model_digest=None if data.get("model_digest") is None else str(data["model_digest"]),
            time=str(data["time"]),
        )
    except KeyError as exc:
        raise StateError(f"{where}: missing {exc.args[0]!r}") from exc


def state_path(os: str) -> str:
    """Where a host of `os` keeps the record."""
    return {"macos": MAC_STATE_PATH, "windows": WINDOWS_STATE_PATH}.get(os, STATE_PATH)


def parse_state(text: str | None, path: str = STATE_PATH) -> dict[str, EngineState]:
    """The record as read from a host (from `path`); a missing or empty file is an empty record."""
    if text is None or not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("schema") != STATE_SCHEMA:
        raise StateError(f"{path}: expected schema {STATE_SCHEMA}")
    engines = data.get("engines", {})
    if not isinstance(engines, dict):
        raise StateError(f"{path}: engines is not an object")
    out: dict[str, EngineState] = {}
    for engine, entry in engines.items():
        where = f"{path}: engines.{engine}"
        if not isinstance(entry, dict):
            raise StateError(f"{where}: expected an object")
        current = entry.get("current")
        previous = entry.get("previous", [])
        if not isinstance(previous, list):
            raise StateError(f"{where}.previous: expected a list")
        out[engine] = EngineState(
            current=None if current is None else _deployed(current, f"{where}.current"),
            previous=tuple(_deployed(p, f"{where}.previous[{i}]") for i, p in enumerate(previous)),
        )
    return out


def record_names(text: str | None, path: str, engine: str, serving: str | None) -> tuple[bool, str]:
    """Whether the record read from `path` names `serving` (what the host runs) for `engine`,
    and a line saying what each says: verify's check on every runtime."""
    if text is None:
        return False, f"{path} missing"
    try:
        recorded = parse_state(text, path).get(engine)
    except StateError as exc:
        return False, str(exc)
    if recorded is None or recorded.current is None:
        return False, f"{path} records no {engine} deploy; serving {serving}"
    now = recorded.current
    detail = f"{now.version} ({now.key}) since {now.time}; serving {serving}"
    return now.key == serving, detail


def render_state(state: State) -> str:
    engines = {
        engine: {
            "current": asdict(es.current) if es.current else None,
            "previous": [asdict(d) for d in es.previous],
        }
        for engine, es in sorted(state.items())
    }
    return json.dumps({"schema": STATE_SCHEMA, "engines": engines}, indent=2) + "\n"


def record_deploy(
    state: State, new: Deployed, keep: int, running: str | None = None
) -> dict[str, EngineState] | None:
    """The record after `new` was deployed, keeping `keep` earlier versions; None if unchanged.

    `running` is the key `current` pointed at before this deploy: a host deployed before records
    existed still gets its running version kept for rollback, marked as unrecorded.
    """
    if keep < 0:
        raise ValueError(f"keep must be 0 or more, got {keep}")
    old = state.get(new.engine, EngineState(None))
    if old.current is not None and old.current.same_as(new):
        return None
    earlier: list[Deployed] = []
    if old.current is not None:
        earlier.append(old.current)
    elif running is not None:
        earlier.append(Deployed(new.engine, UNRECORDED, running, UNRECORDED, None, UNRECORDED))
    earlier += old.previous
    kept: list[Deployed] = []
    for d in earlier:
        # A model change on the same version is not an earlier version to go back to.
        if d.key != new.key and all(k.key != d.key for k in kept):
            kept.append(d)
    return {**state, new.engine: EngineState(new, tuple(kept[:keep]))}


def record_rollback(
    state: State, engine: str, time: str, installed: Iterable[str]
) -> tuple[dict[str, EngineState], Deployed]:
    """The record after going back to the most recent earlier version that is still installed.

    The version rolled back from becomes the earlier one, so a second rollback undoes the first.
    """
    es = state.get(engine)
    if es is None or es.current is None:
        raise StateError(f"{STATE_PATH} records no {engine} deploy to roll back from")
    present = set(installed)
    target = next((d for d in es.previous if d.key in present), None)
    if target is None:
        known = ", ".join(d.key for d in es.previous) or "none recorded"
        raise StateError(
            f"no earlier {engine} version is installed to roll back to (earlier: {known}; "
            f"installed: {', '.join(sorted(present)) or 'none'})"
        )
    rest = [d for d in es.previous if d is not target]
    back = replace(target, time=time)
    return {**state, engine: EngineState(back, (es.current, *rest))}, back


def forget(state: State, engine: str) -> dict[str, EngineState]:
    """The record without `engine` (after an uninstall)."""
    return {k: v for k, v in state.items() if k != engine}


def prune_plan(installed: Iterable[str], keep: Iterable[str]) -> list[str]:
    """Installed version keys to remove: every one the record no longer needs."""
    kept = set(keep)
    return sorted(k for k in set(installed) if k not in kept)
