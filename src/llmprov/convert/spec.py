"""What a conversion produces and where it is cached: pure rules, no heavy imports."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Dtype = Literal["bfloat16", "float16", "float32"]
DTYPES: tuple[str, ...] = ("bfloat16", "float16", "float32")
TARGETS: tuple[str, ...] = ("hf",)

# Written last into every converted folder: what it was made from, and by what.
PROVENANCE_FILE = "llmprov-convert.json"
# Bump when the conversion changes in a way that makes earlier cached folders wrong.
CONVERT_RECIPE = 1

# A folder missing any of these cannot be served by vLLM; weights are checked separately.
REQUIRED_FILES: tuple[str, ...] = ("config.json", "tokenizer_config.json")
TOKENIZER_FILES: tuple[str, ...] = ("tokenizer.json", "tokenizer.model")
WEIGHT_SUFFIXES: tuple[str, ...] = (".safetensors",)


class ConvertError(Exception):
    """A conversion cannot run or produced an unusable folder; the message says what to do."""


@dataclass(frozen=True)
class Provenance:
    source_name: str
    source_sha256: str
    dtype: str
    recipe: int
    versions: Mapping[str, str]

    def to_json(self) -> str:
        return json.dumps(
            {
                "source_name": self.source_name,
                "source_sha256": self.source_sha256,
                "dtype": self.dtype,
                "recipe": self.recipe,
                "versions": dict(sorted(self.versions.items())),
            },
            indent=2,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Provenance:
        data: Any = json.loads(text)
        return cls(
            source_name=str(data["source_name"]),
            source_sha256=str(data["source_sha256"]),
            dtype=str(data["dtype"]),
            recipe=int(data["recipe"]),
            versions={str(k): str(v) for k, v in dict(data.get("versions", {})).items()},
        )


def check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise ConvertError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return dtype


def cached_folder(root: Path, source_sha256: str, dtype: str, stem: str) -> Path:
    """Where the HF folder converted from one GGUF (by content) at one dtype is kept."""
    return root / "models" / "hf" / f"{stem}-{source_sha256[:16]}-{dtype}-r{CONVERT_RECIPE}"


def missing_files(names: Iterable[str]) -> list[str]:
    """What a Hugging Face folder with these file names lacks before an engine can load it."""
    present = set(names)
    missing = [name for name in REQUIRED_FILES if name not in present]
    if not any(name in present for name in TOKENIZER_FILES):
        missing.append(" or ".join(TOKENIZER_FILES))
    if not any(name.endswith(WEIGHT_SUFFIXES) for name in present):
        missing.append("*.safetensors")
    return missing


def is_complete(folder: Path, source_sha256: str, dtype: str) -> bool:
    """Whether `folder` is a finished conversion of that source at that dtype."""
    marker = folder / PROVENANCE_FILE
    if not marker.is_file():
        return False
    try:
        prov = Provenance.from_json(marker.read_text())
    except (ValueError, KeyError, TypeError):
        return False
    return (
        prov.source_sha256 == source_sha256
        and prov.dtype == dtype
        and prov.recipe == CONVERT_RECIPE
        and not missing_files(p.name for p in folder.iterdir())
    )
