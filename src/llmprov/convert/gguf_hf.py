"""GGUF to a Hugging Face folder with transformers, written aside and renamed into place whole."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from llmprov.cache import sha256_file
from llmprov.convert.spec import (
    CONVERT_RECIPE,
    PROVENANCE_FILE,
    ConvertError,
    Provenance,
    cached_folder,
    check_dtype,
    is_complete,
    missing_files,
)

# The distributions the conversion needs: pyproject's `convert` extra installs them.
NEEDED = ("torch", "transformers", "gguf", "accelerate")


@dataclass(frozen=True)
class Converted:
    folder: Path
    seconds: float
    bytes: int
    reused: bool


def _versions() -> dict[str, str]:
    found: dict[str, str] = {}
    missing: list[str] = []
    for name in NEEDED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    if missing:
        raise ConvertError(
            f"converting GGUF needs {', '.join(missing)}: install llmprov's extra "
            "with `pip install 'llmprov[convert]'` (torch from the CPU index or a local wheel)"
        )
    return found


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _load_and_save(src: Path, dest: Path, dtype: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    # transformers 5 keeps GGUF weights packed unless told to dequantize, and refuses to save a
    # quantized model; clearing the quantizer after a dequantizing load lets it save plain weights.
    model = AutoModelForCausalLM.from_pretrained(
        str(src.parent),
        gguf_file=src.name,
        quantization_config=GgufConfig(gguf_file=src.name, dequantize=True),
        dtype=getattr(torch, dtype),
    )
    model.hf_quantizer = None  # type: ignore[assignment]
    model.save_pretrained(str(dest))
    tokenizer = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
    tokenizer.save_pretrained(str(dest))


def gguf_to_hf(src: Path, out: Path, dtype: str = "bfloat16", force: bool = False) -> Converted:
    """Convert `src` (a .gguf file) into the folder `out`.

    The folder appears only when complete: it is written under a temporary name beside `out`
    and renamed. An existing `out` from the same source and dtype is kept unless `force`.
    """
    check_dtype(dtype)
    if not src.is_file() or src.suffix != ".gguf":
        raise ConvertError(f"{src}: not a .gguf file")
    started = time.monotonic()
    digest = sha256_file(src)
    if out.exists() and not force:
        if is_complete(out, digest, dtype):
            return Converted(out, time.monotonic() - started, folder_bytes(out), reused=True)
        raise ConvertError(
            f"{out} exists and is not a conversion of {src.name} at {dtype}; "
            "remove it or pass --force"
        )
    versions = _versions()
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        _load_and_save(src, work, dtype)
        lacking = missing_files(p.name for p in work.iterdir())
        if lacking:
            raise ConvertError(f"the conversion of {src.name} lacks {', '.join(lacking)}")
        provenance = Provenance(src.name, digest, dtype, CONVERT_RECIPE, versions)
        (work / PROVENANCE_FILE).write_text(provenance.to_json() + "\n")
        # mkdtemp makes the folder 0700; the folder is uploaded with its own modes set by the deploy.
        os.chmod(work, 0o755)
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            work.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return Converted(out, time.monotonic() - started, folder_bytes(out), reused=False)


def cached_hf(src: Path, root: Path, dtype: str = "bfloat16") -> Converted:
    """The HF folder converted from `src`, from the controller cache or converted into it."""
    check_dtype(dtype)
    digest = sha256_file(src)
    folder = cached_folder(root, digest, dtype, src.stem)
    if is_complete(folder, digest, dtype):
        return Converted(folder, 0.0, folder_bytes(folder), reused=True)
    return gguf_to_hf(src, folder, dtype, force=True)
