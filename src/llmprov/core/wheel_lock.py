"""Locked wheel sets resolved on the controller for a host: target tags, the lock, its cache key."""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

# Bump when the lock's shape or the way it is resolved changes: older locks are then resolved again.
LOCK_FORMAT = 1
# The oldest glibc any manylinux tag names (manylinux_2_5 is manylinux1).
_MANYLINUX_FLOOR = 5
# The legacy names of manylinux_2_17, _2_12 and _2_5 (PEP 600), which older wheels still carry.
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class WheelLockError(Exception):
    """A resolution cannot become a lock (no hash, not a wheel); the message says which package."""


@dataclass(frozen=True)
class Target:
    """The interpreter and platform a host installs wheels for."""

    python: tuple[int, int]  # (3, 11)
    machine: str  # uname -m: x86_64, aarch64
    glibc: tuple[int, int]  # (2, 36)

    def platforms(self) -> list[str]:
        """Every platform tag a wheel for this host may carry, newest glibc first (PEP 600)."""
        major, minor = self.glibc
        if major != 2:
            raise WheelLockError(f"glibc {major}.{minor} is not a glibc 2.x manylinux can target")
        tags: list[str] = []
        for m in range(minor, _MANYLINUX_FLOOR - 1, -1):
            tags.append(f"manylinux_2_{m}_{self.machine}")
            if m in _LEGACY_MANYLINUX:
                tags.append(f"{_LEGACY_MANYLINUX[m]}_{self.machine}")
        tags.append(f"linux_{self.machine}")
        return tags

    def pip_args(self) -> list[str]:
        """pip's arguments that resolve for this host instead of the controller's own platform."""
        py = f"{self.python[0]}{self.python[1]}"
        args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", py]
        args += ["--abi", f"cp{py}", "--abi", "abi3", "--abi", "none"]
        for tag in self.platforms():
            args += ["--platform", tag]
        return args

    def as_dict(self) -> dict[str, Any]:
        return {"python": list(self.python), "machine": self.machine, "glibc": list(self.glibc)}


def parse_python_version(text: str) -> tuple[int, int]:
    """`3.11` (as the host's python prints it) as (3, 11); WheelLockError otherwise."""
    m = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", text)
    if not m:
        raise WheelLockError(f"unreadable python version {text!r}")
    return int(m[1]), int(m[2])


@dataclass(frozen=True)
class Sources:
    """Where the resolution looks: one index, extra indexes and find-links, in pip's terms."""

    index_url: str
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()

    def pip_args(self) -> list[str]:
        """pip's source arguments; a plain-http source is trusted, as uv on the host trusts it
        (pip alone ignores such a source unless told)."""
        args = ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        for url in self.find_links:
            args += ["--find-links", url]
        urls = [self.index_url, *self.extra_index_urls, *self.find_links]
        for netloc in sorted({urlsplit(u).netloc for u in urls if urlsplit(u).scheme == "http"}):
            args += ["--trusted-host", netloc]
        return args


def lock_key(
    requirements: Sequence[str], exclude: Iterable[str], target: Target, sources: Sources
) -> str:
    """A digest of everything that decides a lock: the same inputs give the same wheels."""
    data = {
        "format": LOCK_FORMAT,
        "requirements": sorted(requirements),
        "exclude": sorted(canonicalize_name(n) for n in exclude),
        "target": target.as_dict(),
        "sources": asdict(sources),
    }
    blob = json.dumps(data, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


@dataclass(frozen=True)
class LockedWheel:
    """One wheel of a lock: what pip chose, where from, and the digest uv checks on the host."""

    name: str
    version: str
    filename: str
    url: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version} --hash=sha256:{self.sha256}"


@dataclass(frozen=True)
class WheelLock:
    key: str
    wheels: tuple[LockedWheel, ...]

    def requirements_txt(self) -> str:
        """A hash-checked requirements file: uv installs exactly these wheels and nothing else."""
        return "".join(f"{w.requirement}\n" for w in sorted(self.wheels, key=lambda w: w.name))

    def find(self, name: str) -> LockedWheel | None:
        want = canonicalize_name(name)
        return next((w for w in self.wheels if canonicalize_name(w.name) == want), None)

    def to_json(self) -> str:
        data = {"format": LOCK_FORMAT, "key": self.key, "wheels": [asdict(w) for w in self.wheels]}
        return json.dumps(data, indent=1, sort_keys=True) + "\n"

    @staticmethod
    def from_json(text: str) -> WheelLock:
        """A stored lock; WheelLockError if it is unreadable or of another format."""
        try:
            data = json.loads(text)
            if data.get("format") != LOCK_FORMAT:
                raise WheelLockError(f"lock format {data.get('format')!r}, not {LOCK_FORMAT}")
            wheels = tuple(LockedWheel(**w) for w in data["wheels"])
            return WheelLock(str(data["key"]), _checked(wheels))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise WheelLockError(f"unreadable lock: {exc}") from exc


def _checked(wheels: tuple[LockedWheel, ...]) -> tuple[LockedWheel, ...]:
    for w in wheels:
        safe_filename(w.filename)
        if not _SHA256.match(w.sha256):
            raise WheelLockError(f"{w.name}: {w.sha256!r} is not a sha256 digest")
    return wheels


def safe_filename(filename: str) -> str:
    """A wheel's file name that can go into a folder on a host as it is: no path, a real wheel."""
    if "/" in filename or "\\" in filename or filename.startswith(".") or "\0" in filename:
        raise WheelLockError(f"{filename!r} is not a plain file name")
    try:
        parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise WheelLockError(f"{filename!r} is not a wheel: {exc}") from exc
    return filename


