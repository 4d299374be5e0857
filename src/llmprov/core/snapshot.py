"""One command that reads everything a re-run decides on (stat, sha256, users, units, named outputs).

A no-op re-run used to ask pyinfra for one fact per folder, file, user and unit, each an SSH round
trip, and ask again when each operation ran: about fifty commands per host. The snapshot is one
command per host. A deploy skips an operation only where the snapshot shows its target state
exactly (the strictest reading of what the operation itself would check); anything else, including
whatever the snapshot did not ask about, goes to pyinfra's own operation, which decides from its
own facts as before. So the snapshot can make a re-run cheaper but never make a change be missed.

The output is marked lines, one record each, so hosts need only a POSIX shell and coreutils.
"""

from __future__ import annotations

import shlex
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

MARK = "::llmprov-snapshot::"


class SnapshotError(ValueError):
    """A request the snapshot command cannot carry (a path with a line break, a blank name)."""


@dataclass(frozen=True)
class SnapshotRequest:
    """What to read: paths to stat, files to hash, users, groups, units, and named commands
    whose output lines are kept whole (each parsed by its own fact's parser)."""

    paths: tuple[str, ...] = ()
    hashed: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    sections: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PathStat:
    """A path as `stat` (not following links) saw it; `sha256` when it was asked for and a file."""

    kind: str  # "dir", "file", "link" or "other"
    user: str
    group: str
    mode: int
    sha256: str | None = None


@dataclass(frozen=True)
class UserEntry:
    home: str
    shell: str
    group: str  # primary group's name
    groups: frozenset[str]  # every group the user is in, the primary one included


@dataclass(frozen=True)
class UnitState:
    sub_state: str
    unit_file_state: str


