"""Golden files: `llmprov render` of each case matches tests/golden/<case>/, file for file.

A case is inventories/client.py or one of the small inventories tests/golden/<case>.py; its folder
holds one folder per host, as `llmprov render --out` writes them. A test fails on an extra file, a
missing file or a changed one. After an intended change, regenerate and review the diff:

    LLMPROV_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_render_golden.py
"""

from __future__ import annotations

import difflib
import os
import shutil
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from llmprov.cli.common import EXIT_OK
from llmprov.cli.main import main
from llmprov.core import render

if TYPE_CHECKING:
    # Only for annotations: at run time `conftest` may name another folder's conftest module.
    from conftest import Case

UPDATE = os.environ.get("LLMPROV_UPDATE_GOLDEN") == "1"
# Golden files pin what the templates produce, not the release number in their headers.
PINNED_VERSION = "0.0.0+golden"


def _tree(root: Path) -> dict[str, Path]:
    if not root.is_dir():
        return {}
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


def compare_trees(expected: Path, actual: Path) -> list[str]:
    """Every difference between two folders: extra files, missing files, and a diff per change."""
    want, got = _tree(expected), _tree(actual)
    problems = [
        f"extra file, rendered but not in {expected}: {rel}" for rel in sorted(got - want.keys())
    ]
    problems += [
        f"missing file, in {expected} but not rendered: {rel}" for rel in sorted(want - got.keys())
    ]
    for rel in sorted(want.keys() & got.keys()):
        old = want[rel].read_text(encoding="utf-8").splitlines(keepends=True)
        new = got[rel].read_text(encoding="utf-8").splitlines(keepends=True)
        if old != new:
            problems.append(
                "".join(difflib.unified_diff(old, new, f"golden/{rel}", f"rendered/{rel}"))
            )
    return problems


def _render(case: Case, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "__version__", PINNED_VERSION)
    assert main(["render", str(case.inventory), "--out", str(out)]) == EXIT_OK


def test_rendered_files_match_the_golden_files(
    golden_case: Case,
    golden_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_connections: list[str],
) -> None:
    out = tmp_path / "out"
    _render(golden_case, out, monkeypatch)
    expected = golden_dir / golden_case.name
    if UPDATE:
        shutil.rmtree(expected, ignore_errors=True)
        # Plain copies: the repository keeps golden files at the usual mode; modes are tested below.
        shutil.copytree(out, expected, copy_function=shutil.copyfile)

    problems = compare_trees(expected, out)

    assert not problems, "\n".join(
        [*problems, "if the change is intended: LLMPROV_UPDATE_GOLDEN=1 pytest " + __file__]
    )
    assert no_connections == []


def test_env_files_are_0600_and_every_other_file_0644(
    golden_case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    _render(golden_case, out, monkeypatch)

    modes = {rel: stat.S_IMODE(p.stat().st_mode) for rel, p in _tree(out).items()}
    env_files = {rel for rel in modes if rel.endswith(".env")}
    assert {rel: oct(m) for rel, m in modes.items() if rel in env_files} == {
        rel: oct(0o600) for rel in env_files
    }
    assert {rel: oct(m) for rel, m in modes.items() if rel not in env_files} == {
        rel: oct(0o644) for rel in modes.keys() - env_files
    }


def test_every_golden_folder_belongs_to_a_case(
    all_cases: dict[str, Path], golden_dir: Path
) -> None:
    # A folder left behind by a renamed or removed case would otherwise never be compared.
    folders = {p.name for p in golden_dir.iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert folders == set(all_cases)


def test_cases_cover_every_engine_runtime_and_os_combination_that_is_valid(
    all_cases: dict[str, Path],
) -> None:
    from llmprov.inventory import load_inventory

    seen = {
        (cfg.engine, cfg.runtime, cfg.os, cfg.gpu.count > 0)
        for path in all_cases.values()
        for cfg in load_inventory(path).hosts.values()
    }
    linux = {
        (engine, runtime, "linux", gpu)
        for engine in ("vllm", "llamacpp", "ollama")
        for runtime in ("systemd", "compose")
        for gpu in (False, True)
    }
    others = {
        ("llamacpp", "launchd", "macos", False),
        ("ollama", "launchd", "macos", False),
        ("ollama", "windows-service", "windows", False),
    }
    assert linux | others <= seen


def test_comparison_fails_on_an_extra_a_missing_and_a_changed_file(tmp_path: Path) -> None:
    expected, actual = tmp_path / "expected", tmp_path / "actual"
    for root in (expected, actual):
        (root / "h").mkdir(parents=True)
        (root / "h" / "same.txt").write_text("same\n")
    (expected / "h" / "changed.txt").write_text("old\n")
    (actual / "h" / "changed.txt").write_text("new\n")
    (expected / "h" / "missing.txt").write_text("x\n")
    (actual / "h" / "extra.txt").write_text("x\n")

    problems = compare_trees(expected, actual)

    assert len(problems) == 3
    assert problems[0].startswith("extra file") and problems[0].endswith("h/extra.txt")
    assert problems[1].startswith("missing file") and problems[1].endswith("h/missing.txt")
    assert "-old\n+new\n" in problems[2]
    assert compare_trees(expected / "h" / "same.txt", actual / "h" / "same.txt") == []
