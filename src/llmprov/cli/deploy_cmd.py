"""`llmprov deploy`: validate, then run each host's deploy through pyinfra's API, then prove it."""

from __future__ import annotations

import argparse

from llmprov.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    console,
    err_console,
    load_or_report,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("deploy", help="provision every host of an inventory and check the result")
    p.add_argument("inventory")
    p.add_argument(
        "--engine", choices=["ollama", "vllm", "llamacpp"], help="override every host's engine"
    )
    p.add_argument(
        "--dry", action="store_true", help="show the planned operations per host, change nothing"
    )
    p.add_argument("--limit", action="append", help="only this host (repeatable)")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask before changing hosts")
    p.add_argument("--no-smoke", action="store_true", help="skip the smoke check after the deploy")
    p.add_argument("--no-bench", action="store_true", help="skip the short throughput check")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    loaded = load_or_report(args.inventory, args.engine, args.limit)
    if loaded is None:
        return EXIT_BAD_INPUT
    from llmprov.deploy.runner import DeployFailed, run_deploy

    try:
        report = run_deploy(loaded, dry=args.dry, smoke=not args.no_smoke, bench=not args.no_bench)
    except DeployFailed as exc:
        err_console.print(f"[bold red]deploy failed:[/] {exc}")
        return EXIT_FAILED
    console.print(report.table())
    return EXIT_OK if report.ok else EXIT_FAILED
