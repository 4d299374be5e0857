"""What the subcommands share: loading an inventory with its errors reported, and the console."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console

from llmprov.core.validate import FieldError
from llmprov.inventory import InventoryError, LoadedInventory, load_inventory

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

console = Console()
err_console = Console(stderr=True)


def report_errors(errors: list[FieldError], what: str = "inventory") -> None:
    err_console.print(f"[bold red]llmprov: {len(errors)} problem(s) in the {what}:[/]")
    for e in errors:
        # Plain lines, one per fault, so they can be grepped and read in CI logs.
        print(str(e), file=sys.stderr)


def load_or_report(
    path: str, engine: str | None = None, limit: list[str] | None = None
) -> LoadedInventory | None:
    try:
        return load_inventory(Path(path), engine_override=engine, limit=limit)
    except InventoryError as exc:
        report_errors(exc.errors)
        return None
