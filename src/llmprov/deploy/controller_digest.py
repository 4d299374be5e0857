"""sha256 of model files on the controller, hashed once per content version and remembered across runs.

A deploy compares the model on each host with the controller's copy by digest. Hashing a 4-26 GB
model on every run would make a re-run's cost grow with the model; instead the digest is kept in
the cache (`<cache>/model-digests.json`) under the file's real path, with the size, mtime and inode
it was computed for, and reused while those still match, as make and rsync trust a file's stat.
`verify=True` hashes again whatever the cache says (and refreshes it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from llmprov.cache import cache_root

CACHE_FILE = "model-digests.json"
# Files smaller than this are hashed every time: quicker than a cache lookup is worth.
SMALL = 1 << 20

_lock = threading.Lock()
_memo: dict[tuple[str, int, int, int], str] = {}


def _key(path: Path) -> tuple[str, int, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)


def _hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _load(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _store(file: Path, name: str, entry: dict[str, Any]) -> None:
    """Merge one entry in; written to a partial and renamed, so a reader never sees half a file.
    Two controllers writing at once may lose an entry: that costs one more hash, nothing else."""
    with contextlib.suppress(OSError):
        file.parent.mkdir(parents=True, exist_ok=True)
        data = _load(file)
        data[name] = entry
        partial = file.with_name(f"{file.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(data, sort_keys=True))
        partial.replace(file)


def sha256(path: Path, verify: bool = False, root: Path | None = None) -> str:
    """The file's sha256: remembered while its size, mtime and inode are unchanged."""
    key = _key(path)
    name, size, mtime_ns, ino = key
    with _lock:
        if not verify and key in _memo:
            return _memo[key]
        if size < SMALL:
            digest = _hash(path)
            _memo[key] = digest
            return digest
        file = (root or cache_root()) / CACHE_FILE
        entry = _load(file).get(name)
        wanted = {"size": size, "mtime_ns": mtime_ns, "ino": ino}
        if (
            not verify
            and isinstance(entry, dict)
            and {k: entry.get(k) for k in wanted} == wanted
            and isinstance(entry.get("sha256"), str)
        ):
            digest = str(entry["sha256"])
        else:
            digest = _hash(path)
            if _key(path) == key:  # not changed while it was read
                _store(file, name, {**wanted, "sha256": digest})
        _memo[key] = digest
        return digest
