"""Which inventory hosts a run is about: pyinfra-style --limit patterns, then the --engine filter."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from llmprov.core.config import ENGINES
from llmprov.core.validate import FieldError


@dataclass(frozen=True)
class InventoryHost:
    """What selection needs of one inventory host: its name, groups and the engine its data names."""

    name: str
    groups: tuple[str, ...] = ()
    engine: object = None  # as written in the host's data: None when it names none


@dataclass(frozen=True)
class Selection:
    """The hosts a run is about, in inventory order, and the hosts --engine left out with why."""

    selected: list[str]
    # Hosts whose data names an engine other than --engine: they are neither validated nor contacted.
    left_out: dict[str, str] = field(default_factory=dict)
    errors: list[FieldError] = field(default_factory=list)
    # The engine each selected host gets: --engine for a host that names none, else None (its own).
    overrides: dict[str, str] = field(default_factory=dict)


def limit_patterns(values: Iterable[str]) -> list[str]:
    """Each --limit value split on commas, as Ansible's --limit and older pyinfra take them."""
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def _suggest(pattern: str, names: Sequence[str]) -> str:
    close = difflib.get_close_matches(pattern, names, n=3, cutoff=0.5)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def match_limit(
    hosts: Sequence[InventoryHost], values: Iterable[str]
) -> tuple[list[str], list[FieldError]]:
    """Host names in inventory order that a pattern matches: a group name, else an fnmatch glob.

    As in pyinfra, a group name wins over a host glob; a pattern that matches nothing is an error
    that names the closest host and group names.
    """
    names = [h.name for h in hosts]
    groups = sorted({g for h in hosts for g in h.groups})
    wanted: set[str] = set()
    errors: list[FieldError] = []
    for pattern in limit_patterns(values):
        if pattern in groups:
            hits = {h.name for h in hosts if pattern in h.groups}
        else:
            hits = {n for n in names if fnmatchcase(n, pattern)}
        if not hits:
            errors.append(
                FieldError(
                    pattern,
                    "--limit",
                    "matches no host or group in the inventory" + _suggest(pattern, names + groups),
                )
            )
        wanted |= hits
    return [n for n in names if n in wanted], errors


def _names_engine(value: object) -> str | None:
    """The engine a host names, or None where it names none or one llmprov does not know.

    A host with an unknown engine stays selected, so that validation reports the typo.
    """
    return value if isinstance(value, str) and value in ENGINES else None


def select_hosts(
    hosts: Sequence[InventoryHost], engine: str | None = None, limit: Iterable[str] | None = None
) -> Selection:
    """--limit narrows the inventory; --engine E then keeps hosts naming E or naming no engine."""
    limit = list(limit or [])
    if limit:
        names, errors = match_limit(hosts, limit)
    else:
        names, errors = [h.name for h in hosts], []
    by_name = {h.name: h for h in hosts}
    selected: list[str] = []
    left_out: dict[str, str] = {}
    overrides: dict[str, str] = {}
    for name in names:
        own = _names_engine(by_name[name].engine)
        if engine is None or own == engine:
            selected.append(name)
        elif own is None and by_name[name].engine is None:
            selected.append(name)
            overrides[name] = engine
        elif own is None:
            selected.append(name)  # an unknown engine: validation names the field
        else:
            left_out[name] = f"runs {own}, not {engine}"
    if names and not selected and not errors:
        errors.append(
            FieldError(
                "inventory",
                "--engine",
                f"no host runs {engine} or leaves its engine unset "
                f"(left out: {', '.join(f'{n} ({why})' for n, why in left_out.items())})",
            )
        )
    return Selection(selected=selected, left_out=left_out, errors=errors, overrides=overrides)
