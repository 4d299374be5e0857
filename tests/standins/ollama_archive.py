"""Builds release folders that look like Ollama's (archives plus sha256sum.txt) around the stand-in.

`build_release(mirror, "0.12.5", formats=("tgz",))` writes
`mirror/v0.12.5/ollama-linux-amd64.tgz` holding `bin/ollama` (tests/standins/ollama_standin.py with
the version written in) and `lib/ollama/`, and `mirror/v0.12.5/sha256sum.txt`, which is the layout
of a GitHub release and of `mirror.ollama_base_url` / `mirror.ollama_dir`.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterable
from pathlib import Path

STANDIN = Path(__file__).with_name("ollama_standin.py")
SUFFIXES = {"tgz": ".tgz", "zst": ".tar.zst"}


def standin_script(version: str, broken: bool = False) -> bytes:
    text = STANDIN.read_text()
    text, n = re.subn(
        r'^STANDIN_VERSION = ".*"$', f'STANDIN_VERSION = "{version}"', text, flags=re.M
    )
    assert n == 1, "STANDIN_VERSION line not found in the stand-in"
    if broken:
        text = text.replace("STANDIN_BROKEN = False", "STANDIN_BROKEN = True", 1)
    return text.encode()


def _tar(version: str, broken: bool) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:

        def add(name: str, data: bytes | None, mode: int) -> None:
            info = tarfile.TarInfo(name)
            info.mode = mode
            info.mtime = 0
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

        add("bin", None, 0o755)
        add("bin/ollama", standin_script(version, broken), 0o755)
        add("lib", None, 0o755)
        add("lib/ollama", None, 0o755)
        add("lib/ollama/README.standin", b"llmprov test stand-in: no real libraries here\n", 0o644)
    return buf.getvalue()


def _compress(raw: bytes, fmt: str) -> bytes:
    if fmt == "tgz":
        out = io.BytesIO()
        with (
            tarfile.open(fileobj=out, mode="w:gz") as tar,
            tarfile.open(fileobj=io.BytesIO(raw)) as src,
        ):
            for member in src.getmembers():
                tar.addfile(member, src.extractfile(member) if member.isfile() else None)
        return out.getvalue()
    zstd = shutil.which("zstd")
    if zstd is None:
        raise RuntimeError(
            "building a .tar.zst test archive needs the zstd command (apt-get install zstd)"
        )
    return subprocess.run([zstd, "-q", "-c"], input=raw, capture_output=True, check=True).stdout


def build_release(
    mirror: Path,
    version: str,
    formats: Iterable[str] = ("tgz",),
    arch: str = "amd64",
    broken: bool = False,
    flavours: Iterable[str] = (),
) -> dict[str, str]:
    """Write one release folder; returns {file name: sha256} as listed in its sha256sum.txt."""
    folder = mirror / f"v{version}"
    folder.mkdir(parents=True, exist_ok=True)
    raw = _tar(version, broken)
    sums: dict[str, str] = {}
    for stem in [f"ollama-linux-{arch}", *(f"ollama-linux-{arch}-{f}" for f in flavours)]:
        for fmt in formats:
            name = stem + SUFFIXES[fmt]
            data = _compress(raw, fmt)
            (folder / name).write_bytes(data)
            sums[name] = hashlib.sha256(data).hexdigest()
    (folder / "sha256sum.txt").write_text("".join(f"{d}  ./{n}\n" for n, d in sorted(sums.items())))
    return sums
