"""The parsers that the fixture and golden tests run over plists, WinSW XML and PowerShell can fail."""

from __future__ import annotations

from pathlib import Path

import pytest
from structured import parse_by_name, parse_plist, parse_powershell, parse_winsw

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize(
    "text",
    [
        "Write-Host 'unclosed",
        'Write-Host "unclosed',
        "if ($a) { Write-Host 'x'",
        "foreach ($p in @('a', 'b') { }",
        "$x = @'\nno end\n",
        "<# no end",
        "Write-Host ('a' + 'b'))",
    ],
)
def test_broken_powershell_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_powershell(text)


@pytest.mark.parametrize(
    "text",
    [
        "Write-Host 'it''s' # a comment with ( and '",
        'Write-Host "a `" quote and a (bracket"',
        "$x = @'\nraw ' and ( here\n'@\nif ($x) { [Environment]::Exit(0) }",
        "<# block ( comment #> Get-Item -LiteralPath 'C:/x'",
    ],
)
def test_well_formed_powershell_is_taken(text: str) -> None:
    parse_powershell(text)


def test_a_plist_without_program_arguments_is_refused() -> None:
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict>'
        "<key>Label</key><string>x</string></dict></plist>\n"
    )
    with pytest.raises(ValueError, match="ProgramArguments"):
        parse_plist(text)
    with pytest.raises(Exception):  # noqa: B017 - plistlib raises its own error types
        parse_plist(text.replace("</dict>", ""))


def test_a_winsw_definition_without_an_executable_is_refused() -> None:
    with pytest.raises(ValueError, match="executable"):
        parse_winsw("<service><id>Ollama</id></service>")
    with pytest.raises(ValueError, match="root is <service>"):
        parse_winsw("<services/>")


@pytest.mark.parametrize(
    "path",
    sorted(p for p in GOLDEN.rglob("*") if p.suffix in (".plist", ".xml", ".ps1")),
    ids=lambda p: str(p.relative_to(GOLDEN)),
)
def test_every_golden_plist_winsw_and_powershell_file_parses(path: Path) -> None:
    assert parse_by_name(str(path), path.read_text()) is not None
