"""pyinfra facts for NVIDIA GPUs and the driver version; parsing lives in llmprov.core.gpu."""

from __future__ import annotations

import shlex

from pyinfra.api.exceptions import FactProcessError
from pyinfra.api.facts import FactBase

from llmprov.core.gpu import (
    SMI_DRIVER_FIELDS,
    SMI_FALLBACK_FIELDS,
    SMI_QUERY_FIELDS,
    DriverDetection,
    GpuInfo,
    NvidiaSmiError,
    detect_driver_version,
    nvidia_smi_query_argv,
    parse_glibc_version,
    parse_nvidia_smi_csv,
)

SYS_MODULE_VERSION = "/sys/module/nvidia/version"
PROC_DRIVER_VERSION = "/proc/driver/nvidia/version"

# Line prefixes that tell NvidiaDriverVersion.process which source a line came from.
_SYS_TAG = "sys_module: "
_PROC_TAG = "proc: "
_SMI_TAG = "nvidia-smi: "

_SMI = shlex.join(nvidia_smi_query_argv(SMI_QUERY_FIELDS))
_SMI_FALLBACK = shlex.join(nvidia_smi_query_argv(SMI_FALLBACK_FIELDS))
_SMI_DRIVER = shlex.join(nvidia_smi_query_argv(SMI_DRIVER_FIELDS))


class NvidiaGpus(FactBase[list[GpuInfo]]):
    """The host's NVIDIA GPUs from nvidia-smi; empty when nvidia-smi is absent (no driver,
    Jetson boards) or reports no devices.

    Drivers whose nvidia-smi does not know compute_cap get the query without it, and the GPUs
    then carry compute_capability None. An nvidia-smi that cannot reach the driver is an error.
    """

    def command(self) -> str:
        # Always exits 0 so that "no nvidia-smi" is the empty default rather than a failed fact.
        return (
            "if command -v nvidia-smi >/dev/null 2>&1; then "
            f'if out=$({_SMI} 2>&1); then printf "%s\\n" "$out"; '
            f"else {_SMI_FALLBACK} 2>&1; fi; "
            "fi; true"
        )

    @staticmethod
    def default() -> list[GpuInfo]:
        return []

    def process(self, output: list[str]) -> list[GpuInfo]:
        try:
            return parse_nvidia_smi_csv(output)
        except NvidiaSmiError as exc:
            raise FactProcessError(str(exc)) from exc


class NvidiaDriverVersion(FactBase[DriverDetection | None]):
    """The NVIDIA driver version, read in uv's order: /sys/module/nvidia/version,
    /proc/driver/nvidia/version, then nvidia-smi; None when none of them is there.

    A version stated in host data overrides all of these: the deploy passes it to
    llmprov.core.gpu.detect_driver_version(override=...) instead of reading this fact.
    """

    def command(self) -> str:
        return (
            f"if [ -r {SYS_MODULE_VERSION} ]; then "
            f"sed 's/^/{_SYS_TAG}/' {SYS_MODULE_VERSION}; fi; "
            f"if [ -r {PROC_DRIVER_VERSION} ]; then "
            f"sed 's/^/{_PROC_TAG}/' {PROC_DRIVER_VERSION}; fi; "
            "if command -v nvidia-smi >/dev/null 2>&1; then "
            f"{_SMI_DRIVER} 2>/dev/null | sed 's/^/{_SMI_TAG}/'; fi; "
            "true"
        )

    @staticmethod
    def default() -> DriverDetection | None:
        return None

    def process(self, output: list[str]) -> DriverDetection | None:
        sources: dict[str, list[str]] = {_SYS_TAG: [], _PROC_TAG: [], _SMI_TAG: []}
        for line in output:
            for tag, lines in sources.items():
                if line.startswith(tag):
                    lines.append(line[len(tag) :])
                    break
        return detect_driver_version(
            sys_module="\n".join(sources[_SYS_TAG]) if sources[_SYS_TAG] else None,
            proc_version="\n".join(sources[_PROC_TAG]) if sources[_PROC_TAG] else None,
            nvidia_smi=sources[_SMI_TAG] or None,
        )


class GlibcVersion(FactBase[tuple[int, int] | None]):
    """The host's glibc (major, minor), for the manylinux floor of vLLM and torch wheels; None
    on musl or when neither getconf nor ldd answers."""

    def command(self) -> str:
        return "getconf GNU_LIBC_VERSION 2>/dev/null || ldd --version 2>&1 | head -n 1; true"

    @staticmethod
    def default() -> tuple[int, int] | None:
        return None

    def process(self, output: list[str]) -> tuple[int, int] | None:
        return parse_glibc_version(output)
