"""`llmprov uninstall`: remove what llmprov installed on each host (models kept unless asked)."""

from __future__ import annotations

import argparse
import functools

from llmprov.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    LIMIT_HELP,
    console,
    err_console,
    load_or_report,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "uninstall",
        help="stop and remove each host's engine: unit, settings, versions, caches, state record",
    )
    p.add_argument("inventory")
    p.add_argument("--limit", action="append", metavar="PATTERN", help=LIMIT_HELP)
    p.add_argument(
        "--keep-models",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep the served models on the host (default); --no-keep-models removes them too",
    )
    p.add_argument("-y", "--yes", action="store_true", help="do not ask before changing hosts")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    loaded = load_or_report(args.inventory, None, args.limit)
    if loaded is None:
        return EXIT_BAD_INPUT
    from llmprov.cli.deploy_cmd import confirm, ops_table
    from llmprov.deploy.lifecycle import uninstall_host
    from llmprov.deploy.runner import DeployFailed, run_pyinfra

    what = "keeping models" if args.keep_models else "models too"
    if not confirm(args.yes, f"Uninstall from these hosts ({what})?"):
        return EXIT_FAILED
    try:
        result = run_pyinfra(
            loaded, functools.partial(uninstall_host, keep_models=args.keep_models)
        )
    except DeployFailed as exc:
        err_console.print(f"[bold red]uninstall failed:[/] {exc}")
        return EXIT_FAILED
    console.print(ops_table(result, what="uninstall"))
    return EXIT_OK if result.ok else EXIT_FAILED
