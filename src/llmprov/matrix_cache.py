"""The controller's refreshed CUDA-matrix records: stored dated in the cache, merged with the built-in table."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from llmprov.cache import cache_root
from llmprov.core.matrix_data import Matrix, MatrixDataError, builtin, merge, use

REFRESH_FILE = "cuda-matrix-refresh.json"


def refresh_path(root: Path | None = None) -> Path:
    return (root or cache_root()) / REFRESH_FILE


def load_refreshed(root: Path | None = None) -> dict[str, Any] | None:
    """The stored refresh, or None when there is none."""
    path = refresh_path(root)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise MatrixDataError(f"{path}: unreadable ({exc}); run `llmprov matrix refresh`") from exc
    if not isinstance(data, dict):
        raise MatrixDataError(f"{path}: not a refresh record; run `llmprov matrix refresh`")
    return data


def store_refreshed(data: dict[str, Any], root: Path | None = None) -> Path:
    """Write atomically, so a deploy reading it meanwhile sees the old or the new record."""
    path = refresh_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def current_matrix(root: Path | None = None) -> Matrix:
    """The built-in table merged with the stored refresh; made what resolve() uses by default."""
    matrix = merge(builtin(), load_refreshed(root))
    use(matrix)
    return matrix
