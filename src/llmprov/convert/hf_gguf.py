"""Hugging Face folder to GGUF with llama.cpp's own converter, then llama-quantize for other types.

convert_hf_to_gguf.py writes f32, f16, bf16 and q8_0 itself; any other type (Q4_K_M ...) is made by
llama-quantize from an f16 file, as upstream documents. The converter runs in this controller's
python (which has torch and transformers through the `convert` extra) with the vendored gguf-py
first on its path: PyPI's gguf lags the converter (REFERENCE.md §4). The file is written beside
the output and renamed when complete; a JSON sidecar records what it was made from.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from llmprov.cache import sha256_file
from llmprov.convert.llamacpp_tools import ConverterTree, converter_tree, llama_binaries
from llmprov.convert.progress import Report, Step, percent_of, silent, tensor_of
from llmprov.convert.spec import (
    CONVERT_RECIPE,
    PROVENANCE_FILE,
    QUANTIZE_FROM,
    ConvertError,
    Provenance,
    gguf_type,
    missing_files,
    needs_quantize,
)

# What convert_hf_to_gguf.py imports (requirements/requirements-convert_hf_to_gguf.txt upstream).
NEEDED = ("torch", "transformers", "numpy", "sentencepiece", "safetensors")
SIDECAR_SUFFIX = ".llmprov-convert.json"


@dataclass(frozen=True)
class ConvertedGguf:
    path: Path
    seconds: float
    bytes: int
    reused: bool


def _versions(tree: ConverterTree) -> dict[str, str]:
    found: dict[str, str] = {"llama.cpp": tree.llama_cpp_ref}
    missing: list[str] = []
    for name in NEEDED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    if missing:
        raise ConvertError(
            f"llama.cpp's converter needs {', '.join(missing)}: install llmprov's extra "
            "with `pip install 'llmprov[convert]'`"
        )
    return found


def folder_digest(folder: Path) -> str:
    """One sha256 over a folder's files (names and contents), hidden files and our record aside."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel == PROVENANCE_FILE or any(part.startswith(".") for part in rel.split("/")):
            continue
        h.update(f"{rel}\0{sha256_file(path)}\n".encode())
    return h.hexdigest()


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def is_complete_gguf(path: Path, source_digest: str, kind: str) -> bool:
    """Whether `path` is a finished conversion of that folder to that type."""
    record = sidecar(path)
    if not (path.is_file() and record.is_file()):
        return False
    try:
        prov = Provenance.from_json(record.read_text())
    except (ValueError, KeyError, TypeError):
        return False
    return (
        prov.source_sha256 == source_digest
        and prov.dtype == kind
        and prov.recipe == CONVERT_RECIPE
        and prov.versions.get("bytes") == str(path.stat().st_size)
    )


def _stream(cmd: list[str], env: dict[str, str], task: str, report: Report, parse: str) -> None:
    """Run a tool, turning its progress output into Steps; its last lines go into errors."""
    tail: deque[str] = deque(maxlen=25)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    assert proc.stdout is not None
    pending = b""
    while chunk := proc.stdout.read1(65536):  # type: ignore[attr-defined]
        pending += chunk
        # tqdm redraws with \r; a line ends at either.
        *lines, pending = re.split(rb"[\r\n]", pending)
        for raw in lines:
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            tail.append(line)
            if parse == "percent" and (pct := percent_of(line)) is not None:
                report(Step(task, pct, 100, "%"))
            elif parse == "tensors" and (pos := tensor_of(line)) is not None:
                report(Step(task, pos[0], pos[1], "tensors"))
    code = proc.wait()
    if code != 0:
        raise ConvertError(f"{Path(cmd[1]).name} failed (exit {code}):\n" + "\n".join(tail))
    report(Step(task, 1, 1, "", finished=True))


