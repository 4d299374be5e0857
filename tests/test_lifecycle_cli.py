"""`llmprov rollback` and `llmprov uninstall`: their arguments, and refusals before any host is touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmprov.cli.main import build_parser, main


def test_uninstall_keeps_models_unless_told_otherwise() -> None:
    parser = build_parser()
    assert parser.parse_args(["uninstall", "inv.py"]).keep_models is True
    assert parser.parse_args(["uninstall", "inv.py", "--no-keep-models"]).keep_models is False
    args = parser.parse_args(["rollback", "inv.py", "--limit", "a", "--limit", "b", "-y"])
    assert (args.limit, args.yes) == (["a", "b"], True)


@pytest.mark.parametrize("command", ["rollback", "uninstall"])
def test_bad_host_data_is_reported_before_any_host_is_contacted(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = tmp_path / "inv.py"
    inventory.write_text(
        "hosts = [('h1', {'engine': 'llamacpp', 'model': 'file:///x.gguf', 'port': 0})]\n"
    )
    assert main([command, str(inventory), "-y"]) == 2
    assert "h1: port" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["rollback", "uninstall"])
def test_without_a_terminal_or_yes_nothing_is_changed(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    inventory = tmp_path / "inv.py"
    inventory.write_text(f"hosts = [('h1', {{'engine': 'llamacpp', 'model': 'file://{model}'}})]\n")
    assert main([command, str(inventory)]) == 1
    assert "refusing to change hosts without a terminal" in capsys.readouterr().err
