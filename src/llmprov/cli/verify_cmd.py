"""`llmprov verify`: testinfra checks of every host's deployed engine, as a table; non-zero on failure."""

from __future__ import annotations

import argparse

from rich.table import Table

from llmprov.cli.common import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, console, load_or_report


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "verify", help="check deployed hosts with pytest-testinfra over the inventory's connections"
    )
    p.add_argument("inventory")
    p.add_argument("--engine", choices=["ollama", "vllm", "llamacpp"])
    p.add_argument("--limit", action="append")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    loaded = load_or_report(args.inventory, args.engine, args.limit)
    if loaded is None:
        return EXIT_BAD_INPUT
    from llmprov.checks.host_verify import Check, connect_testinfra, verify_host

    table = Table(title=f"verify {args.inventory}")
    for col in ("host", "check", "result", "detail"):
        table.add_column(col)
    failed_hosts: list[str] = []
    for name, cfg in loaded.hosts.items():
        try:
            checks = verify_host(cfg, connect_testinfra(name, loaded.host_data[name]))
        except Exception as exc:  # unreachable host: one failed row, the others still run
            checks = [Check("connect", False, f"{type(exc).__name__}: {exc}")]
        for c in checks:
            table.add_row(name, c.name, "[green]ok[/]" if c.ok else "[red]FAIL[/]", c.detail)
        if not all(c.ok for c in checks):
            failed_hosts.append(name)
    console.print(table)
    if failed_hosts:
        console.print(f"[red]failed: {', '.join(failed_hosts)}[/]")
        return EXIT_FAILED
    return EXIT_OK
