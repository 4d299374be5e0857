"""`llmprov verify`: testinfra checks of every host's deployed engine, as a table; non-zero on failure."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from llmprov.cli.common import (
    ENGINE_HELP,
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    LIMIT_HELP,
    console,
    load_or_report,
    new_table,
    print_json,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "verify", help="check deployed hosts with pytest-testinfra over the inventory's connections"
    )
    p.add_argument("inventory")
    p.add_argument(
        "--engine", choices=["ollama", "vllm", "llamacpp"], metavar="ENGINE", help=ENGINE_HELP
    )
    p.add_argument("--limit", action="append", metavar="PATTERN", help=LIMIT_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object (see README)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    loaded = load_or_report(args.inventory, args.engine, args.limit)
    if loaded is None:
        return EXIT_BAD_INPUT
    from llmprov.extras import require

    require("testinfra")
    from llmprov.checks.host_verify import (
        connect_testinfra,
        readable_error,
        unreachable,
        verify_host,
    )
    from llmprov.core.unreachable import connect_address, unreachable_line

    table = new_table(f"verify {args.inventory}", ["host", "check", "result", "detail"])
    failed_hosts: list[str] = []
    hosts: dict[str, Any] = {}
    for name, cfg in loaded.hosts.items():
        data = loaded.host_data[name]
        try:
            target = connect_testinfra(name, data)
            why = unreachable(target)
        except Exception as exc:  # a host testinfra cannot even describe is unreachable too
            why = readable_error(exc)
        if why is not None:
            line = unreachable_line(name, why, connect_address(name, data))
            print(line, file=sys.stderr)
            hosts[name] = {"ok": False, "unreachable": line, "checks": []}
            failed_hosts.append(name)
            continue
        checks = verify_host(cfg, target)
        for c in checks:
            table.add_row(name, c.name, "[green]ok[/]" if c.ok else "[red]FAIL[/]", c.detail)
        ok = all(c.ok for c in checks)
        hosts[name] = {
            "ok": ok,
            "unreachable": None,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks],
        }
        if not ok:
            failed_hosts.append(name)
    if args.json:
        print_json(
            {
                "command": "verify",
                "inventory": args.inventory,
                "engine": args.engine,
                "left_out": loaded.left_out,
                "ok": not failed_hosts,
                "hosts": hosts,
            }
        )
    else:
        if table.row_count:
            console.print(table)
        if failed_hosts:
            console.print(f"[red]failed: {', '.join(failed_hosts)}[/]")
    return EXIT_FAILED if failed_hosts else EXIT_OK
