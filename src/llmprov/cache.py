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
