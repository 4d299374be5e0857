"""Parsers of captured NVIDIA output (nvidia-smi, /proc, /sys) and the driver detection order."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from packaging.version import InvalidVersion, Version

from llmprov.core.cuda_matrix import format_driver

ComputeCapability = tuple[int, int]

# The query the GPU fact runs, and the one it falls back to on drivers whose nvidia-smi does not
# know compute_cap (it answers 'Field "compute_cap" is not a valid field to query.').
SMI_QUERY_FIELDS: tuple[str, ...] = ("name", "driver_version", "compute_cap", "memory.total")
SMI_FALLBACK_FIELDS: tuple[str, ...] = ("name", "driver_version", "memory.total")
SMI_DRIVER_FIELDS: tuple[str, ...] = ("driver_version",)

_NOT_AVAILABLE = {"[N/A]", "N/A", "[Not Supported]", "Not Supported", "[Unknown Error]", ""}
_DRIVER_RE = re.compile(r"^\d+\.\d+(?:\.\d+)?$")
_CC_RE = re.compile(r"^(\d+)\.(\d+)$")
_MEMORY_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(MiB|GiB|KiB)?$")
_PROC_RE = re.compile(r"Kernel Module(?:\s+for\s+\S+)?\s+(\d+\.\d+(?:\.\d+)?)(?:\s|$)")
_INVALID_FIELD_RE = re.compile(r'Field "([^"]+)" is not a valid field to query')
_NO_DEVICES = "No devices were found"


class NvidiaSmiError(ValueError):
    """nvidia-smi printed an error instead of GPU rows."""


class ComputeCapUnsupported(NvidiaSmiError):
    """This driver's nvidia-smi cannot report compute_cap; query SMI_FALLBACK_FIELDS instead."""


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as nvidia-smi reports it; None where it says [N/A] or the query lacked the field."""

    index: int
    name: str
    driver_version: Version | None
    compute_capability: ComputeCapability | None
    memory_mib: int | None

    def as_dict(self) -> dict[str, object]:
        cc = self.compute_capability
        return {
            "index": self.index,
            "name": self.name,
            "driver_version": (
                None if self.driver_version is None else format_driver(self.driver_version)
            ),
            "compute_capability": None if cc is None else f"{cc[0]}.{cc[1]}",
            "memory_mib": self.memory_mib,
        }


def nvidia_smi_query_argv(fields: Sequence[str] = SMI_QUERY_FIELDS) -> list[str]:
    """The argv of an nvidia-smi CSV query without header."""
    return ["nvidia-smi", f"--query-gpu={','.join(fields)}", "--format=csv,noheader"]


def _value(text: str) -> str | None:
    text = text.strip()
    return None if text in _NOT_AVAILABLE else text


def parse_driver_version(text: str) -> Version | None:
    """A driver version such as 550.54.14 or 570.26; None for [N/A] or anything else."""
    value = _value(text)
    if value is None or not _DRIVER_RE.match(value):
        return None
    try:
        return Version(value)
    except InvalidVersion:
        return None


def parse_compute_capability(text: str) -> ComputeCapability:
    """ "8.9" -> (8, 9). Raises ValueError for anything else."""
    match = _CC_RE.match(text.strip())
    if match is None:
        raise ValueError(f"not a compute capability: {text!r} (expected MAJOR.MINOR, e.g. 8.9)")
    return int(match.group(1)), int(match.group(2))


def _compute_capability(text: str) -> ComputeCapability | None:
    value = _value(text)
    return None if value is None else parse_compute_capability(value)


def _memory_mib(text: str) -> int | None:
    value = _value(text)
    if value is None:
        return None
    match = _MEMORY_RE.match(value)
    if match is None:
        raise NvidiaSmiError(f"unexpected memory.total value: {text.strip()!r}")
    amount = float(match.group(1))
    scale = {"GiB": 1024.0, "KiB": 1 / 1024}.get(match.group(2) or "MiB", 1.0)
    return round(amount * scale)


def _is_driver_cell(text: str) -> bool:
    return _value(text) is None or bool(_DRIVER_RE.match(text.strip()))


def _is_cc_cell(text: str) -> bool:
    return _value(text) is None or bool(_CC_RE.match(text.strip()))


def _raise_for_message(line: str) -> None:
    invalid = _INVALID_FIELD_RE.search(line)
    if invalid is not None and invalid.group(1) == "compute_cap":
        raise ComputeCapUnsupported(
            "this driver's nvidia-smi cannot report compute_cap (older driver): query "
            f"{','.join(SMI_FALLBACK_FIELDS)} instead"
        )
    if invalid is not None:
        raise NvidiaSmiError(f"nvidia-smi rejected the query field {invalid.group(1)!r}")
    raise NvidiaSmiError(f"nvidia-smi: {line.strip()}")


def parse_nvidia_smi_csv(lines: Iterable[str]) -> list[GpuInfo]:
    """Parse `nvidia-smi --query-gpu=name,driver_version[,compute_cap],memory.total
    --format=csv,noheader`: one GPU a line, in index order.

    Rows of the fallback query (without compute_cap) give compute_capability None.
    "No devices were found" gives no GPUs; any other message raises NvidiaSmiError.
    """
    gpus: list[GpuInfo] = []
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if line.startswith(_NO_DEVICES):
            return []
        cells = [c.strip() for c in line.split(",")]
        # Read from the right: a GPU name is free text, the other cells have fixed shapes.
        if len(cells) >= 4 and _is_driver_cell(cells[-3]) and _is_cc_cell(cells[-2]):
            name = ", ".join(cells[:-3])
            driver, capability = cells[-3], _compute_capability(cells[-2])
        elif len(cells) >= 3 and _is_driver_cell(cells[-2]):
            name = ", ".join(cells[:-2])
            driver, capability = cells[-2], None
        else:
            _raise_for_message(line)
            continue  # pragma: no cover - _raise_for_message always raises
        gpus.append(
            GpuInfo(
                index=len(gpus),
                name=name,
                driver_version=parse_driver_version(driver),
                compute_capability=capability,
                memory_mib=_memory_mib(cells[-1]),
            )
        )
    return gpus


def parse_proc_driver_version(text: str) -> Version | None:
    """The driver version in /proc/driver/nvidia/version ("NVRM version: NVIDIA UNIX x86_64
    Kernel Module  550.54.14  ..." or "... Open Kernel Module for aarch64  580.65.06 ...")."""
    for line in text.splitlines():
        if not line.startswith("NVRM version:"):
            continue
        match = _PROC_RE.search(line)
        if match is not None:
            return parse_driver_version(match.group(1))
    return None


def parse_sys_module_version(text: str) -> Version | None:
    """The driver version in /sys/module/nvidia/version (a single line, "570.133.20")."""
    lines = text.strip().splitlines()
    return parse_driver_version(lines[0]) if len(lines) == 1 else None


def parse_nvidia_smi_driver(lines: Iterable[str]) -> Version | None:
    """The first driver version in `nvidia-smi --query-gpu=driver_version --format=csv,noheader`."""
    for line in lines:
        version = parse_driver_version(line)
        if version is not None:
            return version
    return None


DriverSource = Literal["override", "sys_module", "proc", "nvidia-smi"]


@dataclass(frozen=True)
class DriverDetection:
    """A driver version and where it was read."""

    version: Version
    source: DriverSource


def detect_driver_version(
    *,
    override: str | None = None,
    sys_module: str | None = None,
    proc_version: str | None = None,
    nvidia_smi: Sequence[str] | None = None,
) -> DriverDetection | None:
    """The driver version from captured sources, in uv's order: an override (host data),
    /sys/module/nvidia/version, /proc/driver/nvidia/version, then nvidia-smi's driver_version.

    A source that is absent or unreadable is skipped. An override that is not a driver version
    raises ValueError: a user's stated value should not be silently replaced by detection.
    """
    if override is not None:
        version = parse_driver_version(override)
        if version is None:
            raise ValueError(f"driver override {override!r} is not a driver version (550.54.14)")
        return DriverDetection(version, "override")
    if sys_module is not None and (version := parse_sys_module_version(sys_module)) is not None:
        return DriverDetection(version, "sys_module")
    if (
        proc_version is not None
        and (version := parse_proc_driver_version(proc_version)) is not None
    ):
        return DriverDetection(version, "proc")
    if nvidia_smi is not None and (version := parse_nvidia_smi_driver(nvidia_smi)) is not None:
        return DriverDetection(version, "nvidia-smi")
    return None


def lowest_compute_capability(gpus: Iterable[GpuInfo]) -> ComputeCapability | None:
    """The lowest known compute capability across GPUs: every GPU must be covered by a build."""
    known = [g.compute_capability for g in gpus if g.compute_capability is not None]
    return min(known) if known else None


_GLIBC_RE = re.compile(r"(?:glibc|GLIBC|GNU libc|GNU C Library)\D*?(\d+)\.(\d+)")
_GLIBC_PLAIN_RE = re.compile(r"^\s*(\d+)\.(\d+)\s*$")


def parse_glibc_version(output: str | Sequence[str]) -> tuple[int, int] | None:
    """The glibc version from `getconf GNU_LIBC_VERSION` ("glibc 2.36") or the first line of
    `ldd --version` ("ldd (Debian GLIBC 2.36-9+deb12u4) 2.36"); None for musl or other text."""
    lines = output.splitlines() if isinstance(output, str) else list(output)
    for line in lines:
        plain = _GLIBC_PLAIN_RE.match(line)
        if plain is not None:
            return int(plain.group(1)), int(plain.group(2))
        if "musl" in line.lower():
            return None
        if line.startswith("ldd ") and ")" in line:
            # The version at the end of ldd's first line is glibc's own; the parenthesis is the
            # distribution's package version.
            tail = line.rsplit(")", 1)[1].strip()
            plain = _GLIBC_PLAIN_RE.match(tail)
            if plain is not None:
                return int(plain.group(1)), int(plain.group(2))
        match = _GLIBC_RE.search(line)
        if match is not None:
            return int(match.group(1)), int(match.group(2))
    return None
