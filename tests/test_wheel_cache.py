"""The controller's wheel cache: one resolution and one download per wheel, checked, for every host."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from llmprov import wheel_cache
from llmprov.core.wheel_lock import LockedWheel, Sources, Target, WheelLock, lock_key

HOST = Target((3, 11), "x86_64", (2, 36))


def make_wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """A minimal, valid pure-python wheel that pip can resolve and read metadata from."""
    dist = f"{name.replace('-', '_')}-{version}"
    path = folder / f"{dist}-py3-none-any.whl"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{name.replace('-', '_')}/__init__.py", "")
        z.writestr(f"{dist}.dist-info/METADATA", meta)
        z.writestr(
            f"{dist}.dist-info/WHEEL",
            "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        z.writestr(f"{dist}.dist-info/RECORD", "")
    return path


def locked(path: Path, sha: str | None = None) -> LockedWheel:
    digest = sha or hashlib.sha256(path.read_bytes()).hexdigest()
    name, version = path.name.split("-")[:2]
    return LockedWheel(name, version, path.name, path.as_uri(), digest)


def test_wheels_are_fetched_once_checked_and_kept(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    a, b = make_wheel(src, "alpha", "1.0"), make_wheel(src, "beta", "2.0")
    lock = WheelLock("k", (locked(a), locked(b)))
    root = tmp_path / "cache"
    paths = wheel_cache.fetch(lock, root)
    assert {p.read_bytes() for p in paths.values()} == {a.read_bytes(), b.read_bytes()}
    # A second host's fetch reads nothing from the source: the cache answers.
    a.unlink()
    b.unlink()
    assert wheel_cache.fetch(lock, root) == paths
    assert not [p for p in wheel_cache.files_dir(root).iterdir() if p.name.endswith(".part")]


def test_a_wheel_whose_digest_differs_is_refused_and_not_kept(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    a = make_wheel(src, "alpha", "1.0")
    lock = WheelLock("k", (locked(a, sha="0" * 64),))
    with pytest.raises(wheel_cache.WheelCacheError, match="does not match"):
        wheel_cache.fetch(lock, tmp_path / "cache")
    assert [p for p in wheel_cache.files_dir(tmp_path / "cache").rglob("*")] == []


def test_a_wheel_rebuilt_under_its_name_is_a_new_file_not_the_cached_one(tmp_path: Path) -> None:
    """A find-links mirror rebuilt a wheel: same name, other bytes. The cache keeps both by
    digest and answers each lock with its own bytes (it once answered by name, and uv on the host
    then refused the stale copy on every run)."""
    src = tmp_path / "src"
    src.mkdir()
    root = tmp_path / "cache"
    first = make_wheel(src, "alpha", "1.0")
    old = wheel_cache.fetch(WheelLock("k1", (locked(first),)), root)[first.name]
    old_bytes = first.read_bytes()
    with zipfile.ZipFile(first, "a") as z:
        z.writestr("alpha/extra.py", "x = 1\n")
    new = wheel_cache.fetch(WheelLock("k2", (locked(first),)), root)[first.name]
    assert new != old and new.name == old.name == first.name
    assert new.read_bytes() == first.read_bytes() != old_bytes == old.read_bytes()


def test_a_stored_lock_the_source_no_longer_matches_is_resolved_again_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    whl = make_wheel(src, "alpha", "1.0")
    calls: list[str] = []

    def report(requirements: Any, target: Any, sources: Any) -> dict[str, Any]:
        digest = hashlib.sha256(whl.read_bytes()).hexdigest()
        calls.append(digest)
        info = {"url": whl.as_uri(), "archive_info": {"hashes": {"sha256": digest}}}
        return {
            "install": [{"metadata": {"name": "alpha", "version": "1.0"}, "download_info": info}]
        }

    monkeypatch.setattr(wheel_cache, "_pip_report", report)
    sources = Sources("https://pypi.org/simple")
    lock, _ = wheel_cache.resolve_and_fetch(["alpha==1.0"], HOST, sources, tmp_path / "c")
    with zipfile.ZipFile(whl, "a") as z:
        z.writestr("alpha/extra.py", "x = 1\n")
    # While the cache holds the locked bytes, the lock and its wheel agree and are used as they are.
    assert wheel_cache.resolve_and_fetch(["alpha==1.0"], HOST, sources, tmp_path / "c")[0] == lock
    assert len(calls) == 1
    shutil.rmtree(wheel_cache.files_dir(tmp_path / "c"))  # the bound evicted the wheel
    again, paths = wheel_cache.resolve_and_fetch(["alpha==1.0"], HOST, sources, tmp_path / "c")
    assert len(calls) == 2 and again.key == lock.key
    assert again.wheels[0].sha256 == hashlib.sha256(whl.read_bytes()).hexdigest() != calls[0]
    assert paths[whl.name].read_bytes() == whl.read_bytes()
    # A lock resolved just now that the source contradicts is an error, not a loop.
    monkeypatch.setattr(
        wheel_cache,
        "_pip_report",
        lambda *a: {
            "install": [
                {
                    **report(*a)["install"][0],
                    "download_info": {
                        "url": whl.as_uri(),
                        "archive_info": {"hashes": {"sha256": "0" * 64}},
                    },
                }
            ]
        },
    )
    with pytest.raises(wheel_cache.WheelDigestMismatch):
        wheel_cache.resolve_and_fetch(["beta==1.0"], HOST, sources, tmp_path / "c")


def test_a_stored_lock_is_reused_and_an_unreadable_one_resolved_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, ...]] = []
    item = {
        "metadata": {"name": "alpha", "version": "1.0"},
        "download_info": {
            "url": "https://f.example/alpha-1.0-py3-none-any.whl",
            "archive_info": {"hashes": {"sha256": "b" * 64}},
        },
    }

    def report(requirements: Any, target: Any, sources: Any) -> dict[str, Any]:
        calls.append(tuple(requirements))
        return {"install": [item]}

    monkeypatch.setattr(wheel_cache, "_pip_report", report)
    sources = Sources("https://pypi.org/simple")
    first = wheel_cache.resolve(["alpha==1.0"], HOST, sources, tmp_path)
    assert wheel_cache.resolve(["alpha==1.0"], HOST, sources, tmp_path) == first
    assert calls == [("alpha==1.0",)]
    stored = wheel_cache.wheels_dir(tmp_path) / "locks" / f"{first.key}.json"
    assert first.key == lock_key(["alpha==1.0"], (), HOST, sources)
    stored.write_text("{broken")
    assert wheel_cache.resolve(["alpha==1.0"], HOST, sources, tmp_path) == first
    assert len(calls) == 2


def test_pip_resolves_for_the_hosts_platform_from_the_given_sources_only(tmp_path: Path) -> None:
    """The real pip, offline: an empty index and a find-links folder; the controller's own pip
    configuration (this machine adds find-links of its own) must not leak in."""
    links = tmp_path / "links"
    links.mkdir()
    index = tmp_path / "index"
    index.mkdir()
    make_wheel(links, "alpha", "1.0", requires=("beta>=2", 'gamma; platform_machine == "s390x"'))
    make_wheel(links, "beta", "2.0")
    make_wheel(links, "beta", "3.0")
    make_wheel(links, "dropped", "1.0")
    sources = Sources(index.as_uri(), find_links=(links.as_uri(),))
    lock = wheel_cache.resolve(
        ["alpha==1.0", "dropped==1.0"], HOST, sources, tmp_path / "cache", exclude=["Dropped"]
    )
    assert sorted((w.name, w.version) for w in lock.wheels) == [("alpha", "1.0"), ("beta", "3.0")]
    for w in lock.wheels:
        assert w.sha256 == hashlib.sha256((links / w.filename).read_bytes()).hexdigest()


def test_an_unresolvable_requirement_says_what_and_how_to_turn_it_off(tmp_path: Path) -> None:
    index = tmp_path / "index"
    index.mkdir()
    with pytest.raises(wheel_cache.WheelCacheError) as err:
        wheel_cache.resolve(["nothing-here==1.0"], HOST, Sources(index.as_uri()), tmp_path / "c")
    text = str(err.value)
    assert "nothing-here==1.0" in text and "python 3.11 on x86_64" in text
    assert "vllm.wheels_from_controller: false" in text


def test_the_controllers_own_pip_settings_do_not_leak_into_the_hosts_resolution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    links = tmp_path / "links"
    links.mkdir()
    make_wheel(links, "alpha", "1.0")
    index = tmp_path / "index"
    index.mkdir()
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nfind-links = {links}\n")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    with pytest.raises(wheel_cache.WheelCacheError, match=r"alpha==1\.0"):
        wheel_cache.resolve(["alpha==1.0"], HOST, Sources(index.as_uri()), tmp_path / "c")


@pytest.mark.parametrize(("system", "machine"), [("Darwin", "arm64"), ("Linux", "aarch64")])
def test_a_controller_of_another_platform_is_refused_before_resolving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, system: str, machine: str
) -> None:
    monkeypatch.setattr(wheel_cache.platform, "system", lambda: system)
    monkeypatch.setattr(wheel_cache.platform, "machine", lambda: machine)
    monkeypatch.setattr(wheel_cache, "_pip_report", lambda *a: pytest.fail("resolved anyway"))
    with pytest.raises(wheel_cache.WheelCacheError, match="wheels_from_controller: false"):
        wheel_cache.resolve(["alpha==1.0"], HOST, Sources("https://pypi.org/simple"), tmp_path)
