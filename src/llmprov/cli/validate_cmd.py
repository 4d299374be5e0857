"""`llmprov validate`: check an inventory and print each host's resolved settings."""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table

from llmprov.cli.common import EXIT_BAD_INPUT, EXIT_OK, console, load_or_report


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("validate", help="validate an inventory without connecting to any host")
    p.add_argument("inventory")
    p.add_argument("--engine", choices=["ollama", "vllm", "llamacpp"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    loaded = load_or_report(args.inventory, args.engine)
    if loaded is None:
        return EXIT_BAD_INPUT
    table = Table(title=escape(f"{args.inventory}: {len(loaded.hosts)} host(s) valid"))
    for col in ("host", "os", "engine", "runtime", "listen", "model"):
        table.add_column(col)
    for name, cfg in loaded.hosts.items():
        # Inventory text is shown as text: rich would read `[...]` in a value as markup.
        row = (name, cfg.os, cfg.engine, cfg.runtime, f"{cfg.bind}:{cfg.port}", cfg.model_ref.raw)
        table.add_row(*(escape(v) for v in row))
    console.print(table)
    return EXIT_OK
