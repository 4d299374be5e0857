"""The corpus of malformed inventories: `llmprov validate` reports each fault as `host: field: reason`.

Each tests/corpus/<case>.py is an inventory as a user would write it, with one fault (or, for the
cases that say so, several); tests/corpus/<case>.expected holds the lines validate must print, in
order. `{inventory}` in an expected line stands for the path given on the command line, and a line
ending in `...` matches any line that starts with the text before it (used only where Python's own
message differs between versions).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llmprov.cli.common import EXIT_BAD_INPUT, EXIT_OK
from llmprov.cli.main import main

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(CORPUS.glob("*.py"))


def _expected(inventory: Path) -> list[str]:
    text = inventory.with_suffix(".expected").read_text(encoding="utf-8")
    return [line.replace("{inventory}", str(inventory)) for line in text.splitlines() if line]


def _matches(got: list[str], expected: list[str]) -> bool:
    if len(got) != len(expected):
        return False
    return all(
        g.startswith(e.removesuffix("...")) if e.endswith("...") else g == e
        for g, e in zip(got, expected, strict=True)
    )


def _report(err: str) -> tuple[str, list[str]]:
    """The header and the fault lines of validate's stderr.

    Anything before the header is skipped: gevent warns on stderr when pyinfra_cli is first
    imported in a run whose warnings pytest does not capture.
    """
    lines = err.splitlines()
    start = next(i for i, line in enumerate(lines) if "problem(s) in the inventory" in line)
    return lines[start], lines[start + 1 :]


def test_corpus_has_at_least_thirty_faults_each_with_its_expected_lines() -> None:
    expected = {p.with_suffix(".py") for p in CORPUS.glob("*.expected")}
    assert len(CASES) >= 30
    assert set(CASES) == expected, "every corpus inventory needs a .expected file, and back"


@pytest.mark.parametrize("inventory", CASES, ids=lambda p: p.stem)
def test_malformed_inventory_is_reported_field_by_field_without_contacting_a_host(
    inventory: Path, capsys: pytest.CaptureFixture[str], no_connections: list[str]
) -> None:
    expected = _expected(inventory)

    code = main(["validate", str(inventory)])

    header, lines = _report(capsys.readouterr().err)
    assert code == EXIT_BAD_INPUT
    assert f"{len(expected)} problem(s) in the inventory" in header
    assert _matches(lines, expected), "\n".join(["got:", *lines, "expected:", *expected])
    assert no_connections == []


def test_a_fault_in_group_data_is_reported_for_every_host_of_the_group(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["validate", str(CORPUS / "group_data_bad.py")])

    hosts = [line.split(":", 1)[0] for line in _report(capsys.readouterr().err)[1]]
    assert hosts == ["gpu-1", "gpu-2", "gpu-3"]


def test_faults_on_several_hosts_are_reported_together_in_one_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["validate", str(CORPUS / "many_faults.py")])

    hosts = {line.split(":", 1)[0] for line in _report(capsys.readouterr().err)[1]}
    assert hosts == {"gpu-1", "gpu-2", "edge-1", "edge-2"}


def test_pyinfra_keys_and_x_keys_pass_validation(
    capsys: pytest.CaptureFixture[str], no_connections: list[str]
) -> None:
    # ssh_*, winrm_* and _sudo-style keys belong to pyinfra; x_* keys belong to the user.
    code = main(["validate", str(CORPUS / "valid" / "passthrough_keys.py")])

    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    assert "problem(s)" not in captured.err
    assert "2 host(s) valid" in captured.out
    assert no_connections == []


def test_the_connection_guard_catches_a_connection(no_connections: list[str]) -> None:
    # The guard the corpus relies on must itself be live, or the corpus could not fail on it.
    from pyinfra.api import connect

    with pytest.raises(AssertionError):
        connect.connect_all(None)
    assert no_connections == ["connect_all"]
