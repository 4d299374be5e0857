"""`llmprov rollback`: switch each host back to its previous version, then prove it with the smoke check."""

from __future__ import annotations

import argparse

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
        "rollback", help="switch each host back to the version it ran before, and smoke-check it"
    )
    p.add_argument("inventory")
    p.add_argument("--limit", action="append", metavar="PATTERN", help=LIMIT_HELP)
    p.add_argument("-y", "--yes", action="store_true", help="do not ask before changing hosts")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    loaded = load_or_report(args.inventory, None, args.limit)
    if loaded is None:
        return EXIT_BAD_INPUT
    from llmprov.cli.deploy_cmd import confirm, ops_table, prove_hosts
    from llmprov.deploy.lifecycle import rollback_host
    from llmprov.deploy.runner import DeployFailed, run_pyinfra

    if not confirm(args.yes, "Roll these hosts back?"):
        return EXIT_FAILED
    try:
        result = run_pyinfra(loaded, rollback_host)
    except DeployFailed as exc:
        err_console.print(f"[bold red]rollback failed:[/] {exc}")
        return EXIT_FAILED
    console.print(ops_table(result, what="rollback"))
    ok = prove_hosts(loaded, result, bench=False, results_dir=None) and result.ok
    return EXIT_OK if ok else EXIT_FAILED
