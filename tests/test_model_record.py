"""The digest record beside a placed model, and the controller's remembered digests.

The record's shell commands run here for real (bash, coreutils stat) on temporary files, so what
the host writes is exactly what the next run's stat and parser read back.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmprov.core.model_record import (
    FILE_KEY,
    RECORD_SCHEMA,
    FileStat,
    ModelStat,
    parse_stat,
    record_path,
    recorded_digests,
    remove_record_command,
    stat_command,
    write_record_command,
)
from llmprov.deploy import controller_digest


def sh(command: str) -> list[str]:
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_record_written_on_the_host_vouches_for_the_file_until_it_is_touched(
    tmp_path: Path,
) -> None:
    model = tmp_path / "m q.gguf"  # a space: every path crosses the shell quoted
    model.write_bytes(b"GGUF" * 1000)
    assert parse_stat(sh(stat_command(str(model)))) == ModelStat(
        {FILE_KEY: FileStat(4000, model.stat().st_mtime_ns)}, None
    ), "no record yet"
    digests = {FILE_KEY: sha256(model)}
    sh(write_record_command(str(model), digests))
    record = json.loads(Path(record_path(str(model))).read_text())
    assert record["schema_version"] == RECORD_SCHEMA
    assert record["files"][FILE_KEY]["mtime_ns"] == model.stat().st_mtime_ns
    assert recorded_digests(parse_stat(sh(stat_command(str(model))))) == digests

    os.utime(model, ns=(model.stat().st_atime_ns, model.stat().st_mtime_ns + 1))
    assert recorded_digests(parse_stat(sh(stat_command(str(model))))) is None, "touched"
    sh(remove_record_command(str(model)))
    assert not Path(record_path(str(model))).exists()


def test_a_folder_record_covers_every_file_and_no_other(tmp_path: Path) -> None:
    folder = tmp_path / "smol"
    (folder / "sub").mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "sub/x y.json"):
        (folder / name).write_text(name)
    digests = {
        p.relative_to(folder).as_posix(): sha256(p) for p in folder.rglob("*") if p.is_file()
    }
    sh(write_record_command(str(folder), digests))
    assert recorded_digests(parse_stat(sh(stat_command(str(folder))))) == digests
    (folder / "extra.json").write_text("{}")
    assert recorded_digests(parse_stat(sh(stat_command(str(folder))))) is None, "a file added"
    (folder / "extra.json").unlink()
    (folder / "config.json").unlink()
    assert recorded_digests(parse_stat(sh(stat_command(str(folder))))) is None, "a file gone"


def test_an_absent_model_reads_as_nothing_even_with_a_record_left(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    Path(record_path(str(model))).write_text(
        json.dumps({"schema_version": 1, "files": {".": {"size": 1, "mtime_ns": 1, "sha256": "a"}}})
    )
    state = parse_stat(sh(stat_command(str(model))))
    assert state.files == {} and recorded_digests(state) is None


@given(sec=st.integers(1, 2**40), ns=st.integers(0, 999_999_999))
def test_stat_mtimes_parse_to_exact_nanoseconds(sec: int, ns: int) -> None:
    line = f"f 12 {sec}.{ns:09d} ./a b"
    assert parse_stat([line]).files == {"a b": FileStat(12, sec * 1_000_000_000 + ns)}


ENTRY = {"size": 3, "mtime_ns": 5, "sha256": "ab" * 32}


@pytest.mark.parametrize(
    "record",
    [
        None,
        {"files": {".": ENTRY}},  # no schema version
        {"schema_version": 99, "files": {".": ENTRY}},
        {"schema_version": 1, "files": {".": {**ENTRY, "size": 4}}},
        {"schema_version": 1, "files": {".": {**ENTRY, "mtime_ns": 6}}},
        {"schema_version": 1, "files": {".": {"size": 3, "mtime_ns": 5}}},
        {"schema_version": 1, "files": {".": ENTRY, "other": ENTRY}},
        {"schema_version": 1, "files": []},
    ],
)
def test_a_record_that_does_not_match_the_stat_exactly_vouches_for_nothing(
    record: dict[str, object] | None,
) -> None:
    assert recorded_digests(ModelStat({".": FileStat(3, 5)}, record)) is None
    good = {"schema_version": 1, "files": {".": ENTRY}}
    assert recorded_digests(ModelStat({".": FileStat(3, 5)}, good)) == {".": ENTRY["sha256"]}


def test_unparsable_lines_are_skipped_not_trusted() -> None:
    state = parse_stat(["f x 1.0 ./a", "r {not json", "garbage", "f 1 2.000000003 ./b"])
    assert state == ModelStat({"b": FileStat(1, 2_000_000_003)}, None)


# ---------------------------------------------------------------- the controller's digests


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = controller_digest._hash

    def counting(path: Path) -> str:
        seen.append(path.name)
        return real(path)

    monkeypatch.setattr(controller_digest, "_hash", counting)
    monkeypatch.setattr(controller_digest, "_memo", {})
    return seen


def big(path: Path, fill: bytes = b"\0") -> Path:
    path.write_bytes(fill * (controller_digest.SMALL + 1))
    return path


def test_a_big_file_is_hashed_once_across_runs_until_it_changes(
    tmp_path: Path, hashes: list[str]
) -> None:
    model = big(tmp_path / "m.gguf")
    want = sha256(model)
    assert controller_digest.sha256(model, root=tmp_path / "cache") == want
    controller_digest._memo.clear()  # a new run: a new process
    assert controller_digest.sha256(model, root=tmp_path / "cache") == want
    assert hashes == ["m.gguf"]

    big(model, b"\1")
    controller_digest._memo.clear()
    assert controller_digest.sha256(model, root=tmp_path / "cache") == sha256(model)
    assert hashes == ["m.gguf", "m.gguf"], "rewritten: hashed again"

    assert controller_digest.sha256(model, verify=True, root=tmp_path / "cache") == sha256(model)
    assert len(hashes) == 3, "verify hashes whatever is remembered"


def test_a_corrupt_digest_cache_costs_a_hash_not_a_failure(
    tmp_path: Path, hashes: list[str]
) -> None:
    model = big(tmp_path / "m.gguf")
    (tmp_path / controller_digest.CACHE_FILE).write_text("{not json")
    assert controller_digest.sha256(model, root=tmp_path) == sha256(model)
    assert hashes == ["m.gguf"]
