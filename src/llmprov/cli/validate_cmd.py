"""`llmprov validate`: check an inventory and print each host's resolved settings."""

from __future__ import annotations

import argparse

from rich.markup import escape

from llmprov.cli.common import (
    ENGINE_HELP,
    EXIT_BAD_INPUT,
    EXIT_OK,
    LIMIT_HELP,
    console,
    load_or_report,
    new_table,
    print_json,
)
from llmprov.core.validate import FieldError
from llmprov.inventory import InventoryError, load_inventory


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("validate", help="validate an inventory without connecting to any host")
    p.add_argument("inventory")
    p.add_argument(
        "--engine", choices=["ollama", "vllm", "llamacpp"], metavar="ENGINE", help=ENGINE_HELP
    )
    p.add_argument("--limit", action="append", metavar="PATTERN", help=LIMIT_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object (see README)")
    p.set_defaults(func=run)


def _error_json(e: FieldError) -> dict[str, str]:
    return {"host": e.host, "field": e.field, "reason": e.reason}


def run(args: argparse.Namespace) -> int:
    if args.json:
        return _run_json(args)
    loaded = load_or_report(args.inventory, args.engine, args.limit)
    if loaded is None:
        return EXIT_BAD_INPUT
    table = new_table(
        escape(f"{args.inventory}: {len(loaded.hosts)} host(s) valid"),
        ["host", "os", "engine", "runtime", "listen", "model"],
    )
    for name, cfg in loaded.hosts.items():
        # Inventory text is shown as text: rich would read `[...]` in a value as markup.
        row = (name, cfg.os, cfg.engine, cfg.runtime, f"{cfg.bind}:{cfg.port}", cfg.model_ref.raw)
        table.add_row(*(escape(v) for v in row))
    console.print(table)
    return EXIT_OK


def _run_json(args: argparse.Namespace) -> int:
    from pathlib import Path

    doc: dict[str, object] = {"command": "validate", "inventory": args.inventory}
    try:
        loaded = load_inventory(Path(args.inventory), engine_override=args.engine, limit=args.limit)
    except InventoryError as exc:
        print_json({**doc, "ok": False, "errors": [_error_json(e) for e in exc.errors]})
        return EXIT_BAD_INPUT
    hosts = {
        name: {
            "os": cfg.os,
            "engine": cfg.engine,
            "runtime": cfg.runtime,
            "bind": cfg.bind,
            "port": cfg.port,
            "model": cfg.model_ref.raw,
            "served_model_name": cfg.served_model_name,
        }
        for name, cfg in loaded.hosts.items()
    }
    print_json({**doc, "ok": True, "errors": [], "left_out": loaded.left_out, "hosts": hosts})
    return EXIT_OK
