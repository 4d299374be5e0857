"""Commands advise runs on a host (stop the other engines, read memory) and parsers of their output."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llmprov.core.layout import EngineLayout


class ProbeOutputError(ValueError):
    """Output of a probe command that does not have the expected shape."""


def unit_of(engine: str) -> str:
    return EngineLayout(engine).unit_name


def stop_command(units: Sequence[str], disable: bool = False) -> str:
    """Stop (and disable) each unit that exists; a unit never deployed is not an error."""
    verb = "disable --now" if disable else "stop"
    lines = [
        f"if systemctl cat {shlex.quote(u)} >/dev/null 2>&1; then systemctl {verb} {shlex.quote(u)}; fi"
        for u in units
    ]
    return " && ".join(lines) if lines else "true"


def start_command(unit: str) -> str:
    return f"systemctl start {shlex.quote(unit)}"


# Where systemd's hierarchy is mounted: cgroup v2 (Debian 12's default), then the hybrid and
# legacy layouts, which a host under a cgroup v1 parent (a container) still has.
CGROUP_ROOTS = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd")


def memory_command(unit: str) -> str:
    """`PID RSS_KB` per process in the unit's cgroup, under whichever layout the host has."""
    cg = f"$(systemctl show -p ControlGroup --value {shlex.quote(unit)})"
    roots = " ".join(CGROUP_ROOTS)
    return (
        f'cg={cg}; [ -n "$cg" ] || exit 3; procs=; '
        f'for root in {roots}; do [ -f "$root$cg/cgroup.procs" ] && '
        'procs="$root$cg/cgroup.procs" && break; done; [ -n "$procs" ] || exit 4; '
        'for p in $(cat "$procs"); do '
        "r=$(awk '/^VmRSS:/{print $2}' /proc/$p/status 2>/dev/null) && "
        '[ -n "$r" ] && echo "$p $r"; done; true'
    )


def parse_memory(lines: Iterable[str]) -> tuple[list[int], int]:
    """(pids, RSS in bytes summed) from `memory_command` output."""
    pids: list[int] = []
    total_kb = 0
    for line in lines:
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise ProbeOutputError(f"expected 'PID RSS_KB', got {line!r}")
        pids.append(int(parts[0]))
        total_kb += int(parts[1])
    if not pids:
        raise ProbeOutputError("the unit has no running process")
    return pids, total_kb * 1024


GPU_MEMORY_COMMAND = (
    "command -v nvidia-smi >/dev/null || exit 0; "
    "nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits"
)


def parse_gpu_memory(lines: Iterable[str], pids: Iterable[int]) -> float | None:
    """MiB of GPU memory held by `pids`, from nvidia-smi's `pid, used_memory` CSV; None when
    none of them holds any (or there is no nvidia-smi)."""
    wanted = set(pids)
    total = 0.0
    found = False
    for line in lines:
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 2 or not parts[0].isdigit():
            raise ProbeOutputError(f"expected 'pid, used_memory', got {line!r}")
        if int(parts[0]) in wanted:
            try:
                total += float(parts[1])
            except ValueError:
                raise ProbeOutputError(f"used_memory is not a number in {line!r}") from None
            found = True
    return total if found else None


def declared_not(engine_name: str, version_body: Mapping[str, Any]) -> str | None:
    """The server's own words where its version answer says it is not `engine_name` (a test
    double that says so in its own output); None where it says no such thing, as the engine."""
    marker = f"not {engine_name}".lower()
    for key, value in version_body.items():
        if key != "version" and isinstance(value, str) and marker in value.lower():
            return value
    return None
