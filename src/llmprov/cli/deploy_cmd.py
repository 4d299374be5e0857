"""`llmprov deploy`: validate, then run each host's deploy through pyinfra's API, then prove it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.table import Table

from llmprov.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    console,
    err_console,
    load_or_report,
)
from llmprov.deploy.runner import DeployRun


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
    p.add_argument("--results", default="llmprov-results", help="folder for throughput JSON lines")
    p.add_argument(
        "--verify-models",
        action="store_true",
        help="hash each model again, controller and host, instead of trusting its recorded digest",
    )
    p.set_defaults(func=run)


def ops_table(run: DeployRun) -> Table:
    table = Table(title="planned changes (dry run)" if run.dry else f"deploy ({run.seconds:.1f}s)")
    for col in (
        "host",
        "result",
        "operations",
        "changed" if not run.dry else "would change",
        "failed at",
    ):
        table.add_column(col)
    for r in run.results.values():
        changed = [op for op in r.ops if (op.planned_change if run.dry else op.changed)]
        result = "[green]ok[/]" if r.ok else "[red]FAILED[/]"
        table.add_row(r.host, result, str(len(r.ops)), str(len(changed)), r.error or "")
    return table


def _confirm(args: argparse.Namespace) -> bool:
    if args.yes or args.dry:
        return True
    if not sys.stdin.isatty():
        err_console.print("llmprov: refusing to change hosts without a terminal; pass -y")
        return False
    return console.input("Change these hosts? [y/N] ").strip().lower() in ("y", "yes")


def run(args: argparse.Namespace) -> int:
    loaded = load_or_report(args.inventory, args.engine, args.limit)
    if loaded is None:
        return EXIT_BAD_INPUT
    if args.verify_models:
        from llmprov.deploy.models import verifying

        loaded.hosts.update({n: verifying(c) for n, c in loaded.hosts.items()})
    from llmprov.deploy.engines import deploy_host
    from llmprov.deploy.runner import DeployFailed, run_pyinfra

    if not _confirm(args):
        return EXIT_FAILED
    try:
        result = run_pyinfra(loaded, deploy_host, dry=args.dry)
    except DeployFailed as exc:
        err_console.print(f"[bold red]deploy failed:[/] {exc}")
        return EXIT_FAILED
    console.print(ops_table(result))
    if args.dry:
        for r in result.results.values():
            for op in r.ops:
                mark = "[yellow]~[/]" if op.planned_change else " "
                console.print(f"  {r.host} {mark} {op.name}")
        return EXIT_OK
    ok = result.ok
    if not args.no_smoke:
        ok = _prove(loaded, result, bench=not args.no_bench, results_dir=Path(args.results)) and ok
    return EXIT_OK if ok else EXIT_FAILED


def _prove(loaded: object, result: DeployRun, bench: bool, results_dir: Path) -> bool:
    from llmprov.checks.after_deploy import prove
    from llmprov.checks.bench import append_results
    from llmprov.cli.bench_cmd import results_table
    from llmprov.cli.check_cmd import smoke_table
    from llmprov.inventory import LoadedInventory

    assert isinstance(loaded, LoadedInventory)
    all_ok = True
    for name, r in result.results.items():
        cfg = loaded.hosts[name]
        if not r.ok or not cfg.settings.smoke:
            continue
        try:
            proof = prove(cfg, loaded.host_data[name], run_bench=bench and cfg.settings.bench)
        except Exception as exc:  # a check that cannot run is a failed check, reported per host
            err_console.print(f"[red]{name}: check could not run: {exc}[/]")
            all_ok = False
            continue
        if proof.smoke is not None:
            console.print(smoke_table(proof.smoke, f"{name}: smoke check ({proof.url})"))
        if proof.bench:
            results_dir.mkdir(parents=True, exist_ok=True)
            out = results_dir / f"{name}-{cfg.engine}.jsonl"
            append_results(out, proof.bench)
            console.print(results_table(proof.bench, f"{name}: throughput ({cfg.engine}) -> {out}"))
        all_ok = all_ok and proof.ok
    return all_ok
