"""What a conversion produces and where it is cached: pure rules, no heavy imports."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Dtype = Literal["bfloat16", "float16", "float32"]
DTYPES: tuple[str, ...] = ("bfloat16", "float16", "float32")
# What `llmprov models convert --to` makes: a Hugging Face folder (vLLM), a GGUF file (llama.cpp),
# or a model imported into a running Ollama.
TARGETS: tuple[str, ...] = ("hf", "gguf", "ollama")

# llama.cpp's convert_hf_to_gguf.py writes these itself (its --outtype); REFERENCE.md §5.
CONVERTER_TYPES: tuple[str, ...] = ("f32", "f16", "bf16", "q8_0")
# Everything else is made from an f16 file by llama-quantize. The list is the types its usage
# names in the pinned llama.cpp (tools/quantize/quantize.cpp), the common ones first.
QUANTIZE_TYPES: tuple[str, ...] = (
    "Q4_K_M", "Q5_K_M", "Q6_K", "Q4_K_S", "Q5_K_S", "Q3_K_M", "Q3_K_S", "Q3_K_L", "Q2_K",
    "Q4_0", "Q4_1", "Q5_0", "Q5_1", "IQ4_NL", "IQ4_XS", "MXFP4_MOE",
)  # fmt: skip
# The intermediate file llama-quantize reads: what upstream's docs quantize from.
QUANTIZE_FROM = "f16"
# A model for llama.cpp or Ollama converted during a deploy, where the inventory names no type.
DEPLOY_GGUF_TYPE = "f16"

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


def gguf_type(name: str) -> str:
    """The canonical spelling of a GGUF type (`q8_0`, `Q4_K_M`); ConvertError for an unknown one."""
    lowered = name.lower()
    for known in CONVERTER_TYPES:
        if lowered == known:
            return known
    for known in QUANTIZE_TYPES:
        if lowered == known.lower():
            return known
    valid = ", ".join((*CONVERTER_TYPES, *QUANTIZE_TYPES))
    raise ConvertError(f"--quant must be one of {valid}; got {name!r}")


def needs_quantize(gguf: str) -> bool:
    """Whether a type is made by llama-quantize rather than by the converter itself."""
    return gguf_type(gguf) not in CONVERTER_TYPES


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
