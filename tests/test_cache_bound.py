"""The controller cache's bound: every area deploys fill, least recently used first, never one in use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmprov.cache import (
    IN_USE_AGE_S,
    CacheError,
    cache_bound,
    cache_entries,
    prune_cache,
)

NOW = 1_000_000_000.0
DAY = 86_400.0


def put(root: Path, rel: str, size: int, used: float) -> Path:
    """A file of `size` bytes at root/rel, last used `used` seconds before NOW."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (NOW - used, NOW - used))
    return path


def tree(root: Path) -> dict[str, Path]:
    return {
        "download": put(root, "downloads/llama_cpp_python-0.3.36.tar.gz", 100, 9 * DAY),
        "pull": put(root, "models/pulls/org/model/main-abc/model.gguf", 100, 8 * DAY),
        "hf": put(root, "models/hf/smol-1234-f32-r1/model.safetensors", 100, 7 * DAY),
        "gguf": put(root, "models/gguf/smol-1234-q8_0-r1.gguf", 100, 6 * DAY),
        "demo": put(root, "models/SmolLM2-135M-Instruct.Q4_1.gguf", 100, 5 * DAY),
        "build": put(root, "llamacpp/0.3.36-abcdef.tar.gz", 100, 4 * DAY),
        "bin": put(root, "llamacpp-bin/0.3.36-abcdef/llama-server", 100, 3 * DAY),
        "sandbox": put(root, "bases/debian-12/rootfs.tar", 10_000, 10 * DAY),
    }


def test_every_area_deploys_fill_is_counted_and_the_sandbox_is_not(tmp_path: Path) -> None:
    t = tree(tmp_path)
    found = {e.path for e in cache_entries(tmp_path)}
    assert found == {
        t["download"],
        t["pull"].parent,  # a pull is removed whole: its revision folder
        t["hf"].parent,  # a conversion folder is removed whole
        t["gguf"],
        t["demo"],
        t["build"],
        t["bin"].parent,
    }


def test_the_least_recently_used_go_first_until_under_the_bound(tmp_path: Path) -> None:
    t = tree(tmp_path)
    removed = prune_cache(tmp_path, keep_bytes=450, now=NOW)
    assert removed == [t["download"], t["pull"].parent, t["hf"].parent]
    assert not t["download"].exists() and not t["hf"].parent.exists()
    assert t["gguf"].exists() and t["sandbox"].exists()
    assert not (tmp_path / "models" / "pulls" / "org" / "model" / "main-abc").exists()


def test_under_the_bound_nothing_is_removed(tmp_path: Path) -> None:
    tree(tmp_path)
    assert prune_cache(tmp_path, keep_bytes=700, now=NOW) == []


def test_an_entry_in_use_is_never_removed_even_over_the_bound(tmp_path: Path) -> None:
    t = tree(tmp_path)
    removed = prune_cache(tmp_path, keep_bytes=0, in_use=[t["hf"]], now=NOW)
    assert t["hf"].exists()
    assert t["hf"].parent not in removed
    assert len(removed) == 6


def test_an_entry_touched_recently_may_be_another_runs_and_is_kept(tmp_path: Path) -> None:
    t = tree(tmp_path)
    fresh = put(tmp_path, "models/hf/smol-1234-f32-r1/partial.bin", 1, IN_USE_AGE_S / 2)
    removed = prune_cache(tmp_path, keep_bytes=0, now=NOW)
    assert fresh.exists() and t["hf"].exists()
    assert t["hf"].parent not in removed


def test_the_bound_comes_from_the_environment_in_gib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMPROV_CACHE_MAX_GB", "1.5")
    assert cache_bound() == int(1.5 * 1024**3)
    monkeypatch.setenv("LLMPROV_CACHE_MAX_GB", "lots")
    with pytest.raises(CacheError, match="LLMPROV_CACHE_MAX_GB: 'lots' is not a number"):
        cache_bound()
    monkeypatch.delenv("LLMPROV_CACHE_MAX_GB")
    assert cache_bound() == 20 * 1024**3


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 500), st.floats(IN_USE_AGE_S + 1, 30 * DAY)),
        min_size=1,
        max_size=8,
    ),
    st.integers(0, 4000),
)
def test_pruning_stops_at_the_bound_and_keeps_every_newer_entry(
    tmp_path_factory: pytest.TempPathFactory, files: list[tuple[int, float]], bound: int
) -> None:
    root = tmp_path_factory.mktemp("cache")
    paths = [put(root, f"downloads/f{i}", size, used) for i, (size, used) in enumerate(files)]
    removed = prune_cache(root, bound, now=NOW)
    left = [p for p in paths if p.exists()]
    assert sum(p.stat().st_size for p in left) <= bound or not left
    if removed:
        # Everything removed was used no later than everything kept.
        newest_removed = max(NOW - files[paths.index(p)][1] for p in removed)
        assert all(NOW - files[paths.index(p)][1] >= newest_removed for p in left)
