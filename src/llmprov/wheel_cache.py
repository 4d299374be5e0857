"""The controller's wheel cache: a host's wheels resolved and downloaded once, then sent to every host.

A lock is resolved with pip for the host's interpreter and platform (not the controller's) from the
sources the host would use, and kept under the cache by its key. Its wheels are downloaded side by
side, each checked against the sha256 the index states, into `files/<sha256>/<name>`, shared by
every lock: a wheel two environments share is fetched once, and a name whose bytes changed at the
source (a rebuilt wheel on a find-links mirror) is a new file, never the old one under its name.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx

from llmprov.core.wheel_lock import (
    LockedWheel,
    Sources,
    Target,
    WheelLock,
    WheelLockError,
    lock_from_report,
    lock_key,
)

# Downloads at once: enough to fill a link from an index's CDN, few enough for a laptop.
PARALLEL_DOWNLOADS = 8
_CHUNK = 1 << 20
_guard = threading.Lock()
_busy: dict[str, threading.Lock] = {}


class WheelCacheError(Exception):
    """A lock could not be resolved or a wheel not fetched; the message says which and why."""


class WheelDigestMismatch(WheelCacheError):
    """A downloaded wheel is not the bytes the lock names."""


def wheels_dir(root: Path) -> Path:
    return root / "wheels"


def files_dir(root: Path) -> Path:
    return wheels_dir(root) / "files"


def wheel_path(root: Path, wheel: LockedWheel) -> Path:
    """Where the cache keeps a wheel: by its digest, then its name."""
    return files_dir(root) / wheel.sha256 / wheel.filename


def _once(key: str) -> threading.Lock:
    """One lock per cache key: hosts deployed side by side wait for one resolution or download."""
    with _guard:
        return _busy.setdefault(key, threading.Lock())


def resolve(
    requirements: Sequence[str],
    target: Target,
    sources: Sources,
    root: Path,
    exclude: Sequence[str] = (),
) -> WheelLock:
    """The lock for these requirements on `target`, from the cache or resolved now with pip."""
    return _resolve(requirements, target, sources, root, exclude)[0]


def resolve_and_fetch(
    requirements: Sequence[str],
    target: Target,
    sources: Sources,
    root: Path,
    exclude: Sequence[str] = (),
) -> tuple[WheelLock, dict[str, Path]]:
    """The lock and its wheels in the cache. A stored lock whose wheel the source now serves with
    other bytes (a mirror rebuilt it under the same name) is resolved again, once."""
    lock, fresh = _resolve(requirements, target, sources, root, exclude)
    try:
        return lock, fetch(lock, root)
    except WheelDigestMismatch:
        if fresh:
            raise
    _lock_path(root, lock.key).unlink(missing_ok=True)
    lock, _ = _resolve(requirements, target, sources, root, exclude)
    return lock, fetch(lock, root)


def _lock_path(root: Path, key: str) -> Path:
    return wheels_dir(root) / "locks" / f"{key}.json"


def _resolve(
    requirements: Sequence[str],
    target: Target,
    sources: Sources,
    root: Path,
    exclude: Sequence[str],
) -> tuple[WheelLock, bool]:
    """The lock, and whether it was resolved now (False: read from the cache)."""
    _check_controller(target)
    key = lock_key(requirements, exclude, target, sources)
    path = _lock_path(root, key)
    with _once(f"lock:{key}"):
        if path.is_file():
            try:
                return WheelLock.from_json(path.read_text()), False
            except WheelLockError:
                pass  # resolved again below, and the bad file replaced
        report = _pip_report(requirements, target, sources)
        try:
            lock = lock_from_report(report, key, exclude)
        except WheelLockError as exc:
            raise WheelCacheError(f"{', '.join(requirements)}: {exc}") from exc
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, lock.to_json().encode())
        return lock, True


def _check_controller(target: Target) -> None:
    """pip takes the target's tags and python version, but evaluates environment markers
    (`platform_system == "Linux"`, `platform_machine == "x86_64"`) for the controller it runs on:
    only a Linux controller of the host's architecture resolves the same set the host would."""
    here = (platform.system(), platform.machine())
    if here != ("Linux", target.machine):
        raise WheelCacheError(
            f"this controller ({here[0]} {here[1]}) cannot resolve wheels for a Linux "
            f"{target.machine} host: pip would read dependency markers for the controller; set "
            "vllm.wheels_from_controller: false, or deploy from a Linux controller of that architecture"
        )