@dataclass(frozen=True)
class Snapshot:
    """What the snapshot command read. Anything it was not asked about reads as unknown."""

    paths: Mapping[str, PathStat] = field(default_factory=dict)
    users: Mapping[str, UserEntry] = field(default_factory=dict)
    groups: frozenset[str] = frozenset()
    units: Mapping[str, UnitState] = field(default_factory=dict)
    sections: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Whether the command ran at all: an empty snapshot (a test's default) vouches for nothing.
    taken: bool = False

    def section(self, name: str) -> list[str] | None:
        """The output lines of a named command, or None where it was not part of the snapshot."""
        lines = self.sections.get(name)
        return None if lines is None else list(lines)

    def dir_ok(
        self, path: str, user: str | None = None, group: str | None = None, mode: str | None = None
    ) -> bool:
        """`path` is a folder with this owner and mode (each None: any), as files.directory wants."""
        s = self.paths.get(path)
        return s is not None and s.kind == "dir" and _owned(s, user, group, mode)

    def file_ok(
        self, path: str, sha256: str, user: str | None, group: str | None, mode: str | None
    ) -> bool:
        """`path` is a regular file with this content, owner and mode, as files.put wants."""
        s = self.paths.get(path)
        return (
            s is not None
            and s.kind == "file"
            and s.sha256 is not None
            and s.sha256 == sha256.lower()
            and _owned(s, user, group, mode)
        )

    def group_ok(self, name: str) -> bool:
        return name in self.groups

    def user_ok(self, name: str, group: str, groups: Iterable[str], home: str, shell: str) -> bool:
        """The user exists with exactly this primary group, extra groups, home and shell, and its
        home is a folder it owns (what server.user checks and would change)."""
        u = self.users.get(name)
        if u is None or (u.home, u.shell, u.group) != (home, shell, group):
            return False
        if u.groups - {u.group} != frozenset(groups) - {group}:
            return False
        return self.dir_ok(home, name, group)

    def unit_ok(self, unit: str) -> bool:
        """The unit runs and is enabled (strictly: `running` and `enabled`, nothing similar)."""
        u = self.units.get(unit)
        return u is not None and u.sub_state == "running" and u.unit_file_state == "enabled"


def _owned(s: PathStat, user: str | None, group: str | None, mode: str | None) -> bool:
    return (
        (user is None or s.user == user)
        and (group is None or s.group == group)
        and (mode is None or s.mode == int(str(mode), 8))
    )


def _check(items: Iterable[str], what: str) -> list[str]:
    out = list(items)
    for item in out:
        if not item or "\n" in item or "\r" in item:
            raise SnapshotError(f"snapshot: {what} {item!r} is empty or holds a line break")
    return out


def snapshot_command(req: SnapshotRequest) -> str:
    """One POSIX shell command printing a marked line per record; it always exits 0."""
    q = shlex.quote
    m = q(MARK)

    def each(items: Iterable[str], what: str) -> str:
        return " ".join(q(i) for i in _check(items, what))

    parts = [f"M={m}"]
    # One process each for every path's stat, every file's digest and every unit's state: the
    # host's forks share the controller's cores when the hosts are sandboxes, and cost anywhere.
    if req.paths:
        # A missing path prints nothing (its error goes to /dev/null); the others still print.
        parts.append(f'stat -c "$M path %f %U %G %a %n" -- {each(req.paths, "path")} 2>/dev/null')
    if req.hashed:
        parts.append(
            f'printf "%s hashes\\n" "$M"; sha256sum -- {each(req.hashed, "file")} 2>/dev/null'
        )
    if req.users:
        parts.append(
            f"for u in {each(req.users, 'user')}; do "
            'if e=$(getent passwd "$u"); then '
            'printf "%s user %s %s %s\\n" "$M" "$(id -gn "$u")" '
            '"$(id -Gn "$u" | tr " " ,)" "$e"; fi; done'
        )
    if req.groups:
        parts.append(
            f"for g in {each(req.groups, 'group')}; do "
            'getent group "$g" >/dev/null && printf "%s group %s\\n" "$M" "$g"; done'
        )
    if req.units:
        # `systemctl show` prints one block per unit, blank lines between them.
        parts.append(
            "if command -v systemctl >/dev/null 2>&1; then "
            'printf "%s units\\n" "$M"; '
            f"systemctl show -p Id -p SubState -p UnitFileState -- {each(req.units, 'unit')} "
            "2>/dev/null; fi"
        )
    for name, command in req.sections:
        _check([name], "section")
        if name.strip() != name:
            raise SnapshotError(f"snapshot: section {name!r} has surrounding blanks")
        # $(...) drops trailing newlines; the output is printed back with exactly one.
        parts.append(
            f'printf "%s section %s\\n" "$M" {q(name)}; '
            f"out=$( ( {command} ) 2>/dev/null ); "
            '[ -z "$out" ] || printf "%s\\n" "$out"'
        )
    parts.append("true")
    return "; ".join(parts)


def _path_stat(rest: str) -> tuple[str, PathStat] | None:
    bits = rest.split(" ", 4)
    if len(bits) != 5:
        return None
    raw, user, group, mode, path = bits
    try:
        fmt = stat.S_IFMT(int(raw, 16))
        perm = int(mode, 8)
    except ValueError:
        return None
    kind = {stat.S_IFDIR: "dir", stat.S_IFREG: "file", stat.S_IFLNK: "link"}.get(fmt, "other")
    return path, PathStat(kind, user, group, perm)


def _user(rest: str) -> tuple[str, UserEntry] | None:
    bits = rest.split(" ", 2)
    if len(bits) != 3:
        return None
    group, groups, entry = bits
    fields = entry.split(":")
    if len(fields) != 7 or not group:
        return None
    members = frozenset(g for g in groups.split(",") if g)
    return fields[0], UserEntry(home=fields[5], shell=fields[6], group=group, groups=members)


def _units(lines: list[str]) -> dict[str, UnitState]:
    """`systemctl show -p Id -p SubState -p UnitFileState` blocks, by Id."""
    units: dict[str, UnitState] = {}
    block: dict[str, str] = {}
    for line in [*lines, ""]:
        if line.strip():
            key, _, value = line.strip().partition("=")
            block[key] = value
            continue
        if block.get("Id"):
            units[block["Id"]] = UnitState(
                block.get("SubState", ""), block.get("UnitFileState", "")
            )
        block = {}
    return units


def _digests(lines: list[str]) -> dict[str, str]:
    """`sha256sum` lines; an escaped one (a name with a backslash or line break) is left out."""
    out: dict[str, str] = {}
    for line in lines:
        digest, _, path = line.partition("  ")
        if len(digest) == 64 and path and all(c in "0123456789abcdef" for c in digest):
            out[path] = digest
    return out


def parse_snapshot(lines: Iterable[str]) -> Snapshot:
    """The records of `snapshot_command`'s output; a record that does not parse reads as unknown."""
    paths: dict[str, PathStat] = {}
    users: dict[str, UserEntry] = {}
    groups: set[str] = set()
    sections: dict[str, list[str]] = {}
    hashes: list[str] = []
    unit_lines: list[str] = []
    current: list[str] | None = None
    prefix = MARK + " "
    for line in lines:
        if not line.startswith(prefix):
            if current is not None:
                current.append(line)
            continue
        current = None
        kind, _, rest = line[len(prefix) :].partition(" ")
        if kind == "path" and (p := _path_stat(rest)):
            paths[p[0]] = p[1]
        elif kind == "hashes" and not rest:
            current = hashes
        elif kind == "user" and (u := _user(rest)):
            users[u[0]] = u[1]
        elif kind == "group" and rest:
            groups.add(rest)
        elif kind == "units" and not rest:
            current = unit_lines
        elif kind == "section" and rest:
            current = sections.setdefault(rest, [])
    for path, digest in _digests(hashes).items():
        if path in paths and paths[path].kind == "file":
            s = paths[path]
            paths[path] = PathStat(s.kind, s.user, s.group, s.mode, digest)
    return Snapshot(
        paths=paths,
        users=users,
        groups=frozenset(groups),
        units=_units(unit_lines),
        sections={k: tuple(v) for k, v in sections.items()},
        taken=True,
    )
