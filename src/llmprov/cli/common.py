"""What the subcommands share: loading an inventory with its errors reported, and the console."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from llmprov.core.validate import FieldError
from llmprov.inventory import InventoryError, LoadedInventory, load_inventory

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

# JSON documents printed by `--json` carry this; README's "Output for scripts" documents each schema.
JSON_SCHEMA_VERSION = 1


def _width(stream: Any) -> int | None:
    """Rich's own width on a terminal; elsewhere (a CI log, a pipe) a wide one, so rows wrap late.

    COLUMNS, when set, wins as it does for rich.
    """
    if stream.isatty() or os.environ.get("COLUMNS"):
        return None
    return 200


console = Console(width=_width(sys.stdout))
err_console = Console(stderr=True, width=_width(sys.stderr))


def new_table(title: str, columns: Iterable[str]) -> Table:
    """A table whose cells fold long values (URLs, model refs) instead of cutting them with '…'."""
    table = Table(title=title)
    for col in columns:
        table.add_column(col, overflow="fold", no_wrap=False)
    return table


def print_json(doc: dict[str, Any]) -> None:
    """One JSON object on stdout, schema_version first."""
    print(json.dumps({"schema_version": JSON_SCHEMA_VERSION, **doc}, indent=2, default=str))


def report_left_out(left_out: dict[str, str], engine: str | None) -> None:
    """Hosts --engine set aside: named on stderr so a script's stdout stays clean."""
    if not left_out:
        return
    err_console.print(
        f"llmprov: --engine {engine} leaves out {len(left_out)} host(s), not contacted:",
        highlight=False,
    )
    for name, why in left_out.items():
        print(f"  {name}: {why}", file=sys.stderr)


def report_errors(errors: list[FieldError], what: str = "inventory") -> None:
    err_console.print(f"[bold red]llmprov: {len(errors)} problem(s) in the {what}:[/]")
    for e in errors:
        # Plain lines, one per fault, so they can be grepped and read in CI logs.
        print(str(e), file=sys.stderr)


def load_or_report(
    path: str, engine: str | None = None, limit: list[str] | None = None
) -> LoadedInventory | None:
    """The validated inventory with the run's hosts selected, or None with every fault printed."""
    try:
        loaded = load_inventory(Path(path), engine_override=engine, limit=limit)
    except InventoryError as exc:
        report_errors(exc.errors)
        return None
    report_left_out(loaded.left_out, engine)
    return loaded


ENGINE_HELP = (
    "ollama, vllm or llamacpp: only hosts that run ENGINE, plus hosts that name no engine "
    "(they get ENGINE); hosts naming another engine are left out"
)
LIMIT_HELP = (
    "only these hosts: host or group names, globs (gpu-*), comma lists; repeatable, as in pyinfra"
)