def run_converter(
    tree: ConverterTree, src: Path, out: Path, outtype: str, name: str, report: Report = silent
) -> None:
    env = dict(os.environ)
    env.pop("NO_LOCAL_GGUF", None)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(tree.gguf_py), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
    )
    cmd = [sys.executable, str(tree.script), str(src), "--outtype", outtype,
           "--outfile", str(out), "--model-name", name]  # fmt: skip
    _stream(cmd, env, f"convert to GGUF {outtype}", report, "percent")


def run_quantize(
    binary: Path, src: Path, out: Path, kind: str, report: Report = silent, threads: int = 0
) -> None:
    cmd = [str(binary), str(src), str(out), kind, str(threads or os.cpu_count() or 1)]
    _stream(cmd, dict(os.environ), f"quantize to {kind}", report, "tensors")


def hf_to_gguf(
    src: Path,
    out: Path,
    kind: str,
    root: Path,
    *,
    name: str | None = None,
    force: bool = False,
    report: Report = silent,
    digest: str | None = None,
) -> ConvertedGguf:
    """Convert the Hugging Face folder `src` into the GGUF file `out` of type `kind`.

    `root` is the controller cache (for the converter and llama-quantize). An existing `out`
    made from the same folder and type is kept unless `force`. `digest` is the folder's
    `folder_digest`, when the caller has it already.
    """
    kind = gguf_type(kind)
    if not src.is_dir():
        raise ConvertError(f"{src}: not a folder (a Hugging Face model folder is expected)")
    lacking = missing_files(p.name for p in src.iterdir())
    if lacking:
        raise ConvertError(f"{src} lacks {', '.join(lacking)}: not a Hugging Face model folder")
    if out.suffix != ".gguf":
        raise ConvertError(f"{out}: a GGUF output file name ends in .gguf")
    started = time.monotonic()
    digest = digest or folder_digest(src)
    if out.exists() and not force:
        if is_complete_gguf(out, digest, kind):
            return ConvertedGguf(out, time.monotonic() - started, out.stat().st_size, True)
        raise ConvertError(
            f"{out} exists and is not a conversion of {src.name} to {kind}; "
            "remove it or pass --force"
        )
    tree = converter_tree(root)
    versions = _versions(tree)
    model_name = name or src.name
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        result = work / "model.gguf"
        if needs_quantize(kind):
            tools = llama_binaries(root, report)
            base = work / f"{QUANTIZE_FROM}.gguf"
            run_converter(tree, src, base, QUANTIZE_FROM, model_name, report)
            run_quantize(tools.quantize, base, result, kind, report)
            versions["llama-quantize"] = tools.key
        else:
            run_converter(tree, src, result, kind, model_name, report)
        result.chmod(0o644)
        versions["bytes"] = str(result.stat().st_size)
        provenance = Provenance(src.name, digest, kind, CONVERT_RECIPE, versions)
        os.replace(result, out)
        record = sidecar(out)
        record.with_name(record.name + ".partial").write_text(provenance.to_json() + "\n")
        os.replace(record.with_name(record.name + ".partial"), record)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ConvertedGguf(out, time.monotonic() - started, out.stat().st_size, False)


def cached_gguf_path(root: Path, src: Path, digest: str, kind: str) -> Path:
    """Where the GGUF converted from one folder (by content) to one type is kept."""
    return root / "models" / "gguf" / f"{src.name}-{digest[:16]}-{kind}-r{CONVERT_RECIPE}.gguf"


def cached_gguf(
    src: Path, root: Path, kind: str, name: str | None = None, report: Report = silent
) -> ConvertedGguf:
    """The GGUF converted from `src`, from the controller cache or converted into it."""
    kind = gguf_type(kind)
    digest = folder_digest(src)
    path = cached_gguf_path(root, src, digest, kind)
    if is_complete_gguf(path, digest, kind):
        return ConvertedGguf(path, 0.0, path.stat().st_size, True)
    return hf_to_gguf(src, path, kind, root, name=name, force=True, report=report, digest=digest)