def lock_from_report(report: Mapping[str, Any], key: str, exclude: Iterable[str] = ()) -> WheelLock:
    """The lock for a `pip install --dry-run --report` of the host's requirements.

    `exclude` names packages the environment must not get although a dependency names them
    (PyPI's CUDA torchvision beside a CPU torch); the host installs without resolving again.
    """
    skip = {canonicalize_name(n) for n in exclude}
    wheels: list[LockedWheel] = []
    for item in report.get("install", []):
        meta = item.get("metadata", {})
        name, version = str(meta.get("name")), str(meta.get("version"))
        if canonicalize_name(name) in skip:
            continue
        info = item.get("download_info") or {}
        url = str(info.get("url", ""))
        filename = unquote(url.rsplit("/", 1)[-1].split("#", 1)[0].split("?", 1)[0])
        if not filename.endswith(".whl"):
            raise WheelLockError(f"{name} {version}: {filename!r} is not a wheel")
        digest = (info.get("archive_info") or {}).get("hashes", {}).get("sha256")
        if not digest:
            raise WheelLockError(f"{name} {version}: the source gives no sha256 for {filename}")
        wheels.append(LockedWheel(name, version, filename, url, str(digest)))
    if not wheels:
        raise WheelLockError("the resolution installs nothing")
    return WheelLock(key, _checked(tuple(wheels)))


# Beside each wheel on a host: `<wheel>.sha256`, its digest, written after the wheel by the same
# tar stream. A file name alone does not name bytes: a private mirror or a rebuilt local wheel can
# give one name other contents, and uv would then refuse the host's copy on every later run.
DIGEST_SUFFIX = ".sha256"


@dataclass(frozen=True)
class HostWheel:
    """A wheel in the host's folder: its size, and the digest recorded beside it (None: none)."""

    size: int
    sha256: str | None = None


def missing_on_host(
    lock: WheelLock, present: Mapping[str, HostWheel], sizes: Mapping[str, int]
) -> list[LockedWheel]:
    """The lock's wheels a host lacks: absent, of another size than the controller's copy, or
    recorded with another digest than the lock's (or none)."""
    return [
        w
        for w in lock.wheels
        if present.get(w.filename) != HostWheel(sizes.get(w.filename, -1), w.sha256)
    ]


def listing_argv(folder: str) -> list[str]:
    """One command that prints every wheel in `folder` as `<size> <name>` and every recorded
    digest as `<name>.sha256:<hex>` (grep -H); the folder is made if it is missing."""
    script = (
        'mkdir -p "$1" && cd "$1" && find . -maxdepth 1 -name "*.whl" -printf "%s %f\\n" && '
        "{ grep -sH . -- *.whl" + DIGEST_SUFFIX + " || true; }"
    )
    return ["sh", "-c", script, "sh", folder]


def parse_listing(lines: Iterable[str]) -> dict[str, HostWheel]:
    """`listing_argv`'s output as {name: HostWheel}; other lines are skipped, and a digest that is
    not 64 hex digits counts as none."""
    sizes: dict[str, int] = {}
    digests: dict[str, str] = {}
    marker = ".whl" + DIGEST_SUFFIX + ":"
    for line in lines:
        line = line.strip()
        if marker in line:
            record, _, digest = line.partition(marker)
            if _SHA256.match(digest):
                digests[record + ".whl"] = digest
            continue
        size, _, name = line.partition(" ")
        if size.isdigit() and name:
            sizes[name] = int(size)
    return {name: HostWheel(size, digests.get(name)) for name, size in sizes.items()}


def tar_members(
    wheels: Sequence[LockedWheel],
    sizes: Mapping[str, int],
    chunks: Callable[[str], Iterable[bytes]],
) -> list[tuple[str, int, Iterable[bytes]]]:
    """The members that send `wheels` to a host: for each, an empty digest record first (so a
    transfer cut short never leaves an old digest beside new bytes), the wheel, then its digest.
    Tar replaces a file when a later member has its name."""
    out: list[tuple[str, int, Iterable[bytes]]] = []
    for w in wheels:
        record = w.filename + DIGEST_SUFFIX
        line = f"{w.sha256}\n".encode()
        out += [(record, 0, ()), (w.filename, sizes[w.filename], chunks(w.filename))]
        out.append((record, len(line), (line,)))
    return out


# ---------------------------------------------------------------- one transfer: a tar stream

_BLOCK = 512


def tar_stream(files: Sequence[tuple[str, int, Iterable[bytes]]]) -> Iterator[bytes]:
    """A POSIX tar of (name, size, chunks) made as it is read, so nothing is staged on disk.

    Each file's chunks must add up to its size; a short or long file raises WheelLockError
    rather than write a tar that unpacks wrong.
    """
    for name, size, chunks in files:
        wheel_name = name.removesuffix(DIGEST_SUFFIX)
        info = tarfile.TarInfo(safe_filename(wheel_name) + name[len(wheel_name) :])
        info.size = size
        info.mode = 0o644
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        sent = 0
        for chunk in chunks:
            sent += len(chunk)
            if sent > size:
                break
            yield chunk
        if sent != size:
            raise WheelLockError(
                f"{name}: {sent} bytes read, {size} expected (changed while sent?)"
            )
        if size % _BLOCK:
            yield b"\0" * (_BLOCK - size % _BLOCK)
    yield b"\0" * (2 * _BLOCK)