def _pip_report(requirements: Sequence[str], target: Target, sources: Sources) -> dict[str, object]:
    """pip's resolution report for the target, without installing or reading the user's pip setup."""
    with tempfile.TemporaryDirectory(prefix="llmprov-resolve-") as tmp:
        cmd = [
            sys.executable, "-m", "pip", "install", "--isolated", "--disable-pip-version-check",
            "--no-input", "--quiet", "--dry-run", "--ignore-installed", "--report", "-",
            "--target", tmp, *target.pip_args(), *sources.pip_args(), *requirements,
        ]  # fmt: skip
        # --isolated ignores the user's configuration; a site-wide pip.conf is still read unless
        # PIP_CONFIG_FILE points at nothing. The host's sources are the only ones that count.
        env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-6:])
        raise WheelCacheError(
            f"the controller could not resolve {' '.join(requirements)} for python "
            f"{target.python[0]}.{target.python[1]} on {target.machine} (glibc "
            f"{target.glibc[0]}.{target.glibc[1]}) from {sources.index_url}:\n{tail}\n"
            "(the controller resolves from the host's sources; set vllm.wheels_from_controller: "
            "false where only the hosts can reach them)"
        )
    try:
        data = json.loads(proc.stdout)
    except ValueError as exc:
        raise WheelCacheError(f"pip printed no readable report: {exc}") from exc
    if not isinstance(data, dict):
        raise WheelCacheError("pip's report is not a JSON object")
    return data


def fetch(lock: WheelLock, root: Path) -> dict[str, Path]:
    """Every wheel of the lock in the controller cache, {filename: path}; missing ones downloaded
    side by side and checked against the lock's sha256 before they are kept."""
    folder = files_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {w.filename: w for w in lock.wheels}
    todo = [w for w in wanted.values() if not wheel_path(root, w).is_file()]
    if todo:
        with (
            httpx.Client(timeout=httpx.Timeout(60.0), follow_redirects=True) as http,
            ThreadPoolExecutor(max_workers=PARALLEL_DOWNLOADS) as pool,
        ):
            # list() re-raises the first download's error here.
            list(pool.map(lambda w: _fetch_one(w, root, http), todo))
    return {name: wheel_path(root, w) for name, w in wanted.items()}


def _fetch_one(wheel: LockedWheel, root: Path, http: httpx.Client) -> None:
    target = wheel_path(root, wheel)
    with _once(f"file:{wheel.sha256}"):
        if target.is_file():
            return
        fd, part = tempfile.mkstemp(
            dir=files_dir(root), prefix=f".{wheel.filename}.", suffix=".part"
        )
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in _read(wheel.url, http):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != wheel.sha256:
                raise WheelDigestMismatch(
                    f"{wheel.filename}: sha256 {digest.hexdigest()} does not match the "
                    f"index's {wheel.sha256} ({wheel.url})"
                )
            target.parent.mkdir(exist_ok=True)
            os.replace(part, target)
        finally:
            if os.path.exists(part):
                os.unlink(part)


def _read(url: str, http: httpx.Client) -> Iterator[bytes]:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        with open(unquote(parsed.path), "rb") as f:
            yield from iter(lambda: f.read(_CHUNK), b"")
        return
    try:
        with http.stream("GET", url) as response:
            response.raise_for_status()
            yield from response.iter_bytes(_CHUNK)
    except httpx.HTTPError as exc:
        raise WheelCacheError(f"could not download {url}: {exc}") from exc


def read_chunks(path: Path) -> Iterator[bytes]:
    """A cached wheel's bytes, for the tar stream a host receives."""
    with path.open("rb") as f:
        yield from iter(lambda: f.read(_CHUNK), b"")


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class _ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of bytes, for an upload that streams as it is made.

    It is read once, front to back: a seek to where it already is is allowed (pyinfra's upload
    rewinds what it is given before reading), any other seek is refused.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if (whence, offset) in ((io.SEEK_SET, self._pos), (io.SEEK_CUR, 0)):
            return self._pos
        raise io.UnsupportedOperation("a wheel stream is read once, front to back")

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: Any) -> int:
        while not len(self._pending):
            try:
                self._pending = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self._pos += n
        return n


def stream_reader(chunks: Iterable[bytes]) -> io.RawIOBase:
    """`chunks` as a binary file that pyinfra's put_file can upload (it reads, never seeks)."""
    return _ChunkReader(chunks)
